//! What stock tools leave behind is repaired wherever rbd-ext touches the image (issue 14,
//! points 4 and 7): stock `rbd rm` of a child leaves its clone map and its entry in the
//! parent's children; stock `rbd flatten` of the last child leaves the parent protected
//! (stock `rbd rm` of it fails with EROFS) and the child's clone map; librbd copy-ups leave
//! the clone map saying "parent" for objects that are local.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use rbd_ext::blocking::clone_standalone;
use rbd_ext::{CloneOptions, Image, ImageSpec, OpenOptions};

const OS: u64 = 1 << 16;
const OBJECTS: u64 = 16;

/// A parent of 16 objects of random data (stock `rbd import`, default features: with
/// object-map) and a standalone child of it; returns them with the child's id.
fn parent_and_child(tag: &str) -> (ImageSpec, ImageSpec, String) {
    let cluster = common::cluster();
    let mut rng = common::fsx::Rng(0x5eed ^ tag.len() as u64);
    let pname = common::unique(&format!("{tag}-parent"));
    let path = std::env::temp_dir().join(&pname);
    std::fs::write(&path, rng.bytes((OBJECTS * OS) as usize)).unwrap();
    common::stock_ok("rbd", &["import", "--no-progress", "--object-size", &OS.to_string(), path.to_str().unwrap(), &format!("rbd/{pname}")]);
    std::fs::remove_file(&path).ok();
    let parent = ImageSpec::new("rbd", &pname);
    let child = ImageSpec::new("rbd", &common::unique(&format!("{tag}-child")));
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    let (loc, _) = rbd_ext::header::locate(&cluster, &child).unwrap();
    (parent, child, loc.id)
}

/// Stock `rbd rm` of the parent: Ok, or the error text.
fn stock_rm(spec: &ImageSpec) -> Result<(), String> {
    let (ok, _, err) = common::stock("rbd", &["rm", "--no-progress", &spec.to_string()]);
    if ok {
        Ok(())
    } else {
        Err(err)
    }
}

fn clone_map_oid(id: &str) -> String {
    format!("rbd_clone_map.{id}")
}

#[test]
fn stock_rm_of_a_child_is_reconciled_by_info_of_the_parent() {
    let (parent, child, cid) = parent_and_child("rc-rm");
    common::stock_ok("rbd", &["rm", "--no-progress", &child.to_string()]);
    // What stock rm leaves: the clone map, and the entry that keeps the parent protected.
    assert!(common::object_exists("rbd", &clone_map_oid(&cid)), "stock rm removed the clone map itself?");
    let err = stock_rm(&parent).expect_err("the parent is still protected by the stale entry");
    assert!(err.contains("Read-only file system") || err.contains("disabled"), "{err}");

    let (code, _, notes) = common::rbd_ext(&["info", &parent.to_string()]);
    assert_eq!(code, 0, "{notes}");
    assert!(notes.contains("dropped stale child entry") && notes.contains(&cid), "info did not say what it repaired: {notes}");
    assert!(!common::object_exists("rbd", &clone_map_oid(&cid)), "the orphan clone map is still there");
    stock_rm(&parent).expect("stock rm of the parent after rbd-ext looked at it");
}

#[test]
fn stock_flatten_of_the_last_child_is_reconciled_by_info_and_open() {
    let cluster = common::cluster();
    let (parent, child, cid) = parent_and_child("rc-flat");
    common::stock_ok("rbd", &["flatten", "--no-progress", &child.to_string()]);
    assert!(common::object_exists("rbd", &clone_map_oid(&cid)));

    // info of the flattened child reports no clone map, and there is none any more.
    let (code, out, err) = common::rbd_ext(&["info", "--format", "json", &child.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("clone_map"), "info of a flattened child still reports a clone map: {out}");
    assert!(!common::object_exists("rbd", &clone_map_oid(&cid)));

    // Opening the parent (any rbd-ext reader) lifts the protection the last child held.
    let img = Image::open_blocking(&cluster, &parent, OpenOptions::default()).unwrap();
    assert!(img.reconciled().iter().any(|r| r.contains("stale child entry")), "{:?}", img.reconciled());
    drop(img);
    stock_rm(&parent).expect("stock rm of the parent after rbd-ext opened it");
    common::stock_ok("rbd", &["rm", "--no-progress", &child.to_string()]);
}

/// Writes `data` at each offset through stock librbd (python3-rbd), then closes.
fn librbd_write(spec: &ImageSpec, offsets: &[u64], data: &[u8]) {
    let script = r#"
import os, sys, rados, rbd
pool, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = sys.stdin.buffer.read()
c = rados.Rados(conffile=os.environ["CEPH_CONF"]); c.connect()
io = c.open_ioctx(pool)
with rbd.Image(io, name) as img:
    for off in sys.argv[4:4 + n]:
        img.write(data, int(off))
    img.flush()
io.close(); c.shutdown()
"#;
    let mut args = vec!["-c".to_string(), script.to_string(), spec.pool.clone(), spec.image.clone(), offsets.len().to_string()];
    args.extend(offsets.iter().map(|o| o.to_string()));
    let mut p = Command::new("/usr/bin/python3").args(&args).stdin(Stdio::piped()).spawn().expect("run /usr/bin/python3 (python3-rbd)");
    p.stdin.take().unwrap().write_all(data).unwrap();
    assert!(p.wait().unwrap().success(), "python3-rbd write failed");
}

fn clone_map_states(spec: &ImageSpec) -> Vec<rbd_ext::clone_map::State> {
    let cluster = common::cluster();
    let (loc, _) = rbd_ext::header::locate(&cluster, spec).unwrap();
    rbd_ext::clone_map::load(&loc.md, &loc.id).unwrap().expect("a clone map")
}

#[test]
fn librbd_copy_ups_are_no_disagreement_and_count_as_copied_up() {
    use rbd_ext::clone_map::State;
    let (parent, child, cid) = parent_and_child("rc-check");
    // A small write into every object: librbd copies each one up.
    let offsets: Vec<u64> = (0..OBJECTS).map(|n| n * OS + 100).collect();
    librbd_write(&child, &offsets, b"written by librbd");
    assert!(clone_map_states(&child).iter().all(|s| *s == State::ExistsParent), "precondition: librbd does not touch the clone map");

    let (code, out, err) = common::rbd_ext(&["clone-map", "check", &child.to_string()]);
    assert_eq!(code, 0, "check fails on objects a stock client copied up: {out}{err}");
    assert!(err.contains("16 object(s) written by a stock client"), "{err}");
    assert!(clone_map_states(&child).iter().all(|s| *s == State::CopiedUp), "{:?}", clone_map_states(&child));
    let (_, info, _) = common::rbd_ext(&["info", &child.to_string()]);
    assert!(info.contains("clone map: 16 objects: 16 copied-up"), "{info}");

    // A real disagreement still fails: a copied-up object that is gone.
    common::stock_ok("rados", &["-p", "rbd", "rm", &format!("rbd_data.{cid}.{:016x}", 3)]);
    let (code, out, err) = common::rbd_ext(&["clone-map", "check", &child.to_string()]);
    assert_eq!(code, 1, "a missing local object must fail the check: {out}{err}");
    assert!(err.contains("1 of 16 objects disagree"), "{err}");
    assert!(out.contains("object 3: map says copied-up, objects say exists-parent"), "{out}");

    common::rbd_ext(&["rm", &child.to_string()]);
    common::rbd_ext(&["rm", &parent.to_string()]);
}

#[test]
fn a_writer_open_counts_librbd_copy_ups_from_the_object_map() {
    use rbd_ext::clone_map::State;
    let cluster = common::cluster();
    let (parent, child, _) = parent_and_child("rc-open");
    librbd_write(&child, &[0, 5 * OS + 7, 6 * OS], b"librbd");
    let img = Image::open_blocking(&cluster, &child, OpenOptions::default().with_write(true)).unwrap();
    assert!(img.reconciled().iter().any(|r| r.contains("3 object(s) written by a stock client")), "{:?}", img.reconciled());
    img.close().unwrap();
    let states = clone_map_states(&child);
    for (n, s) in states.iter().enumerate() {
        let want = if [0, 5, 6].contains(&n) { State::CopiedUp } else { State::ExistsParent };
        assert_eq!(*s, want, "object {n}");
    }
    common::rbd_ext(&["rm", &child.to_string()]);
    common::rbd_ext(&["rm", &parent.to_string()]);
}

#[test]
fn concurrent_copy_ups_all_land_in_the_clone_map() {
    use rbd_ext::clone_map::State;
    let cluster = common::cluster();
    let (parent, child, _) = parent_and_child("rc-batch");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let img = std::sync::Arc::new(Image::open_blocking(&cluster, &child, OpenOptions::default().with_write(true)).unwrap());
    // A small write into every object at once: 16 copy-ups whose clone-map transitions
    // queue behind the one in flight and go together (`clone_map_update_many`).
    rt.block_on(async {
        let writes: Vec<_> = (0..OBJECTS)
            .map(|n| {
                let img = img.clone();
                tokio::spawn(async move { img.write_at(n * OS + 100, format!("object {n}").as_bytes()).await })
            })
            .collect();
        for w in writes {
            w.await.unwrap().unwrap();
        }
    });
    assert_eq!(clone_map_states(&child), vec![State::CopiedUp; OBJECTS as usize], "the map as stored, writer still open");
    let pimg = Image::open_blocking(&cluster, &parent, OpenOptions::default()).unwrap();
    for n in 0..OBJECTS {
        let mut want = rt.block_on(pimg.read_at(n * OS, OS)).unwrap();
        let text = format!("object {n}");
        want[100..100 + text.len()].copy_from_slice(text.as_bytes());
        assert!(rt.block_on(img.read_at(n * OS, OS)).unwrap() == want, "object {n}: parent data around the write");
    }
    pimg.close().unwrap();
    std::sync::Arc::into_inner(img).unwrap().close().unwrap();
    common::rbd_ext(&["rm", &child.to_string()]);
    common::rbd_ext(&["rm", &parent.to_string()]);
}

/// Listing a parent's children while other clients remove theirs: an entry the listing finds
/// stale may be detached by its own `rm` first; the listing must not fail with that ENOENT
/// (the C API's concurrent workers hit it).
#[test]
fn listing_while_children_are_removed_concurrently_never_fails() {
    let cluster = common::cluster();
    let (parent, first, _) = parent_and_child("list-race");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lister = {
        let (cluster, parent, stop, first) = (cluster.clone(), parent.clone(), stop.clone(), first.image.clone());
        std::thread::spawn(move || {
            let mut listings = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let kids = rbd_ext::blocking::children(&cluster, &parent).unwrap_or_else(|e| panic!("listing {listings}: {e}"));
                assert!(kids.children.iter().any(|c| c.image == first), "the child that stays is listed");
                listings += 1;
            }
            listings
        })
    };
    // Four clients clone and remove at once, as the C API test's workers do.
    let removers: Vec<_> = (0..4)
        .map(|t| {
            let (cluster, parent) = (cluster.clone(), parent.clone());
            std::thread::spawn(move || {
                for i in 0..15 {
                    let c = ImageSpec::new("rbd", &common::unique(&format!("list-race-{t}-{i}")));
                    clone_standalone(&cluster, &parent, &c, &CloneOptions::default()).unwrap();
                    rbd_ext::blocking::remove(&cluster, &c).unwrap();
                }
            })
        })
        .collect();
    for r in removers {
        r.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let listings = lister.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(listings > 0);
    rbd_ext::blocking::remove(&cluster, &first).unwrap();
    rbd_ext::blocking::remove(&cluster, &parent).unwrap();
}

/// Many children are listed in bulk (issue 15: no round trip per child in series), and the
/// bulk path keeps every rule of the careful one. 70 children live in a namespace whose
/// directory lists 1100 other images first, so their names come from the second page of the
/// directory; among them a child removed by stock `rbd rm` and one flattened by stock
/// `rbd flatten` are still found stale and dropped, and one in the trash is still listed (by
/// id, as `rbd children` shows an image without a name).
#[test]
fn many_children_are_listed_in_bulk_with_stale_entries_dropped() {
    let cluster = common::cluster();
    let ns = common::unique("bulk");
    common::stock_ok("rbd", &["namespace", "create", "--pool", "rbd", "--namespace", &ns]);
    let io = cluster.ioctx("rbd", &ns).unwrap();
    let fillers: Vec<String> = (0..1100).map(|i| format!("a-{i:04}")).collect();
    for f in &fillers {
        rbd_ext::rados::create_image(&io, f, 1 << 20, &rbd_ext::rados::CreateOptions::default()).unwrap();
    }
    let spec = |name: &str| ImageSpec { pool: "rbd".into(), namespace: ns.clone(), image: name.into(), snap: None };
    let parent = spec("p");
    common::stock_ok("rbd", &["create", "--size", "16M", &parent.to_string()]);
    let kids: Vec<ImageSpec> = (0..70).map(|i| spec(&format!("z-{i:02}"))).collect();
    let mut ids = Vec::new();
    for c in &kids {
        clone_standalone(&cluster, &parent, c, &CloneOptions::default()).unwrap();
        ids.push(rbd_ext::header::locate(&cluster, c).unwrap().0.id);
    }
    common::stock_ok("rbd", &["rm", "--no-progress", &kids[0].to_string()]);
    common::stock_ok("rbd", &["flatten", "--no-progress", &kids[1].to_string()]);
    common::stock_ok("rbd", &["trash", "mv", &kids[2].to_string()]);

    let listed = rbd_ext::blocking::children(&cluster, &parent).unwrap();
    let mut want: Vec<String> = std::iter::once(ids[2].clone()).chain(kids[3..].iter().map(|c| c.image.clone())).collect();
    let mut got: Vec<String> = listed.children.iter().map(|c| c.image.clone()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "live children by name (the trashed one by id)");
    assert!(listed.children.iter().all(|c| c.pool == "rbd" && c.namespace == ns), "{:?}", listed.children);
    for stale in &ids[..2] {
        assert!(
            listed.reconciled.iter().any(|r| r.contains("dropped stale child entry") && r.contains(stale.as_str())),
            "stale entry {stale} not dropped: {:?}",
            listed.reconciled
        );
    }
    let again = rbd_ext::blocking::children(&cluster, &parent).unwrap();
    assert!(again.reconciled.is_empty(), "dropped twice: {:?}", again.reconciled);
    assert_eq!(again.children.len(), 68);

    common::stock_ok("rbd", &["trash", "restore", "--pool", "rbd", "--namespace", &ns, &ids[2]]);
    for c in kids[2..].iter().chain([&kids[1], &parent]) {
        rbd_ext::blocking::remove(&cluster, c).unwrap();
    }
    for f in &fillers {
        rbd_ext::rados::remove_image(&io, f).unwrap();
    }
    common::stock_ok("rbd", &["namespace", "remove", "--pool", "rbd", "--namespace", &ns]);
}

//! Standalone clones through the library against a live cluster: single writer, many
//! readers, parent protection and children across pools and namespaces, clear errors.

mod common;

use std::sync::Arc;

use rbd_ext::blocking::{children, clone_standalone};
use rbd_ext::rados::Cluster;
use rbd_ext::{CloneOptions, Errno, Image, ImageSpec, OpenOptions};

fn parent_with_data(size: u64, seed: u8) -> (ImageSpec, Vec<u8>) {
    let name = common::unique("clone-parent");
    let data: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    let path = std::env::temp_dir().join(&name);
    std::fs::write(&path, &data).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", "64K", path.to_str().unwrap(), &format!("rbd/{name}")]);
    std::fs::remove_file(&path).ok();
    (ImageSpec::new("rbd", &name), data)
}

fn writer(cluster: &Arc<Cluster>, spec: &ImageSpec) -> rbd_ext::Result<Image> {
    Image::open_blocking(cluster, spec, OpenOptions::default().with_write(true))
}

#[test]
fn one_writer_at_a_time_readers_unblocked_and_lock_rm() {
    let (a, b) = (common::cluster(), common::cluster());
    let (parent, data) = parent_with_data(300_000, 1);
    let child = ImageSpec::new("rbd", &common::unique("clone-child"));
    clone_standalone(&a, &parent, &child, &CloneOptions::default()).unwrap();
    let w1 = writer(&a, &child).unwrap();
    let e = writer(&b, &child).err().expect("second writer accepted");
    assert_eq!(e.errno(), Errno::EBUSY, "{e}");
    assert!(e.to_string().contains("client."), "the error names the holder: {e}");
    assert!(e.to_string().contains("lock rm"), "the error says how to break a dead holder's lock: {e}");
    // Readers are not blocked by the writer.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = Image::open_blocking(&b, &child, OpenOptions::default()).unwrap();
    assert!(rt.block_on(r.read_at(0, 300_000)).unwrap() == data);
    // A holder that died (simulated: its lock is still there) is broken explicitly.
    let (loc, _) = rbd_ext::header::locate(&b, &child).unwrap();
    let holders = rbd_ext::lock::lockers(&loc.md, &loc.id).unwrap();
    assert_eq!(holders.len(), 1);
    rbd_ext::lock::break_lock(&loc.md, &loc.id, &holders[0].client, &holders[0].cookie).unwrap();
    let w2 = writer(&b, &child).unwrap();
    rt.block_on(w2.write_at(10, b"second writer")).unwrap();
    w2.close().unwrap();
    // Breaking the lock blocklisted the first writer's client, as `rbd lock rm` does: its
    // writes now fail instead of racing the new writer's.
    let e = rt.block_on(w1.write_at(10, b"zombie")).unwrap_err();
    assert_eq!(e.errno(), Errno::EBLOCKLISTED, "{e}");
    drop(w1);
    // Readers watch the header too (as librbd's do), and removal waits for no watchers.
    drop(r);
    rbd_ext::blocking::remove(&b, &child).unwrap();
    rbd_ext::blocking::remove(&b, &parent).unwrap();
}

#[test]
fn many_children_read_one_parent_concurrently() {
    let cluster = common::cluster();
    let (parent, data) = parent_with_data(500_000, 7);
    let kids: Vec<ImageSpec> = (0..8).map(|_| ImageSpec::new("rbd", &common::unique("clone-kid"))).collect();
    for k in &kids {
        clone_standalone(&cluster, &parent, k, &CloneOptions::default()).unwrap();
    }
    let threads: Vec<_> = kids
        .iter()
        .cloned()
        .map(|k| {
            let data = data.clone();
            std::thread::spawn(move || {
                let c = common::cluster();
                let rt = tokio::runtime::Runtime::new().unwrap();
                let img = Image::open_blocking(&c, &k, OpenOptions::default()).unwrap();
                for _ in 0..3 {
                    assert!(rt.block_on(img.read_at(0, 500_000)).unwrap() == data, "child {k} read wrong data");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let listed = children(&cluster, &parent).unwrap().children;
    assert_eq!(listed.len(), 8);
    for k in &kids {
        rbd_ext::blocking::remove(&cluster, k).unwrap();
    }
    rbd_ext::blocking::remove(&cluster, &parent).unwrap();
}

#[test]
fn cross_pool_and_namespace_children_protect_the_parent() {
    let cluster = common::cluster();
    let (parent, data) = parent_with_data(200_000, 3);
    let ns = common::unique("ns");
    common::stock_ok("rbd", &["namespace", "create", &format!("rbd/{ns}")]);
    let in_pool2 = ImageSpec::new("rbd2", &common::unique("clone-xpool"));
    let in_ns = ImageSpec { pool: "rbd".into(), namespace: ns.clone(), image: common::unique("clone-xns"), snap: None };
    clone_standalone(&cluster, &parent, &in_pool2, &CloneOptions::default()).unwrap();
    clone_standalone(&cluster, &parent, &in_ns, &CloneOptions::default()).unwrap();
    let mut listed = children(&cluster, &parent).unwrap().children;
    listed.sort_by_key(|s| s.to_string());
    let mut want = vec![in_pool2.clone(), in_ns.clone()];
    want.sort_by_key(|s| s.to_string());
    assert_eq!(listed, want);
    let e = rbd_ext::blocking::remove(&cluster, &parent).unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY);
    assert!(e.to_string().contains(&in_pool2.to_string()) && e.to_string().contains(&in_ns.to_string()), "{e}");
    // Stock tools obey the protection too.
    let (ok, _, _) = common::stock("rbd", &["resize", "--size", "1M", "--allow-shrink", &parent.to_string()]);
    assert!(!ok, "stock resize of a protected parent succeeded");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for c in [&in_pool2, &in_ns] {
        let img = Image::open_blocking(&cluster, c, OpenOptions::default().with_write(true)).unwrap();
        assert!(rt.block_on(img.read_at(0, 200_000)).unwrap() == data);
        rt.block_on(rbd_ext::flatten(&img, &|_, _| {})).unwrap();
        assert!(rt.block_on(img.read_at(0, 200_000)).unwrap() == data);
        img.close().unwrap();
    }
    assert!(children(&cluster, &parent).unwrap().children.is_empty());
    rbd_ext::blocking::remove(&cluster, &parent).unwrap();
    // The flattened children stand alone.
    for c in [&in_pool2, &in_ns] {
        let img = Image::open_blocking(&cluster, c, OpenOptions::default()).unwrap();
        assert!(img.info().parent.is_none());
        assert!(rt.block_on(img.read_at(0, 200_000)).unwrap() == data);
        drop(img);
        rbd_ext::blocking::remove(&cluster, c).unwrap();
    }
    common::stock_ok("rbd", &["namespace", "remove", &format!("rbd/{ns}")]);
}

/// The copy-up of a write trusts the object map's "nonexistent" (no write in place first).
/// An object that exists behind the map's back (here written with plain RADOS) must keep
/// its data: the copy-up leaves it alone and only the write lands.
#[test]
fn copy_up_keeps_an_object_the_object_map_missed() {
    let cluster = common::cluster();
    let (parent, data) = parent_with_data(300_000, 9);
    let child = ImageSpec::new("rbd", &common::unique("clone-stale-om"));
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    let (loc, hdr) = rbd_ext::header::locate(&cluster, &child).unwrap();
    assert!(hdr.has(rbd_ext::header::features::OBJECT_MAP), "the child must keep an object map for this test");
    let os = hdr.object_size();
    let behind = vec![0xEE_u8; os as usize];
    let op = rbd_ext::rados::WriteOp { steps: vec![rbd_ext::rados::WriteStep::WriteFull(behind.clone())] };
    loc.data.write(&hdr.data_oid(1), &op).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = writer(&cluster, &child).unwrap();
    rt.block_on(w.write_at(os + 100, b"NEW!")).unwrap();
    // An object the map knows nothing of, for contrast: copied up from the parent.
    rt.block_on(w.write_at(2 * os + 100, b"NEW!")).unwrap();
    let got = rt.block_on(w.read_at(0, 3 * os)).unwrap();
    w.close().unwrap();
    let mut want1 = behind;
    want1[100..104].copy_from_slice(b"NEW!");
    assert!(got[os as usize..2 * os as usize] == want1[..], "object 1 lost the data written behind the object map");
    let mut want2 = data[2 * os as usize..3 * os as usize].to_vec();
    want2[100..104].copy_from_slice(b"NEW!");
    assert!(got[2 * os as usize..] == want2[..], "object 2 was not copied up from the parent");
    assert!(got[..os as usize] == data[..os as usize]);
    rbd_ext::blocking::remove(&cluster, &child).unwrap();
    rbd_ext::blocking::remove(&cluster, &parent).unwrap();
}

#[test]
fn clear_errors() {
    let cluster = common::cluster();
    let (parent, _) = parent_with_data(70_000, 5);
    let child = ImageSpec::new("rbd", &common::unique("clone-err"));
    let missing = ImageSpec::new("rbd", &common::unique("no-such-image"));
    let e = clone_standalone(&cluster, &missing, &child, &CloneOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT, "{e}");
    assert!(e.to_string().contains(&missing.to_string()), "{e}");
    let snap: ImageSpec = format!("{parent}@s1").parse().unwrap();
    let e = clone_standalone(&cluster, &snap, &child, &CloneOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert!(e.to_string().contains("rbd clone"), "{e}");
    let e = clone_standalone(&cluster, &parent, &parent, &CloneOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Errno::EEXIST, "{e}");
    let nopool = ImageSpec::new(&common::unique("nopool"), "x");
    let e = clone_standalone(&cluster, &parent, &nopool, &CloneOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT, "{e}");
    assert!(e.to_string().contains("pool"), "{e}");
    // A parent that is open for writing is refused unless forced.
    let w = writer(&cluster, &parent).unwrap();
    let e = clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY, "{e}");
    drop(w);
    // Nothing half-made was left behind by the failures.
    assert!(Image::open_blocking(&cluster, &child, OpenOptions::default()).err().unwrap().is_not_found());
    rbd_ext::blocking::remove(&cluster, &parent).unwrap();
}

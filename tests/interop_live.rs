//! Stock librbd and rbd-ext take turns on one standalone child (DESIGN.md §0): alternate
//! phases of random writes through rbd-ext and through python3-rbd, each ending with a
//! close, checked against a model after every phase; then stock `rbd export`,
//! `rbd object-map check`, `rbd info`, `rbd rm` (refused on the parent) and `rbd flatten`.

mod common;

use common::fsx::Rng;

use std::io::Write;
use std::process::{Command, Stdio};

use rbd_ext::blocking::{children, clone_standalone};
use rbd_ext::{CloneOptions, Image, ImageSpec, OpenOptions};

const OS: u64 = 1 << 16;

/// A python3-rbd phase: applies `writes` to `spec` through stock librbd, then closes.
fn stock_phase(spec: &ImageSpec, writes: &[(u64, Vec<u8>)]) {
    let script = r#"
import os, sys, rados, rbd, struct
pool, name = sys.argv[1], sys.argv[2]
c = rados.Rados(conffile=os.environ["CEPH_CONF"]); c.connect()
io = c.open_ioctx(pool)
data = sys.stdin.buffer.read()
with rbd.Image(io, name) as img:
    pos = 0
    while pos < len(data):
        off, ln = struct.unpack_from("<QI", data, pos); pos += 12
        img.write(data[pos:pos + ln], off); pos += ln
    img.flush()
io.close(); c.shutdown()
"#;
    let mut input = Vec::new();
    for (off, d) in writes {
        input.extend_from_slice(&off.to_le_bytes());
        input.extend_from_slice(&(d.len() as u32).to_le_bytes());
        input.extend_from_slice(d);
    }
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script, &spec.pool, &spec.image])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 (python3-rbd)");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    assert!(child.wait().unwrap().success(), "python3-rbd phase failed");
}

fn stock_export(spec: &ImageSpec) -> Vec<u8> {
    let path = std::env::temp_dir().join(common::unique("interop-export"));
    common::stock_ok("rbd", &["export", &spec.to_string(), path.to_str().unwrap()]);
    let d = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    d
}

fn random_writes(rng: &mut Rng, size: u64, n: usize) -> Vec<(u64, Vec<u8>)> {
    (0..n)
        .map(|_| {
            let off = rng.below(size);
            let len = (rng.below(2 * OS) + 1).min(size - off);
            (off, (0..len).map(|_| rng.next() as u8).collect())
        })
        .collect()
}

#[test]
fn rbd_ext_and_librbd_take_turns_on_one_child() {
    let cluster = common::cluster();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rng = Rng(0xC0FFEE);
    let pname = common::unique("interop-parent");
    let size = 8 * OS + 4321;
    let pdata: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
    let path = std::env::temp_dir().join(&pname);
    std::fs::write(&path, &pdata).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", &OS.to_string(), path.to_str().unwrap(), &format!("rbd/{pname}")]);
    std::fs::remove_file(&path).ok();
    let parent = ImageSpec::new("rbd", &pname);
    let child = ImageSpec::new("rbd", &common::unique("interop-child"));
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();

    // Stock tools see a clone of the parent's HEAD and refuse to remove the parent.
    let info = common::stock_ok("rbd", &["info", &child.to_string()]);
    assert!(info.contains(&format!("parent: rbd/{pname}@")), "{info}");
    assert!(info.contains("object-map"), "child should inherit object-map: {info}");
    let (ok, _, err) = common::stock("rbd", &["rm", &parent.to_string()]);
    assert!(!ok, "stock rbd rm of a parent with children succeeded");
    assert!(err.contains("Read-only file system") || err.contains("EROFS") || err.contains("disabled"), "{err}");

    let mut model = pdata.clone();
    for phase in 0..6 {
        let writes = random_writes(&mut rng, size, 40);
        if phase % 2 == 0 {
            let img = Image::open_blocking(&cluster, &child, OpenOptions::default().with_write(true)).unwrap();
            for (off, d) in &writes {
                rt.block_on(img.write_at(*off, d)).unwrap();
            }
            img.close().unwrap();
        } else {
            stock_phase(&child, &writes);
        }
        for (off, d) in &writes {
            model[*off as usize..*off as usize + d.len()].copy_from_slice(d);
        }
        let img = Image::open_blocking(&cluster, &child, OpenOptions::default()).unwrap();
        assert!(rt.block_on(img.read_at(0, size)).unwrap() == model, "phase {phase}: rbd-ext read differs from the model");
        assert!(stock_export(&child) == model, "phase {phase}: stock export differs from the model");
        common::stock_ok("rbd", &["object-map", "check", &child.to_string()]);
    }
    assert!(stock_export(&parent) == pdata, "the parent changed");

    // Stock flatten of a standalone child works; rbd-ext then drops it from the children.
    assert_eq!(children(&cluster, &parent).unwrap().children, vec![child.clone()]);
    common::stock_ok("rbd", &["flatten", &child.to_string()]);
    assert!(stock_export(&child) == model);
    let kids = children(&cluster, &parent).unwrap();
    assert!(kids.children.is_empty(), "{kids:?}");
    // The stale entry, and the flattened child's clone map, which nothing maintains now.
    assert_eq!(kids.reconciled.len(), 2, "{kids:?}");
    assert!(kids.reconciled[0].contains("stale child entry") && kids.reconciled[1].contains("orphan clone map"), "{kids:?}");
    // With the last child gone the parent is an ordinary image again: stock rm works.
    common::stock_ok("rbd", &["rm", &child.to_string()]);
    common::stock_ok("rbd", &["rm", &parent.to_string()]);
}

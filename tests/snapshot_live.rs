//! Stock snapshots survive rbd-ext writes: every data-object write carries the image's
//! snapshot context, so `rbd export img@snap` still shows the bytes of snapshot time, for
//! plain images and standalone children (copy-up), through the CLI and the library
//! (discard, write-zeroes, a snapshot taken while the image is open for writing).

mod common;

use std::path::PathBuf;
use std::process::Command;

use rbd_ext::blocking::{clone_standalone, remove};
use rbd_ext::{CloneOptions, Image, ImageSpec, OpenOptions};

const OS: usize = 64 * 1024;
const SIZE: usize = 5 * OS;

fn pattern(seed: u8) -> Vec<u8> {
    (0..SIZE).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) | 1).collect()
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(common::unique(name))
}

/// `rbd import` of `data` with 64K objects (layering only: stock `rbd snap create` then
/// needs no lock handover while rbd-ext holds its writer lock).
fn import(data: &[u8]) -> ImageSpec {
    let name = common::unique("snapc");
    let path = tmp("snapc-in");
    std::fs::write(&path, data).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", "64K", "--image-feature", "layering", path.to_str().unwrap(), &format!("rbd/{name}")]);
    std::fs::remove_file(&path).ok();
    ImageSpec::new("rbd", &name)
}

fn rbd_ext(args: &[&str]) -> Vec<u8> {
    let out = Command::new(common::rbd_ext_bin()).args(args).output().unwrap();
    assert!(out.status.success(), "rbd-ext {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// `rbd export` (stock) of `what` (`pool/image[@snap]`).
fn stock_export(what: &str) -> Vec<u8> {
    let path = tmp("snapc-out");
    common::stock_ok("rbd", &["export", what, path.to_str().unwrap()]);
    let d = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    d
}

fn ext_export(spec: &str) -> Vec<u8> {
    let path = tmp("snapc-ext-out");
    rbd_ext(&["export", spec, path.to_str().unwrap()]);
    let d = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    d
}

fn cli_write(spec: &str, off: usize, data: &[u8], model: &mut [u8]) {
    let path = tmp("snapc-patch");
    std::fs::write(&path, data).unwrap();
    rbd_ext(&["write", spec, "--offset", &off.to_string(), "--input", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    model[off..off + data.len()].copy_from_slice(data);
}

/// Assert without printing megabytes: the first differing offset.
fn same(what: &str, got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: differs first at byte {i} (object {}): got {:#04x}, want {:#04x}", i / OS, got[i], want[i]);
    }
}

fn purge_and_remove(specs: &[&ImageSpec]) {
    let cluster = common::cluster();
    for s in specs {
        common::stock_ok("rbd", &["snap", "purge", &s.to_string()]);
        remove(&cluster, s).unwrap();
    }
}

/// The CLI's write over a stock snapshot: a partial object, a whole object, an object
/// across the snapshot's copy-up (child), and a second snapshot on top. Every object is written
/// after the first snapshot (see [`open_handle_keeps`] why).
/// A snapshot as a user takes it: stock `rbd snap create` of a plain image; `rbd-ext snap
/// create` of a standalone child (stock's is refused there: it would read zeros where the
/// child inherits data, see tests/snapshot_child_live.rs).
fn snap(what: &str, child: bool) {
    if child {
        rbd_ext(&["snap", "create", what]);
    } else {
        common::stock_ok("rbd", &["snap", "create", what]);
    }
}

fn cli_writes_keep(spec: &ImageSpec, head: Vec<u8>, child: bool) {
    let s = spec.to_string();
    let mut model = head;
    snap(&format!("{s}@one"), child);
    let at_one = model.clone();
    cli_write(&s, 1000, &[0xA1; 5000], &mut model); // partial, object 0
    cli_write(&s, 2 * OS, &vec![0xB2; OS], &mut model); // whole object 2
    cli_write(&s, 4 * OS - 10, &[0xC3; 30], &mut model); // across objects 3 and 4
    snap(&format!("{s}@two"), child);
    let at_two = model.clone();
    cli_write(&s, 1500, &[0xD4; 100], &mut model); // object 0 again, after the second snapshot
    cli_write(&s, OS + 7, &[0xE5; 9], &mut model); // object 1, first touched now
    same(&format!("stock export {s}@one"), &stock_export(&format!("{s}@one")), &at_one);
    same(&format!("stock export {s}@two"), &stock_export(&format!("{s}@two")), &at_two);
    same(&format!("stock export {s}"), &stock_export(&s), &model);
    same(&format!("rbd-ext export {s}"), &ext_export(&s), &model);
    let part = rbd_ext(&["read", &s, "--offset", "1000", "--length", "1000"]);
    same(&format!("rbd-ext read {s}"), &part, &model[1000..2000]);
}

#[test]
fn cli_writes_keep_stock_snapshots_of_plain_images() {
    let data = pattern(3);
    let img = import(&data);
    cli_writes_keep(&img, data, false);
    purge_and_remove(&[&img]);
}

#[test]
fn cli_writes_keep_stock_snapshots_of_standalone_children() {
    let cluster = common::cluster();
    let data = pattern(5);
    let parent = import(&data);
    let child = ImageSpec::new("rbd", &common::unique("snapc-child"));
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    // One object local before the snapshot, the rest inherited (copied up by the writes).
    let mut head = data.clone();
    cli_write(&child.to_string(), 3 * OS + 5, &[0x77; 20], &mut head);
    cli_writes_keep(&child, head, true);
    // The parent is untouched.
    same("parent", &stock_export(&parent.to_string()), &data);
    purge_and_remove(&[&child]);
    remove(&cluster, &parent).unwrap();
}

/// Library writes on a handle open across a stock `rbd snap create` (announced on the
/// header watch): discard, write-zeroes and writes after it keep the snapshot.
/// Every object is changed after the snapshot, so each one is copied up before it (as
/// librbd does); tests/snapshot_child_live.rs checks objects the snapshot reads from the
/// parent.
fn open_handle_keeps(spec: &ImageSpec, head: Vec<u8>, child: bool) {
    let cluster = common::cluster();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open_blocking(&cluster, spec, OpenOptions::default().with_write(true)).unwrap();
    let mut model = head;
    rt.block_on(img.write_at(100, &[0x11; 200])).unwrap();
    model[100..300].fill(0x11);
    snap(&format!("{spec}@open"), child);
    let at_snap = model.clone();
    rt.block_on(img.write_at(50, &[0x22; 100])).unwrap();
    model[50..150].fill(0x22);
    rt.block_on(img.discard(OS as u64, OS as u64)).unwrap(); // whole object 1
    model[OS..2 * OS].fill(0);
    rt.block_on(img.write_zeroes(2 * OS as u64 + 10, 1000)).unwrap(); // partial object 2
    model[2 * OS + 10..2 * OS + 1010].fill(0);
    rt.block_on(img.discard(3 * OS as u64 + 4, 40)).unwrap(); // partial object 3
    model[3 * OS + 4..3 * OS + 44].fill(0);
    rt.block_on(img.write_at(4 * OS as u64 + 1, &[0x33; 3])).unwrap(); // object 4
    model[4 * OS + 1..4 * OS + 4].fill(0x33);
    img.close().unwrap();
    same(&format!("stock export {spec}@open"), &stock_export(&format!("{spec}@open")), &at_snap);
    same(&format!("stock export {spec}"), &stock_export(&spec.to_string()), &model);
    same(&format!("rbd-ext export {spec}"), &ext_export(&spec.to_string()), &model);
}

#[test]
fn snapshot_taken_while_open_is_kept_plain_image() {
    let data = pattern(9);
    let img = import(&data);
    open_handle_keeps(&img, data, false);
    purge_and_remove(&[&img]);
}

#[test]
fn snapshot_taken_while_open_is_kept_standalone_child() {
    let cluster = common::cluster();
    let data = pattern(11);
    let parent = import(&data);
    let child = ImageSpec::new("rbd", &common::unique("snapc-child"));
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    open_handle_keeps(&child, data.clone(), true);
    same("parent", &stock_export(&parent.to_string()), &data);
    purge_and_remove(&[&child]);
    remove(&cluster, &parent).unwrap();
}

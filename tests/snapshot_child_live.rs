//! Snapshots of standalone children read the right bytes, or are refused: every path of the
//! README's snapshot matrix, each read back with stock tools and compared with a model (the
//! parent's bytes with the child's writes up to snapshot time).
//!
//! - stock `rbd snap create` on an idle child: refused (the snapshot guard, EDQUOT);
//! - `rbd-ext snap create`: stock export, diff, export-diff read it right;
//! - Nova's direct snapshot (protect, stock clone into another pool, stock flatten), then
//!   removal in that order lifts the parent's protection;
//! - stock `snap create` sent to an rbd-ext lock owner (an image open for writing): made;
//! - `rbd-ext snap create` while a librbd client (python3-rbd) owns the lock: made through it;
//! - snapshots stock tools made before the guard: `doctor` finds them, `--fix` repairs them;
//! - flatten (snapshots stay right; the parent stays protected while one reads past HEAD's
//!   overlap) and rm (refused while snapshots exist).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rbd_ext::blocking::{children, clone_standalone, protection, remove, snap_create};
use rbd_ext::rados::Cluster;
use rbd_ext::{CloneOptions, Image, ImageSpec, OpenOptions};

const OS: usize = 1 << 20;
const OBJECTS: usize = 8;
const SIZE: usize = OS * OBJECTS;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(common::unique(name))
}

/// A parent full of data (1 MiB objects) and a standalone child of it.
fn parent_and_child(prefix: &str, seed: u64) -> (Arc<Cluster>, ImageSpec, ImageSpec, Vec<u8>) {
    let cluster = common::cluster();
    let data = common::random(SIZE, seed);
    let parent = ImageSpec::new("rbd", &common::unique(&format!("{prefix}-p")));
    let path = tmp("snapchild-in");
    std::fs::write(&path, &data).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", "1M", path.to_str().unwrap(), &parent.to_string()]);
    std::fs::remove_file(&path).ok();
    let child = ImageSpec::new("rbd", &common::unique(&format!("{prefix}-c")));
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    (cluster, parent, child, data)
}

fn at(spec: &ImageSpec, snap: &str) -> String {
    format!("{spec}@{snap}")
}

/// `rbd-ext write` of `bytes` at `off`, applied to `model` too.
fn write(spec: &ImageSpec, off: usize, bytes: &[u8], model: &mut [u8]) {
    let path = tmp("snapchild-patch");
    std::fs::write(&path, bytes).unwrap();
    let (code, _, err) = common::rbd_ext(&["write", &spec.to_string(), "--offset", &off.to_string(), "--input", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    assert_eq!(code, 0, "rbd-ext write {spec}: {err}");
    model[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Stock `rbd export` of `what`.
fn stock_export(what: &str) -> Vec<u8> {
    let path = tmp("snapchild-out");
    common::stock_ok("rbd", &["export", what, path.to_str().unwrap()]);
    let d = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    d
}

/// Compares without printing megabytes: the first differing offset, and whether the
/// snapshot read zeros there (the failure this file guards against).
#[track_caller]
fn same(what: &str, got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        let zeros = got[i..].iter().take(4096).all(|b| *b == 0);
        panic!(
            "{what}: differs first at byte {i} (object {}): got {:#04x}, want {:#04x}{}",
            i / OS,
            got[i],
            want[i],
            if zeros { " (reads zeros there)" } else { "" }
        );
    }
}

fn rbd_ext_ok(args: &[&str]) -> String {
    let (code, out, err) = common::rbd_ext(args);
    assert_eq!(code, 0, "rbd-ext {args:?}: {err}");
    out
}

/// Stock `rbd snap create` refused by the guard, with stock's own message.
#[track_caller]
fn stock_snap_refused(what: &str) {
    let (ok, _, err) = common::stock("rbd", &["snap", "create", what]);
    assert!(!ok, "stock rbd snap create {what} succeeded: the snapshot guard must refuse it");
    assert!(err.contains("(122) Disk quota exceeded"), "rbd snap create {what}: {err}");
}

fn user_snapshots(spec: &ImageSpec) -> Vec<String> {
    let out = common::stock_ok("rbd", &["snap", "ls", "--format", "json", &spec.to_string()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

fn cleanup(cluster: &Arc<Cluster>, child: &ImageSpec, parent: &ImageSpec) {
    for s in user_snapshots(child) {
        let _ = common::stock("rbd", &["snap", "unprotect", &at(child, &s)]);
    }
    common::stock_ok("rbd", &["snap", "purge", &child.to_string()]);
    let ids = [image_id(child), image_id(parent)];
    remove(cluster, child).unwrap();
    remove(cluster, parent).unwrap();
    // Nothing of either is left (the guard's object map copy included); clones of purged
    // snapshots go with the OSD's asynchronous snap trimming, so wait for it (30 s at most).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = common::stock_ok("rados", &["-p", &child.pool, "ls"]);
        let ours: Vec<&str> = left.lines().filter(|o| ids.iter().any(|id| o.contains(id.as_str()))).collect();
        if ours.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "objects left after rm: {ours:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn image_id(spec: &ImageSpec) -> String {
    let info = common::stock_ok("rbd", &["info", "--format", "json", &spec.to_string()]);
    serde_json::from_str::<serde_json::Value>(&info).unwrap()["id"].as_str().unwrap().to_string()
}

#[test]
fn stock_snap_create_on_an_idle_child_is_refused_and_info_still_works() {
    let (cluster, parent, child, _) = parent_and_child("snapguard", 1);
    stock_snap_refused(&at(&child, "stock"));
    assert!(user_snapshots(&child).is_empty(), "nothing was made");
    let info = common::stock_ok("rbd", &["info", &child.to_string()]);
    assert!(info.contains("snapshot_limit: 1") && info.contains(&format!("parent: {parent}@")), "{info}");
    // The guard is no user snapshot: stock `snap ls` does not show it, `--all` does.
    let all = common::stock_ok("rbd", &["snap", "ls", "--all", &child.to_string()]);
    assert!(all.contains("rbd-ext-snapshot-guard"), "{all}");
    cleanup(&cluster, &child, &parent);
}

#[test]
fn rbd_ext_snapshots_read_the_parent_through_stock_export_diff_and_export_diff() {
    let (cluster, parent, child, data) = parent_and_child("snapread", 2);
    let mut model = data.clone();
    write(&child, OS + 100, &[0xA1; 5000], &mut model); // object 1 local, the rest inherited
    rbd_ext_ok(&["snap", "create", &at(&child, "s1")]);
    let at_s1 = model.clone();
    same("stock export @s1", &stock_export(&at(&child, "s1")), &at_s1);
    // Writes after the snapshot change HEAD only: a copy-up (object 3), a local object again.
    write(&child, 3 * OS + 7, &[0xB2; 300], &mut model);
    write(&child, OS + 50, &[0xC3; 100], &mut model);
    rbd_ext_ok(&["snap", "create", &at(&child, "s2")]);
    let at_s2 = model.clone();
    write(&child, 5 * OS, &[0xD4; 10], &mut model);
    same("stock export @s1 after later writes", &stock_export(&at(&child, "s1")), &at_s1);
    same("stock export @s2", &stock_export(&at(&child, "s2")), &at_s2);
    same("stock export HEAD", &stock_export(&child.to_string()), &model);
    // `rbd diff` from s1 to s2 names exactly the objects written in between.
    let diff = common::stock_ok("rbd", &["diff", "--from-snap", "s1", "--format", "json", &at(&child, "s2")]);
    let v: serde_json::Value = serde_json::from_str(&diff).unwrap();
    let objs: std::collections::BTreeSet<u64> = v.as_array().unwrap().iter().map(|e| e["offset"].as_u64().unwrap() / OS as u64).collect();
    assert_eq!(objs, [1, 3].into(), "{diff}");
    // export-diff s1..s2 applied to a plain copy of s1 gives s2.
    let copy = ImageSpec::new("rbd", &common::unique("snapread-copy"));
    let (full, inc) = (tmp("snapread-full"), tmp("snapread-inc"));
    common::stock_ok("rbd", &["export", &at(&child, "s1"), full.to_str().unwrap()]);
    common::stock_ok("rbd", &["import", "--object-size", "1M", full.to_str().unwrap(), &copy.to_string()]);
    common::stock_ok("rbd", &["snap", "create", &at(&copy, "s1")]);
    common::stock_ok("rbd", &["export-diff", "--from-snap", "s1", &at(&child, "s2"), inc.to_str().unwrap()]);
    common::stock_ok("rbd", &["import-diff", inc.to_str().unwrap(), &copy.to_string()]);
    same("export-diff s1..s2 replayed on a copy of s1", &stock_export(&copy.to_string()), &at_s2);
    for f in [&full, &inc] {
        std::fs::remove_file(f).ok();
    }
    common::stock_ok("rbd", &["snap", "purge", &copy.to_string()]);
    remove(&cluster, &copy).unwrap();
    // python3-rbd opens the snapshot by name and reads the parent's bytes too.
    let py = format!(
        "import os,rados,rbd\nc=rados.Rados(conffile=os.environ['CEPH_CONF']);c.connect()\nio=c.open_ioctx('rbd')\n\
         i=rbd.Image(io,'{}',snapshot='s1',read_only=True)\nd=i.read(0,{SIZE})\ni.close()\nos.write(1,d)\n",
        child.image
    );
    let out = Command::new("/usr/bin/python3").args(["-c", &py]).output().unwrap();
    assert!(out.status.success(), "python3-rbd: {}", String::from_utf8_lossy(&out.stderr));
    same("python3-rbd Image(snapshot='s1')", &out.stdout, &at_s1);
    cleanup(&cluster, &child, &parent);
}

#[test]
fn nova_direct_snapshot_then_removal_lifts_the_protection() {
    let (cluster, parent, child, data) = parent_and_child("snapnova", 3);
    let mut model = data.clone();
    write(&child, 6 * OS + 1, &[0x5A; 4096], &mut model);
    // Nova's RBD direct snapshot: snapshot, protect, clone into Glance's pool, flatten.
    let snap = at(&child, "nova");
    rbd_ext_ok(&["snap", "create", &snap]);
    common::stock_ok("rbd", &["snap", "protect", &snap]);
    let glance = ImageSpec::new("rbd2", &common::unique("snapnova-glance"));
    common::stock_ok("rbd", &["clone", &snap, &glance.to_string()]);
    common::stock_ok("rbd", &["flatten", &glance.to_string()]);
    write(&child, 0, &[0x11; 64], &mut model.clone()); // the VM goes on writing
    same("the Glance image", &stock_export(&glance.to_string()), &model);
    // Remove everything in Nova's order; the parent is protected until its child is gone.
    common::stock_ok("rbd", &["rm", &glance.to_string()]);
    common::stock_ok("rbd", &["snap", "unprotect", &snap]);
    common::stock_ok("rbd", &["snap", "rm", &snap]);
    assert!(protection(&cluster, &parent).unwrap().is_some(), "the child still reads the parent");
    common::stock_ok("rbd", &["rm", &child.to_string()]);
    assert!(children(&cluster, &parent).unwrap().children.is_empty());
    assert!(protection(&cluster, &parent).unwrap().is_none(), "the last reader is gone: protection lifted");
    let id = common::stock_ok("rbd", &["info", "--format", "json", &parent.to_string()]);
    let id = serde_json::from_str::<serde_json::Value>(&id).unwrap()["id"].as_str().unwrap().to_string();
    remove(&cluster, &parent).unwrap();
    let left = common::stock_ok("rados", &["-p", "rbd", "ls"]);
    assert!(!left.contains(&id), "objects of the parent left: {left}");
}

#[test]
fn stock_snap_create_is_carried_out_by_an_rbd_ext_lock_owner() {
    let (cluster, parent, child, data) = parent_and_child("snapowner", 4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open_blocking(&cluster, &child, OpenOptions::default().with_write(true)).unwrap();
    let mut model = data.clone();
    rt.block_on(img.write_at(2 * OS as u64 + 3, &[0x77; 1000])).unwrap();
    model[2 * OS + 3..2 * OS + 1003].fill(0x77);
    // librbd sends the request to the lock owner, this handle, which makes it right.
    common::stock_ok("rbd", &["snap", "create", &at(&child, "fromstock")]);
    let at_snap = model.clone();
    // Writes after it (the handle's snapshot context was renewed before it answered).
    rt.block_on(img.write_at(2 * OS as u64, &[0x88; 10])).unwrap();
    rt.block_on(img.write_at(4 * OS as u64 + 9, &[0x99; 10])).unwrap();
    model[2 * OS..2 * OS + 10].fill(0x88);
    model[4 * OS + 9..4 * OS + 19].fill(0x99);
    same("stock export @fromstock", &stock_export(&at(&child, "fromstock")), &at_snap);
    img.close().unwrap();
    same("stock export HEAD", &stock_export(&child.to_string()), &model);
    cleanup(&cluster, &child, &parent);
}

#[test]
fn rbd_ext_snap_create_goes_through_a_librbd_lock_owner() {
    let (cluster, parent, child, data) = parent_and_child("snaplibrbd", 5);
    let mut model = data.clone();
    // python3-rbd holds the exclusive lock (it wrote), as QEMU would.
    let py = format!(
        "import os,sys,rados,rbd\nc=rados.Rados(conffile=os.environ['CEPH_CONF']);c.connect()\nio=c.open_ioctx('rbd')\n\
         i=rbd.Image(io,'{}')\ni.write(b'\\x42'*700,{})\nprint('locked',flush=True)\nsys.stdin.read()\ni.close()\n",
        child.image,
        3 * OS + 11
    );
    let mut owner = Command::new("/usr/bin/python3").args(["-c", &py]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(owner.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    model[3 * OS + 11..3 * OS + 711].fill(0x42);
    stock_snap_refused(&at(&child, "stock")); // forwarded to the librbd owner: refused there too
    snap_create(&cluster, &ImageSpec { snap: Some("viaowner".into()), ..child.clone() }).unwrap();
    owner.stdin.take().unwrap().write_all(b"").unwrap();
    assert!(owner.wait().unwrap().success());
    same("stock export @viaowner", &stock_export(&at(&child, "viaowner")), &model);
    stock_snap_refused(&at(&child, "again")); // the guard is armed again
    cleanup(&cluster, &child, &parent);
}

#[test]
fn doctor_finds_and_repairs_snapshots_stock_made_without_the_guard() {
    let cluster = common::cluster();
    let pool = common::TempPool::new("snapdoctor");
    let data = common::random(SIZE, 6);
    let parent = ImageSpec::new(&pool.0, "parent");
    let path = tmp("snapdoctor-in");
    std::fs::write(&path, &data).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", "1M", path.to_str().unwrap(), &parent.to_string()]);
    std::fs::remove_file(&path).ok();
    let child = ImageSpec::new(&pool.0, "child");
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    let mut model = data.clone();
    write(&child, 7 * OS + 2, &[0xE7; 2000], &mut model);
    // As before this release: no guard, stock makes a snapshot that reads zeros.
    common::stock_ok("rbd", &["snap", "limit", "clear", &child.to_string()]);
    common::stock_ok("rbd", &["snap", "create", &at(&child, "old")]);
    let broken = stock_export(&at(&child, "old"));
    assert!(broken[..OS].iter().all(|b| *b == 0), "precondition: stock's snapshot reads zeros where the child inherits data");
    let report = rbd_ext::doctor::run(&cluster, &rbd_ext::doctor::Options::new(&pool.0)).unwrap();
    let kinds: Vec<_> = report.findings.iter().map(|f| (f.kind, f.subject.clone(), f.fixed)).collect();
    assert!(kinds.contains(&("snapshot-reads-zeros", at(&child, "old"), false)), "{kinds:?}");
    assert!(kinds.contains(&("snapshot-guard-missing", child.to_string(), false)), "{kinds:?}");
    let report = rbd_ext::doctor::run(&cluster, &rbd_ext::doctor::Options::new(&pool.0).with_fix(true)).unwrap();
    assert!(report.findings.iter().filter(|f| f.kind.starts_with("snapshot")).all(|f| f.fixed), "{:?}", report.findings);
    same("stock export @old after doctor --fix", &stock_export(&at(&child, "old")), &model);
    stock_snap_refused(&at(&child, "new"));
    let report = rbd_ext::doctor::run(&cluster, &rbd_ext::doctor::Options::new(&pool.0)).unwrap();
    assert!(report.findings.iter().all(|f| !f.kind.starts_with("snapshot")), "{:?}", report.findings);
    cleanup(&cluster, &child, &parent);
}

#[test]
fn flatten_keeps_snapshots_right_and_rm_refuses_them() {
    let (cluster, parent, child, data) = parent_and_child("snapflat", 7);
    let mut model = data.clone();
    write(&child, 10, &[0x3C; 10], &mut model);
    rbd_ext_ok(&["snap", "create", &at(&child, "s1")]);
    // rm refuses (as stock) and leaves the child whole: HEAD still reads its parent.
    let (code, _, err) = common::rbd_ext(&["rm", &child.to_string()]);
    assert_ne!(code, 0);
    assert!(err.contains("has 1 snapshot(s) (s1)") && err.contains("ENOTEMPTY"), "{err}");
    same("HEAD after the refused rm", &stock_export(&child.to_string()), &model);
    // Flatten: the snapshot keeps its bytes, the parent's protection goes.
    rbd_ext_ok(&["flatten", &child.to_string()]);
    same("stock export @s1 after flatten", &stock_export(&at(&child, "s1")), &model);
    assert!(protection(&cluster, &parent).unwrap().is_none(), "nothing reads the parent any more");
    let info = common::stock_ok("rbd", &["info", &at(&child, "s1")]);
    assert!(!info.contains("parent:"), "{info}");
    common::stock_ok("rbd", &["snap", "create", &at(&child, "plain")]); // a plain image: stock snapshots are right
    cleanup(&cluster, &child, &parent);
}

#[test]
fn a_snapshot_from_before_a_shrink_keeps_the_parent_protected_after_flatten() {
    let (cluster, parent, child, data) = parent_and_child("snapshrink", 8);
    rbd_ext_ok(&["snap", "create", &at(&child, "full")]);
    rbd_ext_ok(&["resize", &child.to_string(), "--size", "2M", "--allow-shrink"]);
    rbd_ext_ok(&["flatten", &child.to_string()]);
    // HEAD is flat, but the snapshot still reads objects 2..8 from the parent.
    same("stock export @full after shrink and flatten", &stock_export(&at(&child, "full")), &data);
    assert!(protection(&cluster, &parent).unwrap().is_some(), "a snapshot still reads the parent");
    assert_eq!(children(&cluster, &parent).unwrap().children, vec![child.clone()]);
    // Its last reader gone (stock snap rm), the next rbd-ext call on the parent lifts it.
    common::stock_ok("rbd", &["snap", "rm", &at(&child, "full")]);
    assert!(children(&cluster, &parent).unwrap().children.is_empty());
    assert!(protection(&cluster, &parent).unwrap().is_none());
    cleanup(&cluster, &child, &parent);
}

#[test]
fn doctor_drops_the_guard_of_a_child_stock_flattened() {
    let cluster = common::cluster();
    let pool = common::TempPool::new("snapstale");
    let parent = ImageSpec::new(&pool.0, "parent");
    let path = tmp("snapstale-in");
    std::fs::write(&path, common::random(SIZE, 9)).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", "1M", path.to_str().unwrap(), &parent.to_string()]);
    std::fs::remove_file(&path).ok();
    let child = ImageSpec::new(&pool.0, "child");
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    common::stock_ok("rbd", &["flatten", &child.to_string()]);
    stock_snap_refused(&at(&child, "x")); // refused, although it would be right now
    let report = rbd_ext::doctor::run(&cluster, &rbd_ext::doctor::Options::new(&pool.0).with_fix(true)).unwrap();
    assert!(report.findings.iter().any(|f| f.kind == "snapshot-guard-stale" && f.subject == child.to_string() && f.fixed), "{:?}", report.findings);
    common::stock_ok("rbd", &["snap", "create", &at(&child, "x")]);
    let all = common::stock_ok("rbd", &["snap", "ls", "--all", &child.to_string()]);
    assert!(!all.contains("rbd-ext-snapshot-guard"), "{all}");
    common::stock_ok("rbd", &["snap", "purge", &child.to_string()]);
    remove(&cluster, &child).unwrap();
    remove(&cluster, &parent).unwrap();
}

/// librbd's `SnapCreatePayload` (NotifyMessage v7: op 8, name, user namespace, ClientId
/// gid/handle, request id, flags), as `rbd snap create` sends it to the lock owner.
fn snap_create_notification(name: &str, request_id: u64) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&8u32.to_le_bytes());
    body.extend_from_slice(&(name.len() as u32).to_le_bytes());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&[1, 1, 4, 0, 0, 0, 0, 0, 0, 0]);
    for v in [4242u64, 7, request_id, 0] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    [&[7u8, 1][..], &(body.len() as u32).to_le_bytes(), &body].concat()
}

#[test]
fn a_retried_owner_request_runs_once() {
    let (cluster, parent, child, _) = parent_and_child("snapretry", 10);
    let img = Image::open_blocking(&cluster, &child, OpenOptions::default().with_write(true)).unwrap();
    let hoid = format!("rbd_header.{}", image_id(&child));
    let md = cluster.ioctx("rbd", "").unwrap();
    // The same request id twice (as librbd retries after a timeout), with another name the
    // second time, so that running it again would show.
    md.notify(&hoid, &snap_create_notification("once", 99), 5000).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !user_snapshots(&child).contains(&"once".to_string()) {
        assert!(std::time::Instant::now() < deadline, "the owner made no snapshot");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    md.notify(&hoid, &snap_create_notification("twice", 99), 5000).unwrap();
    md.notify(&hoid, &snap_create_notification("other", 100), 5000).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !user_snapshots(&child).contains(&"other".to_string()) {
        assert!(std::time::Instant::now() < deadline, "a new request id was not carried out");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(user_snapshots(&child), ["once", "other"], "request 99 ran twice");
    img.close().unwrap();
    cleanup(&cluster, &child, &parent);
}

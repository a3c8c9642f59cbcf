//! Parent protection against stock `rbd` (issue 16; README, "Parent protection"): on a
//! parent with a standalone child, what stock tools may and may not do, per mode, and the
//! exact restore of the parent's own header when the last child leaves.
//!
//! Needs a cluster and the CLI: `eval "$(qa/cluster up)"`, `cargo build -p
//! rbd-ext-cli` (or `RBD_EXT_BIN`), then `cargo test --features live,test-methods --test
//! protection_live`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use rbd_ext::rados::IoCtx;
use rbd_ext_cls::codec::Codec;
use rbd_ext_cls::types::features::{OP_FEATURE_RBD_EXT_PROTECTED, PARENT_PROTECTION_FEATURES, RBD_FEATURE_MIGRATING};
use rbd_ext_cls::types::header;
use rbd_ext_cls::types::{migration_header, ParentProtection, ProtectionMode};

const MIB: usize = 1 << 20;

/// The header keys protection may touch, as stored (absent keys left out).
fn protection_keys(io: &IoCtx, hdr: &str) -> BTreeMap<&'static str, Vec<u8>> {
    [header::FEATURES, header::OP_FEATURES, header::MIGRATION, header::RBD_EXT_PROTECT]
        .into_iter()
        .filter_map(|k| io.omap_get(hdr, k).unwrap().map(|v| (k, v)))
        .collect()
}

fn features(io: &IoCtx, hdr: &str) -> (u64, u64) {
    let get = |k| io.omap_get(hdr, k).unwrap().map_or(0, |v| u64::read_bytes(&v).unwrap());
    (get(header::FEATURES), get(header::OP_FEATURES))
}

fn header_of(io: &IoCtx, name: &str) -> String {
    let b = io.read(&format!("rbd_id.{name}"), 0, 256).unwrap();
    format!("rbd_header.{}", String::from_utf8_lossy(&b[4..]))
}

fn rbd_ext(args: &[&str]) -> String {
    let out = Command::new(common::rbd_ext_bin()).args(args).output().unwrap();
    assert!(out.status.success(), "rbd-ext {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tmp(name: &str, data: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(common::unique(name));
    std::fs::write(&p, data).unwrap();
    p
}

/// `rbd export` of `spec` (stock), as bytes.
fn export(spec: &str) -> Vec<u8> {
    let p = std::env::temp_dir().join(common::unique("prot-export"));
    common::stock_ok("rbd", &["export", "--no-progress", spec, p.to_str().unwrap()]);
    let d = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).ok();
    d
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[(i % 4) as usize] ^ seed).collect()
}

/// Asserts `got == want` without printing megabytes: the first differing offset.
#[track_caller]
fn same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(x, y)| x != y);
        panic!("{what}: {} bytes vs {} expected, first difference at {at:?}", got.len(), want.len());
    }
}

/// A parent `rbd/<name>` of 8 MiB with two snapshots as Glance leaves them: `gold`
/// (protected, data A) and `gold2` (not protected, data B: A with its first MiB rewritten
/// by stock `rbd bench`). Returns (name, A, B).
fn glance_like_parent(prefix: &str) -> (String, Vec<u8>, Vec<u8>) {
    let name = common::unique(prefix);
    let p = format!("rbd/{name}");
    let a = pattern(1, 8 * MIB);
    let f = tmp("prot-a", &a);
    common::stock_ok("rbd", &["import", "--no-progress", f.to_str().unwrap(), &p]);
    std::fs::remove_file(&f).ok();
    common::stock_ok("rbd", &["snap", "create", &format!("{p}@gold")]);
    common::stock_ok("rbd", &["snap", "protect", &format!("{p}@gold")]);
    common::stock_ok("rbd", &["bench", "--io-type", "write", "--io-pattern", "seq", "--io-size", "1M", "--io-total", "1M", &p]);
    let b = export(&p);
    assert_ne!(a[..MIB], b[..MIB], "the bench wrote something else");
    same(&b[MIB..], &a[MIB..], "the rest of the parent");
    common::stock_ok("rbd", &["snap", "create", &format!("{p}@gold2")]);
    (name, a, b)
}

fn rm_parent(p: &str) {
    common::stock_ok("rbd", &["snap", "unprotect", &format!("{p}@gold")]);
    common::stock_ok("rbd", &["snap", "purge", "--no-progress", p]);
    common::stock_ok("rbd", &["rm", "--no-progress", p]);
}

#[test]
fn default_protection_lets_stock_clone_and_refuses_what_changes_the_parent() {
    let io = common::rbd_pool();
    let (name, a, b) = glance_like_parent("prot-default");
    let p = format!("rbd/{name}");
    let hdr = header_of(&io, &name);
    let before = protection_keys(&io, &hdr);

    let child = format!("rbd/{}", common::unique("prot-default-child"));
    rbd_ext(&["clone-standalone", &p, &child]);
    assert_eq!(rbd_ext(&["protection", &p]).trim(), "clones");
    let (f, op) = features(&io, &hdr);
    assert_ne!(f & RBD_FEATURE_MIGRATING, 0);
    assert_eq!(op & OP_FEATURE_RBD_EXT_PROTECTED, 0, "no op feature unknown to stock");
    assert_eq!(io.omap_get(&hdr, header::MIGRATION).unwrap(), Some(migration_header()));

    // What keeps working: reads, info, export, stock clones of both formats.
    common::stock_ok("rbd", &["info", &p]);
    same(&export(&p), &b, "export of the protected parent");
    let k1 = format!("rbd/{}", common::unique("prot-stock-v1"));
    let k2 = format!("rbd/{}", common::unique("prot-stock-v2"));
    common::stock_ok("rbd", &["clone", "--rbd-default-clone-format", "1", &format!("{p}@gold"), &k1]);
    common::stock_ok("rbd", &["clone", "--rbd-default-clone-format", "2", &format!("{p}@gold2"), &k2]);

    // What is refused: everything that changes or removes the HEAD the child reads.
    common::stock_rbd_refused_erofs(&["rm", "--no-progress", &p]);
    common::stock_rbd_refused_erofs(&["trash", "mv", &p]);
    common::stock_rbd_refused_erofs(&["bench", "--io-type", "write", "--io-total", "64K", "--io-size", "4K", &p]);
    common::stock_rbd_refused_erofs(&["resize", "--no-progress", "--allow-shrink", "--size", "4M", &p]);
    common::stock_rbd_refused_erofs(&["snap", "rollback", "--no-progress", &format!("{p}@gold")]);
    // Not possible with stock librbd while writes are refused (README): new snapshots and
    // protecting existing ones go through the same read-write gate.
    common::stock_rbd_refused_erofs(&["snap", "create", &format!("{p}@new")]);
    common::stock_rbd_refused_erofs(&["snap", "protect", &format!("{p}@gold2")]);

    // Everyone reads the right bytes; the stock clones and the standalone child are
    // writable and their writes stay theirs.
    same(&export(&k1), &a, "stock format-1 clone of @gold");
    same(&export(&k2), &b, "stock format-2 clone of @gold2");
    same(&export(&child), &b, "standalone child, read by stock librbd");
    let x = tmp("prot-x", &pattern(9, 4096));
    common::stock_ok("rbd", &["bench", "--io-type", "write", "--io-total", "64K", "--io-size", "4K", &k2]);
    rbd_ext(&["write", &child, "--offset", "0", "--input", x.to_str().unwrap()]);
    std::fs::remove_file(&x).ok();
    same(&export(&p), &b, "the parent is unchanged");
    same(&export(&format!("{p}@gold")), &a, "the parent's snapshot @gold");

    // Stock clones go first (they added clone-parent to the parent's op features), then
    // the last standalone child: the parent's own keys come back byte for byte.
    common::stock_ok("rbd", &["rm", "--no-progress", &k1]);
    common::stock_ok("rbd", &["rm", "--no-progress", &k2]);
    assert_eq!(rbd_ext(&["protection", &p]).trim(), "clones");
    rbd_ext(&["rm", &child]);
    assert_eq!(rbd_ext(&["protection", &p]).trim(), "none");
    assert_eq!(protection_keys(&io, &hdr), before, "features, op_features, migration, record restored exactly");
    common::stock_ok("rbd", &["bench", "--io-type", "write", "--io-total", "64K", "--io-size", "4K", &p]);
    rm_parent(&p);
}

#[test]
fn strict_on_request_and_a_legacy_parent_moves_to_the_default() {
    let io = common::rbd_pool();
    let (name, _, b) = glance_like_parent("prot-strict");
    let p = format!("rbd/{name}");
    let hdr = header_of(&io, &name);
    let before = protection_keys(&io, &hdr);
    let c1 = format!("rbd/{}", common::unique("prot-strict-c1"));
    rbd_ext(&["clone-standalone", &p, &c1]);

    // Strict, asked for: stock clones are refused as well.
    assert_eq!(rbd_ext(&["protection", &p, "--set", "strict"]).trim(), "strict");
    let (f, op) = features(&io, &hdr);
    assert_eq!(f & (PARENT_PROTECTION_FEATURES | RBD_FEATURE_MIGRATING), PARENT_PROTECTION_FEATURES);
    assert_ne!(op & OP_FEATURE_RBD_EXT_PROTECTED, 0);
    assert_eq!(io.omap_get(&hdr, header::MIGRATION).unwrap(), None);
    common::stock_rbd_refused_erofs(&["clone", "--rbd-default-clone-format", "2", &format!("{p}@gold2"), &format!("rbd/{}", common::unique("prot-no"))]);
    common::stock_rbd_refused_erofs(&["rm", "--no-progress", &p]);
    same(&export(&p), &b, "export of the strict parent");

    // A parent protected by an older rbd-ext: strict bits and a v1 record. The next
    // clone-standalone (any attach or detach) moves it to the default, atomically.
    let rec = io.omap_get(&hdr, header::RBD_EXT_PROTECT).unwrap().unwrap();
    let r = ParentProtection::read_bytes(&rec).unwrap();
    let mut v1 = vec![1, 1, 16, 0, 0, 0];
    v1.extend_from_slice(&r.prior_features.to_le_bytes());
    v1.extend_from_slice(&r.prior_op_features.to_le_bytes());
    io.omap_set(&hdr, &[(header::RBD_EXT_PROTECT, &v1)]).unwrap();
    assert_eq!(rbd_ext(&["protection", &p]).trim(), "strict");
    let c2 = format!("rbd/{}", common::unique("prot-strict-c2"));
    rbd_ext(&["clone-standalone", &p, &c2]);
    assert_eq!(rbd_ext(&["protection", &p]).trim(), "clones");
    let rec = ParentProtection::read_bytes(&io.omap_get(&hdr, header::RBD_EXT_PROTECT).unwrap().unwrap()).unwrap();
    assert_eq!(rec.mode, Some(ProtectionMode::Clones));
    let k = format!("rbd/{}", common::unique("prot-after-migration"));
    common::stock_ok("rbd", &["clone", "--rbd-default-clone-format", "2", &format!("{p}@gold2"), &k]);
    same(&export(&k), &b, "stock clone after the migration");
    common::stock_rbd_refused_erofs(&["trash", "mv", &p]);
    common::stock_ok("rbd", &["rm", "--no-progress", &k]);

    rbd_ext(&["rm", &c1]);
    rbd_ext(&["rm", &c2]);
    assert_eq!(protection_keys(&io, &hdr), before, "restored exactly after the last child");
    rm_parent(&p);
}

/// `rbd-ext rm` of a stock clone (v1 and v2) detaches it from its parent snapshot as stock
/// `rbd rm` does: afterwards the snapshot unprotects, purges and the parent is removed. (It
/// once detached the parent record itself, so librbd never saw a parent to leave: the v1
/// parent kept its `rbd_children` entry, the v2 snapshot its child.)
#[test]
fn rbd_ext_rm_of_a_stock_clone_leaves_the_parent_snapshot_free() {
    let (name, a, b) = glance_like_parent("prot-rm-stock");
    let p = format!("rbd/{name}");
    let v1 = format!("rbd/{}", common::unique("prot-rm-v1"));
    let v2 = format!("rbd/{}", common::unique("prot-rm-v2"));
    common::stock_ok("rbd", &["clone", "--rbd-default-clone-format", "1", &format!("{p}@gold"), &v1]);
    common::stock_ok("rbd", &["clone", "--rbd-default-clone-format", "2", &format!("{p}@gold2"), &v2]);
    same(&export(&v1), &a, "the v1 clone");
    same(&export(&v2), &b, "the v2 clone");
    rbd_ext(&["rm", &v1]);
    rbd_ext(&["rm", &v2]);
    let (_, children, _) = common::stock("rbd", &["children", "--all", &format!("{p}@gold")]);
    assert!(children.trim().is_empty(), "{p}@gold still lists {children}");
    let (_, children, _) = common::stock("rbd", &["children", "--all", &format!("{p}@gold2")]);
    assert!(children.trim().is_empty(), "{p}@gold2 still lists {children}");
    rm_parent(&p);
}

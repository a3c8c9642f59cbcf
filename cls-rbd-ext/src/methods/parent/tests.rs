//! Tests of the parent methods against a realistic header in [`MemContext`]. Every return
//! code in the doc blocks has its own test; failures go through [`run`], which checks that
//! nothing was written.

use super::*;
use crate::codec::{encode_envelope, SnapId};
use crate::methods::header::test_support::{get, image_header, put, run, standalone, DEFAULT_FEATURES};
use crate::methods::{find, RD, WR};
use crate::types::features::*;
use crate::MemContext;

const GIB: u64 = 1 << 30;
/// A made-up key with the shape `ceph auth get-key` prints.
const FAKE_KEY: &str = "AQBvaBFZAAAAABAAzKQ8aRRfsZ5ScnD1wqI0mQ==";

fn remote(overlap: u64) -> ParentRecord {
    ParentRecord {
        parent_type: ParentType::RemoteStandalone,
        pool_namespace: "ns1".into(),
        remote_cluster_name: "ceph-a".into(),
        remote_mon_hosts: vec!["10.0.0.1:6789".into(), "[v2:10.0.0.2:3300,v1:10.0.0.2:6789]".into()],
        remote_client_name: "client.rbd-ext".into(),
        remote_secret_ref: "config://rbd-ext/remote/ceph-a".into(),
        ..standalone(overlap)
    }
}

fn snapshot_parent(overlap: u64) -> ParentRecord {
    ParentRecord { parent_type: ParentType::Snapshot, snap_id: SnapId(4), ..standalone(overlap) }
}

fn attach_input(p: &ParentRecord, reattach: bool) -> Vec<u8> {
    ParentAttachOp { record: p.clone(), reattach }.get_encoding()
}

fn attach(c: &mut MemContext, p: &ParentRecord, reattach: bool) -> Result<(), Errno> {
    run(c, parent_attach, &attach_input(p, reattach)).map(|_| ())
}

fn stored(c: &MemContext) -> Option<ParentRecord> {
    get(c, header::PARENT)
}

fn stored_bytes(c: &MemContext) -> Vec<u8> {
    c.omap()[header::PARENT].clone()
}

fn logged(c: &MemContext, level: i32, needle: &str) -> bool {
    c.logs.iter().any(|(l, m)| *l == level && m.contains(needle))
}

#[test]
fn registered_with_least_flags() {
    assert_eq!(find("parent_attach").unwrap().flags, RD | WR);
    assert_eq!(find("parent_get").unwrap().flags, RD);
    assert_eq!(find("parent_detach").unwrap().flags, RD | WR);
    assert_eq!(find("parent_overlap_set").unwrap().flags, RD | WR);
}

// ---- parent_attach -----------------------------------------------------------------

#[test]
fn attach_standalone_stores_v4_compat_2_and_clamps_to_size() {
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(2 * GIB), false).unwrap();
    let b = stored_bytes(&c);
    assert_eq!(&b[..2], &[4, 2], "v4, compat 2: stock librbd still reads it");
    assert_eq!(stored(&c), Some(standalone(GIB)));
    assert!(logged(&c, 20, "parent_attach pool=2"));
    // Everything else of the header is untouched.
    let mut expect = image_header(GIB).omap();
    expect.insert(header::PARENT.into(), b);
    assert_eq!(c.omap(), expect);
}

#[test]
fn attach_overlap_below_size_is_kept() {
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(4096), false).unwrap();
    assert_eq!(stored(&c).unwrap().head_overlap, Some(4096));
}

#[test]
fn attach_remote_and_s3_use_compat_3() {
    let mut c = image_header(GIB);
    attach(&mut c, &remote(GIB), false).unwrap();
    assert_eq!(&stored_bytes(&c)[..2], &[4, 3]);
    assert_eq!(stored(&c), Some(remote(GIB)));

    let s3 = ParentRecord { head_overlap: Some(GIB), parent_type: ParentType::S3Source, ..Default::default() };
    let mut c = image_header(GIB);
    attach(&mut c, &s3, false).unwrap();
    assert_eq!(&stored_bytes(&c)[..2], &[4, 3]);
    assert_eq!(stored(&c), Some(s3));
}

#[test]
fn attach_snapshot_type() {
    let mut c = image_header(GIB);
    attach(&mut c, &snapshot_parent(GIB), false).unwrap();
    assert_eq!(&stored_bytes(&c)[..2], &[4, 2]);
    assert_eq!(stored(&c), Some(snapshot_parent(GIB)));
}

#[test]
fn attach_einval_on_malformed_input() {
    let mut c = image_header(GIB);
    let good = attach_input(&standalone(GIB), true);
    for bad in [&b""[..], &good[..10], &good[..good.len() - 2], &[&good[..], &[0]].concat()[..]] {
        assert_eq!(run(&mut c, parent_attach, bad), Err(Errno::EINVAL));
    }
    // Compat above what we understand.
    let mut v5 = standalone(GIB).get_encoding();
    v5[0] = 5;
    v5[1] = 5;
    assert_eq!(run(&mut c, parent_attach, &v5), Err(Errno::EINVAL));
    assert!(logged(&c, 1, "parent_attach: invalid input"));
}

#[test]
fn attach_enoent_without_header_object() {
    let mut c = MemContext::missing();
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::ENOENT));
    // Before the record is even looked at.
    assert_eq!(attach(&mut c, &standalone(0), false), Err(Errno::ENOENT));
    assert!(c.object.is_none());
}

#[test]
fn attach_enoexec_without_layering() {
    let mut c = image_header(GIB);
    put(&mut c, header::FEATURES, Some((DEFAULT_FEATURES & !RBD_FEATURE_LAYERING).get_encoding()));
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::ENOEXEC));
    put(&mut c, header::FEATURES, None);
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::ENOEXEC));
    // Not an RBD header at all: an object with no keys.
    let mut c = MemContext::existing();
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::ENOEXEC));
}

#[test]
fn attach_eio_on_corrupt_features() {
    let mut c = image_header(GIB);
    put(&mut c, header::FEATURES, Some(vec![1, 2, 3]));
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::EIO));
    assert!(logged(&c, 0, "`features`"));
}

#[test]
fn attach_einval_on_inconsistent_records() {
    let mut c = image_header(GIB);
    for p in [
        ParentRecord { parent_type: ParentType::Unknown(7), ..standalone(GIB) },
        ParentRecord { head_overlap: None, ..standalone(GIB) },
        ParentRecord { head_overlap: Some(0), ..standalone(GIB) },
        ParentRecord { snap_id: SnapId(3), ..standalone(GIB) },
        ParentRecord { image_id: "../x".into(), ..standalone(GIB) },
        ParentRecord { pool_id: -1, ..standalone(GIB) },
        ParentRecord { parent_type: ParentType::Snapshot, ..standalone(GIB) },
        ParentRecord { remote_cluster_name: "b".into(), ..standalone(GIB) },
        ParentRecord { remote_mon_hosts: vec![], ..remote(GIB) },
        ParentRecord { remote_client_name: "admin".into(), ..remote(GIB) },
        ParentRecord { parent_type: ParentType::S3Source, ..standalone(GIB) },
    ] {
        assert_eq!(attach(&mut c, &p, false), Err(Errno::EINVAL), "{p:?}");
    }
    assert!(logged(&c, 1, "parent_attach: invalid parent record: unknown parent type 7"));
    assert_eq!(stored(&c), None);
}

#[test]
fn attach_refuses_inline_secret_and_never_logs_it() {
    let mut c = image_header(GIB);
    for s in [FAKE_KEY.to_string(), format!("config://{FAKE_KEY}")] {
        let p = ParentRecord { remote_secret_ref: s, ..remote(GIB) };
        assert_eq!(attach(&mut c, &p, false), Err(Errno::EINVAL));
    }
    assert!(logged(&c, 1, "config-key"));
    assert!(logged(&c, 1, "config://<name>"));
    assert!(c.logs.iter().all(|(_, m)| !m.contains(FAKE_KEY)), "{:?}", c.logs);
    // A valid reference is not logged either (the entry log leaves it out).
    attach(&mut c, &remote(GIB), false).unwrap();
    assert!(c.logs.iter().all(|(_, m)| !m.contains("config://rbd-ext")));
}

#[test]
fn attach_eexist_when_attached() {
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(GIB), false).unwrap();
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::EEXIST));
    assert_eq!(attach(&mut c, &remote(GIB), false), Err(Errno::EEXIST));
    assert!(logged(&c, 20, "already attached"));
    // With the flag the record is replaced.
    attach(&mut c, &remote(4096), true).unwrap();
    assert_eq!(stored(&c), Some(remote(4096)));
}

#[test]
fn attach_same_parent_over_detached_head_needs_no_flag() {
    let mut c = image_header(GIB);
    put(&mut c, header::PARENT, Some(snapshot_parent(GIB).get_encoding()));
    put(&mut c, "snapshot_0000000000000004", Some(vec![]));
    run(&mut c, parent_detach, b"").unwrap();
    assert_eq!(stored(&c).unwrap().head_overlap, None);
    // A different parent is still refused...
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::EEXIST));
    // ...the same one is accepted, as upstream.
    attach(&mut c, &snapshot_parent(100), false).unwrap();
    assert_eq!(stored(&c), Some(snapshot_parent(100)));
}

#[test]
fn attach_eio_on_corrupt_stored_parent() {
    let mut c = image_header(GIB);
    put(&mut c, header::PARENT, Some(vec![4, 2, 100, 0, 0, 0, 1]));
    assert_eq!(attach(&mut c, &standalone(GIB), true), Err(Errno::EIO));
    assert!(logged(&c, 0, "error decoding header key `parent`"));
}

#[test]
fn attach_enoent_without_size_and_eio_on_corrupt_size() {
    let mut c = image_header(GIB);
    put(&mut c, header::SIZE, None);
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::ENOENT));
    put(&mut c, header::SIZE, Some(vec![0; 7]));
    assert_eq!(attach(&mut c, &standalone(GIB), false), Err(Errno::EIO));
}

#[test]
fn attach_through_osd_semantics() {
    // The same through MemContext::call (the OSD's all-or-nothing path).
    let mut c = image_header(GIB);
    c.call(parent_attach, &attach_input(&standalone(GIB), false)).unwrap();
    assert_eq!(c.call(parent_attach, &attach_input(&remote(GIB), false)), Err(Errno::EEXIST));
    assert_eq!(stored(&c), Some(standalone(GIB)));
}

// ---- parent_get --------------------------------------------------------------------

#[test]
fn get_enoent_without_header_object() {
    let mut c = MemContext::missing();
    assert_eq!(run(&mut c, parent_get, b""), Err(Errno::ENOENT));
}

#[test]
fn get_without_parent_is_default() {
    let mut c = image_header(GIB);
    let out = run(&mut c, parent_get, b"").unwrap();
    let p = ParentRecord::read_bytes(&out).unwrap();
    assert_eq!(p, ParentRecord::default());
    assert_eq!((p.pool_id, p.snap_id, p.head_overlap), (-1, SnapId::NOSNAP, None));
    assert!(logged(&c, 20, "parent_get"));
}

#[test]
fn get_returns_every_v4_field_and_ignores_input() {
    let mut c = image_header(GIB);
    attach(&mut c, &remote(GIB), false).unwrap();
    let out = run(&mut c, parent_get, b"trailing bytes are ignored").unwrap();
    assert_eq!(ParentRecord::read_bytes(&out), Ok(remote(GIB)));
    assert_eq!(out, stored_bytes(&c));
}

#[test]
fn get_reads_stock_v2_records() {
    let mut c = image_header(GIB);
    let mut v2 = Vec::new();
    encode_envelope(&mut v2, 2, 2, |o| {
        2i64.encode(o);
        String::new().encode(o);
        "abc123".to_string().encode(o);
        SnapId(4).encode(o);
        Some(GIB).encode(o);
    });
    put(&mut c, header::PARENT, Some(v2));
    let out = run(&mut c, parent_get, b"").unwrap();
    assert_eq!(ParentRecord::read_bytes(&out), Ok(snapshot_parent(GIB)));
}

#[test]
fn get_eio_on_corrupt_record() {
    let mut c = image_header(GIB);
    put(&mut c, header::PARENT, Some(vec![9, 9, 0, 0, 0, 0]));
    assert_eq!(run(&mut c, parent_get, b""), Err(Errno::EIO));
    assert!(logged(&c, 0, "`parent`"));
}

// ---- parent_detach -----------------------------------------------------------------

#[test]
fn detach_removes_a_head_parent() {
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(GIB), false).unwrap();
    // A snapshot that reads no parent does not keep it.
    let snap = crate::types::SnapshotRecord { id: SnapId(1), version: 8, ..Default::default() };
    put(&mut c, "snapshot_0000000000000001", Some(snap.get_encoding()));
    let mut expect = c.omap();
    expect.remove(header::PARENT);
    run(&mut c, parent_detach, b"").unwrap();
    assert_eq!(c.omap(), expect);
    assert!(logged(&c, 20, "parent_detach"));
}

#[test]
fn detach_snapshot_parent_without_snapshots_removes_it() {
    let mut c = image_header(GIB);
    attach(&mut c, &snapshot_parent(GIB), false).unwrap();
    run(&mut c, parent_detach, b"").unwrap();
    assert_eq!(stored(&c), None);
}

#[test]
fn detach_snapshot_parent_with_snapshots_keeps_it_for_them() {
    let mut c = image_header(GIB);
    attach(&mut c, &snapshot_parent(GIB), false).unwrap();
    put(&mut c, "snapshot_0000000000000002", Some(vec![1]));
    run(&mut c, parent_detach, b"").unwrap();
    assert_eq!(stored(&c), Some(snapshot_parent(GIB)).map(|p| ParentRecord { head_overlap: None, ..p }));
    // HEAD is detached now: a second detach finds nothing.
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::ENOENT));
}

#[test]
fn detach_clears_clone_child_as_upstream() {
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(GIB), false).unwrap();
    put(&mut c, header::FEATURES, Some((DEFAULT_FEATURES | RBD_FEATURE_OPERATIONS).get_encoding()));
    put(&mut c, header::OP_FEATURES, Some(RBD_OPERATION_FEATURE_CLONE_CHILD.get_encoding()));
    run(&mut c, parent_detach, b"").unwrap();
    assert_eq!(get::<u64>(&c, header::FEATURES), Some(DEFAULT_FEATURES));
    assert!(!c.omap().contains_key(header::OP_FEATURES));

    // Other op features (here: the image is itself a protected parent) keep OPERATIONS.
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(GIB), false).unwrap();
    let f = DEFAULT_FEATURES | PARENT_PROTECTION_FEATURES;
    put(&mut c, header::FEATURES, Some(f.get_encoding()));
    put(&mut c, header::OP_FEATURES, Some((RBD_OPERATION_FEATURE_CLONE_CHILD | OP_FEATURE_RBD_EXT_PROTECTED).get_encoding()));
    run(&mut c, parent_detach, b"").unwrap();
    assert_eq!(get::<u64>(&c, header::FEATURES), Some(f));
    assert_eq!(get::<u64>(&c, header::OP_FEATURES), Some(OP_FEATURE_RBD_EXT_PROTECTED));
}

#[test]
fn detach_enoent_without_header_object() {
    let mut c = MemContext::missing();
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::ENOENT));
}

#[test]
fn detach_enoexec_without_layering() {
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(GIB), false).unwrap();
    put(&mut c, header::FEATURES, Some(0u64.get_encoding()));
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::ENOEXEC));
    put(&mut c, header::FEATURES, None);
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::ENOEXEC));
}

#[test]
fn detach_enoent_without_parent_or_with_detached_head() {
    let mut c = image_header(GIB);
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::ENOENT));
    put(&mut c, header::PARENT, Some(ParentRecord { head_overlap: None, ..snapshot_parent(0) }.get_encoding()));
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::ENOENT));
    assert!(logged(&c, 20, "parent_detach: no parent"));
    assert!(logged(&c, 20, "parent_detach: parent already detached"));
}

#[test]
fn detach_eio_on_corrupt_state() {
    let mut c = image_header(GIB);
    put(&mut c, header::PARENT, Some(vec![4, 2, 1, 0, 0, 0, 0]));
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::EIO));
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(GIB), false).unwrap();
    put(&mut c, header::OP_FEATURES, Some(vec![2]));
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::EIO));
    put(&mut c, header::FEATURES, Some(vec![2]));
    assert_eq!(run(&mut c, parent_detach, b""), Err(Errno::EIO));
}

// ---- parent_overlap_set ------------------------------------------------------------

fn overlap_input(n: u64) -> Vec<u8> {
    ParentOverlapSetOp { overlap: n }.get_encoding()
}

#[test]
fn overlap_shrinks_keeping_every_other_field() {
    let mut c = image_header(GIB);
    attach(&mut c, &remote(GIB), false).unwrap();
    run(&mut c, parent_overlap_set, &overlap_input(4096)).unwrap();
    assert_eq!(stored(&c), Some(remote(4096)));
    assert_eq!(&stored_bytes(&c)[..2], &[4, 3]);
    // Same value: nothing to write. Zero: kept as Some(0), as upstream's shrink.
    run(&mut c, parent_overlap_set, &overlap_input(4096)).unwrap();
    run(&mut c, parent_overlap_set, &overlap_input(0)).unwrap();
    assert_eq!(stored(&c).unwrap().head_overlap, Some(0));
    assert!(logged(&c, 20, "parent_overlap_set overlap=0"));
}

#[test]
fn overlap_einval_on_malformed_input_or_growth() {
    let mut c = image_header(GIB);
    attach(&mut c, &standalone(4096), false).unwrap();
    assert_eq!(run(&mut c, parent_overlap_set, b""), Err(Errno::EINVAL));
    assert_eq!(run(&mut c, parent_overlap_set, &[0; 9]), Err(Errno::EINVAL));
    assert_eq!(run(&mut c, parent_overlap_set, &overlap_input(4097)), Err(Errno::EINVAL));
    assert!(logged(&c, 1, "overlap can only shrink"));
}

#[test]
fn overlap_enoent_cases() {
    let mut c = MemContext::missing();
    assert_eq!(run(&mut c, parent_overlap_set, &overlap_input(1)), Err(Errno::ENOENT));
    let mut c = image_header(GIB);
    assert_eq!(run(&mut c, parent_overlap_set, &overlap_input(1)), Err(Errno::ENOENT));
    put(&mut c, header::PARENT, Some(ParentRecord { head_overlap: None, ..standalone(1) }.get_encoding()));
    assert_eq!(run(&mut c, parent_overlap_set, &overlap_input(0)), Err(Errno::ENOENT));
}

#[test]
fn overlap_eio_on_corrupt_record() {
    let mut c = image_header(GIB);
    put(&mut c, header::PARENT, Some(vec![0xff]));
    assert_eq!(run(&mut c, parent_overlap_set, &overlap_input(1)), Err(Errno::EIO));
}

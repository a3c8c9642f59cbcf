//! Tests of the snapshot methods against a realistic header in [`MemContext`]; failures go
//! through [`run`], which checks that nothing was written.

use super::*;
use crate::codec::SnapId;
use crate::methods::header::test_support::{get, image_header, put, run, standalone};
use crate::methods::parent::{parent_attach, parent_detach};
use crate::ops::ParentAttachOp;
use crate::types::SnapshotNamespace;
use crate::MemContext;

const MIB: u64 = 1 << 20;

const GUARD: u64 = header::SNAP_GUARD_ID;

fn guard(c: &mut MemContext, mode: SnapGuardMode, id: Option<u64>) -> Result<(), Errno> {
    let op = SnapGuardOp { mode, guard_id: id.map(SnapId).unwrap_or(SnapId::NOSNAP) };
    run(c, snap_guard, &op.get_encoding()).map(|_| ())
}

/// A 64 MiB child of a 64 MiB parent as `clone-standalone` makes it: `parent_attach`, then
/// the guard (snapshot id 0).
fn child() -> MemContext {
    let mut c = image_header(64 * MIB);
    let input = ParentAttachOp { record: standalone(64 * MIB), reattach: false }.get_encoding();
    run(&mut c, parent_attach, &input).unwrap();
    guard(&mut c, SnapGuardMode::Arm, Some(GUARD)).unwrap();
    c
}

/// Stock `snapshot_add`'s limit check, as cls_rbd.cc does it: per existing record,
/// `++total_read >= snap_limit` fails with -EDQUOT.
fn stock_would_refuse(c: &MemContext) -> bool {
    let limit = get::<u64>(c, header::SNAP_LIMIT).unwrap_or(u64::MAX);
    let n = c.omap().keys().filter(|k| k.starts_with(header::SNAPSHOT_PREFIX)).count() as u64;
    n >= 1 && n >= limit
}

fn add(c: &mut MemContext, name: &str, id: u64) -> Result<(), Errno> {
    run(c, snapshot_add, &SnapshotAddOp { name: name.into(), id: SnapId(id), namespace: SnapshotNamespace::user() }.get_encoding()).map(|_| ())
}

fn snap(c: &MemContext, id: u64) -> SnapshotRecord {
    get(c, &snapshot_key(SnapId(id))).expect("record")
}

#[test]
fn a_snapshot_of_a_standalone_child_reads_the_parent() {
    let mut c = child();
    add(&mut c, "s1", 4).unwrap();
    let r = snap(&c, 4);
    assert_eq!((r.name.as_str(), r.image_size, r.parent_overlap), ("s1", 64 * MIB, Some(64 * MIB)));
    assert_eq!(get::<u64>(&c, header::SNAP_SEQ), Some(4));
    // A plain image's snapshot reads no parent.
    let mut plain = image_header(MIB);
    add(&mut plain, "s1", 1).unwrap();
    assert_eq!(snap(&plain, 1).parent_overlap, None);
}

#[test]
fn stock_checks_in_stock_order() {
    let mut c = child();
    add(&mut c, "s1", 4).unwrap();
    assert_eq!(add(&mut c, "s1", 5), Err(Errno::EEXIST), "same name");
    assert_eq!(add(&mut c, "s2", 4), Err(Errno::EEXIST), "same id");
    assert_eq!(add(&mut c, "s2", 3), Err(Errno::ESTALE), "below snap_seq");
    assert_eq!(add(&mut c, "s2", u64::MAX - 1), Err(Errno::EINVAL), "above CEPH_MAXSNAP");
    assert_eq!(run(&mut c, snapshot_add, b"\x01"), Err(Errno::EINVAL));
    let mut unknown = Vec::new();
    crate::codec::encode_envelope(&mut unknown, 1, 1, |o| 9u32.encode(o));
    let ns = SnapshotNamespace::read_bytes(&unknown).unwrap();
    let input = SnapshotAddOp { name: "x".into(), id: SnapId(9), namespace: ns }.get_encoding();
    assert_eq!(run(&mut c, snapshot_add, &input), Err(Errno::EINVAL), "unknown namespace");
    assert_eq!(run(&mut MemContext::default(), snapshot_add, &SnapshotAddOp::default().get_encoding()), Err(Errno::ENOENT));
}

#[test]
fn the_guard_fails_stock_closed_and_keeps_the_users_limit() {
    let mut c = child();
    let g = snap(&c, GUARD);
    assert_eq!((g.image_size, g.parent_overlap, g.namespace.kind), (0, None, snap_namespace::TRASH), "reads nothing");
    assert_eq!(get::<u64>(&c, header::SNAP_SEQ), Some(0), "id 0 leaves the sequence alone");
    assert_eq!(get::<u64>(&c, header::OP_FEATURES), None, "no op feature: the child keeps its features");
    assert!(stock_would_refuse(&c));
    // rbd-ext's own snapshots do not count the guard; a user's limit of 2 allows 2.
    put(&mut c, header::RBD_EXT_SNAP_LIMIT, Some(2u64.get_encoding()));
    add(&mut c, "s1", 4).unwrap();
    add(&mut c, "s2", 5).unwrap();
    assert_eq!(add(&mut c, "s3", 6), Err(Errno::EDQUOT), "a limit of 2 allows 2, as stock's");
    // Lifting gives the limit back to stock (the guard snapshot stays), arming takes it again.
    guard(&mut c, SnapGuardMode::Lift, None).unwrap();
    assert_eq!(get::<u64>(&c, header::SNAP_LIMIT), Some(2));
    assert!(!c.omap().contains_key(header::RBD_EXT_SNAP_LIMIT));
    assert!(c.omap().contains_key(&snapshot_key(SnapId(GUARD))));
    guard(&mut c, SnapGuardMode::Arm, None).unwrap();
    guard(&mut c, SnapGuardMode::Arm, Some(GUARD)).unwrap();
    assert_eq!(get::<u64>(&c, header::SNAP_LIMIT), Some(1));
    assert_eq!(get::<u64>(&c, header::RBD_EXT_SNAP_LIMIT), Some(2));
    assert_eq!(guard(&mut c, SnapGuardMode::Arm, Some(9)), Err(Errno::EEXIST), "one guard per image");
    // A limit the user sets with stock tools meanwhile is theirs.
    put(&mut c, header::SNAP_LIMIT, Some(7u64.get_encoding()));
    guard(&mut c, SnapGuardMode::Arm, None).unwrap();
    assert_eq!(get::<u64>(&c, header::RBD_EXT_SNAP_LIMIT), Some(7));
    // Remove: the record and its key go; the user's limit comes back.
    guard(&mut c, SnapGuardMode::Remove, None).unwrap();
    assert!(!c.omap().contains_key(&snapshot_key(SnapId(GUARD))));
    assert!(!c.omap().contains_key(header::RBD_EXT_SNAP_GUARD));
    assert_eq!(get::<u64>(&c, header::SNAP_LIMIT), Some(7));
}

#[test]
fn a_guard_needs_a_fresh_id() {
    let mut c = image_header(MIB);
    put(&mut c, header::SNAP_SEQ, Some(5u64.get_encoding()));
    assert_eq!(guard(&mut c, SnapGuardMode::Arm, Some(4)), Err(Errno::ESTALE));
    guard(&mut c, SnapGuardMode::Arm, Some(0)).unwrap();
    assert_eq!(get::<u64>(&c, header::SNAP_SEQ), Some(5), "id 0 fits below any sequence");
    let mut c = image_header(MIB);
    guard(&mut c, SnapGuardMode::Arm, Some(5)).unwrap();
    assert_eq!(get::<u64>(&c, header::SNAP_SEQ), Some(5));
    let mut c = image_header(MIB);
    add(&mut c, "s", 3).unwrap();
    assert_eq!(guard(&mut c, SnapGuardMode::Arm, Some(3)), Err(Errno::EEXIST));
    assert_eq!(run(&mut c, snap_guard, &[3, 0, 0, 0, 0, 0, 0, 0, 0]), Err(Errno::EINVAL), "unknown mode");
}

#[test]
fn repair_sets_a_missing_overlap_once() {
    let mut c = child();
    add(&mut c, "s1", 4).unwrap();
    // What stock's snapshot_add leaves: no overlap.
    let mut r = snap(&c, 4);
    r.parent_overlap = None;
    put(&mut c, &snapshot_key(SnapId(4)), Some(r.get_encoding()));
    let set = |c: &mut MemContext, id: u64, o: u64| run(c, snapshot_parent_set, &SnapshotParentSetOp { id: SnapId(id), overlap: o }.get_encoding());
    set(&mut c, 4, 128 * MIB).unwrap();
    assert_eq!(snap(&c, 4).parent_overlap, Some(64 * MIB), "clamped to the snapshot's size");
    set(&mut c, 4, 64 * MIB).unwrap();
    assert_eq!(set(&mut c, 4, MIB), Err(Errno::EEXIST));
    assert_eq!(set(&mut c, 5, MIB), Err(Errno::ENOENT));
    assert_eq!(set(&mut c, 4, 0), Err(Errno::EINVAL));
    let mut plain = image_header(MIB);
    add(&mut plain, "s1", 1).unwrap();
    assert_eq!(set(&mut plain, 1, MIB), Err(Errno::ENOENT), "no parent to read");
}

#[test]
fn detach_keeps_the_parent_only_for_snapshots_past_head() {
    // Snapshot within HEAD's overlap: flatten copied it all up, the record is stripped.
    let mut c = child();
    add(&mut c, "s1", 4).unwrap();
    run(&mut c, parent_detach, b"").unwrap();
    assert_eq!(snap(&c, 4).parent_overlap, None);
    assert!(!c.omap().contains_key(header::PARENT));
    assert!(!c.omap().contains_key(&snapshot_key(SnapId(GUARD))), "a plain image's stock snapshots are right");
    assert!(!stock_would_refuse(&c));
    assert_eq!(get::<u64>(&c, header::SNAP_LIMIT), None);
    // Snapshot taken before HEAD shrank: it still reads the parent past HEAD's overlap.
    let mut c = child();
    add(&mut c, "s1", 4).unwrap();
    let mut p = standalone(16 * MIB);
    p.head_overlap = Some(16 * MIB);
    put(&mut c, header::PARENT, Some(p.get_encoding()));
    run(&mut c, parent_detach, b"").unwrap();
    assert_eq!(snap(&c, 4).parent_overlap, Some(64 * MIB));
    assert_eq!(get::<ParentRecord>(&c, header::PARENT).map(|p| p.head_overlap), Some(None));
    assert!(stock_would_refuse(&c), "still a reader of the parent: the guard stays");
}

//! Tests of the HEAD-children methods and of parent protection against a realistic header
//! in [`MemContext`]. Every return code in the doc blocks has its own test; failures go
//! through [`run`], which checks that nothing was written.

use std::collections::BTreeMap;

use super::*;
use crate::codec::SnapId;
use crate::methods::header::test_support::{get, image_header, put, run, DEFAULT_FEATURES};
use crate::methods::{find, RD, WR};
use crate::ops::ProtectionSetOp;
use crate::types::features::*;
use crate::types::{migration_header, ChildImageSpec, ChildImageSpecs, ParentProtection, ProtectionMode};
use crate::MemContext;

const HEAD_KEY: &str = "snap_children_000000000000head";

fn child(pool: i64, id: &str) -> ChildImageSpec {
    ChildImageSpec { pool_id: pool, pool_namespace: String::new(), image_id: id.into() }
}

fn op(spec: &ChildImageSpec) -> Vec<u8> {
    ChildOp { snap_id: SnapId::NOSNAP, spec: spec.clone(), cluster: String::new() }.get_encoding()
}

fn list_op(max: u32, start_after: Option<&ChildImageSpec>) -> Vec<u8> {
    ChildrenListOp { snap_id: SnapId::NOSNAP, max, start_after: start_after.cloned() }.get_encoding()
}

fn attach(c: &mut MemContext, s: &ChildImageSpec) -> Result<(), Errno> {
    run(c, child_attach, &op(s)).map(|_| ())
}

fn detach(c: &mut MemContext, s: &ChildImageSpec) -> Result<(), Errno> {
    run(c, child_detach, &op(s)).map(|_| ())
}

fn list(c: &mut MemContext, max: u32, start_after: Option<&ChildImageSpec>) -> Result<ChildImageSpecs, Errno> {
    run(c, children_list, &list_op(max, start_after)).map(|o| ChildImageSpecs::read_bytes(&o).unwrap())
}

fn children(c: &MemContext) -> Option<ChildImageSpecs> {
    get(c, HEAD_KEY)
}

fn features(c: &MemContext) -> (u64, Option<u64>) {
    (get(c, header::FEATURES).unwrap(), get(c, header::OP_FEATURES))
}

fn logged(c: &MemContext, level: i32, needle: &str) -> bool {
    c.logs.iter().any(|(l, m)| *l == level && m.contains(needle))
}

/// A parent header with the given features / op_features (None: no key).
fn parent_header(features: u64, op_features: Option<u64>) -> MemContext {
    let mut c = image_header(1 << 30);
    put(&mut c, header::FEATURES, Some(features.get_encoding()));
    put(&mut c, header::OP_FEATURES, op_features.map(|o| o.get_encoding()));
    c
}

/// The `(features, op_features)` and `migration` key `mode` gives a parent that had
/// `(features, op_features)`.
fn protected(mode: ProtectionMode, features: u64, op_features: Option<u64>) -> ((u64, Option<u64>), Option<Vec<u8>>) {
    let (f, op) = mode.apply(features, op_features.unwrap_or(0));
    let mig = (mode == ProtectionMode::Clones).then(migration_header);
    ((f, (op != 0).then_some(op)), mig)
}

fn set_mode(c: &mut MemContext, mode: ProtectionMode) -> Result<(), Errno> {
    run(c, crate::methods::protection::protection_set, &ProtectionSetOp { mode }.get_encoding()).map(|_| ())
}

/// Attaches two children (switching to `mode` after the first), checks the protection,
/// detaches both, and checks the header came back byte for byte.
fn protect_round_trip_in(mode: ProtectionMode, features: u64, op_features: Option<u64>) -> MemContext {
    let mut c = parent_header(features, op_features);
    let original: BTreeMap<_, _> = c.omap();
    let prior_op = op_features.unwrap_or(0);

    attach(&mut c, &child(3, "a")).unwrap();
    set_mode(&mut c, mode).unwrap();
    let (bits, mig) = protected(mode, features, op_features);
    assert_eq!(features_of(&c), bits);
    assert_eq!(c.omap().get(header::MIGRATION).cloned(), mig);
    assert_eq!(
        get::<ParentProtection>(&c, header::RBD_EXT_PROTECT),
        Some(ParentProtection { prior_features: features & ANY_PROTECTION_FEATURES, prior_op_features: prior_op, mode: Some(mode) })
    );
    let after_first = c.omap();

    // The second child changes nothing but the set.
    attach(&mut c, &child(3, "b")).unwrap();
    let mut expect = after_first.clone();
    expect.insert(HEAD_KEY.into(), [child(3, "a"), child(3, "b")].into_iter().collect::<ChildImageSpecs>().get_encoding());
    assert_eq!(c.omap(), expect);

    detach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(
        c.omap(),
        after_first
            .into_iter()
            .map(|(k, v)| if k == HEAD_KEY { (k, [child(3, "b")].into_iter().collect::<ChildImageSpecs>().get_encoding(),) } else { (k, v) })
            .collect::<BTreeMap<_, _>>()
    );
    detach(&mut c, &child(3, "b")).unwrap();
    assert_eq!(c.omap(), original, "the last detach restores the header exactly");
    c
}

fn protect_round_trip(features: u64, op_features: Option<u64>) -> MemContext {
    for mode in [ProtectionMode::Strict, ProtectionMode::Clones] {
        protect_round_trip_in(mode, features, op_features);
    }
    protect_round_trip_in(ProtectionMode::DEFAULT, features, op_features)
}

fn features_of(c: &MemContext) -> (u64, Option<u64>) {
    features(c)
}

#[test]
fn registered_with_least_flags() {
    assert_eq!(find("child_attach").unwrap().flags, RD | WR);
    assert_eq!(find("child_detach").unwrap().flags, RD | WR);
    assert_eq!(find("children_list").unwrap().flags, RD);
}

// ---- protection --------------------------------------------------------------------

#[test]
fn protection_set_on_first_attach_and_restored_after_last_detach() {
    let c = protect_round_trip(DEFAULT_FEATURES, None);
    assert!(logged(&c, 20, "protecting parent"));
    assert!(logged(&c, 20, "unprotecting parent"));
}

#[test]
fn protection_leaves_an_existing_op_feature_alone() {
    // The parent is itself a clone-v2 child: CLONE_CHILD, hence OPERATIONS, was there before.
    protect_round_trip(DEFAULT_FEATURES | RBD_FEATURE_OPERATIONS, Some(RBD_OPERATION_FEATURE_CLONE_CHILD));
    // And a stock snapshot-clone parent (CLONE_PARENT).
    protect_round_trip(DEFAULT_FEATURES | RBD_FEATURE_OPERATIONS, Some(RBD_OPERATION_FEATURE_CLONE_PARENT));
}

#[test]
fn first_attach_applies_the_clones_protection() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    attach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(features(&c), (DEFAULT_FEATURES | RBD_FEATURE_MIGRATING, None));
    assert_eq!(c.omap()[header::MIGRATION], migration_header());
    assert_eq!(get::<ParentProtection>(&c, header::RBD_EXT_PROTECT).unwrap().mode, Some(ProtectionMode::Clones));
    assert!(logged(&c, 20, "protecting parent (clones"));
}

#[test]
fn a_parent_with_its_own_migration_gets_the_strict_protection_and_keeps_it() {
    let mig = vec![1, 1, 0, 0, 0, 0];
    for (f, key) in
        [(DEFAULT_FEATURES | RBD_FEATURE_MIGRATING, Some(mig.clone())), (DEFAULT_FEATURES, Some(mig.clone())), (DEFAULT_FEATURES | RBD_FEATURE_MIGRATING, None)]
    {
        let mut c = parent_header(f, None);
        put(&mut c, header::MIGRATION, key.clone());
        let original = c.omap();
        attach(&mut c, &child(3, "a")).unwrap();
        assert_eq!(features(&c), (f | PARENT_PROTECTION_FEATURES, Some(OP_FEATURE_RBD_EXT_PROTECTED)));
        assert_eq!(c.omap().get(header::MIGRATION).cloned(), key, "their migration header is left alone");
        assert!(logged(&c, 5, "migration header of its own"));
        assert_eq!(set_mode(&mut c, ProtectionMode::Clones), Err(Errno::EBUSY));
        detach(&mut c, &child(3, "a")).unwrap();
        assert_eq!(c.omap(), original);
    }
}

#[test]
fn a_v1_record_is_migrated_to_the_default_on_the_next_touch() {
    // A parent protected before issue 16: strict bits and a v1 record.
    let legacy = || {
        let mut c = parent_header(DEFAULT_FEATURES | PARENT_PROTECTION_FEATURES, Some(OP_FEATURE_RBD_EXT_PROTECTED));
        let mut v1 = vec![1, 1, 16, 0, 0, 0];
        v1.extend_from_slice(&0u64.to_le_bytes());
        v1.extend_from_slice(&0u64.to_le_bytes());
        put(&mut c, header::RBD_EXT_PROTECT, Some(v1));
        put(&mut c, HEAD_KEY, Some([child(3, "a"), child(3, "b")].into_iter().collect::<ChildImageSpecs>().get_encoding()));
        c
    };
    let clones = |c: &MemContext| {
        assert_eq!(features(c), (DEFAULT_FEATURES | RBD_FEATURE_MIGRATING, None));
        assert_eq!(c.omap()[header::MIGRATION], migration_header());
        assert_eq!(get::<ParentProtection>(c, header::RBD_EXT_PROTECT).unwrap().mode, Some(ProtectionMode::Clones));
    };
    // By an attach,
    let mut c = legacy();
    attach(&mut c, &child(3, "c")).unwrap();
    clones(&c);
    assert!(logged(&c, 5, "switching from strict to clones"));
    // by a detach that leaves children,
    let mut c = legacy();
    detach(&mut c, &child(3, "a")).unwrap();
    clones(&c);
    // and the last detach restores the unprotected header.
    detach(&mut c, &child(3, "b")).unwrap();
    assert_eq!(c.omap(), parent_header(DEFAULT_FEATURES, None).omap());
    // A duplicate attach fails before anything changes.
    let mut c = legacy();
    assert_eq!(attach(&mut c, &child(3, "a")), Err(Errno::EEXIST));
}

#[test]
fn protection_set_switches_both_ways_and_a_chosen_strict_stays() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    assert_eq!(set_mode(&mut c, ProtectionMode::Strict), Err(Errno::ENOENT), "no children, nothing to protect");
    attach(&mut c, &child(3, "a")).unwrap();
    set_mode(&mut c, ProtectionMode::Strict).unwrap();
    assert_eq!(features(&c), (DEFAULT_FEATURES | PARENT_PROTECTION_FEATURES, Some(OP_FEATURE_RBD_EXT_PROTECTED)));
    assert!(!c.omap().contains_key(header::MIGRATION));
    // Touching it again keeps strict (it was chosen).
    attach(&mut c, &child(3, "b")).unwrap();
    assert_eq!(features(&c), (DEFAULT_FEATURES | PARENT_PROTECTION_FEATURES, Some(OP_FEATURE_RBD_EXT_PROTECTED)));
    set_mode(&mut c, ProtectionMode::Clones).unwrap();
    assert_eq!(features(&c), (DEFAULT_FEATURES | RBD_FEATURE_MIGRATING, None));
    assert_eq!(c.omap()[header::MIGRATION], migration_header());
    // Asking for the mode it has re-applies it.
    put(&mut c, header::MIGRATION, None);
    set_mode(&mut c, ProtectionMode::Clones).unwrap();
    assert_eq!(c.omap()[header::MIGRATION], migration_header());
    assert_eq!(run(&mut c, crate::methods::protection::protection_set, &[1, 1, 1, 0, 0, 0, 7]), Err(Errno::EINVAL));
    detach(&mut c, &child(3, "a")).unwrap();
    detach(&mut c, &child(3, "b")).unwrap();
    assert_eq!(c.omap(), parent_header(DEFAULT_FEATURES, None).omap());
    assert_eq!(find("protection_set").unwrap().flags, RD | WR);
}

#[test]
fn protection_restores_prior_non_primary_and_our_bit() {
    protect_round_trip(DEFAULT_FEATURES | RBD_FEATURE_NON_PRIMARY, None);
    protect_round_trip(DEFAULT_FEATURES | RBD_FEATURE_OPERATIONS, Some(OP_FEATURE_RBD_EXT_PROTECTED));
    protect_round_trip(DEFAULT_FEATURES | RBD_FEATURE_OPERATIONS | RBD_FEATURE_NON_PRIMARY, Some(0x5 | OP_FEATURE_RBD_EXT_PROTECTED));
}

#[test]
fn protection_follows_op_features_changed_while_protected() {
    // Stock set CLONE_PARENT meanwhile (a stock clone v2 from a snapshot): OPERATIONS must
    // stay for it, our bits go.
    for mode in [ProtectionMode::Strict, ProtectionMode::Clones] {
        let mut c = parent_header(DEFAULT_FEATURES, None);
        attach(&mut c, &child(3, "a")).unwrap();
        set_mode(&mut c, mode).unwrap();
        let (f, op) = features(&c);
        put(&mut c, header::FEATURES, Some((f | RBD_FEATURE_OPERATIONS).get_encoding()));
        put(&mut c, header::OP_FEATURES, Some((op.unwrap_or(0) | RBD_OPERATION_FEATURE_CLONE_PARENT).get_encoding()));
        detach(&mut c, &child(3, "a")).unwrap();
        assert_eq!(features(&c), (DEFAULT_FEATURES | RBD_FEATURE_OPERATIONS, Some(RBD_OPERATION_FEATURE_CLONE_PARENT)));
        assert!(!c.omap().contains_key(header::RBD_EXT_PROTECT));
        assert!(!c.omap().contains_key(header::MIGRATION));
    }
}

#[test]
fn attach_to_a_protected_parent_reasserts_cleared_bits() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    attach(&mut c, &child(3, "a")).unwrap();
    let record = c.omap()[header::RBD_EXT_PROTECT].clone();
    put(&mut c, header::FEATURES, Some(DEFAULT_FEATURES.get_encoding()));
    put(&mut c, header::MIGRATION, None);
    attach(&mut c, &child(3, "b")).unwrap();
    assert_eq!(features(&c), (DEFAULT_FEATURES | RBD_FEATURE_MIGRATING, None));
    assert_eq!(c.omap()[header::MIGRATION], migration_header());
    assert_eq!(c.omap()[header::RBD_EXT_PROTECT], record, "the prior state is not re-recorded");
    detach(&mut c, &child(3, "a")).unwrap();
    detach(&mut c, &child(3, "b")).unwrap();
    assert_eq!(c.omap(), parent_header(DEFAULT_FEATURES, None).omap());
}

#[test]
fn last_detach_without_protection_record_leaves_features() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    attach(&mut c, &child(3, "a")).unwrap();
    put(&mut c, header::RBD_EXT_PROTECT, None);
    detach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(features(&c), (DEFAULT_FEATURES | RBD_FEATURE_MIGRATING, None));
    assert_eq!(children(&c), None);
    assert!(logged(&c, 20, "no protection record"));
}

// ---- child_attach ------------------------------------------------------------------

#[test]
fn attach_stores_upstream_set_encoding() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    let specs = [child(3, "b"), child(2, "z"), ChildImageSpec { pool_namespace: "ns".into(), ..child(3, "a") }, child(3, "a")];
    for s in &specs {
        attach(&mut c, s).unwrap();
    }
    let expect: ChildImageSpecs = specs.iter().cloned().collect();
    assert_eq!(c.omap()[HEAD_KEY], expect.get_encoding());
    assert!(logged(&c, 20, "child_attach snap_id=head child=3/\"\"/\"b\""));
}

#[test]
fn attach_normalises_a_set_written_by_another_encoder() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    // Unsorted, with a duplicate (a decoder keeps one).
    put(&mut c, HEAD_KEY, Some(vec![child(3, "b"), child(3, "a"), child(3, "b")].get_encoding()));
    attach(&mut c, &child(3, "c")).unwrap();
    let expect: ChildImageSpecs = [child(3, "a"), child(3, "b"), child(3, "c")].into();
    assert_eq!(c.omap()[HEAD_KEY], expect.get_encoding());
    assert_eq!(attach(&mut c, &child(3, "a")), Err(Errno::EEXIST));
}

#[test]
fn attach_einval_on_malformed_input() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    let good = op(&child(3, "a"));
    for bad in [&b""[..], &good[..8], &good[..good.len() - 1], &[&good[..], &[0]].concat()[..]] {
        assert_eq!(run(&mut c, child_attach, bad), Err(Errno::EINVAL));
    }
    assert!(logged(&c, 1, "child_attach: invalid input"));
}

#[test]
fn attach_einval_for_snapshot_children() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    let input = ChildOp { snap_id: SnapId(4), spec: child(3, "a"), cluster: String::new() }.get_encoding();
    assert_eq!(run(&mut c, child_attach, &input), Err(Errno::EINVAL));
    assert!(logged(&c, 1, "handled by stock `rbd.child_attach` (create them with `rbd clone`)"));
    // Checked before the object: a missing header still says EINVAL.
    let mut m = MemContext::missing();
    assert_eq!(run(&mut m, child_attach, &input), Err(Errno::EINVAL));
}

#[test]
fn attach_einval_for_invalid_specs() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    for s in [child(-1, "a"), child(3, ""), child(3, "a-b"), ChildImageSpec { pool_namespace: "a/b".into(), ..child(3, "a") }] {
        assert_eq!(attach(&mut c, &s), Err(Errno::EINVAL), "{s:?}");
    }
    assert!(logged(&c, 1, "child_attach: invalid child: child pool_id must be >= 0"));
}

#[test]
fn attach_enoent_without_header_object() {
    let mut c = MemContext::missing();
    assert_eq!(attach(&mut c, &child(3, "a")), Err(Errno::ENOENT));
}

#[test]
fn attach_enoexec_on_a_non_rbd_object() {
    let mut c = MemContext::existing();
    assert_eq!(attach(&mut c, &child(3, "a")), Err(Errno::ENOEXEC));
    assert!(logged(&c, 10, "not an RBD image header"));
}

#[test]
fn attach_eio_on_corrupt_state() {
    for (key, bad) in [
        (header::FEATURES, vec![1u8]),
        (header::OP_FEATURES, vec![1, 2]),
        (header::RBD_EXT_PROTECT, vec![1, 1, 0, 0, 0, 0]),
        (HEAD_KEY, vec![1, 0, 0, 0, 2, 1]),
    ] {
        let mut c = parent_header(DEFAULT_FEATURES, None);
        put(&mut c, key, Some(bad));
        assert_eq!(attach(&mut c, &child(3, "a")), Err(Errno::EIO), "{key}");
        assert!(logged(&c, 0, key), "{key}: {:?}", c.logs);
    }
}

#[test]
fn attach_eexist_for_a_duplicate() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    attach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(attach(&mut c, &child(3, "a")), Err(Errno::EEXIST));
    assert!(logged(&c, 20, "child already attached"));
    // Same id in another pool or namespace is another child.
    attach(&mut c, &child(4, "a")).unwrap();
    attach(&mut c, &ChildImageSpec { pool_namespace: "n".into(), ..child(3, "a") }).unwrap();
    assert_eq!(children(&c).unwrap().len(), 3);
}

// ---- child_detach ------------------------------------------------------------------

#[test]
fn detach_removes_the_child_and_the_key_when_empty() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    attach(&mut c, &child(3, "a")).unwrap();
    attach(&mut c, &child(3, "b")).unwrap();
    detach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(children(&c), Some([child(3, "b")].into()));
    detach(&mut c, &child(3, "b")).unwrap();
    assert!(!c.omap().contains_key(HEAD_KEY));
}

#[test]
fn detach_einval_cases() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    attach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(run(&mut c, child_detach, b"\x00"), Err(Errno::EINVAL));
    let snap = ChildOp { snap_id: SnapId(4), spec: child(3, "a"), cluster: String::new() }.get_encoding();
    assert_eq!(run(&mut c, child_detach, &snap), Err(Errno::EINVAL));
    assert!(logged(&c, 1, "stock `rbd.child_detach`"));
    assert_eq!(detach(&mut c, &child(3, "")), Err(Errno::EINVAL));
}

#[test]
fn detach_enoent_without_header_object() {
    let mut c = MemContext::missing();
    assert_eq!(detach(&mut c, &child(3, "a")), Err(Errno::ENOENT));
}

#[test]
fn detach_enoexec_on_a_non_rbd_object() {
    let mut c = MemContext::existing();
    assert_eq!(detach(&mut c, &child(3, "a")), Err(Errno::ENOEXEC));
}

#[test]
fn detach_eio_on_corrupt_state() {
    for (key, bad) in
        [(header::FEATURES, vec![1u8]), (header::OP_FEATURES, vec![1, 2]), (header::RBD_EXT_PROTECT, vec![2, 2, 0, 0, 0, 0]), (HEAD_KEY, vec![1, 0, 0, 0])]
    {
        let mut c = parent_header(DEFAULT_FEATURES, None);
        attach(&mut c, &child(3, "a")).unwrap();
        put(&mut c, key, Some(bad));
        assert_eq!(detach(&mut c, &child(3, "a")), Err(Errno::EIO), "{key}");
    }
}

#[test]
fn detach_enoent_for_an_absent_child() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    assert_eq!(detach(&mut c, &child(3, "a")), Err(Errno::ENOENT), "no set at all");
    attach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(detach(&mut c, &child(3, "b")), Err(Errno::ENOENT), "not in the set");
    assert!(logged(&c, 20, "child not attached"));
}

#[test]
fn mutators_through_osd_semantics() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    c.call(child_attach, &op(&child(3, "a"))).unwrap();
    assert_eq!(c.call(child_attach, &op(&child(3, "a"))), Err(Errno::EEXIST));
    assert_eq!(c.call(child_detach, &op(&child(3, "b"))), Err(Errno::ENOENT));
    c.call(child_detach, &op(&child(3, "a"))).unwrap();
    assert_eq!(c.omap(), parent_header(DEFAULT_FEATURES, None).omap());
}

// ---- children_list -----------------------------------------------------------------

#[test]
fn list_returns_the_set_in_order() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    for id in ["c", "a", "b"] {
        attach(&mut c, &child(3, id)).unwrap();
    }
    let all: ChildImageSpecs = [child(3, "a"), child(3, "b"), child(3, "c")].into();
    // Upstream's input shape: a bare snap id.
    let out = run(&mut c, children_list, &SnapId::NOSNAP.get_encoding()).unwrap();
    assert_eq!(out, all.get_encoding());
    assert_eq!(list(&mut c, 2, None), Ok([child(3, "a"), child(3, "b")].into()));
    assert_eq!(list(&mut c, 0, Some(&child(3, "a"))), Ok([child(3, "b"), child(3, "c")].into()));
    // start_after need not be a member.
    assert_eq!(list(&mut c, 1, Some(&child(3, "bb"))), Ok([child(3, "c")].into()));
    assert_eq!(list(&mut c, 5, Some(&child(3, "c"))), Ok(ChildImageSpecs::new()), "past the end");
    assert!(logged(&c, 20, "children_list snap_id=head max=5"));
}

#[test]
fn list_einval_cases() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    attach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(run(&mut c, children_list, b""), Err(Errno::EINVAL));
    assert_eq!(run(&mut c, children_list, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]), Err(Errno::EINVAL));
    let snap = ChildrenListOp { snap_id: SnapId(4), max: 0, start_after: None }.get_encoding();
    assert_eq!(run(&mut c, children_list, &snap), Err(Errno::EINVAL));
    assert!(logged(&c, 1, "stock `rbd.children_list`"));
}

#[test]
fn list_enoent_without_header_or_children() {
    let mut c = MemContext::missing();
    assert_eq!(list(&mut c, 0, None), Err(Errno::ENOENT));
    let mut c = parent_header(DEFAULT_FEATURES, None);
    assert_eq!(list(&mut c, 0, None), Err(Errno::ENOENT));
    attach(&mut c, &child(3, "a")).unwrap();
    detach(&mut c, &child(3, "a")).unwrap();
    assert_eq!(list(&mut c, 0, None), Err(Errno::ENOENT), "the last detach removed the key");
}

#[test]
fn list_eio_on_corrupt_set() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    put(&mut c, HEAD_KEY, Some(vec![5, 0, 0, 0]));
    assert_eq!(list(&mut c, 0, None), Err(Errno::EIO));
}

#[test]
fn list_of_a_non_canonical_set() {
    let mut c = parent_header(DEFAULT_FEATURES, None);
    put(&mut c, HEAD_KEY, Some(vec![child(3, "b"), child(3, "a")].get_encoding()));
    assert_eq!(list(&mut c, 1, None), Ok([child(3, "a")].into()));
}

// ---- scale -------------------------------------------------------------------------

#[test]
fn ten_thousand_children_attach_page_and_detach() {
    const N: u32 = 10_000;
    const PAGE: u32 = 1000;
    let mut c = parent_header(DEFAULT_FEATURES, None);
    // Ids in scrambled order, over three pools and two namespaces.
    let specs: Vec<ChildImageSpec> = (0..N)
        .map(|i| {
            let h = i.wrapping_mul(2_654_435_761);
            ChildImageSpec {
                pool_id: i64::from(h % 3),
                pool_namespace: if h % 5 == 0 { "ns".into() } else { String::new() },
                image_id: format!("{h:08x}{i:05}"),
            }
        })
        .collect();
    let t = std::time::Instant::now();
    for s in &specs {
        c.call(child_attach, &op(s)).unwrap();
    }
    let attach_time = t.elapsed();
    let expect: Vec<ChildImageSpec> = specs.iter().cloned().collect::<ChildImageSpecs>().into_iter().collect();

    let mut got = Vec::new();
    let mut after: Option<ChildImageSpec> = None;
    let mut pages = 0;
    loop {
        let page = list(&mut c, PAGE, after.as_ref()).unwrap();
        pages += 1;
        assert!(page.len() <= PAGE as usize);
        let n = page.len();
        after = page.iter().next_back().cloned().or(after);
        got.extend(page);
        if n < PAGE as usize {
            break;
        }
    }
    assert_eq!(pages, 11);
    assert_eq!(got, expect, "every child once, in set order");
    assert_eq!(list(&mut c, 0, None).unwrap().len(), N as usize);

    // Detach every 20th child (scattered through the set), then list again.
    let t = std::time::Instant::now();
    for s in specs.iter().step_by(20) {
        c.call(child_detach, &op(s)).unwrap();
    }
    let detach_time = t.elapsed();
    let left: ChildImageSpecs = specs.iter().enumerate().filter(|(i, _)| i % 20 != 0).map(|(_, s)| s.clone()).collect();
    assert_eq!(list(&mut c, 0, None), Ok(left));
    assert_eq!(features(&c).0, DEFAULT_FEATURES | CLONES_PROTECTION_FEATURES, "still protected");
    eprintln!("10k children: {N} attaches {attach_time:?}, {} detaches {detach_time:?}", N / 20);
}

const FSID: &str = "6c5e1d7e-0a4f-4a8e-9e57-0d1c2b3a4f5e";

fn remote_op(spec: &ChildImageSpec, cluster: &str) -> Vec<u8> {
    ChildOp { snap_id: SnapId::NOSNAP, spec: spec.clone(), cluster: cluster.into() }.get_encoding()
}

#[test]
fn remote_children_live_in_their_own_set_and_protect_the_parent() {
    let mut c = image_header(1 << 30);
    let before = c.omap();
    let r = child(1, "remote1");
    run(&mut c, child_attach, &remote_op(&r, FSID)).unwrap();
    let key = format!("rbd_ext_remote_children_{FSID}");
    assert!(c.omap().contains_key(&key));
    assert!(!c.omap().contains_key(HEAD_KEY), "a remote child must not appear in the stock HEAD set");
    let f = u64::read_bytes(&c.omap()["features"]).unwrap();
    assert_eq!(f & CLONES_PROTECTION_FEATURES, CLONES_PROTECTION_FEATURES);
    // Same spec again for that cluster: EEXIST; as a local child it is a different entry.
    assert_eq!(run(&mut c, child_attach, &remote_op(&r, FSID)).err(), Some(Errno::EEXIST));
    attach(&mut c, &child(1, "local1")).unwrap();
    // Removing the local child keeps the protection: the remote one remains.
    detach(&mut c, &child(1, "local1")).unwrap();
    let f = u64::read_bytes(&c.omap()["features"]).unwrap();
    assert_ne!(f & RBD_FEATURE_MIGRATING, 0);
    // Detaching as local does not find it; detaching from its cluster does, and unprotects.
    assert_eq!(detach(&mut c, &r), Err(Errno::ENOENT));
    run(&mut c, child_detach, &remote_op(&r, FSID)).unwrap();
    assert_eq!(c.omap(), before, "header restored exactly after the last (remote) child left");
}

#[test]
fn remote_cluster_id_is_validated() {
    let mut c = image_header(1 << 30);
    for bad in ["a/b", "x y", &"a".repeat(65)] {
        assert_eq!(run(&mut c, child_attach, &remote_op(&child(1, "r"), bad)).err(), Some(Errno::EINVAL), "{bad}");
    }
}

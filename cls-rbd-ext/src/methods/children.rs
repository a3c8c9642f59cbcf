//! `child_attach`, `child_detach`, `children_list`: the children of a parent's HEAD, kept
//! in the upstream key for CEPH_NOSNAP (`snap_children_000000000000head`) in upstream's
//! `ChildImageSpecs` encoding, plus the protection of a parent that has HEAD children.
//!
//! **Parent protection** ([`super::protection`]): in the same call, hence the same OSD
//! transaction, as the child registration, `child_attach` protects the parent (first
//! child) or re-applies its protection, `child_detach` re-applies it while children remain
//! and the last one lifts it, restoring the parent's prior bits exactly.
//!
//! Children in other clusters (remote-standalone clones, DESIGN.md §5) are kept apart, one
//! set per cluster fsid under `rbd_ext_remote_children_<fsid>`, so that reconciling the local
//! set never mistakes them for stale local entries; the parent stays protected while any
//! set is non-empty.
//!
//! A parent whose set is non-empty but which has no protection record (children
//! registered by hand, or the record deleted) gets one on the next attach, taken from the
//! bits it has then.

use super::protection::Protection;
use super::{cls_log, decode_input, decode_stored};
use crate::codec::SnapId;
use crate::ops::{is_valid_cluster_fsid, validate_child_spec, ChildOp, ChildrenListOp};
use crate::types::header;
use crate::types::{snap_children_key, ChildSetView};
use crate::{ClsContext, Codec, Errno};

/// The key of the HEAD children set.
fn head_children_key() -> String {
    snap_children_key(SnapId::NOSNAP)
}

/// The key holding the op's child: the upstream HEAD key for local children, a per-cluster
/// key of ours for children in other clusters (stock tools never read those).
fn children_key(op: &ChildOp) -> String {
    if op.cluster.is_empty() {
        head_children_key()
    } else {
        format!("{}{}", header::RBD_EXT_REMOTE_CHILDREN_PREFIX, op.cluster)
    }
}

/// Whether any children key other than `key` exists (then the parent stays protected).
fn other_children_exist(ctx: &mut dyn ClsContext, key: &str) -> Result<bool, Errno> {
    let local = head_children_key();
    if key != local && ctx.omap_get_opt(&local)?.is_some() {
        return Ok(true);
    }
    let (remote, _) = ctx.omap_get_vals("", header::RBD_EXT_REMOTE_CHILDREN_PREFIX, 2)?;
    Ok(remote.iter().any(|(k, _)| k != key))
}

/// -EINVAL unless the request is for HEAD and the child spec is valid.
fn check_child_op(ctx: &mut dyn ClsContext, method: &str, op: &ChildOp) -> Result<(), Errno> {
    if op.snap_id != SnapId::NOSNAP {
        cls_log!(
            ctx,
            1,
            "{method}: snap_id {:?} is not head: children of snapshots are handled by stock \
             `rbd.{method}` (create them with `rbd clone`)",
            op.snap_id
        );
        return Err(Errno::EINVAL);
    }
    if let Err(why) = validate_child_spec(&op.spec) {
        cls_log!(ctx, 1, "{method}: invalid child: {why}");
        return Err(Errno::EINVAL);
    }
    if !op.cluster.is_empty() && !is_valid_cluster_fsid(&op.cluster) {
        cls_log!(ctx, 1, "{method}: invalid cluster id (want 1-64 letters, digits or '-')");
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Parses the stored children set (absent = empty); -EIO with a level-0 log if corrupt.
fn parse_children<'a>(ctx: &mut dyn ClsContext, stored: Option<&'a [u8]>) -> Result<ChildSetView<'a>, Errno> {
    match stored {
        None => Ok(ChildSetView::empty()),
        Some(b) => decode_stored(ctx, "header key `snap_children_000000000000head`", ChildSetView::parse(b)),
    }
}

/// The state both mutators load before deciding anything.
struct ParentState {
    protection: Protection,
    children: Option<Vec<u8>>,
}

fn load_parent(ctx: &mut dyn ClsContext, method: &str, key: &str) -> Result<ParentState, Errno> {
    ctx.check_exists()?;
    let protection = Protection::load(ctx, method)?;
    let children = ctx.omap_get_opt(key)?;
    Ok(ParentState { protection, children })
}

/// `child_attach` (RD|WR, on the parent's header). Input: [`ChildOp`] (u64 snap_id ·
/// ChildImageSpec). Output: none.
///
/// Adds the child to the HEAD children set and protects the parent (module docs).
///
/// Returns, in this order:
/// - -EINVAL if the input does not decode, if snap_id is not CEPH_NOSNAP (snapshot
///   children are stock `rbd.child_attach`'s), if the spec is invalid (pool_id < 0,
///   image id empty or not ASCII alphanumeric, namespace with NUL or `/`), or if the
///   optional cluster id is not 1-64 letters, digits or `-`;
/// - -ENOENT if the header object does not exist;
/// - -ENOEXEC if it has no `features` key (not an RBD image header);
/// - -EIO if `features`, `op_features`, `rbd_ext_protect` or the children set does not
///   decode;
/// - -EEXIST if the child is already in the set (nothing changes, not even a protection
///   migration);
/// - -errno on storage failure.
pub(crate) fn child_attach(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "child_attach", ChildOp::read_bytes(input))?;
    cls_log!(ctx, 20, "child_attach snap_id={:?} child={}/{:?}/{:?}", op.snap_id, op.spec.pool_id, op.spec.pool_namespace, op.spec.image_id);
    check_child_op(ctx, "child_attach", &op)?;
    let key = children_key(&op);
    let st = load_parent(ctx, "child_attach", &key)?;
    let set = parse_children(ctx, st.children.as_deref())?;
    let Some(new_set) = set.with_inserted(&op.spec) else {
        cls_log!(ctx, 20, "child_attach: child already attached");
        return Err(Errno::EEXIST);
    };

    ctx.omap_set_one(&key, &new_set)?;
    st.protection.ensure(ctx, None)
}

/// `child_detach` (RD|WR, on the parent's header). Input: [`ChildOp`]. Output: none.
///
/// Removes the child from the HEAD children set, deleting the key when the set becomes
/// empty; that last detach also lifts the parent's protection (module docs).
///
/// Returns, in this order:
/// - -EINVAL if the input does not decode, snap_id is not CEPH_NOSNAP, or the spec is
///   invalid;
/// - -ENOENT if the header object does not exist;
/// - -ENOEXEC if it has no `features` key (not an RBD image header);
/// - -EIO if `features`, `op_features`, `rbd_ext_protect` or the children set does not
///   decode;
/// - -ENOENT if the child is not in the set (or there is no set);
/// - -errno on storage failure.
pub(crate) fn child_detach(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "child_detach", ChildOp::read_bytes(input))?;
    cls_log!(ctx, 20, "child_detach snap_id={:?} child={}/{:?}/{:?}", op.snap_id, op.spec.pool_id, op.spec.pool_namespace, op.spec.image_id);
    check_child_op(ctx, "child_detach", &op)?;
    let key = children_key(&op);
    let st = load_parent(ctx, "child_detach", &key)?;
    let set = parse_children(ctx, st.children.as_deref())?;
    let Some(new_set) = set.with_removed(&op.spec) else {
        cls_log!(ctx, 20, "child_detach: child not attached");
        return Err(Errno::ENOENT);
    };

    if set.len() > 1 {
        ctx.omap_set_one(&key, &new_set)?;
        return st.protection.ensure(ctx, None);
    }
    ctx.omap_remove(&key)?;
    if other_children_exist(ctx, &key)? {
        cls_log!(ctx, 20, "child_detach: {key} emptied; children remain under other keys, parent stays protected");
        return st.protection.ensure(ctx, None);
    }
    st.protection.lift(ctx)
}

/// `children_list` (RD, on the parent's header). Input: [`ChildrenListOp`] (u64 snap_id,
/// optional u32 `max`, optional ChildImageSpec `start_after`). Output: `ChildImageSpecs`
/// (u32 count + specs, ascending): the children strictly after `start_after`, at most
/// `max` of them (0 = all). A page past the end is an empty set.
///
/// Returns -EINVAL if the input does not decode or snap_id is not CEPH_NOSNAP; -ENOENT if
/// the header object does not exist or there is no children key (as upstream: no children
/// is -ENOENT, not an empty list); -EIO if the set does not decode; -errno on storage
/// failure.
pub(crate) fn children_list(ctx: &mut dyn ClsContext, input: &[u8], out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "children_list", ChildrenListOp::read_bytes(input))?;
    cls_log!(ctx, 20, "children_list snap_id={:?} max={} start_after={:?}", op.snap_id, op.max, op.start_after);
    if op.snap_id != SnapId::NOSNAP {
        cls_log!(ctx, 1, "children_list: snap_id {:?} is not head: children of snapshots are listed by stock `rbd.children_list`", op.snap_id);
        return Err(Errno::EINVAL);
    }
    ctx.check_exists()?;
    let Some(stored) = ctx.omap_get_opt(&head_children_key())? else {
        cls_log!(ctx, 20, "children_list: no children");
        return Err(Errno::ENOENT);
    };
    let set = parse_children(ctx, Some(&stored))?;
    out.extend_from_slice(&set.page(op.start_after.as_ref(), op.max));
    Ok(())
}

#[cfg(test)]
mod tests;

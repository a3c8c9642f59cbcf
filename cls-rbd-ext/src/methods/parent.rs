//! `parent_attach`, `parent_get`, `parent_detach`, `parent_overlap_set`: the clone's side of
//! the parent link, the header key `parent` holding a [`ParentRecord`] (v4).
//!
//! Unlike stock `rbd.parent_attach`, these accept parents at HEAD (`snap_id =
//! CEPH_NOSNAP`), in another cluster, or back-filled from S3, and keep every v4 field.

use super::header::{apply_op_features, has_snapshots, read_key, read_op_features, require_feature, write_features};
use super::snapshot::{for_each_snapshot, remove_guard};
use super::{cls_log, decode_input};
use crate::ops::{validate_parent_record, ParentAttachOp, ParentOverlapSetOp};
use crate::types::features::{RBD_FEATURE_LAYERING, RBD_OPERATION_FEATURE_CLONE_CHILD};
use crate::types::header;
use crate::types::{ParentRecord, ParentType};
use crate::{ClsContext, Codec, Errno};

/// Whether two records name the same parent: every field but `head_overlap` (upstream's
/// `cls_rbd_parent::operator==`, widened to the v3/v4 fields).
fn same_parent(a: &ParentRecord, b: &ParentRecord) -> bool {
    ParentRecord { head_overlap: None, ..a.clone() } == ParentRecord { head_overlap: None, ..b.clone() }
}

/// The stored record of a header that must have an attached HEAD parent: -ENOENT when the
/// key is absent or its `head_overlap` is `None` (HEAD already detached).
fn read_attached(ctx: &mut dyn ClsContext, method: &str) -> Result<ParentRecord, Errno> {
    match read_key::<ParentRecord>(ctx, header::PARENT)? {
        Some(p) if p.head_overlap.is_some() => Ok(p),
        Some(_) => {
            cls_log!(ctx, 20, "{method}: parent already detached from head");
            Err(Errno::ENOENT)
        }
        None => {
            cls_log!(ctx, 20, "{method}: no parent");
            Err(Errno::ENOENT)
        }
    }
}

/// `parent_attach` (RD|WR, on the child's header). Input: [`ParentAttachOp`] (a
/// [`ParentRecord`] then an optional bool `reattach`). Output: none.
///
/// Stores the record under `parent`, written as v4 with the compat of its type (2 for
/// snapshot/standalone, 3 for remote/S3, see [`ParentType::compat`]), its `head_overlap`
/// clamped to the image size.
///
/// Returns, in this order:
/// - -EINVAL if the input does not decode;
/// - -ENOENT if the header object does not exist;
/// - -ENOEXEC if the header has no `features` key or lacks LAYERING (upstream
///   `require_feature`); -EIO if `features` does not decode;
/// - -EINVAL if the record is inconsistent ([`validate_parent_record`]: unknown type, ids,
///   snap id for the type, overlap `None` or 0, remote fields, a secret that is not a
///   `config://` reference);
/// - -EIO if the stored `parent` does not decode;
/// - -EEXIST if a parent is attached and `reattach` is false (a stored record whose
///   `head_overlap` is `None` and that names the same parent may be re-attached without
///   the flag, as upstream);
/// - -ENOENT if the `size` key is missing, -EIO if it does not decode;
/// - -errno on storage failure.
pub(crate) fn parent_attach(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "parent_attach", ParentAttachOp::read_bytes(input))?;
    let p = &op.record;
    // Never log remote_secret_ref: it might be the key a careless caller passed inline.
    cls_log!(
        ctx,
        20,
        "parent_attach pool={} ns={:?} image={:?} snap_id={:?} type={} overlap={:?} remote_cluster={:?} reattach={}",
        p.pool_id,
        p.pool_namespace,
        p.image_id,
        p.snap_id,
        p.parent_type.as_str(),
        p.head_overlap,
        p.remote_cluster_name,
        op.reattach
    );
    ctx.check_exists()?;
    require_feature(ctx, "parent_attach", RBD_FEATURE_LAYERING)?;
    if let Err(e) = validate_parent_record(p) {
        cls_log!(ctx, 1, "parent_attach: invalid parent record: {e}");
        return Err(Errno::EINVAL);
    }
    if let Some(cur) = read_key::<ParentRecord>(ctx, header::PARENT)? {
        if !op.reattach && (cur.head_overlap.is_some() || !same_parent(&cur, p)) {
            cls_log!(ctx, 20, "parent_attach: a parent is already attached (pool={} image={:?})", cur.pool_id, cur.image_id);
            return Err(Errno::EEXIST);
        }
    }
    let Some(size) = read_key::<u64>(ctx, header::SIZE)? else {
        cls_log!(ctx, 20, "parent_attach: no `size` key");
        return Err(Errno::ENOENT);
    };
    let mut record = op.record;
    record.head_overlap = record.head_overlap.map(|o| o.min(size));
    ctx.omap_set_one(header::PARENT, &record.get_encoding())
}

/// `parent_get` (RD, on the child's header). Input: ignored (as upstream, trailing bytes
/// are not an error). Output: the stored [`ParentRecord`] with all its v4 fields, or
/// `ParentRecord::default()` (pool_id -1, snap NOSNAP, overlap `None`) when there is none.
///
/// Unlike upstream it neither requires LAYERING nor scans snapshot records for legacy
/// per-snapshot parents: rbd-ext children keep their parent in the `parent` key only.
///
/// Returns -ENOENT if the header object does not exist, -EIO if the stored record does
/// not decode, -errno on storage failure.
pub(crate) fn parent_get(ctx: &mut dyn ClsContext, _input: &[u8], out: &mut Vec<u8>) -> Result<(), Errno> {
    cls_log!(ctx, 20, "parent_get");
    ctx.check_exists()?;
    let p = read_key::<ParentRecord>(ctx, header::PARENT)?.unwrap_or_default();
    p.encode(out);
    Ok(())
}

/// `parent_detach` (RD|WR, on the child's header). Input: ignored. Output: none.
///
/// Detaches HEAD from its parent:
/// - a **snapshot**-type record on a header that holds snapshot records keeps the key with
///   `head_overlap = None`, as upstream does when snapshots still use the parent (we do not
///   inspect the snapshots individually, nor rewrite them under deep-flatten);
/// - a HEAD-type record (standalone, remote, S3 source): each snapshot record that reads
///   the parent with an overlap no larger than HEAD's is rewritten without it (the caller,
///   rbd-ext's flatten, copied every object of that range up with an empty snapshot
///   context, so the snapshots see the copies, as librbd's deep flatten); if a snapshot
///   reads further (HEAD was shrunk after it), the key is kept with `head_overlap = None`
///   for it, as upstream keeps it for snapshots;
/// - otherwise the `parent` key is removed, op feature CLONE_CHILD is cleared with
///   upstream's op-feature rule (OPERATIONS dropped when no op feature remains), and the
///   snapshot guard's record removed with its limit (a plain image's stock snapshots are
///   right; the caller releases the guard's id).
///
/// Returns -ENOENT if the header object does not exist; -ENOEXEC if the header has no
/// `features` or lacks LAYERING; -ENOENT if there is no `parent` key or its `head_overlap`
/// is already `None`; -EIO if `features`, `parent` or `op_features` does not decode;
/// -errno on storage failure.
pub(crate) fn parent_detach(ctx: &mut dyn ClsContext, _input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    cls_log!(ctx, 20, "parent_detach");
    ctx.check_exists()?;
    let features = require_feature(ctx, "parent_detach", RBD_FEATURE_LAYERING)?;
    let mut p = read_attached(ctx, "parent_detach")?;
    if p.parent_type == ParentType::Snapshot && has_snapshots(ctx)? {
        cls_log!(ctx, 20, "parent_detach: snapshots may still use the parent: keeping it for them");
        p.head_overlap = None;
        return ctx.omap_set_one(header::PARENT, &p.get_encoding());
    }
    if p.parent_type != ParentType::Snapshot {
        let head = p.head_overlap.unwrap_or(0);
        let mut still_read = false;
        let mut stripped = Vec::new();
        for_each_snapshot(ctx, |_, key, mut rec| {
            match rec.parent_overlap {
                Some(o) if o <= head => {
                    rec.parent_overlap = None;
                    stripped.push((key.to_string(), rec.get_encoding()));
                }
                Some(_) => still_read = true,
                None => {}
            }
            Ok(())
        })?;
        for (key, value) in &stripped {
            ctx.omap_set_one(key, value)?;
        }
        if still_read {
            cls_log!(ctx, 20, "parent_detach: snapshots still read the parent past HEAD's overlap: keeping it for them");
            p.head_overlap = None;
            return ctx.omap_set_one(header::PARENT, &p.get_encoding());
        }
    }
    let op_features = read_op_features(ctx)?;
    let new = apply_op_features(features, op_features, 0, RBD_OPERATION_FEATURE_CLONE_CHILD);
    ctx.omap_remove(header::PARENT)?;
    write_features(ctx, (features, op_features), new)?;
    remove_guard(ctx)
}

/// `parent_overlap_set` (RD|WR, on the child's header). Input: [`ParentOverlapSetOp`] (u64
/// new overlap). Output: none.
///
/// Shrinks the HEAD overlap, as stock `set_size` does when an image shrinks (stock cannot
/// decode compat-3 records, so resizing a remote or S3 child goes through here). Setting
/// it to 0 keeps `Some(0)` (the image stays a clone of nothing), as upstream's shrink does;
/// setting the current value writes nothing.
///
/// Returns -EINVAL if the input does not decode or the new overlap is larger than the
/// current one; -ENOENT if the header object does not exist, there is no `parent` key or
/// its `head_overlap` is `None`; -EIO if the stored record does not decode; -errno on
/// storage failure.
pub(crate) fn parent_overlap_set(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "parent_overlap_set", ParentOverlapSetOp::read_bytes(input))?;
    cls_log!(ctx, 20, "parent_overlap_set overlap={}", op.overlap);
    ctx.check_exists()?;
    let mut p = read_attached(ctx, "parent_overlap_set")?;
    let cur = p.head_overlap.unwrap_or(0);
    if op.overlap > cur {
        cls_log!(ctx, 1, "parent_overlap_set: overlap can only shrink ({} > {cur})", op.overlap);
        return Err(Errno::EINVAL);
    }
    if op.overlap == cur {
        return Ok(());
    }
    p.head_overlap = Some(op.overlap);
    ctx.omap_set_one(header::PARENT, &p.get_encoding())
}

#[cfg(test)]
mod tests;

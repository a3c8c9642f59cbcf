//! `snapshot_add`, `snapshot_parent_set`, `snap_guard`: snapshots of standalone children
//! that read their parent, as librbd expects them.
//!
//! Stock `rbd.snapshot_add` stores a parent overlap in a snapshot record only when the
//! parent `exists()`, which is false for a HEAD parent: librbd then reads every object the
//! snapshot does not hold as zeros. `snapshot_add` here is stock's method with that one
//! difference (the HEAD overlap goes into the record, in the same transaction);
//! `snapshot_parent_set` repairs a record stock made; `snap_guard` arms or lifts the header
//! state that makes stock `snapshot_add` fail closed (see [`snap_guard`]).

use super::header::{apply_op_features, read_features, read_key, read_op_features, write_features};
use super::{cls_log, decode_input, decode_stored};
use crate::codec::{encode_envelope, SnapId, UTime};
use crate::context::OMAP_PAGE;
use crate::ops::{SnapGuardMode, SnapGuardOp, SnapshotAddOp, SnapshotParentSetOp};
use crate::types::features::RBD_OPERATION_FEATURE_SNAP_TRASH;
use crate::types::{header, snap_namespace, snapshot_key, ParentRecord, SnapshotNamespace, SnapshotRecord};
use crate::{ClsContext, Codec, Errno};

/// `CEPH_MAXSNAP`.
const CEPH_MAXSNAP: u64 = u64::MAX - 2;

/// Calls `f` on every snapshot record of the header, in key order; stops at its first error.
pub(crate) fn for_each_snapshot(
    ctx: &mut dyn ClsContext,
    mut f: impl FnMut(&mut dyn ClsContext, &str, SnapshotRecord) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut after = String::new();
    loop {
        let (page, more) = ctx.omap_get_vals(&after, header::SNAPSHOT_PREFIX, OMAP_PAGE)?;
        for (key, value) in &page {
            let rec = decode_stored(ctx, &format!("snapshot record `{key}`"), SnapshotRecord::read_bytes(value))?;
            f(ctx, key, rec)?;
        }
        match page.last() {
            Some((k, _)) if more => after = k.clone(),
            _ => return Ok(()),
        }
    }
}

/// The guard snapshot's id, when the header has one.
pub(crate) fn guard_id(ctx: &mut dyn ClsContext) -> Result<Option<SnapId>, Errno> {
    Ok(read_key::<u64>(ctx, header::RBD_EXT_SNAP_GUARD)?.map(SnapId))
}

/// Stock's `snap_limit` as stock reads it (the first 8 bytes; absent = none).
fn stock_limit(ctx: &mut dyn ClsContext) -> Result<Option<u64>, Errno> {
    match ctx.omap_get_opt(header::SNAP_LIMIT)? {
        Some(v) if v.len() >= 8 => Ok(Some(u64::from_le_bytes(v[..8].try_into().expect("8 bytes")))),
        Some(_) => decode_stored(ctx, "header key `snap_limit`", Err(crate::DecodeError::Invalid("snap_limit"))),
        None => Ok(None),
    }
}

/// Whether rbd-ext holds `snap_limit` at 1 (and the user has not changed it since).
pub(crate) fn limit_held(ctx: &mut dyn ClsContext) -> Result<bool, Errno> {
    Ok(ctx.omap_get_opt(header::RBD_EXT_SNAP_LIMIT)?.is_some() && stock_limit(ctx)? == Some(1))
}

/// The user's own snapshot limit (`u64::MAX`: none): the value kept aside while rbd-ext
/// holds `snap_limit`, else stock's.
fn user_limit(ctx: &mut dyn ClsContext) -> Result<u64, Errno> {
    if limit_held(ctx)? {
        return Ok(read_key::<u64>(ctx, header::RBD_EXT_SNAP_LIMIT)?.unwrap_or(u64::MAX));
    }
    Ok(stock_limit(ctx)?.unwrap_or(u64::MAX))
}

/// Holds `snap_limit` at 1, keeping the user's limit aside (a limit the user set with stock
/// `rbd snap limit set` since is taken as theirs). Idempotent.
fn hold_limit(ctx: &mut dyn ClsContext) -> Result<(), Errno> {
    if limit_held(ctx)? {
        return Ok(());
    }
    let user = stock_limit(ctx)?.unwrap_or(u64::MAX);
    ctx.omap_set(&[(header::RBD_EXT_SNAP_LIMIT, &user.get_encoding()), (header::SNAP_LIMIT, &1u64.get_encoding())])
}

/// Gives `snap_limit` back to the user. Idempotent.
pub(crate) fn release_limit(ctx: &mut dyn ClsContext) -> Result<(), Errno> {
    if !limit_held(ctx)? {
        // Not held, or the user has set a limit of their own since: it stays.
        return ctx.omap_remove(header::RBD_EXT_SNAP_LIMIT);
    }
    match read_key::<u64>(ctx, header::RBD_EXT_SNAP_LIMIT)? {
        Some(u64::MAX) | None => ctx.omap_remove(header::SNAP_LIMIT)?,
        Some(l) => ctx.omap_set_one(header::SNAP_LIMIT, &l.get_encoding())?,
    }
    ctx.omap_remove(header::RBD_EXT_SNAP_LIMIT)
}

/// Makes the guard snapshot `id`: trash namespace, size 0, no parent overlap.
fn make_guard(ctx: &mut dyn ClsContext, id: SnapId) -> Result<(), Errno> {
    if id.0 > CEPH_MAXSNAP {
        return Err(Errno::EINVAL);
    }
    let Some(seq) = read_key::<u64>(ctx, header::SNAP_SEQ)? else {
        return Err(Errno::ENOENT);
    };
    // Id 0 (never allocated by a pool) is below every snapshot: valid anywhere in the
    // snapshot context, and never newer than an object's snapset, so the OSD never clones
    // for it (any other id would make it clone each object librbd copies up).
    if id.0 != 0 && id.0 < seq {
        return Err(Errno::ESTALE);
    }
    if ctx.omap_get_opt(&snapshot_key(id))?.is_some() {
        return Err(Errno::EEXIST);
    }
    // Unlike stock's trash snapshots, no op feature SNAP_TRASH (which sets the OPERATIONS
    // feature): the child keeps exactly the features it was made with. Every release that
    // has op features knows trash snapshots (Mimic on) and hides them from `snap ls`.
    let (sec, nsec) = ctx.now();
    let mut namespace = Vec::new();
    encode_envelope(&mut namespace, 1, 1, |o| {
        snap_namespace::TRASH.encode(o);
        header::SNAP_GUARD_NAME.to_string().encode(o);
        snap_namespace::USER.encode(o);
    });
    let record = SnapshotRecord {
        id,
        name: format!("{}-{:x}", header::SNAP_GUARD_NAME, id.0),
        image_size: 0,
        namespace: SnapshotNamespace { kind: snap_namespace::TRASH, encoded: namespace },
        timestamp: UTime { sec: sec as u32, nsec },
        version: 8,
        ..Default::default()
    };
    if id.0 > seq {
        ctx.omap_set_one(header::SNAP_SEQ, &id.0.get_encoding())?;
    }
    ctx.omap_set(&[(&snapshot_key(id), &record.get_encoding()), (header::RBD_EXT_SNAP_GUARD, &id.0.get_encoding())])
}

/// Deletes the guard snapshot's record, if any (its id and object map copy are the
/// caller's to release), and gives the limit back.
pub(crate) fn remove_guard(ctx: &mut dyn ClsContext) -> Result<(), Errno> {
    release_limit(ctx)?;
    let Some(id) = guard_id(ctx)? else {
        return Ok(());
    };
    ctx.omap_remove(&snapshot_key(id))?;
    ctx.omap_remove(header::RBD_EXT_SNAP_GUARD)
}

/// `snapshot_add` (RD|WR, on an image header). Input: [`SnapshotAddOp`], stock's bytes.
/// Output: none.
///
/// Stock `rbd.snapshot_add`, checks and errors in stock's order, except that:
/// - the new record's `parent_overlap` is the `parent` key's `head_overlap` whatever the
///   parent's type (stock keeps it only for snapshot parents), so a snapshot of a
///   standalone child reads the parent's HEAD where it holds no object;
/// - the guard snapshot does not count, and the user's own limit (kept aside while the
///   guard holds `snap_limit`) is obeyed.
///
/// Returns -EINVAL (input does not decode, unknown namespace, id above CEPH_MAXSNAP);
/// -ENOENT (no header, or no `snap_seq` / `size`); -ESTALE (id below `snap_seq`); -EDQUOT
/// (the user's limit reached); -EEXIST (same name in the same namespace, or same id); -EIO
/// (a stored value does not decode); -errno on storage failure.
pub(crate) fn snapshot_add(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "snapshot_add", SnapshotAddOp::read_bytes(input))?;
    if op.namespace.kind > snap_namespace::MIRROR {
        cls_log!(ctx, 1, "snapshot_add: unknown snapshot namespace {}", op.namespace.kind);
        return Err(Errno::EINVAL);
    }
    cls_log!(ctx, 20, "snapshot_add name={} id={}", op.name, op.id.0);
    if op.id.0 > CEPH_MAXSNAP {
        return Err(Errno::EINVAL);
    }
    ctx.check_exists()?;
    let Some(seq) = read_key::<u64>(ctx, header::SNAP_SEQ)? else {
        return Err(Errno::ENOENT);
    };
    if op.id.0 < seq {
        return Err(Errno::ESTALE);
    }
    let Some(image_size) = read_key::<u64>(ctx, header::SIZE)? else {
        return Err(Errno::ENOENT);
    };
    let flags = read_key::<u64>(ctx, header::FLAGS)?.unwrap_or(0);
    let limit = user_limit(ctx)?;
    let guard = guard_id(ctx)?;
    let mut total = 0u64;
    for_each_snapshot(ctx, |ctx, _, old| {
        if (old.name == op.name && old.namespace == op.namespace) || old.id == op.id {
            return Err(Errno::EEXIST);
        }
        if Some(old.id) == guard {
            return Ok(());
        }
        total += 1;
        if total >= limit {
            cls_log!(ctx, 0, "Attempt to create snapshot over limit of {limit}");
            return Err(Errno::EDQUOT);
        }
        Ok(())
    })?;
    let parent = read_key::<ParentRecord>(ctx, header::PARENT)?;
    if op.namespace.kind == snap_namespace::TRASH {
        let features = read_features(ctx, "snapshot_add")?;
        let op_features = read_op_features(ctx)?;
        let new = apply_op_features(features, op_features, RBD_OPERATION_FEATURE_SNAP_TRASH, RBD_OPERATION_FEATURE_SNAP_TRASH);
        write_features(ctx, (features, op_features), new)?;
    }
    let (sec, nsec) = ctx.now();
    let record = SnapshotRecord {
        id: op.id,
        name: op.name,
        image_size,
        flags,
        namespace: op.namespace,
        timestamp: UTime { sec: sec as u32, nsec },
        parent_overlap: parent.and_then(|p| p.head_overlap),
        version: 8,
        ..Default::default()
    };
    ctx.omap_set(&[(header::SNAP_SEQ, &op.id.0.get_encoding()), (&snapshot_key(op.id), &record.get_encoding())])
}

/// `snapshot_parent_set` (RD|WR, on a child's header). Input: [`SnapshotParentSetOp`].
/// Output: none.
///
/// Sets the parent overlap of a snapshot record that has none (one stock `snapshot_add`
/// made of a standalone child), clamped to the snapshot's size. Setting the value it already
/// has is a no-op, so a repair can be retried.
///
/// Returns -EINVAL (input does not decode, overlap 0); -ENOENT (no header, no `parent` key
/// to read through, no such snapshot); -EEXIST (the snapshot already reads a different
/// overlap); -EIO (a stored value does not decode); -errno on storage failure.
pub(crate) fn snapshot_parent_set(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "snapshot_parent_set", SnapshotParentSetOp::read_bytes(input))?;
    cls_log!(ctx, 20, "snapshot_parent_set id={} overlap={}", op.id.0, op.overlap);
    if op.overlap == 0 || op.id == SnapId::NOSNAP {
        return Err(Errno::EINVAL);
    }
    ctx.check_exists()?;
    if read_key::<ParentRecord>(ctx, header::PARENT)?.is_none() {
        cls_log!(ctx, 10, "snapshot_parent_set: no parent");
        return Err(Errno::ENOENT);
    }
    let key = snapshot_key(op.id);
    let Some(mut rec) = read_key::<SnapshotRecord>(ctx, &key)? else {
        return Err(Errno::ENOENT);
    };
    let want = op.overlap.min(rec.image_size);
    match rec.parent_overlap {
        Some(o) if o == want => Ok(()),
        Some(o) => {
            cls_log!(ctx, 10, "snapshot_parent_set: snapshot {} already reads overlap {o}", op.id.0);
            Err(Errno::EEXIST)
        }
        None => {
            rec.parent_overlap = Some(want);
            ctx.omap_set_one(&key, &rec.get_encoding())
        }
    }
}

/// `snap_guard` (RD|WR, on an image header). Input: [`SnapGuardOp`]. Output: none.
///
/// The snapshot guard keeps stock `snap create` off a standalone child (it would read zeros
/// where the child inherits data): a guard snapshot (trash namespace, size 0, reading
/// nothing, made while the child holds no object so the OSD never clones for it) and
/// `snap_limit` held at 1, so stock `snapshot_add` fails with -EDQUOT; `snapshot_add` here
/// does not count the guard and obeys the user's limit, kept aside meanwhile.
/// - Arm: makes the guard snapshot `guard_id` when the header has none and an id is given
///   (id rules of `snapshot_add`), then holds the limit;
/// - Lift: gives the limit back (the guard snapshot stays);
/// - Remove: lifts and deletes the guard snapshot's record.
///
/// Returns -EINVAL (input does not decode, id above CEPH_MAXSNAP); -ENOENT (no header, no
/// `snap_seq`); -ESTALE (id below `snap_seq`); -EEXIST (a guard with another id exists, or
/// the id is taken); -ENOEXEC (no `features`); -EIO (a stored value does not decode);
/// -errno on storage failure. Arm and lift are idempotent.
pub(crate) fn snap_guard(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "snap_guard", SnapGuardOp::read_bytes(input))?;
    cls_log!(ctx, 20, "snap_guard mode={:?} guard_id={}", op.mode, op.guard_id.0);
    ctx.check_exists()?;
    match op.mode {
        SnapGuardMode::Lift => release_limit(ctx),
        SnapGuardMode::Remove => remove_guard(ctx),
        SnapGuardMode::Arm => {
            match (guard_id(ctx)?, op.guard_id) {
                (Some(g), id) if id != SnapId::NOSNAP && id != g => {
                    cls_log!(ctx, 10, "snap_guard: the image already has guard snapshot {}", g.0);
                    return Err(Errno::EEXIST);
                }
                (None, id) if id != SnapId::NOSNAP => make_guard(ctx, id)?,
                _ => {}
            }
            hold_limit(ctx)
        }
    }
}

#[cfg(test)]
mod tests;

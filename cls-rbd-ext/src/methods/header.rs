//! Helpers over an image header object shared by the parent and children methods: the
//! roles of upstream `read_key`, `image::require_feature` and the op-feature helper.

use super::{cls_log, decode_stored};
use crate::types::header;
use crate::{ClsContext, Codec, Errno};

/// Reads and decodes the value of `key` (upstream `read_key`): `None` when the key is
/// absent; -EIO with a level-0 log when the stored bytes do not decode exactly.
pub(crate) fn read_key<T: Codec>(ctx: &mut dyn ClsContext, key: &str) -> Result<Option<T>, Errno> {
    match ctx.omap_get_opt(key)? {
        None => Ok(None),
        Some(b) => decode_stored(ctx, &format!("header key `{key}`"), T::read_bytes(&b)).map(Some),
    }
}

/// The header's `features`, required to be there: -ENOEXEC when the key is missing (not
/// an RBD image header, as upstream `require_feature`), -EIO when it does not decode.
pub(crate) fn read_features(ctx: &mut dyn ClsContext, method: &str) -> Result<u64, Errno> {
    match read_key::<u64>(ctx, header::FEATURES)? {
        Some(f) => Ok(f),
        None => {
            cls_log!(ctx, 10, "{method}: no `features` key: not an RBD image header");
            Err(Errno::ENOEXEC)
        }
    }
}

/// Upstream `image::require_feature`: the header's features, with every bit of `need` set,
/// else -ENOEXEC (also when the `features` key is missing); -EIO when it does not decode.
pub(crate) fn require_feature(ctx: &mut dyn ClsContext, method: &str, need: u64) -> Result<u64, Errno> {
    let f = read_features(ctx, method)?;
    if f & need != need {
        cls_log!(ctx, 10, "{method}: missing feature {need:#x}, have {f:#x}");
        return Err(Errno::ENOEXEC);
    }
    Ok(f)
}

/// The header's `op_features` (0 when absent); -EIO when it does not decode.
pub(crate) fn read_op_features(ctx: &mut dyn ClsContext) -> Result<u64, Errno> {
    Ok(read_key::<u64>(ctx, header::OP_FEATURES)?.unwrap_or(0))
}

/// Persists a change of `features` / `op_features` from `old` to `new`, writing only what
/// changed; an `op_features` of 0 deletes the key, as upstream's op-feature helper does.
pub(crate) fn write_features(ctx: &mut dyn ClsContext, old: (u64, u64), new: (u64, u64)) -> Result<(), Errno> {
    if new.0 != old.0 {
        ctx.omap_set_one(header::FEATURES, &new.0.get_encoding())?;
    }
    if new.1 != old.1 {
        if new.1 == 0 {
            ctx.omap_remove(header::OP_FEATURES)?;
        } else {
            ctx.omap_set_one(header::OP_FEATURES, &new.1.get_encoding())?;
        }
    }
    Ok(())
}

/// Upstream's op-feature rule: `op_features` becomes `(op & !mask) | (value & mask)`, and
/// feature OPERATIONS is set iff the result is non-zero. Returns the new pair.
pub(crate) fn apply_op_features(features: u64, op_features: u64, value: u64, mask: u64) -> (u64, u64) {
    use crate::types::features::RBD_FEATURE_OPERATIONS;
    let op = (op_features & !mask) | (value & mask);
    if op == op_features {
        return (features, op_features);
    }
    let f = if op == 0 { features & !RBD_FEATURE_OPERATIONS } else { features | RBD_FEATURE_OPERATIONS };
    (f, op)
}

/// Whether the header holds any snapshot record (`snapshot_*` key).
pub(crate) fn has_snapshots(ctx: &mut dyn ClsContext) -> Result<bool, Errno> {
    let (v, _) = ctx.omap_get_vals("", header::SNAPSHOT_PREFIX, 1)?;
    Ok(!v.is_empty())
}

/// Shared test fixtures for the header methods.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::codec::{SnapId, UTime};
    use crate::methods::MethodFn;
    use crate::types::features::*;
    use crate::types::header;
    use crate::types::{ParentRecord, ParentType};
    use crate::{Codec, Errno, MemContext};

    /// Features of the header fixture: layering, exclusive-lock, object-map, fast-diff,
    /// deep-flatten (0x3d, `rbd create`'s default).
    pub(crate) const DEFAULT_FEATURES: u64 =
        RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;

    /// A header as stock `create` leaves it: size, order 22, features 0x3d, object prefix,
    /// snap_seq 0 and the three timestamps.
    pub(crate) fn image_header(size: u64) -> MemContext {
        let mut c = MemContext::existing();
        let o = &mut c.object.as_mut().expect("existing").omap;
        let ts = UTime { sec: 1_700_000_000, nsec: 0 }.get_encoding();
        o.insert(header::SIZE.into(), size.get_encoding());
        o.insert(header::ORDER.into(), 22u8.get_encoding());
        o.insert(header::FEATURES.into(), DEFAULT_FEATURES.get_encoding());
        o.insert(header::OBJECT_PREFIX.into(), "rbd_data.10226b8b4567".to_string().get_encoding());
        o.insert(header::SNAP_SEQ.into(), 0u64.get_encoding());
        for k in ["create_timestamp", "access_timestamp", "modify_timestamp"] {
            o.insert(k.into(), ts.clone());
        }
        c
    }

    /// A standalone (HEAD) parent record: pool 2, image `abc123`, this overlap.
    pub(crate) fn standalone(overlap: u64) -> ParentRecord {
        ParentRecord {
            pool_id: 2,
            image_id: "abc123".into(),
            snap_id: SnapId::NOSNAP,
            head_overlap: Some(overlap),
            parent_type: ParentType::Standalone,
            ..Default::default()
        }
    }

    /// Sets (or with `None` removes) one omap key of the fixture directly.

    pub(crate) fn put(c: &mut MemContext, key: &str, value: Option<Vec<u8>>) {
        let o = &mut c.object.as_mut().expect("object exists").omap;
        match value {
            Some(v) => o.insert(key.into(), v),
            None => o.remove(key),
        };
    }

    /// Decodes one omap value of the fixture.
    pub(crate) fn get<T: Codec>(c: &MemContext, key: &str) -> Option<T> {
        c.omap().get(key).map(|b| T::read_bytes(b).expect("decodable"))
    }

    /// Runs `method` directly, without [`MemContext::call`]'s rollback, and checks that a
    /// failure left the object exactly as it was: methods must not write before they know
    /// they will succeed.
    pub(crate) fn run(c: &mut MemContext, method: MethodFn, input: &[u8]) -> Result<Vec<u8>, Errno> {
        let before = c.object.clone();
        let mut out = Vec::new();
        let r = method(c, input, &mut out);
        if r.is_err() {
            assert_eq!(c.object, before, "a failed call modified the object");
        }
        r.map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::features::*;

    #[test]
    fn op_feature_rule_as_upstream() {
        assert_eq!(apply_op_features(0x3d, 0, 1, 1), (0x13d, 1));
        assert_eq!(apply_op_features(0x13d, 1, 0, 1), (0x3d, 0));
        assert_eq!(apply_op_features(0x13d, 3, 0, 1), (0x13d, 2));
        // Unchanged: nothing moves, not even a stray OPERATIONS bit.
        assert_eq!(apply_op_features(0x13d, 0, 0, RBD_OPERATION_FEATURE_CLONE_CHILD), (0x13d, 0));
    }
}

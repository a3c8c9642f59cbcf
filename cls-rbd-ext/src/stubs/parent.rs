//! Client stubs of the parent methods; the calls go to the child's header
//! `rbd_header.<child id>`.

use super::{decode_reply, Call};
use crate::ops::{ParentAttachOp, ParentOverlapSetOp};
use crate::types::ParentRecord;
use crate::{Codec, Errno};

/// `parent_attach`: store `record` (its `head_overlap` must be `Some(n > 0)`), replacing an
/// attached parent only if `reattach`. A write call. Check the record first with
/// [`crate::ops::validate_parent_record`] for a readable error instead of -EINVAL.
pub fn parent_attach(record: &ParentRecord, reattach: bool) -> Call {
    Call::new("parent_attach", ParentAttachOp { record: record.clone(), reattach }.get_encoding())
}

/// `parent_get`: a read call; decode the reply with [`decode_parent_get`].
pub fn parent_get() -> Call {
    Call::new("parent_get", Vec::new())
}

/// Decodes a `parent_get` reply (-EBADMSG if it does not decode). A record with
/// `pool_id == -1` (and the S3-source type not set) means "no parent".
pub fn decode_parent_get(out: &[u8]) -> Result<ParentRecord, Errno> {
    decode_reply(out)
}

/// `parent_detach`: a write call.
pub fn parent_detach() -> Call {
    Call::new("parent_detach", Vec::new())
}

/// `parent_overlap_set`: shrink the HEAD overlap to `overlap` bytes. A write call.
pub fn parent_overlap_set(overlap: u64) -> Call {
    Call::new("parent_overlap_set", ParentOverlapSetOp { overlap }.get_encoding())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SnapId;
    use crate::types::ParentType;
    use crate::CLASS_NAME;

    #[test]
    fn calls() {
        let rec = ParentRecord {
            pool_id: 1,
            image_id: "abc".into(),
            snap_id: SnapId::NOSNAP,
            head_overlap: Some(10),
            parent_type: ParentType::Standalone,
            ..Default::default()
        };
        let c = parent_attach(&rec, false);
        assert_eq!((c.class, c.method), (CLASS_NAME, "parent_attach"));
        assert_eq!(c.input, rec.get_encoding());
        assert_eq!(parent_attach(&rec, true).input, [rec.get_encoding(), vec![1]].concat());
        assert_eq!(parent_get().input, b"");
        assert_eq!(parent_detach().method, "parent_detach");
        assert_eq!(parent_overlap_set(5).input, 5u64.get_encoding());
        assert_eq!(decode_parent_get(&rec.get_encoding()), Ok(rec));
        assert_eq!(decode_parent_get(b"\x04\x02"), Err(Errno::EBADMSG));
    }
}

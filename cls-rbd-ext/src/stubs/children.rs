//! Client stubs of the HEAD-children methods; the calls go to the parent's header
//! `rbd_header.<parent id>`. Only HEAD children exist here: snapshot children are stock
//! `rbd.child_attach`'s.

use super::{decode_reply, Call};
use crate::codec::SnapId;
use crate::ops::{ChildOp, ChildrenListOp, ProtectionSetOp};
use crate::types::{ChildImageSpec, ChildImageSpecs, ProtectionMode};
use crate::{Codec, Errno};

/// `child_attach` of `child` to the parent's HEAD (protects the parent on the first). A
/// write call.
pub fn child_attach(child: &ChildImageSpec) -> Call {
    Call::new("child_attach", ChildOp { snap_id: SnapId::NOSNAP, spec: child.clone(), cluster: String::new() }.get_encoding())
}

/// `child_detach` of `child` from the parent's HEAD (unprotects the parent on the last). A
/// write call.
pub fn child_detach(child: &ChildImageSpec) -> Call {
    Call::new("child_detach", ChildOp { snap_id: SnapId::NOSNAP, spec: child.clone(), cluster: String::new() }.get_encoding())
}

/// `protection_set`: switches a protected parent (one with standalone children) to `mode`.
/// A write call; -ENOENT when the image has no standalone children.
pub fn protection_set(mode: ProtectionMode) -> Call {
    Call::new("protection_set", ProtectionSetOp { mode }.get_encoding())
}

/// `child_attach` of a child that lives in another cluster (fsid `cluster`): kept in that
/// cluster's own set on the parent, which protects the parent like a local child.
pub fn child_attach_remote(child: &ChildImageSpec, cluster: &str) -> Call {
    Call::new("child_attach", ChildOp { snap_id: SnapId::NOSNAP, spec: child.clone(), cluster: cluster.to_string() }.get_encoding())
}

/// `child_detach` of a child registered with [`child_attach_remote`].
pub fn child_detach_remote(child: &ChildImageSpec, cluster: &str) -> Call {
    Call::new("child_detach", ChildOp { snap_id: SnapId::NOSNAP, spec: child.clone(), cluster: cluster.to_string() }.get_encoding())
}

/// `children_list`: at most `max` (0 = all) HEAD children strictly after `start_after`. A
/// read call; decode the reply with [`decode_children_list`]. To page, pass the last child
/// of a page as the next `start_after` until a page holds fewer than `max`. -ENOENT means
/// the parent has no children.
pub fn children_list(max: u32, start_after: Option<&ChildImageSpec>) -> Call {
    let op = ChildrenListOp { snap_id: SnapId::NOSNAP, max, start_after: start_after.cloned() };
    Call::new("children_list", op.get_encoding())
}

/// Decodes a `children_list` reply (-EBADMSG if it does not decode).
pub fn decode_children_list(out: &[u8]) -> Result<ChildImageSpecs, Errno> {
    decode_reply(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls() {
        let c = ChildImageSpec { pool_id: 3, pool_namespace: String::new(), image_id: "abc".into() };
        let a = child_attach(&c);
        assert_eq!(a.method, "child_attach");
        assert_eq!(ChildOp::read_bytes(&a.input), Ok(ChildOp { snap_id: SnapId::NOSNAP, spec: c.clone(), cluster: String::new() }));
        assert_eq!(child_detach(&c).method, "child_detach");
        assert_eq!(children_list(0, None).input, SnapId::NOSNAP.get_encoding());
        let l = ChildrenListOp::read_bytes(&children_list(7, Some(&c)).input).unwrap();
        assert_eq!((l.max, l.start_after), (7, Some(c.clone())));
        let set: ChildImageSpecs = [c].into();
        assert_eq!(decode_children_list(&set.get_encoding()), Ok(set));
        assert_eq!(decode_children_list(b"\x01\x00\x00\x00"), Err(Errno::EBADMSG));
    }
}

//! Requests of the HEAD-children methods (`child_attach`, `child_detach`, `children_list`).

use crate::codec::{Codec, DecodeError, Reader, SnapId};
use crate::types::header::{is_valid_image_id, is_valid_namespace};
use crate::types::ChildImageSpec;

/// Input of `child_attach` and `child_detach`: u64 snap_id · ChildImageSpec, as upstream,
/// then an optional trailing string `cluster`: the fsid of the cluster the child lives in
/// when that is not the parent's (a remote-standalone child); absent or empty = this
/// cluster. `snap_id` must be `CEPH_NOSNAP`: children of snapshots belong to stock `rbd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildOp {
    /// The parent snapshot; only `CEPH_NOSNAP` (HEAD) is accepted.
    pub snap_id: SnapId,
    /// The child image.
    pub spec: ChildImageSpec,
    /// Fsid of the child's cluster when it is another cluster; "" for this one.
    pub cluster: String,
}

impl Codec for ChildOp {
    fn encode(&self, out: &mut Vec<u8>) {
        self.snap_id.encode(out);
        self.spec.encode(out);
        if !self.cluster.is_empty() {
            self.cluster.encode(out);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let snap_id = SnapId::read(r)?;
        let spec = ChildImageSpec::read(r)?;
        let cluster = if r.any_left() { String::read(r)? } else { String::new() };
        Ok(ChildOp { snap_id, spec, cluster })
    }
}

/// Whether `fsid` is acceptable as a remote cluster id (it becomes part of an omap key):
/// 1-64 ASCII letters, digits or `-`.
pub fn is_valid_cluster_fsid(fsid: &str) -> bool {
    !fsid.is_empty() && fsid.len() <= 64 && fsid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Input of `children_list`: u64 snap_id, then an optional trailing u32 `max` (0 = no limit)
/// and, after it, an optional ChildImageSpec `start_after`. The optional fields are encoded
/// only when needed (`max` when non-zero or when `start_after` follows) and decoded only
/// when present, so upstream's input (a bare snap_id) lists everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildrenListOp {
    /// The parent snapshot; only `CEPH_NOSNAP` (HEAD) is accepted.
    pub snap_id: SnapId,
    /// Most entries to return; 0 = all.
    pub max: u32,
    /// Return only entries strictly after this one (in set order); `None` = from the start.
    pub start_after: Option<ChildImageSpec>,
}

impl Codec for ChildrenListOp {
    fn encode(&self, out: &mut Vec<u8>) {
        self.snap_id.encode(out);
        if self.max != 0 || self.start_after.is_some() {
            self.max.encode(out);
        }
        if let Some(s) = &self.start_after {
            s.encode(out);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let snap_id = SnapId::read(r)?;
        let max = if r.any_left() { u32::read(r)? } else { 0 };
        let start_after = if r.any_left() { Some(ChildImageSpec::read(r)?) } else { None };
        Ok(ChildrenListOp { snap_id, max, start_after })
    }
}

/// Checks a child spec before it is registered: `pool_id >= 0`, a valid image id
/// (non-empty, ASCII alphanumeric) and a namespace without NUL or `/`. The error text
/// says which rule failed.
pub fn validate_child_spec(s: &ChildImageSpec) -> Result<(), &'static str> {
    if s.pool_id < 0 {
        return Err("child pool_id must be >= 0");
    }
    if !is_valid_image_id(&s.image_id) {
        return Err("child image_id must be non-empty and ASCII alphanumeric");
    }
    if !is_valid_namespace(&s.pool_namespace) {
        return Err("child pool_namespace must not contain NUL or '/'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> ChildImageSpec {
        ChildImageSpec { pool_id: 3, pool_namespace: String::new(), image_id: id.into() }
    }

    #[test]
    fn child_op_is_upstream_layout() {
        let op = ChildOp { snap_id: SnapId::NOSNAP, spec: spec("10226b8b4567"), cluster: String::new() };
        let b = op.get_encoding();
        assert_eq!(&b[..8], &SnapId::NOSNAP.get_encoding()[..]);
        assert_eq!(&b[8..], &spec("10226b8b4567").get_encoding()[..]);
        assert_eq!(ChildOp::read_bytes(&b), Ok(op.clone()));
        assert!(ChildOp::read_bytes(&b[..8]).is_err());
        let remote = ChildOp { cluster: "6c5e1d7e-0a4f-4a8e-9e57-0d1c2b3a4f5e".into(), ..op.clone() };
        let b = remote.get_encoding();
        assert_eq!(ChildOp::read_bytes(&b), Ok(remote));
        assert!(is_valid_cluster_fsid("6c5e1d7e-0a4f-4a8e-9e57-0d1c2b3a4f5e"));
        assert!(!is_valid_cluster_fsid("") && !is_valid_cluster_fsid("a/b") && !is_valid_cluster_fsid(&"a".repeat(65)));
    }

    #[test]
    fn list_op_optional_fields() {
        let bare = ChildrenListOp { snap_id: SnapId::NOSNAP, max: 0, start_after: None };
        assert_eq!(bare.get_encoding().len(), 8);
        assert_eq!(ChildrenListOp::read_bytes(&bare.get_encoding()), Ok(bare.clone()));
        let max = ChildrenListOp { max: 10, ..bare.clone() };
        assert_eq!(max.get_encoding().len(), 12);
        assert_eq!(ChildrenListOp::read_bytes(&max.get_encoding()), Ok(max));
        let after = ChildrenListOp { start_after: Some(spec("a")), ..bare.clone() };
        let b = after.get_encoding();
        assert_eq!(&b[8..12], &[0, 0, 0, 0]);
        assert_eq!(ChildrenListOp::read_bytes(&b), Ok(after));
        assert!(ChildrenListOp::read_bytes(&b[..10]).is_err());
    }

    #[test]
    fn child_specs() {
        assert_eq!(validate_child_spec(&spec("abc")), Ok(()));
        assert!(validate_child_spec(&ChildImageSpec { pool_id: -1, ..spec("abc") }).is_err());
        assert!(validate_child_spec(&spec("")).is_err());
        assert!(validate_child_spec(&spec("a.b")).is_err());
        assert!(validate_child_spec(&ChildImageSpec { pool_namespace: "x/y".into(), ..spec("abc") }).is_err());
    }
}

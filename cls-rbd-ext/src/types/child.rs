//! Upstream `cls::rbd::ChildImageSpec` and the children set stored per parent snapshot.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader, SnapId};

/// One clone registered with its parent: envelope v2/compat 1, wire order
/// pool_id · image_id · pool_namespace (not declaration order, as upstream).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ChildImageSpec {
    /// Pool of the child.
    pub pool_id: i64,
    /// RADOS namespace of the child.
    pub pool_namespace: String,
    /// Image id of the child.
    pub image_id: String,
}

/// Upstream's order: pool (signed), then namespace, then image id.
impl Ord for ChildImageSpec {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.pool_id, &self.pool_namespace, &self.image_id).cmp(&(other.pool_id, &other.pool_namespace, &other.image_id))
    }
}

impl PartialOrd for ChildImageSpec {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Codec for ChildImageSpec {
    const MIN_SIZE: usize = 6 + 8 + 4;

    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 2, 1, |o| {
            self.pool_id.encode(o);
            self.image_id.encode(o);
            self.pool_namespace.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "ChildImageSpec", 2)?;
        let b = &mut env.body;
        let pool_id = i64::read(b)?;
        let image_id = String::read(b)?;
        let pool_namespace = if env.version >= 2 { String::read(b)? } else { String::new() };
        Ok(ChildImageSpec { pool_id, pool_namespace, image_id })
    }
}

/// `ChildImageSpecs`: the value of `snap_children_<id>` (no outer envelope).
pub type ChildImageSpecs = BTreeSet<ChildImageSpec>;

/// The header key holding the children of snapshot `snap` (`snap_children_000000000000head`
/// for HEAD).
pub fn snap_children_key(snap: SnapId) -> String {
    format!("snap_children_{}", snap.key_suffix())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn facts_example_bytes() {
        // ceph-wire-facts.md §3.1: pool 3, ns "", image "10226b8b4567".
        let expect: Vec<u8> = [&[0x02u8, 0x01, 0x1c, 0, 0, 0][..], &[3, 0, 0, 0, 0, 0, 0, 0], &[0x0c, 0, 0, 0], b"10226b8b4567", &[0, 0, 0, 0]].concat();
        let c = ChildImageSpec { pool_id: 3, pool_namespace: String::new(), image_id: "10226b8b4567".into() };
        assert_eq!(c.get_encoding(), expect);
        assert_eq!(ChildImageSpec::read_bytes(&expect), Ok(c));
    }

    #[test]
    fn v1_has_no_namespace() {
        let mut b = Vec::new();
        encode_envelope(&mut b, 1, 1, |o| {
            5i64.encode(o);
            "x".to_string().encode(o);
        });
        assert_eq!(ChildImageSpec::read_bytes(&b).unwrap().pool_namespace, "");
    }

    #[test]
    fn key_for_head() {
        assert_eq!(snap_children_key(SnapId::NOSNAP), "snap_children_000000000000head");
        assert_eq!(snap_children_key(SnapId(0x2a)), "snap_children_000000000000002a");
    }

    #[test]
    fn set_order_is_pool_namespace_image() {
        let s: ChildImageSpecs = [
            ChildImageSpec { pool_id: 2, pool_namespace: "".into(), image_id: "a".into() },
            ChildImageSpec { pool_id: -1, pool_namespace: "z".into(), image_id: "a".into() },
            ChildImageSpec { pool_id: 2, pool_namespace: "".into(), image_id: "0".into() },
            ChildImageSpec { pool_id: 1, pool_namespace: "b".into(), image_id: "a".into() },
            ChildImageSpec { pool_id: 1, pool_namespace: "a".into(), image_id: "z".into() },
        ]
        .into();
        let order: Vec<_> = s.iter().map(|c| (c.pool_id, c.pool_namespace.as_str(), c.image_id.as_str())).collect();
        assert_eq!(order, [(-1, "z", "a"), (1, "a", "z"), (1, "b", "a"), (2, "", "0"), (2, "", "a")]);
    }

    proptest! {
        #[test]
        fn round_trip(specs in prop::collection::btree_set((any::<i64>(), "[a-z]{0,3}", "[a-z0-9]{1,8}"), 0..20)) {
            let set: ChildImageSpecs = specs.into_iter().map(|(p, n, i)| ChildImageSpec { pool_id: p, pool_namespace: n, image_id: i }).collect();
            let b = set.get_encoding();
            prop_assert_eq!(ChildImageSpecs::read_bytes(&b), Ok(set));
            for cut in 0..b.len() {
                prop_assert!(ChildImageSpecs::read_bytes(&b[..cut]).is_err());
            }
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = ChildImageSpecs::read_bytes(&b);
        }
    }
}

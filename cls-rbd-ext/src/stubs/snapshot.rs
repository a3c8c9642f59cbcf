//! Client stubs of the snapshot methods; the calls go to the image's header.

use super::Call;
use crate::codec::SnapId;
use crate::ops::{SnapGuardMode, SnapGuardOp, SnapshotAddOp, SnapshotParentSetOp};
use crate::types::SnapshotNamespace;
use crate::Codec;

/// `snapshot_add`: stock's snapshot add with the HEAD parent overlap kept. A write call.
pub fn snapshot_add(name: &str, id: SnapId, namespace: SnapshotNamespace) -> Call {
    Call::new("snapshot_add", SnapshotAddOp { name: name.to_string(), id, namespace }.get_encoding())
}

/// `snapshot_parent_set`: give snapshot `id` (made by stock of a standalone child) the
/// overlap it reads through. A write call.
pub fn snapshot_parent_set(id: SnapId, overlap: u64) -> Call {
    Call::new("snapshot_parent_set", SnapshotParentSetOp { id, overlap }.get_encoding())
}

/// `snap_guard`: arm (making guard snapshot `guard_id` if the image has none and an id is
/// given; stock `snap create` then fails closed), lift, or remove the snapshot guard. A
/// write call.
pub fn snap_guard(mode: SnapGuardMode, guard_id: Option<SnapId>) -> Call {
    Call::new("snap_guard", SnapGuardOp { mode, guard_id: guard_id.unwrap_or(SnapId::NOSNAP) }.get_encoding())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls() {
        let c = snapshot_add("s", SnapId(3), SnapshotNamespace::user());
        assert_eq!(c.method, "snapshot_add");
        assert_eq!(c.input, [&[1u8, 0, 0, 0][..], b"s", &3u64.to_le_bytes(), &[1, 1, 4, 0, 0, 0, 0, 0, 0, 0]].concat());
        assert_eq!(snapshot_parent_set(SnapId(3), 9).input, [3u64.to_le_bytes(), 9u64.to_le_bytes()].concat());
        assert_eq!(snap_guard(SnapGuardMode::Arm, Some(SnapId(7))).input, [&[1u8][..], &7u64.to_le_bytes()].concat());
        assert_eq!(snap_guard(SnapGuardMode::Lift, None).input, [&[0u8][..], &SnapId::NOSNAP.0.to_le_bytes()].concat());
    }
}

//! Requests of the snapshot methods (`snapshot_add`, `snapshot_parent_set`, `snap_guard`).

use crate::codec::{Codec, DecodeError, Reader, SnapId};
use crate::types::SnapshotNamespace;

/// Input of `snapshot_add`: exactly stock `rbd.snapshot_add`'s (string name, u64 id, then an
/// optional `SnapshotNamespace`, absent = user), so a caller can send the same bytes to
/// either class.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotAddOp {
    /// Snapshot name.
    pub name: String,
    /// Id allocated from the data pool (`selfmanaged_snap_create`).
    pub id: SnapId,
    /// Namespace.
    pub namespace: SnapshotNamespace,
}

impl Codec for SnapshotAddOp {
    const MIN_SIZE: usize = 12;

    fn encode(&self, out: &mut Vec<u8>) {
        self.name.encode(out);
        self.id.encode(out);
        self.namespace.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = String::read(r)?;
        let id = SnapId::read(r)?;
        let namespace = if r.any_left() { SnapshotNamespace::read(r)? } else { SnapshotNamespace::user() };
        Ok(SnapshotAddOp { name, id, namespace })
    }
}

/// Input of `snapshot_parent_set`: the snapshot id and the overlap it reads through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotParentSetOp {
    /// The snapshot to repair.
    pub id: SnapId,
    /// The child's HEAD overlap at snapshot time (clamped to the snapshot's size).
    pub overlap: u64,
}

impl Codec for SnapshotParentSetOp {
    const MIN_SIZE: usize = 16;

    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        self.overlap.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SnapshotParentSetOp { id: SnapId::read(r)?, overlap: u64::read(r)? })
    }
}

/// What `snap_guard` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapGuardMode {
    /// Give `snap_limit` back to the user (the guard snapshot stays): stock `snap create`
    /// works again, for a request rbd-ext sends to a librbd lock owner.
    #[default]
    Lift,
    /// Make the guard snapshot (when `guard_id` is given and there is none) and hold
    /// `snap_limit` at 1.
    Arm,
    /// Lift, and delete the guard snapshot's record (the caller releases its id and its
    /// object map copy): for an image that is no longer a standalone child.
    Remove,
}

/// Input of `snap_guard`: u8 mode (0 lift, 1 arm, 2 remove), then u64 guard id (the
/// snapshot id the caller allocated for a new guard; CEPH_NOSNAP: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapGuardOp {
    /// What to do.
    pub mode: SnapGuardMode,
    /// Id for a new guard snapshot, or NOSNAP.
    pub guard_id: SnapId,
}

impl Default for SnapGuardOp {
    fn default() -> Self {
        SnapGuardOp { mode: SnapGuardMode::Lift, guard_id: SnapId::NOSNAP }
    }
}

impl Codec for SnapGuardOp {
    const MIN_SIZE: usize = 9;

    fn encode(&self, out: &mut Vec<u8>) {
        let m: u8 = match self.mode {
            SnapGuardMode::Lift => 0,
            SnapGuardMode::Arm => 1,
            SnapGuardMode::Remove => 2,
        };
        m.encode(out);
        self.guard_id.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mode = match u8::read(r)? {
            0 => SnapGuardMode::Lift,
            1 => SnapGuardMode::Arm,
            2 => SnapGuardMode::Remove,
            _ => return Err(DecodeError::Invalid("snap_guard mode")),
        };
        Ok(SnapGuardOp { mode, guard_id: SnapId::read(r)? })
    }
}

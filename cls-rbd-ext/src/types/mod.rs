//! Stored and shared wire types (the role of upstream `cls_rbd_types.h`).

pub mod backfill;
mod child;
mod child_set;
mod clone_map;
mod crc32c;
pub mod features;
pub mod header;
mod parent;
mod protect;
mod snap_context;
mod snapshot;

pub use child::{snap_children_key, ChildImageSpec, ChildImageSpecs};
pub(crate) use child_set::ChildSetView;
pub use clone_map::{
    block_crcs, clone_map_object, decode_stored_map, encode_stored_map, fill_nibbles, get_nibble, pack_runs, packed_len, set_nibble, stored_header_len, unpack,
    CloneMapError, CloneMapHeader, CloneMapLayout, CloneMapState, StateRun, CLONE_MAP_BITS_PER_ENTRY, CLONE_MAP_BLOCK_SIZE, CLONE_MAP_HEADER_PROBE_LEN,
    CLONE_MAP_MAX_HEADER_LEN, CLONE_MAP_MAX_OBJECT_COUNT, CLONE_MAP_OBJECT_PREFIX,
};
pub use crc32c::ceph_crc32c;
pub use parent::{ParentImageSpec, ParentRecord, ParentType};
pub use protect::{migration_header, ParentProtection, ProtectionMode};
pub use snap_context::SnapContext;
pub use snapshot::{snap_namespace, snapshot_key, SnapshotNamespace, SnapshotRecord};

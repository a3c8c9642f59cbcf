//! One request struct per method (the role of upstream `cls_*_ops.h`), shared by the
//! method bodies and the client stubs.

mod backfill;
mod children;
mod clone_map;
mod parent;
mod protection;
mod snapshot;
mod version;

pub use backfill::{BackfillAbortOp, BackfillClaimOp, BackfillCompleteOp, BACKFILL_MAX_TTL_MS};
pub use children::{is_valid_cluster_fsid, validate_child_spec, ChildOp, ChildrenListOp};
pub use clone_map::{
    CloneMapEntries, CloneMapGetOp, CloneMapGetReply, CloneMapInitOp, CloneMapResizeOp, CloneMapUpdateManyOp, CloneMapUpdateOp, RunLength,
    CLONE_MAP_MAX_GET_ENTRIES, CLONE_MAP_MAX_UPDATES,
};
pub use parent::{validate_parent_record, InvalidParent, ParentAttachOp, ParentOverlapSetOp};
pub use protection::ProtectionSetOp;
pub use snapshot::{SnapGuardMode, SnapGuardOp, SnapshotAddOp, SnapshotParentSetOp};
pub use version::PingOp;

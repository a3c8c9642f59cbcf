//! Stored and shared wire types (the role of upstream `cls_rbd_types.h`).

mod child;
mod parent;

pub use child::{snap_children_key, ChildImageSpec, ChildImageSpecs};
pub use parent::{ParentImageSpec, ParentRecord, ParentType};

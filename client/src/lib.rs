//! rbd-ext client: standalone copy-on-write RBD clones over librados.
//!
//! - [`rados`]: the safe librados wrapper (cluster, I/O contexts, compound and aio ops,
//!   class calls, watch/notify, locks) and the few librbd calls delegated to stock code;
//! - [`Image`]: an open image, reading through to its parent and copying up on write;
//! - [`nbd`]: an NBD server over an image;
//! - [`clone_standalone`], [`children`], [`remove`], [`flatten`]: image management;
//! - [`reconcile`]: repairs what stock tools left behind (orphan clone maps, stale children,
//!   stuck protection, clone-map entries behind a stock client's copy-ups);
//! - [`Error`]: what failed (image, object, operation) and its errno.
//!
//! Everything written is what librbd would have written (DESIGN.md §0), so stock clients
//! and rbd-ext can take turns on one child.
//!
//! Cargo features (both off by default, for tests only): `testproxy` builds
//! `s3::testproxy`, a fault-injecting S3 proxy; `kill-points` arms the crash points of
//! `kill_point.rs` (`RBD_EXT_KILL_POINT`).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod allocation;
pub mod backfill;
pub mod ceph_args;
pub mod clone_map;
pub mod doctor;
pub mod error;
pub mod extents;
mod guard;
pub mod header;
mod image;
mod info;
mod kill_point;
pub mod lock;
mod manage;
pub mod nbd;
#[allow(unsafe_code)]
pub mod rados;
mod reconcile;
pub mod remote;
pub mod s3_finalize;
pub mod s3_parent;
pub mod secret;
pub mod s3;
pub mod spec;
mod stream;
mod task;

pub use error::{Errno, Error, Hint, Result};
pub use image::{wait_for_pending_closes, Image, ImageInfo, OpenOptions};
pub use info::{image_details, CloneMapCounts, ImageDetails, ParentInfo, ProtectionInfo, RemoteParentInfo};
pub use manage::{
    check_clone_map, child_entries, children, clone_standalone, descendants, flatten, protection, remove, set_protection, CheckReport,
    Children, CloneOptions, Descendants, Progress, RemoteOptions, Removed,
};
pub use rbd_ext_cls::types::{ParentProtection, ParentType, ProtectionMode};
pub use reconcile::reconcile;
pub use spec::ImageSpec;
pub use stream::{aligned_chunk, chunks, import, read_range, write_from, CopyError, ImportError, ImportOptions, WriteFromOptions};

/// The management calls for callers without a Tokio runtime: the same names and arguments
/// as the async ones at the crate root, blocking the calling thread until done. Never call
/// them from async code (a remote parent's cluster may take seconds to answer).
///
/// ```no_run
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let (parent, child) = ("rbd/golden".parse()?, "rbd/vm1".parse()?);
/// rbd_ext::blocking::clone_standalone(&cluster, &parent, &child, &rbd_ext::CloneOptions::default())?;
/// # Ok::<(), rbd_ext::Error>(())
/// ```
pub mod blocking {
    pub use crate::manage::{
        check_clone_map_blocking as check_clone_map, children_blocking as children, clone_standalone_blocking as clone_standalone,
        descendants_blocking as descendants, protection_blocking as protection, remove_blocking as remove,
        set_protection_blocking as set_protection,
    };
    pub use crate::reconcile::reconcile_blocking as reconcile;
}

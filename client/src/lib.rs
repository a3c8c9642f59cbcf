//! rbd-ext client: standalone copy-on-write RBD clones over librados.
//!
//! The library stands alone: the `rbd-ext` command line (package `rbd-ext-cli`) is one
//! front end over it, the C and Python bindings are others. Its errors name no
//! command-line flags; a refusal the caller can change carries a [`Hint`].
//!
//! - management: [`clone_standalone`], [`children`], [`descendants`], [`remove`],
//!   [`flatten`], [`protection`], [`set_protection`], [`check_clone_map`], [`reconcile`],
//!   [`image_details`] (what `rbd info` shows, typed). They are async and run their
//!   librados round trips on Tokio's blocking pool; [`blocking`] has the same calls for
//!   callers without a runtime;
//! - I/O: [`Image`] ([`Image::open`]), an open image reading through to its parent and
//!   copying up on write; [`read_range`] and [`write_from`] stream whole ranges, [`import`]
//!   creates an image from a stream;
//! - S3-backed parents: [`s3_parent`] ([`s3_attach`], [`s3_verify`], [`s3_publish`],
//!   [`hydrate`], [`s3_stats`](s3_parent::s3_stats)) and [`s3_finalize()`];
//! - [`rados`]: the safe librados wrapper (cluster, I/O contexts, compound and aio ops,
//!   class calls, watch/notify, locks) and the few librbd calls delegated to stock code;
//! - [`nbd`]: an NBD server over an image;
//! - [`Error`]: what failed (image, object, operation), its errno and maybe a [`Hint`].
//!
//! Everything written is what librbd would have written (DESIGN.md §0), so stock clients
//! and rbd-ext can take turns on one child.
//!
//! ```no_run
//! # async fn demo() -> rbd_ext::Result<()> {
//! use rbd_ext::rados::{Cluster, ConnectOptions};
//! use rbd_ext::{CloneOptions, Image, OpenOptions};
//!
//! let cluster = Cluster::connect(&ConnectOptions::default())?;
//! let (golden, vm) = ("rbd/golden".parse()?, "vms/vm1".parse()?);
//! rbd_ext::clone_standalone(&cluster, &golden, &vm, &CloneOptions::default()).await?;
//! let image = Image::open(&cluster, &vm, OpenOptions::default().with_write(true)).await?;
//! image.write_at(0, &[0xeb, 0x3c, 0x90]).await?;
//! image.close_async().await?;
//! assert_eq!(rbd_ext::children(&cluster, &golden).await?.children, [vm]);
//! # Ok(()) }
//! ```
//!
//! Cargo features (both off by default, for tests only): `testproxy` builds
//! `s3::testproxy`, a fault-injecting S3 proxy; `kill-points` arms the crash points of
//! `kill_point.rs` (`RBD_EXT_KILL_POINT`).

#![deny(unsafe_code)]
#![warn(missing_docs)]
// A documentation build fails on an undocumented public item or a broken link.
#![cfg_attr(doc, deny(missing_docs, rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links))]

mod allocation;
pub mod backfill;
pub mod ceph_args;
pub mod clone_map;
pub mod doctor;
mod error;
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
pub mod s3;
pub mod s3_finalize;
pub mod s3_parent;
mod secret;
pub mod snapshot;
pub mod spec;
mod stream;
mod task;

pub use allocation::Allocation;
pub use backfill::BackfillStats;
pub use error::{Errno, Error, Hint, Result};
pub use image::{wait_for_pending_closes, Image, ImageInfo, OpenOptions};
pub use info::{image_details, CloneMapCounts, ImageDetails, ParentInfo, ProtectionInfo, RemoteParentInfo};
pub use manage::{
    check_clone_map, child_entries, children, clone_standalone, descendants, flatten, protection, remove, set_protection, CheckReport, Children, CloneOptions,
    Descendants, Progress, RemoteOptions, Removed,
};
pub use rbd_ext_cls::types::{ParentProtection, ParentType, ProtectionMode};
pub use reconcile::reconcile;
pub use s3_finalize::{s3_finalize, FinalizeReport};
pub use s3_parent::{hydrate, s3_attach, s3_publish, s3_verify, AttachOptions, HydrateReport, ImageStats, PublishSource, VerifyReport};
pub use snapshot::{snap_create, BrokenSnapshot};
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
        descendants_blocking as descendants, protection_blocking as protection, remove_blocking as remove, set_protection_blocking as set_protection,
    };
    pub use crate::reconcile::reconcile_blocking as reconcile;
    pub use crate::snapshot::snap_create_blocking as snap_create;
}

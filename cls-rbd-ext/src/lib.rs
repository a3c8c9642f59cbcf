//! The `rbd_ext` Ceph object class: wire types, method logic and client stubs.
//!
//! This crate is the substance of the OSD plugin `libcls_rbd_ext.so` and is shared with the
//! client, so every wire type has one definition (as upstream shares `cls_rbd_types`
//! between `cls_rbd.cc` and `cls_rbd_client.cc`). It does no I/O and contains no `unsafe`:
//! methods run against the [`ClsContext`] trait, implemented over the OSD by the plugin
//! cdylib and in memory by [`MemContext`] for tests.
//!
//! Layout, after upstream `src/cls/lock/`:
//! - [`codec`]: Ceph's encoding primitives and versioned envelope;
//! - [`types`]: stored and shared types (`cls_lock_types.h`);
//! - [`ops`]: one request struct per method (`cls_lock_ops.h`);
//! - [`methods`]: the method bodies and the registration table (`cls_lock.cc`);
//! - [`stubs`]: client-side request encoding and reply decoding (`cls_lock_client.cc`).
//!
//! Cargo features:
//! - `test-methods`: registers `test_panic`, a method that panics on purpose, so tests can
//!   prove a panic never crosses into the OSD.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod codec;
pub mod context;
mod errno;
pub mod methods;
pub mod ops;
pub mod stubs;
pub mod types;

pub use codec::{Codec, DecodeError, Reader, SnapId};
pub use context::{ClsContext, MemContext};
pub use errno::Errno;

/// The class name the OSD loads (`libcls_<name>.so`) and clients call.
pub const CLASS_NAME: &str = "rbd_ext";

/// The plugin version `get_version` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

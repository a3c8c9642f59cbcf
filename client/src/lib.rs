//! rbd-ext client: standalone copy-on-write RBD clones over librados.
//!
//! - [`rados`]: the safe librados wrapper (cluster, I/O contexts, compound ops, class calls);
//! - [`Error`]: what failed (image, object, operation) and its errno.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
#[allow(unsafe_code)]
pub mod rados;

pub use error::{Errno, Error, Result};

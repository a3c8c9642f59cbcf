//! S3 access for S3-backed parents (DESIGN.md §4).
//!
//! - [`S3Client`]: one bucket over pooled keep-alive HTTP/1.1 (rustls for `https://`), SigV4
//!   or anonymous, strict ranged GETs, PUT and multipart upload, bounded jittered retries,
//!   counters ([`S3Stats`]);
//! - [`S3Error`]: kind, errno, URL and HTTP status of a failure; converts into
//!   [`crate::Error`] keeping the message;
//! - [`AwsEnv`]: credentials, endpoint and region from the standard `AWS_*` variables and
//!   `~/.aws/` files (for commands that talk to S3 directly);
//! - [`Manifest`]: the per-object SHA-256 / zero map published beside a raw image;
//! - [`SecretRef`], [`resolve_secret`], [`store_secret`]: `config://<key>` secret
//!   references in the mon config-key store (inline secrets are refused);
//! - `testproxy` (feature `testproxy`): a fault-injecting proxy and a tiny in-memory S3.
//!
//! Secrets never reach a log line, an error message or a `Debug` output.

mod aws;
mod client;
mod error;
mod manifest;
mod sigv4;
mod stats;
#[cfg(any(test, feature = "testproxy"))]
pub mod testproxy;
mod trust;
mod url;

#[cfg(test)]
mod tests;

pub use crate::secret::{resolve_secret, store_secret, SecretRef};
pub use aws::AwsEnv;
pub use client::{CompletedPart, Credentials, ObjectInfo, ObjectPin, PutOptions, S3Client, S3Config, MAX_PARTS, MIN_PART_SIZE};
pub use error::{S3Error, S3ErrorKind};
pub use manifest::{manifest_key, Manifest, ManifestBuilder, MANIFEST_SUFFIX, MANIFEST_VERSION};
pub use stats::{Failures, Latency, LatencyBucket, S3Stats};

//! An NBD server over an [`Image`](crate::Image) (`rbd-ext nbd serve`): QEMU, `nbd-client`
//! (the kernel's `/dev/nbdX`), libnbd and nbdkit clients read and write any image rbd-ext
//! can open, S3-backed and remote children included.
//!
//! - [`proto`]: the wire format (fixed newstyle handshake, options, requests, simple and
//!   structured replies), pure;
//! - `server`: the listener, the handshake and the transmission phase ([`serve`]).

pub mod proto;
mod server;

pub use server::{serve, Listener, Logger, ServeOptions};

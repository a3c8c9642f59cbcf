//! Blocking librados work moved off the async workers.
//!
//! Management calls (open, clone, children, remove...) are chains of synchronous
//! round trips, and opening a remote parent may wait seconds for its cluster: run on a
//! Tokio worker they would stall every other future of that worker.

use crate::error::{Errno, Error, Result};

/// Runs `f` on Tokio's blocking pool and waits for it without blocking the caller's worker.
/// Needs a Tokio runtime (as every async entry point of the library does).
pub(crate) async fn offload<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        // A panic stays a panic, in the caller's task, as if `f` had run there.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::new(Errno::ECANCELED, "blocking task cancelled (the runtime is shutting down)")),
    }
}

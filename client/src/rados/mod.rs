//! RADOS access: the safe wrapper over librados (`ffi`) and conveniences over it.
//!
//! Every error names the object and the operation, so a caller only adds the image.

mod ffi;
mod rbd_ffi;

pub use ffi::{AioOp, Cluster, ConnectOptions, IoCtx, NotifyHandler, OpResult, ReadOp, ReadStep, StepOut, Watch, WatchErrorHandler, WriteOp, WriteStep};
pub use rbd_ffi::{create_image, remove_image, snap_create, CreateOptions};

use rbd_ext_cls::stubs::Call;

use crate::error::{Errno, Error, Result};

/// Runs a librados call that has no aio form off the async runtime's worker threads (as
/// tokio's `fs::asyncify`), so a slow OSD or a slow watcher never stalls other requests.
/// Outside a runtime it runs in place.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => rt.spawn_blocking(f).await.map_err(|e| Error::new(Errno::EIO, format!("blocking RADOS call failed: {e}")))?,
        Err(_) => f(),
    }
}

fn fail(rc: i32, oid: &str, what: impl std::fmt::Display) -> Error {
    Error::new(Errno(-rc), format!("object {oid}: {what}"))
}

impl ReadOp {
    /// Adds a class call (by value: its input is moved, not copied).
    pub fn exec(mut self, call: impl Into<Call>) -> Self {
        let call = call.into();
        self.steps.push(ReadStep::Exec { class: call.class.into(), method: call.method.into(), input: call.input });
        self
    }
}

impl WriteOp {
    /// Adds a class call (by value: its input is moved, not copied).
    pub fn exec(mut self, call: impl Into<Call>) -> Self {
        let call = call.into();
        self.steps.push(WriteStep::Exec { class: call.class.into(), method: call.method.into(), input: call.input });
        self
    }

    /// Adds a step.
    pub fn step(mut self, s: WriteStep) -> Self {
        self.steps.push(s);
        self
    }
}

/// The output of a one-call read op, or its error naming the object and the method.
fn method_output(r: OpResult, oid: &str, call: &Call) -> Result<Vec<u8>> {
    if r.rc < 0 {
        return Err(fail(r.rc, oid, format_args!("{}.{}", call.class, call.method)));
    }
    match r.steps.into_iter().next() {
        Some((_, StepOut::Data(d))) => Ok(d),
        _ => Ok(Vec::new()),
    }
}

impl IoCtx {
    /// Calls a read method and returns its output.
    pub fn exec(&self, oid: &str, call: &Call) -> Result<Vec<u8>> {
        method_output(self.operate_read(oid, &ReadOp::default().exec(call), 0)?, oid, call)
    }

    /// Calls a read method without blocking the caller's thread; returns its output.
    pub async fn exec_async(&self, oid: &str, call: &Call) -> Result<Vec<u8>> {
        method_output(self.aio_read(oid, &ReadOp::default().exec(call), 0)?.await, oid, call)
    }

    /// Calls a write method (its output is discarded by the OSD).
    pub fn exec_write(&self, oid: &str, call: &Call) -> Result<()> {
        self.write(oid, &WriteOp::default().exec(call)).map_err(|e| Error::new(e.errno(), format!("object {oid}: {}.{}", call.class, call.method)))
    }

    /// Calls a write method without blocking the caller's thread.
    pub async fn exec_write_async(&self, oid: &str, call: &Call) -> Result<()> {
        let r = self.aio_write(oid, &WriteOp::default().exec(call.clone()), 0)?.await;
        if r.rc < 0 {
            return Err(fail(r.rc, oid, format_args!("{}.{}", call.class, call.method)));
        }
        Ok(())
    }

    /// [`IoCtx::notify`] on a blocking thread: notifying waits for every watcher's ack.
    pub async fn notify_async(&self, oid: &str, payload: Vec<u8>, timeout_ms: u64) -> Result<()> {
        let (io, oid) = (self.clone(), oid.to_string());
        blocking(move || io.notify(&oid, &payload, timeout_ms)).await
    }

    /// Applies a write op, failing with the op's errno.
    pub fn write(&self, oid: &str, op: &WriteOp) -> Result<()> {
        let r = self.operate_write(oid, op, 0)?;
        if r.rc < 0 {
            return Err(fail(r.rc, oid, "write op"));
        }
        Ok(())
    }

    /// Reads up to `len` bytes at `off`.
    pub fn read(&self, oid: &str, off: u64, len: usize) -> Result<Vec<u8>> {
        let r = self.operate_read(oid, &ReadOp { steps: vec![ReadStep::Read { off, len }] }, 0)?;
        if r.rc < 0 {
            return Err(fail(r.rc, oid, format_args!("read {len}@{off}")));
        }
        match r.steps.into_iter().next() {
            Some((_, StepOut::Data(d))) => Ok(d),
            _ => Ok(Vec::new()),
        }
    }

    /// Object size; `ENOENT` if missing.
    pub fn stat(&self, oid: &str) -> Result<u64> {
        let r = self.operate_read(oid, &ReadOp { steps: vec![ReadStep::Stat] }, 0)?;
        if r.rc < 0 {
            return Err(fail(r.rc, oid, "stat"));
        }
        match r.steps.first() {
            Some((_, StepOut::Stat(size, _))) => Ok(*size),
            _ => Ok(0),
        }
    }

    /// Replaces the object's data.
    pub fn write_full(&self, oid: &str, data: &[u8]) -> Result<()> {
        self.write(oid, &WriteOp::default().step(WriteStep::WriteFull(data.to_vec())))
    }

    /// Removes the object.
    pub fn remove(&self, oid: &str) -> Result<()> {
        self.write(oid, &WriteOp::default().step(WriteStep::Remove))
    }

    /// One omap value, `None` if the key is absent (`ENOENT` if the object is).
    pub fn omap_get(&self, oid: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let r = self.operate_read(oid, &ReadOp { steps: vec![ReadStep::OmapGetByKeys(vec![key.to_string()])] }, 0)?;
        if r.rc < 0 {
            return Err(fail(r.rc, oid, format_args!("omap get {key}")));
        }
        match r.steps.into_iter().next() {
            Some((_, StepOut::Omap(kv, _))) => Ok(kv.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)),
            _ => Ok(None),
        }
    }

    /// Sets omap entries.
    pub fn omap_set(&self, oid: &str, kvs: &[(&str, &[u8])]) -> Result<()> {
        let kvs = kvs.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect();
        self.write(oid, &WriteOp::default().step(WriteStep::OmapSet(kvs)))
    }

    /// All omap entries (paged).
    pub fn omap_list(&self, oid: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut all = Vec::new();
        let mut start = String::new();
        loop {
            let op = ReadOp { steps: vec![ReadStep::OmapGetVals { start_after: start.clone(), prefix: prefix.into(), max: 1024 }] };
            let r = self.operate_read(oid, &op, 0)?;
            if r.rc < 0 {
                return Err(fail(r.rc, oid, "omap list"));
            }
            let Some((_, StepOut::Omap(kv, more))) = r.steps.into_iter().next() else {
                break;
            };
            if let Some((k, _)) = kv.last() {
                start = k.clone();
            }
            let n = kv.len();
            all.extend(kv);
            if !more || n == 0 {
                break;
            }
        }
        Ok(all)
    }
}

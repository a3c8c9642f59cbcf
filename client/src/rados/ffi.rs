//! The one safe wrapper over librados (all of the client's `unsafe` is in this file).
//!
//! Invariants:
//! - `rados_t` and `rados_ioctx_t` are thread-safe in librados; a [`Cluster`] is shared by
//!   `Arc` and shut down when the last [`IoCtx`] and handle are gone (each `IoCtx` holds an
//!   `Arc<Cluster>`, so the cluster outlives its contexts).
//! - An operation is built as plain data ([`ReadOp`], [`WriteOp`]) and turned into a librados
//!   op only inside `operate`, where every buffer and out-pointer it references lives in a
//!   boxed slot that does not move until the (synchronous) operate returns and the op is
//!   released. Buffers librados allocates (exec output, omap iterators) are copied out and
//!   freed before returning.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;
use std::sync::Arc;

use rados_sys as sys;

use crate::error::{Errno, Error, Result};

fn cstr(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(Errno::EINVAL, format!("{what} contains a NUL byte")))
}

fn check(r: c_int, what: impl FnOnce() -> String) -> Result<c_int> {
    if r < 0 {
        Err(Error::new(Errno(-r), what()))
    } else {
        Ok(r)
    }
}

/// How to reach a cluster (the `rbd` CLI's `--conf`, `--keyring`, `--id`).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Ceph config file; `None` searches as `rbd` does (`$CEPH_CONF`, /etc/ceph/ceph.conf, ...).
    pub conf: Option<String>,
    /// Keyring path, overriding the conf.
    pub keyring: Option<String>,
    /// Client id without `client.` (default `admin`).
    pub id: Option<String>,
    /// Cluster name (default `ceph`).
    pub cluster_name: Option<String>,
    /// Extra `key=value` config settings applied after the conf file.
    pub settings: Vec<(String, String)>,
}

/// A connected cluster handle.
pub struct Cluster {
    handle: sys::rados_t,
}

// SAFETY: librados cluster handles are documented thread-safe; all access goes through the
// C API, which locks internally.
unsafe impl Send for Cluster {}
// SAFETY: as above.
unsafe impl Sync for Cluster {}

impl Cluster {
    /// Connects, reading the conf and `CEPH_ARGS` like the `rbd` CLI.
    pub fn connect(opts: &ConnectOptions) -> Result<Arc<Cluster>> {
        let user = format!("client.{}", opts.id.as_deref().unwrap_or("admin"));
        let cuser = cstr(&user, "client name")?;
        let ccluster = cstr(opts.cluster_name.as_deref().unwrap_or("ceph"), "cluster name")?;
        let mut handle: sys::rados_t = ptr::null_mut();
        // SAFETY: valid out-pointer and C strings; flags 0.
        check(unsafe { sys::rados_create2(&mut handle, ccluster.as_ptr(), cuser.as_ptr(), 0) }, || {
            format!("create cluster handle for {user}")
        })?;
        // From here on `c` owns the handle (Drop shuts it down).
        let c = Cluster { handle };
        let conf = opts.conf.as_deref().map(|p| cstr(p, "conf path")).transpose()?;
        // SAFETY: handle is valid; a null path means the default search path.
        let r = unsafe { sys::rados_conf_read_file(c.handle, conf.as_ref().map_or(ptr::null(), |p| p.as_ptr())) };
        if r < 0 && opts.conf.is_some() {
            check(r, || format!("read conf {}", opts.conf.as_deref().unwrap_or("")))?;
        }
        // SAFETY: valid handle; null reads CEPH_ARGS.
        unsafe { sys::rados_conf_parse_env(c.handle, ptr::null()) };
        if let Some(k) = &opts.keyring {
            c.conf_set("keyring", k)?;
        }
        for (k, v) in &opts.settings {
            c.conf_set(k, v)?;
        }
        // SAFETY: valid, configured handle.
        check(unsafe { sys::rados_connect(c.handle) }, || {
            format!("connect to cluster as {user} (conf {})", opts.conf.as_deref().unwrap_or("default search path"))
        })?;
        Ok(Arc::new(c))
    }

    /// Sets a config option on a not-yet-connected handle.
    fn conf_set(&self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (cstr(key, "config key")?, cstr(value, "config value")?);
        // SAFETY: valid handle and C strings.
        check(unsafe { sys::rados_conf_set(self.handle, k.as_ptr(), v.as_ptr()) }, || format!("set config {key}"))?;
        Ok(())
    }

    /// Reads a config value of the connected handle (e.g. `mon_host`).
    pub fn conf_get(&self, key: &str) -> Result<String> {
        let k = cstr(key, "config key")?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: valid handle; buffer valid for its length.
        check(unsafe { sys::rados_conf_get(self.handle, k.as_ptr(), buf.as_mut_ptr() as *mut c_char, buf.len()) }, || {
            format!("get config {key}")
        })?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    /// The id of pool `name`; `ENOENT` if there is none.
    pub fn pool_lookup(&self, name: &str) -> Result<i64> {
        let n = cstr(name, "pool name")?;
        // SAFETY: valid handle and C string.
        let r = unsafe { sys::rados_pool_lookup(self.handle, n.as_ptr()) };
        if r < 0 {
            return Err(Error::new(Errno(-(r as i32)), format!("pool {name}")));
        }
        Ok(r)
    }

    /// The name of pool `id`.
    pub fn pool_reverse_lookup(&self, id: i64) -> Result<String> {
        let mut buf = vec![0u8; 256];
        // SAFETY: valid handle; buffer valid for its length.
        let r = unsafe { sys::rados_pool_reverse_lookup(self.handle, id, buf.as_mut_ptr() as *mut c_char, buf.len()) };
        check(r, || format!("pool id {id}"))?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    /// Sends a JSON mon command; returns (output buffer, status string).
    pub fn mon_command(&self, cmd: &str, input: &[u8]) -> Result<(Vec<u8>, String)> {
        let c = cstr(cmd, "mon command")?;
        let cmds = [c.as_ptr()];
        let (mut out, mut out_len, mut st, mut st_len) = (ptr::null_mut(), 0usize, ptr::null_mut(), 0usize);
        // SAFETY: one valid C string in `cmds`; input valid for its length; out-pointers valid;
        // the returned buffers are freed below with rados_buffer_free.
        let r = unsafe {
            sys::rados_mon_command(
                self.handle,
                cmds.as_ptr() as *mut *const c_char,
                1,
                input.as_ptr() as *const c_char,
                input.len(),
                &mut out,
                &mut out_len,
                &mut st,
                &mut st_len,
            )
        };
        let outv = take_rados_buf(out, out_len);
        let stv = String::from_utf8_lossy(&take_rados_buf(st, st_len)).into_owned();
        if r < 0 {
            let prefix = cmd.split("\"prefix\"").nth(1).unwrap_or(cmd).chars().take(60).collect::<String>();
            return Err(Error::new(Errno(-r), format!("mon command{prefix}: {stv}")));
        }
        Ok((outv, stv))
    }

    /// An I/O context on pool `pool`, namespace `namespace` ("" for the default).
    pub fn ioctx(self: &Arc<Self>, pool: &str, namespace: &str) -> Result<IoCtx> {
        let p = cstr(pool, "pool name")?;
        let mut ctx: sys::rados_ioctx_t = ptr::null_mut();
        // SAFETY: valid connected handle, C string, out-pointer.
        check(unsafe { sys::rados_ioctx_create(self.handle, p.as_ptr(), &mut ctx) }, || format!("open pool {pool}"))?;
        let io = IoCtx { ctx, cluster: Arc::clone(self), pool: pool.to_string(), namespace: namespace.to_string() };
        io.set_namespace(namespace)?;
        Ok(io)
    }

    /// An I/O context on pool id `pool_id`.
    pub fn ioctx_by_id(self: &Arc<Self>, pool_id: i64, namespace: &str) -> Result<IoCtx> {
        let name = self.pool_reverse_lookup(pool_id)?;
        self.ioctx(&name, namespace)
    }

    /// The raw handle, for librbd calls in `rbd.rs`.
    pub(crate) fn raw(&self) -> sys::rados_t {
        self.handle
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: the handle is valid and no IoCtx outlives us (each holds an Arc to us).
        unsafe { sys::rados_shutdown(self.handle) }
    }
}

fn take_rados_buf(p: *mut c_char, len: usize) -> Vec<u8> {
    if p.is_null() {
        return Vec::new();
    }
    // SAFETY: librados returned `p` with `len` bytes; freed exactly once with its allocator.
    unsafe {
        let v = std::slice::from_raw_parts(p as *const u8, len).to_vec();
        sys::rados_buffer_free(p);
        v
    }
}

/// An I/O context: one pool and namespace.
pub struct IoCtx {
    ctx: sys::rados_ioctx_t,
    cluster: Arc<Cluster>,
    pool: String,
    namespace: String,
}

// SAFETY: an ioctx may be used from several threads as long as its namespace/locator are not
// changed concurrently; we set the namespace only at construction.
unsafe impl Send for IoCtx {}
// SAFETY: as above.
unsafe impl Sync for IoCtx {}

impl Drop for IoCtx {
    fn drop(&mut self) {
        // SAFETY: valid ioctx, destroyed once; the cluster is kept alive by our Arc.
        unsafe { sys::rados_ioctx_destroy(self.ctx) }
    }
}

impl std::fmt::Debug for IoCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IoCtx({}/{})", self.pool, self.namespace)
    }
}

/// One step of a read operation.
#[derive(Debug, Clone)]
pub enum ReadStep {
    /// Fails the op with ENOENT if the object does not exist.
    AssertExists,
    /// Object size and mtime.
    Stat,
    /// Up to `len` bytes at `off`.
    Read {
        /// Offset.
        off: u64,
        /// Length.
        len: usize,
    },
    /// A class method call (read flavour: its output is returned).
    Exec {
        /// Class.
        class: String,
        /// Method.
        method: String,
        /// Input.
        input: Vec<u8>,
    },
    /// Omap values of the given keys.
    OmapGetByKeys(Vec<String>),
    /// Omap entries after `start_after` with `prefix`, at most `max`.
    OmapGetVals {
        /// Exclusive start key.
        start_after: String,
        /// Key prefix filter.
        prefix: String,
        /// Most entries to return.
        max: u64,
    },
}

/// What one read step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOut {
    /// Nothing (assertions, writes).
    None,
    /// Bytes (read, exec output).
    Data(Vec<u8>),
    /// Size and mtime.
    Stat(u64, i64),
    /// Omap entries and whether more follow.
    Omap(Vec<(String, Vec<u8>)>, bool),
}

/// The result of an operation: the overall return code and each step's (rval, output).
#[derive(Debug)]
pub struct OpResult {
    /// librados return code (negative errno on failure).
    pub rc: i32,
    /// Per step: its own return value and output.
    pub steps: Vec<(i32, StepOut)>,
}

/// A compound read operation, executed atomically on one object.
#[derive(Debug, Clone, Default)]
pub struct ReadOp {
    /// The steps, in order.
    pub steps: Vec<ReadStep>,
}

/// One step of a write operation.
#[derive(Debug, Clone)]
pub enum WriteStep {
    /// Fails the op with ENOENT if the object does not exist.
    AssertExists,
    /// Creates the object (EEXIST if `exclusive` and it exists).
    Create {
        /// Fail if it exists.
        exclusive: bool,
    },
    /// Replaces the object's data.
    WriteFull(Vec<u8>),
    /// Writes at an offset.
    Write {
        /// Offset.
        off: u64,
        /// Data.
        data: Vec<u8>,
    },
    /// Zeroes a range.
    Zero {
        /// Offset.
        off: u64,
        /// Length.
        len: u64,
    },
    /// Truncates.
    Truncate(u64),
    /// Removes the object.
    Remove,
    /// A class method call (write flavour: output is discarded by the OSD).
    Exec {
        /// Class.
        class: String,
        /// Method.
        method: String,
        /// Input.
        input: Vec<u8>,
    },
    /// Sets omap entries.
    OmapSet(Vec<(String, Vec<u8>)>),
    /// Removes omap keys.
    OmapRmKeys(Vec<String>),
}

/// A compound write operation, applied atomically to one object.
#[derive(Debug, Clone, Default)]
pub struct WriteOp {
    /// The steps, in order.
    pub steps: Vec<WriteStep>,
}

/// Per-step out-slots that librados writes into during operate; boxed so they never move.
struct Slot {
    rval: c_int,
    buf: Vec<u8>,
    out_ptr: *mut c_char,
    out_len: usize,
    size: u64,
    mtime: libc::time_t,
    iter: sys::rados_omap_iter_t,
    more: u8,
    // Inputs that must outlive the op (C strings, key arrays).
    cstrs: Vec<CString>,
    ptrs: Vec<*const c_char>,
    lens: Vec<usize>,
}

fn omap_collect(iter: sys::rados_omap_iter_t) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if iter.is_null() {
        return out;
    }
    loop {
        let (mut k, mut v, mut klen, mut vlen) = (ptr::null_mut(), ptr::null_mut(), 0usize, 0usize);
        // SAFETY: iter is a live iterator from a completed op; out-pointers valid.
        let r = unsafe { sys::rados_omap_get_next2(iter, &mut k, &mut v, &mut klen, &mut vlen) };
        if r < 0 || k.is_null() {
            break;
        }
        // SAFETY: key/value valid for their lengths until the iterator advances or ends.
        let (key, val) = unsafe {
            (
                String::from_utf8_lossy(std::slice::from_raw_parts(k as *const u8, klen)).into_owned(),
                if v.is_null() { Vec::new() } else { std::slice::from_raw_parts(v as *const u8, vlen).to_vec() },
            )
        };
        out.push((key, val));
    }
    // SAFETY: the iterator is released exactly once.
    unsafe { sys::rados_omap_get_end(iter) };
    out
}

impl IoCtx {
    /// Pool name.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// Namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Pool id.
    pub fn pool_id(&self) -> i64 {
        // SAFETY: valid ioctx.
        unsafe { sys::rados_ioctx_get_id(self.ctx) }
    }

    /// The cluster this context belongs to.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Another context on the same pool in `namespace`.
    pub fn with_namespace(&self, namespace: &str) -> Result<IoCtx> {
        self.cluster.ioctx(&self.pool, namespace)
    }

    fn set_namespace(&self, ns: &str) -> Result<()> {
        let n = cstr(ns, "namespace")?;
        // SAFETY: valid ioctx and C string; called only during construction.
        unsafe { sys::rados_ioctx_set_namespace(self.ctx, n.as_ptr()) };
        Ok(())
    }

    pub(crate) fn raw(&self) -> sys::rados_ioctx_t {
        self.ctx
    }

    /// Runs a read op on `oid`. Returns the per-step results even when the op failed
    /// (`rc < 0`), so callers can tell which step failed.
    pub fn operate_read(&self, oid: &str, op: &ReadOp, flags: u32) -> Result<OpResult> {
        let o = cstr(oid, "object name")?;
        let mut slots: Vec<Box<Slot>> = op.steps.iter().map(|_| Box::default()).collect();
        // SAFETY: creates a new op, released below on every path.
        let rop = unsafe { sys::rados_create_read_op() };
        for (step, slot) in op.steps.iter().zip(slots.iter_mut()) {
            let s: &mut Slot = slot;
            // SAFETY (all arms): `rop` is live; every pointer handed over points into `s`
            // (boxed, not moved until after release) or into `op` (borrowed for the call).
            unsafe {
                match step {
                    ReadStep::AssertExists => sys::rados_read_op_assert_exists(rop),
                    ReadStep::Stat => sys::rados_read_op_stat(rop, &mut s.size, &mut s.mtime, &mut s.rval),
                    ReadStep::Read { off, len } => {
                        s.buf = vec![0u8; *len];
                        sys::rados_read_op_read(rop, *off, *len, s.buf.as_mut_ptr() as *mut c_char, &mut s.out_len, &mut s.rval)
                    }
                    ReadStep::Exec { class, method, input } => {
                        s.cstrs = vec![cstr(class, "class")?, cstr(method, "method")?];
                        sys::rados_read_op_exec(
                            rop,
                            s.cstrs[0].as_ptr(),
                            s.cstrs[1].as_ptr(),
                            input.as_ptr() as *const c_char,
                            input.len(),
                            &mut s.out_ptr,
                            &mut s.out_len,
                            &mut s.rval,
                        )
                    }
                    ReadStep::OmapGetByKeys(keys) => {
                        s.cstrs = keys.iter().map(|k| cstr(k, "omap key")).collect::<Result<_>>()?;
                        s.ptrs = s.cstrs.iter().map(|c| c.as_ptr()).collect();
                        s.lens = keys.iter().map(|k| k.len()).collect();
                        sys::rados_read_op_omap_get_vals_by_keys2(
                            rop,
                            s.ptrs.as_ptr(),
                            s.ptrs.len(),
                            s.lens.as_ptr(),
                            &mut s.iter,
                            &mut s.rval,
                        )
                    }
                    ReadStep::OmapGetVals { start_after, prefix, max } => {
                        s.cstrs = vec![cstr(start_after, "omap key")?, cstr(prefix, "omap prefix")?];
                        sys::rados_read_op_omap_get_vals2(
                            rop,
                            s.cstrs[0].as_ptr(),
                            s.cstrs[1].as_ptr(),
                            *max,
                            &mut s.iter,
                            &mut s.more,
                            &mut s.rval,
                        )
                    }
                }
            }
        }
        // SAFETY: live op, ioctx and C string; synchronous, so all slots stay valid.
        let rc = unsafe { sys::rados_read_op_operate(rop, self.ctx, o.as_ptr(), flags as c_int) };
        let steps = op
            .steps
            .iter()
            .zip(slots.iter_mut())
            .map(|(step, s)| {
                let out = match step {
                    ReadStep::AssertExists => StepOut::None,
                    ReadStep::Stat => StepOut::Stat(s.size, s.mtime as i64),
                    ReadStep::Read { .. } => {
                        let mut b = std::mem::take(&mut s.buf);
                        b.truncate(s.out_len);
                        StepOut::Data(b)
                    }
                    ReadStep::Exec { .. } => StepOut::Data(take_rados_buf(std::mem::replace(&mut s.out_ptr, ptr::null_mut()), s.out_len)),
                    ReadStep::OmapGetByKeys(_) | ReadStep::OmapGetVals { .. } => {
                        StepOut::Omap(omap_collect(std::mem::replace(&mut s.iter, ptr::null_mut())), s.more != 0)
                    }
                };
                (s.rval, out)
            })
            .collect();
        // SAFETY: release the op exactly once, after all outputs were taken.
        unsafe { sys::rados_release_read_op(rop) };
        Ok(OpResult { rc, steps })
    }

    /// Runs a write op on `oid`; returns the librados return code (negative errno) and the
    /// per-step return values.
    pub fn operate_write(&self, oid: &str, op: &WriteOp, flags: u32) -> Result<OpResult> {
        let o = cstr(oid, "object name")?;
        let mut slots: Vec<Box<Slot>> = op.steps.iter().map(|_| Box::default()).collect();
        // SAFETY: creates a new op, released below on every path.
        let wop = unsafe { sys::rados_create_write_op() };
        let mut build = || -> Result<()> {
            for (step, slot) in op.steps.iter().zip(slots.iter_mut()) {
                let s: &mut Slot = slot;
                // SAFETY (all arms): `wop` is live; pointers point into `op` (borrowed for the
                // whole call) or into `s` (boxed, stable until release).
                unsafe {
                    match step {
                        WriteStep::AssertExists => sys::rados_write_op_assert_exists(wop),
                        WriteStep::Create { exclusive } => sys::rados_write_op_create(
                            wop,
                            if *exclusive { sys::LIBRADOS_CREATE_EXCLUSIVE as c_int } else { sys::LIBRADOS_CREATE_IDEMPOTENT as c_int },
                            ptr::null(),
                        ),
                        WriteStep::WriteFull(d) => sys::rados_write_op_write_full(wop, d.as_ptr() as *const c_char, d.len()),
                        WriteStep::Write { off, data } => {
                            sys::rados_write_op_write(wop, data.as_ptr() as *const c_char, data.len(), *off)
                        }
                        WriteStep::Zero { off, len } => sys::rados_write_op_zero(wop, *off, *len),
                        WriteStep::Truncate(n) => sys::rados_write_op_truncate(wop, *n),
                        WriteStep::Remove => sys::rados_write_op_remove(wop),
                        WriteStep::Exec { class, method, input } => {
                            s.cstrs = vec![cstr(class, "class")?, cstr(method, "method")?];
                            sys::rados_write_op_exec(
                                wop,
                                s.cstrs[0].as_ptr(),
                                s.cstrs[1].as_ptr(),
                                input.as_ptr() as *const c_char,
                                input.len(),
                                &mut s.rval,
                            )
                        }
                        WriteStep::OmapSet(kvs) => {
                            s.cstrs = kvs.iter().map(|(k, _)| cstr(k, "omap key")).collect::<Result<_>>()?;
                            s.ptrs = s.cstrs.iter().map(|c| c.as_ptr()).collect();
                            s.lens = kvs.iter().map(|(k, _)| k.len()).collect();
                            let vals: Vec<*const c_char> = kvs.iter().map(|(_, v)| v.as_ptr() as *const c_char).collect();
                            let vlens: Vec<usize> = kvs.iter().map(|(_, v)| v.len()).collect();
                            // librados copies keys and values into the op when this is called.
                            sys::rados_write_op_omap_set2(
                                wop,
                                s.ptrs.as_ptr(),
                                vals.as_ptr(),
                                s.lens.as_ptr(),
                                vlens.as_ptr(),
                                kvs.len(),
                            )
                        }
                        WriteStep::OmapRmKeys(keys) => {
                            s.cstrs = keys.iter().map(|k| cstr(k, "omap key")).collect::<Result<_>>()?;
                            s.ptrs = s.cstrs.iter().map(|c| c.as_ptr()).collect();
                            s.lens = keys.iter().map(|k| k.len()).collect();
                            sys::rados_write_op_omap_rm_keys2(wop, s.ptrs.as_ptr(), s.lens.as_ptr(), keys.len())
                        }
                    }
                }
            }
            Ok(())
        };
        let built = build();
        let rc = match built {
            // SAFETY: live op and ioctx; synchronous, slots stay valid; null mtime = now.
            Ok(()) => unsafe { sys::rados_write_op_operate2(wop, self.ctx, o.as_ptr(), ptr::null_mut(), flags as c_int) },
            Err(_) => 0,
        };
        // SAFETY: release exactly once.
        unsafe { sys::rados_release_write_op(wop) };
        built?;
        let steps = slots.iter().map(|s| (s.rval, StepOut::None)).collect();
        Ok(OpResult { rc, steps })
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            rval: 0,
            buf: Vec::new(),
            out_ptr: ptr::null_mut(),
            out_len: 0,
            size: 0,
            mtime: 0,
            iter: ptr::null_mut(),
            more: 0,
            cstrs: Vec::new(),
            ptrs: Vec::new(),
            lens: Vec::new(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Outputs not taken (an early error) are still freed exactly once.
        if !self.out_ptr.is_null() {
            // SAFETY: allocated by librados and not yet freed (taken slots are nulled).
            unsafe { sys::rados_buffer_free(self.out_ptr) };
        }
        if !self.iter.is_null() {
            // SAFETY: a live iterator not yet ended (taken slots are nulled).
            unsafe { sys::rados_omap_get_end(self.iter) };
        }
    }
}

/// Returns a C string view for messages (used by the librbd layer).
#[allow(dead_code)]
pub(crate) fn c_to_string(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: callers pass NUL-terminated strings from librados/librbd.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

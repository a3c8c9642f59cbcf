//! The one safe wrapper over librados (all of the client's `unsafe` is in this file).
//!
//! Invariants:
//! - `rados_t` and `rados_ioctx_t` are thread-safe in librados; a [`Cluster`] is shared by
//!   `Arc` and shut down when the last [`IoCtx`] and handle are gone (each `IoCtx` holds an
//!   `Arc<Cluster>`, so the cluster outlives its contexts).
//! - A *borrowed* [`Cluster`] ([`Cluster::from_borrowed`], for the C API) wraps a caller's
//!   connected handle and never shuts it down; the caller keeps that handle connected until
//!   the last `Arc` of the wrapper and every [`IoCtx`] made from it are gone.
//! - An operation is built as plain data ([`ReadOp`], [`WriteOp`]) and turned into a librados
//!   op only when it is run. librados copies every input buffer when a step is added, so only
//!   the out-pointers must stay put: they live in boxed [`Slot`]s owned by a [`Prepared`] op,
//!   which is not dropped before the op completed (synchronously, or in [`AioOp`]'s `Drop`,
//!   which waits for an unfinished op and its callback). Buffers librados allocates (exec
//!   output, omap iterators) are copied out and freed exactly once.
//! - An aio completion's callback owns one `Arc` of the future's shared state (passed as the
//!   raw callback argument and reclaimed in the callback), so the state outlives the callback
//!   whatever order the future and the callback finish in.

use std::ffi::{c_char, c_int, c_void, CString};
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

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
#[non_exhaustive]
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
    /// Ceph command-line options (`--keyring F`, `-m HOST`, `--debug-ms 1`), parsed by
    /// librados after `CEPH_ARGS`, so the command line wins as in stock tools.
    pub args: Vec<String>,
    /// Leave `CEPH_ARGS` out: it describes the local cluster, not another one.
    pub ignore_env: bool,
}

impl ConnectOptions {
    /// Sets `conf`: Ceph config file; `None` searches as `rbd` does (`$CEPH_CONF`, /etc/ceph/ceph.conf, ...).
    pub fn with_conf(mut self, conf: impl Into<String>) -> Self {
        self.conf = Some(conf.into());
        self
    }

    /// Sets `keyring`: Keyring path, overriding the conf.
    pub fn with_keyring(mut self, keyring: impl Into<String>) -> Self {
        self.keyring = Some(keyring.into());
        self
    }

    /// Sets `id`: Client id without `client.` (default `admin`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets `cluster_name`: Cluster name (default `ceph`).
    pub fn with_cluster_name(mut self, cluster_name: impl Into<String>) -> Self {
        self.cluster_name = Some(cluster_name.into());
        self
    }

    /// Sets `settings`: Extra `key=value` config settings applied after the conf file.
    pub fn with_settings(mut self, settings: Vec<(String, String)>) -> Self {
        self.settings = settings;
        self
    }

    /// Sets `args`: Ceph command-line options (`--keyring F`, `-m HOST`, `--debug-ms 1`), parsed by
    pub fn with_args(mut self, args: Vec<String>) -> Self {
        self.args = args;
        self
    }

    /// Sets `ignore_env`: Leave `CEPH_ARGS` out: it describes the local cluster, not another one.
    pub fn with_ignore_env(mut self, ignore_env: bool) -> Self {
        self.ignore_env = ignore_env;
        self
    }
}

/// A connected cluster handle.
pub struct Cluster {
    handle: sys::rados_t,
    /// The client name it connected as (`client.admin`); librados does not report it back.
    user: String,
    /// Whether dropping this shuts the handle down (false for a caller's borrowed handle).
    owned: bool,
}

// SAFETY: librados cluster handles are documented thread-safe; all access goes through the
// C API, which locks internally.
unsafe impl Send for Cluster {}
// SAFETY: as above.
unsafe impl Sync for Cluster {}

impl Cluster {
    /// Connects, reading the conf, `CEPH_ARGS` and [`ConnectOptions::args`] like the `rbd` CLI.
    /// Blocking (a monitor round trip), as is every management call behind it.
    ///
    /// ```no_run
    /// use rbd_ext::rados::{Cluster, ConnectOptions};
    /// let cluster = Cluster::connect(&ConnectOptions::default().with_conf("/etc/ceph/ceph.conf").with_id("cinder"))?;
    /// # Ok::<(), rbd_ext::Error>(())
    /// ```
    pub fn connect(opts: &ConnectOptions) -> Result<Arc<Cluster>> {
        let user = format!("client.{}", opts.id.as_deref().unwrap_or("admin"));
        let cuser = cstr(&user, "client name")?;
        let ccluster = cstr(opts.cluster_name.as_deref().unwrap_or("ceph"), "cluster name")?;
        let mut handle: sys::rados_t = ptr::null_mut();
        // SAFETY: valid out-pointer and C strings; flags 0.
        check(unsafe { sys::rados_create2(&mut handle, ccluster.as_ptr(), cuser.as_ptr(), 0) }, || format!("create cluster handle for {user}"))?;
        // From here on `c` owns the handle (Drop shuts it down).
        let c = Cluster { handle, user: user.clone(), owned: true };
        let conf = opts.conf.as_deref().map(|p| cstr(p, "conf path")).transpose()?;
        // SAFETY: handle is valid; a null path means the default search path.
        let r = unsafe { sys::rados_conf_read_file(c.handle, conf.as_ref().map_or(ptr::null(), |p| p.as_ptr())) };
        if r < 0 && opts.conf.is_some() {
            check(r, || format!("read conf {}", opts.conf.as_deref().unwrap_or("")))?;
        }
        if !opts.ignore_env {
            // SAFETY: valid handle; null reads CEPH_ARGS.
            check(unsafe { sys::rados_conf_parse_env(c.handle, ptr::null()) }, || "parse CEPH_ARGS".to_string())?;
        }
        if !opts.args.is_empty() {
            c.parse_argv(&opts.args)?;
        }
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

    /// Wraps a connected handle that belongs to the caller (a C program's `rados_t`), without
    /// taking ownership: dropping the wrapper never shuts the handle down.
    ///
    /// # Safety
    /// `handle` must be a connected librados cluster handle, and stay connected (the caller
    /// must not call `rados_shutdown` on it) until the returned `Arc`, every clone of it and
    /// every [`IoCtx`], [`Watch`] and op made from it have been dropped.
    pub unsafe fn from_borrowed(handle: *mut c_void) -> Result<Arc<Cluster>> {
        if handle.is_null() {
            return Err(Error::new(Errno::EINVAL, "null cluster handle"));
        }
        let mut c = Cluster { handle: handle as sys::rados_t, user: String::new(), owned: false };
        // librados does not report the entity name of a handle it made; `user()` is then
        // empty (only `doctor` reports it).
        c.user = c.conf_get("name").unwrap_or_default();
        Ok(Arc::new(c))
    }

    /// Applies Ceph command-line options to a not-yet-connected handle.
    fn parse_argv(&self, args: &[String]) -> Result<()> {
        // argv[0] is the program name, skipped by librados.
        let owned: Vec<CString> = std::iter::once("rbd-ext").chain(args.iter().map(String::as_str)).map(|a| cstr(a, "argument")).collect::<Result<_>>()?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: valid handle; `ptrs` holds argc valid C strings that outlive the call.
        check(unsafe { sys::rados_conf_parse_argv(self.handle, ptrs.len() as c_int, ptrs.as_ptr() as *mut *const c_char) }, || {
            format!("parse options {}", args.join(" "))
        })?;
        Ok(())
    }

    /// Sets a config option on a not-yet-connected handle.
    fn conf_set(&self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (cstr(key, "config key")?, cstr(value, "config value")?);
        // SAFETY: valid handle and C strings.
        check(unsafe { sys::rados_conf_set(self.handle, k.as_ptr(), v.as_ptr()) }, || format!("set config {key}"))?;
        Ok(())
    }

    /// The client name this handle connected as (`client.ID`); empty for a borrowed handle
    /// whose librados does not say.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Reads a config value of the connected handle (e.g. `mon_host`).
    pub fn conf_get(&self, key: &str) -> Result<String> {
        let k = cstr(key, "config key")?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: valid handle; buffer valid for its length.
        check(unsafe { sys::rados_conf_get(self.handle, k.as_ptr(), buf.as_mut_ptr() as *mut c_char, buf.len()) }, || format!("get config {key}"))?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    /// The cluster's fsid.
    pub fn fsid(&self) -> Result<String> {
        let mut buf = vec![0u8; 64];
        // SAFETY: valid connected handle; buffer valid for its length (37 bytes needed).
        let r = unsafe { sys::rados_cluster_fsid(self.handle, buf.as_mut_ptr() as *mut c_char, buf.len()) };
        check(r, || "get cluster fsid".to_string())?;
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

    /// Sends a JSON command to OSD `osd` (what `ceph tell osd.N` does); returns (output
    /// buffer, status string).
    pub fn osd_command(&self, osd: i32, cmd: &str) -> Result<(Vec<u8>, String)> {
        let c = cstr(cmd, "osd command")?;
        let cmds = [c.as_ptr()];
        let (mut out, mut out_len, mut st, mut st_len) = (ptr::null_mut(), 0usize, ptr::null_mut(), 0usize);
        // SAFETY: one valid C string in `cmds`; no input; out-pointers valid; the returned
        // buffers are freed below with rados_buffer_free.
        let r = unsafe {
            sys::rados_osd_command(self.handle, osd, cmds.as_ptr() as *mut *const c_char, 1, ptr::null(), 0, &mut out, &mut out_len, &mut st, &mut st_len)
        };
        let outv = take_rados_buf(out, out_len);
        let stv = String::from_utf8_lossy(&take_rados_buf(st, st_len)).into_owned();
        if r < 0 {
            return Err(Error::new(Errno(-r), format!("osd.{osd}: command {cmd}: {stv}")));
        }
        Ok((outv, stv))
    }

    /// An I/O context on pool `pool`, namespace `namespace` ("" for the default).
    pub fn ioctx(self: &Arc<Self>, pool: &str, namespace: &str) -> Result<IoCtx> {
        let p = cstr(pool, "pool name")?;
        let mut ctx: sys::rados_ioctx_t = ptr::null_mut();
        // SAFETY: valid connected handle, C string, out-pointer.
        check(unsafe { sys::rados_ioctx_create(self.handle, p.as_ptr(), &mut ctx) }, || format!("open pool {pool}"))?;
        let io = IoCtx { inner: Arc::new(IoCtxInner { ctx, cluster: Arc::clone(self) }), pool: pool.to_string(), namespace: namespace.to_string() };
        let n = cstr(namespace, "namespace")?;
        // SAFETY: valid ioctx and C string; set once, before the context is shared.
        unsafe { sys::rados_ioctx_set_namespace(ctx, n.as_ptr()) };
        Ok(io)
    }

    /// An I/O context on pool id `pool_id`.
    pub fn ioctx_by_id(self: &Arc<Self>, pool_id: i64, namespace: &str) -> Result<IoCtx> {
        let name = self.pool_reverse_lookup(pool_id)?;
        self.ioctx(&name, namespace)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: the handle is valid and no IoCtx outlives us (each holds an Arc to us).
            unsafe { sys::rados_shutdown(self.handle) }
        }
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

/// Per-step out-slots that librados writes into; boxed so they never move.
struct Slot {
    rval: c_int,
    buf: Vec<u8>,
    out_ptr: *mut c_char,
    out_len: usize,
    size: u64,
    mtime: libc::time_t,
    iter: sys::rados_omap_iter_t,
    more: u8,
    // Class/method names and omap keys, kept alive for the op's lifetime.
    cstrs: Vec<CString>,
    ptrs: Vec<*const c_char>,
    lens: Vec<usize>,
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
        // Outputs not taken (an op that failed or was abandoned) are freed exactly once.
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

#[derive(Clone, Copy)]
enum Kind {
    Read(sys::rados_read_op_t),
    Write(sys::rados_write_op_t),
}

/// A librados op with its out-slots, ready to run once.
struct Prepared {
    kind: Kind,
    oid: CString,
    // Boxed on purpose: librados holds pointers into each slot while the op is in flight,
    // so a slot must not move when the vector grows.
    #[allow(clippy::vec_box)]
    slots: Vec<Box<Slot>>,
    outs: Vec<OutKind>,
}

// SAFETY: the op and its slots are only touched by the thread that owns `Prepared` and, while
// the op is in flight, by librados, which finishes with them before the completion fires.
unsafe impl Send for Prepared {}

#[derive(Clone, Copy)]
enum OutKind {
    None,
    Data,
    Read,
    Stat,
    Omap,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // SAFETY: the op is released exactly once, after it completed or was never sent
        // (callers guarantee that; AioOp waits for completion before dropping us).
        unsafe {
            match self.kind {
                Kind::Read(op) => sys::rados_release_read_op(op),
                Kind::Write(op) => sys::rados_release_write_op(op),
            }
        }
    }
}

impl Prepared {
    fn read(oid: &str, op: &ReadOp) -> Result<Prepared> {
        // SAFETY: a new op, owned by the returned Prepared (released in its Drop).
        let rop = unsafe { sys::rados_create_read_op() };
        let mut p = Prepared { kind: Kind::Read(rop), oid: cstr(oid, "object name")?, slots: Vec::new(), outs: Vec::new() };
        for step in &op.steps {
            let mut s: Box<Slot> = Box::default();
            // SAFETY (all arms): `rop` is live; out-pointers point into the boxed slot, which
            // stays at the same address until `p` is dropped; inputs are copied by librados.
            let out = unsafe {
                match step {
                    ReadStep::AssertExists => {
                        sys::rados_read_op_assert_exists(rop);
                        OutKind::None
                    }
                    ReadStep::Stat => {
                        sys::rados_read_op_stat(rop, &mut s.size, &mut s.mtime, &mut s.rval);
                        OutKind::Stat
                    }
                    ReadStep::Read { off, len } => {
                        // Not zeroed first: librados fills it, and `finish` exposes only
                        // the bytes it reports (a 4 MiB memset per object read saved).
                        s.buf = Vec::with_capacity(*len);
                        sys::rados_read_op_read(rop, *off, *len, s.buf.as_mut_ptr() as *mut c_char, &mut s.out_len, &mut s.rval);
                        OutKind::Read
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
                        );
                        OutKind::Data
                    }
                    ReadStep::OmapGetByKeys(keys) => {
                        s.cstrs = keys.iter().map(|k| cstr(k, "omap key")).collect::<Result<_>>()?;
                        s.ptrs = s.cstrs.iter().map(|c| c.as_ptr()).collect();
                        s.lens = keys.iter().map(|k| k.len()).collect();
                        sys::rados_read_op_omap_get_vals_by_keys2(rop, s.ptrs.as_ptr(), s.ptrs.len(), s.lens.as_ptr(), &mut s.iter, &mut s.rval);
                        OutKind::Omap
                    }
                    ReadStep::OmapGetVals { start_after, prefix, max } => {
                        s.cstrs = vec![cstr(start_after, "omap key")?, cstr(prefix, "omap prefix")?];
                        sys::rados_read_op_omap_get_vals2(rop, s.cstrs[0].as_ptr(), s.cstrs[1].as_ptr(), *max, &mut s.iter, &mut s.more, &mut s.rval);
                        OutKind::Omap
                    }
                }
            };
            p.slots.push(s);
            p.outs.push(out);
        }
        Ok(p)
    }

    fn write(oid: &str, op: &WriteOp) -> Result<Prepared> {
        // SAFETY: a new op, owned by the returned Prepared (released in its Drop).
        let wop = unsafe { sys::rados_create_write_op() };
        let mut p = Prepared { kind: Kind::Write(wop), oid: cstr(oid, "object name")?, slots: Vec::new(), outs: Vec::new() };
        for step in &op.steps {
            let mut s: Box<Slot> = Box::default();
            // SAFETY (all arms): `wop` is live; librados copies data, keys and values when a
            // step is added; `rval` points into the boxed slot, stable until `p` drops.
            unsafe {
                match step {
                    WriteStep::AssertExists => sys::rados_write_op_assert_exists(wop),
                    WriteStep::Create { exclusive } => sys::rados_write_op_create(
                        wop,
                        if *exclusive { sys::LIBRADOS_CREATE_EXCLUSIVE as c_int } else { sys::LIBRADOS_CREATE_IDEMPOTENT as c_int },
                        ptr::null(),
                    ),
                    WriteStep::WriteFull(d) => sys::rados_write_op_write_full(wop, d.as_ptr() as *const c_char, d.len()),
                    WriteStep::Write { off, data } => sys::rados_write_op_write(wop, data.as_ptr() as *const c_char, data.len(), *off),
                    WriteStep::Zero { off, len } => sys::rados_write_op_zero(wop, *off, *len),
                    WriteStep::Truncate(n) => sys::rados_write_op_truncate(wop, *n),
                    WriteStep::Remove => sys::rados_write_op_remove(wop),
                    WriteStep::Exec { class, method, input } => {
                        s.cstrs = vec![cstr(class, "class")?, cstr(method, "method")?];
                        sys::rados_write_op_exec(wop, s.cstrs[0].as_ptr(), s.cstrs[1].as_ptr(), input.as_ptr() as *const c_char, input.len(), &mut s.rval)
                    }
                    WriteStep::OmapSet(kvs) => {
                        s.cstrs = kvs.iter().map(|(k, _)| cstr(k, "omap key")).collect::<Result<_>>()?;
                        s.ptrs = s.cstrs.iter().map(|c| c.as_ptr()).collect();
                        s.lens = kvs.iter().map(|(k, _)| k.len()).collect();
                        let vals: Vec<*const c_char> = kvs.iter().map(|(_, v)| v.as_ptr() as *const c_char).collect();
                        let vlens: Vec<usize> = kvs.iter().map(|(_, v)| v.len()).collect();
                        sys::rados_write_op_omap_set2(wop, s.ptrs.as_ptr(), vals.as_ptr(), s.lens.as_ptr(), vlens.as_ptr(), kvs.len())
                    }
                    WriteStep::OmapRmKeys(keys) => {
                        s.cstrs = keys.iter().map(|k| cstr(k, "omap key")).collect::<Result<_>>()?;
                        s.ptrs = s.cstrs.iter().map(|c| c.as_ptr()).collect();
                        s.lens = keys.iter().map(|k| k.len()).collect();
                        sys::rados_write_op_omap_rm_keys2(wop, s.ptrs.as_ptr(), s.lens.as_ptr(), keys.len())
                    }
                }
            }
            p.slots.push(s);
            p.outs.push(OutKind::None);
        }
        Ok(p)
    }

    /// Collects each step's output after the op completed with `rc`.
    fn finish(&mut self, rc: i32) -> OpResult {
        let steps = self
            .slots
            .iter_mut()
            .zip(&self.outs)
            .map(|(s, kind)| {
                let out = match kind {
                    OutKind::None => StepOut::None,
                    OutKind::Stat => StepOut::Stat(s.size, s.mtime),
                    OutKind::Read => {
                        let mut b = std::mem::take(&mut s.buf);
                        let n = if rc < 0 || s.rval < 0 { 0 } else { s.out_len.min(b.capacity()) };
                        // SAFETY: the op completed; librados copied exactly `out_len` bytes
                        // to the start of the buffer, never more than the `len` it was given
                        // (at most the capacity; a longer result is -ERANGE in `rval` with
                        // nothing copied), so the first `n` bytes are initialised.
                        unsafe { b.set_len(n) };
                        StepOut::Data(b)
                    }
                    OutKind::Data => StepOut::Data(take_rados_buf(std::mem::replace(&mut s.out_ptr, ptr::null_mut()), s.out_len)),
                    OutKind::Omap => StepOut::Omap(omap_collect(std::mem::replace(&mut s.iter, ptr::null_mut())), s.more != 0),
                };
                (s.rval, out)
            })
            .collect();
        OpResult { rc, steps }
    }
}

/// Shared between an [`AioOp`] and its completion callback.
struct AioState {
    done: bool,
    waker: Option<Waker>,
    /// An op whose future was dropped before it completed: its buffers and completion,
    /// freed by the callback (so that dropping the future never waits for the OSD).
    /// The ioctx is kept too: it must outlive the op.
    orphan: Option<(Prepared, Completion, Arc<IoCtxInner>)>,
}

/// A completion handle, released once.
struct Completion(sys::rados_completion_t);

// SAFETY: a librados completion may be released from any thread.
unsafe impl Send for Completion {}

impl Drop for Completion {
    fn drop(&mut self) {
        // SAFETY: released exactly once, after the op completed (or was never submitted);
        // librados holds its own reference while it runs the callback, so this is also
        // allowed from inside the callback.
        unsafe { sys::rados_aio_release(self.0) }
    }
}

extern "C" fn aio_callback(_c: sys::rados_completion_t, arg: *mut c_void) {
    // SAFETY: `arg` is the Arc leaked for this completion in `AioOp::start`; librados calls
    // the callback exactly once per submitted op, so it is reclaimed exactly once.
    let state = unsafe { Arc::from_raw(arg as *const Mutex<AioState>) };
    let (waker, orphan) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.done = true;
        (st.waker.take(), st.orphan.take())
    };
    // An abandoned op: librados is done with its buffers now, free them.
    drop(orphan);
    if let Some(w) = waker {
        w.wake();
    }
}

/// A read or write op in flight: resolves to its [`OpResult`] when librados completes it.
pub struct AioOp {
    prepared: Option<Prepared>,
    completion: sys::rados_completion_t,
    state: Arc<Mutex<AioState>>,
    _io: Arc<IoCtxInner>,
}

// SAFETY: the completion handle is thread-safe in librados; `Prepared` is Send (see above).
unsafe impl Send for AioOp {}

impl AioOp {
    fn start(io: &IoCtx, prepared: Prepared, flags: u32) -> Result<AioOp> {
        let state = Arc::new(Mutex::new(AioState { done: false, waker: None, orphan: None }));
        let arg = Arc::into_raw(Arc::clone(&state)) as *mut c_void;
        let mut completion: sys::rados_completion_t = ptr::null_mut();
        // SAFETY: valid out-pointer; the callback is a 'static extern fn; `arg` stays valid
        // until the callback reclaims it.
        let r = unsafe { sys::rados_aio_create_completion2(arg, Some(aio_callback), &mut completion) };
        if r < 0 {
            // SAFETY: no completion exists, so the callback will never run: reclaim `arg`.
            drop(unsafe { Arc::from_raw(arg as *const Mutex<AioState>) });
            return Err(Error::new(Errno(-r), "create aio completion"));
        }
        // SAFETY: live op, ioctx, completion and object name; the slots stay in place inside
        // `prepared`, which the returned AioOp keeps until the op completed.
        let r = unsafe {
            match prepared.kind {
                Kind::Read(op) => sys::rados_aio_read_op_operate(op, io.inner.ctx, completion, prepared.oid.as_ptr(), flags as c_int),
                Kind::Write(op) => sys::rados_aio_write_op_operate(op, io.inner.ctx, completion, prepared.oid.as_ptr(), ptr::null_mut(), flags as c_int),
            }
        };
        if r < 0 {
            // SAFETY: the op was not submitted, so the callback never runs: reclaim `arg` and
            // release the unused completion.
            unsafe {
                drop(Arc::from_raw(arg as *const Mutex<AioState>));
                sys::rados_aio_release(completion);
            }
            return Err(Error::new(Errno(-r), "submit aio op"));
        }
        Ok(AioOp { prepared: Some(prepared), completion, state, _io: Arc::clone(&io.inner) })
    }
}

impl Future for AioOp {
    type Output = OpResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OpResult> {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !st.done {
                // Registered under the same lock the callback takes, so no wake-up is lost.
                st.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        // SAFETY: the op completed (the callback ran), so its return value is final.
        let rc = unsafe { sys::rados_aio_get_return_value(self.completion) };
        let mut p = self.prepared.take().expect("AioOp polled after completion");
        Poll::Ready(p.finish(rc))
    }
}

impl Drop for AioOp {
    fn drop(&mut self) {
        let completion = Completion(self.completion);
        let Some(prepared) = self.prepared.take() else {
            return;
        }; // finished: release now
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.done {
            // The callback already ran: nothing uses the slots any more.
            drop(st);
            drop((prepared, completion));
            return;
        }
        // Still in flight: hand the slots and the completion to the callback, which frees
        // them when librados is done (the same lock orders this against the callback).
        st.orphan = Some((prepared, completion, Arc::clone(&self._io)));
    }
}

/// A watch on an object; notifications are acknowledged with the handler's reply.
pub struct Watch {
    cookie: u64,
    ctx: Box<WatchCtx>,
    io: Arc<IoCtxInner>,
}

/// Called for each notification with its payload; returns the acknowledgement payload.
pub type NotifyHandler = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// Called when the watch breaks, with the negative errno (`-ENOTCONN`, `-ESHUTDOWN` when
/// this client was blocklisted...). Runs on a librados thread: it must not block on RADOS.
pub type WatchErrorHandler = Box<dyn Fn(i32) + Send + Sync>;

struct WatchCtx {
    io: Arc<IoCtxInner>,
    oid: CString,
    handler: NotifyHandler,
    on_error: WatchErrorHandler,
    cookie: std::sync::atomic::AtomicU64,
}

extern "C" fn watch_callback(arg: *mut c_void, notify_id: u64, handle: u64, _notifier: u64, data: *mut c_void, len: usize) {
    // SAFETY: `arg` is the boxed WatchCtx registered with this watch; it is freed only after
    // rados_unwatch2 + rados_watch_flush, so it outlives every callback.
    let ctx = unsafe { &*(arg as *const WatchCtx) };
    let payload: &[u8] = if data.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: librados passes `len` readable bytes for the duration of the callback.
        unsafe { std::slice::from_raw_parts(data as *const u8, len) }
    };
    let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (ctx.handler)(payload))).unwrap_or_default();
    // SAFETY: valid ioctx (kept alive by the Arc), object name and reply buffer.
    unsafe {
        sys::rados_notify_ack(ctx.io.ctx, ctx.oid.as_ptr(), notify_id, handle, reply.as_ptr() as *const c_char, reply.len() as _);
    }
}

extern "C" fn watch_error_callback(arg: *mut c_void, _cookie: u64, err: c_int) {
    // SAFETY: as in `watch_callback`: the boxed WatchCtx outlives every callback.
    let ctx = unsafe { &*(arg as *const WatchCtx) };
    // The owner re-establishes the watch (or learns it was blocklisted); a panic in its
    // handler must not unwind into librados.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (ctx.on_error)(err)));
}

impl Watch {
    /// The watch handle (librbd uses it in its lock cookie: `auto <handle>`).
    pub fn handle(&self) -> u64 {
        self.cookie
    }

    /// 0 if the watch is healthy, else the error that broke it.
    pub fn check(&self) -> Result<()> {
        // SAFETY: valid ioctx and a registered cookie.
        let r = unsafe { sys::rados_watch_check(self.io.ctx, self.cookie) };
        check(r, || "watch check".to_string()).map(|_| ())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: unregister, then flush so no callback still uses `ctx` when it is freed.
        unsafe {
            sys::rados_unwatch2(self.io.ctx, self.cookie);
            sys::rados_watch_flush(self.io.cluster.handle);
        }
        let _ = &self.ctx;
    }
}

/// What `list_lockers` returns: (exclusive, tag, [(client, cookie, address)]).
pub type Lockers = (bool, String, Vec<(String, String, String)>);

/// The shared part of an [`IoCtx`], kept alive by in-flight ops and watches.
pub(crate) struct IoCtxInner {
    ctx: sys::rados_ioctx_t,
    cluster: Arc<Cluster>,
}

// SAFETY: an ioctx may be used from several threads as long as its namespace/locator are not
// changed concurrently; we set the namespace only at construction.
unsafe impl Send for IoCtxInner {}
// SAFETY: as above.
unsafe impl Sync for IoCtxInner {}

impl Drop for IoCtxInner {
    fn drop(&mut self) {
        // SAFETY: valid ioctx, destroyed once, after every op and watch holding us is gone;
        // the cluster is kept alive by our Arc.
        unsafe { sys::rados_ioctx_destroy(self.ctx) }
    }
}

/// An I/O context: one pool and namespace. Cheap to clone.
#[derive(Clone)]
pub struct IoCtx {
    inner: Arc<IoCtxInner>,
    pool: String,
    namespace: String,
}

impl std::fmt::Debug for IoCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IoCtx({}/{})", self.pool, self.namespace)
    }
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
        unsafe { sys::rados_ioctx_get_id(self.inner.ctx) }
    }

    /// The cluster this context belongs to.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.inner.cluster
    }

    /// Another context on the same pool in `namespace`.
    pub fn with_namespace(&self, namespace: &str) -> Result<IoCtx> {
        self.inner.cluster.ioctx(&self.pool, namespace)
    }

    /// A new context on the same pool and namespace whose writes carry the self-managed
    /// snapshot context `seq`/`snaps` (ids descending), as librbd's data ioctx: the OSD then
    /// clones an object before the first write after a snapshot. A fresh context, because
    /// librados reads an ioctx's snap context unlocked when it submits an op: setting it on
    /// one that is shared would race with ops in flight. `EINVAL` if the context is invalid.
    pub fn with_write_snap_context(&self, seq: u64, snaps: &[u64]) -> Result<IoCtx> {
        let io = self.inner.cluster.ioctx(&self.pool, &self.namespace)?;
        let mut ids: Vec<sys::rados_snap_t> = snaps.to_vec();
        let n = c_int::try_from(ids.len()).map_err(|_| Error::new(Errno::EINVAL, format!("snap context of {} snapshots", ids.len())))?;
        // SAFETY: `io` is a valid ioctx no other thread can see yet (so no op reads its snap
        // context concurrently); `ids` is valid for `n` elements and librados copies them.
        let r = unsafe { sys::rados_ioctx_selfmanaged_snap_set_write_ctx(io.inner.ctx, seq, ids.as_mut_ptr(), n) };
        check(r, || format!("pool {}: set write snap context seq {seq}, {} snapshot(s)", self.pool, snaps.len()))?;
        Ok(io)
    }

    /// Allocates a self-managed snapshot id in this pool (librbd's snap create does it on the
    /// image's data pool).
    pub fn selfmanaged_snap_create(&self) -> Result<u64> {
        let mut id: sys::rados_snap_t = 0;
        // SAFETY: valid ioctx and out-pointer.
        let r = unsafe { sys::rados_ioctx_selfmanaged_snap_create(self.inner.ctx, &mut id) };
        check(r, || format!("pool {}: allocate a snapshot id", self.pool))?;
        Ok(id)
    }

    /// Releases a self-managed snapshot id (a snapshot that was not recorded after all).
    pub fn selfmanaged_snap_remove(&self, id: u64) -> Result<()> {
        // SAFETY: valid ioctx.
        let r = unsafe { sys::rados_ioctx_selfmanaged_snap_remove(self.inner.ctx, id) };
        check(r, || format!("pool {}: release snapshot id {id}", self.pool)).map(|_| ())
    }

    pub(crate) fn raw(&self) -> sys::rados_ioctx_t {
        self.inner.ctx
    }

    /// Runs a read op on `oid` and waits. Returns the per-step results even when the op
    /// failed (`rc < 0`), so callers can tell which step failed.
    pub fn operate_read(&self, oid: &str, op: &ReadOp, flags: u32) -> Result<OpResult> {
        let mut p = Prepared::read(oid, op)?;
        let Kind::Read(rop) = p.kind else { unreachable!("Prepared::read builds a read op") };
        // SAFETY: live op, ioctx and C string; synchronous, so all slots stay valid.
        let rc = unsafe { sys::rados_read_op_operate(rop, self.inner.ctx, p.oid.as_ptr(), flags as c_int) };
        Ok(p.finish(rc))
    }

    /// Runs a write op on `oid` and waits.
    pub fn operate_write(&self, oid: &str, op: &WriteOp, flags: u32) -> Result<OpResult> {
        let mut p = Prepared::write(oid, op)?;
        let Kind::Write(wop) = p.kind else { unreachable!("Prepared::write builds a write op") };
        // SAFETY: live op and ioctx; synchronous, slots stay valid; null mtime = now.
        let rc = unsafe { sys::rados_write_op_operate2(wop, self.inner.ctx, p.oid.as_ptr(), ptr::null_mut(), flags as c_int) };
        Ok(p.finish(rc))
    }

    /// Submits a read op; the returned future resolves when it completes.
    pub fn aio_read(&self, oid: &str, op: &ReadOp, flags: u32) -> Result<AioOp> {
        AioOp::start(self, Prepared::read(oid, op)?, flags)
    }

    /// Submits a write op; the returned future resolves when it completes.
    pub fn aio_write(&self, oid: &str, op: &WriteOp, flags: u32) -> Result<AioOp> {
        AioOp::start(self, Prepared::write(oid, op)?, flags)
    }

    /// Watches `oid`; `handler` answers each notification (its return value is the ack
    /// payload), `on_error` hears that the watch broke. Unwatched on drop.
    pub fn watch(&self, oid: &str, handler: NotifyHandler, on_error: WatchErrorHandler) -> Result<Watch> {
        let ctx =
            Box::new(WatchCtx { io: Arc::clone(&self.inner), oid: cstr(oid, "object name")?, handler, on_error, cookie: std::sync::atomic::AtomicU64::new(0) });
        let mut cookie = 0u64;
        let arg = &*ctx as *const WatchCtx as *mut c_void;
        // Timeout 0: the OSD's `osd_client_watch_timeout` (30 s by default), as librbd's
        // watches, so operators tune both in one place.
        // SAFETY: valid ioctx and name; `arg` points to the boxed ctx, which the returned Watch
        // keeps until after unwatch + flush; callbacks are 'static extern fns.
        let r = unsafe { sys::rados_watch3(self.inner.ctx, ctx.oid.as_ptr(), &mut cookie, Some(watch_callback), Some(watch_error_callback), 0, arg) };
        check(r, || format!("object {oid}: watch"))?;
        ctx.cookie.store(cookie, std::sync::atomic::Ordering::Relaxed);
        Ok(Watch { cookie, ctx, io: Arc::clone(&self.inner) })
    }

    /// Notifies the watchers of `oid` and waits up to `timeout_ms` for their acks.
    pub fn notify(&self, oid: &str, payload: &[u8], timeout_ms: u64) -> Result<()> {
        let o = cstr(oid, "object name")?;
        let (mut reply, mut reply_len) = (ptr::null_mut(), 0usize);
        // SAFETY: valid ioctx, name and payload; the reply buffer is freed below.
        let r = unsafe {
            sys::rados_notify2(self.inner.ctx, o.as_ptr(), payload.as_ptr() as *const c_char, payload.len() as c_int, timeout_ms, &mut reply, &mut reply_len)
        };
        take_rados_buf(reply, reply_len);
        check(r, || format!("object {oid}: notify")).map(|_| ())
    }

    /// Lockers of lock `name` on `oid`: (exclusive, tag, [(client, cookie, address)]).
    pub fn list_lockers(&self, oid: &str, name: &str) -> Result<Lockers> {
        let (o, n) = (cstr(oid, "object name")?, cstr(name, "lock name")?);
        let mut cap = 1024usize;
        loop {
            let (mut tag, mut clients, mut cookies, mut addrs) = (vec![0u8; cap], vec![0u8; cap], vec![0u8; cap], vec![0u8; cap]);
            let (mut tl, mut cl, mut kl, mut al) = (cap, cap, cap, cap);
            let mut excl: c_int = 0;
            // SAFETY: valid ioctx and names; each buffer valid for the length passed.
            let r = unsafe {
                sys::rados_list_lockers(
                    self.inner.ctx,
                    o.as_ptr(),
                    n.as_ptr(),
                    &mut excl,
                    tag.as_mut_ptr() as *mut c_char,
                    &mut tl,
                    clients.as_mut_ptr() as *mut c_char,
                    &mut cl,
                    cookies.as_mut_ptr() as *mut c_char,
                    &mut kl,
                    addrs.as_mut_ptr() as *mut c_char,
                    &mut al,
                )
            };
            if r == -(libc::ERANGE as isize) && cap < (1 << 24) {
                cap *= 8;
                continue;
            }
            if r < 0 {
                return Err(Error::new(Errno(-(r as i32)), format!("object {oid}: list lockers of {name}")));
            }
            // Each buffer holds `r` NUL-terminated strings (cookies may be empty).
            let n = r as usize;
            let split = |b: &[u8], l: usize| -> Vec<String> {
                let mut v: Vec<String> = b[..l.min(b.len())].split(|&c| c == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
                v.resize(n, String::new());
                v
            };
            let tag = String::from_utf8_lossy(tag[..tl.min(tag.len())].split(|&c| c == 0).next().unwrap_or(&[])).into_owned();
            let (c, k, a) = (split(&clients, cl), split(&cookies, kl), split(&addrs, al));
            let lockers = c.into_iter().zip(k).zip(a).map(|((c, k), a)| (c, k, a)).collect();
            return Ok((excl != 0, tag, lockers));
        }
    }

    /// Breaks `client`'s hold (`client.4123`, cookie) on lock `name` of `oid`.
    pub fn break_lock(&self, oid: &str, name: &str, client: &str, cookie: &str) -> Result<()> {
        let (o, n, c, k) = (cstr(oid, "object name")?, cstr(name, "lock name")?, cstr(client, "client")?, cstr(cookie, "cookie")?);
        // SAFETY: valid ioctx and C strings.
        let r = unsafe { sys::rados_break_lock(self.inner.ctx, o.as_ptr(), n.as_ptr(), c.as_ptr(), k.as_ptr()) };
        check(r, || format!("object {oid}: break lock {name} held by {client}")).map(|_| ())
    }

    /// This client's global id (`client.<id>` is how the OSD names it in locks).
    pub fn instance_id(&self) -> u64 {
        // SAFETY: valid connected cluster handle.
        unsafe { sys::rados_get_instance_id(self.inner.cluster.handle) }
    }
}

impl IoCtx {
    /// Names of the objects in this pool and namespace that start with `prefix` (a full
    /// listing filtered client-side: librados has no prefix filter).
    pub fn list_objects(&self, prefix: &str) -> Result<Vec<String>> {
        let mut list: sys::rados_list_ctx_t = ptr::null_mut();
        // SAFETY: valid ioctx and out-pointer; closed below.
        check(unsafe { sys::rados_nobjects_list_open(self.inner.ctx, &mut list) }, || format!("list objects of pool {}", self.pool))?;
        let mut out = Vec::new();
        let result = loop {
            let (mut entry, mut key, mut nspace) = (ptr::null(), ptr::null(), ptr::null());
            let (mut elen, mut klen, mut nlen) = (0usize, 0usize, 0usize);
            // SAFETY: live list context; out-pointers valid; the strings stay valid until the
            // next call, and we copy them before that.
            let r = unsafe { sys::rados_nobjects_list_next2(list, &mut entry, &mut key, &mut nspace, &mut elen, &mut klen, &mut nlen) };
            if r == -libc::ENOENT {
                break Ok(());
            }
            if r < 0 {
                break Err(Error::new(Errno(-r), format!("list objects of pool {}", self.pool)));
            }
            // SAFETY: `entry` is valid for `elen` bytes until the next call.
            let name = unsafe { std::slice::from_raw_parts(entry as *const u8, elen) };
            if name.starts_with(prefix.as_bytes()) {
                out.push(String::from_utf8_lossy(name).into_owned());
            }
        };
        // SAFETY: closed exactly once.
        unsafe { sys::rados_nobjects_list_close(list) };
        result.map(|()| out)
    }
}

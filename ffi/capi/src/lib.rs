//! `librbd_ext`: rbd-ext's C API, in librbd's style, over the caller's librados handles.
//!
//! Conventions (as librbd's `include/rbd/librbd.h`):
//! - functions return 0 (or a count) on success and a negative errno on failure;
//! - they take the caller's `rados_ioctx_t`; the image lives in that context's pool and
//!   namespace. The caller's cluster handle is used for the duration of the call only
//!   (wrapped without taking ownership) and is never shut down here;
//! - strings returned in structs are allocated with `malloc` and released by the matching
//!   `_cleanup` function;
//! - every entry point is thread-safe and catches panics (a panic returns `-EIO`; nothing
//!   unwinds into C);
//! - progress callbacks have librbd's `librbd_progress_fn_t` shape, are called on the
//!   calling thread, one call at a time; their return value is ignored (as librbd's flatten).
//!
//! All `unsafe` (pointers from C) is in this file; the library is called only from
//! [`calls`].

#![allow(non_camel_case_types)]

mod calls;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, Mutex};

use rados_sys::{librbd_progress_fn_t, rados_ioctx_t, rbd_image_options_t};
use rbdext::rados::Cluster;
use rbdext::s3_parent::AttachOptions;
use rbdext::{Errno, ImageSpec, RemoteOptions};

use calls::{CallError, CloneLayout, ParentKind, ParentKindInfo, Result};

/// One child of an image (librbd's `rbd_linked_image_spec_t`, field for field).
#[repr(C)]
pub struct rbd_ext_linked_image_spec_t {
    /// Pool id.
    pub pool_id: i64,
    /// Pool name.
    pub pool_name: *mut c_char,
    /// RADOS namespace ("" for the default one).
    pub pool_namespace: *mut c_char,
    /// Image id.
    pub image_id: *mut c_char,
    /// Image name.
    pub image_name: *mut c_char,
    /// Always false: images in the trash are not children of a HEAD.
    pub trash: bool,
}

/// What an image's parent is.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rbd_ext_parent_type_t {
    /// A snapshot of a local image (a stock RBD clone).
    RBD_EXT_PARENT_TYPE_SNAPSHOT = 0,
    /// The HEAD of a local image (a standalone clone).
    RBD_EXT_PARENT_TYPE_STANDALONE = 1,
    /// The HEAD of an image in another Ceph cluster.
    RBD_EXT_PARENT_TYPE_REMOTE = 2,
    /// An object in S3 (the image is an S3-backed parent).
    RBD_EXT_PARENT_TYPE_S3 = 3,
}

/// An image's parent, from [`rbd_ext_get_parent`]; release with [`rbd_ext_parent_info_cleanup`].
#[repr(C)]
pub struct rbd_ext_parent_info_t {
    /// What the parent is.
    pub parent_type: rbd_ext_parent_type_t,
    /// The parent's pool id (in its own cluster); -1 for S3.
    pub pool_id: i64,
    /// The parent's pool name; "" for S3.
    pub pool_name: *mut c_char,
    /// The parent's namespace.
    pub pool_namespace: *mut c_char,
    /// The parent's image id; "" for S3.
    pub image_id: *mut c_char,
    /// The parent's image name; "" for S3.
    pub image_name: *mut c_char,
    /// The snapshot id for a snapshot parent, else `CEPH_NOSNAP` (`(uint64_t)-2`).
    pub snap_id: u64,
    /// The snapshot name for a snapshot parent, else "".
    pub snap_name: *mut c_char,
    /// Bytes of the child backed by the parent.
    pub overlap: u64,
    /// The remote cluster's name (remote parents), `s3://bucket/key` (S3), else "".
    pub source: *mut c_char,
}

/// An S3 endpoint and credentials to publish to (`NULL` fields take the defaults).
#[repr(C)]
pub struct rbd_ext_s3_target_t {
    /// `http(s)://host[:port]` (required).
    pub endpoint: *const c_char,
    /// SigV4 region (default `us-east-1`).
    pub region: *const c_char,
    /// Bucket (required).
    pub bucket: *const c_char,
    /// Access key id.
    pub access_key: *const c_char,
    /// The secret key itself: used for this call only, never stored or logged.
    pub secret_key: *const c_char,
    /// Or a `config://KEY` reference to it in the mon config-key store.
    pub secret_key_ref: *const c_char,
    /// PEM file (or `config://KEY`) of the CA to trust for https.
    pub ca_file: *const c_char,
}

/// Where an S3-backed parent's data is (`NULL`/0 fields take the defaults, as `rbd-ext s3 attach`).
#[repr(C)]
pub struct rbd_ext_s3_attach_opts_t {
    /// `http(s)://host[:port]` (required).
    pub endpoint: *const c_char,
    /// SigV4 region (default `us-east-1`).
    pub region: *const c_char,
    /// Bucket (required).
    pub bucket: *const c_char,
    /// Key of the raw image object (or give `prefix`).
    pub object: *const c_char,
    /// Key prefix of one object per RBD object (`<prefix><16 hex digits>`).
    pub prefix: *const c_char,
    /// Access key id, or a `config://KEY` reference to it.
    pub access_key: *const c_char,
    /// `config://KEY` reference to the secret key (secrets are stored by reference only).
    pub secret_key_ref: *const c_char,
    /// Or a file holding the secret key: checked against S3, then stored in the mon
    /// config-key store and referred to.
    pub secret_key_file: *const c_char,
    /// PEM file (or `config://KEY`) of the CA to trust for https.
    pub ca_file: *const c_char,
    /// Unsigned requests (public-read objects).
    pub anonymous: bool,
    /// Replace a different secret already stored for this bucket and access key.
    pub replace_secret: bool,
    /// Image size when there is no manifest (0: the object's size).
    pub size: u64,
    /// Object size exponent when there is no manifest (0: 22).
    pub order: u8,
    /// Per-request timeout in ms (0: default).
    pub timeout_ms: u64,
    /// Retries (0: default).
    pub retries: u32,
}

/// Runs an entry point: its error as a negative errno, a panic as `-EIO`. With
/// `RBD_EXT_CAPI_DEBUG` set in the environment, each error's full text (image, object,
/// operation; never a secret) goes to stderr, since C callers get only the errno.
fn guard(f: impl FnOnce() -> Result<c_int>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            if std::env::var_os("RBD_EXT_CAPI_DEBUG").is_some() {
                eprintln!("librbd_ext: {e}");
            }
            e.to_neg()
        }
        Err(_) => -libc::EIO,
    }
}

/// Runs an entry point that returns nothing: a panic is swallowed, never unwound into C.
fn guard_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

fn inval(what: impl Into<String>) -> CallError {
    CallError::here(Errno::EINVAL, what)
}

/// A required C string argument.
///
/// # Safety
/// `p` is null or a NUL-terminated string valid for the call.
unsafe fn arg(p: *const c_char, what: &str) -> Result<String> {
    // SAFETY: as the caller promised.
    unsafe { opt_arg(p, what) }?.ok_or_else(|| inval(format!("{what} is NULL")))
}

/// An optional C string argument (NULL or "" mean absent).
///
/// # Safety
/// `p` is null or a NUL-terminated string valid for the call.
unsafe fn opt_arg(p: *const c_char, what: &str) -> Result<Option<String>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null, NUL-terminated per the caller.
    let s = unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| inval(format!("{what} is not UTF-8")))?;
    Ok((!s.is_empty()).then(|| s.to_string()))
}

/// The caller's cluster (borrowed) and the pool and namespace of `io`.
///
/// # Safety
/// `io` is null or a valid ioctx of a connected cluster, kept open by the caller for the
/// call; nothing made from the returned `Arc` outlives the call ([`calls::run`] waits).
unsafe fn ioctx_parts(io: rados_ioctx_t, what: &str) -> Result<(Arc<Cluster>, String, String)> {
    if io.is_null() {
        return Err(inval(format!("{what} I/O context is NULL")));
    }
    let get = |f: &dyn Fn(*mut c_char, usize) -> c_int, name: &str| -> Result<String> {
        let mut buf = vec![0u8; 256];
        loop {
            let r = f(buf.as_mut_ptr() as *mut c_char, buf.len());
            if r == -libc::ERANGE && buf.len() < 1 << 16 {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            if r < 0 {
                return Err(CallError::here(Errno(-r), format!("{what} I/O context: get {name}")));
            }
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8(buf[..end].to_vec()).map_err(|_| inval(format!("{what} {name} is not UTF-8")));
        }
    };
    // SAFETY: valid ioctx; buffers valid for their length.
    let pool = get(&|b, n| unsafe { rados_sys::rados_ioctx_get_pool_name(io, b, n as _) }, "pool name")?;
    // SAFETY: as above.
    let ns = get(&|b, n| unsafe { rados_sys::rados_ioctx_get_namespace(io, b, n as _) }, "namespace")?;
    // SAFETY: an open ioctx's cluster is connected and outlives the ioctx, which the caller
    // keeps open for the call; `calls::run` drops every use of it before returning.
    let cluster = unsafe { Cluster::from_borrowed(rados_sys::rados_ioctx_get_cluster(io)) }?;
    Ok((cluster, pool, ns))
}

/// `io`'s cluster and the spec of image `name` in its pool and namespace.
///
/// # Safety
/// As [`ioctx_parts`] and [`arg`].
unsafe fn image_at(io: rados_ioctx_t, name: *const c_char, what: &str) -> Result<(Arc<Cluster>, ImageSpec)> {
    // SAFETY: as the caller promised.
    let image = unsafe { arg(name, &format!("{what} name")) }?;
    // SAFETY: as the caller promised.
    let (cluster, pool, namespace) = unsafe { ioctx_parts(io, what) }?;
    Ok((cluster, ImageSpec { pool, namespace, image, snap: None }))
}

/// librbd image options the clone honours: features, order, stripe unit/count, data pool.
///
/// # Safety
/// `opts` is null or a live `rbd_image_options_t`.
unsafe fn clone_layout(opts: rbd_image_options_t) -> Result<CloneLayout> {
    let mut l = CloneLayout::default();
    if opts.is_null() {
        return Ok(l);
    }
    let is_set = |o: u32| -> bool {
        let mut set = false;
        // SAFETY: live options, valid out-pointer.
        let r = unsafe { rados_sys::rbd_image_options_is_set(opts, o as c_int, &mut set) };
        r == 0 && set
    };
    let u64_of = |o: u32| -> Result<Option<u64>> {
        if !is_set(o) {
            return Ok(None);
        }
        let mut v = 0u64;
        // SAFETY: live options, valid out-pointer.
        let r = unsafe { rados_sys::rbd_image_options_get_uint64(opts, o as c_int, &mut v) };
        if r < 0 {
            return Err(CallError::here(Errno(-r), format!("image option {o}")));
        }
        Ok(Some(v))
    };
    use rados_sys as s;
    for o in [
        s::RBD_IMAGE_OPTION_JOURNAL_ORDER,
        s::RBD_IMAGE_OPTION_JOURNAL_SPLAY_WIDTH,
        s::RBD_IMAGE_OPTION_JOURNAL_POOL,
        s::RBD_IMAGE_OPTION_FEATURES_SET,
        s::RBD_IMAGE_OPTION_FEATURES_CLEAR,
        s::RBD_IMAGE_OPTION_FLATTEN,
        s::RBD_IMAGE_OPTION_MIRROR_IMAGE_MODE,
    ] {
        if is_set(o) {
            return Err(inval(format!("image option {o} is not supported by a standalone clone")));
        }
    }
    if u64_of(s::RBD_IMAGE_OPTION_FORMAT)?.is_some_and(|f| f != 2) {
        return Err(inval("image format must be 2"));
    }
    l.features = u64_of(s::RBD_IMAGE_OPTION_FEATURES)?;
    l.order = u64_of(s::RBD_IMAGE_OPTION_ORDER)?.map(|o| u8::try_from(o).map_err(|_| inval(format!("order {o}")))).transpose()?;
    l.stripe_unit = u64_of(s::RBD_IMAGE_OPTION_STRIPE_UNIT)?;
    l.stripe_count = u64_of(s::RBD_IMAGE_OPTION_STRIPE_COUNT)?;
    if is_set(s::RBD_IMAGE_OPTION_DATA_POOL) {
        let mut buf = vec![0u8; 4096];
        // SAFETY: live options; buffer valid for its length.
        let r =
            unsafe { rados_sys::rbd_image_options_get_string(opts, s::RBD_IMAGE_OPTION_DATA_POOL as c_int, buf.as_mut_ptr() as *mut c_char, buf.len() as _) };
        if r < 0 {
            return Err(CallError::here(Errno(-r), "image option data_pool"));
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let pool = String::from_utf8(buf[..end].to_vec()).map_err(|_| inval("data pool is not UTF-8"))?;
        l.data_pool = (!pool.is_empty()).then_some(pool);
    }
    Ok(l)
}

/// A C progress callback made callable from the library (which may poll from any of its
/// futures): calls are serialized.
struct CProgress {
    cb: librbd_progress_fn_t,
    arg: *mut c_void,
    lock: Mutex<()>,
}

// SAFETY: the callback and its argument are only used under `lock`, one call at a time, on
// the thread that made the C call (`calls::run` polls on it); the caller owns `arg` for the
// duration of that call.
unsafe impl Sync for CProgress {}

impl CProgress {
    fn report(&self, done: u64, total: u64) {
        if let Some(cb) = self.cb {
            let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: a C function pointer the caller gave for this call, with its argument.
            unsafe { cb(done, total, self.arg) };
        }
    }
}

/// Copies `s` into a `malloc`ed C string (freed with `free`).
fn c_string(s: &str) -> *mut c_char {
    let bytes = s.as_bytes();
    // SAFETY: malloc of len+1 bytes; checked for null below.
    let p = unsafe { libc::malloc(bytes.len() + 1) } as *mut u8;
    if p.is_null() {
        // Allocation failure of a few bytes: there is no way to report it but a panic,
        // which the entry point turns into -EIO after freeing what it made.
        panic!("out of memory");
    }
    // SAFETY: p has len+1 bytes; the source does not overlap.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
    }
    p as *mut c_char
}

/// Frees a string made by [`c_string`] (or NULL) and nulls the pointer.
///
/// # Safety
/// `*p` is null or from [`c_string`], not freed yet.
unsafe fn free_string(p: &mut *mut c_char) {
    // SAFETY: malloc'ed by c_string, freed once.
    unsafe { libc::free(*p as *mut c_void) };
    *p = ptr::null_mut();
}

/// Librbd-style version of this library: major, minor, extra (patch). Any pointer may be NULL.
///
/// # Safety
/// Each pointer is NULL or valid for writing an `int`.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_version(major: *mut c_int, minor: *mut c_int, extra: *mut c_int) {
    guard_void(|| {
        let parse = |s: &str| s.parse::<c_int>().unwrap_or(0);
        for (p, v) in [(major, env!("CARGO_PKG_VERSION_MAJOR")), (minor, env!("CARGO_PKG_VERSION_MINOR")), (extra, env!("CARGO_PKG_VERSION_PATCH"))] {
            if !p.is_null() {
                // SAFETY: non-null, valid for writing per the caller.
                unsafe { *p = parse(v) };
            }
        }
    })
}

/// Creates `c_name` in `c_ioctx` as a standalone copy-on-write clone of the HEAD of
/// `p_name` in `p_ioctx` (no snapshot needed; the parent becomes protected). Both contexts
/// must belong to the same cluster (`-EXDEV` otherwise: see
/// [`rbd_ext_clone_standalone_remote`]). `c_opts` (NULL for the parent's layout) may set
/// `RBD_IMAGE_OPTION_FEATURES`, `_DATA_POOL`, `_FORMAT` (2), and `_ORDER`,
/// `_STRIPE_UNIT`, `_STRIPE_COUNT` equal to the parent's; others give `-EINVAL`.
/// An S3-backed parent is checked against S3 first.
///
/// # Safety
/// The contexts are valid and open for the call; names are NUL-terminated strings; `c_opts`
/// is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_clone_standalone(
    p_ioctx: rados_ioctx_t,
    p_name: *const c_char,
    c_ioctx: rados_ioctx_t,
    c_name: *const c_char,
    c_opts: rbd_image_options_t,
) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe { clone_local(p_ioctx, p_name, c_ioctx, c_name, c_opts, ParentKind::Local) })
}

/// As [`rbd_ext_clone_standalone`], for a parent that must be S3-backed (made by
/// [`rbd_ext_s3_attach`]): `-EINVAL` if it is not, and its S3 settings are checked
/// against S3 before the child is created.
///
/// # Safety
/// As [`rbd_ext_clone_standalone`].
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_clone_standalone_s3(
    p_ioctx: rados_ioctx_t,
    p_name: *const c_char,
    c_ioctx: rados_ioctx_t,
    c_name: *const c_char,
    c_opts: rbd_image_options_t,
) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe { clone_local(p_ioctx, p_name, c_ioctx, c_name, c_opts, ParentKind::S3) })
}

/// # Safety
/// As [`rbd_ext_clone_standalone`].
unsafe fn clone_local(
    p_ioctx: rados_ioctx_t,
    p_name: *const c_char,
    c_ioctx: rados_ioctx_t,
    c_name: *const c_char,
    c_opts: rbd_image_options_t,
    kind: ParentKind,
) -> Result<c_int> {
    // SAFETY: as the caller promised.
    let layout = unsafe { clone_layout(c_opts) }?;
    // SAFETY: as the caller promised.
    let (pc, parent) = unsafe { image_at(p_ioctx, p_name, "parent") }?;
    // SAFETY: as the caller promised.
    let (cc, child) = unsafe { image_at(c_ioctx, c_name, "child") }?;
    // Two handles may reach one cluster; two clusters need the remote variant.
    if !ptr::eq(Arc::as_ptr(&pc), Arc::as_ptr(&cc)) && pc.fsid()? != cc.fsid()? {
        return Err(CallError::here(Errno::EXDEV, format!("parent {parent} and child {child} are in different clusters: use rbd_ext_clone_standalone_remote")));
    }
    drop(pc);
    calls::clone_standalone(cc, parent, child, layout, kind)?;
    Ok(0)
}

/// Creates `c_name` in `c_ioctx` as a standalone clone of image `p_pool/p_namespace/p_name`
/// in another cluster, as `rbd-ext clone-standalone --remote-cluster-conf` does: that
/// cluster's conf file `remote_conf` (required), and exactly one of `remote_keyring` (a
/// keyring file: the key is stored in this cluster's config-key store) or
/// `remote_key_ref` (`config://KEY`); `remote_client_name` (default `client.admin`) and
/// `remote_cluster_name` (default: the conf file's name) may be NULL, as may
/// `p_namespace`. `c_opts` as for [`rbd_ext_clone_standalone`].
///
/// # Safety
/// `c_ioctx` is valid and open for the call; strings are NULL or NUL-terminated; `c_opts`
/// is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_clone_standalone_remote(
    remote_conf: *const c_char,
    remote_keyring: *const c_char,
    remote_key_ref: *const c_char,
    remote_client_name: *const c_char,
    remote_cluster_name: *const c_char,
    p_pool: *const c_char,
    p_namespace: *const c_char,
    p_name: *const c_char,
    c_ioctx: rados_ioctx_t,
    c_name: *const c_char,
    c_opts: rbd_image_options_t,
) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        let mut remote = RemoteOptions::new(arg(remote_conf, "remote conf")?);
        remote.keyring = opt_arg(remote_keyring, "remote keyring")?;
        remote.secret_ref = opt_arg(remote_key_ref, "remote key reference")?;
        remote.client_name = opt_arg(remote_client_name, "remote client name")?;
        remote.cluster_name = opt_arg(remote_cluster_name, "remote cluster name")?;
        let parent = ImageSpec {
            pool: arg(p_pool, "parent pool")?,
            namespace: opt_arg(p_namespace, "parent namespace")?.unwrap_or_default(),
            image: arg(p_name, "parent name")?,
            snap: None,
        };
        let layout = clone_layout(c_opts)?;
        let (cc, child) = image_at(c_ioctx, c_name, "child")?;
        calls::clone_remote(cc, remote, parent, child, layout)?;
        Ok(0)
    })
}

/// Lists the standalone children of `name` (HEAD) in this cluster, dropping stale entries
/// first, as librbd's `rbd_list_children3`: on entry `*max_images` is the room in
/// `images`; if too small, `-ERANGE` and `*max_images` is set to the count needed;
/// otherwise 0, `*max_images` is the count and `images[0..count]` are filled (release them
/// with [`rbd_ext_linked_image_spec_list_cleanup`]).
///
/// # Safety
/// `ioctx` valid; `name` NUL-terminated; `max_images` valid; `images` valid for
/// `*max_images` elements (may be NULL when that is 0).
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_list_children(
    ioctx: rados_ioctx_t,
    name: *const c_char,
    images: *mut rbd_ext_linked_image_spec_t,
    max_images: *mut usize,
) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        if max_images.is_null() {
            return Err(inval("max_images is NULL"));
        }
        let (cluster, spec) = image_at(ioctx, name, "image")?;
        let kids = calls::list_children(cluster, spec)?;
        if *max_images < kids.len() {
            *max_images = kids.len();
            return Err(CallError::here(Errno::ERANGE, "images array too small"));
        }
        if images.is_null() && !kids.is_empty() {
            return Err(inval("images is NULL"));
        }
        for (i, k) in kids.iter().enumerate() {
            images.add(i).write(rbd_ext_linked_image_spec_t {
                pool_id: k.pool_id,
                pool_name: c_string(&k.pool),
                pool_namespace: c_string(&k.namespace),
                image_id: c_string(&k.id),
                image_name: c_string(&k.name),
                trash: false,
            });
        }
        *max_images = kids.len();
        Ok(0)
    })
}

/// Releases the strings of `num_images` specs filled by [`rbd_ext_list_children`].
///
/// # Safety
/// `images` is valid for `num_images` elements filled by [`rbd_ext_list_children`] and not
/// released yet (NULL fields are skipped).
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_linked_image_spec_list_cleanup(images: *mut rbd_ext_linked_image_spec_t, num_images: usize) {
    if images.is_null() {
        return;
    }
    guard_void(|| {
        for i in 0..num_images {
            // SAFETY: in bounds per the caller; strings from c_string.
            unsafe {
                let s = &mut *images.add(i);
                free_string(&mut s.pool_name);
                free_string(&mut s.pool_namespace);
                free_string(&mut s.image_id);
                free_string(&mut s.image_name);
            }
        }
    })
}

/// Removes image `name`. A parent with standalone children is refused with `-EBUSY`
/// (flatten or remove them first); a child is detached from its parent.
///
/// # Safety
/// `ioctx` valid; `name` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_remove(ioctx: rados_ioctx_t, name: *const c_char) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        let (cluster, spec) = image_at(ioctx, name, "image")?;
        calls::remove(cluster, spec)?;
        Ok(0)
    })
}

/// Creates snapshot `snap_name` of image `image_name`, as librbd's `rbd_snap_create` (by image
/// name), right for every kind of image: a standalone child's snapshot keeps the parent
/// overlap in its record, so it reads the parent where the child has not written (stock
/// `rbd_snap_create` would leave the overlap out, and is refused on such a child); stock
/// librbd reads the snapshot so. A plain image or a stock clone goes through librbd; when
/// another client owns the child's exclusive lock, the request goes to that owner.
/// `-EEXIST` if the image has a snapshot of that name, `-EINVAL` for a NULL or empty name
/// or one holding `/` or `@`, `-ENOENT` if there is no such image.
///
/// # Safety
/// `ioctx` valid; `image_name`, `snap_name` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_snap_create(ioctx: rados_ioctx_t, image_name: *const c_char, snap_name: *const c_char) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        let snap = arg(snap_name, "snapshot name")?;
        let (cluster, spec) = image_at(ioctx, image_name, "image")?;
        calls::snap_create(cluster, ImageSpec { snap: Some(snap), ..spec })?;
        Ok(0)
    })
}

/// Flattens clone `name` (copies up every inherited object, then detaches it from its
/// parent) under the writer lock, reporting `cb(objects done, objects total, cbdata)`.
/// `-EINVAL` if it has no parent.
///
/// # Safety
/// `ioctx` valid; `name` NUL-terminated; `cb` NULL or a function callable with `cbdata`.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_flatten_with_progress(ioctx: rados_ioctx_t, name: *const c_char, cb: librbd_progress_fn_t, cbdata: *mut c_void) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        let (cluster, spec) = image_at(ioctx, name, "image")?;
        let p = CProgress { cb, arg: cbdata, lock: Mutex::new(()) };
        calls::flatten(cluster, spec, &|d, t| p.report(d, t))?;
        Ok(0)
    })
}

/// Fills `info` with the parent of image `name`: its type, spec and overlap (release with
/// [`rbd_ext_parent_info_cleanup`]). `-ENOENT` if it has no parent (as `rbd_get_parent`).
///
/// # Safety
/// `ioctx` valid; `name` NUL-terminated; `info` valid for writing.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_get_parent(ioctx: rados_ioctx_t, name: *const c_char, info: *mut rbd_ext_parent_info_t) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        if info.is_null() {
            return Err(inval("info is NULL"));
        }
        let (cluster, spec) = image_at(ioctx, name, "image")?;
        let p = calls::get_parent(cluster, spec)?;
        info.write(rbd_ext_parent_info_t {
            parent_type: match p.kind {
                ParentKindInfo::Snapshot => rbd_ext_parent_type_t::RBD_EXT_PARENT_TYPE_SNAPSHOT,
                ParentKindInfo::Standalone => rbd_ext_parent_type_t::RBD_EXT_PARENT_TYPE_STANDALONE,
                ParentKindInfo::Remote => rbd_ext_parent_type_t::RBD_EXT_PARENT_TYPE_REMOTE,
                ParentKindInfo::S3 => rbd_ext_parent_type_t::RBD_EXT_PARENT_TYPE_S3,
            },
            pool_id: p.pool_id,
            pool_name: c_string(&p.pool),
            pool_namespace: c_string(&p.namespace),
            image_id: c_string(&p.image_id),
            image_name: c_string(&p.image_name),
            snap_id: p.snap_id,
            snap_name: c_string(&p.snap_name),
            overlap: p.overlap,
            source: c_string(&p.source),
        });
        Ok(0)
    })
}

/// Releases the strings of a [`rbd_ext_parent_info_t`] filled by [`rbd_ext_get_parent`].
///
/// # Safety
/// `info` is NULL or filled by [`rbd_ext_get_parent`] and not released yet.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_parent_info_cleanup(info: *mut rbd_ext_parent_info_t) {
    if info.is_null() {
        return;
    }
    guard_void(|| {
        // SAFETY: filled by rbd_ext_get_parent per the caller.
        unsafe {
            let i = &mut *info;
            free_string(&mut i.pool_name);
            free_string(&mut i.pool_namespace);
            free_string(&mut i.image_id);
            free_string(&mut i.image_name);
            free_string(&mut i.snap_name);
            free_string(&mut i.source);
        }
    })
}

/// Creates image `name` as an S3-backed parent of the raw image described by `opts`
/// (as `rbd-ext s3 attach`): credentials are checked against S3 before anything is stored,
/// and a failed attach changes nothing. `-EEXIST` if the image exists.
///
/// # Safety
/// `ioctx` valid; `name` NUL-terminated; `opts` valid, its strings NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_s3_attach(ioctx: rados_ioctx_t, name: *const c_char, opts: *const rbd_ext_s3_attach_opts_t) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        let o = opts.as_ref().ok_or_else(|| inval("opts is NULL"))?;
        let defaults = calls::s3_settings_default();
        let mut settings = defaults.clone();
        settings.endpoint = arg(o.endpoint, "endpoint")?;
        settings.bucket = arg(o.bucket, "bucket")?;
        settings.region = opt_arg(o.region, "region")?.unwrap_or(defaults.region);
        settings.image_name = opt_arg(o.object, "object")?;
        settings.prefix = opt_arg(o.prefix, "prefix")?;
        settings.anonymous = o.anonymous;
        settings.access_key = if o.anonymous { None } else { opt_arg(o.access_key, "access key")? };
        settings.secret_key = opt_arg(o.secret_key_ref, "secret key reference")?;
        settings.ca_file = opt_arg(o.ca_file, "ca file")?;
        if o.timeout_ms != 0 {
            settings.timeout_ms = o.timeout_ms;
        }
        if o.retries != 0 {
            settings.retries = o.retries;
        }
        let mut attach = AttachOptions::default().with_settings(settings).with_replace_secret(o.replace_secret);
        attach.secret_key_file = opt_arg(o.secret_key_file, "secret key file")?;
        (attach.size, attach.order) = ((o.size != 0).then_some(o.size), (o.order != 0).then_some(o.order));
        let (cluster, spec) = image_at(ioctx, name, "image")?;
        calls::s3_attach(cluster, spec, attach)?;
        Ok(0)
    })
}

/// Uploads image `name` (its logical content, read through any parent) to
/// `s3://<target->bucket>/<key>` with its manifest beside it (`<key>.manifest.json`), as
/// `rbd-ext s3 publish`, reporting `cb(bytes done, bytes total, cbdata)`.
///
/// # Safety
/// `ioctx` valid; `name`, `key` NUL-terminated; `target` valid, its strings NULL or
/// NUL-terminated; `cb` NULL or callable with `cbdata`.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_s3_publish(
    ioctx: rados_ioctx_t,
    name: *const c_char,
    target: *const rbd_ext_s3_target_t,
    key: *const c_char,
    cb: librbd_progress_fn_t,
    cbdata: *mut c_void,
) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        let t = target.as_ref().ok_or_else(|| inval("target is NULL"))?;
        let target = calls::S3Target {
            endpoint: arg(t.endpoint, "endpoint")?,
            region: opt_arg(t.region, "region")?,
            bucket: arg(t.bucket, "bucket")?,
            access_key: opt_arg(t.access_key, "access key")?,
            secret_key: opt_arg(t.secret_key, "secret key")?,
            secret_key_ref: opt_arg(t.secret_key_ref, "secret key reference")?,
            ca_file: opt_arg(t.ca_file, "ca file")?,
        };
        let key = arg(key, "key")?;
        let (cluster, spec) = image_at(ioctx, name, "image")?;
        let p = CProgress { cb, arg: cbdata, lock: Mutex::new(()) };
        calls::s3_publish(cluster, spec, target, key, &|d, t| p.report(d, t))?;
        Ok(0)
    })
}

/// Fills S3-backed image `name` from S3 completely, `parallel` objects at a time (0: 8),
/// reporting `cb(objects done, objects total, cbdata)`; a clone is flattened instead.
/// `-EINVAL` for an image that is neither.
///
/// # Safety
/// `ioctx` valid; `name` NUL-terminated; `cb` NULL or callable with `cbdata`.
#[no_mangle]
pub unsafe extern "C" fn rbd_ext_hydrate_with_progress(
    ioctx: rados_ioctx_t,
    name: *const c_char,
    parallel: u32,
    cb: librbd_progress_fn_t,
    cbdata: *mut c_void,
) -> c_int {
    // SAFETY: as the caller promised.
    guard(|| unsafe {
        let (cluster, spec) = image_at(ioctx, name, "image")?;
        let p = CProgress { cb, arg: cbdata, lock: Mutex::new(()) };
        let parallel = if parallel == 0 { 8 } else { parallel as usize };
        calls::hydrate(cluster, spec, parallel, &|d, t| p.report(d, t))?;
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_eio_and_errors_are_negative_errnos() {
        assert_eq!(guard(|| panic!("boom")), -libc::EIO);
        assert_eq!(guard(|| Err(CallError::here(Errno::EBUSY, "x"))), -libc::EBUSY);
        assert_eq!(guard(|| Ok(3)), 3);
        guard_void(|| panic!("boom"));
    }

    #[test]
    fn null_arguments_are_einval() {
        // SAFETY: null pointers are what is tested.
        unsafe {
            assert_eq!(rbd_ext_remove(ptr::null_mut(), c"x".as_ptr()), -libc::EINVAL);
            assert_eq!(rbd_ext_remove(ptr::null_mut(), ptr::null()), -libc::EINVAL);
            assert_eq!(rbd_ext_snap_create(ptr::null_mut(), c"x".as_ptr(), c"s".as_ptr()), -libc::EINVAL);
            assert_eq!(rbd_ext_snap_create(ptr::null_mut(), c"x".as_ptr(), ptr::null()), -libc::EINVAL);
            assert_eq!(rbd_ext_snap_create(ptr::null_mut(), c"x".as_ptr(), c"".as_ptr()), -libc::EINVAL);
            let mut n = 0usize;
            assert_eq!(rbd_ext_list_children(ptr::null_mut(), c"x".as_ptr(), ptr::null_mut(), &mut n), -libc::EINVAL);
        }
    }

    #[test]
    fn version_is_the_crate_version() {
        let (mut a, mut b, mut c) = (-1, -1, -1);
        // SAFETY: valid out-pointers; NULL is allowed.
        unsafe {
            rbd_ext_version(&mut a, &mut b, &mut c);
            rbd_ext_version(ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        }
        assert_eq!(format!("{a}.{b}.{c}"), env!("CARGO_PKG_VERSION"));
    }
}

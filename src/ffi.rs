//! The C ABI: `__cls_init`, one trampoline per method, and the shim calls behind
//! [`OsdContext`]. All of the plugin's `unsafe` is in this file.
//!
//! Invariants the OSD guarantees (objclass C API, `ClassHandler::ClassMethod::exec`):
//! - a method is called with a valid `hctx` for the duration of the call only, and an input
//!   pointer valid for `in_len` bytes (null when the input is empty);
//! - `*out` must be null or a buffer from `malloc` of `*out_len` bytes, which the OSD takes
//!   ownership of and frees;
//! - calls on one `hctx` happen on the thread running the method.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;
use std::time::{SystemTime, UNIX_EPOCH};

use rbd_ext_cls::methods::METHODS;
use rbd_ext_cls::{ClsContext, Codec, Errno, Reader, CLASS_NAME};

use crate::dispatch;

type MethodCall = unsafe extern "C" fn(*mut c_void, *mut c_char, c_int, *mut *mut c_char, *mut c_int) -> c_int;

extern "C" {
    fn rbdext_register_class(name: *const c_char, handle: *mut *mut c_void) -> c_int;
    fn rbdext_register_method(h: *mut c_void, name: *const c_char, flags: c_int, f: MethodCall) -> c_int;
    fn rbdext_log(level: c_int, msg: *const c_char);
    fn rbdext_stat(h: *mut c_void, size: *mut u64, mtime: *mut i64) -> c_int;
    fn rbdext_create(h: *mut c_void, exclusive: c_int) -> c_int;
    fn rbdext_remove(h: *mut c_void) -> c_int;
    fn rbdext_read(h: *mut c_void, off: u64, len: u64, out: *mut *mut c_char, out_len: *mut usize) -> c_int;
    fn rbdext_write(h: *mut c_void, off: u64, data: *const c_char, len: usize) -> c_int;
    fn rbdext_write_full(h: *mut c_void, data: *const c_char, len: usize) -> c_int;
    fn rbdext_getxattr(h: *mut c_void, name: *const c_char, out: *mut *mut c_char, out_len: *mut usize) -> c_int;
    fn rbdext_setxattr(h: *mut c_void, name: *const c_char, value: *const c_char, len: usize) -> c_int;
    fn rbdext_map_get_val(h: *mut c_void, key: *const c_char, key_len: usize, out: *mut *mut c_char, out_len: *mut usize) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn rbdext_map_get_vals(
        h: *mut c_void,
        start_after: *const c_char,
        start_after_len: usize,
        prefix: *const c_char,
        prefix_len: usize,
        max: u64,
        out: *mut *mut c_char,
        out_len: *mut usize,
        more: *mut c_int,
    ) -> c_int;
    fn rbdext_map_set_vals(
        h: *mut c_void,
        n: usize,
        keys: *const *const c_char,
        key_lens: *const usize,
        vals: *const *const c_char,
        val_lens: *const usize,
    ) -> c_int;
    fn rbdext_map_remove_key(h: *mut c_void, key: *const c_char, key_len: usize) -> c_int;
}

/// Called once by ceph-osd after `dlopen`: registers the class and every method.
///
/// # Safety
/// Called by the OSD's class loader only, on one thread, before any method runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __cls_init() {
    let name = CString::new(CLASS_NAME).expect("class name has no NUL");
    let mut class: *mut c_void = ptr::null_mut();
    // SAFETY: `name` is a valid C string; `class` is a valid out-pointer.
    if unsafe { rbdext_register_class(name.as_ptr(), &mut class) } < 0 {
        log_line(0, "cls_register failed");
        return;
    }
    for (i, m) in METHODS.iter().enumerate() {
        let mname = CString::new(m.name).expect("method names have no NUL");
        // SAFETY: `class` came from cls_register; the trampoline is a 'static fn with the
        // objclass C signature; the OSD copies the name.
        let r = unsafe { rbdext_register_method(class, mname.as_ptr(), m.flags as c_int, TRAMPOLINES[i]) };
        if r < 0 {
            log_line(0, &format!("registering method {} failed: {r}", m.name));
        }
    }
}

fn log_line(level: i32, msg: &str) {
    // Interior NULs would cut the C string short; replace them so the line survives.
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: `c` is a valid C string for the duration of the call; the shim passes it as a
    // "%s" argument, never as a format.
    unsafe { rbdext_log(level, c.as_ptr()) }
}

/// The objclass C method signature cannot carry user data, so each method gets its own
/// monomorphised trampoline that knows its index in `METHODS`.
unsafe extern "C" fn trampoline<const I: usize>(hctx: *mut c_void, input: *mut c_char, in_len: c_int, out: *mut *mut c_char, out_len: *mut c_int) -> c_int {
    let input: &[u8] = if input.is_null() || in_len <= 0 {
        &[]
    } else {
        // SAFETY: the OSD passes a buffer valid for `in_len` bytes for this call.
        unsafe { std::slice::from_raw_parts(input as *const u8, in_len as usize) }
    };
    let mut ctx = OsdContext { hctx };
    let mut buf = Vec::new();
    let mut r = dispatch::call(&METHODS[I], &mut ctx, input, &mut buf);
    // SAFETY: `out`/`out_len` are valid out-pointers provided by the OSD.
    unsafe {
        *out = ptr::null_mut();
        *out_len = 0;
    }
    if r >= 0 && !buf.is_empty() {
        if buf.len() > i32::MAX as usize {
            return Errno::EOVERFLOW.to_neg();
        }
        // SAFETY: malloc of a non-zero size; the OSD frees the buffer (claim_malloc).
        let p = unsafe { libc::malloc(buf.len()) } as *mut c_char;
        if p.is_null() {
            r = Errno::ENOMEM.to_neg();
        } else {
            // SAFETY: `p` has room for `buf.len()` bytes and does not overlap `buf`.
            unsafe {
                ptr::copy_nonoverlapping(buf.as_ptr() as *const c_char, p, buf.len());
                *out = p;
                *out_len = buf.len() as c_int;
            }
        }
    }
    r
}

macro_rules! trampolines {
    ($($i:literal)*) => { [$(trampoline::<$i> as MethodCall),*] };
}

/// One trampoline per method slot; `METHODS` may not outgrow it (checked at compile time).
const TRAMPOLINES: [MethodCall; 32] = trampolines!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
);
const _: () = assert!(METHODS.len() <= TRAMPOLINES.len(), "add trampolines for the new methods");

/// [`ClsContext`] over the OSD, valid for one method call.
struct OsdContext {
    hctx: *mut c_void,
}

fn check(r: c_int) -> Result<(), Errno> {
    if r < 0 {
        Err(Errno(-r))
    } else {
        Ok(())
    }
}

/// Takes ownership of a malloc'd buffer from the shim and copies it into a Vec.
fn take_buf(p: *mut c_char, len: usize) -> Vec<u8> {
    if p.is_null() {
        return Vec::new();
    }
    // SAFETY: the shim returned `p` from malloc with `len` readable bytes; we copy then free
    // it exactly once.
    unsafe {
        let v = std::slice::from_raw_parts(p as *const u8, len).to_vec();
        libc::free(p as *mut c_void);
        v
    }
}

fn cstring(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

impl ClsContext for OsdContext {
    fn stat(&mut self) -> Result<(u64, i64), Errno> {
        let (mut size, mut mtime) = (0u64, 0i64);
        // SAFETY: valid hctx for this call; valid out-pointers.
        check(unsafe { rbdext_stat(self.hctx, &mut size, &mut mtime) })?;
        Ok((size, mtime))
    }

    fn create(&mut self, exclusive: bool) -> Result<(), Errno> {
        // SAFETY: valid hctx for this call.
        check(unsafe { rbdext_create(self.hctx, c_int::from(exclusive)) })
    }

    fn remove(&mut self) -> Result<(), Errno> {
        // SAFETY: valid hctx for this call.
        check(unsafe { rbdext_remove(self.hctx) })
    }

    fn read(&mut self, off: u64, len: u64) -> Result<Vec<u8>, Errno> {
        // The OSD reads to the end of the object when asked for 0 bytes; the trait promises
        // exactly what was asked.
        if len == 0 {
            return Ok(Vec::new());
        }
        let (mut p, mut n) = (ptr::null_mut(), 0usize);
        // SAFETY: valid hctx; out-pointers valid; the returned buffer is freed by take_buf.
        let r = unsafe { rbdext_read(self.hctx, off, len, &mut p, &mut n) };
        let v = take_buf(p, n);
        check(r).map(|()| v)
    }

    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), Errno> {
        // SAFETY: valid hctx; `data` valid for its length; the shim copies it.
        check(unsafe { rbdext_write(self.hctx, off, data.as_ptr() as *const c_char, data.len()) })
    }

    fn write_full(&mut self, data: &[u8]) -> Result<(), Errno> {
        // SAFETY: as for write.
        check(unsafe { rbdext_write_full(self.hctx, data.as_ptr() as *const c_char, data.len()) })
    }

    fn getxattr(&mut self, name: &str) -> Result<Vec<u8>, Errno> {
        let name = cstring(name)?;
        let (mut p, mut n) = (ptr::null_mut(), 0usize);
        // SAFETY: valid hctx and C string; buffer freed by take_buf.
        let r = unsafe { rbdext_getxattr(self.hctx, name.as_ptr(), &mut p, &mut n) };
        let v = take_buf(p, n);
        check(r).map(|()| v)
    }

    fn setxattr(&mut self, name: &str, value: &[u8]) -> Result<(), Errno> {
        let name = cstring(name)?;
        // SAFETY: valid hctx, C string and value slice; the shim copies them.
        check(unsafe { rbdext_setxattr(self.hctx, name.as_ptr(), value.as_ptr() as *const c_char, value.len()) })
    }

    fn omap_get(&mut self, key: &str) -> Result<Vec<u8>, Errno> {
        let (mut p, mut n) = (ptr::null_mut(), 0usize);
        // SAFETY: valid hctx; key slice valid for its length; buffer freed by take_buf.
        let r = unsafe { rbdext_map_get_val(self.hctx, key.as_ptr() as *const c_char, key.len(), &mut p, &mut n) };
        let v = take_buf(p, n);
        check(r).map(|()| v)
    }

    fn omap_get_vals(&mut self, start_after: &str, prefix: &str, max: u64) -> Result<rbd_ext_cls::context::OmapPage, Errno> {
        let (mut p, mut n, mut more) = (ptr::null_mut(), 0usize, 0 as c_int);
        // SAFETY: valid hctx; both strings valid for their lengths; buffer freed by take_buf.
        let r = unsafe {
            rbdext_map_get_vals(
                self.hctx,
                start_after.as_ptr() as *const c_char,
                start_after.len(),
                prefix.as_ptr() as *const c_char,
                prefix.len(),
                max,
                &mut p,
                &mut n,
                &mut more,
            )
        };
        let buf = take_buf(p, n);
        check(r)?;
        if buf.is_empty() {
            return Ok((Vec::new(), false));
        }
        // The shim encodes map<string, bufferlist>; keys written by others may not be UTF-8,
        // which our methods never need: such entries are reported as EIO.
        let mut rd = Reader::new(&buf);
        let count = u32::read(&mut rd).map_err(|_| Errno::EIO)?;
        let mut vals = Vec::with_capacity(count.min(4096) as usize);
        for _ in 0..count {
            let k = String::read(&mut rd).map_err(|_| Errno::EIO)?;
            let v = rbd_ext_cls::codec::BufferList::read(&mut rd).map_err(|_| Errno::EIO)?;
            vals.push((k, v.0));
        }
        Ok((vals, more != 0))
    }

    fn omap_set(&mut self, entries: &[(&str, &[u8])]) -> Result<(), Errno> {
        let keys: Vec<*const c_char> = entries.iter().map(|(k, _)| k.as_ptr() as *const c_char).collect();
        let key_lens: Vec<usize> = entries.iter().map(|(k, _)| k.len()).collect();
        let vals: Vec<*const c_char> = entries.iter().map(|(_, v)| v.as_ptr() as *const c_char).collect();
        let val_lens: Vec<usize> = entries.iter().map(|(_, v)| v.len()).collect();
        // SAFETY: four arrays of `entries.len()` elements, each pointer valid for its length
        // for the duration of the call; the shim copies everything.
        check(unsafe { rbdext_map_set_vals(self.hctx, entries.len(), keys.as_ptr(), key_lens.as_ptr(), vals.as_ptr(), val_lens.as_ptr()) })
    }

    fn omap_remove(&mut self, key: &str) -> Result<(), Errno> {
        // SAFETY: valid hctx; key valid for its length.
        check(unsafe { rbdext_map_remove_key(self.hctx, key.as_ptr() as *const c_char, key.len()) })
    }

    fn log(&mut self, level: i32, msg: &str) {
        log_line(level, msg);
    }

    fn now(&mut self) -> (u64, u32) {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        (d.as_secs(), d.subsec_nanos())
    }
}

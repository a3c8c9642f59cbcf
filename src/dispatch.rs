//! The single place a method call enters Rust: panics are caught and typed errors become
//! `-errno`. Everything here is safe code; the raw buffers are turned into slices in `ffi`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rbd_ext_cls::methods::Method;
use rbd_ext_cls::{ClsContext, Errno};

/// Runs `method` on `ctx`. Returns 0 with `out` filled, or a negative errno. A panic in the
/// method is logged and becomes -EIO; the OSD carries on and discards the transaction.
pub(crate) fn call(method: &Method, ctx: &mut dyn ClsContext, input: &[u8], out: &mut Vec<u8>) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| (method.call)(ctx, input, out)));
    match r {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            out.clear();
            e.to_neg()
        }
        Err(panic) => {
            out.clear();
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            ctx.log(0, &format!("{}: internal error (panic: {what}); returning -EIO", method.name));
            Errno::EIO.to_neg()
        }
    }
}

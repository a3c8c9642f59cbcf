//! Method bodies and the one registration table (the role of upstream `cls_lock.cc`).
//!
//! Every method is a plain function over a [`ClsContext`], the input bytes and an output
//! buffer, returning a positive [`Errno`] on failure. The plugin registers [`METHODS`] with
//! the OSD and wraps each call so that no panic escapes.

use crate::{ClsContext, DecodeError, Errno};

mod backfill;
mod children;
mod clone_map;
mod header;
mod parent;
mod protection;
mod size;
mod snapshot;
mod version;

/// `CLS_METHOD_RD`: the method reads the object.
pub const RD: u32 = 0x1;
/// `CLS_METHOD_WR`: the method writes the object (its output is discarded by the OSD).
pub const WR: u32 = 0x2;

/// A method body.
pub type MethodFn = fn(&mut dyn ClsContext, &[u8], &mut Vec<u8>) -> Result<(), Errno>;

/// One registered method.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    /// Name clients call (`rbd_ext.<name>`).
    pub name: &'static str,
    /// `RD`, `WR` or both: the least the method needs.
    pub flags: u32,
    /// The body.
    pub call: MethodFn,
}

/// Every method of the class, registered in this order.
pub const METHODS: &[Method] = &[
    Method { name: "get_version", flags: RD, call: version::get_version },
    Method { name: "ping", flags: RD | WR, call: version::ping },
    Method { name: "clone_map_init", flags: RD | WR, call: clone_map::clone_map_init },
    Method { name: "clone_map_get", flags: RD, call: clone_map::clone_map_get },
    Method { name: "clone_map_update", flags: RD | WR, call: clone_map::clone_map_update },
    Method { name: "clone_map_update_many", flags: RD | WR, call: clone_map::clone_map_update_many },
    Method { name: "clone_map_resize", flags: RD | WR, call: clone_map::clone_map_resize },
    Method { name: "parent_attach", flags: RD | WR, call: parent::parent_attach },
    Method { name: "parent_get", flags: RD, call: parent::parent_get },
    Method { name: "parent_detach", flags: RD | WR, call: parent::parent_detach },
    Method { name: "parent_overlap_set", flags: RD | WR, call: parent::parent_overlap_set },
    Method { name: "child_attach", flags: RD | WR, call: children::child_attach },
    Method { name: "child_detach", flags: RD | WR, call: children::child_detach },
    Method { name: "children_list", flags: RD, call: children::children_list },
    Method { name: "protection_set", flags: RD | WR, call: protection::protection_set },
    Method { name: "set_size", flags: RD | WR, call: size::set_size },
    Method { name: "snapshot_add", flags: RD | WR, call: snapshot::snapshot_add },
    Method { name: "snapshot_parent_set", flags: RD | WR, call: snapshot::snapshot_parent_set },
    Method { name: "snap_guard", flags: RD | WR, call: snapshot::snap_guard },
    Method { name: "backfill_claim", flags: RD | WR, call: backfill::backfill_claim },
    Method { name: "backfill_complete", flags: RD | WR, call: backfill::backfill_complete },
    Method { name: "backfill_abort", flags: RD | WR, call: backfill::backfill_abort },
    #[cfg(feature = "test-methods")]
    Method { name: "test_panic", flags: RD, call: version::test_panic },
];

/// Looks a method up by name.
pub fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// Logs a formatted line through the context (`CLS_LOG`).
macro_rules! cls_log {
    ($ctx:expr, $level:expr, $($arg:tt)*) => {
        $ctx.log($level, &format!($($arg)*))
    };
}
pub(crate) use cls_log;

/// Decodes a method input; a failure is logged (without the bytes) and becomes `EINVAL`,
/// as upstream methods do in their `catch (buffer::error&)` blocks.
pub(crate) fn decode_input<T>(ctx: &mut dyn ClsContext, method: &str, r: Result<T, DecodeError>) -> Result<T, Errno> {
    r.map_err(|e| {
        cls_log!(ctx, 1, "{method}: invalid input: {e}");
        Errno::EINVAL
    })
}

/// Decodes a value read from storage; a failure means corrupt state: `EIO` and an error log.
pub(crate) fn decode_stored<T>(ctx: &mut dyn ClsContext, what: &str, r: Result<T, DecodeError>) -> Result<T, Errno> {
    r.map_err(|e| {
        cls_log!(ctx, 0, "error decoding {what}: {e}");
        Errno::EIO
    })
}

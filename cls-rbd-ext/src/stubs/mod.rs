//! Client-side stubs: encode a method's request, decode its reply (the role of upstream
//! `cls_*_client.cc`). Reply decode failures are `EBADMSG`, as upstream.
//!
//! Each stub returns the class name, method name and input bytes to send, so that any
//! transport (librados read or write op, a test binding) can carry them.

use crate::{Codec, Errno, CLASS_NAME};

mod children;
mod clone_map;
mod parent;
mod snapshot;
pub mod stock;

pub use clone_map::{
    clone_map_get, clone_map_init, clone_map_model_init, clone_map_model_resize, clone_map_model_update, clone_map_model_update_many, clone_map_resize,
    clone_map_runs, clone_map_update, clone_map_update_many, decode_clone_map_get, decode_clone_map_states,
};

pub use children::{child_attach, child_attach_remote, child_detach, child_detach_remote, children_list, decode_children_list, protection_set};
pub use parent::{decode_parent_get, parent_attach, parent_detach, parent_get, parent_overlap_set};
pub use snapshot::{snap_guard, snapshot_add, snapshot_parent_set};

/// A prepared class call: `rados exec <class> <method> <input>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Class name (`rbd_ext`).
    pub class: &'static str,
    /// Method name.
    pub method: &'static str,
    /// Encoded input.
    pub input: Vec<u8>,
}

impl Call {
    pub(crate) fn new(method: &'static str, input: Vec<u8>) -> Call {
        Call { class: CLASS_NAME, method, input }
    }
}

impl From<&Call> for Call {
    fn from(c: &Call) -> Call {
        c.clone()
    }
}

/// Decodes a reply, mapping failure to `EBADMSG`.
pub fn decode_reply<T: Codec>(out: &[u8]) -> Result<T, Errno> {
    T::read_bytes(out).map_err(|_| Errno::EBADMSG)
}

/// `get_version`: decode the reply with `decode_reply::<String>`.
pub fn get_version() -> Call {
    Call::new("get_version", Vec::new())
}

/// `set_size` (rbd_ext's, which understands v4 parent records): resize an image header.
pub fn set_size(size: u64) -> Call {
    Call::new("set_size", size.get_encoding())
}

/// `backfill_claim` on a parent data object (answer in the return code: 0 held, EEXIST
/// filled, EBUSY held by another).
pub fn backfill_claim(owner: &str, ttl_ms: u32) -> Call {
    Call::new("backfill_claim", crate::ops::BackfillClaimOp { owner: owner.to_string(), ttl_ms }.get_encoding())
}

/// `backfill_complete`: write the verified data and drop the claim, atomically. The client
/// sends empty `data` followed by a write_full step in the same op (one transaction), so the
/// data is not copied into the method's input.
pub fn backfill_complete(owner: &str, data: &[u8]) -> Call {
    let mut input = Vec::new();
    crate::ops::BackfillCompleteOp::encode_borrowed(owner, data, &mut input);
    Call::new("backfill_complete", input)
}

/// `backfill_abort`: give the claim up (removes the placeholder object).
pub fn backfill_abort(owner: &str) -> Call {
    Call::new("backfill_abort", crate::ops::BackfillAbortOp { owner: owner.to_string() }.get_encoding())
}

/// `ping` with a value to store.
pub fn ping(value: &str) -> Call {
    Call::new("ping", crate::ops::PingOp { value: value.to_string() }.get_encoding())
}

//! Client stubs for the stock classes rbd-ext drives alongside its own: `rbd` (cls_rbd) and
//! `lock` (cls_lock), plus librbd's header-update notification. Encodings are upstream's
//! (ceph-wire-facts.md §4-§7), so what rbd-ext writes is what librbd would have written.

use std::collections::BTreeMap;

use super::Call;
use crate::codec::{encode_bytes_parts, encode_envelope, read_envelope, BufferList, Codec, DecodeError, Reader, SnapId};
use crate::Errno;

fn call(class: &'static str, method: &'static str, input: Vec<u8>) -> Call {
    Call { class, method, input }
}

fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

/// Decodes a reply read field by field, mapping failure to `EBADMSG` as upstream stubs do.
pub fn reply<T>(out: &[u8], f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>) -> Result<T, Errno> {
    f(&mut Reader::new(out)).map_err(|_| Errno::EBADMSG)
}

/// `rbd.get_id` on `rbd_id.<name>`: reply string.
pub fn get_id() -> Call {
    call("rbd", "get_id", Vec::new())
}

/// `rbd.dir_get_name` on `rbd_directory`: reply string.
pub fn dir_get_name(id: &str) -> Call {
    call("rbd", "dir_get_name", id.to_string().get_encoding())
}

/// `rbd.dir_list(start_after, max)` on `rbd_directory`: up to `max` images after name
/// `start_after` (empty: from the start), in name order.
pub fn dir_list(start_after: &str, max: u64) -> Call {
    call(
        "rbd",
        "dir_list",
        enc(|o| {
            start_after.to_string().encode(o);
            max.encode(o);
        }),
    )
}

/// Decodes a `dir_list` reply: name → id.
pub fn decode_dir_list(out: &[u8]) -> Result<BTreeMap<String, String>, Errno> {
    reply(out, BTreeMap::<String, String>::read)
}

/// `rbd.get_size(snap)`: reply u8 order · u64 size.
pub fn get_size(snap: SnapId) -> Call {
    call("rbd", "get_size", snap.get_encoding())
}

/// `rbd.get_features(snap, read_only)`: reply u64 features · u64 incompatible.
pub fn get_features(snap: SnapId, read_only: bool) -> Call {
    call(
        "rbd",
        "get_features",
        enc(|o| {
            snap.encode(o);
            read_only.encode(o);
        }),
    )
}

/// `rbd.get_object_prefix`: reply string.
pub fn get_object_prefix() -> Call {
    call("rbd", "get_object_prefix", Vec::new())
}

/// `rbd.get_data_pool`: reply i64 (-1 when the image has no separate data pool).
pub fn get_data_pool() -> Call {
    call("rbd", "get_data_pool", Vec::new())
}

/// `rbd.get_snapcontext`: reply [`crate::types::SnapContext`] (`ENOENT` without `snap_seq`).
pub fn get_snapcontext() -> Call {
    call("rbd", "get_snapcontext", Vec::new())
}

/// `rbd.get_stripe_unit_count`: reply u64 unit · u64 count (`ENOEXEC` without STRIPINGV2).
pub fn get_stripe_unit_count() -> Call {
    call("rbd", "get_stripe_unit_count", Vec::new())
}

/// `rbd.op_features_get`: reply u64.
pub fn op_features_get() -> Call {
    call("rbd", "op_features_get", Vec::new())
}

/// `rbd.get_flags(snap)`: reply u64.
pub fn get_flags(snap: SnapId) -> Call {
    call("rbd", "get_flags", snap.get_encoding())
}

/// `rbd.set_size(size)`: also clamps a stored parent overlap when shrinking.
pub fn set_size(size: u64) -> Call {
    call("rbd", "set_size", size.get_encoding())
}

/// `rbd.parent_get`: reply `ParentImageSpec` (stock view of the `parent` key).
pub fn parent_get() -> Call {
    call("rbd", "parent_get", Vec::new())
}

/// `rbd.parent_overlap_get(snap)`: reply optional u64.
pub fn parent_overlap_get(snap: SnapId) -> Call {
    call("rbd", "parent_overlap_get", snap.get_encoding())
}

/// `rbd.metadata_list(start_after, max)`: reply map<string, bufferlist>.
pub fn metadata_list(start_after: &str, max: u64) -> Call {
    call(
        "rbd",
        "metadata_list",
        enc(|o| {
            start_after.to_string().encode(o);
            max.encode(o);
        }),
    )
}

/// `rbd.metadata_set`: stores each value under `metadata_<key>`.
pub fn metadata_set(kv: &BTreeMap<String, BufferList>) -> Call {
    call("rbd", "metadata_set", kv.get_encoding())
}

/// `rbd.object_map_load` on `rbd_object_map.<id>`: reply a BitVector<2> (see
/// [`decode_object_map`]).
pub fn object_map_load() -> Call {
    call("rbd", "object_map_load", Vec::new())
}

/// `rbd.object_map_snap_add()` on the HEAD object map: what librbd does after copying it
/// for a new snapshot (fast-diff): EXISTS becomes EXISTS_CLEAN.
pub fn object_map_snap_add() -> Call {
    call("rbd", "object_map_snap_add", Vec::new())
}

/// `rbd.object_map_update(start, end, new_state, current_state)` (end exclusive).
pub fn object_map_update(start: u64, end: u64, new_state: u8, current: Option<u8>) -> Call {
    call(
        "rbd",
        "object_map_update",
        enc(|o| {
            start.encode(o);
            end.encode(o);
            new_state.encode(o);
            current.encode(o);
        }),
    )
}

/// `rbd.object_map_resize(object_count, default_state)`.
pub fn object_map_resize(count: u64, default_state: u8) -> Call {
    call(
        "rbd",
        "object_map_resize",
        enc(|o| {
            count.encode(o);
            default_state.encode(o);
        }),
    )
}

/// `rbd.copyup(data)` on a data object: creates it with `object` (non-empty) as its data
/// only if it does not exist (a no-op otherwise). The input is the raw data, moved, not
/// copied: for an object whose data is all non-zero this saves the encoding copy that
/// [`sparse_copyup`] needs.
pub fn copyup(object: Vec<u8>) -> Call {
    call("rbd", "copyup", object)
}

/// `rbd.sparse_copyup(extents, data)` on a data object: creates it only if it does not
/// exist (a no-op otherwise) with the `extents` (offset → length, ascending, within
/// `object`) of `object`; the rest reads as zeros.
pub fn sparse_copyup(extents: &BTreeMap<u64, u64>, object: &[u8]) -> Call {
    let parts: Vec<&[u8]> = extents.iter().map(|(&off, &len)| &object[off as usize..(off + len) as usize]).collect();
    call(
        "rbd",
        "sparse_copyup",
        enc(|o| {
            extents.encode(o);
            encode_bytes_parts(&parts, o);
        }),
    )
}

/// Stock object-map states (2 bits each).
pub mod object_map_state {
    /// Object does not exist.
    pub const NONEXISTENT: u8 = 0;
    /// Object exists.
    pub const EXISTS: u8 = 1;
    /// A removal is in flight.
    pub const PENDING: u8 = 2;
    /// Exists, unchanged since the last snapshot (fast-diff).
    pub const EXISTS_CLEAN: u8 = 3;
}

/// Decodes a BitVector<2> (object map) into one state per object. CRCs, if present, are not
/// checked here: the OSD verifies them before answering `object_map_load`.
pub fn decode_object_map(out: &[u8]) -> Result<Vec<u8>, Errno> {
    reply(out, |r| {
        let header_len = u32::read(r)? as usize;
        let mut h = r.sub(header_len)?;
        let mut env = read_envelope(&mut h, "BitVector header", 1)?;
        let count = u64::read(&mut env.body)?;
        let bytes = count.div_ceil(4);
        let data = r.take(usize::try_from(bytes).map_err(|_| DecodeError::Invalid("object map size"))?)?;
        let mut states = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            states.push((data[i / 4] >> ((3 - i % 4) * 2)) & 0x3);
        }
        Ok(states)
    })
}

/// cls_lock lock types.
pub mod lock_type {
    /// Exclusive.
    pub const EXCLUSIVE: u8 = 1;
    /// Shared.
    pub const SHARED: u8 = 2;
}

/// `lock.lock`: `cls_lock_lock_op` (v1/1: name · type · cookie · tag · description ·
/// duration utime · flags).
pub fn lock(name: &str, ty: u8, cookie: &str, tag: &str, description: &str) -> Call {
    call(
        "lock",
        "lock",
        enc(|o| {
            encode_envelope(o, 1, 1, |o| {
                name.to_string().encode(o);
                ty.encode(o);
                cookie.to_string().encode(o);
                tag.to_string().encode(o);
                description.to_string().encode(o);
                crate::codec::UTime::default().encode(o);
                0u8.encode(o);
            })
        }),
    )
}

/// `lock.unlock`: v1/1 name · cookie.
pub fn unlock(name: &str, cookie: &str) -> Call {
    call(
        "lock",
        "unlock",
        enc(|o| {
            encode_envelope(o, 1, 1, |o| {
                name.to_string().encode(o);
                cookie.to_string().encode(o);
            })
        }),
    )
}

/// `lock.assert_locked`: v1/1 name · type · cookie · tag (`EBUSY` unless the caller holds it).
pub fn assert_locked(name: &str, ty: u8, cookie: &str, tag: &str) -> Call {
    call(
        "lock",
        "assert_locked",
        enc(|o| {
            encode_envelope(o, 1, 1, |o| {
                name.to_string().encode(o);
                ty.encode(o);
                cookie.to_string().encode(o);
                tag.to_string().encode(o);
            })
        }),
    )
}

/// `lock.set_cookie`: v1/1 name · type · cookie · tag · new_cookie (`ENOENT` unless the
/// caller holds the lock with `cookie`). librbd re-keys its lock this way after re-watching.
pub fn set_cookie(name: &str, ty: u8, cookie: &str, tag: &str, new_cookie: &str) -> Call {
    call(
        "lock",
        "set_cookie",
        enc(|o| {
            encode_envelope(o, 1, 1, |o| {
                name.to_string().encode(o);
                ty.encode(o);
                cookie.to_string().encode(o);
                tag.to_string().encode(o);
                new_cookie.to_string().encode(o);
            })
        }),
    )
}

/// The lock librbd takes on an image header (and rbd-ext's writers with it).
pub const RBD_LOCK_NAME: &str = "rbd_lock";
/// librbd's tag for the header's exclusive lock.
pub const RBD_LOCK_TAG: &str = "internal";

/// librbd's header-lock cookie for a watch handle: `auto <handle>`.
pub fn rbd_lock_cookie(watch_handle: u64) -> String {
    format!("auto {watch_handle}")
}

/// librbd's `NotifyMessage` carrying `HeaderUpdatePayload` (op 3): open librbd clients of
/// the image refresh their header on receiving it.
pub fn header_update_notification() -> Vec<u8> {
    enc(|o| encode_envelope(o, 2, 1, |o| 3u32.encode(o)))
}

/// librbd's watch-notify op codes (`WatchNotifyTypes.h`, `NotifyOp`) that rbd-ext acts on.
pub mod notify_op {
    /// A client asks the lock owner to release the exclusive lock.
    pub const REQUEST_LOCK: u32 = 2;
    /// The header changed (size, features, parent): watchers re-read it.
    pub const HEADER_UPDATE: u32 = 3;
    /// The lock owner finished a request it had acknowledged (`AsyncCompletePayload`).
    pub const ASYNC_COMPLETE: u32 = 5;
    /// Create a snapshot (`SnapCreatePayload`), sent to the lock owner.
    pub const SNAP_CREATE: u32 = 8;
    /// First of the maintenance requests a client sends the lock owner to carry out
    /// (flatten 6, resize 7, snap create 8 ... sparsify 17).
    pub const FIRST_OWNER_REQUEST: u32 = 6;
    /// Last of them in Pacific (sparsify).
    pub const LAST_OWNER_REQUEST: u32 = 17;
    /// Metadata set/remove, also carried out by the lock owner (Pacific).
    pub const METADATA_UPDATE: u32 = 20;
}

/// The op code of a librbd `NotifyMessage` (envelope, then a u32 op), or `None` for a
/// payload that is not one (empty, truncated, or another application's).
pub fn notify_message_op(payload: &[u8]) -> Option<u32> {
    // u8 struct_v, u8 compat, u32 length, then the op.
    let len = u32::from_le_bytes(payload.get(2..6)?.try_into().ok()?) as usize;
    if len < 4 || payload.len() < 6 + len {
        return None;
    }
    Some(u32::from_le_bytes(payload.get(6..10)?.try_into().ok()?))
}

/// librbd's `ResponseMessage` (v1/1: i32 result): the lock owner's answer to a request,
/// e.g. `-EROFS` to refuse a RequestLock, as librbd's own owner does when it will not
/// release the lock.
pub fn response_message(result: i32) -> Vec<u8> {
    enc(|o| encode_envelope(o, 1, 1, |o| o.extend_from_slice(&result.to_le_bytes())))
}

/// librbd's `AsyncRequestId`: the requesting client (`ClientId`: gid, watch handle) and its
/// request number. A retried request carries the same id, so the owner runs it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AsyncRequestId {
    /// The requester's RADOS instance id.
    pub gid: u64,
    /// The requester's watch handle.
    pub handle: u64,
    /// Its request number.
    pub request_id: u64,
}

impl AsyncRequestId {
    fn encode(&self, o: &mut Vec<u8>) {
        self.gid.encode(o);
        self.handle.encode(o);
        self.request_id.encode(o);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AsyncRequestId { gid: u64::read(r)?, handle: u64::read(r)?, request_id: u64::read(r)? })
    }
}

/// A `SnapCreatePayload` (NotifyMessage v7 and later, as Pacific and newer send it: snap
/// name, snapshot namespace, AsyncRequestId, u64 flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapCreateRequest {
    /// Snapshot name.
    pub name: String,
    /// Its namespace.
    pub namespace: crate::types::SnapshotNamespace,
    /// Who asks, and which request of theirs this is.
    pub id: AsyncRequestId,
    /// `SNAP_CREATE_FLAG_*` (quiesce handling; the owner does not quiesce).
    pub flags: u64,
}

/// Decodes a `SnapCreatePayload` notification; `None` if it is not one this code reads
/// (another op, an older encoding without a request id, truncated).
pub fn decode_snap_create(payload: &[u8]) -> Option<SnapCreateRequest> {
    let mut r = Reader::new(payload);
    let mut env = read_envelope(&mut r, "NotifyMessage", 7).ok()?;
    if env.version < 7 || u32::read(&mut env.body).ok()? != notify_op::SNAP_CREATE {
        return None;
    }
    let b = &mut env.body;
    let name = String::read(b).ok()?;
    let namespace = crate::types::SnapshotNamespace::read(b).ok()?;
    let id = AsyncRequestId::read(b).ok()?;
    let flags = u64::read(b).ok()?;
    Some(SnapCreateRequest { name, namespace, id, flags })
}

/// librbd's `NotifyMessage` carrying `AsyncCompletePayload` (op 5): the owner's result of
/// request `id`, which the requester waits for after the owner's `ResponseMessage(0)`.
pub fn async_complete_notification(id: &AsyncRequestId, result: i32) -> Vec<u8> {
    enc(|o| {
        encode_envelope(o, 7, 1, |o| {
            notify_op::ASYNC_COMPLETE.encode(o);
            id.encode(o);
            result.encode(o);
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_create_payload_as_pacific_encodes_it() {
        // NotifyMessage(7, 1): op 8, "foo", UserSnapshotNamespace, ClientId(0, 1), request 2,
        // flags 1 (librbd's generate_test_instances).
        let mut body = Vec::new();
        8u32.encode(&mut body);
        "foo".to_string().encode(&mut body);
        body.extend_from_slice(&[1, 1, 4, 0, 0, 0, 0, 0, 0, 0]);
        for v in [0u64, 1, 2, 1] {
            v.encode(&mut body);
        }
        let msg = enc(|o| encode_envelope(o, 7, 1, |o| o.extend_from_slice(&body)));
        let req = decode_snap_create(&msg).unwrap();
        assert_eq!(req.name, "foo");
        assert_eq!(req.id, AsyncRequestId { gid: 0, handle: 1, request_id: 2 });
        assert_eq!(req.flags, 1);
        assert_eq!(req.namespace, crate::types::SnapshotNamespace::user());
        assert_eq!(notify_message_op(&msg), Some(notify_op::SNAP_CREATE));
        // A v6 message (no request id) and a truncated one are not decoded.
        let mut v6 = msg.clone();
        v6[0] = 6;
        assert!(decode_snap_create(&v6).is_none());
        assert!(decode_snap_create(&msg[..msg.len() - 1]).is_none());
        // AsyncComplete: op 5, the id, i32 result.
        let done = async_complete_notification(&req.id, -17);
        assert_eq!(done[..2], [7, 1]);
        assert_eq!(notify_message_op(&done), Some(notify_op::ASYNC_COMPLETE));
        assert_eq!(done[done.len() - 4..], (-17i32).to_le_bytes());
        assert_eq!(done.len(), 6 + 4 + 24 + 4);
    }

    #[test]
    fn dir_list_is_start_after_then_max_and_replies_name_to_id() {
        // ceph-wire-facts.md §4.7: string start_after · u64 max; reply map<string, string>.
        let c = dir_list("vm1", 1024);
        assert_eq!((c.class, c.method), ("rbd", "dir_list"));
        assert_eq!(c.input, [&3u32.to_le_bytes()[..], b"vm1", &1024u64.to_le_bytes()].concat());
        let reply = [&1u32.to_le_bytes()[..], &3u32.to_le_bytes(), b"vm1", &4u32.to_le_bytes(), b"abcd"].concat();
        assert_eq!(decode_dir_list(&reply).unwrap(), BTreeMap::from([("vm1".to_string(), "abcd".to_string())]));
        assert_eq!(decode_dir_list(&reply[..9]), Err(Errno::EBADMSG));
    }

    #[test]
    fn lock_op_matches_the_facts_example() {
        // ceph-wire-facts.md §7.2: 56 bytes for rbd_lock / EXCLUSIVE / "auto 140" / "internal".
        let c = lock("rbd_lock", lock_type::EXCLUSIVE, "auto 140", "internal", "");
        assert_eq!(c.input.len(), 56);
        assert_eq!(&c.input[..6], &[1, 1, 0x32, 0, 0, 0]);
        assert_eq!(&c.input[6..18], b"\x08\x00\x00\x00rbd_lock");
        assert_eq!(c.input[18], 1);
    }

    #[test]
    fn object_map_update_matches_the_facts_examples() {
        let c = object_map_update(0, 1, object_map_state::EXISTS, None);
        assert_eq!(c.input, [&[0u8; 8][..], &[1, 0, 0, 0, 0, 0, 0, 0], &[1], &[0]].concat());
        let c = object_map_update(0, 1, object_map_state::NONEXISTENT, Some(object_map_state::PENDING));
        assert_eq!(c.input, [&[0u8; 8][..], &[1, 0, 0, 0, 0, 0, 0, 0], &[0], &[1, 2]].concat());
    }

    #[test]
    fn object_map_decodes_the_facts_example() {
        // §5.3: 5 objects [1,1,0,2,3], CRCs off as object_map_load returns it.
        let b = [0x0e, 0, 0, 0, 1, 1, 8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0x52, 0xc0, 0, 0, 0, 0];
        assert_eq!(decode_object_map(&b).unwrap(), [1, 1, 0, 2, 3]);
        assert_eq!(decode_object_map(&b[..19]), Err(Errno::EBADMSG));
    }

    #[test]
    fn sparse_copyup_matches_the_facts_example() {
        let ext: BTreeMap<u64, u64> = [(0, 4096)].into();
        let c = sparse_copyup(&ext, &[7; 4096]);
        assert_eq!(&c.input[..24], &[&[1u8, 0, 0, 0][..], &[0; 8], &[0, 0x10, 0, 0, 0, 0, 0, 0], &[0, 0x10, 0, 0]].concat()[..]);
        assert_eq!(c.input.len(), 24 + 4096);
    }

    #[test]
    fn sparse_copyup_sends_only_the_extents() {
        let mut object = vec![0u8; 16384];
        object[4096..8192].fill(1);
        object[12288..].fill(2);
        let ext: BTreeMap<u64, u64> = [(4096, 4096), (12288, 4096)].into();
        let c = sparse_copyup(&ext, &object);
        let mut r = Reader::new(&c.input);
        assert_eq!(BTreeMap::<u64, u64>::read(&mut r).unwrap(), ext);
        assert_eq!(BufferList::read(&mut r).unwrap().0, [vec![1u8; 4096], vec![2u8; 4096]].concat());
        assert!(!r.any_left());
    }

    #[test]
    fn header_update_payload() {
        assert_eq!(header_update_notification(), [2, 1, 4, 0, 0, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn notify_op_and_response() {
        assert_eq!(notify_message_op(&header_update_notification()), Some(notify_op::HEADER_UPDATE));
        // RequestLock v7 as Pacific sends it: op, ClientId (gid, handle), force flag.
        let mut req = vec![7, 1, 21, 0, 0, 0, 2, 0, 0, 0];
        req.extend_from_slice(&[0; 17]);
        assert_eq!(notify_message_op(&req), Some(notify_op::REQUEST_LOCK));
        assert_eq!(notify_message_op(&[]), None);
        assert_eq!(notify_message_op(&[2, 1, 4, 0, 0, 0, 3]), None);
        assert_eq!(response_message(-30), [1, 1, 4, 0, 0, 0, 0xe2, 0xff, 0xff, 0xff]);
    }
}

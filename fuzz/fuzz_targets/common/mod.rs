//! Shared by the method targets: the object states a method meets on an OSD, and the
//! checks every call must pass. The first input byte picks the state, the rest is the
//! method input.

#![allow(dead_code)]

use rbd_ext_cls::codec::{Codec, SnapId, UTime};
use rbd_ext_cls::methods::{find, WR};
use rbd_ext_cls::ops::{BackfillClaimOp, ChildOp, CloneMapInitOp, ParentAttachOp};
use rbd_ext_cls::types::features::*;
use rbd_ext_cls::types::{header, ChildImageSpec, CloneMapState, ParentRecord, ParentType, StateRun};
use rbd_ext_cls::{Errno, MemContext};

fn put(c: &mut MemContext, k: &str, v: Vec<u8>) {
    c.object.get_or_insert_with(Default::default).omap.insert(k.into(), v);
}

fn call(c: &mut MemContext, m: &str, input: &[u8]) {
    c.call(find(m).expect("method").call, input).expect("fixture call");
}

fn image_header() -> MemContext {
    let mut c = MemContext::existing();
    put(&mut c, header::SIZE, (1u64 << 30).get_encoding());
    put(&mut c, header::ORDER, 22u8.get_encoding());
    let f = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF;
    put(&mut c, header::FEATURES, f.get_encoding());
    put(&mut c, header::OBJECT_PREFIX, "rbd_data.1022".to_string().get_encoding());
    put(&mut c, header::SNAP_SEQ, 0u64.get_encoding());
    put(&mut c, "create_timestamp", UTime { sec: 1, nsec: 0 }.get_encoding());
    c
}

/// The fixture for selector byte `b`.
pub fn fixture(b: u8) -> MemContext {
    let mut c = match b % 8 {
        0 => MemContext::missing(),
        1 => MemContext::existing(),
        2 => image_header(),
        3 => {
            let mut c = image_header();
            let rec = ParentRecord {
                pool_id: 2,
                image_id: "parent1".into(),
                snap_id: SnapId::NOSNAP,
                head_overlap: Some(1 << 20),
                parent_type: ParentType::Standalone,
                ..Default::default()
            };
            call(&mut c, "parent_attach", &ParentAttachOp { record: rec, reattach: false }.get_encoding());
            c
        }
        4 => {
            let mut c = image_header();
            let spec = ChildImageSpec { pool_id: 2, pool_namespace: String::new(), image_id: "child1".into() };
            call(&mut c, "child_attach", &ChildOp { snap_id: SnapId::NOSNAP, spec, cluster: String::new() }.get_encoding());
            c
        }
        5 | 6 => {
            let mut c = MemContext::missing();
            let n = if b % 8 == 5 { 20_001 } else { 5 };
            let runs = vec![StateRun { start: 0, len: n, state: CloneMapState::ExistsParent }];
            call(&mut c, "clone_map_init", &CloneMapInitOp { object_count: n, runs, force: false }.get_encoding());
            c
        }
        _ => {
            let mut c = MemContext::missing();
            c.clock = (1_700_000_000, 0);
            call(&mut c, "backfill_claim", &BackfillClaimOp { owner: "a".into(), ttl_ms: 1000 }.get_encoding());
            c
        }
    };
    c.clock = (1_700_000_000, 0);
    c.logs.clear();
    c
}

/// Runs `method` on the fixture `data[0]` picks with input `data[1..]`; panics (a finding)
/// when the errno is not one the docs list, a failed call changed the object, or a read
/// method changed it. A panic inside the method is a finding too.
pub fn run_method(method: &str, data: &[u8]) {
    let Some((&sel, input)) = data.split_first() else { return };
    let m = find(method).expect("method registered");
    let mut c = fixture(sel);
    let before = c.object.clone();
    let mut out = Vec::new();
    match (m.call)(&mut c, input, &mut out) {
        Ok(()) => assert!(m.flags & WR != 0 || c.object == before, "read method changed the object"),
        Err(e) => {
            assert!(
                [Errno::EINVAL, Errno::ENOENT, Errno::ENOEXEC, Errno::EIO, Errno::EEXIST, Errno::EBUSY].contains(&e),
                "undocumented errno {e:?}"
            );
            assert!(c.object == before, "failed call changed the object");
        }
    }
}

/// Decodes `data` as `T`; when it decodes, its encoding must decode to the same value.
pub fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = T::read_bytes(data) {
        let again = T::read_bytes(&v.get_encoding()).expect("re-encoding decodes");
        assert_eq!(again, v);
    }
}

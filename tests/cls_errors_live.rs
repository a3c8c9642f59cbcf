//! Every documented error path of every `rbd_ext` method, through a real OSD (issue 3): one
//! table row per path, each on a fresh object set up for it, asserting the errno the
//! method's doc block states. Rows expecting 0 are controls showing the fixture is
//! otherwise sound (so an error row fails for the reason it names).
//!
//! For every row the test also checks that a failed call left the object exactly as it was
//! (data, omap, existence): the OSD discards the transaction of a failed method.
//!
//! `eval "$(qa/cluster up)" && cargo test --features live,test-methods --test cls_errors_live`.

mod common;

use rbd_ext::rados::{IoCtx, WriteOp, WriteStep};
use rbd_ext::Errno;
use rbd_ext_cls::codec::{BufferList, Codec, SnapId, UTime};
use rbd_ext_cls::methods::WR;
use rbd_ext_cls::ops::{
    BackfillAbortOp, BackfillClaimOp, BackfillCompleteOp, ChildOp, ChildrenListOp, CloneMapGetOp, CloneMapInitOp, CloneMapResizeOp, CloneMapUpdateManyOp,
    CloneMapUpdateOp, ParentAttachOp, ParentOverlapSetOp, PingOp, ProtectionSetOp, SnapGuardMode, SnapGuardOp, SnapshotAddOp, SnapshotParentSetOp,
    BACKFILL_MAX_TTL_MS,
};
use rbd_ext_cls::stubs::Call;
use rbd_ext_cls::types::backfill::{BackfillClaim, BACKFILL_CLAIM_KEY};
use rbd_ext_cls::types::features::*;
use rbd_ext_cls::types::{
    header, ChildImageSpec, CloneMapLayout, CloneMapState, ParentRecord, ParentType, ProtectionMode, SnapshotNamespace, SnapshotRecord, StateRun,
    CLONE_MAP_MAX_OBJECT_COUNT,
};
use rbd_ext_cls::CLASS_NAME;

use CloneMapState::*;

const MIB: u64 = 1 << 20;
/// Entries of the clone-map fixtures: three CRC blocks of 8192 entries, the last partial.
const MAP: u64 = 20_001;
/// A cephx key as `ceph auth get-key` prints it (made up, right shape).
const FAKE_KEY: &str = "AQBvaBFZAAAAABAAzKQ8aRRfsZ5ScnD1wqI0mQ==";
const FSID: &str = "8d5a1c2e-3f4b-4c6d-9e8f-0a1b2c3d4e5f";

/// The state a row's object starts in.
#[derive(Clone)]
enum Fx {
    /// No object.
    Missing,
    /// An existing object with no data and no omap.
    Empty,
    /// An object with data and an omap key, but no `features`: not an RBD header.
    NotRbd,
    /// A header as stock `create` leaves it (1 GiB, features 0x3d), with keys set (Some) or
    /// removed (None).
    Header(Vec<(&'static str, Option<Vec<u8>>)>),
    /// A header, then these steps.
    HeaderThen(Vec<Step>),
    /// A clone map of [`MAP`] entries (runs of EXISTS_PARENT and EXISTS).
    Map,
    /// That map with bytes XORed: (offset from the end when negative, mask).
    MapCorrupt(i64, u8),
    /// That map with its data changed raw: write these bytes at this offset.
    MapPatched(u64, Vec<u8>),
    /// That map, one byte shorter.
    MapTruncated,
    /// A parent data object being back-filled: claimed by this owner for 10 minutes.
    Claimed(&'static str),
    /// An object holding this raw value as its back-fill claim.
    ClaimRaw(Vec<u8>),
    /// A back-filled data object (claimed, then completed).
    Filled,
}

/// A step of [`Fx::HeaderThen`].
#[derive(Clone)]
enum Step {
    /// A method call (method, input) that must succeed.
    Call(&'static str, Vec<u8>),
    /// A raw omap set.
    Set(&'static str, Vec<u8>),
}

fn header_keys() -> Vec<(&'static str, Vec<u8>)> {
    let ts = UTime { sec: 1_700_000_000, nsec: 0 }.get_encoding();
    vec![
        (header::SIZE, (1u64 << 30).get_encoding()),
        (header::ORDER, 22u8.get_encoding()),
        (
            header::FEATURES,
            (RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN).get_encoding(),
        ),
        (header::OBJECT_PREFIX, "rbd_data.10226b8b4567".to_string().get_encoding()),
        (header::SNAP_SEQ, 0u64.get_encoding()),
        ("create_timestamp", ts.clone()),
        ("access_timestamp", ts.clone()),
        ("modify_timestamp", ts),
    ]
}

fn call(method: &'static str, input: Vec<u8>) -> Call {
    Call { class: CLASS_NAME, method, input }
}

fn is_write(method: &str) -> bool {
    rbd_ext_cls::methods::find(method).is_some_and(|m| m.flags & WR != 0)
}

/// Runs a method the way a client would: a write op for write methods, a read op for the
/// others. Returns 0 or the negative errno.
fn run(io: &IoCtx, oid: &str, c: &Call) -> Result<(), Errno> {
    let r = if is_write(c.method) { io.exec_write(oid, c) } else { io.exec(oid, c).map(|_| ()) };
    r.map_err(|e| e.errno())
}

fn map_init() -> Vec<u8> {
    CloneMapInitOp {
        object_count: MAP,
        runs: vec![StateRun { start: 0, len: MAP, state: ExistsParent }, StateRun { start: 10, len: 10, state: Exists }],
        force: false,
    }
    .get_encoding()
}

fn setup(io: &IoCtx, oid: &str, fx: &Fx) {
    let hdr = |io: &IoCtx, extra: &[(&'static str, Option<Vec<u8>>)]| {
        let mut keys = header_keys();
        for (k, v) in extra {
            keys.retain(|(kk, _)| kk != k);
            if let Some(v) = v {
                keys.push((k, v.clone()));
            }
        }
        let kv: Vec<(&str, &[u8])> = keys.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        io.write(oid, &WriteOp::default().step(WriteStep::Create { exclusive: true })).unwrap();
        io.omap_set(oid, &kv).unwrap();
    };
    match fx {
        Fx::Missing => {}
        Fx::Empty => io.write_full(oid, b"").unwrap(),
        Fx::NotRbd => {
            io.write_full(oid, b"not an rbd header").unwrap();
            io.omap_set(oid, &[("foo", b"bar")]).unwrap();
        }
        Fx::Header(extra) => hdr(io, extra),
        Fx::HeaderThen(steps) => {
            hdr(io, &[]);
            for s in steps {
                match s {
                    Step::Call(m, input) => io.exec_write(oid, &call(m, input.clone())).unwrap_or_else(|e| panic!("fixture {m}: {e}")),
                    Step::Set(k, v) => io.omap_set(oid, &[(k, v)]).unwrap(),
                }
            }
        }
        Fx::Map => io.exec_write(oid, &call("clone_map_init", map_init())).unwrap(),
        Fx::MapCorrupt(at, mask) => {
            setup(io, oid, &Fx::Map);
            let size = io.stat(oid).unwrap();
            let off = if *at < 0 { size - at.unsigned_abs() } else { *at as u64 };
            let b = io.read(oid, off, 1).unwrap();
            io.write(oid, &WriteOp::default().step(WriteStep::Write { off, data: vec![b[0] ^ mask] })).unwrap();
        }
        Fx::MapPatched(off, data) => {
            setup(io, oid, &Fx::Map);
            io.write(oid, &WriteOp::default().step(WriteStep::Write { off: *off, data: data.clone() })).unwrap();
        }
        Fx::Claimed(owner) => io.exec_write(oid, &call("backfill_claim", claim(owner, 600_000))).unwrap(),
        Fx::ClaimRaw(v) => {
            io.write(oid, &WriteOp::default().step(WriteStep::Create { exclusive: true })).unwrap();
            io.omap_set(oid, &[(BACKFILL_CLAIM_KEY, v)]).unwrap();
        }
        Fx::Filled => {
            setup(io, oid, &Fx::Claimed("owner-a"));
            io.exec_write(oid, &call("backfill_complete", complete("owner-a", b"filled"))).unwrap();
        }
        Fx::MapTruncated => {
            setup(io, oid, &Fx::Map);
            let size = io.stat(oid).unwrap();
            io.write(oid, &WriteOp::default().step(WriteStep::Truncate(size - 1))).unwrap();
        }
    }
}

/// An object's data and omap.
type ObjectState = (Vec<u8>, Vec<(String, Vec<u8>)>);

/// Everything a call could change: existence and size, data, omap.
fn snapshot(io: &IoCtx, oid: &str) -> Option<ObjectState> {
    let size = match io.stat(oid) {
        Ok(s) => s,
        Err(e) if e.errno() == Errno::ENOENT => return None,
        Err(e) => panic!("stat {oid}: {e}"),
    };
    Some((io.read(oid, 0, size as usize).unwrap(), io.omap_list(oid, "").unwrap()))
}

// ---- inputs ----

fn standalone(overlap: u64) -> ParentRecord {
    ParentRecord {
        pool_id: 2,
        image_id: "parent123".into(),
        snap_id: SnapId::NOSNAP,
        head_overlap: Some(overlap),
        parent_type: ParentType::Standalone,
        ..Default::default()
    }
}

fn remote(secret: &str) -> ParentRecord {
    ParentRecord {
        parent_type: ParentType::RemoteStandalone,
        remote_cluster_name: "ceph-b".into(),
        remote_mon_hosts: vec!["10.0.0.2:6789".into()],
        remote_client_name: "client.admin".into(),
        remote_secret_ref: secret.into(),
        ..standalone(MIB)
    }
}

fn attach(rec: ParentRecord) -> Vec<u8> {
    ParentAttachOp { record: rec, reattach: false }.get_encoding()
}

fn reattach(rec: ParentRecord) -> Vec<u8> {
    ParentAttachOp { record: rec, reattach: true }.get_encoding()
}

/// A `parent` value whose envelope compat is beyond what anyone decodes.
fn parent_compat(compat: u8) -> Vec<u8> {
    let mut b = standalone(MIB).get_encoding();
    b[1] = compat;
    b
}

fn kid(id: &str) -> ChildImageSpec {
    ChildImageSpec { pool_id: 2, pool_namespace: String::new(), image_id: id.into() }
}

fn child_op(snap: SnapId, spec: ChildImageSpec, cluster: &str) -> Vec<u8> {
    ChildOp { snap_id: snap, spec, cluster: cluster.into() }.get_encoding()
}

fn head(spec: ChildImageSpec) -> Vec<u8> {
    child_op(SnapId::NOSNAP, spec, "")
}

fn list(snap: SnapId) -> Vec<u8> {
    ChildrenListOp { snap_id: snap, max: 0, start_after: None }.get_encoding()
}

fn get(start: u64, count: u64) -> Vec<u8> {
    CloneMapGetOp { start, count }.get_encoding()
}

fn update(start: u64, count: u64, new_state: CloneMapState, expected_state: Option<CloneMapState>) -> Vec<u8> {
    CloneMapUpdateOp { start, count, new_state, expected_state }.get_encoding()
}

fn update_many(updates: &[(u64, u64, CloneMapState, Option<CloneMapState>)]) -> Vec<u8> {
    let updates = updates.iter().map(|&(start, count, new_state, expected_state)| CloneMapUpdateOp { start, count, new_state, expected_state });
    CloneMapUpdateManyOp { updates: updates.collect() }.get_encoding()
}

fn resize(object_count: u64, default_state: CloneMapState) -> Vec<u8> {
    CloneMapResizeOp { object_count, default_state }.get_encoding()
}

fn init(object_count: u64, runs: &[(u64, u64, CloneMapState)], force: bool) -> Vec<u8> {
    let runs = runs.iter().map(|&(start, len, state)| StateRun { start, len, state }).collect();
    CloneMapInitOp { object_count, runs, force }.get_encoding()
}

fn claim(owner: &str, ttl_ms: u32) -> Vec<u8> {
    BackfillClaimOp { owner: owner.into(), ttl_ms }.get_encoding()
}

fn complete(owner: &str, data: &[u8]) -> Vec<u8> {
    BackfillCompleteOp { owner: owner.into(), data: BufferList(data.to_vec()) }.get_encoding()
}

fn abort(owner: &str) -> Vec<u8> {
    BackfillAbortOp { owner: owner.into() }.get_encoding()
}

/// A stored claim by `owner` that expired long ago.
fn expired_claim(owner: &str) -> Vec<u8> {
    BackfillClaim { owner: owner.into(), expires: UTime { sec: 1, nsec: 0 } }.get_encoding()
}

/// Valid encoding truncated by `n` bytes.
fn cut(mut b: Vec<u8>, n: usize) -> Vec<u8> {
    b.truncate(b.len() - n);
    b
}

fn snap_add(name: &str, id: u64) -> Vec<u8> {
    SnapshotAddOp { name: name.into(), id: SnapId(id), namespace: SnapshotNamespace::user() }.get_encoding()
}

fn parent_set(id: u64, overlap: u64) -> Vec<u8> {
    SnapshotParentSetOp { id: SnapId(id), overlap }.get_encoding()
}

fn guard_op(mode: SnapGuardMode, id: Option<u64>) -> Vec<u8> {
    SnapGuardOp { mode, guard_id: id.map(SnapId).unwrap_or(SnapId::NOSNAP) }.get_encoding()
}

/// A standalone child as `clone-standalone` leaves it: parent record, then its guard.
fn guarded_child() -> Fx {
    Fx::HeaderThen(vec![Step::Call("parent_attach", attach(standalone(8 * MIB))), Step::Call("snap_guard", guard_op(SnapGuardMode::Arm, Some(0)))])
}

/// That child with snapshot `s1` (id 5) made by `rbd_ext.snapshot_add`.
fn snapped_child() -> Fx {
    match guarded_child() {
        Fx::HeaderThen(mut steps) => {
            steps.push(Step::Call("snapshot_add", snap_add("s1", 5)));
            Fx::HeaderThen(steps)
        }
        _ => unreachable!(),
    }
}

/// A child with a snapshot (id 5) as stock `snapshot_add` stores it: no parent overlap.
fn stock_snapped_child() -> Fx {
    let rec = SnapshotRecord { id: SnapId(5), name: "stock".into(), image_size: 1 << 30, version: 8, ..Default::default() };
    match attached_child() {
        Fx::HeaderThen(mut steps) => {
            steps.push(Step::Set("snapshot_0000000000000005", rec.get_encoding()));
            Fx::HeaderThen(steps)
        }
        _ => unreachable!(),
    }
}

fn attached_child() -> Fx {
    Fx::HeaderThen(vec![Step::Call("parent_attach", attach(standalone(8 * MIB)))])
}

fn parent_with_child() -> Fx {
    Fx::HeaderThen(vec![Step::Call("child_attach", head(kid("child1")))])
}

/// Offset of data block `k` of the fixture map and of its CRC entry.
fn map_offsets(k: u64) -> (u64, u64) {
    let l = CloneMapLayout::new(MAP);
    (l.data_offset() + k * l.block_size(), l.crc_offset(k))
}

struct Row {
    what: &'static str,
    fx: Fx,
    method: &'static str,
    input: Vec<u8>,
    expect: Result<(), Errno>,
}

fn rows() -> Vec<Row> {
    use Errno as E;
    let ok = Ok(());
    let err = Err;
    let r = |what, fx, method, input, expect| Row { what, fx, method, input, expect };
    let hdr = || Fx::Header(vec![]);
    let hdr_with = |k: &'static str, v: Option<Vec<u8>>| Fx::Header(vec![(k, v)]);
    let corrupt_features = || hdr_with(header::FEATURES, Some(vec![1, 2, 3]));
    let no_layering = || hdr_with(header::FEATURES, Some(RBD_FEATURE_EXCLUSIVE_LOCK.get_encoding()));
    let detached_snapshot_parent = || {
        Fx::Header(vec![
            ("snapshot_0000000000000004", Some(vec![8, 8, 0, 0, 0, 0])),
            (
                header::PARENT,
                Some(ParentRecord { snap_id: SnapId(4), head_overlap: None, parent_type: ParentType::Snapshot, ..standalone(MIB) }.get_encoding()),
            ),
        ])
    };
    let (blk1, crc1) = map_offsets(1);
    let (blk2, _) = map_offsets(2);
    let mut rows = vec![
        // ---- get_version / ping / dispatch ----
        r("get_version: answers", Fx::Empty, "get_version", vec![], ok),
        r("get_version: missing object (the OSD answers)", Fx::Missing, "get_version", vec![], err(E::ENOENT)),
        r("ping: sets its key", Fx::Empty, "ping", PingOp { value: "x".into() }.get_encoding(), ok),
        r("ping: empty input", Fx::Empty, "ping", vec![], err(E::EINVAL)),
        r("ping: truncated input on a missing object", Fx::Missing, "ping", vec![1, 1, 9, 0, 0, 0], err(E::EINVAL)),
        r("ping: compat too new", Fx::Empty, "ping", vec![9, 9, 4, 0, 0, 0, 0, 0, 0, 0], err(E::EINVAL)),
        r("unknown method", Fx::Empty, "no_such_method", vec![], err(E::EOPNOTSUPP)),
        // ---- parent_attach ----
        r("parent_attach: attaches", hdr(), "parent_attach", attach(standalone(MIB)), ok),
        r("parent_attach: remote with config:// ref", hdr(), "parent_attach", attach(remote("config://rbd-ext/k")), ok),
        r("parent_attach: garbage input", hdr(), "parent_attach", vec![0xff], err(E::EINVAL)),
        r("parent_attach: truncated record", hdr(), "parent_attach", cut(attach(standalone(MIB)), 3), err(E::EINVAL)),
        r("parent_attach: record compat 5", hdr(), "parent_attach", parent_compat(5), err(E::EINVAL)),
        r("parent_attach: reattach flag on a bare header", hdr(), "parent_attach", reattach(standalone(MIB)), ok),
        r("parent_attach: bytes after the reattach flag", hdr(), "parent_attach", [reattach(standalone(MIB)), vec![1]].concat(), err(E::EINVAL)),
        r("parent_attach: garbage on a missing object (decode first)", Fx::Missing, "parent_attach", vec![0xff], err(E::EINVAL)),
        r("parent_attach: missing header object", Fx::Missing, "parent_attach", attach(standalone(MIB)), err(E::ENOENT)),
        r("parent_attach: not an RBD header (no features)", Fx::NotRbd, "parent_attach", attach(standalone(MIB)), err(E::ENOEXEC)),
        r("parent_attach: empty object", Fx::Empty, "parent_attach", attach(standalone(MIB)), err(E::ENOEXEC)),
        r("parent_attach: no layering", no_layering(), "parent_attach", attach(standalone(MIB)), err(E::ENOEXEC)),
        r("parent_attach: features undecodable", corrupt_features(), "parent_attach", attach(standalone(MIB)), err(E::EIO)),
        r("parent_attach: overlap None", hdr(), "parent_attach", attach(ParentRecord { head_overlap: None, ..standalone(MIB) }), err(E::EINVAL)),
        r("parent_attach: overlap 0", hdr(), "parent_attach", attach(standalone(0)), err(E::EINVAL)),
        r(
            "parent_attach: unknown type",
            hdr(),
            "parent_attach",
            attach(ParentRecord { parent_type: ParentType::Unknown(9), ..standalone(MIB) }),
            err(E::EINVAL),
        ),
        r("parent_attach: standalone with a snap id", hdr(), "parent_attach", attach(ParentRecord { snap_id: SnapId(4), ..standalone(MIB) }), err(E::EINVAL)),
        r(
            "parent_attach: snapshot type at NOSNAP",
            hdr(),
            "parent_attach",
            attach(ParentRecord { parent_type: ParentType::Snapshot, ..standalone(MIB) }),
            err(E::EINVAL),
        ),
        r("parent_attach: pool -1", hdr(), "parent_attach", attach(ParentRecord { pool_id: -1, ..standalone(MIB) }), err(E::EINVAL)),
        r("parent_attach: empty image id", hdr(), "parent_attach", attach(ParentRecord { image_id: String::new(), ..standalone(MIB) }), err(E::EINVAL)),
        r(
            "parent_attach: image id not alphanumeric",
            hdr(),
            "parent_attach",
            attach(ParentRecord { image_id: "ab-c".into(), ..standalone(MIB) }),
            err(E::EINVAL),
        ),
        r("parent_attach: namespace with /", hdr(), "parent_attach", attach(ParentRecord { pool_namespace: "a/b".into(), ..standalone(MIB) }), err(E::EINVAL)),
        r(
            "parent_attach: remote fields on a standalone record",
            hdr(),
            "parent_attach",
            attach(ParentRecord { remote_cluster_name: "x".into(), ..standalone(MIB) }),
            err(E::EINVAL),
        ),
        r("parent_attach: inline cephx key as secret", hdr(), "parent_attach", attach(remote(FAKE_KEY)), err(E::EINVAL)),
        r("parent_attach: inline key behind config://", hdr(), "parent_attach", attach(remote(&format!("config://{FAKE_KEY}"))), err(E::EINVAL)),
        r("parent_attach: secret not a config:// ref", hdr(), "parent_attach", attach(remote("file:///etc/ceph/keyring")), err(E::EINVAL)),
        r(
            "parent_attach: remote without monitors",
            hdr(),
            "parent_attach",
            attach(ParentRecord { remote_mon_hosts: vec![], ..remote("config://k") }),
            err(E::EINVAL),
        ),
        r(
            "parent_attach: remote client not client.<id>",
            hdr(),
            "parent_attach",
            attach(ParentRecord { remote_client_name: "admin".into(), ..remote("config://k") }),
            err(E::EINVAL),
        ),
        r(
            "parent_attach: S3 record with an image id",
            hdr(),
            "parent_attach",
            attach(ParentRecord { parent_type: ParentType::S3Source, ..standalone(MIB) }),
            err(E::EINVAL),
        ),
        r(
            "parent_attach: stored parent undecodable",
            hdr_with(header::PARENT, Some(vec![4, 2, 0xff, 0, 0, 0])),
            "parent_attach",
            attach(standalone(MIB)),
            err(E::EIO),
        ),
        r("parent_attach: stored parent compat 9", hdr_with(header::PARENT, Some(parent_compat(9))), "parent_attach", attach(standalone(MIB)), err(E::EIO)),
        r("parent_attach: duplicate attach", attached_child(), "parent_attach", attach(standalone(8 * MIB)), err(E::EEXIST)),
        r(
            "parent_attach: another parent while attached",
            attached_child(),
            "parent_attach",
            attach(ParentRecord { image_id: "other1".into(), ..standalone(MIB) }),
            err(E::EEXIST),
        ),
        r("parent_attach: reattach replaces", attached_child(), "parent_attach", reattach(ParentRecord { image_id: "other1".into(), ..standalone(MIB) }), ok),
        r(
            "parent_attach: same parent on a detached head (as upstream)",
            detached_snapshot_parent(),
            "parent_attach",
            attach(ParentRecord { snap_id: SnapId(4), parent_type: ParentType::Snapshot, ..standalone(MIB) }),
            ok,
        ),
        r("parent_attach: no size key", hdr_with(header::SIZE, None), "parent_attach", attach(standalone(MIB)), err(E::ENOENT)),
        r("parent_attach: size undecodable", hdr_with(header::SIZE, Some(vec![1])), "parent_attach", attach(standalone(MIB)), err(E::EIO)),
        // ---- parent_get ----
        r("parent_get: no parent (default record)", hdr(), "parent_get", vec![], ok),
        r("parent_get: non-RBD object (default record)", Fx::NotRbd, "parent_get", vec![], ok),
        r("parent_get: trailing input ignored", attached_child(), "parent_get", vec![1, 2, 3], ok),
        r("parent_get: missing header object", Fx::Missing, "parent_get", vec![], err(E::ENOENT)),
        r("parent_get: stored parent undecodable", hdr_with(header::PARENT, Some(vec![4, 2, 1, 0, 0, 0, 7])), "parent_get", vec![], err(E::EIO)),
        r("parent_get: stored parent compat 9", hdr_with(header::PARENT, Some(parent_compat(9))), "parent_get", vec![], err(E::EIO)),
        // ---- parent_detach ----
        r("parent_detach: detaches", attached_child(), "parent_detach", vec![], ok),
        r("parent_detach: missing header object", Fx::Missing, "parent_detach", vec![], err(E::ENOENT)),
        r("parent_detach: not an RBD header", Fx::NotRbd, "parent_detach", vec![], err(E::ENOEXEC)),
        r("parent_detach: no layering", no_layering(), "parent_detach", vec![], err(E::ENOEXEC)),
        r("parent_detach: features undecodable", corrupt_features(), "parent_detach", vec![], err(E::EIO)),
        r("parent_detach: absent (no parent)", hdr(), "parent_detach", vec![], err(E::ENOENT)),
        r("parent_detach: head already detached", detached_snapshot_parent(), "parent_detach", vec![], err(E::ENOENT)),
        r("parent_detach: stored parent undecodable", hdr_with(header::PARENT, Some(vec![4, 2, 1, 0, 0, 0, 7])), "parent_detach", vec![], err(E::EIO)),
        r("parent_detach: op_features undecodable", attached_child().with(header::OP_FEATURES, vec![9]), "parent_detach", vec![], err(E::EIO)),
        // ---- parent_overlap_set ----
        r("parent_overlap_set: shrinks", attached_child(), "parent_overlap_set", ParentOverlapSetOp { overlap: MIB }.get_encoding(), ok),
        r("parent_overlap_set: garbage input", attached_child(), "parent_overlap_set", vec![1, 2, 3], err(E::EINVAL)),
        r("parent_overlap_set: missing header object", Fx::Missing, "parent_overlap_set", ParentOverlapSetOp { overlap: MIB }.get_encoding(), err(E::ENOENT)),
        r("parent_overlap_set: no parent", hdr(), "parent_overlap_set", ParentOverlapSetOp { overlap: MIB }.get_encoding(), err(E::ENOENT)),
        r(
            "parent_overlap_set: head detached",
            detached_snapshot_parent(),
            "parent_overlap_set",
            ParentOverlapSetOp { overlap: 1 }.get_encoding(),
            err(E::ENOENT),
        ),
        r(
            "parent_overlap_set: overlap growth",
            attached_child(),
            "parent_overlap_set",
            ParentOverlapSetOp { overlap: 8 * MIB + 1 }.get_encoding(),
            err(E::EINVAL),
        ),
        r(
            "parent_overlap_set: stored parent undecodable",
            hdr_with(header::PARENT, Some(vec![4, 2, 1, 0, 0, 0, 7])),
            "parent_overlap_set",
            ParentOverlapSetOp { overlap: 1 }.get_encoding(),
            err(E::EIO),
        ),
        // ---- snapshot_add / snapshot_parent_set / snap_guard ----
        r("snapshot_add: child snapshot", guarded_child(), "snapshot_add", snap_add("s1", 5), ok),
        r("snapshot_add: plain image", hdr(), "snapshot_add", snap_add("s1", 5), ok),
        r("snapshot_add: garbage input", hdr(), "snapshot_add", vec![1], err(E::EINVAL)),
        r("snapshot_add: missing header object", Fx::Missing, "snapshot_add", snap_add("s1", 5), err(E::ENOENT)),
        r("snapshot_add: no snap_seq", hdr_with(header::SNAP_SEQ, None), "snapshot_add", snap_add("s1", 5), err(E::ENOENT)),
        r("snapshot_add: id below snap_seq", hdr_with(header::SNAP_SEQ, Some(9u64.get_encoding())), "snapshot_add", snap_add("s1", 5), err(E::ESTALE)),
        r("snapshot_add: id above CEPH_MAXSNAP", hdr(), "snapshot_add", snap_add("s1", u64::MAX - 1), err(E::EINVAL)),
        r("snapshot_add: duplicate name", snapped_child(), "snapshot_add", snap_add("s1", 7), err(E::EEXIST)),
        r(
            "snapshot_add: user limit reached",
            snapped_child().with(header::RBD_EXT_SNAP_LIMIT, 1u64.get_encoding()),
            "snapshot_add",
            snap_add("s2", 7),
            err(E::EDQUOT),
        ),
        r("snapshot_add: size undecodable", hdr_with(header::SIZE, Some(vec![1])), "snapshot_add", snap_add("s1", 5), err(E::EIO)),
        r("snapshot_parent_set: repairs", stock_snapped_child(), "snapshot_parent_set", parent_set(5, MIB), ok),
        r("snapshot_parent_set: same value again", snapped_child(), "snapshot_parent_set", parent_set(5, 8 * MIB), ok),
        r("snapshot_parent_set: other value", snapped_child(), "snapshot_parent_set", parent_set(5, MIB), err(E::EEXIST)),
        r("snapshot_parent_set: garbage input", snapped_child(), "snapshot_parent_set", vec![1, 2], err(E::EINVAL)),
        r("snapshot_parent_set: overlap 0", snapped_child(), "snapshot_parent_set", parent_set(5, 0), err(E::EINVAL)),
        r("snapshot_parent_set: no such snapshot", snapped_child(), "snapshot_parent_set", parent_set(6, MIB), err(E::ENOENT)),
        r("snapshot_parent_set: no parent", hdr(), "snapshot_parent_set", parent_set(5, MIB), err(E::ENOENT)),
        r("snapshot_parent_set: missing header object", Fx::Missing, "snapshot_parent_set", parent_set(5, MIB), err(E::ENOENT)),
        r("snap_guard: arm with id 0", attached_child(), "snap_guard", guard_op(SnapGuardMode::Arm, Some(0)), ok),
        r("snap_guard: arm again", guarded_child(), "snap_guard", guard_op(SnapGuardMode::Arm, None), ok),
        r("snap_guard: lift", guarded_child(), "snap_guard", guard_op(SnapGuardMode::Lift, None), ok),
        r("snap_guard: remove", guarded_child(), "snap_guard", guard_op(SnapGuardMode::Remove, None), ok),
        r("snap_guard: a second guard", guarded_child(), "snap_guard", guard_op(SnapGuardMode::Arm, Some(3)), err(E::EEXIST)),
        r("snap_guard: stale id", hdr_with(header::SNAP_SEQ, Some(9u64.get_encoding())), "snap_guard", guard_op(SnapGuardMode::Arm, Some(5)), err(E::ESTALE)),
        r("snap_guard: unknown mode", hdr(), "snap_guard", vec![7, 0, 0, 0, 0, 0, 0, 0, 0], err(E::EINVAL)),
        r("snap_guard: missing header object", Fx::Missing, "snap_guard", guard_op(SnapGuardMode::Lift, None), err(E::ENOENT)),
        r("snap_guard: not an RBD header", Fx::NotRbd, "snap_guard", guard_op(SnapGuardMode::Arm, Some(0)), err(E::ENOENT)),
        // ---- child_attach ----
        // ---- protection_set ----
        r("protection_set: strict", parent_with_child(), "protection_set", ProtectionSetOp { mode: ProtectionMode::Strict }.get_encoding(), ok),
        r("protection_set: clones again", parent_with_child(), "protection_set", ProtectionSetOp { mode: ProtectionMode::Clones }.get_encoding(), ok),
        r("protection_set: garbage input", parent_with_child(), "protection_set", vec![0xfe; 3], err(E::EINVAL)),
        r(
            "protection_set: missing header object",
            Fx::Missing,
            "protection_set",
            ProtectionSetOp { mode: ProtectionMode::Strict }.get_encoding(),
            err(E::ENOENT),
        ),
        r("protection_set: not protected", hdr(), "protection_set", ProtectionSetOp { mode: ProtectionMode::Strict }.get_encoding(), err(E::ENOENT)),
        r("protection_set: not an RBD header", Fx::NotRbd, "protection_set", ProtectionSetOp { mode: ProtectionMode::Strict }.get_encoding(), err(E::ENOEXEC)),
        r(
            "protection_set: features undecodable",
            corrupt_features(),
            "protection_set",
            ProtectionSetOp { mode: ProtectionMode::Strict }.get_encoding(),
            err(E::EIO),
        ),
        r("child_attach: attaches", hdr(), "child_attach", head(kid("child1")), ok),
        r("child_attach: remote child (cluster fsid)", hdr(), "child_attach", child_op(SnapId::NOSNAP, kid("child1"), FSID), ok),
        r("child_attach: garbage input", hdr(), "child_attach", vec![0xfe; 5], err(E::EINVAL)),
        r("child_attach: truncated spec", hdr(), "child_attach", cut(head(kid("child1")), 2), err(E::EINVAL)),
        r("child_attach: snapshot id, not NOSNAP", hdr(), "child_attach", child_op(SnapId(4), kid("child1"), ""), err(E::EINVAL)),
        r("child_attach: snapdir", hdr(), "child_attach", child_op(SnapId::SNAPDIR, kid("child1"), ""), err(E::EINVAL)),
        r("child_attach: pool -1", hdr(), "child_attach", head(ChildImageSpec { pool_id: -1, ..kid("child1") }), err(E::EINVAL)),
        r("child_attach: empty image id", hdr(), "child_attach", head(kid("")), err(E::EINVAL)),
        r("child_attach: image id not alphanumeric", hdr(), "child_attach", head(kid("a.b")), err(E::EINVAL)),
        r("child_attach: namespace with /", hdr(), "child_attach", head(ChildImageSpec { pool_namespace: "x/y".into(), ..kid("child1") }), err(E::EINVAL)),
        r("child_attach: bad cluster fsid", hdr(), "child_attach", child_op(SnapId::NOSNAP, kid("child1"), "not an fsid!"), err(E::EINVAL)),
        r("child_attach: missing header object", Fx::Missing, "child_attach", head(kid("child1")), err(E::ENOENT)),
        r("child_attach: not an RBD header (no features)", Fx::NotRbd, "child_attach", head(kid("child1")), err(E::ENOEXEC)),
        r("child_attach: features undecodable", corrupt_features(), "child_attach", head(kid("child1")), err(E::EIO)),
        r("child_attach: op_features undecodable", hdr_with(header::OP_FEATURES, Some(vec![1, 2])), "child_attach", head(kid("child1")), err(E::EIO)),
        r(
            "child_attach: protection record undecodable",
            hdr_with(header::RBD_EXT_PROTECT, Some(vec![1, 1, 16, 0, 0, 0])),
            "child_attach",
            head(kid("child1")),
            err(E::EIO),
        ),
        r(
            "child_attach: children set undecodable",
            hdr_with("snap_children_000000000000head", Some(vec![1, 0, 0, 0, 2, 1])),
            "child_attach",
            head(kid("child1")),
            err(E::EIO),
        ),
        r("child_attach: duplicate attach", parent_with_child(), "child_attach", head(kid("child1")), err(E::EEXIST)),
        r("child_attach: second child", parent_with_child(), "child_attach", head(kid("child2")), ok),
        r(
            "child_attach: duplicate remote child",
            Fx::HeaderThen(vec![Step::Call("child_attach", child_op(SnapId::NOSNAP, kid("child1"), FSID))]),
            "child_attach",
            child_op(SnapId::NOSNAP, kid("child1"), FSID),
            err(E::EEXIST),
        ),
        // ---- child_detach ----
        r("child_detach: detaches", parent_with_child(), "child_detach", head(kid("child1")), ok),
        r("child_detach: garbage input", parent_with_child(), "child_detach", vec![0, 1], err(E::EINVAL)),
        r("child_detach: snapshot id, not NOSNAP", parent_with_child(), "child_detach", child_op(SnapId(4), kid("child1"), ""), err(E::EINVAL)),
        r("child_detach: invalid spec", parent_with_child(), "child_detach", head(kid("")), err(E::EINVAL)),
        r("child_detach: missing header object", Fx::Missing, "child_detach", head(kid("child1")), err(E::ENOENT)),
        r("child_detach: not an RBD header", Fx::NotRbd, "child_detach", head(kid("child1")), err(E::ENOEXEC)),
        r("child_detach: absent (no children)", hdr(), "child_detach", head(kid("child1")), err(E::ENOENT)),
        r("child_detach: absent (other child)", parent_with_child(), "child_detach", head(kid("child2")), err(E::ENOENT)),
        r(
            "child_detach: absent (local child, remote request)",
            parent_with_child(),
            "child_detach",
            child_op(SnapId::NOSNAP, kid("child1"), FSID),
            err(E::ENOENT),
        ),
        r(
            "child_detach: children set undecodable",
            hdr_with("snap_children_000000000000head", Some(vec![2, 0, 0, 0])),
            "child_detach",
            head(kid("child1")),
            err(E::EIO),
        ),
        r(
            "child_detach: protection record undecodable",
            parent_with_child().with(header::RBD_EXT_PROTECT, vec![9, 9, 0, 0, 0, 0]),
            "child_detach",
            head(kid("child1")),
            err(E::EIO),
        ),
        r("child_detach: features undecodable", parent_with_child().with(header::FEATURES, vec![0]), "child_detach", head(kid("child1")), err(E::EIO)),
        // ---- children_list ----
        r("children_list: lists", parent_with_child(), "children_list", list(SnapId::NOSNAP), ok),
        r(
            "children_list: bare upstream input with paging fields",
            parent_with_child(),
            "children_list",
            ChildrenListOp { snap_id: SnapId::NOSNAP, max: 1, start_after: Some(kid("a")) }.get_encoding(),
            ok,
        ),
        r("children_list: garbage input", parent_with_child(), "children_list", vec![1, 2], err(E::EINVAL)),
        r("children_list: snapshot id, not NOSNAP", parent_with_child(), "children_list", list(SnapId(4)), err(E::EINVAL)),
        r(
            "children_list: truncated start_after",
            parent_with_child(),
            "children_list",
            cut(ChildrenListOp { snap_id: SnapId::NOSNAP, max: 1, start_after: Some(kid("a")) }.get_encoding(), 1),
            err(E::EINVAL),
        ),
        r("children_list: missing header object", Fx::Missing, "children_list", list(SnapId::NOSNAP), err(E::ENOENT)),
        r("children_list: without children", hdr(), "children_list", list(SnapId::NOSNAP), err(E::ENOENT)),
        r("children_list: non-RBD object", Fx::NotRbd, "children_list", list(SnapId::NOSNAP), err(E::ENOENT)),
        r(
            "children_list: children set undecodable",
            hdr_with("snap_children_000000000000head", Some(vec![1, 0, 0])),
            "children_list",
            list(SnapId::NOSNAP),
            err(E::EIO),
        ),
        // ---- clone_map_init ----
        r("clone_map_init: creates", Fx::Missing, "clone_map_init", map_init(), ok),
        r("clone_map_init: on an empty object", Fx::Empty, "clone_map_init", map_init(), ok),
        r("clone_map_init: force replaces", Fx::Map, "clone_map_init", init(5, &[], true), ok),
        r("clone_map_init: garbage input", Fx::Missing, "clone_map_init", vec![1, 1, 3, 0, 0, 0, 1, 2, 3], err(E::EINVAL)),
        r("clone_map_init: over the cap", Fx::Missing, "clone_map_init", init(CLONE_MAP_MAX_OBJECT_COUNT + 1, &[], false), err(E::EINVAL)),
        r("clone_map_init: run past the end", Fx::Missing, "clone_map_init", init(10, &[(5, 6, Exists)], false), err(E::EINVAL)),
        r("clone_map_init: run overflowing u64", Fx::Missing, "clone_map_init", init(10, &[(5, u64::MAX, Exists)], false), err(E::EINVAL)),
        r("clone_map_init: unknown state", Fx::Missing, "clone_map_init", init(10, &[(0, 1, Unknown(9))], false), err(E::EINVAL)),
        r("clone_map_init: map exists, no force", Fx::Map, "clone_map_init", map_init(), err(E::EEXIST)),
        r("clone_map_init: object has data, no force", Fx::NotRbd, "clone_map_init", map_init(), err(E::EEXIST)),
        // ---- clone_map_get ----
        r("clone_map_get: whole map", Fx::Map, "clone_map_get", get(0, 0), ok),
        r("clone_map_get: empty range at the end", Fx::Map, "clone_map_get", get(MAP, 0), ok),
        r("clone_map_get: garbage input", Fx::Map, "clone_map_get", vec![1, 1, 0, 0, 0, 0], err(E::EINVAL)),
        r("clone_map_get: missing map (no object)", Fx::Missing, "clone_map_get", get(0, 0), err(E::ENOENT)),
        r("clone_map_get: missing map (empty object)", Fx::Empty, "clone_map_get", get(0, 0), err(E::ENOENT)),
        r("clone_map_get: start out of range", Fx::Map, "clone_map_get", get(MAP + 1, 0), err(E::EINVAL)),
        r("clone_map_get: range out of range", Fx::Map, "clone_map_get", get(MAP - 5, 6), err(E::EINVAL)),
        r("clone_map_get: range overflowing u64", Fx::Map, "clone_map_get", get(5, u64::MAX), err(E::EINVAL)),
        r("clone_map_get: not a map (EIO)", Fx::NotRbd, "clone_map_get", get(0, 1), err(E::EIO)),
        r("clone_map_get: header corrupt", Fx::MapCorrupt(8, 0x01), "clone_map_get", get(0, 1), err(E::EIO)),
        r("clone_map_get: header CRC corrupt", Fx::MapCorrupt(20, 0x80), "clone_map_get", get(0, 1), err(E::EIO)),
        r("clone_map_get: header compat 2", Fx::MapPatched(1, vec![2]), "clone_map_get", get(0, 1), err(E::EIO)),
        r("clone_map_get: object shorter than its header says", Fx::MapTruncated, "clone_map_get", get(0, 1), err(E::EIO)),
        r(
            "clone_map_get: object longer than its header says",
            Fx::MapPatched(CloneMapLayout::new(MAP).object_size(), vec![0]),
            "clone_map_get",
            get(0, 1),
            err(E::EIO),
        ),
        r("clone_map_get: data block corrupt, range covers it", Fx::MapCorrupt(blk1 as i64 + 7, 0x10), "clone_map_get", get(8192, 10), err(E::EIO)),
        r("clone_map_get: data block corrupt, range spans it", Fx::MapCorrupt(blk1 as i64 + 7, 0x10), "clone_map_get", get(0, 0), err(E::EIO)),
        r("clone_map_get: data block corrupt, range misses it", Fx::MapCorrupt(blk1 as i64 + 7, 0x10), "clone_map_get", get(2 * 8192, 100), ok),
        r("clone_map_get: CRC entry corrupt", Fx::MapCorrupt(crc1 as i64, 0x01), "clone_map_get", get(8192 + 3, 1), err(E::EIO)),
        r("clone_map_get: last (partial) block corrupt", Fx::MapCorrupt(blk2 as i64, 0x40), "clone_map_get", get(MAP - 1, 1), err(E::EIO)),
        // ---- clone_map_update ----
        r("clone_map_update: updates", Fx::Map, "clone_map_update", update(0, 100, CopiedUp, Some(ExistsParent)), ok),
        r("clone_map_update: garbage input", Fx::Map, "clone_map_update", vec![1], err(E::EINVAL)),
        r("clone_map_update: count 0", Fx::Map, "clone_map_update", update(0, 0, Exists, None), err(E::EINVAL)),
        r("clone_map_update: unknown new state", Fx::Map, "clone_map_update", update(0, 1, Unknown(6), None), err(E::EINVAL)),
        r("clone_map_update: unknown expected state", Fx::Map, "clone_map_update", update(0, 1, Exists, Some(Unknown(200))), err(E::EINVAL)),
        r("clone_map_update: range out of range", Fx::Map, "clone_map_update", update(MAP - 1, 2, Exists, None), err(E::EINVAL)),
        r("clone_map_update: range overflowing u64", Fx::Map, "clone_map_update", update(1, u64::MAX, Exists, None), err(E::EINVAL)),
        r("clone_map_update: missing map (no object)", Fx::Missing, "clone_map_update", update(0, 1, Exists, None), err(E::ENOENT)),
        r("clone_map_update: missing map (empty object)", Fx::Empty, "clone_map_update", update(0, 1, Exists, None), err(E::ENOENT)),
        r("clone_map_update: header corrupt", Fx::MapCorrupt(6, 0x02), "clone_map_update", update(0, 1, Exists, None), err(E::EIO)),
        r("clone_map_update: data block corrupt", Fx::MapCorrupt(blk1 as i64 + 1, 0x01), "clone_map_update", update(8192, 4, Exists, None), err(E::EIO)),
        r("clone_map_update: data block corrupt, range misses it", Fx::MapCorrupt(blk1 as i64 + 1, 0x01), "clone_map_update", update(0, 4, Exists, None), ok),
        r("clone_map_update: object truncated", Fx::MapTruncated, "clone_map_update", update(0, 1, Exists, None), err(E::EIO)),
        r("clone_map_update: last CRC entry corrupt", Fx::MapCorrupt(-2, 0x08), "clone_map_update", update(MAP - 1, 1, Exists, None), err(E::EIO)),
        // ---- clone_map_update_many ----
        r(
            "clone_map_update_many: updates",
            Fx::Map,
            "clone_map_update_many",
            update_many(&[(0, 1, Pending, None), (0, 1, CopiedUp, Some(Pending)), (9000, 3, Exists, None)]),
            ok,
        ),
        r("clone_map_update_many: garbage input", Fx::Map, "clone_map_update_many", vec![1, 1, 4, 0, 0, 0, 9, 0, 0, 0], err(E::EINVAL)),
        r("clone_map_update_many: no update", Fx::Map, "clone_map_update_many", update_many(&[]), err(E::EINVAL)),
        r(
            "clone_map_update_many: one update out of range",
            Fx::Map,
            "clone_map_update_many",
            update_many(&[(0, 1, Exists, None), (MAP - 1, 2, Exists, None)]),
            err(E::EINVAL),
        ),
        r(
            "clone_map_update_many: one unknown state",
            Fx::Map,
            "clone_map_update_many",
            update_many(&[(0, 1, Exists, None), (1, 1, Unknown(6), None)]),
            err(E::EINVAL),
        ),
        r("clone_map_update_many: missing map", Fx::Missing, "clone_map_update_many", update_many(&[(0, 1, Exists, None)]), err(E::ENOENT)),
        r(
            "clone_map_update_many: a data block corrupt",
            Fx::MapCorrupt(blk1 as i64 + 1, 0x01),
            "clone_map_update_many",
            update_many(&[(0, 1, Exists, None), (8192, 4, Exists, None)]),
            err(E::EIO),
        ),
        r(
            "clone_map_update_many: a corrupt block no update touches",
            Fx::MapCorrupt(blk1 as i64 + 1, 0x01),
            "clone_map_update_many",
            update_many(&[(0, 4, Exists, None), (2 * 8192, 1, Exists, None)]),
            ok,
        ),
        // ---- clone_map_resize ----
        r("clone_map_resize: grows", Fx::Map, "clone_map_resize", resize(MAP + 10_000, ExistsParent), ok),
        r("clone_map_resize: shrinks", Fx::Map, "clone_map_resize", resize(100, NonExistent), ok),
        r("clone_map_resize: garbage input", Fx::Map, "clone_map_resize", vec![1, 1, 1, 0, 0, 0, 0], err(E::EINVAL)),
        r("clone_map_resize: over the cap", Fx::Map, "clone_map_resize", resize(CLONE_MAP_MAX_OBJECT_COUNT + 1, Exists), err(E::EINVAL)),
        r("clone_map_resize: unknown default state", Fx::Map, "clone_map_resize", resize(MAP + 1, Unknown(7)), err(E::EINVAL)),
        r("clone_map_resize: missing map (no object)", Fx::Missing, "clone_map_resize", resize(10, Exists), err(E::ENOENT)),
        r("clone_map_resize: missing map (empty object)", Fx::Empty, "clone_map_resize", resize(10, Exists), err(E::ENOENT)),
        r("clone_map_resize: header corrupt", Fx::MapCorrupt(10, 0x04), "clone_map_resize", resize(MAP + 1, Exists), err(E::EIO)),
        r("clone_map_resize: grow over a corrupt last block", Fx::MapCorrupt(blk2 as i64 + 3, 0x01), "clone_map_resize", resize(MAP + 1, Exists), err(E::EIO)),
        r("clone_map_resize: shrink to a corrupt block", Fx::MapCorrupt(blk1 as i64 + 3, 0x01), "clone_map_resize", resize(8192 + 10, Exists), err(E::EIO)),
        r("clone_map_resize: shrink below a corrupt block", Fx::MapCorrupt(blk1 as i64 + 3, 0x01), "clone_map_resize", resize(8000, Exists), ok),
    ];
    if rbd_ext_cls::methods::find("backfill_claim").is_some() {
        let bad_claim = || Fx::ClaimRaw(vec![1, 1, 40, 0, 0, 0, 1]);
        rows.extend([
            r("backfill_claim: claims a missing object (creates it)", Fx::Missing, "backfill_claim", claim("owner-a", 5000), ok),
            r("backfill_claim: renews its own claim", Fx::Claimed("owner-a"), "backfill_claim", claim("owner-a", 5000), ok),
            r("backfill_claim: takes over an expired claim", Fx::ClaimRaw(expired_claim("owner-b")), "backfill_claim", claim("owner-a", 5000), ok),
            r("backfill_claim: garbage input", Fx::Missing, "backfill_claim", vec![1, 1, 2, 0, 0, 0, 0], err(E::EINVAL)),
            r("backfill_claim: empty owner", Fx::Missing, "backfill_claim", claim("", 5000), err(E::EINVAL)),
            r("backfill_claim: owner over 256 bytes", Fx::Missing, "backfill_claim", claim(&"o".repeat(257), 5000), err(E::EINVAL)),
            r("backfill_claim: ttl 0", Fx::Missing, "backfill_claim", claim("owner-a", 0), err(E::EINVAL)),
            r("backfill_claim: ttl over 10 minutes", Fx::Missing, "backfill_claim", claim("owner-a", BACKFILL_MAX_TTL_MS + 1), err(E::EINVAL)),
            r("backfill_claim: already filled", Fx::Filled, "backfill_claim", claim("owner-a", 5000), err(E::EEXIST)),
            r("backfill_claim: object with data, no claim (filled)", Fx::NotRbd, "backfill_claim", claim("owner-a", 5000), err(E::EEXIST)),
            r("backfill_claim: held by another client", Fx::Claimed("owner-b"), "backfill_claim", claim("owner-a", 5000), err(E::EBUSY)),
            r("backfill_claim: stored claim undecodable", bad_claim(), "backfill_claim", claim("owner-a", 5000), err(E::EIO)),
            r("backfill_complete: completes", Fx::Claimed("owner-a"), "backfill_complete", complete("owner-a", b"data"), ok),
            r("backfill_complete: garbage input", Fx::Claimed("owner-a"), "backfill_complete", vec![1, 1, 4, 0, 0, 0, 1, 0, 0, 0], err(E::EINVAL)),
            r("backfill_complete: empty owner", Fx::Claimed("owner-a"), "backfill_complete", complete("", b"data"), err(E::EINVAL)),
            r("backfill_complete: no object (claim aborted)", Fx::Missing, "backfill_complete", complete("owner-a", b"data"), err(E::ENOENT)),
            r("backfill_complete: already filled", Fx::Filled, "backfill_complete", complete("owner-a", b"data"), err(E::EEXIST)),
            r("backfill_complete: claim taken over", Fx::Claimed("owner-b"), "backfill_complete", complete("owner-a", b"data"), err(E::EBUSY)),
            r("backfill_complete: stored claim undecodable", bad_claim(), "backfill_complete", complete("owner-a", b"data"), err(E::EIO)),
            r("backfill_abort: aborts (removes the placeholder)", Fx::Claimed("owner-a"), "backfill_abort", abort("owner-a"), ok),
            r("backfill_abort: garbage input", Fx::Claimed("owner-a"), "backfill_abort", vec![7], err(E::EINVAL)),
            r("backfill_abort: empty owner", Fx::Claimed("owner-a"), "backfill_abort", abort(""), err(E::EINVAL)),
            r("backfill_abort: no object", Fx::Missing, "backfill_abort", abort("owner-a"), err(E::ENOENT)),
            r("backfill_abort: already filled", Fx::Filled, "backfill_abort", abort("owner-a"), err(E::EEXIST)),
            r("backfill_abort: claim held by another", Fx::Claimed("owner-b"), "backfill_abort", abort("owner-a"), err(E::EBUSY)),
            r("backfill_abort: stored claim undecodable", bad_claim(), "backfill_abort", abort("owner-a"), err(E::EIO)),
        ]);
    }
    if rbd_ext_cls::methods::find("set_size").is_some() {
        rows.extend([
            r("set_size: resizes", hdr(), "set_size", (2u64 << 30).get_encoding(), ok),
            r("set_size: garbage input", hdr(), "set_size", vec![1, 2, 3], err(E::EINVAL)),
            r("set_size: missing header object", Fx::Missing, "set_size", MIB.get_encoding(), err(E::ENOENT)),
            r("set_size: no size key", Fx::NotRbd, "set_size", MIB.get_encoding(), err(E::ENOENT)),
            r("set_size: size undecodable", hdr_with(header::SIZE, Some(vec![1, 2])), "set_size", MIB.get_encoding(), err(E::EIO)),
            r("set_size: parent undecodable", hdr_with(header::PARENT, Some(parent_compat(9))), "set_size", MIB.get_encoding(), err(E::EIO)),
        ]);
    }
    if cfg!(feature = "test-methods") {
        rows.push(r("test_panic: a panic is EIO", Fx::Empty, "test_panic", vec![], err(E::EIO)));
    }
    rows
}

impl Fx {
    /// This fixture with one header key set raw after it is built.
    fn with(self, key: &'static str, value: Vec<u8>) -> Fx {
        match self {
            Fx::HeaderThen(mut steps) => {
                steps.push(Step::Set(key, value));
                Fx::HeaderThen(steps)
            }
            _ => panic!("with() applies to HeaderThen fixtures"),
        }
    }
}

#[test]
fn every_error_path_through_the_osd() {
    let io = common::rbd_pool();
    let rows = rows();
    let mut failures = Vec::new();
    let mut oids = Vec::new();
    let mut covered: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> = Default::default();
    for row in &rows {
        let oid = common::unique("cls-errors");
        oids.push(oid.clone());
        setup(&io, &oid, &row.fx);
        let before = snapshot(&io, &oid);
        let got = run(&io, &oid, &call(row.method, row.input.clone()));
        let after = snapshot(&io, &oid);
        let name = got.map_or_else(|e| e.name().unwrap_or("?").to_string(), |()| "0".into());
        covered.entry(row.method).or_default().insert(name);
        if got != row.expect {
            failures.push(format!("{}: expected {:?}, got {:?}", row.what, row.expect, got));
        }
        if got.is_err() && before != after {
            failures.push(format!("{}: the failed call changed the object", row.what));
        }
        if got.is_ok() && !is_write(row.method) && before != after {
            failures.push(format!("{}: a read method changed the object", row.what));
        }
    }
    for (m, errs) in &covered {
        eprintln!("  {m:<20} {}", errs.iter().cloned().collect::<Vec<_>>().join(" "));
    }
    eprintln!("cls_errors_live: {} rows", rows.len());
    for oid in oids {
        let _ = io.remove(&oid);
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
    // Every registered method has rows.
    for m in rbd_ext_cls::methods::METHODS {
        assert!(covered.contains_key(m.name), "no row for method {}", m.name);
    }
    assert!(common::all_osds_up());
}

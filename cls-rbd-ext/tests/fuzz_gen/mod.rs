//! Input generator shared by the in-process method fuzz (`cls-rbd-ext/tests/fuzz_methods.rs`)
//! and the live one through a real OSD (`tests/cls_fuzz_live.rs`, which includes this file
//! with `#[path]`): a deterministic xorshift PRNG, valid encodings of every method's input
//! (built with the crate's own request types), and mutators that turn them into nearly
//! valid inputs (bit flips, truncations, length-prefix corruption, splices, random bytes).
//!
//! No extra crates: the same seed gives the same inputs everywhere.

#![allow(dead_code)]

use rbd_ext_cls::codec::{BufferList, Codec, SnapId};
use rbd_ext_cls::ops::{
    BackfillAbortOp, BackfillClaimOp, BackfillCompleteOp, ChildOp, ChildrenListOp, CloneMapGetOp, CloneMapInitOp, CloneMapResizeOp, CloneMapUpdateManyOp,
    CloneMapUpdateOp, ParentAttachOp, ParentOverlapSetOp, PingOp,
};
use rbd_ext_cls::types::{ChildImageSpec, CloneMapState, ParentRecord, ParentType, StateRun};

/// Entries of the clone map the fixtures hold: three 8192-entry CRC blocks, the last partial.
pub const MAP_OBJECTS: u64 = 20_001;

/// Pool id the fixtures and seeds use for parents and children.
pub const POOL: i64 = 2;

/// Image ids of the children the "parent with children" fixtures hold.
pub const CHILDREN: [&str; 3] = ["child1", "child2", "child3"];

/// Image id of the parent named by the "child with a parent" fixtures.
pub const PARENT_ID: &str = "parent123";

/// xorshift64* (Vigna): small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Owner of the back-fill claims the fixtures hold (seeds use it and others).
pub const OWNER: &str = "fuzzer-a";

/// Fsid of the "other cluster" that remote children of the fixtures live in.
pub const REMOTE_FSID: &str = "8d5a1c2e-3f4b-4c6d-9e8f-0a1b2c3d4e5f";

/// A `child_attach` / `child_detach` request; `cluster` "" for this cluster.
pub fn child_op(snap_id: SnapId, spec: ChildImageSpec, cluster: &str) -> ChildOp {
    ChildOp { snap_id, spec, cluster: cluster.into() }
}

/// Children specs of the fixtures (and of seeds, so attach/detach hit existing entries).
pub fn child(i: usize) -> ChildImageSpec {
    ChildImageSpec { pool_id: POOL, pool_namespace: String::new(), image_id: CHILDREN[i % CHILDREN.len()].into() }
}

/// A standalone parent record naming [`PARENT_ID`].
pub fn standalone_record(overlap: u64) -> ParentRecord {
    ParentRecord {
        pool_id: POOL,
        image_id: PARENT_ID.into(),
        snap_id: SnapId::NOSNAP,
        head_overlap: Some(overlap),
        parent_type: ParentType::Standalone,
        ..Default::default()
    }
}

/// A remote-standalone record with a valid `config://` secret reference.
pub fn remote_record(overlap: u64) -> ParentRecord {
    ParentRecord {
        parent_type: ParentType::RemoteStandalone,
        remote_cluster_name: "ceph-b".into(),
        remote_mon_hosts: vec!["10.0.0.1:6789".into(), "[v2:10.0.0.2:3300,v1:10.0.0.2:6789]".into()],
        remote_client_name: "client.admin".into(),
        remote_secret_ref: "config://rbd-ext/remote/ceph-b".into(),
        ..standalone_record(overlap)
    }
}

/// An S3-source record.
pub fn s3_record(overlap: u64) -> ParentRecord {
    ParentRecord { head_overlap: Some(overlap), parent_type: ParentType::S3Source, ..Default::default() }
}

/// A snapshot-type record (stock clone v2 layout).
pub fn snapshot_record(overlap: u64) -> ParentRecord {
    ParentRecord { snap_id: SnapId(4), parent_type: ParentType::Snapshot, ..standalone_record(overlap) }
}

/// Methods [`seeds`] knows; any other (a method added later) gets the empty input only.
pub const SEEDED: &[&str] = &[
    "get_version",
    "ping",
    "clone_map_init",
    "clone_map_get",
    "clone_map_update",
    "clone_map_update_many",
    "clone_map_resize",
    "parent_attach",
    "parent_get",
    "parent_detach",
    "parent_overlap_set",
    "child_attach",
    "child_detach",
    "children_list",
    "set_size",
    "backfill_claim",
    "backfill_complete",
    "backfill_abort",
];

/// Valid (or deliberately boundary) encodings of `method`'s input. Unknown names get the
/// empty input.
pub fn seeds(method: &str) -> Vec<Vec<u8>> {
    use CloneMapState::*;
    let n = MAP_OBJECTS;
    let runs = |v: &[(u64, u64, CloneMapState)]| v.iter().map(|&(start, len, state)| StateRun { start, len, state }).collect::<Vec<_>>();
    match method {
        "ping" => vec![PingOp { value: "hello".into() }.get_encoding(), PingOp::default().get_encoding()],
        "clone_map_init" => vec![
            CloneMapInitOp { object_count: n, runs: runs(&[(0, n, ExistsParent), (5, 100, Exists)]), force: false }.get_encoding(),
            CloneMapInitOp { object_count: n, runs: runs(&[(8190, 4, CopiedUp)]), force: true }.get_encoding(),
            CloneMapInitOp { object_count: 1, runs: vec![], force: true }.get_encoding(),
            CloneMapInitOp { object_count: 0, runs: vec![], force: true }.get_encoding(),
            CloneMapInitOp { object_count: 16_385, runs: runs(&[(16_383, 2, Pending)]), force: true }.get_encoding(),
        ],
        "clone_map_get" => vec![
            CloneMapGetOp { start: 0, count: 0 }.get_encoding(),
            CloneMapGetOp { start: 8191, count: 2 }.get_encoding(),
            CloneMapGetOp { start: n - 1, count: 1 }.get_encoding(),
            CloneMapGetOp { start: n, count: 0 }.get_encoding(),
            CloneMapGetOp { start: 3, count: 17_000 }.get_encoding(),
        ],
        "clone_map_update" => vec![
            CloneMapUpdateOp { start: 0, count: 1, new_state: Exists, expected_state: None }.get_encoding(),
            CloneMapUpdateOp { start: 8000, count: 400, new_state: CopiedUp, expected_state: Some(ExistsParent) }.get_encoding(),
            CloneMapUpdateOp { start: n - 1, count: 1, new_state: Pending, expected_state: Some(NonExistent) }.get_encoding(),
            CloneMapUpdateOp { start: 1, count: n - 1, new_state: ExistsClean, expected_state: Some(Exists) }.get_encoding(),
        ],
        "clone_map_update_many" => {
            let up = |start, count, new_state, expected_state| CloneMapUpdateOp { start, count, new_state, expected_state };
            let many = |updates| CloneMapUpdateManyOp { updates }.get_encoding();
            vec![
                many(vec![up(0, 1, Pending, None), up(0, 1, CopiedUp, Some(Pending))]),
                many(vec![up(n - 1, 1, Exists, None), up(3, 2, Pending, Some(ExistsParent)), up(8191, 2, Exists, None)]),
                many(vec![up(8000, 400, CopiedUp, Some(ExistsParent))]),
                many((0..64).map(|i| up(i * 300, 1, Exists, None)).collect()),
            ]
        }
        "clone_map_resize" => vec![
            CloneMapResizeOp { object_count: n + 1, default_state: ExistsParent }.get_encoding(),
            CloneMapResizeOp { object_count: n - 1, default_state: NonExistent }.get_encoding(),
            CloneMapResizeOp { object_count: 8192, default_state: Exists }.get_encoding(),
            CloneMapResizeOp { object_count: 40_000, default_state: CopiedUp }.get_encoding(),
            CloneMapResizeOp { object_count: 0, default_state: NonExistent }.get_encoding(),
        ],
        "parent_attach" => vec![
            ParentAttachOp { record: standalone_record(1 << 30), reattach: false }.get_encoding(),
            ParentAttachOp { record: standalone_record(1 << 20), reattach: true }.get_encoding(),
            ParentAttachOp { record: remote_record(1 << 30), reattach: false }.get_encoding(),
            ParentAttachOp { record: remote_record(4096), reattach: true }.get_encoding(),
            ParentAttachOp { record: s3_record(1 << 30), reattach: false }.get_encoding(),
            ParentAttachOp { record: snapshot_record(1 << 30), reattach: true }.get_encoding(),
            ParentAttachOp { record: ParentRecord { pool_namespace: "ns1".into(), ..standalone_record(u64::MAX) }, reattach: false }.get_encoding(),
        ],
        "parent_overlap_set" => vec![
            ParentOverlapSetOp { overlap: 1 << 20 }.get_encoding(),
            ParentOverlapSetOp { overlap: 0 }.get_encoding(),
            ParentOverlapSetOp { overlap: u64::MAX }.get_encoding(),
        ],
        "child_attach" | "child_detach" => {
            let mut v: Vec<Vec<u8>> = (0..4).map(|i| child_op(SnapId::NOSNAP, child(i), "").get_encoding()).collect();
            let other = ChildImageSpec { pool_id: 7, pool_namespace: "ns1".into(), image_id: "otherchild9".into() };
            v.push(child_op(SnapId::NOSNAP, other, "").get_encoding());
            v.push(child_op(SnapId(4), child(0), "").get_encoding());
            v.push(child_op(SnapId::NOSNAP, child(0), REMOTE_FSID).get_encoding());
            v.push(child_op(SnapId::NOSNAP, child(1), REMOTE_FSID).get_encoding());
            v
        }
        "children_list" => vec![
            ChildrenListOp { snap_id: SnapId::NOSNAP, max: 0, start_after: None }.get_encoding(),
            ChildrenListOp { snap_id: SnapId::NOSNAP, max: 1, start_after: None }.get_encoding(),
            ChildrenListOp { snap_id: SnapId::NOSNAP, max: 2, start_after: Some(child(0)) }.get_encoding(),
            ChildrenListOp { snap_id: SnapId::NOSNAP, max: 0, start_after: Some(child(2)) }.get_encoding(),
        ],
        "set_size" => vec![(1u64 << 30).get_encoding(), (4u64 << 20).get_encoding(), 0u64.get_encoding()],
        "backfill_claim" => vec![
            BackfillClaimOp { owner: OWNER.into(), ttl_ms: 5000 }.get_encoding(),
            BackfillClaimOp { owner: "fuzzer-b".into(), ttl_ms: 1 }.get_encoding(),
            BackfillClaimOp { owner: "o".repeat(256), ttl_ms: 600_000 }.get_encoding(),
        ],
        "backfill_complete" => vec![
            BackfillCompleteOp { owner: OWNER.into(), data: BufferList(vec![0x5a; 100]) }.get_encoding(),
            BackfillCompleteOp { owner: "fuzzer-b".into(), data: BufferList(Vec::new()) }.get_encoding(),
        ],
        "backfill_abort" => vec![BackfillAbortOp { owner: OWNER.into() }.get_encoding(), BackfillAbortOp { owner: "fuzzer-b".into() }.get_encoding()],
        // get_version, parent_get, parent_detach and unknown names take no input.
        _ => vec![Vec::new()],
    }
}

/// Boundary values for integer fields and length prefixes.
const INTERESTING_U32: [u32; 9] = [0, 1, 2, 0x7f, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];
const INTERESTING_U64: [u64; 8] = [0, 1, MAP_OBJECTS, 0x7fff_ffff_ffff_ffff, 0xffff_ffff_ffff_fffe, u64::MAX, 64 << 20, (64 << 20) + 1];

/// One mutation of `b` in place; `donor` is another valid input to splice from.
pub fn mutate_once(rng: &mut Rng, b: &mut Vec<u8>, donor: &[u8]) {
    let len = b.len() as u64;
    match rng.below(12) {
        // Flip one bit.
        0 | 1 if len > 0 => {
            let i = rng.below(len) as usize;
            b[i] ^= 1 << rng.below(8);
        }
        // Set a byte to a boundary value.
        2 if len > 0 => {
            let i = rng.below(len) as usize;
            b[i] = *rng.pick(&[0u8, 1, 2, 3, 4, 5, 6, 0x7f, 0x80, 0xfe, 0xff]);
        }
        // Truncate.
        3 | 4 if len > 0 => {
            let n = rng.below(len) as usize;
            b.truncate(n);
        }
        // Corrupt a length prefix / u32 field with a boundary or off-by-a-bit value.
        5 | 6 if len >= 4 => {
            let i = rng.below(len - 3) as usize;
            let cur = u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            let v = match rng.below(4) {
                0 => *rng.pick(&INTERESTING_U32),
                1 => cur.wrapping_add(1),
                2 => cur.wrapping_sub(1),
                _ => (len as u32).wrapping_add(rng.below(16) as u32).wrapping_sub(8),
            };
            b[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        // A u64 field to a boundary value.
        7 if len >= 8 => {
            let i = rng.below(len - 7) as usize;
            b[i..i + 8].copy_from_slice(&rng.pick(&INTERESTING_U64).to_le_bytes());
        }
        // Append random bytes.
        8 => {
            let n = 1 + rng.below(16) as usize;
            let extra = rng.bytes(n);
            b.extend_from_slice(&extra);
        }
        // Insert or delete a run of bytes.
        9 if len > 0 => {
            let i = rng.below(len) as usize;
            if rng.chance(50) {
                let n = 1 + rng.below(8) as usize;
                let extra = rng.bytes(n);
                b.splice(i..i, extra);
            } else {
                let n = (1 + rng.below(8) as usize).min(b.len() - i);
                b.drain(i..i + n);
            }
        }
        // Splice: our prefix, the donor's tail.
        10 if !donor.is_empty() => {
            let cut = rng.below(len + 1) as usize;
            let from = rng.below(donor.len() as u64) as usize;
            b.truncate(cut);
            b.extend_from_slice(&donor[from..]);
        }
        // Envelope header bytes: version / compat.
        _ if len >= 2 => {
            let i = rng.below(2) as usize;
            b[i] = rng.below(8) as u8;
        }
        _ => {
            let n = rng.below(24) as usize;
            *b = rng.bytes(n);
        }
    }
}

/// The seeds of a set of methods, computed once.
#[derive(Debug, Clone)]
pub struct Corpus {
    seeds: Vec<Vec<Vec<u8>>>,
}

impl Corpus {
    /// Seeds for each of `methods` (indexed like it).
    pub fn new(methods: &[&str]) -> Corpus {
        Corpus { seeds: methods.iter().map(|m| seeds(m)).collect() }
    }

    /// An input for method number `m`: a pristine seed, random bytes, or a seed with 1-4
    /// mutations (sometimes splicing in, or starting from, another method's seed, as a
    /// confused client would).
    pub fn input(&self, rng: &mut Rng, m: usize) -> Vec<u8> {
        let mut b = rng.pick(&self.seeds[m]).clone();
        match rng.below(100) {
            0..=19 => b,
            20..=27 => {
                let n = rng.below(64) as usize;
                rng.bytes(n)
            }
            _ => {
                let dm = if rng.chance(20) { rng.below(self.seeds.len() as u64) as usize } else { m };
                let donor = rng.pick(&self.seeds[dm]);
                if rng.chance(10) {
                    b = donor.clone();
                }
                let n = match rng.below(100) {
                    0..=59 => 1,
                    60..=84 => 2,
                    _ => 3 + rng.below(2),
                };
                for _ in 0..n {
                    mutate_once(rng, &mut b, donor);
                }
                b
            }
        }
    }
}

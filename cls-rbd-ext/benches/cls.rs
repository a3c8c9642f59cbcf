//! Criterion benchmarks of the class's hot pure code (DESIGN.md §8):
//!
//! - the `parent` record (v4) encode / decode, local and remote;
//! - a 10,000-child `ChildImageSpecs` set encode / decode, and `child_attach` /
//!   `children_list` on a parent header holding such a set, through the real methods;
//! - `clone_map_update` compare-and-set on a 2.6 M-object clone map (10 TiB of 4 MiB
//!   objects), through the real method against `MemContext`.
//!
//! Methods are called as the OSD calls them: `(methods::find(name).call)(ctx, input, out)`,
//! without `MemContext::call`'s rollback copy of the whole object (the OSD does not copy
//! either). Run: `cargo bench -p rbd-ext-cls --bench cls` (a few minutes on 2 cores).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

use rbd_ext_cls::codec::UTime;
use rbd_ext_cls::methods::{self, MethodFn};
use rbd_ext_cls::types::features::*;
use rbd_ext_cls::types::{header, ChildImageSpec, ChildImageSpecs, CloneMapState, ParentRecord, ParentType, StateRun};
use rbd_ext_cls::{stubs, Codec, MemContext, SnapId};

/// 10 TiB of 4 MiB objects.
const MAP_OBJECTS: u64 = 10 << 18;
const CHILDREN: usize = 10_000;

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20).without_plots()
}

fn method(name: &str) -> MethodFn {
    methods::find(name).unwrap_or_else(|| panic!("method {name} is registered")).call
}

/// Calls a method as the OSD does; level-20 log lines are dropped afterwards (outside the
/// timing when the caller uses `iter_custom`), as the OSD filters them at its debug level.
fn call(ctx: &mut MemContext, m: MethodFn, input: &[u8]) -> Result<Vec<u8>, rbd_ext_cls::Errno> {
    let mut out = Vec::new();
    m(ctx, input, &mut out).map(|()| out)
}

// ------------------------------------------------------------------ parent record

fn parent_local() -> ParentRecord {
    ParentRecord {
        pool_id: 3,
        image_id: "10226b8b4567".into(),
        snap_id: SnapId::NOSNAP,
        head_overlap: Some(100 << 30),
        parent_type: ParentType::Standalone,
        ..Default::default()
    }
}

fn parent_remote() -> ParentRecord {
    ParentRecord {
        pool_id: 7,
        pool_namespace: "tenant-a".into(),
        image_id: "8f3e2a91c4d7".into(),
        snap_id: SnapId::NOSNAP,
        head_overlap: Some(16 << 30),
        parent_type: ParentType::RemoteStandalone,
        remote_cluster_name: "ceph-east".into(),
        remote_mon_hosts: vec!["10.0.0.1:6789".into(), "10.0.0.2:6789".into(), "10.0.0.3:6789".into()],
        remote_client_name: "client.rbd-ext".into(),
        remote_secret_ref: "config://rbd-ext/remote/ceph-east".into(),
    }
}

fn bench_parent_record(c: &mut Criterion) {
    let mut g = c.benchmark_group("parent_record");
    for (name, rec) in [("local", parent_local()), ("remote", parent_remote())] {
        let bytes = rec.get_encoding();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", name), &rec, |b, rec| {
            let mut out = Vec::with_capacity(256);
            b.iter(|| {
                out.clear();
                black_box(rec).encode(&mut out);
                black_box(out.len())
            })
        });
        g.bench_with_input(BenchmarkId::new("decode", name), &bytes, |b, bytes| b.iter(|| ParentRecord::read_bytes(black_box(bytes)).unwrap()));
    }
    g.finish();
}

// ------------------------------------------------------------------ children sets

fn child(i: usize) -> ChildImageSpec {
    // Pools 1..4, ids shaped like librbd's (12 hex digits), a few in a namespace.
    ChildImageSpec {
        pool_id: 1 + (i % 4) as i64,
        pool_namespace: if i % 10 == 0 { "ns1".into() } else { String::new() },
        image_id: format!("{:012x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16),
    }
}

fn children_set() -> ChildImageSpecs {
    (0..CHILDREN).map(child).collect()
}

/// A parent header as stock `create` leaves it, plus a HEAD children set of `set` and
/// rbd-ext's protection (as after the first `child_attach`).
fn parent_header_with(set: &ChildImageSpecs) -> MemContext {
    let mut c = MemContext::existing();
    let o = &mut c.object.as_mut().unwrap().omap;
    let ts = UTime { sec: 1_700_000_000, nsec: 0 }.get_encoding();
    let features = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;
    o.insert(header::SIZE.into(), (1u64 << 30).get_encoding());
    o.insert(header::ORDER.into(), 22u8.get_encoding());
    o.insert(header::FEATURES.into(), features.get_encoding());
    o.insert(header::OBJECT_PREFIX.into(), "rbd_data.10226b8b4567".to_string().get_encoding());
    o.insert(header::SNAP_SEQ.into(), 0u64.get_encoding());
    for k in ["create_timestamp", "access_timestamp", "modify_timestamp"] {
        o.insert(k.into(), ts.clone());
    }
    // Let the real method protect the parent and store the first child, then install the
    // full set.
    let first = set.iter().next().expect("non-empty set").clone();
    call(&mut c, method("child_attach"), &stubs::child_attach(&first).input).expect("first attach");
    c.object.as_mut().unwrap().omap.insert(rbd_ext_cls::types::snap_children_key(SnapId::NOSNAP), set.get_encoding());
    c.logs.clear();
    c
}

fn bench_children(c: &mut Criterion) {
    let set = children_set();
    assert_eq!(set.len(), CHILDREN);
    let bytes = set.get_encoding();
    let mut g = c.benchmark_group("children_10k");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| b.iter(|| black_box(&set).get_encoding()));
    g.bench_function("decode", |b| b.iter(|| ChildImageSpecs::read_bytes(black_box(&bytes)).unwrap()));
    g.throughput(Throughput::Elements(1));

    // One attach of a new child into the 10k set, then its detach (untimed), so every
    // sample sees the same set.
    let mut ctx = parent_header_with(&set);
    let (attach, detach) = (method("child_attach"), method("child_detach"));
    let extra = ChildImageSpec { pool_id: 2, pool_namespace: String::new(), image_id: "7fffffffffff".into() };
    assert!(!set.contains(&extra));
    let (a_in, d_in) = (stubs::child_attach(&extra).input, stubs::child_detach(&extra).input);
    g.bench_function("child_attach_method", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                call(&mut ctx, attach, black_box(&a_in)).unwrap();
                total += t.elapsed();
                call(&mut ctx, detach, &d_in).unwrap();
                ctx.logs.clear();
            }
            total
        })
    });
    // The whole set in one reply (max 0), as `rbd-ext children` asks for it.
    let list = method("children_list");
    let l_in = stubs::children_list(0, None).input;
    g.bench_function("children_list_method", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(call(&mut ctx, list, black_box(&l_in)).unwrap());
            }
            let e = t.elapsed();
            ctx.logs.clear();
            e
        })
    });
    g.finish();
}

// ------------------------------------------------------------------ clone map

/// A clone-map object for MAP_OBJECTS objects, all inherited (`EXISTS_PARENT`), as
/// `clone-standalone` initialises it for a fully written parent.
fn clone_map_ctx() -> MemContext {
    let mut c = MemContext::missing();
    let init = stubs::clone_map_init(MAP_OBJECTS, vec![StateRun { start: 0, len: MAP_OBJECTS, state: CloneMapState::ExistsParent }], false);
    call(&mut c, method("clone_map_init"), &init.input).expect("clone_map_init");
    c.logs.clear();
    c
}

fn bench_clone_map(c: &mut Criterion) {
    use CloneMapState::*;
    let update = method("clone_map_update");
    let mut ctx = clone_map_ctx();
    let mut g = c.benchmark_group("clone_map_2.6M");

    // The copy-up path: PENDING where EXISTS_PARENT, then COPIEDUP where PENDING, on
    // objects spread over the whole map; the next pass sets them back (untimed prefix of
    // each batch), so each timed call changes exactly one entry.
    let stride = 7919u64; // prime: visits blocks all over the map
    let mut next = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("cas_one_object_hit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let obj = next % MAP_OBJECTS;
                next = next.wrapping_add(stride);
                let to_pending = stubs::clone_map_update(obj, 1, Pending, Some(ExistsParent)).input;
                let to_copied = stubs::clone_map_update(obj, 1, CopiedUp, Some(Pending)).input;
                let back = stubs::clone_map_update(obj, 1, ExistsParent, None).input;
                let t = Instant::now();
                call(&mut ctx, update, black_box(&to_pending)).unwrap();
                call(&mut ctx, update, black_box(&to_copied)).unwrap();
                total += t.elapsed();
                call(&mut ctx, update, &back).unwrap();
                ctx.logs.clear();
            }
            // Two calls per iteration: report per call.
            total / 2
        })
    });

    // A compare that does not match (another client got there first): reads, writes nothing.
    let miss = stubs::clone_map_update(MAP_OBJECTS / 2, 1, Pending, Some(Exists)).input;
    g.bench_function("cas_one_object_miss", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                call(&mut ctx, update, black_box(&miss)).unwrap();
            }
            let e = t.elapsed();
            ctx.logs.clear();
            e
        })
    });

    // A flatten batch: 1024 consecutive objects EXISTS_PARENT -> COPIEDUP (and back, untimed).
    for count in [1024u64, MAP_OBJECTS] {
        let start = if count == MAP_OBJECTS { 0 } else { MAP_OBJECTS / 3 };
        let fwd = stubs::clone_map_update(start, count, CopiedUp, Some(ExistsParent)).input;
        let back = stubs::clone_map_update(start, count, ExistsParent, Some(CopiedUp)).input;
        g.throughput(Throughput::Elements(count));
        let label = if count == MAP_OBJECTS { "whole_map".to_string() } else { format!("{count}") };
        g.bench_function(BenchmarkId::new("cas_range", label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    call(&mut ctx, update, black_box(&fwd)).unwrap();
                    total += t.elapsed();
                    call(&mut ctx, update, &back).unwrap();
                    ctx.logs.clear();
                }
                total
            })
        });
    }

    // Paging through the map as `clone-map show|check` does (one get call).
    let get = method("clone_map_get");
    let get_in = stubs::clone_map_get(MAP_OBJECTS / 4, 0).input;
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_page", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(call(&mut ctx, get, black_box(&get_in)).unwrap());
            }
            let e = t.elapsed();
            ctx.logs.clear();
            e
        })
    });
    g.finish();

    // The map is back to all EXISTS_PARENT after every bench above.
    let mut start = 0;
    while start < MAP_OBJECTS {
        let out = call(&mut ctx, get, &stubs::clone_map_get(start, 0).input).unwrap();
        let reply = stubs::decode_clone_map_get(&out).unwrap();
        assert!(reply.states().iter().all(|s| *s == ExistsParent), "map changed at {start}..{}", reply.end());
        start = reply.end();
    }
    ctx.logs.clear();

    let mut g = c.benchmark_group("clone_map_init");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MAP_OBJECTS));
    let init = method("clone_map_init");
    let input = stubs::clone_map_init(MAP_OBJECTS, vec![StateRun { start: 0, len: MAP_OBJECTS, state: ExistsParent }], false).input;
    g.bench_function("2.6M_one_run", |b| {
        b.iter_batched(
            MemContext::missing,
            |mut fresh| {
                call(&mut fresh, init, black_box(&input)).unwrap();
                fresh
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_parent_record, bench_children, bench_clone_map
}
criterion_main!(benches);

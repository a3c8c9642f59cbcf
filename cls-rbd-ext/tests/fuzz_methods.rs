//! In-process fuzz of every `rbd_ext` method: at least 1,000,000 mutated inputs (default;
//! env `FUZZ_ITERS` overrides, `FUZZ_SEED` picks the stream) against [`MemContext`]
//! fixtures that cover every state a method meets on an OSD: no object, an empty object, a
//! non-RBD object, a fresh RBD header, headers with snapshot records, children with each
//! parent type (HEAD attached or detached), protected parents with children, and clone
//! maps of several shapes, parent data objects being back-filled. One fresh fixture in seven
//! has its stored state mutated first (corrupt omap values or map bytes), and 40% of the
//! calls continue from the state the previous call left (sequences such as attach, detach,
//! attach; init, update, resize).
//!
//! Every call is wrapped in `catch_unwind`. The test fails on:
//! - a panic (the plugin's wrapper would turn it into -EIO, but a method must not panic);
//! - an errno outside those the method docs list (EINVAL, ENOENT, ENOEXEC, EIO, EEXIST);
//! - a failed call that changed the object (methods decide before they write), or a read
//!   method that changed it;
//! - a read method's successful output that its client stub cannot decode;
//! - a successful call on sound state that leaves state a later call would call corrupt
//!   (a header key or clone map that no longer decodes);
//! - a clone-map init/update/resize on a sound map whose result differs from the in-memory
//!   model in `stubs` (`clone_map_model_*`), result and errno alike.
//!
//! Inputs come from `fuzz_gen` (shared with the live fuzz `tests/cls_fuzz_live.rs`). The
//! run prints calls per method and the time taken.

mod fuzz_gen;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use fuzz_gen::{child, child_op, remote_record, s3_record, snapshot_record, standalone_record, Corpus, Rng, MAP_OBJECTS, REMOTE_FSID};
use rbd_ext_cls::codec::BufferList;
use rbd_ext_cls::codec::{Codec, UTime};
use rbd_ext_cls::context::MemObject;
use rbd_ext_cls::methods::{Method, METHODS, WR};
use rbd_ext_cls::ops::{BackfillClaimOp, BackfillCompleteOp, CloneMapInitOp, CloneMapResizeOp, CloneMapUpdateManyOp, CloneMapUpdateOp, ParentAttachOp};
use rbd_ext_cls::stubs;
use rbd_ext_cls::types::backfill::{BackfillClaim, BACKFILL_CLAIM_KEY};
use rbd_ext_cls::types::features::*;
use rbd_ext_cls::types::{decode_stored_map, header, unpack, ChildImageSpecs, CloneMapState, ParentProtection, ParentRecord, ProtectionMode, StateRun};
use rbd_ext_cls::{ClsContext, Errno, MemContext};

/// Default number of inputs: see the module docs and the report of the run.
const DEFAULT_ITERS: u64 = 1_000_000;

/// Errnos the method docs list (storage failures cannot happen in memory).
const ALLOWED: [Errno; 6] = [Errno::EINVAL, Errno::ENOENT, Errno::ENOEXEC, Errno::EIO, Errno::EEXIST, Errno::EBUSY];

fn method(name: &str) -> &'static Method {
    rbd_ext_cls::methods::find(name).unwrap_or_else(|| panic!("method {name} registered"))
}

fn call(c: &mut MemContext, name: &str, input: &[u8]) {
    c.call(method(name).call, input).unwrap_or_else(|e| panic!("fixture: {name} failed: {e:?}"));
}

fn put(c: &mut MemContext, key: &str, value: Vec<u8>) {
    c.object.as_mut().expect("object exists").omap.insert(key.into(), value);
}

/// A header as stock `create` leaves it (`rbd create --size 1G`).
fn image_header() -> MemContext {
    let mut c = MemContext::existing();
    let ts = UTime { sec: 1_700_000_000, nsec: 0 }.get_encoding();
    put(&mut c, header::SIZE, (1u64 << 30).get_encoding());
    put(&mut c, header::ORDER, 22u8.get_encoding());
    let f = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;
    put(&mut c, header::FEATURES, f.get_encoding());
    put(&mut c, header::OBJECT_PREFIX, "rbd_data.10226b8b4567".to_string().get_encoding());
    put(&mut c, header::SNAP_SEQ, 0u64.get_encoding());
    for k in ["create_timestamp", "access_timestamp", "modify_timestamp"] {
        put(&mut c, k, ts.clone());
    }
    c
}

fn with_snapshot(mut c: MemContext) -> MemContext {
    put(&mut c, header::SNAP_SEQ, 4u64.get_encoding());
    // The record's bytes are not read by rbd_ext (only the key's presence matters).
    put(&mut c, "snapshot_0000000000000004", vec![8, 8, 4, 0, 0, 0, 4, 0, 0, 0]);
    c
}

fn with_op_features(mut c: MemContext, op: u64) -> MemContext {
    let f = u64::read_bytes(&c.omap()[header::FEATURES]).unwrap() | RBD_FEATURE_OPERATIONS;
    put(&mut c, header::FEATURES, f.get_encoding());
    put(&mut c, header::OP_FEATURES, op.get_encoding());
    c
}

fn attached(mut c: MemContext, record: ParentRecord) -> MemContext {
    call(&mut c, "parent_attach", &ParentAttachOp { record, reattach: false }.get_encoding());
    c
}

fn with_children(mut c: MemContext, n: usize, cluster: &str) -> MemContext {
    for i in 0..n {
        call(&mut c, "child_attach", &child_op(rbd_ext_cls::SnapId::NOSNAP, child(i), cluster).get_encoding());
    }
    c
}

fn clone_map(count: u64, runs: &[(u64, u64, CloneMapState)]) -> MemContext {
    let mut c = MemContext::missing();
    let runs = runs.iter().map(|&(start, len, state)| StateRun { start, len, state }).collect();
    call(&mut c, "clone_map_init", &CloneMapInitOp { object_count: count, runs, force: false }.get_encoding());
    c
}

/// The OSD clock of the fixtures; claims made at it expire 10 minutes later at most.
const CLOCK: (u64, u32) = (1_700_000_000, 0);

/// A parent data object being back-filled: claimed by `owner` for 10 minutes.
fn claimed(owner: &str) -> MemContext {
    let mut c = MemContext::missing();
    c.clock = CLOCK;
    call(&mut c, "backfill_claim", &BackfillClaimOp { owner: owner.into(), ttl_ms: 600_000 }.get_encoding());
    c
}

fn fixtures() -> Vec<(&'static str, MemContext)> {
    use CloneMapState::*;
    let n = MAP_OBJECTS;
    let mut not_rbd = MemContext::existing();
    not_rbd.write_full(b"not an rbd header").unwrap();
    put(&mut not_rbd, "foo", b"bar".to_vec());
    let detached = {
        let mut c = with_snapshot(image_header());
        put(&mut c, header::PARENT, ParentRecord { head_overlap: None, ..snapshot_record(1 << 30) }.get_encoding());
        c
    };
    let mut resized = clone_map(n, &[(0, n, ExistsParent), (100, 50, Exists)]);
    call(&mut resized, "clone_map_resize", &CloneMapResizeOp { object_count: n + 9000, default_state: ExistsParent }.get_encoding());
    let mut all = vec![
        ("missing", MemContext::missing()),
        ("empty", MemContext::existing()),
        ("not_rbd", not_rbd),
        ("header", image_header()),
        ("header_with_snapshot", with_snapshot(image_header())),
        ("header_without_layering", {
            let mut c = image_header();
            put(&mut c, header::FEATURES, RBD_FEATURE_EXCLUSIVE_LOCK.get_encoding());
            c
        }),
        ("child_standalone", with_op_features(attached(image_header(), standalone_record(1 << 29)), RBD_OPERATION_FEATURE_CLONE_CHILD)),
        ("child_remote", attached(image_header(), remote_record(1 << 30))),
        ("child_s3", attached(image_header(), s3_record(1 << 30))),
        ("child_snapshot", attached(with_snapshot(image_header()), snapshot_record(1 << 30))),
        ("child_snapshot_detached", detached),
        ("parent_one_child", with_children(image_header(), 1, "")),
        ("parent_three_children", with_children(image_header(), 3, "")),
        ("parent_remote_child", with_children(image_header(), 1, REMOTE_FSID)),
        ("parent_local_and_remote_children", with_children(with_children(image_header(), 2, ""), 1, REMOTE_FSID)),
        ("parent_children_and_op_features", with_children(with_op_features(image_header(), RBD_OPERATION_FEATURE_CLONE_PARENT), 2, "")),
        ("clone_map", clone_map(n, &[(0, n, ExistsParent), (5, 100, Exists), (8190, 4, CopiedUp)])),
        ("clone_map_small_odd", clone_map(5, &[(1, 3, Pending)])),
        ("clone_map_empty", clone_map(0, &[])),
        ("clone_map_resized", resized),
        ("data_claimed", claimed(fuzz_gen::OWNER)),
        ("data_claimed_by_other", claimed("fuzzer-c")),
        ("data_filled", {
            let mut c = claimed(fuzz_gen::OWNER);
            call(&mut c, "backfill_complete", &BackfillCompleteOp { owner: fuzz_gen::OWNER.into(), data: BufferList(vec![7; 4096]) }.get_encoding());
            c
        }),
    ];
    for (_, c) in &mut all {
        c.logs.clear();
        c.clock = CLOCK;
    }
    all
}

/// Corrupts the stored state: one omap value or the object's data.
fn mutate_state(rng: &mut Rng, c: &mut MemContext) {
    let Some(o) = c.object.as_mut() else { return };
    if o.data.is_empty() || (!o.omap.is_empty() && rng.chance(50)) {
        if o.omap.is_empty() {
            return;
        }
        let k = rng.below(o.omap.len() as u64) as usize;
        let key = o.omap.keys().nth(k).cloned().unwrap();
        let v = o.omap.get_mut(&key).unwrap();
        fuzz_gen::mutate_once(rng, v, &[]);
    } else {
        // Maps are larger than inputs: hit the header and CRC table as often as the data.
        let len = o.data.len() as u64;
        match rng.below(4) {
            0 => {
                let i = rng.below(len.min(32)) as usize;
                o.data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = (len - 1 - rng.below(len.min(64))) as usize;
                o.data[i] ^= 1 << rng.below(8);
            }
            2 => {
                let i = rng.below(len) as usize;
                o.data[i] ^= 1 << rng.below(8);
            }
            _ => fuzz_gen::mutate_once(rng, &mut o.data, &[]),
        }
    }
}

/// Keys whose stored form rbd_ext reads, with their decoders.
fn sound_state(o: &MemObject, check_map: bool) -> Result<(), String> {
    fn check<T: Codec>(o: &MemObject, key: &str) -> Result<(), String> {
        match o.omap.get(key) {
            Some(v) => T::read_bytes(v).map(|_| ()).map_err(|e| format!("key {key}: {e}")),
            None => Ok(()),
        }
    }
    check::<u64>(o, header::FEATURES)?;
    check::<u64>(o, header::OP_FEATURES)?;
    check::<u64>(o, header::SIZE)?;
    check::<ParentRecord>(o, header::PARENT)?;
    check::<ParentProtection>(o, header::RBD_EXT_PROTECT)?;
    check::<BackfillClaim>(o, BACKFILL_CLAIM_KEY)?;
    let mut children = false;
    for (k, v) in &o.omap {
        if k == "snap_children_000000000000head" || k.starts_with(header::RBD_EXT_REMOTE_CHILDREN_PREFIX) {
            let set = ChildImageSpecs::read_bytes(v).map_err(|e| format!("key {k}: {e}"))?;
            if set.is_empty() {
                return Err(format!("an empty children set was left behind under {k}"));
            }
            children = true;
        }
    }
    // A parent with children is protected; protection never outlives the children.
    let features = o.omap.get(header::FEATURES).map(|v| u64::read_bytes(v).unwrap()).unwrap_or(0);
    let op = o.omap.get(header::OP_FEATURES).map(|v| u64::read_bytes(v).unwrap()).unwrap_or(0);
    // Protected = the record is there and the bits of the mode it applies are set (strict:
    // the op-feature bits too; clones: the migration header too).
    let protected = match o.omap.get(header::RBD_EXT_PROTECT).and_then(|v| ParentProtection::read_bytes(v).ok()) {
        Some(p) => match p.applied() {
            ProtectionMode::Strict => features & PARENT_PROTECTION_FEATURES == PARENT_PROTECTION_FEATURES && op & OP_FEATURE_RBD_EXT_PROTECTED != 0,
            ProtectionMode::Clones => features & CLONES_PROTECTION_FEATURES == CLONES_PROTECTION_FEATURES && o.omap.contains_key(header::MIGRATION),
        },
        None => false,
    };
    if children != protected && o.omap.contains_key(header::FEATURES) {
        return Err(format!("children {children} but protected {protected}"));
    }
    if check_map && !o.data.is_empty() {
        let (layout, _) = decode_stored_map(&o.data).map_err(|e| format!("clone map: {e}"))?;
        if layout.object_size() != o.data.len() as u64 {
            return Err("clone map: object size".into());
        }
    }
    Ok(())
}

fn map_states(o: &Option<MemObject>) -> Option<Vec<CloneMapState>> {
    let d = &o.as_ref()?.data;
    let (layout, data) = decode_stored_map(d).ok()?;
    Some(unpack(data, 0, layout.object_count()))
}

/// Whether the stored map in `o` holds exactly `states` (compared packed: unpacking every
/// entry in a debug build would cost more than the call under test).
fn map_equals(o: &Option<MemObject>, states: &[CloneMapState]) -> bool {
    let Some(o) = o else { return false };
    let Ok((layout, data)) = decode_stored_map(&o.data) else {
        return false;
    };
    if layout.object_count() != states.len() as u64 {
        return false;
    }
    let packed: Vec<u8> = states.chunks(2).map(|p| p[0].to_u8() << 4 | p.get(1).map_or(0, |s| s.to_u8())).collect();
    packed == data
}

/// What the in-memory model says a clone-map write does to `before` (a sound map).
fn model(name: &str, before: &[CloneMapState], input: &[u8]) -> Option<Result<Vec<CloneMapState>, Errno>> {
    let mut m = before.to_vec();
    match name {
        "clone_map_update" => Some(match CloneMapUpdateOp::read_bytes(input) {
            Err(_) => Err(Errno::EINVAL),
            Ok(op) => stubs::clone_map_model_update(&mut m, op.start, op.count, op.new_state, op.expected_state).map(|_| m),
        }),
        "clone_map_update_many" => Some(match CloneMapUpdateManyOp::read_bytes(input) {
            Err(_) => Err(Errno::EINVAL),
            Ok(op) => stubs::clone_map_model_update_many(&mut m, &op.updates).map(|_| m),
        }),
        "clone_map_resize" => Some(match CloneMapResizeOp::read_bytes(input) {
            Err(_) => Err(Errno::EINVAL),
            Ok(op) => stubs::clone_map_model_resize(&mut m, op.object_count, op.default_state).map(|()| m),
        }),
        "clone_map_init" => Some(match CloneMapInitOp::read_bytes(input) {
            Err(_) => Err(Errno::EINVAL),
            Ok(op) if op.validate().is_err() => Err(Errno::EINVAL),
            Ok(op) if !op.force => Err(Errno::EEXIST),
            Ok(op) => stubs::clone_map_model_init(op.object_count, &op.runs),
        }),
        _ => None,
    }
}

/// Whether a successful read method's output decodes with its client stub.
fn output_decodes(name: &str, out: &[u8]) -> bool {
    match name {
        "get_version" => stubs::decode_reply::<String>(out).is_ok(),
        "parent_get" => stubs::decode_parent_get(out).is_ok(),
        "children_list" => stubs::decode_children_list(out).is_ok(),
        "clone_map_get" => stubs::decode_clone_map_get(out).is_ok(),
        _ => true,
    }
}

/// Largest clone map a fuzz input may ask for in memory: a mutated count anywhere up to
/// the 64 Mi cap would spend ~1 s per call in a debug build. Larger valid counts are
/// exercised by the method unit tests and through the OSD (`tests/cls_clone_map_live.rs`).
const MAX_FUZZ_MAP: u64 = 1 << 16;

fn too_big(name: &str, input: &[u8]) -> bool {
    match name {
        "clone_map_init" => CloneMapInitOp::read_bytes(input).map(|op| op.object_count > MAX_FUZZ_MAP && op.validate().is_ok()).unwrap_or(false),
        "clone_map_resize" => CloneMapResizeOp::read_bytes(input).map(|op| op.object_count > MAX_FUZZ_MAP && op.validate().is_ok()).unwrap_or(false),
        _ => false,
    }
}

#[derive(Default)]
struct Stats {
    calls: BTreeMap<&'static str, [u64; 2]>,
    nanos: BTreeMap<&'static str, u128>,
    errnos: BTreeMap<(&'static str, i32), u64>,
    state_mutated: u64,
    chained: u64,
    model_checked: u64,
    capped: u64,
    failures: Vec<String>,
}

fn run(seed: u64, iters: u64) -> Stats {
    let methods: Vec<&'static Method> = METHODS.iter().filter(|m| m.name != "test_panic").collect();
    let names: Vec<&str> = methods.iter().map(|m| m.name).collect();
    let corpus = Corpus::new(&names);
    let fixtures = fixtures();
    let fixture_states: Vec<Option<Vec<CloneMapState>>> = fixtures.iter().map(|(_, c)| map_states(&c.object)).collect();
    let mut rng = Rng::new(seed);
    let mut st = Stats::default();
    // The state a call left, which the next call may continue from (sequences of calls on
    // one object: attach then detach, init then update then resize...).
    let mut carry: Option<(usize, MemContext, bool)> = None;
    let mut i = 0;
    while i < iters {
        let mi = rng.below(methods.len() as u64) as usize;
        let m = methods[mi];
        // Mostly the fixtures the method is meant for, so calls get past the first checks.
        let fi = if rng.chance(70) {
            let family: &[&str] = match m.name {
                n if n.starts_with("clone_map") => &["clone_map"],
                n if n.starts_with("child") => &["parent_", "header"],
                n if n.starts_with("parent") || n == "set_size" => &["child_", "header"],
                n if n.starts_with("backfill") => &["data_", "missing"],
                _ => &[""],
            };
            let fit: Vec<usize> = (0..fixtures.len()).filter(|&i| family.iter().any(|p| fixtures[i].0.starts_with(p))).collect();
            *rng.pick(&fit)
        } else {
            rng.below(fixtures.len() as u64) as usize
        };
        let mut input = corpus.input(&mut rng, mi);
        if too_big(m.name, &input) {
            st.capped += 1;
            continue; // not counted: draw another input
        }
        i += 1;
        let prev = carry.take().filter(|_| rng.chance(40));
        let carried = prev.is_some();
        let (fi, mut ctx, mutated) = match prev {
            Some(p) => {
                st.chained += 1;
                p
            }
            None => {
                let mut ctx = fixtures[fi].1.clone();
                let mutated = rng.below(7) == 0;
                if mutated {
                    mutate_state(&mut rng, &mut ctx);
                    st.state_mutated += 1;
                }
                (fi, ctx, mutated)
            }
        };
        let (fname, fixture) = &fixtures[fi];
        // Differential check against the model, on a quarter of the clone-map writes to
        // sound maps (the comparison costs more than the call in a debug build).
        let model_check = !mutated && !carried && fname.starts_with("clone_map") && m.flags & WR != 0 && m.name.starts_with("clone_map") && rng.chance(25);
        // The object before the call: the fixture's, unless its state was mutated or carried.
        let own_before = (mutated || carried).then(|| ctx.object.clone());
        let before = own_before.as_ref().unwrap_or(&fixture.object);
        let t = Instant::now();
        let res = catch_unwind(AssertUnwindSafe(|| {
            let mut out = Vec::new();
            let r = (m.call)(&mut ctx, &input, &mut out);
            (r, out)
        }));
        let fail = |st: &mut Stats, what: String| {
            if st.failures.len() < 20 {
                st.failures
                    .push(format!("{what}: method {} fixture {fname} (state mutated: {mutated}, after earlier calls: {carried}) input {:02x?}", m.name, input));
            }
        };
        let (r, out) = match res {
            Ok(v) => v,
            Err(p) => {
                let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                fail(&mut st, format!("panic {msg:?}"));
                continue;
            }
        };
        st.calls.entry(m.name).or_default()[r.is_ok() as usize] += 1;
        *st.nanos.entry(m.name).or_default() += t.elapsed().as_nanos();
        match r {
            Err(e) => {
                *st.errnos.entry((m.name, e.0)).or_default() += 1;
                if !ALLOWED.contains(&e) {
                    fail(&mut st, format!("errno {e:?} not in the documented set"));
                }
                if ctx.object != *before {
                    fail(&mut st, format!("failed call ({e:?}) modified the object"));
                }
            }
            Ok(()) => {
                if m.flags & WR == 0 && ctx.object != *before {
                    fail(&mut st, "a read method modified the object".into());
                }
                if !output_decodes(m.name, &out) {
                    fail(&mut st, format!("output does not decode: {out:02x?}"));
                }
                if !mutated {
                    if let Some(o) = &ctx.object {
                        // A map the model check below compares is verified there.
                        let data_changed = before.as_ref().map(|b| &b.data) != Some(&o.data);
                        let map_written = data_changed && m.name.starts_with("clone_map");
                        if let Err(why) = sound_state(o, map_written && !model_check) {
                            fail(&mut st, format!("success left unsound state: {why}"));
                        }
                    }
                }
            }
        }
        // Differential check of the clone-map writes on sound maps.
        if model_check {
            let states = &fixture_states[fi];
            if let Some(expect) = model(m.name, states.as_ref().expect("fixture map decodes"), &input) {
                st.model_checked += 1;
                let ok = match (&r, &expect) {
                    (Ok(()), Ok(want)) => map_equals(&ctx.object, want),
                    (Err(e), Err(want)) => e == want,
                    _ => false,
                };
                if !ok {
                    fail(&mut st, format!("differs from the model: got {r:?}, model {:?}", expect.as_ref().map(|v| v.len())));
                }
            }
        }
        input.clear();
        carry = Some((fi, ctx, mutated));
    }
    st
}

#[test]
fn every_method_survives_mutated_inputs() {
    let iters: u64 = std::env::var("FUZZ_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_ITERS);
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_0001);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8) as u64;
    // Panics are caught and reported below; keep the default hook from printing each one.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let t0 = Instant::now();
    let results: Vec<Stats> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let n = iters / threads + u64::from(t < iters % threads);
                s.spawn(move || run(seed.wrapping_add(t.wrapping_mul(0x1234_5678_9abc_def1)), n))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("fuzz thread")).collect()
    });
    std::panic::set_hook(hook);
    let secs = t0.elapsed().as_secs_f64();

    let mut total = Stats::default();
    for st in results {
        for (k, v) in st.calls {
            let e = total.calls.entry(k).or_default();
            e[0] += v[0];
            e[1] += v[1];
        }
        for (k, v) in st.nanos {
            *total.nanos.entry(k).or_default() += v;
        }
        for (k, v) in st.errnos {
            *total.errnos.entry(k).or_default() += v;
        }
        total.state_mutated += st.state_mutated;
        total.chained += st.chained;
        total.model_checked += st.model_checked;
        total.capped += st.capped;
        total.failures.extend(st.failures);
    }
    let calls: u64 = total.calls.values().map(|v| v[0] + v[1]).sum();
    eprintln!(
        "fuzz_methods: {calls} calls in {secs:.1} s on {threads} threads (seed {seed:#x}); {} on mutated state, \
         {} on the state earlier calls left, {} clone-map writes checked against the model, {} oversized map \
         requests redrawn",
        total.state_mutated, total.chained, total.model_checked, total.capped
    );
    for (name, [err, ok]) in &total.calls {
        let errs: Vec<String> =
            total.errnos.iter().filter(|((n, _), _)| n == name).map(|((_, e), c)| format!("{}={c}", Errno(*e).name().unwrap_or("?"))).collect();
        let ms = total.nanos.get(name).copied().unwrap_or(0) / 1_000_000;
        eprintln!("  {name:<20} ok {ok:>7}  err {err:>7}  {ms:>6} ms in calls  [{}]", errs.join(" "));
    }
    assert!(total.failures.is_empty(), "{} failures, first ones:\n{}", total.failures.len(), total.failures.join("\n"));
    assert_eq!(calls, iters);
    // Every method ran, and every method both succeeded and failed at least once.
    assert_eq!(total.calls.len(), METHODS.iter().filter(|m| m.name != "test_panic").count());
    // Every method with seeds both succeeded and failed (a method added since gets only
    // mutated empty inputs until `fuzz_gen::seeds` learns it: say so).
    for (name, [err, ok]) in &total.calls {
        if !fuzz_gen::SEEDED.contains(name) {
            eprintln!("  note: no seeds for {name} in fuzz_gen: add them");
        } else if iters >= 100_000 {
            assert!(*ok > 0, "{name} never succeeded");
            assert!(*err > 0 || *name == "get_version", "{name} never failed");
        }
    }
}

/// Writes the seeds of `fuzz_gen` as a starting corpus for the cargo-fuzz targets in
/// `fuzz/` (`fuzz/corpus/method_<name>/`, each input prefixed by every fixture selector
/// byte): `cargo test -p rbd-ext-cls --test fuzz_methods -- --ignored write_cargo_fuzz_corpus`.
#[test]
#[ignore = "writes files; run by hand before a cargo-fuzz session"]
fn write_cargo_fuzz_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for m in METHODS.iter().filter(|m| m.name != "test_panic") {
        let dir = root.join(format!("method_{}", m.name));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in fuzz_gen::seeds(m.name).iter().enumerate() {
            for sel in 0u8..8 {
                std::fs::write(dir.join(format!("seed-{i}-{sel}")), [&[sel][..], seed].concat()).unwrap();
            }
        }
    }
}

//! 10,000 random and mutated inputs to the `rbd_ext` methods through a real OSD (issue 3):
//! every call must be answered with 0 or a negative errno from the documented set, a read
//! method's successful output must decode with its client stub, no method may panic (a
//! caught panic returns EIO like corrupt state does, so the plugin's panic lines are counted
//! in the OSD logs), and at the end every OSD is still up and the class still answers
//! `get_version`. Needs the plugin built with `test-methods` (one deliberate panic marks the
//! end of the run in the log).
//!
//! Targets: headers of images made by stock `rbd create` (a plain one, a standalone child
//! with an rbd_ext parent record, a parent with a HEAD child), a clone map object, an empty
//! object and missing objects. Inputs come from `cls-rbd-ext/tests/fuzz_gen` (the generator
//! of the in-process fuzz): valid encodings, mutated (bit flips, truncations, length
//! prefixes, splices) or random. Read methods go in read ops, write methods in write ops,
//! as aio with at most 32 in flight. The headers are restored afterwards and removed with
//! stock `rbd rm`.
//!
//! `FUZZ_LIVE_ITERS` (default 10,000) and `FUZZ_SEED` tune the run.
//! `eval "$(qa/cluster up)" && cargo test --features live --test cls_fuzz_live`.

mod common;

#[path = "../cls-rbd-ext/tests/fuzz_gen/mod.rs"]
mod fuzz_gen;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use fuzz_gen::{child_op, Corpus, Rng};
use rbd_ext::rados::{ReadOp, StepOut, WriteOp, WriteStep};
use rbd_ext::Errno;
use rbd_ext_cls::codec::{Codec, SnapId};
use rbd_ext_cls::methods::{METHODS, WR};
use rbd_ext_cls::ops::{BackfillClaimOp, CloneMapInitOp, ParentAttachOp};
use rbd_ext_cls::stubs::{self, Call};
use rbd_ext_cls::types::{CloneMapState, StateRun};
use rbd_ext_cls::{CLASS_NAME, VERSION};

const WINDOW: usize = 32;

/// Errnos the method docs list, plus EOPNOTSUPP for the unknown method name mixed in.
/// EIO is also what a caught panic returns: panics are counted in the OSD logs instead.
const ALLOWED: [Errno; 7] = [Errno::EINVAL, Errno::ENOENT, Errno::ENOEXEC, Errno::EIO, Errno::EEXIST, Errno::EBUSY, Errno::EOPNOTSUPP];

struct Target {
    kind: &'static str,
    oid: String,
}

fn rbd_image(prefix: &str) -> (String, String) {
    let name = common::unique(prefix);
    common::stock_ok("rbd", &["create", "--size", "64M", &format!("rbd/{name}")]);
    let (loc, _) = rbd_ext::header::locate(&common::cluster(), &rbd_ext::ImageSpec::new("rbd", &name)).unwrap();
    (name, loc.id)
}

fn output_decodes(method: &str, out: &[u8]) -> bool {
    match method {
        "get_version" => stubs::decode_reply::<String>(out).is_ok(),
        "parent_get" => stubs::decode_parent_get(out).is_ok(),
        "children_list" => stubs::decode_children_list(out).is_ok(),
        "clone_map_get" => stubs::decode_clone_map_get(out).is_ok(),
        _ => true,
    }
}

#[test]
fn ten_thousand_mutated_inputs_leave_the_osd_up() {
    let iters: usize = std::env::var("FUZZ_LIVE_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x11fe_0003);
    let io = common::rbd_pool();

    // The targets.
    let (plain_name, plain_id) = rbd_image("cls-fuzz-plain");
    let (child_name, child_id) = rbd_image("cls-fuzz-child");
    let (parent_name, parent_id) = rbd_image("cls-fuzz-parent");
    let images = [(plain_name, plain_id), (child_name, child_id), (parent_name, parent_id)];
    let hdr = |id: &str| format!("rbd_header.{id}");
    // Stock omap of each header, restored at the end.
    let originals: Vec<Vec<(String, Vec<u8>)>> = images.iter().map(|(_, id)| io.omap_list(&hdr(id), "").unwrap()).collect();
    let rec = fuzz_gen::standalone_record(32 << 20);
    io.exec_write(&hdr(&images[1].1), &stubs::parent_attach(&rec, false)).unwrap();
    io.exec_write(
        &hdr(&images[2].1),
        &Call { class: CLASS_NAME, method: "child_attach", input: child_op(SnapId::NOSNAP, fuzz_gen::child(0), "").get_encoding() },
    )
    .unwrap();
    let map_oid = common::unique("cls-fuzz-map");
    let init = CloneMapInitOp {
        object_count: fuzz_gen::MAP_OBJECTS,
        runs: vec![StateRun { start: 0, len: fuzz_gen::MAP_OBJECTS, state: CloneMapState::ExistsParent }],
        force: false,
    };
    io.exec_write(&map_oid, &Call { class: CLASS_NAME, method: "clone_map_init", input: init.get_encoding() }).unwrap();
    let empty_oid = common::unique("cls-fuzz-empty");
    io.write_full(&empty_oid, b"").unwrap();
    // A parent data object being back-filled (claimed for 10 minutes).
    let data_oid = common::unique("cls-fuzz-data");
    let claim = BackfillClaimOp { owner: fuzz_gen::OWNER.into(), ttl_ms: 600_000 };
    io.exec_write(&data_oid, &Call { class: CLASS_NAME, method: "backfill_claim", input: claim.get_encoding() }).unwrap();
    let mut targets = vec![
        Target { kind: "data", oid: data_oid.clone() },
        Target { kind: "header", oid: hdr(&images[0].1) },
        Target { kind: "child", oid: hdr(&images[1].1) },
        Target { kind: "parent", oid: hdr(&images[2].1) },
        Target { kind: "clone_map", oid: map_oid.clone() },
        Target { kind: "empty", oid: empty_oid.clone() },
    ];
    for i in 0..4 {
        targets.push(Target { kind: "missing", oid: format!("{}-{i}", common::unique("cls-fuzz-missing")) });
    }

    let methods: Vec<&'static str> = METHODS.iter().map(|m| m.name).filter(|n| *n != "test_panic").chain(["no_such_method"]).collect();
    let corpus = Corpus::new(&methods);
    let mut rng = Rng::new(seed);
    let mut rcs: BTreeMap<(&str, i32), u64> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let panics_before = common::osd_panic_lines().len();
    let t0 = Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut handle = |method: &'static str, t: &'static str, input: Vec<u8>, r: rbd_ext::rados::OpResult| {
        let rc = r.rc;
        *rcs.entry((method, rc)).or_default() += 1;
        let ok = rc == 0 || (rc < 0 && ALLOWED.contains(&Errno(-rc)));
        if !ok && failures.len() < 20 {
            failures.push(format!("{method} on {t}: rc {rc}, input {input:02x?}"));
        }
        if let (0, Some((_, StepOut::Data(out)))) = (rc, r.steps.first()) {
            if !output_decodes(method, out) && failures.len() < 20 {
                failures.push(format!("{method} on {t}: output does not decode: {out:02x?}"));
            }
        }
    };
    rt.block_on(async {
        let mut inflight = VecDeque::with_capacity(WINDOW);
        for _ in 0..iters {
            if inflight.len() == WINDOW {
                let (method, t, input, op) = inflight.pop_front().unwrap();
                handle(method, t, input, op.await);
            }
            let mi = if rng.chance(1) { methods.len() - 1 } else { rng.below(methods.len() as u64 - 1) as usize };
            let method = methods[mi];
            // Mostly a target the method is meant for.
            let ti = if rng.chance(60) {
                let fit: Vec<usize> = (0..targets.len())
                    .filter(|&i| match method {
                        m if m.starts_with("clone_map") => targets[i].kind == "clone_map",
                        m if m.starts_with("child") => targets[i].kind == "parent",
                        m if m.starts_with("parent") || m == "set_size" => targets[i].kind == "child",
                        m if m.starts_with("backfill") => {
                            matches!(targets[i].kind, "data" | "missing")
                        }
                        _ => true,
                    })
                    .collect();
                *rng.pick(&fit)
            } else {
                rng.below(targets.len() as u64) as usize
            };
            let t = &targets[ti];
            let input = corpus.input(&mut rng, mi);
            let call = Call { class: CLASS_NAME, method, input: input.clone() };
            let write = rbd_ext_cls::methods::find(method).map_or(rng.chance(50), |m| m.flags & WR != 0);
            let op = if write { io.aio_write(&t.oid, &WriteOp::default().exec(&call), 0) } else { io.aio_read(&t.oid, &ReadOp::default().exec(&call), 0) }
                .expect("submit aio op");
            inflight.push_back((method, t.kind, input, op));
        }
        while let Some((method, t, input, op)) = inflight.pop_front() {
            handle(method, t, input, op.await);
        }
    });
    let secs = t0.elapsed().as_secs_f64();

    let mut per_method: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((m, rc), n) in &rcs {
        let name = if *rc == 0 { "0".to_string() } else { Errno(-rc).name().unwrap_or("?").to_string() };
        per_method.entry(m).or_default().push(format!("{name}={n}"));
    }
    let total: u64 = rcs.values().sum();
    eprintln!("cls_fuzz_live: {total} calls through the OSD in {secs:.1} s (seed {seed:#x}, {WINDOW} in flight)");
    for (m, v) in &per_method {
        eprintln!("  {m:<20} {}", v.join(" "));
    }
    assert_eq!(total, iters as u64, "every call answered");
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // No method panicked. A caught panic returns EIO, which corrupt stored state also returns,
    // so the plugin's log lines are counted. One deliberate panic (test_panic) after the fuzz
    // marks the end: once its line is in the log, every earlier one is too, and the count is
    // shown to see panics at all.
    let sentinel = io.exec(&empty_oid, &Call { class: CLASS_NAME, method: "test_panic", input: Vec::new() });
    assert_eq!(sentinel.unwrap_err().errno(), Errno::EIO, "test_panic (the plugin must be built with --features test-methods)");
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let new = loop {
        let lines = common::osd_panic_lines();
        let new = lines.get(panics_before..).unwrap_or_default().to_vec();
        if new.iter().any(|l| l.contains("test_panic")) || Instant::now() > deadline {
            break new;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(new.iter().any(|l| l.contains("test_panic")), "the sentinel panic never reached the OSD log: panics are not being counted");
    let fuzz_panics: Vec<&String> = new.iter().filter(|l| !l.contains("test_panic")).collect();
    assert!(
        fuzz_panics.is_empty(),
        "{} method panics during the fuzz (OSD log):\n{}",
        fuzz_panics.len(),
        fuzz_panics.iter().take(10).map(|l| l.as_str()).collect::<Vec<_>>().join("\n")
    );

    // The OSD is up and serves the class.
    assert!(common::all_osds_up(), "an OSD went down during the fuzz");
    let out = io.exec(&empty_oid, &stubs::get_version()).expect("get_version after the fuzz");
    assert_eq!(String::read_bytes(&out).unwrap(), VERSION);

    // Restore the stock headers (omap as created, no data) and remove the images with rbd.
    for ((name, id), omap) in images.iter().zip(&originals) {
        let oid = hdr(id);
        let now: Vec<String> = io.omap_list(&oid, "").unwrap().into_iter().map(|(k, _)| k).collect();
        let op = WriteOp::default().step(WriteStep::OmapRmKeys(now)).step(WriteStep::OmapSet(omap.clone())).step(WriteStep::Truncate(0));
        io.write(&oid, &op).unwrap();
        common::stock_ok("rbd", &["rm", "--no-progress", &format!("rbd/{name}")]);
    }
    for t in &targets {
        if matches!(t.kind, "clone_map" | "empty" | "missing" | "data") {
            let _ = io.remove(&t.oid);
        }
    }
    // Keep the parent-attach encoding honest with the seeds (a sanity check on the corpus).
    assert!(ParentAttachOp::read_bytes(&fuzz_gen::seeds("parent_attach")[0]).is_ok());
}

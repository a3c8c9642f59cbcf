//! The clone map at the size of a 10 TiB child (2,621,440 objects of 4 MiB) through a real
//! OSD (issue 3): `clone_map_init` with a few runs, 1,200 random compare-and-set updates
//! checked against the in-memory model (`stubs::clone_map_model_update`), a full load (one
//! call and paged) equal to the model, then corruption detection: a byte of the stored
//! object flipped with stock `rados get` / `rados put` makes `clone_map_get` and
//! `clone_map_update` over that block -EIO (and the OSD log names the block) while ranges
//! that miss it still answer; restoring the byte heals it.
//!
//! `eval "$(qa/cluster up)" && cargo test --features live --test cls_clone_map_live`.

mod common;

use common::fsx::Rng;

use std::time::Instant;

use rbd_ext::rados::IoCtx;
use rbd_ext::Errno;
use rbd_ext_cls::stubs;
use rbd_ext_cls::types::{CloneMapLayout, CloneMapState, StateRun};

use CloneMapState::*;

/// Objects of a 10 TiB image with 4 MiB objects.
const N: u64 = 2_621_440;
const UPDATES: usize = 1_200;

/// A random clone-map state.
fn random_state(rng: &mut Rng) -> CloneMapState {
    CloneMapState::ALL[rng.below(6) as usize]
}

fn get(io: &IoCtx, oid: &str, start: u64, count: u64) -> Result<Vec<CloneMapState>, Errno> {
    let out = io.exec(oid, &stubs::clone_map_get(start, count)).map_err(|e| e.errno())?;
    let reply = stubs::decode_clone_map_get(&out).expect("reply decodes");
    assert_eq!((reply.object_count, reply.start), (N, start));
    Ok(reply.states())
}

/// The whole map, page by page (`page` entries per call; 0 = as many as the OSD gives).
fn load(io: &IoCtx, oid: &str, page: u64) -> Result<Vec<CloneMapState>, Errno> {
    let mut all = Vec::with_capacity(N as usize);
    while (all.len() as u64) < N {
        let start = all.len() as u64;
        let count = if page == 0 { 0 } else { page.min(N - start) };
        let got = get(io, oid, start, count)?;
        assert!(!got.is_empty(), "no progress at {start}");
        all.extend(got);
    }
    Ok(all)
}

fn first_diff(a: &[CloneMapState], b: &[CloneMapState]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then_some(a.len().min(b.len())))
}

/// Flips one byte of the stored object with stock `rados get` / `rados put`; returns the
/// original object so it can be put back.
fn flip_with_rados(oid: &str, off: u64, mask: u8) -> Vec<u8> {
    let path = std::env::temp_dir().join(common::unique("clone-map-obj"));
    let p = path.to_str().unwrap();
    common::stock_ok("rados", &["-p", "rbd", "get", oid, p]);
    let orig = std::fs::read(&path).unwrap();
    let mut bad = orig.clone();
    bad[off as usize] ^= mask;
    std::fs::write(&path, &bad).unwrap();
    common::stock_ok("rados", &["-p", "rbd", "put", oid, p]);
    std::fs::remove_file(&path).ok();
    orig
}

fn put_back(oid: &str, data: &[u8]) {
    let path = std::env::temp_dir().join(common::unique("clone-map-obj"));
    std::fs::write(&path, data).unwrap();
    common::stock_ok("rados", &["-p", "rbd", "put", oid, path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
}

/// The OSD logs of the test cluster (`$RBD_EXT_CLUSTER_DIR/log/osd.*.log`) with their
/// current lengths, to look at what is logged from now on.
fn osd_logs() -> Vec<(std::path::PathBuf, u64)> {
    let Ok(dir) = std::env::var("RBD_EXT_CLUSTER_DIR") else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(std::path::Path::new(&dir).join("log")) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("osd.") && n.ends_with(".log")))
        .map(|p| {
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p, len)
        })
        .collect()
}

/// Whether an OSD logged a line containing `needle` since `marks` were taken (true when the
/// harness's logs are not where expected: the check is a bonus).
fn osd_logged_since(marks: &[(std::path::PathBuf, u64)], needle: &str) -> bool {
    if marks.is_empty() {
        return true;
    }
    marks.iter().any(|(p, from)| std::fs::read(p).map(|b| String::from_utf8_lossy(&b[(*from as usize).min(b.len())..]).contains(needle)).unwrap_or(false))
}

#[test]
fn clone_map_of_a_10_tib_child_through_the_osd() {
    let io = common::rbd_pool();
    let oid = rbd_ext_cls::types::clone_map_object(&common::unique("clonemap10t").replace('-', ""));
    let mut rng = Rng(0x10_7eb1_c10e);

    // Init: what a child of a sparse parent starts with.
    let runs = vec![
        StateRun { start: 0, len: 2_000_000, state: ExistsParent },
        StateRun { start: 100_000, len: 5_000, state: Exists },
        StateRun { start: 1_000_000, len: 123_457, state: NonExistent },
        StateRun { start: N - 1, len: 1, state: CopiedUp },
    ];
    let mut model = stubs::clone_map_model_init(N, &runs).unwrap();
    let t = Instant::now();
    io.exec_write(&oid, &stubs::clone_map_init(N, runs.clone(), false)).unwrap();
    let t_init = t.elapsed();
    let layout = CloneMapLayout::new(N);
    assert_eq!(io.stat(&oid).unwrap(), layout.object_size(), "stored size");
    assert_eq!(io.exec_write(&oid, &stubs::clone_map_init(N, runs, false)).unwrap_err().errno(), Errno::EEXIST);

    // Random compare-and-set updates, checked against the model as they go.
    let t = Instant::now();
    let mut changed_total = 0;
    for i in 0..UPDATES {
        let start = rng.below(N);
        let count = match rng.below(10) {
            0..=6 => 1 + rng.below(64),
            7 | 8 => 1 + rng.below(20_000),
            _ => 1 + rng.below(300_000),
        }
        .min(N - start);
        let new = random_state(&mut rng);
        // Half the time expect what the model holds at `start` (the CAS mostly wins).
        let expected = match rng.below(4) {
            0 => None,
            1 => Some(random_state(&mut rng)),
            _ => Some(model[start as usize]),
        };
        changed_total += stubs::clone_map_model_update(&mut model, start, count, new, expected).unwrap();
        io.exec_write(&oid, &stubs::clone_map_update(start, count, new, expected)).unwrap();
        if i % 100 == 99 {
            // Read back a window around this update.
            let s = start.saturating_sub(5_000);
            let c = (count + 10_000).min(N - s);
            let got = get(&io, &oid, s, c).unwrap();
            assert_eq!(first_diff(&got, &model[s as usize..(s + c) as usize]), None, "after update {i}");
        }
    }
    let t_updates = t.elapsed();
    // Updates out of range are refused and change nothing.
    assert_eq!(io.exec_write(&oid, &stubs::clone_map_update(N - 1, 2, Exists, None)).unwrap_err().errno(), Errno::EINVAL);

    // Full load, in one call and paged, equals the model.
    let t = Instant::now();
    let all = load(&io, &oid, 0).unwrap();
    let t_load = t.elapsed();
    assert_eq!(all.len() as u64, N);
    assert_eq!(first_diff(&all, &model), None, "full load");
    let paged = load(&io, &oid, 100_003).unwrap();
    assert_eq!(first_diff(&paged, &model), None, "paged load");
    eprintln!(
        "clone map of {N} objects ({} bytes): init {:.0?}, {UPDATES} CAS updates ({changed_total} entries changed) \
         {:.1?}, full load {:.0?}",
        layout.object_size(),
        t_init,
        t_updates,
        t_load
    );

    // Corruption of a data block: flip a byte with stock rados get/put.
    let k = 137; // block 137: entries 137*8192 .. 138*8192
    let epb = layout.entries_per_block();
    let off = layout.data_offset() + k * layout.block_size() + 1_000;
    let marks = osd_logs();
    flip_with_rados(&oid, off, 0x21);
    let in_block = k * epb + 2_000;
    assert_eq!(get(&io, &oid, in_block, 10).unwrap_err(), Errno::EIO, "get inside the corrupt block");
    assert_eq!(get(&io, &oid, k * epb - 5, 10).unwrap_err(), Errno::EIO, "get spanning into it");
    assert_eq!(get(&io, &oid, 0, 0).unwrap_err(), Errno::EIO, "whole map");
    assert_eq!(io.exec_write(&oid, &stubs::clone_map_update(in_block, 1, Pending, None)).unwrap_err().errno(), Errno::EIO, "update inside the corrupt block");
    // Ranges that do not cover it still answer, and updates there still work.
    let before = get(&io, &oid, 0, k * epb).unwrap();
    assert_eq!(first_diff(&before, &model[..(k * epb) as usize]), None);
    let after = get(&io, &oid, (k + 1) * epb, 50_000).unwrap();
    assert_eq!(first_diff(&after, &model[((k + 1) * epb) as usize..((k + 1) * epb + 50_000) as usize]), None);
    stubs::clone_map_model_update(&mut model, 5, 3, Pending, None).unwrap();
    io.exec_write(&oid, &stubs::clone_map_update(5, 3, Pending, None)).unwrap();
    let line = format!("corrupt clone map: data block {k} (objects {}..{})", k * epb, (k + 1) * epb);
    assert!(osd_logged_since(&marks, &line), "the OSD log names the block: {line}");

    // Flipping the byte back heals the map (the update in block 0 meanwhile is kept).
    flip_with_rados(&oid, off, 0x21);
    assert_eq!(first_diff(&load(&io, &oid, 0).unwrap(), &model), None, "healed");

    // Corruption of a CRC entry, and of the header.
    let j = 200;
    let good = flip_with_rados(&oid, layout.crc_offset(j) + 2, 0x01);
    assert_eq!(get(&io, &oid, j * epb + 1, 1).unwrap_err(), Errno::EIO, "CRC entry of block {j}");
    assert_eq!(get(&io, &oid, (j + 1) * epb, 1).unwrap(), model[((j + 1) * epb) as usize..][..1]);
    put_back(&oid, &good);
    flip_with_rados(&oid, 7, 0x04); // object_count
    assert_eq!(get(&io, &oid, 0, 1).unwrap_err(), Errno::EIO, "header");
    assert_eq!(io.exec_write(&oid, &stubs::clone_map_update(0, 1, Exists, None)).unwrap_err().errno(), Errno::EIO);
    put_back(&oid, &good);
    assert_eq!(first_diff(&load(&io, &oid, 0).unwrap(), &model), None, "healed");

    io.remove(&oid).unwrap();
    assert!(common::all_osds_up());
}

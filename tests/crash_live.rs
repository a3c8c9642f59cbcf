//! Crash safety: a writer killed with SIGKILL in the middle of copy-ups, and a flatten
//! killed midway, leave an image whose every object is either wholly before or wholly after
//! its copy-up+write (never zeros, never half), whose clone map `check` can repair from the
//! objects, and whose flatten resumes to the exact content.
//!
//! The worker is this same test binary, re-run with `CRASH_WORKER=<mode>` so it can be killed;
//! it is stopped at an exact step by a kill point (`RBD_EXT_KILL_POINT`, rbd-ext's test-only
//! `kill-points` feature) and then SIGKILLed, so every run kills it mid-way.

mod common;

use std::process::{Command, Stdio};

use rbd_ext::blocking::{check_clone_map, clone_standalone};
use rbd_ext::{CloneOptions, Image, ImageSpec, OpenOptions};
use rbd_ext_cls::types::CloneMapState;

const OS: u64 = 1 << 16;
const OBJECTS: u64 = 96;

fn patch(n: u64) -> Vec<u8> {
    (0..1000u32).map(|i| (i as u8) ^ (n as u8) ^ 0xA5).collect()
}
const PATCH_AT: u64 = 100;

/// Worker side: runs when CRASH_WORKER is set, then exits (never returns to the harness).
fn worker() {
    let Ok(mode) = std::env::var("CRASH_WORKER") else {
        return;
    };
    let spec: ImageSpec = std::env::var("CRASH_IMAGE").unwrap().parse().unwrap();
    let cluster = common::cluster();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open_blocking(&cluster, &spec, OpenOptions::default().with_write(true).with_max_in_flight(8)).unwrap();
    match mode.as_str() {
        "copyup" => {
            for n in 0..OBJECTS {
                rt.block_on(img.write_at(n * OS + PATCH_AT, &patch(n))).unwrap();
            }
        }
        "flatten" => rt.block_on(rbd_ext::flatten(&img, &|_, _| {})).unwrap(),
        m => panic!("unknown worker mode {m}"),
    }
    // Reaching here means the kill point was never reached: the harness reports it.
    std::process::exit(0);
}

/// Starts the worker with kill point `point` armed (`RBD_EXT_KILL_POINT`, feature
/// `kill-points`), waits until the worker announces it stopped there, and SIGKILLs it: the
/// kill lands at exactly that step, whatever the machine's speed. Panics if the worker
/// finished or died without reaching the point.
fn run_and_kill(mode: &str, spec: &ImageSpec, test: &str, point: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("CRASH_WORKER", mode)
        .env("CRASH_IMAGE", spec.to_string())
        .env("RBD_EXT_KILL_POINT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while !line.contains("kill point") {
        line.clear();
        if std::io::BufRead::read_line(&mut err, &mut line).unwrap() == 0 {
            let _ = child.kill();
            child.wait().unwrap();
            panic!("worker {mode} ended without reaching kill point {point}; stderr:\n{seen}");
        }
        seen.push_str(&line);
    }
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
}

/// How many of the child's data objects exist.
fn child_objects(cluster: &std::sync::Arc<rbd_ext::rados::Cluster>, spec: &ImageSpec) -> u64 {
    let (loc, hdr) = rbd_ext::header::locate(cluster, spec).unwrap();
    (0..OBJECTS).filter(|&n| loc.data.stat(&hdr.data_oid(n)).is_ok()).count() as u64
}

fn setup(tag: &str) -> (std::sync::Arc<rbd_ext::rados::Cluster>, ImageSpec, ImageSpec, Vec<u8>) {
    let cluster = common::cluster();
    let pname = common::unique(&format!("crash-{tag}-parent"));
    let data: Vec<u8> = (0..OBJECTS * OS).map(|i| (i % 251) as u8 + 1).collect();
    let path = std::env::temp_dir().join(&pname);
    std::fs::write(&path, &data).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", "64K", path.to_str().unwrap(), &format!("rbd/{pname}")]);
    std::fs::remove_file(&path).ok();
    let parent = ImageSpec::new("rbd", &pname);
    let child = ImageSpec::new("rbd", &common::unique(&format!("crash-{tag}-child")));
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    (cluster, parent, child, data)
}

/// Breaks the lock a killed worker left behind (as an operator would with `lock rm`).
fn break_dead_lock(cluster: &std::sync::Arc<rbd_ext::rados::Cluster>, spec: &ImageSpec) {
    let (loc, _) = rbd_ext::header::locate(cluster, spec).unwrap();
    for l in rbd_ext::lock::lockers(&loc.md, &loc.id).unwrap() {
        rbd_ext::lock::break_lock(&loc.md, &loc.id, &l.client, &l.cookie).unwrap();
    }
}

fn read_all(cluster: &std::sync::Arc<rbd_ext::rados::Cluster>, spec: &ImageSpec) -> Vec<u8> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open_blocking(cluster, spec, OpenOptions::default()).unwrap();
    rt.block_on(img.read_at(0, OBJECTS * OS)).unwrap()
}

#[test]
fn killed_during_copy_ups() {
    worker();
    let (cluster, parent, child, pdata) = setup("copyup");
    // The worker patches objects 0, 1, 2... in order; objects patched in an earlier round are
    // written in place, so the n-th copy-up of a round is object `before + n - 1`.
    let mut expected = 0;
    for (round, nth) in [1u64, 20, 40].into_iter().enumerate() {
        run_and_kill("copyup", &child, "killed_during_copy_ups", &format!("copyup.written:{nth}"));
        expected += nth;
        break_dead_lock(&cluster, &child);
        let got = read_all(&cluster, &child);
        let mut patched = 0;
        for n in 0..OBJECTS {
            let range = (n * OS) as usize..((n + 1) * OS) as usize;
            let mut after = pdata[range.clone()].to_vec();
            after[PATCH_AT as usize..PATCH_AT as usize + 1000].copy_from_slice(&patch(n));
            let obj = &got[range.clone()];
            if obj == after.as_slice() {
                patched += 1;
            } else {
                assert!(obj == &pdata[range], "round {round}: object {n} is neither its old nor its new content");
            }
        }
        eprintln!("round {round}: {patched}/{OBJECTS} objects patched when killed at copy-up #{nth}");
        assert_eq!(patched, expected, "round {round}: killed after copy-up #{nth} of this round");
        assert!(0 < patched && patched < OBJECTS, "round {round}: the kill landed mid-way");
        // The kill landed between the copy-up and its clone-map update: the map still says
        // pending for the last object. That is no disagreement (the object is the truth):
        // check resolves exactly that entry from the object and reports it as updated.
        let before = check_clone_map(&cluster, &child, false).unwrap();
        assert!(before.mismatches.is_empty(), "round {round}: a crash's pending entry is no disagreement: {:?}", before.mismatches);
        assert!(
            before.updated.iter().any(|m| m.0 == expected - 1 && m.1 == CloneMapState::Pending),
            "round {round}: object {} should be resolved from pending: {:?}",
            expected - 1,
            before.updated
        );
        // The clone map then checks clean.
        let again = check_clone_map(&cluster, &child, false).unwrap();
        assert!(again.mismatches.is_empty(), "round {round}: {:?}", again.mismatches);
        assert!(read_all(&cluster, &child) == got, "repair changed data");
    }
    rbd_ext::blocking::remove(&cluster, &child).unwrap();
    rbd_ext::blocking::remove(&cluster, &parent).unwrap();
}

#[test]
fn killed_during_flatten_then_resumed() {
    worker();
    let (cluster, parent, child, pdata) = setup("flatten");
    // Flatten keeps at most 16 copy-ups in flight, so when the 40th starts at least 24 have
    // finished; the 40th itself never writes. The kill is mid-way by construction.
    run_and_kill("flatten", &child, "killed_during_flatten_then_resumed", "flatten.object:40");
    break_dead_lock(&cluster, &child);
    let copied = child_objects(&cluster, &child);
    eprintln!("flatten killed with {copied}/{OBJECTS} objects copied up");
    assert!((24..OBJECTS).contains(&copied), "{copied} objects copied when flatten was killed at object #40");
    assert!(read_all(&cluster, &child) == pdata, "content changed by an interrupted flatten");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open_blocking(&cluster, &child, OpenOptions::default().with_write(true)).unwrap();
    assert!(img.header().parent.is_some(), "an interrupted flatten left the parent attached");
    assert_eq!(rbd_ext::blocking::children(&cluster, &parent).unwrap().children.len(), 1);
    // Resume.
    rt.block_on(rbd_ext::flatten(&img, &|_, _| {})).unwrap();
    assert!(img.header().parent.is_none());
    img.close().unwrap();
    assert_eq!(child_objects(&cluster, &child), OBJECTS, "every object copied after the resume");
    assert!(rbd_ext::blocking::children(&cluster, &parent).unwrap().children.is_empty());
    rbd_ext::blocking::remove(&cluster, &parent).unwrap();
    assert!(read_all(&cluster, &child) == pdata, "content after resumed flatten");
    rbd_ext::blocking::remove(&cluster, &child).unwrap();
}

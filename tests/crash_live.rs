//! Crash safety: a writer killed with SIGKILL in the middle of copy-ups, and a flatten
//! killed midway, leave an image whose every object is either wholly before or wholly after
//! its copy-up+write (never zeros, never half), whose clone map `check` can repair from the
//! objects, and whose flatten resumes to the exact content.
//!
//! The worker is this same test binary, re-run with `CRASH_WORKER=<mode>` so it can be killed.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use rbd_ext::{check_clone_map, clone_standalone, CloneOptions, Image, ImageSpec, OpenOptions};

const OS: u64 = 1 << 16;
const OBJECTS: u64 = 96;

fn patch(n: u64) -> Vec<u8> {
    (0..1000u32).map(|i| (i as u8) ^ (n as u8) ^ 0xA5).collect()
}
const PATCH_AT: u64 = 100;

/// Worker side: runs when CRASH_WORKER is set, then exits (never returns to the harness).
fn worker() {
    let Ok(mode) = std::env::var("CRASH_WORKER") else { return };
    let spec: ImageSpec = std::env::var("CRASH_IMAGE").unwrap().parse().unwrap();
    let cluster = common::cluster();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open(&cluster, &spec, OpenOptions { write: true, max_in_flight: 8, ..Default::default() }).unwrap();
    println!("ready");
    match mode.as_str() {
        "copyup" => {
            for n in 0..OBJECTS {
                rt.block_on(img.write_at(n * OS + PATCH_AT, &patch(n))).unwrap();
            }
        }
        "flatten" => rt.block_on(rbd_ext::flatten(&img, &|_, _| {})).unwrap(),
        m => panic!("unknown worker mode {m}"),
    }
    println!("done");
    std::process::exit(0);
}

/// Starts the worker and SIGKILLs it `after` once it is ready. Returns whether it finished
/// before the kill.
fn run_and_kill(mode: &str, spec: &ImageSpec, test: &str, after: Duration) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("CRASH_WORKER", mode)
        .env("CRASH_IMAGE", spec.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    // Wait for "ready" (image open, lock taken); the test harness prints its own lines first.
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0, "worker exited before it was ready");
    }
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    rest.contains("done")
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
    let img = Image::open(cluster, spec, OpenOptions::default()).unwrap();
    rt.block_on(img.read_at(0, OBJECTS * OS)).unwrap()
}

#[test]
fn killed_during_copy_ups() {
    worker();
    let (cluster, parent, child, pdata) = setup("copyup");
    for (round, delay_ms) in [3u64, 15, 40].into_iter().enumerate() {
        run_and_kill("copyup", &child, "killed_during_copy_ups", Duration::from_millis(delay_ms));
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
        eprintln!("round {round}: {patched}/{OBJECTS} objects patched when killed after {delay_ms} ms");
        // The clone map is repaired from the objects, and then checks clean.
        check_clone_map(&cluster, &child, true).unwrap();
        let again = check_clone_map(&cluster, &child, false).unwrap();
        assert!(again.mismatches.is_empty(), "round {round}: {:?}", again.mismatches);
        assert!(read_all(&cluster, &child) == got, "repair changed data");
    }
    rbd_ext::remove(&cluster, &child).unwrap();
    rbd_ext::remove(&cluster, &parent).unwrap();
}

#[test]
fn killed_during_flatten_then_resumed() {
    worker();
    let (cluster, parent, child, pdata) = setup("flatten");
    let finished = run_and_kill("flatten", &child, "killed_during_flatten_then_resumed", Duration::from_millis(20));
    break_dead_lock(&cluster, &child);
    assert!(read_all(&cluster, &child) == pdata, "content changed by an interrupted flatten");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open(&cluster, &child, OpenOptions { write: true, ..Default::default() }).unwrap();
    if img.header().parent.is_some() {
        rt.block_on(rbd_ext::flatten(&img, &|_, _| {})).unwrap();
    } else {
        eprintln!("flatten finished before the kill (finished={finished}); nothing to resume");
    }
    assert!(img.header().parent.is_none());
    img.close().unwrap();
    assert!(rbd_ext::children(&cluster, &parent).unwrap().children.is_empty());
    rbd_ext::remove(&cluster, &parent).unwrap();
    assert!(read_all(&cluster, &child) == pdata, "content after resumed flatten");
    rbd_ext::remove(&cluster, &child).unwrap();
}

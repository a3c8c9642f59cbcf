//! The `rbd-ext` command line against a live cluster, side by side with stock `rbd`: clear
//! one-line errors, the whole clone lifecycle (clone, info, read, write, export, children,
//! protected rm, flatten, rm), lock listing.
//!
//! The binary is a target of the `rbd-ext` package, which `cargo test` here does not build:
//! `eval "$(qa/cluster up)" && cargo build -p rbd-ext --bin rbd-ext &&
//! cargo test --features live,test-methods --test cli_live`. `RBD_EXT_BIN` names another
//! binary (e.g. target/release/rbd-ext).

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The `rbd-ext` binary under test.
fn bin() -> PathBuf {
    common::rbd_ext_bin()
}

/// Runs `rbd-ext ARGS` with `stdin` as its input.
fn run_with(args: &[&str], stdin: &[u8]) -> Output {
    // Fail with the setup hint rather than a connection error when no cluster is exported.
    std::env::var("CEPH_CONF").expect("CEPH_CONF is not set: run `eval \"$(qa/cluster up)\"` first");
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run rbd-ext {args:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // Feed stdin on a thread: the child may fill stdout before reading all of it.
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn run(args: &[&str]) -> Output {
    run_with(args, b"")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed and print nothing on stderr; returns stdout.
fn ok(args: &[&str]) -> Vec<u8> {
    let o = run(args);
    assert!(o.status.success(), "rbd-ext {args:?} failed ({}): {}", o.status, stderr(&o));
    assert!(o.stderr.is_empty(), "rbd-ext {args:?} wrote to stderr: {}", stderr(&o));
    o.stdout
}

/// Runs a command that must fail with exit status 1 and exactly one stderr line
/// `rbd-ext: ...`; returns that line.
fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "rbd-ext {args:?}: expected exit status 1, got {}; stderr: {}", o.status, stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "rbd-ext {args:?}: expected one stderr line, got: {err}");
    assert!(lines[0].starts_with("rbd-ext: "), "rbd-ext {args:?}: {err}");
    assert!(o.stdout.is_empty(), "rbd-ext {args:?} failed but printed on stdout");
    lines[0].to_string()
}

/// Deterministic non-zero-ish bytes (no dependency for test data).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Images created by a test, removed at the end (newest first: children before parents),
/// also when the test fails half-way.
struct Cleanup {
    images: Vec<String>,
    files: Vec<PathBuf>,
}

impl Cleanup {
    fn new() -> Cleanup {
        Cleanup { images: Vec::new(), files: Vec::new() }
    }

    /// A fresh image name in pool rbd, to be removed at the end.
    fn image(&mut self, prefix: &str) -> String {
        let name = format!("rbd/{}", common::unique(prefix));
        self.images.push(name.clone());
        name
    }

    /// A fresh temporary file path, removed at the end.
    fn file(&mut self, prefix: &str) -> PathBuf {
        let p = std::env::temp_dir().join(common::unique(prefix));
        self.files.push(p.clone());
        p
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for img in self.images.iter().rev() {
            // rbd-ext rm detaches children; stock rm covers whatever it cannot remove.
            let done = Command::new(bin()).args(["rm", img]).output().is_ok_and(|o| o.status.success());
            if !done {
                let _ = Command::new("rbd").args(["rm", "--no-progress", img]).output();
            }
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn exists(image: &str) -> bool {
    common::stock("rbd", &["info", image]).0
}

#[test]
fn clone_errors_are_one_clear_line() {
    let mut c = Cleanup::new();
    let parent = c.image("cli-err-parent");
    let existing = c.image("cli-err-existing");
    let child = c.image("cli-err-child");
    common::stock_ok("rbd", &["create", "--size", "8M", &parent]);
    common::stock_ok("rbd", &["create", "--size", "4M", &existing]);

    // Missing parent.
    let missing = format!("rbd/{}", common::unique("cli-err-missing"));
    let e = fails(&["clone-standalone", &missing, &child]);
    assert!(e.contains(&missing) && e.contains("does not exist") && e.ends_with("(ENOENT)"), "{e}");
    assert!(!exists(&child), "a failed clone left {child} behind");

    // A snapshot as parent: standalone clones take HEAD; the message points to `rbd clone`.
    let e = fails(&["clone-standalone", &format!("{parent}@snap1"), &child]);
    assert!(e.contains("rbd clone") && e.ends_with("(EINVAL)"), "{e}");
    assert!(!exists(&child));

    // Existing child name: EEXIST, and the existing image is left as it was.
    let e = fails(&["clone-standalone", &parent, &existing]);
    assert!(e.contains(&existing) && e.ends_with("(EEXIST)"), "{e}");
    let info = String::from_utf8(ok(&["info", "--format", "json", &existing])).unwrap();
    assert!(!info.contains("\"parent\""), "the existing image became a clone: {info}");
    assert_eq!(common::json_u64(&info, "size"), 4 << 20);
    // Nothing was registered with (or left protecting) the parent.
    assert!(ok(&["children", &parent]).is_empty());
    common::stock_ok("rbd", &["resize", "--no-progress", "--size", "16M", &parent]);

    // Missing pool, on either side.
    let pool = common::unique("cli-nopool");
    let e = fails(&["clone-standalone", &format!("{pool}/img"), &child]);
    assert!(e.contains(&format!("pool {pool} does not exist")) && e.ends_with("(ENOENT)"), "{e}");
    let e = fails(&["clone-standalone", &parent, &format!("{pool}/img")]);
    assert!(e.contains(&format!("pool {pool} does not exist")) && e.ends_with("(ENOENT)"), "{e}");

    // Usage errors are clap's: exit status 2.
    let o = run(&["clone-standalone", &parent]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["clone-standalone", &parent, &child, "--image-feature", "journaling"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn clone_lifecycle_demo() {
    const MIB: usize = 1 << 20;
    let mut c = Cleanup::new();
    let parent = c.image("cli-demo-parent");
    let child = c.image("cli-demo-child");
    // Three whole 4 MiB objects and a partial fourth.
    let size = 12 * MIB + 12_345;
    let data = pseudo_random(size, 0x5eed);
    let parent_file = c.file("cli-demo-parent.raw");
    std::fs::write(&parent_file, &data).unwrap();
    common::stock_ok("rbd", &["import", "--no-progress", parent_file.to_str().unwrap(), &parent]);

    assert!(ok(&["clone-standalone", &parent, &child]).is_empty(), "clone-standalone prints nothing on success");

    // info: a standalone parent covering the whole child.
    let info = String::from_utf8(ok(&["info", "--format", "json", &child])).unwrap();
    assert!(info.contains("\"type\":\"standalone\""), "{info}");
    let parent_name = parent.strip_prefix("rbd/").unwrap();
    assert!(info.contains(&format!("\"image\":\"{parent_name}\"")), "{info}");
    assert_eq!(common::json_u64(&info, "size"), size as u64);
    assert_eq!(common::json_u64(&info, "overlap"), size as u64);
    assert_eq!(common::json_u64(&info, "object_size"), 4 * MIB as u64);
    let plain = String::from_utf8(ok(&["info", &child])).unwrap();
    assert!(plain.contains(&format!("parent: {parent}@")) && plain.contains("parent type: standalone"), "{plain}");

    // Reads go through to the parent.
    let len = size.to_string();
    assert!(ok(&["read", &child, "--offset", "0", "--length", &len]) == data, "child read != parent data");
    assert!(ok(&["read", &child, "--offset", "4194000", "--length", "1000"]) == data[4_194_000..4_195_000]);

    // Unaligned writes: one across the boundary of objects 0 and 1, one in the partial last
    // object, one from a file.
    let mut model = data.clone();
    let w1 = pseudo_random(300_000, 1);
    let w1_at = 4 * MIB - 1000;
    let o = run_with(&["write", &child, "--offset", &w1_at.to_string()], &w1);
    assert!(o.status.success() && o.stderr.is_empty(), "write: {}", stderr(&o));
    model[w1_at..w1_at + w1.len()].copy_from_slice(&w1);
    let w2 = pseudo_random(5000, 2);
    let w2_at = size - 7000;
    let w2_file = c.file("cli-demo-w2");
    std::fs::write(&w2_file, &w2).unwrap();
    ok(&["write", &child, "--offset", &w2_at.to_string(), "--input", w2_file.to_str().unwrap()]);
    model[w2_at..w2_at + w2.len()].copy_from_slice(&w2);
    // Past the end: refused, nothing written.
    let e = fails(&["write", &child, "--offset", &(size - 10).to_string(), "--input", w2_file.to_str().unwrap()]);
    assert!(e.ends_with("(EINVAL)"), "{e}");

    // The parent is unchanged; the child reads as the model through rbd-ext and stock rbd.
    assert!(ok(&["export", &parent, "-"]) == data, "the parent changed");
    let child_file = c.file("cli-demo-child.rbd-ext");
    ok(&["export", &child, child_file.to_str().unwrap()]);
    assert!(std::fs::read(&child_file).unwrap() == model, "rbd-ext export of the child != model");
    let stock_file = c.file("cli-demo-child.stock");
    common::stock_ok("rbd", &["export", "--no-progress", &child, stock_file.to_str().unwrap()]);
    assert!(std::fs::read(&stock_file).unwrap() == model, "stock rbd export of the child != model");
    // The clone map agrees with the objects after the copy-ups.
    ok(&["clone-map", "check", &child]);
    let runs = String::from_utf8(ok(&["clone-map", "show", &child])).unwrap();
    assert!(runs.contains("copied-up") && runs.contains("exists-parent"), "{runs}");

    // A reader that goes away is a clean stop, not an error.
    let mut export = Command::new(bin()).args(["export", &parent, "-"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 1];
    export.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let o = export.wait_with_output().unwrap();
    assert!(o.status.success() && o.stderr.is_empty(), "closed pipe: {} {}", o.status, stderr(&o));

    // The parent knows its child and is protected by it.
    assert_eq!(String::from_utf8(ok(&["children", &parent])).unwrap(), format!("{child}\n"));
    let e = fails(&["rm", &parent]);
    assert!(e.contains(&child) && e.ends_with("(EBUSY)"), "{e}");
    assert!(exists(&parent));

    // Flatten: silent in a pipe, the parent loses its child, the data stays.
    let o = run(&["flatten", &child]);
    assert!(o.status.success(), "flatten: {}", stderr(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "flatten printed in a pipe: {}", stderr(&o));
    assert!(ok(&["children", &parent]).is_empty());
    let info = String::from_utf8(ok(&["info", "--format", "json", &child])).unwrap();
    assert!(!info.contains("\"parent\""), "{info}");
    assert!(ok(&["export", &child, "-"]) == model, "flattened child != model");

    ok(&["rm", &parent]);
    assert!(!exists(&parent));
    ok(&["rm", &child]);
    assert!(!exists(&child));
}

#[test]
fn lock_ls_without_writers_is_empty() {
    let mut c = Cleanup::new();
    let img = c.image("cli-lock");
    common::stock_ok("rbd", &["create", "--size", "4M", &img]);
    assert!(ok(&["lock", "ls", &img]).is_empty());
    assert_eq!(ok(&["lock", "ls", "--format", "json", &img]), b"[]\n");
}

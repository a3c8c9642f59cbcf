//! The `rbd-ext` command line against a live cluster, side by side with stock `rbd`: clear
//! one-line errors, the whole clone lifecycle (clone, info, read, write, export, children,
//! protected rm, flatten, rm), lock listing.
//!
//! The binary is the `rbd-ext-cli` package (cli/), which `cargo test` here does not build:
//! `eval "$(qa/cluster up)" && cargo build -p rbd-ext-cli &&
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

/// Runs `rbd-ext ARGS` with extra environment variables.
fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| panic!("run rbd-ext {args:?}: {e}"))
}

/// A cephx user `client.<id>` with `caps` (`["mon", "allow r", "osd", ...]`) and its keyring
/// file; both removed at the end.
struct User {
    id: String,
    keyring: PathBuf,
}

impl User {
    fn new(prefix: &str, caps: &[&str]) -> User {
        let id = common::unique(prefix);
        let keyring = std::env::temp_dir().join(format!("{id}.keyring"));
        let name = format!("client.{id}");
        let mut args = vec!["auth", "get-or-create", name.as_str()];
        args.extend_from_slice(caps);
        args.extend_from_slice(&["-o", keyring.to_str().unwrap()]);
        common::stock_ok("ceph", &args);
        User { id, keyring }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = common::stock("ceph", &["auth", "rm", &format!("client.{}", self.id)]);
        let _ = std::fs::remove_file(&self.keyring);
    }
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_failed_read_or_export_leaves_no_file() {
    const MIB: usize = 1 << 20;
    let mut c = Cleanup::new();
    let parent = c.image("cli-out-parent");
    let child = c.image("cli-out-child");
    let data = pseudo_random(8 * MIB, 0x0f11e);
    let src = c.file("cli-out-parent.raw");
    std::fs::write(&src, &data).unwrap();
    common::stock_ok("rbd", &["import", "--no-progress", src.to_str().unwrap(), &parent]);
    ok(&["clone-standalone", &parent, &child]);
    let info = common::stock_ok("rbd", &["info", "--format", "json", &child]);
    let child_id = info.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    // A user who may open the child (headers, ids, maps, its own data) but not read the
    // parent's data: the read fails at the first object that falls through to the parent,
    // after the output file was opened.
    let data_cap = format!("allow r pool=rbd object_prefix rbd_data.{child_id}");
    let osd_caps = [
        "allow rx pool=rbd object_prefix rbd_id.",
        "allow rx pool=rbd object_prefix rbd_header.",
        "allow rx pool=rbd object_prefix rbd_directory",
        "allow rx pool=rbd object_prefix rbd_clone_map.",
        "allow rx pool=rbd object_prefix rbd_object_map.",
        "allow rx pool=rbd object_prefix rbd_trash",
        &data_cap,
    ]
    .join(", ");
    let user = User::new("cli-out-user", &["mon", "allow r", "osd", &osd_caps]);
    let as_user = |args: &[&str]| {
        let mut all = vec!["--id", &user.id, "--keyring", user.keyring.to_str().unwrap()];
        all.extend_from_slice(args);
        run(&all)
    };

    let dir = std::env::temp_dir().join(common::unique("cli-out-dir"));
    std::fs::create_dir_all(&dir).unwrap();
    let existing = dir.join("existing.raw");
    std::fs::write(&existing, b"keep me").unwrap();
    let o = as_user(&["read", &child, "--offset", "0", "--length", "8M", "--output", existing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "read without the parent's caps: {}", stderr(&o));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me", "a failed read changed the existing file");
    let fresh = dir.join("fresh.raw");
    let o = as_user(&["read", &child, "--offset", "0", "--length", "8M", "--output", fresh.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = as_user(&["export", &child, fresh.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "export without the parent's caps: {}", stderr(&o));
    assert_eq!(files_in(&dir), ["existing.raw"], "a failed read or export left a file behind");

    // With the caps (admin), the same commands make the files.
    ok(&["read", &child, "--offset", "0", "--length", "8M", "--output", existing.to_str().unwrap()]);
    assert!(std::fs::read(&existing).unwrap() == data, "read --output");
    ok(&["export", &child, fresh.to_str().unwrap()]);
    assert!(std::fs::read(&fresh).unwrap() == data, "export");
    // export never overwrites, and its refusal leaves the file as it was.
    let e = fails(&["export", &child, existing.to_str().unwrap()]);
    assert!(e.ends_with("(EEXIST)"), "{e}");
    assert!(std::fs::read(&existing).unwrap() == data);
    assert_eq!(files_in(&dir), ["existing.raw", "fresh.raw"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ceph_args_choose_the_user_as_for_stock_rbd() {
    let mut c = Cleanup::new();
    let in_rbd = c.image("cli-args-rbd");
    common::stock_ok("rbd", &["create", "--size", "4M", &in_rbd]);
    let in_rbd2 = format!("rbd2/{}", common::unique("cli-args-rbd2"));
    common::stock_ok("rbd", &["create", "--size", "4M", &in_rbd2]);
    // A user who may use pool rbd2 only.
    let user = User::new("cli-args-user", &["mon", "profile rbd", "osd", "profile rbd pool=rbd2"]);
    let ceph_args = format!("--id {} --keyring {}", user.id, user.keyring.display());
    let env = [("CEPH_ARGS", ceph_args.as_str())];

    // Stock rbd honours CEPH_ARGS: rbd2 yes, rbd no.
    let stock = |img: &str| Command::new("rbd").args(["info", img]).env("CEPH_ARGS", &ceph_args).output().unwrap().status.success();
    assert!(stock(&in_rbd2) && !stock(&in_rbd), "stock rbd with CEPH_ARGS");
    // So does rbd-ext: the user of CEPH_ARGS is the one that connects.
    let o = run_env(&["info", &in_rbd2], &env);
    assert!(o.status.success(), "rbd-ext info {in_rbd2} as client.{}: {}", user.id, stderr(&o));
    let o = run_env(&["info", &in_rbd], &env);
    assert_eq!(o.status.code(), Some(1), "rbd-ext info {in_rbd} as client.{} (no caps on rbd) succeeded", user.id);
    assert!(stderr(&o).contains("EPERM") || stderr(&o).contains("EACCES"), "{}", stderr(&o));
    // The command line wins over CEPH_ARGS, as in stock tools.
    let admin_keyring = format!("{}/keyring", std::env::var("RBD_EXT_CLUSTER_DIR").expect("RBD_EXT_CLUSTER_DIR (qa/cluster up)"));
    let o = run_env(&["--id", "admin", "--keyring", &admin_keyring, "info", &in_rbd], &env);
    assert!(o.status.success(), "--id admin over CEPH_ARGS: {}", stderr(&o));
    // Other Ceph options in CEPH_ARGS reach librados: a bad monitor address is used.
    let o = run_env(&["info", &in_rbd2], &[("CEPH_ARGS", &format!("{ceph_args} --mon-host 127.0.0.1:1 --client-mount-timeout 2"))]);
    assert_eq!(o.status.code(), Some(1), "CEPH_ARGS --mon-host was ignored: {}", stderr(&o));
    common::stock_ok("rbd", &["rm", "--no-progress", &in_rbd2]);
}

#[test]
fn info_json_is_a_drop_in_for_stock() {
    let mut c = Cleanup::new();
    let parent = c.image("cli-info-parent");
    let child = c.image("cli-info-child");
    common::stock_ok("rbd", &["create", "--size", "16M", &parent]);
    common::stock_ok("rbd", &["bench", "--io-type", "write", "--io-total", "4M", &parent]);
    ok(&["clone-standalone", &parent, &child]);
    let stock_json = |img: &str| -> serde_json::Value {
        let o = Command::new("rbd").args(["info", "--format", "json", img]).env("TZ", "UTC").output().unwrap();
        assert!(o.status.success(), "rbd info {img}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    for img in [&child, &parent] {
        let before = stock_json(img);
        let ours: serde_json::Value = serde_json::from_slice(&ok(&["info", "--format", "json", img])).unwrap();
        let after = stock_json(img);
        // Every stock key, with stock's value; keys stock itself changes between two runs
        // (timestamps touched by its own open) are compared for presence only.
        let mut checked = 0;
        let mut check = |path: String, s: &serde_json::Value, o: Option<&serde_json::Value>, varies: bool| {
            let o = o.unwrap_or_else(|| panic!("{img}: stock key {path} missing from rbd-ext info: {ours}"));
            if !varies {
                assert_eq!(o, s, "{img}: key {path}");
            }
            checked += 1;
        };
        for (k, s) in before.as_object().unwrap() {
            if k == "parent" {
                for (pk, ps) in s.as_object().unwrap() {
                    check(format!("parent.{pk}"), ps, ours["parent"].get(pk), after["parent"][pk] != *ps);
                }
            } else {
                check(k.clone(), s, ours.get(k), after[k] != *s);
            }
        }
        // 15 top-level keys, and the 7 of `parent` for the child.
        let want = if img == &child { 22 } else { 15 };
        assert!(checked >= want, "{img}: only {checked} stock keys: {before}");
    }
    // Ours, as extra keys: the parent's type, the clone map, the protection.
    let ours_child: serde_json::Value = serde_json::from_slice(&ok(&["info", "--format", "json", &child])).unwrap();
    assert_eq!(ours_child["parent"]["type"], "standalone");
    assert_eq!(ours_child["clone_map"]["objects"], 4);
    assert_eq!(ours_child["protection"]["protected"], false);
    let ours_parent: serde_json::Value = serde_json::from_slice(&ok(&["info", "--format", "json", &parent])).unwrap();
    assert_eq!(ours_parent["protection"], serde_json::json!({"protected": true, "mode": "clones", "children": 1, "remote_children": 0}));
    let plain = String::from_utf8(ok(&["info", &parent])).unwrap();
    assert!(plain.contains("\tprotected: by 1 standalone children"), "{plain}");
    let plain = String::from_utf8(ok(&["info", &child])).unwrap();
    // The snapshot guard, as stock `rbd info` shows it: one (hidden) snapshot, limit 1.
    assert!(!plain.contains("protected:") && plain.contains("\tsnapshot_count: 1\n") && plain.contains("\tsnapshot_limit: 1\n"), "{plain}");
}

//! Helpers for the live-cluster tests: connect through `CEPH_CONF` (exported by
//! `eval "$(qa/cluster up)"`), unique object and image names, stock CLI calls.

#![allow(dead_code)]

pub mod fsx;
pub mod rgw;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rbd_ext::rados::{Cluster, ConnectOptions, IoCtx};

/// Connects to the test cluster. Panics with the fix when no cluster is configured: these
/// tests are built only with `--features live`, so a missing cluster is a setup error.
pub fn cluster() -> Arc<Cluster> {
    let conf = std::env::var("CEPH_CONF").unwrap_or_else(|_| panic!("CEPH_CONF is not set: run `eval \"$(qa/cluster up)\"` first (live tests need a cluster)"));
    Cluster::connect(&ConnectOptions::default().with_conf(conf)).expect("connect to the test cluster")
}

/// An I/O context on pool `rbd`.
pub fn rbd_pool() -> IoCtx {
    cluster().ioctx("rbd", "").expect("pool rbd exists (qa/cluster creates it)")
}

/// A name unique to this process and call: `<prefix>-<pid>-<n>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Runs a stock Ceph CLI (`rbd`, `rados`, `ceph`) and returns (success, stdout, stderr).
pub fn stock(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs a stock CLI that must succeed; returns stdout.
pub fn stock_ok(cmd: &str, args: &[&str]) -> String {
    let (ok, out, err) = stock(cmd, args);
    assert!(ok, "{cmd} {args:?} failed: {err}");
    out
}

/// Runs a stock `rbd` command that must be refused with EROFS. The exit status is what is
/// checked: `rbd` exits with the errno it failed with, and `rbd bench` reports a failed write
/// by calling `exit(errno)` from librbd's completion thread, which races its own message (it is
/// sometimes lost, stdout and stderr both). The message is shown when the status differs.
#[track_caller]
pub fn stock_rbd_refused_erofs(args: &[&str]) {
    let out = Command::new("rbd").args(args).output().unwrap_or_else(|e| panic!("run rbd: {e}"));
    assert_eq!(
        out.status.code(),
        Some(30),
        "rbd {args:?}: expected EROFS (exit status 30), stdout: {} stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether every OSD of the test cluster is up (`ceph osd stat`).
pub fn all_osds_up() -> bool {
    let out = stock_ok("ceph", &["osd", "stat", "--format", "json"]);
    let num = json_u64(&out, "num_osds");
    let up = json_u64(&out, "num_up_osds");
    num > 0 && num == up
}

/// A tiny JSON number lookup (`"key":123`), enough for `ceph ... --format json` output.
pub fn json_u64(s: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let at = s.find(&pat).unwrap_or_else(|| panic!("{key} not in {s}")) + pat.len();
    s[at..].trim_start().chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
}

/// The `rbd-ext` binary: `$RBD_EXT_BIN`, else `target/debug/rbd-ext` of this workspace, which
/// must not be older than the CLI's and the library's sources (a stale binary would test old code).
pub fn rbd_ext_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("RBD_EXT_BIN") {
        return std::path::PathBuf::from(p);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/debug/rbd-ext");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} not found: build it with `cargo build -p rbd-ext-cli` (or set RBD_EXT_BIN)", bin.display()));
    let newest_source = [root.join("cli/src"), root.join("client/src"), root.join("cls-rbd-ext/src")].iter().map(|d| newest_mtime(d)).max().unwrap();
    assert!(
        built >= newest_source,
        "{} is older than the CLI or library sources: rebuild it with `cargo build -p rbd-ext-cli` (or set RBD_EXT_BIN)",
        bin.display()
    );
    bin
}

fn newest_mtime(dir: &std::path::Path) -> std::time::SystemTime {
    let mut newest = std::time::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let md = e.metadata().unwrap();
        let t = if md.is_dir() { newest_mtime(&e.path()) } else { md.modified().unwrap() };
        newest = newest.max(t);
    }
    newest
}

/// What the plugin logs for every caught panic (`src/dispatch.rs`).
pub const PANIC_LOG_MARK: &str = "internal error (panic:";

/// The plugin's panic lines in every OSD log of the test cluster
/// (`$RBD_EXT_CLUSTER_DIR/log/osd.*.log`, exported by `qa/cluster up`).
pub fn osd_panic_lines() -> Vec<String> {
    let dir = std::env::var("RBD_EXT_CLUSTER_DIR")
        .unwrap_or_else(|_| panic!("RBD_EXT_CLUSTER_DIR is not set: run `eval \"$(qa/cluster up)\"` first (the OSD logs are read)"));
    let logs = std::path::Path::new(&dir).join("log");
    let mut lines = Vec::new();
    let mut osd_logs = 0;
    for e in std::fs::read_dir(&logs).unwrap_or_else(|e| panic!("read {}: {e}", logs.display())).flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("osd.") && name.ends_with(".log")) {
            continue;
        }
        osd_logs += 1;
        let text = std::fs::read(e.path()).unwrap();
        lines.extend(String::from_utf8_lossy(&text).lines().filter(|l| l.contains(PANIC_LOG_MARK)).map(str::to_string));
    }
    assert!(osd_logs > 0, "no OSD log in {}", logs.display());
    lines
}

/// A throwaway pool (8 PGs, initialised for RBD), removed when dropped: tests that scan a
/// whole pool (`doctor`) must not see other tests' images.
pub struct TempPool(pub String);

impl TempPool {
    /// Creates `<prefix>-<unique>`.
    pub fn new(prefix: &str) -> TempPool {
        let name = unique(prefix);
        stock_ok("ceph", &["osd", "pool", "create", &name, "8"]);
        stock_ok("rbd", &["pool", "init", &name]);
        TempPool(name)
    }
}

impl Drop for TempPool {
    fn drop(&mut self) {
        let _ = stock("ceph", &["osd", "pool", "rm", &self.0, &self.0, "--yes-i-really-really-mean-it"]);
    }
}

/// Runs the `rbd-ext` binary with `args`; returns (exit code, stdout, stderr).
pub fn rbd_ext(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(rbd_ext_bin()).args(args).output().unwrap_or_else(|e| panic!("run rbd-ext: {e}"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether object `oid` exists in `pool` (`rados stat`).
pub fn object_exists(pool: &str, oid: &str) -> bool {
    stock("rados", &["-p", pool, "stat", oid]).0
}

/// Deterministic pseudo-random bytes (xorshift64), the same for the same seed.
pub fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

//! Helpers for the live-cluster tests: connect through `CEPH_CONF` (exported by
//! `eval "$(qa/cluster up)"`), unique object and image names, stock CLI calls.

#![allow(dead_code)]

pub mod fsx;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rbd_ext::rados::{Cluster, ConnectOptions, IoCtx};

/// Connects to the test cluster. Panics with the fix when no cluster is configured: these
/// tests are built only with `--features live`, so a missing cluster is a setup error.
pub fn cluster() -> Arc<Cluster> {
    let conf = std::env::var("CEPH_CONF").unwrap_or_else(|_| {
        panic!("CEPH_CONF is not set: run `eval \"$(qa/cluster up)\"` first (live tests need a cluster)")
    });
    Cluster::connect(&ConnectOptions { conf: Some(conf), ..Default::default() }).expect("connect to the test cluster")
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
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a stock CLI that must succeed; returns stdout.
pub fn stock_ok(cmd: &str, args: &[&str]) -> String {
    let (ok, out, err) = stock(cmd, args);
    assert!(ok, "{cmd} {args:?} failed: {err}");
    out
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

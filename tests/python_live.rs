//! The Python module's acceptance test: installs `rbd_ext` from `python/` with pip into a
//! throwaway venv of Debian's `/usr/bin/python3` (`--system-site-packages`, so python3-rados
//! and python3-rbd import as on a Cinder host) and runs `tests/python/test_rbd_ext.py`
//! against the live cluster (`CEPH_CONF`).
//!
//! The install is the README's pip command (maturin builds the extension in release mode
//! into this workspace's target/, so a warm tree rebuilds only what changed). The venv stays
//! in target/python-live/ for a look after a failure.

#![cfg(feature = "live")]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `cmd`, failing the test with its output unless it succeeds.
fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn python_module_upload_volume_to_image() {
    assert!(std::env::var_os("CEPH_CONF").is_some(), "CEPH_CONF is not set: run `eval \"$(qa/cluster up)\"` first");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A fixed path, made afresh (--clear) each run: maturin passes the interpreter's path to
    // PyO3's build script, which rebuilds PyO3 whenever that path changes.
    let dir = repo.join("target/python-live");
    let venv = dir.join("venv");
    std::fs::create_dir_all(&dir).unwrap();
    run("create the venv", Command::new("/usr/bin/python3").args(["-m", "venv", "--clear", "--system-site-packages"]).arg(&venv));
    let python = venv.join("bin/python");
    let mut pip = Command::new("timeout");
    pip.arg("1200").arg(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).arg(repo.join("python"));
    // The variables cargo sets for this test describe this package, not the one pip builds;
    // build scripts track some of them (ring: OUT_DIR, CARGO_PKG_*), so passing them on would
    // rebuild half the tree here and again at the next plain `pip install`.
    for (k, _) in std::env::vars_os() {
        let set_by_cargo_test = |k: &str| {
            k == "OUT_DIR"
                || k == "CARGO_TARGET_TMPDIR"
                || k == "CARGO_PRIMARY_PACKAGE"
                || ["CARGO_PKG_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_MANIFEST_"].iter().any(|p| k.starts_with(p))
        };
        if k.to_str().is_some_and(set_by_cargo_test) {
            pip.env_remove(k);
        }
    }
    run("pip install ./python", &mut pip);
    let out =
        run("tests/python/test_rbd_ext.py", Command::new("timeout").arg("600").arg(&python).arg(repo.join("tests/python/test_rbd_ext.py")).current_dir(&dir));
    // unittest reports on stderr; show it with --nocapture.
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(report.contains("\nOK"), "no OK line from unittest:\n{report}");
    assert!(!report.contains("skipped"), "a Python test was skipped:\n{report}");
}

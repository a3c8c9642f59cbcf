//! The C API (issue 12, deliverable 2) as a C program uses it: `qa/install-capi` installs
//! librbd_ext, its header and rbd-ext.pc into a temporary prefix; `tests/capi/capi_test.c`
//! is compiled with `cc` against that installed header and `pkg-config --cflags --libs
//! rbd-ext`, under AddressSanitizer (LeakSanitizer at exit), and run against this cluster, a
//! second one it boots (`qa/cluster up --name capi-remote-<pid>`, for the remote-parent
//! variant) and radosgw. It drives every C function with an error case each.
//!
//! Needs `eval "$(qa/cluster up --rgw)"` and the debug build of the library (`cargo test
//! --workspace` builds it; alone: `cargo build -p rbd-ext-capi`), then
//! `cargo test --features live,test-methods --test capi_live`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `eval \"$(qa/cluster up --rgw)\"` first (this test needs radosgw)"))
}

/// A second cluster, stopped on drop.
struct Remote {
    name: String,
    conf: String,
}

impl Remote {
    fn up() -> Remote {
        let name = format!("capi-remote-{}", std::process::id());
        let out = Command::new(format!("{ROOT}/qa/cluster")).args(["up", "--name", &name]).output().unwrap();
        assert!(out.status.success(), "qa/cluster up --name {name}: {}", String::from_utf8_lossy(&out.stderr));
        let env = String::from_utf8_lossy(&out.stdout).into_owned();
        let conf = env.lines().find_map(|l| l.strip_prefix("export CEPH_CONF=")).unwrap().trim_matches('\'').to_string();
        Remote { name, conf }
    }

    fn keyring(&self) -> String {
        Path::new(&self.conf).parent().unwrap().join("keyring").to_string_lossy().into_owned()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = Command::new(format!("{ROOT}/qa/cluster")).args(["down", "--name", &self.name]).status();
    }
}

/// Removes the temporary prefix.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The debug library, checked to be newer than the sources it is built from.
fn check_library_built() {
    let so = Path::new(ROOT).join("target/debug/librbd_ext.so");
    let built =
        std::fs::metadata(&so).and_then(|m| m.modified()).unwrap_or_else(|_| panic!("{} not found: build it with `cargo build -p rbd-ext-capi`", so.display()));
    for dir in ["ffi/capi/src", "client/src", "cls-rbd-ext/src"] {
        let newest = newest_mtime(&Path::new(ROOT).join(dir));
        assert!(built >= newest, "{} is older than {dir}: rebuild it with `cargo build -p rbd-ext-capi`", so.display());
    }
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let t = if e.path().is_dir() { newest_mtime(&e.path()) } else { e.metadata().and_then(|m| m.modified()).unwrap() };
        newest = newest.max(t);
    }
    newest
}

fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let (so, se) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{cmd:?} failed ({}):\n--- stdout\n{so}\n--- stderr\n{se}", out.status);
    (so, se)
}

#[test]
fn c_program_drives_every_function_without_leaks() {
    check_library_built();
    let prefix = TempDir(std::env::temp_dir().join(common::unique("rbd-ext-capi-prefix")));
    run(Command::new(format!("{ROOT}/qa/install-capi")).args(["--profile", "debug", "--no-build"]).arg(&prefix.0));
    let pc_path = prefix.0.join("lib/pkgconfig");
    let (version, _) = run(Command::new("pkg-config").args(["--modversion", "rbd-ext"]).env("PKG_CONFIG_PATH", &pc_path));
    let (flags, _) = run(Command::new("pkg-config").args(["--cflags", "--libs", "rbd-ext"]).env("PKG_CONFIG_PATH", &pc_path));
    assert!(flags.contains(&format!("-I{}", prefix.0.join("include").display())), "pkg-config points at the installed header: {flags}");
    let exe = prefix.0.join("capi_test");
    run(Command::new("cc")
        .args(["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-g", "-fsanitize=address", "-fno-omit-frame-pointer", "-pthread", "-o"])
        .arg(&exe)
        .arg(format!("{ROOT}/tests/capi/capi_test.c"))
        .args(flags.split_whitespace()));

    // A fresh bucket for publish, made with the library's own S3 client.
    let (endpoint, region, access) = (var("RBD_EXT_S3_ENDPOINT"), var("RBD_EXT_S3_REGION"), var("RBD_EXT_S3_ACCESS_KEY"));
    let secret = std::fs::read_to_string(var("RBD_EXT_S3_SECRET_FILE")).unwrap().trim().to_string();
    let bucket = common::unique("capi").to_lowercase();
    let mut cfg = rbd_ext::s3::S3Config::new(&endpoint, region, &bucket);
    cfg.credentials = Some(rbd_ext::s3::Credentials { access_key: access, secret_key: secret, session_token: None });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(rbd_ext::s3::S3Client::new(cfg).unwrap().create_bucket(&bucket)).unwrap();

    let data_pool = common::TempPool::new("capi-data");
    let remote = Remote::up();
    let out = Command::new(&exe)
        .arg(common::unique("capi"))
        .env("LD_LIBRARY_PATH", prefix.0.join("lib"))
        .env("RBD_EXT_CAPI_VERSION", version.trim())
        .env("RBD_EXT_CAPI_BUCKET", &bucket)
        .env("RBD_EXT_CAPI_DATA_POOL", &data_pool.0)
        .env("RBD_EXT_CAPI_REMOTE_CONF", &remote.conf)
        .env("RBD_EXT_CAPI_REMOTE_KEYRING", remote.keyring())
        // No suppressions: neither librados nor librbd leaks anything this program reaches.
        .env("ASAN_OPTIONS", "detect_leaks=1")
        .env_remove("LSAN_OPTIONS")
        .output()
        .unwrap();
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && so.contains("capi_test: ok"), "capi_test failed ({}):\n--- stdout\n{so}\n--- stderr\n{se}", out.status);
    assert!(!se.contains("LeakSanitizer") && !se.contains("AddressSanitizer"), "sanitizer report:\n{se}");
}

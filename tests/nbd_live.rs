//! `rbd-ext nbd serve` against real NBD clients (issue 11): `qemu-img compare` and
//! `qemu-io` (qemu-utils), `nbdinfo --map` (libnbd-bin), a libnbd-driven random mix at queue
//! depth 8 ([tests/nbd/mix.py], python3-libnbd), a protocol fuzz, and SIGTERM mid-writes;
//! for a local child, a child of a parent in a second cluster, and an S3 child (and its
//! S3-backed parent, served read-only).
//!
//! Needs `eval "$(qa/cluster up --rgw)"` and the release CLI:
//! `RBD_EXT_BIN=$PWD/target/release/rbd-ext cargo test --features live,test-methods --test nbd_live`.
//! The tests run one at a time ([`serial`]): each drives a server as hard as the machine allows.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rbd_ext::s3::{Credentials, S3Client, S3Config};

const MIB: usize = 1 << 20;
const PYTHON: &str = "/usr/bin/python3";

fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

fn bin() -> PathBuf {
    common::rbd_ext_bin()
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run rbd-ext {args:?}: {e}"))
}

fn ok(args: &[&str]) -> Vec<u8> {
    let o = run(args);
    assert!(o.status.success(), "rbd-ext {args:?} failed ({}): {}", o.status, String::from_utf8_lossy(&o.stderr));
    o.stdout
}

fn tool(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run {cmd} (install it with qa/setup): {e}"))
}

fn tool_ok(cmd: &str, args: &[&str]) -> String {
    let o = tool(cmd, args);
    assert!(o.status.success(), "{cmd} {args:?} failed ({}): {}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a test made, removed at the end (children before parents).
#[derive(Default)]
struct Cleanup {
    images: Vec<String>,
    files: Vec<PathBuf>,
    config_keys: Vec<String>,
}

impl Cleanup {
    fn image(&mut self, prefix: &str) -> String {
        let name = format!("rbd/{}", common::unique(prefix));
        self.images.push(name.clone());
        name
    }

    fn file(&mut self, prefix: &str, data: &[u8]) -> PathBuf {
        let p = self.path(prefix);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn path(&mut self, prefix: &str) -> PathBuf {
        let p = std::env::temp_dir().join(common::unique(prefix));
        self.files.push(p.clone());
        p
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for img in self.images.iter().rev() {
            if !Command::new(bin()).args(["rm", img]).output().is_ok_and(|o| o.status.success()) {
                let _ = Command::new("rbd").args(["rm", "--no-progress", img]).output();
            }
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for k in &self.config_keys {
            let _ = Command::new("ceph").args(["config-key", "rm", k]).output();
        }
    }
}

/// A running `rbd-ext nbd serve` on a Unix socket of its own.
struct Server {
    child: Child,
    uri: String,
    socket: PathBuf,
    log: PathBuf,
}

impl Server {
    fn start(spec: &str, extra: &[&str]) -> Server {
        let socket = std::env::temp_dir().join(format!("{}.sock", common::unique("nbd")));
        let log = std::env::temp_dir().join(common::unique("nbd-log"));
        let mut child = Command::new(bin())
            .args(["nbd", "serve", spec, "--socket", socket.to_str().unwrap()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let uri = line.trim().to_string();
        let mut s = Server { child, uri, socket, log };
        assert!(s.uri.starts_with("nbd+unix:///"), "no URI on stdout ({:?}); stderr: {}", s.uri, s.stderr());
        assert_eq!(s.uri, format!("nbd+unix:///{}?socket={}", spec.rsplit('/').next().unwrap(), s.socket.display()));
        assert!(s.alive());
        s
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn signal(&self, sig: &str) {
        tool_ok("kill", &[sig, &self.child.id().to_string()]);
    }

    /// SIGTERM, then the exit status (within 60 s) and the log.
    fn stop(mut self) -> (ExitStatus, String) {
        self.signal("-TERM");
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, self.stderr());
            }
            assert!(t.elapsed() < Duration::from_secs(60), "the server did not stop within 60 s of SIGTERM: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Stops the server and checks it went as documented: exit 0, lock released.
fn stop_cleanly(s: Server, spec: &str) {
    let (st, log) = s.stop();
    assert!(st.success(), "exit status {st} after SIGTERM; log:\n{log}");
    assert!(log.contains("SIGTERM: no new connections") && log.contains(&format!("stopped; {spec} flushed")), "{log}");
    assert!(ok(&["lock", "ls", spec]).is_empty(), "a lock is left on {spec}");
}

/// `nbdinfo --map`: (offset, length, type) per extent.
fn nbd_map(uri: &str) -> Vec<(u64, u64, u32)> {
    tool_ok("nbdinfo", &["--map", uri])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect()
}

/// `qemu-img compare` of the export with a raw file: identical or the test fails.
fn qemu_compare(expected: &Path, uri: &str) {
    let o = tool("qemu-img", &["compare", "-f", "raw", "-F", "raw", expected.to_str().unwrap(), uri]);
    assert!(o.status.success(), "qemu-img compare: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// The libnbd random mix (tests/nbd/mix.py) from `model`; returns the model after it.
fn random_mix(c: &mut Cleanup, uri: &str, model: &[u8], seed: u64, ops: u32) -> Vec<u8> {
    let before = c.file("nbd-model", model);
    let after = c.path("nbd-model-after");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nbd/mix.py");
    let out =
        tool_ok(PYTHON, &[script.to_str().unwrap(), "mix", uri, before.to_str().unwrap(), after.to_str().unwrap(), &seed.to_string(), &ops.to_string(), "8"]);
    println!("mix: {out}");
    let field = |k: &str| common::json_u64(&out, k);
    assert_eq!(field("ops"), u64::from(ops), "{out}");
    assert_eq!(field("errors"), 0, "{out}");
    assert_eq!(field("mismatches"), 0, "{out}");
    assert!(field("max_in_flight") >= 8, "queue depth 8 never reached: {out}");
    assert!(field("reads") > 0 && field("writes") > 0 && field("trims") > 0 && field("zeroes") > 0, "{out}");
    std::fs::read(after).unwrap()
}

/// Holds a range: `(offset, length, nbdinfo type)`, 0 data, 2 zero, 3 hole.
fn extents(list: &[(usize, usize, u32)]) -> Vec<(u64, u64, u32)> {
    list.iter().map(|&(o, n, t)| (o as u64, n as u64, t)).collect()
}

#[test]
fn local_child_over_nbd() {
    let _s = serial();
    let mut c = Cleanup::default();
    // 8 objects of 1 MiB; the parent holds 0, 2, 5 (half) and 7.
    let mut data = common::random(8 * MIB, 0x4e42);
    for n in [1, 3, 4, 6] {
        data[n * MIB..(n + 1) * MIB].fill(0);
    }
    data[5 * MIB + MIB / 2..6 * MIB].fill(0);
    let src = c.file("nbd-src", &data);
    let parent = c.image("nbd-parent");
    let child = c.image("nbd-child");
    common::stock_ok("rbd", &["import", "--no-progress", "--object-size", "1M", src.to_str().unwrap(), &parent]);
    ok(&["clone-standalone", &parent, &child]);

    let s = Server::start(&child, &[]);
    qemu_compare(&src, &s.uri);
    let m = MIB;
    assert_eq!(nbd_map(&s.uri), extents(&[(0, m, 0), (m, m, 3), (2 * m, m, 0), (3 * m, 2 * m, 3), (5 * m, m, 0), (6 * m, m, 3), (7 * m, m, 0)]));

    // One writer: a second server or writer is refused, naming the server's client.
    let log = s.stderr();
    let locker = log.split("as client.").nth(1).and_then(|r| r.split_whitespace().next()).map(|id| format!("client.{id}"));
    let locker = locker.unwrap_or_else(|| panic!("the server does not name its client: {log}"));
    let ls = String::from_utf8(ok(&["lock", "ls", &child])).unwrap();
    assert!(ls.lines().any(|l| l.starts_with(&format!("{locker} "))), "lock ls does not name {locker}:\n{ls}");
    let o = run(&["nbd", "serve", &child, "--socket", "/tmp/nbd-second-writer.sock"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("image {child} is open for writing by {locker}")) && err.trim_end().ends_with("(EBUSY)"), "{err}");
    assert!(o.stdout.is_empty(), "a refused server printed a URI");

    // qemu-io: a copy-up write, a whole-object discard and zero write (holes punched: the
    // objects become empty, hiding the parent), a NO_HOLE zero write (real zeros: data).
    let mut model = data.clone();
    let cmds = ["write -P 0xab 3670016 65536", "discard 2097152 1048576", "write -z -u 6291456 1048576", "write -z 4456448 4096"];
    let mut args: Vec<&str> = vec!["-f", "raw"];
    for x in &cmds {
        args.extend(["-c", x]);
    }
    args.push(&s.uri);
    tool_ok("qemu-io", &args);
    model[3670016..3670016 + 65536].fill(0xab);
    model[2 * m..3 * m].fill(0);
    model[6 * m..7 * m].fill(0);
    model[4456448..4456448 + 4096].fill(0);
    let expected = c.file("nbd-expected", &model);
    qemu_compare(&expected, &s.uri);
    assert_eq!(nbd_map(&s.uri), extents(&[(0, m, 0), (m, m, 3), (2 * m, m, 2), (3 * m, 3 * m, 0), (6 * m, m, 2), (7 * m, m, 0)]));

    let model = random_mix(&mut c, &s.uri, &model, 11, 2000);
    stop_cleanly(s, &child);
    assert!(ok(&["export", &child, "-"]) == model, "rbd-ext export differs from the model");
    let stock = c.path("nbd-stock-export");
    common::stock_ok("rbd", &["export", "--no-progress", &child, stock.to_str().unwrap()]);
    assert!(std::fs::read(&stock).unwrap() == model, "rbd export differs from the model");
    common::stock_ok("rbd", &["object-map", "check", "--no-progress", &child]);
}

struct S3Env {
    endpoint: String,
    region: String,
    access_key: String,
    secret_file: String,
}

fn s3_env() -> S3Env {
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set: run `eval \"$(qa/cluster up --rgw)\"` first"));
    S3Env {
        endpoint: var("RBD_EXT_S3_ENDPOINT"),
        region: var("RBD_EXT_S3_REGION"),
        access_key: var("RBD_EXT_S3_ACCESS_KEY"),
        secret_file: var("RBD_EXT_S3_SECRET_FILE"),
    }
}

/// Publishes `file` to a fresh bucket (returned; the key is `img.raw`) and makes `parent`
/// an S3-backed image of it.
fn s3_parent(c: &mut Cleanup, file: &Path, parent: &str) -> String {
    let e = s3_env();
    let bucket = common::unique("nbd-s3").to_lowercase();
    let secret = std::fs::read_to_string(&e.secret_file).unwrap().trim().to_string();
    let mut cfg = S3Config::new(&e.endpoint, &e.region, &bucket);
    cfg.credentials = Some(Credentials { access_key: e.access_key.clone(), secret_key: secret, session_token: None });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(S3Client::new(cfg).unwrap().create_bucket(&bucket)).unwrap();
    let keys = ["--access-key", &e.access_key, "--secret-key-file", &e.secret_file];
    let dest = format!("s3://{bucket}/img.raw");
    let mut args = vec!["s3", "publish", file.to_str().unwrap(), &dest, "--endpoint", &e.endpoint, "--region", &e.region];
    args.extend(keys);
    ok(&args);
    let mut args = vec!["s3", "attach", parent, "--endpoint", &e.endpoint, "--bucket", &bucket, "--key", "img.raw", "--region", &e.region];
    args.extend(keys);
    ok(&args);
    c.config_keys.push(format!("rbd-ext/s3/{bucket}-{}", e.access_key));
    bucket
}

/// The raw image the S3 tests publish: 6 objects of 4 MiB of `seed`'s bytes, objects 1 and
/// 4 zero (manifest holes, never fetched).
fn s3_image_bytes(seed: u64) -> Vec<u8> {
    let mut data = common::random(24 * MIB, seed);
    for n in [1, 4] {
        data[n * 4 * MIB..(n + 1) * 4 * MIB].fill(0);
    }
    data
}

#[test]
fn s3_child_and_parent_over_nbd() {
    let _s = serial();
    let mut c = Cleanup::default();
    let data = s3_image_bytes(0x53);
    let src = c.file("nbd-s3-src", &data);
    let parent = c.image("nbd-s3-parent");
    let child = c.image("nbd-s3-child");
    s3_parent(&mut c, &src, &parent);
    let q = 4 * MIB;
    let expected_map = extents(&[(0, q, 0), (q, q, 3), (2 * q, 2 * q, 0), (4 * q, q, 3), (5 * q, q, 0)]);

    // The S3-backed parent: read-only without being asked.
    let s = Server::start(&parent, &[]);
    assert!(s.stderr().contains("serving it read-only"), "{}", s.stderr());
    let info = tool_ok("nbdinfo", &[&s.uri]);
    assert!(info.contains("is_read_only: true"), "{info}");
    assert_eq!(nbd_map(&s.uri), expected_map);
    qemu_compare(&src, &s.uri);
    let o = tool("qemu-io", &["-f", "raw", "-c", "write 0 4096", &s.uri]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("wrote"), "a write to the S3-backed parent went through");
    let (st, log) = s.stop();
    assert!(st.success(), "{log}");

    ok(&["clone-standalone", &parent, &child]);
    let s = Server::start(&child, &[]);
    assert_eq!(nbd_map(&s.uri), expected_map);
    qemu_compare(&src, &s.uri);
    let model = random_mix(&mut c, &s.uri, &data, 12, 2000);
    stop_cleanly(s, &child);
    assert!(ok(&["export", &child, "-"]) == model, "rbd-ext export differs from the model");
}

/// `nbdcopy` (4 connections, many requests in flight, several on one object at once) of an S3
/// child whose parent was never read: radosgw serves exactly one ranged GET per non-zero
/// object and none for the manifest's holes, and a second copy costs no GET at all.
#[test]
fn nbdcopy_of_an_s3_child_costs_one_ranged_get_per_object() {
    let _s = serial();
    let mut c = Cleanup::default();
    let data = s3_image_bytes(0x5c);
    let src = c.file("nbd-copy-src", &data);
    let parent = c.image("nbd-copy-parent");
    let child = c.image("nbd-copy-child");
    let bucket = s3_parent(&mut c, &src, &parent);
    ok(&["clone-standalone", &parent, &child]);
    let s = Server::start(&child, &[]);
    for round in 0..2 {
        let out = c.path("nbd-copy-out");
        let log = common::rgw::RgwLog::mark();
        tool_ok("nbdcopy", &["--connections=4", "--requests=16", "--request-size=1048576", &s.uri, out.to_str().unwrap()]);
        let gets = log.gets_blocking(&bucket, "img.raw");
        assert!(std::fs::read(&out).unwrap() == data, "round {round}: nbdcopy's copy differs from the source");
        if round == 0 {
            assert_eq!(gets.len(), 4, "one ranged GET per non-zero object: {gets:?}");
            let got: std::collections::BTreeSet<String> = gets.into_iter().collect();
            assert_eq!(got, common::rgw::ranges_of(4 * MIB, [0, 2, 3, 5]), "the GETs fetch objects 0, 2, 3, 5, each once");
        } else {
            assert!(gets.is_empty(), "the second copy fetched from S3 again: {gets:?}");
        }
    }
    stop_cleanly(s, &child);
}

/// The `lock ls --format json` entries of `spec`: (locker, cookie).
fn lockers(spec: &str) -> Vec<(String, String)> {
    let out = String::from_utf8(ok(&["lock", "ls", "--format", "json", spec])).unwrap();
    let field = |entry: &str, k: &str| {
        let v = entry.split(&format!("\"{k}\":\"")).nth(1).unwrap_or_else(|| panic!("no {k} in {out}"));
        v[..v.find('"').unwrap()].to_string()
    };
    out.split('{').skip(1).map(|e| (field(e, "locker"), field(e, "id"))).collect()
}

/// SIGKILL of the server mid-writes, each write a copy-up of a child's object or a write into
/// one already copied up: every block is all-old (the parent's bytes) or all-new, every
/// acknowledged block is new; the dead server's lock refuses a new writer until `rbd-ext
/// lock rm`, after which the image serves again and its clone map and stock object map agree
/// with its objects: nothing else to repair by hand.
#[test]
fn sigkill_mid_writes_leaves_every_block_old_or_new() {
    let _s = serial();
    let mut c = Cleanup::default();
    const BLOCK: usize = 64 * 1024;
    let size = 64 * MIB;
    let pdata = common::random(size, 0x4b);
    let src = c.file("nbd-kill-src", &pdata);
    let parent = c.image("nbd-kill-parent");
    let child = c.image("nbd-kill-child");
    common::stock_ok("rbd", &["import", "--no-progress", src.to_str().unwrap(), &parent]);
    ok(&["clone-standalone", &parent, &child]);

    let mut s = Server::start(&child, &[]);
    let acked = c.path("nbd-kill-acked");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nbd/mix.py");
    let mut writer = Command::new(PYTHON)
        .args([script.to_str().unwrap(), "acked", &s.uri, acked.to_str().unwrap(), &BLOCK.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_acks(&mut writer, 128);
    s.signal("-KILL");
    let st = s.child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9), "{st}");
    let w = writer.wait_with_output().unwrap();
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));

    // The dead server still holds the lock: a new writer is refused until `lock rm`.
    let held = lockers(&child);
    assert_eq!(held.len(), 1, "the killed server's lock: {held:?}");
    let o = run(&["nbd", "serve", &child, "--socket", "/tmp/nbd-after-kill.sock"]);
    assert_eq!(o.status.code(), Some(1), "a writer while the dead server's lock is held: {}", String::from_utf8_lossy(&o.stderr));
    ok(&["lock", "rm", &child, &held[0].0, &held[0].1]);
    assert!(lockers(&child).is_empty());

    let done: std::collections::BTreeSet<usize> = std::fs::read_to_string(&acked).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    let blocks = size / BLOCK;
    println!("{} of {blocks} writes acknowledged before SIGKILL", done.len());
    assert!(!done.is_empty() && done.len() < blocks, "SIGKILL did not land mid-writes ({} of {blocks} acknowledged)", done.len());
    let s = Server::start(&child, &[]);
    let now = c.path("nbd-kill-now");
    tool_ok("nbdcopy", &[&s.uri, now.to_str().unwrap()]);
    stop_cleanly(s, &child);
    let now = std::fs::read(&now).unwrap();
    let (mut old, mut new) = (0, 0);
    for i in 0..blocks {
        let range = i * BLOCK..(i + 1) * BLOCK;
        let want = (i % 251 + 1) as u8;
        if now[range.clone()].iter().all(|&b| b == want) {
            new += 1;
        } else {
            assert!(!done.contains(&i), "acknowledged block {i} is not on the image");
            assert!(now[range.clone()] == pdata[range], "block {i} is neither the parent's bytes nor the write's: a torn write");
            old += 1;
        }
    }
    println!("after SIGKILL: {new} blocks new, {old} old");
    ok(&["clone-map", "check", &child]);
    common::stock_ok("rbd", &["object-map", "check", "--no-progress", &child]);
    assert!(ok(&["export", &parent, "-"]) == pdata, "the parent changed");
}

/// The server's watch on the header breaks (the server stopped past the OSD's watch timeout,
/// so the OSD dropped the watch): the server watches again and moves its lock to the new
/// watch, as librbd does. Without that, librbd would find the lock owner dead, blocklist the
/// server and take the lock; with it, a librbd writer is refused and the server writes on.
#[test]
fn a_broken_watch_is_registered_again_and_keeps_the_lock() {
    let _s = serial();
    let mut c = Cleanup::default();
    let image = c.image("nbd-rewatch");
    common::stock_ok("rbd", &["create", "--size", "16M", &image]);
    let (pool, name) = image.split_once('/').unwrap();
    let info = common::stock_ok("rbd", &["info", "--format", "json", &image]);
    let id = info.split("\"id\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_else(|| panic!("no id: {info}"));
    let header = format!("rbd_header.{id}");
    let watchers = || common::stock_ok("rados", &["-p", pool, "listwatchers", &header]).lines().count();

    struct WatchTimeout;
    impl Drop for WatchTimeout {
        fn drop(&mut self) {
            let _ = Command::new("ceph").args(["config", "rm", "osd", "osd_client_watch_timeout"]).output();
        }
    }
    common::stock_ok("ceph", &["config", "set", "osd", "osd_client_watch_timeout", "3"]);
    let _restore = WatchTimeout;
    let mut s = Server::start(&image, &[]);
    assert_eq!(watchers(), 1, "the server watches its header");
    s.signal("-STOP");
    let t = Instant::now();
    while watchers() != 0 {
        assert!(t.elapsed() < Duration::from_secs(30), "the OSD never dropped the stopped server's watch");
        std::thread::sleep(Duration::from_millis(250));
    }
    s.signal("-CONT");
    // The next ping finds the watch gone (ENOTCONN): the server registers a new one.
    let t = Instant::now();
    while watchers() != 1 {
        assert!(t.elapsed() < Duration::from_secs(30), "the server never watched its header again");
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_millis(500));
    let script = format!(
        "import rados, rbd\n\
         c = rados.Rados(conffile='{conf}'); c.connect(); io = c.open_ioctx('{pool}')\n\
         im = rbd.Image(io, '{name}')\n\
         try:\n    im.write(b'x' * 512, 0)\n    print('WROTE')\n\
         except rbd.ReadOnlyImage:\n    print('EROFS')\n\
         im.close(); io.close(); c.shutdown()\n",
        conf = std::env::var("CEPH_CONF").unwrap()
    );
    let o = tool("timeout", &["60", PYTHON, "-c", &script]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "EROFS", "librbd after the re-watch: {}", String::from_utf8_lossy(&o.stderr));
    let o = tool("qemu-io", &["-f", "raw", "-c", "write -P 0x5a 0 65536", &s.uri]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("wrote 65536/65536"), "the server writes on: {}", String::from_utf8_lossy(&o.stdout));
    assert!(s.alive(), "{}", s.stderr());
    stop_cleanly(s, &image);
    assert!(ok(&["read", &image, "--offset", "0", "--length", "65536", "--output", "-"]).iter().all(|&b| b == 0x5a));
}

/// Frames a fuzzing connection sends, by kind of connection.
struct Fuzz {
    rng: u64,
    size: u64,
    frames: usize,
}

impl Fuzz {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// One connection: garbage, option frames, or a good handshake then requests. Stops at
    /// the first refused write (the server closed) or after a few dozen frames.
    fn connection(&mut self, socket: &Path) {
        let mut s = UnixStream::connect(socket).expect("the server accepts connections");
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = s.try_clone().unwrap();
        r.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // Replies are drained (and dropped) so that the server never blocks on us.
        let drain = std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
        let mode = self.below(8);
        let _ = self.frames_on(&mut s, mode);
        let _ = s.shutdown(std::net::Shutdown::Both);
        let _ = drain.join();
    }

    fn frames_on(&mut self, s: &mut UnixStream, mode: u64) -> std::io::Result<()> {
        if mode == 0 {
            self.frames += 1;
            let n = 1 + self.below(64) as usize;
            return s.write_all(&self.bytes(n));
        }
        let flags: u32 = if self.below(10) == 0 { self.next() as u32 } else { 3 };
        s.write_all(&flags.to_be_bytes())?;
        self.frames += 1;
        if mode <= 2 {
            for _ in 0..1 + self.below(30) {
                self.option_frame(s)?;
            }
            return Ok(());
        }
        // A real negotiation, then requests.
        let opt = |o: u32, d: &[u8]| {
            let mut b = 0x4948_4156_454f_5054u64.to_be_bytes().to_vec();
            b.extend_from_slice(&o.to_be_bytes());
            b.extend_from_slice(&(d.len() as u32).to_be_bytes());
            b.extend_from_slice(d);
            b
        };
        if self.below(2) == 0 {
            s.write_all(&opt(8, &[]))?;
            let mut q = 0u32.to_be_bytes().to_vec();
            q.extend_from_slice(&1u32.to_be_bytes());
            q.extend_from_slice(&15u32.to_be_bytes());
            q.extend_from_slice(b"base:allocation");
            s.write_all(&opt(10, &q))?;
        }
        s.write_all(&opt(7, &[0, 0, 0, 0, 0, 0]))?;
        self.frames += 1;
        for _ in 0..1 + self.below(60) {
            self.request_frame(s)?;
        }
        Ok(())
    }

    fn option_frame(&mut self, s: &mut UnixStream) -> std::io::Result<()> {
        self.frames += 1;
        let magic: u64 = if self.below(20) == 0 { self.next() } else { 0x4948_4156_454f_5054 };
        let option = if self.below(4) == 0 { self.next() as u32 } else { self.below(12) as u32 };
        let n = self.below(40) as usize;
        let payload = self.bytes(n);
        let len = match self.below(6) {
            0 => self.next() as u32,       // lies: huge
            1 => payload.len() as u32 + 5, // lies: truncated
            _ => payload.len() as u32,
        };
        let mut b = magic.to_be_bytes().to_vec();
        b.extend_from_slice(&option.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&payload);
        s.write_all(&b)
    }

    fn request_frame(&mut self, s: &mut UnixStream) -> std::io::Result<()> {
        self.frames += 1;
        let size = self.size;
        let magic: u32 = if self.below(40) == 0 { self.next() as u32 } else { 0x2560_9513 };
        let kind = if self.below(8) == 0 { self.next() as u16 } else { self.below(9) as u16 };
        let flags = if self.below(3) == 0 { self.next() as u16 } else { 0 };
        let len: u32 = match self.below(6) {
            0 => 0,
            1 => 1 + self.below(4096) as u32,
            2 => 32 * MIB as u32 + 1,
            3 => u32::MAX,
            _ => 1 + self.below(2 * MIB as u64) as u32,
        };
        let mut off: u64 = match self.below(7) {
            0 => 0,
            1 => size - 1,
            2 => size,
            3 => u64::MAX - self.below(4096),
            4 => self.below(size),
            5 => size + self.below(1 << 40),
            _ => self.next(),
        };
        // Nothing the fuzz sends may change the data: a mutation that lies inside the image
        // is moved past its end (the server must refuse it).
        let mutating = matches!(kind, 1 | 4 | 6);
        if mutating && len > 0 && off.checked_add(u64::from(len)).is_some_and(|e| e <= size) {
            off = size + self.below(size);
        }
        let mut b = magic.to_be_bytes().to_vec();
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&kind.to_be_bytes());
        b.extend_from_slice(&self.next().to_be_bytes());
        b.extend_from_slice(&off.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
        if kind == 1 {
            // A WRITE's payload: whole, or cut short (then the connection ends).
            let whole = self.below(3) != 0 && len <= MIB as u32;
            let n = if whole { len as usize } else { self.below(u64::from(len.min(MIB as u32)) + 1) as usize };
            let payload = self.bytes(n);
            b.extend_from_slice(&payload);
            s.write_all(&b)?;
            if !whole {
                return Err(std::io::Error::other("truncated on purpose"));
            }
            return Ok(());
        }
        s.write_all(&b)
    }
}

#[test]
fn protocol_fuzz_leaves_the_server_up_and_the_data_intact() {
    let _s = serial();
    let mut c = Cleanup::default();
    let data = common::random(4 * MIB, 0xf022);
    let src = c.file("nbd-fuzz-src", &data);
    let image = c.image("nbd-fuzz");
    common::stock_ok("rbd", &["import", "--no-progress", "--object-size", "1M", src.to_str().unwrap(), &image]);
    let mut s = Server::start(&image, &[]);
    let mut f = Fuzz { rng: 0x9e37_79b9_7f4a_7c15, size: data.len() as u64, frames: 0 };
    let mut conns = 0;
    while f.frames < 10_000 {
        f.connection(&s.socket);
        conns += 1;
        assert!(s.alive(), "the server died after {} frames: {}", f.frames, s.stderr());
    }
    println!("fuzz: {} frames over {conns} connections", f.frames);
    assert!(s.alive());
    // A panic inside a connection's task would not stop the server: look for its trace.
    assert!(!s.stderr().contains("panicked"), "{}", s.stderr());
    qemu_compare(&src, &s.uri);
    stop_cleanly(s, &image);
    assert!(ok(&["export", &image, "-"]) == data, "a fuzz frame changed the image");
}

/// Returns once the `mix.py acked` writer has `n` writes acknowledged (its progress lines), so
/// that a signal sent next lands mid-writes however fast the machine is.
fn wait_for_acks(writer: &mut Child, n: usize) {
    let mut progress = BufReader::new(writer.stdout.take().unwrap()).lines();
    while progress.next().and_then(|l| l.ok()).is_some_and(|l| l.trim().parse::<usize>().unwrap() < n) {}
}

#[test]
fn sigterm_mid_writes_keeps_every_acknowledged_write() {
    let _s = serial();
    let mut c = Cleanup::default();
    let image = c.image("nbd-term");
    const BLOCK: usize = 32 * 1024;
    common::stock_ok("rbd", &["create", "--size", "128M", &image]);
    let s = Server::start(&image, &[]);
    let acked = c.path("nbd-acked");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nbd/mix.py");
    let mut writer = Command::new(PYTHON)
        .args([script.to_str().unwrap(), "acked", &s.uri, acked.to_str().unwrap(), &BLOCK.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_acks(&mut writer, 256);
    let (st, log) = s.stop();
    let w = writer.wait_with_output().unwrap();
    assert!(st.success(), "exit status {st} after SIGTERM:\n{log}");
    assert!(log.contains(&format!("stopped; {image} flushed and its lock released")), "{log}");
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let done: Vec<usize> = std::fs::read_to_string(&acked).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    let blocks = 128 * MIB / BLOCK;
    println!("{} of {blocks} writes acknowledged before SIGTERM", done.len());
    assert!(!done.is_empty() && done.len() < blocks, "SIGTERM did not land mid-writes ({} of {blocks} acknowledged)", done.len());
    assert!(ok(&["lock", "ls", &image]).is_empty());
    let now = ok(&["export", &image, "-"]);
    for i in done {
        let want = (i % 251 + 1) as u8;
        assert!(now[i * BLOCK..(i + 1) * BLOCK].iter().all(|&b| b == want), "acknowledged block {i} is not on the image");
    }
}

/// A second cluster booted for one test (`qa/cluster up --name`), stopped on drop.
struct OtherCluster {
    name: String,
    conf: String,
    keyring: String,
}

impl OtherCluster {
    fn up(name: String) -> OtherCluster {
        let qa = Path::new(env!("CARGO_MANIFEST_DIR")).join("qa/cluster");
        let out = Command::new(&qa).args(["up", "--name", &name]).output().unwrap();
        assert!(out.status.success(), "qa/cluster up --name {name}: {}", String::from_utf8_lossy(&out.stderr));
        let env = String::from_utf8_lossy(&out.stdout).into_owned();
        let conf = env.lines().find_map(|l| l.strip_prefix("export CEPH_CONF=")).unwrap().trim_matches('\'').to_string();
        let keyring = Path::new(&conf).parent().unwrap().join("keyring").to_string_lossy().into_owned();
        OtherCluster { name, conf, keyring }
    }
}

impl Drop for OtherCluster {
    fn drop(&mut self) {
        let qa = Path::new(env!("CARGO_MANIFEST_DIR")).join("qa/cluster");
        let _ = Command::new(qa).args(["down", "--name", &self.name]).status();
    }
}

#[test]
fn remote_child_over_nbd() {
    let _s = serial();
    let remote = OtherCluster::up(format!("nbdremote-{}", std::process::id()));
    let mut c = Cleanup::default();
    c.config_keys.push(format!("rbd-ext/remote/{}/client.admin", remote.name));
    // 8 objects of 1 MiB in the other cluster; 1 and 3 are zero (never written by import).
    let mut data = common::random(8 * MIB, 0x7e30);
    for n in [1, 3] {
        data[n * MIB..(n + 1) * MIB].fill(0);
    }
    let src = c.file("nbd-remote-src", &data);
    let parent = format!("rbd/{}", common::unique("nbd-rparent"));
    let o = Command::new("rbd")
        .args(["import", "--no-progress", "--object-size", "1M", src.to_str().unwrap(), &parent])
        .env("CEPH_CONF", &remote.conf)
        .output()
        .unwrap();
    assert!(o.status.success(), "rbd import into {}: {}", remote.name, String::from_utf8_lossy(&o.stderr));
    let child = c.image("nbd-rchild");
    ok(&[
        "clone-standalone",
        "--remote-cluster-conf",
        &remote.conf,
        "--remote-keyring",
        &remote.keyring,
        "--remote-cluster-name",
        &remote.name,
        &parent,
        &child,
    ]);

    let s = Server::start(&child, &[]);
    let m = MIB;
    assert_eq!(nbd_map(&s.uri), extents(&[(0, m, 0), (m, m, 3), (2 * m, m, 0), (3 * m, m, 3), (4 * m, 4 * m, 0)]));
    qemu_compare(&src, &s.uri);
    let model = random_mix(&mut c, &s.uri, &data, 13, 2000);
    stop_cleanly(s, &child);
    assert!(ok(&["export", &child, "-"]) == model, "rbd-ext export differs from the model");
}

//! S3-backed parents end to end (issue 5 acceptance): `rbd-ext s3 publish|attach|show|verify`,
//! `hydrate`, `stats` and reads through children, against a real radosgw, directly and
//! through the fault-injecting proxy.
//!
//! Needs a cluster with radosgw: `eval "$(qa/cluster up --rgw)"` exports `RBD_EXT_S3_*` and
//! `RBD_EXT_RGW_LOG`. The CLI is the release binary named by `RBD_EXT_BIN` (as in
//! `cli_live.rs`, else `target/debug/rbd-ext`):
//! `RBD_EXT_BIN=$PWD/target/release/rbd-ext cargo test --features live,test-methods --test s3_backfill_live`.
//!
//! Requests are counted in radosgw's access log (one `beast:` line per request, with the
//! `Range` header): only the lines logged after a mark, and only once a sentinel request made
//! afterwards shows up there, so the count holds every earlier request.
//!
//! The tests run one at a time ([`serial`]): they measure latencies and count requests on a
//! small machine, and eight `export` processes or sixteen clients at once are load enough.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rbd_ext::rados::{Cluster, ConnectOptions, ReadOp, ReadStep, StepOut};
use rbd_ext::s3::testproxy::{Fault, Rule, TestProxy, TlsFront};
use rbd_ext::s3::{Credentials, Manifest, PutOptions, S3Client, S3Config, MANIFEST_SUFFIX};
use rbd_ext::{Image, ImageSpec, OpenOptions};

const MIB: usize = 1 << 20;
/// Object size of the published images (the default of `s3 publish` and of RBD).
const OS: usize = 4 * MIB;
/// The omap key of a fill claim on a parent data object.
const CLAIM_KEY: &str = "rbd_ext_backfill";

// ------------------------------------------------------------------------- harness

/// One test at a time (see the module doc); an async lock, as it is held across awaits.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static M: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    M.lock().await
}

struct Env {
    conf: String,
    endpoint: String,
    region: String,
    access_key: String,
    secret_file: String,
    secret: String,
    rgw_log: PathBuf,
    cluster_dir: PathBuf,
}

/// The gateway, the test user and the logs. Panics with the fix when they are missing:
/// these tests are built only with `--features live`.
fn env() -> Env {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `eval \"$(qa/cluster up --rgw)\"` first (the S3 back-fill tests need radosgw)"))
    };
    let secret_file = var("RBD_EXT_S3_SECRET_FILE");
    let secret = std::fs::read_to_string(&secret_file).unwrap_or_else(|e| panic!("read {secret_file}: {e}")).trim().to_string();
    assert!(secret.len() >= 16, "{secret_file}: a secret this short would make the leak checks meaningless");
    Env {
        conf: var("CEPH_CONF"),
        endpoint: var("RBD_EXT_S3_ENDPOINT"),
        region: var("RBD_EXT_S3_REGION"),
        access_key: var("RBD_EXT_S3_ACCESS_KEY"),
        secret_file,
        secret,
        rgw_log: PathBuf::from(var("RBD_EXT_RGW_LOG")),
        cluster_dir: PathBuf::from(var("RBD_EXT_CLUSTER_DIR")),
    }
}

/// The `rbd-ext` binary under test.
fn bin() -> PathBuf {
    common::rbd_ext_bin()
}

fn run(args: &[&str]) -> Output {
    env();
    Command::new(bin()).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run rbd-ext {args:?}: {e}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A command that must succeed with nothing on stderr; its stdout.
fn ok(args: &[&str]) -> Vec<u8> {
    let o = run(args);
    assert!(o.status.success(), "rbd-ext {args:?} failed ({}): {}", o.status, stderr(&o));
    assert!(o.stderr.is_empty(), "rbd-ext {args:?} wrote to stderr: {}", stderr(&o));
    o.stdout
}

fn ok_text(args: &[&str]) -> String {
    String::from_utf8(ok(args)).unwrap()
}

/// A command that must fail with exit status 1 and one stderr line `rbd-ext: ...`; that line.
fn fails(args: &[&str]) -> String {
    let o = run(args);
    one_error_line(args, &o)
}

fn one_error_line(args: &[&str], o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "rbd-ext {args:?}: expected exit status 1, got {}; stderr: {err}", o.status);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "rbd-ext {args:?}: expected one stderr line, got: {err}");
    assert!(lines[0].starts_with("rbd-ext: "), "rbd-ext {args:?}: {err}");
    assert!(o.stdout.is_empty(), "rbd-ext {args:?} failed but printed on stdout");
    lines[0].to_string()
}

/// `"key":"value"` in flat JSON output.
fn json_str(s: &str, key: &str) -> String {
    let pat = format!("\"{key}\":\"");
    let at = s.find(&pat).unwrap_or_else(|| panic!("{key} not in {s}")) + pat.len();
    s[at..].chars().take_while(|&c| c != '"').collect()
}

/// What a test created, removed at the end (also when it fails half-way): images newest
/// first (children before parents), files, config-keys.
struct Cleanup {
    images: Vec<String>,
    files: Vec<PathBuf>,
    config_keys: Vec<String>,
}

impl Cleanup {
    fn new() -> Cleanup {
        Cleanup { images: Vec::new(), files: Vec::new(), config_keys: Vec::new() }
    }

    /// A fresh image name in pool rbd.
    fn image(&mut self, prefix: &str) -> String {
        let name = format!("rbd/{}", common::unique(prefix));
        self.images.push(name.clone());
        name
    }

    /// A fresh file holding `data`.
    fn file(&mut self, prefix: &str, data: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(common::unique(prefix));
        std::fs::write(&p, data).unwrap();
        self.files.push(p.clone());
        p
    }

    /// Sets config-key `key` to `value` (through `ceph config-key set -i FILE`, as a user
    /// would), to be removed at the end.
    fn config_key(&mut self, key: &str, value: &str) {
        let f = self.file("s3-ck", value.as_bytes());
        common::stock_ok("ceph", &["config-key", "set", key, "-i", f.to_str().unwrap()]);
        self.config_keys.push(key.to_string());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for img in self.images.iter().rev() {
            let done = Command::new(bin()).args(["rm", img]).output().is_ok_and(|o| o.status.success());
            if !done {
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

fn s3_config(endpoint: &str, bucket: &str) -> S3Config {
    let e = env();
    let mut c = S3Config::new(endpoint, e.region, bucket);
    c.credentials = Some(Credentials::new(e.access_key, e.secret));
    c
}

/// A client of the test user on `bucket`, straight to radosgw.
fn s3(bucket: &str) -> S3Client {
    S3Client::new(s3_config(&env().endpoint, bucket)).unwrap()
}

/// A fresh bucket.
async fn new_bucket(prefix: &str) -> String {
    let b = common::unique(prefix).to_lowercase();
    s3(&b).create_bucket(&b).await.unwrap();
    b
}

/// `s3 publish FILE s3://bucket/key` with the test user's key from its file; stdout.
fn publish(file: &Path, bucket: &str, key: &str, extra: &[&str]) -> String {
    let e = env();
    let dest = format!("s3://{bucket}/{key}");
    let mut args = vec!["s3", "publish", file.to_str().unwrap(), &dest, "--endpoint", &e.endpoint, "--region", &e.region];
    args.extend(["--access-key", &e.access_key, "--secret-key-file", &e.secret_file]);
    args.extend(extra);
    ok_text(&args)
}

/// The config-key `s3 attach --secret-key-file` stores the secret under.
fn stored_secret_key(bucket: &str) -> String {
    format!("rbd-ext/s3/{bucket}-{}", env().access_key)
}

/// `s3 attach PARENT` to `s3://bucket/key` on `endpoint`, the secret from its file.
fn attach(c: &mut Cleanup, parent: &str, endpoint: &str, bucket: &str, key: &str, extra: &[&str]) {
    let e = env();
    let mut args = vec!["s3", "attach", parent, "--endpoint", endpoint, "--bucket", bucket, "--key", key, "--region", &e.region];
    args.extend(["--access-key", &e.access_key, "--secret-key-file", &e.secret_file]);
    args.extend(extra);
    assert!(ok(&args).is_empty(), "s3 attach prints nothing on success");
    let k = stored_secret_key(bucket);
    if !c.config_keys.contains(&k) {
        c.config_keys.push(k);
    }
}

fn image_id(spec: &str) -> String {
    json_str(&ok_text(&["info", "--format", "json", spec]), "id")
}

fn data_oid(image_id: &str, n: usize) -> String {
    format!("rbd_data.{image_id}.{n:016x}")
}

fn exists(spec: &str) -> bool {
    common::stock("rbd", &["info", spec]).0
}

/// After any outcome, success or failure: every data object of the parent either does not
/// exist or holds exactly the source's bytes, and none carries a claim (`rados ls / get /
/// listomapkeys`). Returns the object numbers that exist.
fn assert_parent_clean(parent_id: &str, source: &[u8]) -> BTreeSet<usize> {
    assert_parent_clean_os(parent_id, source, OS)
}

/// [`assert_parent_clean`] for objects of `os` bytes.
fn assert_parent_clean_os(parent_id: &str, source: &[u8], os: usize) -> BTreeSet<usize> {
    let prefix = format!("rbd_data.{parent_id}.");
    let listing = common::stock_ok("rados", &["-p", "rbd", "ls"]);
    let mut present = BTreeSet::new();
    for oid in listing.lines().filter(|l| l.starts_with(&prefix)) {
        let n = usize::from_str_radix(&oid[prefix.len()..], 16).unwrap();
        let keys = common::stock_ok("rados", &["-p", "rbd", "listomapkeys", oid]);
        assert!(!keys.lines().any(|k| k == CLAIM_KEY), "{oid} still carries a fill claim: {keys}");
        let tmp = std::env::temp_dir().join(common::unique("s3-obj"));
        common::stock_ok("rados", &["-p", "rbd", "get", oid, tmp.to_str().unwrap()]);
        let got = std::fs::read(&tmp).unwrap();
        let _ = std::fs::remove_file(&tmp);
        assert!(n * os < source.len(), "{oid}: past the end of the image");
        let want = &source[n * os..((n + 1) * os).min(source.len())];
        assert!(got == want, "{oid}: {} bytes that are not the source's {} bytes", got.len(), want.len());
        present.insert(n);
    }
    present
}

/// Runs `rbd-ext ARGS` in one process per entry, all at once; their outputs in order.
fn concurrently(commands: &[Vec<String>]) -> Vec<Output> {
    let children: Vec<_> = commands
        .iter()
        .map(|args| Command::new(bin()).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let waiters: Vec<_> = children.into_iter().map(|c| std::thread::spawn(move || c.wait_with_output().unwrap())).collect();
    waiters.into_iter().map(|w| w.join().unwrap()).collect()
}

/// Eight (or more) `export CHILD -` at once; each must equal `source`.
fn export_all_concurrently(children: &[String], source: &[u8]) {
    let cmds: Vec<Vec<String>> = children.iter().map(|c| vec!["export".into(), c.clone(), "-".into()]).collect();
    for (c, o) in children.iter().zip(concurrently(&cmds)) {
        assert!(o.status.success() && o.stderr.is_empty(), "export {c}: {} {}", o.status, stderr(&o));
        assert_eq!(o.stdout.len(), source.len(), "export {c}: length");
        assert!(o.stdout == source, "export {c}: not the published bytes");
    }
}

use common::rgw::RgwLog;

/// The ranged GETs that fetch objects `objects` of 4 MiB, as radosgw logs them.
fn ranges_of(objects: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    common::rgw::ranges_of(OS, objects)
}

// ------------------------------------------------------------------- acceptance

/// 64 MiB published (16 objects), 8 children read fully by 8 processes at once: every byte is
/// the source's, radosgw serves exactly one ranged GET per object, and reading everything
/// again costs none. A sparse image (every other object zero) costs half the GETs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_children_read_at_once_cost_one_get_per_object() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3acc-dense").await;
    let data = common::random(64 * MIB, 0xacc);
    let file = c.file("s3acc-dense.raw", &data);
    let out = publish(&file, &bucket, "images/base.raw", &[]);
    assert!(out.starts_with(&format!("published s3://{bucket}/images/base.raw: 64 MiB in 16 objects of 4 MiB (0 all zero)")), "{out}");

    let parent = c.image("s3acc-parent");
    attach(&mut c, &parent, &e.endpoint, &bucket, "images/base.raw", &[]);
    let children: Vec<String> = (0..8).map(|i| c.image(&format!("s3acc-child{i}"))).collect();
    for child in &children {
        ok(&["clone-standalone", &parent, child]);
    }
    let parent_id = image_id(&parent);
    assert!(assert_parent_clean(&parent_id, &data).is_empty(), "attach fetched data");

    let log = RgwLog::mark();
    let t = Instant::now();
    export_all_concurrently(&children, &data);
    let took = t.elapsed();
    let gets = log.gets(&bucket, "images/base.raw").await;
    println!("8 concurrent exports of 64 MiB children: {took:?}, {} GETs of the image: {gets:?}", gets.len());
    assert_eq!(gets.len(), 16, "one ranged GET per object, cluster-wide: {gets:?}");
    assert_eq!(gets.iter().cloned().collect::<BTreeSet<_>>(), ranges_of(0..16), "each object exactly once: {gets:?}");
    assert_eq!(assert_parent_clean(&parent_id, &data), (0..16).collect(), "every object filled, none claimed");
    let stats = ok_text(&["stats", "--format", "json", &parent]);
    assert_eq!(common::json_u64(&stats, "fills"), 16, "{stats}");
    assert_eq!(common::json_u64(&stats, "fill_failures"), 0, "{stats}");
    assert_eq!(common::json_u64(&stats, "clients"), 8, "each process saved its counters: {stats}");
    println!("counters after the first pass: {stats}");

    // Again: everything is in RADOS now.
    let log = RgwLog::mark();
    export_all_concurrently(&children, &data);
    let gets = log.gets(&bucket, "images/base.raw").await;
    assert!(gets.is_empty(), "reading filled objects costs no GET: {gets:?}");

    // Sparse: objects 1, 3, 5... all zero. The manifest marks them; they are never fetched
    // (nor written: they stay holes in RADOS).
    let bucket2 = new_bucket("s3acc-sparse").await;
    let mut sparse = common::random(64 * MIB, 0x5a5);
    for n in (1..16).step_by(2) {
        sparse[n * OS..(n + 1) * OS].fill(0);
    }
    let file2 = c.file("s3acc-sparse.raw", &sparse);
    let out = publish(&file2, &bucket2, "sparse.raw", &[]);
    assert!(out.contains("in 16 objects of 4 MiB (8 all zero)"), "{out}");
    let parent2 = c.image("s3acc-sparse-parent");
    attach(&mut c, &parent2, &e.endpoint, &bucket2, "sparse.raw", &[]);
    let children2: Vec<String> = (0..8).map(|i| c.image(&format!("s3acc-sparse-child{i}"))).collect();
    for child in &children2 {
        ok(&["clone-standalone", &parent2, child]);
    }
    let log = RgwLog::mark();
    export_all_concurrently(&children2, &sparse);
    let gets = log.gets(&bucket2, "sparse.raw").await;
    println!("sparse image (8 of 16 objects zero): {} GETs: {gets:?}", gets.len());
    assert_eq!(gets.len(), 8, "{gets:?}");
    assert_eq!(gets.into_iter().collect::<BTreeSet<_>>(), ranges_of((0..16).step_by(2)));
    assert_eq!(assert_parent_clean(&image_id(&parent2), &sparse), (0..16).step_by(2).collect(), "holes are never written");
    let stats = ok_text(&["stats", "--format", "json", &parent2]);
    assert_eq!(common::json_u64(&stats, "fills"), 8, "{stats}");
    assert!(common::json_u64(&stats, "holes") >= 8, "{stats}");
}

/// While one client fetches an object (the GET held 300 ms by the proxy), fifteen others
/// wait on its claim; each must return promptly once the object lands. Reported: p50/p99 of
/// (waiter returns) - (fill landed), the latter the earlier of the claimer's return and a
/// monitor that polls the object back to back. Target: p99 <= 50 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiters_wake_promptly_when_the_fill_lands() {
    const READERS: usize = 16;
    const ROUNDS: usize = 6;
    const OBJ: usize = MIB;
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3acc-wait").await;
    let data = common::random(64 * MIB, 0x3a17);
    let file = c.file("s3acc-wait.raw", &data);
    publish(&file, &bucket, "wait.raw", &["--object-size", "1M"]);
    let proxy = TestProxy::start(&e.endpoint).await.unwrap();
    let parent = c.image("s3acc-wait-parent");
    attach(&mut c, &parent, &proxy.endpoint(), &bucket, "wait.raw", &[]);
    let spec = ImageSpec::new("rbd", parent.strip_prefix("rbd/").unwrap());
    let parent_id = image_id(&parent);

    // Separate connections and images, as separate clients have.
    let images: Vec<Arc<Image>> = (0..READERS)
        .map(|_| {
            let cluster = Cluster::connect(&ConnectOptions::default().with_conf(e.conf.clone())).unwrap();
            Arc::new(Image::open_blocking(&cluster, &spec, OpenOptions::default()).unwrap())
        })
        .collect();
    // Warm-up: each client loads the manifest (filling one object of its own), so that the
    // only S3 request of each round is the claimer's ranged GET.
    let warm: Vec<_> = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let img = img.clone();
            tokio::spawn(async move { img.read_at(((32 + i) * OBJ) as u64, OBJ as u64).await.unwrap() })
        })
        .collect();
    for (i, w) in warm.into_iter().enumerate() {
        assert!(w.await.unwrap() == data[(32 + i) * OBJ..(33 + i) * OBJ]);
    }

    let monitor_io = Arc::new(common::rbd_pool());
    let mut latencies = Vec::new();
    for n in 0..ROUNDS {
        proxy.add(Rule::new(Fault::Delay(Duration::from_millis(300))).method("GET").path_contains(&format!("/{bucket}/wait.raw")).times(1));
        let requests_before = proxy.requests();
        let start = Arc::new(tokio::sync::Barrier::new(READERS + 2));
        let stop = Arc::new(AtomicBool::new(false));
        // The moment the object is filled (data, no claim), seen by back-to-back polls.
        let monitor = {
            let (io, start, stop, oid) = (monitor_io.clone(), start.clone(), stop.clone(), data_oid(&parent_id, n));
            tokio::spawn(async move {
                start.wait().await;
                let op = ReadOp { steps: vec![ReadStep::Stat, ReadStep::OmapGetByKeys(vec![CLAIM_KEY.into()])] };
                while !stop.load(Ordering::Relaxed) {
                    let r = io.aio_read(&oid, &op, 0).unwrap().await;
                    let seen = Instant::now();
                    if r.rc == 0 {
                        let size = matches!(r.steps.first(), Some((_, StepOut::Stat(s, _))) if *s > 0);
                        let claimed = matches!(r.steps.get(1), Some((_, StepOut::Omap(kv, _))) if !kv.is_empty());
                        if size && !claimed {
                            return Some(seen);
                        }
                    }
                    tokio::task::yield_now().await;
                }
                None
            })
        };
        let readers: Vec<_> = images
            .iter()
            .map(|img| {
                let (img, start) = (img.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let d = img.read_at((n * OBJ) as u64, OBJ as u64).await.unwrap();
                    (Instant::now(), d)
                })
            })
            .collect();
        start.wait().await;
        let mut ends = Vec::new();
        for r in readers {
            let (end, d) = r.await.unwrap();
            assert!(d == data[n * OBJ..(n + 1) * OBJ], "round {n}: wrong bytes");
            ends.push(end);
        }
        stop.store(true, Ordering::Relaxed);
        let landed = monitor.await.unwrap();
        assert_eq!(proxy.requests() - requests_before, 1, "round {n}: one GET for {READERS} clients");
        ends.sort();
        // The claimer returns first, right after its backfill_complete.
        let reference = landed.map_or(ends[0], |m| m.min(ends[0]));
        latencies.extend(ends[1..].iter().map(|t| t.saturating_duration_since(reference)));
    }
    latencies.sort();
    let pct = |q: f64| latencies[((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p50, p99, max) = (pct(0.50), pct(0.99), *latencies.last().unwrap());
    println!(
        "waiter latency after the fill landed ({} waiters, {ROUNDS} rounds of {READERS} clients): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        ms(p50),
        ms(p99),
        ms(max)
    );
    // Every waiter waited (once) on the claim, and each round filled its object once.
    let (mut fills, mut waits) = (0, 0);
    for img in &images {
        let s = img.backfill_stats().unwrap();
        fills += s.fills;
        waits += s.waits;
    }
    assert_eq!(fills, (READERS + ROUNDS) as u64, "warm-up fills + one per round");
    assert_eq!(waits, (ROUNDS * (READERS - 1)) as u64, "every non-claimer waited on the claim");
    assert!(p99 <= Duration::from_millis(50), "waiter p99 {:.2} ms > 50 ms (p50 {:.2} ms)", ms(p99), ms(p50));
    drop(images);
    assert_eq!(assert_parent_clean_os(&parent_id, &data, OBJ).len(), READERS + ROUNDS);
}

// ------------------------------------------------------------------------ faults

/// A 16 MiB published image, its parent attached through the fault proxy, one child.
struct Fixture {
    c: Cleanup,
    bucket: String,
    key: String,
    data: Vec<u8>,
    proxy: TestProxy,
    parent: String,
    parent_id: String,
    child: String,
}

impl Fixture {
    async fn new(name: &str, attach_extra: &[&str]) -> Fixture {
        let mut c = Cleanup::new();
        let bucket = new_bucket(name).await;
        let key = "disk.raw".to_string();
        let data = common::random(16 * MIB, name.len() as u64 * 7919);
        let file = c.file(name, &data);
        publish(&file, &bucket, &key, &[]);
        let proxy = TestProxy::start(&env().endpoint).await.unwrap();
        let parent = c.image(&format!("{name}-parent"));
        attach(&mut c, &parent, &proxy.endpoint(), &bucket, &key, attach_extra);
        let child = c.image(&format!("{name}-child"));
        ok(&["clone-standalone", &parent, &child]);
        let parent_id = image_id(&parent);
        let f = Fixture { c, bucket, key, data, proxy, parent, parent_id, child };
        f.heal();
        f
    }

    /// No faults: only the rule that lets manifest GETs through untouched (the first match
    /// wins), so that the faults added after it hit the data GETs, which run under a claim.
    fn heal(&self) {
        self.proxy.clear();
        self.proxy.add(Rule::new(Fault::Delay(Duration::ZERO)).method("GET").path_contains(MANIFEST_SUFFIX));
    }

    /// `fault` on the data GETs of the image.
    fn fault(&self, rule: impl FnOnce(Rule) -> Rule, fault: Fault) {
        self.proxy.add(rule(Rule::new(fault).method("GET").path_contains(&format!("/{}/{}", self.bucket, self.key))));
    }

    /// The image's URL through the proxy, as messages name it.
    fn url(&self) -> String {
        format!("{}/{}/{}", self.proxy.endpoint(), self.bucket, self.key)
    }

    fn read_args(&self, n: usize) -> Vec<String> {
        let (off, len) = ((n * OS).to_string(), OS.to_string());
        ["read", &self.child, "--offset", &off, "--length", &len].iter().map(|s| s.to_string()).collect()
    }

    /// Reading object `n` through the child fails with `errno` (and each of `needles`); no
    /// wrong byte is returned or written, no claim is left.
    fn read_fails(&self, n: usize, errno: &str, needles: &[&str]) -> String {
        let args = self.read_args(n);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = fails(&args);
        assert!(line.ends_with(&format!("({errno})")), "{line}");
        for s in needles {
            assert!(line.contains(s), "{s:?} not in: {line}");
        }
        let present = assert_parent_clean(&self.parent_id, &self.data);
        assert!(!present.contains(&n), "a failed fill left object {n} behind");
        println!("{errno}: {line}");
        line
    }

    /// With the faults gone, object `n` reads right at once: nothing stuck (a leftover claim
    /// would hold readers for the 30 s claim expiry).
    fn read_recovers(&self, n: usize) {
        self.heal();
        let t = Instant::now();
        let args = self.read_args(n);
        let got = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(got == self.data[n * OS..(n + 1) * OS], "object {n}: wrong bytes after recovery");
        assert!(t.elapsed() < Duration::from_secs(10), "recovery read took {:?}: a claim was left behind?", t.elapsed());
        assert!(assert_parent_clean(&self.parent_id, &self.data).contains(&n));
    }

    fn stats(&self) -> String {
        ok_text(&["stats", "--format", "json", &self.parent])
    }
}

/// 404: the raw image deleted after attach → ENOENT naming the URL and status; a missing
/// key at attach → ENOENT and no image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_object_is_enoent() {
    let _serial = serial().await;
    let mut fx = Fixture::new("s3f-404", &[]).await;
    let nokey = fx.c.image("s3f-404-nokey");
    let e = env();
    let line = fails(&[
        "s3",
        "attach",
        &nokey,
        "--endpoint",
        &e.endpoint,
        "--bucket",
        &fx.bucket,
        "--key",
        "no/such.raw",
        "--access-key",
        &e.access_key,
        "--secret-key-file",
        &e.secret_file,
    ]);
    assert!(line.contains(&format!("{}/{}/no/such.raw", e.endpoint, fx.bucket)) && line.contains("HTTP 404"), "{line}");
    assert!(line.ends_with("(ENOENT)"), "{line}");
    assert!(!exists(&nokey), "a failed attach left {nokey} behind");

    s3(&fx.bucket).delete(&fx.key).await.unwrap();
    fx.read_fails(0, "ENOENT", &[&fx.url(), "HTTP 404 Not Found (NoSuchKey)"]);
    // Restored as `s3 publish` uploaded it (8 MiB parts): the same ETag, so the pin holds.
    s3(&fx.bucket).put_large(&fx.key, &fx.data[..], 2 * OS).await.unwrap();
    fx.read_recovers(0);
}

/// 403: SigV4 is checked by radosgw. A wrong secret stored in config-key and referenced →
/// EACCES at attach (nothing created) and at read time; a 403 on the data GET itself →
/// EACCES and the claim released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_eacces() {
    let _serial = serial().await;
    let e = env();
    let fx = Fixture::new("s3f-403", &[]).await;
    let mut c = Cleanup::new();
    let wrong = "WRONGwrongWRONGwrongWRONGwrongWRONGwrong";
    let key = format!("rbd-ext/test/{}", common::unique("s3-wrong"));
    c.config_key(&key, wrong);
    let ref_ = format!("config://{key}");
    let p1 = c.image("s3f-403-wrong");
    let line = fails(&[
        "s3",
        "attach",
        &p1,
        "--endpoint",
        &e.endpoint,
        "--bucket",
        &fx.bucket,
        "--key",
        &fx.key,
        "--access-key",
        &e.access_key,
        "--secret-key-ref",
        &ref_,
    ]);
    assert!(line.contains(&format!("{}/{}/{}", e.endpoint, fx.bucket, fx.key)) && line.contains("HTTP 403 Forbidden"), "{line}");
    assert!(line.ends_with("(EACCES)") && !line.contains(wrong), "{line}");
    assert!(!exists(&p1), "a refused attach left {p1} behind");

    // Right secret at attach, wrong one later (rotated under the reference); the access key
    // by reference too.
    c.config_key(&key, &e.secret);
    let access_key = format!("rbd-ext/test/{}", common::unique("s3-access"));
    c.config_key(&access_key, &e.access_key);
    let access_ref = format!("config://{access_key}");
    let p2 = c.image("s3f-403-rotated");
    ok(&["s3", "attach", &p2, "--endpoint", &e.endpoint, "--bucket", &fx.bucket, "--key", &fx.key, "--access-key-ref", &access_ref, "--secret-key-ref", &ref_]);
    let show = ok_text(&["s3", "show", &p2]);
    assert!(show.contains(&format!("access_key: {access_ref}\n")) && show.contains(&format!("secret_key: {ref_}\n")), "{show}");
    let p2_id = image_id(&p2);
    let len = OS.to_string();
    assert!(ok(&["read", &p2, "--offset", "0", "--length", &len]) == fx.data[..OS]);
    c.config_key(&key, wrong);
    let line = fails(&["read", &p2, "--offset", &OS.to_string(), "--length", &len]);
    assert!(line.contains("HTTP 403 Forbidden") && line.ends_with("(EACCES)"), "{line}");
    assert_eq!(assert_parent_clean(&p2_id, &fx.data), BTreeSet::from([0]));
    let line = fails(&["s3", "verify", &p2]);
    assert!(line.contains("HTTP 403") && line.contains("hint: the S3 credentials were refused") && line.ends_with("(EACCES)"), "{line}");
    c.config_key(&key, &e.secret);
    assert!(ok(&["read", &p2, "--offset", &OS.to_string(), "--length", &len]) == fx.data[OS..2 * OS]);

    // A 403 on the data GET, under the claim.
    fx.fault(|r| r, Fault::Status(403));
    fx.read_fails(1, "EACCES", &[&fx.url(), "HTTP 403 Forbidden (AccessDenied)"]);
    fx.read_recovers(1);
}

/// 5xx twice, then success: the read succeeds and the counters show the retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried() {
    let _serial = serial().await;
    let fx = Fixture::new("s3f-5xx", &[]).await;
    ok(&["stats", "--reset", &fx.parent]);
    fx.fault(|r| r.times(2), Fault::Status(503));
    let got = ok(&fx.read_args(2).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(got == fx.data[2 * OS..3 * OS]);
    let s = fx.stats();
    println!("after two 503s: {s}");
    assert_eq!(common::json_u64(&s, "retries"), 2, "{s}");
    assert_eq!((common::json_u64(&s, "fills"), common::json_u64(&s, "fill_failures")), (1, 0), "{s}");
    assert_eq!(common::json_u64(&s, "failures_total"), 0, "{s}");
    let plain = ok_text(&["stats", &fx.parent]);
    assert!(plain.lines().any(|l| l == "s3.retries: 2") && plain.lines().any(|l| l == "fills: 1"), "{plain}");
    assert_parent_clean(&fx.parent_id, &fx.data);
}

/// A server slower than `--timeout-ms 300` (2 s delay) → ETIMEDOUT after the retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_times_out() {
    let _serial = serial().await;
    let fx = Fixture::new("s3f-slow", &["--timeout-ms", "300", "--retries", "1"]).await;
    fx.fault(|r| r, Fault::Delay(Duration::from_secs(2)));
    let t = Instant::now();
    fx.read_fails(0, "ETIMEDOUT", &[&fx.url(), "no complete reply within 300ms", "(2 attempts)"]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    fx.read_recovers(0);
}

/// A short body (well-formed, Content-Length says so too) → EIO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_is_eio() {
    let _serial = serial().await;
    let fx = Fixture::new("s3f-trunc", &[]).await;
    fx.fault(|r| r, Fault::Truncate(1000));
    fx.read_fails(3, "EIO", &[&fx.url(), "bytes=12582912-16777215"]);
    fx.read_recovers(3);
}

/// One flipped byte → the manifest's SHA-256 does not match → EIO; nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_fail_the_manifest_check() {
    let _serial = serial().await;
    let fx = Fixture::new("s3f-flip", &[]).await;
    fx.fault(|r| r, Fault::FlipBytes { offset: 4242, count: 1 });
    fx.read_fails(1, "EIO", &["manifest: object 1: sha256 mismatch", &data_oid(&fx.parent_id, 1)]);
    fx.read_recovers(1);
}

/// A claimer SIGKILLed mid-fetch (its GET held 10 s by the proxy) leaves its claim; another
/// client takes over once it expires (`--claim-ttl-ms 1500`) and reads the right bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_claimer_is_taken_over_after_expiry() {
    let _serial = serial().await;
    let fx = Fixture::new("s3f-kill", &["--claim-ttl-ms", "1500"]).await;
    fx.fault(|r| r.times(1), Fault::Delay(Duration::from_secs(10)));
    let oid = data_oid(&fx.parent_id, 0);
    let mut a = Command::new(bin()).args(fx.read_args(0)).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    loop {
        let (_, keys, _) = common::stock("rados", &["-p", "rbd", "listomapkeys", &oid]);
        if keys.lines().any(|k| k == CLAIM_KEY) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(8), "the first reader never claimed {oid}");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    let claimed_for = t.elapsed();
    // The dead claimer's placeholder: no data, the claim still there.
    let stat = common::stock_ok("rados", &["-p", "rbd", "stat", &oid]);
    assert!(stat.contains("size 0"), "{stat}");
    assert!(common::stock_ok("rados", &["-p", "rbd", "listomapkeys", &oid]).contains(CLAIM_KEY));

    let t = Instant::now();
    let got = ok(&fx.read_args(0).iter().map(String::as_str).collect::<Vec<_>>());
    let took = t.elapsed();
    assert!(got == fx.data[..OS], "the takeover read wrong bytes");
    println!("claimer killed {claimed_for:?} after starting; the next reader took over and finished in {took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    let s = fx.stats();
    assert_eq!((common::json_u64(&s, "takeovers"), common::json_u64(&s, "fills")), (1, 1), "{s}");
    assert!(assert_parent_clean(&fx.parent_id, &fx.data).contains(&0));
}

// ----------------------------------------------------------------- secrets, CLI

/// The secret never shows up: not in any omap or xattr of the pool's headers (image metadata
/// included), not in `info` / `s3 show` / `s3 verify` / `stats` / `hydrate` output, not in
/// the cluster's logs (OSD, mon, client, rgw) nor in our stderr. Inline secrets are refused
/// with instructions and never echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_appears_nowhere() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3acc-secret").await;
    let data = common::random(8 * MIB, 0x5ec);
    let file = c.file("s3acc-secret.raw", &data);
    let parent = c.image("s3acc-secret-parent");
    let child = c.image("s3acc-secret-child");
    let mut seen: Vec<u8> = Vec::new();
    let mut record = |args: &[&str], expect_ok: bool| {
        let o = run(args);
        assert_eq!(o.status.success(), expect_ok, "rbd-ext {args:?}: {}", stderr(&o));
        seen.extend_from_slice(&o.stdout);
        seen.extend_from_slice(&o.stderr);
        o
    };
    let dest = format!("s3://{bucket}/s.raw");
    let f = file.to_str().unwrap();
    let creds = ["--access-key", e.access_key.as_str(), "--secret-key-file", e.secret_file.as_str()];
    record(&[&["s3", "publish", f, &dest, "--endpoint", &e.endpoint][..], &creds[..]].concat(), true);
    let attach_args = ["s3", "attach", &parent, "--endpoint", &e.endpoint, "--bucket", &bucket, "--key", "s.raw"];

    // Inline secrets: refused with instructions, never echoed, nothing created.
    let o = record(&[&attach_args[..], &["--access-key", &e.access_key, "--secret-key-ref", &e.secret][..]].concat(), false);
    let line = one_error_line(&attach_args, &o);
    assert!(line.contains("inline secrets are refused") && line.contains("ceph config-key set") && line.contains("config://"), "{line}");
    assert!(line.ends_with("(EINVAL)"), "{line}");
    assert!(!exists(&parent));
    let o = record(&[&attach_args[..], &["--access-key", &e.access_key, "--secret-key", &e.secret][..]].concat(), false);
    assert_eq!(o.status.code(), Some(2), "--secret-key is no option: {}", stderr(&o));
    assert!(!exists(&parent));

    record(&[&attach_args[..], &creds[..]].concat(), true);
    c.config_keys.push(stored_secret_key(&bucket));
    record(&["clone-standalone", &parent, &child], true);
    let o = record(&["read", &child, "--offset", "0", "--length", &OS.to_string()], true);
    assert!(o.stdout == data[..OS]);
    for args in [
        &["s3", "show", &parent][..],
        &["s3", "show", "--format", "json", &parent],
        &["s3", "verify", &parent],
        &["info", &parent],
        &["info", "--format", "json", &parent],
        &["info", &child],
        &["info", "--format", "json", &child],
        &["hydrate", &parent],
        &["stats", &parent],
        &["stats", "--format", "json", &parent],
    ] {
        record(args, true);
    }
    let show = ok_text(&["s3", "show", "--format", "json", &parent]);
    assert_eq!(json_str(&show, "secret_key"), format!("config://{}", stored_secret_key(&bucket)), "{show}");

    let secret = e.secret.as_bytes();
    let contains = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret);
    assert!(!contains(&seen), "the secret appeared in rbd-ext output");

    // Every omap of the pool's headers (metadata included), and their xattrs.
    let io = common::rbd_pool();
    let mut headers = 0;
    for oid in io.list_objects("rbd_header.").unwrap() {
        for (k, v) in io.omap_list(&oid, "").unwrap() {
            assert!(!contains(k.as_bytes()) && !contains(&v), "{oid}: omap key {k} holds the secret");
        }
        let xattrs = common::stock_ok("rados", &["-p", "rbd", "listxattr", &oid]);
        for x in xattrs.lines() {
            let out = Command::new("rados").args(["-p", "rbd", "getxattr", &oid, x]).output().unwrap();
            assert!(!contains(&out.stdout), "{oid}: xattr {x} holds the secret");
        }
        headers += 1;
    }
    for img in [&parent, &child] {
        let oid = format!("rbd_header.{}", image_id(img));
        assert!(!io.omap_list(&oid, "").unwrap().is_empty(), "{oid} was checked");
        let meta = io.omap_list(&oid, "metadata_s3.").unwrap();
        assert!(img != &parent || meta.iter().any(|(k, v)| k == "metadata_s3.secret_key" && v.starts_with(b"config://")), "{meta:?}");
    }
    // The logs: OSD, mon, cluster, client, radosgw (access and ops logs).
    let mut files = 0;
    for entry in std::fs::read_dir(e.cluster_dir.join("log")).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(!contains(&bytes), "{} holds the secret", entry.path().display());
        files += 1;
    }
    assert!(files >= 4 && e.rgw_log.starts_with(e.cluster_dir.join("log")), "the logs were checked");
    println!("secret absent from {} bytes of CLI output, {headers} headers' omaps and xattrs, {files} log files", seen.len());
}

/// Anonymous access: a public-read copy attached with `--anonymous` reads through a child;
/// the private original refuses anonymous requests (EACCES).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_parent_on_a_public_object() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3acc-anon").await;
    let data = common::random(8 * MIB + 4096 * 3, 0xa407);
    let file = c.file("s3acc-anon.raw", &data);
    publish(&file, &bucket, "private.raw", &[]);
    // `s3 publish` uploads private objects: put a public-read copy and its manifest.
    let public = PutOptions::default().with_acl("public-read");
    let client = s3(&bucket);
    let etag = client.put_with("public.raw", data.clone(), &public).await.unwrap();
    let mut m = Manifest::build(&data[..], OS as u64).unwrap();
    m.etag = etag;
    client.put_with(&format!("public.raw{MANIFEST_SUFFIX}"), m.to_json(), &public).await.unwrap();

    let denied = c.image("s3acc-anon-private");
    let line = fails(&["s3", "attach", &denied, "--endpoint", &e.endpoint, "--bucket", &bucket, "--key", "private.raw", "--anonymous"]);
    assert!(line.contains("HTTP 403") && line.ends_with("(EACCES)"), "{line}");
    assert!(!exists(&denied));

    let parent = c.image("s3acc-anon-parent");
    let child = c.image("s3acc-anon-child");
    let log = RgwLog::mark();
    ok(&["s3", "attach", &parent, "--endpoint", &e.endpoint, "--bucket", &bucket, "--key", "public.raw", "--anonymous"]);
    ok(&["clone-standalone", &parent, &child]);
    assert!(ok(&["export", &child, "-"]) == data, "anonymous reads through the child");
    // The requests really were unsigned: radosgw logs them as user `anonymous`.
    let lines = log.settled().await;
    let gets: Vec<&str> = lines.lines().filter(|l| l.contains(&format!("\"GET /{bucket}/public.raw HTTP/1.1\" 206"))).collect();
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert!(gets.iter().all(|l| l.contains(" - anonymous [")), "{gets:?}");
    let show = ok_text(&["s3", "show", &parent]);
    assert!(show.contains("anonymous: true") && !show.contains("access_key") && !show.contains("secret_key"), "{show}");
    let verify = ok_text(&["s3", "verify", &parent]);
    assert!(verify.contains("credentials: ok: anonymous") && verify.contains("SHA-256 verified"), "{verify}");
    assert_eq!(assert_parent_clean(&image_id(&parent), &data).len(), 3);
}

/// `s3 show` (plain and JSON), `s3 verify` (each check; an actionable failure), `hydrate`
/// (the summary line; holes and filled objects cost no GET) and `stats` / `stats --reset`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_verify_hydrate_and_stats() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3acc-cli").await;
    let mut data = common::random(64 * MIB, 0xc11);
    for n in [3, 4, 10] {
        data[n * OS..(n + 1) * OS].fill(0);
    }
    let file = c.file("s3acc-cli.raw", &data);
    let out = publish(&file, &bucket, "dir/cli.raw", &[]);
    assert!(out.contains("(3 all zero)") && out.contains(&format!("manifest s3://{bucket}/dir/cli.raw.manifest.json")), "{out}");
    let parent = c.image("s3acc-cli-parent");
    attach(&mut c, &parent, &e.endpoint, &bucket, "dir/cli.raw", &["--timeout-ms", "5000", "--retries", "2", "--claim-ttl-ms", "4000"]);

    let show = ok_text(&["s3", "show", &parent]);
    for l in [
        format!("endpoint: {}", e.endpoint),
        format!("bucket: {bucket}"),
        "image_name: dir/cli.raw".into(),
        "image_format: raw".into(),
        format!("access_key: {}", e.access_key),
        format!("secret_key: config://{}", stored_secret_key(&bucket)),
        "anonymous: false".into(),
        "timeout_ms: 5000".into(),
        "retries: 2".into(),
        "claim_ttl_ms: 4000".into(),
    ] {
        assert!(show.lines().any(|x| x == l), "{l:?} not in:\n{show}");
    }
    let j = ok_text(&["s3", "show", "--format", "json", &parent]);
    assert_eq!(json_str(&j, "image_name"), "dir/cli.raw");
    assert_eq!(common::json_u64(&j, "claim_ttl_ms"), 4000);

    let verify = ok_text(&["s3", "verify", &parent]);
    println!("{verify}");
    for check in ["credentials: ok:", "reach: ok:", "manifest: ok: 16 objects, 3 zero", "sample GET: ok: object 0"] {
        assert!(verify.contains(check), "{check:?} not in:\n{verify}");
    }

    let log = RgwLog::mark();
    let line = ok_text(&["hydrate", "--parallel", "4", &parent]);
    println!("{line}");
    let l = line.trim_end();
    assert!(l.starts_with("hydrated 16 objects (64.0 MiB) in ") && l.ends_with(" MiB/s") && l.contains(" s: "), "{line}");
    let gets = log.gets(&bucket, "dir/cli.raw").await;
    assert_eq!(gets.len(), 13, "13 data objects, 3 holes: {gets:?}");
    let present = assert_parent_clean(&image_id(&parent), &data);
    assert_eq!(present.len(), 13);
    let log = RgwLog::mark();
    ok(&["hydrate", &parent]);
    assert!(log.gets(&bucket, "dir/cli.raw").await.is_empty(), "a hydrated parent costs no GET");
    let j = ok_text(&["hydrate", "--format", "json", &parent]);
    assert_eq!(common::json_u64(&j, "objects"), 16, "{j}");
    // An image as the source of a publish (SOURCE names no file): its logical content.
    let out = ok_text(&[
        "s3",
        "publish",
        &parent,
        &format!("s3://{bucket}/copy.raw"),
        "--endpoint",
        &e.endpoint,
        "--access-key",
        &e.access_key,
        "--secret-key-file",
        &e.secret_file,
    ]);
    assert!(out.contains("64 MiB in 16 objects of 4 MiB (3 all zero)"), "{out}");
    assert!(s3(&bucket).get("copy.raw").await.unwrap() == data, "the published copy differs");

    let s = ok_text(&["stats", "--format", "json", &parent]);
    assert_eq!(common::json_u64(&s, "fills"), 13, "{s}");
    assert_eq!(common::json_u64(&s, "clients"), 4, "three hydrates and a publish: {s}");
    let plain = ok_text(&["stats", "--reset", &parent]);
    assert!(plain.lines().any(|l| l == "fills: 13") && plain.lines().any(|l| l.starts_with("s3.latency.max_us: ")), "{plain}");
    assert_eq!(common::json_u64(&ok_text(&["stats", "--format", "json", &parent]), "clients"), 0);

    // A failing check: non-zero exit, the URL, the status and what to do.
    s3(&bucket).delete("dir/cli.raw").await.unwrap();
    let line = fails(&["s3", "verify", &parent]);
    assert!(line.contains(&format!("{}/{bucket}/dir/cli.raw", e.endpoint)) && line.contains("HTTP 404"), "{line}");
    assert!(line.contains("hint: no such bucket or key") && line.ends_with("(ENOENT)"), "{line}");
}

/// The one-S3-object-per-RADOS-object mode (`s3.prefix`): object N of the parent is the S3
/// object `<prefix><N as %016x>`, fetched whole; a short last object is zero-padded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_mode_fetches_one_object_per_rados_object() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3acc-prefix").await;
    let size = 2 * OS + 5000;
    let data = common::random(size, 0x9f1e);
    let client = s3(&bucket);
    for (n, chunk) in data.chunks(OS).enumerate() {
        client.put(&format!("disk/{n:016x}"), chunk.to_vec()).await.unwrap();
    }
    let parent = c.image("s3acc-prefix-parent");
    let child = c.image("s3acc-prefix-child");
    let log = RgwLog::mark();
    let size_arg = format!("{size}B");
    ok(&[
        "s3",
        "attach",
        &parent,
        "--endpoint",
        &e.endpoint,
        "--bucket",
        &bucket,
        "--prefix",
        "disk/",
        "--region",
        &e.region,
        "--access-key",
        &e.access_key,
        "--secret-key-file",
        &e.secret_file,
        "--size",
        &size_arg,
        "--order",
        "22",
    ]);
    let k = stored_secret_key(&bucket);
    if !c.config_keys.contains(&k) {
        c.config_keys.push(k);
    }
    ok(&["clone-standalone", &parent, &child]);
    assert!(ok(&["export", &child, "-"]) == data, "the child reads the prefix-mode parent");
    let lines = log.settled().await;
    let gets = lines.lines().filter(|l| l.contains(&format!("\"GET /{bucket}/disk/")) && l.contains("\" 200 ")).count();
    assert_eq!(gets, 3, "one whole-object GET per RADOS object");
    // Everything is in RADOS now: a second read costs no GET.
    let log = RgwLog::mark();
    assert!(ok(&["export", &child, "-"]) == data);
    assert_eq!(log.settled().await.lines().filter(|l| l.contains(&format!("GET /{bucket}/disk/"))).count(), 0);
    assert_eq!(assert_parent_clean(&image_id(&parent), &data).len(), 3);
}

// ------------------------------------------------------------- issue 14: safety

/// `ceph config-key get KEY`, as a user would check it.
fn config_key_value(key: &str) -> String {
    common::stock_ok("ceph", &["config-key", "get", key]).trim_end().to_string()
}

/// Issue 14.1: an attach with a wrong secret file fails (403) and changes nothing: the
/// shared stored secret keeps working for the images that use it. A different stored secret
/// is replaced only with `--replace-secret`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attach_changes_nothing() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3-14-1").await;
    let data = common::random(3 * OS, 0x141);
    let file = c.file("s3-14-1.raw", &data);
    publish(&file, &bucket, "img.raw", &[]);
    let parent = c.image("s3-14-1-parent");
    attach(&mut c, &parent, &e.endpoint, &bucket, "img.raw", &[]);
    let child = c.image("s3-14-1-child");
    ok(&["clone-standalone", &parent, &child]);
    let len = OS.to_string();
    assert!(ok(&["read", &child, "--offset", "0", "--length", &len]) == data[..OS]);
    let stored = stored_secret_key(&bucket);
    assert_eq!(config_key_value(&stored), e.secret);

    // A wrong secret file: refused by S3 before anything is stored.
    let wrong = c.file("s3-14-1-wrong", b"WRONGwrongWRONGwrongWRONGwrongWRONGwrong\n");
    let other = c.image("s3-14-1-other");
    let attach_args = |p: &str, secret_file: &str| -> Vec<String> {
        ["s3", "attach", p, "--endpoint", &e.endpoint, "--bucket", &bucket, "--key", "img.raw", "--access-key", &e.access_key, "--secret-key-file", secret_file]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let args = attach_args(&other, wrong.to_str().unwrap());
    let line = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(line.contains("HTTP 403") && line.ends_with("(EACCES)"), "{line}");
    assert!(!exists(&other), "a refused attach left {other} behind");
    assert_eq!(config_key_value(&stored), e.secret, "a refused attach replaced the shared secret");
    assert!(ok(&["read", &child, "--offset", &OS.to_string(), "--length", &len]) == data[OS..2 * OS], "the existing child broke");

    // A different secret stored already (here a stale one): not replaced without the flag.
    c.config_key(&stored, "STALEstaleSTALEstaleSTALEstaleSTALEstale");
    let args = attach_args(&other, &e.secret_file);
    let line = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(line.contains(&format!("config://{stored}")) && line.contains("--replace-secret") && line.ends_with("(EEXIST)"), "{line}");
    assert!(!exists(&other));
    assert_eq!(config_key_value(&stored), "STALEstaleSTALEstaleSTALEstaleSTALEstale");
    let mut args = attach_args(&other, &e.secret_file);
    args.push("--replace-secret".into());
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(config_key_value(&stored), e.secret);
    // The same secret again: accepted, nothing to replace.
    let again = c.image("s3-14-1-again");
    ok(&attach_args(&again, &e.secret_file).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok(&["read", &child, "--offset", &(2 * OS).to_string(), "--length", &len]) == data[2 * OS..]);
}

/// Issue 14.2: an object replaced after attach (no manifest, as s3cmd or curl upload it)
/// fails with both ETags instead of mixing old and new content; nothing is written to the
/// parent. `s3 show` names the pinned ETag and size; `s3 verify` fails the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_object_fails_instead_of_mixing() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3-14-2").await;
    let old = common::random(3 * OS, 0x142);
    let client = s3(&bucket);
    let old_etag = client.put("plain.raw", old.clone()).await.unwrap();
    let parent = c.image("s3-14-2-parent");
    attach(&mut c, &parent, &e.endpoint, &bucket, "plain.raw", &[]);
    let child = c.image("s3-14-2-child");
    ok(&["clone-standalone", &parent, &child]);
    let len = OS.to_string();
    assert!(ok(&["read", &child, "--offset", "0", "--length", &len]) == old[..OS]);

    let new = common::random(3 * OS, 0x241);
    let new_etag = client.put("plain.raw", new.clone()).await.unwrap();
    assert_ne!(old_etag, new_etag);
    let line = fails(&["read", &child, "--offset", &OS.to_string(), "--length", &len]);
    println!("{line}");
    assert!(line.contains(&format!("ETag was {old_etag}, now {new_etag}")) && line.ends_with("(ESTALE)"), "{line}");
    assert!(line.contains(&format!("{}/{bucket}/plain.raw", e.endpoint)), "{line}");
    assert_eq!(assert_parent_clean(&image_id(&parent), &old), BTreeSet::from([0]), "only the object read before the change");
    let line = fails(&["s3", "verify", &parent]);
    assert!(line.contains(&format!("ETag was {old_etag}, now {new_etag}")) && line.ends_with("(ESTALE)"), "{line}");
    // Already-filled objects still read (they are the old content, consistently).
    assert!(ok(&["read", &child, "--offset", "0", "--length", &len]) == old[..OS]);
    let show = ok_text(&["s3", "show", &parent]);
    assert!(show.contains(&format!("etag: {old_etag}\n")) && show.contains(&format!("object_bytes: {}\n", old.len())), "{show}");
}

/// Issue 14.3: `clone-standalone` of an S3-backed parent whose stored secret no longer
/// works (rotated, removed) is refused before the child is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_of_an_unreadable_s3_parent_is_refused() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3-14-3").await;
    let data = common::random(2 * OS, 0x143);
    let file = c.file("s3-14-3.raw", &data);
    publish(&file, &bucket, "img.raw", &[]);
    let key = format!("rbd-ext/test/{}", common::unique("s3-14-3"));
    c.config_key(&key, &e.secret);
    let sref = format!("config://{key}");
    let parent = c.image("s3-14-3-parent");
    ok(&[
        "s3",
        "attach",
        &parent,
        "--endpoint",
        &e.endpoint,
        "--bucket",
        &bucket,
        "--key",
        "img.raw",
        "--access-key",
        &e.access_key,
        "--secret-key-ref",
        &sref,
    ]);

    c.config_key(&key, "WRONGwrongWRONGwrongWRONGwrongWRONGwrong");
    let child = c.image("s3-14-3-child");
    let line = fails(&["clone-standalone", &parent, &child]);
    assert!(line.contains(&format!("parent {parent} is S3-backed and not readable from S3")) && line.contains("HTTP 403"), "{line}");
    assert!(line.ends_with("(EACCES)"), "{line}");
    assert!(!exists(&child), "the refused clone left {child} behind");
    common::stock_ok("ceph", &["config-key", "rm", &key]);
    let line = fails(&["clone-standalone", &parent, &child]);
    assert!(line.contains(&sref) && line.ends_with("(ENOENT)"), "{line}");
    assert!(!exists(&child));

    c.config_key(&key, &e.secret);
    ok(&["clone-standalone", &parent, &child]);
    assert!(ok(&["export", &child, "-"]) == data);
}

/// Runs `cmd args` in `dir`, which must succeed (openssl).
fn sh(dir: &Path, cmd: &str, args: &[&str]) {
    let o = Command::new(cmd).args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?}: {}", stderr(&o));
}

/// A throwaway CA (`ca.pem`) and server certificates signed by it, made with openssl:
/// `good.pem` for IP 127.0.0.1, `wrongname.pem` for another host, `expired.pem` (valid in
/// 2020 only); each with its `<name>.key`. Also `other-ca.pem`, a CA that signed none.
fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ca = |name: &str| {
        sh(
            dir,
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=rbd-ext test {name}"),
            ],
        )
    };
    ca("ca");
    ca("other-ca");
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    let conf = format!(
        "[ca]\ndefault_ca = x\n[x]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\nserial = {d}/serial\ndefault_md = sha256\npolicy = p\n\
         unique_subject = no\n[p]\ncommonName = supplied\n",
        d = dir.display()
    );
    std::fs::write(dir.join("ca.cnf"), conf).unwrap();
    for (name, san, dates) in [
        ("good", "IP:127.0.0.1", ["-days", "2"].as_slice()),
        ("wrongname", "DNS:s3.other.example", ["-days", "2"].as_slice()),
        ("expired", "IP:127.0.0.1", ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"].as_slice()),
    ] {
        sh(
            dir,
            "openssl",
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(dir.join(format!("{name}.ext")), format!("subjectAltName={san}\n")).unwrap();
        let mut args = vec!["ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in"];
        let (csr, out, ext) = (format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        args.extend([csr.as_str(), "-out", out.as_str(), "-extfile", ext.as_str()]);
        args.extend(dates);
        sh(dir, "openssl", &args);
    }
}

/// Issue 14.6: S3 behind TLS with a private CA. An untrusted certificate fails at once (no
/// retries) with what is wrong (unknown issuer, name mismatch, expired) and how to trust a
/// CA; `--ca-file` (a path for publish, a `config://` reference stored with the settings for
/// attach) makes it work, and children read through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let dir = std::env::temp_dir().join(common::unique("s3-tls"));
    make_certs(&dir);
    let upstream = e.endpoint.strip_prefix("http://").unwrap().to_string();
    let front = |name: &str| {
        let (cert, key) = (std::fs::read(dir.join(format!("{name}.pem"))).unwrap(), std::fs::read(dir.join(format!("{name}.key"))).unwrap());
        let upstream = upstream.clone();
        async move { TlsFront::start(&upstream, &cert, &key).await.unwrap() }
    };
    let (good, wrongname, expired) = (front("good").await, front("wrongname").await, front("expired").await);
    let https = |f: &TlsFront| format!("https://127.0.0.1:{}", f.port());
    let ca = dir.join("ca.pem");
    let ca = ca.to_str().unwrap();

    let bucket = new_bucket("s3-tls").await;
    let data = common::random(2 * OS, 0x716);
    let file = c.file("s3-tls.raw", &data);
    let dest = format!("s3://{bucket}/img.raw");
    let creds = ["--access-key", e.access_key.as_str(), "--secret-key-file", e.secret_file.as_str()];
    ok_text(&[&["s3", "publish", file.to_str().unwrap(), &dest, "--endpoint", &https(&good), "--ca-file", ca][..], &creds[..]].concat());

    let parent = c.image("s3-tls-parent");
    let attach_args = |endpoint: &str| -> Vec<String> {
        [&["s3", "attach", &parent, "--endpoint", endpoint, "--bucket", &bucket, "--key", "img.raw"][..], &creds[..]]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let other_ca = dir.join("other-ca.pem");
    for (endpoint, extra, what) in [
        (https(&good), None, "unknown issuer"),
        (https(&good), Some(other_ca.to_str().unwrap()), "unknown issuer"),
        (https(&wrongname), Some(ca), "name mismatch"),
        (https(&expired), Some(ca), "expired"),
    ] {
        let mut args = attach_args(&endpoint);
        if let Some(f) = extra {
            args.extend(["--ca-file".to_string(), f.to_string()]);
        }
        let t = Instant::now();
        let line = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
        println!("{what}: {line} ({:?})", t.elapsed());
        assert!(line.contains(what) && line.contains("--ca-file FILE") && line.ends_with("(EPROTO)"), "{what}: {line}");
        assert!(!line.contains("attempts") && t.elapsed() < Duration::from_secs(5), "{what}: retried: {line}");
        assert!(!exists(&parent));
    }
    assert!(fails(&["s3", "verify", &parent]).ends_with("(ENOENT)"));

    // The CA by reference, stored once for the cluster; children read with it.
    let ca_key = format!("rbd-ext/test/{}", common::unique("ca"));
    c.config_key(&ca_key, &std::fs::read_to_string(dir.join("ca.pem")).unwrap());
    let ca_ref = format!("config://{ca_key}");
    let mut args = attach_args(&https(&good));
    args.extend(["--ca-file".to_string(), ca_ref.clone()]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let k = stored_secret_key(&bucket);
    c.config_keys.push(k);
    assert!(ok_text(&["s3", "show", &parent]).contains(&format!("ca_file: {ca_ref}\n")));
    let child = c.image("s3-tls-child");
    ok(&["clone-standalone", &parent, &child]);
    assert!(ok(&["export", &child, "-"]) == data, "the child reads through TLS");
    assert!(ok_text(&["s3", "verify", &parent]).contains("reach: ok: https://127.0.0.1:"));
    drop((good, wrongname, expired));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 26.1: `SSL_CERT_FILE` alone (no `--ca-file`, no `s3.ca_file`, no `AWS_CA_BUNDLE`)
/// trusts a private CA for `s3 publish`, `s3 attach`, `s3 verify` and reads through children.
/// A CA file named elsewhere comes first (`AWS_CA_BUNDLE` for publish, as in the aws CLI) and
/// the error says which CAs were trusted; an unreadable `SSL_CERT_FILE` is EINVAL, never a
/// silent fall-back to the system's roots. Each command runs as a child process with a CA
/// environment of its own (tests share one process environment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_only_ssl_cert_file() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let dir = std::env::temp_dir().join(common::unique("s3-tls-env"));
    make_certs(&dir);
    let upstream = e.endpoint.strip_prefix("http://").unwrap().to_string();
    let (cert, key) = (std::fs::read(dir.join("good.pem")).unwrap(), std::fs::read(dir.join("good.key")).unwrap());
    let good = TlsFront::start(&upstream, &cert, &key).await.unwrap();
    let endpoint = format!("https://127.0.0.1:{}", good.port());
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (ca, other_ca, missing) = (path("ca.pem"), path("other-ca.pem"), path("missing.pem"));

    // None of this machine's AWS_* or SSL_CERT_* variables, then `vars`.
    let run_with = |vars: &[(&str, &str)], args: &[&str]| -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(args).stdin(Stdio::null());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("SSL_CERT_")) {
            cmd.env_remove(k);
        }
        cmd.envs(vars.iter().copied());
        cmd.output().unwrap_or_else(|err| panic!("run rbd-ext {args:?}: {err}"))
    };
    let ok_with = |vars: &[(&str, &str)], args: &[&str]| -> Vec<u8> {
        let o = run_with(vars, args);
        assert!(o.status.success() && o.stderr.is_empty(), "rbd-ext {args:?} with {vars:?} ({}): {}", o.status, stderr(&o));
        o.stdout
    };
    let only = [("SSL_CERT_FILE", ca.as_str())];

    let bucket = new_bucket("s3-tls-env").await;
    let data = common::random(2 * OS, 0x26e);
    let file = c.file("s3-tls-env.raw", &data);
    let f = file.to_str().unwrap();
    let creds = ["--access-key", e.access_key.as_str(), "--secret-key-file", e.secret_file.as_str()];
    let publish_args = |key: &str| -> Vec<String> {
        [&["s3", "publish", f, &format!("s3://{bucket}/{key}"), "--endpoint", &endpoint, "--region", &e.region][..], &creds[..]]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let args = publish_args("img.raw");
    let publish: Vec<&str> = args.iter().map(String::as_str).collect();

    ok_with(&only, &publish);
    let parent = c.image("s3-tls-env-parent");
    ok_with(
        &only,
        &[&["s3", "attach", &parent, "--endpoint", &endpoint, "--bucket", &bucket, "--key", "img.raw", "--region", &e.region][..], &creds[..]].concat(),
    );
    c.config_keys.push(stored_secret_key(&bucket));
    assert!(!ok_text(&["s3", "show", &parent]).contains("ca_file"), "no CA file was stored");
    assert!(String::from_utf8(ok_with(&only, &["s3", "verify", &parent])).unwrap().contains("reach: ok: https://127.0.0.1:"));
    let child = c.image("s3-tls-env-child");
    ok_with(&only, &["clone-standalone", &parent, &child]);
    assert!(ok_with(&only, &["export", &child, "-"]) == data, "the child reads through TLS trusting SSL_CERT_FILE");
    // With SSL_CERT_DIR beside it (as this machine sets both), the file still counts.
    if Path::new("/etc/ssl/certs").is_dir() {
        ok_with(&[("SSL_CERT_FILE", ca.as_str()), ("SSL_CERT_DIR", "/etc/ssl/certs")], &publish);
    }

    let fails_with = |vars: &[(&str, &str)], what: &str| -> String {
        let t = Instant::now();
        let line = one_error_line(&publish, &run_with(vars, &publish));
        println!("{what}: {line} ({:?})", t.elapsed());
        line
    };
    // Without it, the system's CAs: refused, and the remedy names SSL_CERT_FILE.
    let line = fails_with(&[], "system roots");
    assert!(line.contains("unknown issuer") && line.contains("trusted: the system's CA certificates") && line.contains("or in SSL_CERT_FILE"), "{line}");
    assert!(line.ends_with("(EPROTO)"), "{line}");
    // The wrong CA in SSL_CERT_FILE: the error names the file it trusted.
    let line = fails_with(&[("SSL_CERT_FILE", other_ca.as_str())], "wrong CA in SSL_CERT_FILE");
    assert!(line.contains("unknown issuer") && line.contains(&format!("trusted: the CAs in SSL_CERT_FILE={other_ca}")), "{line}");
    // AWS_CA_BUNDLE comes first: SSL_CERT_FILE is not read, and the error says so (and does
    // not suggest SSL_CERT_FILE, which would change nothing).
    let line = fails_with(&[("SSL_CERT_FILE", ca.as_str()), ("AWS_CA_BUNDLE", other_ca.as_str())], "AWS_CA_BUNDLE first");
    assert!(line.contains(&format!("only the CAs in AWS_CA_BUNDLE={other_ca}")), "{line}");
    assert!(line.contains(&format!("SSL_CERT_FILE={ca} is not read")) && !line.contains("or in SSL_CERT_FILE"), "{line}");
    // An unreadable SSL_CERT_FILE is a configuration error, not the system's roots.
    let line = fails_with(&[("SSL_CERT_FILE", missing.as_str())], "missing SSL_CERT_FILE");
    assert!(line.contains(&format!("SSL_CERT_FILE: {missing}")) && line.ends_with("(EINVAL)"), "{line}");
    drop(good);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14.10: the README's caps for reading S3 children, created exactly with
/// `ceph auth get-or-create`, are enough to read a child (filling its parent); without the
/// config-key cap the error names the cap to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_caps_read_an_s3_child() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    // The README's command for this role, as written there.
    let line = readme
        .lines()
        .find(|l| l.contains("ceph auth get-or-create client.s3reader"))
        .expect("README: Caps names the command for readers of S3 children")
        .trim()
        .to_string();
    let mon = line.split("mon '").nth(1).and_then(|r| r.split('\'').next()).unwrap().to_string();
    let osd = line.split("osd '").nth(1).and_then(|r| r.split('\'').next()).unwrap().to_string();
    println!("README caps: mon '{mon}' osd '{osd}'");

    let bucket = new_bucket("s3-caps").await;
    let data = common::random(2 * OS, 0xca95);
    let file = c.file("s3-caps.raw", &data);
    publish(&file, &bucket, "img.raw", &[]);
    let parent = c.image("s3-caps-parent");
    attach(&mut c, &parent, &e.endpoint, &bucket, "img.raw", &[]);
    let child = c.image("s3-caps-child");
    ok(&["clone-standalone", &parent, &child]);

    let mut user = |name: &str, mon: &str, osd: &str| -> PathBuf {
        let keyring = c.file(&format!("{name}.keyring"), b"");
        let _ = Command::new("ceph").args(["auth", "rm", &format!("client.{name}")]).output();
        common::stock_ok("ceph", &["auth", "get-or-create", &format!("client.{name}"), "mon", mon, "osd", osd, "-o", keyring.to_str().unwrap()]);
        keyring
    };
    let reader = common::unique("s3reader");
    let keyring = user(&reader, &mon, &osd);
    let as_reader = |args: &[&str]| -> Vec<String> {
        [&["--id", reader.as_str(), "--keyring", keyring.to_str().unwrap()][..], args].concat().iter().map(|s| s.to_string()).collect()
    };
    let got = ok(&as_reader(&["export", &child, "-"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(got == data, "the reader read the child");

    // `profile rbd` alone: refused, and the message names the missing cap.
    let plain = common::unique("rbdonly");
    let plain_keyring = user(&plain, "profile rbd", &osd);
    let line = fails(&["--id", &plain, "--keyring", plain_keyring.to_str().unwrap(), "read", &child, "--offset", "0", "--length", "4096"]);
    assert!(line.contains(r#"needs the mon cap `allow command "config-key get" with key prefix rbd-ext/`"#) && line.ends_with("(EACCES)"), "{line}");
    for u in [&reader, &plain] {
        common::stock_ok("ceph", &["auth", "rm", &format!("client.{u}")]);
    }
}

/// Issue 13.5: `s3 publish` with only the standard `AWS_*` variables (no endpoint, region or
/// credential flags) works against radosgw, and so does a `--profile` of
/// `~/.aws/credentials` + `~/.aws/config`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reads_the_standard_aws_sources() {
    let _serial = serial().await;
    let e = env();
    let mut c = Cleanup::new();
    let bucket = new_bucket("s3-aws").await;
    let data = common::random(OS + 4096, 0xa35);
    let file = c.file("s3-aws.raw", &data);
    let f = file.to_str().unwrap();
    let home = std::env::temp_dir().join(common::unique("s3-aws-home"));
    std::fs::create_dir_all(&home).unwrap();
    let publish_with = |envs: &[(&str, &str)], args: &[&str]| -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(args).stdin(Stdio::null()).env("HOME", &home);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
            cmd.env_remove(k);
        }
        cmd.envs(envs.iter().copied());
        cmd.output().unwrap()
    };
    let dest = format!("s3://{bucket}/env.raw");
    let o = publish_with(
        &[("AWS_ACCESS_KEY_ID", &e.access_key), ("AWS_SECRET_ACCESS_KEY", &e.secret), ("AWS_ENDPOINT_URL", &e.endpoint), ("AWS_REGION", &e.region)],
        &["s3", "publish", f, &dest],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(s3(&bucket).get("env.raw").await.unwrap() == data);
    // A wrong key in the environment is used (and refused), not silently ignored.
    let o = publish_with(
        &[("AWS_ACCESS_KEY_ID", &e.access_key), ("AWS_SECRET_ACCESS_KEY", "WRONGwrongWRONGwrongWRONGwrong"), ("AWS_ENDPOINT_URL", &e.endpoint)],
        &["s3", "publish", f, &dest],
    );
    let line = one_error_line(&["s3", "publish"], &o);
    assert!(line.contains("HTTP 403") && line.ends_with("(EACCES)"), "{line}");
    // Nothing at all: the message lists the sources.
    let o = publish_with(&[("AWS_ENDPOINT_URL", &e.endpoint)], &["s3", "publish", f, &dest]);
    let line = one_error_line(&["s3", "publish"], &o);
    assert!(line.contains("no credentials") && line.contains("AWS_ACCESS_KEY_ID") && line.ends_with("(EINVAL)"), "{line}");

    // A profile in the shared files.
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(home.join(".aws/credentials"), format!("[ceph]\naws_access_key_id = {}\naws_secret_access_key = {}\n", e.access_key, e.secret)).unwrap();
    std::fs::write(home.join(".aws/config"), format!("[profile ceph]\nregion = {}\nendpoint_url = {}\n", e.region, e.endpoint)).unwrap();
    let dest2 = format!("s3://{bucket}/profile.raw");
    let o = publish_with(&[], &["s3", "publish", f, &dest2, "--profile", "ceph"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(s3(&bucket).get("profile.raw").await.unwrap() == data);
    let _ = std::fs::remove_dir_all(&home);
}

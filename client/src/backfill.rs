//! S3-backed parents (DESIGN.md §4): the parent image's RADOS objects are a shared cache of
//! one raw image in S3, filled on demand, exactly once per object cluster-wide.
//!
//! An S3-backed parent is a plain RBD image whose `parent` record has type S3 source
//! (compat 3: stock librbd refuses it and its children rather than reading zeros) and whose
//! image metadata holds the `s3.*` settings ([`S3Settings`]). Reading one of its objects:
//! 1. one RADOS read op returns the data *and* the claim key ([`BACKFILL_CLAIM_KEY`]): data
//!    without a claim is filled; a claim means "being filled", never a hole;
//! 2. a manifest hole is zeros: never fetched, never written;
//! 3. otherwise `rbd_ext.backfill_claim` on the object decides who fetches: the winner
//!    GETs the range from S3, verifies it against the manifest, and `backfill_complete`s
//!    (write_full + claim removal, one OSD transaction); everyone else polls with a backoff
//!    that starts at 1 ms, and takes over a claim whose holder died once it expires.
//!
//! Within a process, concurrent readers of the same object share one fill.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rbd_ext_cls::stubs::{self, stock};
use rbd_ext_cls::types::backfill::BACKFILL_CLAIM_KEY;

use crate::error::{Errno, Error, Result};
use crate::rados::{Cluster, IoCtx, ReadOp, ReadStep, StepOut, WriteOp, WriteStep};
use crate::s3::{self, Credentials, Manifest, ObjectPin, S3Client, S3Config, SecretRef};

/// One client's back-fill counters on an S3-backed image (saved on the header under
/// [`STATS_KEY_PREFIX`]`<owner>` when the image closes), or several clients' added up by
/// [`s3_stats`](crate::s3_parent::s3_stats). Serializes to the JSON `rbd-ext stats` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BackfillStats {
    /// The S3 client's requests, retries, failures and latency.
    pub s3: s3::S3Stats,
    /// Objects filled from S3 by this client.
    pub fills: u64,
    /// Reads served by objects already in RADOS.
    pub cache_hits: u64,
    /// Objects that are holes in the manifest (zeros, no GET).
    pub holes: u64,
    /// Reads that waited for another client's fill.
    pub waits: u64,
    /// Time spent in those waits, microseconds.
    pub wait_us_total: u64,
    /// Average wait, microseconds.
    pub wait_us_avg: u64,
    /// Longest wait, microseconds.
    pub wait_us_max: u64,
    /// Fills taken over from a client whose claim expired.
    pub takeovers: u64,
    /// Fills that failed.
    pub fill_failures: u64,
}

impl BackfillStats {
    /// Adds another client's counters: counts add up, maxima take the maximum, the average
    /// is recomputed from the totals.
    pub fn add(&mut self, o: &BackfillStats) {
        self.s3.add(&o.s3);
        self.fills += o.fills;
        self.cache_hits += o.cache_hits;
        self.holes += o.holes;
        self.waits += o.waits;
        self.wait_us_total += o.wait_us_total;
        self.wait_us_max = self.wait_us_max.max(o.wait_us_max);
        self.takeovers += o.takeovers;
        self.fill_failures += o.fill_failures;
        self.wait_us_avg = self.wait_us_total.checked_div(self.waits).unwrap_or(0);
    }
}

/// Header omap keys holding each client's back-fill counters (one JSON object per client).
pub const STATS_KEY_PREFIX: &str = "rbd_ext_stats.";

/// Metadata key prefix of the S3 settings (settable with stock `rbd image-meta set`).
pub const META_PREFIX: &str = "s3.";

/// The S3 settings of an S3-backed parent, from its image metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `http(s)://host:port`.
    pub endpoint: String,
    /// Bucket.
    pub bucket: String,
    /// SigV4 region.
    pub region: String,
    /// `s3.image_name`: one raw image, object N = bytes [N*os, (N+1)*os) (ranged GETs).
    pub image_name: Option<String>,
    /// `s3.prefix`: one S3 object per RADOS object, `<prefix><object number as %016x>`.
    pub prefix: Option<String>,
    /// Access key id (`s3.access_key`): plain or a `config://` reference.
    pub access_key: Option<String>,
    /// `s3.secret_key`: a `config://` reference, never the secret.
    pub secret_key: Option<String>,
    /// `s3.anonymous=true`: unsigned requests (public-read objects).
    pub anonymous: bool,
    /// Per-request timeout (`s3.timeout_ms`).
    pub timeout_ms: u64,
    /// Retries after the first attempt (`s3.retries`).
    pub retries: u32,
    /// How long a fill claim holds before others may take over (`s3.claim_ttl_ms`).
    pub claim_ttl_ms: u32,
    /// `s3.etag`: the ETag of `image_name` when attached; every ranged GET sends `If-Match`
    /// on it, so a replaced object fails instead of mixing old and new content.
    pub etag: Option<String>,
    /// `s3.object_bytes`: the size of `image_name` when attached.
    pub object_bytes: Option<u64>,
    /// `s3.version_id`: its version id, when the bucket has versioning (GETs read it).
    pub version_id: Option<String>,
    /// `s3.ca_file`: the CA bundle (PEM) to trust for `https://`, a path on every client
    /// host or a `config://` reference (one copy for the cluster).
    pub ca_file: Option<String>,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            image_name: None,
            prefix: None,
            access_key: None,
            secret_key: None,
            anonymous: false,
            timeout_ms: 30_000,
            retries: 3,
            claim_ttl_ms: 30_000,
            etag: None,
            object_bytes: None,
            version_id: None,
            ca_file: None,
        }
    }
}

impl S3Settings {
    /// From image metadata (keys with the `s3.` prefix); `EINVAL` naming the key on bad input.
    pub fn from_metadata(meta: &BTreeMap<String, Vec<u8>>) -> Result<S3Settings> {
        let get = |k: &str| meta.get(&format!("{META_PREFIX}{k}")).map(|v| String::from_utf8_lossy(v).trim().to_string());
        let bad = |k: &str, why: &str| Error::new(Errno::EINVAL, format!("image metadata {META_PREFIX}{k}: {why}"));
        let num = |k: &str, d: u64| -> Result<u64> { get(k).map_or(Ok(d), |v| v.parse().map_err(|_| bad(k, "not a number"))) };
        if get("enabled").as_deref() != Some("true") {
            return Err(bad("enabled", "is not `true`: not an S3-backed image"));
        }
        let s = S3Settings {
            endpoint: get("endpoint").ok_or_else(|| bad("endpoint", "missing"))?,
            bucket: get("bucket").ok_or_else(|| bad("bucket", "missing"))?,
            region: get("region").unwrap_or_else(|| "us-east-1".into()),
            image_name: get("image_name"),
            prefix: get("prefix"),
            access_key: get("access_key"),
            secret_key: get("secret_key"),
            anonymous: get("anonymous").as_deref() == Some("true"),
            timeout_ms: num("timeout_ms", 30_000)?,
            retries: num("retries", 3)? as u32,
            claim_ttl_ms: num("claim_ttl_ms", 30_000)?.clamp(1, 600_000) as u32,
            etag: get("etag").filter(|v| !v.is_empty()),
            object_bytes: get("object_bytes").map(|v| v.parse().map_err(|_| bad("object_bytes", "not a number"))).transpose()?,
            version_id: get("version_id").filter(|v| !v.is_empty()),
            ca_file: get("ca_file").filter(|v| !v.is_empty()),
        };
        if s.image_name.is_some() == s.prefix.is_some() {
            return Err(bad("image_name", "set exactly one of s3.image_name (with s3.image_format=raw) and s3.prefix"));
        }
        if let Some(f) = get("image_format") {
            if f != "raw" {
                return Err(bad("image_format", "only `raw` is supported"));
            }
        }
        if let Some(sk) = &s.secret_key {
            SecretRef::parse(sk)?;
        }
        if !s.anonymous && (s.access_key.is_none() || s.secret_key.is_none()) {
            return Err(bad("secret_key", "set s3.access_key and s3.secret_key (a config:// reference), or s3.anonymous=true"));
        }
        Ok(s)
    }

    /// The metadata entries that store these settings.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let mut m = vec![
            ("enabled", "true".to_string()),
            ("endpoint", self.endpoint.clone()),
            ("bucket", self.bucket.clone()),
            ("region", self.region.clone()),
            ("timeout_ms", self.timeout_ms.to_string()),
            ("retries", self.retries.to_string()),
            ("claim_ttl_ms", self.claim_ttl_ms.to_string()),
            ("anonymous", self.anonymous.to_string()),
        ];
        if let Some(k) = &self.image_name {
            m.push(("image_name", k.clone()));
            m.push(("image_format", "raw".into()));
        }
        if let Some(p) = &self.prefix {
            m.push(("prefix", p.clone()));
        }
        if let Some(a) = &self.access_key {
            m.push(("access_key", a.clone()));
        }
        if let Some(s) = &self.secret_key {
            m.push(("secret_key", s.clone()));
        }
        if let Some(e) = &self.etag {
            m.push(("etag", e.clone()));
        }
        if let Some(n) = self.object_bytes {
            m.push(("object_bytes", n.to_string()));
        }
        if let Some(v) = &self.version_id {
            m.push(("version_id", v.clone()));
        }
        if let Some(c) = &self.ca_file {
            m.push(("ca_file", c.clone()));
        }
        m.into_iter().map(|(k, v)| (format!("{META_PREFIX}{k}"), v)).collect()
    }

    /// What ranged GETs of `image_name` must still find (`None` when nothing was pinned:
    /// images attached before pinning existed).
    pub fn pin(&self) -> Option<ObjectPin> {
        self.etag.as_ref().map(|etag| ObjectPin { etag: etag.clone(), version_id: self.version_id.clone() })
    }

    /// The S3 configuration of these settings with `credentials` (already resolved).
    pub fn config(&self, local: &Cluster, credentials: Option<Credentials>) -> Result<S3Config> {
        let mut cfg = S3Config::new(self.endpoint.clone(), self.region.clone(), self.bucket.clone());
        cfg.timeout = Duration::from_millis(self.timeout_ms.max(1));
        cfg.retries = self.retries;
        cfg.credentials = credentials;
        if let Some(ca) = &self.ca_file {
            cfg.ca_pem = Some(read_ca(local, ca)?);
        }
        Ok(cfg)
    }

    /// The access key id: as stored, or resolved when it is a `config://` reference.
    pub fn access_key_value(&self, local: &Cluster) -> Result<String> {
        match self.access_key.as_deref().unwrap_or_default() {
            v if v.starts_with("config://") => s3::resolve_secret(local, &SecretRef::parse(v)?),
            v => Ok(v.to_string()),
        }
    }

    /// A client for these settings; secrets are resolved from the local config-key store.
    pub fn client(&self, local: &Cluster) -> Result<S3Client> {
        let mut cfg = self.config(local, None)?;
        if !self.anonymous {
            let access_key = self.access_key_value(local)?;
            let sref = SecretRef::parse(self.secret_key.as_deref().unwrap_or_default())?;
            cfg.credentials = Some(Credentials::new(access_key, s3::resolve_secret(local, &sref)?));
        }
        Ok(S3Client::new(cfg)?)
    }
}

/// The PEM bundle `ca` names: a `config://` reference (one copy in the mon config-key
/// store) or a path on this host.
pub fn read_ca(local: &Cluster, ca: &str) -> Result<Vec<u8>> {
    if ca.starts_with("config://") {
        return Ok(s3::resolve_secret(local, &SecretRef::parse(ca)?)?.into_bytes());
    }
    std::fs::read(ca).map_err(|e| Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)), format!("CA file {ca} (s3.ca_file)")))
}

/// Reads an image's metadata (all of it) through stock `rbd.metadata_list`.
pub fn image_metadata(md: &IoCtx, header_oid: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    use rbd_ext_cls::codec::{BufferList, Codec};
    let mut all = BTreeMap::new();
    let mut after = String::new();
    loop {
        let out = md.exec(header_oid, &stock::metadata_list(&after, 64))?;
        let page =
            BTreeMap::<String, BufferList>::read_bytes(&out).map_err(|_| Error::new(Errno::EBADMSG, format!("object {header_oid}: metadata_list reply")))?;
        let n = page.len();
        if let Some(k) = page.keys().next_back() {
            after = k.clone();
        }
        all.extend(page.into_iter().map(|(k, v)| (k, v.0)));
        if n < 64 {
            return Ok(all);
        }
    }
}

/// Process-wide fill counters of one S3-backed image (also flushed into its header).
#[derive(Debug, Default)]
pub struct BackfillCounters {
    /// Objects this process fetched and wrote back.
    pub fills: AtomicU64,
    /// Objects found already filled in RADOS when they were needed.
    pub cache_hits: AtomicU64,
    /// Manifest holes answered with zeros.
    pub holes: AtomicU64,
    /// Times a reader waited for another client's fill.
    pub waits: AtomicU64,
    /// Total and longest of those waits, in microseconds.
    pub wait_us_total: AtomicU64,
    /// Longest wait.
    pub wait_us_max: AtomicU64,
    /// Expired claims taken over.
    pub takeovers: AtomicU64,
    /// Fills that failed (S3 error, verification, lost claim).
    pub failures: AtomicU64,
}

/// The back-fill engine of one open S3-backed image.
pub(crate) struct Backfill {
    settings: S3Settings,
    client: S3Client,
    manifest: tokio::sync::OnceCell<Option<Manifest>>,
    image_size: u64,
    object_size: u64,
    owner: String,
    pub(crate) counters: BackfillCounters,
}

fn inflight() -> &'static Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
    static M: std::sync::OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = std::sync::OnceLock::new();
    M.get_or_init(Default::default)
}

impl Backfill {
    /// Sets up back-fill for the image whose header is `header_oid` in `md`.
    pub(crate) fn open(local: &Cluster, md: &IoCtx, header_oid: &str, image_size: u64, object_size: u64) -> Result<Backfill> {
        let settings = S3Settings::from_metadata(&image_metadata(md, header_oid)?)?;
        let client = settings.client(local)?;
        let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let owner = format!("client.{}/{}/{nonce:x}", md.instance_id(), std::process::id());
        Ok(Backfill { settings, client, manifest: tokio::sync::OnceCell::new(), image_size, object_size, owner, counters: BackfillCounters::default() })
    }

    /// The manifest, fetched once (`None` if none was published).
    pub(crate) async fn manifest(&self) -> Result<Option<&Manifest>> {
        let m = self
            .manifest
            .get_or_try_init(|| async {
                let Some(key) = &self.settings.image_name else { return Ok::<_, Error>(None) };
                match self.client.get(&s3::manifest_key(key)).await {
                    Ok(body) => {
                        let m = Manifest::from_json(&body)?;
                        if m.image_size != self.image_size || m.object_size != self.object_size {
                            return Err(Error::new(
                                Errno::EINVAL,
                                format!(
                                    "manifest of s3://{}/{key}: image size {} / object size {} do not match the parent image ({} / {})",
                                    self.settings.bucket, m.image_size, m.object_size, self.image_size, self.object_size
                                ),
                            ));
                        }
                        Ok(Some(m))
                    }
                    Err(e) if e.errno() == Errno::ENOENT => Ok(None),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        Ok(m.as_ref())
    }

    fn object_len(&self, n: u64) -> u64 {
        self.object_size.min(self.image_size.saturating_sub(n * self.object_size))
    }

    /// Whether object `n` is a hole per the manifest (never fetched).
    pub(crate) async fn is_hole(&self, n: u64) -> Result<bool> {
        Ok(self.manifest().await?.is_some_and(|m| m.is_zero(n)))
    }

    async fn fetch(&self, n: u64) -> Result<Vec<u8>> {
        let len = self.object_len(n);
        let data = match (&self.settings.image_name, &self.settings.prefix) {
            (Some(key), _) => self.client.get_range_pinned(key, n * self.object_size, len, self.settings.pin().as_ref()).await?,
            (None, Some(prefix)) => {
                let mut d = self.client.get(&format!("{prefix}{n:016x}")).await?;
                if d.len() as u64 > len {
                    return Err(Error::new(Errno::EIO, format!("s3 object {prefix}{n:016x}: {} bytes, more than the {len} of object {n}", d.len())));
                }
                d.resize(len as usize, 0);
                d
            }
            _ => unreachable!("validated in S3Settings::from_metadata"),
        };
        if let Some(m) = self.manifest().await? {
            m.verify(n, &data)?;
        }
        Ok(data)
    }

    /// The data of object `n` (`oid` in `data`), filling it from S3 if it is not in RADOS.
    pub(crate) async fn fill(&self, data: &IoCtx, oid: &str, n: u64) -> Result<Vec<u8>> {
        if self.is_hole(n).await? {
            self.counters.holes.fetch_add(1, Ordering::Relaxed);
            return Ok(vec![0; self.object_len(n) as usize]);
        }
        self.one_fill_at_a_time(data, oid, self.fill_locked(data, oid, n)).await
    }

    /// Makes sure object `n` is in RADOS, without reading it back (hydrate): claims first,
    /// so a filled object costs one refused claim (EEXIST) and a missing one no read.
    pub(crate) async fn ensure_filled(&self, data: &IoCtx, oid: &str, n: u64) -> Result<()> {
        if self.is_hole(n).await? {
            self.counters.holes.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.one_fill_at_a_time(data, oid, async {
            match -self.claim(data, oid).await? {
                0 => self.fetch_and_complete(data, oid, n).await.map(drop),
                libc::EEXIST => {
                    self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                // Another client is filling it: wait for it as a reader does.
                libc::EBUSY => self.fill_locked(data, oid, n).await.map(drop),
                e => Err(Error::new(Errno(e), format!("object {oid}: rbd_ext.backfill_claim"))),
            }
        })
        .await
    }

    /// `rbd_ext.backfill_claim` on `oid`: its return code (0, -EEXIST filled, -EBUSY held).
    async fn claim(&self, data: &IoCtx, oid: &str) -> Result<i32> {
        Ok(data.aio_write(oid, &WriteOp::default().exec(stubs::backfill_claim(&self.owner, self.settings.claim_ttl_ms)), 0)?.await.rc)
    }

    /// Runs `fill` as the only fill of `oid` in this process: later callers wait here, then
    /// find the object in RADOS. Counts a failure.
    async fn one_fill_at_a_time<T>(&self, data: &IoCtx, oid: &str, fill: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let key = format!("{:p}/{}/{}/{oid}", Arc::as_ptr(data.cluster()), data.pool_id(), data.namespace());
        let gate = Arc::clone(inflight().lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default());
        let _g = gate.lock().await;
        let r = fill.await;
        inflight().lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        if r.is_err() {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    async fn fill_locked(&self, data: &IoCtx, oid: &str, n: u64) -> Result<Vec<u8>> {
        let started = Instant::now();
        let mut waited = false;
        let mut delay = Duration::from_millis(1);
        let deadline = started + Duration::from_millis(u64::from(self.settings.claim_ttl_ms) * 3 + 10_000);
        // While a claim we found live holds, polling reads alone tells when the data lands;
        // claiming again (an OSD write) is only worth it once the claim may have expired.
        let reclaim_after = Duration::from_millis((u64::from(self.settings.claim_ttl_ms) / 4).clamp(1, 250));
        let mut busy_since: Option<Instant> = None;
        loop {
            let state = read_filled(data, oid, self.object_len(n)).await?;
            let was_claimed = matches!(state, Filled::Claimed);
            if was_claimed && busy_since.is_some_and(|t| t.elapsed() < reclaim_after) {
                if Instant::now() > deadline {
                    return Err(Error::new(Errno::ETIMEDOUT, format!("object {oid}: another client's back-fill did not finish in time")));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(8));
                continue;
            }
            match state {
                Filled::Data(d) => {
                    if waited {
                        let us = started.elapsed().as_micros() as u64;
                        self.counters.wait_us_total.fetch_add(us, Ordering::Relaxed);
                        self.counters.wait_us_max.fetch_max(us, Ordering::Relaxed);
                    } else {
                        self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(d);
                }
                Filled::Missing | Filled::Claimed => {}
            }
            match -self.claim(data, oid).await? {
                0 => {
                    if was_claimed {
                        // The claim we just got was someone else's, expired (its holder died
                        // or stalled): a takeover.
                        self.counters.takeovers.fetch_add(1, Ordering::Relaxed);
                    }
                    return self.fetch_and_complete(data, oid, n).await;
                }
                libc::EEXIST => continue,
                libc::EBUSY => {
                    busy_since = Some(Instant::now());
                    if !waited {
                        waited = true;
                        self.counters.waits.fetch_add(1, Ordering::Relaxed);
                    }
                    if Instant::now() > deadline {
                        return Err(Error::new(Errno::ETIMEDOUT, format!("object {oid}: another client's back-fill did not finish in time")));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(8));
                }
                e => return Err(Error::new(Errno(e), format!("object {oid}: rbd_ext.backfill_claim"))),
            }
        }
    }

    async fn fetch_and_complete(&self, data: &IoCtx, oid: &str, n: u64) -> Result<Vec<u8>> {
        let fetched = match self.fetch(n).await {
            Ok(d) => d,
            Err(e) => {
                // Leave nothing behind: the placeholder goes, the next reader claims afresh.
                let _ = data.exec_write(oid, &stubs::backfill_abort(&self.owner));
                return Err(e.context(format_args!("back-fill of object {n} ({oid})")));
            }
        };
        // The claim check and the data in one compound op (one transaction): the method,
        // given no data, only checks and drops the claim (its write_full of nothing is
        // overwritten by the step after it), so neither side copies the data into a method
        // input and the OSD writes it straight from the message.
        let mut op = WriteOp::default().exec(stubs::backfill_complete(&self.owner, &[])).step(WriteStep::WriteFull(fetched));
        let pending = data.aio_write(oid, &op, 0)?;
        // librados copied the op's data when it was prepared: the buffer is ours again.
        let Some(WriteStep::WriteFull(fetched)) = op.steps.pop() else { unreachable!("the op's last step is its write_full") };
        let r = pending.await;
        match -r.rc {
            0 => {
                self.counters.fills.fetch_add(1, Ordering::Relaxed);
                Ok(fetched)
            }
            // Filled by someone else after our claim expired: theirs is as good (verified too).
            libc::EEXIST | libc::EBUSY | libc::ENOENT => {
                self.counters.takeovers.fetch_add(1, Ordering::Relaxed);
                Ok(fetched)
            }
            e => Err(Error::new(Errno(e), format!("object {oid}: rbd_ext.backfill_complete"))),
        }
    }

    /// Saves this process's counters on the image header (key `rbd_ext_stats.<owner>`), so
    /// `rbd-ext stats` can add up every client's.
    pub(crate) fn flush_stats(&self, md: &IoCtx, header_oid: &str) {
        // A process that only waited for other clients' fills used the image too: its waits
        // count (skipping it undercounted clients when others filled every object first).
        let c = &self.counters;
        if self.client.stats().requests == 0 && c.cache_hits.load(Ordering::Relaxed) == 0 && c.waits.load(Ordering::Relaxed) == 0 {
            return;
        }
        let key = format!("{STATS_KEY_PREFIX}{}", self.owner);
        let _ = md.omap_set(header_oid, &[(&key, self.stats_json().as_bytes())]);
    }

    /// This process's counters plus the S3 client's.
    pub(crate) fn stats(&self) -> BackfillStats {
        let c = &self.counters;
        let waits = c.waits.load(Ordering::Relaxed);
        let wait_us_total = c.wait_us_total.load(Ordering::Relaxed);
        BackfillStats {
            s3: self.client.stats(),
            fills: c.fills.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            holes: c.holes.load(Ordering::Relaxed),
            waits,
            wait_us_total,
            wait_us_avg: wait_us_total.checked_div(waits).unwrap_or(0),
            wait_us_max: c.wait_us_max.load(Ordering::Relaxed),
            takeovers: c.takeovers.load(Ordering::Relaxed),
            fill_failures: c.failures.load(Ordering::Relaxed),
        }
    }

    /// [`Backfill::stats`] as the JSON saved on the header.
    pub(crate) fn stats_json(&self) -> String {
        serde_json::to_string(&self.stats()).expect("plain counters serialise")
    }
}

/// What one RADOS read of an S3-backed parent's object found.
pub(crate) enum Filled {
    /// Filled: its data (zero-padded to the object length).
    Data(Vec<u8>),
    /// Not there yet.
    Missing,
    /// Being filled by someone (claim present).
    Claimed,
}

/// Reads `[0, len)` of an object and its claim key in one op.
pub(crate) async fn read_filled(data: &IoCtx, oid: &str, len: u64) -> Result<Filled> {
    read_filled_range(data, oid, 0, len).await
}

/// Reads `[off, off+len)` of an object and its claim key in one op.
pub(crate) async fn read_filled_range(data: &IoCtx, oid: &str, off: u64, len: u64) -> Result<Filled> {
    let op = ReadOp { steps: vec![ReadStep::Read { off, len: len as usize }, ReadStep::OmapGetByKeys(vec![BACKFILL_CLAIM_KEY.into()])] };
    let r = data.aio_read(oid, &op, 0)?.await;
    if r.rc == -libc::ENOENT {
        return Ok(Filled::Missing);
    }
    if r.rc < 0 {
        return Err(Error::new(Errno(-r.rc), format!("object {oid}: read")));
    }
    let mut steps = r.steps.into_iter();
    let d = match steps.next() {
        Some((_, StepOut::Data(d))) => d,
        _ => Vec::new(),
    };
    let claimed = matches!(steps.next(), Some((_, StepOut::Omap(kv, _))) if !kv.is_empty());
    if claimed {
        return Ok(Filled::Claimed);
    }
    let mut d = d;
    d.resize(len as usize, 0);
    Ok(Filled::Data(d))
}

//! S3-backed parent management: attach an image to a raw image in S3, publish one there,
//! show and verify the settings, hydrate, and add up every client's back-fill counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};

use rbd_ext_cls::codec::{BufferList, SnapId};
use rbd_ext_cls::stubs::{self, stock};
use rbd_ext_cls::types::{ParentRecord, ParentType};

use crate::backfill::{image_metadata, BackfillStats, S3Settings, STATS_KEY_PREFIX};
use crate::error::{Errno, Error, Hint, Result};
use crate::header::{self, features, header_oid};
use crate::image::Image;
use crate::manage::Progress;
use crate::rados::{create_image, remove_image, Cluster, CreateOptions};
use crate::s3::{self, Manifest, ManifestBuilder, PutOptions, S3Client, S3Config};
use crate::spec::ImageSpec;

/// Where the raw image is and how to reach it, for [`s3_attach`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AttachOptions {
    /// S3 settings (endpoint, bucket, image_name or prefix, credentials by reference...).
    pub settings: S3Settings,
    /// A file holding the secret key: checked against S3, then stored in the mon config-key
    /// store under `rbd-ext/s3/<bucket>-<access key>` (shared by every image of that bucket
    /// and key), and the settings get its `config://` reference.
    pub secret_key_file: Option<String>,
    /// Replace a different secret already stored under that config-key (a key rotation:
    /// every image using the reference then signs with the new one). Without it such an
    /// attach fails and changes nothing.
    pub replace_secret: bool,
    /// Image size, when there is no manifest (default: the S3 object's size).
    pub size: Option<u64>,
    /// Object size exponent, when there is no manifest (default 22 = 4 MiB).
    pub order: Option<u8>,
}

impl AttachOptions {
    /// Sets `settings`: S3 settings (endpoint, bucket, image_name or prefix, credentials by reference...).
    pub fn with_settings(mut self, settings: S3Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets `secret_key_file`: A file holding the secret key: checked against S3, then stored in the mon config-key
    pub fn with_secret_key_file(mut self, secret_key_file: impl Into<String>) -> Self {
        self.secret_key_file = Some(secret_key_file.into());
        self
    }

    /// Sets `replace_secret`: Replace a different secret already stored under that config-key (a key rotation:
    pub fn with_replace_secret(mut self, replace_secret: bool) -> Self {
        self.replace_secret = replace_secret;
        self
    }

    /// Sets `size`: Image size, when there is no manifest (default: the S3 object's size).
    pub fn with_size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Sets `order`: Object size exponent, when there is no manifest (default 22 = 4 MiB).
    pub fn with_order(mut self, order: u8) -> Self {
        self.order = Some(order);
        self
    }
}

/// The config-key `s3 attach --secret-key-file` stores a secret under: one per bucket and
/// access key (ids by reference use their config-key name).
pub fn shared_secret_key(bucket: &str, access_key: Option<&str>) -> String {
    let who = access_key.unwrap_or("anonymous");
    let safe: String = format!("{bucket}-{who}").chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    format!("rbd-ext/s3/{safe}")
}

/// Reads a secret key file: UTF-8, trailing whitespace dropped, not empty.
fn read_secret_file(path: &str) -> Result<String> {
    let raw = std::fs::read(path).map_err(|e| Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)), format!("read secret key file {path}")))?;
    let s = String::from_utf8(raw).map_err(|_| Error::new(Errno::EINVAL, format!("secret key file {path}: not UTF-8")))?;
    let s = s.trim_end().to_string();
    if s.is_empty() {
        return Err(Error::new(Errno::EINVAL, format!("secret key file {path}: empty")));
    }
    Ok(s)
}

/// A config-key's value before [`s3_attach`] stored a secret there, to put back on failure.
enum SecretUndo {
    /// Nothing was stored (the same secret was there already, or a reference was given).
    Nothing,
    /// The key was new: remove it.
    Remove(String),
    /// The key held another secret (`--replace-secret`): restore it.
    Restore(String, String),
}

impl SecretUndo {
    fn run(self, cluster: &Cluster) {
        let _ = match self {
            SecretUndo::Nothing => return,
            SecretUndo::Remove(k) => cluster.mon_command(&serde_json::json!({"prefix": "config-key rm", "key": k}).to_string(), b"").map(drop),
            SecretUndo::Restore(k, v) => s3::store_secret(cluster, &k, v.as_bytes()).map(drop),
        };
    }
}

/// What config-key `key` holds now (`None` if it is not set).
fn stored_secret(cluster: &Cluster, key: &str) -> Result<Option<String>> {
    match s3::resolve_secret(cluster, &s3::SecretRef::for_key(key)?) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// EEXIST when `key` holds a secret other than `secret` and `replace` is not set: other
/// images of the bucket use it, and a wrong file would break them all.
fn refuse_different_secret(key: &str, previous: Option<&str>, secret: &str, replace: bool) -> Result<()> {
    match previous {
        Some(p) if p != secret && !replace => Err(Error::new(
            Errno::EEXIST,
            format!(
                "secret config://{key} already holds a different secret key for this bucket and access key, and other S3-backed images \
                 may use it; nothing was changed: check the secret key file, or rotate the stored key (every image referring to \
                 config://{key} then uses the new one)"
            ),
        )
        .hinted(Hint::ReplaceSecret)),
        _ => Ok(()),
    }
}

/// Stores `secret` under config-key `key` unless that very secret is there already (see
/// [`refuse_different_secret`]); returns how to undo it.
fn store_shared_secret(cluster: &Cluster, key: &str, secret: &str, replace: bool) -> Result<SecretUndo> {
    let previous = stored_secret(cluster, key)?;
    refuse_different_secret(key, previous.as_deref(), secret, replace)?;
    let undo = match previous {
        Some(p) if p == secret => return Ok(SecretUndo::Nothing),
        Some(p) => SecretUndo::Restore(key.to_string(), p),
        None => SecretUndo::Remove(key.to_string()),
    };
    s3::store_secret(cluster, key, secret.as_bytes())?;
    Ok(undo)
}

/// HEADs the attached object and checks it is still the one pinned (`s3.etag`). ESTALE,
/// naming both ETags, when it was replaced; `None` in prefix mode (no single object).
pub async fn head_pinned(client: &S3Client, settings: &S3Settings) -> Result<Option<s3::ObjectInfo>> {
    let Some(key) = &settings.image_name else {
        return Ok(None);
    };
    let info = client.head(key).await?;
    if let Some(pinned) = &settings.etag {
        // With a pinned version the GETs read that version, whatever the key holds now.
        if settings.version_id.is_none() && *pinned != info.etag {
            return Err(Error::new(
                Errno::ESTALE,
                format!(
                    "s3 {}: the object changed since it was attached (ETag was {pinned}, now {}): attach the new object to a new image, or restore the old one",
                    client.url(key),
                    info.etag
                ),
            ));
        }
    }
    Ok(Some(info))
}

/// Creates `spec` as an S3-backed parent: a sparse image of the published size, its `s3.*`
/// metadata (with the object's ETag, size and version id pinned), and a `parent` record of
/// type S3 source (which makes stock librbd refuse it and its children instead of reading
/// unfilled objects as zeros).
///
/// The credentials are checked against S3 before anything is stored; a secret key file is
/// stored only then, and never over a different stored secret without
/// [`AttachOptions::replace_secret`]. A failed attach changes nothing (image and config-key
/// are rolled back).
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// use rbd_ext::backfill::S3Settings;
/// let mut settings = S3Settings::default();
/// settings.endpoint = "https://s3.example.com".into();
/// settings.bucket = "images".into();
/// settings.image_name = Some("golden.raw".into());
/// settings.access_key = Some("AKIAEXAMPLE".into());
/// let opts = rbd_ext::AttachOptions::default().with_settings(settings).with_secret_key_file("/etc/ceph/s3.secret");
/// rbd_ext::s3_attach(&cluster, &"rbd/golden".parse()?, &opts).await?;
/// # Ok(()) }
/// ```
pub async fn s3_attach(cluster: &Arc<Cluster>, spec: &ImageSpec, opts: &AttachOptions) -> Result<()> {
    spec.require_head("image")?;
    let mut settings = opts.settings.clone();
    let file_secret = opts.secret_key_file.as_deref().map(read_secret_file).transpose()?;
    let shared_key = file_secret.as_ref().map(|_| shared_secret_key(&settings.bucket, settings.access_key.as_deref()));
    if let Some(k) = &shared_key {
        settings.secret_key = Some(format!("config://{k}"));
    }
    // Validate exactly what will be stored.
    let check: BTreeMap<String, Vec<u8>> = settings.to_metadata().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    let mut settings = S3Settings::from_metadata(&check)?;
    // The client signs with the file's secret directly: nothing is stored before S3 accepts it.
    let client = match &file_secret {
        Some(secret) => S3Client::new(settings.config(cluster, Some(s3::Credentials::new(settings.access_key_value(cluster)?, secret.clone())))?)?,
        None => settings.client(cluster)?,
    };
    let (size, order) = match settings.image_name.clone() {
        Some(key) => {
            let info = client.head(&key).await?;
            settings.etag = Some(info.etag.clone()).filter(|e| !e.is_empty());
            settings.object_bytes = Some(info.size);
            settings.version_id = info.version_id.clone();
            match client.get(&s3::manifest_key(&key)).await {
                Ok(body) => {
                    let m = Manifest::from_json(&body)?;
                    if !m.object_size.is_power_of_two() {
                        return Err(Error::new(Errno::EINVAL, format!("manifest of {key}: object size {} is not a power of two", m.object_size)));
                    }
                    if !m.etag.is_empty() && m.etag != info.etag {
                        return Err(Error::new(
                            Errno::ESTALE,
                            format!(
                                "s3 {}: ETag {} differs from its manifest's {}: republish it with `rbd-ext s3 publish`",
                                client.url(&key),
                                info.etag,
                                m.etag
                            ),
                        ));
                    }
                    (m.image_size, m.object_size.trailing_zeros() as u8)
                }
                Err(e) if e.errno() == Errno::ENOENT => (opts.size.unwrap_or(info.size), opts.order.unwrap_or(22)),
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let size = opts.size.ok_or_else(|| {
                Error::new(Errno::EINVAL, "an s3.prefix parent needs its size (there is no single object to measure)".to_string()).hinted(Hint::Size)
            })?;
            // The credentials and the prefix, checked on the first object.
            client.head(&format!("{}{:016x}", settings.prefix.as_deref().unwrap_or_default(), 0)).await?;
            (size, opts.order.unwrap_or(22))
        }
    };
    let meta: BTreeMap<String, Vec<u8>> = settings.to_metadata().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    // A different stored secret is refused before anything is created.
    if let (Some(k), Some(secret)) = (&shared_key, &file_secret) {
        refuse_different_secret(k, stored_secret(cluster, k)?.as_deref(), secret, opts.replace_secret)?;
    }
    let md = header::md_ioctx(cluster, spec)?;
    // Layering only: no object map (the fills are not librbd writes) and no exclusive lock.
    let create = CreateOptions { order: Some(order), features: Some(features::LAYERING), ..Default::default() };
    create_image(&md, &spec.image, size, &create).map_err(|e| {
        if e.is_exists() {
            Error::new(Errno::EEXIST, format!("image {spec} already exists"))
        } else {
            e.context(format_args!("image {spec}"))
        }
    })?;
    let mut undo = SecretUndo::Nothing;
    let mut finish = || -> Result<()> {
        if let (Some(k), Some(secret)) = (&shared_key, &file_secret) {
            undo = store_shared_secret(cluster, k, secret, opts.replace_secret)?;
        }
        let id = header::lookup_id(&md, spec)?;
        let oid = header_oid(&id);
        let kv: BTreeMap<String, BufferList> = meta.iter().map(|(k, v)| (k.clone(), BufferList(v.clone()))).collect();
        md.exec_write(&oid, &stock::metadata_set(&kv))?;
        let record = ParentRecord { pool_id: -1, snap_id: SnapId::NOSNAP, head_overlap: Some(size), parent_type: ParentType::S3Source, ..Default::default() };
        md.exec_write(&oid, &stubs::parent_attach(&record, false))
    };
    if let Err(e) = finish() {
        let _ = remove_image(&md, &spec.image);
        undo.run(cluster);
        return Err(e.context(format_args!("s3 attach {spec}: rolled back")));
    }
    Ok(())
}

/// Checks, before a child is created, that an S3-backed `parent` can be read from S3:
/// its secrets resolve, S3 accepts them, and the object is the one attached (as
/// `s3 verify` does, without the sample GET). Any other parent passes at once.
pub async fn check_s3_parent(cluster: &Arc<Cluster>, parent: &ImageSpec) -> Result<()> {
    let (loc, hdr) = header::locate(cluster, parent)?;
    if hdr.parent.as_ref().is_none_or(|p| p.parent_type != ParentType::S3Source) {
        return Ok(());
    }
    let why = |e: Error| {
        e.context(format_args!(
            "parent {parent} is S3-backed and not readable from S3 (checked before creating the child; `rbd-ext s3 verify {parent}` says more)"
        ))
    };
    let settings = S3Settings::from_metadata(&image_metadata(&loc.md, &header_oid(&loc.id))?).map_err(why)?;
    let client = settings.client(cluster).map_err(why)?;
    match &settings.prefix {
        Some(prefix) if settings.image_name.is_none() => client.head(&format!("{prefix}{:016x}", 0)).await.map(drop).map_err(|e| why(e.into())),
        _ => head_pinned(&client, &settings).await.map(drop).map_err(why),
    }
}

/// The S3 settings of an S3-backed image (references, never secrets).
pub fn s3_settings(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<S3Settings> {
    let (loc, _) = header::locate(cluster, spec)?;
    S3Settings::from_metadata(&image_metadata(&loc.md, &header_oid(&loc.id))?).map_err(|e| e.context(format_args!("image {spec}")))
}

/// What [`s3_verify`] found, one line per check.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// (check, outcome) pairs; every outcome here passed.
    pub checks: Vec<(String, String)>,
}

/// Checks that the settings work: secrets resolve, the object is reachable with these
/// credentials, the manifest matches the image, and a sample GET verifies.
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let report = rbd_ext::s3_verify(&cluster, &"rbd/golden".parse()?).await?;
/// println!("{report:?}");
/// # Ok(()) }
/// ```
pub async fn s3_verify(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<VerifyReport> {
    let settings = s3_settings(cluster, spec)?;
    let (_, hdr) = header::locate(cluster, spec)?;
    let mut r = VerifyReport::default();
    let client = settings.client(cluster)?;
    r.checks.push(("credentials".into(), if settings.anonymous { "anonymous".into() } else { "references resolve".into() }));
    let Some(key) = &settings.image_name else {
        let first = client.get(&format!("{}{:016x}", settings.prefix.as_deref().unwrap_or_default(), 0)).await?;
        r.checks.push(("sample GET".into(), format!("object 0: {} bytes", first.len())));
        return Ok(r);
    };
    let info = head_pinned(&client, &settings).await.map_err(|e| e.context("s3 verify: reach the image"))?.expect("image_name mode");
    r.checks.push(("reach".into(), format!("{} ({} bytes, etag {})", client.url(key), info.size, info.etag)));
    r.checks.push((
        "pinned".into(),
        match (&settings.etag, &settings.version_id) {
            (Some(e), Some(v)) => format!("etag {e}, version {v} (every GET reads that version, If-Match)"),
            (Some(e), None) => format!("etag {e} (If-Match on every GET)"),
            _ => "nothing pinned (attached by an older rbd-ext): a replaced object would not be noticed; attach again to pin it".into(),
        },
    ));
    if info.size < hdr.size {
        return Err(Error::new(Errno::EIO, format!("s3 verify: {} holds {} bytes, the image is {} bytes", client.url(key), info.size, hdr.size)));
    }
    match client.get(&s3::manifest_key(key)).await {
        Ok(body) => {
            let m = Manifest::from_json(&body)?;
            if m.image_size != hdr.size || m.object_size != hdr.object_size() {
                return Err(Error::new(
                    Errno::EINVAL,
                    format!("s3 verify: manifest says {} bytes / {}-byte objects, the image {} / {}", m.image_size, m.object_size, hdr.size, hdr.object_size()),
                ));
            }
            if !m.etag.is_empty() && m.etag != info.etag {
                return Err(Error::new(Errno::ESTALE, format!("s3 verify: the image's ETag {} differs from the manifest's {}: republish", info.etag, m.etag)));
            }
            let n = (0..m.object_count()).find(|n| !m.is_zero(*n)).unwrap_or(0);
            let len = m.object_len(n).unwrap_or(0);
            let d = client.get_range_pinned(key, n * m.object_size, len, settings.pin().as_ref()).await?;
            m.verify(n, &d)?;
            r.checks.push(("manifest".into(), format!("{} objects, {} zero", m.object_count(), (0..m.object_count()).filter(|n| m.is_zero(*n)).count())));
            r.checks.push(("sample GET".into(), format!("object {n}: {len} bytes, SHA-256 verified")));
        }
        Err(e) if e.errno() == Errno::ENOENT => {
            let len = hdr.object_size().min(hdr.size);
            client.get_range_pinned(key, 0, len, settings.pin().as_ref()).await?;
            r.checks.push(("manifest".into(), "none published (fills are not verified, holes are fetched)".into()));
            r.checks.push(("sample GET".into(), format!("object 0: {len} bytes")));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(r)
}

/// What to publish.
#[derive(Debug, Clone)]
pub enum PublishSource {
    /// A raw image file.
    File(String),
    /// An RBD image (read through rbd-ext, so a clone publishes its logical content).
    Image(ImageSpec),
}

/// Uploads a raw image to `s3://<config.bucket>/<key>` (multipart) and its manifest beside
/// it (`<key>.manifest.json`: size, object size, SHA-256 per object, zero objects, ETag).
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// use rbd_ext::s3::S3Config;
/// let config: S3Config = todo!("endpoint, region, bucket, credentials");
/// let source = rbd_ext::PublishSource::Image("rbd/golden".parse()?);
/// let manifest = rbd_ext::s3_publish(&cluster, &source, config, "golden.raw", 4 << 20, &|_, _| {}).await?;
/// # Ok(()) }
/// ```
pub async fn s3_publish(
    cluster: &Arc<Cluster>,
    source: &PublishSource,
    config: S3Config,
    key: &str,
    object_size: u64,
    progress: Progress<'_>,
) -> Result<Manifest> {
    let client = S3Client::new(config)?;
    enum Src {
        File(std::fs::File),
        Img(Box<Image>),
    }
    let (mut src, total, object_size) = match source {
        PublishSource::File(p) => {
            let f = std::fs::File::open(p).map_err(|e| Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)), format!("open {p}")))?;
            let len = f.metadata().map_err(|e| Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)), format!("stat {p}")))?.len();
            (Src::File(f), len, object_size)
        }
        PublishSource::Image(s) => {
            let img = Image::open(cluster, s, Default::default()).await?;
            let (size, os) = (img.size(), img.header().object_size());
            (Src::Img(Box::new(img)), size, os)
        }
    };
    let part = (s3::MIN_PART_SIZE as u64).div_ceil(object_size).max(1) * object_size;
    let mut builder = ManifestBuilder::new(object_size)?;
    let upload = client.create_multipart(key, &PutOptions::default()).await?;
    let result: Result<String> = async {
        let mut parts = Vec::new();
        let mut off = 0u64;
        progress(0, total);
        while off < total || (total == 0 && parts.is_empty()) {
            let len = part.min(total - off);
            let buf = match &mut src {
                Src::File(f) => {
                    use std::io::{Read, Seek, SeekFrom};
                    let mut b = vec![0u8; len as usize];
                    f.seek(SeekFrom::Start(off))
                        .and_then(|_| f.read_exact(&mut b))
                        .map_err(|e| Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)), "read source"))?;
                    b
                }
                Src::Img(img) => img.read_at(off, len).await?,
            };
            builder.update(&buf);
            parts.push(client.upload_part(key, &upload, parts.len() as u32 + 1, buf).await?);
            off += len;
            progress(off, total);
            if total == 0 {
                break;
            }
        }
        Ok(client.complete_multipart(key, &upload, &parts).await?)
    }
    .await;
    let etag = match result {
        Ok(t) => t,
        Err(e) => {
            let _ = client.abort_multipart(key, &upload).await;
            return Err(e.context(format_args!("s3 publish {}", client.url(key))));
        }
    };
    let mut m = builder.finish();
    m.etag = etag.trim_matches('"').to_string();
    client.put(&s3::manifest_key(key), m.to_json().into_bytes()).await?;
    Ok(m)
}

/// What [`hydrate`] did.
#[derive(Debug, Clone, Default)]
pub struct HydrateReport {
    /// Objects visited.
    pub objects: u64,
    /// Bytes of image covered.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
}

/// Fills an S3-backed parent completely (bounded parallel ranged GETs; objects already in
/// RADOS and manifest holes cost no GET). For a child, flattens it through its parent.
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// use rbd_ext::{Image, OpenOptions};
/// let image = Image::open(&cluster, &"rbd/golden".parse()?, OpenOptions::default()).await?;
/// let report = rbd_ext::hydrate(&image, 8, &|_, _| {}).await?;
/// println!("{} objects in {:.1} s", report.objects, report.seconds);
/// # Ok(()) }
/// ```
pub async fn hydrate(image: &Image, parallel: usize, progress: Progress<'_>) -> Result<HydrateReport> {
    let t = Instant::now();
    let hdr = image.header();
    if !image.is_s3_backed() {
        if hdr.parent.is_none() {
            return Err(Error::new(Errno::EINVAL, format!("image {} is neither S3-backed nor a clone: nothing to hydrate", image.spec())));
        }
        crate::manage::flatten(image, progress).await?;
        return Ok(HydrateReport { objects: hdr.object_count(), bytes: hdr.size, seconds: t.elapsed().as_secs_f64() });
    }
    let total = hdr.object_count();
    let done = AtomicU64::new(0);
    progress(0, total);
    stream::iter(0..total)
        .map(|n| {
            let done = &done;
            async move {
                image.ensure_filled(n).await?;
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<()>()
        .await?;
    Ok(HydrateReport { objects: total, bytes: hdr.size, seconds: t.elapsed().as_secs_f64() })
}

/// Every client's saved back-fill counters on an S3-backed image, added up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ImageStats {
    /// The sum (maxima are maxima).
    #[serde(flatten)]
    pub total: BackfillStats,
    /// How many clients' counters went into it.
    pub clients: u64,
}

/// Adds up every client's saved back-fill counters on an S3-backed image (records that do
/// not parse are skipped); with `reset`, clears them afterwards.
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let stats = rbd_ext::s3_parent::s3_stats(&cluster, &"rbd/golden".parse()?, false).await?;
/// println!("{} fills by {} clients", stats.total.fills, stats.clients);
/// # Ok(()) }
/// ```
pub async fn s3_stats(cluster: &Arc<Cluster>, spec: &ImageSpec, reset: bool) -> Result<ImageStats> {
    let (cluster, spec) = (cluster.clone(), spec.clone());
    crate::task::offload(move || s3_stats_blocking(&cluster, &spec, reset)).await
}

fn s3_stats_blocking(cluster: &Arc<Cluster>, spec: &ImageSpec, reset: bool) -> Result<ImageStats> {
    let (loc, _) = header::locate(cluster, spec)?;
    let oid = header_oid(&loc.id);
    let entries = loc.md.omap_list(&oid, STATS_KEY_PREFIX)?;
    let mut out = ImageStats { clients: entries.len() as u64, ..Default::default() };
    for (_, v) in &entries {
        if let Ok(one) = serde_json::from_slice::<BackfillStats>(v) {
            out.total.add(&one);
        }
    }
    if reset && !entries.is_empty() {
        let keys = entries.into_iter().map(|(k, _)| k).collect();
        loc.md.write(&oid, &crate::rados::WriteOp::default().step(crate::rados::WriteStep::OmapRmKeys(keys)))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_maxes_take_the_max() {
        let mut t = BackfillStats::default();
        for j in [
            r#"{"fills":2,"waits":1,"wait_us_total":10,"wait_us_max":5,"s3":{"gets":3,"latency":{"count":1,"max_us":70}}}"#,
            r#"{"fills":1,"waits":3,"wait_us_total":30,"wait_us_max":9,"s3":{"gets":4,"latency":{"count":2,"max_us":50}}}"#,
        ] {
            t.add(&serde_json::from_str(j).unwrap());
        }
        assert_eq!((t.fills, t.waits, t.wait_us_max, t.wait_us_avg), (3, 4, 9, 10));
        assert_eq!((t.s3.gets, t.s3.latency.count, t.s3.latency.max_us), (7, 3, 70));
        // The JSON keys and their order are what `rbd-ext stats` has always printed.
        let j = serde_json::to_string(&ImageStats { total: t, clients: 2 }).unwrap();
        assert!(j.starts_with(r#"{"s3":{"requests":0,"gets":7,"#), "{j}");
        assert!(j.ends_with(r#""wait_us_avg":10,"wait_us_max":9,"takeovers":0,"fill_failures":0,"clients":2}"#), "{j}");
    }
}

//! The only module that calls the rbd-ext library.
//!
//! Every call runs on one process-wide tokio runtime through `block_on`, with the GIL
//! released (`allow_threads`) while it waits, so other Python threads keep running. The
//! library's management calls are sync today and may become async with the same names and
//! arguments: each is already wrapped in an `async` block here, so that change is an
//! `.await` per call. (A sync call inside `block_on` runs on the calling thread, which is not
//! a runtime worker, so it blocks nothing the runtime needs.)
//!
//! Option structs are filled field by field from `Default` rather than with struct literals:
//! that still compiles when the library makes them `#[non_exhaustive]`.

#![allow(clippy::field_reassign_with_default)]

use std::future::Future;
use std::sync::{Arc, OnceLock};

use pyo3::Python;

use rbd_ext::backfill::S3Settings;
use rbd_ext::rados::{Cluster, ConnectOptions};
use rbd_ext::s3::{Credentials, Manifest, S3Client, S3Config, SecretRef};
use rbd_ext::s3_parent::{self, AttachOptions, HydrateReport, PublishSource, VerifyReport};
use rbd_ext::{Children, CloneOptions, Errno, Image, ImageInfo, ImageSpec, OpenOptions};

/// What failed: the library's error, or one found here (before the library was called).
#[derive(Debug)]
pub(crate) enum Failure {
    /// The library's error (it names the image or object and carries the errno).
    Lib(rbd_ext::Error),
    /// An error of this module: errno and what failed.
    Own(Errno, String),
}

impl From<rbd_ext::Error> for Failure {
    fn from(e: rbd_ext::Error) -> Failure {
        Failure::Lib(e)
    }
}

/// `Result` with [`Failure`].
pub(crate) type Result<T> = std::result::Result<T, Failure>;

/// A progress callback as the library takes it: (done, total).
pub(crate) type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// The runtime every call runs on; built once, on first use.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        // Two workers: the library's parallelism is in-flight RADOS ops, not CPU.
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("rbd-ext-py").enable_all().build().map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Failure::Own(Errno::EIO, format!("start the rbd_ext runtime: {e}")))
}

/// Runs `f` to completion on the runtime with the GIL released.
fn block<T: Send>(py: Python<'_>, f: impl Future<Output = Result<T>> + Send) -> Result<T> {
    let rt = runtime()?;
    py.allow_threads(|| rt.block_on(f))
}

/// How to connect: the settings read from a python3-rados `Rados` (see the package
/// docstring for where each comes from).
pub(crate) struct ConnectSettings {
    /// Conf file to read; `None` searches as librados does (`$CEPH_CONF`, /etc/ceph/...).
    pub conf: Option<String>,
    /// Client id without `client.`.
    pub id: String,
    /// Cluster name (`ceph`).
    pub cluster_name: Option<String>,
    /// Effective config values of the caller's handle, applied after the conf file.
    pub settings: Vec<(String, String)>,
}

/// Opens the module's own connection.
pub(crate) fn connect(py: Python<'_>, s: ConnectSettings) -> Result<Arc<Cluster>> {
    let mut opts = ConnectOptions::default();
    opts.conf = s.conf;
    opts.id = Some(s.id);
    opts.cluster_name = s.cluster_name;
    opts.settings = s.settings;
    // The caller's handle already says what CEPH_ARGS would (its effective values above);
    // python3-rados reads CEPH_ARGS only when asked to.
    opts.ignore_env = true;
    block(py, async move { Ok(Cluster::connect(&opts)?) })
}

/// The cluster's fsid (to check that the connection reaches the caller's cluster).
pub(crate) fn fsid(py: Python<'_>, c: &Arc<Cluster>) -> Result<String> {
    block(py, async move { Ok(c.fsid()?) })
}

/// Options of [`clone_standalone`], as python-rbd names them.
pub(crate) struct CloneArgs {
    pub features: Option<u64>,
    pub order: Option<u8>,
    pub data_pool: Option<String>,
}

/// A standalone clone of `parent`'s HEAD named `child` (same cluster).
pub(crate) fn clone_standalone(py: Python<'_>, c: &Arc<Cluster>, parent: ImageSpec, child: ImageSpec, a: CloneArgs) -> Result<()> {
    block(py, async move {
        // As the CLI: an S3-backed parent whose settings do not work would give a child that
        // fails at its first read.
        s3_parent::check_s3_parent(c, &parent).await?;
        let mut opts = CloneOptions::default();
        opts.features = a.features;
        opts.order = a.order;
        opts.data_pool = a.data_pool;
        Ok(rbd_ext::clone_standalone(c, &parent, &child, &opts).await?)
    })
}

/// The live HEAD children of `parent` (stale entries are dropped on the way).
pub(crate) fn children(py: Python<'_>, c: &Arc<Cluster>, parent: ImageSpec) -> Result<Children> {
    block(py, async move { Ok(rbd_ext::children(c, &parent).await?) })
}

/// Removes an image; `EBUSY` while it has standalone clones.
pub(crate) fn remove(py: Python<'_>, c: &Arc<Cluster>, spec: ImageSpec) -> Result<()> {
    block(py, async move { Ok(rbd_ext::remove(c, &spec).await.map(drop)?) })
}

/// Creates snapshot `spec.snap` of `spec`: a standalone child's keeps its parent overlap, so
/// stock librbd reads it right.
pub(crate) fn snap_create(py: Python<'_>, c: &Arc<Cluster>, spec: ImageSpec) -> Result<()> {
    block(py, async move { Ok(rbd_ext::snap_create(c, &spec).await?) })
}

/// Flattens a clone under the writer lock.
pub(crate) fn flatten(py: Python<'_>, c: &Arc<Cluster>, spec: ImageSpec, progress: Progress<'_>) -> Result<()> {
    block(py, async move {
        let mut o = OpenOptions::default();
        o.write = true;
        let image = Image::open(c, &spec, o).await?;
        let r = rbd_ext::flatten(&image, progress).await;
        let closed = image.close_async().await;
        r?;
        Ok(closed?)
    })
}

/// What `info` reports: the image's summary and its data pool's name.
pub(crate) struct Info {
    pub info: ImageInfo,
    pub data_pool: Option<String>,
}

/// The image's header facts and parent, also for a child whose parent this client cannot
/// open (remote, S3): then the parent is named by pool and image id, as `rbd-ext info` does.
pub(crate) fn info(py: Python<'_>, c: &Arc<Cluster>, spec: ImageSpec) -> Result<Info> {
    block(py, async move {
        let info = match Image::open(c, &spec, OpenOptions::default()).await {
            Ok(image) => {
                let info = image.info();
                image.close_async().await?;
                info
            }
            Err(e) if e.errno() == Errno::EOPNOTSUPP => {
                let (loc, header) = rbd_ext::header::locate(c, &spec)?;
                let parent = header.parent.as_ref().map(|p| {
                    let local = (!p.is_foreign()).then(|| c.ioctx_by_id(p.pool_id, &p.pool_namespace).ok()).flatten();
                    ImageSpec {
                        pool: local.as_ref().map_or_else(|| p.pool_id.to_string(), |io| io.pool().to_string()),
                        namespace: p.pool_namespace.clone(),
                        image: local.as_ref().and_then(|io| rbd_ext::header::lookup_name(io, &p.image_id).ok()).unwrap_or_else(|| p.image_id.clone()),
                        snap: None,
                    }
                });
                ImageInfo { spec: spec.clone(), id: loc.id.clone(), header, parent }
            }
            Err(e) => return Err(e.into()),
        };
        let data_pool = match info.header.data_pool_id {
            id if id >= 0 => Some(c.pool_reverse_lookup(id)?),
            _ => None,
        };
        Ok(Info { info, data_pool })
    })
}

/// `s3 attach`'s inputs (the CLI's flags).
pub(crate) struct AttachArgs {
    pub endpoint: String,
    pub bucket: String,
    pub region: Option<String>,
    pub image_name: Option<String>,
    pub prefix: Option<String>,
    pub access_key: Option<String>,
    pub secret_key_ref: Option<String>,
    pub secret_key_file: Option<String>,
    pub anonymous: bool,
    pub replace_secret: bool,
    pub size: Option<u64>,
    pub order: Option<u8>,
    pub ca_file: Option<String>,
    pub timeout_ms: Option<u64>,
    pub retries: Option<u32>,
}

/// Makes `spec` an S3-backed parent (a new image, filled from S3 on demand).
pub(crate) fn s3_attach(py: Python<'_>, c: &Arc<Cluster>, spec: ImageSpec, a: AttachArgs) -> Result<()> {
    block(py, async move {
        let mut settings = S3Settings::default();
        settings.endpoint = a.endpoint;
        settings.bucket = a.bucket;
        if let Some(r) = a.region {
            settings.region = r;
        }
        settings.image_name = a.image_name;
        settings.prefix = a.prefix;
        settings.access_key = if a.anonymous { None } else { a.access_key };
        // As given: the library refuses anything but a config:// reference.
        settings.secret_key = a.secret_key_ref;
        settings.anonymous = a.anonymous;
        settings.ca_file = a.ca_file;
        if let Some(t) = a.timeout_ms {
            settings.timeout_ms = t;
        }
        if let Some(r) = a.retries {
            settings.retries = r;
        }
        let mut opts = AttachOptions::default();
        opts.settings = settings;
        opts.secret_key_file = a.secret_key_file;
        opts.replace_secret = a.replace_secret;
        opts.size = a.size;
        opts.order = a.order;
        Ok(s3_parent::s3_attach(c, &spec, &opts).await?)
    })
}

/// Checks an S3-backed parent's settings against S3 (reachable, credentials, object, manifest).
pub(crate) fn s3_verify(py: Python<'_>, c: &Arc<Cluster>, spec: ImageSpec) -> Result<VerifyReport> {
    block(py, async move { Ok(s3_parent::s3_verify(c, &spec).await?) })
}

/// Fills an S3-backed parent completely, or flattens a clone.
pub(crate) fn hydrate(py: Python<'_>, c: &Arc<Cluster>, spec: ImageSpec, parallel: usize, progress: Progress<'_>) -> Result<HydrateReport> {
    block(py, async move {
        // An S3-backed parent is read (its fills are not writes); a clone is flattened, which
        // takes the writer lock.
        let mut image = Image::open(c, &spec, OpenOptions::default()).await?;
        if !image.is_s3_backed() && image.header().parent.is_some() {
            image.close_async().await?;
            let mut o = OpenOptions::default();
            o.write = true;
            image = Image::open(c, &spec, o).await?;
        }
        let r = s3_parent::hydrate(&image, parallel, progress).await;
        let closed = image.close_async().await;
        let r = r?;
        closed?;
        Ok(r)
    })
}

/// What to publish and where (`s3 publish`'s inputs).
pub(crate) struct PublishArgs {
    pub source: PublishSource,
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub access_key: Option<String>,
    pub secret_key_file: Option<String>,
    pub secret_key_ref: Option<String>,
    pub object_size: u64,
    pub ca_file: Option<String>,
    pub create_bucket: bool,
}

/// Uploads a raw image (an RBD image's logical content, or a file) and its manifest.
pub(crate) fn s3_publish(py: Python<'_>, c: &Arc<Cluster>, a: PublishArgs, progress: Progress<'_>) -> Result<Manifest> {
    block(py, async move {
        let mut cfg = S3Config::new(a.endpoint, a.region, a.bucket);
        let secret = match (&a.secret_key_file, &a.secret_key_ref) {
            (Some(path), None) => Some(read_secret_file(path)?),
            (None, Some(r)) => Some(rbd_ext::s3::resolve_secret(c, &SecretRef::parse(r)?)?),
            (None, None) => None,
            _ => return Err(Failure::Own(Errno::EINVAL, "s3 publish: pass secret_key_file or secret_key_ref, not both".into())),
        };
        // No secret: anonymous requests (a bucket that accepts them).
        cfg.credentials = secret.map(|s| Credentials::new(a.access_key.unwrap_or_default(), s));
        if let Some(ca) = &a.ca_file {
            cfg.ca_pem = Some(rbd_ext::backfill::read_ca(c, ca)?);
        }
        if a.create_bucket {
            let bucket = cfg.bucket.clone();
            let client = S3Client::new(cfg.clone()).map_err(rbd_ext::Error::from)?;
            client.create_bucket(&bucket).await.map_err(|e| rbd_ext::Error::from(e).context("s3 publish: create the bucket"))?;
        }
        Ok(s3_parent::s3_publish(c, &a.source, cfg, &a.key, a.object_size, progress).await?)
    })
}

/// A secret key file: UTF-8, trailing whitespace dropped, not empty; never in a message.
fn read_secret_file(path: &str) -> Result<String> {
    let raw = std::fs::read(path).map_err(|e| Failure::Own(Errno(e.raw_os_error().unwrap_or(Errno::EIO.0)), format!("read secret key file {path}")))?;
    let s = String::from_utf8(raw).map_err(|_| Failure::Own(Errno::EINVAL, format!("secret key file {path}: not UTF-8")))?;
    let s = s.trim_end().to_string();
    if s.is_empty() {
        return Err(Failure::Own(Errno::EINVAL, format!("secret key file {path}: empty")));
    }
    Ok(s)
}

//! The only module that calls the rbd-ext library: safe Rust in, typed results out.
//!
//! Every call runs inside [`run`] on one process-wide tokio runtime (`block_on` on the
//! caller's thread), so a management call that becomes `async` in the library only gains an
//! `.await` here. Images are closed with `close_async`, and [`run`] waits for closes handed
//! to blocking threads, so nothing made from the caller's (borrowed) cluster handle is alive
//! once a call returns.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rbd_ext_cls::types::{ParentRecord, ParentType};
use rbdext::backfill::S3Settings;
use rbdext::header::{self, ImageLocation};
use rbdext::rados::Cluster;
use rbdext::remote::{self, RemoteCluster};
use rbdext::s3::{Credentials, S3Config};
use rbdext::s3_parent::{self, AttachOptions, PublishSource};
use rbdext::{CloneOptions, Errno, Image, ImageSpec, OpenOptions, RemoteOptions};

/// What a C call failed with: the library's error, or one found at the boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The library's error (names the image, object and errno).
    #[error(transparent)]
    Lib(#[from] rbdext::Error),
    /// A bad argument or state found here.
    #[error("{what}: {errno}")]
    Here { errno: Errno, what: String },
}

impl CallError {
    pub(crate) fn here(errno: Errno, what: impl Into<String>) -> CallError {
        CallError::Here { errno, what: what.into() }
    }

    /// The negative errno a C caller gets.
    pub(crate) fn to_neg(&self) -> i32 {
        match self {
            CallError::Lib(e) => e.errno().to_neg(),
            CallError::Here { errno, .. } => errno.to_neg(),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, CallError>;

/// A progress callback: (done, total).
pub(crate) type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        // Two workers: the calls mostly wait on RADOS and S3; librados calls without an aio
        // form go to tokio's blocking pool.
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("rbd-ext-capi").enable_all().build().map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| CallError::here(Errno::EIO, format!("start the rbd-ext runtime: {e}")))
}

/// Runs `fut` (a library call on `cluster`) to completion on the calling thread, then
/// waits until nothing made from `cluster` is left: image closes handed to blocking
/// threads, or any other task still holding the wrapper. The caller may shut its handle
/// down as soon as its C call returns.
pub(crate) fn run<T>(cluster: Arc<Cluster>, fut: impl Future<Output = Result<T>>) -> Result<T> {
    let rt = runtime()?;
    let r = rt.block_on(fut);
    rbdext::wait_for_pending_closes();
    let t = Instant::now();
    while Arc::strong_count(&cluster) > 1 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(1));
    }
    r
}

/// Image options of a clone, as read from librbd's `rbd_image_options_t`.
#[derive(Debug, Default, Clone)]
pub(crate) struct CloneLayout {
    pub features: Option<u64>,
    pub order: Option<u8>,
    pub stripe_unit: Option<u64>,
    pub stripe_count: Option<u64>,
    pub data_pool: Option<String>,
}

impl CloneLayout {
    fn options(self, remote: Option<RemoteOptions>) -> CloneOptions {
        let mut o = CloneOptions::default();
        (o.features, o.order, o.stripe_unit, o.stripe_count, o.data_pool, o.remote) =
            (self.features, self.order, self.stripe_unit, self.stripe_count, self.data_pool, remote);
        o
    }
}

/// Which parents a clone call accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParentKind {
    /// Any local image (an S3-backed one is checked against S3 first, as the CLI does).
    Local,
    /// Only an S3-backed parent (EINVAL otherwise).
    S3,
}

/// Local (or S3-backed) parent, child in the same cluster.
pub(crate) fn clone_standalone(cluster: Arc<Cluster>, parent: ImageSpec, child: ImageSpec, layout: CloneLayout, kind: ParentKind) -> Result<()> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        if kind == ParentKind::S3 {
            let (_, hdr) = header::locate(&c, &parent)?;
            if !hdr.parent.as_ref().is_some_and(|p| p.parent_type == ParentType::S3Source) {
                return Err(CallError::here(Errno::EINVAL, format!("parent {parent} is not S3-backed (attach it with rbd_ext_s3_attach)")));
            }
        }
        // A parent whose S3 settings do not work would give a child failing at its first read.
        s3_parent::check_s3_parent(&c, &parent).await?;
        rbdext::clone_standalone(&c, &parent, &child, &layout.options(None)).await?;
        Ok(())
    })
}

/// Parent in another cluster, reached through its conf file.
pub(crate) fn clone_remote(cluster: Arc<Cluster>, remote: RemoteOptions, parent: ImageSpec, child: ImageSpec, layout: CloneLayout) -> Result<()> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        rbdext::clone_standalone(&c, &parent, &child, &layout.options(Some(remote))).await?;
        Ok(())
    })
}

/// One child, as librbd's `rbd_linked_image_spec_t` describes it.
#[derive(Debug, Clone)]
pub(crate) struct Linked {
    pub pool_id: i64,
    pub pool: String,
    pub namespace: String,
    pub id: String,
    pub name: String,
}

/// The live standalone children of `parent` in this cluster (stale entries are dropped).
pub(crate) fn list_children(cluster: Arc<Cluster>, parent: ImageSpec) -> Result<Vec<Linked>> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        let kids = rbdext::children(&c, &parent).await?;
        let mut out = Vec::with_capacity(kids.children.len());
        for k in kids.children {
            let md = header::md_ioctx(&c, &k)?;
            let id = header::lookup_id(&md, &k)?;
            out.push(Linked { pool_id: md.pool_id(), pool: k.pool, namespace: k.namespace, id, name: k.image });
        }
        Ok(out)
    })
}

/// Removes an image (EBUSY while it has standalone children).
pub(crate) fn remove(cluster: Arc<Cluster>, spec: ImageSpec) -> Result<()> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        rbdext::remove(&c, &spec).await?;
        Ok(())
    })
}

/// Creates snapshot `spec.snap` of `spec` (a standalone child's keeps its parent overlap).
pub(crate) fn snap_create(cluster: Arc<Cluster>, spec: ImageSpec) -> Result<()> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        rbdext::snap_create(&c, &spec).await?;
        Ok(())
    })
}

/// Opens `spec` for writing, flattens it, closes it.
pub(crate) fn flatten(cluster: Arc<Cluster>, spec: ImageSpec, progress: Progress<'_>) -> Result<()> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        let image = Image::open(&c, &spec, OpenOptions::default().with_write(true)).await?;
        let r = rbdext::flatten(&image, progress).await;
        let closed = image.close_async().await;
        r?;
        Ok(closed?)
    })
}

/// The kinds of parent `rbd_ext_get_parent` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParentKindInfo {
    Snapshot,
    Standalone,
    Remote,
    S3,
}

/// An image's parent.
#[derive(Debug, Clone)]
pub(crate) struct ParentInfo {
    pub kind: ParentKindInfo,
    pub pool_id: i64,
    pub pool: String,
    pub namespace: String,
    pub image_id: String,
    pub image_name: String,
    pub snap_id: u64,
    pub snap_name: String,
    pub overlap: u64,
    /// The remote cluster's name (remote parents), or `s3://bucket/key-or-prefix` (S3).
    pub source: String,
}

/// The parent of `spec`; ENOENT when it has none (as librbd's `rbd_get_parent`).
pub(crate) fn get_parent(cluster: Arc<Cluster>, spec: ImageSpec) -> Result<ParentInfo> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        let (loc, hdr) = header::locate(&c, &spec)?;
        let Some(p) = hdr.parent.clone() else {
            return Err(CallError::here(Errno::ENOENT, format!("image {spec} has no parent")));
        };
        parent_info(&c, &loc, &p, hdr.overlap())
    })
}

fn parent_info(c: &Arc<Cluster>, loc: &ImageLocation, p: &ParentRecord, overlap: u64) -> Result<ParentInfo> {
    let mut info = ParentInfo {
        kind: ParentKindInfo::Standalone,
        pool_id: p.pool_id,
        pool: String::new(),
        namespace: p.pool_namespace.clone(),
        image_id: p.image_id.clone(),
        image_name: String::new(),
        snap_id: p.snap_id.0,
        snap_name: String::new(),
        overlap,
        source: String::new(),
    };
    let home = match p.parent_type {
        ParentType::Snapshot => {
            info.kind = ParentKindInfo::Snapshot;
            Arc::clone(c)
        }
        ParentType::Standalone => Arc::clone(c),
        ParentType::RemoteStandalone => {
            info.kind = ParentKindInfo::Remote;
            info.source = p.remote_cluster_name.clone();
            remote::connect(c, &RemoteCluster::from_record(p), remote::DEFAULT_CONNECT_TIMEOUT)?
        }
        ParentType::S3Source => {
            // The parent is an S3 object, not an image: no pool or image to name.
            info.kind = ParentKindInfo::S3;
            let s = S3Settings::from_metadata(&rbdext::backfill::image_metadata(&loc.md, &header::header_oid(&loc.id))?)?;
            info.source = format!("s3://{}/{}", s.bucket, s.image_name.or(s.prefix).unwrap_or_default());
            return Ok(info);
        }
        ParentType::Unknown(t) => return Err(CallError::here(Errno::EOPNOTSUPP, format!("image {}: parent type {t} unknown to this version", loc.spec))),
    };
    let pmd = home.ioctx_by_id(p.pool_id, &p.pool_namespace)?;
    info.pool = pmd.pool().to_string();
    info.image_name = header::lookup_name(&pmd, &p.image_id)?;
    if info.kind == ParentKindInfo::Snapshot {
        info.snap_name = header::snapshot_name(&pmd, &p.image_id, p.snap_id.0)?.unwrap_or_default();
    }
    Ok(info)
}

/// S3 endpoint and credentials for publishing.
#[derive(Debug, Default, Clone)]
pub(crate) struct S3Target {
    pub endpoint: String,
    pub region: Option<String>,
    pub bucket: String,
    pub access_key: Option<String>,
    /// The secret itself (kept in memory only, never stored or logged).
    pub secret_key: Option<String>,
    /// Or a `config://` reference to it in the mon config-key store.
    pub secret_key_ref: Option<String>,
    pub ca_file: Option<String>,
}

/// Uploads image `spec` to `s3://bucket/key` with its manifest.
pub(crate) fn s3_publish(cluster: Arc<Cluster>, spec: ImageSpec, t: S3Target, key: String, progress: Progress<'_>) -> Result<()> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        let mut cfg = S3Config::new(t.endpoint, t.region.unwrap_or_else(|| "us-east-1".into()), t.bucket);
        let secret = match (t.secret_key, t.secret_key_ref) {
            (Some(s), None) => Some(s),
            (None, Some(r)) => Some(rbdext::s3::resolve_secret(&c, &rbdext::s3::SecretRef::parse(&r)?)?),
            (None, None) => None,
            (Some(_), Some(_)) => return Err(CallError::here(Errno::EINVAL, "s3 publish: give a secret key or a reference to one, not both")),
        };
        if let Some(secret) = secret {
            cfg.credentials = Some(Credentials::new(t.access_key.unwrap_or_default(), secret));
        }
        if let Some(ca) = &t.ca_file {
            cfg.ca_pem = Some(rbdext::backfill::read_ca(&c, ca)?);
        }
        // The object size is the image's own when publishing an image.
        s3_parent::s3_publish(&c, &PublishSource::Image(spec), cfg, &key, 0, progress).await?;
        Ok(())
    })
}

/// Creates `spec` as an S3-backed parent.
pub(crate) fn s3_attach(cluster: Arc<Cluster>, spec: ImageSpec, opts: AttachOptions) -> Result<()> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        s3_parent::s3_attach(&c, &spec, &opts).await.map_err(|e| e.context(format_args!("s3 attach {spec}")))?;
        Ok(())
    })
}

/// Fills an S3-backed parent from S3 (or flattens a clone), `parallel` objects at a time.
pub(crate) fn hydrate(cluster: Arc<Cluster>, spec: ImageSpec, parallel: usize, progress: Progress<'_>) -> Result<()> {
    let c = Arc::clone(&cluster);
    run(cluster, async move {
        // An S3-backed parent is read (fills are not writes); a clone is flattened, which
        // takes the writer lock.
        let mut image = Image::open(&c, &spec, OpenOptions::default()).await?;
        if !image.is_s3_backed() && image.header().parent.is_some() {
            image.close_async().await?;
            image = Image::open(&c, &spec, OpenOptions::default().with_write(true)).await?;
        }
        let r = s3_parent::hydrate(&image, parallel, progress).await;
        let closed = image.close_async().await;
        r?;
        Ok(closed?)
    })
}

/// Default S3 settings (timeouts, retries), for the FFI module to fill in.
pub(crate) fn s3_settings_default() -> S3Settings {
    S3Settings::default()
}

//! Image management: standalone clone, children (reconciled), remove with parent protection,
//! flatten, and the clone-map check/rebuild against RADOS ground truth.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use rbd_ext_cls::codec::Codec;
use rbd_ext_cls::codec::SnapId;
use rbd_ext_cls::stubs::{self, stock};
use rbd_ext_cls::types::header::{self as header_keys, RBD_EXT_PROTECT};
use rbd_ext_cls::types::{ChildImageSpec, ChildImageSpecs, CloneMapState, ParentProtection, ParentRecord, ParentType, ProtectionMode, StateRun};

/// Prefix of the parent-header keys holding children in other clusters (one set per fsid).
pub(crate) const REMOTE_CHILDREN_PREFIX: &str = "rbd_ext_remote_children_";

use crate::clone_map;
use crate::error::{Errno, Error, Hint, Result};
use crate::header::{self, features, header_oid, object_map_oid, ImageHeader, ImageLocation};
use crate::image::Image;
use crate::lock;
use crate::rados::{blocking, create_image, remove_image, Cluster, CreateOptions, IoCtx, ReadOp, ReadStep, StepOut};
use crate::reconcile;
use crate::remote::{self, RemoteCluster};
use crate::spec::ImageSpec;

/// Options of [`clone_standalone`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CloneOptions {
    /// Feature bits of the child (default: the parent's, less internal bits).
    pub features: Option<u64>,
    /// Clone even if the parent is open for writing (its lock has an owner).
    pub force: bool,
    /// The parent is in another cluster.
    pub remote: Option<RemoteOptions>,
    /// Object size exponent: must be the parent's (a child reads its parent object by
    /// object), so it only lets a caller state it, as librbd's image options do.
    pub order: Option<u8>,
    /// Stripe unit: the object size (the only striping rbd-ext serves).
    pub stripe_unit: Option<u64>,
    /// Stripe count: 1.
    pub stripe_count: Option<u64>,
    /// Pool for the child's data objects (default: the parent's data pool, if any); sets
    /// the data-pool feature.
    pub data_pool: Option<String>,
}

impl CloneOptions {
    /// Sets `features`: Feature bits of the child (default: the parent's, less internal bits).
    pub fn with_features(mut self, features: u64) -> Self {
        self.features = Some(features);
        self
    }

    /// Sets `force`: Clone even if the parent is open for writing (its lock has an owner).
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Sets `remote`: The parent is in another cluster.
    pub fn with_remote(mut self, remote: RemoteOptions) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Sets `order` (see the field: it must be the parent's).
    pub fn with_order(mut self, order: u8) -> Self {
        self.order = Some(order);
        self
    }

    /// Sets `stripe_unit` and `stripe_count` (see the fields).
    pub fn with_striping(mut self, stripe_unit: u64, stripe_count: u64) -> Self {
        (self.stripe_unit, self.stripe_count) = (Some(stripe_unit), Some(stripe_count));
        self
    }

    /// Sets `data_pool`: the pool for the child's data objects.
    pub fn with_data_pool(mut self, data_pool: impl Into<String>) -> Self {
        self.data_pool = Some(data_pool.into());
        self
    }
}

/// Where a remote parent's cluster is and how to reach it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// That cluster's conf file (its `mon host` is recorded in the child).
    pub conf: String,
    /// A keyring file holding the client's key: the key is stored in the local mon
    /// config-key store and only its reference is recorded.
    pub keyring: Option<String>,
    /// Or an existing `config://` reference to the key.
    pub secret_ref: Option<String>,
    /// Client to connect as (default `client.admin`).
    pub client_name: Option<String>,
    /// A name for the cluster (default: the conf file's name without `.conf`).
    pub cluster_name: Option<String>,
}

impl RemoteOptions {
    /// A remote parent's cluster, described by its conf file; a credential
    /// ([`with_keyring`](Self::with_keyring) or [`with_secret_ref`](Self::with_secret_ref))
    /// is needed too.
    pub fn new(conf: impl Into<String>) -> Self {
        RemoteOptions { conf: conf.into(), ..Default::default() }
    }

    /// Sets `conf`: That cluster's conf file (its `mon host` is recorded in the child).
    pub fn with_conf(mut self, conf: impl Into<String>) -> Self {
        self.conf = conf.into();
        self
    }

    /// Sets `keyring`: A keyring file holding the client's key: the key is stored in the local mon
    pub fn with_keyring(mut self, keyring: impl Into<String>) -> Self {
        self.keyring = Some(keyring.into());
        self
    }

    /// Sets `secret_ref`: Or an existing `config://` reference to the key.
    pub fn with_secret_ref(mut self, secret_ref: impl Into<String>) -> Self {
        self.secret_ref = Some(secret_ref.into());
        self
    }

    /// Sets `client_name`: Client to connect as (default `client.admin`).
    pub fn with_client_name(mut self, client_name: impl Into<String>) -> Self {
        self.client_name = Some(client_name.into());
        self
    }

    /// Sets `cluster_name`: A name for the cluster (default: the conf file's name without `.conf`).
    pub fn with_cluster_name(mut self, cluster_name: impl Into<String>) -> Self {
        self.cluster_name = Some(cluster_name.into());
        self
    }
}

/// Connects to the remote cluster of `r`, checking the key before anything is stored, and
/// returns the connection and the cluster as the child will record it.
fn connect_remote(local: &Arc<Cluster>, r: &RemoteOptions) -> Result<(Arc<Cluster>, RemoteCluster)> {
    let client_name = r.client_name.clone().unwrap_or_else(|| "client.admin".into());
    let name = r
        .cluster_name
        .clone()
        .unwrap_or_else(|| std::path::Path::new(&r.conf).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "remote".into()));
    // The key first: the conf file is read by librados on a connection that needs it.
    let key = match (&r.keyring, &r.secret_ref) {
        (Some(path), None) => remote::keyring_key(path, &client_name)?,
        (None, Some(reference)) => crate::secret::resolve_secret(local, &crate::secret::SecretRef::parse(reference)?)?,
        _ => {
            return Err(Error::new(Errno::EINVAL, "a remote parent needs exactly one of a keyring path or a config:// key reference".to_string())
                .hinted(Hint::RemoteCredentials))
        }
    };
    let (conn, mon_hosts) = remote::connect_with_conf(&name, &r.conf, &client_name, &key, remote::DEFAULT_CONNECT_TIMEOUT)?;
    let mut rc = RemoteCluster { name, mon_hosts, client_name, secret_ref: String::new() };
    rc.secret_ref = match &r.secret_ref {
        Some(reference) => crate::secret::SecretRef::parse(reference)?.to_string(),
        None => {
            let safe = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect::<String>();
            crate::secret::store_secret(local, &format!("rbd-ext/remote/{}/{}", safe(&rc.name), safe(&rc.client_name)), key.as_bytes())?.to_string()
        }
    };
    remote::remember(&rc, &conn);
    Ok((conn, rc))
}

/// Progress callback: (done, total).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Features a child may inherit from its parent: the user-visible ones, not the internal
/// OPERATIONS / NON_PRIMARY bits rbd-ext sets on protected parents.
const INHERITABLE: u64 = features::LAYERING
    | features::STRIPINGV2
    | features::EXCLUSIVE_LOCK
    | features::OBJECT_MAP
    | features::FAST_DIFF
    | features::DEEP_FLATTEN
    | features::DATA_POOL;

fn child_spec_of(md: &IoCtx, id: &str) -> ChildImageSpec {
    ChildImageSpec { pool_id: md.pool_id(), pool_namespace: md.namespace().to_string(), image_id: id.to_string() }
}

/// Creates `child`, a standalone clone of `parent`'s HEAD: a plain image of the same size
/// and layout whose `parent` record points at the parent (v4, type standalone), registered
/// in the parent's HEAD children list (which protects the parent), with a clone map built
/// from the parent's object existence. A failure midway undoes what was done.
///
/// Async: the librados round trips run on Tokio's blocking pool; a caller without a runtime
/// uses [`crate::blocking::clone_standalone`].
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let (parent, child) = ("rbd/golden".parse()?, "vms/vm1".parse()?);
/// rbd_ext::clone_standalone(&cluster, &parent, &child, &rbd_ext::CloneOptions::default()).await?;
/// # Ok(()) }
/// ```
pub async fn clone_standalone(cluster: &Arc<Cluster>, parent: &ImageSpec, child: &ImageSpec, opts: &CloneOptions) -> Result<()> {
    let (cluster, parent, child, opts) = (cluster.clone(), parent.clone(), child.clone(), opts.clone());
    crate::task::offload(move || clone_standalone_blocking(&cluster, &parent, &child, &opts)).await
}

/// Creates `child`, a standalone clone of `parent`'s HEAD: a plain image of the same size
/// and layout whose `parent` record points at the parent (v4, type standalone), registered
/// in the parent's HEAD children list (which protects the parent), with a clone map built
/// from the parent's object existence. A failure midway undoes what was done.
///
/// Blocking: never call it from async code (use [`clone_standalone`] there).
pub fn clone_standalone_blocking(cluster: &Arc<Cluster>, parent: &ImageSpec, child: &ImageSpec, opts: &CloneOptions) -> Result<()> {
    parent.require_head("parent")?;
    if child.snap.is_some() {
        return Err(Error::new(Errno::EINVAL, format!("child {child}: a new image name cannot name a snapshot")));
    }
    let (home, remote_rc) = match &opts.remote {
        Some(r) => {
            let (c, rc) = connect_remote(cluster, r).map_err(|e| e.context(format_args!("clone {parent} -> {child}")))?;
            (c, Some(rc))
        }
        None => (Arc::clone(cluster), None),
    };
    let (ploc, phdr) = header::locate(&home, parent).map_err(|e| e.context("clone-standalone"))?;
    if let Some(p) = &phdr.parent {
        // An S3-backed parent is what its children are for; a remote one is not supported.
        if p.parent_type == ParentType::RemoteStandalone {
            return Err(Error::new(Errno::EOPNOTSUPP, format!("parent {parent}: its own parent is {} (not supported here yet)", p.parent_type.as_str())));
        }
    }
    if !opts.force {
        let holders = lock::lockers(&ploc.md, &ploc.id)?;
        if let Some(l) = holders.first() {
            return Err(Error::new(
                Errno::EBUSY,
                format!(
                    "parent {parent} is open for writing by {} (cookie '{}'); a standalone clone needs a parent nobody writes: close it",
                    l.client, l.cookie
                ),
            )
            .hinted(Hint::Force));
        }
    }
    // Stale entries left by stock tools go first (best effort: a failure here is not the
    // clone's); dropping the last one also lifts a stuck protection.
    let _ = reconcile_children(&home, &ploc, reconcile::OPEN_RECONCILE_MAX_CHILDREN);
    let cmd = header::md_ioctx(cluster, child)?;
    let layout_err = |what: String| Err(Error::new(Errno::EINVAL, format!("clone {parent} -> {child}: {what}")));
    if opts.order.is_some_and(|o| o != phdr.order) {
        return layout_err(format!(
            "order {} differs from the parent's {}: a standalone clone has its parent's object size",
            opts.order.unwrap_or(0),
            phdr.order
        ));
    }
    if opts.stripe_unit.is_some_and(|u| u != phdr.object_size()) || opts.stripe_count.is_some_and(|c| c != 1) {
        return layout_err("only the default striping (stripe unit = object size, count 1) is supported".to_string());
    }
    let mut features = opts.features.unwrap_or(phdr.features & INHERITABLE) | features::LAYERING;
    let data_pool = match &opts.data_pool {
        Some(p) => {
            features |= features::DATA_POOL;
            Some(p.clone())
        }
        None if phdr.data_pool_id >= 0 => Some(cluster.pool_reverse_lookup(phdr.data_pool_id)?),
        None => None,
    };
    let create = CreateOptions {
        order: Some(phdr.order),
        features: Some(features),
        stripe_unit: (phdr.has(features::STRIPINGV2)).then_some(phdr.stripe_unit),
        stripe_count: (phdr.has(features::STRIPINGV2)).then_some(phdr.stripe_count),
        data_pool: data_pool.filter(|_| features & features::DATA_POOL != 0),
    };
    create_image(&cmd, &child.image, phdr.size, &create).map_err(|e| {
        if e.is_exists() {
            Error::new(Errno::EEXIST, format!("child {child} already exists"))
        } else {
            e.context(format_args!("child {child}"))
        }
    })?;
    let mut undo = Undo { steps: Vec::new() };
    undo.steps.push(Box::new({
        let (cmd, name) = (cmd.clone(), child.image.clone());
        move || remove_image(&cmd, &name)
    }));
    let cid = header::lookup_id(&cmd, child)?;
    let mut record = ParentRecord {
        pool_id: ploc.md.pool_id(),
        pool_namespace: ploc.md.namespace().to_string(),
        image_id: ploc.id.clone(),
        snap_id: SnapId::NOSNAP,
        head_overlap: Some(phdr.size),
        parent_type: ParentType::Standalone,
        ..Default::default()
    };
    if let Some(rc) = &remote_rc {
        record.parent_type = ParentType::RemoteStandalone;
        record.remote_cluster_name = rc.name.clone();
        record.remote_mon_hosts = rc.mon_hosts.clone();
        record.remote_client_name = rc.client_name.clone();
        record.remote_secret_ref = rc.secret_ref.clone();
    }
    // A remote child is registered in its own per-cluster set on the parent.
    let local_fsid = if remote_rc.is_some() { Some(cluster.fsid()?) } else { None };
    let attach_call = |c: &ChildImageSpec| match &local_fsid {
        Some(f) => stubs::child_attach_remote(c, f),
        None => stubs::child_attach(c),
    };
    let detach_call = {
        let local_fsid = local_fsid.clone();
        move |c: &ChildImageSpec| match &local_fsid {
            Some(f) => stubs::child_detach_remote(c, f),
            None => stubs::child_detach(c),
        }
    };
    let step = |what: &str, r: Result<()>| r.map_err(|e| e.context(format_args!("clone {parent} -> {child}: {what}")));
    step("write the parent record", cmd.exec_write(&header_oid(&cid), &stubs::parent_attach(&record, false))).map_err(|e| undo.run(e))?;
    undo.steps.push(Box::new({
        let (cmd, cid) = (cmd.clone(), cid.clone());
        move || cmd.exec_write(&header_oid(&cid), &stubs::parent_detach())
    }));
    if record.parent_type == ParentType::Standalone {
        // Stock librbd serves this child, so stock `snap create` could run on it and make a
        // snapshot that reads zeros where the child inherits data: refuse it from the first
        // moment (snapshot.rs). The guard is released by the undo's parent_detach.
        let chdr = header::read_header(&cmd, &cid).map_err(|e| undo.run(e))?;
        step("arm the snapshot guard", crate::snapshot::arm_guard(&cmd, &cid, &chdr)).map_err(|e| undo.run(e))?;
        undo.steps.push(Box::new({
            let (cmd, cid) = (cmd.clone(), cid.clone());
            move || {
                let h = header::read_header(&cmd, &cid)?;
                match h.snap_guard {
                    Some(g) => {
                        cmd.exec_write(&header_oid(&cid), &stubs::snap_guard(rbd_ext_cls::ops::SnapGuardMode::Remove, None))?;
                        crate::snapshot::release_guard(&cmd, &cid, g)
                    }
                    None => Ok(()),
                }
            }
        }));
    }
    let cspec = child_spec_of(&cmd, &cid);
    step("register with the parent", ploc.md.exec_write(&header_oid(&ploc.id), &attach_call(&cspec))).map_err(|e| undo.run(e))?;
    undo.steps.push(Box::new({
        let (pmd, pid, cspec) = (ploc.md.clone(), ploc.id.clone(), cspec.clone());
        move || pmd.exec_write(&header_oid(&pid), &detach_call(&cspec))
    }));
    let runs = parent_runs(&ploc, &phdr).map_err(|e| undo.run(e))?;
    step("create the clone map", clone_map::init(&cmd, &cid, phdr.object_count(), runs, true)).map_err(|e| undo.run(e))?;
    // The parent is protected now: tell open librbd clients to refresh (they turn read-only).
    let _ = ploc.md.notify(&header_oid(&ploc.id), &stock::header_update_notification(), 5000);
    Ok(())
}

/// Compensating actions, run newest first when a multi-step operation fails.
struct Undo {
    steps: Vec<Box<dyn FnOnce() -> Result<()>>>,
}

impl Undo {
    fn run(&mut self, cause: Error) -> Error {
        let mut notes = Vec::new();
        while let Some(f) = self.steps.pop() {
            if let Err(e) = f() {
                notes.push(e.to_string());
            }
        }
        if notes.is_empty() {
            cause.context("rolled back")
        } else {
            cause.context(format_args!("rollback incomplete ({}); run `rbd-ext rm` on the child", notes.join("; ")))
        }
    }
}

/// Which objects of the parent hold data, as clone-map runs of EXISTS_PARENT: from the stock
/// object map when the parent has one, else from a listing of its data objects. A parent that
/// is itself a clone may inherit anywhere in its overlap, so that range counts as data.
fn parent_runs(ploc: &ImageLocation, phdr: &ImageHeader) -> Result<Vec<StateRun>> {
    let count = phdr.object_count();
    let mut has = vec![false; count as usize];
    if phdr.has(features::OBJECT_MAP) {
        if let Ok(out) = ploc.md.exec(&object_map_oid(&ploc.id), &stock::object_map_load()) {
            if let Ok(states) = stock::decode_object_map(&out) {
                for (i, s) in states.iter().enumerate().take(count as usize) {
                    has[i] = *s != stock::object_map_state::NONEXISTENT;
                }
            }
        }
    } else {
        let prefix = format!("{}.", phdr.object_prefix);
        for name in ploc.data.list_objects(&prefix)? {
            if let Ok(n) = u64::from_str_radix(&name[prefix.len()..], 16) {
                if n < count {
                    has[n as usize] = true;
                }
            }
        }
    }
    let inherited = phdr.overlap().div_ceil(phdr.object_size()).min(count);
    for h in has.iter_mut().take(inherited as usize) {
        *h |= phdr.parent.is_some();
    }
    let mut runs = Vec::new();
    let mut i = 0usize;
    while i < has.len() {
        if has[i] {
            let start = i;
            while i < has.len() && has[i] {
                i += 1;
            }
            runs.push(StateRun { start: start as u64, len: (i - start) as u64, state: CloneMapState::ExistsParent });
        } else {
            i += 1;
        }
    }
    Ok(runs)
}

/// The HEAD children of a parent, after reconciliation.
#[derive(Debug, Clone, Default)]
pub struct Children {
    /// Live children, as specs.
    pub children: Vec<ImageSpec>,
    /// Entries dropped because the child was gone or no longer pointed at this parent
    /// (removed or flattened by stock tools), one line each.
    pub reconciled: Vec<String>,
    /// Children in other clusters (remote-standalone clones), described as
    /// `cluster <fsid> pool <id> namespace '<ns>' image id <id>`: they cannot be checked from
    /// here, so they are kept until their own `rm` or `flatten` detaches them.
    pub remote: Vec<String>,
}

/// Lists `parent`'s HEAD children (all pools), dropping stale entries.
///
/// Async: the librados round trips run on Tokio's blocking pool; a caller without a runtime
/// uses [`crate::blocking::children`].
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// for child in rbd_ext::children(&cluster, &"rbd/golden".parse()?).await?.children {
///     println!("{child}");
/// }
/// # Ok(()) }
/// ```
pub async fn children(cluster: &Arc<Cluster>, parent: &ImageSpec) -> Result<Children> {
    let (cluster, parent) = (cluster.clone(), parent.clone());
    crate::task::offload(move || children_blocking(&cluster, &parent)).await
}

/// Lists `parent`'s HEAD children (all pools), dropping stale entries.
///
/// Blocking: never call it from async code (use [`children`] there).
pub fn children_blocking(cluster: &Arc<Cluster>, parent: &ImageSpec) -> Result<Children> {
    let (ploc, _) = header::locate(cluster, parent)?;
    children_of(cluster, &ploc)
}

/// Every standalone clone under an image, depth first: what [`descendants`] returns.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Descendants {
    /// The clones, each listed once, depth first (a child before its own children).
    pub images: Vec<ImageSpec>,
    /// Stale entries dropped while listing, with the parent they were dropped from.
    pub reconciled: Vec<(ImageSpec, String)>,
    /// Children in other clusters (kept, not walked), with their parent.
    pub remote: Vec<(ImageSpec, String)>,
}

/// Walks `parent`'s children, their children, and so on (each image once, even in corrupt
/// metadata with a cycle), dropping stale entries on the way as [`children`] does.
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// for image in rbd_ext::descendants(&cluster, &"rbd/golden".parse()?).await?.images {
///     println!("{image}");
/// }
/// # Ok(()) }
/// ```
pub async fn descendants(cluster: &Arc<Cluster>, parent: &ImageSpec) -> Result<Descendants> {
    let (cluster, parent) = (cluster.clone(), parent.clone());
    crate::task::offload(move || descendants_blocking(&cluster, &parent)).await
}

/// [`descendants`] for callers without a runtime. Blocking: never call it from async code.
pub fn descendants_blocking(cluster: &Arc<Cluster>, parent: &ImageSpec) -> Result<Descendants> {
    fn walk(cluster: &Arc<Cluster>, parent: &ImageSpec, seen: &mut std::collections::HashSet<ImageSpec>, out: &mut Descendants) -> Result<()> {
        let kids = children_blocking(cluster, parent)?;
        out.reconciled.extend(kids.reconciled.into_iter().map(|r| (parent.clone(), r)));
        out.remote.extend(kids.remote.into_iter().map(|r| (parent.clone(), r)));
        for c in kids.children {
            if seen.insert(c.clone()) {
                out.images.push(c.clone());
                walk(cluster, &c, seen, out)?;
            }
        }
        Ok(())
    }
    let mut out = Descendants::default();
    walk(cluster, parent, &mut std::collections::HashSet::from([parent.clone()]), &mut out)?;
    Ok(out)
}

/// How `spec` is protected as a parent of standalone clones: `None` when it has none.
///
/// Async: the librados round trips run on Tokio's blocking pool; a caller without a runtime
/// uses [`crate::blocking::protection`].
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let mode = rbd_ext::protection(&cluster, &"rbd/golden".parse()?).await?.map(|p| p.applied());
/// # Ok(()) }
/// ```
pub async fn protection(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<Option<ParentProtection>> {
    let (cluster, spec) = (cluster.clone(), spec.clone());
    crate::task::offload(move || protection_blocking(&cluster, &spec)).await
}

/// How `spec` is protected as a parent of standalone clones: `None` when it has none.
///
/// Blocking: never call it from async code (use [`protection`] there).
pub fn protection_blocking(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<Option<ParentProtection>> {
    spec.require_head("image")?;
    let (loc, _) = header::locate(cluster, spec)?;
    let hoid = header_oid(&loc.id);
    let Some(b) = loc.md.omap_get(&hoid, RBD_EXT_PROTECT)? else {
        return Ok(None);
    };
    ParentProtection::read_bytes(&b).map(Some).map_err(|e| Error::new(Errno::EIO, format!("image {spec}: object {hoid}: key {RBD_EXT_PROTECT}: {e}")))
}

/// Switches the protection of `spec`, a parent of standalone clones, to `mode` (atomically,
/// in the class), and tells open librbd clients to refresh.
///
/// Async: the librados round trips run on Tokio's blocking pool; a caller without a runtime
/// uses [`crate::blocking::set_protection`].
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// use rbd_ext::ProtectionMode;
/// rbd_ext::set_protection(&cluster, &"rbd/golden".parse()?, ProtectionMode::Strict).await?;
/// # Ok(()) }
/// ```
pub async fn set_protection(cluster: &Arc<Cluster>, spec: &ImageSpec, mode: ProtectionMode) -> Result<()> {
    let (cluster, spec) = (cluster.clone(), spec.clone());
    crate::task::offload(move || set_protection_blocking(&cluster, &spec, mode)).await
}

/// Switches the protection of `spec`, a parent of standalone clones, to `mode` (atomically,
/// in the class), and tells open librbd clients to refresh.
///
/// Blocking: never call it from async code (use [`set_protection`] there).
pub fn set_protection_blocking(cluster: &Arc<Cluster>, spec: &ImageSpec, mode: ProtectionMode) -> Result<()> {
    spec.require_head("image")?;
    let (loc, _) = header::locate(cluster, spec)?;
    let hoid = header_oid(&loc.id);
    loc.md.exec_write(&hoid, &stubs::protection_set(mode)).map_err(|e| match e.errno() {
        Errno::ENOENT => Error::new(Errno::ENOENT, format!("image {spec} has no standalone clones: there is no protection to change")),
        Errno::EBUSY => Error::new(Errno::EBUSY, format!("image {spec} has a migration of its own: only the strict protection applies")),
        _ => e.context(format_args!("image {spec}: protection_set")),
    })?;
    let _ = loc.md.notify(&hoid, &stock::header_update_notification(), 5000);
    Ok(())
}

/// How many HEAD children image `id`'s header registers, in this cluster and in others, as
/// recorded (read only: stale entries are counted; [`children`] drops them).
pub fn child_entries(md: &IoCtx, id: &str) -> Result<(usize, usize)> {
    let mut remote = 0;
    for (key, value) in md.omap_list(&header_oid(id), REMOTE_CHILDREN_PREFIX)? {
        let set = ChildImageSpecs::read_bytes(&value).map_err(|_| Error::new(Errno::EIO, format!("object {}: corrupt {key}", header_oid(id))))?;
        remote += set.len();
    }
    Ok((list_child_specs(md, id)?.len(), remote))
}

pub(crate) fn list_child_specs(md: &IoCtx, id: &str) -> Result<Vec<ChildImageSpec>> {
    let oid = header_oid(id);
    let mut all = Vec::new();
    let mut after: Option<ChildImageSpec> = None;
    const PAGE: u32 = 1000;
    loop {
        let out = match md.exec(&oid, &stubs::children_list(PAGE, after.as_ref())) {
            Ok(o) => o,
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e),
        };
        let page = stubs::decode_children_list(&out).map_err(|e| Error::new(e, format!("object {oid}: children_list reply")))?;
        let n = page.len();
        after = page.iter().next_back().cloned();
        all.extend(page);
        if n < PAGE as usize {
            break;
        }
    }
    Ok(all)
}

fn children_of(cluster: &Arc<Cluster>, ploc: &ImageLocation) -> Result<Children> {
    let specs = list_child_specs(&ploc.md, &ploc.id)?;
    children_from(cluster, ploc, specs)
}

/// Drops `parent`'s stale children entries (and the orphan clone maps of those children)
/// unless it has more than `max` children; returns one line per repair. Dropping the last
/// stale entry lifts the parent's protection (`child_detach` does it in the same call).
pub(crate) fn reconcile_children(cluster: &Arc<Cluster>, ploc: &ImageLocation, max: usize) -> Result<Vec<String>> {
    let specs = list_child_specs(&ploc.md, &ploc.id)?;
    if specs.is_empty() || specs.len() > max {
        return Ok(Vec::new());
    }
    Ok(children_from(cluster, ploc, specs)?.reconciled)
}

/// Child `c` of the parent at `ploc`: its pool (if that exists), its header (if it exists),
/// and whether it still points at this parent.
fn child_state(cluster: &Arc<Cluster>, ploc: &ImageLocation, c: &ChildImageSpec) -> Result<(Option<IoCtx>, Option<ImageHeader>, bool)> {
    let cmd = match cluster.ioctx_by_id(c.pool_id, &c.pool_namespace) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok((None, None, false)),
        Err(e) => return Err(e),
    };
    let h = match header::read_header(&cmd, &c.image_id) {
        Ok(h) => h,
        Err(e) if e.is_not_found() => return Ok((Some(cmd), None, false)),
        Err(e) => return Err(e),
    };
    let mut points_here = h.parent.as_ref().is_some_and(|p| points_at(p, ploc));
    // Detached from HEAD (flattened) but kept for snapshots that still read the parent:
    // still a reader, so the entry (and the parent's protection) stays.
    if !points_here && h.parent.as_ref().is_some_and(|p| p.head_overlap.is_none() && points_at(&ParentRecord { head_overlap: Some(0), ..p.clone() }, ploc)) {
        points_here = crate::snapshot::snapshots_read_parent(&cmd, &c.image_id)?;
    }
    Ok((Some(cmd), Some(h), points_here))
}

/// Whether child `c` of the parent at `ploc` still exists and points at it.
pub(crate) fn child_points_at(cluster: &Arc<Cluster>, ploc: &ImageLocation, c: &ChildImageSpec) -> Result<bool> {
    Ok(child_state(cluster, ploc, c)?.2)
}

/// Header reads a listing keeps in flight: a listing of thousands of children costs what its
/// slowest batch costs, not one round trip per child in series.
const LIST_IN_FLIGHT: usize = 128;

/// From this many live children in one pool, their names come from listing the pool's
/// directory in pages (as stock `rbd children` does) rather than one lookup per child.
const LIST_NAMES_BY_DIRECTORY: usize = 64;

/// `rbd_directory` names per `dir_list` page.
const DIR_LIST_PAGE: u64 = 1024;

fn children_from(cluster: &Arc<Cluster>, ploc: &ImageLocation, specs: Vec<ChildImageSpec>) -> Result<Children> {
    let mut out = Children::default();
    for (key, value) in ploc.md.omap_list(&header_oid(&ploc.id), REMOTE_CHILDREN_PREFIX)? {
        let fsid = &key[REMOTE_CHILDREN_PREFIX.len()..];
        let set = ChildImageSpecs::read_bytes(&value).map_err(|_| Error::new(Errno::EIO, format!("object {}: corrupt {key}", header_oid(&ploc.id))))?;
        out.remote.extend(set.iter().map(|c| format!("cluster {fsid} pool {} namespace '{}' image id {}", c.pool_id, c.pool_namespace, c.image_id)));
    }
    // One I/O context per pool and namespace, not per child (a missing pool: every child in it
    // is stale, which the careful path below confirms).
    let mut pools: BTreeMap<(i64, &str), Option<IoCtx>> = BTreeMap::new();
    for c in &specs {
        if let std::collections::btree_map::Entry::Vacant(v) = pools.entry((c.pool_id, c.pool_namespace.as_str())) {
            v.insert(match cluster.ioctx_by_id(c.pool_id, &c.pool_namespace) {
                Ok(io) => Some(io),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            });
        }
    }
    // Which entries still point here (every child's parent record) and the children's names,
    // all read in parallel.
    let verify = stream::iter(&specs)
        .map(|c| {
            let io = pools[&(c.pool_id, c.pool_namespace.as_str())].as_ref();
            async move {
                let Some(io) = io else { return Ok(false) };
                let oid = header_oid(&c.image_id);
                // The record as stored (the one encoding `parent_get` returns).
                let r = io.aio_read(&oid, &ReadOp { steps: vec![ReadStep::OmapGetByKeys(vec![header_keys::PARENT.into()])] }, 0)?.await;
                match (r.rc, r.steps.into_iter().next()) {
                    (0, Some((_, StepOut::Omap(kv, _)))) => {
                        let Some((_, v)) = kv.into_iter().next() else {
                            return Ok(false);
                        };
                        let p =
                            ParentRecord::read_bytes(&v).map_err(|_| Error::new(Errno::EIO, format!("object {oid}: corrupt key {}", header_keys::PARENT)))?;
                        Ok(points_at(&p, ploc))
                    }
                    // Gone (removed outside rbd-ext): stale, confirmed below.
                    (rc, _) if rc == -libc::ENOENT => Ok(false),
                    (rc, _) => Err(Error::new(Errno(-rc.min(-1)), format!("object {oid}: read parent record of child {}", c.image_id))),
                }
            }
        })
        .buffered(LIST_IN_FLIGHT)
        .try_collect::<Vec<bool>>();
    let mut names = ChildNames::default();
    for c in &specs {
        names.want(c);
    }
    // This is a blocking entry point: wait here, librados' completions wake this thread.
    let (live, named) = futures::executor::block_on(futures::future::join(verify, names.resolve(&pools)));
    let live = live?;
    named?;
    for (c, live) in specs.iter().zip(live) {
        if live {
            let io = pools[&(c.pool_id, c.pool_namespace.as_str())].as_ref().expect("a live child has a pool");
            let name = names.name_of(c);
            out.children.push(ImageSpec { pool: io.pool().to_string(), namespace: c.pool_namespace.clone(), image: name, snap: None });
            continue;
        }
        // The careful path, for the few entries found stale: look again with the whole header
        // (a child may have been re-attached meanwhile) and repair.
        let (cmd, h, points_here) = child_state(cluster, ploc, c)?;
        if points_here {
            let cmd = cmd.expect("a child that points here has a pool");
            let name = header::lookup_name(&cmd, &c.image_id).unwrap_or_else(|_| c.image_id.clone());
            out.children.push(ImageSpec { pool: cmd.pool().to_string(), namespace: c.pool_namespace.clone(), image: name, snap: None });
            continue;
        }
        match ploc.md.exec_write(&header_oid(&ploc.id), &stubs::child_detach(c)) {
            // Detached meanwhile by the child's own `rm` or `flatten` (which drop the parent
            // record first, then this entry) or by another listing: nothing left to do here.
            Err(e) if e.is_not_found() => continue,
            r => r?,
        }
        out.reconciled.push(format!(
            "dropped stale child entry pool {} namespace '{}' id {} (image removed or flattened outside rbd-ext)",
            c.pool_id, c.pool_namespace, c.image_id
        ));
        // The child's clone map is an orphan too once the child is gone or has no parent.
        if let Some(cmd) = &cmd {
            if let Some(note) = reconcile::drop_orphan_clone_map(cmd, &c.image_id, h.as_ref())? {
                out.reconciled.push(format!("child id {}: {note}", c.image_id));
            }
        }
    }
    Ok(out)
}

/// Whether parent record `p` (of a child) names the HEAD of the image at `ploc`.
fn points_at(p: &ParentRecord, ploc: &ImageLocation) -> bool {
    p.exists()
        && p.pool_id == ploc.md.pool_id()
        && p.pool_namespace == ploc.md.namespace()
        && p.image_id == ploc.id
        && p.snap_id == SnapId::NOSNAP
        && p.head_overlap.is_some()
}

/// The names of children, resolved per pool in bulk.
#[derive(Default)]
struct ChildNames {
    /// Per pool and namespace: the ids wanted, then id → name.
    wanted: BTreeMap<(i64, String), BTreeMap<String, Option<String>>>,
}

impl ChildNames {
    fn want(&mut self, c: &ChildImageSpec) {
        self.wanted.entry((c.pool_id, c.pool_namespace.clone())).or_default().insert(c.image_id.clone(), None);
    }

    /// Looks the wanted ids up: a pool with many of them by listing its directory, one with
    /// few by one lookup per id, in parallel. An id not in the directory (an image in the
    /// trash) keeps no name.
    async fn resolve(&mut self, pools: &BTreeMap<(i64, &str), Option<IoCtx>>) -> Result<()> {
        for ((pool_id, ns), ids) in &mut self.wanted {
            let Some(io) = pools[&(*pool_id, ns.as_str())].as_ref() else {
                continue;
            };
            if ids.len() >= LIST_NAMES_BY_DIRECTORY {
                let mut after = String::new();
                loop {
                    let out = match io.exec_async("rbd_directory", &stock::dir_list(&after, DIR_LIST_PAGE)).await {
                        Ok(o) => o,
                        Err(e) if e.is_not_found() => break,
                        Err(e) => return Err(e.context(format_args!("pool {} namespace '{ns}'", io.pool()))),
                    };
                    let page = stock::decode_dir_list(&out).map_err(|e| Error::new(e, format!("pool {}: rbd_directory: dir_list reply", io.pool())))?;
                    let n = page.len() as u64;
                    for (name, id) in page {
                        if let Some(slot) = ids.get_mut(&id) {
                            *slot = Some(name.clone());
                        }
                        after = name;
                    }
                    if n < DIR_LIST_PAGE {
                        break;
                    }
                }
            } else {
                let found = stream::iter(ids.keys())
                    .map(|id| async move {
                        let out = io.exec_async("rbd_directory", &stock::dir_get_name(id)).await.ok()?;
                        stubs::decode_reply::<String>(&out).ok()
                    })
                    .buffered(LIST_IN_FLIGHT)
                    .collect::<Vec<Option<String>>>()
                    .await;
                for (slot, name) in ids.values_mut().zip(found) {
                    *slot = name;
                }
            }
        }
        Ok(())
    }

    /// `c`'s name, or its id when it has none (in the trash), as `rbd children` shows it.
    fn name_of(&self, c: &ChildImageSpec) -> String {
        self.wanted.get(&(c.pool_id, c.pool_namespace.clone())).and_then(|ids| ids.get(&c.image_id).cloned().flatten()).unwrap_or_else(|| c.image_id.clone())
    }
}

/// What [`remove`] did besides removing.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// Stale child entries dropped from the image's children list first.
    pub reconciled: Vec<String>,
}

/// Removes an image. A parent with live children is refused (`EBUSY`, listing them); a
/// child is detached from its parent (parent record, then the parent's children list, so a
/// crash in between leaves only an entry `children` reconciles).
///
/// Async: the librados round trips run on Tokio's blocking pool; a caller without a runtime
/// uses [`crate::blocking::remove`].
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let removed = rbd_ext::remove(&cluster, &"vms/vm1".parse()?).await?;
/// for note in &removed.reconciled {
///     eprintln!("{note}");
/// }
/// # Ok(()) }
/// ```
pub async fn remove(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<Removed> {
    let (cluster, spec) = (cluster.clone(), spec.clone());
    crate::task::offload(move || remove_blocking(&cluster, &spec)).await
}

/// Removes an image. A parent with live children is refused (`EBUSY`, listing them); a
/// child is detached from its parent (parent record, then the parent's children list, so a
/// crash in between leaves only an entry `children` reconciles).
///
/// Blocking: never call it from async code (use [`remove`] there).
pub fn remove_blocking(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<Removed> {
    spec.require_head("image")?;
    let (loc, hdr) = header::locate(cluster, spec)?;
    let kids = children_of(cluster, &loc)?;
    if !kids.children.is_empty() || !kids.remote.is_empty() {
        let list = kids.children.iter().map(|c| c.to_string()).chain(kids.remote.iter().cloned()).collect::<Vec<_>>().join(", ");
        return Err(Error::new(
            Errno::EBUSY,
            format!("image {spec} has {} standalone clone(s): {list}; flatten or remove them first", kids.children.len() + kids.remote.len()),
        ));
    }
    let hoid = header_oid(&loc.id);
    // As stock `rbd rm` ("image has snapshots - not removing"), and before anything is
    // detached: the image must stay whole when it is not removed.
    let snaps: Vec<_> = crate::snapshot::snapshot_records(&loc.md, &loc.id)?.into_iter().filter(|s| Some(s.id.0) != hdr.snap_guard).collect();
    if !snaps.is_empty() {
        let names = snaps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(Error::new(
            Errno::ENOTEMPTY,
            format!(
                "image {spec} has {} snapshot(s) ({names}); remove them first (`rbd snap purge {spec}`, after `rbd snap unprotect` of protected ones)",
                snaps.len()
            ),
        ));
    }
    // A stock clone (of a snapshot) goes to librbd as it is: its remove detaches it from the
    // parent snapshot (`rbd_children` for clone v1, the snapshot's children for v2). Only the
    // records stock librbd cannot handle, a HEAD parent of ours, are detached here first.
    let ours = hdr.parent.as_ref().filter(|p| p.snap_id == SnapId::NOSNAP);
    if let Some(p) = ours {
        if p.head_overlap.is_some() {
            loc.md.exec_write(&hoid, &stubs::parent_detach()).map_err(|e| e.context(format_args!("image {spec}")))?;
        }
    }
    remove_image(&loc.md, &spec.image).map_err(|e| {
        if e.is_busy() {
            Error::new(Errno::EBUSY, format!("image {spec} is still open by a client (watchers on {hoid}); close it first"))
        } else {
            e.context(format_args!("image {spec}"))
        }
    })?;
    clone_map::remove(&loc.md, &loc.id)?;
    // The guard's record went with `parent_detach` above, so librbd did not remove its object
    // map copy with the image.
    if let Some(g) = hdr.snap_guard {
        crate::snapshot::release_guard(&loc.md, &loc.id, g)
            .map_err(|e| e.context(format_args!("image {spec} removed, but its snapshot guard's object map")))?;
    }
    if let Some(p) = ours {
        leave_parent(cluster, &loc.md, &loc.id, p).map_err(|e| e.context(format_args!("image {spec} removed, but detaching it from its parent failed")))?;
    }
    Ok(Removed { reconciled: kids.reconciled })
}

/// Removes a child from its parent's children list (local, or in the parent's cluster).
fn leave_parent(cluster: &Arc<Cluster>, md: &IoCtx, id: &str, p: &ParentRecord) -> Result<()> {
    if p.parent_type == ParentType::S3Source {
        // An S3-backed image's "parent" is the S3 object: there is no children list.
        return Ok(());
    }
    let cspec = child_spec_of(md, id);
    let (pmd, call) = if p.parent_type == ParentType::RemoteStandalone {
        let home = remote::connect(cluster, &RemoteCluster::from_record(p), remote::DEFAULT_CONNECT_TIMEOUT)?;
        (home.ioctx_by_id(p.pool_id, &p.pool_namespace)?, stubs::child_detach_remote(&cspec, &cluster.fsid()?))
    } else {
        match cluster.ioctx_by_id(p.pool_id, &p.pool_namespace) {
            Ok(m) => (m, stubs::child_detach(&cspec)),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
    };
    match pmd.exec_write(&header_oid(&p.image_id), &call) {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    }
}

/// Copies up every inherited object that is not local yet (in parallel), then detaches the
/// child from its parent. Safe to re-run after a crash: finished objects are skipped.
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// use rbd_ext::{Image, OpenOptions};
/// let image = Image::open(&cluster, &"vms/vm1".parse()?, OpenOptions::default().with_write(true)).await?;
/// rbd_ext::flatten(&image, &|done, total| eprintln!("{done}/{total}")).await?;
/// image.close_async().await?;
/// # Ok(()) }
/// ```
pub async fn flatten(image: &Image, progress: Progress<'_>) -> Result<()> {
    let spec = image.spec().clone();
    let loc = image.location().clone();
    let hdr = image.header();
    let Some(parent) = hdr.parent.clone() else {
        return Err(Error::new(Errno::EINVAL, format!("image {spec} has no parent: nothing to flatten")));
    };
    // An S3-backed image's record names its data source, not a parent image: this handle
    // cannot read the unfilled objects as a parent's, so "flattening" would drop the data.
    if parent.parent_type == ParentType::S3Source {
        return Err(Error::new(
            Errno::EINVAL,
            format!("image {spec} is S3-backed, not a clone: fill it with `rbd-ext hydrate`, then `rbd-ext s3 finalize` makes it a plain image"),
        ));
    }
    // Copy-ups and the detach need the writer lock (a reader would detach without copying).
    if !image.is_writable() {
        return Err(Error::new(Errno::EROFS, format!("image {spec}: opened read-only: flatten needs it opened for writing")));
    }
    let total = hdr.overlap().div_ceil(hdr.object_size());
    let done = AtomicU64::new(0);
    progress(0, total);
    stream::iter(0..total)
        .map(|n| {
            let (done, hdr) = (&done, &hdr);
            async move {
                crate::kill_point::reached("flatten.object");
                image.copy_up_object(n, hdr).await?;
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let hoid = header_oid(&loc.id);
    loc.md.exec_write_async(&hoid, &stubs::parent_detach()).await.map_err(|e| e.context(format_args!("image {spec}: detach parent")))?;
    let (md, id, s, guard) = (loc.md.clone(), loc.id.clone(), spec.clone(), hdr.snap_guard);
    blocking(move || {
        // Snapshots taken before HEAD shrank still read the parent past HEAD's overlap: the
        // class kept the record for them, and the child stays on the parent's list (which
        // keeps the parent protected) until they are gone.
        if header::read_header(&md, &id)?.parent.is_some() {
            return clone_map::remove(&md, &id);
        }
        // A plain image now: the class dropped the snapshot guard's record with the parent.
        if let Some(g) = guard {
            crate::snapshot::release_guard(&md, &id, g).map_err(|e| e.context(format_args!("image {s}: release the snapshot guard")))?;
        }
        leave_parent(md.cluster(), &md, &id, &parent)
            .map_err(|e| e.context(format_args!("image {s}: flattened, but leaving the parent's children list failed")))?;
        clone_map::remove(&md, &id)
    })
    .await?;
    image.refresh_header_async().await?;
    let _ = loc.md.notify_async(&hoid, stock::header_update_notification(), 5000).await;
    Ok(())
}

/// Result of a clone-map check.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Objects checked.
    pub objects: u64,
    /// (object, map state, state from the objects) for every real disagreement: the map
    /// claims a local object that is not there, or disagrees about what the parent holds.
    pub mismatches: Vec<(u64, CloneMapState, CloneMapState)>,
    /// (object, map state, new state) for entries brought up to date without being a
    /// disagreement: objects a stock client (librbd) wrote or copied up, which the map
    /// still counted as inherited, and PENDING entries a crash left, resolved from the
    /// objects. These are always written, also by a plain check.
    pub updated: Vec<(u64, CloneMapState, CloneMapState)>,
    /// Whether the map was rewritten.
    pub repaired: bool,
}

/// Whether a map entry that says `map` while the objects say `actual` is only behind the
/// objects (a stock client's copy-up, a crash's PENDING), not a disagreement.
fn only_behind(map: CloneMapState, actual: CloneMapState) -> bool {
    use CloneMapState::*;
    let local = |s: CloneMapState| matches!(s, Exists | CopiedUp | ExistsClean);
    map == Pending || (local(actual) && matches!(map, ExistsParent | NonExistent))
}

/// Compares the clone map with the objects (child object exists? parent has data?). Entries
/// only behind the objects ([`CheckReport::updated`]) are brought up to date; with `repair`,
/// the whole map is rewritten from that ground truth.
///
/// Async: the librados round trips run on Tokio's blocking pool; a caller without a runtime
/// uses [`crate::blocking::check_clone_map`].
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let report = rbd_ext::check_clone_map(&cluster, &"vms/vm1".parse()?, false).await?;
/// println!("{report:?}");
/// # Ok(()) }
/// ```
pub async fn check_clone_map(cluster: &Arc<Cluster>, spec: &ImageSpec, repair: bool) -> Result<CheckReport> {
    let (cluster, spec) = (cluster.clone(), spec.clone());
    crate::task::offload(move || check_clone_map_blocking(&cluster, &spec, repair)).await
}

/// Compares the clone map with the objects (child object exists? parent has data?). Entries
/// only behind the objects ([`CheckReport::updated`]) are brought up to date; with `repair`,
/// the whole map is rewritten from that ground truth.
///
/// Blocking: never call it from async code (use [`check_clone_map`] there).
pub fn check_clone_map_blocking(cluster: &Arc<Cluster>, spec: &ImageSpec, repair: bool) -> Result<CheckReport> {
    let (loc, hdr) = header::locate(cluster, spec)?;
    let Some(parent) = &hdr.parent else {
        if let Some(note) = reconcile::drop_orphan_clone_map(&loc.md, &loc.id, Some(&hdr))? {
            return Err(Error::new(Errno::EINVAL, format!("image {spec} is not a clone (flattened outside rbd-ext): {note}")));
        }
        return Err(Error::new(Errno::EINVAL, format!("image {spec} is not a clone: it has no clone map")));
    };
    let count = hdr.object_count();
    let current = clone_map::load(&loc.md, &loc.id)?.unwrap_or_else(|| vec![CloneMapState::NonExistent; count as usize]);
    // The parent's own cluster: this one, or the remote one its record names.
    let home = match parent.parent_type {
        ParentType::RemoteStandalone => remote::connect(cluster, &RemoteCluster::from_record(parent), remote::DEFAULT_CONNECT_TIMEOUT)
            .map_err(|e| e.context(format_args!("image {spec}: its parent")))?,
        ParentType::S3Source => return Err(Error::new(Errno::EINVAL, format!("image {spec} is S3-backed: it has no clone map (its objects fill from S3)"))),
        _ => Arc::clone(cluster),
    };
    let pmd = home.ioctx_by_id(parent.pool_id, &parent.pool_namespace)?;
    let pspec = ImageSpec { pool: pmd.pool().to_string(), namespace: parent.pool_namespace.clone(), image: parent.image_id.clone(), snap: None };
    let phdr = header::read_header(&pmd, &parent.image_id).map_err(|e| e.context(format_args!("parent of {spec}")))?;
    let pdata = if phdr.data_pool_id >= 0 { home.ioctx_by_id(phdr.data_pool_id, &parent.pool_namespace)? } else { pmd.clone() };
    let ploc = ImageLocation { spec: pspec, id: parent.image_id.clone(), md: pmd, data: pdata };
    let parent_has: Vec<bool> = {
        let mut v = vec![false; count as usize];
        for r in parent_runs(&ploc, &phdr)? {
            for i in r.start..(r.start + r.len).min(count) {
                v[i as usize] = true;
            }
        }
        v
    };
    let inherited_objects = hdr.overlap().div_ceil(hdr.object_size());
    let prefix = format!("{}.", hdr.object_prefix);
    let mut child_has = vec![false; count as usize];
    for name in loc.data.list_objects(&prefix)? {
        if let Ok(n) = u64::from_str_radix(&name[prefix.len()..], 16) {
            if n < count {
                child_has[n as usize] = true;
            }
        }
    }
    let mut report = CheckReport { objects: count, ..Default::default() };
    let mut fixed = current.clone();
    fixed.resize(count as usize, CloneMapState::NonExistent);
    for n in 0..count as usize {
        let inherited = (n as u64) < inherited_objects && parent_has[n];
        let want = clone_map::expected_state(child_has[n], fixed[n], inherited);
        if want == fixed[n] {
            continue;
        }
        if only_behind(fixed[n], want) {
            report.updated.push((n as u64, fixed[n], want));
        } else {
            report.mismatches.push((n as u64, fixed[n], want));
        }
        fixed[n] = want;
    }
    if current.len() != count as usize && !repair {
        // A map of the wrong length cannot take per-entry updates: all of it needs rebuild.
        report.mismatches.append(&mut report.updated);
        report.mismatches.sort_by_key(|m| m.0);
    }
    if repair && (!report.mismatches.is_empty() || !report.updated.is_empty() || current.len() != count as usize) {
        clone_map::init(&loc.md, &loc.id, count, stubs::clone_map_runs(&fixed), true)?;
        report.repaired = true;
    } else if current.len() == count as usize {
        // Entries only behind the objects: compare-and-set each, so an rbd-ext writer's
        // concurrent transition wins over this late news.
        let oid = rbd_ext_cls::types::clone_map_object(&loc.id);
        for (n, from, to) in &report.updated {
            loc.md
                .exec_write(&oid, &stubs::clone_map_update(*n, 1, *to, Some(*from)))
                .map_err(|e| e.context(format_args!("image {spec}: object {n}: clone map update")))?;
        }
    }
    Ok(report)
}

impl Image {
    /// Copies object `n` up from the parent if it is inherited, not local, and the parent has
    /// data there (a parent hole needs no local object: it reads as zeros either way).
    pub(crate) async fn copy_up_object(&self, n: u64, hdr: &ImageHeader) -> Result<()> {
        let oid = hdr.data_oid(n);
        let r = self.stat_object(&oid).await?;
        if r.rc >= 0 {
            return Ok(());
        }
        if r.rc != -libc::ENOENT {
            return Err(Error::new(Errno(-r.rc), format!("image {}: object {n}: stat", self.spec())));
        }
        let data = self.parent_object_data(n, hdr).await?;
        if data.iter().all(|&b| b == 0) {
            return Ok(());
        }
        self.copy_up(n, hdr, data).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CloneMapState::*;

    #[test]
    fn stock_copy_ups_and_crash_leftovers_are_not_disagreements() {
        assert!(only_behind(ExistsParent, CopiedUp));
        assert!(only_behind(NonExistent, Exists));
        assert!(only_behind(Pending, ExistsParent));
        assert!(only_behind(Pending, Exists));
        // The map claims a local object that is not there, or inheritance the parent lacks.
        assert!(!only_behind(CopiedUp, ExistsParent));
        assert!(!only_behind(Exists, NonExistent));
        assert!(!only_behind(ExistsParent, NonExistent));
        assert!(!only_behind(NonExistent, ExistsParent));
    }
}

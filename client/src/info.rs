//! What `rbd info` shows about an image, as typed values: [`image_details`].

use std::sync::Arc;

use rbd_ext_cls::codec::SnapId;
use rbd_ext_cls::types::{ParentRecord, ParentType, ProtectionMode};

use crate::error::{Errno, Result};
use crate::header::{self, HeaderMeta, ImageHeader};
use crate::image::{Image, OpenOptions};
use crate::rados::Cluster;
use crate::spec::ImageSpec;
use rbd_ext_cls::types::CloneMapState;

/// An image's facts: what `rbd info` shows plus rbd-ext's own (parent type, clone map,
/// protection). Gathered by [`image_details`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImageDetails {
    /// The image, as asked for.
    pub spec: ImageSpec,
    /// Its id.
    pub id: String,
    /// The header: size, order, features, layout, parent record.
    pub header: ImageHeader,
    /// The data pool's name, when the image has one.
    pub data_pool: Option<String>,
    /// Op features, flags, timestamps, snapshot count.
    pub meta: HeaderMeta,
    /// The parent, when the image is a clone.
    pub parent: Option<ParentInfo>,
    /// The clone map's length and counts per state; `None` without a clone map.
    pub clone_map: Option<CloneMapCounts>,
    /// How standalone children protect the image; `None` when none do.
    pub protection: Option<ProtectionInfo>,
}

/// A clone's parent, as its record names it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ParentInfo {
    /// The parent's pool, namespace and name. A parent this client cannot open (in another
    /// cluster, or unreadable) is named by pool id and image id instead.
    pub spec: ImageSpec,
    /// The parent's image id.
    pub id: String,
    /// Stock snapshot clone, local standalone, remote standalone or S3-backed.
    pub parent_type: ParentType,
    /// The parent snapshot's name ("" for a HEAD parent, as stock prints it).
    pub snapshot: String,
    /// Whether the parent is in the trash.
    pub in_trash: bool,
    /// Bytes of the child that read through to the parent.
    pub overlap: u64,
    /// Where a remote parent lives (`None` for the other types).
    pub remote: Option<RemoteParentInfo>,
}

/// The cluster of a remote parent, as the child records it (never the key).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteParentInfo {
    /// The remote cluster's name.
    pub cluster: String,
    /// Its monitors.
    pub mon_hosts: Vec<String>,
    /// The client the child connects as.
    pub client: String,
}

/// The clone map of a clone: its length and how many objects are in each state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CloneMapCounts {
    /// Objects the map covers.
    pub objects: u64,
    /// Objects per state (states with none are left out).
    pub states: Vec<(CloneMapState, u64)>,
}

/// How an image's standalone children protect it from stock tools.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ProtectionInfo {
    /// Children in this cluster.
    pub children: usize,
    /// Children in other clusters.
    pub remote_children: usize,
    /// The mode in force (`clones` or `strict`).
    pub mode: ProtectionMode,
}

/// Gathers an image's facts. A parent this build cannot open (remote, S3) does not hide the
/// child's facts: the parent is then named from the child's record alone.
///
/// Blocking work runs on Tokio's blocking pool.
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let d = rbd_ext::image_details(&cluster, &"rbd/vm1".parse()?).await?;
/// println!("{} bytes, parent {:?}", d.header.size, d.parent.map(|p| p.spec.to_string()));
/// # Ok(()) }
/// ```
pub async fn image_details(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<ImageDetails> {
    let (cluster, spec) = (cluster.clone(), spec.clone());
    crate::task::offload(move || image_details_blocking(&cluster, &spec)).await
}

fn image_details_blocking(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<ImageDetails> {
    // Opening read-only resolves the parent's name through its own pool's directory.
    let (loc, header, parent_spec) = match Image::open_blocking(cluster, spec, OpenOptions::default()) {
        Ok(image) => {
            let info = image.info();
            (image.location().clone(), info.header, info.parent)
        }
        Err(e) if e.errno() == Errno::EOPNOTSUPP => {
            let (loc, header) = header::locate(cluster, spec)?;
            let parent = header.parent.as_ref().map(|p| {
                // A foreign parent's pool id is another cluster's (or none): show the ids.
                let local = (!p.is_foreign()).then(|| cluster.ioctx_by_id(p.pool_id, &p.pool_namespace).ok()).flatten();
                ImageSpec {
                    pool: local.as_ref().map_or_else(|| p.pool_id.to_string(), |io| io.pool().to_string()),
                    namespace: p.pool_namespace.clone(),
                    image: local.as_ref().and_then(|io| header::lookup_name(io, &p.image_id).ok()).unwrap_or_else(|| p.image_id.clone()),
                    snap: None,
                }
            });
            (loc, header, parent)
        }
        Err(e) => return Err(e),
    };
    let data_pool = if header.data_pool_id >= 0 { Some(cluster.pool_reverse_lookup(header.data_pool_id)?) } else { None };
    let clone_map = crate::clone_map::load(&loc.md, &loc.id)
        .map_err(|e| e.context(format_args!("image {spec}: clone map")))?
        .map(|states| CloneMapCounts { objects: states.len() as u64, states: crate::clone_map::summary(&states) });
    let meta = header::read_meta(&loc.md, &loc.id).map_err(|e| e.context(format_args!("image {spec}")))?;
    let parent = match (&header.parent, parent_spec) {
        (Some(rec), Some(pspec)) => {
            let (snapshot, in_trash) = if rec.is_foreign() { (String::new(), false) } else { parent_extras(cluster, rec) };
            let remote = (rec.parent_type == ParentType::RemoteStandalone).then(|| RemoteParentInfo {
                cluster: rec.remote_cluster_name.clone(),
                mon_hosts: rec.remote_mon_hosts.clone(),
                client: rec.remote_client_name.clone(),
            });
            Some(ParentInfo { spec: pspec, id: rec.image_id.clone(), parent_type: rec.parent_type, snapshot, in_trash, overlap: header.overlap(), remote })
        }
        _ => None,
    };
    // The class's protection record says whether (and how) children protect the image, in
    // either mode (the feature bits differ between `clones` and `strict`).
    let protection = match crate::manage::protection_blocking(cluster, spec)? {
        Some(p) => {
            let (here, remote) = crate::manage::child_entries(&loc.md, &loc.id).map_err(|e| e.context(format_args!("image {spec}: children")))?;
            Some(ProtectionInfo { children: here, remote_children: remote, mode: p.applied() })
        }
        None => None,
    };
    Ok(ImageDetails { spec: spec.clone(), id: loc.id.clone(), header, data_pool, meta, parent, clone_map, protection })
}

/// The parent's snapshot name ("" for HEAD, as stock) and whether the parent is in the
/// trash; best effort (a parent that cannot be read shows neither).
fn parent_extras(cluster: &Arc<Cluster>, rec: &ParentRecord) -> (String, bool) {
    let Ok(md) = cluster.ioctx_by_id(rec.pool_id, &rec.pool_namespace) else {
        return (String::new(), false);
    };
    let snapshot = match rec.snap_id {
        SnapId::NOSNAP => String::new(),
        SnapId(id) => header::snapshot_name(&md, &rec.image_id, id).ok().flatten().unwrap_or_default(),
    };
    let trash = md.omap_get("rbd_trash", &format!("id_{}", rec.image_id)).ok().flatten().is_some();
    (snapshot, trash)
}

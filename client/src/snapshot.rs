//! Snapshots that read right, also of standalone children.
//!
//! Stock `rbd.snapshot_add` leaves the parent overlap out of a snapshot of a child whose
//! parent is a HEAD, so stock librbd reads every object such a snapshot does not hold as
//! zeros. rbd-ext therefore:
//! - makes snapshots itself with `rbd_ext.snapshot_add` (stock's method with the HEAD
//!   overlap kept), as the exclusive-lock owner, exactly as librbd's `SnapshotCreateRequest`
//!   (snapshot id from the data pool, the record, the object map's snapshot, a header-update
//!   notification), holding new writes back and waiting for those in flight;
//! - when another client owns the lock (QEMU, a python3-rbd writer, `rbd-ext nbd serve`),
//!   sends it librbd's own request (`rbd_snap_create`, which librbd forwards to the owner)
//!   with the snapshot guard lifted for that moment, then gives the new snapshot the overlap
//!   and arms the guard again;
//! - as the lock owner itself (an image open for writing: `nbd serve`, the library, C and
//!   Python), carries out the snapshot requests librbd clients send it ([`SnapshotOwner`]),
//!   de-duplicated by request id, as librbd's owner does;
//! - keeps stock `snap create` failing closed on standalone children (the *snapshot
//!   guard*: a hidden snapshot with id 0 and `snap_limit` held at 1, so stock fails with
//!   EDQUOT; `rbd_ext_cls::types::header::RBD_EXT_SNAP_GUARD`);
//! - finds and repairs snapshots stock tools made before (`doctor`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use rbd_ext_cls::codec::SnapId;
use rbd_ext_cls::ops::SnapGuardMode;
use rbd_ext_cls::stubs::{self, stock};
use rbd_ext_cls::types::header::{SNAPSHOT_PREFIX, SNAP_GUARD_ID};
use rbd_ext_cls::types::{ParentType, SnapContext, SnapshotNamespace, SnapshotRecord};
use rbd_ext_cls::Codec;

use crate::error::{Errno, Error, Result};
use crate::guard::IoGate;
use crate::header::{self, features, header_oid, object_map_oid, ImageHeader, ImageLocation};
use crate::image::{Image, OpenOptions};
use crate::rados::{self, Cluster, IoCtx, WriteOp};
use crate::spec::ImageSpec;

/// Every snapshot record of image `id`, in id order.
pub fn snapshot_records(md: &IoCtx, id: &str) -> Result<Vec<SnapshotRecord>> {
    md.omap_list(&header_oid(id), SNAPSHOT_PREFIX)?
        .into_iter()
        .map(|(k, v)| SnapshotRecord::read_bytes(&v).map_err(|e| Error::new(Errno::EIO, format!("image id {id}: snapshot record {k}: {e}"))))
        .collect()
}

/// Whether a HEAD (standalone, local or remote) parent is named by this header.
fn head_child(hdr: &ImageHeader) -> bool {
    hdr.parent.as_ref().is_some_and(|p| p.snap_id == SnapId::NOSNAP && p.parent_type != ParentType::S3Source)
}

/// Whether some snapshot of image `id` still reads its parent (has a parent overlap).
pub fn snapshots_read_parent(md: &IoCtx, id: &str) -> Result<bool> {
    Ok(snapshot_records(md, id)?.iter().any(|s| s.parent_overlap.is_some()))
}

/// What librbd's `SnapshotCreateRequest` writes, for a handle that owns the exclusive lock
/// and holds its requests back: an id from the data pool, the record by
/// `rbd_ext.snapshot_add` (with the HEAD parent overlap), the object map's snapshot copy
/// and, with fast-diff, `object_map_snap_add` on HEAD's map. Returns the snapshot id.
fn make_snapshot(loc: &ImageLocation, hdr: &ImageHeader, name: &str) -> Result<u64> {
    let sid = loc.data.selfmanaged_snap_create()?;
    let hoid = header_oid(&loc.id);
    if let Err(e) = loc.md.exec_write(&hoid, &stubs::snapshot_add(name, SnapId(sid), SnapshotNamespace::user())) {
        let _ = loc.data.selfmanaged_snap_remove(sid);
        return Err(if e.errno() == Errno::EEXIST { Error::new(Errno::EEXIST, format!("snapshot '{name}' already exists")) } else { e });
    }
    if hdr.has(features::OBJECT_MAP) {
        let oid = object_map_oid(&loc.id);
        let len = loc.md.stat(&oid)?;
        let bytes = loc.md.read(&oid, 0, len as usize)?;
        loc.md.write_full(&format!("{oid}.{sid:016x}"), &bytes)?;
        if hdr.has(features::FAST_DIFF) {
            let op =
                WriteOp::default().exec(&stock::assert_locked(stock::RBD_LOCK_NAME, stock::lock_type::EXCLUSIVE, "", "")).exec(&stock::object_map_snap_add());
            let r = loc.md.operate_write(&oid, &op, 0)?;
            if r.rc < 0 {
                return Err(Error::new(Errno(-r.rc), format!("object {oid}: object map snapshot")));
            }
        }
    }
    Ok(sid)
}

fn check_name(spec: &ImageSpec, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('@') {
        return Err(Error::new(Errno::EINVAL, format!("image {spec}: invalid snapshot name '{name}'")));
    }
    Ok(())
}

impl Image {
    /// Creates snapshot `name` of this image, which this handle holds open for writing (it
    /// owns the exclusive lock), as librbd's `SnapshotCreateRequest` does: new requests are
    /// held back and those in flight finish first, the id comes from the data pool, the record
    /// is written by `rbd_ext.snapshot_add` (with the HEAD parent overlap, so a standalone
    /// child's snapshot reads its parent where it holds no object), the object map gets its
    /// snapshot copy, the header (and the snapshot context writes carry) is re-read before
    /// requests resume, and header watchers are told. Returns the snapshot id.
    pub async fn snap_create(&self, name: &str) -> Result<u64> {
        self.writer_check()?;
        check_name(self.spec(), name)?;
        self.ready_for_maintenance().await?;
        let exclusive = self.hold_requests().await;
        let (spec, loc, hdr, snap_name) = (self.spec().clone(), self.location().clone(), self.header(), name.to_string());
        let fast_diff = hdr.has(features::FAST_DIFF);
        let id = rados::blocking(move || make_snapshot(&loc, &hdr, &snap_name))
            .await
            .map_err(|e| e.context(format_args!("image {spec}: create snapshot {name}")))?;
        if fast_diff {
            self.object_map_mark_clean();
        }
        self.refresh_header_async().await?;
        drop(exclusive);
        let _ = self.location().md.notify_async(&header_oid(&self.location().id), stock::header_update_notification(), 5000).await;
        Ok(id)
    }
}

/// The lock owner's side of librbd's snapshot requests (`SnapCreatePayload`, forwarded by
/// `rbd snap create`, python3-rbd, QEMU... to the client that owns the exclusive lock): the
/// pieces of an open writer's state the request needs, shared with its `Image`.
pub(crate) struct SnapshotOwner {
    pub(crate) loc: ImageLocation,
    pub(crate) header: Arc<RwLock<ImageHeader>>,
    pub(crate) data: Arc<RwLock<(SnapContext, IoCtx)>>,
    pub(crate) object_map: Option<Arc<Mutex<Vec<u8>>>>,
    pub(crate) gate: Arc<IoGate>,
}

impl crate::lock::OwnerRequests for SnapshotOwner {
    /// As [`Image::snap_create`], on a thread of its own (blocking).
    fn snap_create(&self, name: &str) -> Result<u64> {
        let spec = &self.loc.spec;
        check_name(spec, name)?;
        let exclusive = self.gate.exclusive_blocking();
        let hdr = self.header.read().unwrap_or_else(|e| e.into_inner()).clone();
        let id = make_snapshot(&self.loc, &hdr, name).map_err(|e| e.context(format_args!("image {spec}: create snapshot {name}")))?;
        if hdr.has(features::FAST_DIFF) {
            if let Some(map) = &self.object_map {
                crate::image::mark_clean(map);
            }
        }
        // Requests resume only with the new snapshot context: a write after the snapshot
        // must make the OSD preserve the snapshot's data.
        let fresh = header::read_header(&self.loc.md, &self.loc.id).map_err(|e| e.context(format_args!("image {spec}")))?;
        crate::image::apply_header(&self.loc, &self.header, Some(&self.data), fresh)?;
        drop(exclusive);
        let _ = self.loc.md.notify(&header_oid(&self.loc.id), &stock::header_update_notification(), 5000);
        Ok(id)
    }
}

/// Creates snapshot `spec` (`pool/image@snap`), right for every kind of image:
/// - a plain image or a stock clone: through librbd, as `rbd snap create`;
/// - a standalone child nobody holds open for writing: this process takes the lock and
///   makes it with [`Image::snap_create`];
/// - a standalone child another client owns (QEMU, python3-rbd, `rbd-ext nbd serve`):
///   librbd's request to the owner, with the snapshot guard lifted meanwhile; the new
///   snapshot then gets the overlap and the guard is armed again.
pub async fn snap_create(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<()> {
    let name = spec.snap.clone().ok_or_else(|| Error::new(Errno::EINVAL, format!("{spec}: name the snapshot as IMAGE@SNAP")))?;
    let head = ImageSpec { snap: None, ..spec.clone() };
    check_name(&head, &name)?;
    let (c, h) = (cluster.clone(), head.clone());
    let (loc, hdr) = crate::task::offload(move || header::locate(&c, &h)).await?;
    if !head_child(&hdr) {
        let (md, image, n) = (loc.md.clone(), head.image.clone(), name.clone());
        return crate::task::offload(move || rados::snap_create(&md, &image, &n)).await;
    }
    match Image::open(cluster, &head, OpenOptions::default().with_write(true)).await {
        Ok(img) => {
            let r = img.snap_create(&name).await;
            img.close_async().await?;
            r.map(|_| ())
        }
        Err(e) if e.errno() == Errno::EBUSY => crate::task::offload(move || snap_create_through_owner(&loc, &name)).await,
        Err(e) => Err(e),
    }
}

/// [`snap_create`] for callers without a runtime. Blocking: never call it from async code.
pub fn snap_create_blocking(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Error::new(Errno::EIO, format!("start a runtime: {e}")))?;
    rt.block_on(snap_create(cluster, spec))
}

/// Another client owns the lock: librbd's request goes to it with the guard lifted; every
/// snapshot that appeared meanwhile gets the overlap; the guard goes back, whatever failed.
fn snap_create_through_owner(loc: &ImageLocation, name: &str) -> Result<()> {
    let hoid = header_oid(&loc.id);
    let before: BTreeSet<SnapId> = snapshot_records(&loc.md, &loc.id)?.into_iter().map(|s| s.id).collect();
    loc.md.exec_write(&hoid, &stubs::snap_guard(SnapGuardMode::Lift, None)).map_err(|e| e.context(format_args!("image {}", loc.spec)))?;
    let made = rados::snap_create(&loc.md, &loc.spec.image, name);
    let repaired = repair_new_snapshots(loc, &before);
    let armed = loc.md.exec_write(&hoid, &stubs::snap_guard(SnapGuardMode::Arm, None));
    made?;
    repaired?;
    armed.map_err(|e| e.context(format_args!("image {}: arm the snapshot guard again", loc.spec)))
}

/// Gives every snapshot not in `before` that reads no parent the child's HEAD overlap (the
/// owner made it with stock `snapshot_add` just now, while the parent was protected).
fn repair_new_snapshots(loc: &ImageLocation, before: &BTreeSet<SnapId>) -> Result<()> {
    let hdr = header::read_header(&loc.md, &loc.id)?;
    let Some(overlap) = hdr.parent.as_ref().and_then(|p| p.head_overlap) else {
        return Ok(());
    };
    for s in snapshot_records(&loc.md, &loc.id)? {
        if !before.contains(&s.id) && s.parent_overlap.is_none() && overlap > 0 {
            loc.md
                .exec_write(&header_oid(&loc.id), &stubs::snapshot_parent_set(s.id, overlap))
                .map_err(|e| e.context(format_args!("image {}: snapshot {}: set its parent overlap", loc.spec, s.name)))?;
        }
    }
    Ok(())
}

/// A snapshot of a standalone child that reads zeros where the child inherits data (made
/// by stock `snap create` without the guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenSnapshot {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The overlap a repair gives it, when that is known for sure; `None`: not repairable
    /// safely (the reason is in `why`).
    pub repair_overlap: Option<u64>,
    /// Why it cannot be repaired safely (empty when it can).
    pub why: String,
}

/// The snapshots of standalone child `id` that read no parent although the child has one.
///
/// A repair is safe when the overlap at snapshot time is certain: the parent must still
/// list the child (so it has been protected, unchanged, since the child was made), and the
/// child's HEAD overlap must still be the largest an overlap could have been then
/// (min(parent size, snapshot size)): an overlap only ever shrinks, so it was exactly that.
pub fn broken_snapshots(cluster: &Arc<Cluster>, md: &IoCtx, id: &str, hdr: &ImageHeader) -> Result<Vec<BrokenSnapshot>> {
    let Some(p) = hdr.parent.as_ref().filter(|_| head_child(hdr)) else {
        return Ok(Vec::new());
    };
    // The guard reads nothing (size 0): it needs no overlap.
    let snaps: Vec<SnapshotRecord> =
        snapshot_records(md, id)?.into_iter().filter(|s| s.parent_overlap.is_none() && s.image_size > 0 && Some(s.id.0) != hdr.snap_guard).collect();
    if snaps.is_empty() {
        return Ok(Vec::new());
    }
    let listed_and_size = if p.parent_type == ParentType::Standalone {
        match cluster.ioctx_by_id(p.pool_id, &p.pool_namespace) {
            Ok(pmd) => {
                let listed = crate::manage::list_child_specs(&pmd, &p.image_id)?
                    .iter()
                    .any(|c| c.pool_id == md.pool_id() && c.pool_namespace == md.namespace() && c.image_id == id);
                let psize = header::read_header(&pmd, &p.image_id).map(|h| h.size).ok();
                Some((listed, psize))
            }
            Err(_) => None,
        }
    } else {
        None
    };
    Ok(snaps
        .into_iter()
        .map(|s| {
            let (repair_overlap, why) = match (listed_and_size, p.head_overlap) {
                (None, _) => (None, "its parent is not a local standalone parent rbd-ext can check".to_string()),
                (Some((false, _)), _) => (None, "the parent no longer lists the child, so it may have changed since the snapshot".to_string()),
                (Some((_, None)), _) => (None, "the parent's size cannot be read".to_string()),
                (_, None) => (None, "the child no longer reads its parent at HEAD (flattened by stock rbd)".to_string()),
                (Some((true, Some(psize))), Some(h)) => {
                    let bound = psize.min(s.image_size);
                    if h >= bound && bound > 0 {
                        (Some(bound), String::new())
                    } else {
                        (None, format!("the child was shrunk after it (HEAD overlap {h} < {bound}): the overlap at snapshot time is not known"))
                    }
                }
            };
            BrokenSnapshot { id: s.id.0, name: s.name, repair_overlap, why }
        })
        .collect())
}

/// Repairs one snapshot found by [`broken_snapshots`] with its `repair_overlap`.
pub fn repair_snapshot(md: &IoCtx, id: &str, snap: &BrokenSnapshot) -> Result<()> {
    let Some(o) = snap.repair_overlap else {
        return Err(Error::new(Errno::EINVAL, format!("image id {id}: snapshot {}: not safely repairable: {}", snap.name, snap.why)));
    };
    md.exec_write(&header_oid(id), &stubs::snapshot_parent_set(SnapId(snap.id), o))
}

/// Whether local standalone child `id` lacks its snapshot guard (made by an older rbd-ext,
/// or a user's `rbd snap limit set|clear` lifted it): stock `snap create` then works on it
/// and makes snapshots that read zeros where the child inherits data.
pub fn guard_missing(md: &IoCtx, id: &str, hdr: &ImageHeader) -> Result<bool> {
    let local_standalone = hdr.parent.as_ref().is_some_and(|p| p.parent_type == ParentType::Standalone && p.head_overlap.is_some());
    if !local_standalone {
        return Ok(false);
    }
    if hdr.snap_guard.is_none() {
        return Ok(true);
    }
    let hoid = header_oid(id);
    let limit = md.omap_get(&hoid, rbd_ext_cls::types::header::SNAP_LIMIT)?;
    let held = md.omap_get(&hoid, rbd_ext_cls::types::header::RBD_EXT_SNAP_LIMIT)?.is_some();
    Ok(!(held && limit.as_deref() == Some(&1u64.to_le_bytes()[..])))
}

/// Arms the snapshot guard of image `id` (header in `md`): makes its guard snapshot (id 0,
/// `rbd_ext_cls::types::header::SNAP_GUARD_ID`, with the object map's copy librbd keeps
/// per snapshot) when it has none, and holds `snap_limit` at 1. Id 0 never makes the OSD
/// clone an object, so arming costs no space, on a new child or an old one.
pub fn arm_guard(md: &IoCtx, id: &str, hdr: &ImageHeader) -> Result<()> {
    let hoid = header_oid(id);
    if hdr.snap_guard.is_some() {
        return md.exec_write(&hoid, &stubs::snap_guard(SnapGuardMode::Arm, None));
    }
    let sid = SNAP_GUARD_ID;
    let om_copy = format!("{}.{sid:016x}", object_map_oid(id));
    let made = (|| {
        if hdr.has(features::OBJECT_MAP) {
            let oid = object_map_oid(id);
            let bytes = md.read(&oid, 0, md.stat(&oid)? as usize)?;
            md.write_full(&om_copy, &bytes)?;
        }
        md.exec_write(&hoid, &stubs::snap_guard(SnapGuardMode::Arm, Some(SnapId(sid))))
    })();
    if let Err(e) = made {
        let _ = md.remove(&om_copy);
        return Err(e.context(format_args!("image id {id}: make its snapshot guard")));
    }
    Ok(())
}

/// After the class dropped guard snapshot `sid` (a detach that left no parent): its object
/// map copy goes too (id 0 was never allocated from the pool: nothing to release there).
pub(crate) fn release_guard(md: &IoCtx, id: &str, sid: u64) -> Result<()> {
    match md.remove(&format!("{}.{sid:016x}", object_map_oid(id))) {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    }
}

/// For an image that reads no parent any more (flattened by stock `rbd flatten`, or the last
/// snapshot that read its parent is gone): removes the guard snapshot (its record, limit and
/// object map copy) and a `parent` record left with no HEAD overlap.
pub fn drop_guard(md: &IoCtx, id: &str, hdr: &ImageHeader) -> Result<()> {
    let hoid = header_oid(id);
    if hdr.parent.as_ref().is_some_and(|p| p.head_overlap.is_none()) && !snapshots_read_parent(md, id)? {
        let r = md.operate_write(&hoid, &WriteOp { steps: vec![rados::WriteStep::OmapRmKeys(vec!["parent".into()])] }, 0)?;
        if r.rc < 0 {
            return Err(Error::new(Errno(-r.rc), format!("object {hoid}: remove the left-over parent record")));
        }
    }
    if let Some(g) = hdr.snap_guard {
        md.exec_write(&hoid, &stubs::snap_guard(SnapGuardMode::Remove, None))?;
        release_guard(md, id, g)?;
    }
    Ok(())
}

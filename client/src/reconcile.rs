//! Reconciling rbd-ext's own bookkeeping with what stock tools did behind its back.
//!
//! Stock `rbd rm` of a child leaves its clone map (`rbd_clone_map.<id>`) and its entry in
//! the parent's children; stock `rbd flatten` leaves the clone map and, for the last child,
//! the parent's protection; librbd writes (QEMU, fio, python3-rbd) copy objects up without
//! touching the clone map. The objects and headers are the truth, so every place rbd-ext
//! touches an image repairs what it can see from there: orphan clone maps go, stale
//! children entries go (which lifts a stuck protection), and clone-map entries that still
//! say "parent" for objects the stock object map says exist become COPIEDUP.

use std::sync::Arc;

use rbd_ext_cls::stubs::{self, stock};
use rbd_ext_cls::types::{clone_map_object, CloneMapState};

use crate::clone_map;
use crate::error::{Error, Result};
use crate::header::{self, features, object_map_oid, ImageHeader, ImageLocation};
use crate::rados::{Cluster, IoCtx};
use crate::spec::ImageSpec;

/// Children a parent may have for [`on_open`] to reconcile them; above that, listing every
/// child's header on each open costs too much, and `children` or `doctor` do it.
pub(crate) const OPEN_RECONCILE_MAX_CHILDREN: usize = 64;

/// Whether image `id` has a clone map object.
pub(crate) fn has_clone_map(md: &IoCtx, id: &str) -> Result<bool> {
    match md.stat(&clone_map_object(id)) {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a clone map with header `hdr` (`None`: the image is gone) is an orphan: nothing
/// maintains it once the image is removed or no longer has a parent (flattened).
pub(crate) fn clone_map_is_orphan(hdr: Option<&ImageHeader>) -> bool {
    hdr.is_none_or(|h| h.parent.is_none())
}

/// Removes image `id`'s clone map when it is an orphan; says so in one line.
pub(crate) fn drop_orphan_clone_map(md: &IoCtx, id: &str, hdr: Option<&ImageHeader>) -> Result<Option<String>> {
    if !clone_map_is_orphan(hdr) || !has_clone_map(md, id)? {
        return Ok(None);
    }
    clone_map::remove(md, id)?;
    let why = if hdr.is_none() { "image removed" } else { "image flattened" };
    Ok(Some(format!("removed orphan clone map {} ({why} outside rbd-ext)", clone_map_object(id))))
}

/// The clone-map entries to rewrite because the stock object map says the object exists
/// while the clone map still says it does not (a stock client wrote or copied it up):
/// `(start, count, from, to)` runs, in the form `clone_map_update` takes.
pub(crate) fn copied_by_stock(clone_map: &[CloneMapState], object_map: &[u8]) -> Vec<(u64, u64, CloneMapState, CloneMapState)> {
    use stock::object_map_state as om;
    let mut runs: Vec<(u64, u64, CloneMapState, CloneMapState)> = Vec::new();
    for (n, (cm, o)) in clone_map.iter().zip(object_map).enumerate() {
        let exists = *o == om::EXISTS || *o == om::EXISTS_CLEAN;
        let to = match cm {
            CloneMapState::ExistsParent if exists => CloneMapState::CopiedUp,
            CloneMapState::NonExistent if exists => CloneMapState::Exists,
            _ => continue,
        };
        match runs.last_mut() {
            Some((s, c, f, t)) if *s + *c == n as u64 && f == cm && *t == to => *c += 1,
            _ => runs.push((n as u64, 1, *cm, to)),
        }
    }
    runs
}

/// Brings `states` (the clone map of the image at `loc`) up to date with the stock object
/// map: entries for objects a stock client created become COPIEDUP (or EXISTS). Each run
/// is a compare-and-set, so a concurrent rbd-ext writer's transition is never overwritten.
/// Returns how many entries changed. Images without the object-map feature are left to
/// `clone-map check`, which looks at the objects themselves.
pub(crate) fn annotate_from_object_map(loc: &ImageLocation, hdr: &ImageHeader, states: &mut [CloneMapState], object_map: Option<&[u8]>) -> Result<u64> {
    if !hdr.has(features::OBJECT_MAP) {
        return Ok(0);
    }
    let loaded;
    let om = match object_map {
        Some(m) => m,
        None => {
            let out = match loc.md.exec(&object_map_oid(&loc.id), &stock::object_map_load()) {
                Ok(o) => o,
                Err(e) if e.is_not_found() => return Ok(0),
                Err(e) => return Err(e),
            };
            loaded = stock::decode_object_map(&out).map_err(|e| Error::new(e, format!("object {}: object map", object_map_oid(&loc.id))))?;
            &loaded
        }
    };
    let mut changed = 0;
    for (start, count, from, to) in copied_by_stock(states, om) {
        loc.md.exec_write(&clone_map_object(&loc.id), &stubs::clone_map_update(start, count, to, Some(from)))?;
        for s in &mut states[start as usize..(start + count) as usize] {
            *s = to;
        }
        changed += count;
    }
    Ok(changed)
}

/// What rbd-ext reconciles when it opens an image, best effort (a read-only user may not be
/// allowed to fix anything; the open must not fail for that): the image's own orphan
/// clone map, and for a parent with at most [`OPEN_RECONCILE_MAX_CHILDREN`] children, its
/// stale children entries. One line per repair.
pub(crate) fn on_open(cluster: &Arc<Cluster>, loc: &ImageLocation, hdr: &ImageHeader) -> Vec<String> {
    let mut notes = Vec::new();
    if hdr.parent.is_none() {
        if let Ok(Some(n)) = drop_orphan_clone_map(&loc.md, &loc.id, Some(hdr)) {
            notes.push(n);
        }
    }
    // A parent protected by its children: NON_PRIMARY under the strict protection, MIGRATING
    // under the clones one (README, "Parent protection").
    if hdr.has(features::NON_PRIMARY) || hdr.has(features::MIGRATING) {
        if let Ok(r) = crate::manage::reconcile_children(cluster, loc, OPEN_RECONCILE_MAX_CHILDREN) {
            notes.extend(r);
        }
    }
    notes
}

/// Everything rbd-ext can reconcile on one image, for `info` and the like: its orphan clone
/// map, its stale children entries (which also lifts a protection left by the last one),
/// and its clone-map entries for objects a stock client copied up. One line per repair.
///
/// Async: the librados round trips run on Tokio's blocking pool; a caller without a runtime
/// uses [`crate::blocking::reconcile`].
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// for note in rbd_ext::reconcile(&cluster, &"vms/vm1".parse()?).await? {
///     eprintln!("{note}");
/// }
/// # Ok(()) }
/// ```
pub async fn reconcile(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<Vec<String>> {
    let (cluster, spec) = (cluster.clone(), spec.clone());
    crate::task::offload(move || reconcile_blocking(&cluster, &spec)).await
}

/// Everything rbd-ext can reconcile on one image, for `info` and the like: its orphan clone
/// map, its stale children entries (which also lifts a protection left by the last one),
/// and its clone-map entries for objects a stock client copied up. One line per repair.
///
/// Blocking: never call it from async code (use [`reconcile`] there).
pub fn reconcile_blocking(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<Vec<String>> {
    let (loc, hdr) = header::locate(cluster, spec)?;
    let mut notes = Vec::new();
    if let Some(n) = drop_orphan_clone_map(&loc.md, &loc.id, Some(&hdr)).map_err(|e| e.context(format_args!("image {spec}")))? {
        notes.push(n);
    }
    notes.extend(crate::manage::reconcile_children(cluster, &loc, usize::MAX)?);
    if hdr.parent.is_some() {
        if let Some(mut states) = clone_map::load(&loc.md, &loc.id)? {
            let n = annotate_from_object_map(&loc, &hdr, &mut states, None).map_err(|e| e.context(format_args!("image {spec}: clone map")))?;
            if n > 0 {
                notes.push(format!("clone map: {n} object(s) written by a stock client now counted as copied up"));
            }
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stock::object_map_state as om;
    use CloneMapState::*;

    #[test]
    fn stock_copies_become_copied_up_in_runs() {
        let cm = [ExistsParent, ExistsParent, ExistsParent, NonExistent, CopiedUp, Pending, ExistsParent];
        let om = [om::EXISTS, om::EXISTS_CLEAN, om::NONEXISTENT, om::EXISTS, om::EXISTS, om::EXISTS, om::PENDING];
        assert_eq!(copied_by_stock(&cm, &om), [(0, 2, ExistsParent, CopiedUp), (3, 1, NonExistent, Exists)]);
        assert!(copied_by_stock(&cm, &[]).is_empty());
    }

    #[test]
    fn orphans_are_maps_without_a_parent() {
        assert!(clone_map_is_orphan(None));
        let h = ImageHeader {
            id: "i".into(),
            size: 0,
            order: 22,
            features: 0,
            object_prefix: String::new(),
            data_pool_id: -1,
            stripe_unit: 0,
            stripe_count: 1,
            parent: None,
            snapc: Default::default(),
            snap_guard: None,
            snap_overlaps: Vec::new(),
        };
        assert!(clone_map_is_orphan(Some(&h)));
        let with_parent = ImageHeader { parent: Some(Default::default()), ..h };
        assert!(!clone_map_is_orphan(Some(&with_parent)));
    }
}

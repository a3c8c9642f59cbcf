//! Reading an image's identity and header: name → id, size, layout, features, parent.

use rbd_ext_cls::codec::{Codec, SnapId};
use rbd_ext_cls::stubs::{self, stock};
use rbd_ext_cls::types::header::{RBD_EXT_SNAP_GUARD, SNAPSHOT_PREFIX};
use rbd_ext_cls::types::{ParentRecord, ParentType, SnapContext, SnapshotRecord};

/// Snapshot records read with a header (RBD's own limit of snapshots per image is 510, so
/// one page holds them all).
const SNAPSHOTS_READ: u64 = 1024;

use crate::error::{Errno, Error, Result};
use crate::rados::{Cluster, IoCtx, ReadOp, ReadStep, StepOut};
use crate::spec::ImageSpec;

use std::sync::Arc;

/// `RBD_FEATURE_*` bits rbd-ext looks at (from `rbd/features.h`).
pub mod features {
    /// Layering (clones).
    pub const LAYERING: u64 = 1 << 0;
    /// Fancy striping.
    pub const STRIPINGV2: u64 = 1 << 1;
    /// Exclusive lock.
    pub const EXCLUSIVE_LOCK: u64 = 1 << 2;
    /// Object map.
    pub const OBJECT_MAP: u64 = 1 << 3;
    /// Fast diff.
    pub const FAST_DIFF: u64 = 1 << 4;
    /// Deep flatten.
    pub const DEEP_FLATTEN: u64 = 1 << 5;
    /// Journaling.
    pub const JOURNALING: u64 = 1 << 6;
    /// Separate data pool.
    pub const DATA_POOL: u64 = 1 << 7;
    /// Op features present.
    pub const OPERATIONS: u64 = 1 << 8;
    /// Migrating; set by rbd-ext (with a source migration header) on parents under the
    /// default (clones) protection.
    pub const MIGRATING: u64 = 1 << 9;
    /// Non-primary (mirroring); set by rbd-ext on parents under the strict protection.
    pub const NON_PRIMARY: u64 = 1 << 10;

    use crate::error::{Errno, Error, Result};

    /// `RBD_FEATURE_*` names as `rbd` prints and accepts them, in bit order.
    pub const NAMES: &[(&str, u64)] = &[
        ("layering", LAYERING),
        ("striping", STRIPINGV2),
        ("exclusive-lock", EXCLUSIVE_LOCK),
        ("object-map", OBJECT_MAP),
        ("fast-diff", FAST_DIFF),
        ("deep-flatten", DEEP_FLATTEN),
        ("journaling", JOURNALING),
        ("data-pool", DATA_POOL),
        ("operations", OPERATIONS),
        ("migrating", MIGRATING),
        ("non-primary", NON_PRIMARY),
        ("dirty-cache", 1 << 11),
    ];

    /// Features a caller may ask for on a new image. Journaling is left out on purpose:
    /// rbd-ext cannot write journaled images, so it must not create them; `operations` and
    /// `non-primary` are internal bits (rbd-ext sets them to protect parents).
    pub const SETTABLE: &[&str] = &["layering", "striping", "exclusive-lock", "object-map", "fast-diff", "deep-flatten", "data-pool"];

    /// Feature names for display, in bit order; unknown bits as `unknown(0x...)`.
    ///
    /// ```
    /// use rbd_ext::header::features;
    /// assert_eq!(features::names(features::LAYERING | features::EXCLUSIVE_LOCK), ["layering", "exclusive-lock"]);
    /// ```
    pub fn names(bits: u64) -> Vec<String> {
        let mut names = Vec::new();
        let mut known = 0;
        for (name, bit) in NAMES {
            known |= bit;
            if bits & bit != 0 {
                names.push((*name).to_string());
            }
        }
        if bits & !known != 0 {
            names.push(format!("unknown(0x{:x})", bits & !known));
        }
        names
    }

    /// The bit of a settable feature name (`object-map`); EINVAL for an unknown name or
    /// one that cannot be set (see [`SETTABLE`]).
    ///
    /// ```
    /// use rbd_ext::header::features;
    /// assert_eq!(features::parse("object-map").unwrap(), features::OBJECT_MAP);
    /// assert!(features::parse("journaling").is_err());
    /// ```
    pub fn parse(name: &str) -> Result<u64> {
        let s = name.trim();
        match NAMES.iter().find(|(n, _)| *n == s) {
            Some((n, bit)) if SETTABLE.contains(n) => Ok(*bit),
            Some(_) => Err(Error::new(Errno::EINVAL, format!("feature '{s}' cannot be set with rbd-ext (settable: {})", SETTABLE.join(", ")))),
            None => Err(Error::new(Errno::EINVAL, format!("unknown feature '{s}' (settable: {})", SETTABLE.join(", ")))),
        }
    }

    /// Checks that every requested feature has the features it needs (librbd refuses the
    /// others with a bare EINVAL); EINVAL naming the missing dependency.
    ///
    /// ```
    /// use rbd_ext::header::features;
    /// assert!(features::check(features::OBJECT_MAP).is_err());
    /// features::check(features::OBJECT_MAP | features::EXCLUSIVE_LOCK).unwrap();
    /// ```
    pub fn check(bits: u64) -> Result<()> {
        let needs = [(OBJECT_MAP, EXCLUSIVE_LOCK, "object-map requires exclusive-lock"), (FAST_DIFF, OBJECT_MAP, "fast-diff requires object-map")];
        for (feature, dep, why) in needs {
            if bits & feature != 0 && bits & dep == 0 {
                return Err(Error::new(Errno::EINVAL, why.to_string()));
            }
        }
        Ok(())
    }

    /// Op-feature names as `rbd info` prints them; bits stock does not know (rbd-ext's
    /// protection bit) are left out, as stock leaves them out.
    pub fn op_feature_names(bits: u64) -> Vec<&'static str> {
        const OP_NAMES: [(&str, u64); 4] = [("clone-parent", 1), ("clone-child", 2), ("group", 4), ("snap-trash", 8)];
        OP_NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| *n).collect()
    }

    /// Image flag names as `rbd info` prints them.
    pub fn flag_names(bits: u64) -> Vec<&'static str> {
        const FLAG_NAMES: [(&str, u64); 2] = [("object map invalid", 1), ("fast diff invalid", 2)];
        FLAG_NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| *n).collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_as_stock() {
            assert_eq!(names(1 | 4 | 8), ["layering", "exclusive-lock", "object-map"]);
            assert_eq!(names(1 << 20), ["unknown(0x100000)"]);
            assert_eq!(op_feature_names(1 | 8 | (1 << 20)), ["clone-parent", "snap-trash"]);
            assert_eq!(flag_names(3), ["object map invalid", "fast diff invalid"]);
            assert_eq!(parse("object-map").unwrap(), OBJECT_MAP);
            assert!(parse("journaling").unwrap_err().what().contains("cannot be set"));
            assert!(parse("bogus").unwrap_err().what().contains("unknown feature"));
            assert_eq!(check(EXCLUSIVE_LOCK | FAST_DIFF).unwrap_err().what(), "fast-diff requires object-map");
            check(LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF).unwrap();
        }
    }
}

/// Name of the header object of image `id`.
pub fn header_oid(id: &str) -> String {
    format!("rbd_header.{id}")
}

/// Name of the id object of image `name`.
pub fn id_oid(name: &str) -> String {
    format!("rbd_id.{name}")
}

/// Name of the stock object map of image `id` (HEAD).
pub fn object_map_oid(id: &str) -> String {
    format!("rbd_object_map.{id}")
}

/// Everything rbd-ext needs from an image's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHeader {
    /// Image id.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Object size exponent.
    pub order: u8,
    /// Feature bits.
    pub features: u64,
    /// Data object prefix (`rbd_data.<id>` or `rbd_data.<pool>.<id>`).
    pub object_prefix: String,
    /// Data pool id, -1 when data lives in the image's pool.
    pub data_pool_id: i64,
    /// Stripe unit (bytes).
    pub stripe_unit: u64,
    /// Stripe count.
    pub stripe_count: u64,
    /// The parent record, when the image is a clone.
    pub parent: Option<ParentRecord>,
    /// The snapshot context every data-object write must carry (so stock snapshots are
    /// preserved by the OSD cloning objects before they are overwritten).
    pub snapc: SnapContext,
    /// The id of the guard snapshot of a standalone child (`snapshot.rs`): size 0, it
    /// preserves nothing.
    pub snap_guard: Option<u64>,
    /// (snapshot id, parent overlap) of each snapshot that reads the parent, oldest first:
    /// a copy-up marks the object in their object maps, as librbd's deep copy-up does.
    pub snap_overlaps: Vec<(u64, u64)>,
}

impl ImageHeader {
    /// Object size in bytes.
    pub fn object_size(&self) -> u64 {
        1u64 << self.order
    }

    /// Number of data objects for the current size.
    pub fn object_count(&self) -> u64 {
        self.size.div_ceil(self.object_size())
    }

    /// Name of data object `n` (`%s.%016llx`).
    pub fn data_oid(&self, n: u64) -> String {
        format!("{}.{n:016x}", self.object_prefix)
    }

    /// Whether the feature bit(s) are set.
    pub fn has(&self, f: u64) -> bool {
        self.features & f == f
    }

    /// Whether the image has snapshots that hold data (any but the guard snapshot): then a
    /// copy-up goes first alone, as librbd's, so those snapshots keep the parent's data.
    pub fn has_data_snapshots(&self) -> bool {
        self.snapc.snaps.iter().any(|s| Some(s.0) != self.snap_guard)
    }

    /// Bytes of this image backed by the parent (0 when not a clone).
    pub fn overlap(&self) -> u64 {
        self.parent.as_ref().and_then(|p| p.head_overlap).unwrap_or(0)
    }
}

/// Where an image lives: its spec, id, metadata and data I/O contexts.
#[derive(Debug, Clone)]
pub struct ImageLocation {
    /// As the user named it.
    pub spec: ImageSpec,
    /// Image id.
    pub id: String,
    /// Pool/namespace of the header.
    pub md: IoCtx,
    /// Pool/namespace of the data objects.
    pub data: IoCtx,
}

/// Resolves `spec` to its id (`rbd_id.<name>`).
pub fn lookup_id(md: &IoCtx, spec: &ImageSpec) -> Result<String> {
    let out = md.exec(&id_oid(&spec.image), &stock::get_id()).map_err(|e| {
        if e.is_not_found() {
            Error::new(Errno::ENOENT, format!("image {spec} does not exist"))
        } else {
            e.context(format_args!("image {spec}"))
        }
    })?;
    stubs::decode_reply::<String>(&out).map_err(|e| Error::new(e, format!("image {spec}: id object")))
}

/// Resolves an image id to its name (`rbd_directory`).
pub fn lookup_name(md: &IoCtx, id: &str) -> Result<String> {
    let out = md.exec("rbd_directory", &stock::dir_get_name(id))?;
    stubs::decode_reply::<String>(&out).map_err(|e| Error::new(e, format!("rbd_directory: name of {id}")))
}

/// Opens the I/O contexts of `spec` (pool must exist).
pub fn md_ioctx(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<IoCtx> {
    cluster.ioctx(&spec.pool, &spec.namespace).map_err(|e| {
        if e.is_not_found() {
            Error::new(Errno::ENOENT, format!("pool {} does not exist (image {spec})", spec.pool))
        } else {
            e
        }
    })
}

/// Reads the header of image `id`, snapshot context included, in one RADOS read op (plus
/// one for fancy striping).
pub fn read_header(md: &IoCtx, id: &str) -> Result<ImageHeader> {
    let oid = header_oid(id);
    let op = ReadOp::default()
        .exec(&stock::get_size(SnapId::NOSNAP))
        .exec(&stock::get_object_prefix())
        .exec(&stock::get_features(SnapId::NOSNAP, false))
        .exec(&stock::get_data_pool())
        .exec(&stubs::parent_get())
        .exec(&stock::get_snapcontext());
    let mut op = op;
    op.steps.push(ReadStep::OmapGetByKeys(vec![RBD_EXT_SNAP_GUARD.to_string()]));
    op.steps.push(ReadStep::OmapGetVals { start_after: String::new(), prefix: SNAPSHOT_PREFIX.to_string(), max: SNAPSHOTS_READ });
    let r = md.operate_read(&oid, &op, 0)?;
    if r.rc < 0 {
        return Err(Error::new(Errno(-r.rc), format!("object {oid}: read image header")));
    }
    let mut steps = r.steps;
    let snapshots = match steps.pop() {
        Some((_, StepOut::Omap(kv, _))) => kv,
        _ => Vec::new(),
    };
    let outs: Vec<Vec<u8>> = steps
        .into_iter()
        .map(|(_, o)| match o {
            StepOut::Data(d) => d,
            StepOut::Omap(kv, _) => kv.into_iter().next().map(|(_, v)| v).unwrap_or_default(),
            _ => Vec::new(),
        })
        .collect();
    let bad = |e: Errno, what: &str| Error::new(e, format!("object {oid}: {what}"));
    let (order, size) = stock::reply(&outs[0], |r| Ok((u8::read(r)?, u64::read(r)?))).map_err(|e| bad(e, "get_size reply"))?;
    let object_prefix = stubs::decode_reply::<String>(&outs[1]).map_err(|e| bad(e, "object prefix"))?;
    let features = stock::reply(&outs[2], u64::read).map_err(|e| bad(e, "features"))?;
    let data_pool_id = stock::reply(&outs[3], i64::read).map_err(|e| bad(e, "data pool"))?;
    let parent = stubs::decode_reply::<ParentRecord>(&outs[4]).map_err(|e| bad(e, "parent record"))?;
    let snapc = stubs::decode_reply::<SnapContext>(&outs[5]).map_err(|e| bad(e, "snap context"))?;
    if !snapc.is_valid() {
        // As librbd's refresh: writing with it would damage the snapshots.
        return Err(bad(Errno::EIO, &format!("invalid snap context {snapc:?}")));
    }
    let (mut stripe_unit, mut stripe_count) = (1u64 << order, 1u64);
    if features & features::STRIPINGV2 != 0 {
        let out = md.exec(&oid, &stock::get_stripe_unit_count())?;
        (stripe_unit, stripe_count) = stock::reply(&out, |r| Ok((u64::read(r)?, u64::read(r)?))).map_err(|e| bad(e, "striping"))?;
    }
    Ok(ImageHeader {
        id: id.to_string(),
        size,
        order,
        features,
        object_prefix,
        data_pool_id,
        stripe_unit,
        stripe_count,
        // An S3 source record names no image (pool -1, no id) but is a parent all the same:
        // it makes the image S3-backed.
        parent: (parent.exists() || parent.parent_type == ParentType::S3Source).then_some(parent),
        snapc,
        snap_guard: (outs[6].len() == 8).then(|| u64::from_le_bytes(outs[6][..8].try_into().expect("8 bytes"))),
        // A record in the pre-Nautilus form (never one of a standalone child) reads no
        // overlap here: this list only adds object-map marks.
        snap_overlaps: snapshots.iter().filter_map(|(_, v)| SnapshotRecord::read_bytes(v).ok()).filter_map(|s| s.parent_overlap.map(|o| (s.id.0, o))).collect(),
    })
}

/// Resolves `spec` and opens its I/O contexts; returns the location and header.
pub fn locate(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Result<(ImageLocation, ImageHeader)> {
    let md = md_ioctx(cluster, spec)?;
    let id = lookup_id(&md, spec)?;
    let header = read_header(&md, &id).map_err(|e| e.context(format_args!("image {spec}")))?;
    let data = if header.data_pool_id >= 0 { cluster.ioctx_by_id(header.data_pool_id, &spec.namespace)? } else { md.clone() };
    Ok((ImageLocation { spec: spec.clone(), id, md, data }, header))
}

/// The header keys `rbd info` shows beyond the layout: op features, flags, timestamps and
/// the snapshot count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMeta {
    /// `op_features` (0 when absent).
    pub op_features: u64,
    /// `flags` of HEAD (0 when absent).
    pub flags: u64,
    /// `create_timestamp`, `access_timestamp`, `modify_timestamp` in seconds since the epoch
    /// (`None` when absent or zero, as `rbd info` then omits them).
    pub timestamps: [Option<u64>; 3],
    /// `snapshot_*` keys.
    pub snapshot_count: u64,
    /// `snap_limit`, when set (1 on a standalone child: its snapshot guard).
    pub snapshot_limit: Option<u64>,
}

/// Reads [`HeaderMeta`] of image `id` from its header's omap.
pub fn read_meta(md: &IoCtx, id: &str) -> Result<HeaderMeta> {
    let oid = header_oid(id);
    let mut m = HeaderMeta::default();
    let u64_of = |k: &str, v: &[u8]| -> Result<u64> {
        let b: [u8; 8] = v.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| Error::new(Errno::EIO, format!("object {oid}: corrupt {k}")))?;
        Ok(u64::from_le_bytes(b))
    };
    for (k, v) in md.omap_list(&oid, "")? {
        match k.as_str() {
            "op_features" => m.op_features = u64_of(&k, &v)?,
            "flags" => m.flags = u64_of(&k, &v)?,
            // utime_t: u32 seconds, u32 nanoseconds.
            "create_timestamp" | "access_timestamp" | "modify_timestamp" => {
                let i = ["create_timestamp", "access_timestamp", "modify_timestamp"].iter().position(|n| *n == k).unwrap_or(0);
                let secs = u64_of(&k, &v)? & 0xffff_ffff;
                m.timestamps[i] = (secs != 0).then_some(secs);
            }
            "snap_limit" => m.snapshot_limit = Some(u64_of(&k, &v)?),
            _ if k.starts_with("snapshot_") => m.snapshot_count += 1,
            _ => {}
        }
    }
    Ok(m)
}

/// The name of snapshot `snap_id` of image `id` (`None` if it has none by that id).
pub fn snapshot_name(md: &IoCtx, id: &str, snap_id: u64) -> Result<Option<String>> {
    let Some(v) = md.omap_get(&header_oid(id), &format!("snapshot_{snap_id:016x}"))? else {
        return Ok(None);
    };
    // cls_rbd_snap: ENCODE_START header (u8 v, u8 compat, u32 len), u64 id, string name.
    let mut r = rbd_ext_cls::codec::Reader::new(v.get(6..).unwrap_or_default());
    let name = u64::read(&mut r).and_then(|_| String::read(&mut r));
    Ok(name.ok())
}

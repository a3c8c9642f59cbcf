//! `info IMAGE`: what `rbd info` shows, with stock's keys, names and meanings (so the JSON
//! is a drop-in for scripts reading `rbd info --format json`), plus rbd-ext's own extra
//! keys: the parent's type (`parent.type`, `parent.remote`), the clone map's counts per
//! state (`clone_map`) and whether standalone children protect the image (`protection`).
//!
//! Timestamps are printed as stock prints them (ctime format) but in UTC, where stock uses
//! the local time zone.

use std::io::Write;

use rbd_ext_cls::types::{ParentRecord, ParentType};
use serde_json::{json, Map, Value};

use rbd_ext::header::{features, HeaderMeta, ImageHeader};
use rbd_ext_cls::codec::SnapId;
use rbd_ext::{Errno, Image, ImageSpec, OpenOptions};

use super::{feature_names, human_size, io_err, note, CmdResult, Ctx};
use crate::cli::ImageArg;

/// What `info` prints, gathered before printing so that plain and JSON say the same.
struct Facts {
    spec: ImageSpec,
    id: String,
    header: ImageHeader,
    data_pool: Option<String>,
    /// The parent as named by the child's record (`None` if not a clone); the name may be
    /// the parent's id when the parent could not be opened.
    parent: Option<ImageSpec>,
    /// Counts per clone-map state, and the map's length; `None` when it has no clone map.
    clone_map: Option<(u64, Vec<(rbd_ext::clone_map::State, u64)>)>,
    /// Op features, flags, timestamps, snapshot count.
    meta: HeaderMeta,
    /// The parent's snapshot name (stock snapshot clones) and whether it is in the trash.
    parent_snapshot: String,
    parent_trash: bool,
    /// Whether the image carries rbd-ext's parent protection, and the children entries
    /// (here, in other clusters) that hold it.
    protection: Option<(usize, usize, &'static str)>,
}

/// Prints the image's facts.
pub async fn run(ctx: &Ctx, a: ImageArg) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    // Repair what stock tools left behind first, so the facts are current; best effort (a
    // read-only user may not fix anything, and still gets the facts).
    for n in rbd_ext::reconcile(&ctx.cluster, &spec).unwrap_or_default() {
        note(&format!("image {spec}: {n}"));
    }
    let facts = gather(ctx, &spec)?;
    if ctx.json() {
        ctx.print_json(&to_json(&facts))
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(to_plain(&facts).as_bytes()).map_err(|e| io_err(e, "write to stdout"))?;
        Ok(())
    }
}

fn gather(ctx: &Ctx, spec: &ImageSpec) -> CmdResult<Facts> {
    // Opening read-only resolves the parent's name through its own pool's directory. A parent
    // this build cannot open (remote, S3) must not hide the child's facts: fall back to the
    // header alone and name the parent by pool and id.
    let (loc, header, parent) = match Image::open(&ctx.cluster, spec, OpenOptions::default()) {
        Ok(image) => {
            let info = image.info();
            (image.location().clone(), info.header, info.parent)
        }
        Err(e) if e.errno() == Errno::EOPNOTSUPP => {
            let (loc, header) = rbd_ext::header::locate(&ctx.cluster, spec)?;
            let parent = header.parent.as_ref().map(|p| {
                // A foreign parent's pool id is another cluster's (or none): show the ids.
                let local = (!p.is_foreign()).then(|| ctx.cluster.ioctx_by_id(p.pool_id, &p.pool_namespace).ok()).flatten();
                ImageSpec {
                    pool: local.as_ref().map_or_else(|| p.pool_id.to_string(), |io| io.pool().to_string()),
                    namespace: p.pool_namespace.clone(),
                    image: local
                        .as_ref()
                        .and_then(|io| rbd_ext::header::lookup_name(io, &p.image_id).ok())
                        .unwrap_or_else(|| p.image_id.clone()),
                    snap: None,
                }
            });
            (loc, header, parent)
        }
        Err(e) => return Err(e.into()),
    };
    let data_pool = if header.data_pool_id >= 0 { Some(ctx.cluster.pool_reverse_lookup(header.data_pool_id)?) } else { None };
    let clone_map = rbd_ext::clone_map::load(&loc.md, &loc.id)
        .map_err(|e| e.context(format_args!("image {spec}: clone map")))?
        .map(|states| (states.len() as u64, rbd_ext::clone_map::summary(&states)));
    let meta = rbd_ext::header::read_meta(&loc.md, &loc.id).map_err(|e| e.context(format_args!("image {spec}")))?;
    let (parent_snapshot, parent_trash) = match &header.parent {
        Some(rec) if !rec.is_foreign() => parent_extras(ctx, rec),
        _ => (String::new(), false),
    };
    // The class's protection record says whether (and how) children protect the image, in
    // either mode (the feature bits differ between `clones` and `strict`).
    let protection = match rbd_ext::protection(&ctx.cluster, spec)? {
        Some(p) => {
            let (here, remote) = rbd_ext::child_entries(&loc.md, &loc.id).map_err(|e| e.context(format_args!("image {spec}: children")))?;
            Some((here, remote, p.applied().name()))
        }
        None => None,
    };
    Ok(Facts { spec: spec.clone(), id: loc.id.clone(), header, data_pool, parent, clone_map, meta, parent_snapshot, parent_trash, protection })
}

/// The parent's snapshot name ("" for HEAD, as stock) and whether the parent is in the
/// trash; best effort (a parent that cannot be read shows neither).
fn parent_extras(ctx: &Ctx, rec: &ParentRecord) -> (String, bool) {
    let Ok(md) = ctx.cluster.ioctx_by_id(rec.pool_id, &rec.pool_namespace) else { return (String::new(), false) };
    let snapshot = match rec.snap_id {
        SnapId::NOSNAP => String::new(),
        SnapId(id) => rbd_ext::header::snapshot_name(&md, &rec.image_id, id).ok().flatten().unwrap_or_default(),
    };
    let trash = md.omap_get("rbd_trash", &format!("id_{}", rec.image_id)).ok().flatten().is_some();
    (snapshot, trash)
}

fn to_plain(f: &Facts) -> String {
    let h = &f.header;
    let mut s = format!("rbd image '{}':\n", f.spec.image);
    let mut line = |l: String| {
        s.push('\t');
        s.push_str(&l);
        s.push('\n');
    };
    // Stock's lines in stock's order, then ours.
    line(format!("size {} in {} objects", human_size(h.size), h.object_count()));
    line(format!("order {} ({} objects)", h.order, human_size(h.object_size())));
    line(format!("snapshot_count: {}", f.meta.snapshot_count));
    line(format!("id: {}", f.id));
    if let Some(p) = &f.data_pool {
        line(format!("data_pool: {p}"));
    }
    line(format!("block_name_prefix: {}", h.object_prefix));
    line("format: 2".into());
    line(format!("features: {}", feature_names(h.features).join(", ")));
    line(format!("op_features: {}", op_feature_names(f.meta.op_features).join(", ")));
    line(format!("flags: {}", flag_names(f.meta.flags).join(", ")));
    for (name, t) in TIMESTAMPS.iter().zip(f.meta.timestamps) {
        if let Some(t) = t {
            line(format!("{name}: {}", ctime_utc(t)));
        }
    }
    if let (Some(rec), Some(p)) = (&h.parent, &f.parent) {
        // `pool/[ns/]image@`: the trailing `@` with no snapshot is how stock `rbd info`
        // shows a HEAD parent.
        let trash = if f.parent_trash { " (trash)" } else { "" };
        line(format!("parent: {p}@{}{trash}", f.parent_snapshot));
        line(format!("overlap: {}", human_size(h.overlap())));
        line(format!("parent type: {}", rec.parent_type.as_str()));
        if rec.parent_type == ParentType::RemoteStandalone {
            // The key reference is not the key, but it is not needed to identify the parent.
            line(format!("parent cluster: {} (monitors {}, as {})", rec.remote_cluster_name, rec.remote_mon_hosts.join(","), rec.remote_client_name));
        }
    }
    if h.has(features::STRIPINGV2) {
        line(format!("stripe unit: {}", human_size(h.stripe_unit)));
        line(format!("stripe count: {}", h.stripe_count));
    }
    if let Some((n, counts)) = &f.clone_map {
        let list: Vec<String> = counts.iter().map(|(state, c)| format!("{c} {state}")).collect();
        line(format!("clone map: {n} objects: {}", list.join(", ")));
    }
    if let Some((here, remote, mode)) = f.protection {
        let remote = if remote > 0 { format!(" and {remote} in other clusters") } else { String::new() };
        line(format!("protected: by {here} standalone children{remote}, protection {mode} (stock tools cannot write, shrink, roll back or remove it)"));
    }
    s
}

fn to_json(f: &Facts) -> Value {
    let h = &f.header;
    let mut m = Map::new();
    // Stock's keys, names and meanings (rbd/action/Info.cc).
    m.insert("name".into(), json!(f.spec.image));
    m.insert("id".into(), json!(f.id));
    m.insert("size".into(), json!(h.size));
    m.insert("objects".into(), json!(h.object_count()));
    m.insert("order".into(), json!(h.order));
    m.insert("object_size".into(), json!(h.object_size()));
    m.insert("snapshot_count".into(), json!(f.meta.snapshot_count));
    if let Some(p) = &f.data_pool {
        m.insert("data_pool".into(), json!(p));
    }
    m.insert("block_name_prefix".into(), json!(h.object_prefix));
    m.insert("format".into(), json!(2));
    m.insert("features".into(), json!(feature_names(h.features)));
    m.insert("op_features".into(), json!(op_feature_names(f.meta.op_features)));
    m.insert("flags".into(), json!(flag_names(f.meta.flags)));
    for (name, t) in TIMESTAMPS.iter().zip(f.meta.timestamps) {
        if let Some(t) = t {
            m.insert((*name).into(), json!(ctime_utc(t)));
        }
    }
    if let (Some(rec), Some(p)) = (&h.parent, &f.parent) {
        let mut pm = Map::new();
        pm.insert("pool".into(), json!(p.pool));
        pm.insert("pool_namespace".into(), json!(p.namespace));
        pm.insert("image".into(), json!(p.image));
        pm.insert("id".into(), json!(rec.image_id));
        pm.insert("snapshot".into(), json!(f.parent_snapshot));
        pm.insert("trash".into(), json!(f.parent_trash));
        pm.insert("overlap".into(), json!(h.overlap()));
        // Ours.
        pm.insert("type".into(), json!(rec.parent_type.as_str()));
        if rec.parent_type == ParentType::RemoteStandalone {
            pm.insert(
                "remote".into(),
                json!({ "cluster": rec.remote_cluster_name, "mon_hosts": rec.remote_mon_hosts, "client": rec.remote_client_name }),
            );
        }
        m.insert("parent".into(), Value::Object(pm));
    }
    if h.has(features::STRIPINGV2) {
        m.insert("stripe_unit".into(), json!(h.stripe_unit));
        m.insert("stripe_count".into(), json!(h.stripe_count));
    }
    // Ours.
    m.insert("pool".into(), json!(f.spec.pool));
    m.insert("namespace".into(), json!(f.spec.namespace));
    if let Some((n, counts)) = &f.clone_map {
        let states: Map<String, Value> = counts.iter().map(|(s, c)| (s.to_string(), json!(c))).collect();
        m.insert("clone_map".into(), json!({ "objects": n, "states": states }));
    }
    m.insert(
        "protection".into(),
        match f.protection {
            Some((here, remote, mode)) => json!({ "protected": true, "mode": mode, "children": here, "remote_children": remote }),
            None => json!({ "protected": false }),
        },
    );
    Value::Object(m)
}

/// The header's timestamp keys, as `rbd info` names them.
const TIMESTAMPS: [&str; 3] = ["create_timestamp", "access_timestamp", "modify_timestamp"];

/// Op-feature names as `rbd info` prints them; bits stock does not know (rbd-ext's
/// protection bit) are left out, as stock leaves them out.
fn op_feature_names(bits: u64) -> Vec<&'static str> {
    const NAMES: [(&str, u64); 4] = [("clone-parent", 1), ("clone-child", 2), ("group", 4), ("snap-trash", 8)];
    NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| *n).collect()
}

/// Image flag names as `rbd info` prints them.
fn flag_names(bits: u64) -> Vec<&'static str> {
    const NAMES: [(&str, u64); 2] = [("object map invalid", 1), ("fast diff invalid", 2)];
    NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| *n).collect()
}

/// `ctime(3)` without its newline ("Wed Dec  2 06:07:42 2026"), in UTC.
fn ctime_utc(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:>2} {:02}:{:02}:{:02} {year}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_format() {
        assert_eq!(ctime_utc(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime_utc(1_796_191_662), "Wed Dec  2 06:07:42 2026");
        assert_eq!(ctime_utc(951_782_400), "Tue Feb 29 00:00:00 2000");
    }

    #[test]
    fn names_as_stock() {
        assert_eq!(op_feature_names(1 | 8 | (1 << 20)), ["clone-parent", "snap-trash"]);
        assert_eq!(flag_names(3), ["object map invalid", "fast diff invalid"]);
    }
}

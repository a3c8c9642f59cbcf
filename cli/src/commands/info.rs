//! `info IMAGE`: what `rbd info` shows, with stock's keys, names and meanings (so the JSON
//! is a drop-in for scripts reading `rbd info --format json`), plus rbd-ext's own extra
//! keys: the parent's type (`parent.type`, `parent.remote`), the clone map's counts per
//! state (`clone_map`) and whether standalone children protect the image (`protection`).
//!
//! Timestamps are printed as stock prints them (ctime format) but in UTC, where stock uses
//! the local time zone.

use std::io::Write;

use rbd_ext::header::features::{self, flag_names, op_feature_names};
use rbd_ext::{ImageDetails, ParentType};
use serde_json::{json, Map, Value};

use super::{feature_names, human_size, io_err, note, CmdResult, Ctx};
use crate::cli::ImageArg;

/// Prints the image's facts.
pub async fn run(ctx: &Ctx, a: ImageArg) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    // Repair what stock tools left behind first, so the facts are current; best effort (a
    // read-only user may not fix anything, and still gets the facts).
    for n in rbd_ext::reconcile(&ctx.cluster, &spec).await.unwrap_or_default() {
        note(&format!("image {spec}: {n}"));
    }
    let facts = rbd_ext::image_details(&ctx.cluster, &spec).await?;
    if ctx.json() {
        ctx.print_json(&to_json(&facts))
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(to_plain(&facts).as_bytes()).map_err(|e| io_err(e, "write to stdout"))?;
        Ok(())
    }
}

fn to_plain(f: &ImageDetails) -> String {
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
    if let Some(l) = f.meta.snapshot_limit {
        line(format!("snapshot_limit: {l}"));
    }
    if let Some(p) = &f.parent {
        // `pool/[ns/]image@`: the trailing `@` with no snapshot is how stock `rbd info`
        // shows a HEAD parent.
        let trash = if p.in_trash { " (trash)" } else { "" };
        line(format!("parent: {}@{}{trash}", p.spec, p.snapshot));
        line(format!("overlap: {}", human_size(p.overlap)));
        line(format!("parent type: {}", p.parent_type.as_str()));
        if let Some(r) = &p.remote {
            // The key reference is not the key, but it is not needed to identify the parent.
            line(format!("parent cluster: {} (monitors {}, as {})", r.cluster, r.mon_hosts.join(","), r.client));
        }
    }
    if h.has(features::STRIPINGV2) {
        line(format!("stripe unit: {}", human_size(h.stripe_unit)));
        line(format!("stripe count: {}", h.stripe_count));
    }
    if let Some(cm) = &f.clone_map {
        let list: Vec<String> = cm.states.iter().map(|(state, c)| format!("{c} {state}")).collect();
        line(format!("clone map: {} objects: {}", cm.objects, list.join(", ")));
    }
    if let Some(p) = f.protection {
        let remote = if p.remote_children > 0 { format!(" and {} in other clusters", p.remote_children) } else { String::new() };
        line(format!(
            "protected: by {} standalone children{remote}, protection {} (stock tools cannot write, shrink, roll back or remove it)",
            p.children,
            p.mode.name()
        ));
    }
    s
}

fn to_json(f: &ImageDetails) -> Value {
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
    if let Some(l) = f.meta.snapshot_limit {
        m.insert("snapshot_limit".into(), json!(l));
    }
    if let Some(p) = &f.parent {
        let mut pm = Map::new();
        pm.insert("pool".into(), json!(p.spec.pool));
        pm.insert("pool_namespace".into(), json!(p.spec.namespace));
        pm.insert("image".into(), json!(p.spec.image));
        pm.insert("id".into(), json!(p.id));
        pm.insert("snapshot".into(), json!(p.snapshot));
        pm.insert("trash".into(), json!(p.in_trash));
        pm.insert("overlap".into(), json!(p.overlap));
        // Ours.
        pm.insert("type".into(), json!(p.parent_type.as_str()));
        if p.parent_type == ParentType::RemoteStandalone {
            let r = p.remote.as_ref();
            pm.insert("remote".into(), json!({ "cluster": r.map(|r| &r.cluster), "mon_hosts": r.map(|r| &r.mon_hosts), "client": r.map(|r| &r.client) }));
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
    if let Some(cm) = &f.clone_map {
        let states: Map<String, Value> = cm.states.iter().map(|(s, c)| (s.to_string(), json!(c))).collect();
        m.insert("clone_map".into(), json!({ "objects": cm.objects, "states": states }));
    }
    m.insert(
        "protection".into(),
        match f.protection {
            Some(p) => json!({ "protected": true, "mode": p.mode.name(), "children": p.children, "remote_children": p.remote_children }),
            None => json!({ "protected": false }),
        },
    );
    Value::Object(m)
}

/// The header's timestamp keys, as `rbd info` names them.
const TIMESTAMPS: [&str; 3] = ["create_timestamp", "access_timestamp", "modify_timestamp"];

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
    format!("{} {} {day:>2} {:02}:{:02}:{:02} {year}", DAYS[(days % 7) as usize], MONTHS[(month - 1) as usize], rem / 3600, rem % 3600 / 60, rem % 60)
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
}

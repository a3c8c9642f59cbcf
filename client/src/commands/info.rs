//! `info IMAGE`: what `rbd info` shows, plus the standalone parent (type, overlap) and the
//! clone map's counts per state.

use std::io::Write;

use rbd_ext_cls::types::ParentType;
use serde_json::{json, Map, Value};

use rbd_ext::header::{features, ImageHeader};
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
    Ok(Facts { spec: spec.clone(), id: loc.id.clone(), header, data_pool, parent, clone_map })
}

fn to_plain(f: &Facts) -> String {
    let h = &f.header;
    let mut s = format!("rbd image '{}':\n", f.spec.image);
    let mut line = |l: String| {
        s.push('\t');
        s.push_str(&l);
        s.push('\n');
    };
    line(format!("size {} in {} objects", human_size(h.size), h.object_count()));
    line(format!("order {} ({} objects)", h.order, human_size(h.object_size())));
    line(format!("id: {}", f.id));
    line(format!("block_name_prefix: {}", h.object_prefix));
    line("format: 2".into());
    line(format!("features: {}", feature_names(h.features).join(", ")));
    if let Some(p) = &f.data_pool {
        line(format!("data_pool: {p}"));
    }
    if h.has(features::STRIPINGV2) {
        line(format!("stripe unit: {}", human_size(h.stripe_unit)));
        line(format!("stripe count: {}", h.stripe_count));
    }
    if let (Some(rec), Some(p)) = (&h.parent, &f.parent) {
        // `pool/[ns/]image@`: the trailing `@` with no snapshot is how stock `rbd info`
        // shows a HEAD parent.
        match rec.snap_id {
            SnapId::NOSNAP => line(format!("parent: {p}@")),
            // A stock snapshot clone: `rbd info` names the snapshot; the id is what we have.
            SnapId(id) => line(format!("parent: {p} (snapshot id {id})")),
        }
        line(format!("parent type: {}", rec.parent_type.as_str()));
        if rec.parent_type == ParentType::RemoteStandalone {
            // The key reference is not the key, but it is not needed to identify the parent.
            line(format!("parent cluster: {} (monitors {}, as {})", rec.remote_cluster_name, rec.remote_mon_hosts.join(","), rec.remote_client_name));
        }
        line(format!("overlap: {}", human_size(h.overlap())));
    }
    if let Some((n, counts)) = &f.clone_map {
        let list: Vec<String> = counts.iter().map(|(state, c)| format!("{c} {state}")).collect();
        line(format!("clone map: {n} objects: {}", list.join(", ")));
    }
    s
}

fn to_json(f: &Facts) -> Value {
    let h = &f.header;
    let mut m = Map::new();
    m.insert("name".into(), json!(f.spec.image));
    m.insert("pool".into(), json!(f.spec.pool));
    m.insert("namespace".into(), json!(f.spec.namespace));
    m.insert("id".into(), json!(f.id));
    m.insert("size".into(), json!(h.size));
    m.insert("objects".into(), json!(h.object_count()));
    m.insert("order".into(), json!(h.order));
    m.insert("object_size".into(), json!(h.object_size()));
    m.insert("block_name_prefix".into(), json!(h.object_prefix));
    m.insert("format".into(), json!(2));
    m.insert("features".into(), json!(feature_names(h.features)));
    if let Some(p) = &f.data_pool {
        m.insert("data_pool".into(), json!(p));
    }
    if h.has(features::STRIPINGV2) {
        m.insert("stripe_unit".into(), json!(h.stripe_unit));
        m.insert("stripe_count".into(), json!(h.stripe_count));
    }
    if let (Some(rec), Some(p)) = (&h.parent, &f.parent) {
        m.insert(
            "parent".into(),
            json!({
                "pool": p.pool,
                "namespace": p.namespace,
                "image": p.image,
                "image_id": rec.image_id,
                "type": rec.parent_type.as_str(),
                "overlap": h.overlap(),
            }),
        );
        if rec.parent_type == ParentType::RemoteStandalone {
            if let Some(Value::Object(pm)) = m.get_mut("parent") {
                pm.insert(
                    "remote".into(),
                    json!({ "cluster": rec.remote_cluster_name, "mon_hosts": rec.remote_mon_hosts, "client": rec.remote_client_name }),
                );
            }
        }
    }
    if let Some((n, counts)) = &f.clone_map {
        let states: Map<String, Value> = counts.iter().map(|(s, c)| (s.to_string(), json!(c))).collect();
        m.insert("clone_map".into(), json!({ "objects": n, "states": states }));
    }
    Value::Object(m)
}

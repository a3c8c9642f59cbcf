//! `children IMAGE [--descendants]`: the standalone clones of an image, `pool/[ns/]image`
//! per line, as `rbd children`.

use std::collections::HashSet;
use std::io::Write;

use serde_json::json;

use rbd_ext::ImageSpec;

use super::{io_err, note, CmdResult, Ctx};
use crate::cli::ChildrenArgs;

/// Lists the children (depth first with --descendants); stale entries the library dropped
/// while listing are reported on stderr.
pub async fn run(ctx: &Ctx, a: ChildrenArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let mut found = Vec::new();
    // Guards against a cycle in corrupt metadata: each image is listed once.
    let mut seen = HashSet::from([spec.clone()]);
    collect(ctx, &spec, a.descendants, &mut seen, &mut found)?;
    if ctx.json() {
        let list: Vec<_> = found.iter().map(|c| json!({ "pool": c.pool, "namespace": c.namespace, "image": c.image })).collect();
        return ctx.print_json(&json!(list));
    }
    let mut out = std::io::stdout().lock();
    for c in &found {
        writeln!(out, "{c}").map_err(|e| io_err(e, "write to stdout"))?;
    }
    Ok(())
}

fn collect(ctx: &Ctx, parent: &ImageSpec, recurse: bool, seen: &mut HashSet<ImageSpec>, found: &mut Vec<ImageSpec>) -> CmdResult {
    let kids = rbd_ext::children(&ctx.cluster, parent)?;
    for r in &kids.reconciled {
        note(&format!("image {parent}: {r}"));
    }
    // Children in other clusters cannot be named from here; they still protect the parent.
    for r in &kids.remote {
        note(&format!("image {parent}: child in another cluster: {r}"));
    }
    for c in kids.children {
        if !seen.insert(c.clone()) {
            continue;
        }
        found.push(c.clone());
        if recurse {
            collect(ctx, &c, true, seen, found)?;
        }
    }
    Ok(())
}

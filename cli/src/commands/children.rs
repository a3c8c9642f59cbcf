//! `children IMAGE [--descendants]`: the standalone clones of an image, `pool/[ns/]image`
//! per line, as `rbd children`.

use std::io::Write;

use serde_json::json;

use super::{io_err, note, CmdResult, Ctx};
use crate::cli::ChildrenArgs;

/// Lists the children (depth first with --descendants); stale entries the library dropped
/// while listing are reported on stderr.
pub async fn run(ctx: &Ctx, a: ChildrenArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let (found, reconciled, remote) = if a.descendants {
        let d = rbd_ext::descendants(&ctx.cluster, &spec).await?;
        (d.images, d.reconciled, d.remote)
    } else {
        let kids = rbd_ext::children(&ctx.cluster, &spec).await?;
        let at = |v: Vec<String>| v.into_iter().map(|r| (spec.clone(), r)).collect::<Vec<_>>();
        (kids.children, at(kids.reconciled), at(kids.remote))
    };
    for (parent, r) in &reconciled {
        note(&format!("image {parent}: {r}"));
    }
    // Children in other clusters cannot be named from here; they still protect the parent.
    for (parent, r) in &remote {
        note(&format!("image {parent}: child in another cluster: {r}"));
    }
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

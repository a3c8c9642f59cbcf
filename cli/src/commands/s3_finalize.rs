//! `s3 finalize PARENT [--parallel N]`: make a fully hydrated S3-backed parent a plain local
//! image, so stock librbd serves its children (refused, with the count, while objects are
//! missing).

use std::io::Write;

use serde_json::json;

use rbd_ext::s3_finalize::s3_finalize;

use super::{io_err, progress, progress_done, CmdResult, Ctx};
use crate::cli::S3FinalizeArgs;

const LABEL: &str = "Checking objects";

/// Checks every object, rewrites the records, then one summary line (or JSON).
pub async fn run(ctx: &Ctx, a: S3FinalizeArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let bar = progress(LABEL, 0);
    let report = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let r = s3_finalize(&ctx.cluster, &spec, a.parallel as usize, &report).await.inspect_err(|_| bar.abandon())?;
    progress_done(&bar, LABEL);
    let children: Vec<String> = r.children.iter().map(|c| c.to_string()).collect();
    if ctx.json() {
        return ctx.print_json(&json!({
            "objects": r.objects, "holes": r.holes, "children": children, "rewritten": r.rewritten, "remote_children": r.remote,
        }));
    }
    let mut line = format!("finalized {spec}: {} objects ({} holes) local; {} children now readable by stock librbd\n", r.objects, r.holes, children.len());
    for remote in &r.remote {
        line.push_str(&format!("note: child in another cluster keeps its remote record: {remote}\n"));
    }
    std::io::stdout().lock().write_all(line.as_bytes()).map_err(|e| io_err(e, "write to stdout"))
}

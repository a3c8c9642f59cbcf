//! `hydrate IMAGE [--parallel N]`: fill an S3-backed parent from S3 completely (objects
//! already in RADOS and manifest holes cost no GET), or flatten a clone.

use std::io::Write;

use serde_json::json;

use rbd_ext::{Image, OpenOptions};

use super::{io_err, progress, progress_done, CmdResult, Ctx};
use crate::cli::HydrateArgs;

const LABEL: &str = "Hydrating image";

/// Hydrates; a progress bar on a terminal, then one summary line.
pub async fn run(ctx: &Ctx, a: HydrateArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    // An S3-backed parent is read (its fills are not writes); a clone is flattened, which
    // takes the writer lock.
    let mut image = Image::open(&ctx.cluster, &spec, OpenOptions::default()).await?;
    if !image.is_s3_backed() && image.header().parent.is_some() {
        drop(image);
        image = Image::open(&ctx.cluster, &spec, OpenOptions::default().with_write(true)).await?;
    }
    let bar = progress(LABEL, 0);
    let report = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let r = rbd_ext::s3_parent::hydrate(&image, a.parallel as usize, &report).await.inspect_err(|_| bar.abandon())?;
    image.close_async().await?;
    progress_done(&bar, LABEL);
    let mib = r.bytes as f64 / (1 << 20) as f64;
    let rate = mib / r.seconds.max(1e-9);
    if ctx.json() {
        return ctx.print_json(&json!({ "objects": r.objects, "bytes": r.bytes, "seconds": r.seconds, "mib_per_sec": rate }));
    }
    let line = format!("hydrated {} objects ({mib:.1} MiB) in {:.2} s: {rate:.1} MiB/s\n", r.objects, r.seconds);
    std::io::stdout().lock().write_all(line.as_bytes()).map_err(|e| io_err(e, "write to stdout"))
}

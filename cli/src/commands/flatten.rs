//! `flatten IMAGE`: copy every inherited object into the clone, then detach it from its
//! parent (which stays protected until its last child leaves).

use rbd_ext::{Image, OpenOptions};

use super::{progress, progress_done, CmdResult, Ctx};
use crate::cli::ImageArg;

const LABEL: &str = "Image flatten";

/// Flattens under the writer lock; a progress bar on a terminal, silence otherwise.
pub async fn run(ctx: &Ctx, a: ImageArg) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let image = Image::open(&ctx.cluster, &spec, OpenOptions::default().with_write(true)).await?;
    let bar = progress(LABEL, 0);
    let report = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    rbd_ext::flatten(&image, &report).await?;
    image.close_async().await?;
    progress_done(&bar, LABEL);
    Ok(())
}

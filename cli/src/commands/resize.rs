//! `resize IMAGE --size N`: grow or (with --allow-shrink) shrink an image.

use super::{human_size, msg, CmdResult, Ctx};
use crate::cli::ResizeArgs;

/// Resizes through an image opened for writing (so the writer lock is held).
pub async fn run(ctx: &Ctx, a: ResizeArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let image = rbd_ext::Image::open(&ctx.cluster, &spec, rbd_ext::OpenOptions::default().with_write(true)).await?;
    let old = image.size();
    // As `rbd resize`: losing data takes an explicit flag.
    if a.size < old && !a.allow_shrink {
        return Err(msg(format!(
            "resize {spec}: shrinking from {} to {} needs --allow-shrink (data past the new end is lost): {}",
            human_size(old),
            human_size(a.size),
            rbd_ext::Errno::EINVAL
        )));
    }
    if a.size != old {
        image.resize(a.size).await?;
    }
    image.close_async().await?;
    Ok(())
}

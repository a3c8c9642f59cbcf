//! `rm IMAGE`: remove an image; a parent with standalone clones is refused (EBUSY, naming
//! them).

use super::{note, CmdResult, Ctx};
use crate::cli::ImageArg;

/// Removes the image; stale children entries dropped on the way are reported on stderr.
pub async fn run(ctx: &Ctx, a: ImageArg) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let removed = rbd_ext::remove(&ctx.cluster, &spec).await?;
    for r in &removed.reconciled {
        note(&format!("image {spec}: {r}"));
    }
    Ok(())
}

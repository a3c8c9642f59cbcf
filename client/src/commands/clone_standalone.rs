//! `clone-standalone PARENT CHILD`: a copy-on-write clone of an image's HEAD.

use super::{feature_bits, CmdResult, Ctx};
use crate::cli::CloneArgs;

/// Creates the clone; prints nothing on success, as `rbd clone`.
pub async fn run(ctx: &Ctx, a: CloneArgs) -> CmdResult {
    let parent = ctx.spec(&a.parent)?;
    let child = ctx.spec(&a.child)?;
    let opts = rbd_ext::CloneOptions { features: feature_bits(&a.image_feature)?, force: a.force, ..Default::default() };
    rbd_ext::clone_standalone(&ctx.cluster, &parent, &child, &opts)?;
    Ok(())
}

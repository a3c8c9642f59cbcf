//! `snap create IMAGE@SNAP`: a snapshot that reads right, also of a standalone child
//! (`rbd_ext::snap_create` says how).

use super::{CmdResult, Ctx};
use crate::cli::SnapCommand;

/// Runs the sub-verb.
pub async fn run(ctx: &Ctx, c: SnapCommand) -> CmdResult {
    match c {
        SnapCommand::Create(a) => {
            let spec = ctx.spec(&a.image)?;
            rbd_ext::snap_create(&ctx.cluster, &spec).await?;
            Ok(())
        }
    }
}

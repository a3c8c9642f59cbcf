//! `protection IMAGE [--set clones|strict]`: how a parent of standalone clones is protected
//! from stock tools (README, "Parent protection"), and switching it.

use std::io::Write;

use rbd_ext_cls::types::ProtectionMode;
use serde_json::json;

use super::{io_err, CmdResult, Ctx};
use crate::cli::ProtectionArgs;

/// Prints the mode (`none` without standalone children), after switching it with --set.
pub async fn run(ctx: &Ctx, a: ProtectionArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    if let Some(m) = &a.set {
        // clap allows only the two names.
        let mode = ProtectionMode::from_name(m).expect("clap checks the mode name");
        rbd_ext::set_protection(&ctx.cluster, &spec, mode).await?;
    }
    let mode = rbd_ext::protection(&ctx.cluster, &spec).await?.map_or("none", |p| p.applied().name());
    if ctx.json() {
        return ctx.print_json(&json!({ "image": spec.to_string(), "protection": mode }));
    }
    writeln!(std::io::stdout().lock(), "{mode}").map_err(|e| io_err(e, "write to stdout"))
}

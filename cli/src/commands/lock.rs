//! `lock ls|rm IMAGE`: the image's header lock holders, as `rbd lock ls` / `rbd lock rm`.

use std::io::Write;

use serde_json::json;

use super::{blocking, io_err, CmdResult, Ctx};
use crate::cli::{ImageArg, LockCommand, LockRmArgs};

/// Runs the sub-verb.
pub async fn run(ctx: &Ctx, c: LockCommand) -> CmdResult {
    match c {
        LockCommand::Ls(a) => ls(ctx, a).await,
        LockCommand::Rm(a) => rm(ctx, a).await,
    }
}

async fn ls(ctx: &Ctx, a: ImageArg) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let cluster = ctx.cluster.clone();
    let lockers = blocking(move || {
        let (loc, _) = rbd_ext::header::locate(&cluster, &spec)?;
        Ok(rbd_ext::lock::lockers(&loc.md, &loc.id).map_err(|e| e.context(format_args!("image {spec}: list lockers")))?)
    })
    .await?;
    if ctx.json() {
        // The field names of `rbd lock ls --format json`.
        let list: Vec<_> = lockers.iter().map(|l| json!({ "id": l.cookie, "locker": l.client, "address": l.address })).collect();
        return ctx.print_json(&json!(list));
    }
    // Like `rbd lock ls`: nothing at all when there is no lock.
    if lockers.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let mut emit = |s: String| writeln!(out, "{s}").map_err(|e| io_err(e, "write to stdout"));
    match lockers.len() {
        1 => emit("There is 1 lock on this image.".into())?,
        n => emit(format!("There are {n} locks on this image."))?,
    }
    let w_client = lockers.iter().map(|l| l.client.len()).max().unwrap_or(0).max("Locker".len());
    let w_cookie = lockers.iter().map(|l| l.cookie.len()).max().unwrap_or(0).max("ID".len());
    emit(format!("{:<w_client$}  {:<w_cookie$}  Address", "Locker", "ID"))?;
    for l in &lockers {
        emit(format!("{:<w_client$}  {:<w_cookie$}  {}", l.client, l.cookie, l.address))?;
    }
    Ok(())
}

/// Whether `s` looks like an entity name (`client.4123`): the locker, not the cookie.
fn is_entity(s: &str) -> bool {
    s.split_once('.').is_some_and(|(t, id)| matches!(t, "client" | "osd" | "mon" | "mds" | "mgr") && !id.is_empty() && !id.contains(char::is_whitespace))
}

async fn rm(ctx: &Ctx, a: LockRmArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    // Stock `rbd lock rm IMAGE COOKIE LOCKER` takes the cookie first; our hint messages say
    // `LOCKER COOKIE`. Accept both: the entity name is the locker.
    let (locker, cookie) = if !is_entity(&a.locker) && is_entity(&a.cookie) { (a.cookie, a.locker) } else { (a.locker, a.cookie) };
    let cluster = ctx.cluster.clone();
    blocking(move || {
        let (loc, _) = rbd_ext::header::locate(&cluster, &spec)?;
        rbd_ext::lock::break_lock(&loc.md, &loc.id, &locker, &cookie)
            .map_err(|e| e.context(format_args!("image {spec}: break the lock of {locker} (cookie '{cookie}')")))?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockers_are_entity_names() {
        assert!(is_entity("client.4123"));
        assert!(is_entity("client.admin"));
        assert!(!is_entity("auto 140234"));
        assert!(!is_entity("auto 1.2"));
        assert!(!is_entity("client."));
    }
}

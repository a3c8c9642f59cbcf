//! `clone-map show|check|rebuild IMAGE`: the clone map (rbd-ext's per-object annotation of
//! a clone) as runs, checked against the objects, or rewritten from them.

use std::io::Write;

use serde_json::json;

use rbd_ext::{CheckReport, Errno};

use super::{io_err, msg, note, CmdResult, Ctx};
use crate::cli::CloneMapCommand;

/// Runs the sub-verb.
pub async fn run(ctx: &Ctx, c: CloneMapCommand) -> CmdResult {
    match c {
        CloneMapCommand::Show(a) => show(ctx, &a.image).await,
        CloneMapCommand::Check(a) => check(ctx, &a.image, false).await,
        CloneMapCommand::Rebuild(a) => check(ctx, &a.image, true).await,
    }
}

/// Consecutive objects in one state: `[start, end)`.
fn runs(states: &[rbd_ext::clone_map::State]) -> Vec<(u64, u64, rbd_ext::clone_map::State)> {
    let mut out: Vec<(u64, u64, _)> = Vec::new();
    for (i, s) in states.iter().enumerate() {
        match out.last_mut() {
            Some((_, end, state)) if state == s => *end = i as u64 + 1,
            _ => out.push((i as u64, i as u64 + 1, *s)),
        }
    }
    out
}

async fn show(ctx: &Ctx, image: &str) -> CmdResult {
    let spec = ctx.spec(image)?;
    let (cluster, s) = (ctx.cluster.clone(), spec.clone());
    let loaded = super::blocking(move || {
        let (loc, _) = rbd_ext::header::locate(&cluster, &s)?;
        Ok(rbd_ext::clone_map::load(&loc.md, &loc.id).map_err(|e| e.context(format_args!("image {s}: clone map")))?)
    })
    .await?;
    let Some(states) = loaded else {
        return Err(msg(format!("image {spec} has no clone map (it is not a standalone clone): {}", Errno::ENOENT)));
    };
    let runs = runs(&states);
    if ctx.json() {
        let list: Vec<_> = runs.iter().map(|(s, e, st)| json!({ "start": s, "end": e, "state": st.to_string() })).collect();
        return ctx.print_json(&json!({ "objects": states.len(), "runs": list }));
    }
    let mut out = std::io::stdout().lock();
    for (s, e, st) in runs {
        writeln!(out, "{s}..{e} {st}").map_err(|e| io_err(e, "write to stdout"))?;
    }
    Ok(())
}

async fn check(ctx: &Ctx, image: &str, repair: bool) -> CmdResult {
    let spec = ctx.spec(image)?;
    let report = rbd_ext::check_clone_map(&ctx.cluster, &spec, repair).await?;
    print_report(ctx, &report)?;
    if !repair && !report.mismatches.is_empty() {
        return Err(msg(format!(
            "clone-map check {spec}: {} of {} objects disagree with the objects in RADOS; repair with `rbd-ext clone-map rebuild {spec}`",
            report.mismatches.len(),
            report.objects
        )));
    }
    Ok(())
}

/// One line per mismatch (nothing when the map is right), or the whole report as JSON.
fn print_report(ctx: &Ctx, r: &CheckReport) -> CmdResult {
    if ctx.json() {
        let list: Vec<_> = r.mismatches.iter().map(|(n, map, actual)| json!({ "object": n, "map": map.to_string(), "actual": actual.to_string() })).collect();
        let updated: Vec<_> = r.updated.iter().map(|(n, from, to)| json!({ "object": n, "was": from.to_string(), "now": to.to_string() })).collect();
        return ctx.print_json(&json!({ "objects": r.objects, "mismatches": list, "updated": updated, "repaired": r.repaired }));
    }
    // Not disagreements: objects a stock client copied up, crash leftovers resolved.
    if !r.updated.is_empty() {
        let copied = r.updated.iter().filter(|(_, from, _)| *from != rbd_ext::clone_map::State::Pending).count();
        note(&format!(
            "clone map updated from the objects: {copied} object(s) written by a stock client counted as local, {} pending entr(ies) resolved",
            r.updated.len() - copied
        ));
    }
    let mut out = std::io::stdout().lock();
    for (n, map, actual) in &r.mismatches {
        let verb = if r.repaired { "was" } else { "says" };
        writeln!(out, "object {n}: map {verb} {map}, objects say {actual}").map_err(|e| io_err(e, "write to stdout"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbd_ext::clone_map::State::*;

    #[test]
    fn runs_cover_every_object() {
        assert_eq!(runs(&[ExistsParent, ExistsParent, CopiedUp, NonExistent]), [(0, 2, ExistsParent), (2, 3, CopiedUp), (3, 4, NonExistent)]);
        assert!(runs(&[]).is_empty());
    }
}

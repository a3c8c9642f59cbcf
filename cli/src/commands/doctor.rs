//! `doctor [-p POOL] [--fix]`: one report on whether the pool can serve standalone clones,
//! each finding with its fix; exit status 1 while an error remains.

use std::io::Write;

use serde_json::json;

use rbd_ext::doctor::{self, Report, Severity};

use super::{blocking, io_err, msg, CmdResult, Ctx};
use crate::cli::DoctorArgs;

/// Runs the checks (and the fixes with --fix) and prints the report.
pub async fn run(ctx: &Ctx, a: DoctorArgs) -> CmdResult {
    let (cluster, opts) = (ctx.cluster.clone(), doctor::Options::new(ctx.pool.clone()).with_fix(a.fix));
    let report = blocking(move || Ok(doctor::run(&cluster, &opts)?)).await?;
    if ctx.json() {
        ctx.print_json(&to_json(&report))?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(to_plain(&report).as_bytes()).map_err(|e| io_err(e, "write to stdout"))?;
    }
    if report.ok() {
        return Ok(());
    }
    let left = report.findings.iter().filter(|f| f.severity == Severity::Error && !f.fixed).count();
    Err(msg(format!("doctor: pool {}: {left} problem(s) found; each is listed above with its fix", report.pool)))
}

fn to_plain(r: &Report) -> String {
    let mut s = String::new();
    for o in &r.osds {
        let state = match (&o.version, &o.error) {
            (_, Some(e)) => format!("class rbd_ext: {e}"),
            (Some(v), None) => format!("class rbd_ext {v}"),
            (None, None) => "no answer".into(),
        };
        s.push_str(&format!("osd.{}: primary for {} PG(s) of pool {}: {state}\n", o.osd, o.pgs.len(), r.pool));
    }
    s.push_str(&format!("pool {}: {} image(s), {} clone map(s) scanned as {}\n", r.pool, r.images, r.clone_maps, r.client));
    for f in &r.findings {
        let tag = match (f.severity, f.fixed) {
            (_, true) => "FIXED",
            (Severity::Error, false) => "PROBLEM",
            (Severity::Warning, false) => "WARNING",
        };
        s.push_str(&format!("{tag} [{}] {}\n    fix: {}\n", f.kind, f.problem, f.fix));
    }
    s.push_str(if r.ok() { "everything is fine\n" } else { "" });
    s
}

fn to_json(r: &Report) -> serde_json::Value {
    let osds: Vec<_> = r
        .osds
        .iter()
        .map(|o| json!({ "osd": o.osd, "pgs": o.pgs, "version": o.version, "error": o.error.map(|e| e.name().unwrap_or("unknown").to_string()) }))
        .collect();
    let findings: Vec<_> = r
        .findings
        .iter()
        .map(|f| {
            json!({
                "kind": f.kind,
                "severity": if f.severity == Severity::Error { "error" } else { "warning" },
                "subject": f.subject,
                "problem": f.problem,
                "fix": f.fix,
                "fixed": f.fixed,
            })
        })
        .collect();
    json!({
        "pool": r.pool,
        "client": r.client,
        "expected_version": r.expected_version,
        "osds": osds,
        "images": r.images,
        "clone_maps": r.clone_maps,
        "findings": findings,
        "ok": r.ok(),
    })
}

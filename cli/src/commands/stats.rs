//! `stats IMAGE [--reset]`: the back-fill counters every client saved on an S3-backed image
//! (fills, cache hits, holes, waits, takeovers, failures, and the S3 client's requests,
//! retries and latency), added up.

use std::io::Write;

use serde_json::Value;

use super::{io_err, CmdResult, Ctx};
use crate::cli::StatsArgs;

/// Prints the counters: JSON as saved, or one `key: value` line per counter.
pub async fn run(ctx: &Ctx, a: StatsArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let stats = rbd_ext::s3_parent::s3_stats(&ctx.cluster, &spec, a.reset).await?;
    let v = serde_json::to_value(&stats)?;
    if ctx.json() {
        return ctx.print_json(&v);
    }
    let mut lines = String::new();
    flatten("", &v, &mut lines);
    std::io::stdout().lock().write_all(lines.as_bytes()).map_err(|e| io_err(e, "write to stdout"))
}

/// `a.b: 3` lines, nested objects joined with dots.
fn flatten(prefix: &str, v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => out.push_str(&format!("{prefix}: {other}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_counters_print_with_dots() {
        let v: Value = serde_json::from_str(r#"{"s3":{"gets":3,"failures":{"timeout":1}},"fills":2,"clients":1}"#).unwrap();
        let mut s = String::new();
        flatten("", &v, &mut s);
        assert_eq!(s, "s3.gets: 3\ns3.failures.timeout: 1\nfills: 2\nclients: 1\n");
    }
}

//! `s3 publish|attach|show|verify`: S3-backed parents (DESIGN.md §4).
//!
//! Secrets are never taken on the command line: a file (`--secret-key-file`, which attach
//! stores in the mon config-key store) or a `config://<key>` reference. Nothing printed here
//! ever holds a secret: `show` prints the references.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use rbd_ext::backfill::S3Settings;
use rbd_ext::s3::{resolve_secret, AwsEnv, Credentials, S3Client, S3Config, SecretRef};
use rbd_ext::s3_parent::{self, AttachOptions, PublishSource};
use rbd_ext::{Errno, Error};

use super::{human_size, io_err, msg, progress, progress_done, CmdResult, Ctx};
use crate::cli::{ImageArg, S3AttachArgs, S3Command, S3PublishArgs, S3PublishSecretArgs};

const PUBLISH_LABEL: &str = "Publishing image";

/// Runs an `s3` verb.
pub async fn run(ctx: &Ctx, c: S3Command) -> CmdResult {
    match c {
        S3Command::Publish(a) => publish(ctx, a).await,
        S3Command::Attach(a) => attach(ctx, a).await,
        S3Command::Show(a) => show(ctx, a).await,
        S3Command::Verify(a) => verify(ctx, a).await,
        S3Command::Finalize(a) => super::s3_finalize::run(ctx, a).await,
    }
}

/// `s3://bucket/key` -> (bucket, key).
fn parse_dest(s: &str) -> CmdResult<(String, String)> {
    let bad = || msg(format!("s3 publish: destination '{s}' is not s3://BUCKET/KEY: {}", Errno::EINVAL));
    let rest = s.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, key) = rest.split_once('/').ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok((bucket.to_string(), key.to_string()))
}

/// The secret key for publish: read from the file, or resolved from config-key. Never
/// printed, never part of an error message.
async fn publish_secret(ctx: &Ctx, s: &S3PublishSecretArgs) -> CmdResult<Option<String>> {
    if let Some(path) = &s.secret_key_file {
        let raw = std::fs::read(path).map_err(|e| io_err(e, format_args!("read secret key file {}", path.display())))?;
        let secret = String::from_utf8(raw).map_err(|_| msg(format!("secret key file {}: not UTF-8: {}", path.display(), Errno::EINVAL)))?;
        let secret = secret.trim_end().to_string();
        if secret.is_empty() {
            return Err(msg(format!("secret key file {}: empty: {}", path.display(), Errno::EINVAL)));
        }
        return Ok(Some(secret));
    }
    if let Some(r) = &s.secret_key_ref {
        let (cluster, r) = (ctx.cluster.clone(), SecretRef::parse(r)?);
        return Ok(Some(super::blocking(move || Ok(resolve_secret(&cluster, &r)?)).await?));
    }
    Ok(None)
}

async fn publish(ctx: &Ctx, a: S3PublishArgs) -> CmdResult {
    let (bucket, key) = parse_dest(&a.dest)?;
    let source = if !a.image && Path::new(&a.source).exists() { PublishSource::File(a.source.clone()) } else { PublishSource::Image(ctx.spec(&a.source)?) };
    // Flags first, then the standard AWS sources (as the aws CLI and rclone read them).
    let aws = AwsEnv::from_process();
    let profile = a.endpoint.profile.as_deref();
    let endpoint = a.endpoint.endpoint.clone().or_else(|| aws.endpoint(profile)).ok_or_else(|| {
        msg(format!("s3 publish: no endpoint: pass --endpoint URL, or set AWS_ENDPOINT_URL (or endpoint_url in ~/.aws/config): {}", Errno::EINVAL))
    })?;
    let region = a.endpoint.region.clone().or_else(|| aws.region(profile)).unwrap_or_else(|| "us-east-1".into());
    let mut cfg = S3Config::new(endpoint, region, bucket.clone());
    if let Some(secret_key) = publish_secret(ctx, &a.secret).await? {
        let access_key = a.access_key.clone().unwrap_or_default();
        cfg.credentials = Some(Credentials::new(access_key, secret_key));
    } else if !a.secret.anonymous {
        let c = aws.credentials(profile)?.ok_or_else(|| {
            msg(format!(
                "s3 publish: no credentials: pass --access-key ID with --secret-key-file FILE or --secret-key-ref config://KEY, \
                 set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), use --profile NAME \
                 (~/.aws/credentials), or pass --anonymous: {}",
                Errno::EINVAL
            ))
        })?;
        cfg.credentials = Some(c);
    }
    // Before SSL_CERT_FILE, as AWS_CA_BUNDLE comes before it for the aws CLI (and
    // CURL_CA_BUNDLE for curl); certificate errors name the one used.
    let ca = a.endpoint.ca_file.clone().map(|f| (f.clone(), format!("--ca-file {f}"))).or_else(|| aws.ca_bundle_origin(profile));
    if let Some((ca, origin)) = ca {
        let cluster = ctx.cluster.clone();
        cfg.ca_pem = Some(super::blocking(move || Ok(rbd_ext::backfill::read_ca(&cluster, &ca)?)).await?);
        cfg.ca_origin = Some(origin);
    }
    if a.create_bucket {
        S3Client::new(cfg.clone())?.create_bucket(&bucket).await.map_err(|e| Error::from(e).context("s3 publish: create the bucket"))?;
    }
    let bar = progress(PUBLISH_LABEL, 0);
    let report = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let m = s3_parent::s3_publish(&ctx.cluster, &source, cfg, &key, a.object_size, &report).await.inspect_err(|_| bar.abandon())?;
    progress_done(&bar, PUBLISH_LABEL);
    let zero = (0..m.object_count()).filter(|n| m.is_zero(*n)).count();
    let manifest = rbd_ext::s3::manifest_key(&key);
    if ctx.json() {
        return ctx.print_json(&json!({
            "bucket": bucket,
            "key": key,
            "manifest": manifest,
            "image_size": m.image_size,
            "object_size": m.object_size,
            "objects": m.object_count(),
            "zero_objects": zero,
            "etag": m.etag,
        }));
    }
    let line = format!(
        "published s3://{bucket}/{key}: {} in {} objects of {} ({zero} all zero), manifest s3://{bucket}/{manifest}\n",
        human_size(m.image_size),
        m.object_count(),
        human_size(m.object_size)
    );
    std::io::stdout().lock().write_all(line.as_bytes()).map_err(|e| io_err(e, "write to stdout"))
}

async fn attach(ctx: &Ctx, a: S3AttachArgs) -> CmdResult {
    let spec = ctx.spec(&a.parent)?;
    if let Some(r) = &a.access_key_ref {
        SecretRef::parse(r).map_err(|e| e.context("--access-key-ref"))?;
    }
    let defaults = S3Settings::default();
    let settings = S3Settings {
        endpoint: a.endpoint,
        bucket: a.bucket,
        region: a.region,
        image_name: a.object.key,
        prefix: a.object.prefix,
        access_key: if a.secret.anonymous { None } else { a.access_key.or(a.access_key_ref) },
        // Passed as given: the library refuses anything but a config:// reference, and says
        // how to store the secret.
        secret_key: a.secret.secret_key_ref,
        anonymous: a.secret.anonymous,
        timeout_ms: a.timeout_ms.unwrap_or(defaults.timeout_ms),
        retries: a.retries.unwrap_or(defaults.retries),
        claim_ttl_ms: a.claim_ttl_ms.unwrap_or(defaults.claim_ttl_ms),
        ca_file: a.ca_file.map(|c| absolute(&c)),
        ..defaults
    };
    let mut opts = AttachOptions::default().with_settings(settings).with_replace_secret(a.replace_secret);
    opts.secret_key_file = a.secret.secret_key_file.map(|p| p.display().to_string());
    (opts.size, opts.order) = (a.size, a.order);
    s3_parent::s3_attach(&ctx.cluster, &spec, &opts).await.map_err(|e| e.context(format_args!("s3 attach {spec}")))?;
    Ok(())
}

/// A CA file path made absolute (it is stored and read by other processes); a
/// `config://` reference as given.
fn absolute(ca: &str) -> String {
    if ca.starts_with("config://") {
        return ca.to_string();
    }
    std::path::absolute(ca).map(|p| p.display().to_string()).unwrap_or_else(|_| ca.to_string())
}

/// The settings as (key, value) pairs, in the order shown.
fn settings_fields(s: &S3Settings) -> Vec<(&'static str, serde_json::Value)> {
    let mut v = vec![("endpoint", json!(s.endpoint)), ("bucket", json!(s.bucket)), ("region", json!(s.region))];
    if let Some(k) = &s.image_name {
        v.push(("image_name", json!(k)));
        v.push(("image_format", json!("raw")));
    }
    if let Some(p) = &s.prefix {
        v.push(("prefix", json!(p)));
    }
    v.push(("anonymous", json!(s.anonymous)));
    if let Some(k) = &s.access_key {
        v.push(("access_key", json!(k)));
    }
    if let Some(k) = &s.secret_key {
        v.push(("secret_key", json!(k)));
    }
    if let Some(e) = &s.etag {
        v.push(("etag", json!(e)));
    }
    if let Some(n) = s.object_bytes {
        v.push(("object_bytes", json!(n)));
    }
    if let Some(id) = &s.version_id {
        v.push(("version_id", json!(id)));
    }
    if let Some(c) = &s.ca_file {
        v.push(("ca_file", json!(c)));
    }
    v.push(("timeout_ms", json!(s.timeout_ms)));
    v.push(("retries", json!(s.retries)));
    v.push(("claim_ttl_ms", json!(s.claim_ttl_ms)));
    v
}

async fn show(ctx: &Ctx, a: ImageArg) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let (cluster, s) = (ctx.cluster.clone(), spec.clone());
    let settings = super::blocking(move || Ok(s3_parent::s3_settings(&cluster, &s)?)).await?;
    let fields = settings_fields(&settings);
    if ctx.json() {
        let m: serde_json::Map<String, serde_json::Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        return ctx.print_json(&serde_json::Value::Object(m));
    }
    let mut text = String::new();
    for (k, v) in fields {
        let v = match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        text.push_str(&format!("{k}: {v}\n"));
    }
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| io_err(e, "write to stdout"))
}

/// What to do about a failed check, by errno (and HTTP status when there was one).
fn verify_hint(e: &Error) -> Option<&'static str> {
    let m = e.to_string();
    let from_s3 = m.contains("s3 ") && m.contains("HTTP ");
    Some(match e.errno() {
        Errno::EACCES => "the S3 credentials were refused: check s3.access_key and the secret its s3.secret_key reference holds (`ceph config-key get <key>`), or, for s3.anonymous, that the object is public-read",
        Errno::ENOENT if from_s3 => "no such bucket or key: check s3.bucket and s3.image_name / s3.prefix (`rbd-ext s3 show`), or publish it with `rbd-ext s3 publish`",
        Errno::ETIMEDOUT => "S3 did not answer in time: check that s3.endpoint is reachable from this host, or raise s3.timeout_ms",
        Errno::ECONNREFUSED | Errno::EHOSTUNREACH => "cannot connect: check s3.endpoint and that the S3 service is up",
        Errno::EIO if m.contains("manifest") => "the data in S3 does not match its manifest: republish it with `rbd-ext s3 publish`",
        Errno::EINVAL if m.contains("manifest") => "the manifest does not match the image: attach again from the published manifest",
        _ => return None,
    })
}

/// `context; hint: errno text`, keeping the one-line `rbd-ext: <what>: <errno text>` form.
fn with_hint(e: Error, hint: &str) -> Box<dyn std::error::Error + Send + Sync> {
    let full = e.to_string();
    let tail = format!(": {}", e.errno());
    let what = full.strip_suffix(&tail).unwrap_or(&full);
    msg(format!("{what} (hint: {hint}){tail}"))
}

async fn verify(ctx: &Ctx, a: ImageArg) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let report = match s3_parent::s3_verify(&ctx.cluster, &spec).await {
        Ok(r) => r,
        Err(e) => {
            let e = e.context(format_args!("s3 verify {spec}"));
            return Err(match verify_hint(&e) {
                Some(h) => with_hint(e, h),
                None => e.into(),
            });
        }
    };
    if ctx.json() {
        let checks: Vec<_> = report.checks.iter().map(|(c, r)| json!({ "check": c, "result": r })).collect();
        return ctx.print_json(&json!({ "image": spec.to_string(), "ok": true, "checks": checks }));
    }
    let mut text = String::new();
    for (c, r) in &report.checks {
        text.push_str(&format!("{c}: ok: {r}\n"));
    }
    text.push_str(&format!("s3 settings of {spec}: ok\n"));
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| io_err(e, "write to stdout"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(parse_dest("s3://b/k/x.raw").unwrap(), ("b".to_string(), "k/x.raw".to_string()));
        for bad in ["b/k", "s3://b", "s3:///k", "s3://b/", "http://b/k"] {
            assert!(parse_dest(bad).unwrap_err().to_string().ends_with("(EINVAL)"), "{bad}");
        }
    }
}

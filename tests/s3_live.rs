//! The S3 client against a real radosgw (`eval "$(qa/cluster up --rgw)"` exports
//! `RBD_EXT_S3_*`), directly and through the fault-injecting proxy.

mod common;

use std::time::Duration;

use rbd_ext::s3::testproxy::{Fault, Rule, TestProxy};
use rbd_ext::s3::{manifest_key, resolve_secret, store_secret, Credentials, Manifest, PutOptions, S3Client, S3Config, S3ErrorKind, SecretRef, MIN_PART_SIZE};
use rbd_ext::{Errno, Error};

const MIB: usize = 1 << 20;

struct Env {
    endpoint: String,
    region: String,
    access_key: String,
    secret_key: String,
}

/// The gateway's address and the test user's keys. Panics with the fix when they are
/// missing: these tests are built only with `--features live`.
fn env() -> Env {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `eval \"$(qa/cluster up --rgw)\"` first (S3 live tests need radosgw)"))
    };
    let secret_file = var("RBD_EXT_S3_SECRET_FILE");
    let secret_key = std::fs::read_to_string(&secret_file).unwrap_or_else(|e| panic!("read {secret_file}: {e}")).trim().to_string();
    Env { endpoint: var("RBD_EXT_S3_ENDPOINT"), region: var("RBD_EXT_S3_REGION"), access_key: var("RBD_EXT_S3_ACCESS_KEY"), secret_key }
}

fn config(endpoint: &str, bucket: &str) -> S3Config {
    let e = env();
    let mut c = S3Config::new(endpoint, e.region, bucket);
    c.credentials = Some(Credentials::new(e.access_key, e.secret_key));
    c.timeout = Duration::from_secs(20);
    c
}

/// A client on a fresh bucket of its own.
async fn fresh_bucket(prefix: &str) -> (S3Client, String) {
    let bucket = common::unique(prefix);
    let c = S3Client::new(config(&env().endpoint, &bucket)).unwrap();
    c.create_bucket(&bucket).await.unwrap();
    (c, bucket)
}

#[tokio::test]
async fn put_then_ranged_gets_of_a_9mib_object() {
    let (c, _) = fresh_bucket("s3-range").await;
    let body = common::random(9 * MIB, 1);
    let etag = c.put("images/base.raw", body.clone()).await.unwrap();
    let info = c.head("images/base.raw").await.unwrap();
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.etag, etag);
    // 4 MiB objects: two whole ones, then the 1 MiB tail; odd small ranges too.
    let os = 4 * MIB as u64;
    for (start, len) in [(0, os), (os, os), (2 * os, MIB as u64), (12_345, 1), (9 * MIB as u64 - 1, 1), (777, 70_000)] {
        let got = c.get_range("images/base.raw", start, len).await.unwrap();
        assert!(got == body[start as usize..(start + len) as usize], "range {start}+{len}");
    }
    // Asking past the end gets a shorter 206 from the gateway: refused, not padded.
    let e = c.get_range("images/base.raw", 2 * os, os).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (S3ErrorKind::BadData, Errno::EIO));
    assert_eq!(c.get("images/base.raw").await.unwrap(), body);
    let st = c.stats();
    assert_eq!(st.gets, 7);
    assert_eq!(st.bytes_fetched, (os * 2 + MIB as u64 + 2 + 70_000) + body.len() as u64);
    assert_eq!(st.retries, 0);
    let j = st.to_json();
    assert!(j.contains("\"gets\":7"), "{j}");
}

#[tokio::test]
async fn put_large_goes_multipart() {
    let (c, _) = fresh_bucket("s3-mp").await;
    let body = common::random(2 * MIN_PART_SIZE + 123, 2);
    let etag = c.put_large("big.raw", &body[..], MIN_PART_SIZE).await.unwrap();
    assert!(etag.ends_with("-3"), "a 3-part upload's ETag: {etag}");
    let info = c.head("big.raw").await.unwrap();
    assert_eq!((info.size, info.etag.as_str()), (body.len() as u64, etag.as_str()));
    assert_eq!(c.get("big.raw").await.unwrap(), body);
    let tail = c.get_range("big.raw", 2 * MIN_PART_SIZE as u64, 123).await.unwrap();
    assert_eq!(tail, body[2 * MIN_PART_SIZE..]);
    // From a file as well.
    let path = std::env::temp_dir().join(common::unique("s3-mp-file"));
    std::fs::write(&path, &body[..MIN_PART_SIZE + 1]).unwrap();
    c.put_file("from-file.raw", &path, MIN_PART_SIZE).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(c.get("from-file.raw").await.unwrap(), body[..MIN_PART_SIZE + 1]);
}

#[tokio::test]
async fn keys_with_special_characters_sign_and_round_trip() {
    let (c, _) = fresh_bucket("s3-keys").await;
    for key in ["dir/a b+c.raw", "x%41=&;,!$'()*@:~", "\u{e9}t\u{e9}/\u{1f600}.img", "a//b", "sp ace/"] {
        let body = key.as_bytes().repeat(3);
        c.put(key, body.clone()).await.unwrap_or_else(|e| panic!("put {key:?}: {e}"));
        assert_eq!(c.get(key).await.unwrap(), body, "{key:?}");
        assert_eq!(c.get_range(key, 1, 2).await.unwrap(), body[1..3], "{key:?}");
        assert_eq!(c.head(key).await.unwrap().size, body.len() as u64);
    }
}

#[tokio::test]
async fn wrong_secret_is_eacces_and_never_shown() {
    let (c, bucket) = fresh_bucket("s3-auth").await;
    c.put("k", vec![1u8; 100]).await.unwrap();
    let mut cfg = config(&env().endpoint, &bucket);
    let wrong = "WRONGsecretWRONGsecretWRONGsecret0123456";
    cfg.credentials.as_mut().unwrap().secret_key = wrong.into();
    let bad = S3Client::new(cfg).unwrap();
    let e = bad.get_range("k", 0, 100).await.unwrap_err();
    assert_eq!((e.kind(), e.errno(), e.http_status()), (S3ErrorKind::Forbidden, Errno::EACCES, Some(403)));
    assert_eq!(bad.stats().retries, 0, "403 is not retried");
    let err: Error = e.into();
    let msg = err.to_string();
    let url = c.url("k");
    assert!(msg.starts_with(&format!("s3 GET {url} bytes=0-99: HTTP 403 Forbidden")), "{msg}");
    assert!(msg.ends_with("Permission denied (EACCES)"), "{msg}");
    for leak in [wrong, env().secret_key.as_str(), "Signature=", "AWS4-HMAC"] {
        assert!(!msg.contains(leak) && !format!("{err:?}").contains(leak), "{leak} leaked: {err:?}");
    }
}

#[tokio::test]
async fn missing_key_is_enoent() {
    let (c, _) = fresh_bucket("s3-404").await;
    let e = c.get_range("no/such/key", 0, 4096).await.unwrap_err();
    assert_eq!((e.errno(), e.http_status(), e.s3_code()), (Errno::ENOENT, Some(404), Some("NoSuchKey")));
    let msg = Error::from(e).to_string();
    assert_eq!(msg, format!("s3 GET {} bytes=0-4095: HTTP 404 Not Found (NoSuchKey): No such file or directory (ENOENT)", c.url("no/such/key")));
    assert_eq!(c.head("no/such/key").await.unwrap_err().errno(), Errno::ENOENT);
    assert_eq!(c.stats().failures.not_found, 2);
}

#[tokio::test]
async fn anonymous_reads_public_objects_only() {
    let (c, bucket) = fresh_bucket("s3-anon").await;
    let public = PutOptions::default().with_acl("public-read");
    c.put_with("public.raw", common::random(10_000, 3), &public).await.unwrap();
    c.put("private.raw", common::random(10_000, 4)).await.unwrap();
    let mut cfg = config(&env().endpoint, &bucket);
    cfg.credentials = None;
    let anon = S3Client::new(cfg).unwrap();
    assert_eq!(anon.get_range("public.raw", 100, 900).await.unwrap(), common::random(10_000, 3)[100..1000]);
    assert_eq!(anon.head("public.raw").await.unwrap().size, 10_000);
    let e = anon.get_range("private.raw", 0, 10).await.unwrap_err();
    assert_eq!((e.errno(), e.http_status()), (Errno::EACCES, Some(403)));
    assert!(e.to_string().contains(&anon.url("private.raw")), "{e}");
}

#[tokio::test]
async fn five_hundreds_are_retried_through_the_proxy() {
    let (c, bucket) = fresh_bucket("s3-500").await;
    let body = common::random(MIB, 5);
    c.put("k", body.clone()).await.unwrap();
    let proxy = TestProxy::start(&env().endpoint).await.unwrap();
    let pc = S3Client::new(config(&proxy.endpoint(), &bucket)).unwrap();
    proxy.add(Rule::new(Fault::Status(500)).method("GET").path_contains("/k").times(2));
    assert_eq!(pc.get_range("k", 4096, 8192).await.unwrap(), body[4096..12288]);
    let st = pc.stats();
    assert_eq!((st.retries, st.requests, st.gets, st.failures_total), (2, 3, 1, 0));
    assert_eq!(proxy.faults(), 2);
    // And a request that always fails gives up after the configured retries.
    proxy.add(Rule::new(Fault::Status(503)).method("GET"));
    let mut cfg = config(&proxy.endpoint(), &bucket);
    cfg.retries = 1;
    let e = S3Client::new(cfg).unwrap().get_range("k", 0, 10).await.unwrap_err();
    assert_eq!((e.errno(), e.http_status()), (Errno::EIO, Some(503)));
    assert!(e.to_string().contains("(2 attempts)"), "{e}");
}

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    let (c, bucket) = fresh_bucket("s3-pool").await;
    c.put("k", common::random(64 << 10, 6)).await.unwrap();
    let proxy = TestProxy::start(&env().endpoint).await.unwrap();
    let pc = S3Client::new(config(&proxy.endpoint(), &bucket)).unwrap();
    for i in 0..20 {
        pc.get_range("k", i * 1024, 1024).await.unwrap();
    }
    assert_eq!((proxy.requests(), proxy.connections()), (20, 1));
}

#[tokio::test]
async fn slow_server_times_out() {
    let (c, bucket) = fresh_bucket("s3-slow").await;
    c.put("k", common::random(4096, 7)).await.unwrap();
    let proxy = TestProxy::start(&env().endpoint).await.unwrap();
    proxy.add(Rule::new(Fault::Delay(Duration::from_secs(5))).method("GET"));
    let mut cfg = config(&proxy.endpoint(), &bucket);
    cfg.timeout = Duration::from_millis(300);
    cfg.retries = 2;
    let pc = S3Client::new(cfg).unwrap();
    let t0 = std::time::Instant::now();
    let e = pc.get_range("k", 0, 4096).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!((e.kind(), e.errno()), (S3ErrorKind::Timeout, Errno::ETIMEDOUT));
    let msg = Error::from(e).to_string();
    assert!(msg.contains(&pc.url("k")) && msg.contains("(3 attempts)") && msg.ends_with("(ETIMEDOUT)"), "{msg}");
    let st = pc.stats();
    assert_eq!((st.retries, st.failures.timeout), (2, 1));
}

#[tokio::test]
async fn truncated_body_is_eio() {
    let (c, bucket) = fresh_bucket("s3-trunc").await;
    c.put("k", common::random(64 << 10, 8)).await.unwrap();
    let proxy = TestProxy::start(&env().endpoint).await.unwrap();
    proxy.add(Rule::new(Fault::Truncate(1000)).method("GET"));
    let pc = S3Client::new(config(&proxy.endpoint(), &bucket)).unwrap();
    let e = pc.get_range("k", 0, 4096).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (S3ErrorKind::BadData, Errno::EIO));
    assert_eq!(pc.stats().failures.bad_data, 1);
}

#[tokio::test]
async fn flipped_bytes_fail_manifest_verification() {
    let (c, bucket) = fresh_bucket("s3-flip").await;
    let os = 4 * MIB;
    let mut img = common::random(9 * MIB, 9);
    img[os..2 * os].fill(0); // a hole
    let etag = c.put_large("img.raw", &img[..], MIN_PART_SIZE).await.unwrap();
    let mut m = Manifest::build(&img[..], os as u64).unwrap();
    m.etag = etag;
    c.put(&manifest_key("img.raw"), m.to_json()).await.unwrap();

    let m = Manifest::from_json(&c.get(&manifest_key("img.raw")).await.unwrap()).unwrap();
    assert_eq!(m.etag, c.head("img.raw").await.unwrap().etag);
    assert_eq!((m.object_count(), m.is_zero(1), m.object_len(2)), (3, true, Some(MIB as u64)));
    let proxy = TestProxy::start(&env().endpoint).await.unwrap();
    let pc = S3Client::new(config(&proxy.endpoint(), &bucket)).unwrap();
    proxy.add(Rule::new(Fault::FlipBytes { offset: 4242, count: 1 }).method("GET").times(1));
    let got = pc.get_range("img.raw", 2 * os as u64, MIB as u64).await.unwrap();
    let e = m.verify(2, &got).unwrap_err();
    assert_eq!(e.errno(), Errno::EIO);
    assert!(e.to_string().contains("object 2: sha256 mismatch"), "{e}");
    let good = pc.get_range("img.raw", 2 * os as u64, MIB as u64).await.unwrap();
    m.verify(2, &good).unwrap();
    m.verify(0, &pc.get_range("img.raw", 0, os as u64).await.unwrap()).unwrap();
}

#[tokio::test]
async fn secrets_go_through_the_config_key_store() {
    let cluster = common::cluster();
    let key = format!("rbd-ext/test/{}", common::unique("s3-secret"));
    let r = store_secret(&cluster, &key, format!("{}\n", env().secret_key).as_bytes()).unwrap();
    assert_eq!(r.to_string(), format!("config://{key}"));
    let parsed = SecretRef::parse(&r.to_string()).unwrap();
    assert_eq!(resolve_secret(&cluster, &parsed).unwrap(), env().secret_key);

    // A client built from the resolved reference works.
    let bucket = common::unique("s3-sref");
    let mut cfg = config(&env().endpoint, &bucket);
    cfg.credentials.as_mut().unwrap().secret_key = resolve_secret(&cluster, &parsed).unwrap();
    S3Client::new(cfg).unwrap().create_bucket(&bucket).await.unwrap();

    let missing = SecretRef::parse(&format!("config://{key}-missing")).unwrap();
    let e = resolve_secret(&cluster, &missing).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT, "{e}");
    assert!(e.to_string().contains("ceph config-key set"), "{e}");
    assert_eq!(SecretRef::parse(&env().secret_key).unwrap_err().errno(), Errno::EINVAL);
    cluster.mon_command(&format!(r#"{{"prefix": "config-key rm", "key": "{key}"}}"#), b"").unwrap();
}

#[tokio::test]
async fn create_bucket_is_idempotent_for_its_owner() {
    let (c, bucket) = fresh_bucket("s3-bkt").await;
    c.create_bucket(&bucket).await.unwrap();
}

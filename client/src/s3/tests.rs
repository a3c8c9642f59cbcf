//! S3 client behaviour against the in-memory [`FakeS3`], through the fault proxy (loopback
//! only; the radosgw tests are in tests/s3_live.rs).

use std::time::Duration;

use super::testproxy::{FakeS3, Fault, Rule, TestProxy};
use super::*;
use crate::Errno;

fn config(endpoint: String) -> S3Config {
    let mut c = S3Config::new(endpoint, "us-east-1", "bkt");
    c.credentials = Some(Credentials::new("AKIDTEST", "not-a-real-secret-xyz"));
    c.timeout = Duration::from_secs(5);
    c.retries = 3;
    c
}

fn data(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn put_get_range_head_roundtrip() {
    let s3 = FakeS3::start().await.unwrap();
    let c = S3Client::new(config(s3.endpoint())).unwrap();
    let body = data(100_000);
    let key = "dir/a b+c%d\u{e9}.raw";
    c.put(key, body.clone()).await.unwrap();
    assert!(s3.object("/bkt/dir/a%20b%2Bc%25d%C3%A9.raw").is_some(), "key encoded once on the wire");
    assert_eq!(c.head(key).await.unwrap().size, 100_000);
    assert_eq!(c.get(key).await.unwrap(), body);
    for (start, len) in [(0u64, 4096u64), (4096, 4096), (99_000, 1000), (12_345, 1)] {
        assert_eq!(c.get_range(key, start, len).await.unwrap(), body[start as usize..(start + len) as usize]);
    }
    // Past the end: the server answers a shorter 206, which is not what was asked.
    let e = c.get_range(key, 99_000, 4096).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (S3ErrorKind::BadData, Errno::EIO));
    assert!(e.to_string().contains("bytes=99000-103095"), "{e}");
    assert_eq!(c.get_range(key, 0, 0).await.unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(s3.signed_requests(), s3.requests(), "every request signed");
    let st = c.stats();
    assert_eq!(st.gets, 5);
    assert_eq!(st.bytes_fetched, 100_000 + 4096 * 2 + 1000 + 1);
    assert_eq!((st.failures.bad_data, st.failures.invalid, st.retries), (1, 1, 0));
}

#[tokio::test]
async fn a_200_is_accepted_only_for_the_whole_object() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(8192));
    s3.ignore_range(true);
    let c = S3Client::new(config(s3.endpoint())).unwrap();
    assert_eq!(c.get_range("k", 0, 8192).await.unwrap(), data(8192));
    let e = c.get_range("k", 0, 4096).await.unwrap_err();
    assert_eq!(e.kind(), S3ErrorKind::BadData);
    assert!(e.to_string().contains("longer than the 4096 bytes"), "{e}");
    assert_eq!(c.get_range("k", 4096, 4096).await.unwrap_err().kind(), S3ErrorKind::BadData);
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(4096));
    let c = S3Client::new(config(s3.endpoint())).unwrap();
    for _ in 0..10 {
        c.get_range("k", 0, 512).await.unwrap();
    }
    assert_eq!(s3.connections(), 1);
}

#[tokio::test]
async fn anonymous_requests_carry_no_authorization() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(10));
    let mut cfg = config(s3.endpoint());
    cfg.credentials = None;
    let c = S3Client::new(cfg).unwrap();
    c.get("k").await.unwrap();
    assert_eq!((s3.requests(), s3.signed_requests()), (1, 0));
}

#[tokio::test]
async fn status_errors_map_and_4xx_is_not_retried() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(10));
    let proxy = TestProxy::start(&s3.endpoint()).await.unwrap();
    let c = S3Client::new(config(proxy.endpoint())).unwrap();
    let e = c.get_range("missing", 0, 4096).await.unwrap_err();
    let port = proxy.endpoint().rsplit(':').next().unwrap().to_string();
    assert_eq!(
        crate::Error::from(e).to_string(),
        format!("s3 GET http://127.0.0.1:{port}/bkt/missing bytes=0-4095: HTTP 404 Not Found (NoSuchKey): No such file or directory (ENOENT)")
    );
    proxy.add(Rule::new(Fault::Status(403)).path_contains("/bkt/k"));
    let before = proxy.requests();
    let e = c.head("k").await.unwrap_err();
    assert_eq!((e.errno(), e.http_status()), (Errno::EACCES, Some(403)));
    assert_eq!(proxy.requests() - before, 1, "a 403 is final");
    assert!(!e.to_string().contains("not-a-real-secret") && !format!("{e:?}").contains("not-a-real-secret"));
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn five_hundreds_are_retried_then_succeed_or_fail() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(4096));
    let proxy = TestProxy::start(&s3.endpoint()).await.unwrap();
    let c = S3Client::new(config(proxy.endpoint())).unwrap();
    proxy.add(Rule::new(Fault::Status(500)).method("GET").times(2));
    assert_eq!(c.get_range("k", 0, 4096).await.unwrap(), data(4096));
    assert_eq!(c.stats().retries, 2);
    assert_eq!(proxy.faults(), 2);

    proxy.add(Rule::new(Fault::Status(503)).method("GET"));
    let mut cfg = config(proxy.endpoint());
    cfg.retries = 2;
    let c2 = S3Client::new(cfg).unwrap();
    let e = c2.get_range("k", 0, 4096).await.unwrap_err();
    assert_eq!((e.errno(), e.http_status()), (Errno::EIO, Some(503)));
    assert!(e.to_string().contains("HTTP 503 Service Unavailable (SlowDown) (3 attempts)"), "{e}");
    let st = c2.stats();
    assert_eq!((st.retries, st.requests, st.failures.http), (2, 3, 1));
}

#[tokio::test]
async fn slow_replies_time_out() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(4096));
    let proxy = TestProxy::start(&s3.endpoint()).await.unwrap();
    proxy.add(Rule::new(Fault::Delay(Duration::from_secs(2))));
    let mut cfg = config(proxy.endpoint());
    cfg.timeout = Duration::from_millis(100);
    cfg.retries = 1;
    let c = S3Client::new(cfg).unwrap();
    let t0 = std::time::Instant::now();
    let e = c.get_range("k", 0, 4096).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!((e.kind(), e.errno()), (S3ErrorKind::Timeout, Errno::ETIMEDOUT));
    assert_eq!((c.stats().retries, c.stats().failures.timeout), (1, 1));
    // One slow reply, then a fast one: the retry succeeds.
    proxy.clear();
    proxy.add(Rule::new(Fault::Delay(Duration::from_secs(2))).times(1));
    assert_eq!(c.get_range("k", 0, 4096).await.unwrap().len(), 4096);
}

#[tokio::test]
async fn broken_bodies_are_bad_data() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(8192));
    let proxy = TestProxy::start(&s3.endpoint()).await.unwrap();
    let c = S3Client::new(config(proxy.endpoint())).unwrap();
    proxy.add(Rule::new(Fault::Truncate(1000)).times(1));
    let e = c.get_range("k", 0, 4096).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (S3ErrorKind::BadData, Errno::EIO));
    assert!(e.to_string().contains("Content-Length 1000"), "{e}");
    // Flipped bytes pass HTTP but not the manifest.
    let m = Manifest::build(&data(8192)[..], 4096).unwrap();
    proxy.add(Rule::new(Fault::FlipBytes { offset: 10, count: 3 }).times(1));
    let got = c.get_range("k", 4096, 4096).await.unwrap();
    let e = m.verify(1, &got).unwrap_err();
    assert_eq!(e.errno(), Errno::EIO);
    assert!(e.to_string().contains("object 1: sha256 mismatch"), "{e}");
    m.verify(1, &c.get_range("k", 4096, 4096).await.unwrap()).unwrap();
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(100));
    let proxy = TestProxy::start(&s3.endpoint()).await.unwrap();
    proxy.add(Rule::new(Fault::Drop).times(1));
    let c = S3Client::new(config(proxy.endpoint())).unwrap();
    assert_eq!(c.get("k").await.unwrap(), data(100));
    assert_eq!(c.stats().retries, 1);
}

#[tokio::test]
async fn refused_connections_are_econnrefused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = config(format!("http://127.0.0.1:{port}"));
    cfg.retries = 2;
    let c = S3Client::new(cfg).unwrap();
    let e = c.head("k").await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (S3ErrorKind::Connect, Errno(111)));
    assert!(e.to_string().contains("connection refused (3 attempts)"), "{e}");
    assert_eq!(c.stats().failures.connect, 1);
}

#[tokio::test]
async fn put_large_uses_multipart_and_aborts_on_failure() {
    let s3 = FakeS3::start().await.unwrap();
    let c = S3Client::new(config(s3.endpoint())).unwrap();
    let body = data(12 << 20);
    c.put_large("big", &body[..], MIN_PART_SIZE).await.unwrap();
    assert_eq!(s3.object("/bkt/big").unwrap(), body);
    assert_eq!(c.stats().puts, 3, "3 parts");
    // Fits in one part: one PUT.
    c.put_large("small", &body[..1000], MIN_PART_SIZE).await.unwrap();
    assert_eq!(s3.object("/bkt/small").unwrap(), body[..1000]);
    // Exactly one part: a multipart upload of one part (the empty tail is not sent).
    c.put_large("one", &body[..MIN_PART_SIZE], MIN_PART_SIZE).await.unwrap();
    assert_eq!(s3.object("/bkt/one").unwrap().len(), MIN_PART_SIZE);
    assert_eq!(c.put_large("x", &body[..], 1 << 20).await.unwrap_err().errno(), Errno::EINVAL);

    let proxy = TestProxy::start(&s3.endpoint()).await.unwrap();
    proxy.add(Rule::new(Fault::Status(403)).path_contains("partNumber=2"));
    let cp = S3Client::new(config(proxy.endpoint())).unwrap();
    let e = cp.put_large("failed", &body[..], MIN_PART_SIZE).await.unwrap_err();
    assert_eq!(e.errno(), Errno::EACCES);
    assert_eq!(s3.open_uploads(), 0, "the upload was aborted");
    assert!(s3.object("/bkt/failed").is_none());
}

#[tokio::test]
async fn the_proxy_stops_when_dropped() {
    let s3 = FakeS3::start().await.unwrap();
    s3.insert("/bkt/k", data(10));
    let proxy = TestProxy::start(&s3.endpoint()).await.unwrap();
    let mut cfg = config(proxy.endpoint());
    cfg.retries = 0;
    let c = S3Client::new(cfg).unwrap();
    c.get("k").await.unwrap();
    drop(proxy);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = c.get("k").await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
}

//! The S3 client: pooled keep-alive HTTP/1.1 (TLS by rustls with ring), SigV4 or anonymous,
//! bounded retries with jittered exponential backoff, strict checking of ranged replies.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use http::header::{HeaderName, CONTENT_LENGTH, CONTENT_RANGE, ETAG, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::Instrument;

use super::error::S3Error;
use super::sigv4::{self, Signer, UNSIGNED_PAYLOAD};
use super::stats::{Counters, S3Stats};
use super::trust::{CertEnv, Trust};
use super::url::{Endpoint, Target};

/// The smallest part S3 (and radosgw, `rgw_multipart_min_part_size`) accepts, but the last.
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The most parts one multipart upload may have.
pub const MAX_PARTS: u32 = 10_000;
/// Parts [`S3Client::put_large`] keeps in flight (each holds `part_size` bytes).
const PUT_LARGE_CONCURRENCY: usize = 4;
/// Bodies up to this size are signed with their SHA-256; bigger ones as `UNSIGNED-PAYLOAD`.
const HASHED_BODY_MAX: usize = 64 << 10;
/// How much of an error reply is read to find its S3 error code.
const ERROR_BODY_MAX: usize = 64 << 10;
/// The header that carries (and signs) an STS session token.
const SECURITY_TOKEN: &str = "x-amz-security-token";
/// First backoff step and its cap.
const BACKOFF_START: Duration = Duration::from_millis(20);
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// An S3 key pair. `Debug` shows the access key only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (not secret; it appears in `Authorization` and in logs).
    pub access_key: String,
    /// The secret key. Never logged, never in an error message.
    pub secret_key: String,
    /// An STS session token (temporary credentials), sent and signed as
    /// `x-amz-security-token`. Secret like the key.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials (no session token).
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Credentials {
        Credentials { access_key: access_key.into(), secret_key: secret_key.into(), session_token: None }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where and how to reach one bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `http://host[:port]` or `https://host[:port]`, nothing else (no user info, no path).
    pub endpoint: String,
    /// The SigV4 region (`us-east-1` for a default radosgw zonegroup).
    pub region: String,
    /// The bucket every object operation addresses.
    pub bucket: String,
    /// `None` sends anonymous requests (no `Authorization`), for public-read objects.
    pub credentials: Option<Credentials>,
    /// Limit on one HTTP exchange (connect, send, whole reply body), per attempt.
    pub timeout: Duration,
    /// Retries after the first attempt, for timeouts, connection failures and 5xx.
    pub retries: u32,
    /// `/<bucket>/<key>` on the endpoint host (radosgw's default) rather than
    /// `<bucket>.<host>/<key>`.
    pub path_style: bool,
    /// PEM certificates of the CAs to trust for `https://`, in place of any other roots
    /// (a private CA). `None` trusts `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set
    /// (one that cannot be read or holds no certificate is EINVAL), else the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Where `ca_pem` came from (`--ca-file /etc/ca.pem`, `AWS_CA_BUNDLE=/etc/ca.pem`), named
    /// in certificate errors; `None` names the S3 settings' CA file (`s3.ca_file`).
    pub ca_origin: Option<String>,
}

impl S3Config {
    /// A configuration with the defaults: anonymous, 30 s timeout, 3 retries, path style.
    pub fn new(endpoint: impl Into<String>, region: impl Into<String>, bucket: impl Into<String>) -> S3Config {
        S3Config {
            endpoint: endpoint.into(),
            region: region.into(),
            bucket: bucket.into(),
            credentials: None,
            timeout: Duration::from_secs(30),
            retries: 3,
            path_style: true,
            ca_pem: None,
            ca_origin: None,
        }
    }
}

/// What `HEAD` says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes (`Content-Length`).
    pub size: u64,
    /// The ETag without its quotes (empty if the server sent none).
    pub etag: String,
    /// `x-amz-version-id`, when the bucket has versioning.
    pub version_id: Option<String>,
}

/// What a ranged GET must still find: the object as attached. The GET carries `If-Match`
/// (and `versionId`, which then reads that version even after the key is overwritten).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectPin {
    /// The ETag (unquoted) the object had when attached.
    pub etag: String,
    /// Its version id, when the bucket has versioning.
    pub version_id: Option<String>,
}

/// One uploaded part of a multipart upload, as `complete_multipart` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// The part's ETag, without quotes.
    pub etag: String,
}

/// Optional headers for PUTs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// A canned ACL (`x-amz-acl`), e.g. `public-read`.
    pub acl: Option<String>,
    /// `Content-Type` (default: none sent).
    pub content_type: Option<String>,
}

impl PutOptions {
    /// Sets `acl`: A canned ACL (`x-amz-acl`), e.g. `public-read`.
    pub fn with_acl(mut self, acl: impl Into<String>) -> Self {
        self.acl = Some(acl.into());
        self
    }

    /// Sets `content_type`: `Content-Type` (default: none sent).
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An S3 client for one bucket. Cheap to clone: clones share the connection pool and the
/// counters.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: S3Config,
    ep: Endpoint,
    /// What a certificate error says about the CAs trusted (`Trust::describe`).
    trusted: String,
    http: HttpClient,
    stats: Counters,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client").field("config", &self.inner.cfg).finish_non_exhaustive()
    }
}

/// One request to make (and re-make on retry).
struct Req<'a> {
    method: Method,
    bucket: &'a str,
    key: Option<&'a str>,
    query: &'a [(&'a str, &'a str)],
    headers: Vec<(HeaderName, String)>,
    body: Bytes,
    /// Shown after the URL in messages (`bytes=0-4095`).
    label: Option<String>,
    /// The most body bytes a successful reply may carry (more is bad data).
    body_limit: Option<usize>,
}

impl<'a> Req<'a> {
    fn new(method: Method, bucket: &'a str, key: Option<&'a str>) -> Req<'a> {
        Req { method, bucket, key, query: &[], headers: Vec::new(), body: Bytes::new(), label: None, body_limit: None }
    }
}

/// A reply with its whole body (a `Vec`: what callers keep, with no conversion that copies).
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl S3Client {
    /// A client for `cfg`. Checks the endpoint (EINVAL); connects lazily.
    pub fn new(cfg: S3Config) -> Result<S3Client, S3Error> {
        let ep = Endpoint::parse(&cfg.endpoint)?;
        if cfg.bucket.is_empty() {
            return Err(S3Error::invalid("config", "no bucket"));
        }
        if cfg.region.is_empty() {
            return Err(S3Error::invalid("config", "no region"));
        }
        if cfg.timeout.is_zero() {
            return Err(S3Error::invalid("config", "timeout must be positive"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = || {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| S3Error::invalid("config", format!("TLS setup: {e}")))
        };
        let (tls, trusted) = if ep.tls {
            let (trust, builder) = Trust::build(&cfg, &CertEnv::from_process(), versions)?;
            (builder.with_no_client_auth(), trust.describe())
        } else {
            (versions()?.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth(), String::new())
        };
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(cfg.timeout));
        let https = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(64)
            .build(https);
        Ok(S3Client { inner: Arc::new(Inner { cfg, ep, trusted, http, stats: Counters::default() }) })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &S3Config {
        &self.inner.cfg
    }

    /// A snapshot of the counters (shared by all clones of this client).
    pub fn stats(&self) -> S3Stats {
        self.inner.stats.snapshot()
    }

    /// The URL of `key` in the configured bucket (for messages; never holds credentials).
    pub fn url(&self, key: &str) -> String {
        Target::new(&self.inner.ep, self.inner.cfg.path_style, &self.inner.cfg.bucket, Some(key), &[]).to_string()
    }

    /// `HEAD`: the object's size and ETag. ENOENT if missing, EACCES if not allowed.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, S3Error> {
        let r = self.execute(Req::new(Method::HEAD, &self.inner.cfg.bucket, Some(key))).await?;
        let what = format!("HEAD {}", self.url(key));
        let size = header_u64(&r.headers, &CONTENT_LENGTH).ok_or_else(|| self.bad(&what, key, "no valid Content-Length"))?;
        let version_id = r.headers.get("x-amz-version-id").and_then(|v| v.to_str().ok()).map(str::to_string).filter(|v| !v.is_empty() && v != "null");
        Ok(ObjectInfo { size, etag: etag(&r.headers), version_id })
    }

    /// Bytes `[start, start + len)` of `key`, by `Range: bytes=start-(start+len-1)`.
    ///
    /// Accepts a 206 whose `Content-Range` is exactly that range and whose body is exactly
    /// `len` bytes, or a 200 only when the whole object is that range (`start == 0` and the
    /// object is `len` bytes). Anything else, including a short range at the end of the
    /// object, is bad data (EIO): ask only for bytes that exist. `len == 0` is EINVAL.
    pub async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Vec<u8>, S3Error> {
        self.get_range_pinned(key, start, len, None).await
    }

    /// [`get_range`](Self::get_range) of the object as `pin` says it was: `If-Match` its
    /// ETag (and `versionId` when pinned). A changed object fails with
    /// [`S3ErrorKind::Changed`](super::S3ErrorKind::Changed) (`ESTALE`), naming the old and
    /// the new ETag.
    pub async fn get_range_pinned(&self, key: &str, start: u64, len: u64, pin: Option<&ObjectPin>) -> Result<Vec<u8>, S3Error> {
        let range = range_header(start, len)
            .ok_or_else(|| self.fail(S3Error::invalid(format!("GET {}", self.url(key)), format!("bad range: {len} bytes at {start}"))))?;
        let limit = usize::try_from(len).map_err(|_| self.fail(S3Error::invalid(format!("GET {}", self.url(key)), "range too large")))?;
        let mut req = Req::new(Method::GET, &self.inner.cfg.bucket, Some(key));
        req.headers.push((http::header::RANGE, range.clone()));
        let version;
        if let Some(p) = pin {
            req.headers.push((http::header::IF_MATCH, format!("\"{}\"", p.etag)));
            if let Some(v) = &p.version_id {
                version = [("versionId", v.as_str())];
                req.query = &version;
            }
        }
        req.label = Some(range.clone());
        req.body_limit = Some(limit);
        let what = format!("GET {} {range}", self.url(key));
        let r = match self.execute(req).await {
            Ok(r) => r,
            Err(e) if e.http_status() == Some(412) && pin.is_some() => {
                let now = self.head(key).await.map(|i| i.etag).unwrap_or_default();
                return Err(self.fail(S3Error::changed(&what, &pin.map(|p| p.etag.clone()).unwrap_or_default(), &now).at(&self.url(key))));
            }
            Err(e) => return Err(e),
        };
        check_range_reply(r.status, &r.headers, r.body.len(), start, len).map_err(|d| self.bad(&what, key, d))?;
        self.inner.stats.get_ok(r.body.len());
        Ok(r.body)
    }

    /// The whole object.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        let r = self.execute(Req::new(Method::GET, &self.inner.cfg.bucket, Some(key))).await?;
        if let Some(n) = header_u64(&r.headers, &CONTENT_LENGTH) {
            if n != r.body.len() as u64 {
                return Err(self.bad(&format!("GET {}", self.url(key)), key, format!("Content-Length {n} but {} body bytes", r.body.len())));
            }
        }
        self.inner.stats.get_ok(r.body.len());
        Ok(r.body)
    }

    /// `PUT` of a whole object; returns its ETag (unquoted).
    pub async fn put(&self, key: &str, body: impl Into<Bytes>) -> Result<String, S3Error> {
        self.put_with(key, body, &PutOptions::default()).await
    }

    /// `PUT` with an ACL or content type.
    pub async fn put_with(&self, key: &str, body: impl Into<Bytes>, opts: &PutOptions) -> Result<String, S3Error> {
        let mut req = Req::new(Method::PUT, &self.inner.cfg.bucket, Some(key));
        req.body = body.into();
        put_headers(&mut req, opts);
        let n = req.body.len();
        let r = self.execute(req).await?;
        self.inner.stats.put_ok(n);
        Ok(etag(&r.headers))
    }

    /// `DELETE` of an object (S3 answers success for a missing key too).
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.execute(Req::new(Method::DELETE, &self.inner.cfg.bucket, Some(key))).await.map(drop)
    }

    /// Creates `bucket` (on this client's endpoint). Succeeds if we already own it.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        match self.execute(Req::new(Method::PUT, bucket, None)).await {
            Ok(_) => Ok(()),
            Err(e) if e.s3_code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Starts a multipart upload of `key`; returns the upload id.
    pub async fn create_multipart(&self, key: &str, opts: &PutOptions) -> Result<String, S3Error> {
        let mut req = Req::new(Method::POST, &self.inner.cfg.bucket, Some(key));
        req.query = &[("uploads", "")];
        put_headers(&mut req, opts);
        let r = self.execute(req).await?;
        match xml_text(&r.body, "UploadId") {
            Some(id) if !id.is_empty() => Ok(id),
            _ => Err(self.bad(&format!("POST {}?uploads=", self.url(key)), key, "no UploadId in the reply")),
        }
    }

    /// Uploads part `part_number` (1..=10000) of an upload; returns it for `complete_multipart`.
    pub async fn upload_part(&self, key: &str, upload_id: &str, part_number: u32, body: impl Into<Bytes>) -> Result<CompletedPart, S3Error> {
        if part_number == 0 || part_number > MAX_PARTS {
            return Err(self.fail(S3Error::invalid(format!("PUT {}", self.url(key)), format!("part number {part_number} not in 1..={MAX_PARTS}"))));
        }
        let pn = part_number.to_string();
        let query = [("partNumber", pn.as_str()), ("uploadId", upload_id)];
        let mut req = Req::new(Method::PUT, &self.inner.cfg.bucket, Some(key));
        req.query = &query;
        req.body = body.into();
        req.label = Some(format!("part {part_number}"));
        let n = req.body.len();
        let r = self.execute(req).await?;
        let etag = etag(&r.headers);
        if etag.is_empty() {
            return Err(self.bad(&format!("PUT {} part {part_number}", self.url(key)), key, "no ETag in the reply"));
        }
        self.inner.stats.put_ok(n);
        Ok(CompletedPart { part_number, etag })
    }

    /// Completes an upload from its parts (sorted by part number); returns the object's ETag.
    pub async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[CompletedPart]) -> Result<String, S3Error> {
        let mut sorted = parts.to_vec();
        sorted.sort_by_key(|p| p.part_number);
        let mut xml = String::from("<CompleteMultipartUpload>");
        for p in &sorted {
            xml.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>&quot;{}&quot;</ETag></Part>", p.part_number, xml_escape(&p.etag)));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let query = [("uploadId", upload_id)];
        let mut req = Req::new(Method::POST, &self.inner.cfg.bucket, Some(key));
        req.query = &query;
        req.body = Bytes::from(xml);
        req.headers.push((http::header::CONTENT_TYPE, "application/xml".into()));
        let r = self.execute(req).await?;
        // S3 may answer 200 and report the failure in the body.
        if let Some(code) = xml_text(&r.body, "Code").filter(|_| find(&r.body, b"<Error>").is_some()) {
            return Err(self.bad(&format!("POST {}?uploadId=...", self.url(key)), key, format!("CompleteMultipartUpload failed: {code}")));
        }
        match xml_text(&r.body, "ETag").map(|e| e.trim_matches('"').to_string()) {
            Some(etag) if !etag.is_empty() => Ok(etag),
            // radosgw (Pacific) answers `<ETag></ETag>`: ask for it.
            _ => Ok(self.head(key).await?.etag),
        }
    }

    /// Aborts an upload, freeing its parts.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        let query = [("uploadId", upload_id)];
        let mut req = Req::new(Method::DELETE, &self.inner.cfg.bucket, Some(key));
        req.query = &query;
        self.execute(req).await.map(drop)
    }

    /// Uploads everything `reader` yields as `key`: one PUT if it fits in one part, else a
    /// multipart upload of `part_size` parts (at least [`MIN_PART_SIZE`]), a few in flight.
    /// On any failure the upload is aborted, so no partial object is left. Returns the ETag.
    pub async fn put_large<R: AsyncRead + Unpin>(&self, key: &str, reader: R, part_size: usize) -> Result<String, S3Error> {
        self.put_large_with(key, reader, part_size, &PutOptions::default()).await
    }

    /// [`put_large`](Self::put_large) with an ACL or content type.
    pub async fn put_large_with<R: AsyncRead + Unpin>(&self, key: &str, mut reader: R, part_size: usize, opts: &PutOptions) -> Result<String, S3Error> {
        let what = || format!("PUT {}", self.url(key));
        if part_size < MIN_PART_SIZE {
            return Err(self.fail(S3Error::invalid(what(), format!("part size {part_size} below the S3 minimum {MIN_PART_SIZE}"))));
        }
        let first = read_part(&mut reader, part_size).await.map_err(|e| self.fail(S3Error::io(what(), e)))?;
        if first.len() < part_size {
            return self.put_with(key, first, opts).await;
        }
        let upload_id = self.create_multipart(key, opts).await?;
        let upload = async {
            let mut parts = Vec::new();
            let mut pending = FuturesUnordered::new();
            let mut buf = first;
            let mut n = 0u32;
            loop {
                n += 1;
                if n > MAX_PARTS {
                    return Err(self.fail(S3Error::invalid(what(), format!("more than {MAX_PARTS} parts of {part_size} bytes"))));
                }
                pending.push(self.upload_part(key, &upload_id, n, buf));
                if pending.len() >= PUT_LARGE_CONCURRENCY {
                    parts.push(pending.next().await.expect("non-empty")?);
                }
                buf = read_part(&mut reader, part_size).await.map_err(|e| self.fail(S3Error::io(what(), e)))?;
                if buf.is_empty() {
                    break;
                }
            }
            while let Some(p) = pending.next().await {
                parts.push(p?);
            }
            self.complete_multipart(key, &upload_id, &parts).await
        };
        match upload.await {
            Ok(etag) => Ok(etag),
            Err(e) => {
                if let Err(abort) = self.abort_multipart(key, &upload_id).await {
                    tracing::warn!(error = %abort, "s3: aborting a failed multipart upload failed too");
                }
                Err(e)
            }
        }
    }

    /// [`put_large`](Self::put_large) from a local file.
    pub async fn put_file(&self, key: &str, path: &std::path::Path, part_size: usize) -> Result<String, S3Error> {
        let f = tokio::fs::File::open(path).await.map_err(|e| self.fail(S3Error::io(format!("PUT {} from {}", self.url(key), path.display()), e)))?;
        self.put_large(key, f, part_size).await
    }

    // ------------------------------------------------------------------ plumbing

    /// Counts a final failure and hands it back.
    fn fail(&self, e: S3Error) -> S3Error {
        self.inner.stats.failure(e.kind());
        e
    }

    fn bad(&self, what: &str, key: &str, detail: impl Into<String>) -> S3Error {
        self.fail(S3Error::bad_data(what, detail).at(&self.url(key)))
    }

    /// Sends `req` with retries; returns a 2xx reply or the final error.
    async fn execute(&self, req: Req<'_>) -> Result<Resp, S3Error> {
        let cfg = &self.inner.cfg;
        let target = Target::new(&self.inner.ep, cfg.path_style, req.bucket, req.key, req.query);
        let url = target.to_string();
        let what = match &req.label {
            Some(l) => format!("{} {url} {l}", req.method),
            None => format!("{} {url}", req.method),
        };
        let span = tracing::debug_span!("s3", method = %req.method, url = %url, range = req.label.as_deref().unwrap_or(""));
        async {
            let mut attempt = 0u32;
            loop {
                let t0 = Instant::now();
                let r = tokio::time::timeout(cfg.timeout, self.once(&target, &req, &what)).await;
                let took = t0.elapsed();
                self.inner.stats.exchange(took);
                let err = match r {
                    Ok(Ok(resp)) if resp.status.is_success() => {
                        tracing::debug!(status = resp.status.as_u16(), bytes = resp.body.len(), took_us = took.as_micros() as u64, "s3 ok");
                        return Ok(resp);
                    }
                    Ok(Ok(resp)) => S3Error::status(&what, resp.status, xml_text(&resp.body, "Code").as_deref()),
                    Ok(Err(e)) => e,
                    Err(_) => S3Error::timeout(&what, cfg.timeout),
                }
                .at(&url);
                if err.is_retryable() && attempt < cfg.retries {
                    attempt += 1;
                    self.inner.stats.retry();
                    let delay = backoff(attempt);
                    tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, error = %err, "s3 retry");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                let err = if attempt > 0 { err.note(format_args!("{} attempts", attempt + 1)) } else { err };
                tracing::debug!(error = %err, "s3 failed");
                return Err(self.fail(err));
            }
        }
        .instrument(span)
        .await
    }

    /// One attempt: sign, send, read the whole reply.
    async fn once(&self, target: &Target, req: &Req<'_>, what: &str) -> Result<Resp, S3Error> {
        let cfg = &self.inner.cfg;
        let uri = format!("{}://{}{}", target.scheme, target.authority, target.path_and_query());
        let mut b = Request::builder().method(req.method.clone()).uri(uri).header(HOST, &target.authority);
        for (n, v) in &req.headers {
            b = b.header(n, v);
        }
        if matches!(req.method, Method::PUT | Method::POST) {
            b = b.header(CONTENT_LENGTH, req.body.len());
        }
        if let Some(c) = &cfg.credentials {
            let date = sigv4::amz_date(SystemTime::now());
            let payload = if req.body.len() <= HASHED_BODY_MAX && !req.body.is_empty() { sigv4::sha256_hex(&req.body) } else { UNSIGNED_PAYLOAD.to_string() };
            let mut signed: Vec<(&str, &str)> = vec![("host", &target.authority), ("x-amz-content-sha256", &payload), ("x-amz-date", &date)];
            // Temporary credentials: the token is a signed header (as the SDKs send it).
            if let Some(t) = &c.session_token {
                signed.push((SECURITY_TOKEN, t));
            }
            signed.extend(req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let signer = Signer { access_key: &c.access_key, secret_key: &c.secret_key, region: &cfg.region, service: "s3" };
            let auth = sigv4::authorization(
                &signer,
                &sigv4::Request {
                    method: req.method.as_str(),
                    path: &target.path,
                    query: &target.query,
                    headers: &signed,
                    payload_hash: &payload,
                    amz_date: &date,
                },
            );
            let mut auth = HeaderValue::from_str(&auth).map_err(|_| S3Error::invalid(what, "access key is not a valid header value"))?;
            auth.set_sensitive(true);
            b = b.header("x-amz-content-sha256", payload).header("x-amz-date", date).header(http::header::AUTHORIZATION, auth);
            if let Some(t) = &c.session_token {
                let mut v = HeaderValue::from_str(t).map_err(|_| S3Error::invalid(what, "session token is not a valid header value"))?;
                v.set_sensitive(true);
                b = b.header(SECURITY_TOKEN, v);
            }
        }
        let request = b.body(Full::new(req.body.clone())).map_err(|e| S3Error::invalid(what, format!("cannot build the request: {e}")))?;
        let resp = self.inner.http.request(request).await.map_err(|e| S3Error::transport(what, e, &self.inner.trusted))?;
        let (parts, body) = resp.into_parts();
        let body = if parts.status.is_success() {
            let limit = req.body_limit.unwrap_or(usize::MAX);
            read_limited(body, limit, header_u64(&parts.headers, &CONTENT_LENGTH)).await.map_err(|e| match e {
                LimitedBody::TooLong => S3Error::bad_data(what, format!("HTTP {}: body longer than the {limit} bytes asked for", parts.status.as_u16())),
                LimitedBody::Body(e) => S3Error::body(what, Box::new(e)),
            })?
        } else {
            // Only to find the error code; an unreadable error body is no extra failure.
            Limited::new(body, ERROR_BODY_MAX).collect().await.map(|c| c.to_bytes().to_vec()).unwrap_or_default()
        };
        Ok(Resp { status: parts.status, headers: parts.headers, body })
    }
}

/// The most [`read_limited`] allocates before the bytes arrive.
const PREALLOC_MAX: usize = 64 << 20;

enum LimitedBody {
    TooLong,
    Body(hyper::Error),
}

/// A reply body of at most `limit` bytes, copied once into a buffer sized up front (from
/// `Content-Length` when it is within the limit): collecting the frames first and joining
/// them after would copy every byte twice and hold both copies of a 4 MiB range at once.
async fn read_limited(mut body: hyper::body::Incoming, limit: usize, content_length: Option<u64>) -> Result<Vec<u8>, LimitedBody> {
    // Never more up front than a range we ask for, or a few MiB when the server alone says
    // how long the body is.
    let cap = content_length.and_then(|n| usize::try_from(n).ok()).filter(|&n| n <= limit).map_or(0, |n| n.min(PREALLOC_MAX));
    let mut out = Vec::with_capacity(cap);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(LimitedBody::Body)?;
        if let Some(chunk) = frame.data_ref() {
            if out.len() + chunk.len() > limit {
                return Err(LimitedBody::TooLong);
            }
            out.extend_from_slice(chunk);
        }
    }
    Ok(out)
}

/// Delay before retry `attempt` (1-based): 20 ms doubling per attempt, capped at 1 s,
/// uniformly jittered over its upper half.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_START.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(BACKOFF_CAP);
    let half = base / 2;
    half + half.mul_f64(fastrand::f64())
}

/// `bytes=start-end` for `len` bytes at `start`; `None` for an empty or overflowing range.
pub(crate) fn range_header(start: u64, len: u64) -> Option<String> {
    let end = start.checked_add(len.checked_sub(1)?)?;
    Some(format!("bytes={start}-{end}"))
}

/// Parses `Content-Range: bytes first-last/total` (total may be `*`).
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.trim().split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if b < a || total.is_some_and(|t| b >= t) {
        return None;
    }
    Some((a, b, total))
}

/// Checks a reply to `Range: bytes=start-(start+len-1)`; `Err` says why it is bad data.
pub(crate) fn check_range_reply(status: StatusCode, headers: &HeaderMap, body_len: usize, start: u64, len: u64) -> Result<(), String> {
    let cl = header_u64(headers, &CONTENT_LENGTH);
    match status.as_u16() {
        206 => {
            let cr = headers.get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).ok_or("HTTP 206 without Content-Range")?;
            let (a, b, _) = parse_content_range(cr).ok_or_else(|| format!("HTTP 206 with a bad Content-Range {cr:?}"))?;
            if a != start || b != start + len - 1 {
                return Err(format!("HTTP 206 for the wrong range: Content-Range {cr:?}"));
            }
        }
        200 => {
            if start != 0 || body_len as u64 != len {
                return Err(format!("HTTP 200 (the whole object, {body_len} bytes) where only the range would do"));
            }
        }
        s => return Err(format!("HTTP {s} to a range request")),
    }
    if let Some(n) = cl.filter(|&n| n != len) {
        return Err(format!("Content-Length {n} for a {len}-byte range"));
    }
    if body_len as u64 != len {
        return Err(format!("{} body: {body_len} of {len} bytes", if (body_len as u64) < len { "short" } else { "long" }));
    }
    Ok(())
}

fn header_u64(h: &HeaderMap, name: &HeaderName) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn etag(h: &HeaderMap) -> String {
    h.get(ETAG).and_then(|v| v.to_str().ok()).map(|s| s.trim().trim_matches('"').to_string()).unwrap_or_default()
}

fn put_headers(req: &mut Req<'_>, opts: &PutOptions) {
    if let Some(acl) = &opts.acl {
        req.headers.push((HeaderName::from_static("x-amz-acl"), acl.clone()));
    }
    if let Some(ct) = &opts.content_type {
        req.headers.push((http::header::CONTENT_TYPE, ct.clone()));
    }
}

/// Fills up to `size` bytes from `r` (fewer only at end of input).
async fn read_part<R: AsyncRead + Unpin>(r: &mut R, size: usize) -> std::io::Result<Bytes> {
    let mut buf = Vec::with_capacity(size);
    while buf.len() < size {
        let n = (&mut *r).take((size - buf.len()) as u64).read_to_end(&mut buf).await?;
        if n == 0 {
            break;
        }
    }
    Ok(Bytes::from(buf))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The text of the first `<tag>...</tag>` in an XML reply, entities decoded.
pub(crate) fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let a = find(body, open.as_bytes())? + open.len();
    let b = a + find(&body[a..], close.as_bytes())?;
    let s = std::str::from_utf8(&body[a..b]).ok()?;
    Some(s.replace("&quot;", "\"").replace("&apos;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn range_headers() {
        assert_eq!(range_header(0, 4096).unwrap(), "bytes=0-4095");
        assert_eq!(range_header(8 << 20, 1 << 20).unwrap(), "bytes=8388608-9437183");
        assert_eq!(range_header(5, 1).unwrap(), "bytes=5-5");
        assert_eq!(range_header(5, 0), None);
        assert_eq!(range_header(u64::MAX, 2), None);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, Some(100))));
        assert_eq!(parse_content_range("bytes 5-5/*"), Some((5, 5, None)));
        assert_eq!(parse_content_range(" bytes  10-19 / 20 "), Some((10, 19, Some(20))));
        for bad in ["bytes */100", "bytes 9-0/100", "bytes 0-100/100", "items 0-9/100", "bytes 0-9", "bytes a-9/10", ""] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn range_replies() {
        let ok206 = headers(&[("content-range", "bytes 100-199/1000"), ("content-length", "100")]);
        assert_eq!(check_range_reply(StatusCode::PARTIAL_CONTENT, &ok206, 100, 100, 100), Ok(()));
        // Wrong range, short and long bodies, lying Content-Length.
        assert!(check_range_reply(StatusCode::PARTIAL_CONTENT, &ok206, 100, 0, 100).unwrap_err().contains("wrong range"));
        assert!(check_range_reply(StatusCode::PARTIAL_CONTENT, &ok206, 99, 100, 100).unwrap_err().contains("short body"));
        assert!(check_range_reply(StatusCode::PARTIAL_CONTENT, &ok206, 101, 100, 100).unwrap_err().contains("long body"));
        let lying = headers(&[("content-range", "bytes 100-199/1000"), ("content-length", "50")]);
        assert!(check_range_reply(StatusCode::PARTIAL_CONTENT, &lying, 100, 100, 100).unwrap_err().contains("Content-Length 50"));
        // A short last range is not what was asked.
        let tail = headers(&[("content-range", "bytes 900-999/1000")]);
        assert!(check_range_reply(StatusCode::PARTIAL_CONTENT, &tail, 100, 900, 200).is_err());
        assert!(check_range_reply(StatusCode::PARTIAL_CONTENT, &HeaderMap::new(), 100, 100, 100).unwrap_err().contains("without Content-Range"));
        // 200 only for the whole object.
        assert_eq!(check_range_reply(StatusCode::OK, &headers(&[("content-length", "100")]), 100, 0, 100), Ok(()));
        assert!(check_range_reply(StatusCode::OK, &HeaderMap::new(), 1000, 0, 100).unwrap_err().contains("HTTP 200"));
        assert!(check_range_reply(StatusCode::OK, &HeaderMap::new(), 100, 100, 100).unwrap_err().contains("HTTP 200"));
        assert!(check_range_reply(StatusCode::NO_CONTENT, &HeaderMap::new(), 0, 0, 1).is_err());
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        for a in 1..40 {
            let d = backoff(a);
            let base = (BACKOFF_START * 2u32.pow((a - 1).min(16))).min(BACKOFF_CAP);
            assert!(d >= base / 2 && d <= base, "attempt {a}: {d:?}");
        }
        assert!(backoff(1) <= Duration::from_millis(20));
        assert!(backoff(30) <= Duration::from_secs(1));
    }

    #[test]
    fn xml() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>a &amp; b</Message></Error>";
        assert_eq!(xml_text(body, "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(xml_text(body, "Message").as_deref(), Some("a & b"));
        assert_eq!(xml_text(body, "UploadId"), None);
        assert_eq!(xml_text(b"<ETag>&quot;abc&quot;</ETag>", "ETag").as_deref(), Some("\"abc\""));
        assert_eq!(xml_escape("a\"<&"), "a&quot;&lt;&amp;");
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let mut cfg = S3Config::new("http://127.0.0.1:1", "us-east-1", "b");
        cfg.credentials = Some(Credentials { session_token: Some("t0ken-value".into()), ..Credentials::new("AKID", "s3cr3t-value") });
        let s = format!("{cfg:?} {:?}", S3Client::new(cfg.clone()).unwrap());
        assert!(!s.contains("s3cr3t-value") && !s.contains("t0ken-value") && s.contains("AKID"), "{s}");
    }

    #[test]
    fn config_checks() {
        let bad = |f: fn(&mut S3Config)| {
            let mut c = S3Config::new("http://127.0.0.1:1", "us-east-1", "b");
            f(&mut c);
            S3Client::new(c).unwrap_err().errno()
        };
        assert_eq!(bad(|c| c.endpoint = "127.0.0.1:1".into()), crate::Errno::EINVAL);
        assert_eq!(bad(|c| c.bucket.clear()), crate::Errno::EINVAL);
        assert_eq!(bad(|c| c.timeout = Duration::ZERO), crate::Errno::EINVAL);
        // https builds a TLS config from the system roots (or Mozilla's).
        S3Client::new(S3Config::new("https://s3.example.com", "us-east-1", "b")).unwrap();
        // A CA file must hold certificates.
        let mut c = S3Config::new("https://s3.example.com", "us-east-1", "b");
        c.ca_pem = Some(b"not a certificate".to_vec());
        assert_eq!(S3Client::new(c).unwrap_err().errno(), crate::Errno::EINVAL);
    }

    #[tokio::test]
    async fn read_part_fills_or_ends() {
        let data = [7u8; 10];
        let mut r = &data[..];
        assert_eq!(read_part(&mut r, 4).await.unwrap().len(), 4);
        assert_eq!(read_part(&mut r, 4).await.unwrap().len(), 4);
        assert_eq!(read_part(&mut r, 4).await.unwrap().len(), 2);
        assert_eq!(read_part(&mut r, 4).await.unwrap().len(), 0);
    }
}

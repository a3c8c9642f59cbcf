//! Test helpers (feature `testproxy`, and unit tests): a fault-injecting HTTP proxy to put
//! between an [`S3Client`](super::S3Client) and a real S3 (radosgw), and [`FakeS3`], a tiny
//! in-memory S3 for tests without a gateway.
//!
//! With the `testproxy` feature, [`TlsFront`] serves TLS with a given certificate in front of
//! a plain HTTP server (radosgw), for tests of private CAs and certificate failures.
//!
//! All listen on `127.0.0.1:0`, serve HTTP/1.1 with keep-alive on tokio, bound their
//! connections and bodies, and stop (closing every connection) when dropped.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use rbd_ext::s3::testproxy::{Fault, Rule, TestProxy};
//! let proxy = TestProxy::start("http://127.0.0.1:7480").await?;
//! proxy.add(Rule::new(Fault::Status(500)).method("GET").path_contains("/bkt/img").times(2));
//! // point S3Config::endpoint at proxy.endpoint() ...
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// Most connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 64;
/// Largest request or reply body handled.
const MAX_BODY: usize = 256 << 20;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Reply = Result<Response<Full<Bytes>>, BoxError>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// The hyper service over a [`Handler`] (a named type: a closure trips rustc's `Send`
/// inference for the spawned connection future).
struct Svc(Handler);

impl hyper::service::Service<Request<Incoming>> for Svc {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Reply> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        (self.0)(req)
    }
}

/// A server task that stops, with all its connections, when dropped.
struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(handler: Handler) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicU64::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            // Owned here, so aborting this task drops (and aborts) every connection.
            let mut conns = JoinSet::new();
            let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            loop {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Relaxed);
                let _ = stream.set_nodelay(true);
                let h = handler.clone();
                conns.spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), Svc(h));
                    let _ = conn.await;
                    drop(permit);
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(Server { addr, connections, task })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with an S3-style XML error body, without forwarding.
    Status(u16),
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward, then keep only the first `n` body bytes; `Content-Length` says `n` too, so
    /// the reply is well-formed but short.
    Truncate(usize),
    /// Forward, then invert `count` body bytes from `offset` (clamped to the body).
    FlipBytes {
        /// First byte flipped.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// Close the connection without answering.
    Drop,
}

/// A fault and the requests it applies to: method, a substring of path-and-query, and how
/// many times (forever unless [`Rule::times`]).
#[derive(Debug, Clone)]
pub struct Rule {
    fault: Fault,
    method: Option<Method>,
    path_contains: Option<String>,
    remaining: Option<u32>,
}

impl Rule {
    /// `fault` for every request, forever.
    pub fn new(fault: Fault) -> Rule {
        Rule { fault, method: None, path_contains: None, remaining: None }
    }

    /// Only requests with this method (`GET`, `HEAD`...).
    pub fn method(mut self, m: &str) -> Rule {
        self.method = Some(Method::from_bytes(m.as_bytes()).expect("a valid method"));
        self
    }

    /// Only requests whose path-and-query contains `s` (as sent, i.e. percent-encoded).
    pub fn path_contains(mut self, s: &str) -> Rule {
        self.path_contains = Some(s.to_string());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Rule {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, method: &Method, pq: &str) -> bool {
        self.remaining != Some(0) && self.method.as_ref().is_none_or(|m| m == method) && self.path_contains.as_deref().is_none_or(|p| pq.contains(p))
    }
}

#[derive(Default)]
struct ProxyState {
    rules: Mutex<Vec<Rule>>,
    requests: AtomicU64,
    faults: AtomicU64,
}

impl ProxyState {
    /// The fault of the first matching rule, counting it down.
    fn take_fault(&self, method: &Method, pq: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let r = rules.iter_mut().find(|r| r.matches(method, pq))?;
        if let Some(n) = &mut r.remaining {
            *n -= 1;
        }
        self.faults.fetch_add(1, Relaxed);
        Some(r.fault.clone())
    }
}

/// A fault-injecting forward proxy in front of one upstream HTTP server.
///
/// Requests are forwarded unchanged, `Host` included (so SigV4 signatures made for the
/// proxy's address stay valid: the gateway checks the `Host` it is given). Replies are read
/// whole, altered by the first matching [`Rule`], and sent back.
pub struct TestProxy {
    server: Server,
    state: Arc<ProxyState>,
}

impl TestProxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> std::io::Result<TestProxy> {
        let upstream = upstream.trim_end_matches('/').to_string();
        if !upstream.starts_with("http://") {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "testproxy forwards to http:// only"));
        }
        let state = Arc::new(ProxyState::default());
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let st = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let (st, client, upstream) = (st.clone(), client.clone(), upstream.clone());
            Box::pin(async move { forward(&st, &client, &upstream, req).await })
        });
        Ok(TestProxy { server: Server::start(handler).await?, state })
    }

    /// `http://127.0.0.1:<port>`, to use as an S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Adds a rule after the existing ones (the first match wins).
    pub fn add(&self, rule: Rule) {
        self.state.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Relaxed)
    }

    /// Faults applied so far.
    pub fn faults(&self) -> u64 {
        self.state.faults.load(Relaxed)
    }

    /// TCP connections accepted so far (keep-alive reuse keeps this low).
    pub fn connections(&self) -> u64 {
        self.server.connections.load(Relaxed)
    }
}

fn error_reply(status: u16) -> Response<Full<Bytes>> {
    let code = match status {
        403 => "AccessDenied",
        404 => "NoSuchKey",
        500 => "InternalError",
        503 => "SlowDown",
        _ => "Injected",
    };
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by testproxy</Message></Error>");
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(http::header::CONTENT_TYPE, "application/xml".parse().unwrap());
    r
}

async fn forward(st: &ProxyState, client: &Client<HttpConnector, Full<Bytes>>, upstream: &str, req: Request<Incoming>) -> Reply {
    st.requests.fetch_add(1, Relaxed);
    let method = req.method().clone();
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let fault = st.take_fault(&method, &pq);
    match &fault {
        Some(Fault::Status(s)) => return Ok(error_reply(*s)),
        Some(Fault::Drop) => return Err("testproxy: dropping the connection".into()),
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY).collect().await?.to_bytes();
    let mut up = Request::builder().method(method.clone()).uri(format!("{upstream}{pq}"));
    for (n, v) in &parts.headers {
        up = up.header(n, v);
    }
    let resp = client.request(up.body(Full::new(body))?).await?;
    let (mut parts, body) = resp.into_parts();
    let mut body = Limited::new(body, MAX_BODY).collect().await?.to_bytes().to_vec();
    match fault {
        Some(Fault::Truncate(n)) => body.truncate(n),
        Some(Fault::FlipBytes { offset, count }) => {
            let end = offset.saturating_add(count).min(body.len());
            body.iter_mut().take(end).skip(offset).for_each(|b| *b ^= 0xff);
        }
        _ => {}
    }
    parts.headers.remove(TRANSFER_ENCODING);
    if method != Method::HEAD {
        parts.headers.insert(CONTENT_LENGTH, body.len().into());
    }
    Ok(Response::from_parts(parts, Full::new(Bytes::from(body))))
}

// ---------------------------------------------------------------------- FakeS3

#[derive(Default)]
struct FakeState {
    objects: Mutex<HashMap<String, Bytes>>,
    uploads: Mutex<HashMap<String, HashMap<u32, Bytes>>>,
    next_upload: AtomicU64,
    requests: AtomicU64,
    signed: AtomicU64,
    ignore_range: std::sync::atomic::AtomicBool,
}

/// A tiny in-memory S3: path-style `PUT`/`GET` (one `Range`, answered 206)/`HEAD`/`DELETE`
/// of objects, bucket `PUT`, and multipart uploads. It checks no signatures (it only counts
/// requests that carry one) and keeps buckets implicit: keys are `/<bucket>/<key>` paths.
pub struct FakeS3 {
    server: Server,
    state: Arc<FakeState>,
}

impl FakeS3 {
    /// Starts an empty store.
    pub async fn start() -> std::io::Result<FakeS3> {
        let state = Arc::new(FakeState::default());
        let st = state.clone();
        let handler: Handler = Arc::new(move |req| {
            let st = st.clone();
            Box::pin(async move { fake_s3(&st, req).await })
        });
        Ok(FakeS3 { server: Server::start(handler).await?, state })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Stores `body` at `path` (`/<bucket>/<key>`, percent-encoded as on the wire).
    pub fn insert(&self, path: &str, body: impl Into<Bytes>) {
        self.state.objects.lock().unwrap().insert(path.to_string(), body.into());
    }

    /// The object at `path`, if any.
    pub fn object(&self, path: &str) -> Option<Bytes> {
        self.state.objects.lock().unwrap().get(path).cloned()
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Relaxed)
    }

    /// Requests that carried an `Authorization` header.
    pub fn signed_requests(&self) -> u64 {
        self.state.signed.load(Relaxed)
    }

    /// Multipart uploads begun and not yet completed or aborted.
    pub fn open_uploads(&self) -> usize {
        self.state.uploads.lock().unwrap().len()
    }

    /// Answers ranged GETs with the whole object and 200, as a server without range
    /// support would.
    pub fn ignore_range(&self, yes: bool) {
        self.state.ignore_range.store(yes, Relaxed);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.server.connections.load(Relaxed)
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn fake_etag(b: &[u8]) -> String {
    format!("\"{}\"", &super::sigv4::sha256_hex(b)[..32])
}

fn parse_range(v: &str, size: u64) -> Option<(u64, u64)> {
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    let a: u64 = a.parse().ok()?;
    let b: u64 = if b.is_empty() { size.checked_sub(1)? } else { b.parse::<u64>().ok()?.min(size.checked_sub(1)?) };
    (a <= b).then_some((a, b))
}

async fn fake_s3(st: &FakeState, req: Request<Incoming>) -> Reply {
    st.requests.fetch_add(1, Relaxed);
    if req.headers().contains_key(http::header::AUTHORIZATION) {
        st.signed.fetch_add(1, Relaxed);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| kv.split_once('=').map_or((kv.to_string(), String::new()), |(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let range = req.headers().get(http::header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = Limited::new(req.into_body(), MAX_BODY).collect().await?.to_bytes();
    let is_bucket = path.trim_start_matches('/').find('/').is_none();
    let not_found = || {
        let mut r = error_reply(404);
        if method == Method::HEAD {
            *r.body_mut() = Full::new(Bytes::new());
        }
        r
    };
    Ok(match method {
        Method::PUT if is_bucket => reply(StatusCode::OK, ""),
        Method::PUT if query.contains_key("uploadId") => {
            let n: u32 = query.get("partNumber").and_then(|p| p.parse().ok()).unwrap_or(0);
            let mut ups = st.uploads.lock().unwrap();
            let Some(up) = ups.get_mut(&query["uploadId"]) else {
                return Ok(error_reply(404));
            };
            let mut r = reply(StatusCode::OK, "");
            r.headers_mut().insert(ETAG, fake_etag(&body).parse().unwrap());
            up.insert(n, body);
            r
        }
        Method::PUT => {
            let mut r = reply(StatusCode::OK, "");
            r.headers_mut().insert(ETAG, fake_etag(&body).parse().unwrap());
            st.objects.lock().unwrap().insert(path, body);
            r
        }
        Method::POST if query.contains_key("uploads") => {
            let id = format!("up{}", st.next_upload.fetch_add(1, Relaxed));
            st.uploads.lock().unwrap().insert(id.clone(), HashMap::new());
            reply(StatusCode::OK, format!("<InitiateMultipartUploadResult><UploadId>{id}</UploadId></InitiateMultipartUploadResult>"))
        }
        Method::POST if query.contains_key("uploadId") => {
            let Some(parts) = st.uploads.lock().unwrap().remove(&query["uploadId"]) else {
                return Ok(error_reply(404));
            };
            let xml = String::from_utf8_lossy(&body).into_owned();
            let mut data = Vec::new();
            for chunk in xml.split("<PartNumber>").skip(1) {
                let n: u32 = chunk.split('<').next().and_then(|s| s.parse().ok()).unwrap_or(0);
                match parts.get(&n) {
                    Some(p) => data.extend_from_slice(p),
                    None => return Ok(error_reply(400)),
                }
            }
            let etag = fake_etag(&data);
            st.objects.lock().unwrap().insert(path, Bytes::from(data));
            reply(StatusCode::OK, format!("<CompleteMultipartUploadResult><ETag>{}</ETag></CompleteMultipartUploadResult>", etag.replace('"', "&quot;")))
        }
        Method::DELETE if query.contains_key("uploadId") => {
            st.uploads.lock().unwrap().remove(&query["uploadId"]);
            reply(StatusCode::NO_CONTENT, "")
        }
        Method::DELETE => {
            st.objects.lock().unwrap().remove(&path);
            reply(StatusCode::NO_CONTENT, "")
        }
        Method::GET | Method::HEAD => {
            let Some(obj) = st.objects.lock().unwrap().get(&path).cloned() else {
                return Ok(not_found());
            };
            let size = obj.len() as u64;
            let head = method == Method::HEAD;
            let mut r = match range.filter(|_| !st.ignore_range.load(Relaxed)) {
                Some(rg) => match parse_range(&rg, size) {
                    Some((a, b)) => {
                        let mut r = reply(StatusCode::PARTIAL_CONTENT, if head { Bytes::new() } else { obj.slice(a as usize..=b as usize) });
                        r.headers_mut().insert(CONTENT_RANGE, format!("bytes {a}-{b}/{size}").parse().unwrap());
                        r
                    }
                    None => return Ok(error_reply(416)),
                },
                None => {
                    let mut r = reply(StatusCode::OK, if head { Bytes::new() } else { obj.clone() });
                    if head {
                        r.headers_mut().insert(CONTENT_LENGTH, size.into());
                    }
                    r
                }
            };
            r.headers_mut().insert(ETAG, fake_etag(&obj).parse().unwrap());
            r
        }
        _ => error_reply(405),
    })
}

/// TLS on `127.0.0.1:0` with a given certificate chain and key, each connection forwarded
/// as plain bytes to an upstream `host:port` (radosgw's HTTP port). Stops accepting when
/// dropped.
#[cfg(feature = "testproxy")]
pub struct TlsFront {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

#[cfg(feature = "testproxy")]
impl TlsFront {
    /// Starts serving `cert_pem` (the server certificate first, then its chain) with the
    /// private key `key_pem` (PKCS#8, PKCS#1 or SEC1 PEM).
    pub async fn start(upstream: &str, cert_pem: &[u8], key_pem: &[u8]) -> std::io::Result<TlsFront> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        let certs = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(format!("certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad(format!("key: {e}")))?;
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|e| bad(format!("TLS config: {e}")))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    // A refused handshake just ends the connection, as a real server's would.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
        Ok(TlsFront { addr, task })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

#[cfg(feature = "testproxy")]
impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

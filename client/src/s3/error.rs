//! What went wrong talking to S3: a kind, the errno it maps to, the request and the status.
//!
//! Messages name the method, the URL (which never carries credentials) and the byte range,
//! then what happened: `s3 GET http://127.0.0.1:8000/bkt/img.raw bytes=0-4095: HTTP 404 Not
//! Found (NoSuchKey)`. No message, and no `Debug` output, ever holds a secret or an
//! `Authorization` header. Wording may change; match on [`S3Error::kind`] or
//! [`S3Error::errno`].

use std::fmt;
use std::time::Duration;

use crate::error::{Errno, Error, Hint};

/// `ECONNREFUSED` (Linux).
pub(crate) const ECONNREFUSED: Errno = Errno(111);
/// `EHOSTUNREACH` (Linux).
pub(crate) const EHOSTUNREACH: Errno = Errno(113);
/// `EPROTO` (Linux): a TLS handshake the client refuses.
pub(crate) const EPROTO: Errno = Errno::EPROTO;

/// What is wrong with the server's certificate, in words, then `trusted`: the CAs the client
/// trusted and how to trust a private CA (`Trust::describe`).
fn tls_detail(e: &rustls::Error, trusted: &str) -> String {
    use rustls::CertificateError as C;
    let what = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "the server's certificate is signed by an unknown issuer (a CA this client does not trust)".to_string(),
            C::NotValidForName | C::NotValidForNameContext { .. } => "the server's certificate does not match the host name (name mismatch)".to_string(),
            C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => "the server's certificate is not valid yet".to_string(),
            C::Revoked => "the server's certificate is revoked".to_string(),
            other => format!("the server's certificate is refused ({other:?})"),
        },
        other => format!("TLS handshake failed: {other}"),
    };
    format!("TLS: {what}; {trusted}")
}

/// The class of an [`S3Error`], which decides its errno and whether it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum S3ErrorKind {
    /// HTTP 404: no such key or bucket (`ENOENT`).
    NotFound,
    /// HTTP 401 or 403: bad signature, wrong key, or no permission (`EACCES`).
    Forbidden,
    /// HTTP 409: the bucket exists and someone else owns it (`EEXIST`).
    Conflict,
    /// No complete answer within the per-request timeout, on every attempt (`ETIMEDOUT`).
    Timeout,
    /// The answer does not match the question: short or long body, wrong `Content-Range`,
    /// a 200 where only a 206 would do, an unreadable XML reply (`EIO`).
    BadData,
    /// Any other HTTP status (`EIO`); 5xx are retried first.
    Http,
    /// No connection: refused (`ECONNREFUSED`), or host unreachable / not resolved
    /// (`EHOSTUNREACH`). Retried.
    Connect,
    /// The connection broke during the exchange (reset, closed early) (`EIO`). Retried.
    Reset,
    /// A bad argument or configuration: endpoint, key, range, part size (`EINVAL`).
    Invalid,
    /// Reading the local source of an upload failed (that error's errno).
    Io,
    /// The object is not the one pinned at attach: `If-Match` failed (HTTP 412), it was
    /// replaced or rewritten (`ESTALE`). Never retried.
    Changed,
    /// The TLS handshake failed: the server's certificate is not trusted (unknown issuer),
    /// not valid for the host, or expired (`EPROTO`). Never retried: it will not change.
    Tls,
}

impl S3ErrorKind {
    /// Every kind, in declaration order (the counters index failures by it).
    pub const ALL: [S3ErrorKind; 12] = [
        S3ErrorKind::NotFound,
        S3ErrorKind::Forbidden,
        S3ErrorKind::Conflict,
        S3ErrorKind::Timeout,
        S3ErrorKind::BadData,
        S3ErrorKind::Http,
        S3ErrorKind::Connect,
        S3ErrorKind::Reset,
        S3ErrorKind::Invalid,
        S3ErrorKind::Io,
        S3ErrorKind::Changed,
        S3ErrorKind::Tls,
    ];

    /// A short lower-case name (`not_found`...), as used in the JSON counters.
    pub fn name(self) -> &'static str {
        match self {
            S3ErrorKind::NotFound => "not_found",
            S3ErrorKind::Forbidden => "forbidden",
            S3ErrorKind::Conflict => "conflict",
            S3ErrorKind::Timeout => "timeout",
            S3ErrorKind::BadData => "bad_data",
            S3ErrorKind::Http => "http",
            S3ErrorKind::Connect => "connect",
            S3ErrorKind::Reset => "reset",
            S3ErrorKind::Invalid => "invalid",
            S3ErrorKind::Io => "io",
            S3ErrorKind::Changed => "changed",
            S3ErrorKind::Tls => "tls",
        }
    }
}

/// An S3 request that failed (after its retries), or one refused before it was sent.
#[derive(thiserror::Error)]
#[error(transparent)]
pub struct S3Error(Box<Repr>);

#[derive(thiserror::Error)]
#[error("s3 {what}: {detail}")]
struct Repr {
    kind: S3ErrorKind,
    errno: Errno,
    /// `METHOD URL [bytes=a-b]`, or what was being checked.
    what: String,
    url: Option<String>,
    status: Option<u16>,
    code: Option<String>,
    detail: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Debug for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Debug for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self;
        let mut d = f.debug_struct("S3Error");
        d.field("kind", &r.kind).field("errno", &r.errno).field("what", &r.what);
        if let Some(s) = r.status {
            d.field("status", &s);
        }
        d.field("detail", &r.detail);
        if let Some(s) = &r.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl S3Error {
    fn new(kind: S3ErrorKind, errno: Errno, what: impl Into<String>, detail: impl Into<String>) -> S3Error {
        S3Error(Box::new(Repr { kind, errno, what: what.into(), url: None, status: None, code: None, detail: detail.into(), source: None }))
    }

    /// A bad argument or configuration (EINVAL).
    pub(crate) fn invalid(what: impl Into<String>, detail: impl Into<String>) -> S3Error {
        S3Error::new(S3ErrorKind::Invalid, Errno::EINVAL, what, detail)
    }

    /// A reply that does not match the request (EIO).
    pub(crate) fn bad_data(what: impl Into<String>, detail: impl Into<String>) -> S3Error {
        S3Error::new(S3ErrorKind::BadData, Errno::EIO, what, detail)
    }

    /// No complete reply within `after` (ETIMEDOUT).
    pub(crate) fn timeout(what: impl Into<String>, after: Duration) -> S3Error {
        S3Error::new(S3ErrorKind::Timeout, Errno::ETIMEDOUT, what, format!("no complete reply within {after:?}"))
    }

    /// A non-2xx status; `code` is the S3 error code from the XML body, if any.
    pub(crate) fn status(what: impl Into<String>, status: http::StatusCode, code: Option<&str>) -> S3Error {
        let (kind, errno) = match status.as_u16() {
            404 => (S3ErrorKind::NotFound, Errno::ENOENT),
            401 | 403 => (S3ErrorKind::Forbidden, Errno::EACCES),
            409 => (S3ErrorKind::Conflict, Errno::EEXIST),
            _ => (S3ErrorKind::Http, Errno::EIO),
        };
        let mut detail = format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
        let detail_trimmed = detail.trim_end().len();
        detail.truncate(detail_trimmed);
        if let Some(c) = code.filter(|c| !c.is_empty()) {
            detail.push_str(&format!(" ({c})"));
        }
        let mut e = S3Error::new(kind, errno, what, detail);
        e.0.status = Some(status.as_u16());
        e.0.code = code.filter(|c| !c.is_empty()).map(str::to_string);
        e
    }

    /// A transport failure from the pooled client: connect failures and broken connections.
    /// A certificate failure ends with `trusted` (the CAs trusted, how to trust one more).
    pub(crate) fn transport(what: impl Into<String>, err: hyper_util::client::legacy::Error, trusted: &str) -> S3Error {
        let io = find_io(&err);
        if let Some(tls) = find_tls(&err) {
            return S3Error::new(S3ErrorKind::Tls, EPROTO, what, tls_detail(tls, trusted)).caused_by(Box::new(err));
        }
        let (kind, errno, detail) = if err.is_connect() {
            match io.map(|e| e.kind()) {
                Some(std::io::ErrorKind::ConnectionRefused) => (S3ErrorKind::Connect, ECONNREFUSED, "connection refused".to_string()),
                Some(std::io::ErrorKind::TimedOut) => (S3ErrorKind::Timeout, Errno::ETIMEDOUT, "connect timed out".to_string()),
                _ => (S3ErrorKind::Connect, EHOSTUNREACH, format!("cannot connect: {}", chain(&err))),
            }
        } else {
            (S3ErrorKind::Reset, Errno::EIO, format!("connection failed: {}", chain(&err)))
        };
        S3Error::new(kind, errno, what, detail).caused_by(Box::new(err))
    }

    /// The object changed since it was pinned: `If-Match` on `old` failed; `new` is its ETag
    /// now (empty if it could not be read).
    pub(crate) fn changed(what: impl Into<String>, old: &str, new: &str) -> S3Error {
        let now = if new.is_empty() { "unknown (HEAD failed)".to_string() } else { new.to_string() };
        let detail = format!(
            "HTTP 412 Precondition Failed: the object changed since it was attached (ETag was {old}, now {now}); \
             nothing was written: attach the new object to a new image, or restore the old one"
        );
        let mut e = S3Error::new(S3ErrorKind::Changed, Errno::ESTALE, what, detail);
        e.0.status = Some(412);
        e
    }

    /// The body broke off while being read.
    pub(crate) fn body(what: impl Into<String>, err: Box<dyn std::error::Error + Send + Sync>) -> S3Error {
        let detail = format!("reading the body: {}", chain(err.as_ref()));
        S3Error::new(S3ErrorKind::Reset, Errno::EIO, what, detail).caused_by(err)
    }

    /// Reading the local upload source failed.
    pub(crate) fn io(what: impl Into<String>, err: std::io::Error) -> S3Error {
        let errno = err.raw_os_error().map(Errno).unwrap_or(Errno::EIO);
        let detail = format!("reading the source: {err}");
        S3Error::new(S3ErrorKind::Io, errno, what, detail).caused_by(Box::new(err))
    }

    fn caused_by(mut self, err: Box<dyn std::error::Error + Send + Sync>) -> S3Error {
        self.0.source = Some(err);
        self
    }

    /// Records the URL the request went to (for [`S3Error::url`]).
    pub(crate) fn at(mut self, url: &str) -> S3Error {
        self.0.url = Some(url.to_string());
        self
    }

    /// Appends to the detail (e.g. how many attempts were made).
    pub(crate) fn note(mut self, more: impl fmt::Display) -> S3Error {
        self.0.detail.push_str(&format!(" ({more})"));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> S3ErrorKind {
        self.0.kind
    }

    /// The errno: `ENOENT` for 404, `EACCES` for 401/403, `ETIMEDOUT`, `EIO` for bad data
    /// and other statuses, `ECONNREFUSED`/`EHOSTUNREACH` when no connection could be made.
    pub fn errno(&self) -> Errno {
        self.0.errno
    }

    /// The HTTP status, when the server answered.
    pub fn http_status(&self) -> Option<u16> {
        self.0.status
    }

    /// The S3 error code of the reply (`NoSuchKey`, `AccessDenied`...), when it had one.
    pub fn s3_code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The URL of the failed request (no credentials in it), when a request was made.
    pub fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }

    /// Whether another attempt may succeed: timeouts, connection failures and 5xx. A 4xx,
    /// bad data or a bad argument is final.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            S3ErrorKind::Timeout | S3ErrorKind::Connect | S3ErrorKind::Reset => true,
            S3ErrorKind::Http => self.0.status.is_some_and(|s| s >= 500),
            _ => false,
        }
    }
}

impl From<S3Error> for Error {
    /// Keeps the message (`s3 GET <url> bytes=a-b: HTTP 404 Not Found (NoSuchKey)`) and the
    /// errno; the [`S3Error`] stays reachable as the source for callers that want the status.
    fn from(e: S3Error) -> Error {
        let hint = (e.kind() == S3ErrorKind::Tls).then_some(Hint::TrustCa);
        let err = Error::new(e.errno(), e.to_string());
        match hint {
            Some(h) => err.hinted(h).with(e),
            None => err.with(e),
        }
    }
}

fn find_io<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = e.source();
    }
    None
}

/// The rustls error behind a transport failure. `io::Error` hides what it wraps from
/// `source()`, so each one met is opened with `get_ref()` as well.
fn find_tls<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if let Some(t) = find_tls(inner) {
                return Some(t);
            }
        }
        cur = e.source();
    }
    None
}

/// `outer: inner: innermost`, for transport errors whose Display alone says little.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let t = e.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errno() {
        let what = "GET http://127.0.0.1:1/b/k bytes=0-4095";
        let e = S3Error::status(what, http::StatusCode::NOT_FOUND, Some("NoSuchKey"));
        assert_eq!((e.kind(), e.errno(), e.http_status()), (S3ErrorKind::NotFound, Errno::ENOENT, Some(404)));
        assert_eq!(e.to_string(), "s3 GET http://127.0.0.1:1/b/k bytes=0-4095: HTTP 404 Not Found (NoSuchKey)");
        let err: Error = e.into();
        assert_eq!(err.to_string(), "s3 GET http://127.0.0.1:1/b/k bytes=0-4095: HTTP 404 Not Found (NoSuchKey): No such file or directory (ENOENT)");
        let src = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<S3Error>()).unwrap();
        assert_eq!(src.http_status(), Some(404));

        assert_eq!(S3Error::status(what, http::StatusCode::FORBIDDEN, None).errno(), Errno::EACCES);
        assert_eq!(S3Error::status(what, http::StatusCode::UNAUTHORIZED, None).errno(), Errno::EACCES);
        assert_eq!(S3Error::status(what, http::StatusCode::CONFLICT, None).errno(), Errno::EEXIST);
        assert_eq!(S3Error::status(what, http::StatusCode::RANGE_NOT_SATISFIABLE, None).errno(), Errno::EIO);
        assert_eq!(S3Error::status(what, http::StatusCode::from_u16(599).unwrap(), None).to_string(), format!("s3 {what}: HTTP 599"));
    }

    #[test]
    fn retry_classification() {
        let w = "GET u";
        let st = |c: u16| S3Error::status(w, http::StatusCode::from_u16(c).unwrap(), None);
        for c in [500, 502, 503, 504] {
            assert!(st(c).is_retryable(), "{c}");
        }
        for c in [400, 401, 403, 404, 409, 416, 429] {
            assert!(!st(c).is_retryable(), "{c}");
        }
        assert!(S3Error::timeout(w, Duration::from_secs(1)).is_retryable());
        assert!(!S3Error::bad_data(w, "short").is_retryable());
        assert!(!S3Error::invalid(w, "x").is_retryable());
        let io = S3Error::io(w, std::io::Error::from_raw_os_error(2));
        assert_eq!((io.errno(), io.is_retryable()), (Errno::ENOENT, false));
        assert_eq!(S3Error::timeout(w, Duration::from_secs(1)).errno(), Errno::ETIMEDOUT);
        assert_eq!(S3Error::bad_data(w, "x").errno(), Errno::EIO);
    }

    #[test]
    fn smoke_every_kind_has_a_name() {
        for k in S3ErrorKind::ALL {
            assert!(!k.name().is_empty());
        }
    }
}

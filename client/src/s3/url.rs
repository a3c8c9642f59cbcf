//! Endpoints, object paths and query strings, percent-encoded once, as SigV4 signs them.
//!
//! S3 signs the path exactly as sent: every byte of the key outside the unreserved set
//! (`A-Z a-z 0-9 - . _ ~`) is encoded once as `%XX`, `/` is kept, and nothing is normalised
//! (`a//b` and `./x` reach the server as written).

use std::fmt;

use super::error::S3Error;

/// A parsed `http://` or `https://` endpoint: scheme, host and port only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `true` for `https`.
    pub(crate) tls: bool,
    /// Host name or IP literal (IPv6 with its brackets).
    pub(crate) host: String,
    /// The port, explicit or the scheme's default.
    pub(crate) port: u16,
    /// Whether the endpoint named the port (then the `Host` header names it too).
    pub(crate) explicit_port: bool,
}

impl Endpoint {
    /// Parses `scheme://host[:port][/]`. User info (`user:pass@`), paths, queries and
    /// fragments are refused (EINVAL), so no credential can ride in a URL we print.
    pub(crate) fn parse(s: &str) -> Result<Endpoint, S3Error> {
        let bad = |why: &str| S3Error::invalid(format!("endpoint {:?}", redact_userinfo(s)), why);
        let (tls, rest) = if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(bad("must start with http:// or https://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(bad("credentials in the URL are refused; use the access key and a secret reference"));
        }
        if rest.contains(['/', '?', '#']) {
            return Err(bad("must be scheme://host[:port] (no path or query)"));
        }
        if rest.is_empty() || rest.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("no host"));
        }
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(|| bad("unterminated IPv6 literal"))?;
            let host = &rest[..end + 2];
            match &after[end + 1..] {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or_else(|| bad("junk after IPv6 literal"))?)),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let default = if tls { 443 } else { 80 };
        let (port, explicit_port) = match port {
            None => (default, false),
            Some(p) => (p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("bad port"))?, true),
        };
        Ok(Endpoint { tls, host: host.to_ascii_lowercase(), port, explicit_port })
    }

    /// The `Host` header value for requests to `host` on this endpoint's port.
    pub(crate) fn authority(&self, host: &str) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.explicit_port && self.port != default {
            format!("{host}:{}", self.port)
        } else {
            host.to_string()
        }
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// Where one request goes: authority (`Host`), encoded path and canonical query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: &'static str,
    /// The `Host` header (and URI authority).
    pub(crate) authority: String,
    /// The path as sent and signed, already percent-encoded.
    pub(crate) path: String,
    /// The query as sent and signed: sorted, each name and value encoded (may be empty).
    pub(crate) query: String,
}

impl Target {
    /// Builds the target of an operation on `bucket` (and `key`, if any).
    ///
    /// Path style: `/<bucket>/<key>` on the endpoint host. Virtual-host style:
    /// `/<key>` on `<bucket>.<host>`.
    pub(crate) fn new(ep: &Endpoint, path_style: bool, bucket: &str, key: Option<&str>, query: &[(&str, &str)]) -> Target {
        let (host, mut path) =
            if path_style { (ep.host.clone(), format!("/{}", encode(bucket, false))) } else { (format!("{bucket}.{}", ep.host), String::new()) };
        match key {
            Some(k) => {
                path.push('/');
                path.push_str(&encode(k, true));
            }
            None if !path_style => path.push('/'),
            None => {}
        }
        Target { scheme: ep.scheme(), authority: ep.authority(&host), path, query: canonical_query(query) }
    }

    /// `path[?query]`, the request-target of the request line.
    pub(crate) fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

impl fmt::Display for Target {
    /// The full URL. It never carries credentials: we don't presign, and the endpoint
    /// parser refuses user info.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path_and_query())
    }
}

/// Percent-encodes `s` the way SigV4 wants it: unreserved bytes kept, everything else `%XX`
/// (upper-case hex); `/` kept only when `keep_slash`.
pub(crate) fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string: pairs encoded, then sorted by name and value, joined with
/// `&`; a parameter without a value is `name=`.
pub(crate) fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (encode(k, false), encode(v, false))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The endpoint with any user info replaced, for error messages about a bad endpoint.
fn redact_userinfo(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://<redacted>@{}", &s[..a], &s[b + 1..]),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:7480").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port, e.authority("127.0.0.1")), (false, "127.0.0.1", 7480, "127.0.0.1:7480".into()));
        let e = Endpoint::parse("https://S3.Example.com/").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port, e.authority(&e.host)), (true, "s3.example.com", 443, "s3.example.com".into()));
        // An explicit default port is not repeated in Host (curl and the SDKs agree).
        assert_eq!(Endpoint::parse("http://h:80").unwrap().authority("h"), "h");
        let e = Endpoint::parse("http://[::1]:8000").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("[::1]", 8000));
        for bad in ["ftp://h", "h:80", "http://", "http://h:0", "http://h:x", "http://h/path", "http://h?x=1", "http://[::1"] {
            assert_eq!(Endpoint::parse(bad).unwrap_err().errno(), crate::Errno::EINVAL, "{bad}");
        }
        let e = Endpoint::parse("http://AKID:hunter2@h:80").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn encodes_once_without_normalising() {
        assert_eq!(encode("a b+c/d~e_f.g-h", true), "a%20b%2Bc/d~e_f.g-h");
        assert_eq!(encode("a/b", false), "a%2Fb");
        assert_eq!(encode("%41", true), "%2541");
        assert_eq!(encode("\u{1234}", true), "%E1%88%B4");
        assert_eq!(encode("a//./../b", true), "a//./../b");
        assert_eq!(encode("k=v&x?y#z*", true), "k%3Dv%26x%3Fy%23z%2A");
    }

    #[test]
    fn targets() {
        let ep = Endpoint::parse("http://127.0.0.1:7480").unwrap();
        let t = Target::new(&ep, true, "bkt", Some("dir/img name+1.raw"), &[]);
        assert_eq!(t.to_string(), "http://127.0.0.1:7480/bkt/dir/img%20name%2B1.raw");
        let t = Target::new(&ep, true, "bkt", Some("k"), &[("uploadId", "2~x/y z"), ("partNumber", "3")]);
        assert_eq!(t.path_and_query(), "/bkt/k?partNumber=3&uploadId=2~x%2Fy%20z");
        let t = Target::new(&ep, true, "bkt", None, &[]);
        assert_eq!(t.path_and_query(), "/bkt");
        let t = Target::new(&ep, false, "bkt", Some("k"), &[("uploads", "")]);
        assert_eq!(t.to_string(), "http://bkt.127.0.0.1:7480/k?uploads=");
        let t = Target::new(&ep, false, "bkt", None, &[]);
        assert_eq!(t.path_and_query(), "/");
    }

    #[test]
    fn canonical_query_sorts_encoded_pairs() {
        assert_eq!(canonical_query(&[("b", "2"), ("a", "1"), ("A", "0")]), "A=0&a=1&b=2");
        assert_eq!(canonical_query(&[("uploads", "")]), "uploads=");
        assert_eq!(canonical_query(&[]), "");
    }
}

//! AWS Signature Version 4 for S3 requests (header form), small enough to read in one go.
//!
//! The caller hands in the path and query exactly as they go on the wire (encoded once by
//! `url.rs`; S3 wants no second encoding and no path normalisation) and the headers to sign.
//! Nothing here logs; the secret only enters the HMAC key derivation.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// `x-amz-content-sha256` value for a body that is not hashed.
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// What signs: the key pair and the credential scope.
pub(crate) struct Signer<'a> {
    pub(crate) access_key: &'a str,
    pub(crate) secret_key: &'a str,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
}

/// One request, as it will be sent.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    /// Encoded path (`/bucket/key`).
    pub(crate) path: &'a str,
    /// Canonical query (sorted, encoded), possibly empty.
    pub(crate) query: &'a str,
    /// Headers to sign (`host`, `x-amz-date`, `x-amz-content-sha256`, `range`...), any case.
    pub(crate) headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`].
    pub(crate) payload_hash: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the same value as the `x-amz-date` header.
    pub(crate) amz_date: &'a str,
}

/// Lower-case hex of SHA-256 over `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for `t`.
pub(crate) fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Canonical headers (`name:value\n` each, sorted, values trimmed with inner runs of spaces
/// collapsed, repeated names joined by `,`) and the signed-headers list.
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.split_whitespace().collect::<Vec<_>>().join(" "))).collect();
    hs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(String, String)> = Vec::with_capacity(hs.len());
    for (n, v) in hs {
        match merged.last_mut() {
            Some((pn, pv)) if *pn == n => {
                pv.push(',');
                pv.push_str(&v);
            }
            _ => merged.push((n, v)),
        }
    }
    let canon = merged.iter().map(|(n, v)| format!("{n}:{v}\n")).collect::<String>();
    let signed = merged.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    (canon, signed)
}

/// The canonical request (step 1 of the AWS recipe).
pub(crate) fn canonical_request(r: &Request<'_>) -> String {
    let (canon, signed) = canonical_headers(r.headers);
    format!("{}\n{}\n{}\n{}\n{}\n{}", r.method, r.path, r.query, canon, signed, r.payload_hash)
}

fn scope(s: &Signer<'_>, date: &str) -> String {
    format!("{date}/{}/{}/aws4_request", s.region, s.service)
}

/// The string to sign (step 2).
pub(crate) fn string_to_sign(s: &Signer<'_>, r: &Request<'_>) -> String {
    let date = &r.amz_date[..r.amz_date.len().min(8)];
    format!("AWS4-HMAC-SHA256\n{}\n{}\n{}", r.amz_date, scope(s, date), sha256_hex(canonical_request(r).as_bytes()))
}

/// The derived signing key (step 3).
fn signing_key(s: &Signer<'_>, date: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{}", s.secret_key).as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, s.region.as_bytes());
    let k_service = hmac(&k_region, s.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The `Authorization` header value for `r`. It holds the access key and a signature, never
/// the secret, but it is still a credential: don't log it.
pub(crate) fn authorization(s: &Signer<'_>, r: &Request<'_>) -> String {
    let date = &r.amz_date[..r.amz_date.len().min(8)];
    let signature = hex(&hmac(&signing_key(s, date), string_to_sign(s, r).as_bytes()));
    let (_, signed) = canonical_headers(r.headers);
    format!("AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed}, Signature={signature}", s.access_key, scope(s, date))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::url::canonical_query;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    // The AWS SigV4 test suite (service "service", us-east-1, 2015-08-30T12:36:00Z).
    const SUITE: Signer<'static> =
        Signer { access_key: "AKIDEXAMPLE", secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service" };

    fn suite(method: &str, path: &str, query: &str) -> String {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")];
        let r = Request { method, path, query, headers: &headers, payload_hash: EMPTY, amz_date: "20150830T123600Z" };
        authorization(&SUITE, &r)
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")];
        let r = Request { method: "GET", path: "/", query: "", headers: &headers, payload_hash: EMPTY, amz_date: "20150830T123600Z" };
        assert_eq!(canonical_request(&r), format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY}"));
        assert_eq!(
            string_to_sign(&SUITE, &r),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            authorization(&SUITE, &r),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn aws_test_suite_more() {
        // get-vanilla-query-order-key-case: the query is sorted before signing.
        let q = canonical_query(&[("Param2", "value2"), ("Param1", "value1")]);
        assert!(suite("GET", "/", &q).ends_with("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
        // get-utf8: the path is signed as encoded once.
        let p = format!("/{}", crate::s3::url::encode("\u{1234}", true));
        assert!(suite("GET", &p, "").ends_with("Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"));
        // post-vanilla.
        assert!(suite("POST", "/", "").ends_with("Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
    }

    #[test]
    fn aws_test_suite_post_sts_header_before() {
        // post-sts-token/post-sts-header-before: the session token is a signed header.
        let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("X-Amz-Security-Token", token)];
        let r = Request { method: "POST", path: "/", query: "", headers: &headers, payload_hash: EMPTY, amz_date: "20150830T123600Z" };
        assert_eq!(
            authorization(&SUITE, &r),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        );
    }

    // The S3 documentation's examples ("Signature Calculations for the Authorization Header").
    const S3DOC: Signer<'static> =
        Signer { access_key: "AKIAIOSFODNN7EXAMPLE", secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "s3" };

    #[test]
    fn s3_doc_get_object_with_range() {
        let headers = [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"), ("x-amz-content-sha256", EMPTY), ("x-amz-date", "20130524T000000Z")];
        let r = Request { method: "GET", path: "/test.txt", query: "", headers: &headers, payload_hash: EMPTY, amz_date: "20130524T000000Z" };
        assert_eq!(
            authorization(&S3DOC, &r),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn s3_doc_put_object_and_list() {
        let body_hash = sha256_hex(b"Welcome to Amazon S3.");
        assert_eq!(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
        let path = format!("/{}", crate::s3::url::encode("test$file.text", true));
        assert_eq!(path, "/test%24file.text");
        let headers = [
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", &body_hash),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ];
        let r = Request { method: "PUT", path: &path, query: "", headers: &headers, payload_hash: &body_hash, amz_date: "20130524T000000Z" };
        assert!(authorization(&S3DOC, &r).ends_with("Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));

        let q = canonical_query(&[("max-keys", "2"), ("prefix", "J")]);
        let headers = [("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", EMPTY), ("x-amz-date", "20130524T000000Z")];
        let r = Request { method: "GET", path: "/", query: &q, headers: &headers, payload_hash: EMPTY, amz_date: "20130524T000000Z" };
        assert!(authorization(&S3DOC, &r).ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
        let q = canonical_query(&[("lifecycle", "")]);
        let r = Request { method: "GET", path: "/", query: &q, headers: &headers, payload_hash: EMPTY, amz_date: "20130524T000000Z" };
        assert!(authorization(&S3DOC, &r).ends_with("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
    }

    #[test]
    fn header_canonicalisation() {
        let (c, s) = canonical_headers(&[("B", "  x   y "), ("a", "1"), ("b", "z")]);
        assert_eq!(c, "a:1\nb:x y,z\n");
        assert_eq!(s, "a;b");
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(amz_date(UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)), "20150830T123600Z");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(amz_date(UNIX_EPOCH + std::time::Duration::from_secs(1_709_251_199)), "20240229T235959Z");
        assert_eq!(amz_date(UNIX_EPOCH + std::time::Duration::from_secs(1_709_251_200)), "20240301T000000Z");
    }

    #[test]
    fn the_secret_never_appears_in_the_header() {
        let a = suite("GET", "/", "");
        assert!(!a.contains(SUITE.secret_key));
        assert!(a.contains("Credential=AKIDEXAMPLE/"));
    }
}

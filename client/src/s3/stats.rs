//! Counters of one [`S3Client`](super::S3Client) (and its clones): relaxed atomics, read as a
//! snapshot that serialises to JSON.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::S3ErrorKind;

/// Upper bounds (ms) of the latency histogram buckets; a last bucket takes the rest.
const BUCKETS_MS: [u64; 13] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];

const KINDS: [S3ErrorKind; 12] = S3ErrorKind::ALL;

/// The live counters.
#[derive(Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    gets: AtomicU64,
    bytes_fetched: AtomicU64,
    puts: AtomicU64,
    bytes_sent: AtomicU64,
    retries: AtomicU64,
    failures: [AtomicU64; KINDS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_max_us: AtomicU64,
    hist: [AtomicU64; BUCKETS_MS.len() + 1],
}

impl Counters {
    /// One HTTP exchange finished (any outcome) after `took`.
    pub(crate) fn exchange(&self, took: Duration) {
        self.requests.fetch_add(1, Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(us, Relaxed);
        self.latency_max_us.fetch_max(us, Relaxed);
        let i = BUCKETS_MS.iter().position(|&b| us <= b * 1000).unwrap_or(BUCKETS_MS.len());
        self.hist[i].fetch_add(1, Relaxed);
    }

    /// A GET (whole or ranged) returned `bytes` of verified body.
    pub(crate) fn get_ok(&self, bytes: usize) {
        self.gets.fetch_add(1, Relaxed);
        self.bytes_fetched.fetch_add(bytes as u64, Relaxed);
    }

    /// A PUT (object or part) of `bytes` succeeded.
    pub(crate) fn put_ok(&self, bytes: usize) {
        self.puts.fetch_add(1, Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Relaxed);
    }

    /// A failed attempt is being retried.
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// An operation failed for good.
    pub(crate) fn failure(&self, kind: S3ErrorKind) {
        let i = KINDS.iter().position(|&k| k == kind).unwrap_or(KINDS.len() - 1);
        self.failures[i].fetch_add(1, Relaxed);
    }

    /// A consistent-enough snapshot (each counter read once, relaxed).
    pub(crate) fn snapshot(&self) -> S3Stats {
        let f = |k: S3ErrorKind| self.failures[KINDS.iter().position(|&x| x == k).unwrap()].load(Relaxed);
        let failures = Failures {
            not_found: f(S3ErrorKind::NotFound),
            forbidden: f(S3ErrorKind::Forbidden),
            conflict: f(S3ErrorKind::Conflict),
            timeout: f(S3ErrorKind::Timeout),
            bad_data: f(S3ErrorKind::BadData),
            http: f(S3ErrorKind::Http),
            connect: f(S3ErrorKind::Connect),
            reset: f(S3ErrorKind::Reset),
            invalid: f(S3ErrorKind::Invalid),
            io: f(S3ErrorKind::Io),
            changed: f(S3ErrorKind::Changed),
            tls: f(S3ErrorKind::Tls),
        };
        let buckets = self.hist.iter().enumerate().map(|(i, c)| LatencyBucket { le_ms: BUCKETS_MS.get(i).copied(), count: c.load(Relaxed) }).collect();
        S3Stats {
            requests: self.requests.load(Relaxed),
            gets: self.gets.load(Relaxed),
            bytes_fetched: self.bytes_fetched.load(Relaxed),
            puts: self.puts.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            retries: self.retries.load(Relaxed),
            failures_total: self.failures.iter().map(|c| c.load(Relaxed)).sum(),
            failures,
            latency: Latency {
                count: self.latency_count.load(Relaxed),
                sum_us: self.latency_sum_us.load(Relaxed),
                max_us: self.latency_max_us.load(Relaxed),
                buckets,
            },
        }
    }
}

/// A snapshot of an [`S3Client`](super::S3Client)'s counters. `to_json()` gives one JSON
/// object with these field names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Stats {
    /// HTTP exchanges made, every method, including retried attempts.
    pub requests: u64,
    /// GET operations (whole or ranged) that returned a verified body.
    pub gets: u64,
    /// Body bytes of those GETs.
    pub bytes_fetched: u64,
    /// PUTs (objects and multipart parts) that succeeded.
    pub puts: u64,
    /// Body bytes of those PUTs.
    pub bytes_sent: u64,
    /// Attempts repeated after a retryable failure.
    pub retries: u64,
    /// Operations that failed for good (after retries).
    pub failures_total: u64,
    /// Those failures by kind.
    pub failures: Failures,
    /// Latency of each HTTP exchange (each attempt; body included).
    pub latency: Latency,
}

impl S3Stats {
    /// The snapshot as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain counters serialise")
    }

    /// Adds another client's counters: counts add up, maxima take the maximum. Histogram
    /// buckets are per client and left out of the sum.
    pub fn add(&mut self, o: &S3Stats) {
        self.requests += o.requests;
        self.gets += o.gets;
        self.bytes_fetched += o.bytes_fetched;
        self.puts += o.puts;
        self.bytes_sent += o.bytes_sent;
        self.retries += o.retries;
        self.failures_total += o.failures_total;
        let (f, g) = (&mut self.failures, &o.failures);
        for (a, b) in [
            (&mut f.not_found, g.not_found),
            (&mut f.forbidden, g.forbidden),
            (&mut f.conflict, g.conflict),
            (&mut f.timeout, g.timeout),
            (&mut f.bad_data, g.bad_data),
            (&mut f.http, g.http),
            (&mut f.connect, g.connect),
            (&mut f.reset, g.reset),
            (&mut f.invalid, g.invalid),
            (&mut f.io, g.io),
            (&mut f.changed, g.changed),
            (&mut f.tls, g.tls),
        ] {
            *a += b;
        }
        self.latency.count += o.latency.count;
        self.latency.sum_us += o.latency.sum_us;
        self.latency.max_us = self.latency.max_us.max(o.latency.max_us);
        self.latency.buckets.clear();
    }
}

/// Failed operations by [`S3ErrorKind`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Failures {
    /// 404.
    pub not_found: u64,
    /// 401/403.
    pub forbidden: u64,
    /// 409.
    pub conflict: u64,
    /// Timed out on every attempt.
    pub timeout: u64,
    /// Short/long body, bad `Content-Range`, unreadable reply.
    pub bad_data: u64,
    /// Other HTTP statuses.
    pub http: u64,
    /// No connection.
    pub connect: u64,
    /// Connection broken mid-exchange.
    pub reset: u64,
    /// Refused before sending (bad argument).
    pub invalid: u64,
    /// Local read errors of upload sources.
    pub io: u64,
    /// The object changed since it was pinned (HTTP 412 to `If-Match`).
    pub changed: u64,
    /// TLS handshakes refused (certificate not trusted, wrong name, expired).
    pub tls: u64,
}

/// Latency summary and histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Exchanges measured.
    pub count: u64,
    /// Sum of their latencies, microseconds.
    pub sum_us: u64,
    /// The largest, microseconds.
    pub max_us: u64,
    /// Non-cumulative buckets, ascending (empty in sums over clients).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<LatencyBucket>,
}

/// One histogram bucket: exchanges that took more than the previous bound, up to `le_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyBucket {
    /// Upper bound in milliseconds (inclusive); `null` for the last, unbounded bucket.
    pub le_ms: Option<u64>,
    /// Exchanges in this bucket.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_serialises() {
        let c = Counters::default();
        c.exchange(Duration::from_micros(500));
        c.exchange(Duration::from_millis(30));
        c.exchange(Duration::from_secs(60));
        c.get_ok(4096);
        c.retry();
        c.failure(S3ErrorKind::Timeout);
        let s = c.snapshot();
        assert_eq!((s.requests, s.gets, s.bytes_fetched, s.retries, s.failures_total), (3, 1, 4096, 1, 1));
        assert_eq!(s.failures.timeout, 1);
        assert_eq!((s.latency.count, s.latency.max_us), (3, 60_000_000));
        assert_eq!(s.latency.buckets[0], LatencyBucket { le_ms: Some(1), count: 1 });
        assert_eq!(s.latency.buckets[5], LatencyBucket { le_ms: Some(50), count: 1 });
        assert_eq!(s.latency.buckets.last().unwrap(), &LatencyBucket { le_ms: None, count: 1 });
        let j: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(j["bytes_fetched"], 4096);
        assert_eq!(j["failures"]["timeout"], 1);
        assert_eq!(j["latency"]["buckets"][13]["le_ms"], serde_json::Value::Null);
    }
}

//! radosgw's access log (`RBD_EXT_RGW_LOG`, written by `qa/cluster up --rgw`): which S3
//! requests a test caused, counted from a mark on.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rbd_ext::s3::{S3Client, S3Config};

/// radosgw's access log from a mark on.
pub struct RgwLog {
    path: PathBuf,
    start: u64,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `eval \"$(qa/cluster up --rgw)\"` first"))
}

impl RgwLog {
    /// Marks the log's current end.
    pub fn mark() -> RgwLog {
        let path = PathBuf::from(var("RBD_EXT_RGW_LOG"));
        let start = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len();
        RgwLog { path, start }
    }

    fn read_since(&self) -> String {
        let mut f = std::fs::File::open(&self.path).unwrap();
        f.seek(SeekFrom::Start(self.start)).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        String::from_utf8_lossy(&b).into_owned()
    }

    /// The lines logged since the mark, once a request made now has been logged too.
    pub async fn settled(&self) -> String {
        let sentinel = super::unique("log-sentinel").to_lowercase();
        let mut cfg = S3Config::new(var("RBD_EXT_S3_ENDPOINT"), var("RBD_EXT_S3_REGION"), "rbd-ext-log-sentinel");
        cfg.retries = 0;
        let _ = S3Client::new(cfg).unwrap().head(&sentinel).await;
        let t = Instant::now();
        while !self.read_since().contains(&sentinel) {
            assert!(t.elapsed() < Duration::from_secs(20), "radosgw never logged the sentinel request {sentinel}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.read_since()
    }

    /// The `Range` of every GET of `/bucket/key` logged since the mark (access-log lines
    /// `"GET /bucket/key HTTP/1.1" 206 ... bytes=a-b ...`); a GET without a range is `-`.
    pub async fn gets(&self, bucket: &str, key: &str) -> Vec<String> {
        let pat = format!("\"GET /{bucket}/{key} HTTP/1.1\"");
        self.settled()
            .await
            .lines()
            .filter(|l| l.contains(" beast: ") && l.contains(&pat))
            .map(|l| l.split_whitespace().find(|w| w.starts_with("bytes=")).unwrap_or("-").to_string())
            .collect()
    }

    /// [`RgwLog::gets`] from synchronous code.
    pub fn gets_blocking(&self, bucket: &str, key: &str) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(self.gets(bucket, key))
    }
}

/// The ranged GETs that fetch objects `objects` of `object_size` bytes, as radosgw logs them.
pub fn ranges_of(object_size: usize, objects: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    objects.into_iter().map(|n| format!("bytes={}-{}", n * object_size, (n + 1) * object_size - 1)).collect()
}

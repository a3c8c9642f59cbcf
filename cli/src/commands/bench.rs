//! `bench IMAGE --io-type read|write ...`: I/O throughput through rbd-ext, reported as
//! `rbd bench` does (ops/s and bytes/s), so the two can be compared on the same image.

use std::io::Write;
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;

use rbd_ext::{Errno, Image, OpenOptions};

use super::{human_size, io_err, msg, CmdResult, Ctx};
use crate::cli::{BenchArgs, IoPattern, IoType};

/// Runs `io_total / io_size` I/Os, `io_threads` at a time, and prints the totals.
pub async fn run(ctx: &Ctx, a: BenchArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let image = Image::open(&ctx.cluster, &spec, OpenOptions::default().with_write(a.io_type == IoType::Write)).await?;
    let size = image.size();
    if a.io_size == 0 || a.io_size > size {
        return Err(msg(format!("bench {spec}: --io-size {} must be between 1 and the image size {size}: {}", a.io_size, Errno::EINVAL)));
    }
    if a.io_total < a.io_size {
        return Err(msg(format!("bench {spec}: --io-total {} is smaller than --io-size {}: {}", a.io_total, a.io_size, Errno::EINVAL)));
    }
    let ops = a.io_total / a.io_size;
    // Aligned positions that fit: I/Os never cross the end of the image.
    let slots = size / a.io_size;
    let mut rng = XorShift::seeded();
    let offsets = (0..ops).map(move |i| {
        let slot = match a.io_pattern {
            IoPattern::Seq => i % slots,
            IoPattern::Rand => rng.next() % slots,
        };
        slot * a.io_size
    });
    // Non-zero data, so that writes are not sparse-skipped anywhere and cost what real data
    // costs.
    let mut fill = XorShift::seeded();
    let data: Vec<u8> = (0..a.io_size).map(|_| (fill.next() as u8) | 1).collect();
    let (img, data) = (&image, &data);

    let start = Instant::now();
    stream::iter(offsets)
        .map(|off| async move {
            match a.io_type {
                IoType::Read => img.read_at(off, data.len() as u64).await.map(drop),
                IoType::Write => img.write_at(off, data).await,
            }
        })
        .buffer_unordered(a.io_threads as usize)
        .try_collect::<()>()
        .await?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let bytes = ops * a.io_size;
    let (ops_per_sec, bytes_per_sec) = (ops as f64 / secs, bytes as f64 / secs);

    let (io_type, pattern) = (format!("{:?}", a.io_type).to_lowercase(), format!("{:?}", a.io_pattern).to_lowercase());
    if ctx.json() {
        ctx.print_json(&json!({
            "io_type": io_type,
            "io_size": a.io_size,
            "io_threads": a.io_threads,
            "io_pattern": pattern,
            "ops": ops,
            "bytes": bytes,
            "elapsed_sec": secs,
            "ops_per_sec": ops_per_sec,
            "bytes_per_sec": bytes_per_sec,
        }))?;
    } else {
        let text = format!(
            "bench  type {io_type} io_size {} io_threads {} bytes {bytes} pattern {pattern}\n\
             elapsed: {secs:.2}   ops: {ops}   ops/sec: {ops_per_sec:.2}   bytes/sec: {}/s\n",
            a.io_size,
            a.io_threads,
            human_size(bytes_per_sec as u64)
        );
        std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| io_err(e, "write to stdout"))?;
    }
    // Writers release the lock now rather than on drop, so an error there is reported.
    image.close_async().await?;
    Ok(())
}

/// xorshift64*: offsets and data that need only be unpredictable enough for caches, not
/// for anything else (no dependency for a benchmark's dice).
struct XorShift(u64);

impl XorShift {
    fn seeded() -> XorShift {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        XorShift(nanos | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

//! Criterion benchmarks of the client's hot pure code (DESIGN.md §8):
//!
//! - offset -> object range maths (`rbd_ext::extents::object_extents`) for the I/O shapes
//!   the CLI issues (4 KiB random, unaligned 1 MiB, 4 MiB sequential, a 1 GiB export span);
//! - `nonzero_runs` over a 4 MiB object (what a sparse copy-up writes);
//! - `s3::Manifest::verify` of a fetched 4 MiB object (SHA-256; every back-fill pays it).
//!
//! SigV4 signing is not benchmarked: `rbd_ext::s3::sigv4` is private to the crate (the
//! signer is `pub(crate)`), and these benches use only the public API.
//!
//! Run: `cargo bench -p cls-rbd-ext-plugin --bench client`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use rbd_ext::extents::{nonzero_runs, object_extents};
use rbd_ext::s3::Manifest;

const OBJ: u64 = 4 << 20;

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20).without_plots()
}

fn bench_extents(c: &mut Criterion) {
    let mut g = c.benchmark_group("object_extents");
    let cases: [(&str, u64, u64); 4] = [
        ("4K_aligned", 123 * OBJ + 8192, 4096),
        ("1M_unaligned_2_objects", 7 * OBJ - 300_000, 1 << 20),
        ("4M_aligned", 42 * OBJ, OBJ),
        ("1G_span_257_objects", 12345, 1 << 30),
    ];
    for (name, off, len) in cases {
        g.throughput(Throughput::Elements(object_extents(off, len, OBJ).len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &(off, len), |b, &(off, len)| {
            b.iter(|| object_extents(black_box(off), black_box(len), black_box(OBJ)))
        });
    }
    g.finish();
}

fn bench_nonzero_runs(c: &mut Criterion) {
    let mut g = c.benchmark_group("nonzero_runs_4M");
    g.throughput(Throughput::Bytes(OBJ));
    let zeros = vec![0u8; OBJ as usize];
    // Every other 64 KiB chunk holds data: 32 runs.
    let mut half = vec![0u8; OBJ as usize];
    for (i, chunk) in half.chunks_mut(64 << 10).enumerate() {
        if i % 2 == 0 {
            chunk.fill(0xa5);
        }
    }
    let full = vec![0x5au8; OBJ as usize];
    for (name, data) in [("all_zero", &zeros), ("half_data", &half), ("all_data", &full)] {
        g.bench_with_input(BenchmarkId::from_parameter(name), data, |b, d| b.iter(|| nonzero_runs(black_box(d), 4096)));
    }
    g.finish();
}

fn bench_manifest_verify(c: &mut Criterion) {
    // Pseudo-random (incompressible-looking) 4 MiB object, as fetched from S3.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..OBJ)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let manifest = Manifest::build(&data[..], OBJ).expect("manifest of one object");
    assert_eq!(manifest.object_count(), 1);
    let mut g = c.benchmark_group("s3_manifest");
    g.throughput(Throughput::Bytes(OBJ));
    g.bench_function("verify_4M_object", |b| b.iter(|| manifest.verify(0, black_box(&data)).unwrap()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_extents, bench_nonzero_runs, bench_manifest_verify
}
criterion_main!(benches);

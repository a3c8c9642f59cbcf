//! fsx-style data integrity of standalone clones against a live cluster: random reads,
//! writes, discards, write-zeroes and resizes at unaligned offsets, checked against an
//! in-memory model after every read and by a full read at the end, with a flatten in the
//! middle of a run and a clone of a clone. The parent must be unchanged byte for byte.
//!
//! `FSX_OPS` (default 2500 per seed, 4 seeds) sets the length; `FSX_SEEDS` the seeds.

mod common;

use common::fsx::{run_ops, Rng, OS};

use std::sync::Arc;

use rbd_ext::blocking::clone_standalone;
use rbd_ext::rados::Cluster;
use rbd_ext::{CloneOptions, Image, ImageSpec, OpenOptions};

fn make_parent(rng: &mut Rng, size: u64) -> (ImageSpec, Vec<u8>) {
    let name = common::unique("fsx-parent");
    let data = rng.bytes(size as usize);
    // Leave a hole (a never-written object) in the parent, as real images have.
    let mut data = data;
    data[(2 * OS) as usize..(3 * OS) as usize].fill(0);
    let path = std::env::temp_dir().join(&name);
    std::fs::write(&path, &data).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", &OS.to_string(), path.to_str().unwrap(), &format!("rbd/{name}")]);
    std::fs::remove_file(&path).ok();
    (ImageSpec::new("rbd", &name), data)
}

fn export(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Vec<u8> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open_blocking(cluster, spec, OpenOptions::default()).unwrap();
    let size = img.size();
    rt.block_on(img.read_at(0, size)).unwrap()
}

fn ops_per_seed() -> usize {
    std::env::var("FSX_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(2500)
}

fn seeds() -> Vec<u64> {
    std::env::var("FSX_SEEDS").ok().map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect()).unwrap_or_else(|| vec![1, 2, 3, 4])
}

#[test]
fn fsx_standalone_clone_with_flatten_midway() {
    let cluster = common::cluster();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for seed in seeds() {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (parent, pdata) = make_parent(&mut rng, 10 * OS + 12345);
        let child = ImageSpec::new("rbd", &common::unique("fsx-child"));
        clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
        let img = Image::open_blocking(&cluster, &child, OpenOptions::default().with_write(true)).unwrap();
        let mut model = pdata.clone();
        let ops = ops_per_seed();
        // Odd seeds flatten in the middle of the run.
        let flatten_at = (seed % 2 == 1).then_some(ops / 2);
        run_ops(&rt, &img, &mut model, &mut rng, ops, seed, flatten_at);
        img.close().unwrap();
        assert!(export(&cluster, &child) == model, "seed {seed}: final child content differs from the model");
        // Stock librbd agrees with the model too (same on-disk format).
        let path = std::env::temp_dir().join(common::unique("fsx-export"));
        common::stock_ok("rbd", &["export", &child.to_string(), path.to_str().unwrap()]);
        assert!(std::fs::read(&path).unwrap() == model, "seed {seed}: stock rbd export differs from the model");
        std::fs::remove_file(&path).ok();
        assert!(export(&cluster, &parent) == pdata, "seed {seed}: the parent changed");
        rbd_ext::blocking::remove(&cluster, &child).unwrap();
        rbd_ext::blocking::remove(&cluster, &parent).unwrap();
    }
}

#[test]
fn fsx_clone_of_a_clone() {
    let cluster = common::cluster();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seed = 99;
    let mut rng = Rng(seed);
    let (parent, pdata) = make_parent(&mut rng, 6 * OS + 777);
    let mid = ImageSpec::new("rbd", &common::unique("fsx-mid"));
    clone_standalone(&cluster, &parent, &mid, &CloneOptions::default()).unwrap();
    // Give the middle image some data of its own before it becomes a parent.
    let mut mid_model = pdata.clone();
    {
        let img = Image::open_blocking(&cluster, &mid, OpenOptions::default().with_write(true)).unwrap();
        run_ops(&rt, &img, &mut mid_model, &mut rng, 300, seed, None);
        img.close().unwrap();
    }
    let leaf = ImageSpec::new("rbd", &common::unique("fsx-leaf"));
    clone_standalone(&cluster, &mid, &leaf, &CloneOptions::default()).unwrap();
    // The middle image is a protected parent now: writers are refused.
    let e = Image::open_blocking(&cluster, &mid, OpenOptions::default().with_write(true)).err().expect("protected parent opened for write");
    assert_eq!(e.errno(), rbd_ext::Errno::EROFS, "{e}");
    let img = Image::open_blocking(&cluster, &leaf, OpenOptions::default().with_write(true)).unwrap();
    let mut model = mid_model.clone();
    run_ops(&rt, &img, &mut model, &mut rng, ops_per_seed() / 2, seed, Some(ops_per_seed() / 4));
    img.close().unwrap();
    assert!(export(&cluster, &leaf) == model);
    assert!(export(&cluster, &mid) == mid_model);
    assert!(export(&cluster, &parent) == pdata);
    for s in [&leaf, &mid, &parent] {
        rbd_ext::blocking::remove(&cluster, s).unwrap();
    }
}

//! The fsx-style operation mix shared by the integrity tests: random reads (checked),
//! writes, discards, write-zeroes and resizes at unaligned offsets, mirrored on a model.

use rbd_ext::{flatten, Image};

/// Object size the tests' images use (`--object-size 64K`): many object boundaries.
pub const OS: u64 = 1 << 16;

/// Deterministic PRNG (xorshift64*), so a failing seed can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Runs `ops` random operations on `child`, checking against `model`.
pub fn run_ops(rt: &tokio::runtime::Runtime, img: &Image, model: &mut Vec<u8>, rng: &mut Rng, ops: usize, seed: u64, flatten_at: Option<usize>) {
    for i in 0..ops {
        if Some(i) == flatten_at {
            rt.block_on(flatten(img, &|_, _| {})).unwrap_or_else(|e| panic!("seed {seed} op {i}: flatten: {e}"));
        }
        let size = model.len() as u64;
        let op = rng.below(100);
        let max_len = 3 * OS + 1;
        let off = rng.below(size.max(1));
        let len = rng.below(max_len.min(size - off.min(size)) + 1).max(if size > off { 1 } else { 0 });
        let ctx = || format!("seed {seed} op {i} (kind {op}, off {off}, len {len}, size {size})");
        match op {
            0..=39 => {
                let got = rt.block_on(img.read_at(off, len)).unwrap_or_else(|e| panic!("{}: read: {e}", ctx()));
                assert!(got == model[off as usize..(off + len) as usize], "{}: read mismatch", ctx());
            }
            40..=79 => {
                let data = rng.bytes(len as usize);
                rt.block_on(img.write_at(off, &data)).unwrap_or_else(|e| panic!("{}: write: {e}", ctx()));
                model[off as usize..(off + len) as usize].copy_from_slice(&data);
            }
            80..=87 => {
                rt.block_on(img.discard(off, len)).unwrap_or_else(|e| panic!("{}: discard: {e}", ctx()));
                model[off as usize..(off + len) as usize].fill(0);
            }
            88..=95 => {
                rt.block_on(img.write_zeroes(off, len)).unwrap_or_else(|e| panic!("{}: write_zeroes: {e}", ctx()));
                model[off as usize..(off + len) as usize].fill(0);
            }
            _ => {
                // Shrink or grow by up to two objects, unaligned.
                let delta = rng.below(2 * OS) + 1;
                let new = if rng.below(2) == 0 { size.saturating_sub(delta).max(1) } else { size + delta };
                rt.block_on(img.resize(new)).unwrap_or_else(|e| panic!("{}: resize to {new}: {e}", ctx()));
                model.resize(new as usize, 0);
            }
        }
    }
}

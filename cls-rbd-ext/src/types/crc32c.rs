//! CRC32C as Ceph computes it (`ceph_crc32c`, `bufferlist::crc32c`): the reflected Castagnoli
//! CRC (polynomial 0x82F63B78) update function, **without** pre- or post-inversion.
//!
//! So `ceph_crc32c(0, b"123456789") == 0x58E3FA20`, a run of zero bytes with seed 0 has CRC 0,
//! and the standard CRC-32C of `d` is `!ceph_crc32c(0xFFFF_FFFF, d)`
//! (`reference/ceph-wire-facts.md` §1.6). Table-driven, slicing by 8, no dependency and no
//! `unsafe`; the tables are built at compile time.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `TABLES[0]` is the classic byte table; `TABLES[k][b]` is the CRC of byte `b` followed by
/// `k` zero bytes, which lets the main loop fold 8 bytes per step.
static TABLES: [[u32; 256]; 8] = build_tables();

const fn build_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

/// `ceph_crc32c(seed, data)`: continues a CRC from `seed` over `data`. Chaining holds:
/// `ceph_crc32c(ceph_crc32c(s, a), b) == ceph_crc32c(s, a ++ b)`.
pub fn ceph_crc32c(seed: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut crc = seed;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit-at-a-time reference, straight from the definition.
    fn reference(seed: u32, data: &[u8]) -> u32 {
        let mut crc = seed;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ POLY } else { crc >> 1 };
            }
        }
        crc
    }

    #[test]
    fn ceph_test_vectors() {
        // ceph-wire-facts.md §1.6, checked there against libceph-common.
        assert_eq!(ceph_crc32c(0, b"123456789"), 0x58E3_FA20);
        assert_eq!(ceph_crc32c(0xFFFF_FFFF, b"123456789"), 0x1CF9_6D7C);
        assert_eq!(!ceph_crc32c(0xFFFF_FFFF, b"123456789"), 0xE306_9283);
        assert_eq!(ceph_crc32c(0, &[0u8; 4096]), 0);
        assert_eq!(ceph_crc32c(7, b""), 7);
    }

    #[test]
    fn bitvector_example_crcs() {
        // ceph-wire-facts.md §5.3: the 5-object BitVector<2> [1,1,0,2,3].
        let header = [0x01, 0x01, 0x08, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(ceph_crc32c(0, &header), 0x8296_4518);
        assert_eq!(ceph_crc32c(0, &[0x52, 0xc0]), 0x241a_21af);
    }

    proptest! {
        #[test]
        fn matches_reference_and_chains(seed in any::<u32>(), a in prop::collection::vec(any::<u8>(), 0..100), b in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(ceph_crc32c(seed, &a), reference(seed, &a));
            let mut ab = a.clone();
            ab.extend_from_slice(&b);
            prop_assert_eq!(ceph_crc32c(ceph_crc32c(seed, &a), &b), ceph_crc32c(seed, &ab));
        }
    }
}

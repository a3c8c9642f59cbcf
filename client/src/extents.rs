//! Image byte ranges ↔ data objects (default striping: stripe unit = object size, count 1).

/// The part of an image range that falls in one data object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectExtent {
    /// Object number.
    pub object_no: u64,
    /// Offset within the object.
    pub offset: u64,
    /// Length within the object.
    pub length: u64,
    /// Offset of this piece within the caller's buffer.
    pub buffer_offset: u64,
}

impl ObjectExtent {
    /// Image offset of this extent's first byte.
    pub fn image_offset(&self, object_size: u64) -> u64 {
        self.object_no * object_size + self.offset
    }

    /// Whether the extent covers its whole object.
    pub fn is_whole(&self, object_size: u64) -> bool {
        self.offset == 0 && self.length == object_size
    }
}

/// Splits `[off, off+len)` into per-object extents, in image order.
pub fn object_extents(off: u64, len: u64, object_size: u64) -> Vec<ObjectExtent> {
    let mut out = Vec::new();
    let mut pos = off;
    let end = off.saturating_add(len);
    while pos < end {
        let object_no = pos / object_size;
        let offset = pos % object_size;
        let length = (object_size - offset).min(end - pos);
        out.push(ObjectExtent { object_no, offset, length, buffer_offset: pos - off });
        pos += length;
    }
    out
}

/// Non-zero runs of `data` at `granularity`-byte resolution, as (offset, length) pairs:
/// what a sparse copy-up needs to write. Adjacent non-zero chunks are merged.
pub fn nonzero_runs(data: &[u8], granularity: usize) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (i, chunk) in data.chunks(granularity.max(1)).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        let off = (i * granularity) as u64;
        match runs.last_mut() {
            Some((o, l)) if *o + *l == off => *l += chunk.len() as u64,
            _ => runs.push((off, chunk.len() as u64)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_at_object_boundaries() {
        let e = object_extents(4090, 20, 4096);
        assert_eq!(
            e,
            [ObjectExtent { object_no: 0, offset: 4090, length: 6, buffer_offset: 0 }, ObjectExtent { object_no: 1, offset: 0, length: 14, buffer_offset: 6 },]
        );
        assert!(object_extents(0, 8192, 4096).iter().all(|x| x.is_whole(4096)));
        assert!(object_extents(5, 0, 4096).is_empty());
    }

    #[test]
    fn runs_skip_zero_chunks() {
        let mut d = vec![0u8; 4096 * 4];
        d[5] = 1;
        d[4096 + 7] = 1;
        d[3 * 4096] = 9;
        assert_eq!(nonzero_runs(&d, 4096), [(0, 8192), (12288, 4096)]);
        assert!(nonzero_runs(&[0; 100], 4096).is_empty());
        assert_eq!(nonzero_runs(&[1; 100], 4096), [(0, 100)]);
    }

    proptest! {
        #[test]
        fn extents_tile_the_range(off in 0u64..1 << 30, len in 0u64..1 << 24, order in 12u32..23) {
            let os = 1u64 << order;
            let e = object_extents(off, len, os);
            prop_assert_eq!(e.iter().map(|x| x.length).sum::<u64>(), len);
            let mut pos = off;
            for x in &e {
                prop_assert_eq!(x.image_offset(os), pos);
                prop_assert_eq!(x.buffer_offset, pos - off);
                prop_assert!(x.offset + x.length <= os && x.length > 0);
                pos += x.length;
            }
        }
    }
}

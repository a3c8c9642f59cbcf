//! The clone map: one 4-bit state per data object of a clone child, stored in the object
//! `rbd_clone_map.<child image id>` (DESIGN.md §2; full description in `docs/clone-map.md`).
//!
//! # Stored form
//!
//! All integers little-endian; `ceph_crc32c` is Ceph's CRC32C (seed 0, no inversion).
//!
//! ```text
//! offset      size   field
//! 0           6      envelope: u8 struct_v = 1 · u8 struct_compat = 1 · u32 struct_len = L (13 in v1)
//! 6           8      u64 object_count                      (at most CLONE_MAP_MAX_OBJECT_COUNT)
//! 14          1      u8  bits_per_entry = 4
//! 15          4      u32 block_size = 4096                 (bytes of packed data per CRC block)
//! 6+L         4      u32 header_crc = ceph_crc32c(0, bytes [0, 6+L))
//! H = 10+L    D      packed data, D = ceil(object_count / 2): entry i lives in byte i/2, in the
//!                    high nibble when i is even (most significant first, like BitVector); the
//!                    pad nibble after an odd count is 0
//! H+D         4·B    block CRC table, B = ceil(D / block_size):
//!                    crc[k] = ceph_crc32c(0, data[k·block_size, min(D, (k+1)·block_size)))
//! ```
//!
//! In v1, H = 23, and one 4096-byte block holds 8192 entries. The object is exactly
//! H + D + 4·B bytes long; any other size is corruption. Readers honour the envelope rules:
//! a later version with compat 1 may append header fields (H grows, the data follows the
//! header CRC wherever it ends); `object_count` stays the first payload field, so a rewrite
//! patches it in place and keeps fields it does not know.
//!
//! Why data before the CRC table (as BitVector does): every offset a range update needs
//! (its data bytes, its CRC entries) is fixed by `object_count`, so an update writes only
//! the bytes that changed and their CRC entries; a grow writes the last partial block, the
//! new blocks, the CRC table (at most 32 KiB at the cap) and the header. Only a shrink
//! rewrites the whole object, because the object must get shorter and the objclass
//! interface here has no truncate.

use std::fmt;
use std::ops::Range;

use super::crc32c::ceph_crc32c;
use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader};

/// The state of one data object of a clone child (4 bits on disk).
///
/// Values 0-3 equal the stock object map's so the two maps can be compared entry by entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloneMapState {
    /// 0: no local object; reads give zeros (beyond the overlap, or a parent hole).
    NonExistent,
    /// 1: local object written by the child.
    Exists,
    /// 2: a copy-up, write or discard is in flight: the object itself is the truth.
    Pending,
    /// 3: local, unchanged since the last diff point.
    ExistsClean,
    /// 4: no local object; the data is inherited from the parent.
    ExistsParent,
    /// 5: local object that began as a copy of the parent's.
    CopiedUp,
    /// Any other wire value; kept so it survives a round trip, rejected by the methods.
    /// Never holds 0-5 ([`CloneMapState::from_u8`] maps those to the named variants).
    Unknown(u8),
}

impl CloneMapState {
    /// Every known state, in value order.
    pub const ALL: [CloneMapState; 6] = [
        CloneMapState::NonExistent,
        CloneMapState::Exists,
        CloneMapState::Pending,
        CloneMapState::ExistsClean,
        CloneMapState::ExistsParent,
        CloneMapState::CopiedUp,
    ];

    /// The wire (and nibble) value.
    pub fn to_u8(self) -> u8 {
        match self {
            CloneMapState::NonExistent => 0,
            CloneMapState::Exists => 1,
            CloneMapState::Pending => 2,
            CloneMapState::ExistsClean => 3,
            CloneMapState::ExistsParent => 4,
            CloneMapState::CopiedUp => 5,
            CloneMapState::Unknown(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => CloneMapState::NonExistent,
            1 => CloneMapState::Exists,
            2 => CloneMapState::Pending,
            3 => CloneMapState::ExistsClean,
            4 => CloneMapState::ExistsParent,
            5 => CloneMapState::CopiedUp,
            v => CloneMapState::Unknown(v),
        }
    }

    /// Whether this is one of the six defined states (methods reject the rest with -EINVAL).
    pub fn is_known(self) -> bool {
        !matches!(self, CloneMapState::Unknown(_))
    }

    /// The name shown by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CloneMapState::NonExistent => "nonexistent",
            CloneMapState::Exists => "exists",
            CloneMapState::Pending => "pending",
            CloneMapState::ExistsClean => "exists-clean",
            CloneMapState::ExistsParent => "exists-parent",
            CloneMapState::CopiedUp => "copied-up",
            CloneMapState::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for CloneMapState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloneMapState::Unknown(v) => write!(f, "unknown({v})"),
            s => f.write_str(s.as_str()),
        }
    }
}

/// A u8 on the wire.
impl Codec for CloneMapState {
    fn encode(&self, out: &mut Vec<u8>) {
        self.to_u8().encode(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        u8::read(r).map(CloneMapState::from_u8)
    }
}

/// `count` entries from `start` set to `state`: the element of `clone_map_init`'s run list.
///
/// Wire form (no envelope, like a `std::pair`): u64 start · u64 len · u8 state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateRun {
    /// First entry (object number).
    pub start: u64,
    /// Number of entries; 0 is allowed and changes nothing.
    pub len: u64,
    /// The state they take.
    pub state: CloneMapState,
}

impl Codec for StateRun {
    const MIN_SIZE: usize = 17;
    fn encode(&self, out: &mut Vec<u8>) {
        self.start.encode(out);
        self.len.encode(out);
        self.state.encode(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StateRun { start: u64::read(r)?, len: u64::read(r)?, state: CloneMapState::read(r)? })
    }
}

/// Prefix of clone-map object names.
pub const CLONE_MAP_OBJECT_PREFIX: &str = "rbd_clone_map.";

/// The clone map object of the child image `child_id`: `rbd_clone_map.<child_id>`, in the
/// child's metadata pool, beside `rbd_object_map.<child_id>`.
pub fn clone_map_object(child_id: &str) -> String {
    format!("{CLONE_MAP_OBJECT_PREFIX}{child_id}")
}

/// Most entries a clone map holds: 64 Mi, i.e. a 32 MiB map (plus a 32 KiB CRC table), well
/// under RADOS' 128 MiB object limit; with 4 MiB objects that is a 256 TiB image. Larger
/// counts are refused with -EINVAL.
pub const CLONE_MAP_MAX_OBJECT_COUNT: u64 = 64 << 20;

/// Bytes of packed data covered by one CRC (as BitVector's blocks).
pub const CLONE_MAP_BLOCK_SIZE: u32 = 4096;

/// Bits per entry.
pub const CLONE_MAP_BITS_PER_ENTRY: u8 = 4;

/// Bytes read to find the header: more than a v1 header (23 bytes) needs, so one read
/// suffices until a later version adds more than 41 bytes of fields.
pub const CLONE_MAP_HEADER_PROBE_LEN: u64 = 64;

/// Longest stored header (envelope and CRC) a reader accepts; longer is corruption.
pub const CLONE_MAP_MAX_HEADER_LEN: u64 = 4096;

/// Smallest and largest `block_size` a reader accepts (powers of two only).
const BLOCK_SIZE_RANGE: std::ops::RangeInclusive<u32> = 512..=(1 << 20);

/// Why a stored clone map cannot be used. Methods log it at level 0 and return -EIO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloneMapError {
    /// The header envelope does not decode (short, or compat above ours).
    #[error("undecodable header: {0}")]
    Header(DecodeError),
    /// The header CRC does not match the header bytes.
    #[error("header CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc {
        /// CRC found after the header.
        stored: u32,
        /// CRC of the header bytes.
        computed: u32,
    },
    /// The header decodes but describes something this version cannot read.
    #[error("unsupported layout: {0}")]
    Unsupported(String),
    /// The object's size is not what its header implies (truncated or extended).
    #[error("object is {actual} bytes, its header implies {expected}")]
    Size {
        /// H + D + 4·B.
        expected: u64,
        /// What `stat` (or the buffer) says.
        actual: u64,
    },
    /// A read returned fewer bytes than the layout promised.
    #[error("short read at offset {offset}: wanted {wanted} bytes, got {got}")]
    ShortRead {
        /// Object offset of the read.
        offset: u64,
        /// Bytes asked for.
        wanted: u64,
        /// Bytes returned.
        got: u64,
    },
    /// A data block's CRC does not match its bytes.
    #[error("data block {block} (objects {first_entry}..{end_entry}) CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BlockCrc {
        /// Block number.
        block: u64,
        /// First entry the block holds.
        first_entry: u64,
        /// One past the last entry it holds.
        end_entry: u64,
        /// CRC in the table.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
}

/// The header fields of a stored clone map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneMapHeader {
    /// Number of entries (data objects of the child).
    pub object_count: u64,
    /// Bits per entry; 4 in v1.
    pub bits_per_entry: u8,
    /// Bytes of packed data per CRC block; 4096 when we write.
    pub block_size: u32,
}

impl CloneMapHeader {
    /// Envelope version written and understood.
    pub const VERSION: u8 = 1;

    /// A header for `object_count` entries with the standard geometry.
    pub fn new(object_count: u64) -> Self {
        CloneMapHeader { object_count, bits_per_entry: CLONE_MAP_BITS_PER_ENTRY, block_size: CLONE_MAP_BLOCK_SIZE }
    }

    /// Appends the stored header: the envelope, then its u32 CRC.
    pub fn encode_stored(&self, out: &mut Vec<u8>) {
        let start = out.len();
        encode_envelope(out, Self::VERSION, 1, |o| {
            self.object_count.encode(o);
            self.bits_per_entry.encode(o);
            self.block_size.encode(o);
        });
        let crc = ceph_crc32c(0, &out[start..]);
        crc.encode(out);
    }
}

/// Length of the stored header (envelope and CRC), from its first 6 bytes; lets a reader
/// that probed [`CLONE_MAP_HEADER_PROBE_LEN`] bytes know whether it must read more.
pub fn stored_header_len(prefix: &[u8]) -> Result<u64, CloneMapError> {
    let mut r = Reader::new(prefix);
    let _version = u8::read(&mut r).map_err(CloneMapError::Header)?;
    let compat = u8::read(&mut r).map_err(CloneMapError::Header)?;
    if compat > CloneMapHeader::VERSION {
        return Err(CloneMapError::Header(DecodeError::CompatTooNew { what: "clone map header", compat, supported: CloneMapHeader::VERSION }));
    }
    let len = u32::read(&mut r).map_err(CloneMapError::Header)?;
    let total = 6 + u64::from(len) + 4;
    if total > CLONE_MAP_MAX_HEADER_LEN {
        return Err(CloneMapError::Unsupported(format!("header of {total} bytes")));
    }
    Ok(total)
}

/// Where everything of a stored map lives, derived from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneMapLayout {
    /// The decoded header.
    pub header: CloneMapHeader,
    /// The stored header bytes (envelope and CRC), kept so that a rewrite preserves fields a
    /// later version added.
    header_bytes: Vec<u8>,
}

impl CloneMapLayout {
    /// The layout a new map of `object_count` entries is written with (v1 header).
    pub fn new(object_count: u64) -> Self {
        let header = CloneMapHeader::new(object_count);
        let mut header_bytes = Vec::with_capacity(23);
        header.encode_stored(&mut header_bytes);
        CloneMapLayout { header, header_bytes }
    }

    /// Decodes and checks the stored header at the start of `bytes` (which may run on into
    /// the data): envelope, header CRC, geometry, count cap.
    pub fn parse(bytes: &[u8]) -> Result<Self, CloneMapError> {
        let mut r = Reader::new(bytes);
        let mut env = read_envelope(&mut r, "clone map header", CloneMapHeader::VERSION).map_err(CloneMapError::Header)?;
        let b = &mut env.body;
        let header = CloneMapHeader {
            object_count: u64::read(b).map_err(CloneMapError::Header)?,
            bits_per_entry: u8::read(b).map_err(CloneMapError::Header)?,
            block_size: u32::read(b).map_err(CloneMapError::Header)?,
        };
        let covered = r.used();
        let stored = u32::read(&mut r).map_err(CloneMapError::Header)?;
        let computed = ceph_crc32c(0, &bytes[..covered]);
        if stored != computed {
            return Err(CloneMapError::HeaderCrc { stored, computed });
        }
        if header.bits_per_entry != CLONE_MAP_BITS_PER_ENTRY {
            return Err(CloneMapError::Unsupported(format!("{} bits per entry", header.bits_per_entry)));
        }
        if !header.block_size.is_power_of_two() || !BLOCK_SIZE_RANGE.contains(&header.block_size) {
            return Err(CloneMapError::Unsupported(format!("block size {}", header.block_size)));
        }
        if header.object_count > CLONE_MAP_MAX_OBJECT_COUNT {
            return Err(CloneMapError::Unsupported(format!("object count {}", header.object_count)));
        }
        Ok(CloneMapLayout { header, header_bytes: bytes[..r.used()].to_vec() })
    }

    /// The same map with `object_count` entries: the stored header with the count patched in
    /// place (it is the first payload field in every version) and the CRC recomputed.
    pub fn with_object_count(&self, object_count: u64) -> Self {
        let mut header_bytes = self.header_bytes.clone();
        header_bytes[6..14].copy_from_slice(&object_count.to_le_bytes());
        let n = header_bytes.len() - 4;
        let crc = ceph_crc32c(0, &header_bytes[..n]);
        header_bytes[n..].copy_from_slice(&crc.to_le_bytes());
        CloneMapLayout { header: CloneMapHeader { object_count, ..self.header }, header_bytes }
    }

    /// The stored header bytes (envelope and CRC).
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// Number of entries.
    pub fn object_count(&self) -> u64 {
        self.header.object_count
    }

    /// Bytes per CRC block.
    pub fn block_size(&self) -> u64 {
        u64::from(self.header.block_size)
    }

    /// Entries per CRC block.
    pub fn entries_per_block(&self) -> u64 {
        self.block_size() * 2
    }

    /// Offset of the packed data (= the stored header's length).
    pub fn data_offset(&self) -> u64 {
        self.header_bytes.len() as u64
    }

    /// Bytes of packed data.
    pub fn data_len(&self) -> u64 {
        packed_len(self.header.object_count)
    }

    /// Number of CRC blocks.
    pub fn block_count(&self) -> u64 {
        self.data_len().div_ceil(self.block_size())
    }

    /// Offset of the block CRC table.
    pub fn crc_table_offset(&self) -> u64 {
        self.data_offset() + self.data_len()
    }

    /// Offset of block `k`'s CRC.
    pub fn crc_offset(&self, k: u64) -> u64 {
        self.crc_table_offset() + 4 * k
    }

    /// Size of the whole stored object.
    pub fn object_size(&self) -> u64 {
        self.crc_table_offset() + 4 * self.block_count()
    }

    /// The blocks holding entries `[start, start + count)`; `count > 0` and the range inside
    /// the map.
    pub fn blocks_covering(&self, start: u64, count: u64) -> Range<u64> {
        let epb = self.entries_per_block();
        start / epb..(start + count - 1) / epb + 1
    }

    /// The data bytes (offsets within the data) of `blocks`, the last one possibly short.
    pub fn blocks_data_range(&self, blocks: &Range<u64>) -> Range<u64> {
        let bs = self.block_size();
        (blocks.start * bs).min(self.data_len())..(blocks.end * bs).min(self.data_len())
    }

    /// Checks the CRCs of consecutive blocks from `first_block`, whose bytes are `data` (a
    /// whole number of blocks, the last possibly short) and whose table entries are `crcs`.
    pub fn verify_blocks(&self, first_block: u64, data: &[u8], crcs: &[u32]) -> Result<(), CloneMapError> {
        let bs = self.block_size() as usize;
        for (i, (chunk, &stored)) in data.chunks(bs).zip(crcs).enumerate() {
            let computed = ceph_crc32c(0, chunk);
            if computed != stored {
                let block = first_block + i as u64;
                let epb = self.entries_per_block();
                return Err(CloneMapError::BlockCrc {
                    block,
                    first_entry: block * epb,
                    end_entry: ((block + 1) * epb).min(self.object_count()),
                    stored,
                    computed,
                });
            }
        }
        Ok(())
    }
}

/// Bytes that hold `count` packed entries.
pub fn packed_len(count: u64) -> u64 {
    count.div_ceil(2)
}

/// Entry `i` of packed data.
#[inline]
pub fn get_nibble(data: &[u8], i: u64) -> u8 {
    let b = data[(i / 2) as usize];
    if i % 2 == 0 {
        b >> 4
    } else {
        b & 0x0f
    }
}

/// Sets entry `i` of packed data to `v` (low 4 bits).
#[inline]
pub fn set_nibble(data: &mut [u8], i: u64, v: u8) {
    let b = &mut data[(i / 2) as usize];
    *b = if i % 2 == 0 { (*b & 0x0f) | (v << 4) } else { (*b & 0xf0) | (v & 0x0f) };
}

/// Sets entries `[start, start + len)` of packed data to `v`, a byte fill for the middle.
pub fn fill_nibbles(data: &mut [u8], start: u64, len: u64, v: u8) {
    let end = start + len;
    let mut i = start;
    if i < end && i % 2 == 1 {
        set_nibble(data, i, v);
        i += 1;
    }
    let whole_end = end & !1;
    if whole_end > i {
        data[(i / 2) as usize..(whole_end / 2) as usize].fill((v << 4) | (v & 0x0f));
        i = whole_end;
    }
    if i < end {
        set_nibble(data, i, v);
    }
}

/// The packed data `clone_map_init` stores: `object_count` NONEXISTENT entries with `runs`
/// applied in order (later runs win). The runs must be valid: inside the map, known states.
pub fn pack_runs(object_count: u64, runs: &[StateRun]) -> Vec<u8> {
    let mut data = vec![0u8; packed_len(object_count) as usize];
    for run in runs {
        fill_nibbles(&mut data, run.start, run.len, run.state.to_u8());
    }
    data
}

/// Entries `[first, first + count)` of packed data as states.
pub fn unpack(data: &[u8], first: u64, count: u64) -> Vec<CloneMapState> {
    (first..first + count).map(|i| CloneMapState::from_u8(get_nibble(data, i))).collect()
}

/// The CRC of each `block_size` chunk of `data`.
pub fn block_crcs(data: &[u8], block_size: u64) -> Vec<u32> {
    data.chunks(block_size as usize).map(|c| ceph_crc32c(0, c)).collect()
}

/// The whole stored object of a map of `object_count` entries whose packed data is `data`
/// (`packed_len(object_count)` bytes, pad nibble 0).
pub fn encode_stored_map(object_count: u64, data: &[u8]) -> Vec<u8> {
    let layout = CloneMapLayout::new(object_count);
    debug_assert_eq!(data.len() as u64, layout.data_len());
    let mut out = Vec::with_capacity(layout.object_size() as usize);
    out.extend_from_slice(layout.header_bytes());
    out.extend_from_slice(data);
    for crc in block_crcs(data, layout.block_size()) {
        crc.encode(&mut out);
    }
    out
}

/// Decodes and fully verifies a stored map (header, size, every block CRC); returns its
/// layout and packed data.
pub fn decode_stored_map(bytes: &[u8]) -> Result<(CloneMapLayout, &[u8]), CloneMapError> {
    let layout = CloneMapLayout::parse(bytes)?;
    if layout.object_size() != bytes.len() as u64 {
        return Err(CloneMapError::Size { expected: layout.object_size(), actual: bytes.len() as u64 });
    }
    let data = &bytes[layout.data_offset() as usize..layout.crc_table_offset() as usize];
    let mut r = Reader::new(&bytes[layout.crc_table_offset() as usize..]);
    let mut crcs = Vec::with_capacity(layout.block_count() as usize);
    for _ in 0..layout.block_count() {
        crcs.push(u32::read(&mut r).map_err(CloneMapError::Header)?);
    }
    layout.verify_blocks(0, data, &crcs)?;
    Ok((layout, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn states_round_trip_and_match_stock_values() {
        for v in 0..=255u8 {
            assert_eq!(CloneMapState::from_u8(v).to_u8(), v);
            assert_eq!(CloneMapState::from_u8(v).is_known(), v <= 5);
        }
        for (i, s) in CloneMapState::ALL.iter().enumerate() {
            assert_eq!(s.to_u8() as usize, i);
        }
        // The stock object map's OBJECT_NONEXISTENT, EXISTS, PENDING, EXISTS_CLEAN.
        assert_eq!(CloneMapState::ExistsClean.to_u8(), 3);
        assert_eq!(CloneMapState::Unknown(9).to_string(), "unknown(9)");
        assert_eq!(clone_map_object("10226b8b4567"), "rbd_clone_map.10226b8b4567");
    }

    #[test]
    fn golden_five_entries() {
        // [EXISTS, EXISTS, NONEXISTENT, PENDING, COPIEDUP]
        let runs = [
            StateRun { start: 0, len: 2, state: CloneMapState::Exists },
            StateRun { start: 3, len: 1, state: CloneMapState::Pending },
            StateRun { start: 4, len: 1, state: CloneMapState::CopiedUp },
        ];
        let data = pack_runs(5, &runs);
        assert_eq!(data, [0x11, 0x02, 0x50]);
        let stored = encode_stored_map(5, &data);
        let header = [1u8, 1, 13, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 4, 0x00, 0x10, 0, 0];
        assert_eq!(&stored[..19], &header);
        assert_eq!(&stored[19..23], &ceph_crc32c(0, &header).to_le_bytes());
        assert_eq!(&stored[23..26], &data);
        assert_eq!(&stored[26..30], &ceph_crc32c(0, &data).to_le_bytes());
        assert_eq!(stored.len(), 30);
        // The same bytes, computed independently (Python, bitwise CRC) for docs/clone-map.md.
        let golden = [
            0x01, 0x01, 0x0d, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x10, 0x00, 0x00, 0xcf, 0x80, 0x4a, 0x04, 0x11,
            0x02, 0x50, 0xc9, 0x05, 0x83, 0xa3,
        ];
        assert_eq!(stored, golden);
        let (layout, d) = decode_stored_map(&stored).unwrap();
        assert_eq!((layout.object_count(), layout.data_offset(), layout.block_count()), (5, 23, 1));
        assert_eq!(unpack(d, 0, 5)[4], CloneMapState::CopiedUp);
    }

    #[test]
    fn geometry() {
        let l = CloneMapLayout::new(2_621_440);
        assert_eq!(l.data_len(), 1_310_720);
        assert_eq!(l.block_count(), 320);
        assert_eq!(l.object_size(), 23 + 1_310_720 + 1280);
        assert_eq!(l.blocks_covering(8191, 1), 0..1);
        assert_eq!(l.blocks_covering(8191, 2), 0..2);
        assert_eq!(l.blocks_covering(2_621_439, 1), 319..320);
        let cap = CloneMapLayout::new(CLONE_MAP_MAX_OBJECT_COUNT);
        assert_eq!(cap.data_len(), 32 << 20);
        assert_eq!(cap.block_count() * 4, 32 << 10);
        let empty = CloneMapLayout::new(0);
        assert_eq!((empty.block_count(), empty.object_size()), (0, 23));
        assert_eq!(decode_stored_map(&encode_stored_map(0, &[])).unwrap().1, &[] as &[u8]);
    }

    #[test]
    fn header_patch_keeps_unknown_fields() {
        // A v2 header (compat 1) with an extra trailing field a v1 reader skips.
        let mut b = Vec::new();
        encode_envelope(&mut b, 2, 1, |o| {
            7u64.encode(o);
            4u8.encode(o);
            4096u32.encode(o);
            0xABCDu16.encode(o);
        });
        let crc = ceph_crc32c(0, &b);
        crc.encode(&mut b);
        let l = CloneMapLayout::parse(&b).unwrap();
        assert_eq!((l.object_count(), l.data_offset()), (7, 25));
        let l2 = l.with_object_count(9);
        let again = CloneMapLayout::parse(l2.header_bytes()).unwrap();
        assert_eq!(again.object_count(), 9);
        assert_eq!(&l2.header_bytes()[19..21], &0xABCDu16.to_le_bytes());
        assert_eq!(stored_header_len(&b[..6]), Ok(25));
    }

    #[test]
    fn header_rejections() {
        let good = CloneMapLayout::new(10).header_bytes().to_vec();
        let mut bad_crc = good.clone();
        bad_crc[22] ^= 1;
        assert!(matches!(CloneMapLayout::parse(&bad_crc), Err(CloneMapError::HeaderCrc { .. })));
        let mut compat2 = good.clone();
        compat2[1] = 2;
        assert!(matches!(CloneMapLayout::parse(&compat2), Err(CloneMapError::Header(_))));
        assert!(stored_header_len(&compat2).is_err());
        assert!(matches!(CloneMapLayout::parse(&good[..20]), Err(CloneMapError::Header(_))));
        let rehash = |mut h: Vec<u8>| {
            let crc = ceph_crc32c(0, &h[..19]);
            h[19..23].copy_from_slice(&crc.to_le_bytes());
            h
        };
        let mut two_bits = good.clone();
        two_bits[14] = 2;
        assert!(matches!(CloneMapLayout::parse(&rehash(two_bits)), Err(CloneMapError::Unsupported(_))));
        let mut odd_block = good.clone();
        odd_block[15..19].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(CloneMapLayout::parse(&rehash(odd_block)), Err(CloneMapError::Unsupported(_))));
        let mut huge = good;
        huge[6..14].copy_from_slice(&(CLONE_MAP_MAX_OBJECT_COUNT + 1).to_le_bytes());
        assert!(matches!(CloneMapLayout::parse(&rehash(huge)), Err(CloneMapError::Unsupported(_))));
    }

    #[test]
    fn fill_edges() {
        for start in 0..6u64 {
            for len in 0..6u64 {
                let mut d = vec![0u8; 6];
                fill_nibbles(&mut d, start, len, 0xA);
                for i in 0..12 {
                    let want = if i >= start && i < start + len { 0xA } else { 0 };
                    assert_eq!(get_nibble(&d, i), want, "start {start} len {len} i {i}");
                }
            }
        }
    }

    fn arb_runs(max_count: u64) -> impl Strategy<Value = (u64, Vec<StateRun>)> {
        (0..max_count).prop_flat_map(|count| {
            let run = (0..=count, 0..=count, 0..6u8).prop_map(move |(a, b, s)| {
                let (lo, hi) = (a.min(b), a.max(b));
                StateRun { start: lo, len: hi - lo, state: CloneMapState::from_u8(s) }
            });
            (Just(count), prop::collection::vec(run, 0..12))
        })
    }

    proptest! {
        #[test]
        fn stored_form_round_trip((count, runs) in arb_runs(40_000)) {
            let mut model = vec![CloneMapState::NonExistent; count as usize];
            for r in &runs {
                for s in &mut model[r.start as usize..(r.start + r.len) as usize] {
                    *s = r.state;
                }
            }
            let data = pack_runs(count, &runs);
            let stored = encode_stored_map(count, &data);
            let (layout, d) = decode_stored_map(&stored).unwrap();
            prop_assert_eq!(layout.object_count(), count);
            prop_assert_eq!(unpack(d, 0, count), model);
            if count % 2 == 1 {
                prop_assert_eq!(d[d.len() - 1] & 0x0f, 0);
            }
            // Any single flipped byte is detected.
            if !stored.is_empty() {
                let at = (count as usize * 7919) % stored.len();
                let mut bad = stored.clone();
                bad[at] ^= 0x20;
                prop_assert!(decode_stored_map(&bad).is_err());
            }
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_stored_map(&b);
            let _ = stored_header_len(&b);
            let _ = Vec::<StateRun>::read_bytes(&b);
        }
    }
}

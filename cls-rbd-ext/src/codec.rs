//! Ceph's little-endian wire encoding: primitives, containers and the versioned envelope.
//!
//! The shape follows rustls' `msgs/codec.rs` (a borrowed [`Reader`] plus a [`Codec`] trait);
//! the byte rules follow Ceph's `include/encoding.h` (`ENCODE_START` / `DECODE_START`):
//! integers little-endian, strings and containers prefixed by a u32 count, optionals by a u8
//! flag, structs wrapped in `struct_v · struct_compat · u32 len`.
//!
//! Decoding never panics and never allocates more than the input could hold: every length
//! prefix is checked against the bytes that remain before anything is reserved.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer ended before a field did.
    #[error("buffer too short: {needed} byte(s) needed at offset {at}, {left} left")]
    Truncated {
        /// Offset (within the reader) where the field starts.
        at: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that remained.
        left: usize,
    },
    /// A struct's `compat` byte is above the version this decoder understands.
    #[error("{what}: encoding needs decoder v{compat}, this one knows v{supported}")]
    CompatTooNew {
        /// The struct being decoded.
        what: &'static str,
        /// The struct's compat byte.
        compat: u8,
        /// Highest version we decode.
        supported: u8,
    },
    /// A struct's length prefix runs past the end of the buffer.
    #[error("{what}: struct length {len} exceeds the {left} byte(s) left")]
    StructOverrun {
        /// The struct being decoded.
        what: &'static str,
        /// Declared payload length.
        len: u32,
        /// Bytes that remained.
        left: usize,
    },
    /// Bytes were left over where the whole buffer should have been consumed.
    #[error("{0}: {1} trailing byte(s)")]
    TrailingData(&'static str, usize),
    /// A field held a value that is not allowed (bad UTF-8, bad enum, ...).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// A cursor over a borrowed byte slice.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    cursor: usize,
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reader({}/{})", self.cursor, self.buf.len())
    }
}

impl<'a> Reader<'a> {
    /// A reader over all of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, cursor: 0 }
    }

    /// The next `n` bytes, or `Truncated`.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let left = self.left();
        if n > left {
            return Err(DecodeError::Truncated { at: self.cursor, needed: n, left });
        }
        let s = &self.buf[self.cursor..self.cursor + n];
        self.cursor += n;
        Ok(s)
    }

    /// A reader bounded to the next `n` bytes; this reader moves past them.
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        self.take(n).map(Reader::new)
    }

    /// Everything not yet read; the reader is left empty.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.cursor..];
        self.cursor = self.buf.len();
        s
    }

    /// Whether unread bytes remain.
    pub fn any_left(&self) -> bool {
        self.cursor < self.buf.len()
    }

    /// Number of unread bytes.
    pub fn left(&self) -> usize {
        self.buf.len() - self.cursor
    }

    /// Number of bytes consumed so far.
    pub fn used(&self) -> usize {
        self.cursor
    }

    /// `TrailingData` unless everything was consumed.
    pub fn expect_empty(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.left() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingData(what, n)),
        }
    }

    /// Reads a u32 element count and checks that `count * min_size` bytes could follow,
    /// so a hostile prefix cannot make the caller reserve memory the input cannot fill.
    pub fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = u32::read(self)? as usize;
        let needed = n.saturating_mul(min_size.max(1));
        if needed > self.left() {
            return Err(DecodeError::Truncated { at: self.cursor, needed, left: self.left() });
        }
        Ok(n)
    }
}

/// A type with a Ceph wire encoding.
pub trait Codec: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Decodes one value from `r`, leaving the reader after it.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Smallest number of bytes any encoding of this type takes (bounds container counts).
    const MIN_SIZE: usize = 1;

    /// The encoding as a new vector.
    fn get_encoding(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decodes a value that must fill `bytes` exactly.
    fn read_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.expect_empty(std::any::type_name::<Self>())?;
        Ok(v)
    }
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            const MIN_SIZE: usize = std::mem::size_of::<$t>();
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let b = r.take(std::mem::size_of::<$t>())?;
                // The slice has exactly the right length, so the conversion cannot fail.
                Ok(<$t>::from_le_bytes(b.try_into().map_err(|_| DecodeError::Invalid("integer"))?))
            }
        }
    )*};
}
int_codec!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Codec for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    /// As Ceph: any non-zero byte is true.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(u8::read(r)? != 0)
    }
}

impl Codec for String {
    const MIN_SIZE: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        encode_bytes(self.as_bytes(), out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = u32::read(r)? as usize;
        let b = r.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid("string (not UTF-8)"))
    }
}

/// Appends a length-prefixed byte string (`std::string` or a `bufferlist` field).
pub fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    encode_bytes_parts(&[b], out);
}

/// [`encode_bytes`] of the concatenation of `parts`, without building it first (object-sized
/// payloads are copied once, into `out`).
pub fn encode_bytes_parts(parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(4 + len);
    (len as u32).encode(out);
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// A `bufferlist` encoded as a field: u32 length + raw bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BufferList(pub Vec<u8>);

impl Codec for BufferList {
    const MIN_SIZE: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        encode_bytes(&self.0, out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = u32::read(r)? as usize;
        Ok(BufferList(r.take(n)?.to_vec()))
    }
}

impl<T: Codec> Codec for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match u8::read(r)? {
            0 => Ok(None),
            _ => Ok(Some(T::read(r)?)),
        }
    }
}

impl<T: Codec> Codec for Vec<T> {
    const MIN_SIZE: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        for v in self {
            v.encode(out);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count(T::MIN_SIZE)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::read(r)?);
        }
        Ok(v)
    }
}

/// `std::set<T>`: encoded in ascending order, as the C++ set iterates.
impl<T: Codec + Ord> Codec for BTreeSet<T> {
    const MIN_SIZE: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        for v in self {
            v.encode(out);
        }
    }
    /// Like Ceph, accepts unsorted input and keeps the last of duplicates.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count(T::MIN_SIZE)?;
        let mut s = BTreeSet::new();
        for _ in 0..n {
            s.insert(T::read(r)?);
        }
        Ok(s)
    }
}

/// `std::map<K, V>`: pairs in ascending key order.
impl<K: Codec + Ord, V: Codec> Codec for BTreeMap<K, V> {
    const MIN_SIZE: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        for (k, v) in self {
            k.encode(out);
            v.encode(out);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count(K::MIN_SIZE + V::MIN_SIZE)?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = K::read(r)?;
            let v = V::read(r)?;
            m.insert(k, v);
        }
        Ok(m)
    }
}

/// A snapshot id (`snapid_t`): a u64 with two reserved values.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SnapId(pub u64);

impl SnapId {
    /// `CEPH_NOSNAP`: the image HEAD.
    pub const NOSNAP: SnapId = SnapId(0xFFFF_FFFF_FFFF_FFFE);
    /// `CEPH_SNAPDIR`.
    pub const SNAPDIR: SnapId = SnapId(0xFFFF_FFFF_FFFF_FFFF);

    /// The 16-character form `snapid_t`'s stream operator prints with width 16 and fill '0':
    /// `head` and `snapdir` for the reserved ids, lowercase hex otherwise.
    pub fn key_suffix(self) -> String {
        match self {
            SnapId::NOSNAP => format!("{:0>16}", "head"),
            SnapId::SNAPDIR => format!("{:0>16}", "snapdir"),
            SnapId(n) => format!("{n:016x}"),
        }
    }
}

impl fmt::Debug for SnapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SnapId::NOSNAP => write!(f, "head"),
            SnapId::SNAPDIR => write!(f, "snapdir"),
            SnapId(n) => write!(f, "{n}"),
        }
    }
}

impl Codec for SnapId {
    const MIN_SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        u64::read(r).map(SnapId)
    }
}

/// `utime_t`: u32 seconds, u32 nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct UTime {
    /// Seconds since the epoch.
    pub sec: u32,
    /// Nanoseconds within the second.
    pub nsec: u32,
}

impl Codec for UTime {
    const MIN_SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        self.sec.encode(out);
        self.nsec.encode(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(UTime { sec: u32::read(r)?, nsec: u32::read(r)? })
    }
}

/// Size of the envelope header: u8 struct_v, u8 struct_compat, u32 length.
pub const ENVELOPE_HEADER_LEN: usize = 6;

/// Writes `ENCODE_START(version, compat)`, the body `f` writes, then back-fills the length
/// (`ENCODE_FINISH`).
pub fn encode_envelope(out: &mut Vec<u8>, version: u8, compat: u8, f: impl FnOnce(&mut Vec<u8>)) {
    out.push(version);
    out.push(compat);
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    f(out);
    let len = (out.len() - len_at - 4) as u32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
}

/// A struct's envelope, read by [`read_envelope`].
#[derive(Debug)]
pub struct Envelope<'a> {
    /// `struct_v` the writer used; fields newer than ours are skipped with the tail.
    pub version: u8,
    /// `struct_compat`: oldest decoder that can read it.
    pub compat: u8,
    /// The payload, bounded to the declared length: reading past it fails instead of
    /// running into the next field, and whatever is left unread is skipped.
    pub body: Reader<'a>,
}

/// `DECODE_START(supported)`: reads the envelope header, rejects `compat > supported`,
/// bounds the payload, and moves `r` past the whole struct (skipping unknown trailing
/// fields the way `DECODE_FINISH` does).
pub fn read_envelope<'a>(r: &mut Reader<'a>, what: &'static str, supported: u8) -> Result<Envelope<'a>, DecodeError> {
    let version = u8::read(r)?;
    let compat = u8::read(r)?;
    if compat > supported {
        return Err(DecodeError::CompatTooNew { what, compat, supported });
    }
    let len = u32::read(r)?;
    if len as usize > r.left() {
        return Err(DecodeError::StructOverrun { what, len, left: r.left() });
    }
    let body = r.sub(len as usize)?;
    Ok(Envelope { version, compat, body })
}

#[cfg(test)]
mod tests;

use super::*;
use proptest::prelude::*;

fn enc<T: Codec>(v: &T) -> Vec<u8> {
    v.get_encoding()
}

#[test]
fn integers_are_little_endian() {
    assert_eq!(enc(&0x0102_0304u32), [4, 3, 2, 1]);
    assert_eq!(enc(&-1i64), [0xff; 8]);
    assert_eq!(enc(&2i64), [2, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(enc(&0xabcdu16), [0xcd, 0xab]);
}

#[test]
fn strings_optionals_and_bool() {
    assert_eq!(enc(&"abc123".to_string()), b"\x06\x00\x00\x00abc123");
    assert_eq!(enc(&Some(0x4000_0000u64)), [1, 0, 0, 0, 0x40, 0, 0, 0, 0]);
    assert_eq!(enc(&None::<u64>), [0]);
    assert_eq!(bool::read_bytes(&[7]), Ok(true));
    assert_eq!(enc(&true), [1]);
}

#[test]
fn snap_id_keys_match_ceph() {
    // ceph-wire-facts.md §3.2
    assert_eq!(SnapId(0x2a).key_suffix(), "000000000000002a");
    assert_eq!(SnapId::NOSNAP.key_suffix(), "000000000000head");
    assert_eq!(SnapId::SNAPDIR.key_suffix(), "000000000snapdir");
    assert_eq!(SnapId(0xFFFF_FFFF_FFFF_FFFD).key_suffix(), "fffffffffffffffd");
    assert_eq!(enc(&SnapId::NOSNAP), [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn containers_encode_sorted() {
    let s: BTreeSet<String> = ["b".to_string(), "a".to_string()].into();
    assert_eq!(enc(&s), b"\x02\x00\x00\x00\x01\x00\x00\x00a\x01\x00\x00\x00b");
    let m: BTreeMap<u64, u64> = [(2, 3), (1, 4)].into();
    let e = enc(&m);
    assert_eq!(&e[..4], &[2, 0, 0, 0]);
    assert_eq!(&e[4..12], &1u64.to_le_bytes());
    assert_eq!(BTreeMap::<u64, u64>::read_bytes(&e), Ok(m));
}

#[test]
fn envelope_layout_and_length_backfill() {
    let mut out = Vec::new();
    encode_envelope(&mut out, 2, 1, |o| 7u32.encode(o));
    assert_eq!(out, [2, 1, 4, 0, 0, 0, 7, 0, 0, 0]);
}

/// A v1 decoder of a struct whose v2 added a trailing field.
fn read_v1(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let mut env = read_envelope(r, "test", 1)?;
    u32::read(&mut env.body)
}

#[test]
fn newer_version_with_old_compat_skips_the_tail() {
    let mut b = Vec::new();
    encode_envelope(&mut b, 2, 1, |o| {
        7u32.encode(o);
        "new field".to_string().encode(o);
    });
    b.push(0xAA); // the next field after the struct
    let mut r = Reader::new(&b);
    assert_eq!(read_v1(&mut r), Ok(7));
    assert_eq!(u8::read(&mut r), Ok(0xAA));
    assert!(!r.any_left());
}

#[test]
fn compat_above_supported_is_rejected() {
    let mut b = Vec::new();
    encode_envelope(&mut b, 2, 2, |o| 7u32.encode(o));
    assert_eq!(read_v1(&mut Reader::new(&b)), Err(DecodeError::CompatTooNew { what: "test", compat: 2, supported: 1 }));
}

#[test]
fn struct_length_past_end_is_rejected() {
    let b = [1u8, 1, 0xff, 0xff, 0xff, 0xff, 0];
    assert!(matches!(read_v1(&mut Reader::new(&b)), Err(DecodeError::StructOverrun { .. })));
}

#[test]
fn reading_past_the_struct_body_fails() {
    // Declared length 2, but the decoder wants a u32: must not read the following bytes.
    let b = [1u8, 1, 2, 0, 0, 0, 1, 2, 3, 4];
    assert!(matches!(read_v1(&mut Reader::new(&b)), Err(DecodeError::Truncated { .. })));
}

#[test]
fn huge_count_does_not_allocate() {
    // A 4 Gi-element vector prefix followed by nothing: rejected before reserving anything.
    let b = [0xff, 0xff, 0xff, 0xff];
    assert!(matches!(Vec::<u64>::read_bytes(&b), Err(DecodeError::Truncated { .. })));
    assert!(matches!(String::read_bytes(&b), Err(DecodeError::Truncated { .. })));
    assert!(matches!(BTreeMap::<String, BufferList>::read_bytes(&b), Err(DecodeError::Truncated { .. })));
}

#[test]
fn bad_utf8_is_invalid() {
    assert_eq!(String::read_bytes(&[1, 0, 0, 0, 0xff]), Err(DecodeError::Invalid("string (not UTF-8)")));
}

#[test]
fn read_bytes_rejects_trailing_data() {
    assert!(matches!(u32::read_bytes(&[1, 0, 0, 0, 9]), Err(DecodeError::TrailingData(..))));
}

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    a: i64,
    s: String,
    o: Option<u64>,
    v: Vec<u32>,
    set: BTreeSet<String>,
    m: BTreeMap<String, BufferList>,
    t: UTime,
    b: bool,
}

impl Codec for Sample {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.a.encode(o);
            self.s.encode(o);
            self.o.encode(o);
            self.v.encode(o);
            self.set.encode(o);
            self.m.encode(o);
            self.t.encode(o);
            self.b.encode(o);
        });
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut e = read_envelope(r, "Sample", 1)?;
        let b = &mut e.body;
        Ok(Sample {
            a: Codec::read(b)?,
            s: Codec::read(b)?,
            o: Codec::read(b)?,
            v: Codec::read(b)?,
            set: Codec::read(b)?,
            m: Codec::read(b)?,
            t: Codec::read(b)?,
            b: Codec::read(b)?,
        })
    }
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        any::<i64>(),
        ".{0,12}",
        any::<Option<u64>>(),
        prop::collection::vec(any::<u32>(), 0..8),
        prop::collection::btree_set("[a-z0-9]{0,6}", 0..5),
        prop::collection::btree_map("[a-z]{0,5}", prop::collection::vec(any::<u8>(), 0..9), 0..4),
        (any::<u32>(), any::<u32>()),
        any::<bool>(),
    )
        .prop_map(|(a, s, o, v, set, m, (sec, nsec), b)| Sample {
            a,
            s,
            o,
            v,
            set,
            m: m.into_iter().map(|(k, v)| (k, BufferList(v))).collect(),
            t: UTime { sec, nsec },
            b,
        })
}

proptest! {
    #[test]
    fn round_trip(s in sample()) {
        let b = s.get_encoding();
        prop_assert_eq!(Sample::read_bytes(&b), Ok(s.clone()));
        // Decode then re-encode gives the same bytes (decoder consumes exactly the encoding).
        prop_assert_eq!(Sample::read_bytes(&b).unwrap().get_encoding(), b);
    }

    #[test]
    fn every_truncation_fails_cleanly(s in sample()) {
        let b = s.get_encoding();
        for cut in 0..b.len() {
            prop_assert!(Sample::read_bytes(&b[..cut]).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Sample::read_bytes(&b);
        let _ = BTreeMap::<String, BufferList>::read_bytes(&b);
        let _ = Vec::<Option<SnapId>>::read_bytes(&b);
    }

    #[test]
    fn newer_encodings_decode_with_tail_skipped(s in sample(), tail in prop::collection::vec(any::<u8>(), 0..16)) {
        // A v2 writer (compat 1) appended fields we do not know: a v1 decoder still reads v1.
        let mut b = s.get_encoding();
        b[0] = 2;
        let len = u32::from_le_bytes(b[2..6].try_into().unwrap()) + tail.len() as u32;
        b[2..6].copy_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&tail);
        prop_assert_eq!(Sample::read_bytes(&b), Ok(s));
    }
}

//! Requests and replies of the clone-map methods (`clone_map_init`, `clone_map_get`,
//! `clone_map_update`, `clone_map_update_many`, `clone_map_resize`). Every struct is an
//! envelope v1/compat 1, so fields can be appended later without breaking older peers.

use crate::codec::{encode_envelope, read_envelope, BufferList, Codec, DecodeError, Reader};
use crate::types::{get_nibble, packed_len, set_nibble, CloneMapState, StateRun, CLONE_MAP_MAX_OBJECT_COUNT};

/// Most entries one `clone_map_get` returns (16 Mi, at most 8 MiB of reply); a request for
/// more is answered with the first `CLONE_MAP_MAX_GET_ENTRIES` and the client asks again
/// from `start + count`.
pub const CLONE_MAP_MAX_GET_ENTRIES: u64 = 16 << 20;

/// Input of `clone_map_init`: create (or with `force`, replace) the map.
///
/// Envelope v1/1: u64 object_count · `vector<StateRun>` runs · bool force. `force` is
/// optional on the wire: a body that ends after `runs` means false.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloneMapInitOp {
    /// Entries of the new map (at most [`CLONE_MAP_MAX_OBJECT_COUNT`]).
    pub object_count: u64,
    /// Applied in order over an all-NONEXISTENT map; later runs override earlier ones.
    pub runs: Vec<StateRun>,
    /// Replace an existing map instead of failing with -EEXIST.
    pub force: bool,
}

impl CloneMapInitOp {
    /// Checks the request on its own: count under the cap, every run inside the map and of a
    /// known state. The error says why (methods log it and return -EINVAL).
    pub fn validate(&self) -> Result<(), String> {
        if self.object_count > CLONE_MAP_MAX_OBJECT_COUNT {
            return Err(format!("object_count {} above the cap {CLONE_MAP_MAX_OBJECT_COUNT}", self.object_count));
        }
        for (i, r) in self.runs.iter().enumerate() {
            if !r.state.is_known() {
                return Err(format!("run {i}: unknown state {}", r.state.to_u8()));
            }
            match r.start.checked_add(r.len) {
                Some(end) if end <= self.object_count => {}
                _ => return Err(format!("run {i}: {}+{} outside {} objects", r.start, r.len, self.object_count)),
            }
        }
        Ok(())
    }
}

impl Codec for CloneMapInitOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.object_count.encode(o);
            self.runs.encode(o);
            self.force.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "clone_map_init op", 1)?;
        let b = &mut env.body;
        let object_count = u64::read(b)?;
        let runs = Vec::<StateRun>::read(b)?;
        let force = if b.any_left() { bool::read(b)? } else { false };
        Ok(CloneMapInitOp { object_count, runs, force })
    }
}

/// Input of `clone_map_get`. Envelope v1/1: u64 start · u64 count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloneMapGetOp {
    /// First entry wanted; at most the map's object count.
    pub start: u64,
    /// Entries wanted; 0 means "to the end". A non-zero count must stay inside the map.
    /// Either way at most [`CLONE_MAP_MAX_GET_ENTRIES`] come back.
    pub count: u64,
}

impl Codec for CloneMapGetOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.start.encode(o);
            self.count.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "clone_map_get op", 1)?;
        let b = &mut env.body;
        Ok(CloneMapGetOp { start: u64::read(b)?, count: u64::read(b)? })
    }
}

/// `len` consecutive entries in one state: an element of a run-length reply.
/// Wire form (no envelope): u8 state · u32 len.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLength {
    /// The state (may be `Unknown` if the stored map holds a value this version lacks).
    pub state: CloneMapState,
    /// Number of entries.
    pub len: u32,
}

impl Codec for RunLength {
    const MIN_SIZE: usize = 5;
    fn encode(&self, out: &mut Vec<u8>) {
        self.state.encode(out);
        self.len.encode(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RunLength { state: CloneMapState::read(r)?, len: u32::read(r)? })
    }
}

/// The entries of a `clone_map_get` reply, in whichever encoding is smaller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneMapEntries {
    /// Tag 0: `vector<RunLength>` ([`RunLength`]), in entry order; lengths add up to the reply's count.
    Runs(Vec<RunLength>),
    /// Tag 1: bufferlist of `ceil(count / 2)` bytes packed as in storage, re-aligned so the
    /// reply's first entry is the high nibble of byte 0; the pad nibble is 0.
    Packed(Vec<u8>),
}

/// Output of `clone_map_get`.
///
/// Envelope v1/1: u64 object_count · u64 start · u64 count · u8 encoding (0 runs, 1 packed)
/// · the entries ([`CloneMapEntries`]). `count` is how many entries follow: what was asked
/// for, or fewer when the request reached past [`CLONE_MAP_MAX_GET_ENTRIES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneMapGetReply {
    /// Entries of the whole map.
    pub object_count: u64,
    /// First entry returned.
    pub start: u64,
    /// Entries returned.
    pub count: u64,
    /// The entries.
    pub entries: CloneMapEntries,
}

impl CloneMapGetReply {
    /// Builds a reply for entries `[first, first + count)` of packed data `data` (entry
    /// `first` is object `start`), run-length encoded unless packing is smaller.
    pub fn from_packed(object_count: u64, start: u64, data: &[u8], first: u64, count: u64) -> Self {
        let packed_bytes = packed_len(count);
        let mut runs: Vec<RunLength> = Vec::new();
        let mut fits = true;
        let mut i = first;
        let end = first + count;
        while i < end {
            let v = get_nibble(data, i);
            let both = (v << 4) | v;
            let limit = end.min(i + u64::from(u32::MAX));
            let mut j = i + 1;
            while j < limit {
                // Whole bytes at a time through uniform stretches.
                if j % 2 == 0 && j + 2 <= limit && data[(j / 2) as usize] == both {
                    j += 2;
                } else if get_nibble(data, j) == v {
                    j += 1;
                } else {
                    break;
                }
            }
            runs.push(RunLength { state: CloneMapState::from_u8(v), len: (j - i) as u32 });
            if runs.len() as u64 * RunLength::MIN_SIZE as u64 > packed_bytes {
                fits = false;
                break;
            }
            i = j;
        }
        let entries = if fits {
            CloneMapEntries::Runs(runs)
        } else if first % 2 == 0 {
            let mut p = data[(first / 2) as usize..(first / 2 + packed_bytes) as usize].to_vec();
            if count % 2 == 1 {
                if let Some(last) = p.last_mut() {
                    *last &= 0xf0;
                }
            }
            CloneMapEntries::Packed(p)
        } else {
            let mut p = vec![0u8; packed_bytes as usize];
            for k in 0..count {
                set_nibble(&mut p, k, get_nibble(data, first + k));
            }
            CloneMapEntries::Packed(p)
        };
        CloneMapGetReply { object_count, start, count, entries }
    }

    /// One past the last entry returned: where the next page starts.
    pub fn end(&self) -> u64 {
        self.start + self.count
    }

    /// The returned entries, expanded to one state per object (`count` of them).
    pub fn states(&self) -> Vec<CloneMapState> {
        match &self.entries {
            CloneMapEntries::Runs(runs) => {
                let mut v = Vec::with_capacity(self.count as usize);
                for r in runs {
                    v.extend(std::iter::repeat_n(r.state, r.len as usize));
                }
                v
            }
            CloneMapEntries::Packed(p) => crate::types::unpack(p, 0, self.count),
        }
    }
}

impl Codec for CloneMapGetReply {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.object_count.encode(o);
            self.start.encode(o);
            self.count.encode(o);
            match &self.entries {
                CloneMapEntries::Runs(runs) => {
                    0u8.encode(o);
                    runs.encode(o);
                }
                CloneMapEntries::Packed(p) => {
                    1u8.encode(o);
                    crate::codec::encode_bytes(p, o);
                }
            }
        });
    }

    /// Also checks consistency: `start + count <= object_count`, run lengths adding up to
    /// `count`, a packed buffer of exactly `ceil(count / 2)` bytes.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "clone_map_get reply", 1)?;
        let b = &mut env.body;
        let object_count = u64::read(b)?;
        let start = u64::read(b)?;
        let count = u64::read(b)?;
        if start.checked_add(count).is_none_or(|end| end > object_count) {
            return Err(DecodeError::Invalid("clone_map_get reply range"));
        }
        let entries = match u8::read(b)? {
            0 => {
                let runs = Vec::<RunLength>::read(b)?;
                let total: u64 = runs.iter().map(|r| u64::from(r.len)).sum();
                if total != count {
                    return Err(DecodeError::Invalid("clone_map_get reply run lengths"));
                }
                CloneMapEntries::Runs(runs)
            }
            1 => {
                let p = BufferList::read(b)?.0;
                if p.len() as u64 != packed_len(count) {
                    return Err(DecodeError::Invalid("clone_map_get reply packed length"));
                }
                CloneMapEntries::Packed(p)
            }
            _ => return Err(DecodeError::Invalid("clone_map_get reply encoding")),
        };
        Ok(CloneMapGetReply { object_count, start, count, entries })
    }
}

/// Input of `clone_map_update`: compare-and-set a range.
///
/// Envelope v1/1: u64 start · u64 count · u8 new_state · `optional<u8>` expected_state (the
/// optional's flag byte is always present, as stock `object_map_update`'s current_state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneMapUpdateOp {
    /// First entry.
    pub start: u64,
    /// Entries; must be above 0, and the range inside the map.
    pub count: u64,
    /// State the matching entries take.
    pub new_state: CloneMapState,
    /// If set, only entries currently in this state change; others are left alone.
    pub expected_state: Option<CloneMapState>,
}

impl CloneMapUpdateOp {
    /// Checks what can be checked without the map: count > 0, known states.
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("count 0".into());
        }
        if !self.new_state.is_known() {
            return Err(format!("unknown new_state {}", self.new_state.to_u8()));
        }
        match self.expected_state {
            Some(s) if !s.is_known() => Err(format!("unknown expected_state {}", s.to_u8())),
            _ => Ok(()),
        }
    }

    /// Checks the range against a map of `object_count` entries.
    pub fn check_range(&self, object_count: u64) -> Result<(), String> {
        match self.start.checked_add(self.count) {
            Some(end) if end <= object_count => Ok(()),
            _ => Err(format!("{}+{} outside {object_count} objects", self.start, self.count)),
        }
    }

    /// Whether an entry in state `current` changes (compare-and-set).
    pub fn applies_to(&self, current: CloneMapState) -> bool {
        current != self.new_state && self.expected_state.is_none_or(|e| e == current)
    }
}

impl Codec for CloneMapUpdateOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.start.encode(o);
            self.count.encode(o);
            self.new_state.encode(o);
            self.expected_state.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "clone_map_update op", 1)?;
        let b = &mut env.body;
        Ok(CloneMapUpdateOp {
            start: u64::read(b)?,
            count: u64::read(b)?,
            new_state: CloneMapState::read(b)?,
            expected_state: Option::<CloneMapState>::read(b)?,
        })
    }
}

/// Most updates one `clone_map_update_many` takes.
pub const CLONE_MAP_MAX_UPDATES: usize = 4096;

/// Input of `clone_map_update_many`: several [`CloneMapUpdateOp`]s applied in order, in one
/// call, so a client can batch the transitions of many objects into one write of the map.
/// (Several `clone_map_update` calls in one compound op do not work: each call reads the map
/// as it was before the op.)
///
/// Envelope v1/1: `vector<CloneMapUpdateOp>` updates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloneMapUpdateManyOp {
    /// Applied in order; each one is its own compare-and-set, as `clone_map_update`.
    pub updates: Vec<CloneMapUpdateOp>,
}

impl CloneMapUpdateManyOp {
    /// Checks what can be checked without the map: 1 to [`CLONE_MAP_MAX_UPDATES`] updates,
    /// each valid on its own.
    pub fn validate(&self) -> Result<(), String> {
        if self.updates.is_empty() || self.updates.len() > CLONE_MAP_MAX_UPDATES {
            return Err(format!("{} updates (1 to {CLONE_MAP_MAX_UPDATES})", self.updates.len()));
        }
        for (i, u) in self.updates.iter().enumerate() {
            u.validate().map_err(|why| format!("update {i}: {why}"))?;
        }
        Ok(())
    }
}

impl Codec for CloneMapUpdateManyOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| self.updates.encode(o));
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "clone_map_update_many op", 1)?;
        Ok(CloneMapUpdateManyOp { updates: Vec::read(&mut env.body)? })
    }
}

/// Input of `clone_map_resize`. Envelope v1/1: u64 object_count · u8 default_state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneMapResizeOp {
    /// New number of entries (at most [`CLONE_MAP_MAX_OBJECT_COUNT`]).
    pub object_count: u64,
    /// State of the entries a grow adds (ignored by a shrink, which simply truncates).
    pub default_state: CloneMapState,
}

impl CloneMapResizeOp {
    /// Checks the request: count under the cap, known default state.
    pub fn validate(&self) -> Result<(), String> {
        if self.object_count > CLONE_MAP_MAX_OBJECT_COUNT {
            return Err(format!("object_count {} above the cap {CLONE_MAP_MAX_OBJECT_COUNT}", self.object_count));
        }
        if !self.default_state.is_known() {
            return Err(format!("unknown default_state {}", self.default_state.to_u8()));
        }
        Ok(())
    }
}

impl Codec for CloneMapResizeOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.object_count.encode(o);
            self.default_state.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "clone_map_resize op", 1)?;
        let b = &mut env.body;
        Ok(CloneMapResizeOp { object_count: u64::read(b)?, default_state: CloneMapState::read(b)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::pack_runs;
    use proptest::prelude::*;
    use CloneMapState::*;

    #[test]
    fn golden_update_op() {
        let op = CloneMapUpdateOp { start: 1, count: 2, new_state: CopiedUp, expected_state: Some(Pending) };
        let mut want = vec![1u8, 1, 19, 0, 0, 0];
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&2u64.to_le_bytes());
        want.extend_from_slice(&[5, 1, 2]);
        assert_eq!(op.get_encoding(), want);
        let none = CloneMapUpdateOp { expected_state: None, ..op };
        assert_eq!(&none.get_encoding()[2..], &[18, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5, 0]);
        // The optional's flag byte is required.
        assert!(CloneMapUpdateOp::read_bytes(&[1, 1, 17, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5]).is_err());
    }

    #[test]
    fn init_force_is_optional() {
        let op = CloneMapInitOp { object_count: 3, runs: vec![StateRun { start: 0, len: 1, state: Exists }], force: true };
        let b = op.get_encoding();
        assert_eq!(CloneMapInitOp::read_bytes(&b), Ok(op.clone()));
        // Without the trailing force byte (body shortened by one).
        let mut short = b[..b.len() - 1].to_vec();
        short[2] -= 1;
        assert!(!CloneMapInitOp::read_bytes(&short).unwrap().force);
    }

    #[test]
    fn validation() {
        let run = |start, len, state| StateRun { start, len, state };
        let init = |count, runs| CloneMapInitOp { object_count: count, runs, force: false };
        assert!(init(10, vec![run(0, 10, Exists), run(10, 0, Pending)]).validate().is_ok());
        assert!(init(10, vec![run(5, 6, Exists)]).validate().is_err());
        assert!(init(10, vec![run(u64::MAX, 2, Exists)]).validate().is_err());
        assert!(init(10, vec![run(0, 1, Unknown(6))]).validate().is_err());
        assert!(init(CLONE_MAP_MAX_OBJECT_COUNT + 1, vec![]).validate().is_err());
        assert!(init(CLONE_MAP_MAX_OBJECT_COUNT, vec![]).validate().is_ok());
        let up = CloneMapUpdateOp { start: 0, count: 1, new_state: Exists, expected_state: None };
        assert!(up.validate().is_ok());
        assert!(CloneMapUpdateOp { count: 0, ..up }.validate().is_err());
        assert!(CloneMapUpdateOp { new_state: Unknown(15), ..up }.validate().is_err());
        assert!(CloneMapUpdateOp { expected_state: Some(Unknown(6)), ..up }.validate().is_err());
        assert!(CloneMapUpdateOp { start: u64::MAX, ..up }.check_range(10).is_err());
        assert!(CloneMapUpdateOp { start: 9, ..up }.check_range(10).is_ok());
        assert!(CloneMapUpdateOp { start: 10, ..up }.check_range(10).is_err());
        let many = |n| CloneMapUpdateManyOp { updates: vec![up; n] };
        assert!(many(0).validate().is_err());
        assert!(many(1).validate().is_ok());
        assert!(many(CLONE_MAP_MAX_UPDATES).validate().is_ok());
        assert!(many(CLONE_MAP_MAX_UPDATES + 1).validate().is_err());
        let bad = CloneMapUpdateManyOp { updates: vec![up, CloneMapUpdateOp { count: 0, ..up }] };
        assert_eq!(bad.validate(), Err("update 1: count 0".to_string()));
        let rs = CloneMapResizeOp { object_count: 5, default_state: ExistsParent };
        assert!(rs.validate().is_ok());
        assert!(CloneMapResizeOp { default_state: Unknown(200), ..rs }.validate().is_err());
        assert!(CloneMapResizeOp { object_count: u64::MAX, ..rs }.validate().is_err());
    }

    #[test]
    fn reply_picks_the_smaller_encoding() {
        let uniform = pack_runs(1000, &[StateRun { start: 0, len: 1000, state: ExistsParent }]);
        let r = CloneMapGetReply::from_packed(1000, 0, &uniform, 0, 1000);
        assert_eq!(r.entries, CloneMapEntries::Runs(vec![RunLength { state: ExistsParent, len: 1000 }]));
        let alternating: Vec<u8> = vec![0x14; 500];
        let r = CloneMapGetReply::from_packed(1000, 0, &alternating, 0, 1000);
        assert_eq!(r.entries, CloneMapEntries::Packed(vec![0x14; 500]));
        // Odd start and odd count: re-aligned, pad nibble cleared.
        let r = CloneMapGetReply::from_packed(1000, 1, &alternating, 1, 3);
        assert_eq!(r.entries, CloneMapEntries::Packed(vec![0x41, 0x40]));
        assert_eq!(r.states(), [ExistsParent, Exists, ExistsParent]);
        let r = CloneMapGetReply::from_packed(1000, 0, &alternating, 0, 3);
        assert_eq!(r.entries, CloneMapEntries::Packed(vec![0x14, 0x10]));
        let empty = CloneMapGetReply::from_packed(1000, 1000, &alternating, 0, 0);
        assert_eq!(empty.entries, CloneMapEntries::Runs(vec![]));
        assert_eq!(CloneMapGetReply::read_bytes(&empty.get_encoding()), Ok(empty));
    }

    #[test]
    fn reply_inconsistencies_are_rejected() {
        let mk = |object_count, start, count, entries| CloneMapGetReply { object_count, start, count, entries }.get_encoding();
        let runs = |v: &[u32]| CloneMapEntries::Runs(v.iter().map(|&len| RunLength { state: Exists, len }).collect());
        assert!(CloneMapGetReply::read_bytes(&mk(10, 0, 3, runs(&[1, 2]))).is_ok());
        assert!(CloneMapGetReply::read_bytes(&mk(10, 0, 3, runs(&[1, 1]))).is_err());
        assert!(CloneMapGetReply::read_bytes(&mk(10, 8, 3, runs(&[3]))).is_err());
        assert!(CloneMapGetReply::read_bytes(&mk(10, u64::MAX, 3, runs(&[3]))).is_err());
        assert!(CloneMapGetReply::read_bytes(&mk(10, 0, 3, CloneMapEntries::Packed(vec![0; 2]))).is_ok());
        assert!(CloneMapGetReply::read_bytes(&mk(10, 0, 3, CloneMapEntries::Packed(vec![0; 3]))).is_err());
        let mut bad_tag = mk(10, 0, 0, runs(&[]));
        bad_tag[6 + 24] = 2;
        assert!(CloneMapGetReply::read_bytes(&bad_tag).is_err());
    }

    fn arb_state() -> impl Strategy<Value = CloneMapState> {
        any::<u8>().prop_map(CloneMapState::from_u8)
    }

    proptest! {
        #[test]
        fn ops_round_trip(
            count in any::<u64>(), start in any::<u64>(), force in any::<bool>(),
            runs in prop::collection::vec((any::<u64>(), any::<u64>(), arb_state()), 0..5),
            s1 in arb_state(), s2 in prop::option::of(arb_state()),
        ) {
            let init = CloneMapInitOp { object_count: count, runs: runs.into_iter().map(|(start, len, state)| StateRun { start, len, state }).collect(), force };
            prop_assert_eq!(CloneMapInitOp::read_bytes(&init.get_encoding()), Ok(init));
            let get = CloneMapGetOp { start, count };
            prop_assert_eq!(CloneMapGetOp::read_bytes(&get.get_encoding()), Ok(get));
            let up = CloneMapUpdateOp { start, count, new_state: s1, expected_state: s2 };
            prop_assert_eq!(CloneMapUpdateOp::read_bytes(&up.get_encoding()), Ok(up));
            let many = CloneMapUpdateManyOp { updates: vec![up, CloneMapUpdateOp { start: count, ..up }] };
            prop_assert_eq!(CloneMapUpdateManyOp::read_bytes(&many.get_encoding()), Ok(many));
            let rs = CloneMapResizeOp { object_count: count, default_state: s1 };
            prop_assert_eq!(CloneMapResizeOp::read_bytes(&rs.get_encoding()), Ok(rs));
        }

        #[test]
        fn reply_round_trip(states in prop::collection::vec(0..6u8, 0..3000), start_frac in 0..100u64, len_frac in 0..=100u64) {
            let n = states.len() as u64;
            let mut data = vec![0u8; packed_len(n) as usize];
            for (i, &s) in states.iter().enumerate() {
                set_nibble(&mut data, i as u64, s);
            }
            let first = n * start_frac / 100;
            let count = (n - first) * len_frac / 100;
            let r = CloneMapGetReply::from_packed(n, first, &data, first, count);
            let want: Vec<_> = states[first as usize..(first + count) as usize].iter().map(|&s| CloneMapState::from_u8(s)).collect();
            prop_assert_eq!(r.states(), want);
            let b = r.get_encoding();
            prop_assert!(b.len() as u64 <= 6 + 8 * 3 + 1 + 4 + packed_len(count));
            prop_assert_eq!(CloneMapGetReply::read_bytes(&b), Ok(r));
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = CloneMapInitOp::read_bytes(&b);
            let _ = CloneMapGetOp::read_bytes(&b);
            let _ = CloneMapGetReply::read_bytes(&b);
            let _ = CloneMapUpdateOp::read_bytes(&b);
            let _ = CloneMapUpdateManyOp::read_bytes(&b);
            let _ = CloneMapResizeOp::read_bytes(&b);
        }
    }
}

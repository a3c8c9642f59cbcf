//! Tests of the clone-map methods against `MemContext`: every return code, a 10 TiB map
//! model-checked through random compare-and-set updates, corruption detection, and how
//! many bytes each call reads and writes.

use super::*;
use crate::context::MemObject;
use crate::ops::{CloneMapEntries, RunLength, CLONE_MAP_MAX_UPDATES};
use crate::stubs;
use crate::types::{decode_stored_map, StateRun, CLONE_MAP_MAX_OBJECT_COUNT};
use crate::MemContext;
use proptest::prelude::*;
use CloneMapState::*;

/// 10 TiB of 4 MiB objects.
const TEN_TIB_OBJECTS: u64 = 10 << 18;

fn run(start: u64, len: u64, state: CloneMapState) -> StateRun {
    StateRun { start, len, state }
}

fn init(c: &mut MemContext, count: u64, runs: Vec<StateRun>, force: bool) -> Result<(), Errno> {
    c.call(clone_map_init, &stubs::clone_map_init(count, runs, force).input).map(|_| ())
}

fn with_map(count: u64, runs: Vec<StateRun>) -> MemContext {
    let mut c = MemContext::missing();
    init(&mut c, count, runs, false).unwrap();
    c
}

fn get(c: &mut MemContext, start: u64, count: u64) -> Result<CloneMapGetReply, Errno> {
    c.call(clone_map_get, &stubs::clone_map_get(start, count).input).map(|o| stubs::decode_clone_map_get(&o).unwrap())
}

/// The whole map, paging as a client would.
fn get_all(c: &mut MemContext) -> Vec<CloneMapState> {
    let mut states = Vec::new();
    let mut start = 0;
    loop {
        let r = get(c, start, 0).unwrap();
        states.extend(r.states());
        if r.end() == r.object_count {
            return states;
        }
        start = r.end();
    }
}

fn update(c: &mut MemContext, start: u64, count: u64, new: CloneMapState, expected: Option<CloneMapState>) -> Result<(), Errno> {
    c.call(clone_map_update, &stubs::clone_map_update(start, count, new, expected).input).map(|_| ())
}

fn up(start: u64, count: u64, new_state: CloneMapState, expected_state: Option<CloneMapState>) -> CloneMapUpdateOp {
    CloneMapUpdateOp { start, count, new_state, expected_state }
}

fn update_many(c: &mut MemContext, updates: Vec<CloneMapUpdateOp>) -> Result<(), Errno> {
    c.call(clone_map_update_many, &stubs::clone_map_update_many(updates).input).map(|_| ())
}

fn resize(c: &mut MemContext, count: u64, default: CloneMapState) -> Result<(), Errno> {
    c.call(clone_map_resize, &stubs::clone_map_resize(count, default).input).map(|_| ())
}

fn data(c: &mut MemContext) -> &mut Vec<u8> {
    &mut c.object.as_mut().unwrap().data
}

fn logged(c: &MemContext, level: i32, text: &str) -> bool {
    c.logs.iter().any(|(l, m)| *l == level && m.contains(text))
}

/// Counts what a method reads and writes.
struct Counting<'a> {
    inner: &'a mut MemContext,
    read: u64,
    written: u64,
}

impl<'a> Counting<'a> {
    fn new(inner: &'a mut MemContext) -> Self {
        Counting { inner, read: 0, written: 0 }
    }
}

impl ClsContext for Counting<'_> {
    fn stat(&mut self) -> Result<(u64, i64), Errno> {
        self.inner.stat()
    }
    fn create(&mut self, exclusive: bool) -> Result<(), Errno> {
        self.inner.create(exclusive)
    }
    fn remove(&mut self) -> Result<(), Errno> {
        self.inner.remove()
    }
    fn read(&mut self, off: u64, len: u64) -> Result<Vec<u8>, Errno> {
        let r = self.inner.read(off, len)?;
        self.read += r.len() as u64;
        Ok(r)
    }
    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), Errno> {
        self.written += data.len() as u64;
        self.inner.write(off, data)
    }
    fn write_full(&mut self, data: &[u8]) -> Result<(), Errno> {
        self.written += data.len() as u64;
        self.inner.write_full(data)
    }
    fn getxattr(&mut self, name: &str) -> Result<Vec<u8>, Errno> {
        self.inner.getxattr(name)
    }
    fn setxattr(&mut self, name: &str, value: &[u8]) -> Result<(), Errno> {
        self.inner.setxattr(name, value)
    }
    fn omap_get(&mut self, key: &str) -> Result<Vec<u8>, Errno> {
        self.inner.omap_get(key)
    }
    fn omap_get_vals(&mut self, start_after: &str, prefix: &str, max: u64) -> Result<(Vec<(String, Vec<u8>)>, bool), Errno> {
        self.inner.omap_get_vals(start_after, prefix, max)
    }
    fn omap_set(&mut self, entries: &[(&str, &[u8])]) -> Result<(), Errno> {
        self.inner.omap_set(entries)
    }
    fn omap_remove(&mut self, key: &str) -> Result<(), Errno> {
        self.inner.omap_remove(key)
    }
    fn log(&mut self, level: i32, msg: &str) {
        self.inner.log(level, msg)
    }
    fn now(&mut self) -> (u64, u32) {
        self.inner.now()
    }
}

/// xorshift64*: deterministic randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn state(&mut self) -> CloneMapState {
        CloneMapState::ALL[self.below(6) as usize]
    }
}

// ---- clone_map_init ----

#[test]
fn init_writes_the_documented_stored_form() {
    let runs = vec![run(0, 10_000, ExistsParent), run(5, 3, Exists), run(9_999, 1, CopiedUp)];
    let mut c = with_map(20_001, runs.clone());
    let model = stubs::clone_map_model_init(20_001, &runs).unwrap();
    let stored = data(&mut c).clone();
    assert_eq!(stored, crate::types::encode_stored_map(20_001, &crate::types::pack_runs(20_001, &runs)));
    let (layout, d) = decode_stored_map(&stored).unwrap();
    assert_eq!((layout.block_count(), layout.object_size()), (3, 23 + 10_001 + 12));
    assert_eq!(crate::types::unpack(d, 0, 20_001), model);
    assert_eq!(get_all(&mut c), model);
    assert!(logged(&c, 20, "clone_map_init object_count=20001 runs=3 force=false"));
}

#[test]
fn init_existing_is_eexist_unless_forced() {
    let mut c = with_map(10, vec![run(0, 10, Exists)]);
    let before = c.object.clone();
    assert_eq!(init(&mut c, 3, vec![], false), Err(Errno::EEXIST));
    assert_eq!(c.object, before);
    assert!(logged(&c, 20, "force is not set"));
    init(&mut c, 3, vec![run(1, 1, Pending)], true).unwrap();
    assert_eq!(get_all(&mut c), [NonExistent, Pending, NonExistent]);
    // An empty object is no map: init proceeds without force.
    let mut empty = MemContext::existing();
    init(&mut empty, 2, vec![], false).unwrap();
    assert_eq!(get_all(&mut empty), [NonExistent, NonExistent]);
}

#[test]
fn init_invalid_input_is_einval() {
    let mut c = MemContext::missing();
    assert_eq!(c.call(clone_map_init, b""), Err(Errno::EINVAL));
    assert_eq!(c.call(clone_map_init, b"\x01\x01\x04\x00\x00\x00abcd"), Err(Errno::EINVAL));
    assert_eq!(init(&mut c, CLONE_MAP_MAX_OBJECT_COUNT + 1, vec![], false), Err(Errno::EINVAL));
    assert_eq!(init(&mut c, 10, vec![run(8, 3, Exists)], false), Err(Errno::EINVAL));
    assert_eq!(init(&mut c, 10, vec![run(u64::MAX, 2, Exists)], false), Err(Errno::EINVAL));
    assert_eq!(init(&mut c, 10, vec![run(0, 1, Unknown(6))], false), Err(Errno::EINVAL));
    assert!(c.object.is_none());
    assert!(logged(&c, 1, "clone_map_init: invalid input"));
    assert!(logged(&c, 20, "run 0: unknown state 6"));
}

#[test]
fn init_empty_map() {
    let mut c = with_map(0, vec![]);
    assert_eq!(data(&mut c).len(), 23);
    let r = get(&mut c, 0, 0).unwrap();
    assert_eq!((r.object_count, r.count, r.entries), (0, 0, CloneMapEntries::Runs(vec![])));
    assert_eq!(update(&mut c, 0, 1, Exists, None), Err(Errno::EINVAL));
    resize(&mut c, 3, ExistsParent).unwrap();
    assert_eq!(get_all(&mut c), [ExistsParent; 3]);
}

// ---- clone_map_get ----

#[test]
fn get_ranges_and_errors() {
    let runs = vec![run(0, 9000, ExistsParent), run(8190, 4, Exists)];
    let mut c = with_map(9000, runs.clone());
    let model = stubs::clone_map_model_init(9000, &runs).unwrap();
    for (start, count) in [(0, 0), (8189, 6), (8191, 1), (8192, 808), (4, 0), (8999, 1), (1, 8998)] {
        let r = get(&mut c, start, count).unwrap();
        let n = if count == 0 { 9000 - start } else { count };
        assert_eq!((r.object_count, r.start, r.count), (9000, start, n));
        assert_eq!(r.states(), model[start as usize..(start + n) as usize]);
    }
    let r = get(&mut c, 9000, 0).unwrap();
    assert_eq!(r.count, 0);
    assert_eq!(get(&mut c, 9001, 0), Err(Errno::EINVAL));
    assert_eq!(get(&mut c, 8999, 2), Err(Errno::EINVAL));
    assert_eq!(get(&mut c, 9000, 1), Err(Errno::EINVAL));
    assert_eq!(get(&mut c, 5, u64::MAX), Err(Errno::EINVAL));
    assert_eq!(c.call(clone_map_get, b"\x01"), Err(Errno::EINVAL));
    assert_eq!(get(&mut MemContext::missing(), 0, 0), Err(Errno::ENOENT));
    assert_eq!(get(&mut MemContext::existing(), 0, 0), Err(Errno::ENOENT));
}

#[test]
fn get_caps_the_entries_per_call() {
    let count = CLONE_MAP_MAX_GET_ENTRIES + 5;
    let mut c = with_map(count, vec![run(0, count, ExistsParent), run(count - 1, 1, Exists)]);
    let r = get(&mut c, 0, 0).unwrap();
    assert_eq!((r.start, r.count), (0, CLONE_MAP_MAX_GET_ENTRIES));
    assert_eq!(r.entries, CloneMapEntries::Runs(vec![RunLength { state: ExistsParent, len: CLONE_MAP_MAX_GET_ENTRIES as u32 }]));
    // An explicit count above the cap is answered the same way.
    assert_eq!(get(&mut c, 1, count - 1).unwrap().count, CLONE_MAP_MAX_GET_ENTRIES);
    let rest = get(&mut c, r.end(), 0).unwrap();
    assert_eq!(rest.states(), [ExistsParent, ExistsParent, ExistsParent, ExistsParent, Exists]);
}

// ---- clone_map_update ----

#[test]
fn update_is_compare_and_set() {
    let mut c = with_map(10, vec![run(0, 5, ExistsParent), run(5, 5, Exists)]);
    update(&mut c, 3, 4, Pending, Some(ExistsParent)).unwrap();
    assert_eq!(get_all(&mut c), [ExistsParent, ExistsParent, ExistsParent, Pending, Pending, Exists, Exists, Exists, Exists, Exists]);
    update(&mut c, 0, 10, CopiedUp, Some(Pending)).unwrap();
    update(&mut c, 9, 1, NonExistent, None).unwrap();
    assert_eq!(get_all(&mut c), [ExistsParent, ExistsParent, ExistsParent, CopiedUp, CopiedUp, Exists, Exists, Exists, Exists, NonExistent]);
    // A mismatch applies nothing and writes nothing.
    let before = c.object.clone();
    let mut counting = Counting::new(&mut c);
    clone_map_update(&mut counting, &stubs::clone_map_update(0, 10, Exists, Some(Pending)).input, &mut Vec::new()).unwrap();
    assert_eq!(counting.written, 0);
    assert_eq!(c.object, before);
    assert!(logged(&c, 20, "no entry changed"));
    assert!(decode_stored_map(data(&mut c)).is_ok());
}

#[test]
fn update_errors() {
    let mut c = with_map(100, vec![]);
    assert_eq!(update(&mut c, 0, 0, Exists, None), Err(Errno::EINVAL));
    assert_eq!(update(&mut c, 99, 2, Exists, None), Err(Errno::EINVAL));
    assert_eq!(update(&mut c, 100, 1, Exists, None), Err(Errno::EINVAL));
    assert_eq!(update(&mut c, u64::MAX, 2, Exists, None), Err(Errno::EINVAL));
    assert_eq!(update(&mut c, 0, 1, Unknown(6), None), Err(Errno::EINVAL));
    assert_eq!(update(&mut c, 0, 1, Exists, Some(Unknown(255))), Err(Errno::EINVAL));
    // The optional's flag byte is required, as stock object_map_update.
    let mut short = stubs::clone_map_update(0, 1, Exists, None).input;
    short.pop();
    short[2] -= 1;
    assert_eq!(c.call(clone_map_update, &short), Err(Errno::EINVAL));
    assert_eq!(update(&mut MemContext::missing(), 0, 1, Exists, None), Err(Errno::ENOENT));
    assert_eq!(update(&mut MemContext::existing(), 0, 1, Exists, None), Err(Errno::ENOENT));
    assert_eq!(get_all(&mut c), vec![NonExistent; 100]);
}

#[test]
fn a_single_object_update_touches_only_its_block() {
    let mut c = with_map(TEN_TIB_OBJECTS, vec![run(0, TEN_TIB_OBJECTS, ExistsParent)]);
    let mut counting = Counting::new(&mut c);
    let input = stubs::clone_map_update(1_234_567, 1, CopiedUp, Some(ExistsParent)).input;
    clone_map_update(&mut counting, &input, &mut Vec::new()).unwrap();
    // One data byte and one CRC entry; reads: header probe, one 4 KiB block, one CRC.
    assert_eq!(counting.written, 1 + 4);
    assert!(counting.read <= 64 + 4096 + 4, "read {}", counting.read);
    assert!(counting.written < 1024);
    // A range crossing a block boundary: two CRC entries.
    let mut counting = Counting::new(&mut c);
    let input = stubs::clone_map_update(8191, 2, Exists, None).input;
    clone_map_update(&mut counting, &input, &mut Vec::new()).unwrap();
    assert_eq!(counting.written, 2 + 8);
    // A get of one object reads as little.
    let mut counting = Counting::new(&mut c);
    let mut out = Vec::new();
    clone_map_get(&mut counting, &stubs::clone_map_get(1_234_567, 1).input, &mut out).unwrap();
    assert!(counting.read <= 64 + 4096 + 4);
    assert_eq!(stubs::decode_clone_map_states(&out), Ok(vec![CopiedUp]));
    assert!(decode_stored_map(data(&mut c)).is_ok());
}

// ---- clone_map_update_many ----

#[test]
fn update_many_applies_in_order() {
    let mut c = with_map(10, vec![run(0, 10, ExistsParent)]);
    // A copy-up's two transitions of one object, and another object's first, in one call.
    update_many(&mut c, vec![up(3, 1, Pending, None), up(3, 1, CopiedUp, Some(Pending)), up(7, 2, Pending, None)]).unwrap();
    let want = [ExistsParent, ExistsParent, ExistsParent, CopiedUp, ExistsParent, ExistsParent, ExistsParent, Pending, Pending, ExistsParent];
    assert_eq!(get_all(&mut c), want);
    // Each update is its own compare-and-set: a mismatch skips that one only.
    update_many(&mut c, vec![up(3, 1, Exists, Some(Pending)), up(7, 1, CopiedUp, Some(Pending))]).unwrap();
    assert_eq!(get_all(&mut c)[3..9], [CopiedUp, ExistsParent, ExistsParent, ExistsParent, CopiedUp, Pending]);
    // Out of order: the stretch written back starts at the lowest changed byte.
    update_many(&mut c, vec![up(9, 1, Exists, None), up(0, 1, Exists, None)]).unwrap();
    assert_eq!(get_all(&mut c)[..2], [Exists, ExistsParent]);
    assert_eq!(get_all(&mut c)[9], Exists);
    assert!(decode_stored_map(data(&mut c)).is_ok());
}

#[test]
fn update_many_errors_write_nothing() {
    let mut c = with_map(100, vec![]);
    let before = c.object.clone();
    assert_eq!(update_many(&mut c, vec![]), Err(Errno::EINVAL));
    assert_eq!(update_many(&mut c, vec![up(0, 1, Exists, None); CLONE_MAP_MAX_UPDATES + 1]), Err(Errno::EINVAL));
    // A bad update anywhere refuses the whole call, before anything is written.
    assert_eq!(update_many(&mut c, vec![up(0, 1, Exists, None), up(99, 2, Exists, None)]), Err(Errno::EINVAL));
    assert_eq!(update_many(&mut c, vec![up(0, 1, Exists, None), up(5, 1, Unknown(9), None)]), Err(Errno::EINVAL));
    assert_eq!(update_many(&mut c, vec![up(0, 1, Exists, None), up(5, 0, Exists, None)]), Err(Errno::EINVAL));
    assert_eq!(c.call(clone_map_update_many, &[1, 1, 4, 0, 0, 0, 9, 0, 0, 0]), Err(Errno::EINVAL));
    assert_eq!(c.object, before);
    assert_eq!(update_many(&mut MemContext::missing(), vec![up(0, 1, Exists, None)]), Err(Errno::ENOENT));
}

#[test]
fn update_many_reads_and_writes_each_block_once() {
    let mut c = with_map(TEN_TIB_OBJECTS, vec![run(0, TEN_TIB_OBJECTS, ExistsParent)]);
    // 64 objects in block 0, 1 object each in blocks 100 and 200 (8192 entries per block).
    let mut updates: Vec<_> = (0..64).map(|i| up(i * 100, 1, Pending, None)).collect();
    updates.push(up(100 * 8192 + 5, 1, Pending, None));
    updates.push(up(200 * 8192, 1, Pending, None));
    let mut counting = Counting::new(&mut c);
    clone_map_update_many(&mut counting, &stubs::clone_map_update_many(updates).input, &mut Vec::new()).unwrap();
    // Three blocks and their CRC entries read; each stretch's changed bytes and one CRC each.
    assert!(counting.read <= 64 + 3 * (4096 + 4), "read {}", counting.read);
    assert_eq!(counting.written, (63 * 50 + 1 + 4) + (1 + 4) + (1 + 4));
    let states = get(&mut c, 0, 6400).unwrap().states();
    assert!(states.iter().enumerate().all(|(i, &s)| s == if i % 100 == 0 { Pending } else { ExistsParent }));
    assert_eq!(get(&mut c, 100 * 8192 + 4, 3).unwrap().states(), [ExistsParent, Pending, ExistsParent]);
    assert_eq!(get(&mut c, 200 * 8192, 1).unwrap().states(), [Pending]);
    assert!(decode_stored_map(data(&mut c)).is_ok());
}

#[test]
fn update_many_over_a_corrupt_block_is_eio_and_writes_nothing() {
    let mut c = with_map(3 * 8192, vec![]);
    let blk1 = CloneMapLayout::new(3 * 8192).data_offset() as usize + 4096;
    data(&mut c)[blk1 + 7] ^= 0x10;
    let before = c.object.clone();
    assert_eq!(update_many(&mut c, vec![up(0, 1, Exists, None), up(8192, 1, Exists, None)]), Err(Errno::EIO));
    assert_eq!(c.object, before);
    update_many(&mut c, vec![up(0, 1, Exists, None), up(2 * 8192, 1, Exists, None)]).unwrap();
}

// ---- clone_map_resize ----

#[test]
fn resize_matches_the_model() {
    let mut rng = Rng(0x5eed);
    // Counts around block (8192-entry) and byte boundaries, odd and even.
    let counts = [0u64, 1, 2, 3, 8191, 8192, 8193, 16_384, 16_385, 20_000, 5, 24_577, 8192, 0, 7];
    let mut c = with_map(0, vec![]);
    let mut model: Vec<CloneMapState> = Vec::new();
    for &n in &counts {
        let d = rng.state();
        resize(&mut c, n, d).unwrap();
        stubs::clone_map_model_resize(&mut model, n, d).unwrap();
        // Scatter some updates so shrinks cut through varied content.
        if n > 0 {
            for _ in 0..20 {
                let (s, st) = (rng.below(n), rng.state());
                update(&mut c, s, 1, st, None).unwrap();
                stubs::clone_map_model_update(&mut model, s, 1, st, None).unwrap();
            }
        }
        assert_eq!(get_all(&mut c), model, "after resize to {n}");
        let (layout, _) = decode_stored_map(data(&mut c)).unwrap();
        assert_eq!(layout.object_count(), n);
    }
}

#[test]
fn resize_same_count_writes_nothing() {
    let mut c = with_map(50, vec![run(0, 50, Exists)]);
    let mut counting = Counting::new(&mut c);
    clone_map_resize(&mut counting, &stubs::clone_map_resize(50, Pending).input, &mut Vec::new()).unwrap();
    assert_eq!(counting.written, 0);
}

#[test]
fn resize_grow_is_bounded() {
    let mut c = with_map(TEN_TIB_OBJECTS, vec![run(0, TEN_TIB_OBJECTS, ExistsParent)]);
    let mut counting = Counting::new(&mut c);
    let input = stubs::clone_map_resize(TEN_TIB_OBJECTS + 10, NonExistent).input;
    clone_map_resize(&mut counting, &input, &mut Vec::new()).unwrap();
    // The new tail (one new block, the old map ends on a block boundary), the 321-entry CRC
    // table and the header; reads: header, the whole old CRC table.
    assert_eq!(counting.written, 5 + 321 * 4 + 23);
    assert!(counting.read <= 64 + 320 * 4);
    let r = get(&mut c, TEN_TIB_OBJECTS - 2, 0).unwrap();
    assert_eq!(r.states()[..3], [ExistsParent, ExistsParent, NonExistent]);
    assert_eq!(r.count, 12);
}

#[test]
fn resize_errors() {
    let mut c = with_map(10, vec![]);
    assert_eq!(resize(&mut c, CLONE_MAP_MAX_OBJECT_COUNT + 1, Exists), Err(Errno::EINVAL));
    assert_eq!(resize(&mut c, 20, Unknown(9)), Err(Errno::EINVAL));
    assert_eq!(c.call(clone_map_resize, b"\x01\x01\x01\x00\x00\x00\x00"), Err(Errno::EINVAL));
    assert_eq!(resize(&mut MemContext::missing(), 1, Exists), Err(Errno::ENOENT));
    assert_eq!(resize(&mut MemContext::existing(), 1, Exists), Err(Errno::ENOENT));
    resize(&mut c, CLONE_MAP_MAX_OBJECT_COUNT, Exists).unwrap();
    assert_eq!(get(&mut c, CLONE_MAP_MAX_OBJECT_COUNT - 1, 0).unwrap().states(), [Exists]);
}

// ---- corruption ----

#[test]
fn a_corrupt_block_fails_only_the_calls_that_read_it() {
    let mut c = with_map(40_000, vec![run(0, 40_000, ExistsParent)]);
    let layout = CloneMapLayout::new(40_000);
    // Block 2 holds entries 16384..24576, bytes 8192..12288 of the data.
    let at = (layout.data_offset() + 8192 + 100) as usize;
    data(&mut c)[at] ^= 0x01;
    assert_eq!(get(&mut c, 16_384, 1), Err(Errno::EIO));
    assert!(logged(&c, 0, "clone_map_get: corrupt clone map: data block 2 (objects 16384..24576) CRC mismatch"));
    assert_eq!(get(&mut c, 0, 0), Err(Errno::EIO));
    assert_eq!(get(&mut c, 10_000, 6384).unwrap().count, 6384);
    assert_eq!(get(&mut c, 24_576, 0).unwrap().count, 40_000 - 24_576);
    assert_eq!(update(&mut c, 20_000, 1, Exists, None), Err(Errno::EIO));
    update(&mut c, 30_000, 1, Exists, None).unwrap();
    // A resize that cuts the bad block refuses to re-sign it.
    assert_eq!(resize(&mut c, 20_000, Exists), Err(Errno::EIO));
    // A bad CRC entry is caught the same way.
    data(&mut c)[at] ^= 0x01;
    let crc_at = layout.crc_offset(4) as usize;
    data(&mut c)[crc_at] ^= 0x80;
    assert_eq!(get(&mut c, 39_999, 1), Err(Errno::EIO));
    assert!(logged(&c, 0, "data block 4"));
    assert_eq!(get(&mut c, 0, 32_768).unwrap().count, 32_768);
}

#[test]
fn a_corrupt_header_fails_every_call() {
    for at in [0usize, 1, 6, 10, 14, 16, 19, 22] {
        let mut c = with_map(1000, vec![run(0, 10, Exists)]);
        data(&mut c)[at] ^= 0x04;
        assert_eq!(get(&mut c, 0, 1), Err(Errno::EIO), "byte {at}");
        assert_eq!(update(&mut c, 0, 1, Pending, None), Err(Errno::EIO));
        assert_eq!(resize(&mut c, 2000, Pending), Err(Errno::EIO));
        assert!(c.logs.iter().any(|(l, m)| *l == 0 && m.contains("corrupt clone map")));
    }
}

#[test]
fn a_wrong_size_is_corruption() {
    let mut c = with_map(1000, vec![]);
    data(&mut c).push(0);
    assert_eq!(get(&mut c, 0, 1), Err(Errno::EIO));
    assert!(logged(&c, 0, "object is 528 bytes, its header implies 527"));
    data(&mut c).truncate(500);
    assert_eq!(update(&mut c, 0, 1, Exists, None), Err(Errno::EIO));
    data(&mut c).truncate(3);
    assert_eq!(get(&mut c, 0, 1), Err(Errno::EIO));
    // Garbage that is not a map at all.
    *data(&mut c) = b"hello, world".to_vec();
    assert_eq!(get(&mut c, 0, 1), Err(Errno::EIO));
}

// ---- the 10 TiB map ----

#[test]
fn ten_tib_map_model_check() {
    let n = TEN_TIB_OBJECTS;
    let mut rng = Rng(0x00C0_FFEE);
    // A parent mostly written, with holes, and a tail beyond the overlap.
    let mut runs = vec![run(0, n * 3 / 4, ExistsParent)];
    for _ in 0..500 {
        let start = rng.below(n * 3 / 4);
        runs.push(run(start, rng.below(50).min(n - start), NonExistent));
    }
    runs.push(run(17, 3, Exists));
    let mut c = MemContext::missing();
    let t = std::time::Instant::now();
    init(&mut c, n, runs.clone(), false).unwrap();
    let init_time = t.elapsed();
    let mut model = stubs::clone_map_model_init(n, &runs).unwrap();
    assert_eq!(get_all(&mut c), model);

    let mut applied = 0u64;
    let mut mismatched = 0u64;
    for i in 0..10_000 {
        let count = if i % 10 == 0 { 1 + rng.below(20_000) } else { 1 };
        let start = rng.below(n - count + 1);
        let new = rng.state();
        let expected = if rng.below(3) == 0 { None } else { Some(rng.state()) };
        let changed = stubs::clone_map_model_update(&mut model, start, count, new, expected).unwrap();
        if changed == 0 {
            mismatched += 1;
        }
        applied += changed;
        // Straight on the context: no per-call snapshot of a 1.3 MB object.
        clone_map_update(&mut c, &stubs::clone_map_update(start, count, new, expected).input, &mut Vec::new()).unwrap();
        if i % 2_500 == 0 {
            let r = get(&mut c, start, count).unwrap();
            assert_eq!(r.states(), model[start as usize..(start + count) as usize]);
        }
    }
    assert!(applied > 10_000 && mismatched > 3_000, "applied {applied}, mismatched {mismatched}");
    assert_eq!(get_all(&mut c), model);
    assert!(decode_stored_map(data(&mut c)).is_ok());

    resize(&mut c, n + 100_001, ExistsParent).unwrap();
    stubs::clone_map_model_resize(&mut model, n + 100_001, ExistsParent).unwrap();
    assert_eq!(get_all(&mut c), model);
    resize(&mut c, n / 2 + 1, CopiedUp).unwrap();
    stubs::clone_map_model_resize(&mut model, n / 2 + 1, CopiedUp).unwrap();
    assert_eq!(get_all(&mut c), model);
    assert!(decode_stored_map(data(&mut c)).is_ok());
    // Generous: debug builds take a few tens of milliseconds.
    assert!(init_time.as_secs() < 5, "init took {init_time:?}");
}

// ---- properties ----

fn arb_state() -> impl Strategy<Value = CloneMapState> {
    (0..7u8).prop_map(CloneMapState::from_u8)
}

#[derive(Debug, Clone)]
enum Step {
    Update(u64, u64, CloneMapState, Option<CloneMapState>),
    UpdateMany(Vec<CloneMapUpdateOp>),
    Resize(u64, CloneMapState),
    Get(u64, u64),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..30_000u64, 0..20_000u64, arb_state(), prop::option::of(arb_state())).prop_map(|(s, n, a, b)| Step::Update(s, n, a, b)),
        // Mostly inside the map (a bad update refuses the whole call), in any order.
        2 => prop::collection::vec((0..12_000u64, 0..40u64, arb_state(), prop::option::of(arb_state())), 0..8)
            .prop_map(|v| Step::UpdateMany(v.into_iter().map(|(s, n, a, b)| up(s, n, a, b)).collect())),
        1 => (0..30_000u64, arb_state()).prop_map(|(n, d)| Step::Resize(n, d)),
        2 => (0..30_000u64, 0..20_000u64).prop_map(|(s, n)| Step::Get(s, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random call sequences give what the in-memory model gives, errors included.
    #[test]
    fn methods_follow_the_model(count in 0..30_000u64, steps in prop::collection::vec(arb_step(), 1..12)) {
        let mut c = with_map(count, vec![run(0, count / 3, ExistsParent)]);
        let mut model = stubs::clone_map_model_init(count, &[run(0, count / 3, ExistsParent)]).unwrap();
        for step in steps {
            match step {
                Step::Update(s, n, a, b) => {
                    let want = stubs::clone_map_model_update(&mut model, s, n, a, b).map(|_| ());
                    prop_assert_eq!(update(&mut c, s, n, a, b), want);
                }
                Step::UpdateMany(updates) => {
                    let want = stubs::clone_map_model_update_many(&mut model, &updates).map(|_| ());
                    prop_assert_eq!(update_many(&mut c, updates), want);
                }
                Step::Resize(n, d) => {
                    let want = stubs::clone_map_model_resize(&mut model, n, d);
                    prop_assert_eq!(resize(&mut c, n, d), want);
                }
                Step::Get(s, n) => {
                    let len = model.len() as u64;
                    match get(&mut c, s, n) {
                        Ok(r) => {
                            let end = if n == 0 { len } else { s + n };
                            prop_assert_eq!(r.states(), &model[s as usize..end as usize]);
                        }
                        Err(e) => {
                            prop_assert_eq!(e, Errno::EINVAL);
                            prop_assert!(s > len || (n > 0 && s + n > len));
                        }
                    }
                }
            }
        }
        prop_assert_eq!(get_all(&mut c), model);
        prop_assert!(decode_stored_map(data(&mut c)).is_ok());
    }

    /// Garbage input never panics any method, on a map, on nothing, and on garbage data.
    #[test]
    fn garbage_never_panics(input in prop::collection::vec(any::<u8>(), 0..64), stored in prop::collection::vec(any::<u8>(), 0..96)) {
        let methods: [crate::methods::MethodFn; 4] = [clone_map_init, clone_map_get, clone_map_update, clone_map_resize];
        for m in methods {
            let _ = with_map(100, vec![run(0, 50, Exists)]).call(m, &input);
            let _ = MemContext::missing().call(m, &input);
            let mut junk = MemContext { object: Some(MemObject { data: stored.clone(), ..Default::default() }), ..Default::default() };
            let _ = junk.call(m, &input);
        }
        // Well-formed requests over garbage data: never a panic, never a success that lies.
        let mut junk = MemContext { object: Some(MemObject { data: stored.clone(), ..Default::default() }), ..Default::default() };
        let _ = get(&mut junk, 0, 0);
        let _ = update(&mut junk, 0, 1, Exists, None);
        let _ = resize(&mut junk, 5, Exists);
    }

    /// Any single flipped byte is either caught (-EIO) or lies outside what the call read.
    #[test]
    fn a_flipped_byte_is_never_served(at_frac in 0..1000usize, bit in 0..8u8) {
        let mut c = with_map(20_000, vec![run(0, 12_345, ExistsParent), run(100, 7, CopiedUp)]);
        let model = get_all(&mut c);
        let len = data(&mut c).len();
        let at = at_frac * len / 1000;
        data(&mut c)[at] ^= 1 << bit;
        for (s, n) in [(0u64, 0u64), (0, 1), (8192, 100), (19_999, 1)] {
            if let Ok(r) = get(&mut c, s, n) {
                let end = if n == 0 { 20_000 } else { s + n };
                prop_assert_eq!(r.states(), &model[s as usize..end as usize]);
            }
        }
        prop_assert_eq!(get(&mut c, 0, 0), Err(Errno::EIO));
    }
}

//! `clone_map_init`, `clone_map_get`, `clone_map_update`, `clone_map_update_many`,
//! `clone_map_resize`: the clone map of a child image, object `rbd_clone_map.<child id>`
//! (stored form in [`crate::types::CloneMapLayout`]'s module and `docs/clone-map.md`).
//!
//! Reads touch only the header and the blocks a range needs; every block read is checked
//! against its CRC before use, and a mismatch is -EIO with a level-0 line naming the block.
//! Writes go to fixed offsets: an update rewrites only the bytes that changed and their
//! blocks' CRC entries.

use std::ops::Range;

use super::{cls_log, decode_input};
use crate::ops::{CloneMapGetOp, CloneMapGetReply, CloneMapInitOp, CloneMapResizeOp, CloneMapUpdateManyOp, CloneMapUpdateOp, CLONE_MAP_MAX_GET_ENTRIES};
use crate::types::{
    block_crcs, encode_stored_map, fill_nibbles, get_nibble, pack_runs, set_nibble, stored_header_len, CloneMapError, CloneMapLayout, CloneMapState,
    CLONE_MAP_HEADER_PROBE_LEN,
};
use crate::{ClsContext, Codec, Errno};

/// Logs corrupt stored state at level 0 (`CLS_ERR`) and gives -EIO.
fn corrupt(ctx: &mut dyn ClsContext, method: &str, e: CloneMapError) -> Errno {
    cls_log!(ctx, 0, "{method}: corrupt clone map: {e}");
    Errno::EIO
}

/// Logs an unexpected storage failure at level 0 and passes the errno on.
fn storage_error(ctx: &mut dyn ClsContext, method: &str, what: &str, e: Errno) -> Errno {
    cls_log!(ctx, 0, "{method}: {what} failed: {e}");
    e
}

/// Exactly `len` bytes at `off`; a short read means the map is corrupt (-EIO).
fn read_exact(ctx: &mut dyn ClsContext, method: &str, off: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let b = ctx.read(off, len).map_err(|e| storage_error(ctx, method, "read", e))?;
    if b.len() as u64 != len {
        return Err(corrupt(ctx, method, CloneMapError::ShortRead { offset: off, wanted: len, got: b.len() as u64 }));
    }
    Ok(b)
}

fn parse_crcs(raw: &[u8]) -> Vec<u32> {
    raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn crc_bytes(crcs: &[u32]) -> Vec<u8> {
    crcs.iter().flat_map(|c| c.to_le_bytes()).collect()
}

/// The map's layout from its header. -ENOENT when there is no map (no object, or an empty
/// one, as stock object-map methods treat it); -EIO when the header does not decode, fails
/// its CRC, or disagrees with the object's size.
fn load_layout(ctx: &mut dyn ClsContext, method: &str) -> Result<CloneMapLayout, Errno> {
    let size = match ctx.stat() {
        Ok((size, _)) => size,
        Err(Errno::ENOENT) => 0,
        Err(e) => return Err(storage_error(ctx, method, "stat", e)),
    };
    if size == 0 {
        cls_log!(ctx, 20, "{method}: no clone map");
        return Err(Errno::ENOENT);
    }
    let mut head = ctx.read(0, CLONE_MAP_HEADER_PROBE_LEN).map_err(|e| storage_error(ctx, method, "read", e))?;
    let needed = stored_header_len(&head).map_err(|e| corrupt(ctx, method, e))?;
    if needed > head.len() as u64 {
        head = read_exact(ctx, method, 0, needed)?;
    }
    let layout = CloneMapLayout::parse(&head).map_err(|e| corrupt(ctx, method, e))?;
    if layout.object_size() != size {
        return Err(corrupt(ctx, method, CloneMapError::Size { expected: layout.object_size(), actual: size }));
    }
    Ok(layout)
}

/// The data and CRC entries of `blocks`, each block checked against its CRC (-EIO naming
/// the first bad block).
fn load_blocks(ctx: &mut dyn ClsContext, method: &str, layout: &CloneMapLayout, blocks: &Range<u64>) -> Result<(Vec<u8>, Vec<u32>), Errno> {
    let bytes = layout.blocks_data_range(blocks);
    let data = read_exact(ctx, method, layout.data_offset() + bytes.start, bytes.end - bytes.start)?;
    let raw = read_exact(ctx, method, layout.crc_offset(blocks.start), 4 * (blocks.end - blocks.start))?;
    let crcs = parse_crcs(&raw);
    layout.verify_blocks(blocks.start, &data, &crcs).map_err(|e| corrupt(ctx, method, e))?;
    Ok((data, crcs))
}

/// `clone_map_init` (RD|WR). Input: [`CloneMapInitOp`]. Output: none.
///
/// Writes the whole map object (`write_full`): `object_count` entries, NONEXISTENT except
/// where the runs say otherwise, later runs overriding earlier ones.
///
/// Returns -EINVAL if the input does not decode, `object_count` is above
/// [`crate::types::CLONE_MAP_MAX_OBJECT_COUNT`], or a run reaches past the map or names an
/// unknown state; -EEXIST if a map exists (a non-empty object) and `force` is false; -errno
/// on storage failure.
pub(crate) fn clone_map_init(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    const M: &str = "clone_map_init";
    let op = decode_input(ctx, M, CloneMapInitOp::read_bytes(input))?;
    cls_log!(ctx, 20, "{M} object_count={} runs={} force={}", op.object_count, op.runs.len(), op.force);
    if let Err(why) = op.validate() {
        cls_log!(ctx, 20, "{M}: {why}");
        return Err(Errno::EINVAL);
    }
    match ctx.stat() {
        Ok((size, _)) if size > 0 && !op.force => {
            cls_log!(ctx, 20, "{M}: a clone map exists ({size} bytes) and force is not set");
            return Err(Errno::EEXIST);
        }
        Ok(_) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(storage_error(ctx, M, "stat", e)),
    }
    let data = pack_runs(op.object_count, &op.runs);
    let stored = encode_stored_map(op.object_count, &data);
    ctx.write_full(&stored).map_err(|e| storage_error(ctx, M, "write_full", e))
}

/// `clone_map_get` (RD). Input: [`CloneMapGetOp`]. Output: [`CloneMapGetReply`].
///
/// Returns entries `[start, start + count)` (`count` 0: to the end), at most
/// [`CLONE_MAP_MAX_GET_ENTRIES`] of them; the reply's `count` says how many, and the
/// client asks again from the reply's end for the rest. Reads only the header, the blocks
/// holding the range and their CRC entries.
///
/// Returns -EINVAL if the input does not decode, `start` is above the object count, or a
/// non-zero `count` reaches past the end; -ENOENT if there is no map; -EIO if the header,
/// the object size or a block holding the range fails its check (logged at level 0, naming
/// the block); -errno on storage failure.
pub(crate) fn clone_map_get(ctx: &mut dyn ClsContext, input: &[u8], out: &mut Vec<u8>) -> Result<(), Errno> {
    const M: &str = "clone_map_get";
    let op = decode_input(ctx, M, CloneMapGetOp::read_bytes(input))?;
    cls_log!(ctx, 20, "{M} start={} count={}", op.start, op.count);
    let layout = load_layout(ctx, M)?;
    let total = layout.object_count();
    if op.start > total {
        cls_log!(ctx, 20, "{M}: start {} beyond {total} objects", op.start);
        return Err(Errno::EINVAL);
    }
    let wanted = if op.count == 0 {
        total - op.start
    } else {
        match op.start.checked_add(op.count) {
            Some(end) if end <= total => op.count,
            _ => {
                cls_log!(ctx, 20, "{M}: {}+{} beyond {total} objects", op.start, op.count);
                return Err(Errno::EINVAL);
            }
        }
    };
    let n = wanted.min(CLONE_MAP_MAX_GET_ENTRIES);
    let reply = if n == 0 {
        CloneMapGetReply::from_packed(total, op.start, &[], 0, 0)
    } else {
        let blocks = layout.blocks_covering(op.start, n);
        let (data, _) = load_blocks(ctx, M, &layout, &blocks)?;
        let first = op.start - blocks.start * layout.entries_per_block();
        CloneMapGetReply::from_packed(total, op.start, &data, first, n)
    };
    reply.encode(out);
    Ok(())
}

/// `clone_map_update` (RD|WR). Input: [`CloneMapUpdateOp`]. Output: none.
///
/// Compare-and-set over `[start, start + count)`: an entry takes `new_state` only if
/// `expected_state` is None or equals its current state (entries already in `new_state`
/// are left alone). Reads and verifies only the blocks holding the range, then writes back
/// just the bytes that changed and the CRC entries of their blocks; the header is not
/// written. Nothing changed, nothing written.
///
/// There is no output: the OSD discards the output of a write method (wire facts §9.3), so
/// the call cannot tell which entries changed and returns 0 either way. A client that must
/// know (to tell "I won the transition" from "someone else did") reads the range back with
/// `clone_map_get`, or, being the lock holder, relies on its own view of the map.
///
/// Returns -EINVAL if the input does not decode, `count` is 0, a state is unknown, or the
/// range reaches past the end (no clamping); -ENOENT if there is no map; -EIO if the header,
/// the object size or a block of the range fails its check; -errno on storage failure.
pub(crate) fn clone_map_update(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    const M: &str = "clone_map_update";
    let op = decode_input(ctx, M, CloneMapUpdateOp::read_bytes(input))?;
    cls_log!(ctx, 20, "{M} start={} count={} new_state={} expected_state={:?}", op.start, op.count, op.new_state, op.expected_state.map(|s| s.to_u8()));
    if let Err(why) = op.validate() {
        cls_log!(ctx, 20, "{M}: {why}");
        return Err(Errno::EINVAL);
    }
    apply_updates(ctx, M, std::slice::from_ref(&op))
}

/// `clone_map_update_many` (RD|WR). Input: [`CloneMapUpdateManyOp`]. Output: none.
///
/// The updates in order, each a compare-and-set as in `clone_map_update`, in one call: a
/// client batches the transitions of many objects into one write of the map object. Reads
/// and verifies each block an update touches once, writes each changed stretch once.
///
/// Returns -EINVAL if the input does not decode, holds no update or more than
/// [`crate::ops::CLONE_MAP_MAX_UPDATES`], or any update would be refused by
/// `clone_map_update` (nothing is written then); otherwise as `clone_map_update`.
pub(crate) fn clone_map_update_many(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    const M: &str = "clone_map_update_many";
    let op = decode_input(ctx, M, CloneMapUpdateManyOp::read_bytes(input))?;
    cls_log!(ctx, 20, "{M} updates={}", op.updates.len());
    if let Err(why) = op.validate() {
        cls_log!(ctx, 20, "{M}: {why}");
        return Err(Errno::EINVAL);
    }
    apply_updates(ctx, M, &op.updates)
}

/// Consecutive verified blocks of the map, held while updates apply to them.
struct Stretch {
    blocks: Range<u64>,
    data: Vec<u8>,
    crcs: Vec<u32>,
    /// First and last changed byte of `data`.
    changed: Option<(u64, u64)>,
}

/// Applies validated `updates` in order: checks every range first (-EINVAL, nothing
/// written), loads the blocks they touch (merged into stretches, each verified), changes the
/// entries in memory, then writes back only the changed bytes of each stretch and the CRC
/// entries of their blocks. All reads come before any write.
fn apply_updates(ctx: &mut dyn ClsContext, method: &str, updates: &[CloneMapUpdateOp]) -> Result<(), Errno> {
    let layout = load_layout(ctx, method)?;
    for op in updates {
        if let Err(why) = op.check_range(layout.object_count()) {
            cls_log!(ctx, 20, "{method}: {why}");
            return Err(Errno::EINVAL);
        }
    }
    let mut ranges: Vec<Range<u64>> = updates.iter().map(|op| layout.blocks_covering(op.start, op.count)).collect();
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut stretches = Vec::with_capacity(merged.len());
    for blocks in merged {
        let (data, crcs) = load_blocks(ctx, method, &layout, &blocks)?;
        stretches.push(Stretch { blocks, data, crcs, changed: None });
    }
    let epb = layout.entries_per_block();
    let mut n_changed = 0u64;
    for op in updates {
        let first_block = op.start / epb;
        // The stretch holding this update's first block holds all of its blocks (merged).
        let k = stretches.partition_point(|s| s.blocks.end <= first_block);
        let s = &mut stretches[k];
        let base = s.blocks.start * epb;
        let new = op.new_state.to_u8();
        for i in op.start - base..op.start - base + op.count {
            if op.applies_to(CloneMapState::from_u8(get_nibble(&s.data, i))) {
                set_nibble(&mut s.data, i, new);
                n_changed += 1;
                let byte = i / 2;
                s.changed = Some(s.changed.map_or((byte, byte), |(first, last)| (first.min(byte), last.max(byte))));
            }
        }
    }
    let bs = layout.block_size();
    let (mut bytes, mut crc_entries) = (0, 0);
    for s in &mut stretches {
        let Some((first, last)) = s.changed else {
            continue;
        };
        let (fb, lb) = (first / bs, last / bs);
        let span = (fb * bs) as usize..(((lb + 1) * bs) as usize).min(s.data.len());
        for (k, crc) in (fb..=lb).zip(block_crcs(&s.data[span], bs)) {
            s.crcs[k as usize] = crc;
        }
        let data_off = layout.data_offset() + s.blocks.start * bs + first;
        ctx.write(data_off, &s.data[first as usize..=last as usize]).map_err(|e| storage_error(ctx, method, "write", e))?;
        let crc_off = layout.crc_offset(s.blocks.start + fb);
        ctx.write(crc_off, &crc_bytes(&s.crcs[fb as usize..=lb as usize])).map_err(|e| storage_error(ctx, method, "write", e))?;
        bytes += last - first + 1;
        crc_entries += lb - fb + 1;
    }
    if n_changed == 0 {
        cls_log!(ctx, 20, "{method}: no entry changed");
    } else {
        cls_log!(ctx, 20, "{method}: {n_changed} entries changed, {bytes} data bytes and {crc_entries} CRC entries written");
    }
    Ok(())
}

/// `clone_map_resize` (RD|WR). Input: [`CloneMapResizeOp`]. Output: none.
///
/// Grow: the new entries take `default_state`. Writes the tail of the data from the block
/// holding the first new entry (that block is verified first, so a corrupt block is never
/// re-signed), the whole CRC table (it moves; at most 32 KiB) and the header; earlier data
/// blocks are not touched.
///
/// Shrink: truncates, whatever the dropped entries hold (unlike stock `object_map_resize`,
/// which answers -ESTALE; the client reconciles before it shrinks an image). The object
/// must get shorter and `ClsContext` has no truncate, so the retained map is rewritten with
/// `write_full`: linear in the new size. The last retained block is verified before its CRC
/// is recomputed; the other CRCs are carried over unchanged.
///
/// Returns -EINVAL if the input does not decode, the new count is above
/// [`crate::types::CLONE_MAP_MAX_OBJECT_COUNT`] or `default_state` is unknown; -ENOENT if
/// there is no map; -EIO if the header, the object size or the block at the cut fails its
/// check; -errno on storage failure.
pub(crate) fn clone_map_resize(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    const M: &str = "clone_map_resize";
    let op = decode_input(ctx, M, CloneMapResizeOp::read_bytes(input))?;
    cls_log!(ctx, 20, "{M} object_count={} default_state={}", op.object_count, op.default_state);
    if let Err(why) = op.validate() {
        cls_log!(ctx, 20, "{M}: {why}");
        return Err(Errno::EINVAL);
    }
    let layout = load_layout(ctx, M)?;
    let (old, new) = (layout.object_count(), op.object_count);
    if new == old {
        cls_log!(ctx, 20, "{M}: already {old} objects");
        return Ok(());
    }
    let resized = layout.with_object_count(new);
    let bs = layout.block_size();
    if new > old {
        // The block holding the byte of entry `old`: the old last block when it is partial
        // (or ends in a pad nibble), else the first new one.
        let first_block = (old / 2) / bs;
        let mut tail = if first_block < layout.block_count() { load_blocks(ctx, M, &layout, &(first_block..first_block + 1))?.0 } else { Vec::new() };
        tail.resize((resized.data_len() - first_block * bs) as usize, 0);
        fill_nibbles(&mut tail, old - first_block * layout.entries_per_block(), new - old, op.default_state.to_u8());
        let mut crcs = parse_crcs(&read_exact(ctx, M, layout.crc_table_offset(), 4 * first_block)?);
        crcs.extend(block_crcs(&tail, bs));
        debug_assert_eq!(crcs.len() as u64, resized.block_count());
        ctx.write(layout.data_offset() + first_block * bs, &tail).map_err(|e| storage_error(ctx, M, "write", e))?;
        ctx.write(resized.crc_table_offset(), &crc_bytes(&crcs)).map_err(|e| storage_error(ctx, M, "write", e))?;
        ctx.write(0, resized.header_bytes()).map_err(|e| storage_error(ctx, M, "write", e))?;
        cls_log!(ctx, 20, "{M}: grew {old} -> {new}, {} data bytes written", tail.len());
    } else {
        let keep = resized.block_count();
        let old_bytes = layout.blocks_data_range(&(0..keep));
        let mut data = read_exact(ctx, M, layout.data_offset(), old_bytes.end)?;
        let mut crcs = parse_crcs(&read_exact(ctx, M, layout.crc_table_offset(), 4 * keep)?);
        if let Some(k) = keep.checked_sub(1) {
            let at = (k * bs) as usize;
            layout.verify_blocks(k, &data[at..], &crcs[k as usize..]).map_err(|e| corrupt(ctx, M, e))?;
            data.truncate(resized.data_len() as usize);
            if new % 2 == 1 {
                if let Some(b) = data.last_mut() {
                    *b &= 0xf0;
                }
            }
            crcs[k as usize] = block_crcs(&data[at..], bs)[0];
        }
        let mut obj = Vec::with_capacity(resized.object_size() as usize);
        obj.extend_from_slice(resized.header_bytes());
        obj.extend_from_slice(&data);
        obj.extend_from_slice(&crc_bytes(&crcs));
        debug_assert_eq!(obj.len() as u64, resized.object_size());
        ctx.write_full(&obj).map_err(|e| storage_error(ctx, M, "write_full", e))?;
        cls_log!(ctx, 20, "{M}: shrank {old} -> {new}");
    }
    Ok(())
}

#[cfg(test)]
mod tests;

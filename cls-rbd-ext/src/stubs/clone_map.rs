//! Client stubs of the clone-map methods, and the same map logic over an in-memory
//! `Vec<CloneMapState>`, so the client can compute what the OSD will store (to build an init
//! from a parent's object map, or to check a map it read back).
//!
//! The calls go to the object [`crate::types::clone_map_object`]`(child_id)`.

use super::{decode_reply, Call};
use crate::ops::{CloneMapGetOp, CloneMapGetReply, CloneMapInitOp, CloneMapResizeOp, CloneMapUpdateManyOp, CloneMapUpdateOp};
use crate::types::{pack_runs, unpack, CloneMapState, StateRun};
use crate::{Codec, Errno};

/// `clone_map_init`: create the map (replace it if `force`). A write call.
pub fn clone_map_init(object_count: u64, runs: Vec<StateRun>, force: bool) -> Call {
    Call::new("clone_map_init", CloneMapInitOp { object_count, runs, force }.get_encoding())
}

/// `clone_map_get` of `[start, start + count)` (`count` 0: to the end). A read call; decode
/// the reply with [`decode_clone_map_get`]. A reply may hold fewer entries than asked
/// (at most [`crate::ops::CLONE_MAP_MAX_GET_ENTRIES`]): continue from its `end()`.
pub fn clone_map_get(start: u64, count: u64) -> Call {
    Call::new("clone_map_get", CloneMapGetOp { start, count }.get_encoding())
}

/// Decodes a `clone_map_get` reply (-EBADMSG if it does not decode or is inconsistent).
pub fn decode_clone_map_get(out: &[u8]) -> Result<CloneMapGetReply, Errno> {
    decode_reply(out)
}

/// Decodes a `clone_map_get` reply straight into one state per returned object.
pub fn decode_clone_map_states(out: &[u8]) -> Result<Vec<CloneMapState>, Errno> {
    decode_clone_map_get(out).map(|r| r.states())
}

/// `clone_map_update`: compare-and-set `[start, start + count)` to `new_state` where the
/// entry is `expected_state` (any entry when None). A write call, so it returns nothing; see
/// the method's doc for how to confirm.
pub fn clone_map_update(start: u64, count: u64, new_state: CloneMapState, expected_state: Option<CloneMapState>) -> Call {
    Call::new("clone_map_update", CloneMapUpdateOp { start, count, new_state, expected_state }.get_encoding())
}

/// `clone_map_update_many`: the updates in order, in one write of the map. A write call.
/// Plugins older than this method answer -EOPNOTSUPP; send each update alone then.
pub fn clone_map_update_many(updates: Vec<CloneMapUpdateOp>) -> Call {
    Call::new("clone_map_update_many", CloneMapUpdateManyOp { updates }.get_encoding())
}

/// `clone_map_resize` to `object_count` entries, new ones in `default_state`. A write call.
pub fn clone_map_resize(object_count: u64, default_state: CloneMapState) -> Call {
    Call::new("clone_map_resize", CloneMapResizeOp { object_count, default_state }.get_encoding())
}

/// The map `clone_map_init(object_count, runs)` stores, computed in memory by the same
/// code; -EINVAL where the method would refuse the request.
pub fn clone_map_model_init(object_count: u64, runs: &[StateRun]) -> Result<Vec<CloneMapState>, Errno> {
    let op = CloneMapInitOp { object_count, runs: runs.to_vec(), force: false };
    op.validate().map_err(|_| Errno::EINVAL)?;
    Ok(unpack(&pack_runs(object_count, runs), 0, object_count))
}

/// Applies `clone_map_update` to an in-memory map, with the method's validation (-EINVAL)
/// and compare-and-set rule; returns how many entries changed.
pub fn clone_map_model_update(
    map: &mut [CloneMapState],
    start: u64,
    count: u64,
    new_state: CloneMapState,
    expected_state: Option<CloneMapState>,
) -> Result<u64, Errno> {
    let op = CloneMapUpdateOp { start, count, new_state, expected_state };
    op.validate().map_err(|_| Errno::EINVAL)?;
    op.check_range(map.len() as u64).map_err(|_| Errno::EINVAL)?;
    let mut changed = 0;
    for s in &mut map[start as usize..(start + count) as usize] {
        if op.applies_to(*s) {
            *s = new_state;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Applies `clone_map_update_many` to an in-memory map: -EINVAL (map unchanged) where the
/// method would refuse any update, else each in order; returns how many entries changed.
pub fn clone_map_model_update_many(map: &mut [CloneMapState], updates: &[CloneMapUpdateOp]) -> Result<u64, Errno> {
    let op = CloneMapUpdateManyOp { updates: updates.to_vec() };
    op.validate().map_err(|_| Errno::EINVAL)?;
    if updates.iter().any(|u| u.check_range(map.len() as u64).is_err()) {
        return Err(Errno::EINVAL);
    }
    let mut changed = 0;
    for u in updates {
        changed += clone_map_model_update(map, u.start, u.count, u.new_state, u.expected_state)?;
    }
    Ok(changed)
}

/// Applies `clone_map_resize` to an in-memory map (-EINVAL as the method).
pub fn clone_map_model_resize(map: &mut Vec<CloneMapState>, object_count: u64, default_state: CloneMapState) -> Result<(), Errno> {
    CloneMapResizeOp { object_count, default_state }.validate().map_err(|_| Errno::EINVAL)?;
    map.resize(object_count as usize, default_state);
    Ok(())
}

/// The shortest run list whose `clone_map_init` stores `states` (NONEXISTENT stretches are
/// left out, since init starts from them).
pub fn clone_map_runs(states: &[CloneMapState]) -> Vec<StateRun> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < states.len() {
        let s = states[i];
        let mut j = i + 1;
        while j < states.len() && states[j] == s {
            j += 1;
        }
        if s != CloneMapState::NonExistent {
            runs.push(StateRun { start: i as u64, len: (j - i) as u64, state: s });
        }
        i = j;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::CloneMapEntries;
    use crate::CLASS_NAME;
    use CloneMapState::*;

    #[test]
    fn calls_name_the_methods() {
        let c = clone_map_update(3, 1, Exists, Some(Pending));
        assert_eq!((c.class, c.method), (CLASS_NAME, "clone_map_update"));
        assert_eq!(CloneMapUpdateOp::read_bytes(&c.input).unwrap().expected_state, Some(Pending));
        assert_eq!(clone_map_init(1, vec![], true).method, "clone_map_init");
        assert_eq!(clone_map_get(0, 0).method, "clone_map_get");
        assert_eq!(clone_map_resize(9, ExistsParent).method, "clone_map_resize");
        let up = CloneMapUpdateOp { start: 1, count: 1, new_state: Pending, expected_state: None };
        let many = clone_map_update_many(vec![up, up]);
        assert_eq!(many.method, "clone_map_update_many");
        assert_eq!(CloneMapUpdateManyOp::read_bytes(&many.input).unwrap().updates, [up, up]);
    }

    #[test]
    fn bad_replies_are_ebadmsg() {
        assert_eq!(decode_clone_map_get(b""), Err(Errno::EBADMSG));
        let good = CloneMapGetReply { object_count: 4, start: 0, count: 2, entries: CloneMapEntries::Packed(vec![0x45]) };
        let mut b = good.get_encoding();
        assert_eq!(decode_clone_map_states(&b), Ok(vec![ExistsParent, CopiedUp]));
        b.push(0);
        assert_eq!(decode_clone_map_get(&b), Err(Errno::EBADMSG));
    }

    #[test]
    fn models() {
        let runs = [StateRun { start: 1, len: 3, state: ExistsParent }, StateRun { start: 2, len: 1, state: Exists }];
        let mut m = clone_map_model_init(5, &runs).unwrap();
        assert_eq!(m, [NonExistent, ExistsParent, Exists, ExistsParent, NonExistent]);
        assert_eq!(clone_map_model_init(5, &[StateRun { start: 4, len: 2, state: Exists }]), Err(Errno::EINVAL));
        assert_eq!(clone_map_model_update(&mut m, 0, 5, CopiedUp, Some(ExistsParent)), Ok(2));
        assert_eq!(m, [NonExistent, CopiedUp, Exists, CopiedUp, NonExistent]);
        assert_eq!(clone_map_model_update(&mut m, 4, 2, CopiedUp, None), Err(Errno::EINVAL));
        assert_eq!(clone_map_model_update(&mut m, 0, 0, CopiedUp, None), Err(Errno::EINVAL));
        let up = |start, new_state, expected_state| CloneMapUpdateOp { start, count: 1, new_state, expected_state };
        // In order: the second update sees the first's result; a refused one changes nothing.
        let before = m.clone();
        assert_eq!(clone_map_model_update_many(&mut m, &[up(0, Pending, None), up(5, Exists, None)]), Err(Errno::EINVAL));
        assert_eq!(m, before);
        let many = [up(0, Pending, None), up(0, CopiedUp, Some(Pending)), up(2, CopiedUp, Some(Pending))];
        assert_eq!(clone_map_model_update_many(&mut m, &many), Ok(2));
        assert_eq!(m, [CopiedUp, CopiedUp, Exists, CopiedUp, NonExistent]);
        assert_eq!(clone_map_model_update_many(&mut m, &[]), Err(Errno::EINVAL));
        clone_map_model_resize(&mut m, 7, Pending).unwrap();
        assert_eq!(&m[5..], [Pending, Pending]);
        assert_eq!(clone_map_runs(&m).len(), 4);
        assert_eq!(clone_map_model_init(7, &clone_map_runs(&m)).unwrap(), m);
        assert_eq!(clone_map_model_resize(&mut m, 1, Unknown(7)), Err(Errno::EINVAL));
    }
}

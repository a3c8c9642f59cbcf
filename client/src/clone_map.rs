//! The client side of the clone map (`rbd_clone_map.<child id>`): load, transitions, and
//! the check/rebuild that reconciles it with RADOS ground truth.
//!
//! The clone map is rbd-ext's annotation; the data objects are the truth. A transition is
//! sent before the data op it describes (PENDING) and after it (the final state), so a
//! crash leaves PENDING entries that `check` resolves by looking at the objects.

use rbd_ext_cls::stubs;
use rbd_ext_cls::types::{clone_map_object, CloneMapState, StateRun};

use crate::error::{Error, Result};
use crate::rados::IoCtx;

pub use rbd_ext_cls::types::CloneMapState as State;

/// Reads the whole map (paged); `Ok(None)` if the image has none.
pub fn load(md: &IoCtx, id: &str) -> Result<Option<Vec<CloneMapState>>> {
    let oid = clone_map_object(id);
    let mut states = Vec::new();
    let mut start = 0u64;
    loop {
        let out = match md.exec(&oid, &stubs::clone_map_get(start, 0)) {
            Ok(o) => o,
            Err(e) if e.is_not_found() && start == 0 => return Ok(None),
            Err(e) => return Err(e),
        };
        let reply = stubs::decode_clone_map_get(&out).map_err(|e| Error::new(e, format!("object {oid}: clone_map_get reply")))?;
        let got = reply.states();
        let n = got.len() as u64;
        states.extend(got);
        start += n;
        if n == 0 || start >= reply.object_count {
            return Ok(Some(states));
        }
    }
}

/// Creates (or with `force` replaces) the map with `runs` over `object_count` objects.
pub fn init(md: &IoCtx, id: &str, object_count: u64, runs: Vec<StateRun>, force: bool) -> Result<()> {
    md.exec_write(&clone_map_object(id), &stubs::clone_map_init(object_count, runs, force))
}

/// Removes the map (absent is fine).
pub fn remove(md: &IoCtx, id: &str) -> Result<()> {
    match md.remove(&clone_map_object(id)) {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    }
}

/// Counts per state, for `info`.
pub fn summary(states: &[CloneMapState]) -> Vec<(CloneMapState, u64)> {
    CloneMapState::ALL
        .iter()
        .map(|s| (*s, states.iter().filter(|x| *x == s).count() as u64))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// What the map should say for an object, from RADOS ground truth.
pub fn expected_state(child_exists: bool, current: CloneMapState, inherited: bool) -> CloneMapState {
    use CloneMapState::*;
    if child_exists {
        // A local object: keep the finer distinction the map had; one the map still called
        // inherited was copied up (by a stock client); else say EXISTS.
        match current {
            Exists | ExistsClean | CopiedUp => current,
            ExistsParent => CopiedUp,
            _ => Exists,
        }
    } else if inherited {
        ExistsParent
    } else {
        NonExistent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CloneMapState::*;

    #[test]
    fn expected_states() {
        assert_eq!(expected_state(true, Pending, true), Exists);
        assert_eq!(expected_state(true, CopiedUp, true), CopiedUp);
        assert_eq!(expected_state(true, ExistsParent, true), CopiedUp);
        assert_eq!(expected_state(true, NonExistent, false), Exists);
        assert_eq!(expected_state(false, Pending, true), ExistsParent);
        assert_eq!(expected_state(false, Exists, false), NonExistent);
        assert_eq!(summary(&[Exists, Exists, NonExistent]), [(NonExistent, 1), (Exists, 2)]);
    }
}

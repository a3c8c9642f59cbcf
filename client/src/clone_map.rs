//! The client side of the clone map (`rbd_clone_map.<child id>`): load, transitions, and
//! the check/rebuild that reconciles it with RADOS ground truth.
//!
//! The clone map is rbd-ext's annotation; the data objects are the truth. A transition is
//! sent before the data op it describes (PENDING) and after it (the final state), so a
//! crash leaves PENDING entries that `check` resolves by looking at the objects.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures::future::join_all;

use rbd_ext_cls::ops::{CloneMapUpdateOp, CLONE_MAP_MAX_UPDATES};
use rbd_ext_cls::stubs::{self, Call};
use rbd_ext_cls::types::{clone_map_object, CloneMapState, StateRun};
use rbd_ext_cls::Errno;
use tokio::sync::oneshot;

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
    CloneMapState::ALL.iter().map(|s| (*s, states.iter().filter(|x| *x == s).count() as u64)).filter(|(_, n)| *n > 0).collect()
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

/// Group commit of one image's clone-map updates. Every transition is a write of the one
/// map object, and the OSD applies writes to one object in order, each with its own commit:
/// under many concurrent copy-ups they queue there. Here, while one call is in flight, the
/// updates that arrive wait in a queue, and the next call carries all of them
/// (`clone_map_update_many`), so a burst of copy-ups costs a few map writes, not two each.
///
/// Each update stays its own compare-and-set, so batching changes no outcome; the caller
/// still holds its object's lock, so one object's transitions never share a batch.
#[derive(Default)]
pub(crate) struct UpdateQueue {
    state: Mutex<QueueState>,
    /// The OSD's plugin predates `clone_map_update_many` (-EOPNOTSUPP): one update per call.
    single_only: AtomicBool,
}

#[derive(Default)]
struct QueueState {
    /// A leader is sending (or being handed the next batch).
    busy: bool,
    waiting: VecDeque<(CloneMapUpdateOp, oneshot::Sender<Turn>)>,
}

/// What a waiting update hears.
enum Turn {
    /// Sent in someone's batch: the call's return code, or why it could not be sent (the
    /// errno and what failed).
    Done(std::result::Result<i32, (Errno, String)>),
    /// The previous leader is done: send this update and whatever has queued since.
    Lead,
}

impl UpdateQueue {
    /// Applies `update` through `send` (which writes one call to the map object and gives
    /// its return code), batched with the updates of other tasks. Returns the return code of
    /// the call that carried it.
    pub(crate) async fn submit<F, Fut>(&self, update: CloneMapUpdateOp, send: F) -> Result<i32>
    where
        F: Fn(Call) -> Fut,
        Fut: Future<Output = Result<i32>>,
    {
        if self.single_only.load(Ordering::Relaxed) {
            // As before batching: each update its own call, all in flight at once.
            return send(single(update)).await;
        }
        loop {
            let rx = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if s.busy {
                    let (tx, rx) = oneshot::channel();
                    s.waiting.push_back((update, tx));
                    Some(rx)
                } else {
                    s.busy = true;
                    None
                }
            };
            if let Some(rx) = rx {
                match rx.await {
                    Ok(Turn::Done(r)) => return r.map_err(|(errno, what)| Error::new(errno, what)),
                    Ok(Turn::Lead) => {}
                    // The leader was dropped (its caller cancelled) before sending us: again.
                    Err(_) => continue,
                }
            }
            return self.lead(update, &send).await;
        }
    }

    /// Sends `own` and the queued updates in one call, answers their waiters, and hands the
    /// lead to the next waiter (also when this future is dropped half-way).
    async fn lead<F, Fut>(&self, own: CloneMapUpdateOp, send: &F) -> Result<i32>
    where
        F: Fn(Call) -> Fut,
        Fut: Future<Output = Result<i32>>,
    {
        struct HandOff<'a>(&'a UpdateQueue);
        impl Drop for HandOff<'_> {
            fn drop(&mut self) {
                self.0.hand_off();
            }
        }
        let _hand_off = HandOff(self);
        let batch: Vec<_> = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let n = s.waiting.len().min(CLONE_MAP_MAX_UPDATES - 1);
            s.waiting.drain(..n).collect()
        };
        if batch.is_empty() {
            return send(single(own)).await;
        }
        let mut updates = Vec::with_capacity(batch.len() + 1);
        updates.push(own);
        updates.extend(batch.iter().map(|(u, _)| *u));
        let r = send(stubs::clone_map_update_many(updates)).await;
        if matches!(r, Ok(rc) if rc == -libc::EOPNOTSUPP) {
            self.single_only.store(true, Ordering::Relaxed);
            let (r, rs) = futures::join!(send(single(own)), join_all(batch.iter().map(|(u, _)| send(single(*u)))));
            for ((_, tx), rc) in batch.into_iter().zip(rs) {
                let _ = tx.send(Turn::Done(shared(&rc)));
            }
            return r;
        }
        for (_, tx) in batch {
            let _ = tx.send(Turn::Done(shared(&r)));
        }
        r
    }

    /// Passes the lead to the first waiter still waiting, or marks the queue idle.
    fn hand_off(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((_, tx)) = s.waiting.pop_front() {
            if tx.send(Turn::Lead).is_ok() {
                return;
            }
        }
        s.busy = false;
    }
}

/// A call's outcome as told to the other updates it carried.
fn shared(r: &Result<i32>) -> std::result::Result<i32, (Errno, String)> {
    r.as_ref().map(|rc| *rc).map_err(|e| (e.errno(), e.what().to_string()))
}

/// One update as `clone_map_update` (understood by every plugin version).
fn single(u: CloneMapUpdateOp) -> Call {
    stubs::clone_map_update(u.start, u.count, u.new_state, u.expected_state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbd_ext_cls::ops::CloneMapUpdateManyOp;
    use rbd_ext_cls::Codec;
    use CloneMapState::*;

    fn up(object_no: u64, new_state: CloneMapState, expected_state: Option<CloneMapState>) -> CloneMapUpdateOp {
        CloneMapUpdateOp { start: object_no, count: 1, new_state, expected_state }
    }

    /// A map object in memory: applies a call as the OSD's method would (the model), logs
    /// (method, updates carried), and refuses `clone_map_update_many` like an old plugin
    /// when `old_plugin`. The first call waits forever when `stall_first`.
    struct FakeMap {
        states: Mutex<Vec<CloneMapState>>,
        calls: Mutex<Vec<(&'static str, usize)>>,
        old_plugin: bool,
        stall_first: bool,
    }

    impl FakeMap {
        fn new(n: usize, old_plugin: bool, stall_first: bool) -> FakeMap {
            FakeMap { states: Mutex::new(vec![ExistsParent; n]), calls: Mutex::default(), old_plugin, stall_first }
        }

        async fn send(&self, call: Call) -> Result<i32> {
            let first = {
                let mut calls = self.calls.lock().unwrap();
                calls.push((call.method, 0));
                calls.len() == 1
            };
            if first && self.stall_first {
                std::future::pending::<()>().await;
            }
            // Let the other tasks queue behind this call, as a round trip would.
            tokio::task::yield_now().await;
            let mut states = self.states.lock().unwrap();
            let carried = match call.method {
                "clone_map_update" => {
                    let u = CloneMapUpdateOp::read_bytes(&call.input).unwrap();
                    stubs::clone_map_model_update(&mut states, u.start, u.count, u.new_state, u.expected_state).unwrap();
                    1
                }
                "clone_map_update_many" if self.old_plugin => return Ok(-libc::EOPNOTSUPP),
                "clone_map_update_many" => {
                    let op = CloneMapUpdateManyOp::read_bytes(&call.input).unwrap();
                    stubs::clone_map_model_update_many(&mut states, &op.updates).unwrap();
                    op.updates.len()
                }
                m => panic!("unexpected method {m}"),
            };
            let mut calls = self.calls.lock().unwrap();
            let i = calls.iter().rposition(|c| c.0 == call.method && c.1 == 0).unwrap();
            calls[i].1 = carried;
            Ok(0)
        }
    }

    /// A queue that lost its leader would hang: fail instead.
    async fn within_a_minute<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(60), f).await.expect("the queue stalled")
    }

    #[tokio::test]
    async fn concurrent_updates_share_one_call() {
        let (q, map) = (UpdateQueue::default(), FakeMap::new(64, false, false));
        let send = |c| map.send(c);
        let all = futures::future::join_all((0..64).map(|i| q.submit(up(i, Pending, Some(ExistsParent)), &send)));
        let rcs = within_a_minute(all).await;
        assert!(rcs.iter().all(|r| matches!(r, Ok(0))));
        assert_eq!(*map.states.lock().unwrap(), vec![Pending; 64]);
        // The first goes alone; the 63 that queued behind it go in one call.
        assert_eq!(*map.calls.lock().unwrap(), [("clone_map_update", 1), ("clone_map_update_many", 63)]);
        // Idle again: the next one leads at once.
        q.submit(up(3, CopiedUp, Some(Pending)), &send).await.unwrap();
        assert_eq!(map.states.lock().unwrap()[3], CopiedUp);
    }

    #[tokio::test]
    async fn an_old_plugin_gets_one_update_per_call() {
        let (q, map) = (UpdateQueue::default(), FakeMap::new(8, true, false));
        let send = |c| map.send(c);
        let rcs = futures::future::join_all((0..8).map(|i| q.submit(up(i, Exists, None), &send))).await;
        assert!(rcs.iter().all(|r| matches!(r, Ok(0))));
        assert_eq!(*map.states.lock().unwrap(), vec![Exists; 8]);
        let calls = map.calls.lock().unwrap().clone();
        assert_eq!(calls.iter().filter(|c| c.0 == "clone_map_update_many").count(), 1, "{calls:?}");
        assert_eq!(calls.iter().filter(|c| *c == &("clone_map_update", 1)).count(), 8, "{calls:?}");
        assert!(q.single_only.load(Ordering::Relaxed));
        // From then on every update goes alone, and none waits behind another.
        let rcs = within_a_minute(futures::future::join_all((0..8).map(|i| q.submit(up(i, CopiedUp, None), &send)))).await;
        assert!(rcs.iter().all(|r| matches!(r, Ok(0))));
        assert_eq!(map.calls.lock().unwrap()[calls.len()..], [("clone_map_update", 1); 8]);
        assert_eq!(*map.states.lock().unwrap(), vec![CopiedUp; 8]);
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_the_queue_on() {
        let (q, map) = (UpdateQueue::default(), FakeMap::new(4, false, true));
        let send = |c| map.send(c);
        let mut leader = Box::pin(q.submit(up(0, Exists, None), &send));
        assert!(futures::poll!(leader.as_mut()).is_pending());
        let mut waiters: Vec<_> = (1..4).map(|i| Box::pin(q.submit(up(i, Exists, None), &send))).collect();
        for w in &mut waiters {
            assert!(futures::poll!(w.as_mut()).is_pending());
        }
        drop(leader);
        for w in waiters {
            assert_eq!(within_a_minute(w).await.unwrap(), 0);
        }
        assert_eq!(*map.states.lock().unwrap(), [ExistsParent, Exists, Exists, Exists]);
    }

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

//! Request ordering inside one open image, as librbd's BlockGuard and its image-level
//! "block writes" gate: requests that change the same data object run one at a time (a
//! whole-object discard and a write can then not interleave their object-map updates and
//! data ops), requests on different objects run in parallel, and a resize waits until every
//! request in flight has finished (and holds new ones back until it is done).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, RwLock, RwLockReadGuard, RwLockWriteGuard, Semaphore};

/// Per-object locks, created on first use and dropped when nobody holds or waits for them.
#[derive(Default)]
pub(crate) struct ObjectGuard {
    locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

/// Exclusive use of one object; released on drop.
pub(crate) struct ObjectHeld<'a> {
    guard: &'a ObjectGuard,
    object_no: u64,
    held: Option<OwnedMutexGuard<()>>,
}

impl ObjectGuard {
    /// Waits until no other request changes `object_no`, then holds it.
    pub(crate) async fn lock(&self, object_no: u64) -> ObjectHeld<'_> {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(locks.entry(object_no).or_default())
        };
        // Outside tokio's cooperative budget: a free lock is taken on the first poll, so
        // requests queue for an object in the order they were issued.
        let held = tokio::task::unconstrained(m.lock_owned()).await;
        ObjectHeld { guard: self, object_no, held: Some(held) }
    }

    /// How many objects have a lock entry (held or waited for); for tests.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for ObjectHeld<'_> {
    fn drop(&mut self) {
        // Under the map's lock, so that no waiter can clone the entry between the count
        // check and the removal.
        let mut locks = self.guard.locks.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.held.take());
        if locks.get(&self.object_no).is_some_and(|m| Arc::strong_count(m) == 1) {
            locks.remove(&self.object_no);
        }
    }
}

/// The image-wide gate: every request holds it shared, a resize exclusively.
#[derive(Default)]
pub(crate) struct IoGate(RwLock<()>);

impl IoGate {
    /// Held by each read, write, discard and copy-up for its whole duration.
    pub(crate) async fn request(&self) -> RwLockReadGuard<'_, ()> {
        tokio::task::unconstrained(self.0.read()).await
    }

    /// Held by a resize: waits for the requests in flight, blocks new ones.
    pub(crate) async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.write().await
    }

    /// [`IoGate::exclusive`] for a thread outside the async runtime (a lock owner's request
    /// from a librbd client, carried out on a thread of its own).
    pub(crate) fn exclusive_blocking(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.blocking_write()
    }
}

/// The image's budget of RADOS ops in flight, shared by all its requests (a server with many
/// clients must not flood the OSDs with one image's ops).
pub(crate) struct OpBudget {
    permits: Arc<Semaphore>,
    /// Ops in flight now and the most so far, counted apart from the semaphore (what the
    /// budget test checks).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

/// One op's slot in the budget; freed on drop.
pub(crate) struct OpSlot {
    _permit: OwnedSemaphorePermit,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for OpSlot {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl OpBudget {
    pub(crate) fn new(limit: usize) -> OpBudget {
        let limit = limit.max(1);
        OpBudget { permits: Arc::new(Semaphore::new(limit)), in_flight: Default::default(), peak: Default::default() }
    }

    /// Waits for a free slot; the op is in flight while the slot lives.
    pub(crate) async fn acquire(&self) -> OpSlot {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = Arc::clone(&self.permits).acquire_owned().await.unwrap_or_else(|_| unreachable!("budget semaphore closed"));
        let now = self.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
        OpSlot { _permit: permit, in_flight: Arc::clone(&self.in_flight) }
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_object_serialised_other_objects_parallel() {
        let g = ObjectGuard::default();
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let work = |n: u64| {
            let (g, inside, most) = (&g, &inside, &most);
            async move {
                let _h = g.lock(n).await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }
        };
        futures::future::join_all((0..8).map(|_| work(7))).await;
        assert_eq!(most.load(Ordering::SeqCst), 1, "two requests on one object overlapped");
        most.store(0, Ordering::SeqCst);
        futures::future::join_all((0..8).map(work)).await;
        assert!(most.load(Ordering::SeqCst) > 1, "requests on different objects did not overlap");
        assert_eq!(g.entries(), 0, "unused object locks are dropped");
    }

    #[tokio::test]
    async fn budget_caps_ops_in_flight() {
        let b = OpBudget::new(3);
        let held: Vec<_> = futures::future::join_all((0..3).map(|_| b.acquire())).await;
        assert!(tokio::time::timeout(Duration::from_millis(50), b.acquire()).await.is_err(), "a fourth op got a slot");
        drop(held);
        assert_eq!(b.peak(), 3);
    }
}

//! The single-writer lock, taken exactly as librbd takes its exclusive lock: cls_lock
//! `rbd_lock` on the header, EXCLUSIVE, tag `internal`, cookie `auto <watch handle>`, with a
//! watch on the header so the holder is seen as alive; plus, for images with an object map,
//! the map object's own `rbd_lock` (cookie "", tag ""), as librbd's object-map lock.
//!
//! The header watch (`HeaderWatch`, every open image has one, as in librbd) keeps the
//! lock alive over time, as librbd's ImageWatcher does:
//! - a broken watch is re-established at once (on its own thread), and the lock's cookie
//!   moved to the new watch handle (`lock.set_cookie`), so lock owners stay recognisable;
//! - a librbd client asking the owner for a user snapshot (`rbd snap create`, python3-rbd,
//!   QEMU) gets it, made as rbd-ext makes snapshots (`snapshot.rs`), with librbd's owner
//!   protocol (acknowledged at once, `AsyncComplete` when done, retries de-duplicated);
//! - a librbd client asking the owner for the lock (RequestLock), or asking it to run
//!   another maintenance op (resize, flatten...), gets librbd's `ResponseMessage`
//!   with `-EROFS`: the refusal librbd's own owner gives when it will not hand the lock
//!   over (rbd-nbd `--exclusive`), so that client fails at once with EROFS instead of
//!   retrying forever;
//! - a header-update notification marks the header stale; the next request re-reads it
//!   (a resize by the writer is seen by every reader);
//! - being blocklisted (the watch or any op failing with `ESHUTDOWN`), or finding the lock
//!   broken after a re-watch, stops every later request with a clear error: another client
//!   may own the image by now.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rbd_ext_cls::stubs::stock::{self, lock_type, notify_op, AsyncRequestId, RBD_LOCK_NAME, RBD_LOCK_TAG};
use rbd_ext_cls::types::snap_namespace;

use crate::error::{Errno, Error, Result};
use crate::header::{header_oid, object_map_oid};
use crate::rados::{IoCtx, Watch};
use crate::spec::ImageSpec;

/// Requests librbd clients send the lock owner that an rbd-ext owner carries out.
pub(crate) trait OwnerRequests: Send + Sync {
    /// Creates user snapshot `name` (blocking: runs on a thread of its own).
    fn snap_create(&self, name: &str) -> Result<u64>;
}

/// Finished owner requests remembered for retries (librbd retries within
/// `rbd_request_timed_out_seconds`, 30 s by default).
const MAX_REMEMBERED_REQUESTS: usize = 256;

/// One holder of an image lock, as `rbd lock ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locker {
    /// Entity holding it (`client.4123`).
    pub client: String,
    /// Its cookie (`auto 94823...` for librbd and rbd-ext writers).
    pub cookie: String,
    /// Its address.
    pub address: String,
}

/// The holders of the image's header lock.
pub fn lockers(md: &IoCtx, id: &str) -> Result<Vec<Locker>> {
    let (_, _, l) = md.list_lockers(&header_oid(id), RBD_LOCK_NAME)?;
    Ok(l.into_iter().map(|(client, cookie, address)| Locker { client, cookie, address }).collect())
}

/// Breaks a (dead) holder's header lock, as `rbd lock rm`: first blocklists the holder's
/// address (as rbd does by default), so that a holder that is not really dead can write no
/// more and its watch on the header goes away, then removes the lock.
pub fn break_lock(md: &IoCtx, id: &str, client: &str, cookie: &str) -> Result<()> {
    let address = lockers(md, id)?.into_iter().find(|l| l.client == client && l.cookie == cookie).map(|l| l.address);
    if let Some(addr) = address.filter(|a| !a.is_empty()) {
        let cmd = format!(r#"{{"prefix": "osd blocklist", "blocklistop": "add", "addr": "{addr}"}}"#);
        md.cluster().mon_command(&cmd, b"").map_err(|e| e.context(format_args!("blocklist {client} at {addr}")))?;
    }
    md.break_lock(&header_oid(id), RBD_LOCK_NAME, client, cookie)
}

/// The watch every open image keeps on its header (see the module doc).
pub(crate) struct HeaderWatch {
    inner: Arc<WatchInner>,
}

struct WatchInner {
    md: IoCtx,
    oid: String,
    spec: ImageSpec,
    watch: Mutex<Option<Watch>>,
    /// The header lock's cookie while this handle owns the lock (it follows the watch handle).
    cookie: Mutex<Option<String>>,
    /// A header-update notification arrived since the header was last read.
    stale: StaleFlag,
    /// This client was blocklisted: nothing more may be written through this handle.
    blocklisted: AtomicBool,
    /// The lock was found broken (by another client) after a re-watch.
    lost: AtomicBool,
    /// A re-watch thread is running.
    rewatching: AtomicBool,
    /// Carries out what librbd clients ask the lock owner to do (snapshots), installed by an
    /// image open for writing.
    owner: Mutex<Option<Arc<dyn OwnerRequests>>>,
    /// Owner requests under way (`None`) or done (their result), by librbd's request id:
    /// librbd retries with the same id, and a request must run once.
    requests: Arc<Mutex<HashMap<AsyncRequestId, Option<i32>>>>,
}

/// How long a re-watch keeps trying while the OSDs are unreachable (librbd retries too).
const REWATCH_RETRY: Duration = Duration::from_secs(1);

impl HeaderWatch {
    /// Watches the image's header.
    pub(crate) fn start(md: &IoCtx, spec: &ImageSpec, id: &str) -> Result<HeaderWatch> {
        let inner = Arc::new(WatchInner {
            md: md.clone(),
            oid: header_oid(id),
            spec: spec.clone(),
            watch: Mutex::new(None),
            cookie: Mutex::new(None),
            stale: StaleFlag::default(),
            blocklisted: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            rewatching: AtomicBool::new(false),
            owner: Mutex::new(None),
            requests: Arc::default(),
        });
        let w = WatchInner::register(&inner).map_err(|e| e.context(format_args!("image {spec}")))?;
        *inner.watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
        Ok(HeaderWatch { inner })
    }

    /// The current watch handle (librbd's lock cookie is `auto <handle>`).
    fn handle(&self) -> u64 {
        self.inner.watch.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |w| w.handle())
    }

    /// The watch itself, to be ended (unwatched) elsewhere: closing does it on a blocking
    /// thread. Notifications are no longer answered afterwards.
    pub(crate) fn take_watch(&self) -> Option<Watch> {
        self.inner.watch.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// If a header update was announced since the last call: forgets it, and returns a mark
    /// that announces it again on drop unless [`StaleMark::done`] is called once the header
    /// was re-read (so a re-read that failed, or whose request was dropped, is retried).
    pub(crate) fn take_stale(&self) -> Option<StaleMark<'_>> {
        self.inner.stale.take()
    }

    /// Installs what carries out librbd clients' requests to this lock owner.
    pub(crate) fn set_owner(&self, owner: Arc<dyn OwnerRequests>) {
        *self.inner.owner.lock().unwrap_or_else(|e| e.into_inner()) = Some(owner);
    }

    /// Records an op that failed because this client is blocklisted.
    pub(crate) fn note_errno(&self, rc: i32) {
        if rc == -libc::ESHUTDOWN {
            self.inner.blocklisted.store(true, Ordering::Release);
        }
    }

    /// Fails once this client was blocklisted or lost its lock: another client may own the
    /// image by now, so nothing more is read or written through this handle.
    pub(crate) fn check(&self) -> Result<()> {
        let spec = &self.inner.spec;
        if self.inner.blocklisted.load(Ordering::Acquire) {
            return Err(Error::new(
                Errno::ESHUTDOWN,
                format!("image {spec}: this client was blocklisted (its lock was broken, e.g. by `rbd-ext lock rm`); nothing more goes through this handle: close it and open the image again"),
            ));
        }
        if self.inner.lost.load(Ordering::Acquire) {
            return Err(Error::new(
                Errno::ESHUTDOWN,
                format!("image {spec}: its writer lock was broken by another client while this one was disconnected; nothing more is written through this handle: close it and open the image again"),
            ));
        }
        Ok(())
    }
}

/// "The header changed since this handle last read it".
#[derive(Default)]
struct StaleFlag(AtomicBool);

impl StaleFlag {
    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn take(&self) -> Option<StaleMark<'_>> {
        // Lazily (`then`, not `then_some`): a mark built when nothing was announced would set
        // the flag again on drop, and every other request would re-read the header.
        self.0.swap(false, Ordering::AcqRel).then(|| StaleMark(Some(self)))
    }
}

/// A taken header-update announcement (see [`HeaderWatch::take_stale`]).
pub(crate) struct StaleMark<'a>(Option<&'a StaleFlag>);

impl StaleMark<'_> {
    /// The header was re-read.
    pub(crate) fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for StaleMark<'_> {
    fn drop(&mut self) {
        if let Some(flag) = self.0 {
            flag.set();
        }
    }
}

impl WatchInner {
    /// A new watch whose callbacks hold only a weak reference (the image may close first).
    fn register(this: &Arc<WatchInner>) -> Result<Watch> {
        let (on_notify, on_error) = (Arc::downgrade(this), Arc::downgrade(this));
        this.md.watch(
            &this.oid,
            Box::new(move |payload| on_notify.upgrade().map(|w| w.answer(payload)).unwrap_or_default()),
            Box::new(move |err| {
                if let Some(w) = on_error.upgrade() {
                    w.broken(err)
                }
            }),
        )
    }

    /// The acknowledgement payload for one notification.
    fn answer(&self, payload: &[u8]) -> Vec<u8> {
        let Some(op) = stock::notify_message_op(payload) else {
            return Vec::new();
        };
        if op == notify_op::HEADER_UPDATE {
            self.stale.set();
            return Vec::new();
        }
        if op == notify_op::SNAP_CREATE {
            if let Some(ack) = self.snap_create(payload) {
                return ack;
            }
        }
        let owner_request =
            op == notify_op::REQUEST_LOCK || (notify_op::FIRST_OWNER_REQUEST..=notify_op::LAST_OWNER_REQUEST).contains(&op) || op == notify_op::METADATA_UPDATE;
        // Only the lock owner answers requests (librbd counts a non-empty ack as the owner's).
        if owner_request && self.cookie.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return stock::response_message(-libc::EROFS);
        }
        Vec::new()
    }

    /// A librbd client's `SnapCreatePayload`, when this handle owns the lock and can carry
    /// it out (a user snapshot): librbd's owner protocol, `ResponseMessage(0)` at once, the
    /// work on a thread of its own, then an `AsyncComplete` notification with the result. A
    /// retry of a request under way is only acknowledged; one of a finished request gets
    /// its result again. `None`: not handled here (refused as other requests are).
    fn snap_create(&self, payload: &[u8]) -> Option<Vec<u8>> {
        self.cookie.lock().unwrap_or_else(|e| e.into_inner()).as_ref()?;
        let owner = self.owner.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let req = stock::decode_snap_create(payload)?;
        if req.namespace.kind != snap_namespace::USER {
            return None;
        }
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let known = requests.get(&req.id).copied();
        if known.is_none() {
            if requests.len() >= MAX_REMEMBERED_REQUESTS {
                requests.retain(|_, r| r.is_none());
            }
            requests.insert(req.id, None);
        }
        drop(requests);
        let (md, oid, done) = (self.md.clone(), self.oid.clone(), Arc::clone(&self.requests));
        let spawned = std::thread::Builder::new().name("rbd-ext-owner".into()).spawn(move || {
            let result = match known {
                Some(None) => return,
                Some(Some(r)) => r,
                None => {
                    let r = match owner.snap_create(&req.name) {
                        Ok(_) => 0,
                        Err(e) => {
                            eprintln!("rbd-ext: {e} (requested by client {} over the header watch)", req.id.gid);
                            -e.errno().0
                        }
                    };
                    done.lock().unwrap_or_else(|e| e.into_inner()).insert(req.id, Some(r));
                    r
                }
            };
            let _ = md.notify(&oid, &stock::async_complete_notification(&req.id, result), 5000);
        });
        Some(stock::response_message(if spawned.is_ok() { 0 } else { -libc::EAGAIN }))
    }

    /// The watch broke: blocklisted, or re-watch on a thread of its own (this runs on a
    /// librados callback thread, which must not wait for RADOS).
    fn broken(self: Arc<Self>, err: i32) {
        if err == -libc::ESHUTDOWN {
            self.blocklisted.store(true, Ordering::Release);
            return;
        }
        if self.rewatching.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self);
        drop(self);
        let _ = std::thread::Builder::new().name("rbd-ext-rewatch".into()).spawn(move || WatchInner::rewatch(&weak));
    }

    fn rewatch(weak: &Weak<WatchInner>) {
        loop {
            let Some(this) = weak.upgrade() else { return };
            if this.blocklisted.load(Ordering::Acquire) {
                break;
            }
            // Unwatch the broken one first (waits for its callbacks; we are not one).
            drop(this.watch.lock().unwrap_or_else(|e| e.into_inner()).take());
            match WatchInner::register(&this) {
                Ok(w) => {
                    let handle = w.handle();
                    *this.watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
                    this.rekey_lock(handle);
                    // Missed header updates: re-read the header on the next request.
                    this.stale.set();
                    break;
                }
                Err(e) if e.errno() == Errno::ESHUTDOWN => {
                    this.blocklisted.store(true, Ordering::Release);
                    break;
                }
                Err(_) => {
                    drop(this);
                    std::thread::sleep(REWATCH_RETRY);
                }
            }
        }
        if let Some(this) = weak.upgrade() {
            this.rewatching.store(false, Ordering::Release);
        }
    }

    /// Moves the owned lock to the new watch handle's cookie, as librbd's reacquire does;
    /// a lock that is gone (broken meanwhile) is lost for good.
    fn rekey_lock(&self, handle: u64) {
        let mut cookie = self.cookie.lock().unwrap_or_else(|e| e.into_inner());
        let Some(old) = cookie.clone() else { return };
        let new = stock::rbd_lock_cookie(handle);
        match self.md.exec_write(&self.oid, &stock::set_cookie(RBD_LOCK_NAME, lock_type::EXCLUSIVE, &old, RBD_LOCK_TAG, &new)) {
            Ok(()) => *cookie = Some(new),
            Err(e) if e.errno() == Errno::ESHUTDOWN => self.blocklisted.store(true, Ordering::Release),
            Err(_) => self.lost.store(true, Ordering::Release),
        }
    }
}

/// A held writer lock; released on [`WriterLock::release`] or drop.
pub struct WriterLock {
    md: IoCtx,
    id: String,
    watch: Arc<WatchInner>,
    object_map: bool,
    released: bool,
}

impl WriterLock {
    /// Takes the lock under the image's header watch; `EBUSY` naming the holder if another
    /// client has it.
    pub(crate) fn acquire(md: &IoCtx, spec: &ImageSpec, id: &str, object_map: bool, watch: &HeaderWatch) -> Result<WriterLock> {
        let oid = header_oid(id);
        let cookie = stock::rbd_lock_cookie(watch.handle());
        let call = stock::lock(RBD_LOCK_NAME, lock_type::EXCLUSIVE, &cookie, RBD_LOCK_TAG, "");
        if let Err(e) = md.exec_write(&oid, &call) {
            if e.errno() == Errno::EBUSY || e.errno() == Errno::EEXIST {
                let holders = lockers(md, id).unwrap_or_default();
                let who = holders.iter().map(|l| format!("{} (cookie '{}', address {})", l.client, l.cookie, l.address)).collect::<Vec<_>>().join(", ");
                let hint = holders
                    .first()
                    .map(|l| format!("; if that client is dead, break its lock with: rbd-ext lock rm {spec} {} '{}'", l.client, l.cookie))
                    .unwrap_or_default();
                return Err(Error::new(Errno::EBUSY, format!("image {spec} is open for writing by {who}: one writer at a time{hint}")));
            }
            return Err(e.context(format_args!("image {spec}: take the writer lock")));
        }
        *watch.inner.cookie.lock().unwrap_or_else(|e| e.into_inner()) = Some(cookie);
        let mut lock = WriterLock { md: md.clone(), id: id.to_string(), watch: Arc::clone(&watch.inner), object_map: false, released: false };
        if object_map {
            lock.lock_object_map(spec)?;
        }
        Ok(lock)
    }

    /// The object map's lock belongs to whoever holds the header lock: like librbd, break a
    /// stale holder (a crashed writer) before taking it.
    fn lock_object_map(&mut self, spec: &ImageSpec) -> Result<()> {
        let oid = object_map_oid(&self.id);
        let call = stock::lock(RBD_LOCK_NAME, lock_type::EXCLUSIVE, "", "", "");
        match self.md.exec_write(&oid, &call) {
            Ok(()) => {}
            Err(e) if e.errno() == Errno::EBUSY => {
                let (_, _, holders) = self.md.list_lockers(&oid, RBD_LOCK_NAME)?;
                for (client, cookie, _) in holders {
                    self.md.break_lock(&oid, RBD_LOCK_NAME, &client, &cookie)?;
                }
                self.md.exec_write(&oid, &call).map_err(|e| e.context(format_args!("image {spec}: object map lock")))?;
            }
            Err(e) if e.errno() == Errno::EEXIST => {}
            Err(e) => return Err(e.context(format_args!("image {spec}: object map lock"))),
        }
        self.object_map = true;
        Ok(())
    }

    /// The header lock's cookie (it changes when the watch is re-established).
    pub fn cookie(&self) -> String {
        self.watch.cookie.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
    }

    /// Releases both locks (the watch ends with the image).
    pub fn release(mut self) -> Result<()> {
        self.unlock()
    }

    fn unlock(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        // From now on lock requests are no longer refused: there is nothing to hand over.
        let Some(cookie) = self.watch.cookie.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        if self.object_map {
            let _ = self.md.exec_write(&object_map_oid(&self.id), &stock::unlock(RBD_LOCK_NAME, ""));
        }
        match self.md.exec_write(&header_oid(&self.id), &stock::unlock(RBD_LOCK_NAME, &cookie)) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()), // broken by someone else
            Err(e) => Err(e),
        }
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::StaleFlag;

    #[test]
    fn nothing_announced_stays_nothing() {
        let f = StaleFlag::default();
        assert!(f.take().is_none());
        assert!(f.take().is_none(), "an empty take must not announce an update");
    }

    #[test]
    fn an_announcement_is_taken_once_when_the_reread_is_done() {
        let f = StaleFlag::default();
        f.set();
        f.take().expect("announced").done();
        assert!(f.take().is_none());
    }

    #[test]
    fn a_reread_that_did_not_finish_is_announced_again() {
        let f = StaleFlag::default();
        f.set();
        drop(f.take().expect("announced"));
        assert!(f.take().is_some());
    }
}

//! The single-writer lock, taken exactly as librbd takes its exclusive lock: cls_lock
//! `rbd_lock` on the header, EXCLUSIVE, tag `internal`, cookie `auto <watch handle>`, with a
//! watch on the header so the holder is seen as alive; plus, for images with an object map,
//! the map object's own `rbd_lock` (cookie "", tag ""), as librbd's object-map lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rbd_ext_cls::stubs::stock::{self, lock_type, RBD_LOCK_NAME, RBD_LOCK_TAG};

use crate::error::{Errno, Error, Result};
use crate::header::{header_oid, object_map_oid};
use crate::rados::{IoCtx, Watch};
use crate::spec::ImageSpec;

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

/// A held writer lock; released on [`WriterLock::release`] or drop.
pub struct WriterLock {
    md: IoCtx,
    id: String,
    cookie: String,
    object_map: bool,
    released: bool,
    /// Set by every notification on the header (librbd announces snapshot creation and
    /// every other header change that way), so the writer re-reads the header.
    notified: Arc<AtomicBool>,
    _watch: Watch,
}

impl WriterLock {
    /// Watches the header and takes the lock; `EBUSY` naming the holder if another client has it.
    pub fn acquire(md: &IoCtx, spec: &ImageSpec, id: &str, object_map: bool) -> Result<WriterLock> {
        let oid = header_oid(id);
        // Acknowledge every notification (header updates, lock requests) at once, so that
        // notifiers never wait for a timeout on us; remember that one came.
        let notified = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&notified);
        let handler = Box::new(move |_: &[u8]| {
            flag.store(true, Ordering::Release);
            Vec::new()
        });
        let watch = md.watch(&oid, handler).map_err(|e| e.context(format_args!("image {spec}")))?;
        let cookie = stock::rbd_lock_cookie(watch.handle());
        let call = stock::lock(RBD_LOCK_NAME, lock_type::EXCLUSIVE, &cookie, RBD_LOCK_TAG, "");
        if let Err(e) = md.exec_write(&oid, &call) {
            if e.errno() == Errno::EBUSY || e.errno() == Errno::EEXIST {
                let holders = lockers(md, id).unwrap_or_default();
                let who = holders
                    .iter()
                    .map(|l| format!("{} (cookie '{}', address {})", l.client, l.cookie, l.address))
                    .collect::<Vec<_>>()
                    .join(", ");
                let hint = holders
                    .first()
                    .map(|l| format!("; if that client is dead, break its lock with: rbd-ext lock rm {spec} {} '{}'", l.client, l.cookie))
                    .unwrap_or_default();
                return Err(Error::new(
                    Errno::EBUSY,
                    format!("image {spec} is open for writing by {who}: one writer at a time{hint}"),
                ));
            }
            return Err(e.context(format_args!("image {spec}: take the writer lock")));
        }
        let mut lock = WriterLock { md: md.clone(), id: id.to_string(), cookie, object_map: false, released: false, notified, _watch: watch };
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

    /// Whether a notification arrived on the header since the last call (and forgets it).
    /// The flag is set before the notifier gets our ack, so a header change another client
    /// finished (`rbd snap create` returns after the acks) is seen by the next request.
    pub(crate) fn take_notified(&self) -> bool {
        self.notified.swap(false, Ordering::AcqRel)
    }

    /// The header lock's cookie.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Releases both locks (the watch ends on drop).
    pub fn release(mut self) -> Result<()> {
        self.unlock()
    }

    fn unlock(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        if self.object_map {
            let _ = self.md.exec_write(&object_map_oid(&self.id), &stock::unlock(RBD_LOCK_NAME, ""));
        }
        match self.md.exec_write(&header_oid(&self.id), &stock::unlock(RBD_LOCK_NAME, &self.cookie)) {
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

//! What a method may do to the object it runs on: the objclass API as a trait.
//!
//! The OSD implementation (in the plugin cdylib) forwards each call to the C++ shim; the
//! in-memory [`MemContext`] drives unit tests and fuzzing. Methods see only this trait, so the
//! same logic runs in both.

use std::collections::BTreeMap;

use crate::Errno;

/// A page of omap entries (key, value) in key order, and whether more follow.
pub type OmapPage = (Vec<(String, Vec<u8>)>, bool);

/// Largest number of omap entries fetched per `omap_get_vals` page by the helpers here.
pub const OMAP_PAGE: u64 = 512;

/// The object a method is running on, and the OSD services it may use.
///
/// Every call returns a positive [`Errno`] on failure, as the objclass calls return
/// `-errno`. Writes are buffered in the OSD's transaction: they become visible atomically
/// when the method returns 0 and are discarded when it fails.
pub trait ClsContext {
    /// Size and mtime (seconds) of the object; `ENOENT` if it does not exist.
    fn stat(&mut self) -> Result<(u64, i64), Errno>;
    /// Creates the object; `EEXIST` if `exclusive` and it exists.
    fn create(&mut self, exclusive: bool) -> Result<(), Errno>;
    /// Removes the object.
    fn remove(&mut self) -> Result<(), Errno>;
    /// Reads up to `len` bytes at `off` (short at the end of the object; `len` 0 reads
    /// nothing, unlike the raw OSD call, which reads to the end).
    fn read(&mut self, off: u64, len: u64) -> Result<Vec<u8>, Errno>;
    /// Writes `data` at `off`, creating the object if needed.
    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), Errno>;
    /// Replaces the whole object's data.
    fn write_full(&mut self, data: &[u8]) -> Result<(), Errno>;
    /// Reads an xattr; `ENODATA` if absent.
    fn getxattr(&mut self, name: &str) -> Result<Vec<u8>, Errno>;
    /// Sets an xattr.
    fn setxattr(&mut self, name: &str, value: &[u8]) -> Result<(), Errno>;
    /// Reads one omap value; `ENOENT` if the key is absent.
    fn omap_get(&mut self, key: &str) -> Result<Vec<u8>, Errno>;
    /// Up to `max` omap entries with keys strictly after `start_after` that begin with
    /// `prefix`, in key order, and whether more follow.
    fn omap_get_vals(&mut self, start_after: &str, prefix: &str, max: u64) -> Result<OmapPage, Errno>;
    /// Sets omap entries (one transaction step).
    fn omap_set(&mut self, entries: &[(&str, &[u8])]) -> Result<(), Errno>;
    /// Removes an omap key (absent keys are not an error).
    fn omap_remove(&mut self, key: &str) -> Result<(), Errno>;
    /// Logs a line through `cls_log` at `level` (0 = error, 20 = debug).
    fn log(&mut self, level: i32, msg: &str);
    /// Wall-clock time on the OSD, in seconds and nanoseconds since the epoch.
    fn now(&mut self) -> (u64, u32);

    /// Reads an omap value, treating an absent key as `None`.
    fn omap_get_opt(&mut self, key: &str) -> Result<Option<Vec<u8>>, Errno> {
        match self.omap_get(key) {
            Ok(v) => Ok(Some(v)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets one omap key.
    fn omap_set_one(&mut self, key: &str, value: &[u8]) -> Result<(), Errno> {
        self.omap_set(&[(key, value)])
    }

    /// `ENOENT` unless the object exists (upstream `check_exists`).
    fn check_exists(&mut self) -> Result<(), Errno> {
        self.stat().map(|_| ())
    }
}

/// An object held in memory: data, xattrs and omap. For unit tests and fuzzing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemObject {
    /// Object data.
    pub data: Vec<u8>,
    /// Extended attributes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Omap entries.
    pub omap: BTreeMap<String, Vec<u8>>,
}

/// An in-memory [`ClsContext`] over one optional object, with the OSD's all-or-nothing
/// semantics: [`MemContext::call`] applies a method's changes only when it succeeds.
#[derive(Debug, Default, Clone)]
pub struct MemContext {
    /// The object, `None` when it does not exist.
    pub object: Option<MemObject>,
    /// Lines logged, with their level.
    pub logs: Vec<(i32, String)>,
    /// The clock `now` returns.
    pub clock: (u64, u32),
}

impl MemContext {
    /// A context whose object does not exist.
    pub fn missing() -> Self {
        MemContext::default()
    }

    /// A context over an existing, empty object.
    pub fn existing() -> Self {
        MemContext { object: Some(MemObject::default()), ..Default::default() }
    }

    /// Runs `method` like the OSD would: on failure the object is left as it was.
    pub fn call(&mut self, method: impl FnOnce(&mut dyn ClsContext, &[u8], &mut Vec<u8>) -> Result<(), Errno>, input: &[u8]) -> Result<Vec<u8>, Errno> {
        let before = self.object.clone();
        let mut out = Vec::new();
        let r = method(self, input, &mut out);
        if r.is_err() {
            self.object = before;
        }
        r.map(|()| out)
    }

    /// The omap of the object (empty if it does not exist).
    pub fn omap(&self) -> BTreeMap<String, Vec<u8>> {
        self.object.as_ref().map(|o| o.omap.clone()).unwrap_or_default()
    }

    fn obj(&mut self) -> Result<&mut MemObject, Errno> {
        self.object.as_mut().ok_or(Errno::ENOENT)
    }

    fn obj_or_create(&mut self) -> &mut MemObject {
        self.object.get_or_insert_with(MemObject::default)
    }
}

impl ClsContext for MemContext {
    fn stat(&mut self) -> Result<(u64, i64), Errno> {
        Ok((self.obj()?.data.len() as u64, 0))
    }

    fn create(&mut self, exclusive: bool) -> Result<(), Errno> {
        if self.object.is_some() && exclusive {
            return Err(Errno::EEXIST);
        }
        self.obj_or_create();
        Ok(())
    }

    fn remove(&mut self) -> Result<(), Errno> {
        self.obj()?;
        self.object = None;
        Ok(())
    }

    fn read(&mut self, off: u64, len: u64) -> Result<Vec<u8>, Errno> {
        let d = &self.obj()?.data;
        let start = (off.min(d.len() as u64)) as usize;
        let end = (off.saturating_add(len).min(d.len() as u64)) as usize;
        Ok(d[start..end].to_vec())
    }

    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), Errno> {
        let off = usize::try_from(off).map_err(|_| Errno::EFBIG)?;
        let end = off.checked_add(data.len()).ok_or(Errno::EFBIG)?;
        let d = &mut self.obj_or_create().data;
        if d.len() < end {
            d.resize(end, 0);
        }
        d[off..end].copy_from_slice(data);
        Ok(())
    }

    fn write_full(&mut self, data: &[u8]) -> Result<(), Errno> {
        self.obj_or_create().data = data.to_vec();
        Ok(())
    }

    fn getxattr(&mut self, name: &str) -> Result<Vec<u8>, Errno> {
        self.obj()?.xattrs.get(name).cloned().ok_or(Errno::ENODATA)
    }

    fn setxattr(&mut self, name: &str, value: &[u8]) -> Result<(), Errno> {
        self.obj_or_create().xattrs.insert(name.to_string(), value.to_vec());
        Ok(())
    }

    fn omap_get(&mut self, key: &str) -> Result<Vec<u8>, Errno> {
        self.obj()?.omap.get(key).cloned().ok_or(Errno::ENOENT)
    }

    fn omap_get_vals(&mut self, start_after: &str, prefix: &str, max: u64) -> Result<OmapPage, Errno> {
        use std::ops::Bound::{Excluded, Unbounded};
        let omap = &self.obj()?.omap;
        let mut it =
            omap.range::<str, _>((Excluded(start_after), Unbounded)).skip_while(|(k, _)| k.as_str() < prefix).take_while(|(k, _)| k.starts_with(prefix));
        let mut out = Vec::new();
        for (k, v) in it.by_ref() {
            if out.len() as u64 == max {
                return Ok((out, true));
            }
            out.push((k.clone(), v.clone()));
        }
        Ok((out, false))
    }

    fn omap_set(&mut self, entries: &[(&str, &[u8])]) -> Result<(), Errno> {
        let o = self.obj_or_create();
        for (k, v) in entries {
            o.omap.insert((*k).to_string(), v.to_vec());
        }
        Ok(())
    }

    fn omap_remove(&mut self, key: &str) -> Result<(), Errno> {
        self.obj()?.omap.remove(key);
        Ok(())
    }

    fn log(&mut self, level: i32, msg: &str) {
        self.logs.push((level, msg.to_string()));
    }

    fn now(&mut self) -> (u64, u32) {
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_call_rolls_back() {
        let mut c = MemContext::existing();
        let r = c.call(
            |ctx, _, _| {
                ctx.omap_set_one("k", b"v")?;
                Err(Errno::EINVAL)
            },
            b"",
        );
        assert_eq!(r, Err(Errno::EINVAL));
        assert!(c.omap().is_empty());
        c.call(|ctx, _, _| ctx.omap_set_one("k", b"v"), b"").unwrap();
        assert_eq!(c.omap()["k"], b"v");
    }

    #[test]
    fn omap_paging_with_prefix() {
        let mut c = MemContext::existing();
        for k in ["a1", "b1", "b2", "b3", "c1"] {
            c.omap_set_one(k, k.as_bytes()).unwrap();
        }
        let (v, more) = c.omap_get_vals("", "b", 2).unwrap();
        assert_eq!(v.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["b1", "b2"]);
        assert!(more);
        let (v, more) = c.omap_get_vals("b2", "b", 2).unwrap();
        assert_eq!(v.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["b3"]);
        assert!(!more);
    }

    #[test]
    fn missing_object() {
        let mut c = MemContext::missing();
        assert_eq!(c.stat(), Err(Errno::ENOENT));
        assert_eq!(c.omap_get("x"), Err(Errno::ENOENT));
        // As on the OSD, a missing object reads as a missing key: methods check_exists first.
        assert_eq!(c.omap_get_opt("x"), Ok(None));
        c.write(4, b"ab").unwrap();
        assert_eq!(c.read(0, 100).unwrap(), b"\0\0\0\0ab");
    }
}

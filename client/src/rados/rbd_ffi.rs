//! The few librbd calls rbd-ext delegates to stock code: creating and removing plain images,
//! so that the directory, id object and header are exactly what `rbd create` / `rbd rm`
//! make. All of this file's `unsafe` is the FFI itself.

use std::ffi::{c_int, CString};

use rados_sys as sys;

use super::IoCtx;
use crate::error::{Errno, Error, Result};

/// Layout of a new image; `None` takes librbd's defaults (from the cluster config).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CreateOptions {
    /// Object size exponent (22 = 4 MiB).
    pub order: Option<u8>,
    /// Feature bits (`RBD_FEATURE_*`).
    pub features: Option<u64>,
    /// Stripe unit in bytes (with `stripe_count`).
    pub stripe_unit: Option<u64>,
    /// Stripe count.
    pub stripe_count: Option<u64>,
    /// Pool for data objects.
    pub data_pool: Option<String>,
}

impl CreateOptions {
    /// Sets `order`: Object size exponent (22 = 4 MiB).
    pub fn with_order(mut self, order: u8) -> Self {
        self.order = Some(order);
        self
    }

    /// Sets `features`: Feature bits (`RBD_FEATURE_*`).
    pub fn with_features(mut self, features: u64) -> Self {
        self.features = Some(features);
        self
    }

    /// Sets `stripe_unit`: Stripe unit in bytes (with `stripe_count`).
    pub fn with_stripe_unit(mut self, stripe_unit: u64) -> Self {
        self.stripe_unit = Some(stripe_unit);
        self
    }

    /// Sets `stripe_count`: Stripe count.
    pub fn with_stripe_count(mut self, stripe_count: u64) -> Self {
        self.stripe_count = Some(stripe_count);
        self
    }

    /// Sets `data_pool`: Pool for data objects.
    pub fn with_data_pool(mut self, data_pool: impl Into<String>) -> Self {
        self.data_pool = Some(data_pool.into());
        self
    }
}

struct Opts(sys::rbd_image_options_t);

impl Drop for Opts {
    fn drop(&mut self) {
        // SAFETY: created by rbd_image_options_create, destroyed once.
        unsafe { sys::rbd_image_options_destroy(self.0) }
    }
}

fn cstr(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(Errno::EINVAL, format!("{what} contains a NUL byte")))
}

/// Creates a format-2 image `name` of `size` bytes through librbd.
pub fn create_image(io: &IoCtx, name: &str, size: u64, o: &CreateOptions) -> Result<()> {
    let n = cstr(name, "image name")?;
    let mut raw: sys::rbd_image_options_t = std::ptr::null_mut();
    // SAFETY: valid out-pointer; the options are destroyed by `Opts`' Drop.
    unsafe { sys::rbd_image_options_create(&mut raw) };
    let opts = Opts(raw);
    let set = |key: u32, v: u64| -> Result<()> {
        // SAFETY: live options handle.
        let r = unsafe { sys::rbd_image_options_set_uint64(opts.0, key as c_int, v) };
        if r < 0 {
            return Err(Error::new(Errno(-r), format!("image option {key}")));
        }
        Ok(())
    };
    set(sys::RBD_IMAGE_OPTION_FORMAT, 2)?;
    if let Some(v) = o.order {
        set(sys::RBD_IMAGE_OPTION_ORDER, u64::from(v))?;
    }
    if let Some(v) = o.features {
        set(sys::RBD_IMAGE_OPTION_FEATURES, v)?;
    }
    if let Some(v) = o.stripe_unit {
        set(sys::RBD_IMAGE_OPTION_STRIPE_UNIT, v)?;
    }
    if let Some(v) = o.stripe_count {
        set(sys::RBD_IMAGE_OPTION_STRIPE_COUNT, v)?;
    }
    if let Some(p) = &o.data_pool {
        let c = cstr(p, "data pool")?;
        // SAFETY: live options handle and C string (copied by librbd).
        let r = unsafe { sys::rbd_image_options_set_string(opts.0, sys::RBD_IMAGE_OPTION_DATA_POOL as c_int, c.as_ptr()) };
        if r < 0 {
            return Err(Error::new(Errno(-r), "image option data_pool"));
        }
    }
    // SAFETY: valid ioctx, name and options.
    let r = unsafe { sys::rbd_create4(io.raw(), n.as_ptr(), size, opts.0) };
    if r < 0 {
        return Err(Error::new(Errno(-r), format!("create image {}/{name}", io.pool())));
    }
    Ok(())
}

/// Removes image `name` through librbd (data objects, header, id and directory entries).
pub fn remove_image(io: &IoCtx, name: &str) -> Result<()> {
    let n = cstr(name, "image name")?;
    // SAFETY: valid ioctx and name.
    let r = unsafe { sys::rbd_remove(io.raw(), n.as_ptr()) };
    if r < 0 {
        return Err(Error::new(Errno(-r), format!("remove image {}/{name}", io.pool())));
    }
    Ok(())
}

/// Creates snapshot `snap` of image `name` through librbd (`rbd snap create`): librbd takes
/// the exclusive lock or sends the request to the client that owns it.
pub fn snap_create(io: &IoCtx, name: &str, snap: &str) -> Result<()> {
    let n = cstr(name, "image name")?;
    let s = cstr(snap, "snapshot name")?;
    let mut image: sys::rbd_image_t = std::ptr::null_mut();
    // SAFETY: valid ioctx, names and out-pointer; no snapshot is opened (NULL).
    let r = unsafe { sys::rbd_open(io.raw(), n.as_ptr(), &mut image, std::ptr::null()) };
    if r < 0 {
        return Err(Error::new(Errno(-r), format!("open image {}/{name}", io.pool())));
    }
    // SAFETY: `image` was opened above and is closed once, below.
    let r = unsafe { sys::rbd_snap_create(image, s.as_ptr()) };
    // SAFETY: as above.
    unsafe { sys::rbd_close(image) };
    if r < 0 {
        return Err(Error::new(Errno(-r), format!("image {}/{name}: create snapshot {snap}", io.pool())));
    }
    Ok(())
}

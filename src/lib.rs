//! `libcls_rbd_ext.so`: the `rbd_ext` object class as ceph-osd loads it.
//!
//! This crate is only the doorway: the exported `__cls_init`, the registration of every
//! method in [`rbd_ext_cls::methods::METHODS`], and a [`rbd_ext_cls::ClsContext`] over the
//! objclass shim (`ffi/objclass/shim.cc`). The method logic lives in `cls-rbd-ext/`.
//!
//! Deployment: put the file in `osd_class_dir` and add `rbd_ext` to `osd_class_load_list`
//! and `osd_class_default_list` (or set both to `*`).
//!
//! Cargo features:
//! - `test-methods`: also registers `test_panic` (see `rbd_ext_cls`).

#![deny(missing_docs)]

mod dispatch;
mod ffi;

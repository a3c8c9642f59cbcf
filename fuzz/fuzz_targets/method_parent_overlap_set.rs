//! `rbd_ext.parent_overlap_set` on every fixture of `common`.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run_method("parent_overlap_set", data));

//! `rbd_ext.clone_map_update_many` on every fixture of `common`.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run_method("clone_map_update_many", data));

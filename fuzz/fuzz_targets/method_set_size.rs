//! `rbd_ext.set_size` on every fixture of `common`.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run_method("set_size", data));

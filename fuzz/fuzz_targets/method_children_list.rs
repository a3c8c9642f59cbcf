//! `rbd_ext.children_list` on every fixture of `common`.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run_method("children_list", data));

//! `rbd_ext.backfill_claim` on every fixture of `common`.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run_method("backfill_claim", data));

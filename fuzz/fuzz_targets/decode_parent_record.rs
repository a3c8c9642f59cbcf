//! Decoding (and re-encoding) the stored `parent` record.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::round_trip::<rbd_ext_cls::types::ParentRecord>(data));

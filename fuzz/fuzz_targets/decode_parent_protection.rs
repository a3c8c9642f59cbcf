//! Decoding (and re-encoding) the `rbd_ext_protect` record.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::round_trip::<rbd_ext_cls::types::ParentProtection>(data));

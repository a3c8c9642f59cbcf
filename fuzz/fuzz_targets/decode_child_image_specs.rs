//! Decoding (and re-encoding) a children set (`snap_children_*`).
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::round_trip::<rbd_ext_cls::types::ChildImageSpecs>(data));

//! Decoding (and re-encoding) a `clone_map_get` reply.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::round_trip::<rbd_ext_cls::ops::CloneMapGetReply>(data));

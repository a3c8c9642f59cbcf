//! Decoding (and re-encoding) a stored back-fill claim.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::round_trip::<rbd_ext_cls::types::backfill::BackfillClaim>(data));

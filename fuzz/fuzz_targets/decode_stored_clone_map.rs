//! Parsing a stored clone map object: never panics; when it parses and has the geometry we
//! write, the data re-encodes to the same object.
#![no_main]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((layout, packed)) = rbd_ext_cls::types::decode_stored_map(data) {
        if layout == rbd_ext_cls::types::CloneMapLayout::new(layout.object_count()) {
            let again = rbd_ext_cls::types::encode_stored_map(layout.object_count(), packed);
            assert_eq!(again, data);
        }
    }
});

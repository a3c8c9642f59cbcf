//! The checked-in C header is what cbindgen makes of the sources now: a change to an
//! exported function or struct without regenerating `include/rbd_ext.h` fails here.
//! `RBD_EXT_BLESS_HEADER=1 cargo test -p rbd-ext-capi --test header` rewrites it.

use std::path::Path;

#[test]
fn checked_in_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new().with_crate(dir).with_config(config).generate().expect("cbindgen over ffi/capi").write(&mut generated);
    let path = dir.join("include/rbd_ext.h");
    if std::env::var_os("RBD_EXT_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/rbd_ext.h");
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: regenerate it with RBD_EXT_BLESS_HEADER=1 cargo test -p rbd-ext-capi --test header\n--- generated:\n{}",
        path.display(),
        String::from_utf8_lossy(&generated)
    );
}

//! Generates raw bindings for librados and librbd from the system headers and links them.
//!
//! Overrides (each re-read when it changes): `LIBRADOS_LIB_DIR` (where librados.so and
//! librbd.so live, added to the default search path) and
//! `LIBRADOS_INCLUDE_DIR` (where `rados/` and `rbd/` headers live).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-env-changed=LIBRADOS_LIB_DIR");
    println!("cargo:rerun-if-env-changed=LIBRADOS_INCLUDE_DIR");

    let mut clang_args = Vec::new();
    if let Ok(dir) = env::var("LIBRADOS_INCLUDE_DIR") {
        clang_args.push(format!("-I{dir}"));
    }
    if let Ok(dir) = env::var("LIBRADOS_LIB_DIR") {
        println!("cargo:rustc-link-search=native={dir}");
    }
    // Debian's librados-dev / librbd-dev ship no pkg-config files: link by name.
    println!("cargo:rustc-link-lib=dylib=rados");
    println!("cargo:rustc-link-lib=dylib=rbd");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&clang_args)
        .allowlist_function("rados_.*")
        .allowlist_function("rbd_.*")
        .allowlist_type("rados_.*")
        .allowlist_type("rbd_.*")
        .allowlist_var("LIBRADOS_.*")
        .allowlist_var("RBD_.*")
        .size_t_is_usize(true)
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .expect("bindgen over rados/librados.h and rbd/librbd.h failed: install librados-dev, librbd-dev and libclang-dev");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    bindings.write_to_file(out.join("bindings.rs")).expect("write bindings.rs");
}

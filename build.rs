//! Compiles the objclass shim (C++, against Debian's `rados/objclass.h`) into the plugin.
//!
//! The shim's undefined `cls_*` symbols are left for ceph-osd to provide when it dlopens
//! `libcls_rbd_ext.so`, exactly as for the stock classes. `RADOS_OBJCLASS_INCLUDE_DIR`
//! overrides where `rados/objclass.h` is looked for.

fn main() {
    println!("cargo:rerun-if-changed=ffi/objclass/shim.cc");
    println!("cargo:rerun-if-changed=ffi/objclass/shim.h");
    println!("cargo:rerun-if-env-changed=RADOS_OBJCLASS_INCLUDE_DIR");
    let mut b = cc::Build::new();
    b.cpp(true)
        .file("ffi/objclass/shim.cc")
        .flag_if_supported("-std=c++17")
        .flag("-fPIC")
        // Ceph's headers are not warning-clean under -Wall; ours is.
        .warnings(false);
    if let Ok(dir) = std::env::var("RADOS_OBJCLASS_INCLUDE_DIR") {
        b.include(dir);
    }
    b.compile("rbdext_objclass_shim");
}

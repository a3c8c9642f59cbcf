//! Gives the shared library its SONAME, so programs linked against `librbd_ext.so` (the
//! dev symlink) record `librbd_ext.so.1` and keep working across compatible updates.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,librbd_ext.so.{}", SONAME_MAJOR);
}

/// Bumped on every incompatible change of include/rbd_ext.h (signatures, struct layouts).
const SONAME_MAJOR: u32 = 1;

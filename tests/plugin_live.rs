//! The plugin through a real OSD: loads, answers, rejects bad input, survives panics.
//!
//! Needs a running cluster with the freshly built plugin:
//! `eval "$(qa/cluster up)" && cargo test --features live,test-methods --test plugin_live`.

mod common;

use rbd_ext::rados::{WriteOp, WriteStep};
use rbd_ext::Errno;
use rbd_ext_cls::stubs::{self, Call};
use rbd_ext_cls::{Codec, CLASS_NAME, VERSION};

fn new_object(io: &rbd_ext::rados::IoCtx) -> String {
    let oid = common::unique("plugin-live");
    io.write_full(&oid, b"").unwrap();
    oid
}

#[test]
fn get_version_returns_the_plugin_version() {
    let io = common::rbd_pool();
    let oid = new_object(&io);
    let out = io.exec(&oid, &stubs::get_version()).unwrap();
    assert_eq!(stubs::decode_reply::<String>(&out).unwrap(), VERSION);
    io.remove(&oid).unwrap();
}

#[test]
fn ping_sets_an_omap_key_and_rejects_malformed_input() {
    let io = common::rbd_pool();
    let oid = common::unique("plugin-ping");
    // A write method creates its object.
    io.exec_write(&oid, &stubs::ping("hello")).unwrap();
    assert_eq!(io.omap_get(&oid, "rbd_ext_ping").unwrap().as_deref(), Some(&b"hello"[..]));

    for bad in [&b""[..], b"\x01", b"\x01\x01\xff\xff\xff\xff", b"\x01\x09\x04\x00\x00\x00\x00\x00\x00\x00"] {
        let call = Call { class: CLASS_NAME, method: "ping", input: bad.to_vec() };
        let e = io.exec_write(&oid, &call).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL, "input {bad:?}: {e}");
    }
    // Failed calls changed nothing.
    assert_eq!(io.omap_get(&oid, "rbd_ext_ping").unwrap().as_deref(), Some(&b"hello"[..]));
    io.remove(&oid).unwrap();
}

#[test]
fn ping_in_a_compound_op_is_atomic_with_its_neighbours() {
    // A failing class call aborts the whole compound op: the write before it is not applied.
    let io = common::rbd_pool();
    let oid = common::unique("plugin-atomic");
    let bad = Call { class: CLASS_NAME, method: "ping", input: vec![0xff] };
    let op = WriteOp::default().step(WriteStep::WriteFull(b"data".to_vec())).exec(&bad);
    assert_eq!(io.write(&oid, &op).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(io.stat(&oid).unwrap_err().errno(), Errno::ENOENT);
}

#[test]
fn unknown_method_is_eopnotsupp() {
    let io = common::rbd_pool();
    let oid = new_object(&io);
    let call = Call { class: CLASS_NAME, method: "no_such_method", input: Vec::new() };
    assert_eq!(io.exec(&oid, &call).unwrap_err().errno(), Errno::EOPNOTSUPP);
    io.remove(&oid).unwrap();
}

/// Not behind `cfg(feature = "test-methods")`: a live suite run against a plugin built
/// without `test_panic` must fail here (EOPNOTSUPP), not skip the only proof that panics
/// stay inside the OSD.
#[test]
fn a_panic_in_a_method_is_eio_and_the_osd_stays_up() {
    let io = common::rbd_pool();
    let oid = new_object(&io);
    let call = Call { class: CLASS_NAME, method: "test_panic", input: Vec::new() };
    let first = io.exec(&oid, &call).unwrap_err().errno();
    assert_ne!(
        first,
        Errno::EOPNOTSUPP,
        "the OSD's plugin has no test_panic: build it with `cargo build --release -p cls-rbd-ext-plugin --features test-methods` and restart the OSDs"
    );
    assert_eq!(first, Errno::EIO);
    for _ in 0..20 {
        assert_eq!(io.exec(&oid, &call).unwrap_err().errno(), Errno::EIO);
    }
    assert!(common::all_osds_up(), "an OSD went down after panics in the plugin");
    // And it still serves the class.
    let out = io.exec(&oid, &stubs::get_version()).unwrap();
    assert_eq!(String::read_bytes(&out).unwrap(), VERSION);
    io.remove(&oid).unwrap();
}

//! Upstream compatibility of the `rbd_ext` records through a real OSD, next to stock
//! `libcls_rbd` and stock tools (issue 3):
//! - a `parent` record written by `rbd_ext.parent_attach` is read by **stock**
//!   `rbd.parent_get` / `rbd.parent_overlap_get` and by stock `rbd info`, and
//!   `rbd_ext.parent_get` returns every v4 field;
//! - records written by stock clone v2 (`parent` on the child, `snap_children_<snap>` on the
//!   parent) decode with our types, and the children set re-encodes byte for byte;
//! - remote (type 2) and S3 (type 3) records make stock fail closed (EIO from
//!   `rbd.parent_get`, `rbd info` exits non-zero) instead of showing a wrong parent;
//! - a parent with a HEAD child (strict protection, asked for) is protected from stock
//!   `rm`, `resize`, `snap create` and writes (EROFS) while `export` works, and the last
//!   `child_detach` restores the exact `features` / `op_features` bytes it had.
//!
//! `eval "$(qa/cluster up)" && cargo test --features live --test cls_compat_live`.

mod common;

use std::sync::Arc;

use rbd_ext::rados::{Cluster, IoCtx};
use rbd_ext::{Errno, ImageSpec};
use rbd_ext_cls::codec::{Codec, SnapId};
use rbd_ext_cls::stubs::{self, stock};
use rbd_ext_cls::types::features::{
    CLONES_PROTECTION_FEATURES, OP_FEATURE_RBD_EXT_PROTECTED, PARENT_PROTECTION_FEATURES, RBD_FEATURE_OPERATIONS, RBD_OPERATION_FEATURE_CLONE_PARENT,
};
use rbd_ext_cls::types::{header, snap_children_key, ChildImageSpec, ChildImageSpecs, ParentImageSpec, ParentRecord, ParentType, ProtectionMode};

const MIB: u64 = 1 << 20;

/// A stock image (`rbd create`), with its id.
struct Img {
    name: String,
    id: String,
}

impl Img {
    fn header(&self) -> String {
        format!("rbd_header.{}", self.id)
    }
}

fn id_of(cluster: &Arc<Cluster>, spec: &ImageSpec) -> String {
    let (loc, _) = rbd_ext::header::locate(cluster, spec).expect("locate image");
    loc.id
}

fn create(cluster: &Arc<Cluster>, prefix: &str, size_mib: u64) -> Img {
    let name = common::unique(prefix);
    common::stock_ok("rbd", &["create", "--size", &format!("{size_mib}M"), &format!("rbd/{name}")]);
    let id = id_of(cluster, &ImageSpec::new("rbd", &name));
    Img { name, id }
}

fn info_json(name: &str) -> String {
    common::stock_ok("rbd", &["info", "--format", "json", &format!("rbd/{name}")])
}

/// The value of `"key":"..."` in a JSON text (first occurrence after `after`).
fn json_str(s: &str, after: &str, key: &str) -> String {
    let from = s.find(after).unwrap_or_else(|| panic!("{after} not in {s}"));
    let pat = format!("\"{key}\":\"");
    let at = s[from..].find(&pat).unwrap_or_else(|| panic!("{key} not in {s}")) + from + pat.len();
    s[at..].chars().take_while(|&c| c != '"').collect()
}

fn stock_parent_get(io: &IoCtx, oid: &str) -> rbd_ext::Result<ParentImageSpec> {
    io.exec(oid, &stock::parent_get()).map(|out| ParentImageSpec::read_bytes(&out).expect("ParentImageSpec decodes"))
}

fn stock_overlap_get(io: &IoCtx, oid: &str) -> rbd_ext::Result<Option<u64>> {
    io.exec(oid, &stock::parent_overlap_get(SnapId::NOSNAP)).map(|out| Option::<u64>::read_bytes(&out).expect("optional overlap decodes"))
}

fn ext_parent_get(io: &IoCtx, oid: &str) -> ParentRecord {
    stubs::decode_parent_get(&io.exec(oid, &stubs::parent_get()).expect("rbd_ext.parent_get")).unwrap()
}

#[test]
fn standalone_record_is_read_by_stock_cls_rbd_and_rbd_info() {
    let cluster = common::cluster();
    let io = common::rbd_pool();
    let parent = create(&cluster, "compat-parent", 16);
    let child = create(&cluster, "compat-child", 8);
    let hdr = child.header();

    // Overlap larger than the child: stored clamped to its size, as stock parent_attach does.
    let rec = ParentRecord {
        pool_id: io.pool_id(),
        pool_namespace: String::new(),
        image_id: parent.id.clone(),
        snap_id: SnapId::NOSNAP,
        head_overlap: Some(32 * MIB),
        parent_type: ParentType::Standalone,
        ..Default::default()
    };
    io.exec_write(&hdr, &stubs::parent_attach(&rec, false)).unwrap();
    let stored = ParentRecord { head_overlap: Some(8 * MIB), ..rec.clone() };

    // The stored value: v4, compat 2, our encoding exactly.
    let raw = io.omap_get(&hdr, header::PARENT).unwrap().expect("parent key written");
    assert_eq!(&raw[..2], &[4, 2], "v4 / compat 2");
    assert_eq!(raw, stored.get_encoding());

    // Stock cls_rbd on the same OSD decodes it (its v2 decoder skips the v3/v4 tail).
    let spec = stock_parent_get(&io, &hdr).expect("stock rbd.parent_get");
    assert_eq!(spec, ParentImageSpec { pool_id: io.pool_id(), pool_namespace: String::new(), image_id: parent.id.clone(), snap_id: SnapId::NOSNAP });
    assert_eq!(stock_overlap_get(&io, &hdr).expect("stock rbd.parent_overlap_get"), Some(8 * MIB));
    // Ours returns every field.
    assert_eq!(ext_parent_get(&io, &hdr), stored);

    // Stock librbd opens the child and reports the HEAD parent.
    let info = info_json(&child.name);
    assert_eq!(json_str(&info, "\"parent\"", "image"), parent.name, "{info}");
    assert_eq!(json_str(&info, "\"parent\"", "id"), parent.id, "{info}");
    assert!(info.contains(&format!("\"overlap\":{}", 8 * MIB)), "{info}");

    // A namespaced v4 record: stock reads the namespace at the same offset.
    let child2 = create(&cluster, "compat-child-ns", 8);
    let rec2 = ParentRecord { pool_namespace: "ns1".into(), head_overlap: Some(4 * MIB), ..rec.clone() };
    io.exec_write(&child2.header(), &stubs::parent_attach(&rec2, false)).unwrap();
    let spec2 = stock_parent_get(&io, &child2.header()).unwrap();
    assert_eq!((spec2.pool_namespace.as_str(), spec2.image_id.as_str()), ("ns1", parent.id.as_str()));
    assert_eq!(stock_overlap_get(&io, &child2.header()).unwrap(), Some(4 * MIB));
    assert_eq!(ext_parent_get(&io, &child2.header()), rec2);

    for c in [&child, &child2] {
        io.exec_write(&c.header(), &stubs::parent_detach()).unwrap();
        assert!(io.omap_get(&c.header(), header::PARENT).unwrap().is_none());
        common::stock_ok("rbd", &["rm", &format!("rbd/{}", c.name)]);
    }
    common::stock_ok("rbd", &["rm", &format!("rbd/{}", parent.name)]);
}

#[test]
fn stock_clone_v2_records_decode_with_our_types() {
    let cluster = common::cluster();
    let io = common::rbd_pool();
    let parent = create(&cluster, "compat-snapparent", 16);
    let p = format!("rbd/{}", parent.name);
    common::stock_ok("rbd", &["snap", "create", &format!("{p}@s")]);
    common::stock_ok("rbd", &["snap", "protect", &format!("{p}@s")]);
    let snaps = common::stock_ok("rbd", &["snap", "ls", "--format", "json", &p]);
    let snap_id = common::json_u64(&snaps, "id");

    // Three stock clone-v2 children, one in a namespace (ChildImageSpec v2 carries it last).
    let ns = common::unique("compatns").replace('-', "");
    common::stock_ok("rbd", &["namespace", "create", "--pool", "rbd", "--namespace", &ns]);
    let mut children: Vec<(String, String)> = Vec::new(); // (spec, namespace)
    for (i, space) in ["", "", ns.as_str()].iter().enumerate() {
        let name = common::unique(&format!("compat-clone{i}"));
        let spec = if space.is_empty() { format!("rbd/{name}") } else { format!("rbd/{space}/{name}") };
        common::stock_ok("rbd", &["clone", "--rbd-default-clone-format", "2", &format!("{p}@s"), &spec]);
        children.push((spec, space.to_string()));
    }

    let mut expect = ChildImageSpecs::new();
    for (i, (spec, space)) in children.iter().enumerate() {
        let name = spec.rsplit('/').next().unwrap();
        let mut ispec = ImageSpec::new("rbd", name);
        ispec.namespace = space.clone();
        let id = id_of(&cluster, &ispec);
        expect.insert(ChildImageSpec { pool_id: io.pool_id(), pool_namespace: space.clone(), image_id: id.clone() });
        if i == 0 {
            // The child's `parent` key, written by stock rbd.parent_attach (v2), read by ours.
            let hdr = format!("rbd_header.{id}");
            let raw = io.omap_get(&hdr, header::PARENT).unwrap().expect("stock clone has a parent key");
            assert_eq!(raw[0], 2, "stock writes cls_rbd_parent v2");
            let rec = ext_parent_get(&io, &hdr);
            assert_eq!(
                rec,
                ParentRecord {
                    pool_id: io.pool_id(),
                    pool_namespace: String::new(),
                    image_id: parent.id.clone(),
                    snap_id: SnapId(snap_id),
                    head_overlap: Some(16 * MIB),
                    parent_type: ParentType::Snapshot,
                    ..Default::default()
                }
            );
            assert_eq!(ParentRecord::read_bytes(&raw).unwrap(), rec);
        }
    }

    // The parent's per-snapshot children set, written by stock rbd.child_attach.
    let key = snap_children_key(SnapId(snap_id));
    assert_eq!(key, format!("snap_children_{snap_id:016x}"));
    let raw = io.omap_get(&parent.header(), &key).unwrap().expect("stock clone v2 writes the children key");
    let set = ChildImageSpecs::read_bytes(&raw).expect("stock children set decodes");
    assert_eq!(set, expect);
    assert_eq!(set.get_encoding(), raw, "re-encoding is byte-equal");
    for c in &set {
        // Each entry is v2/compat 1 with the namespace last, as upstream.
        assert_eq!(&c.get_encoding()[..2], &[2, 1]);
    }

    for (spec, _) in &children {
        common::stock_ok("rbd", &["rm", spec]);
    }
    common::stock_ok("rbd", &["snap", "unprotect", &format!("{p}@s")]);
    common::stock_ok("rbd", &["snap", "rm", &format!("{p}@s")]);
    common::stock_ok("rbd", &["rm", &p]);
    common::stock_ok("rbd", &["namespace", "remove", "--pool", "rbd", "--namespace", &ns]);
}

#[test]
fn remote_and_s3_records_make_stock_fail_closed() {
    let cluster = common::cluster();
    let io = common::rbd_pool();
    let remote = ParentRecord {
        pool_id: 3,
        image_id: "remoteparent1".into(),
        snap_id: SnapId::NOSNAP,
        head_overlap: Some(4 * MIB),
        parent_type: ParentType::RemoteStandalone,
        remote_cluster_name: "ceph-b".into(),
        remote_mon_hosts: vec!["[v2:10.0.0.2:3300,v1:10.0.0.2:6789]".into()],
        remote_client_name: "client.admin".into(),
        remote_secret_ref: "config://rbd-ext/remote/ceph-b".into(),
        ..Default::default()
    };
    let s3 = ParentRecord { head_overlap: Some(4 * MIB), parent_type: ParentType::S3Source, ..Default::default() };
    for rec in [remote, s3] {
        let child = create(&cluster, "compat-foreign", 8);
        let hdr = child.header();
        io.exec_write(&hdr, &stubs::parent_attach(&rec, false)).unwrap();
        let raw = io.omap_get(&hdr, header::PARENT).unwrap().unwrap();
        assert_eq!(&raw[..2], &[4, 3], "{:?}: v4 / compat 3", rec.parent_type);

        // Stock cls_rbd refuses to decode it: EIO, not a wrong parent.
        let e = stock_parent_get(&io, &hdr).unwrap_err();
        assert_eq!(e.errno(), Errno::EIO, "{:?}: stock parent_get: {e}", rec.parent_type);
        let e = stock_overlap_get(&io, &hdr).unwrap_err();
        assert_eq!(e.errno(), Errno::EIO, "{:?}: stock parent_overlap_get: {e}", rec.parent_type);
        // Stock librbd cannot open the image.
        let (ok, out, err) = common::stock("rbd", &["info", &format!("rbd/{}", child.name)]);
        assert!(!ok, "{:?}: stock rbd info succeeded: {out}", rec.parent_type);
        assert!(!out.contains("parent"), "{out}");
        assert!(err.contains("Input/output error") || err.contains("(5)"), "{err}");
        // rbd_ext reads every field.
        assert_eq!(ext_parent_get(&io, &hdr), rec);

        // Detached, the image is an ordinary stock image again.
        io.exec_write(&hdr, &stubs::parent_detach()).unwrap();
        assert_eq!(stock_parent_get(&io, &hdr).unwrap().pool_id, -1);
        let info = common::stock_ok("rbd", &["info", &format!("rbd/{}", child.name)]);
        assert!(!info.contains("parent"), "{info}");
        common::stock_ok("rbd", &["rm", &format!("rbd/{}", child.name)]);
    }
}

fn features(io: &IoCtx, hdr: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (io.omap_get(hdr, header::FEATURES).unwrap(), io.omap_get(hdr, header::OP_FEATURES).unwrap())
}

fn decode_u64(v: &Option<Vec<u8>>) -> u64 {
    v.as_deref().map_or(0, |b| u64::read_bytes(b).unwrap())
}

fn export(spec: &str) -> Vec<u8> {
    let path = std::env::temp_dir().join(common::unique("compat-export"));
    common::stock_ok("rbd", &["export", "--no-progress", spec, path.to_str().unwrap()]);
    let d = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    d
}

#[test]
fn stock_tools_obey_a_protected_parent_and_the_last_detach_restores_it() {
    let cluster = common::cluster();
    let io = common::rbd_pool();
    let parent = create(&cluster, "compat-protected", 8);
    let p = format!("rbd/{}", parent.name);
    let hdr = parent.header();
    common::stock_ok("rbd", &["bench", "--io-type", "write", "--io-total", "2M", "--io-pattern", "rand", &p]);
    let data = export(&p);
    let before = features(&io, &hdr);
    assert!(before.0.is_some());
    assert!(before.1.is_none(), "a fresh image has no op_features key");

    // Two HEAD children (fake specs: the class does not look them up).
    let kids: Vec<ChildImageSpec> = ["fakechild1", "fakechild2"]
        .iter()
        .map(|id| ChildImageSpec { pool_id: io.pool_id(), pool_namespace: String::new(), image_id: id.to_string() })
        .collect();
    for k in &kids {
        io.exec_write(&hdr, &stubs::child_attach(k)).unwrap();
    }
    // The default (clones) protection; tests/protection_live.rs covers what stock does
    // under it. This test covers the strict one, which is asked for explicitly.
    let clones = features(&io, &hdr);
    assert_eq!(decode_u64(&clones.0), decode_u64(&before.0) | CLONES_PROTECTION_FEATURES);
    assert!(clones.1.is_none(), "the clones protection adds no op feature");
    io.exec_write(&hdr, &stubs::protection_set(ProtectionMode::Strict)).unwrap();
    let during = features(&io, &hdr);
    assert_eq!(decode_u64(&during.0) & PARENT_PROTECTION_FEATURES, PARENT_PROTECTION_FEATURES);
    assert_ne!(decode_u64(&during.1) & OP_FEATURE_RBD_EXT_PROTECTED, 0);

    common::stock_rbd_refused_erofs(&["rm", "--no-progress", &p]);
    common::stock_rbd_refused_erofs(&["resize", "--no-progress", "--size", "16M", &p]);
    common::stock_rbd_refused_erofs(&["snap", "create", &format!("{p}@s1")]);
    common::stock_rbd_refused_erofs(&["bench", "--io-type", "write", "--io-total", "1M", &p]);
    // Reads work.
    assert_eq!(export(&p), data, "export of the protected parent");
    common::stock_ok("rbd", &["info", &p]);

    // One child left: still protected.
    io.exec_write(&hdr, &stubs::child_detach(&kids[0])).unwrap();
    assert_eq!(features(&io, &hdr), during);
    common::stock_rbd_refused_erofs(&["snap", "create", &format!("{p}@s1")]);

    // The last detach restores the exact prior bytes (and no op_features key).
    io.exec_write(&hdr, &stubs::child_detach(&kids[1])).unwrap();
    assert_eq!(features(&io, &hdr), before, "features / op_features restored byte for byte");
    assert!(io.omap_get(&hdr, header::RBD_EXT_PROTECT).unwrap().is_none());
    assert_eq!(io.exec(&hdr, &stubs::children_list(0, None)).unwrap_err().errno(), Errno::ENOENT);

    // Every stock operation works again.
    common::stock_ok("rbd", &["bench", "--io-type", "write", "--io-total", "1M", &p]);
    common::stock_ok("rbd", &["resize", "--no-progress", "--size", "16M", &p]);
    common::stock_ok("rbd", &["snap", "create", &format!("{p}@s1")]);
    common::stock_ok("rbd", &["snap", "rm", "--no-progress", &format!("{p}@s1")]);
    assert_eq!(export(&p).len() as u64, 16 * MIB);
    // The refused `rbd bench` exits without closing the image, leaving its watch until the
    // OSD times it out (~30 s); stock `rbd rm` refuses (EBUSY) while a watcher remains.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (ok, _, err) = common::stock("rbd", &["rm", "--no-progress", &p]);
        if ok {
            break;
        }
        assert!(err.contains("still open") && std::time::Instant::now() < deadline, "rbd rm {p}: {err}");
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

#[test]
fn protection_keeps_and_restores_the_op_features_of_a_stock_clone_parent() {
    // A parent that already has op features of its own (clone-parent, from a stock clone v2).
    let cluster = common::cluster();
    let io = common::rbd_pool();
    let parent = create(&cluster, "compat-opfeat", 8);
    let p = format!("rbd/{}", parent.name);
    let hdr = parent.header();
    let clone = format!("rbd/{}", common::unique("compat-opfeat-clone"));
    common::stock_ok("rbd", &["snap", "create", &format!("{p}@s")]);
    common::stock_ok("rbd", &["snap", "protect", &format!("{p}@s")]);
    common::stock_ok("rbd", &["clone", "--rbd-default-clone-format", "2", &format!("{p}@s"), &clone]);
    let before = features(&io, &hdr);
    assert_ne!(decode_u64(&before.0) & RBD_FEATURE_OPERATIONS, 0);
    assert_eq!(decode_u64(&before.1), RBD_OPERATION_FEATURE_CLONE_PARENT);

    let kid = ChildImageSpec { pool_id: io.pool_id(), pool_namespace: String::new(), image_id: "fakechild3".into() };
    io.exec_write(&hdr, &stubs::child_attach(&kid)).unwrap();
    assert_eq!(decode_u64(&features(&io, &hdr).1), RBD_OPERATION_FEATURE_CLONE_PARENT, "clones: op features untouched");
    common::stock_rbd_refused_erofs(&["resize", "--no-progress", "--size", "16M", &p]);
    io.exec_write(&hdr, &stubs::protection_set(ProtectionMode::Strict)).unwrap();
    let during = features(&io, &hdr);
    assert_eq!(decode_u64(&during.1), RBD_OPERATION_FEATURE_CLONE_PARENT | OP_FEATURE_RBD_EXT_PROTECTED);
    common::stock_rbd_refused_erofs(&["resize", "--no-progress", "--size", "16M", &p]);
    io.exec_write(&hdr, &stubs::child_detach(&kid)).unwrap();
    assert_eq!(features(&io, &hdr), before);

    common::stock_ok("rbd", &["rm", "--no-progress", &clone]);
    common::stock_ok("rbd", &["snap", "unprotect", &format!("{p}@s")]);
    common::stock_ok("rbd", &["snap", "rm", "--no-progress", &format!("{p}@s")]);
    // The stock child is gone: stock cleared clone-parent and OPERATIONS itself.
    assert!(features(&io, &hdr).1.is_none());
    common::stock_ok("rbd", &["rm", "--no-progress", &p]);
}

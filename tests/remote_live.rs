//! Parents in another cluster (DESIGN.md §5). The test boots its own second cluster with
//! `qa/cluster up --name remote-<pid>` beside the one in CEPH_CONF (the child's), and stops it
//! to prove a flattened child no longer needs it and an unflattened one fails to open clearly.

mod common;

use common::fsx::{run_ops, Rng};

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use rbd_ext::blocking::clone_standalone;
use rbd_ext::rados::{Cluster, ConnectOptions};
use rbd_ext::{CloneOptions, Errno, Image, ImageSpec, OpenOptions, RemoteOptions};

struct RemoteCluster {
    name: String,
    conf: String,
    keyring: String,
}

impl RemoteCluster {
    fn up() -> RemoteCluster {
        let name = format!("remote-{}", std::process::id());
        let root = env!("CARGO_MANIFEST_DIR");
        let out = Command::new(format!("{root}/qa/cluster")).args(["up", "--name", &name]).output().unwrap();
        assert!(out.status.success(), "qa/cluster up --name {name}: {}", String::from_utf8_lossy(&out.stderr));
        let env = String::from_utf8_lossy(&out.stdout).into_owned();
        let conf = env.lines().find_map(|l| l.strip_prefix("export CEPH_CONF=")).unwrap().trim_matches('\'').to_string();
        let dir = std::path::Path::new(&conf).parent().unwrap().to_path_buf();
        RemoteCluster { name, conf, keyring: dir.join("keyring").to_string_lossy().into_owned() }
    }

    fn connect(&self) -> Arc<Cluster> {
        Cluster::connect(&ConnectOptions::default().with_conf(self.conf.clone())).unwrap()
    }

    /// Runs a stock CLI against this cluster.
    fn stock(&self, cmd: &str, args: &[&str]) -> String {
        let out = Command::new(cmd).args(args).env("CEPH_CONF", &self.conf).output().unwrap();
        assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn down(&self) {
        let root = env!("CARGO_MANIFEST_DIR");
        let _ = Command::new(format!("{root}/qa/cluster")).args(["down", "--name", &self.name]).status();
    }
}

impl Drop for RemoteCluster {
    fn drop(&mut self) {
        self.down();
    }
}

fn import(r: &RemoteCluster, name: &str, data: &[u8]) -> ImageSpec {
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, data).unwrap();
    r.stock("rbd", &["import", "--object-size", "64K", path.to_str().unwrap(), &format!("rbd/{name}")]);
    std::fs::remove_file(&path).ok();
    ImageSpec::new("rbd", name)
}

fn the_key(keyring: &str) -> String {
    rbd_ext::remote::keyring_key(keyring, "client.admin").unwrap()
}

#[test]
fn remote_parent_lifecycle() {
    let local = common::cluster();
    let r = RemoteCluster::up();
    let rc = r.connect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rng = Rng(77);
    let size = 12 * 65536 + 999;
    let pdata: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
    let parent = import(&r, &common::unique("rparent"), &pdata);
    let remote = RemoteOptions::new(r.conf.clone()).with_keyring(r.keyring.clone()).with_cluster_name(r.name.clone());
    let opts = CloneOptions::default().with_remote(remote.clone());

    // Wrong key: a clear EACCES-class error and nothing written locally.
    let bad_kr = std::env::temp_dir().join(common::unique("bad-keyring"));
    std::fs::write(&bad_kr, "[client.admin]\n\tkey = AQBxrSxnAAAAABAAu9e5l4Gm1kqf/6iH3Fq0aQ==\n").unwrap();
    let bad_child = ImageSpec::new("rbd", &common::unique("rchild-badkey"));
    let bad = CloneOptions::default().with_remote(remote.clone().with_keyring(bad_kr.to_string_lossy()).with_cluster_name(format!("{}-bad", r.name)));
    let e = clone_standalone(&local, &parent, &bad_child, &bad).unwrap_err();
    assert!(matches!(e.errno(), Errno::EACCES | Errno::EPERM), "{e}");
    assert!(e.to_string().contains(&r.name) && !e.to_string().contains("AQBxrSxn"), "{e}");
    assert!(Image::open_blocking(&local, &bad_child, OpenOptions::default()).err().unwrap().is_not_found());
    let (ok, _, _) = common::stock("ceph", &["config-key", "exists", &format!("rbd-ext/remote/{}-bad/client.admin", r.name)]);
    assert!(!ok, "a key was stored although the connection failed");
    std::fs::remove_file(&bad_kr).ok();

    // Clone across clusters; the remote parent is protected by its remote child.
    let child = ImageSpec::new("rbd", &common::unique("rchild"));
    clone_standalone(&local, &parent, &child, &opts).unwrap();
    let img = Image::open_blocking(&local, &child, OpenOptions::default().with_write(true)).unwrap();
    let hdr = img.header();
    let p = hdr.parent.clone().unwrap();
    assert_eq!(p.parent_type, rbd_ext_cls::types::ParentType::RemoteStandalone);
    assert_eq!(p.remote_cluster_name, r.name);
    assert!(p.remote_secret_ref.starts_with("config://"));
    let e = rbd_ext::blocking::remove(&rc, &parent).unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY, "{e}");
    // Stock librbd refuses the child (compat 3) instead of reading zeros.
    let (ok, _, _) = common::stock("rbd", &["info", &child.to_string()]);
    assert!(!ok, "stock rbd info of a remote-parent child succeeded");

    // The fsx mix (reads, writes, discards, write-zeroes, resizes) with a flatten midway.
    let mut model = pdata.clone();
    run_ops(&rt, &img, &mut model, &mut rng, 800, 77, Some(400));
    img.close().unwrap();
    // Flattened: the remote parent has no children and may be removed now.
    rbd_ext::blocking::remove(&rc, &parent).unwrap();

    // A second parent and an unflattened child, to lose the remote cluster under it.
    let p2data: Vec<u8> = (0..300_000u64).map(|_| rng.next() as u8).collect();
    let parent2 = import(&r, &common::unique("rparent2"), &p2data);
    let child2 = ImageSpec::new("rbd", &common::unique("rchild2"));
    clone_standalone(&local, &parent2, &child2, &opts).unwrap();
    {
        let c2 = Image::open_blocking(&local, &child2, OpenOptions::default()).unwrap();
        assert!(rt.block_on(c2.read_at(0, 300_000)).unwrap() == p2data);
    }

    // No key bytes anywhere but the config-key store.
    let key = the_key(&r.keyring);
    for (cl, spec) in [(&local, &child), (&local, &child2), (&rc, &parent2)] {
        let (loc, _) = rbd_ext::header::locate(cl, spec).unwrap();
        for (k, v) in loc.md.omap_list(&format!("rbd_header.{}", loc.id), "").unwrap() {
            assert!(!String::from_utf8_lossy(&v).contains(&key) && !k.contains(&key), "key bytes in {spec} header omap {k}");
        }
    }
    // (Image metadata lives in the same header omap, as `metadata_<key>`: covered above.
    // Stock `rbd image-meta list` refuses these children, by design: compat 3.)
    let info = format!("{:?}", Image::open_blocking(&local, &child2, OpenOptions::default()).unwrap().info());
    assert!(!info.contains(&key), "info shows the key");

    // Stop the remote cluster: the flattened child reads on; the other fails to open,
    // promptly and naming the cluster and its monitors.
    drop(rc);
    r.down();
    let c1 = Image::open_blocking(&local, &child, OpenOptions::default()).unwrap();
    assert!(rt.block_on(c1.read_at(0, model.len() as u64)).unwrap() == model);
    let t = Instant::now();
    let e = Image::open_blocking(&local, &child2, OpenOptions::default()).err().expect("open succeeded without its parent's cluster");
    let took = t.elapsed();
    assert!(took.as_secs() < 30, "open took {took:?}");
    let msg = e.to_string();
    assert!(msg.contains(&r.name) && msg.contains("127.0.0.1"), "{msg}");
    // An open image watches its header (as librbd's do); removal waits for no watchers.
    drop(c1);
    rbd_ext::blocking::remove(&local, &child).unwrap();
    common::stock_ok("ceph", &["config-key", "rm", &format!("rbd-ext/remote/{}/client.admin", r.name)]);
}

/// The prior design's single-cluster trick: a "remote" parent that is in fact this cluster.
/// The child still records a remote-standalone parent, connects through its own handle, and
/// is registered in the parent's per-cluster children set, not the local one.
#[test]
fn remote_parent_in_the_same_cluster() {
    let local = common::cluster();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let conf = std::env::var("CEPH_CONF").unwrap();
    let keyring = std::path::Path::new(&conf).parent().unwrap().join("keyring");
    let mut rng = Rng(5);
    let data: Vec<u8> = (0..200_000u64).map(|_| rng.next() as u8).collect();
    let pname = common::unique("self-parent");
    let path = std::env::temp_dir().join(&pname);
    std::fs::write(&path, &data).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", "64K", path.to_str().unwrap(), &format!("rbd/{pname}")]);
    std::fs::remove_file(&path).ok();
    let parent = ImageSpec::new("rbd", &pname);
    let child = ImageSpec::new("rbd", &common::unique("self-child"));
    let name = common::unique("self");
    let remote = RemoteOptions::new(conf).with_keyring(keyring.to_string_lossy()).with_cluster_name(name.clone());
    clone_standalone(&local, &parent, &child, &CloneOptions::default().with_remote(remote)).unwrap();
    let img = Image::open_blocking(&local, &child, OpenOptions::default()).unwrap();
    assert_eq!(img.header().parent.unwrap().parent_type, rbd_ext_cls::types::ParentType::RemoteStandalone);
    assert!(rt.block_on(img.read_at(0, 200_000)).unwrap() == data);
    drop(img);
    let kids = rbd_ext::blocking::children(&local, &parent).unwrap();
    assert!(kids.children.is_empty() && kids.remote.len() == 1, "{kids:?}");
    assert_eq!(rbd_ext::blocking::remove(&local, &parent).unwrap_err().errno(), Errno::EBUSY);
    rbd_ext::blocking::remove(&local, &child).unwrap();
    rbd_ext::blocking::remove(&local, &parent).unwrap();
    common::stock_ok("ceph", &["config-key", "rm", &format!("rbd-ext/remote/{name}/client.admin")]);
}

/// The remote cluster's conf file is read by librados as stock tools read it: a `mon host`
/// in another client's section is not this client's, and the child records the monitors the
/// cluster's monmap names.
#[test]
fn a_remote_conf_is_read_with_its_sections() {
    let local = common::cluster();
    let conf = std::env::var("CEPH_CONF").unwrap();
    let keyring = std::path::Path::new(&conf).parent().unwrap().join("keyring");
    // A section for another client comes first, with a monitor nobody answers on.
    let text = std::fs::read_to_string(&conf).unwrap();
    let sectioned = std::env::temp_dir().join(format!("{}.conf", common::unique("sectioned")));
    std::fs::write(&sectioned, format!("[client.someone-else]\n\tmon host = 192.0.2.1:6789\n\n{text}")).unwrap();
    let pname = common::unique("sect-parent");
    common::stock_ok("rbd", &["create", "--size", "1M", &format!("rbd/{pname}")]);
    let parent = ImageSpec::new("rbd", &pname);
    let child = ImageSpec::new("rbd", &common::unique("sect-child"));
    let name = common::unique("sect");
    let remote = RemoteOptions::new(sectioned.to_string_lossy()).with_keyring(keyring.to_string_lossy()).with_cluster_name(name.clone());
    clone_standalone(&local, &parent, &child, &CloneOptions::default().with_remote(remote))
        .unwrap_or_else(|e| panic!("clone through a conf with a [client.someone-else] mon host: {e}"));
    let p = Image::open_blocking(&local, &child, OpenOptions::default()).unwrap().header().parent.unwrap();
    let dump = common::stock_ok("ceph", &["mon", "dump", "--format", "json"]);
    let v1 = dump.split("\"type\":\"v1\",\"addr\":\"").nth(1).unwrap().split('"').next().unwrap();
    assert!(!p.remote_mon_hosts.join(",").contains("192.0.2.1"), "{:?}", p.remote_mon_hosts);
    assert!(p.remote_mon_hosts.iter().any(|h| h.contains(&format!("v1:{v1}"))), "recorded {:?}, monmap {dump}", p.remote_mon_hosts);
    rbd_ext::blocking::remove(&local, &child).unwrap();
    rbd_ext::blocking::remove(&local, &parent).unwrap();
    common::stock_ok("ceph", &["config-key", "rm", &format!("rbd-ext/remote/{name}/client.admin")]);
    std::fs::remove_file(&sectioned).ok();
}

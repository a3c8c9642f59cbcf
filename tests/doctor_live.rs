//! `rbd-ext doctor` (issue 13.3, and the "one command" of issue 14.4): a healthy pool
//! exits 0; an OSD without the class is named; a user without the needed caps is found; an
//! orphan clone map, the stale child entry and the stuck protection stock `rbd rm` leaves
//! are found with their fixes printed, and `--fix` applies them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use rbd_ext::blocking::clone_standalone;
use rbd_ext::{CloneOptions, ImageSpec};
use serde_json::Value;

/// A parent (stock `rbd import`, 4 objects) and a standalone child of it in `pool`;
/// returns them with the child's id.
fn parent_and_child(pool: &str) -> (ImageSpec, ImageSpec, String) {
    let cluster = common::cluster();
    let pname = common::unique("doc-parent");
    let path = std::env::temp_dir().join(&pname);
    std::fs::write(&path, vec![7u8; 4 << 16]).unwrap();
    common::stock_ok("rbd", &["import", "--no-progress", "--object-size", "65536", path.to_str().unwrap(), &format!("{pool}/{pname}")]);
    std::fs::remove_file(&path).ok();
    let parent = ImageSpec::new(pool, &pname);
    let child = ImageSpec::new(pool, &common::unique("doc-child"));
    clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).unwrap();
    let (loc, _) = rbd_ext::header::locate(&cluster, &child).unwrap();
    (parent, child, loc.id)
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("doctor --format json printed no JSON ({e}): {out}"))
}

/// The findings of kind `kind`.
fn findings<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == kind).collect()
}

#[test]
fn a_healthy_pool_exits_0() {
    let pool = common::TempPool::new("doc-healthy");
    let (parent, child, _) = parent_and_child(&pool.0);
    let (code, out, err) = common::rbd_ext(&["doctor", "-p", &pool.0]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("everything is fine"), "{out}");
    let (code, out, err) = common::rbd_ext(&["doctor", "-p", &pool.0, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    assert_eq!(r["ok"], true);
    assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{r}");
    // Every PG was probed, and every primary answered with this client's version.
    let pgs: usize = r["osds"].as_array().unwrap().iter().map(|o| o["pgs"].as_array().unwrap().len()).sum();
    assert_eq!(pgs, 8, "{r}");
    for o in r["osds"].as_array().unwrap() {
        assert_eq!(o["version"], r["expected_version"], "{o}");
    }
    common::rbd_ext(&["rm", &child.to_string()]);
    common::rbd_ext(&["rm", &parent.to_string()]);
}

#[test]
fn what_stock_rm_of_a_child_leaves_is_found_and_fixed() {
    let pool = common::TempPool::new("doc-orphan");
    let (parent, child, cid) = parent_and_child(&pool.0);
    common::stock_ok("rbd", &["rm", "--no-progress", &child.to_string()]);
    let map = format!("rbd_clone_map.{cid}");
    assert!(common::object_exists(&pool.0, &map));

    let (code, out, err) = common::rbd_ext(&["doctor", "-p", &pool.0, "--format", "json"]);
    assert_eq!(code, 1, "doctor must fail while something is wrong: {out}{err}");
    let r = json(&out);
    let orphan = findings(&r, "orphan-clone-map");
    assert_eq!(orphan.len(), 1, "{r}");
    assert_eq!(orphan[0]["fix"].as_str().unwrap().split("   ").next().unwrap(), format!("rados -p {} rm {map}", pool.0));
    let stale = findings(&r, "stale-child");
    assert_eq!(stale.len(), 1, "{r}");
    assert!(stale[0]["problem"].as_str().unwrap().contains(&cid), "{r}");
    assert!(stale[0]["fix"].as_str().unwrap().starts_with(&format!("rbd-ext children {parent}")), "{r}");
    let stuck = findings(&r, "stuck-protection");
    assert_eq!(stuck.len(), 1, "{r}");
    assert_eq!(stuck[0]["subject"], parent.to_string());
    // Plain output prints the same fixes.
    let (_, plain, _) = common::rbd_ext(&["doctor", "-p", &pool.0]);
    assert!(plain.contains(&format!("fix: rados -p {} rm {map}", pool.0)), "{plain}");

    let (code, out, err) = common::rbd_ext(&["doctor", "-p", &pool.0, "--fix"]);
    assert_eq!(code, 0, "--fix leaves problems: {out}{err}");
    assert_eq!(out.matches("FIXED").count(), 3, "{out}");
    assert!(!common::object_exists(&pool.0, &map));
    // The parent is an ordinary image again: stock rm works.
    common::stock_ok("rbd", &["rm", "--no-progress", &parent.to_string()]);
    let (code, out, err) = common::rbd_ext(&["doctor", "-p", &pool.0]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A user with exactly `caps`, its keyring in a temp file; removed when dropped.
struct TempUser {
    id: String,
    keyring: PathBuf,
}

impl TempUser {
    fn new(caps: &[&str]) -> TempUser {
        let id = common::unique("doctor-user");
        let keyring = std::env::temp_dir().join(format!("{id}.keyring"));
        let name = format!("client.{id}");
        let mut args = vec!["auth", "get-or-create", &name];
        args.extend_from_slice(caps);
        args.extend_from_slice(&["-o", keyring.to_str().unwrap()]);
        common::stock_ok("ceph", &args);
        TempUser { id, keyring }
    }

    fn doctor(&self, pool: &str) -> (i32, Value) {
        let (code, out, err) = common::rbd_ext(&["--id", &self.id, "--keyring", self.keyring.to_str().unwrap(), "doctor", "-p", pool, "--format", "json"]);
        assert!(out.starts_with('{'), "{out}{err}");
        (code, json(&out))
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = common::stock("ceph", &["auth", "rm", &format!("client.{}", self.id)]);
        let _ = std::fs::remove_file(&self.keyring);
    }
}

#[test]
fn a_user_without_the_needed_caps_is_found() {
    let pool = common::TempPool::new("doc-caps");
    let osd_cap = format!("profile rbd pool={}", pool.0);
    // `profile rbd` lacks the mon cap to read secret references (S3 children).
    let plain_rbd = TempUser::new(&["mon", "profile rbd", "osd", &osd_cap]);
    let (code, r) = plain_rbd.doctor(&pool.0);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["client"], format!("client.{}", plain_rbd.id));
    let caps = findings(&r, "cap-missing");
    assert_eq!(caps.len(), 1, "{r}");
    assert!(caps[0]["problem"].as_str().unwrap().contains("config-key get"), "{r}");
    assert!(caps[0]["fix"].as_str().unwrap().contains(r#"allow command "config-key get" with key prefix rbd-ext/"#), "{r}");

    // With that cap added, nothing is missing.
    let full = TempUser::new(&["mon", r#"profile rbd, allow command "config-key get" with key prefix rbd-ext/"#, "osd", &osd_cap]);
    let (_, r) = full.doctor(&pool.0);
    assert!(findings(&r, "cap-missing").is_empty(), "{r}");

    // Read-only OSD caps: the class may not even be called.
    let read_only = TempUser::new(&["mon", "profile rbd", "osd", &format!("allow r pool={}", pool.0)]);
    let (code, r) = read_only.doctor(&pool.0);
    assert_eq!(code, 1);
    let caps = findings(&r, "cap-missing");
    assert!(caps.iter().any(|f| f["problem"].as_str().unwrap().contains("may not write through class rbd_ext")), "{r}");
    assert!(caps.iter().all(|f| f["subject"] == format!("client.{}", read_only.id)), "{r}");
}

/// A second cluster of 3 OSDs (`qa/cluster up --name <this cluster>-d3 --osds 3`), torn down
/// when dropped.
struct ThreeOsds {
    name: String,
    env: Vec<(String, String)>,
}

fn qa_cluster(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("qa/cluster")).args(args).output().expect("run qa/cluster");
    assert!(out.status.success(), "qa/cluster {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl ThreeOsds {
    fn up() -> ThreeOsds {
        let name = format!("{}-d3", std::env::var("RBD_EXT_CLUSTER_NAME").unwrap_or_else(|_| "doctor".into()));
        let lines = qa_cluster(&["up", "--name", &name, "--osds", "3"]);
        let env = lines
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        ThreeOsds { name, env }
    }

    fn doctor(&self) -> (i32, Value, String) {
        let out = Command::new(common::rbd_ext_bin()).args(["doctor", "-p", "rbd", "--format", "json"]).envs(self.env.iter().cloned()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code().unwrap_or(-1), json(&stdout), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Drop for ThreeOsds {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("qa/cluster")).args(["down", "--name", &self.name]).output();
    }
}

#[test]
fn an_osd_without_the_class_is_named() {
    let c = ThreeOsds::up();
    let (code, r, err) = c.doctor();
    assert_eq!(code, 0, "healthy 3-OSD cluster: {r} {err}");
    // The OSD to strip: one that is primary for PGs of the pool (8 PGs over 3 OSDs).
    let osds = r["osds"].as_array().unwrap().clone();
    assert!(osds.len() >= 2, "{r}");
    let victim = osds.last().unwrap()["osd"].as_i64().unwrap();
    qa_cluster(&["plugin-off", &victim.to_string(), "--name", &c.name]);

    let (code, r, _) = c.doctor();
    assert_eq!(code, 1, "{r}");
    let missing = findings(&r, "class-missing");
    assert_eq!(missing.len(), 1, "{r}");
    assert_eq!(missing[0]["subject"], format!("osd.{victim}"));
    assert!(missing[0]["fix"].as_str().unwrap().contains("install libcls_rbd_ext.so"), "{r}");
    for o in r["osds"].as_array().unwrap() {
        if o["osd"] == victim {
            assert_eq!(o["error"], "EOPNOTSUPP", "{o}");
        } else {
            assert_eq!(o["version"], r["expected_version"], "{o}");
        }
    }
}

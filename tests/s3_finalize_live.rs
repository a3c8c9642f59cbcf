//! `s3 finalize` (issue 11, deliverable 4) and `flatten` of S3-backed images (issue 11,
//! deliverable 3), against a real radosgw: once hydrated, an S3-backed parent becomes a
//! plain image and stock librbd (`rbd export`, `rbd info`) and QEMU's rbd driver serve its
//! children; before that, finalize is refused with the count of missing objects, and a
//! flatten through the library never drops the S3 source.
//!
//! Needs `eval "$(qa/cluster up --rgw)"`, the release CLI (`RBD_EXT_BIN`) and QEMU 7.2 with
//! its rbd driver as qa/setup installs it (`RBD_EXT_QEMU72_DIR`, default /opt/rbd-ext/qemu-7.2):
//! `cargo test --features live,test-methods --test s3_finalize_live`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rbd_ext::{Errno, Image, ImageSpec, OpenOptions};

const MIB: usize = 1 << 20;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `eval \"$(qa/cluster up --rgw)\"` first (these tests need radosgw)"))
}

fn run(args: &[&str]) -> Output {
    Command::new(common::rbd_ext_bin()).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run rbd-ext {args:?}: {e}"))
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "rbd-ext {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Images (removed newest first) and files made by one test.
struct Cleanup {
    images: Vec<String>,
    files: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for img in self.images.iter().rev() {
            let _ = run(&["rm", img]);
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Cleanup {
    fn image(&mut self, prefix: &str) -> String {
        let name = format!("rbd/{}", common::unique(prefix));
        self.images.push(name.clone());
        name
    }

    fn file(&mut self, prefix: &str) -> PathBuf {
        let p = std::env::temp_dir().join(common::unique(prefix));
        self.files.push(p.clone());
        p
    }
}

/// Publishes `data` to a fresh bucket and attaches a new S3-backed parent to it.
fn s3_parent(c: &mut Cleanup, data: &[u8], prefix: &str) -> String {
    let (endpoint, region, access) = (var("RBD_EXT_S3_ENDPOINT"), var("RBD_EXT_S3_REGION"), var("RBD_EXT_S3_ACCESS_KEY"));
    let secret_file = var("RBD_EXT_S3_SECRET_FILE");
    let bucket = common::unique(prefix).to_lowercase();
    let file = c.file(prefix);
    std::fs::write(&file, data).unwrap();
    let dest = format!("s3://{bucket}/img.raw");
    let creds = ["--region", &region, "--access-key", &access, "--secret-key-file", &secret_file];
    // A fresh bucket, made with the library's client.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = rbd_ext::s3::S3Config::new(&endpoint, region.clone(), &bucket);
    let secret = std::fs::read_to_string(&secret_file).unwrap().trim().to_string();
    cfg.credentials = Some(rbd_ext::s3::Credentials { access_key: access.clone(), secret_key: secret, session_token: None });
    rt.block_on(rbd_ext::s3::S3Client::new(cfg).unwrap().create_bucket(&bucket)).unwrap();
    let mut args = vec!["s3", "publish", file.to_str().unwrap(), &dest, "--endpoint", &endpoint];
    args.extend(creds);
    ok(&args);
    let parent = c.image(&format!("{prefix}-parent"));
    let mut args = vec!["s3", "attach", &parent, "--endpoint", &endpoint, "--bucket", &bucket, "--key", "img.raw"];
    args.extend(creds);
    ok(&args);
    parent
}

/// QEMU 7.2's qemu-img with its rbd driver, as qa/setup installs it.
fn qemu_img() -> Command {
    let dir = std::env::var("RBD_EXT_QEMU72_DIR").unwrap_or_else(|_| "/opt/rbd-ext/qemu-7.2".into());
    let bin = Path::new(&dir).join("usr/bin/qemu-img");
    assert!(bin.exists(), "{} not found: run qa/setup", bin.display());
    let mut c = Command::new(bin);
    c.env("QEMU_MODULE_DIR", Path::new(&dir).join("usr/lib/x86_64-linux-gnu/qemu"));
    c
}

#[test]
fn finalize_makes_hydrated_children_stock_readable() {
    let mut c = Cleanup { images: Vec::new(), files: Vec::new() };
    // Three objects of 4 MiB, the middle one all zeros (a manifest hole).
    let mut data = common::random(12 * MIB, 0xf1a1);
    data[4 * MIB..8 * MIB].fill(0);
    let parent = s3_parent(&mut c, &data, "s3fin");
    let children: Vec<String> = (0..2).map(|i| c.image(&format!("s3fin-child{i}"))).collect();
    for child in &children {
        ok(&["clone-standalone", &parent, child]);
    }
    // Before hydration: stock librbd refuses the children (fail closed), finalize is refused
    // with the count and changes nothing.
    let (served, _, _) = common::stock("rbd", &["export", "--no-progress", &children[0], "-"]);
    assert!(!served, "stock rbd served a child of an unhydrated S3 parent");
    let o = run(&["s3", "finalize", &parent]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("2 of 3 objects are not filled"), "{err}");
    assert!(ok(&["s3", "show", &parent]).contains("img.raw"), "the S3 source is still attached");

    ok(&["hydrate", &parent]);
    let out = ok(&["s3", "finalize", &parent]);
    assert!(out.contains("3 objects (1 holes)") && out.contains("2 children"), "{out}");

    // Stock librbd now serves every child, and shows the parent.
    for child in &children {
        let file = c.file("s3fin-export");
        common::stock_ok("rbd", &["export", "--no-progress", child, file.to_str().unwrap()]);
        assert!(std::fs::read(&file).unwrap() == data, "stock rbd export of {child} differs from the source");
        let info = common::stock_ok("rbd", &["info", child]);
        assert!(info.contains(&format!("parent: {parent}@")), "{info}");
    }
    common::stock_ok("rbd", &["info", &parent]);
    // QEMU's rbd driver (librbd) reads a child: equal to the source.
    let source = c.file("s3fin-source");
    std::fs::write(&source, &data).unwrap();
    let uri = format!("rbd:{}:conf={}", children[1], var("CEPH_CONF"));
    let o = qemu_img().args(["compare", "-f", "raw", "-F", "raw", &uri, source.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "qemu-img compare {uri}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    // A second finalize finds nothing S3-backed.
    let o = run(&["s3", "finalize", &parent]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not S3-backed"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `flatten` through the library on a read-only handle of an S3-backed image is refused:
/// it used to read the unfilled objects as zeros, skip them and detach the S3 source.
#[test]
fn flatten_never_drops_an_s3_source() {
    let mut c = Cleanup { images: Vec::new(), files: Vec::new() };
    let data = common::random(8 * MIB, 0xf1a2);
    let parent = s3_parent(&mut c, &data, "s3flat");
    let cluster = common::cluster();
    let spec: ImageSpec = parent.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let img = Image::open_blocking(&cluster, &spec, OpenOptions::default()).unwrap();
    let e = rt.block_on(rbd_ext::flatten(&img, &|_, _| {})).expect_err("flatten of an S3-backed image succeeded");
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    assert!(e.to_string().contains("S3-backed") && e.to_string().contains(&parent), "{e}");
    drop(img);
    let again = Image::open_blocking(&cluster, &spec, OpenOptions::default()).unwrap();
    assert!(again.is_s3_backed(), "the S3 source record was removed");
    assert!(rt.block_on(again.read_at(0, data.len() as u64)).unwrap() == data, "the data changed");
}

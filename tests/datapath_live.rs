//! The data path under concurrency (issue 11, deliverable 3): per-object ordering, resize
//! against requests in flight, the writer lock's lifecycle (librbd's RequestLock refused,
//! header updates followed, blocklisting detected), no blocking inside async code, and the
//! per-image budget of RADOS ops in flight.
//!
//! `eval "$(qa/cluster up)" && cargo test --features live,test-methods --test datapath_live`.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rbd_ext::header::{object_map_oid, ImageHeader};
use rbd_ext::rados::Cluster;
use rbd_ext::{Errno, Image, ImageSpec, OpenOptions};
use rbd_ext_cls::stubs::stock;

/// Object size of the test images (small, so that many objects cost little).
const OS: u64 = 64 * 1024;

/// A fresh image of `objects` objects of [`OS`] bytes, stock features (exclusive-lock,
/// object-map, fast-diff).
fn new_image(prefix: &str, objects: u64) -> ImageSpec {
    let name = common::unique(prefix);
    let size = (objects * OS).to_string();
    common::stock_ok("rbd", &["create", "--size", &format!("{size}B"), "--object-size", &OS.to_string(), &format!("rbd/{name}")]);
    ImageSpec::new("rbd", &name)
}

fn remove(spec: &ImageSpec) {
    let _ = common::stock("rbd", &["rm", "--no-progress", &spec.to_string()]);
}

fn writer(cluster: &Arc<Cluster>, spec: &ImageSpec) -> Image {
    Image::open_blocking(cluster, spec, OpenOptions::default().with_write(true)).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

/// The stock object map as stored (not as any client caches it).
fn stored_object_map(img: &Image) -> Vec<u8> {
    let loc = img.location();
    let out = loc.md.exec(&object_map_oid(&loc.id), &stock::object_map_load()).unwrap();
    stock::decode_object_map(&out).unwrap()
}

fn object_exists(img: &Image, hdr: &ImageHeader, n: u64) -> bool {
    match img.location().data.stat(&hdr.data_oid(n)) {
        Ok(_) => true,
        Err(e) if e.is_not_found() => false,
        Err(e) => panic!("stat object {n}: {e}"),
    }
}

/// A whole-object discard and a write to the same object, both in flight: the requests to
/// one object apply one at a time in the order they were issued (librbd's BlockGuard), so
/// the write is not erased by the discard issued before it, and every object that exists
/// is marked so in the stored object map (stock librbd trusts the map).
#[test]
fn discard_then_write_to_one_object_apply_in_order() {
    const N: u64 = 48;
    let cluster = common::cluster();
    let spec = new_image("dp-race", N);
    let rt = rt();
    let img = writer(&cluster, &spec);
    let hdr = img.header();
    let patch = vec![0xA5u8; 4096];
    let mut written = vec![0u8; OS as usize];
    written[100..100 + patch.len()].copy_from_slice(&patch);
    for round in 0..3u64 {
        let (img, patch) = (&img, &patch);
        rt.block_on(async {
            let full = vec![round as u8 + 1; OS as usize];
            futures_join_all((0..N).map(|n| {
                let full = &full;
                async move { img.write_at(n * OS, full).await.unwrap() }
            }))
            .await;
            futures_join_all((0..N).map(|n| async move {
                let (a, b) = tokio::join!(img.discard(n * OS, OS), img.write_at(n * OS + 100, patch));
                a.unwrap();
                b.unwrap();
            }))
            .await;
        });
        let map = stored_object_map(img);
        for n in 0..N {
            let data = rt.block_on(img.read_at(n * OS, OS)).unwrap();
            assert!(data == written, "round {round}: object {n}: the write issued after the discard was erased by it");
            assert!(object_exists(img, &hdr, n), "round {round}: object {n} is missing");
            assert_ne!(map[n as usize], stock::object_map_state::NONEXISTENT, "round {round}: object {n} exists but the object map says NONEXISTENT");
        }
    }
    img.close().unwrap();
    let (ok, out, err) = common::stock("rbd", &["object-map", "check", "--no-progress", &spec.to_string()]);
    assert!(ok, "rbd object-map check: {out}{err}");
    remove(&spec);
}

/// A shrink issued while writes past the new end are in flight waits for them: no object
/// is left beyond the new size (it would come back as data on a later grow).
#[test]
fn resize_waits_for_the_writes_in_flight() {
    let cluster = common::cluster();
    let spec = new_image("dp-resize", 64);
    let rt = rt();
    let img = writer(&cluster, &spec);
    let data = vec![7u8; (32 * OS) as usize];
    rt.block_on(async {
        let (w, r) = tokio::join!(img.write_at(32 * OS, &data), async {
            tokio::task::yield_now().await;
            img.resize(32 * OS).await
        });
        r.unwrap();
        // The write may also come after the resize, and is then out of range.
        if let Err(e) = w {
            assert_eq!(e.errno(), Errno::EINVAL, "{e}");
        }
    });
    let hdr = img.header();
    assert_eq!(hdr.size, 32 * OS);
    let beyond: Vec<u64> = (32..64).filter(|&n| object_exists(&img, &hdr, n)).collect();
    assert!(beyond.is_empty(), "objects past the new end: {beyond:?}");
    img.close().unwrap();
    remove(&spec);
}

/// A librbd client that wants to write while rbd-ext holds the lock asks for it
/// (RequestLock) and gets a clear refusal (EROFS) at once, instead of retrying forever.
#[test]
fn librbd_lock_request_is_refused() {
    let cluster = common::cluster();
    let spec = new_image("dp-reqlock", 4);
    let img = writer(&cluster, &spec);
    let script = format!(
        "import rados, rbd, sys\n\
         c = rados.Rados(conffile='{conf}'); c.connect(); io = c.open_ioctx('rbd')\n\
         im = rbd.Image(io, '{name}')\n\
         try:\n    im.write(b'x' * 512, 0)\n    print('WROTE')\n\
         except rbd.ReadOnlyImage as e:\n    print('EROFS')\n\
         except Exception as e:\n    print('OTHER', type(e).__name__, e)\n\
         im.close(); io.close(); c.shutdown()\n",
        conf = std::env::var("CEPH_CONF").unwrap(),
        name = spec.image
    );
    let started = Instant::now();
    let out = Command::new("timeout").args(["60", "/usr/bin/python3", "-c", &script]).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "EROFS",
        "librbd's write while rbd-ext holds the lock ({:?}): {stdout} {}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30), "the refusal took {:?}", started.elapsed());
    // Still ours, and our writes still work.
    let rt = rt();
    rt.block_on(img.write_at(0, &[1u8; 512])).unwrap();
    img.close().unwrap();
    remove(&spec);
}

/// A reader follows a resize made by the writer (header-update notification).
#[test]
fn reader_follows_a_resize() {
    let cluster = common::cluster();
    let spec = new_image("dp-refresh", 4);
    let rt = rt();
    let reader = Image::open_blocking(&cluster, &spec, OpenOptions::default()).unwrap();
    let w = writer(&cluster, &spec);
    rt.block_on(w.resize(8 * OS)).unwrap();
    rt.block_on(w.write_at(7 * OS, &[9u8; 4096])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rt.block_on(reader.read_at(7 * OS, 4096)) {
            Ok(d) => {
                assert_eq!(d, vec![9u8; 4096]);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.errno(), Errno::EINVAL, "{e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("the reader never saw the new size: {e}"),
        }
    }
    assert_eq!(reader.size(), 8 * OS);
    w.close().unwrap();
    drop(reader);
    remove(&spec);
}

/// Once blocklisted (its lock broken), a writer writes nothing more, even after the
/// blocklist entry is gone again, and says why.
#[test]
fn blocklisted_writer_writes_nothing() {
    let cluster = common::cluster();
    let spec = new_image("dp-blocklist", 4);
    let rt = rt();
    // Its own connection: blocklisting it must not hurt the other tests' clients.
    let own = common::cluster();
    let img = writer(&own, &spec);
    rt.block_on(img.write_at(0, &[1u8; 4096])).unwrap();
    let md = cluster.ioctx("rbd", "").unwrap();
    let id = img.location().id.clone();
    let lockers = rbd_ext::lock::lockers(&md, &id).unwrap();
    let addr = lockers[0].address.clone();
    common::stock_ok("ceph", &["osd", "blocklist", "add", &addr]);
    // It notices (an op refused, or its watch broken)...
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        match rt.block_on(img.write_at(0, &[2u8; 4096])) {
            Err(e) => break e,
            Ok(()) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(()) => panic!("a blocklisted writer kept writing"),
        }
    };
    assert_eq!(err.errno(), Errno::ESHUTDOWN, "{err}");
    common::stock_ok("ceph", &["osd", "blocklist", "rm", &addr]);
    std::thread::sleep(Duration::from_secs(2));
    // ...and stays stopped: its lock may have been given to another writer meanwhile.
    let e = rt.block_on(img.write_at(0, &[3u8; 4096])).expect_err("a writer that was blocklisted wrote again");
    assert_eq!(e.errno(), Errno::ESHUTDOWN, "{e}");
    assert!(e.to_string().contains("blocklisted") && e.to_string().contains(&spec.to_string()), "{e}");
    let reader = Image::open_blocking(&cluster, &spec, OpenOptions::default()).unwrap();
    let first = rt.block_on(reader.read_at(0, 1)).unwrap()[0];
    assert_ne!(first, 3, "the write after the blocklist went through");
    drop(reader);
    drop(img);
    let _ = common::stock("rbd", &["lock", "rm", &spec.to_string(), &lockers[0].cookie, &lockers[0].client]);
    remove(&spec);
}

/// A resize whose header-update notification takes long to be acknowledged (a slow
/// watcher) does not block the async runtime: other tasks keep running meanwhile.
#[test]
fn resize_does_not_block_the_runtime() {
    let cluster = common::cluster();
    let spec = new_image("dp-block", 4);
    let img = writer(&cluster, &spec);
    let hoid = rbd_ext::header::header_oid(&img.location().id);
    // A watcher that takes 3 s to acknowledge each notification.
    let script = format!(
        "import rados, sys, time\n\
         c = rados.Rados(conffile='{conf}'); c.connect(); io = c.open_ioctx('rbd')\n\
         w = io.watch('{hoid}', lambda *a: time.sleep(3))\n\
         print('ready', flush=True)\n\
         sys.stdin.read()\n\
         w.close(); io.close(); c.shutdown()\n",
        conf = std::env::var("CEPH_CONF").unwrap()
    );
    let mut slow = Command::new("/usr/bin/python3").args(["-c", &script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(slow.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let longest_gap = rt.block_on(async {
        let ticker = tokio::spawn(async {
            let mut last = Instant::now();
            let mut longest = Duration::ZERO;
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                longest = longest.max(last.elapsed());
                last = Instant::now();
            }
            longest
        });
        // Let the ticker start first.
        tokio::time::sleep(Duration::from_millis(120)).await;
        img.resize(8 * OS).await.unwrap();
        ticker.await.unwrap()
    });
    drop(slow.stdin.take());
    let _ = slow.wait();
    assert!(longest_gap < Duration::from_millis(1000), "the runtime stalled for {longest_gap:?} during a resize");
    img.close().unwrap();
    remove(&spec);
}

/// However many requests run at once, one image has at most its budget of RADOS ops in
/// flight.
#[test]
fn ops_in_flight_per_image_are_capped() {
    let cluster = common::cluster();
    let spec = new_image("dp-budget", 64);
    let rt = rt();
    let img = Image::open_blocking(&cluster, &spec, OpenOptions::default().with_write(true).with_max_ops_in_flight(4)).unwrap();
    rt.block_on(futures_join_all((0..64).map(|n| {
        let img = &img;
        async move { img.write_at(n * OS, &[n as u8; 4096]).await.unwrap() }
    })));
    rt.block_on(futures_join_all((0..64).map(|n| {
        let img = &img;
        async move { assert_eq!(img.read_at(n * OS, 4096).await.unwrap(), vec![n as u8; 4096]) }
    })));
    let peak = img.ops_in_flight_peak();
    assert!((2..=4).contains(&peak), "peak RADOS ops in flight: {peak} (budget 4)");
    img.close().unwrap();
    remove(&spec);
}

/// Runs the futures concurrently (the test crate has no `futures` dependency).
async fn futures_join_all<F: std::future::Future<Output = ()>>(it: impl IntoIterator<Item = F>) {
    let mut futs: Vec<Option<std::pin::Pin<Box<F>>>> = it.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in futs.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await
}

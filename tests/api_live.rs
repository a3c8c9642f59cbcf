//! The library as a driver (Cinder, CSI, the C and Python bindings) uses it, without the CLI:
//! the async management calls, typed results (image details, descendants), import with
//! rollback, and refusals that carry a hint instead of a command-line flag.
//!
//! Needs a cluster: `eval "$(qa/cluster up)"`, then
//! `cargo test --features live,test-methods --test api_live`.

mod common;

use std::io::{self, Read};

use rbd_ext::{CloneOptions, CopyError, Errno, Hint, Image, ImageSpec, ImportOptions, OpenOptions, ParentType};

/// A stock image with data, made by stock `rbd import`.
fn stock_image(size: usize) -> ImageSpec {
    let name = common::unique("api-parent");
    let path = std::env::temp_dir().join(&name);
    std::fs::write(&path, common::fsx::Rng(7).bytes(size)).unwrap();
    common::stock_ok("rbd", &["import", "--object-size", "64K", path.to_str().unwrap(), &format!("rbd/{name}")]);
    std::fs::remove_file(&path).ok();
    ImageSpec::new("rbd", &name)
}

#[tokio::test(flavor = "multi_thread")]
async fn clone_describe_walk_and_remove_through_the_async_api() {
    let cluster = common::cluster();
    let parent = stock_image(300_000);
    let child = ImageSpec::new("rbd", &common::unique("api-child"));
    let grandchild = ImageSpec::new("rbd", &common::unique("api-grandchild"));
    rbd_ext::clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).await.unwrap();
    rbd_ext::clone_standalone(&cluster, &child, &grandchild, &CloneOptions::default()).await.unwrap();

    // The walk is depth first and names each image once.
    let d = rbd_ext::descendants(&cluster, &parent).await.unwrap();
    assert_eq!(d.images, [child.clone(), grandchild.clone()]);
    assert_eq!(rbd_ext::children(&cluster, &parent).await.unwrap().children, [child.clone()]);

    // `rbd info`'s facts, typed.
    let info = rbd_ext::image_details(&cluster, &child).await.unwrap();
    let p = info.parent.expect("a clone has a parent");
    assert_eq!((p.spec.pool.as_str(), p.spec.image.as_str()), ("rbd", parent.image.as_str()));
    assert_eq!(p.parent_type, ParentType::Standalone);
    assert_eq!((p.overlap, p.snapshot.as_str(), p.in_trash), (300_000, "", false));
    assert!(info.clone_map.is_some_and(|cm| cm.objects == info.header.object_count()));
    let prot = rbd_ext::image_details(&cluster, &parent).await.unwrap().protection.expect("children protect the parent");
    assert_eq!((prot.children, prot.remote_children), (1, 0));

    // A protected parent is refused; leaves first, then it goes.
    let e = rbd_ext::remove(&cluster, &parent).await.unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY, "{e}");
    rbd_ext::remove(&cluster, &grandchild).await.unwrap();
    rbd_ext::remove(&cluster, &child).await.unwrap();
    rbd_ext::remove(&cluster, &parent).await.unwrap();
    assert!(rbd_ext::image_details(&cluster, &parent).await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_carries_a_hint_not_a_flag() {
    let cluster = common::cluster();
    let parent = stock_image(70_000);
    let writer = Image::open(&cluster, &parent, OpenOptions::default().with_write(true)).await.unwrap();
    let child = ImageSpec::new("rbd", &common::unique("api-busy-child"));
    let e = rbd_ext::clone_standalone(&cluster, &parent, &child, &CloneOptions::default()).await.unwrap_err();
    assert_eq!((e.errno(), e.hint()), (Errno::EBUSY, Some(Hint::Force)), "{e}");
    assert!(!e.to_string().contains("--"), "the library names no CLI flag: {e}");
    // What the hint says to change works.
    rbd_ext::clone_standalone(&cluster, &parent, &child, &CloneOptions::default().with_force(true)).await.unwrap();
    writer.close_async().await.unwrap();
    rbd_ext::remove(&cluster, &child).await.unwrap();
    rbd_ext::remove(&cluster, &parent).await.unwrap();
}

/// Hands out `good` bytes of data, then fails, as a broken pipe or a bad disk would.
struct FailingAfter {
    data: Vec<u8>,
    at: usize,
}

impl Read for FailingAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.data.len() {
            return Err(io::Error::other("the source broke"));
        }
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn import_fills_a_new_image_and_removes_it_when_the_input_fails() {
    let cluster = common::cluster();
    let opts = ImportOptions::default().with_order(16);

    // A stream of unknown length (a pipe): the image grows as it comes, zeros included.
    let mut data = common::fsx::Rng(3).bytes(200_000);
    data[70_000..140_000].fill(0);
    let spec = ImageSpec::new("rbd", &common::unique("api-import"));
    let n = rbd_ext::import(&cluster, &spec, Box::new(io::Cursor::new(data.clone())), None, &opts, &|_| {}).await.unwrap();
    assert_eq!(n, 200_000);
    let img = Image::open(&cluster, &spec, OpenOptions::default()).await.unwrap();
    assert_eq!(img.size(), 200_000);
    assert!(img.read_at(0, 200_000).await.unwrap() == data);
    drop(img);
    rbd_ext::remove(&cluster, &spec).await.unwrap();

    // A source that breaks after 150 kB: the error is the input's, and no image is left.
    let spec = ImageSpec::new("rbd", &common::unique("api-import-broken"));
    let broken = FailingAfter { data: common::fsx::Rng(4).bytes(150_000), at: 0 };
    let e = rbd_ext::import(&cluster, &spec, Box::new(broken), None, &opts, &|_| {}).await.unwrap_err();
    assert!(matches!(&e.error, CopyError::Input(io) if io.to_string() == "the source broke"), "{e}");
    assert!(e.cleanup.is_none(), "the half-imported image was removed: {:?}", e.cleanup);
    let gone = Image::open(&cluster, &spec, OpenOptions::default()).await.err().expect("the partial image is gone");
    assert!(gone.is_not_found(), "{gone}");

    // An existing name is refused and left alone.
    let existing = stock_image(10_000);
    let e = rbd_ext::import(&cluster, &existing, Box::new(io::empty()), Some(0), &opts, &|_| {}).await.unwrap_err();
    assert_eq!(e.error.errno(), Errno::EEXIST, "{e}");
    Image::open(&cluster, &existing, OpenOptions::default()).await.expect("the existing image is untouched");
    rbd_ext::remove(&cluster, &existing).await.unwrap();
}

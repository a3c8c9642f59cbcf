//! `s3 finalize`: an S3-backed parent whose every object is in RADOS (filled and verified
//! against the manifest, or a manifest hole) becomes a plain local image, so that stock
//! librbd, QEMU's rbd driver and rbd-nbd serve its children directly (DESIGN.md §0: only
//! what stock cannot serve is fail-closed).
//!
//! Order of the changes, each safe on its own if the next fails: first every local child's
//! record is made a type-1 standalone record (compat 2) if it is not one already (stock
//! still refuses it while the parent's own record is the compat-3 S3 source), then the
//! parent's S3-source record is removed, and open clients are told to re-read the header.
//! The `s3.*` image metadata stays, as a note of where the data came from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use rbd_ext_cls::stubs::{self, stock};
use rbd_ext_cls::types::ParentType;

use crate::backfill::{read_filled, Filled};
use crate::error::{Errno, Error, Hint, Result};
use crate::header::{self, header_oid};
use crate::image::{Image, OpenOptions};
use crate::manage::Progress;
use crate::rados::{blocking, Cluster};
use crate::spec::ImageSpec;

/// What [`s3_finalize`] did.
#[derive(Debug, Clone, Default)]
pub struct FinalizeReport {
    /// Objects of the parent checked (filled or holes).
    pub objects: u64,
    /// Of them, manifest holes (no RADOS object needed: they read as zeros).
    pub holes: u64,
    /// Local children, now served by stock librbd.
    pub children: Vec<ImageSpec>,
    /// Of them, those whose record had to be rewritten as type 1.
    pub rewritten: usize,
    /// Children in other clusters: their records stay remote-standalone (stock librbd
    /// cannot follow a parent into another cluster).
    pub remote: Vec<String>,
}

/// Makes the S3-backed `spec` a plain local image once every object is present. Refused
/// (`EAGAIN`, nothing changed) with the count of missing objects while any is; `EIO` if a
/// present object does not match the manifest.
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let report = rbd_ext::s3_finalize(&cluster, &"rbd/golden".parse()?, 8, &|_, _| {}).await?;
/// println!("{} children now readable by stock librbd", report.children.len());
/// # Ok(()) }
/// ```
pub async fn s3_finalize(cluster: &Arc<Cluster>, spec: &ImageSpec, parallel: usize, progress: Progress<'_>) -> Result<FinalizeReport> {
    let image = Image::open(cluster, spec, OpenOptions::default()).await?;
    let Some(bf) = image.backfill() else {
        return Err(Error::new(Errno::EINVAL, format!("image {spec} is not S3-backed: nothing to finalize")));
    };
    let hdr = image.header();
    let loc = image.location().clone();
    let (os, total) = (hdr.object_size(), hdr.object_count());
    let (holes, missing, done) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let manifest = bf.manifest().await.map_err(|e| e.context(format_args!("image {spec}")))?;
    progress(0, total);
    stream::iter(0..total)
        .map(|n| {
            let (hdr, loc, holes, missing, done) = (&hdr, &loc, &holes, &missing, &done);
            async move {
                if manifest.is_some_and(|m| m.is_zero(n)) {
                    holes.fetch_add(1, Ordering::Relaxed);
                } else {
                    let len = os.min(hdr.size - n * os);
                    match read_filled(&loc.data, &hdr.data_oid(n), len).await.map_err(|e| e.context(format_args!("image {spec}")))? {
                        Filled::Data(d) => {
                            if let Some(m) = manifest {
                                m.verify(n, &d).map_err(|e| e.context(format_args!("image {spec}: object {n} in RADOS")))?;
                            }
                        }
                        Filled::Missing | Filled::Claimed => {
                            missing.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<()>()
        .await?;
    let missing = missing.into_inner();
    if missing > 0 {
        return Err(Error::new(
            Errno::EAGAIN,
            format!("image {spec}: {missing} of {total} objects are not filled from S3 yet (nothing was changed): hydrate it first"),
        )
        .hinted(Hint::Hydrate));
    }
    image.close_async().await?;
    let (cluster, spec_owned) = (Arc::clone(cluster), spec.clone());
    let (kids, rewritten) = blocking(move || {
        let list = crate::manage::children_blocking(&cluster, &spec_owned)?;
        let mut rewritten = 0;
        for child in &list.children {
            let (cloc, chdr) = header::locate(&cluster, child)?;
            let Some(mut record) = chdr.parent.clone() else {
                continue;
            };
            if record.parent_type != ParentType::Standalone {
                record.parent_type = ParentType::Standalone;
                cloc.md
                    .exec_write(&header_oid(&cloc.id), &stubs::parent_attach(&record, true))
                    .map_err(|e| e.context(format_args!("image {spec_owned}: child {child}: rewrite its record as standalone")))?;
                rewritten += 1;
            }
        }
        Ok((list, rewritten))
    })
    .await?;
    let hoid = header_oid(&loc.id);
    loc.md.exec_write_async(&hoid, &stubs::parent_detach()).await.map_err(|e| e.context(format_args!("image {spec}: remove the S3 source record")))?;
    let _ = loc.md.notify_async(&hoid, stock::header_update_notification(), 5000).await;
    Ok(FinalizeReport { objects: total, holes: holes.into_inner(), children: kids.children, rewritten, remote: kids.remote })
}

//! Which parts of an image hold data (NBD's `base:allocation`): an object that neither the
//! image nor any parent holds is a hole; one whose data may come from a parent (or from
//! S3, for an S3-backed image) is data.

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::{Errno, Error, Result};
use crate::extents::object_extents;
use crate::rados::{ReadOp, ReadStep, StepOut};
use crate::Image;

/// The allocation state of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Holds data (here, in a parent, or in S3).
    Data,
    /// Stored, but reads as zeros (an empty object that hides the parent's data).
    Zero,
    /// Held by nothing: reads as zeros.
    Hole,
}

impl Image {
    /// The allocation of `[off, off+len)` as consecutive `(length, state)` runs covering the
    /// range, adjacent runs of one state merged. One stat per object, in parallel.
    pub fn allocation(&self, off: u64, len: u64) -> BoxFuture<'_, Result<Vec<(u64, Allocation)>>> {
        Box::pin(async move {
            let size = self.size();
            if off.checked_add(len).is_none_or(|end| end > size) {
                return Err(Error::new(Errno::EINVAL, format!("image {}: range {off}+{len} is beyond the image size {size}", self.spec())));
            }
            let hdr = &self.header();
            let os = hdr.object_size();
            let per_object: Vec<Vec<(u64, Allocation)>> = stream::iter(object_extents(off, len, os))
                .map(|e| async move {
                    let oid = hdr.data_oid(e.object_no);
                    let op = ReadOp { steps: vec![ReadStep::Stat] };
                    let r = self.location().data.aio_read(&oid, &op, 0)?.await;
                    if r.rc >= 0 {
                        let stored = match r.steps.first() {
                            Some((_, StepOut::Stat(n, _))) => *n,
                            _ => 1,
                        };
                        // An S3-backed object may be mid-fill (claimed, still empty): data.
                        let zero = stored == 0 && self.backfill().is_none();
                        return Ok(vec![(e.length, if zero { Allocation::Zero } else { Allocation::Data })]);
                    }
                    if r.rc != -libc::ENOENT {
                        return Err(Error::new(Errno(-r.rc), format!("image {}: object {}: stat", self.spec(), e.object_no)));
                    }
                    if let Some(bf) = self.backfill() {
                        let hole = bf.is_hole(e.object_no).await.map_err(|x| x.context(format_args!("image {}", self.spec())))?;
                        return Ok(vec![(e.length, if hole { Allocation::Hole } else { Allocation::Data })]);
                    }
                    let at = e.image_offset(os);
                    let overlap = hdr.overlap().min(self.parent().map_or(0, |p| p.size()));
                    let Some(parent) = self.parent().filter(|_| at < overlap) else {
                        return Ok(vec![(e.length, Allocation::Hole)]);
                    };
                    let inherited = e.length.min(overlap - at);
                    let mut runs = parent.allocation(at, inherited).await.map_err(|x| x.context(format_args!("image {}: parent", self.spec())))?;
                    if inherited < e.length {
                        runs.push((e.length - inherited, Allocation::Hole));
                    }
                    Ok(runs)
                })
                .buffered(16)
                .try_collect()
                .await?;
            Ok(merge(per_object.into_iter().flatten()))
        })
    }
}

/// Joins adjacent runs of the same state.
fn merge(runs: impl IntoIterator<Item = (u64, Allocation)>) -> Vec<(u64, Allocation)> {
    let mut out: Vec<(u64, Allocation)> = Vec::new();
    for (n, a) in runs {
        match out.last_mut() {
            Some((m, b)) if *b == a => *m += n,
            _ => out.push((n, a)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_runs_merge() {
        use Allocation::*;
        assert_eq!(merge([(1, Data), (2, Data), (3, Hole), (4, Zero), (5, Zero)]), [(3, Data), (3, Hole), (9, Zero)]);
        assert!(merge([]).is_empty());
    }
}

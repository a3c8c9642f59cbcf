//! `read IMAGE --offset N --length N [--output FILE|-]`: a byte range through the clone
//! (child data, else the parent's, else zeros) to a file or stdout.

use std::io::{self, Write};

use futures::stream::{self, StreamExt};

use rbd_ext::{Image, OpenOptions};

use super::output::{Existing, OutputFile};
use super::{io_err, is_dash, CmdResult, Ctx};
use crate::cli::ReadArgs;

/// Bytes per `read_at` when streaming: large enough to keep many objects in flight, small
/// enough that a few chunks in memory do not matter.
const CHUNK: u64 = 16 << 20;
/// Chunks read ahead while the previous one is written out.
const READ_AHEAD: usize = 2;

/// Copies the range to the output.
pub async fn run(ctx: &Ctx, a: ReadArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let image = Image::open(&ctx.cluster, &spec, OpenOptions::default())?;
    // Check the range before creating an output file for it.
    let size = image.size();
    if a.offset.checked_add(a.length).is_none_or(|end| end > size) {
        return Err(super::msg(format!(
            "read {spec}: range {}+{} is beyond the image size {size}: {}",
            a.offset,
            a.length,
            rbd_ext::Errno::EINVAL
        )));
    }
    if is_dash(&a.output) {
        let mut out = io::stdout().lock();
        copy_range(&image, a.offset, a.length, |_, data| out.write_all(&data).map_err(|e| io_err(e, "write to stdout"))).await?;
        return out.flush().map_err(|e| io_err(e, "write to stdout"));
    }
    // The file appears only when the whole range was read (a failed read leaves none).
    let what = format!("write to {}", a.output.display());
    let out = OutputFile::create(&a.output, Existing::Replace)?;
    let mut file = out.file();
    copy_range(&image, a.offset, a.length, |_, data| file.write_all(&data).map_err(|e| io_err(e, &what))).await?;
    out.commit()
}

/// Reads `[off, off+len)` in object-aligned chunks, a few ahead, and hands each to `sink`
/// in order with its image offset.
pub async fn copy_range(image: &Image, off: u64, len: u64, mut sink: impl FnMut(u64, Vec<u8>) -> CmdResult) -> CmdResult {
    let pieces = chunks(off, len, aligned_chunk(image.header().object_size()));
    let mut reads = stream::iter(pieces).map(|(p, n)| async move { image.read_at(p, n).await.map(|d| (p, d)) }).buffered(READ_AHEAD);
    while let Some(r) = reads.next().await {
        let (p, data) = r?;
        sink(p, data)?;
    }
    Ok(())
}

/// Splits `[off, off+len)` at multiples of `chunk`: (offset, length) pairs.
pub fn chunks(off: u64, len: u64, chunk: u64) -> Vec<(u64, u64)> {
    let (mut v, end, mut p) = (Vec::new(), off + len, off);
    while p < end {
        let next = ((p / chunk + 1) * chunk).min(end);
        v.push((p, next - p));
        p = next;
    }
    v
}

/// [`CHUNK`] rounded up to whole objects, so that chunks never split an object after the
/// first one.
pub fn aligned_chunk(object_size: u64) -> u64 {
    CHUNK.div_ceil(object_size).max(1) * object_size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_whole_objects() {
        assert_eq!(aligned_chunk(4 << 20), 16 << 20);
        assert_eq!(aligned_chunk(32 << 20), 32 << 20);
        assert_eq!(aligned_chunk(3 << 20), 18 << 20);
        assert_eq!(chunks(5, 20, 8), [(5, 3), (8, 8), (16, 8), (24, 1)]);
        assert_eq!(chunks(8, 8, 8), [(8, 8)]);
        assert!(chunks(3, 0, 8).is_empty());
    }
}

//! `write IMAGE --offset N [--input FILE|-]`: bytes from a file or stdin into an image,
//! copy-on-write where a clone still inherits.

use std::io::Read;

use futures::stream::{self, StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use tokio::sync::mpsc;

use rbd_ext::extents::nonzero_runs;
use rbd_ext::{Errno, Image, OpenOptions};

use super::read::aligned_chunk;
use super::{io_err, is_dash, msg, open_input, read_full, CmdResult, Ctx};
use crate::cli::WriteArgs;

/// Writes the input at the offset; nothing is printed on success.
pub async fn run(ctx: &Ctx, a: WriteArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let (input, input_len) = open_input(&a.input)?;
    let image = Image::open(&ctx.cluster, &spec, OpenOptions { write: true, ..Default::default() })?;
    let size = image.size();
    // A file's length is known: refuse before writing anything rather than half-way.
    if let Some(n) = input_len {
        if a.offset.checked_add(n).is_none_or(|end| end > size) {
            return Err(msg(format!(
                "write {spec}: {} bytes at offset {} go beyond the image size {size} (resize it first): {}",
                n,
                a.offset,
                Errno::EINVAL
            )));
        }
    }
    let what = if is_dash(&a.input) { "read stdin".to_string() } else { format!("read {}", a.input.display()) };
    // Input from a pipe is not measured up front: a chunk that ends past the image fails
    // in the library with EINVAL (after the chunks before it were written).
    copy_in(&image, a.offset, input, &what, CopyIn::default(), &ProgressBar::hidden()).await?;
    image.close()?;
    Ok(())
}

/// Reads `input` on a thread, in chunks aligned to the image's objects (so that after the
/// first chunk every object is written whole, without a copy-up), and writes each chunk at
/// its image offset, starting at `off`, while the next chunk is being read.
///
/// Returns the number of bytes consumed; `bar` advances by each chunk written.
pub async fn copy_in(image: &Image, off: u64, input: Box<dyn Read + Send>, what: &str, how: CopyIn, bar: &ProgressBar) -> CmdResult<u64> {
    let chunk = aligned_chunk(image.header().object_size());
    let first = chunk - off % chunk;
    let mut rx = spawn_reader(input, first, chunk);
    let mut pos = off;
    while let Some(r) = rx.recv().await {
        let data = r.map_err(|e| io_err(e, what))?;
        let len = data.len() as u64;
        if how.grow && pos + len > image.size() {
            image.resize(pos + len).await?;
        }
        if how.skip_zeros {
            // Bounded: a finely fragmented chunk must not put thousands of ops in flight.
            stream::iter(nonzero_runs(&data, 4096))
                .map(|(o, n)| image.write_at(pos + o, &data[o as usize..(o + n) as usize]))
                .buffer_unordered(16)
                .try_collect::<()>()
                .await?;
        } else {
            image.write_at(pos, &data).await?;
        }
        pos += len;
        bar.inc(len);
    }
    Ok(pos - off)
}

/// How [`copy_in`] treats the image.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyIn {
    /// Leave all-zero 4 KiB blocks unwritten: for a fresh image, which reads zeros there
    /// already (never for a clone, where they must hide the parent's data).
    pub skip_zeros: bool,
    /// Grow the image to the end of each chunk before writing it (import from a pipe,
    /// whose length is not known up front).
    pub grow: bool,
}

/// The reading side of [`copy_in`]: chunks of `first`, then `chunk` bytes, until EOF.
/// A bounded channel keeps at most two chunks waiting.
fn spawn_reader(mut input: Box<dyn Read + Send>, first: u64, chunk: u64) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(2);
    std::thread::spawn(move || {
        let mut want = first;
        loop {
            let mut buf = vec![0u8; want as usize];
            let r = read_full(&mut input, &mut buf);
            let (eof, msg) = match r {
                Ok(n) => {
                    buf.truncate(n);
                    ((n as u64) < want, (n > 0).then_some(Ok(buf)))
                }
                Err(e) => (true, Some(Err(e))),
            };
            // A closed channel means the writer gave up: stop reading.
            if let Some(m) = msg {
                if tx.blocking_send(m).is_err() {
                    return;
                }
            }
            if eof {
                return;
            }
            want = chunk;
        }
    });
    rx
}

//! `write IMAGE --offset N [--input FILE|-]`: bytes from a file or stdin into an image,
//! copy-on-write where a clone still inherits.

use std::io::Read;

use tokio::sync::mpsc;

use rbd_ext::extents::nonzero_runs;
use rbd_ext::{Errno, Image, OpenOptions};

use super::read::aligned_chunk;
use super::{io_err, msg, open_input, read_full, CmdResult, Ctx};
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
    let what = format!("read {}", a.input.display());
    // Input from a pipe is not measured up front: a chunk that ends past the image fails
    // in the library with EINVAL (after the chunks before it were written).
    copy_in(&image, a.offset, input, &what, |_| Ok(()), false).await?;
    image.close()?;
    Ok(())
}

/// Reads `input` on a thread, in chunks aligned to the image's objects (so that after the
/// first chunk every object is written whole, without a copy-up), and writes each chunk at
/// its image offset, starting at `off`, while the next chunk is being read.
///
/// `grow` is called with the end of each chunk before it is written (import resizes the
/// image there). With `skip_zeros`, all-zero 4 KiB blocks are not written (for a fresh image,
/// which reads zeros there already). Returns the number of bytes consumed.
pub async fn copy_in(
    image: &Image,
    off: u64,
    input: Box<dyn Read + Send>,
    what: &str,
    mut grow: impl FnMut(u64) -> CmdResult,
    skip_zeros: bool,
) -> CmdResult<u64> {
    let chunk = aligned_chunk(image.header().object_size());
    let first = chunk - off % chunk;
    let mut rx = spawn_reader(input, first, chunk);
    let mut pos = off;
    while let Some(r) = rx.recv().await {
        let data = r.map_err(|e| io_err(e, what))?;
        let len = data.len() as u64;
        grow(pos + len)?;
        if skip_zeros {
            let writes = nonzero_runs(&data, 4096)
                .into_iter()
                .map(|(o, n)| image.write_at(pos + o, &data[o as usize..(o + n) as usize]));
            futures::future::try_join_all(writes).await?;
        } else {
            image.write_at(pos, &data).await?;
        }
        pos += len;
    }
    Ok(pos - off)
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

//! Whole-range transfers between an image and a byte stream: streaming reads with
//! read-ahead ([`read_range`]), chunked writes from a reader that can skip zeros
//! ([`write_from`]), and [`import`] (a new image from a stream, removed again on failure).

use std::io::{self, Read};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::error::{Errno, Error};
use crate::extents::nonzero_runs;
use crate::image::{Image, OpenOptions};
use crate::rados::{create_image, Cluster, CreateOptions};
use crate::spec::ImageSpec;

/// Bytes per `read_at` when streaming: large enough to keep many objects in flight, small
/// enough that a few chunks in memory do not matter.
const CHUNK: u64 = 16 << 20;
/// Chunks read ahead while the previous one is handed out.
const READ_AHEAD: usize = 2;
/// Zero blocks this long or longer are skipped by [`WriteFromOptions::skip_zeros`].
const ZERO_BLOCK: usize = 4096;

/// Reads `[off, off+len)` of the image in object-aligned chunks, a few ahead, and hands each
/// to `sink` in order with its image offset. `sink`'s error type is the caller's, so a sink
/// writing to a file keeps its own I/O errors.
///
/// ```no_run
/// # async fn demo() -> rbd_ext::Result<()> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// use rbd_ext::{Image, OpenOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let image = Image::open(&cluster, &"rbd/vm1".parse()?, OpenOptions::default()).await?;
/// let mut total = 0;
/// rbd_ext::read_range(&image, 0, image.size(), |_offset, data| {
///     total += data.len();
///     Ok::<(), rbd_ext::Error>(())
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn read_range<E: From<Error>>(image: &Image, off: u64, len: u64, mut sink: impl FnMut(u64, Vec<u8>) -> Result<(), E>) -> Result<(), E> {
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

/// The streaming chunk (16 MiB) rounded up to whole objects, so that chunks never split an
/// object after the first one.
pub fn aligned_chunk(object_size: u64) -> u64 {
    CHUNK.div_ceil(object_size).max(1) * object_size
}

/// How [`write_from`] treats the image.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct WriteFromOptions {
    /// Leave all-zero 4 KiB blocks unwritten: for a fresh image, which reads zeros there
    /// already (never for a clone, where they must hide the parent's data).
    pub skip_zeros: bool,
    /// Grow the image to the end of each chunk before writing it (input whose length is not
    /// known up front, e.g. a pipe).
    pub grow: bool,
}

impl WriteFromOptions {
    /// Sets `skip_zeros` (see the field).
    pub fn with_skip_zeros(mut self, skip_zeros: bool) -> Self {
        self.skip_zeros = skip_zeros;
        self
    }

    /// Sets `grow` (see the field).
    pub fn with_grow(mut self, grow: bool) -> Self {
        self.grow = grow;
        self
    }
}

/// A failed transfer: the input stream or the image.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Reading the input failed (the caller knows what the input was).
    #[error("reading the input: {0}")]
    Input(#[source] io::Error),
    /// The image refused.
    #[error(transparent)]
    Image(#[from] Error),
}

impl CopyError {
    /// The errno, for either side.
    pub fn errno(&self) -> Errno {
        match self {
            CopyError::Input(e) => Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            CopyError::Image(e) => e.errno(),
        }
    }
}

/// Reads `input` on a thread, in chunks aligned to the image's objects (so that after the
/// first chunk every object is written whole, without a copy-up), and writes each chunk at
/// its image offset, starting at `off`, while the next chunk is being read. `progress` is
/// called with each chunk's length once written.
///
/// Returns the number of bytes consumed.
///
/// ```no_run
/// # async fn demo() -> Result<(), rbd_ext::CopyError> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// use rbd_ext::{Image, OpenOptions, WriteFromOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let image = Image::open(&cluster, &"rbd/vm1".parse()?, OpenOptions::default().with_write(true)).await?;
/// let input = Box::new(std::fs::File::open("disk.raw").map_err(rbd_ext::CopyError::Input)?);
/// rbd_ext::write_from(&image, 0, input, WriteFromOptions::default(), &|_| {}).await?;
/// image.close_async().await?;
/// # Ok(()) }
/// ```
pub async fn write_from(
    image: &Image,
    off: u64,
    input: Box<dyn Read + Send>,
    how: WriteFromOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, CopyError> {
    let chunk = aligned_chunk(image.header().object_size());
    let first = chunk - off % chunk;
    let mut rx = spawn_reader(input, first, chunk);
    let mut pos = off;
    while let Some(r) = rx.recv().await {
        let data = r.map_err(CopyError::Input)?;
        let len = data.len() as u64;
        if how.grow && pos + len > image.size() {
            image.resize(pos + len).await?;
        }
        if how.skip_zeros {
            // Bounded: a finely fragmented chunk must not put thousands of ops in flight.
            stream::iter(nonzero_runs(&data, ZERO_BLOCK))
                .map(|(o, n)| image.write_at(pos + o, &data[o as usize..(o + n) as usize]))
                .buffer_unordered(16)
                .try_collect::<()>()
                .await?;
        } else {
            image.write_at(pos, &data).await?;
        }
        pos += len;
        progress(len);
    }
    Ok(pos - off)
}

/// Reads until `buf` is full or EOF; returns the bytes read (a pipe delivers short reads).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The reading side of [`write_from`]: chunks of `first`, then `chunk` bytes, until EOF.
/// A bounded channel keeps at most two chunks waiting.
fn spawn_reader(mut input: Box<dyn Read + Send>, first: u64, chunk: u64) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(2);
    std::thread::spawn(move || {
        let mut want = first;
        loop {
            let mut buf = vec![0u8; want as usize];
            let (eof, msg) = match read_full(&mut input, &mut buf) {
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

/// Options of [`import`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Object size exponent (default: the cluster's `rbd_default_order`).
    pub order: Option<u8>,
    /// Feature bits (default: the cluster's `rbd_default_features`).
    pub features: Option<u64>,
}

impl ImportOptions {
    /// Sets `order` (see the field).
    pub fn with_order(mut self, order: u8) -> Self {
        self.order = Some(order);
        self
    }

    /// Sets `features` (see the field).
    pub fn with_features(mut self, features: u64) -> Self {
        self.features = Some(features);
        self
    }
}

/// A failed [`import`]: why, and whether the half-imported image could not be removed.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ImportError {
    /// What failed.
    #[source]
    pub error: CopyError,
    /// Set when removing the partially imported image failed too (it is then left behind).
    pub cleanup: Option<Error>,
}

impl From<Error> for ImportError {
    fn from(e: Error) -> ImportError {
        ImportError { error: CopyError::Image(e), cleanup: None }
    }
}

/// Creates image `spec` (through librbd, so stock tools see a normal image) and fills it from
/// `input`, skipping zero blocks. `len` is the input's length when known (a file); without
/// it (a pipe) the image starts empty and grows chunk by chunk. A failure after the image
/// was created removes it again, as `rbd import` does. `progress` gets each chunk's length.
///
/// ```no_run
/// # async fn demo() -> Result<(), rbd_ext::ImportError> {
/// use rbd_ext::rados::{Cluster, ConnectOptions};
/// let cluster = Cluster::connect(&ConnectOptions::default())?;
/// let f = std::fs::File::open("disk.raw").map_err(|e| rbd_ext::CopyError::Input(e))
///     .map_err(|error| rbd_ext::ImportError { error, cleanup: None })?;
/// let len = f.metadata().ok().map(|m| m.len());
/// let spec = "rbd/golden".parse()?;
/// rbd_ext::import(&cluster, &spec, Box::new(f), len, &rbd_ext::ImportOptions::default(), &|_| {}).await?;
/// # Ok(()) }
/// ```
pub async fn import(
    cluster: &Arc<Cluster>,
    spec: &ImageSpec,
    input: Box<dyn Read + Send>,
    len: Option<u64>,
    opts: &ImportOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, ImportError> {
    if spec.snap.is_some() {
        return Err(Error::new(Errno::EINVAL, format!("import: {spec}: a new image name cannot name a snapshot")).into());
    }
    let create = CreateOptions { order: opts.order, features: opts.features, ..Default::default() };
    let (c, s) = (cluster.clone(), spec.clone());
    crate::task::offload(move || {
        let md = crate::header::md_ioctx(&c, &s)?;
        create_image(&md, &s.image, len.unwrap_or(0), &create).map_err(|e| {
            if e.is_exists() {
                Error::new(Errno::EEXIST, format!("import: image {s} already exists"))
            } else {
                e.context(format_args!("import: image {s}"))
            }
        })
    })
    .await?;
    let result: Result<u64, CopyError> = async {
        let image = Image::open(cluster, spec, OpenOptions::default().with_write(true)).await?;
        // The image is new: it reads zeros wherever nothing is written.
        let how = WriteFromOptions { skip_zeros: true, grow: len.is_none() };
        let n = write_from(&image, 0, input, how, progress).await?;
        image.close_async().await?;
        Ok(n)
    }
    .await;
    match result {
        Ok(n) => Ok(n),
        // As `rbd import`: no half-imported image is left behind.
        Err(error) => Err(ImportError { error, cleanup: crate::manage::remove(cluster, spec).await.err() }),
    }
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

    #[test]
    fn short_reads_fill_the_buffer() {
        // A reader that hands out 3 bytes at a time, as a pipe may.
        struct Trickle(Vec<u8>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let mut r = Trickle((0..10).collect());
        let mut buf = [0u8; 8];
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 8);
        assert_eq!(buf, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 2);
    }
}

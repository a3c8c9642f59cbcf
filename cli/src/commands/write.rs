//! `write IMAGE --offset N [--input FILE|-]`: bytes from a file or stdin into an image,
//! copy-on-write where a clone still inherits.

use rbd_ext::{CopyError, Errno, Image, OpenOptions, WriteFromOptions};

use super::{io_err, is_dash, msg, open_input, CmdResult, Ctx};
use crate::cli::WriteArgs;

/// Writes the input at the offset; nothing is printed on success.
pub async fn run(ctx: &Ctx, a: WriteArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let (input, input_len) = open_input(&a.input)?;
    let image = Image::open(&ctx.cluster, &spec, OpenOptions::default().with_write(true)).await?;
    let size = image.size();
    // A file's length is known: refuse before writing anything rather than half-way.
    if let Some(n) = input_len {
        if a.offset.checked_add(n).is_none_or(|end| end > size) {
            return Err(msg(format!("write {spec}: {} bytes at offset {} go beyond the image size {size} (resize it first): {}", n, a.offset, Errno::EINVAL)));
        }
    }
    let what = if is_dash(&a.input) { "read stdin".to_string() } else { format!("read {}", a.input.display()) };
    // Input from a pipe is not measured up front: a chunk that ends past the image fails
    // in the library with EINVAL (after the chunks before it were written).
    rbd_ext::write_from(&image, a.offset, input, WriteFromOptions::default(), &|_| {}).await.map_err(|e| copy_err(e, &what))?;
    image.close_async().await?;
    Ok(())
}

/// The CLI's wording of a failed transfer: input errors name the input ("read stdin").
pub fn copy_err(e: CopyError, what: &str) -> Box<dyn std::error::Error + Send + Sync> {
    match e {
        CopyError::Input(io) => io_err(io, what),
        CopyError::Image(e) => e.into(),
    }
}

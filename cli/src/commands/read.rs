//! `read IMAGE --offset N --length N [--output FILE|-]`: a byte range through the clone
//! (child data, else the parent's, else zeros) to a file or stdout.

use std::io::{self, Write};

use rbd_ext::{read_range, Image, OpenOptions};

use super::output::{Existing, OutputFile};
use super::{io_err, is_dash, CmdResult, Ctx};
use crate::cli::ReadArgs;

/// Copies the range to the output.
pub async fn run(ctx: &Ctx, a: ReadArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let image = Image::open(&ctx.cluster, &spec, OpenOptions::default()).await?;
    // Check the range before creating an output file for it.
    let size = image.size();
    if a.offset.checked_add(a.length).is_none_or(|end| end > size) {
        return Err(super::msg(format!("read {spec}: range {}+{} is beyond the image size {size}: {}", a.offset, a.length, rbd_ext::Errno::EINVAL)));
    }
    if is_dash(&a.output) {
        let mut out = io::stdout().lock();
        read_range(&image, a.offset, a.length, |_, data| out.write_all(&data).map_err(|e| io_err(e, "write to stdout"))).await?;
        return out.flush().map_err(|e| io_err(e, "write to stdout"));
    }
    // The file appears only when the whole range was read (a failed read leaves none).
    let what = format!("write to {}", a.output.display());
    let out = OutputFile::create(&a.output, Existing::Replace)?;
    let mut file = out.file();
    read_range(&image, a.offset, a.length, |_, data| file.write_all(&data).map_err(|e| io_err(e, &what))).await?;
    out.commit()
}

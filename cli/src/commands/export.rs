//! `export IMAGE FILE|-`: the whole logical image (as any client reads it) to a file or
//! stdout, as `rbd export`.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use rbd_ext::extents::nonzero_runs;
use rbd_ext::{read_range, Image, OpenOptions};

use super::output::{Existing, OutputFile};
use super::{io_err, is_dash, progress, progress_done, CmdResult, Ctx};
use crate::cli::ExportArgs;

/// Zero runs shorter than this are written out; longer ones become holes in a file output
/// (rbd export's default `--sparse-size`).
const SPARSE_SIZE: usize = 4096;

const LABEL: &str = "Exporting image";

/// Streams the image out in order; a file output is sparse where the image reads zeros.
pub async fn run(ctx: &Ctx, a: ExportArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let image = Image::open(&ctx.cluster, &spec, OpenOptions::default()).await?;
    let size = image.size();
    let bar = progress(LABEL, size);
    if is_dash(&a.path) {
        let mut out = io::stdout().lock();
        read_range(&image, 0, size, |_, data| {
            out.write_all(&data).map_err(|e| io_err(e, "write to stdout"))?;
            bar.inc(data.len() as u64);
            CmdResult::Ok(())
        })
        .await?;
        out.flush().map_err(|e| io_err(e, "write to stdout"))?;
    } else {
        let name = a.path.display().to_string();
        // As `rbd export`: never overwrite an existing file. The file appears only once the
        // whole image is in it (a failed export leaves none).
        let out = OutputFile::create(&a.path, Existing::Refuse)?;
        let file = out.file();
        read_range(&image, 0, size, |at, data| {
            for (off, len) in nonzero_runs(&data, SPARSE_SIZE) {
                file.write_all_at(&data[off as usize..(off + len) as usize], at + off).map_err(|e| io_err(e, format_args!("write to {name}")))?;
            }
            bar.inc(data.len() as u64);
            CmdResult::Ok(())
        })
        .await?;
        // Holes at the end still count towards the length.
        file.set_len(size).map_err(|e| io_err(e, format_args!("write to {name}")))?;
        out.commit()?;
    }
    progress_done(&bar, LABEL);
    Ok(())
}

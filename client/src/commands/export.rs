//! `export IMAGE FILE|-`: the whole logical image (as any client reads it) to a file or
//! stdout, as `rbd export`.

use std::fs::OpenOptions as FileOptions;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use rbd_ext::extents::nonzero_runs;
use rbd_ext::{Image, OpenOptions};

use super::read::copy_range;
use super::{io_err, is_dash, progress, progress_done, CmdResult, Ctx};
use crate::cli::ExportArgs;

/// Zero runs shorter than this are written out; longer ones become holes in a file output
/// (rbd export's default `--sparse-size`).
const SPARSE_SIZE: usize = 4096;

const LABEL: &str = "Exporting image";

/// Streams the image out in order; a file output is sparse where the image reads zeros.
pub async fn run(ctx: &Ctx, a: ExportArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let image = Image::open(&ctx.cluster, &spec, OpenOptions::default())?;
    let size = image.size();
    let bar = progress(LABEL, size);
    if is_dash(&a.path) {
        let mut out = io::stdout().lock();
        copy_range(&image, 0, size, |_, data| {
            out.write_all(&data).map_err(|e| io_err(e, "write to stdout"))?;
            bar.inc(data.len() as u64);
            Ok(())
        })
        .await?;
        out.flush().map_err(|e| io_err(e, "write to stdout"))?;
    } else {
        let name = a.path.display().to_string();
        // As `rbd export`: never overwrite an existing file.
        let file = FileOptions::new().write(true).create_new(true).open(&a.path).map_err(|e| io_err(e, format_args!("create {name}")))?;
        let result = copy_range(&image, 0, size, |at, data| {
            for (off, len) in nonzero_runs(&data, SPARSE_SIZE) {
                file.write_all_at(&data[off as usize..(off + len) as usize], at + off).map_err(|e| io_err(e, format_args!("write to {name}")))?;
            }
            bar.inc(data.len() as u64);
            Ok(())
        })
        .await;
        // Holes at the end still count towards the length.
        let result = result.and_then(|()| file.set_len(size).map_err(|e| io_err(e, format_args!("write to {name}"))));
        let result = result.and_then(|()| file.sync_all().map_err(|e| io_err(e, format_args!("sync {name}"))));
        if let Err(e) = result {
            // Leave no half-written file that looks like an export.
            let _ = std::fs::remove_file(&a.path);
            return Err(e);
        }
    }
    progress_done(&bar, LABEL);
    Ok(())
}

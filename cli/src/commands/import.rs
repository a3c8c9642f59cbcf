//! `import FILE|- IMAGE`: create an image from a file or stdin, as `rbd import`.

use indicatif::ProgressBar;

use rbd_ext::rados::{create_image, CreateOptions};
use rbd_ext::{Errno, Image, OpenOptions};

use super::write::{copy_in, CopyIn};
use super::{feature_bits, is_dash, msg, note, open_input, progress, progress_done, CmdResult, Ctx};
use crate::cli::ImportArgs;

const LABEL: &str = "Importing image";

/// Creates the image (through librbd, so stock tools see a normal image) with the input's
/// size, then writes the non-zero blocks; a failure removes the half-imported image.
pub async fn run(ctx: &Ctx, a: ImportArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    if spec.snap.is_some() {
        return Err(msg(format!("import: {spec}: a new image name cannot name a snapshot: {}", Errno::EINVAL)));
    }
    let features = feature_bits(&a.image_feature)?;
    let (input, len) = open_input(&a.path)?;
    let md = rbd_ext::header::md_ioctx(&ctx.cluster, &spec)?;
    // From a pipe the size is unknown: start empty and grow chunk by chunk.
    let opts = CreateOptions { order: a.order, features, ..Default::default() };
    create_image(&md, &spec.image, len.unwrap_or(0), &opts).map_err(|e| {
        if e.is_exists() {
            msg(format!("import: image {spec} already exists: {}", Errno::EEXIST))
        } else {
            e.context(format_args!("import: image {spec}")).into()
        }
    })?;
    let what = if is_dash(&a.path) { "read stdin".to_string() } else { format!("read {}", a.path.display()) };
    let bar = match len {
        Some(n) => progress(LABEL, n),
        None => ProgressBar::hidden(),
    };
    let result: CmdResult = async {
        let image = Image::open(&ctx.cluster, &spec, OpenOptions { write: true, ..Default::default() })?;
        // The image is new: it reads zeros wherever nothing is written.
        copy_in(&image, 0, input, &what, CopyIn { skip_zeros: true, grow: len.is_none() }, &bar).await?;
        image.close()?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        bar.abandon();
        // As `rbd import`: no half-imported image is left behind.
        if let Err(re) = rbd_ext::remove(&ctx.cluster, &spec) {
            note(&format!("could not remove the partially imported image {spec}: {re}"));
        }
        return Err(e);
    }
    progress_done(&bar, LABEL);
    Ok(())
}

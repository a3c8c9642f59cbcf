//! `import FILE|- IMAGE`: create an image from a file or stdin, as `rbd import`.

use indicatif::ProgressBar;

use rbd_ext::ImportOptions;

use super::write::copy_err;
use super::{feature_bits, is_dash, note, open_input, progress, progress_done, CmdResult, Ctx};
use crate::cli::ImportArgs;

const LABEL: &str = "Importing image";

/// Creates the image with the input's size and writes its non-zero blocks (the library
/// removes a half-imported image again on failure).
pub async fn run(ctx: &Ctx, a: ImportArgs) -> CmdResult {
    let spec = ctx.spec(&a.image)?;
    let mut opts = ImportOptions::default();
    (opts.order, opts.features) = (a.order, feature_bits(&a.image_feature)?);
    let (input, len) = open_input(&a.path)?;
    let what = if is_dash(&a.path) { "read stdin".to_string() } else { format!("read {}", a.path.display()) };
    let bar = match len {
        Some(n) => progress(LABEL, n),
        None => ProgressBar::hidden(),
    };
    if let Err(e) = rbd_ext::import(&ctx.cluster, &spec, input, len, &opts, &|n| bar.inc(n)).await {
        bar.abandon();
        if let Some(re) = e.cleanup {
            note(&format!("could not remove the partially imported image {spec}: {re}"));
        }
        return Err(copy_err(e.error, &what));
    }
    progress_done(&bar, LABEL);
    Ok(())
}

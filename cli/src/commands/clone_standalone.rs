//! `clone-standalone PARENT CHILD`: a copy-on-write clone of an image's HEAD, in this
//! cluster or (with `--remote-cluster-conf`) in another one.

use super::{feature_bits, CmdResult, Ctx};
use crate::cli::CloneArgs;

/// Creates the clone; prints nothing on success, as `rbd clone`.
pub async fn run(ctx: &Ctx, a: CloneArgs) -> CmdResult {
    let parent = ctx.spec(&a.parent)?;
    let child = ctx.spec(&a.child)?;
    let remote = a.remote_cluster_conf.map(|conf| {
        let mut r = rbd_ext::RemoteOptions::new(conf);
        (r.keyring, r.secret_ref, r.client_name, r.cluster_name) = (a.remote_keyring, a.remote_key_ref, a.remote_client_name, a.remote_cluster_name);
        r
    });
    if remote.is_none() {
        // An S3-backed parent whose settings do not work would give a child that fails at
        // its first read: refuse it now.
        rbd_ext::s3_parent::check_s3_parent(&ctx.cluster, &parent).await?;
    }
    let mut opts = rbd_ext::CloneOptions::default().with_force(a.force);
    (opts.features, opts.remote) = (feature_bits(&a.image_feature)?, remote);
    rbd_ext::clone_standalone(&ctx.cluster, &parent, &child, &opts).await?;
    Ok(())
}

//! `clone-standalone PARENT CHILD`: a copy-on-write clone of an image's HEAD, in this
//! cluster or (with `--remote-cluster-conf`) in another one.

use super::{feature_bits, CmdResult, Ctx};
use crate::cli::CloneArgs;

/// Creates the clone; prints nothing on success, as `rbd clone`.
pub async fn run(ctx: &Ctx, a: CloneArgs) -> CmdResult {
    let parent = ctx.spec(&a.parent)?;
    let child = ctx.spec(&a.child)?;
    let remote = a.remote_cluster_conf.map(|conf| rbd_ext::RemoteOptions {
        conf,
        keyring: a.remote_keyring,
        secret_ref: a.remote_key_ref,
        client_name: a.remote_client_name,
        cluster_name: a.remote_cluster_name,
    });
    if remote.is_none() {
        // An S3-backed parent whose settings do not work would give a child that fails at
        // its first read: refuse it now.
        rbd_ext::s3_parent::check_s3_parent(&ctx.cluster, &parent).await?;
    }
    let opts = rbd_ext::CloneOptions { features: feature_bits(&a.image_feature)?, force: a.force, remote };
    rbd_ext::clone_standalone(&ctx.cluster, &parent, &child, &opts)?;
    Ok(())
}

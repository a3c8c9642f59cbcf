//! Parent protection (README, "Parent protection"; [`crate::types::ProtectionMode`] says
//! what each mode lets stock tools do): applied, switched and lifted inside the calls that
//! change a parent's children, hence in the same OSD transaction, plus `protection_set`.
//!
//! - The first `child_attach` records the parent's prior bits and the mode
//!   ([`ParentProtection`], key `rbd_ext_protect`) and applies [`ProtectionMode::DEFAULT`]
//!   (clones), or strict when the parent carries a migration of its own (the clones mode
//!   needs the `migration` key and MIGRATING bit for itself).
//! - Every later `child_attach` / `child_detach` re-applies the recorded mode (bits
//!   someone cleared are set again) and migrates a record written before modes existed
//!   (v1: strict, not chosen) to the default: lift, then apply, in one transaction.
//! - `protection_set` switches a protected parent to the mode asked for.
//! - The `child_detach` that removes the last child restores the prior bits exactly
//!   ([`ParentProtection::restore`]), deletes our migration header and the record.

use super::header::{read_features, read_key, read_op_features, write_features};
use super::{cls_log, decode_input};
use crate::ops::ProtectionSetOp;
use crate::types::features::RBD_FEATURE_MIGRATING;
use crate::types::{header, migration_header, ParentProtection, ProtectionMode};
use crate::{ClsContext, Codec, Errno};

/// What protection decisions read from a parent header.
pub(crate) struct Protection {
    pub(crate) features: u64,
    pub(crate) op_features: u64,
    pub(crate) record: Option<ParentProtection>,
    migration: Option<Vec<u8>>,
}

impl Protection {
    /// Loads the parent's `features` (-ENOEXEC when absent), `op_features`, record and
    /// `migration` key (-EIO when one does not decode).
    pub(crate) fn load(ctx: &mut dyn ClsContext, method: &str) -> Result<Protection, Errno> {
        let features = read_features(ctx, method)?;
        let op_features = read_op_features(ctx)?;
        let record = read_key::<ParentProtection>(ctx, header::RBD_EXT_PROTECT)?;
        let migration = ctx.omap_get_opt(header::MIGRATION)?;
        Ok(Protection { features, op_features, record, migration })
    }

    /// Whether the header holds a migration that is not our clones protection.
    fn foreign_migration(&self) -> bool {
        let ours = self.record.is_some_and(|p| p.applied() == ProtectionMode::Clones);
        !ours && (self.features & RBD_FEATURE_MIGRATING != 0 || self.migration.is_some())
    }

    /// The mode to apply when nobody asks for one: the recorded choice, else the default,
    /// falling back to strict over a migration of the image's own.
    fn wanted(&self, ctx: &mut dyn ClsContext) -> ProtectionMode {
        let m = self.record.and_then(|p| p.mode).unwrap_or(ProtectionMode::DEFAULT);
        if m == ProtectionMode::Clones && self.foreign_migration() {
            cls_log!(ctx, 5, "parent protection: the image has a migration header of its own; using the strict protection");
            return ProtectionMode::Strict;
        }
        m
    }

    /// Protects the parent with `mode` (or the wanted one), switching from the applied one
    /// if needed; a no-op when the header already is as it should be.
    pub(crate) fn ensure(&self, ctx: &mut dyn ClsContext, mode: Option<ProtectionMode>) -> Result<(), Errno> {
        let mode = match mode {
            Some(m) => m,
            None => self.wanted(ctx),
        };
        let cur = (self.features, self.op_features);
        let (record, base) = match self.record {
            None => {
                cls_log!(ctx, 20, "protecting parent ({}; features={:#x} op_features={:#x})", mode.name(), cur.0, cur.1);
                (ParentProtection::before(cur.0, cur.1, mode), cur)
            }
            Some(p) if p.mode == Some(mode) => (p, cur),
            Some(p) => {
                cls_log!(ctx, 5, "parent protection: switching from {} to {}", p.applied().name(), mode.name());
                (ParentProtection { mode: Some(mode), ..p }, p.restore(cur.0, cur.1))
            }
        };
        if self.record != Some(record) {
            ctx.omap_set_one(header::RBD_EXT_PROTECT, &record.get_encoding())?;
        }
        let ours = migration_header();
        match mode {
            ProtectionMode::Clones if self.migration.as_deref() != Some(&ours[..]) => ctx.omap_set_one(header::MIGRATION, &ours)?,
            ProtectionMode::Strict if self.record.is_some_and(|p| p.applied() == ProtectionMode::Clones) => ctx.omap_remove(header::MIGRATION)?,
            _ => {}
        }
        write_features(ctx, cur, mode.apply(base.0, base.1))
    }

    /// Lifts the protection (the last child is gone): prior bits back, our migration
    /// header and the record deleted. Without a record the features are left as they are.
    pub(crate) fn lift(&self, ctx: &mut dyn ClsContext) -> Result<(), Errno> {
        let Some(p) = self.record else {
            cls_log!(ctx, 20, "child_detach: last child gone; no protection record, features left as they are");
            return Ok(());
        };
        let old = (self.features, self.op_features);
        let new = p.restore(old.0, old.1);
        cls_log!(
            ctx,
            20,
            "child_detach: last child gone; unprotecting parent ({}; features {:#x} -> {:#x}, op_features {:#x} -> {:#x})",
            p.applied().name(),
            old.0,
            new.0,
            old.1,
            new.1
        );
        if p.applied() == ProtectionMode::Clones {
            ctx.omap_remove(header::MIGRATION)?;
        }
        ctx.omap_remove(header::RBD_EXT_PROTECT)?;
        write_features(ctx, old, new)
    }
}

/// `protection_set` (RD|WR, on a parent's header). Input: [`ProtectionSetOp`]. Output:
/// none. Switches a protected parent to the mode asked for, atomically; asking for the
/// mode it has re-applies it.
///
/// Returns, in this order:
/// - -EINVAL if the input does not decode (or names no known mode);
/// - -ENOENT if the header object does not exist, or the image is not protected (it has
///   no standalone children: protection comes with the first one);
/// - -ENOEXEC if it has no `features` key (not an RBD image header);
/// - -EIO if `features`, `op_features` or the record does not decode;
/// - -EBUSY for clones on an image that has a migration header of its own;
/// - -errno on storage failure.
pub(crate) fn protection_set(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "protection_set", ProtectionSetOp::read_bytes(input))?;
    cls_log!(ctx, 20, "protection_set mode={}", op.mode.name());
    ctx.check_exists()?;
    let p = Protection::load(ctx, "protection_set")?;
    if p.record.is_none() {
        cls_log!(ctx, 10, "protection_set: the image is not protected (no standalone children)");
        return Err(Errno::ENOENT);
    }
    if op.mode == ProtectionMode::Clones && p.foreign_migration() {
        cls_log!(ctx, 1, "protection_set: the image has a migration header of its own; only strict can apply");
        return Err(Errno::EBUSY);
    }
    p.ensure(ctx, Some(op.mode))
}

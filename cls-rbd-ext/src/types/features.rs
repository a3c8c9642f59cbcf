//! Image feature bits (`features` header key) and operation-feature bits (`op_features`
//! key), as in Pacific's `include/rbd/features.h`, plus the op-feature bit rbd-ext reserves
//! to protect parents of standalone clones.

/// Copy-on-write cloning (`layering`).
pub const RBD_FEATURE_LAYERING: u64 = 1 << 0;
/// Fancy striping (`striping`, STRIPINGV2).
pub const RBD_FEATURE_STRIPINGV2: u64 = 1 << 1;
/// Exclusive lock (`exclusive-lock`).
pub const RBD_FEATURE_EXCLUSIVE_LOCK: u64 = 1 << 2;
/// Object map (`object-map`).
pub const RBD_FEATURE_OBJECT_MAP: u64 = 1 << 3;
/// Fast diff (`fast-diff`).
pub const RBD_FEATURE_FAST_DIFF: u64 = 1 << 4;
/// Deep flatten (`deep-flatten`).
pub const RBD_FEATURE_DEEP_FLATTEN: u64 = 1 << 5;
/// Journaling (`journaling`).
pub const RBD_FEATURE_JOURNALING: u64 = 1 << 6;
/// Separate data pool (`data-pool`).
pub const RBD_FEATURE_DATA_POOL: u64 = 1 << 7;
/// Internal: the image has operation features (`op_features` key) that clients must know
/// before running image operations.
pub const RBD_FEATURE_OPERATIONS: u64 = 1 << 8;
/// Internal: the image is being migrated.
pub const RBD_FEATURE_MIGRATING: u64 = 1 << 9;
/// The image is not primary: stock librbd refuses data writes to it (EROFS).
pub const RBD_FEATURE_NON_PRIMARY: u64 = 1 << 10;
/// Persistent write-back cache state (`dirty-cache`).
pub const RBD_FEATURE_DIRTY_CACHE: u64 = 1 << 11;
/// Every feature bit Pacific knows.
pub const RBD_FEATURES_ALL: u64 = 0xFFF;

/// Op feature: the image has clone-v2 children (set by stock `child_attach`).
pub const RBD_OPERATION_FEATURE_CLONE_PARENT: u64 = 1 << 0;
/// Op feature: the image is a clone-v2 child.
pub const RBD_OPERATION_FEATURE_CLONE_CHILD: u64 = 1 << 1;
/// Op feature: the image belongs to a group.
pub const RBD_OPERATION_FEATURE_GROUP: u64 = 1 << 2;
/// Op feature: the image has snapshots in the trash namespace.
pub const RBD_OPERATION_FEATURE_SNAP_TRASH: u64 = 1 << 3;
/// Every op feature Pacific knows.
pub const RBD_OPERATION_FEATURES_ALL: u64 = 0xF;

/// Op feature reserved by rbd-ext: the image is the parent of standalone clones. Stock
/// librbd does not know it, so it refuses `rm`, `resize`, `snap create` and other image
/// operations (EROFS, "unsupported op features") while reads keep working.
pub const OP_FEATURE_RBD_EXT_PROTECTED: u64 = 1 << 20;

/// The feature bits the **strict** protection (`ProtectionMode::Strict`, rbd-ext's only one
/// before issue 16) sets on a parent: OPERATIONS (so stock reads `op_features` and meets
/// [`OP_FEATURE_RBD_EXT_PROTECTED`]) and NON_PRIMARY (so stock refuses data writes). Stock
/// clones from the parent's snapshots are refused too.
pub const PARENT_PROTECTION_FEATURES: u64 = RBD_FEATURE_OPERATIONS | RBD_FEATURE_NON_PRIMARY;

/// The feature bit the **clones** protection (`ProtectionMode::Clones`, the default) sets on
/// a parent, with a migration-source header beside it: stock librbd then refuses every
/// read-write open (EROFS) while read-only opens, hence reads, export and stock clones from
/// existing snapshots, keep working (README, "Parent protection").
pub const CLONES_PROTECTION_FEATURES: u64 = RBD_FEATURE_MIGRATING;

/// Every feature bit either protection may set.
pub const ANY_PROTECTION_FEATURES: u64 = PARENT_PROTECTION_FEATURES | CLONES_PROTECTION_FEATURES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_pacific_headers() {
        // ceph-wire-facts.md §4.4
        assert_eq!(RBD_FEATURE_OPERATIONS, 0x100);
        assert_eq!(RBD_FEATURE_NON_PRIMARY, 0x400);
        assert_eq!(RBD_FEATURE_DIRTY_CACHE, 0x800);
        assert_eq!(RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN, 0x3d);
        assert_eq!(OP_FEATURE_RBD_EXT_PROTECTED & RBD_OPERATION_FEATURES_ALL, 0);
        assert_eq!(PARENT_PROTECTION_FEATURES & !RBD_FEATURES_ALL, 0);
        // Literal bits: these are on disk in protected parents.
        assert_eq!(PARENT_PROTECTION_FEATURES, 0x500);
        assert_eq!(CLONES_PROTECTION_FEATURES, 0x200);
        assert_eq!(OP_FEATURE_RBD_EXT_PROTECTED, 0x100000);
    }

    #[test]
    fn parent_protection_bits_are_pinned() {
        // Literal values, not the constants again: a child's protection is on disk in
        // existing parents, so changing these bits is a format change (and stock's reaction
        // to them is what protects the parent).
        assert_eq!(PARENT_PROTECTION_FEATURES, 0x100 | 0x400, "OPERATIONS | NON_PRIMARY");
        assert_eq!(OP_FEATURE_RBD_EXT_PROTECTED, 0x10_0000, "op-feature bit 20");
    }
}

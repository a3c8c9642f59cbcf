//! Omap key names of an image header object (`rbd_header.<id>`), in one place, and the
//! naming rules upstream applies to ids. Values carry no outer envelope unless their type has
//! one (ceph-wire-facts.md §4.2).

/// `size` (u64): image size in bytes.
pub const SIZE: &str = "size";
/// `order` (u8): object size is `1 << order`.
pub const ORDER: &str = "order";
/// `features` (u64): [`crate::types::features`] bits. Its absence means "not an RBD header".
pub const FEATURES: &str = "features";
/// `object_prefix` (string): data object name prefix.
pub const OBJECT_PREFIX: &str = "object_prefix";
/// `snap_seq` (u64).
pub const SNAP_SEQ: &str = "snap_seq";
/// `op_features` (u64): operation features; absent means 0.
pub const OP_FEATURES: &str = "op_features";
/// `parent` ([`crate::types::ParentRecord`]): the clone's parent.
pub const PARENT: &str = "parent";
/// `migration` (MigrationSpec): stock's migration header; rbd-ext writes a source-type one
/// on parents under the clones protection ([`crate::types::ParentProtection`]).
pub const MIGRATION: &str = "migration";
/// `snap_limit` (u64): stock's snapshot limit. On a standalone child rbd-ext holds it at 1
/// (the *snapshot guard*, methods/snapshot.rs) while the child has its guard snapshot, so
/// stock `snapshot_add` fails with -EDQUOT instead of making a snapshot that would read
/// zeros where the child inherits data.
pub const SNAP_LIMIT: &str = "snap_limit";
/// Present while rbd-ext holds `snap_limit` at 1: the user's own limit (u64, `u64::MAX` for
/// none), which `rbd_ext.snapshot_add` obeys and lifting the guard gives back.
pub const RBD_EXT_SNAP_LIMIT: &str = "rbd_ext_snap_limit";
/// The id (u64) of the child's guard snapshot: a snapshot in the trash namespace, of size 0
/// and reading no parent (it reads nothing at all), that makes `snap_limit = 1` refuse
/// every stock snapshot. rbd-ext gives it id 0 ([`SNAP_GUARD_ID`]).
pub const RBD_EXT_SNAP_GUARD: &str = "rbd_ext_snap_guard";
/// The guard snapshot's id: 0, which no pool ever allocates. It sorts below every real
/// snapshot, so the snapshot context stays valid, and it is never newer than an object's
/// snapset, so the OSD never clones an object for it: the guard costs no space, also when
/// librbd copies objects up (with a real id the OSD would clone each copied-up object).
pub const SNAP_GUARD_ID: u64 = 0;
/// The trash-namespace name the guard snapshot was "created" under.
pub const SNAP_GUARD_NAME: &str = "rbd-ext-snapshot-guard";
/// `flags` (u64): image flags, copied into each new snapshot record.
pub const FLAGS: &str = "flags";
/// Prefix of the snapshot records (`snapshot_<16 hex>`).
pub const SNAPSHOT_PREFIX: &str = "snapshot_";
/// Key of rbd-ext's own bookkeeping on a protected parent
/// ([`crate::types::ParentProtection`]).
pub const RBD_EXT_PROTECT: &str = "rbd_ext_protect";
/// Prefix of the keys holding HEAD children that live in other clusters:
/// `rbd_ext_remote_children_<cluster fsid>`, each a `ChildImageSpecs` set like
/// `snap_children_000000000000head`.
pub const RBD_EXT_REMOTE_CHILDREN_PREFIX: &str = "rbd_ext_remote_children_";

/// Upstream `is_valid_id`: non-empty and every byte ASCII alphanumeric.
pub fn is_valid_image_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `ns` can name a RADOS namespace here: no NUL and no `/` (the separator of
/// `pool/namespace/image` specs). Empty is the default namespace.
pub fn is_valid_namespace(ns: &str) -> bool {
    !ns.contains(['\0', '/'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_namespaces() {
        assert!(is_valid_image_id("10226b8b4567"));
        assert!(!is_valid_image_id(""));
        assert!(!is_valid_image_id("ab-c"));
        assert!(!is_valid_image_id("abé"));
        assert!(is_valid_namespace(""));
        assert!(is_valid_namespace("ns-1"));
        assert!(!is_valid_namespace("a/b"));
        assert!(!is_valid_namespace("a\0"));
    }
}

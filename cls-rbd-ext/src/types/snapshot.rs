//! Upstream `cls_rbd_snap`, the snapshot record under `snapshot_<16 hex id>` of an image
//! header, and its `SnapshotNamespace` (ceph-wire-facts.md §2.3).
//!
//! rbd-ext writes these records itself (`rbd_ext.snapshot_add`, `snapshot_parent_set`) so
//! that a snapshot of a standalone child carries the parent overlap that stock
//! `snapshot_add` leaves out (stock only keeps it when `cls_rbd_parent::exists()`, which is
//! false for a HEAD parent). Only the Nautilus-and-later form is read and written: envelope
//! v8/compat 8, without the legacy inline parent; fields of a newer `struct_v` after
//! `parent_overlap` are kept as they are.

use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader, SnapId, UTime};

/// `SnapshotNamespaceType` values stock `snapshot_add` accepts (others decode as
/// "Unknown", which it refuses).
pub mod snap_namespace {
    /// `UserSnapshotNamespace`: `rbd snap create`.
    pub const USER: u32 = 0;
    /// `GroupSnapshotNamespace`.
    pub const GROUP: u32 = 1;
    /// `TrashSnapshotNamespace`.
    pub const TRASH: u32 = 2;
    /// `MirrorSnapshotNamespace`.
    pub const MIRROR: u32 = 3;
}

/// A `SnapshotNamespace`, kept as its whole encoding (envelope v1/compat 1, u32 type, then
/// the type's body): stock compares namespaces field by field, and equal encodings are equal
/// namespaces, so rbd-ext never needs the bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNamespace {
    /// Its type ([`snap_namespace`]).
    pub kind: u32,
    /// The whole encoding, envelope included.
    pub encoded: Vec<u8>,
}

impl SnapshotNamespace {
    /// The user namespace (`rbd snap create`).
    pub fn user() -> Self {
        let mut encoded = Vec::new();
        encode_envelope(&mut encoded, 1, 1, |o| snap_namespace::USER.encode(o));
        SnapshotNamespace { kind: snap_namespace::USER, encoded }
    }
}

impl Default for SnapshotNamespace {
    fn default() -> Self {
        SnapshotNamespace::user()
    }
}

impl Codec for SnapshotNamespace {
    const MIN_SIZE: usize = 10;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encoded);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut start = r.clone();
        let mut env = read_envelope(r, "SnapshotNamespace", 1)?;
        let kind = u32::read(&mut env.body)?;
        let encoded = start.take(r.used() - start.used())?.to_vec();
        Ok(SnapshotNamespace { kind, encoded })
    }
}

/// `cls_rbd_snap`, Nautilus-and-later form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotRecord {
    /// Snapshot id.
    pub id: SnapId,
    /// Name (unique within its namespace).
    pub name: String,
    /// Image size at snapshot time.
    pub image_size: u64,
    /// 0 unprotected, 1 unprotecting, 2 protected.
    pub protection_status: u8,
    /// The image's `flags` at snapshot time.
    pub flags: u64,
    /// Namespace.
    pub namespace: SnapshotNamespace,
    /// Creation time.
    pub timestamp: UTime,
    /// Clone-v2 children of this snapshot.
    pub child_count: u32,
    /// The parent overlap this snapshot reads through (`None`: it reads no parent).
    pub parent_overlap: Option<u64>,
    /// `struct_v` as read (8 when made here); a newer one's trailing fields are in `tail`.
    pub version: u8,
    /// Fields after `parent_overlap` of a newer `struct_v`, written back unchanged.
    pub tail: Vec<u8>,
}

/// The omap key of snapshot `id`'s record (`snapshot_%016llx`).
pub fn snapshot_key(id: SnapId) -> String {
    format!("snapshot_{:016x}", id.0)
}

impl Codec for SnapshotRecord {
    const MIN_SIZE: usize = 6 + 8 + 4 + 8 + 1 + 8 + 10 + 8 + 4 + 1;

    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, self.version.max(8), 8, |o| {
            self.id.encode(o);
            self.name.encode(o);
            self.image_size.encode(o);
            self.protection_status.encode(o);
            self.flags.encode(o);
            self.namespace.encode(o);
            self.timestamp.encode(o);
            self.child_count.encode(o);
            self.parent_overlap.encode(o);
            o.extend_from_slice(&self.tail);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "cls_rbd_snap", 8)?;
        if env.compat < 8 || env.version < 8 {
            // The pre-Nautilus form (inline legacy parent): never written by a Nautilus or
            // later OSD, and not something rbd-ext rewrites.
            return Err(DecodeError::Invalid("cls_rbd_snap: pre-Nautilus form with an inline parent"));
        }
        let b = &mut env.body;
        Ok(SnapshotRecord {
            id: SnapId::read(b)?,
            name: String::read(b)?,
            image_size: u64::read(b)?,
            protection_status: u8::read(b)?,
            flags: u64::read(b)?,
            namespace: SnapshotNamespace::read(b)?,
            timestamp: UTime::read(b)?,
            child_count: u32::read(b)?,
            parent_overlap: Option::<u64>::read(b)?,
            version: env.version,
            tail: b.rest().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SnapshotRecord {
        SnapshotRecord {
            id: SnapId(4),
            name: "s1".into(),
            image_size: 64 << 20,
            flags: 0,
            timestamp: UTime { sec: 1_700_000_000, nsec: 5 },
            version: 8,
            ..Default::default()
        }
    }

    #[test]
    fn stock_bytes_without_overlap() {
        // What stock `snapshot_add` stores for a snapshot of a standalone child (the record
        // the reference reproduced): v8/compat 8, parent_overlap absent (one 00 byte).
        let b = record().get_encoding();
        let body: Vec<u8> = [
            &4u64.to_le_bytes()[..],
            &[2, 0, 0, 0],
            b"s1",
            &(64u64 << 20).to_le_bytes(),
            &[0],
            &0u64.to_le_bytes(),
            &[1, 1, 4, 0, 0, 0, 0, 0, 0, 0],
            &1_700_000_000u32.to_le_bytes(),
            &5u32.to_le_bytes(),
            &0u32.to_le_bytes(),
            &[0],
        ]
        .concat();
        assert_eq!(b[..2], [8, 8]);
        assert_eq!(u32::from_le_bytes(b[2..6].try_into().unwrap()) as usize, body.len());
        assert_eq!(b[6..], body[..]);
        assert_eq!(SnapshotRecord::read_bytes(&b).unwrap(), record());
    }

    #[test]
    fn overlap_and_newer_fields_round_trip() {
        let mut r = record();
        r.parent_overlap = Some(1 << 20);
        let b = r.get_encoding();
        // The overlap replaces the trailing 00 with 01 + le64, the length grows by 8.
        assert_eq!(b[b.len() - 9..], [[1u8].as_slice(), &(1u64 << 20).to_le_bytes()].concat()[..]);
        assert_eq!(SnapshotRecord::read_bytes(&b).unwrap(), r);
        // A v9 writer's extra field survives a rewrite.
        r.version = 9;
        r.tail = vec![7, 7, 7];
        let b = r.get_encoding();
        assert_eq!(b[0], 9);
        assert_eq!(SnapshotRecord::read_bytes(&b).unwrap(), r);
    }

    #[test]
    fn legacy_and_truncated_records_are_refused() {
        let mut b = record().get_encoding();
        b[1] = 1; // compat 1: the legacy form with an inline parent
        assert!(SnapshotRecord::read_bytes(&b).is_err());
        let b = record().get_encoding();
        for n in 0..b.len() {
            assert!(SnapshotRecord::read_bytes(&b[..n]).is_err(), "truncated at {n}");
        }
    }

    #[test]
    fn namespaces_keep_their_bytes() {
        let mut trash = Vec::new();
        encode_envelope(&mut trash, 1, 1, |o| {
            snap_namespace::TRASH.encode(o);
            "old".to_string().encode(o);
            0u32.encode(o);
        });
        let ns = SnapshotNamespace::read_bytes(&trash).unwrap();
        assert_eq!(ns.kind, snap_namespace::TRASH);
        assert_eq!(ns.get_encoding(), trash);
        assert_eq!(SnapshotNamespace::user().get_encoding(), [1, 1, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(snapshot_key(SnapId(0x1f)), "snapshot_000000000000001f");
    }
}

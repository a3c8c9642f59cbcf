//! The `parent` record of a clone's header (upstream `cls_rbd_parent`, extended to v4) and
//! upstream's `ParentImageSpec`.

use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader, SnapId};

/// What a clone's parent is (v3 field `parent_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParentType {
    /// A snapshot of a local image (stock RBD clone).
    Snapshot,
    /// The HEAD of a local image (`snap_id = CEPH_NOSNAP`).
    Standalone,
    /// The HEAD of an image in another Ceph cluster.
    RemoteStandalone,
    /// Carried by an S3-backed parent image: its data is back-filled from S3.
    S3Source,
    /// A value this version does not know; kept so it survives a round trip, rejected by
    /// the methods.
    Unknown(u8),
}

impl ParentType {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            ParentType::Snapshot => 0,
            ParentType::Standalone => 1,
            ParentType::RemoteStandalone => 2,
            ParentType::S3Source => 3,
            ParentType::Unknown(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => ParentType::Snapshot,
            1 => ParentType::Standalone,
            2 => ParentType::RemoteStandalone,
            3 => ParentType::S3Source,
            v => ParentType::Unknown(v),
        }
    }

    /// The `struct_compat` a record of this type is written with: 3 makes stock cls_rbd
    /// (which decodes up to v2) refuse the record, so stock librbd fails to open the image
    /// instead of reading zeros where the data lives in another cluster or in S3.
    pub fn compat(self) -> u8 {
        match self {
            ParentType::Snapshot | ParentType::Standalone => 2,
            _ => 3,
        }
    }

    /// The name shown by `info` and accepted on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ParentType::Snapshot => "snapshot",
            ParentType::Standalone => "standalone",
            ParentType::RemoteStandalone => "remote-standalone",
            ParentType::S3Source => "s3-source",
            ParentType::Unknown(_) => "unknown",
        }
    }
}

/// The value of the header key `parent`.
///
/// Envelope v4. Payload: v1-v2 exactly upstream's `cls_rbd_parent` (pool_id,
/// pool_namespace, image_id, snap_id, optional head_overlap), v3 `parent_type`, v4 the remote
/// cluster fields. Stock decoders (v2) read the first five fields of a compat-2 record and
/// skip the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRecord {
    /// Pool of the parent image; -1 when there is no parent.
    pub pool_id: i64,
    /// RADOS namespace of the parent image.
    pub pool_namespace: String,
    /// Image id of the parent.
    pub image_id: String,
    /// Parent snapshot, or `CEPH_NOSNAP` for a standalone (HEAD) parent.
    pub snap_id: SnapId,
    /// Bytes of the child backed by the parent; `None` when HEAD was detached.
    pub head_overlap: Option<u64>,
    /// What the parent is (v3). Records older than v3 are snapshots unless they point at HEAD.
    pub parent_type: ParentType,
    /// Name of the cluster that holds a remote parent (v4), e.g. `ceph-a`.
    pub remote_cluster_name: String,
    /// Monitor addresses of that cluster (v4).
    pub remote_mon_hosts: Vec<String>,
    /// Client the child connects to it as (v4), e.g. `client.admin`.
    pub remote_client_name: String,
    /// Where its key is kept (v4): a reference such as `config://rbd-ext/remote/ceph-a`,
    /// never the key itself.
    pub remote_secret_ref: String,
}

impl Default for ParentRecord {
    /// "No parent", as upstream's default `cls_rbd_parent`.
    fn default() -> Self {
        ParentRecord {
            pool_id: -1,
            pool_namespace: String::new(),
            image_id: String::new(),
            snap_id: SnapId::NOSNAP,
            head_overlap: None,
            parent_type: ParentType::Snapshot,
            remote_cluster_name: String::new(),
            remote_mon_hosts: Vec::new(),
            remote_client_name: String::new(),
            remote_secret_ref: String::new(),
        }
    }
}

impl ParentRecord {
    /// Highest envelope version written and understood.
    pub const VERSION: u8 = 4;

    /// Whether a parent is set (upstream `exists()` widened to HEAD parents).
    pub fn exists(&self) -> bool {
        self.pool_id >= 0 && !self.image_id.is_empty()
    }

    /// Whether this record names a parent outside this cluster's RADOS data (remote or S3),
    /// which stock librbd cannot serve.
    pub fn is_foreign(&self) -> bool {
        matches!(self.parent_type, ParentType::RemoteStandalone | ParentType::S3Source)
    }
}

impl Codec for ParentRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, Self::VERSION, self.parent_type.compat(), |o| {
            self.pool_id.encode(o);
            self.pool_namespace.encode(o);
            self.image_id.encode(o);
            self.snap_id.encode(o);
            self.head_overlap.encode(o);
            self.parent_type.to_u8().encode(o);
            self.remote_cluster_name.encode(o);
            self.remote_mon_hosts.encode(o);
            self.remote_client_name.encode(o);
            self.remote_secret_ref.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "parent record", Self::VERSION)?;
        let b = &mut env.body;
        let mut p = ParentRecord { pool_id: i64::read(b)?, ..Default::default() };
        if env.version >= 2 {
            p.pool_namespace = String::read(b)?;
            p.image_id = String::read(b)?;
            p.snap_id = SnapId::read(b)?;
            p.head_overlap = Option::<u64>::read(b)?;
        } else {
            // v1 (pre-Nautilus): no namespace, a plain overlap that is Some even when 0.
            p.image_id = String::read(b)?;
            p.snap_id = SnapId::read(b)?;
            p.head_overlap = Some(u64::read(b)?);
        }
        p.parent_type = if env.version >= 3 {
            ParentType::from_u8(u8::read(b)?)
        } else if p.snap_id == SnapId::NOSNAP && p.exists() {
            // Written by something that knew HEAD parents but not the v3 field.
            ParentType::Standalone
        } else {
            ParentType::Snapshot
        };
        if env.version >= 4 {
            p.remote_cluster_name = String::read(b)?;
            p.remote_mon_hosts = Vec::<String>::read(b)?;
            p.remote_client_name = String::read(b)?;
            p.remote_secret_ref = String::read(b)?;
        }
        Ok(p)
    }
}

/// Upstream `cls::rbd::ParentImageSpec` (output of stock `rbd.parent_get`): envelope v1/1,
/// pool_id · pool_namespace · image_id · snap_id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentImageSpec {
    /// Pool id, -1 for none.
    pub pool_id: i64,
    /// RADOS namespace.
    pub pool_namespace: String,
    /// Image id.
    pub image_id: String,
    /// Snapshot id (`CEPH_NOSNAP` for HEAD).
    pub snap_id: SnapId,
}

impl Codec for ParentImageSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.pool_id.encode(o);
            self.pool_namespace.encode(o);
            self.image_id.encode(o);
            self.snap_id.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "ParentImageSpec", 1)?;
        let b = &mut env.body;
        Ok(ParentImageSpec { pool_id: i64::read(b)?, pool_namespace: String::read(b)?, image_id: String::read(b)?, snap_id: SnapId::read(b)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ceph-wire-facts.md §2.1: pool 2, "", "abc123", snap 4, overlap Some(1 GiB), as v2.
    const FACTS_V2: &[u8] = &[
        0x02, 0x02, 0x27, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x06, 0, 0, 0, b'a', b'b', b'c', b'1', b'2', b'3', 0x04, 0, 0, 0, 0, 0, 0,
        0, 0x01, 0, 0, 0, 0x40, 0, 0, 0, 0,
    ];

    fn sample_snapshot_parent() -> ParentRecord {
        ParentRecord { pool_id: 2, image_id: "abc123".into(), snap_id: SnapId(4), head_overlap: Some(1 << 30), ..Default::default() }
    }

    #[test]
    fn decodes_upstream_v2_example_as_snapshot() {
        assert_eq!(ParentRecord::read_bytes(FACTS_V2), Ok(sample_snapshot_parent()));
    }

    #[test]
    fn v4_payload_starts_with_the_exact_v2_payload() {
        // Stock decoders read the v2 fields at the same offsets and skip the rest.
        let b = sample_snapshot_parent().get_encoding();
        assert_eq!(&b[..2], &[4, 2]);
        assert_eq!(&b[6..6 + 0x27], &FACTS_V2[6..]);
    }

    #[test]
    fn decodes_upstream_v1() {
        // v1: pool, image, snap, plain overlap 0 -> Some(0), namespace empty.
        let mut b = Vec::new();
        encode_envelope(&mut b, 1, 1, |o| {
            3i64.encode(o);
            "img".to_string().encode(o);
            SnapId(9).encode(o);
            0u64.encode(o);
        });
        let p = ParentRecord::read_bytes(&b).unwrap();
        assert_eq!((p.pool_id, p.image_id.as_str(), p.snap_id, p.head_overlap), (3, "img", SnapId(9), Some(0)));
        assert_eq!(p.parent_type, ParentType::Snapshot);
    }

    #[test]
    fn v2_record_at_head_is_standalone() {
        let mut b = Vec::new();
        encode_envelope(&mut b, 2, 2, |o| {
            1i64.encode(o);
            String::new().encode(o);
            "abc".to_string().encode(o);
            SnapId::NOSNAP.encode(o);
            Some(5u64).encode(o);
        });
        assert_eq!(ParentRecord::read_bytes(&b).unwrap().parent_type, ParentType::Standalone);
    }

    #[test]
    fn compat_by_type() {
        for (t, c) in [(ParentType::Snapshot, 2), (ParentType::Standalone, 2), (ParentType::RemoteStandalone, 3), (ParentType::S3Source, 3)] {
            let p = ParentRecord { parent_type: t, ..Default::default() };
            assert_eq!(p.get_encoding()[1], c, "{t:?}");
        }
    }

    #[test]
    fn parent_image_spec_example() {
        // ceph-wire-facts.md §2.2
        let s = ParentImageSpec { pool_id: 2, pool_namespace: String::new(), image_id: "abc123".into(), snap_id: SnapId(4) };
        let b = s.get_encoding();
        assert_eq!(&b[..6], &[1, 1, 0x1e, 0, 0, 0]);
        assert_eq!(b.len(), 6 + 0x1e);
        assert_eq!(ParentImageSpec::read_bytes(&b), Ok(s));
    }

    pub(crate) fn parent_record() -> impl Strategy<Value = ParentRecord> {
        (
            any::<i64>(),
            "[a-z]{0,4}",
            "[a-z0-9]{0,12}",
            any::<u64>(),
            any::<Option<u64>>(),
            any::<u8>(),
            ("[a-z-]{0,8}", prop::collection::vec("[0-9.:]{0,12}", 0..3), "[a-z.]{0,10}", "[a-z:/]{0,16}"),
        )
            .prop_map(|(pool_id, ns, id, snap, ov, t, (c, m, n, s))| ParentRecord {
                pool_id,
                pool_namespace: ns,
                image_id: id,
                snap_id: SnapId(snap),
                head_overlap: ov,
                parent_type: ParentType::from_u8(t),
                remote_cluster_name: c,
                remote_mon_hosts: m,
                remote_client_name: n,
                remote_secret_ref: s,
            })
    }

    proptest! {
        #[test]
        fn round_trip(p in parent_record()) {
            let b = p.get_encoding();
            prop_assert_eq!(ParentRecord::read_bytes(&b), Ok(p));
            for cut in 0..b.len() {
                prop_assert!(ParentRecord::read_bytes(&b[..cut]).is_err());
            }
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = ParentRecord::read_bytes(&b);
            let _ = ParentImageSpec::read_bytes(&b);
        }
    }
}

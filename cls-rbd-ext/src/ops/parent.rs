//! Requests of the parent methods (`parent_attach`, `parent_overlap_set`) and the consistency
//! rules a parent record must meet, shared by the method and the client (which can check a
//! record before sending it).

use crate::codec::{Codec, DecodeError, Reader, SnapId};
use crate::types::header::{is_valid_image_id, is_valid_namespace};
use crate::types::{ParentRecord, ParentType};

/// Input of `parent_attach`: a [`ParentRecord`] (no outer envelope of its own), then an
/// optional trailing u8 bool `reattach` (absent = false, encoded only when true), as
/// upstream's `parent_attach`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParentAttachOp {
    /// The record to store; its `head_overlap` must be `Some(n)` with `n > 0`.
    pub record: ParentRecord,
    /// Replace a record that is already attached.
    pub reattach: bool,
}

impl Codec for ParentAttachOp {
    fn encode(&self, out: &mut Vec<u8>) {
        self.record.encode(out);
        if self.reattach {
            true.encode(out);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let record = ParentRecord::read(r)?;
        let reattach = if r.any_left() { bool::read(r)? } else { false };
        Ok(ParentAttachOp { record, reattach })
    }
}

/// Input of `parent_overlap_set`: the new overlap in bytes (a plain u64, no envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParentOverlapSetOp {
    /// New head overlap; may not exceed the current one.
    pub overlap: u64,
}

impl Codec for ParentOverlapSetOp {
    const MIN_SIZE: usize = 8;

    fn encode(&self, out: &mut Vec<u8>) {
        self.overlap.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ParentOverlapSetOp { overlap: u64::read(r)? })
    }
}

/// Why a parent record is inconsistent. The messages never contain a secret: a rejected
/// `remote_secret_ref` is described, not echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidParent {
    /// `parent_type` is a value this version does not know.
    #[error("unknown parent type {0}")]
    UnknownType(u8),
    /// A field does not fit the record's type; the text says which and why.
    #[error("{0}")]
    Field(&'static str),
    /// `remote_secret_ref` holds what looks like a cephx key instead of a reference.
    #[error(
        "remote_secret_ref looks like an inline cephx key; secrets are never stored in image \
         headers: store the key in the mon config-key store \
         (`ceph config-key set <name> -i <keyfile>`) and pass `config://<name>`"
    )]
    InlineSecret,
    /// `remote_secret_ref` is not of the form `config://<name>`.
    #[error(
        "remote_secret_ref must be a reference `config://<name>` ([A-Za-z0-9/_.:-]): store the \
         key in the mon config-key store (`ceph config-key set <name> -i <keyfile>`) and pass \
         `config://<name>`"
    )]
    SecretRef,
}

/// Checks that `p` is a record `parent_attach` may store.
///
/// All types: `head_overlap` is `Some(n)` with `n > 0`, the namespace holds no NUL or `/`,
/// and the remote fields are empty unless the type is remote standalone.
/// - Snapshot (0): `snap_id` is a real snapshot (not NOSNAP/SNAPDIR), `pool_id >= 0`, the
///   image id is valid (non-empty, ASCII alphanumeric).
/// - Standalone (1), remote standalone (2): `snap_id == CEPH_NOSNAP`, `pool_id >= 0`, valid
///   image id. For (2) also: a cluster name of `[A-Za-z0-9_.-]`, a non-empty list of
///   monitor addresses without whitespace or control characters, a client name
///   `client.<id>`, and a secret *reference* `config://<name>`.
/// - S3 source (3): `pool_id == -1`, empty namespace and image id, `snap_id == CEPH_NOSNAP`
///   (the S3 configuration lives in the image's metadata).
/// - Unknown types are rejected.
pub fn validate_parent_record(p: &ParentRecord) -> Result<(), InvalidParent> {
    use InvalidParent::Field;
    match p.head_overlap {
        None => return Err(Field("head_overlap must be set")),
        Some(0) => return Err(Field("head_overlap must be greater than 0")),
        Some(_) => {}
    }
    if !is_valid_namespace(&p.pool_namespace) {
        return Err(Field("pool_namespace must not contain NUL or '/'"));
    }
    let remote = !p.remote_cluster_name.is_empty() || !p.remote_mon_hosts.is_empty() || !p.remote_client_name.is_empty() || !p.remote_secret_ref.is_empty();
    match p.parent_type {
        ParentType::Unknown(t) => return Err(InvalidParent::UnknownType(t)),
        ParentType::Snapshot => {
            if p.snap_id == SnapId::NOSNAP || p.snap_id == SnapId::SNAPDIR {
                return Err(Field("a snapshot parent needs a snapshot id (not head/snapdir)"));
            }
            check_local_image(p)?;
        }
        ParentType::Standalone | ParentType::RemoteStandalone => {
            if p.snap_id != SnapId::NOSNAP {
                return Err(Field("a standalone parent needs snap_id CEPH_NOSNAP"));
            }
            check_local_image(p)?;
        }
        ParentType::S3Source => {
            if p.pool_id != -1 || !p.image_id.is_empty() || !p.pool_namespace.is_empty() {
                return Err(Field("an S3 source record has pool_id -1 and no namespace or image id"));
            }
            if p.snap_id != SnapId::NOSNAP {
                return Err(Field("an S3 source record needs snap_id CEPH_NOSNAP"));
            }
        }
    }
    if p.parent_type == ParentType::RemoteStandalone {
        check_remote(p)
    } else if remote {
        Err(Field("remote cluster fields are only allowed for a remote standalone parent"))
    } else {
        Ok(())
    }
}

fn check_local_image(p: &ParentRecord) -> Result<(), InvalidParent> {
    if p.pool_id < 0 {
        return Err(InvalidParent::Field("pool_id must be >= 0"));
    }
    if !is_valid_image_id(&p.image_id) {
        return Err(InvalidParent::Field("image_id must be non-empty and ASCII alphanumeric"));
    }
    Ok(())
}

fn check_remote(p: &ParentRecord) -> Result<(), InvalidParent> {
    use InvalidParent::Field;
    let c = &p.remote_cluster_name;
    if c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return Err(Field("remote_cluster_name must be non-empty [A-Za-z0-9_.-]"));
    }
    let plain = |s: &str| !s.is_empty() && !s.chars().any(|ch| ch.is_whitespace() || ch.is_control());
    if p.remote_mon_hosts.is_empty() || !p.remote_mon_hosts.iter().all(|h| plain(h)) {
        return Err(Field("remote_mon_hosts must be a non-empty list of addresses without whitespace"));
    }
    match p.remote_client_name.strip_prefix("client.") {
        Some(id) if plain(id) => {}
        _ => return Err(Field("remote_client_name must be of the form client.<id>")),
    }
    check_secret_ref(&p.remote_secret_ref)
}

/// `config://<name>`, name non-empty of `[A-Za-z0-9/_.:-]`. A cephx key (base64 of 28 bytes:
/// 40 characters beginning `AQ` and ending `==`), or anything else, is refused.
fn check_secret_ref(s: &str) -> Result<(), InvalidParent> {
    let ok = |name: &str| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.:-".contains(&b));
    match s.strip_prefix("config://") {
        Some(name) if ok(name) => Ok(()),
        _ if looks_like_cephx_key(s) => Err(InvalidParent::InlineSecret),
        _ => Err(InvalidParent::SecretRef),
    }
}

/// Whether `s` contains something shaped like a base64 cephx key.
fn looks_like_cephx_key(s: &str) -> bool {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    s.split(|c: char| !b64(c))
        .map(|w| w.trim_start_matches('/'))
        .any(|w| (w.len() == 40 && w.starts_with("AQ") && w.ends_with("==")) || (w.len() >= 24 && w.ends_with('=') && w.bytes().any(|b| b.is_ascii_digit())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cephx key as `ceph auth get-key` prints it (made up, right shape).
    const FAKE_KEY: &str = "AQBvaBFZAAAAABAAzKQ8aRRfsZ5ScnD1wqI0mQ==";

    fn standalone() -> ParentRecord {
        ParentRecord {
            pool_id: 2,
            image_id: "abc123".into(),
            snap_id: SnapId::NOSNAP,
            head_overlap: Some(1 << 30),
            parent_type: ParentType::Standalone,
            ..Default::default()
        }
    }

    fn remote() -> ParentRecord {
        ParentRecord {
            parent_type: ParentType::RemoteStandalone,
            remote_cluster_name: "ceph-a".into(),
            remote_mon_hosts: vec!["10.0.0.1:6789".into(), "[v2:10.0.0.2:3300]".into()],
            remote_client_name: "client.admin".into(),
            remote_secret_ref: "config://rbd-ext/remote/ceph-a".into(),
            ..standalone()
        }
    }

    #[test]
    fn op_round_trip_and_optional_flag() {
        let op = ParentAttachOp { record: standalone(), reattach: false };
        let b = op.get_encoding();
        assert_eq!(b, standalone().get_encoding(), "reattach=false is not encoded");
        assert_eq!(ParentAttachOp::read_bytes(&b), Ok(op));
        let op = ParentAttachOp { record: remote(), reattach: true };
        let b = op.get_encoding();
        assert_eq!(b.last(), Some(&1));
        assert_eq!(ParentAttachOp::read_bytes(&b), Ok(op));
        assert!(ParentAttachOp::read_bytes(&[&b[..], &[0]].concat()).is_err());
        assert_eq!(ParentOverlapSetOp::read_bytes(&7u64.get_encoding()), Ok(ParentOverlapSetOp { overlap: 7 }));
    }

    #[test]
    fn valid_records() {
        validate_parent_record(&standalone()).unwrap();
        validate_parent_record(&remote()).unwrap();
        validate_parent_record(&ParentRecord { parent_type: ParentType::Snapshot, snap_id: SnapId(4), ..standalone() }).unwrap();
        validate_parent_record(&ParentRecord { pool_namespace: "ns1".into(), ..standalone() }).unwrap();
        validate_parent_record(&ParentRecord { head_overlap: Some(1), parent_type: ParentType::S3Source, ..Default::default() }).unwrap();
    }

    #[test]
    fn invalid_records() {
        let bad = [
            ParentRecord { head_overlap: None, ..standalone() },
            ParentRecord { head_overlap: Some(0), ..standalone() },
            ParentRecord { parent_type: ParentType::Unknown(9), ..standalone() },
            ParentRecord { snap_id: SnapId(4), ..standalone() },
            ParentRecord { pool_id: -1, ..standalone() },
            ParentRecord { image_id: String::new(), ..standalone() },
            ParentRecord { image_id: "abc-123".into(), ..standalone() },
            ParentRecord { pool_namespace: "a/b".into(), ..standalone() },
            ParentRecord { pool_namespace: "a\0".into(), ..standalone() },
            ParentRecord { remote_cluster_name: "x".into(), ..standalone() },
            ParentRecord { remote_secret_ref: "config://x".into(), ..standalone() },
            ParentRecord { parent_type: ParentType::Snapshot, ..standalone() },
            ParentRecord { parent_type: ParentType::Snapshot, snap_id: SnapId::SNAPDIR, ..standalone() },
            ParentRecord { parent_type: ParentType::Snapshot, snap_id: SnapId(4), remote_client_name: "client.a".into(), ..standalone() },
            ParentRecord { parent_type: ParentType::S3Source, ..standalone() },
            ParentRecord { parent_type: ParentType::S3Source, pool_id: -1, image_id: String::new(), pool_namespace: "n".into(), ..standalone() },
            ParentRecord { parent_type: ParentType::S3Source, pool_id: -1, image_id: String::new(), snap_id: SnapId(1), ..standalone() },
            ParentRecord { parent_type: ParentType::S3Source, pool_id: -1, image_id: String::new(), remote_mon_hosts: vec!["h".into()], ..standalone() },
            ParentRecord { snap_id: SnapId(1), ..remote() },
            ParentRecord { remote_cluster_name: String::new(), ..remote() },
            ParentRecord { remote_cluster_name: "ceph a".into(), ..remote() },
            ParentRecord { remote_mon_hosts: vec![], ..remote() },
            ParentRecord { remote_mon_hosts: vec![String::new()], ..remote() },
            ParentRecord { remote_mon_hosts: vec!["10.0.0.1 10.0.0.2".into()], ..remote() },
            ParentRecord { remote_client_name: "admin".into(), ..remote() },
            ParentRecord { remote_client_name: "client.".into(), ..remote() },
            ParentRecord { remote_client_name: "osd.1".into(), ..remote() },
            ParentRecord { remote_secret_ref: String::new(), ..remote() },
            ParentRecord { remote_secret_ref: "config://".into(), ..remote() },
            ParentRecord { remote_secret_ref: "file:///etc/ceph/keyring".into(), ..remote() },
            ParentRecord { remote_secret_ref: "config://a b".into(), ..remote() },
        ];
        for (i, p) in bad.iter().enumerate() {
            assert!(validate_parent_record(p).is_err(), "case {i}: {p:?}");
        }
    }

    #[test]
    fn inline_keys_are_refused_without_echoing_them() {
        for s in [FAKE_KEY.to_string(), format!("config://{FAKE_KEY}"), format!("key = {FAKE_KEY}")] {
            let e = validate_parent_record(&ParentRecord { remote_secret_ref: s, ..remote() }).unwrap_err();
            assert_eq!(e, InvalidParent::InlineSecret);
            let text = e.to_string();
            assert!(text.contains("config-key") && text.contains("config://"), "{text}");
            assert!(!text.contains(FAKE_KEY));
        }
        let e = validate_parent_record(&ParentRecord { remote_secret_ref: "secret".into(), ..remote() }).unwrap_err();
        assert_eq!(e, InvalidParent::SecretRef);
        assert!(e.to_string().contains("config-key"));
    }
}

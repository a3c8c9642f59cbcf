//! `::SnapContext`: the self-managed snapshot context every data-object write of an image
//! carries (librbd sets it on its data ioctx), so the OSD clones an object before the first
//! write after a snapshot. Reply of `rbd.get_snapcontext` (ceph-wire-facts.md §4.5).

use crate::codec::{Codec, DecodeError, Reader, SnapId};

/// `CEPH_MAXSNAP`: the highest id a snapshot (or the seq) may have.
const CEPH_MAXSNAP: u64 = u64::MAX - 2;

/// An image's snapshot context: `snap_seq` and its snapshot ids, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapContext {
    /// The header's `snap_seq`: the newest snapshot id ever allocated for the image.
    pub seq: SnapId,
    /// The existing snapshots' ids, in descending order.
    pub snaps: Vec<SnapId>,
}

impl SnapContext {
    /// Upstream `SnapContext::is_valid`: seq at most `CEPH_MAXSNAP`, not below the newest
    /// snapshot, snapshots strictly descending. librbd refuses to open an image whose
    /// context is not (-EIO), and librados refuses to write with one (-EINVAL).
    pub fn is_valid(&self) -> bool {
        self.seq.0 <= CEPH_MAXSNAP && self.snaps.first().is_none_or(|s| *s <= self.seq) && self.snaps.windows(2).all(|w| w[1] < w[0])
    }
}

impl Codec for SnapContext {
    const MIN_SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        self.seq.encode(out);
        self.snaps.encode(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SnapContext { seq: SnapId::read(r)?, snaps: Vec::<SnapId>::read(r)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_and_validity() {
        let c = SnapContext { seq: SnapId(7), snaps: vec![SnapId(7), SnapId(4)] };
        let b = c.get_encoding();
        assert_eq!(b, [7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(SnapContext::read_bytes(&b).unwrap(), c);
        assert!(SnapContext::read_bytes(&b[..b.len() - 1]).is_err());
        assert!(c.is_valid());
        assert!(SnapContext::default().is_valid());
        assert!(!SnapContext { seq: SnapId(3), snaps: vec![SnapId(4)] }.is_valid());
        assert!(!SnapContext { seq: SnapId(9), snaps: vec![SnapId(4), SnapId(7)] }.is_valid());
        assert!(!SnapContext { seq: SnapId(9), snaps: vec![SnapId(4), SnapId(4)] }.is_valid());
        assert!(!SnapContext { seq: SnapId::NOSNAP, snaps: vec![] }.is_valid());
    }
}

//! The back-fill claim: who is filling a missing object of an S3-backed parent, until when.

use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader, UTime};

/// Omap key of the claim on a parent data object. The claim lives in the object's omap, not
/// its data, and its presence means "being filled": an object that exists but has this key
/// is not a filled hole (the prior design's lock-on-the-data-object bug).
pub const BACKFILL_CLAIM_KEY: &str = "rbd_ext_backfill";

/// The value of [`BACKFILL_CLAIM_KEY`]. Envelope v1/1: string owner · utime expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillClaim {
    /// The claimer (`client.<gid>/<pid>/<nonce>`): only it may complete or abort.
    pub owner: String,
    /// OSD time after which another client may take the claim over.
    pub expires: UTime,
}

impl Codec for BackfillClaim {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.owner.encode(o);
            self.expires.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "backfill claim", 1)?;
        let b = &mut env.body;
        Ok(BackfillClaim { owner: String::read(b)?, expires: UTime::read(b)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = BackfillClaim { owner: "client.4123/77/1".into(), expires: UTime { sec: 5, nsec: 6 } };
        assert_eq!(BackfillClaim::read_bytes(&c.get_encoding()), Ok(c.clone()));
        let b = c.get_encoding();
        for cut in 0..b.len() {
            assert!(BackfillClaim::read_bytes(&b[..cut]).is_err());
        }
    }
}

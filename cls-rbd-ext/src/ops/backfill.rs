//! Requests of the back-fill methods (`backfill_claim`, `backfill_complete`,
//! `backfill_abort`), sent to a data object of an S3-backed parent.

use crate::codec::{encode_bytes, encode_envelope, read_envelope, BufferList, Codec, DecodeError, Reader};

/// Longest claim a client may ask for: a fill that takes longer is taken over.
pub const BACKFILL_MAX_TTL_MS: u32 = 10 * 60 * 1000;

/// Input of `backfill_claim`. Envelope v1/1: string owner · u32 ttl_ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillClaimOp {
    /// The claimer's unique name.
    pub owner: String,
    /// How long the claim holds without completion, 1..=[`BACKFILL_MAX_TTL_MS`] ms.
    pub ttl_ms: u32,
}

impl Codec for BackfillClaimOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| {
            self.owner.encode(o);
            self.ttl_ms.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "backfill_claim op", 1)?;
        let b = &mut env.body;
        Ok(BackfillClaimOp { owner: String::read(b)?, ttl_ms: u32::read(b)? })
    }
}

/// Input of `backfill_complete`. Envelope v1/1: string owner · bufferlist data (the whole
/// object, already verified by the client against the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillCompleteOp {
    /// The claimer.
    pub owner: String,
    /// The object's data.
    pub data: BufferList,
}

impl BackfillCompleteOp {
    /// The encoding of `BackfillCompleteOp { owner, data }` without owning the data (the
    /// client sends a whole object it keeps using).
    pub fn encode_borrowed(owner: &str, data: &[u8], out: &mut Vec<u8>) {
        out.reserve(data.len() + owner.len() + 16);
        encode_envelope(out, 1, 1, |o| {
            encode_bytes(owner.as_bytes(), o);
            encode_bytes(data, o);
        });
    }
}

impl Codec for BackfillCompleteOp {
    fn encode(&self, out: &mut Vec<u8>) {
        BackfillCompleteOp::encode_borrowed(&self.owner, &self.data.0, out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "backfill_complete op", 1)?;
        let b = &mut env.body;
        Ok(BackfillCompleteOp { owner: String::read(b)?, data: BufferList::read(b)? })
    }
}

/// Input of `backfill_abort`. Envelope v1/1: string owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillAbortOp {
    /// The claimer.
    pub owner: String,
}

impl Codec for BackfillAbortOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| self.owner.encode(o));
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "backfill_abort op", 1)?;
        Ok(BackfillAbortOp { owner: String::read(&mut env.body)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = BackfillClaimOp { owner: "o".into(), ttl_ms: 3000 };
        assert_eq!(BackfillClaimOp::read_bytes(&c.get_encoding()), Ok(c));
        let d = BackfillCompleteOp { owner: "o".into(), data: BufferList(vec![1, 2, 3]) };
        assert_eq!(BackfillCompleteOp::read_bytes(&d.get_encoding()), Ok(d));
        let a = BackfillAbortOp { owner: "o".into() };
        assert_eq!(BackfillAbortOp::read_bytes(&a.get_encoding()), Ok(a));
    }
}

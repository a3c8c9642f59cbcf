//! `backfill_claim`, `backfill_complete`, `backfill_abort`: exactly one fill per missing
//! object of an S3-backed parent, cluster-wide (DESIGN.md §4).
//!
//! The methods run on the parent's data object itself, so claim and data change in one OSD
//! transaction. States of a data object:
//! - missing: not filled; the first `backfill_claim` creates it with a claim in its omap
//!   (no data);
//! - exists with [`BACKFILL_CLAIM_KEY`]: being filled: readers wait (they read the key in
//!   the same op as the data, so they never take it for a filled hole); after the claim's
//!   expiry another client may claim it over;
//! - exists without the key: filled (`backfill_complete` wrote the data with write_full
//!   and removed the claim in one step).
//!
//! `backfill_abort` removes the placeholder object so the next reader claims afresh.

use super::header::read_key;
use super::{cls_log, decode_input};
use crate::codec::UTime;
use crate::ops::{BackfillAbortOp, BackfillClaimOp, BackfillCompleteOp, BACKFILL_MAX_TTL_MS};
use crate::types::backfill::{BackfillClaim, BACKFILL_CLAIM_KEY};
use crate::{ClsContext, Codec, Errno};

fn now(ctx: &mut dyn ClsContext) -> UTime {
    let (sec, nsec) = ctx.now();
    UTime { sec: sec.min(u64::from(u32::MAX)) as u32, nsec }
}

fn plus_ms(t: UTime, ms: u32) -> UTime {
    let total = u64::from(t.nsec) + u64::from(ms) * 1_000_000;
    UTime { sec: t.sec.saturating_add((total / 1_000_000_000) as u32), nsec: (total % 1_000_000_000) as u32 }
}

/// The current claim: `Ok(None)` if the object is missing, `Err(EEXIST)` if it is filled.
fn load_claim(ctx: &mut dyn ClsContext, method: &str) -> Result<Option<BackfillClaim>, Errno> {
    match ctx.stat() {
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    match read_key::<BackfillClaim>(ctx, BACKFILL_CLAIM_KEY)? {
        Some(c) => Ok(Some(c)),
        None => {
            cls_log!(ctx, 20, "{method}: object already filled");
            Err(Errno::EEXIST)
        }
    }
}

fn valid_owner(ctx: &mut dyn ClsContext, method: &str, owner: &str) -> Result<(), Errno> {
    if owner.is_empty() || owner.len() > 256 {
        cls_log!(ctx, 1, "{method}: owner must be 1-256 bytes");
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `backfill_claim` (RD|WR, on a parent data object). Input: [`BackfillClaimOp`]. Output:
/// none (a write method: the return code is the answer).
///
/// Returns 0 if the caller now holds the claim (new, renewed, or taken over from an expired
/// claimer); -EEXIST if the object is already filled (read it); -EBUSY if another client
/// holds a live claim (wait, then read again); -EINVAL if the input does not decode, the
/// owner is empty or longer than 256 bytes, or the ttl is 0 or above 10 minutes; -EIO if a
/// stored claim does not decode; -errno on storage failure.
pub(crate) fn backfill_claim(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "backfill_claim", BackfillClaimOp::read_bytes(input))?;
    cls_log!(ctx, 20, "backfill_claim owner={} ttl_ms={}", op.owner, op.ttl_ms);
    valid_owner(ctx, "backfill_claim", &op.owner)?;
    if op.ttl_ms == 0 || op.ttl_ms > BACKFILL_MAX_TTL_MS {
        cls_log!(ctx, 1, "backfill_claim: ttl_ms must be 1..={BACKFILL_MAX_TTL_MS}");
        return Err(Errno::EINVAL);
    }
    let t = now(ctx);
    if let Some(c) = load_claim(ctx, "backfill_claim")? {
        if c.owner != op.owner && c.expires > t {
            cls_log!(ctx, 20, "backfill_claim: held by {} until {:?}", c.owner, c.expires);
            return Err(Errno::EBUSY);
        }
        if c.owner != op.owner {
            cls_log!(ctx, 5, "backfill_claim: taking over the expired claim of {}", c.owner);
        }
    }
    let claim = BackfillClaim { owner: op.owner, expires: plus_ms(t, op.ttl_ms) };
    ctx.omap_set_one(BACKFILL_CLAIM_KEY, &claim.get_encoding())
}

/// `backfill_complete` (RD|WR, on a parent data object). Input: [`BackfillCompleteOp`].
/// Output: none.
///
/// Writes the data with write_full and removes the claim, atomically; the caller verified
/// the data against the manifest first.
///
/// Returns -EINVAL if the input does not decode or the owner is invalid; -ENOENT if there is
/// no object (the claim was aborted); -EEXIST if it is already filled; -EBUSY if the claim
/// now belongs to someone else (it expired and was taken over: drop the data); -EIO if the
/// stored claim does not decode; -errno on storage failure.
pub(crate) fn backfill_complete(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "backfill_complete", BackfillCompleteOp::read_bytes(input))?;
    cls_log!(ctx, 20, "backfill_complete owner={} len={}", op.owner, op.data.0.len());
    valid_owner(ctx, "backfill_complete", &op.owner)?;
    let Some(c) = load_claim(ctx, "backfill_complete")? else {
        cls_log!(ctx, 20, "backfill_complete: no claim (aborted)");
        return Err(Errno::ENOENT);
    };
    if c.owner != op.owner {
        cls_log!(ctx, 20, "backfill_complete: claim now held by {}", c.owner);
        return Err(Errno::EBUSY);
    }
    ctx.write_full(&op.data.0)?;
    ctx.omap_remove(BACKFILL_CLAIM_KEY)
}

/// `backfill_abort` (RD|WR, on a parent data object). Input: [`BackfillAbortOp`]. Output:
/// none.
///
/// Gives up a claim: removes the placeholder object (it holds no data), so the next reader
/// claims afresh instead of waiting for the expiry.
///
/// Returns -EINVAL if the input does not decode or the owner is invalid; -ENOENT if there
/// is no object; -EEXIST if it is already filled; -EBUSY if the claim belongs to someone
/// else; -EIO if the stored claim does not decode; -errno on storage failure.
pub(crate) fn backfill_abort(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "backfill_abort", BackfillAbortOp::read_bytes(input))?;
    cls_log!(ctx, 20, "backfill_abort owner={}", op.owner);
    valid_owner(ctx, "backfill_abort", &op.owner)?;
    let Some(c) = load_claim(ctx, "backfill_abort")? else {
        return Err(Errno::ENOENT);
    };
    if c.owner != op.owner {
        return Err(Errno::EBUSY);
    }
    ctx.remove()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::BufferList;
    use crate::MemContext;

    fn claim(c: &mut MemContext, owner: &str, ttl_ms: u32) -> Result<Vec<u8>, Errno> {
        c.call(backfill_claim, &BackfillClaimOp { owner: owner.into(), ttl_ms }.get_encoding())
    }

    fn complete(c: &mut MemContext, owner: &str, data: &[u8]) -> Result<Vec<u8>, Errno> {
        c.call(backfill_complete, &BackfillCompleteOp { owner: owner.into(), data: BufferList(data.to_vec()) }.get_encoding())
    }

    fn abort(c: &mut MemContext, owner: &str) -> Result<Vec<u8>, Errno> {
        c.call(backfill_abort, &BackfillAbortOp { owner: owner.into() }.get_encoding())
    }

    #[test]
    fn one_claimer_then_filled() {
        let mut c = MemContext::missing();
        c.clock = (100, 0);
        claim(&mut c, "a", 5000).unwrap();
        // The placeholder exists but holds no data and carries the claim.
        let o = c.object.as_ref().unwrap();
        assert!(o.data.is_empty() && o.omap.contains_key(BACKFILL_CLAIM_KEY));
        assert_eq!(claim(&mut c, "b", 5000), Err(Errno::EBUSY));
        claim(&mut c, "a", 5000).unwrap(); // renewal
        assert_eq!(complete(&mut c, "b", b"x"), Err(Errno::EBUSY));
        complete(&mut c, "a", b"data").unwrap();
        let o = c.object.as_ref().unwrap();
        assert_eq!(o.data, b"data");
        assert!(!o.omap.contains_key(BACKFILL_CLAIM_KEY));
        assert_eq!(claim(&mut c, "b", 5000), Err(Errno::EEXIST));
        assert_eq!(complete(&mut c, "a", b"again"), Err(Errno::EEXIST));
        assert_eq!(abort(&mut c, "a"), Err(Errno::EEXIST));
    }

    #[test]
    fn expired_claims_are_taken_over() {
        let mut c = MemContext::missing();
        c.clock = (100, 900_000_000);
        claim(&mut c, "a", 200).unwrap(); // expires at 101.1
        c.clock = (101, 0);
        assert_eq!(claim(&mut c, "b", 1000), Err(Errno::EBUSY));
        c.clock = (101, 200_000_000);
        claim(&mut c, "b", 1000).unwrap();
        // The old claimer's late completion is refused: its data is dropped.
        assert_eq!(complete(&mut c, "a", b"late"), Err(Errno::EBUSY));
        complete(&mut c, "b", b"fresh").unwrap();
        assert_eq!(c.object.as_ref().unwrap().data, b"fresh");
    }

    #[test]
    fn abort_removes_the_placeholder() {
        let mut c = MemContext::missing();
        claim(&mut c, "a", 1000).unwrap();
        assert_eq!(abort(&mut c, "b"), Err(Errno::EBUSY));
        abort(&mut c, "a").unwrap();
        assert!(c.object.is_none());
        assert_eq!(abort(&mut c, "a"), Err(Errno::ENOENT));
        assert_eq!(complete(&mut c, "a", b"x"), Err(Errno::ENOENT));
        claim(&mut c, "b", 1000).unwrap();
    }

    #[test]
    fn input_errors() {
        let mut c = MemContext::missing();
        assert_eq!(claim(&mut c, "", 1000), Err(Errno::EINVAL));
        assert_eq!(claim(&mut c, "a", 0), Err(Errno::EINVAL));
        assert_eq!(claim(&mut c, "a", BACKFILL_MAX_TTL_MS + 1), Err(Errno::EINVAL));
        assert_eq!(claim(&mut c, &"x".repeat(257), 10), Err(Errno::EINVAL));
        for m in [backfill_claim, backfill_complete, backfill_abort] {
            assert_eq!(c.call(m, b"\x01\x01\x09"), Err(Errno::EINVAL));
        }
        assert!(c.object.is_none());
    }

    #[test]
    fn corrupt_claim_is_eio() {
        let mut c = MemContext::existing();
        c.omap_set_one(BACKFILL_CLAIM_KEY, b"\x01").unwrap();
        assert_eq!(claim(&mut c, "a", 10), Err(Errno::EIO));
        assert_eq!(complete(&mut c, "a", b"x"), Err(Errno::EIO));
        assert_eq!(abort(&mut c, "a"), Err(Errno::EIO));
    }
}

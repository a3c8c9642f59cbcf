//! `get_version`, `ping` (and, for tests, `test_panic`).

use super::{cls_log, decode_input};
use crate::ops::PingOp;
use crate::{ClsContext, Codec, Errno, VERSION};

/// `get_version` (RD). Input: ignored. Output: string, the plugin's semver.
///
/// Returns 0; the OSD itself answers -ENOENT for a missing object before the method runs.
pub(crate) fn get_version(ctx: &mut dyn ClsContext, _input: &[u8], out: &mut Vec<u8>) -> Result<(), Errno> {
    cls_log!(ctx, 20, "get_version");
    VERSION.to_string().encode(out);
    Ok(())
}

/// `ping` (RD|WR). Input: [`PingOp`]. Output: none. Sets omap key [`PingOp::KEY`] to the
/// value, creating the object if needed.
///
/// Returns -EINVAL if the input does not decode, -errno on storage failure.
pub(crate) fn ping(ctx: &mut dyn ClsContext, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    let op = decode_input(ctx, "ping", PingOp::read_bytes(input))?;
    cls_log!(ctx, 20, "ping value_len={}", op.value.len());
    ctx.omap_set_one(PingOp::KEY, op.value.as_bytes())
}

/// `test_panic` (RD, test builds only): panics, to prove the dispatch wrapper turns a panic
/// into -EIO instead of aborting the OSD.
#[cfg(feature = "test-methods")]
pub(crate) fn test_panic(ctx: &mut dyn ClsContext, _input: &[u8], _out: &mut Vec<u8>) -> Result<(), Errno> {
    cls_log!(ctx, 20, "test_panic: panicking on purpose");
    panic!("rbd_ext test_panic called");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemContext;

    #[test]
    fn get_version_returns_encoded_semver() {
        let mut c = MemContext::existing();
        let out = c.call(get_version, b"").unwrap();
        assert_eq!(String::read_bytes(&out).unwrap(), VERSION);
    }

    #[test]
    fn ping_sets_the_key() {
        let mut c = MemContext::missing();
        c.call(ping, &PingOp { value: "hello".into() }.get_encoding()).unwrap();
        assert_eq!(c.omap()[PingOp::KEY], b"hello");
    }

    #[test]
    fn ping_malformed_is_einval() {
        let mut c = MemContext::existing();
        assert_eq!(c.call(ping, b"\x01\x01\xff\xff\xff\xff"), Err(Errno::EINVAL));
        assert_eq!(c.call(ping, b""), Err(Errno::EINVAL));
        assert!(c.omap().is_empty());
        assert!(c.logs.iter().any(|(l, m)| *l == 1 && m.contains("ping: invalid input")));
    }
}

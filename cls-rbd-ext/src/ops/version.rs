//! Requests of the plugin's own housekeeping methods.

use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader};

/// Input of `ping`: a value to store under the omap key [`PingOp::KEY`]. Envelope v1/1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PingOp {
    /// Stored as the key's value (raw bytes of the string).
    pub value: String,
}

impl PingOp {
    /// The omap key `ping` writes.
    pub const KEY: &'static str = "rbd_ext_ping";
}

impl Codec for PingOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| self.value.encode(o));
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "ping op", 1)?;
        Ok(PingOp { value: String::read(&mut env.body)? })
    }
}

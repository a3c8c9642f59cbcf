//! Input of `protection_set` (methods/protection.rs).

use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader};
use crate::types::ProtectionMode;

/// Input of `protection_set`: envelope v1/1 { u8 mode } (0 clones, 1 strict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectionSetOp {
    /// The protection wanted.
    pub mode: ProtectionMode,
}

impl Codec for ProtectionSetOp {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, 1, 1, |o| self.mode.to_u8().encode(o));
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "protection_set", 1)?;
        let m = u8::read(&mut env.body)?;
        Ok(ProtectionSetOp { mode: ProtectionMode::from_u8(m).ok_or(DecodeError::Invalid("protection mode"))? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        let b = ProtectionSetOp { mode: ProtectionMode::Strict }.get_encoding();
        assert_eq!(b, [1, 1, 1, 0, 0, 0, 1]);
        assert_eq!(ProtectionSetOp::read_bytes(&b), Ok(ProtectionSetOp { mode: ProtectionMode::Strict }));
        assert!(ProtectionSetOp::read_bytes(&[1, 1, 1, 0, 0, 0, 9]).is_err());
        assert!(ProtectionSetOp::read_bytes(&[1, 1, 0, 0, 0, 0]).is_err());
    }
}

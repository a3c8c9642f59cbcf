//! rbd-ext's bookkeeping on a protected parent header (key
//! [`crate::types::header::RBD_EXT_PROTECT`]).

use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader};
use crate::types::features::{OP_FEATURE_RBD_EXT_PROTECTED, PARENT_PROTECTION_FEATURES};

/// What the parent header held before the first `child_attach` protected it, so that the
/// last `child_detach` restores exactly that. Envelope v1/1: u64 prior_features ·
/// u64 prior_op_features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParentProtection {
    /// The header's `features` before protection, masked to the bits protection sets
    /// ([`PARENT_PROTECTION_FEATURES`]: OPERATIONS and NON_PRIMARY).
    pub prior_features: u64,
    /// The header's `op_features` before protection (0 when the key was absent). Only
    /// [`OP_FEATURE_RBD_EXT_PROTECTED`] is restored from it; it also tells whether a prior
    /// OPERATIONS bit was explained by op features.
    pub prior_op_features: u64,
}

impl ParentProtection {
    /// Highest envelope version written and understood.
    pub const VERSION: u8 = 1;

    /// Records the state of a header about to be protected.
    pub fn before(features: u64, op_features: u64) -> Self {
        ParentProtection { prior_features: features & PARENT_PROTECTION_FEATURES, prior_op_features: op_features }
    }

    /// The `(features, op_features)` that protection turns `(features, op_features)` into.
    pub fn protect(features: u64, op_features: u64) -> (u64, u64) {
        (features | PARENT_PROTECTION_FEATURES, op_features | OP_FEATURE_RBD_EXT_PROTECTED)
    }

    /// The `(features, op_features)` after lifting protection from the current values.
    ///
    /// - [`OP_FEATURE_RBD_EXT_PROTECTED`] goes back to what it was; other op features are
    ///   left as they are now (stock may have changed them meanwhile).
    /// - NON_PRIMARY goes back to what it was.
    /// - OPERATIONS follows upstream's op-feature rule (set iff op_features is non-zero),
    ///   except that an OPERATIONS bit the image had before without any op feature is
    ///   restored as found.
    ///
    /// Unrelated feature bits are never touched. The caller deletes the `op_features` key
    /// when the result is 0, as upstream does.
    pub fn restore(&self, features: u64, op_features: u64) -> (u64, u64) {
        use crate::types::features::{RBD_FEATURE_NON_PRIMARY, RBD_FEATURE_OPERATIONS};
        let op =
            (op_features & !OP_FEATURE_RBD_EXT_PROTECTED) | (self.prior_op_features & OP_FEATURE_RBD_EXT_PROTECTED);
        let operations = op != 0 || (self.prior_features & RBD_FEATURE_OPERATIONS != 0 && self.prior_op_features == 0);
        let mut f = (features & !PARENT_PROTECTION_FEATURES) | (self.prior_features & RBD_FEATURE_NON_PRIMARY);
        if operations {
            f |= RBD_FEATURE_OPERATIONS;
        }
        (f, op)
    }
}

impl Codec for ParentProtection {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_envelope(out, Self::VERSION, 1, |o| {
            self.prior_features.encode(o);
            self.prior_op_features.encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "parent protection", Self::VERSION)?;
        let b = &mut env.body;
        Ok(ParentProtection { prior_features: u64::read(b)?, prior_op_features: u64::read(b)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::features::*;
    use proptest::prelude::*;

    #[test]
    fn encoding() {
        let p = ParentProtection { prior_features: 0x100, prior_op_features: 2 };
        let b = p.get_encoding();
        assert_eq!(&b[..6], &[1, 1, 16, 0, 0, 0]);
        assert_eq!(ParentProtection::read_bytes(&b), Ok(p));
        assert!(ParentProtection::read_bytes(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn restore_after_protect_is_identity_for_consistent_headers() {
        for (f, op) in [
            (0x3d, 0),
            (0x13d, RBD_OPERATION_FEATURE_CLONE_CHILD),
            (0x53d, RBD_OPERATION_FEATURE_CLONE_PARENT),
            (0x43d, 0),
            (0x13d, OP_FEATURE_RBD_EXT_PROTECTED),
            (0x100, 0), // OPERATIONS without op features: restored as found
        ] {
            let p = ParentProtection::before(f, op);
            let (pf, pop) = ParentProtection::protect(f, op);
            assert_eq!(pf & PARENT_PROTECTION_FEATURES, PARENT_PROTECTION_FEATURES);
            assert_ne!(pop & OP_FEATURE_RBD_EXT_PROTECTED, 0);
            assert_eq!(p.restore(pf, pop), (f, op), "{f:#x} {op:#x}");
        }
    }

    #[test]
    fn restore_follows_op_features_changed_meanwhile() {
        // Had CLONE_CHILD (hence OPERATIONS); CLONE_CHILD was cleared while protected.
        let p = ParentProtection::before(0x13d, RBD_OPERATION_FEATURE_CLONE_CHILD);
        assert_eq!(p.restore(0x53d, OP_FEATURE_RBD_EXT_PROTECTED), (0x3d, 0));
        // Had nothing; stock set CLONE_PARENT while protected: OPERATIONS must stay.
        let p = ParentProtection::before(0x3d, 0);
        assert_eq!(
            p.restore(0x53d, OP_FEATURE_RBD_EXT_PROTECTED | RBD_OPERATION_FEATURE_CLONE_PARENT),
            (0x13d, RBD_OPERATION_FEATURE_CLONE_PARENT)
        );
    }

    proptest! {
        #[test]
        fn round_trip(f in any::<u64>(), op in any::<u64>()) {
            let p = ParentProtection { prior_features: f, prior_op_features: op };
            prop_assert_eq!(ParentProtection::read_bytes(&p.get_encoding()), Ok(p));
        }

        #[test]
        fn restore_never_touches_unrelated_bits(f in any::<u64>(), op in any::<u64>(), g in any::<u64>(), gop in any::<u64>()) {
            let p = ParentProtection::before(f, op);
            let (rf, rop) = p.restore(g, gop);
            prop_assert_eq!(rf & !PARENT_PROTECTION_FEATURES, g & !PARENT_PROTECTION_FEATURES);
            prop_assert_eq!(rop & !OP_FEATURE_RBD_EXT_PROTECTED, gop & !OP_FEATURE_RBD_EXT_PROTECTED);
        }
    }
}

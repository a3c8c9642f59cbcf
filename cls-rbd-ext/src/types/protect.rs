//! rbd-ext's bookkeeping on a protected parent header (key
//! [`crate::types::header::RBD_EXT_PROTECT`]) and the two ways of protecting it.
//!
//! Why two (README, "Parent protection", has the measured matrix): stock librbd (Pacific)
//! lets one gate refuse data writes, `snap create` and `snap protect` alike (the image's
//! `read_only`), so no header state refuses writes yet allows new snapshots. What differs
//! is what else is refused:
//! - [`ProtectionMode::Clones`] (default): feature MIGRATING plus a migration header of
//!   type *source*. Stock refuses every read-write open with EROFS ("image being migrated"):
//!   writes, resize, rollback, snap create/protect, `rm`, `trash mv`. Read-only opens work:
//!   reads, `info`, `export`, children, and stock clones (format 1 from already protected
//!   snapshots, format 2 from any existing snapshot).
//! - [`ProtectionMode::Strict`] (rbd-ext's only protection before): OPERATIONS +
//!   NON_PRIMARY + the op feature [`OP_FEATURE_RBD_EXT_PROTECTED`]. Stock refuses
//!   operations and stock clones; a client that already has the image open read-write
//!   turns read-only when it refreshes (NON_PRIMARY), which the clones mode cannot do (a
//!   failed refresh leaves such a client writing). `trash mv` is *not* refused.

use crate::codec::{encode_envelope, read_envelope, Codec, DecodeError, Reader};
use crate::types::features::{
    ANY_PROTECTION_FEATURES, CLONES_PROTECTION_FEATURES, OP_FEATURE_RBD_EXT_PROTECTED, PARENT_PROTECTION_FEATURES, RBD_FEATURE_OPERATIONS,
};

/// How a parent with standalone children is protected (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectionMode {
    /// MIGRATING + a source migration header: stock clones from snapshots keep working.
    Clones,
    /// OPERATIONS + NON_PRIMARY + [`OP_FEATURE_RBD_EXT_PROTECTED`].
    Strict,
}

impl ProtectionMode {
    /// What a first child gets.
    pub const DEFAULT: ProtectionMode = ProtectionMode::Clones;

    /// The byte stored in the record and passed to `protection_set`.
    pub fn to_u8(self) -> u8 {
        match self {
            ProtectionMode::Clones => 0,
            ProtectionMode::Strict => 1,
        }
    }

    /// Inverse of [`Self::to_u8`].
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(ProtectionMode::Clones),
            1 => Some(ProtectionMode::Strict),
            _ => None,
        }
    }

    /// The name the CLI and README use.
    pub fn name(self) -> &'static str {
        match self {
            ProtectionMode::Clones => "clones",
            ProtectionMode::Strict => "strict",
        }
    }

    /// Inverse of [`Self::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        [ProtectionMode::Clones, ProtectionMode::Strict].into_iter().find(|m| m.name() == s)
    }

    /// The `(features, op_features)` this mode turns unprotected `(features, op_features)`
    /// into. The clones mode also needs [`migration_header`] stored under `migration`.
    pub fn apply(self, features: u64, op_features: u64) -> (u64, u64) {
        match self {
            ProtectionMode::Clones => (features | CLONES_PROTECTION_FEATURES, op_features),
            ProtectionMode::Strict => (features | PARENT_PROTECTION_FEATURES, op_features | OP_FEATURE_RBD_EXT_PROTECTED),
        }
    }
}

/// The `migration` value of a parent under the clones protection: upstream `MigrationSpec`
/// v1/1 of type source (1), state prepared (2), pointing at no pool (-1) so that stock
/// `rbd migration execute|commit|abort` fail (ENOENT) instead of acting on it. The image
/// name and description say who put it there (`rbd status`, logs).
pub fn migration_header() -> Vec<u8> {
    let mut out = Vec::new();
    encode_envelope(&mut out, 1, 1, |o| {
        1u8.encode(o); // header_type: source
        (-1i64).encode(o); // pool_id
        String::new().encode(o); // pool_namespace
        "rbd-ext-protected-parent".to_string().encode(o); // image_name
        String::new().encode(o); // image_id
        0u32.encode(o); // snap_seqs: empty map
        0u64.encode(o); // overlap
        false.encode(o); // flatten
        false.encode(o); // mirroring
        2u8.encode(o); // state: prepared
        "protected by rbd-ext: parent of standalone clones".to_string().encode(o);
    });
    out
}

/// What the parent header held before the first `child_attach` protected it, so that the
/// last `child_detach` restores exactly that, and which protection is applied.
/// Envelope v2/1: u64 prior_features · u64 prior_op_features · (v2) u8 mode. A v1 record
/// (written before issue 16) means strict protection that nobody chose: it is migrated to
/// [`ProtectionMode::DEFAULT`] the next time rbd-ext touches the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentProtection {
    /// The header's `features` before protection, masked to the bits a protection sets
    /// ([`ANY_PROTECTION_FEATURES`]: OPERATIONS, MIGRATING and NON_PRIMARY).
    pub prior_features: u64,
    /// The header's `op_features` before protection (0 when the key was absent). Only
    /// [`OP_FEATURE_RBD_EXT_PROTECTED`] is restored from it; it also tells whether a prior
    /// OPERATIONS bit was explained by op features.
    pub prior_op_features: u64,
    /// The applied protection, as chosen; `None` for a v1 record (strict, not chosen).
    pub mode: Option<ProtectionMode>,
}

impl ParentProtection {
    /// Highest envelope version written and understood.
    pub const VERSION: u8 = 2;

    /// Records the state of a header about to be protected with `mode`.
    pub fn before(features: u64, op_features: u64, mode: ProtectionMode) -> Self {
        ParentProtection { prior_features: features & ANY_PROTECTION_FEATURES, prior_op_features: op_features, mode: Some(mode) }
    }

    /// The protection the header has now (a v1 record's is strict).
    pub fn applied(&self) -> ProtectionMode {
        self.mode.unwrap_or(ProtectionMode::Strict)
    }

    /// The `(features, op_features)` after lifting either protection from the current
    /// values (the caller deletes the `migration` key if the applied mode is clones).
    ///
    /// - [`OP_FEATURE_RBD_EXT_PROTECTED`] goes back to what it was; other op features are
    ///   left as they are now (stock may have changed them meanwhile).
    /// - NON_PRIMARY and MIGRATING go back to what they were.
    /// - OPERATIONS follows upstream's op-feature rule (set iff op_features is non-zero),
    ///   except that an OPERATIONS bit the image had before without any op feature is
    ///   restored as found.
    ///
    /// Unrelated feature bits are never touched. The caller deletes the `op_features` key
    /// when the result is 0, as upstream does.
    pub fn restore(&self, features: u64, op_features: u64) -> (u64, u64) {
        let op = (op_features & !OP_FEATURE_RBD_EXT_PROTECTED) | (self.prior_op_features & OP_FEATURE_RBD_EXT_PROTECTED);
        let operations = op != 0 || (self.prior_features & RBD_FEATURE_OPERATIONS != 0 && self.prior_op_features == 0);
        let mut f = (features & !ANY_PROTECTION_FEATURES) | (self.prior_features & ANY_PROTECTION_FEATURES & !RBD_FEATURE_OPERATIONS);
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
            self.applied().to_u8().encode(o);
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut env = read_envelope(r, "parent protection", Self::VERSION)?;
        let version = env.version;
        let b = &mut env.body;
        let (prior_features, prior_op_features) = (u64::read(b)?, u64::read(b)?);
        let mode = if version >= 2 { Some(ProtectionMode::from_u8(u8::read(b)?).ok_or(DecodeError::Invalid("parent protection mode"))?) } else { None };
        Ok(ParentProtection { prior_features, prior_op_features, mode })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::features::*;
    use proptest::prelude::*;

    const MODES: [ProtectionMode; 2] = [ProtectionMode::Clones, ProtectionMode::Strict];

    #[test]
    fn encoding() {
        let p = ParentProtection { prior_features: 0x100, prior_op_features: 2, mode: Some(ProtectionMode::Clones) };
        let b = p.get_encoding();
        assert_eq!(&b[..6], &[2, 1, 17, 0, 0, 0]);
        assert_eq!(b[22], 0);
        assert_eq!(ParentProtection::read_bytes(&b), Ok(p));
        assert!(ParentProtection::read_bytes(&b[..b.len() - 1]).is_err());
        let mut bad = b.clone();
        bad[22] = 7;
        assert!(ParentProtection::read_bytes(&bad).is_err());
    }

    #[test]
    fn a_v1_record_reads_as_unchosen_strict() {
        // As written before issue 16: v1/1, two u64.
        let mut v1 = vec![1, 1, 16, 0, 0, 0];
        v1.extend_from_slice(&0x100u64.to_le_bytes());
        v1.extend_from_slice(&2u64.to_le_bytes());
        let p = ParentProtection::read_bytes(&v1).unwrap();
        assert_eq!(p, ParentProtection { prior_features: 0x100, prior_op_features: 2, mode: None });
        assert_eq!(p.applied(), ProtectionMode::Strict);
    }

    #[test]
    fn migration_header_is_upstream_migration_spec_v1() {
        let h = migration_header();
        assert_eq!(&h[..2], &[1, 1]);
        assert_eq!(u32::from_le_bytes(h[2..6].try_into().unwrap()) as usize, h.len() - 6);
        assert_eq!(h[6], 1, "header type source");
        assert_eq!(i64::from_le_bytes(h[7..15].try_into().unwrap()), -1, "no pool");
        let desc = "protected by rbd-ext: parent of standalone clones";
        assert!(h.ends_with(desc.as_bytes()));
        // state (prepared) sits just before the description's length.
        assert_eq!(h[h.len() - desc.len() - 5], 2);
    }

    #[test]
    fn modes_round_trip_names_and_bytes() {
        for m in MODES {
            assert_eq!(ProtectionMode::from_u8(m.to_u8()), Some(m));
            assert_eq!(ProtectionMode::from_name(m.name()), Some(m));
        }
        assert_eq!(ProtectionMode::from_name("loose"), None);
        assert_eq!(ProtectionMode::DEFAULT, ProtectionMode::Clones);
    }

    #[test]
    fn restore_after_protect_is_identity_for_consistent_headers() {
        for mode in MODES {
            for (f, op) in [
                (0x3d, 0),
                (0x13d, RBD_OPERATION_FEATURE_CLONE_CHILD),
                (0x53d, RBD_OPERATION_FEATURE_CLONE_PARENT),
                (0x43d, 0),
                (0x13d, OP_FEATURE_RBD_EXT_PROTECTED),
                (0x100, 0), // OPERATIONS without op features: restored as found
            ] {
                let p = ParentProtection::before(f, op, mode);
                let (pf, pop) = mode.apply(f, op);
                match mode {
                    ProtectionMode::Strict => {
                        assert_eq!(pf & PARENT_PROTECTION_FEATURES, PARENT_PROTECTION_FEATURES);
                        assert_ne!(pop & OP_FEATURE_RBD_EXT_PROTECTED, 0);
                    }
                    ProtectionMode::Clones => {
                        assert_eq!(pf, f | RBD_FEATURE_MIGRATING);
                        assert_eq!(pop, op, "clones protection leaves op_features alone");
                    }
                }
                assert_eq!(p.restore(pf, pop), (f, op), "{mode:?} {f:#x} {op:#x}");
            }
        }
    }

    #[test]
    fn switching_modes_goes_through_the_unprotected_state() {
        // strict -> clones (the migration of a v1 parent) and back land on the other mode's
        // bits exactly, with the prior state kept.
        let (f, op) = (0x3d, RBD_OPERATION_FEATURE_CLONE_PARENT); // has a stock clone-v2 child
        let (f, op) = (f | RBD_FEATURE_OPERATIONS, op);
        let legacy = ParentProtection { mode: None, ..ParentProtection::before(f, op, ProtectionMode::Strict) };
        let strict = ProtectionMode::Strict.apply(f, op);
        let (uf, uop) = legacy.restore(strict.0, strict.1);
        assert_eq!((uf, uop), (f, op));
        assert_eq!(ProtectionMode::Clones.apply(uf, uop), (f | RBD_FEATURE_MIGRATING, op));
    }

    #[test]
    fn restore_follows_op_features_changed_meanwhile() {
        // Had CLONE_CHILD (hence OPERATIONS); CLONE_CHILD was cleared while protected.
        let p = ParentProtection::before(0x13d, RBD_OPERATION_FEATURE_CLONE_CHILD, ProtectionMode::Strict);
        assert_eq!(p.restore(0x53d, OP_FEATURE_RBD_EXT_PROTECTED), (0x3d, 0));
        // Had nothing; stock set CLONE_PARENT while protected: OPERATIONS must stay.
        for mode in MODES {
            let p = ParentProtection::before(0x3d, 0, mode);
            let (pf, pop) = mode.apply(0x3d, 0);
            let (sf, sop) = (pf | RBD_FEATURE_OPERATIONS, pop | RBD_OPERATION_FEATURE_CLONE_PARENT);
            assert_eq!(p.restore(sf, sop), (0x13d, RBD_OPERATION_FEATURE_CLONE_PARENT), "{mode:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(f in any::<u64>(), op in any::<u64>(), m in 0u8..2) {
            let p = ParentProtection { prior_features: f, prior_op_features: op, mode: ProtectionMode::from_u8(m) };
            prop_assert_eq!(ParentProtection::read_bytes(&p.get_encoding()), Ok(p));
        }

        #[test]
        fn restore_never_touches_unrelated_bits(f in any::<u64>(), op in any::<u64>(), g in any::<u64>(), gop in any::<u64>(), m in 0u8..2) {
            let p = ParentProtection::before(f, op, ProtectionMode::from_u8(m).unwrap());
            let (rf, rop) = p.restore(g, gop);
            prop_assert_eq!(rf & !ANY_PROTECTION_FEATURES, g & !ANY_PROTECTION_FEATURES);
            prop_assert_eq!(rop & !OP_FEATURE_RBD_EXT_PROTECTED, gop & !OP_FEATURE_RBD_EXT_PROTECTED);
        }
    }
}

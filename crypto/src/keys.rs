//! X25519 key agreement and the HKDF-SHA256 derivations that turn a shared secret
//! into a pairwise mask seed or an AEAD key.
//!
//! Each participant holds two agreement key pairs per round: `c` (encryption of the
//! Shamir shares) and `s` (pairwise masks). The HKDF context binds the purpose (a
//! distinct `info` label per use), the round, and the unordered pair of participants,
//! so the same Diffie–Hellman value can never yield the same key in two roles or two
//! rounds.

use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::aead::AeadKey;
use crate::prg::MaskSeed;
use crate::{ParticipantId, RoundId};

/// HKDF salt shared by every derivation of this protocol version.
pub const HKDF_SALT: &[u8] = b"cairn/secagg/v1";
/// HKDF `info` label of the pairwise mask seed s_uv.
pub const INFO_MASK_SEED: &[u8] = b"cairn/secagg/v1/pairwise-mask-seed";
/// HKDF `info` label of the AEAD key for shares sent from one participant to another.
pub const INFO_AEAD_KEY: &[u8] = b"cairn/secagg/v1/share-encryption-key";

/// Errors of key agreement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The peer's public key is a low-order point: the shared secret carries no
    /// contribution from our secret, so it must not be used.
    #[error("peer public key is of low order (non-contributory X25519 result)")]
    NonContributory,
    /// An HKDF output longer than 255 × 32 bytes was requested.
    #[error("HKDF-SHA256 cannot produce {len} bytes (at most 8160)")]
    OutputTooLong {
        /// Requested length.
        len: usize,
    },
}

/// An X25519 public key, as advertised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgreementPublic(pub [u8; 32]);

/// An X25519 secret key. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AgreementSecret(StaticSecret);

impl std::fmt::Debug for AgreementSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgreementSecret(<redacted>)")
    }
}

impl AgreementSecret {
    /// A fresh secret.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(StaticSecret::random_from_rng(rng))
    }

    /// Rebuilds a secret from its 32 bytes (e.g. after Shamir reconstruction).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    /// The secret's bytes, in a buffer that zeroizes on drop (to Shamir-share it).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> AgreementPublic {
        AgreementPublic(PublicKey::from(&self.0).to_bytes())
    }

    /// The raw X25519 shared secret with `peer` (RFC 7748), refused if non-contributory.
    pub fn agree(&self, peer: &AgreementPublic) -> Result<SharedSecret, KeyError> {
        let shared = self.0.diffie_hellman(&PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return Err(KeyError::NonContributory);
        }
        Ok(SharedSecret(*shared.as_bytes()))
    }
}

/// A raw X25519 shared secret; only ever fed to HKDF. Zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret([u8; 32]);

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

impl SharedSecret {
    /// The raw bytes (for known-answer tests).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The pairwise mask seed s_uv for the unordered pair {a, b} in `round`.
    pub fn mask_seed(&self, round: &RoundId, a: ParticipantId, b: ParticipantId) -> MaskSeed {
        let mut out = derive32(&self.0, &pair_info(INFO_MASK_SEED, round, a, b));
        let seed = MaskSeed::from_bytes(out);
        out.zeroize();
        seed
    }

    /// The AEAD key protecting shares between the unordered pair {a, b} in `round`.
    pub fn aead_key(&self, round: &RoundId, a: ParticipantId, b: ParticipantId) -> AeadKey {
        let mut out = derive32(&self.0, &pair_info(INFO_AEAD_KEY, round, a, b));
        let key = AeadKey::from_bytes(out);
        out.zeroize();
        key
    }
}

/// `label ‖ round ‖ min(a,b) ‖ max(a,b)`: symmetric in the pair, so both ends agree.
fn pair_info(label: &[u8], round: &RoundId, a: ParticipantId, b: ParticipantId) -> Vec<u8> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut info = Vec::with_capacity(label.len() + 32 + 8);
    info.extend_from_slice(label);
    info.extend_from_slice(&round.0);
    info.extend_from_slice(&lo.0.to_le_bytes());
    info.extend_from_slice(&hi.0.to_le_bytes());
    info
}

/// HKDF-SHA256 (RFC 5869) extract-then-expand into `out`.
///
/// Fails only if `out` is longer than 255 hash lengths (8160 bytes).
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), KeyError> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .map_err(|_| KeyError::OutputTooLong { len: out.len() })
}

fn derive32(ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    #[allow(clippy::expect_used)]
    hkdf_sha256(HKDF_SALT, ikm, info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn both_ends_derive_the_same_keys_and_roles_differ() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let (a, b) = (
            AgreementSecret::random(&mut rng),
            AgreementSecret::random(&mut rng),
        );
        let round = RoundId([3; 32]);
        let (ia, ib) = (ParticipantId(4), ParticipantId(9));
        let sab = a.agree(&b.public()).expect("contributory");
        let sba = b.agree(&a.public()).expect("contributory");
        assert_eq!(sab.mask_seed(&round, ia, ib), sba.mask_seed(&round, ib, ia));
        let seed = sab.mask_seed(&round, ia, ib);
        assert_ne!(seed.as_bytes(), sab.aead_key(&round, ia, ib).as_bytes());
        assert_ne!(seed, sab.mask_seed(&RoundId([4; 32]), ia, ib));
        assert_ne!(seed, sab.mask_seed(&round, ia, ParticipantId(10)));
    }

    #[test]
    fn low_order_point_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let a = AgreementSecret::random(&mut rng);
        assert_eq!(
            a.agree(&AgreementPublic([0; 32])).err(),
            Some(KeyError::NonContributory)
        );
    }
}

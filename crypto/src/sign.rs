//! Ed25519 identity signatures (RFC 8032): a participant's long-lived identity key
//! signs its per-round agreement keys and the survivor list.
//!
//! Verification is strict (`verify_strict`: canonical encodings, no small-order
//! keys), so a signature has exactly one accepted form.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::ZeroizeOnDrop;

/// Errors of signature handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature does not verify under the key for this message.
    #[error("signature does not verify")]
    Invalid,
    /// The 32 bytes are not a valid Ed25519 public key.
    #[error("malformed Ed25519 public key")]
    MalformedKey,
}

/// A participant's Ed25519 identity signing key. Zeroized on drop, never printed.
#[derive(Clone, ZeroizeOnDrop)]
pub struct IdentityKey(SigningKey);

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityKey(<redacted>)")
    }
}

impl IdentityKey {
    /// A fresh identity key.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(SigningKey::generate(rng))
    }

    /// Rebuilds a key from its 32-byte RFC 8032 secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte secret seed (to store the key; handle with care).
    pub fn to_seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> IdentityPublic {
        IdentityPublic(self.0.verifying_key().to_bytes())
    }

    /// Signs `msg` (deterministic, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes().to_vec())
    }
}

/// An Ed25519 public key (32 bytes, compressed Edwards point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityPublic(pub [u8; 32]);

/// An Ed25519 signature. Held as bytes so that a malformed one from a peer is a value we
/// can reject, not a decoding failure; its length is checked on verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature(pub Vec<u8>);

/// Bytes of a well-formed signature.
pub const SIGNATURE_BYTES: usize = 64;

impl IdentityPublic {
    /// Checks that the 32 bytes are a usable Ed25519 public key: a valid point encoding
    /// that is not of small order (such a key could verify signatures it never made).
    pub fn validate(&self) -> Result<(), SignatureError> {
        match VerifyingKey::from_bytes(&self.0) {
            Ok(k) if !k.is_weak() => Ok(()),
            _ => Err(SignatureError::MalformedKey),
        }
    }

    /// Checks `sig` on `msg` under this key (strict RFC 8032 verification).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::MalformedKey)?;
        let bytes: [u8; SIGNATURE_BYTES] = sig
            .0
            .as_slice()
            .try_into()
            .map_err(|_| SignatureError::Invalid)?;
        key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&bytes))
            .map_err(|_| SignatureError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sign_verify_and_reject_tampering() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let key = IdentityKey::random(&mut rng);
        let sig = key.sign(b"hello");
        assert_eq!(key.public().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            key.public().verify(b"hellp", &sig),
            Err(SignatureError::Invalid)
        );
        let mut bad = sig.clone();
        bad.0[10] ^= 0x40;
        assert_eq!(
            key.public().verify(b"hello", &bad),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            key.public().verify(b"hello", &Signature(vec![0; 63])),
            Err(SignatureError::Invalid)
        );
        let other = IdentityKey::random(&mut rng);
        assert_eq!(
            other.public().verify(b"hello", &sig),
            Err(SignatureError::Invalid)
        );
        assert!(format!("{key:?}").contains("<redacted>"));
        assert_eq!(key.public().validate(), Ok(()));
        let mut neutral = [0u8; 32];
        neutral[0] = 1;
        assert_eq!(
            IdentityPublic(neutral).validate(),
            Err(SignatureError::MalformedKey)
        );
    }
}

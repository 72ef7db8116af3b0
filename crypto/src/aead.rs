//! ChaCha20-Poly1305 (RFC 8439) for the Shamir shares a participant sends to a
//! neighbour through the coordinator.
//!
//! The key comes from the pair's `c` agreement keys ([`crate::keys`]), fresh per round
//! and per pair; each direction of the pair sends exactly one message per round, so the
//! nonce is simply `sender ‖ receiver ‖ 0`, which never repeats under one key. The
//! associated data binds the round, the sender and the receiver: a ciphertext replayed
//! from another round or re-addressed by the coordinator fails to open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{ParticipantId, RoundId};

/// Bytes of the Poly1305 tag appended to every ciphertext.
pub const TAG_BYTES: usize = 16;

/// Domain label at the head of the associated data.
const AD_LABEL: &[u8] = b"cairn/secagg/v1/shares";

/// A ChaCha20-Poly1305 key. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AeadKey([u8; 32]);

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

impl AeadKey {
    /// Wraps 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes (for tests and known-answer checks).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Errors of the AEAD layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    /// The tag did not verify: wrong key, tampered ciphertext, or wrong associated data
    /// (another round, sender or receiver).
    #[error("ciphertext failed authentication")]
    Authentication,
    /// Encryption failed (only for messages longer than ChaCha20's 256 GiB limit).
    #[error("plaintext too long to encrypt")]
    TooLong,
}

/// RFC 8439 AEAD encryption with an explicit nonce and associated data.
pub fn seal(
    key: &AeadKey,
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, AeadError> {
    ChaCha20Poly1305::new(Key::from_slice(&key.0))
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| AeadError::TooLong)
}

/// RFC 8439 AEAD decryption; the plaintext zeroizes when dropped.
pub fn open(
    key: &AeadKey,
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AeadError> {
    ChaCha20Poly1305::new(Key::from_slice(&key.0))
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| AeadError::Authentication)
}

fn nonce(sender: ParticipantId, receiver: ParticipantId) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&sender.0.to_le_bytes());
    n[4..8].copy_from_slice(&receiver.0.to_le_bytes());
    n
}

fn associated_data(round: &RoundId, sender: ParticipantId, receiver: ParticipantId) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_LABEL.len() + 40);
    ad.extend_from_slice(AD_LABEL);
    ad.extend_from_slice(&round.0);
    ad.extend_from_slice(&sender.0.to_le_bytes());
    ad.extend_from_slice(&receiver.0.to_le_bytes());
    ad
}

/// Encrypts `plaintext` from `sender` to `receiver` in `round`.
pub fn encrypt_for(
    key: &AeadKey,
    round: &RoundId,
    sender: ParticipantId,
    receiver: ParticipantId,
    plaintext: &[u8],
) -> Result<Vec<u8>, AeadError> {
    seal(
        key,
        &nonce(sender, receiver),
        &associated_data(round, sender, receiver),
        plaintext,
    )
}

/// Decrypts a ciphertext that claims to come from `sender` to `receiver` in `round`.
pub fn decrypt_from(
    key: &AeadKey,
    round: &RoundId,
    sender: ParticipantId,
    receiver: ParticipantId,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AeadError> {
    open(
        key,
        &nonce(sender, receiver),
        &associated_data(round, sender, receiver),
        ciphertext,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_binding_to_round_sender_receiver() {
        let key = AeadKey::from_bytes([5; 32]);
        let round = RoundId([1; 32]);
        let (a, b) = (ParticipantId(1), ParticipantId(2));
        let ct = encrypt_for(&key, &round, a, b, b"share bytes").expect("short");
        assert_eq!(ct.len(), 11 + TAG_BYTES);
        assert_eq!(
            &decrypt_from(&key, &round, a, b, &ct).expect("authentic")[..],
            b"share bytes"
        );
        assert_eq!(
            decrypt_from(&key, &RoundId([2; 32]), a, b, &ct).err(),
            Some(AeadError::Authentication)
        );
        assert_eq!(
            decrypt_from(&key, &round, b, a, &ct).err(),
            Some(AeadError::Authentication)
        );
        assert_eq!(
            decrypt_from(&key, &round, a, ParticipantId(3), &ct).err(),
            Some(AeadError::Authentication)
        );
        let mut tampered = ct.clone();
        tampered[0] ^= 1;
        assert_eq!(
            decrypt_from(&key, &round, a, b, &tampered).err(),
            Some(AeadError::Authentication)
        );
        let other = AeadKey::from_bytes([6; 32]);
        assert_eq!(
            decrypt_from(&other, &round, a, b, &ct).err(),
            Some(AeadError::Authentication)
        );
    }
}

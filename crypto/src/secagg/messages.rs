//! The messages of a SecAgg+ round and the exact bytes each signature covers.
//!
//! The `sender` field of every message must be checked by the transport against the
//! authenticated peer (mutual TLS); the functions here check everything else. Sizes are
//! fixed by the round configuration: a masked vector has exactly `vector_len` elements,
//! a share ciphertext exactly [`SHARE_CIPHERTEXT_BYTES`].

use serde::{Deserialize, Serialize};

use crate::aead::TAG_BYTES;
use crate::keys::AgreementPublic;
use crate::ring::RingElem;
use crate::shamir::{Share, SHARE_BYTES};
use crate::sign::Signature;
use crate::{ParticipantId, RoundId};

/// Plaintext of one encrypted share: the share of b then the share of s_sk.
pub const SHARE_PLAINTEXT_BYTES: usize = 2 * SHARE_BYTES;
/// Ciphertext of one encrypted share.
pub const SHARE_CIPHERTEXT_BYTES: usize = SHARE_PLAINTEXT_BYTES + TAG_BYTES;

/// Phase 0: a participant's two fresh agreement keys, signed with its identity key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvertiseKeys {
    /// Sender.
    pub sender: ParticipantId,
    /// Key `c`, for share encryption.
    pub c_pk: AgreementPublic,
    /// Key `s`, for pairwise masks.
    pub s_pk: AgreementPublic,
    /// Signature over [`advertise_payload`].
    pub signature: Signature,
}

/// The bytes an [`AdvertiseKeys`] signature covers.
pub fn advertise_payload(
    round: &RoundId,
    sender: ParticipantId,
    c_pk: &AgreementPublic,
    s_pk: &AgreementPublic,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(b"cairn/secagg/v1/advertise-keys");
    m.extend_from_slice(&round.0);
    m.extend_from_slice(&sender.0.to_le_bytes());
    m.extend_from_slice(&c_pk.0);
    m.extend_from_slice(&s_pk.0);
    m
}

/// One share pair (of b and of s_sk), encrypted from `sender` to `receiver`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedShare {
    /// Whose secrets these are shares of.
    pub sender: ParticipantId,
    /// Who can decrypt them.
    pub receiver: ParticipantId,
    /// ChaCha20-Poly1305 ciphertext, [`SHARE_CIPHERTEXT_BYTES`] long.
    pub ciphertext: Vec<u8>,
}

/// Phase 1: a participant's encrypted shares, one per live neighbour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareKeys {
    /// Sender.
    pub sender: ParticipantId,
    /// One per neighbour that advertised keys.
    pub shares: Vec<EncryptedShare>,
}

/// Phase 2: the masked input y = x + PRG(b) + Σ ±PRG(s_uv).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedInput {
    /// Sender.
    pub sender: ParticipantId,
    /// The masked vector, `vector_len` ring elements (4 bytes each on the wire).
    #[serde(with = "crate::ring::serde_elems")]
    pub y: Vec<RingElem>,
}

/// Phase 3: a survivor's signature on the survivor list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencySignature {
    /// Signer.
    pub sender: ParticipantId,
    /// Signature over [`survivors_payload`].
    pub signature: Signature,
}

/// The bytes a [`ConsistencySignature`] covers.
pub fn survivors_payload(round: &RoundId, survivors: &[ParticipantId]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + 4 * survivors.len());
    m.extend_from_slice(b"cairn/secagg/v1/survivors");
    m.extend_from_slice(&round.0);
    m.extend_from_slice(&(survivors.len() as u64).to_le_bytes());
    for id in survivors {
        m.extend_from_slice(&id.0.to_le_bytes());
    }
    m
}

/// Phase 4, coordinator to client: the signed survivor list and whose mask keys to reveal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmaskRequest {
    /// Participants whose masked input arrived, sorted; the client reveals its shares of
    /// their self-mask seeds b.
    pub survivors: Vec<ParticipantId>,
    /// Signatures of survivors on the list.
    pub signatures: Vec<ConsistencySignature>,
    /// Neighbours that shared keys but sent no masked input; the client reveals its shares
    /// of their mask keys s_sk.
    pub dropped: Vec<ParticipantId>,
}

/// A revealed share and whose secret it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealedShare {
    /// The participant whose secret this is a share of.
    pub owner: ParticipantId,
    /// The share.
    pub share: Share,
}

/// Phase 4, client to coordinator: the shares asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmaskResponse {
    /// Sender.
    pub sender: ParticipantId,
    /// Shares of survivors' self-mask seeds b.
    pub self_mask_shares: Vec<RevealedShare>,
    /// Shares of dropped participants' mask keys s_sk.
    pub mask_key_shares: Vec<RevealedShare>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_vector_is_four_bytes_per_element_on_the_wire() {
        let msg = MaskedInput {
            sender: ParticipantId(3),
            y: vec![u32::MAX, 0, 0x8000_0000, 12345],
        };
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&msg, cfg).expect("encodes");
        assert_eq!(bytes.len(), 1 + 1 + 4 * 4); // sender varint, length varint, elements
        let (back, _): (MaskedInput, usize) =
            bincode::serde::decode_from_slice(&bytes, cfg).expect("decodes");
        assert_eq!(back, msg);
        let mut bad = bytes.clone();
        bad[1] = 15; // 15 bytes: not whole elements
        bad.truncate(2 + 15);
        assert!(bincode::serde::decode_from_slice::<MaskedInput, _>(&bad, cfg).is_err());
    }

    #[test]
    fn revealed_shares_roundtrip_and_invalid_ones_are_refused() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let shares = crate::shamir::split(&[9; 32], 2, &[4, 5], &mut rng).expect("valid");
        let msg = UnmaskResponse {
            sender: ParticipantId(3),
            self_mask_shares: vec![RevealedShare {
                owner: ParticipantId(7),
                share: shares[0].clone(),
            }],
            mask_key_shares: vec![RevealedShare {
                owner: ParticipantId(8),
                share: shares[1].clone(),
            }],
        };
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&msg, cfg).expect("encodes");
        let (back, _): (UnmaskResponse, usize) =
            bincode::serde::decode_from_slice(&bytes, cfg).expect("decodes");
        assert_eq!(back, msg);
        // A share whose x-coordinate is zero does not decode.
        let pos = bytes
            .windows(8)
            .position(|w| w == 4u64.to_le_bytes())
            .expect("x of the first share");
        let mut bad = bytes.clone();
        bad[pos] = 0;
        assert!(bincode::serde::decode_from_slice::<UnmaskResponse, _>(&bad, cfg).is_err());
    }
}

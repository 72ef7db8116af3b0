//! Secure-aggregation primitives and the SecAgg+ protocol core for cairn: pure and
//! sans-IO. Nothing here touches a socket, a file or a clock; randomness comes in as an
//! argument.
//!
//! Primitives:
//! - [`ring`]: the ring Z_2^32 masked updates live in (the one definition of its width);
//! - [`quant`]: fixed-point quantisation of clipped float updates into the ring, the
//!   capacity check that the sum cannot wrap, and dequantisation of sums;
//! - [`prg`]: AES-256-CTR expanding a 256-bit [`prg::MaskSeed`] into ring masks;
//! - [`keys`]: X25519 agreement and the HKDF-SHA256 derivations (pairwise seeds, AEAD keys);
//! - [`aead`]: ChaCha20-Poly1305 for shares routed through the coordinator;
//! - [`sign`]: Ed25519 identity signatures;
//! - [`shamir`]: t-of-n Shamir sharing of 32-byte secrets over GF(2^61 − 1).
//!
//! Protocol: [`secagg`] holds the SecAgg+ client (typestate, one type per phase) and
//! server (one collector per phase), the neighbour graph and the parameter choice.
//!
//! Every secret (mask seeds, agreement secrets, shares, identity keys) zeroizes on drop
//! and prints as `<redacted>`.

pub mod aead;
pub mod keys;
pub mod prg;
pub mod quant;
pub mod ring;
pub mod secagg;
pub mod shamir;
pub mod sign;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A participant's index in the job; orders the pairwise mask signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParticipantId(pub u32);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// 32 bytes naming one round of one job; bound into every signature, key derivation and
/// AEAD associated data so nothing carries over between rounds or jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoundId(pub [u8; 32]);

impl RoundId {
    /// SHA-256 of the job id and round number, domain-separated.
    pub fn new(job_id: &str, round: u32) -> Self {
        let mut h = Sha256::new();
        h.update(b"cairn/round-id/v1");
        h.update((job_id.len() as u64).to_le_bytes());
        h.update(job_id.as_bytes());
        h.update(round.to_le_bytes());
        Self(h.finalize().into())
    }
}

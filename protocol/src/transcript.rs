//! The job's transcript: an append-only, hash-chained log of everything an auditor needs
//! to re-check a proven job from the transcript alone — the job's settings, verifying key
//! and initial model, each holder's signed dataset commitment, and for every round its
//! seed, the global model's hash, each survivor's commitment and proof, who was dropped
//! and why, the survivors' signatures on the survivor list, the unmasked sums S and R (in
//! limbs), and the new model's hash.
//!
//! Each record carries the hash of the one before it, so removing, reordering or editing a
//! record breaks the chain. Pure data: the coordinator appends, `cairn audit` checks.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use cairn_crypto::sign::{IdentityPublic, Signature};

use crate::model::{HyperParams, ModelSpec};
use crate::round::ParticipantId;
use crate::server_opt::ServerOptimizer;
use crate::wire::{DatasetCommitment, ProofSpec, ProvenInput};

/// Magic bytes at the start of an exported transcript file.
pub const FILE_MAGIC: &[u8; 8] = b"cairnTR9";

/// One fact of the job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// The job: its settings, the verifying key of its circuit shape and its initial model.
    Job {
        /// Job id (dataset commitments are signed over it).
        job_id: String,
        /// The model trained.
        model: ModelSpec,
        /// Local training hyper-parameters.
        hyper: HyperParams,
        /// The server optimiser that turns each round's mean update into the next model
        /// (its moments start fresh and are replayed by the auditor).
        server: ServerOptimizer,
        /// Fixed-point scale of the aggregated update (2^scale_bits).
        scale_bits: u32,
        /// Proof settings.
        proof: ProofSpec,
        /// The verifying key, with its shape header (`cairn_circuits` format).
        verifying_key: Vec<u8>,
        /// The initial global model.
        initial_model: Vec<f32>,
        /// Fewest survivors a round needs to be applied.
        min_participants: u32,
        /// SecAgg+ tolerated dropout rate δ: with γ and each round's selection, what fixes
        /// the round's (k, t), which the auditor recomputes.
        dropout: f64,
        /// SecAgg+ tolerated corruption rate γ.
        corruption: f64,
        /// The coordinator's Ed25519 key: it signs the transcript's head when the job ends
        /// ([`Entry::Finished`]).
        coordinator: IdentityPublic,
        /// A DP job's privacy: the mechanism (the same parameters as `proof.noise`, which the
        /// proofs hold every holder to), δ and the budget. The auditor accounts (ε, δ) from it.
        privacy: Option<crate::privacy::DpSettings>,
    },
    /// A holder's signed dataset commitment.
    Enrolled {
        /// Its id in the job.
        participant: ParticipantId,
        /// Its identity key.
        identity: IdentityPublic,
        /// The signed commitment.
        dataset: DatasetCommitment,
    },
    /// The job's randomness: every roster holder's commitment and revealed contribution,
    /// sorted by identity key ([`crate::randomness`]). Recorded once, before the first
    /// round; every round seed derives from it, and a holder's index in it is the
    /// participant number its rows and statement are drawn for.
    Randomness {
        /// The contributions.
        contributions: Vec<crate::randomness::Contribution>,
    },
    /// A completed round.
    Round {
        /// Round number.
        round: u32,
        /// The seed that fixed each participant's rows.
        round_seed: [u8; 32],
        /// [`model_hash`] of the global model the round started from.
        global_hash: [u8; 32],
        /// Selected participants.
        participants: Vec<ParticipantId>,
        /// Each survivor's commitment and proof, in id order.
        inputs: Vec<(ParticipantId, ProvenInput)>,
        /// Who was dropped, and why.
        dropped: Vec<(ParticipantId, String)>,
        /// The round's Shamir threshold t (at least t survivors signed the list).
        threshold: u32,
        /// Survivors' Ed25519 signatures on the survivor list (the ids of `inputs`).
        survivor_signatures: Vec<(ParticipantId, Signature)>,
        /// S = Σ x over the survivors.
        update_sum: Vec<i64>,
        /// Per-limb sums of the survivors' blindings (R).
        blinding_limb_sums: Vec<u64>,
        /// [`model_hash`] of the model after the update.
        new_model_hash: [u8; 32],
        /// Sampled-step rounds: the round's beacon, from which each survivor's (recorded
        /// with its chain in `inputs`) was derived.
        beacon: Option<[u8; 32]>,
    },
    /// The coordinator stopped and resumed the job: the round in flight (if any) was
    /// abandoned with nothing applied, and the holders joined and enrolled afresh. Each
    /// holder's identity keeps the dataset commitment it made before (same root and rows).
    Resumed {
        /// The number the next round gets.
        next_round: u32,
        /// The round that was in flight and abandoned, if any.
        abandoned: Option<u32>,
    },
    /// The job ended: the last record. The coordinator signs, and the holders connected at
    /// the end countersign, [`seal_payload`] over the hash of the record before this one,
    /// so that a transcript cut short, or with a round appended, no longer carries their
    /// signatures on its head.
    Finished {
        /// The last round begun (completed or failed); 0 when none was.
        last_round: u32,
        /// Rounds completed (applied).
        rounds_completed: u32,
        /// [`model_hash`] of the final model.
        final_model_hash: [u8; 32],
        /// Why the job stopped early, when it did.
        error: Option<String>,
        /// The coordinator's signature (key in [`Entry::Job`]).
        coordinator_signature: Signature,
        /// Holders' countersignatures, by identity key.
        countersignatures: Vec<(IdentityPublic, Signature)>,
    },
    /// A round that was rejected or failed: nothing applied.
    RoundFailed {
        /// Round number.
        round: u32,
        /// Why.
        reason: String,
        /// Who was dropped, and why.
        dropped: Vec<(ParticipantId, String)>,
    },
}

/// A record: its position, the previous record's hash, the entry, and its own hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the transcript, from 0.
    pub seq: u64,
    /// Hash of the previous record (zeros for the first).
    pub prev: [u8; 32],
    /// The fact.
    pub entry: Entry,
    /// SHA-256 over the domain tag, `seq`, `prev` and the entry's encoding.
    pub hash: [u8; 32],
}

/// Why a transcript's chain does not hold.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ChainError {
    /// A record is out of place (missing, duplicated or reordered).
    #[error("record {index}: sequence number {seq} out of place")]
    Sequence {
        /// Position in the file.
        index: usize,
        /// The number it carries.
        seq: u64,
    },
    /// A record does not point at its predecessor.
    #[error("record {seq}: does not follow the record before it (chain broken)")]
    Link {
        /// Its sequence number.
        seq: u64,
    },
    /// A record's hash does not match its content.
    #[error("record {seq}: content does not match its hash (edited)")]
    Hash {
        /// Its sequence number.
        seq: u64,
    },
    /// The file is not a transcript.
    #[error("not a cairn transcript: {0}")]
    Format(String),
}

/// The hash of a model's parameters (SHA-256 of their little-endian f32 bytes).
pub fn model_hash(params: &[f32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/model/v1");
    for p in params {
        h.update(p.to_le_bytes());
    }
    h.finalize().into()
}

/// What the coordinator signs and the holders countersign when a job ends: the job, the
/// hash of the transcript's last record before [`Entry::Finished`], the last round begun,
/// the rounds completed and the final model's hash. One place for the encoding: the
/// coordinator, the holders and the auditor all call this.
pub fn seal_payload(
    job_id: &str,
    head: &[u8; 32],
    last_round: u32,
    rounds_completed: u32,
    final_model_hash: &[u8; 32],
) -> Vec<u8> {
    let mut out = b"cairn/transcript-seal/v1".to_vec();
    out.extend((job_id.len() as u64).to_le_bytes());
    out.extend(job_id.as_bytes());
    out.extend(head);
    out.extend(last_round.to_le_bytes());
    out.extend(rounds_completed.to_le_bytes());
    out.extend(final_model_hash);
    out
}

/// Most bytes a transcript (or one stored record) may claim while it is decoded. Without a
/// limit, a crafted length prefix made the decoder reserve its claim at once (a capacity
/// overflow panic, found by `tests/decoder_smoke.rs`); with it, a claim past the limit is a
/// typed error, and no claim reserves more than the limit.
pub const MAX_TRANSCRIPT_BYTES: usize = 1 << 30;

/// The encoding's configuration for reading (the same encoding, with the limit).
fn decoding() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_TRANSCRIPT_BYTES>()
}

fn encode_entry(entry: &Entry) -> Vec<u8> {
    // Encoding plain data into a Vec cannot fail.
    bincode::serde::encode_to_vec(entry, bincode::config::standard()).unwrap_or_default()
}

fn record_hash(seq: u64, prev: &[u8; 32], entry: &Entry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/transcript/v1");
    h.update(seq.to_le_bytes());
    h.update(prev);
    h.update(encode_entry(entry));
    h.finalize().into()
}

/// An append-only, hash-chained transcript.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The records, in order.
    pub records: Vec<Record>,
}

impl Record {
    /// One record's encoding, as a store keeps it.
    pub fn to_bytes(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// Decodes [`Record::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChainError> {
        bincode::serde::decode_from_slice(bytes, decoding())
            .map(|(r, _)| r)
            .map_err(|e| ChainError::Format(e.to_string()))
    }
}

impl Transcript {
    /// Appends `entry`, chained to the last record; returns the new record.
    pub fn append(&mut self, entry: Entry) -> &Record {
        let seq = self.records.len() as u64;
        let prev = self.head();
        let hash = record_hash(seq, &prev, &entry);
        self.records.push(Record {
            seq,
            prev,
            entry,
            hash,
        });
        &self.records[self.records.len() - 1]
    }

    /// The last record's hash (zeros when empty).
    pub fn head(&self) -> [u8; 32] {
        self.records.last().map_or([0; 32], |r| r.hash)
    }

    /// Checks the chain: dense sequence numbers, each record linked to its predecessor,
    /// each hash matching its content.
    pub fn verify_chain(&self) -> Result<(), ChainError> {
        let mut prev = [0u8; 32];
        for (index, r) in self.records.iter().enumerate() {
            if r.seq != index as u64 {
                return Err(ChainError::Sequence { index, seq: r.seq });
            }
            if r.prev != prev {
                return Err(ChainError::Link { seq: r.seq });
            }
            if record_hash(r.seq, &r.prev, &r.entry) != r.hash {
                return Err(ChainError::Hash { seq: r.seq });
            }
            prev = r.hash;
        }
        Ok(())
    }

    /// The transcript as one file: magic, then the records.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = FILE_MAGIC.to_vec();
        out.extend(
            bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default(),
        );
        out
    }

    /// Reads a file written by [`Transcript::to_bytes`] (the chain is not checked here).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChainError> {
        let body = bytes
            .strip_prefix(FILE_MAGIC.as_slice())
            .ok_or_else(|| ChainError::Format("bad magic".into()))?;
        let (t, used): (Self, usize) = bincode::serde::decode_from_slice(body, decoding())
            .map_err(|e| ChainError::Format(e.to_string()))?;
        if used != body.len() {
            return Err(ChainError::Format(format!(
                "{} trailing bytes",
                body.len() - used
            )));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transcript {
        let mut t = Transcript::default();
        for round in 1..=3 {
            t.append(Entry::RoundFailed {
                round,
                reason: format!("r{round}"),
                dropped: vec![],
            });
        }
        t
    }

    #[test]
    fn a_chain_verifies_and_round_trips() {
        let t = sample();
        assert_eq!(t.verify_chain(), Ok(()));
        let back = Transcript::from_bytes(&t.to_bytes()).expect("decodes");
        assert_eq!(back, t);
        assert!(Transcript::from_bytes(b"nonsense").is_err());
    }

    #[test]
    fn edits_removals_and_reorders_break_the_chain() {
        let mut t = sample();
        if let Entry::RoundFailed { reason, .. } = &mut t.records[1].entry {
            *reason = "edited".into();
        }
        assert_eq!(t.verify_chain(), Err(ChainError::Hash { seq: 1 }));

        let mut t = sample();
        t.records.remove(1);
        assert!(matches!(
            t.verify_chain(),
            Err(ChainError::Sequence { index: 1, .. })
        ));

        let mut t = sample();
        t.records.swap(1, 2);
        assert!(t.verify_chain().is_err());

        // Renumbering and rehashing a record after a removal still breaks the link.
        let mut t = sample();
        let last = t.records.remove(2);
        t.records.remove(1);
        let mut moved = last;
        moved.seq = 1;
        moved.hash = record_hash(1, &moved.prev, &moved.entry);
        t.records.push(moved);
        assert_eq!(t.verify_chain(), Err(ChainError::Link { seq: 1 }));
    }

    #[test]
    fn model_hash_depends_on_every_parameter() {
        let a = model_hash(&[0.0, 1.0]);
        assert_ne!(a, model_hash(&[0.0, 1.0000001]));
        assert_ne!(a, model_hash(&[1.0, 0.0]));
    }
}

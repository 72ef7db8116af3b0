//! What a proven round's messages carry about the proof: the proof settings a job
//! announces ([`ProofSpec`], with the one check of their rules), a holder's dataset
//! commitment, and the commitment and proof beside each masked input. The wire
//! (`cairn_protocol::wire`) carries these types as they are.

use cairn_circuits::training::{shape_problems, ShapeSettings};
use cairn_crypto::sign::{IdentityKey, IdentityPublic, Signature};
use serde::{Deserialize, Serialize};

/// A holder's commitment to its dataset, made once before any round: the Poseidon Merkle
/// root of its fixed-point rows and their count, signed with its identity key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetCommitment {
    /// The Merkle root (a BN254 field element, 32 bytes little-endian).
    pub root: [u8; 32],
    /// Rows under the root (the round seed picks indices below this).
    pub n_rows: u64,
    /// Proven DP jobs: the commitment to the holder's secret noise seed
    /// ([`crate::noise::seed_commitment`]), made with the dataset's, before any round.
    pub noise_seed: Option<[u8; 32]>,
    /// Ed25519 signature on [`DatasetCommitment::signed_bytes`].
    pub signature: Signature,
}

/// What a holder's dataset commitment fixes for the whole job: its root, its row count and
/// (proven DP jobs) its noise-seed commitment. A holder joining again, even across a
/// coordinator restart, must commit to exactly these.
pub type DatasetFacts = ([u8; 32], u64, Option<[u8; 32]>);

impl DatasetCommitment {
    /// The facts this commitment fixes for the job ([`DatasetFacts`]).
    pub fn facts(&self) -> DatasetFacts {
        (self.root, self.n_rows, self.noise_seed)
    }

    /// What the identity key signs: a domain tag, the job, the root and the row count, then
    /// (proven DP jobs) a tag and the noise-seed commitment.
    pub fn signed_bytes(
        job_id: &str,
        root: &[u8; 32],
        n_rows: u64,
        noise_seed: Option<&[u8; 32]>,
    ) -> Vec<u8> {
        let mut m = b"cairn/dataset/v1".to_vec();
        m.extend_from_slice(&(job_id.len() as u32).to_le_bytes());
        m.extend_from_slice(job_id.as_bytes());
        m.extend_from_slice(root);
        m.extend_from_slice(&n_rows.to_le_bytes());
        if let Some(c) = noise_seed {
            m.extend_from_slice(b"noise-seed");
            m.extend_from_slice(c);
        }
        m
    }

    /// Signs a commitment for `job_id` (no noise seed).
    pub fn sign(job_id: &str, root: [u8; 32], n_rows: u64, identity: &IdentityKey) -> Self {
        Self::sign_with_noise(job_id, root, n_rows, None, identity)
    }

    /// Signs a commitment for `job_id` with the noise-seed commitment of a proven DP job.
    pub fn sign_with_noise(
        job_id: &str,
        root: [u8; 32],
        n_rows: u64,
        noise_seed: Option<[u8; 32]>,
        identity: &IdentityKey,
    ) -> Self {
        let signature = identity.sign(&Self::signed_bytes(
            job_id,
            &root,
            n_rows,
            noise_seed.as_ref(),
        ));
        Self {
            root,
            n_rows,
            noise_seed,
            signature,
        }
    }

    /// Checks the signature against `identity` for `job_id`.
    pub fn verify(&self, job_id: &str, identity: &IdentityPublic) -> Result<(), String> {
        identity
            .verify(
                &Self::signed_bytes(job_id, &self.root, self.n_rows, self.noise_seed.as_ref()),
                &self.signature,
            )
            .map_err(|e| format!("dataset commitment: {e}"))
    }
}

/// The fixed-point scale (2^16) of a proven update: the circuit's format. A proven job's
/// secure aggregation must quantise at exactly this scale (the holder masks the x its proof
/// commits to, and the sum is decoded at the job's scale).
pub const PROVEN_SCALE_BITS: u32 = cairn_circuits::fixed::FRAC_BITS;

/// The proof settings of a round: with the model, K and B they fix the circuit's shape.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProofSpec {
    /// Tolerance τ between the submitted update and the fixed-point replay.
    pub tolerance: f32,
    /// Depth of every holder's dataset tree (index bits); a leaf is a block of
    /// `block_rows` rows.
    pub tree_depth: u32,
    /// Ring elements after the update that carry the commitment's blinding, in limbs.
    pub blinding_limbs: u32,
    /// Signed bits of each committed fixed-point feature: the range every feature is held
    /// to (20 bits: `[−8, 8)`).
    pub feature_bits: u32,
    /// Rows per leaf of the dataset tree: a step trains on `batch_size / block_rows` whole
    /// blocks.
    pub block_rows: u32,
    /// `None`: every proof covers all K local steps. `Some(s)`: each holder commits to its
    /// K intermediate models and proves the `s` steps the coordinator's beacon then
    /// challenges ([`crate::challenge`]).
    pub sampled_steps: Option<u32>,
    /// Distributed-DP jobs: the job's Skellam parameters. Each proof then also shows the
    /// committed (and masked) vector is the update rotated, rounded and noised with the
    /// holder's committed seed ([`crate::noise`]).
    pub noise: Option<cairn_privacy::SkellamParams>,
}

/// Deepest dataset tree a proven job may use (index bits over blocks: 2^32 blocks).
pub const MAX_TREE_DEPTH: u32 = cairn_circuits::merkle::MAX_DEPTH;
/// Widest committed feature, in signed bits (the circuit's stored-value width).
pub const MAX_FEATURE_BITS: u32 = cairn_circuits::rows::MAX_FEATURE_BITS;
/// Most limbs of blinding after a proven update.
pub const MAX_BLINDING_LIMBS: u32 = 32;

impl ProofSpec {
    /// Every rule a proven job's settings obey, with K local steps of `batch_size` rows:
    /// `(field, reason)` per broken rule, empty when the settings are usable. The one place
    /// of these rules: the job file check (`proofs.FIELD`), `cairn_protocol::job::JobConfig`'s
    /// validation and the circuit's shape all call it, so a job `cairn job submit` accepts
    /// is one every holder and the prover accept.
    pub fn problems(&self, local_steps: u32, batch_size: u32) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let tau = self.tolerance;
        if !(tau.is_finite() && tau >= 0.0) {
            out.push((
                "tolerance",
                format!("must be finite and non-negative, got {tau}"),
            ));
        }
        out.extend(shape_problems(&ShapeSettings {
            local_steps,
            batch_size,
            tree_depth: self.tree_depth,
            feature_bits: self.feature_bits,
            block_rows: self.block_rows,
            sampled_steps: self.sampled_steps,
        }));
        if let Some(p) = &self.noise {
            if let Err(e) = p.validate() {
                out.push(("noise", e.to_string()));
            } else if let Err(e) = crate::noise::proven_grid(p) {
                out.push(("granularity", e.to_string()));
            }
        }
        if !(1..=MAX_BLINDING_LIMBS).contains(&self.blinding_limbs) {
            out.push((
                "blinding_limbs",
                format!(
                    "must be in 1..={MAX_BLINDING_LIMBS}, got {}",
                    self.blinding_limbs
                ),
            ));
        }
        out
    }

    /// Most rows a holder's tree holds: `2^tree_depth` blocks, and never more than 2^32 rows
    /// (row indices are `u32`).
    pub fn capacity(&self) -> u64 {
        (1u64 << self.tree_depth.min(63))
            .saturating_mul(u64::from(self.block_rows))
            .min(1 << 32)
    }

    /// Why a holder cannot commit `n_rows` rows in a job whose batches are `batch_size`
    /// rows, or `None` when it can: whole blocks, at least one batch of them, within the
    /// tree.
    pub fn refuse_rows(&self, n_rows: u64, batch_size: u32) -> Option<String> {
        let b = u64::from(self.block_rows.max(1));
        if !n_rows.is_multiple_of(b) {
            Some(format!(
                "a dataset of {n_rows} rows is not whole blocks of {b} rows"
            ))
        } else if n_rows < u64::from(batch_size) {
            Some(format!(
                "a dataset of {n_rows} rows cannot fill one batch of {batch_size}"
            ))
        } else if n_rows > self.capacity() {
            Some(format!(
                "a dataset of {n_rows} rows; the job's trees hold up to {}",
                self.capacity()
            ))
        } else {
            None
        }
    }
}

/// What a proving participant sends beside its masked input: the commitment C to its
/// quantised update and blinding, and the Groth16 proof π (both compressed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenInput {
    /// C, a compressed Baby Jubjub point.
    pub commitment: Vec<u8>,
    /// π, a compressed Groth16 proof.
    pub proof: Vec<u8>,
    /// Sampled-step rounds: the intermediate models the holder committed to and the beacon
    /// it was then challenged with. The coordinator fills this in from the round's own
    /// record (whatever a participant puts here is replaced), so the transcript carries
    /// what the auditor needs to recompute the challenge.
    pub steps: Option<StepChain>,
}

/// A holder's commitment to its K intermediate models in a sampled-step round, and the
/// beacon the coordinator revealed to it once it had that commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepChain {
    /// `d_1..d_K`: the digests of the models after each local step (field elements,
    /// 32 bytes little-endian).
    pub digests: Vec<[u8; 32]>,
    /// The holder's beacon ([`crate::challenge::holder_beacon`]).
    pub beacon: [u8; 32],
}

/// Most local steps a sampled-step commitment may name.
pub const MAX_CHAIN_STEPS: usize = 4096;

impl ProvenInput {
    /// Largest accepted commitment encoding.
    pub const MAX_COMMITMENT_BYTES: usize = 64;
    /// Largest accepted proof encoding (a compressed BN254 Groth16 proof is 128 bytes).
    pub const MAX_PROOF_BYTES: usize = 256;

    /// Refuses encodings longer than the limits.
    pub fn check_sizes(&self) -> Result<(), String> {
        if self.commitment.len() > Self::MAX_COMMITMENT_BYTES {
            return Err(format!("commitment of {} bytes", self.commitment.len()));
        }
        if self.proof.len() > Self::MAX_PROOF_BYTES {
            return Err(format!("proof of {} bytes", self.proof.len()));
        }
        if let Some(c) = &self.steps {
            if c.digests.len() > MAX_CHAIN_STEPS {
                return Err(format!("a chain of {} steps", c.digests.len()));
            }
        }
        Ok(())
    }
}

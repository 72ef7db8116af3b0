//! The public facts a round's proofs are checked against, as the coordinator's job state
//! machine hands them to its driver and the transcript keeps them for the auditor.

use std::sync::Arc;

use cairn_crypto::sign::Signature;
use cairn_model::{HyperParams, ModelSpec};

use crate::spec::{DatasetCommitment, ProofSpec, ProvenInput};

/// A participant's id in a job (the protocol's `ParticipantId`).
pub type ParticipantId = u32;

/// The public facts of a proven round every proof is checked against.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundStatement {
    /// Round number.
    pub round: u32,
    /// The job's model.
    pub model: ModelSpec,
    /// The global model the round started from.
    pub global: Vec<f32>,
    /// The round's hyper-parameters.
    pub hyper: HyperParams,
    /// The round seed (with the participant's id and row count it fixes the rows).
    pub round_seed: [u8; 32],
    /// The proof settings.
    pub proof: ProofSpec,
}

/// A proof for the driver to verify, with everything the statement needs; the answer
/// goes to the job (`cairn_protocol::job::Job::handle_verdict`).
#[derive(Clone, Debug)]
pub struct ProofCheck {
    /// Who sent it.
    pub participant: ParticipantId,
    /// Its index in the job's roster (`cairn_protocol::randomness::holder_index`): what its rows and
    /// statement are drawn for.
    pub index: u32,
    /// Its enrolled dataset commitment.
    pub dataset: DatasetCommitment,
    /// The round's public facts (shared by the round's checks).
    pub statement: Arc<RoundStatement>,
    /// The commitment and proof.
    pub input: ProvenInput,
}

/// What a proven secure round yields beside the mean: the exact integer sum S of the
/// survivors' fixed-point updates, the per-limb sums of their blindings (from which R is
/// rebuilt exactly), each survivor's commitment and proof, and the survivors' signatures
/// on the survivor list.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvenSum {
    /// S = Σ x_u, coordinate by coordinate, in the circuit's fixed point.
    pub update_sum: Vec<i64>,
    /// Σ over survivors of each blinding limb (limb i carries bits 16i..16i+16 of ρ).
    pub blinding_limb_sums: Vec<u64>,
    /// Each survivor's commitment and proof, in id order.
    pub inputs: Vec<(ParticipantId, ProvenInput)>,
    /// The Shamir threshold t of the round: at least t survivors signed the list.
    pub threshold: u32,
    /// Each signing survivor's Ed25519 signature over
    /// [`survivors_payload`](cairn_crypto::secagg::survivors_payload)`(round id, survivors)`,
    /// in id order.
    pub survivor_signatures: Vec<(ParticipantId, Signature)>,
    /// Sampled-step rounds: the round's beacon, from which each holder's was derived
    /// ([`crate::challenge::holder_beacon`]); its hash was in the round spec.
    pub beacon: Option<[u8; 32]>,
}

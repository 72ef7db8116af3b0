//! Why a proof, a statement or an aggregate check failed.

/// Why a round's proof could not be made or checked, or why its aggregate check fails.
/// Each variant is one reason a caller (the coordinator, the auditor, a test) can match on;
/// its message is what the job's log and the audit report print.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The round's settings give no circuit (its hyper-parameters, τ or shape are refused).
    #[error("the round's proof settings: {0}")]
    Settings(String),
    /// The round's global model does not fit the circuit's fixed point.
    #[error("global model: {0}")]
    GlobalModel(String),
    /// The enrolled dataset root is not a field element.
    #[error("dataset root: {0}")]
    DatasetRoot(String),
    /// The enrolled row count does not fit this machine's indices.
    #[error("a dataset of {0} rows: too many to index")]
    RowCount(u64),
    /// A commitment C is not a point of the curve's subgroup.
    #[error("commitment: {0}")]
    Commitment(String),
    /// A proven DP round, and the holder enrolled no noise-seed commitment.
    #[error("no noise-seed commitment enrolled, and the job's proofs carry noise")]
    MissingNoiseSeed,
    /// A noise-seed commitment that is not a field element.
    #[error("noise-seed commitment: {0}")]
    NoiseSeed(String),
    /// A noise seed is needed to prove a DP round, and the holder has none.
    #[error("a proven DP round needs the holder's noise seed")]
    NoNoiseSeed,
    /// A step chain came in a round that proves every step.
    #[error("a step chain in a round that proves every step")]
    UnexpectedChain,
    /// No step chain came in a sampled-step round.
    #[error("no step chain in a sampled-step round")]
    MissingChain,
    /// The step chain names another number of steps than the round's K.
    #[error("a chain of {got} digests for K = {steps} steps")]
    ChainLength {
        /// Digests in the chain.
        got: usize,
        /// The round's K.
        steps: u32,
    },
    /// A digest of the step chain is not a field element.
    #[error("chain digest {step}: {reason}")]
    ChainDigest {
        /// The step (1-based).
        step: usize,
        /// Why.
        reason: String,
    },
    /// The proof's bytes are not a proof.
    #[error("proof encoding: {0}")]
    ProofEncoding(String),
    /// The proof is well formed but false for the round's statement.
    #[error("the proof does not verify against the round's statement")]
    DoesNotVerify,
    /// The verifier could not run (a key or statement of the wrong size).
    #[error("verifying: {0}")]
    Verifier(String),
    /// The per-limb sums of the blindings do not make a scalar.
    #[error("blinding sums: {0}")]
    Blinding(String),
    /// A survivor's commitment is not a point of the curve's subgroup.
    #[error("participant {participant}: {reason}")]
    SurvivorCommitment {
        /// The survivor.
        participant: u32,
        /// Why.
        reason: String,
    },
    /// Σ C_u ≠ commit(S, R): the aggregate is not the sum of what the proofs committed to.
    #[error(
        "the {survivors} survivors' commitments do not add up to a commitment to the unmasked sum"
    )]
    SumMismatch {
        /// Survivors whose commitments were added.
        survivors: usize,
    },
    /// commit(S, R) cannot be formed (a sum longer than the generators).
    #[error("committing to the sum: {0}")]
    SumCommitment(String),
    /// A holder's rows cannot be committed in the job's format.
    #[error("{0}")]
    Dataset(String),
    /// The holder's update is not one the circuit proves (beyond τ of the fixed-point
    /// replay, over the clip bound, rows out of range…).
    #[error("witness: {0}")]
    Witness(String),
    /// The fixed-point replay failed.
    #[error("replay: {0}")]
    Replay(String),
    /// The Groth16 prover failed.
    #[error("proving: {0}")]
    Proving(String),
}

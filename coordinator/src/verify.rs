//! Proven rounds on the coordinator: the job's verifying key, each proof checked on a
//! blocking thread as it arrives, and the homomorphic check Σ C_u = commit(S, R) that
//! gates applying the round's update.

use std::sync::Arc;

use ark_bn254::Bn254;
use ark_groth16::PreparedVerifyingKey;
use cairn_circuits::rounds;
use cairn_circuits::training::proof::{self, VerifyingKey};
use cairn_circuits::training::Shape;
use cairn_protocol::job::{Job, ProofCheck};

/// The job's verifier: the prepared verifying key of its circuit shape.
pub struct Verifier {
    pvk: PreparedVerifyingKey<Bn254>,
    vk_bytes: Vec<u8>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// From the verifying key of the job's circuit `shape`.
    pub fn new(vk: &VerifyingKey, shape: &Shape) -> Arc<Self> {
        Arc::new(Self {
            pvk: proof::prepare(vk),
            vk_bytes: proof::vk_to_bytes(shape, vk),
        })
    }

    /// The verifying key with its shape header, as the transcript records it.
    pub fn key_bytes(&self) -> &[u8] {
        &self.vk_bytes
    }

    /// Checks one proof (≈ 1–2 ms of pairings: call it on a blocking thread).
    pub fn check(&self, c: &ProofCheck) -> Result<(), String> {
        rounds::verify_check(&self.pvk, c)
    }
}

/// Installs the aggregate commitment check on a proven job.
pub fn with_sum_check(job: Job) -> Job {
    job.with_sum_check(Box::new(rounds::check_sum))
}

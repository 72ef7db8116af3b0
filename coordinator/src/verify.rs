//! Proven rounds on the coordinator: the job's verifying key, each proof checked on a
//! blocking thread as it arrives, and the homomorphic check Σ C_u = commit(S, R) that
//! gates applying the round's update.

use std::sync::{Arc, Mutex, PoisonError};

use ark_bn254::Bn254;
use ark_groth16::PreparedVerifyingKey;
use cairn_circuits::rounds::{self, RoundPublic};
use cairn_circuits::training::proof::{self, VerifyingKey};
use cairn_circuits::training::Shape;
use cairn_protocol::job::{Job, ProofCheck, RoundStatement};

/// The job's verifier: the prepared verifying key of its circuit shape, and the current
/// round's shared statement parts (the Poseidon hashes of its model and hyper-parameters,
/// most of a statement's cost), computed by the round's first check and reused by the rest.
pub struct Verifier {
    pvk: PreparedVerifyingKey<Bn254>,
    vk_bytes: Vec<u8>,
    round: Mutex<Option<SharedRound>>,
}

/// A round's statement and its shared parts (or why they cannot be built).
type SharedRound = (Arc<RoundStatement>, Arc<Result<RoundPublic, String>>);

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
            round: Mutex::new(None),
        })
    }

    /// The verifying key with its shape header, as the transcript records it.
    pub fn key_bytes(&self) -> &[u8] {
        &self.vk_bytes
    }

    /// Checks one proof (≈ 1–2 ms of pairings: call it on a blocking thread). The same
    /// verdicts as [`rounds::verify_check`].
    pub fn check(&self, c: &ProofCheck) -> Result<(), String> {
        let shared = self.round_public(&c.statement);
        let round = shared.as_ref().as_ref().map_err(Clone::clone)?;
        let public = round.statement(c.index, &c.dataset, &c.input)?;
        rounds::check_proof(&self.pvk, &public, &rounds::decode_proof(&c.input)?)
    }

    /// The shared parts of `st`'s statements: built once per round (the lock is held while
    /// they are, so concurrent checks of a new round wait for one computation).
    fn round_public(&self, st: &Arc<RoundStatement>) -> Arc<Result<RoundPublic, String>> {
        let mut current = self.round.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, shared)) = current.as_ref() {
            if Arc::ptr_eq(seen, st) || **seen == **st {
                return Arc::clone(shared);
            }
        }
        let shared = Arc::new(RoundPublic::new(st));
        *current = Some((Arc::clone(st), Arc::clone(&shared)));
        shared
    }
}

/// Installs the aggregate commitment check on a proven job.
pub fn with_sum_check(job: Job) -> Job {
    job.with_sum_check(Box::new(rounds::check_sum))
}

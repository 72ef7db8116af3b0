//! Proven rounds on the coordinator: the job's verifying key, each proof checked on a
//! blocking thread as it arrives, and the homomorphic check Σ C_u = commit(S, R) that
//! gates applying the round's update.

use std::sync::{Arc, Mutex, PoisonError};

use ark_bn254::Bn254;
use ark_groth16::PreparedVerifyingKey;
use cairn_circuits::pedersen::Generators;
use cairn_circuits::training::proof::{self, VerifyingKey};
use cairn_circuits::training::Shape;

use crate::error::ProofError;
use crate::rounds::{self, RoundPublic};
use crate::statement::{ProofCheck, ProvenSum, RoundStatement};

/// The job's verifier: the prepared verifying key of its circuit shape, and the current
/// round's shared statement parts (the Poseidon hashes of its model and hyper-parameters,
/// most of a statement's cost), computed by the round's first check and reused by the rest.
pub struct Verifier {
    pvk: PreparedVerifyingKey<Bn254>,
    vk_bytes: Vec<u8>,
    round: Mutex<Option<SharedRound>>,
}

/// A round's statement and its shared parts (or why they cannot be built).
type SharedRound = (Arc<RoundStatement>, Arc<Result<RoundPublic, ProofError>>);

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
    pub fn check(&self, c: &ProofCheck) -> Result<(), ProofError> {
        let shared = self.round_public(&c.statement);
        let round = shared.as_ref().as_ref().map_err(Clone::clone)?;
        let public = round.statement(c.index, &c.dataset, &c.input)?;
        rounds::check_proof(&self.pvk, &public, &rounds::decode_proof(&c.input)?)
    }

    /// The shared parts of `st`'s statements: built once per round (the lock is held while
    /// they are, so concurrent checks of a new round wait for one computation).
    fn round_public(&self, st: &Arc<RoundStatement>) -> Arc<Result<RoundPublic, ProofError>> {
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

/// The aggregate commitment check of a job's rounds (Σ C_u = commit(S, R)), with the
/// Pedersen generators of its model made once: hashing d generators to the curve costs
/// about as much as the check itself, so a job's driver keeps one of these for all its
/// rounds and runs [`SumChecker::check`] on a blocking thread.
#[derive(Debug)]
pub struct SumChecker {
    gens: Mutex<Option<Arc<Generators>>>,
}

impl Default for SumChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl SumChecker {
    /// A checker whose generators are made by its first check (for that check's length).
    pub fn new() -> Self {
        Self {
            gens: Mutex::new(None),
        }
    }

    /// [`rounds::check_sum`] with the cached generators (made again only when a sum of
    /// another length comes, which a job's fixed model rules out).
    pub fn check(&self, sum: &ProvenSum) -> Result<(), ProofError> {
        let d = sum.update_sum.len();
        let gens = {
            let mut cached = self.gens.lock().unwrap_or_else(PoisonError::into_inner);
            match cached.as_ref() {
                Some(g) if g.g.len() == d => Arc::clone(g),
                _ => {
                    let g = Arc::new(Generators::new(d));
                    *cached = Some(Arc::clone(&g));
                    g
                }
            }
        };
        rounds::check_sum_with(&gens, sum)
    }
}

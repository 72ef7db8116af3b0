//! Noise a holder cannot skip (#16 item 3): what a proven distributed-DP job adds to the
//! proof. The job's Skellam parameters ride in its [`ProofSpec`](crate::spec::ProofSpec)
//! (`noise`), so the circuit shape, the statement, the keys and the transcript all carry
//! them; each holder commits to a secret noise seed with its dataset
//! ([`DatasetCommitment::noise_seed`](crate::spec::DatasetCommitment)) and its proof shows
//! the vector it committed to (and masks) is its update rotated with the round's signs,
//! rounded to the grid within the sensitivity bound, plus the noise that seed and the round
//! draw from the job's table (`cairn_circuits::training::dp`).

use ark_bn254::Fr;
use ark_ff::PrimeField;
use cairn_circuits::encoding::fr_to_bytes;
use cairn_circuits::training::NoiseShape;
use cairn_crypto::sign::IdentityKey;
use cairn_privacy::rotation::{round_rotation_seed, Rotation};
use cairn_privacy::{SkellamParams, SkellamTable};
use sha2::{Digest, Sha512};

use crate::error::ProofError;
use crate::spec::PROVEN_SCALE_BITS;

/// How far `2^16 · γ · √d_pad` may be from an integer (relative) for the grid to be proven.
const GRID_SLACK: f64 = 1e-9;

/// G = 2^16 · γ · √d_pad, the grid step in units of the proven update after the
/// unnormalised Walsh–Hadamard transform: a proven DP job's granularity must make it an
/// integer ([`proven_granularity`] gives the nearest such γ).
pub fn proven_grid(params: &SkellamParams) -> Result<u64, ProofError> {
    let padded = params
        .padded_dim()
        .map_err(|e| ProofError::Settings(e.to_string()))?;
    let g = grid_of(params.granularity, padded);
    let rounded = g.round();
    if !(rounded >= 1.0 && rounded < (1u64 << 40) as f64) || (g - rounded).abs() > GRID_SLACK * g {
        return Err(ProofError::Settings(format!(
            "privacy.granularity {} makes 2^{PROVEN_SCALE_BITS}·γ·√{padded} = {g}, not an integer in [1, 2^40): a proven DP job needs one (e.g. γ = {})",
            params.granularity,
            proven_granularity(params.granularity, padded)
        )));
    }
    Ok(rounded as u64)
}

fn grid_of(granularity: f64, padded: usize) -> f64 {
    granularity * f64::from(1u32 << PROVEN_SCALE_BITS) * (padded as f64).sqrt()
}

/// The granularity nearest `granularity` (at least one grid unit) whose grid a proof can
/// check: γ = G / (2^16 · √d_pad) for the integer G nearest `2^16 · γ · √d_pad`.
pub fn proven_granularity(granularity: f64, padded: usize) -> f64 {
    let g = grid_of(granularity, padded).round().max(1.0);
    g / (f64::from(1u32 << PROVEN_SCALE_BITS) * (padded as f64).sqrt())
}

/// The circuit's constants for `params`: the grid, ⌊Δ2²⌋ and the sampler's table.
pub fn noise_shape(params: &SkellamParams) -> Result<NoiseShape, ProofError> {
    let grid = proven_grid(params)?;
    let l2 = params
        .sensitivity()
        .map_err(|e| ProofError::Settings(e.to_string()))?
        .l2;
    let table = table(params)?;
    let (_, k) = table.support();
    Ok(NoiseShape {
        grid,
        norm_sq_bound: (l2 * l2).floor() as u64,
        k,
        thresholds: table.thresholds().to_vec(),
    })
}

/// The job's sampler table (shared per process).
pub fn table(params: &SkellamParams) -> Result<std::sync::Arc<SkellamTable>, ProofError> {
    SkellamTable::shared(params.holder_variance()).map_err(|e| ProofError::Settings(e.to_string()))
}

/// The round's rotation signs (`true`: −1) for the job's `dim` parameters: the ones every
/// holder of the round rotates with (from the round seed).
pub fn round_signs(round_seed: &[u8; 32], dim: usize) -> Result<Vec<bool>, ProofError> {
    let r = Rotation::new(round_rotation_seed(round_seed), dim)
        .map_err(|e| ProofError::Settings(e.to_string()))?;
    Ok(r.negative().to_vec())
}

/// A holder's secret noise seed (a field element).
pub type NoiseSeed = Fr;

/// A holder's secret noise seed for `job_id`, derived from its identity key (a deterministic
/// Ed25519 signature no one else can make, hashed to 512 bits and reduced: uniform within
/// 2^-258): the same after a restart, so the commitment it enrolled stays openable, and
/// never sent anywhere.
pub fn noise_seed(identity: &IdentityKey, job_id: &str) -> Fr {
    let mut m = b"cairn/dp/noise-seed/v1".to_vec();
    m.extend_from_slice(&(job_id.len() as u32).to_le_bytes());
    m.extend_from_slice(job_id.as_bytes());
    let signature = identity.sign(&m);
    let digest = Sha512::new()
        .chain_update(b"cairn/dp/noise-seed/hash/v1")
        .chain_update(&signature.0)
        .finalize();
    Fr::from_le_bytes_mod_order(&digest)
}

/// The commitment to `seed` a holder enrols with (32 bytes, little-endian field element).
pub fn seed_commitment(seed: Fr) -> [u8; 32] {
    fr_to_bytes(&cairn_circuits::noise::seed_commitment(seed))
}

//! The proof of correct local training, split as penumbra splits its proofs: the
//! [`Public`] statement, the [`Private`] witness, the circuit
//! ([`circuit::TrainingCircuit`]) and the [`proof::Proof`].
//!
//! Public inputs (six field elements): the holder's dataset Merkle root, the hash of the
//! global model (fixed point), the hash of the row indices the round seed selects, the hash
//! of the fixed-point hyper-parameters, and the commitment `C` as its two coordinates.
//!
//! The circuit proves: the `K·B` rows used are leaves of the committed tree at those
//! indices; K steps of SGD (module `sgd`) from the committed model give `w_K`; every coordinate
//! of the update `x` is within `τ` of `w_K − w`; `‖x‖² ≤ clip²`; and `C = commit(x, ρ)`.
//!
//! **Sampled steps** (`Shape::sampled_steps = Some(s)`). The holder first commits to every
//! intermediate model of its K steps: the digests `d_j =` [`params_digest`]`(w_j)`,
//! `j = 1..K`, of the parameters at the fine scale `2^48` the steps carry them at
//! ([`trajectory`]); `d_0` is the digest of the global model lifted to that scale, which the
//! verifier computes itself. Only then is it told which `s` steps to prove. The proof shows,
//! for each challenged step `j`: the parameters hashing to `d_{j−1}`, trained one SGD step on
//! the rows the round seed selects for step `j` (opened from the committed tree), hash to
//! `d_j`; and for the update: the parameters hashing to `d_K`, rescaled to `2^16`, are within
//! `τ` of `w + x`, `‖x‖² ≤ clip²` and `C = commit(x, ρ)`. Public inputs: the six above (the
//! indices hash over the challenged steps' blocks only), then `d_K`, then `(d_{j−1}, d_j)`
//! per challenged step. A holder that deviates in `m` of its K steps is caught unless none
//! of the `s` is challenged (`cairn_protocol::challenge`).
//!
//! **Distributed DP** (`Shape::noise = Some(..)`, [`dp`]). The commitment is then not to x:
//! x is padded to d = the next power of two, rotated with the round's public signs and the
//! Walsh–Hadamard transform (u = H·D·x), rounded to the grid (`|G·y_j − u_j| ≤ G − 1`,
//! `‖y‖² ≤ B`) and noised with one Skellam draw per coordinate from the holder's committed
//! seed and the round; `C = commit(z, ρ)` for z = y + e over d generators. Public inputs: the
//! six above, then the seed commitment, the round and the signs hash ([`dp::signs_hash`]),
//! then the sampled-step digests if any.
//!
//! Note on clipping: an honest update longer than the clip bound cannot satisfy both
//! "within τ of `w_K − w`" and the norm bound; the clip bound is a robustness limit that an
//! honest update is expected to meet.

mod arith;
pub mod circuit;
pub mod dp;
pub mod proof;
pub mod prover;
mod sgd;
mod witness;

pub use dp::{
    padded_dim, rotate_fixed, round_to_grid, signs_hash, NoiseInput, NoisePrivate, NoisePublic,
};
pub use witness::{
    indices_hash, lifted_digest, params_digest, replay, replayed_update, sampled_digests,
    trajectory, Private, Public, Trajectory, Witness,
};

use cairn_model::{HyperParams, ModelError, ModelSpec};
use sha2::{Digest, Sha256};

use crate::fixed::{self, FixedError, FRAC_BITS, SCALE};
use crate::merkle::MerkleError;
use crate::poseidon;

/// Signed bits of each update coordinate (|x_j| < 2^23, i.e. 128 in real units).
pub const UPDATE_BITS: u32 = 24;
/// Bits of the two one-sided tolerance checks (τ < 2^19, i.e. 8 in real units).
pub const TOL_BITS: u32 = 20;
/// Bits of the norm slack `clip² − ‖x‖²` (at scale 2^(2F)).
pub const NORM_BITS: u32 = 48;
/// Bits of the blinding scalar ρ in the circuit.
pub const RHO_BITS: usize = 252;

/// The circuit's shape: everything that changes the constraint system, so keys are made
/// (and cached) per shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The job's model.
    pub model: ModelSpec,
    /// Local SGD steps K.
    pub local_steps: u32,
    /// Batch size B (rows per step).
    pub batch_size: u32,
    /// Depth of the holder's Merkle tree in index bits (even: the tree is 4-ary). A leaf
    /// is a block of `block_rows` rows ([`crate::rows`]).
    pub tree_depth: u32,
    /// Signed bits of each committed feature (the range the job publishes).
    pub feature_bits: u32,
    /// Rows per leaf; divides `batch_size`.
    pub block_rows: u32,
    /// `None`: the proof covers all K steps. `Some(s)` (`1 ≤ s < K`): a sampled-step
    /// proof of `s` challenged steps, between intermediate models the holder committed to
    /// before it knew the challenge ([`super::training`] docs, "Sampled steps").
    pub sampled_steps: Option<u32>,
    /// `Some`: a distributed-DP job's update: the proof also shows the committed vector is
    /// the update rotated, rounded to the grid and noised from the holder's committed seed
    /// ([`dp`]).
    pub noise: Option<NoiseShape>,
}

/// The distributed-DP noise of a proven update (#16): the constants the circuit holds the
/// rotated, rounded, noised update to. See [`dp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseShape {
    /// G = 2^16 · γ · √d_pad, an integer: the grid step in units of the fixed-point update
    /// after the unnormalised Walsh–Hadamard transform H·D (`y_j ≈ (H·D·x)_j / G`).
    pub grid: u64,
    /// ⌊Δ2²⌋: the bound on ‖y‖² (Δ2 the mechanism's L2 sensitivity on the grid).
    pub norm_sq_bound: u64,
    /// K: the sampler's support is [−K, K].
    pub k: i64,
    /// The sampler's 2K strictly increasing thresholds (`cairn_privacy::skellam::SkellamTable`).
    pub thresholds: Vec<u64>,
}

impl NoiseShape {
    /// Checks the constants: a valid sampler table ([`crate::noise::check_table`]),
    /// `1 ≤ G < 2^40`, `B ≥ 1`, and `⌊√B⌋ + K < 2^(UPDATE_BITS − 1)` so that an honest
    /// z = y + e fits the committed range.
    pub fn validate(&self) -> Result<(), TrainingError> {
        crate::noise::check_table(&self.thresholds, self.k)
            .map_err(|e| TrainingError::Shape(format!("noise table: {e}")))?;
        if !(1..1u64 << 40).contains(&self.grid) {
            return Err(TrainingError::Shape(format!(
                "noise grid step G = {} outside [1, 2^40)",
                self.grid
            )));
        }
        if self.norm_sq_bound == 0 {
            return Err(TrainingError::Shape("noise norm bound B = 0".into()));
        }
        let max = 1i128 << (UPDATE_BITS - 1);
        if i128::from(self.norm_sq_bound.isqrt()) + i128::from(self.k) >= max {
            return Err(TrainingError::Shape(format!(
                "noise: ⌊√B⌋ + K = {} + {} does not fit {UPDATE_BITS} signed bits",
                self.norm_sq_bound.isqrt(),
                self.k
            )));
        }
        Ok(())
    }
}

/// Why a statement or witness cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    /// The model shape is unusable.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A value does not fit the fixed-point format.
    #[error(transparent)]
    Fixed(#[from] FixedError),
    /// The Merkle tree refused.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// A shape parameter out of range.
    #[error("bad shape: {0}")]
    Shape(String),
    /// Inputs that do not match the shape.
    #[error("{what}: got {got}, the shape needs {want}")]
    Mismatch {
        /// What was counted.
        what: &'static str,
        /// Count given.
        got: usize,
        /// Count the shape needs.
        want: usize,
    },
    /// The submitted update is farther than τ from the replayed training.
    #[error("update coordinate {index} is {got}, the replay gives {want} (tolerance {tolerance})")]
    OutsideTolerance {
        /// Coordinate.
        index: usize,
        /// Submitted value (fixed point).
        got: i64,
        /// Replayed value (fixed point).
        want: i64,
        /// τ (fixed point).
        tolerance: i64,
    },
    /// A committed row outside the job's row format.
    #[error(transparent)]
    Row(#[from] crate::rows::RowError),
    /// The update is longer than the clip bound.
    #[error("update norm² {norm_sq} exceeds clip² {clip_sq} (scale 2^32)")]
    OverNorm {
        /// ‖x‖² at scale 2^(2F).
        norm_sq: i128,
        /// clip² at scale 2^(2F).
        clip_sq: i64,
    },
    /// A committed intermediate model is not one SGD step from the one before it.
    #[error("committed step {step} is not one SGD step from the model before it on its rows")]
    StepMismatch {
        /// The step (0-based).
        step: u32,
    },
    /// A committed digest is not the digest of its model.
    #[error("the digest committed for step {step} is not its model's")]
    DigestMismatch {
        /// The step (0-based).
        step: u32,
    },
    /// Conditional rounding kept exceeding the norm bound B.
    #[error("the rounded update exceeded the norm bound in all {tries} tries")]
    Rounding {
        /// Draws made.
        tries: u32,
    },
    /// A row index past the holder's rows.
    #[error("row index {index} but the holder has {rows} rows")]
    RowIndex {
        /// Index.
        index: u32,
        /// Rows held.
        rows: usize,
    },
}

/// The settings of a proven job that fix its circuit beside the model: K, B and the proof
/// settings a job announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeSettings {
    /// K, local steps per round.
    pub local_steps: u32,
    /// B, rows per step.
    pub batch_size: u32,
    /// Index bits of every holder's dataset tree (over blocks).
    pub tree_depth: u32,
    /// Signed bits of each committed feature.
    pub feature_bits: u32,
    /// Rows per leaf of the dataset tree.
    pub block_rows: u32,
    /// Steps each proof covers when sampled; `None` proves all K.
    pub sampled_steps: Option<u32>,
}

/// Every rule the circuit holds a job's settings to: `(field, reason)` per broken rule
/// (the field as a job file names it), empty when the circuit can be built. The one place
/// of these rules: [`Shape::validate`] and the proof settings' check
/// (`cairn_proofs::spec::ProofSpec::problems`, which the job file check and the job
/// config call) both use it, so a job `cairn job submit` accepts is one the prover accepts.
pub fn shape_problems(s: &ShapeSettings) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    // A 4-ary tree: two index bits per level.
    let d = s.tree_depth;
    let max_depth = crate::merkle::MAX_DEPTH;
    if !(2..=max_depth).contains(&d) || !d.is_multiple_of(2) {
        out.push((
            "tree_depth",
            format!("must be even and in 2..={max_depth}, got {d}"),
        ));
    }
    let f = s.feature_bits;
    let max_bits = crate::rows::MAX_FEATURE_BITS;
    if !(2..=max_bits).contains(&f) {
        out.push((
            "feature_bits",
            format!("must be in 2..={max_bits}, got {f}"),
        ));
    }
    let b = s.block_rows;
    if b == 0 {
        out.push(("block_rows", "must be positive, got 0".to_string()));
    } else if !s.batch_size.is_multiple_of(b) {
        out.push((
            "block_rows",
            format!("must divide the batch size ({}), got {b}", s.batch_size),
        ));
    }
    if let Some(k) = s.sampled_steps {
        if k == 0 || k >= s.local_steps {
            out.push((
                "steps",
                format!(
                    "{k} sampled steps of K = {}: sample 1..K−1 steps, or prove them all",
                    s.local_steps
                ),
            ));
        }
    }
    out
}

impl Shape {
    /// Checks the shape is usable.
    pub fn validate(&self) -> Result<(), TrainingError> {
        self.model.validate()?;
        // The circuit replays the sigmoid cross-entropy of one logit (and its hash below
        // has no output count, which is always 1).
        if !self.model.is_binary() {
            return Err(TrainingError::Shape(format!(
                "the circuit proves binary classifiers (one sigmoid output); this model has {} outputs",
                self.model.outputs
            )));
        }
        if self.local_steps == 0 || self.batch_size == 0 {
            return Err(TrainingError::Shape("K and B must be positive".into()));
        }
        if let Some((field, reason)) = shape_problems(&ShapeSettings {
            local_steps: self.local_steps,
            batch_size: self.batch_size,
            tree_depth: self.tree_depth,
            feature_bits: self.feature_bits,
            block_rows: self.block_rows,
            sampled_steps: self.sampled_steps,
        })
        .into_iter()
        .next()
        {
            return Err(TrainingError::Shape(format!("{field}: {reason}")));
        }
        if let Some(n) = &self.noise {
            n.validate()?;
        }
        Ok(())
    }

    /// How the holder's rows are committed.
    pub fn row_format(&self) -> crate::rows::RowFormat {
        crate::rows::RowFormat {
            n_features: self.model.n_features,
            feature_bits: self.feature_bits,
            block_rows: self.block_rows,
        }
    }

    /// Blocks each step opens: `B / block_rows`.
    pub fn blocks_per_step(&self) -> usize {
        (self.batch_size / self.block_rows.max(1)) as usize
    }

    /// Values per row: the features, then the label.
    pub fn row_len(&self) -> usize {
        self.model.n_features + 1
    }

    /// Steps the proof covers: `s` when sampled, else K.
    pub fn proved_steps(&self) -> usize {
        self.sampled_steps.unwrap_or(self.local_steps) as usize
    }

    /// Rows the circuit reads: B per proved step.
    pub fn rows_used(&self) -> usize {
        self.proved_steps() * self.batch_size as usize
    }

    /// SHA-256 of the shape and of every constant that changes the circuit (format version,
    /// fixed-point and range widths): the name of its keys.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        // v2: parameters carried at scale 2^48 within the K steps (one rescale per round).
        // v3: rows committed in range-checked, packed blocks (`crate::rows`).
        h.update(b"cairn/training-circuit/v3");
        for v in [
            FRAC_BITS,
            fixed::VALUE_BITS,
            UPDATE_BITS,
            TOL_BITS,
            NORM_BITS,
            RHO_BITS as u32,
        ] {
            h.update(v.to_le_bytes());
        }
        h.update((self.model.n_features as u64).to_le_bytes());
        h.update((self.model.hidden.len() as u64).to_le_bytes());
        for &w in &self.model.hidden {
            h.update((w as u64).to_le_bytes());
        }
        for v in [
            self.local_steps,
            self.batch_size,
            self.tree_depth,
            self.feature_bits,
            self.block_rows,
        ] {
            h.update(v.to_le_bytes());
        }
        // Appended only when sampled, so the keys of full proofs keep their names.
        if let Some(s) = self.sampled_steps {
            h.update(b"sampled");
            h.update(s.to_le_bytes());
        }
        // Likewise only for noise.
        if let Some(n) = &self.noise {
            h.update(b"noise");
            h.update(n.grid.to_le_bytes());
            h.update(n.norm_sq_bound.to_le_bytes());
            h.update(n.k.to_le_bytes());
            let mut t = Sha256::new();
            for v in &n.thresholds {
                t.update(v.to_le_bytes());
            }
            h.update(t.finalize());
        }
        h.finalize().into()
    }

    /// The shape hash in hex (file names, logs).
    pub fn id(&self) -> String {
        hex::encode(self.hash())
    }
}

/// The hyper-parameters as the circuit uses them, in fixed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHyper {
    /// `η = lr / B` (scale 2^F).
    pub step: i64,
    /// `clip²` (scale 2^(2F)).
    pub clip_sq: i64,
    /// τ (scale 2^F).
    pub tolerance: i64,
}

impl FixedHyper {
    /// From the round's float hyper-parameters and the job's tolerance τ.
    pub fn new(h: &HyperParams, tolerance: f32) -> Result<Self, TrainingError> {
        if h.batch_size == 0 {
            return Err(TrainingError::Shape("batch size 0".into()));
        }
        let step = fixed::quantize(h.learning_rate / h.batch_size as f32)?;
        let clip = f64::from(h.clip_norm);
        if !(0.0..(1u64 << (UPDATE_BITS - 1 - FRAC_BITS)) as f64).contains(&clip) {
            return Err(TrainingError::Shape(format!(
                "clip bound {clip} outside [0, 128)"
            )));
        }
        let clip_sq = (clip * clip * (SCALE as f64) * (SCALE as f64)).floor() as i64;
        let tolerance = fixed::quantize(tolerance)?;
        if !(0..1i64 << (TOL_BITS - 1)).contains(&tolerance) {
            return Err(TrainingError::Shape(format!(
                "tolerance {tolerance} outside [0, 2^{})",
                TOL_BITS - 1
            )));
        }
        Ok(Self {
            step,
            clip_sq,
            tolerance,
        })
    }

    /// The values hashed into the public hyper-parameter hash, in order.
    pub fn hashed_values(&self, shape: &Shape) -> [i64; 5] {
        [
            i64::from(shape.local_steps),
            i64::from(shape.batch_size),
            self.step,
            self.clip_sq,
            self.tolerance,
        ]
    }

    /// The public hyper-parameter hash.
    pub fn hash(&self, shape: &Shape) -> ark_bn254::Fr {
        poseidon::hash_ints(&self.hashed_values(shape))
    }
}

/// The public hash of a fixed-point global model.
pub fn model_hash(model: &[i64]) -> ark_bn254::Fr {
    poseidon::hash_ints(model)
}

#[cfg(test)]
mod dp_tests;
#[cfg(test)]
mod subverted_key;
#[cfg(test)]
mod tests;

//! The statement ([`Public`]) and witness ([`Private`]) of the training proof, and the
//! native fixed-point [`replay`] that produces the witness from the holder's rows.

use ark_bn254::Fr;
use ark_ec::AffineRepr;

use super::arith::Native;
use super::dp::{NoisePrivate, NoisePublic};
use super::sgd::{self, train};
use super::{model_hash, FixedHyper, Shape, TrainingError, UPDATE_BITS};
use crate::fixed;
use crate::merkle::{MerklePath, MerkleTree};
use crate::pedersen::{self, Generators, Point, Scalar};
use crate::poseidon;

/// The public statement of one training proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Public {
    /// Root of the holder's committed dataset.
    pub data_root: Fr,
    /// [`model_hash`] of the global model.
    pub model_hash: Fr,
    /// [`indices_hash`] of the blocks the round seed selects.
    pub indices_hash: Fr,
    /// [`FixedHyper::hash`] of the round's hyper-parameters.
    pub hyper_hash: Fr,
    /// The commitment to the update x; for a noise shape, to the rotated, rounded, noised
    /// vector z ([`Witness::noised`]).
    pub commitment: Point,
    /// Sampled-step proofs only (empty for a full proof): `d_K`, then `(d_{j−1}, d_j)` for
    /// each challenged step `j`, ascending — the digests the holder committed to before the
    /// challenge ([`params_digest`]; `d_0` is the lifted global model's).
    pub digests: Vec<Fr>,
    /// Distributed-DP shapes only: the holder's noise-seed commitment, the round and the
    /// hash of the round's rotation signs.
    pub noise: Option<NoisePublic>,
}

impl Public {
    /// The statement a verifier expects from the round's public facts: the holder's enrolled
    /// root, the global model, the blocks `block_indices` gives for its seed, the round's
    /// hyper-parameters, and the commitment the participant sent.
    pub fn new(
        shape: &Shape,
        data_root: Fr,
        model: &[i64],
        indices: &[Vec<u32>],
        hyper: &FixedHyper,
        commitment: Point,
    ) -> Self {
        Self {
            data_root,
            model_hash: model_hash(model),
            indices_hash: indices_hash(indices),
            hyper_hash: hyper.hash(shape),
            commitment,
            digests: Vec::new(),
            noise: None,
        }
    }

    /// The statement of a sampled-step proof: as [`Public::new`] with `indices` the
    /// challenged steps' blocks, plus the digests of the models around each challenged step
    /// (`challenged`: 0-based, ascending) out of the holder's committed `chain` (`d_1..d_K`).
    #[allow(clippy::too_many_arguments)]
    pub fn sampled(
        shape: &Shape,
        data_root: Fr,
        model: &[i64],
        indices: &[Vec<u32>],
        hyper: &FixedHyper,
        commitment: Point,
        chain: &[Fr],
        challenged: &[u32],
    ) -> Result<Self, TrainingError> {
        let k = shape.local_steps as usize;
        if chain.len() != k {
            return Err(TrainingError::Mismatch {
                what: "committed intermediate models",
                got: chain.len(),
                want: k,
            });
        }
        check_challenge(shape, challenged)?;
        let mut public = Self::new(shape, data_root, model, indices, hyper, commitment);
        public.digests = sampled_digests(lifted_digest(model), chain, challenged);
        Ok(public)
    }

    /// The public inputs, in the circuit's order: the six above, then (noise shapes) the
    /// seed commitment, the round and the signs hash, then the digests.
    pub fn to_inputs(&self) -> Vec<Fr> {
        let (cx, cy) = self
            .commitment
            .xy()
            .unwrap_or((Fr::from(0u64), Fr::from(1u64)));
        let mut inputs = vec![
            self.data_root,
            self.model_hash,
            self.indices_hash,
            self.hyper_hash,
            cx,
            cy,
        ];
        if let Some(n) = &self.noise {
            inputs.extend([
                n.seed_commitment,
                Fr::from(u64::from(n.round)),
                n.signs_hash,
            ]);
        }
        inputs.extend_from_slice(&self.digests);
        inputs
    }
}

/// The secret witness of one training proof.
#[derive(Clone, Debug)]
pub struct Private {
    /// The global model w (fixed point).
    pub model: Vec<i64>,
    /// Block indices, `K` steps of `B / block_rows`.
    pub indices: Vec<Vec<u32>>,
    /// The rows of those blocks (features, then label), `K × B`.
    pub rows: Vec<Vec<Vec<i64>>>,
    /// The blocks' Merkle paths, `K × B / block_rows`.
    pub paths: Vec<Vec<MerklePath>>,
    /// The hyper-parameters.
    pub hyper: FixedHyper,
    /// The update x (fixed point).
    pub update: Vec<i64>,
    /// The commitment's blinding.
    pub rho: Scalar,
    /// Sampled-step proofs: the parameters (scale 2^48) each challenged step starts from.
    pub step_inputs: Vec<Vec<i128>>,
    /// Sampled-step proofs: `w_K` (scale 2^48), what the update is checked against.
    pub final_params: Vec<i128>,
    /// Distributed-DP shapes only: the noise seed, the rotation signs, the rounded update
    /// and the noisy vector committed to.
    pub noise: Option<NoisePrivate>,
}

impl Private {
    /// An all-zero witness of the right shape (key generation ignores the values).
    pub fn dummy(shape: &Shape) -> Self {
        let (k, b) = (shape.proved_steps(), shape.batch_size as usize);
        let n = shape.model.param_count();
        let sampled = shape.sampled_steps.is_some();
        let blocks = shape.blocks_per_step();
        let path = MerklePath {
            siblings: vec![[Fr::from(0u64); 3]; shape.tree_depth as usize / 2],
        };
        Self {
            model: vec![0; shape.model.param_count()],
            indices: vec![vec![0; blocks]; k],
            rows: vec![vec![vec![0; shape.row_len()]; b]; k],
            paths: vec![vec![path; blocks]; k],
            hyper: FixedHyper {
                step: 0,
                clip_sq: 0,
                tolerance: 0,
            },
            update: vec![0; n],
            rho: Scalar::from(0u64),
            step_inputs: if sampled { vec![vec![0; n]; k] } else { vec![] },
            final_params: if sampled { vec![0; n] } else { vec![] },
            noise: shape.noise.as_ref().map(|_| NoisePrivate::dummy(shape)),
        }
    }
}

/// The digest a holder commits to for parameters at scale 2^48 (an intermediate model).
pub fn params_digest(params: &[i128]) -> Fr {
    let v: Vec<Fr> = params.iter().map(|&x| fixed::to_field(x)).collect();
    poseidon::hash_vec(&v)
}

/// The public digests of a sampled-step statement: `d_K`, then `(d_{j−1}, d_j)` for each
/// challenged step `j` (0-based, each `< K`), out of `d_0` and the committed `d_1..d_K`
/// (`chain`, not empty).
pub fn sampled_digests(d0: Fr, chain: &[Fr], challenged: &[u32]) -> Vec<Fr> {
    let digest = |j: usize| if j == 0 { d0 } else { chain[j - 1] };
    let mut digests = vec![chain[chain.len() - 1]];
    for &j in challenged {
        digests.push(digest(j as usize));
        digests.push(digest(j as usize + 1));
    }
    digests
}

/// `d_0`: the digest of the global model (scale 2^16) lifted to 2^48.
pub fn lifted_digest(model: &[i64]) -> Fr {
    let m: Vec<i128> = model.iter().map(|&v| v.into()).collect();
    params_digest(&sgd::lift(&Native, &m))
}

/// `challenged` names `s` distinct steps of K, ascending.
fn check_challenge(shape: &Shape, challenged: &[u32]) -> Result<(), TrainingError> {
    let s = shape.sampled_steps.ok_or_else(|| {
        TrainingError::Shape("a challenge for a shape that proves every step".into())
    })?;
    if challenged.len() != s as usize {
        return Err(TrainingError::Mismatch {
            what: "challenged steps",
            got: challenged.len(),
            want: s as usize,
        });
    }
    if challenged.windows(2).any(|w| w[0] >= w[1])
        || challenged.iter().any(|&j| j >= shape.local_steps)
    {
        return Err(TrainingError::Shape(format!(
            "challenged steps {challenged:?} are not distinct steps of 0..{} in order",
            shape.local_steps
        )));
    }
    Ok(())
}

/// A holder's K local steps in fixed point: the intermediate models it commits to before
/// the challenge of a sampled-step proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trajectory {
    /// `w_1..w_K` at scale 2^48.
    pub params: Vec<Vec<i128>>,
    /// Their digests `d_1..d_K` ([`params_digest`]).
    pub digests: Vec<Fr>,
}

impl Trajectory {
    /// `w_K` rescaled to 2^16, minus `model`: the update the steps give.
    pub fn update(&self, model: &[i64]) -> Result<Vec<i64>, TrainingError> {
        let last = self.params.last().ok_or(TrainingError::Mismatch {
            what: "steps",
            got: 0,
            want: 1,
        })?;
        let w_k = sgd::finish(&mut Native, last)?;
        w_k.iter()
            .zip(model)
            .map(|(&a, &b)| Ok(fixed::check_signed(a, 64)? - b))
            .collect()
    }
}

/// The fixed-point trajectory of K SGD steps from `model` on the rows of the blocks
/// `indices` selects (all K steps) from `rows` (the holder's committed rows, in order).
pub fn trajectory(
    shape: &Shape,
    rows: &[Vec<i64>],
    indices: &[Vec<u32>],
    model: &[i64],
    hyper: &FixedHyper,
) -> Result<Trajectory, TrainingError> {
    if model.len() != shape.model.param_count() {
        return Err(TrainingError::Mismatch {
            what: "model parameters",
            got: model.len(),
            want: shape.model.param_count(),
        });
    }
    let batches = wide(&block_batches(shape, rows, indices)?);
    let m: Vec<i128> = model.iter().map(|&v| v.into()).collect();
    let mut w = sgd::lift(&Native, &m);
    let step = i128::from(hyper.step);
    let mut params = Vec::with_capacity(batches.len());
    for batch in &batches {
        w = sgd::fine_step(&mut Native, &shape.model, &w, batch, &step)?;
        params.push(w.clone());
    }
    let digests = params.iter().map(|p| params_digest(p)).collect();
    Ok(Trajectory { params, digests })
}

fn wide(batches: &[Vec<Vec<i64>>]) -> Vec<Vec<Vec<i128>>> {
    batches
        .iter()
        .map(|b| {
            b.iter()
                .map(|r| r.iter().map(|&v| v.into()).collect())
                .collect()
        })
        .collect()
}

/// The public hash of the selected block indices (flattened, step by step).
pub fn indices_hash(indices: &[Vec<u32>]) -> Fr {
    let flat: Vec<i64> = indices.iter().flatten().map(|&i| i64::from(i)).collect();
    poseidon::hash_ints(&flat)
}

/// The fixed-point replay: `w_K` after K SGD steps on `batches` (`K × B` rows) from `model`.
pub fn replay(
    shape: &Shape,
    model: &[i64],
    batches: &[Vec<Vec<i64>>],
    hyper: &FixedHyper,
) -> Result<Vec<i64>, TrainingError> {
    if model.len() != shape.model.param_count() {
        return Err(TrainingError::Mismatch {
            what: "model parameters",
            got: model.len(),
            want: shape.model.param_count(),
        });
    }
    let model: Vec<i128> = model.iter().map(|&v| v.into()).collect();
    let batches = wide(batches);
    let step = i128::from(hyper.step);
    let w_k = train(&mut Native, &shape.model, &model, &batches, &step)?;
    w_k.iter()
        .map(|&v| fixed::check_signed(v, 64).map_err(TrainingError::from))
        .collect()
}

/// The rows of the blocks `indices` selects (`K` steps of `B / block_rows` block indices
/// into `rows`, the holder's committed rows in order), step by step. The rows are not held
/// to the row format here ([`Witness::new`] does that).
fn block_batches(
    shape: &Shape,
    rows: &[Vec<i64>],
    indices: &[Vec<u32>],
) -> Result<Vec<Vec<Vec<i64>>>, TrainingError> {
    let per_block = shape.block_rows as usize;
    indices
        .iter()
        .map(|step| {
            if step.len() != shape.blocks_per_step() {
                return Err(TrainingError::Mismatch {
                    what: "blocks per step",
                    got: step.len(),
                    want: shape.blocks_per_step(),
                });
            }
            let mut batch = Vec::with_capacity(shape.batch_size as usize);
            for &blk in step {
                let first = blk as usize * per_block;
                let block = rows
                    .get(first..first + per_block)
                    .ok_or(TrainingError::RowIndex {
                        index: (first + per_block - 1) as u32,
                        rows: rows.len(),
                    })?;
                for row in block {
                    if row.len() != shape.row_len() {
                        return Err(TrainingError::Mismatch {
                            what: "values per row",
                            got: row.len(),
                            want: shape.row_len(),
                        });
                    }
                }
                batch.extend(block.iter().cloned());
            }
            Ok(batch)
        })
        .collect()
}

/// `w_K − w`: the fixed-point replay's update for K steps from `model` on `batches`.
fn delta(
    shape: &Shape,
    model: &[i64],
    batches: &[Vec<Vec<i64>>],
    hyper: &FixedHyper,
) -> Result<Vec<i64>, TrainingError> {
    let w_k = replay(shape, model, batches, hyper)?;
    Ok(w_k.iter().zip(model).map(|(a, b)| a - b).collect())
}

/// The update the fixed-point replay gives for K steps from `model` on the rows of the
/// blocks `indices` selects from `rows` (the holder's committed rows, in order): what an
/// honest update must land within τ of. Rows are not held to the row format here.
pub fn replayed_update(
    shape: &Shape,
    rows: &[Vec<i64>],
    indices: &[Vec<u32>],
    model: &[i64],
    hyper: &FixedHyper,
) -> Result<Vec<i64>, TrainingError> {
    delta(shape, model, &block_batches(shape, rows, indices)?, hyper)
}

/// The checks every witness starts with: the shape, the model and update lengths, the
/// tree's depth and the number of steps of block indices (K).
fn check_inputs(
    shape: &Shape,
    tree: &MerkleTree,
    model: &[i64],
    update: &[i64],
    indices: &[Vec<u32>],
) -> Result<(), TrainingError> {
    shape.validate()?;
    let n = shape.model.param_count();
    let mismatch = |what, got, want| Err(TrainingError::Mismatch { what, got, want });
    if model.len() != n {
        return mismatch("model parameters", model.len(), n);
    }
    if update.len() != n {
        return mismatch("update coordinates", update.len(), n);
    }
    if tree.depth() != shape.tree_depth {
        return mismatch(
            "tree depth",
            tree.depth() as usize,
            shape.tree_depth as usize,
        );
    }
    if indices.len() != shape.local_steps as usize {
        return mismatch("batches", indices.len(), shape.local_steps as usize);
    }
    Ok(())
}

/// The rows of the blocks `indices` selects, held to the row format, and their paths.
#[allow(clippy::type_complexity)]
fn open_rows(
    shape: &Shape,
    tree: &MerkleTree,
    rows: &[Vec<i64>],
    indices: &[Vec<u32>],
) -> Result<(Vec<Vec<Vec<i64>>>, Vec<Vec<MerklePath>>), TrainingError> {
    let batches = block_batches(shape, rows, indices)?;
    let format = shape.row_format();
    for (step, rows) in indices.iter().zip(&batches) {
        for (&blk, block) in step.iter().zip(rows.chunks(shape.block_rows as usize)) {
            let first = blk as usize * shape.block_rows as usize;
            for (j, row) in block.iter().enumerate() {
                format.check_row(first + j, row)?;
            }
        }
    }
    let paths = indices
        .iter()
        .map(|step| step.iter().map(|&blk| tree.path(u64::from(blk))).collect())
        .collect::<Result<Vec<Vec<_>>, _>>()?;
    Ok((batches, paths))
}

/// Holds `update` to x's range, to τ of `replayed` and to the clip bound, and commits to it
/// with `rho`.
fn check_update(
    shape: &Shape,
    hyper: &FixedHyper,
    update: &[i64],
    replayed: &[i64],
    rho: &Scalar,
) -> Result<Point, TrainingError> {
    for (index, (&got, &want)) in update.iter().zip(replayed).enumerate() {
        fixed::check_signed(got.into(), UPDATE_BITS)?;
        if (got - want).abs() > hyper.tolerance {
            return Err(TrainingError::OutsideTolerance {
                index,
                got,
                want,
                tolerance: hyper.tolerance,
            });
        }
    }
    let norm_sq: i128 = update.iter().map(|&v| i128::from(v) * i128::from(v)).sum();
    if norm_sq > i128::from(hyper.clip_sq) {
        return Err(TrainingError::OverNorm {
            norm_sq,
            clip_sq: hyper.clip_sq,
        });
    }
    pedersen::commit(&Generators::new(shape.model.param_count()), update, rho).map_err(|e| {
        TrainingError::Mismatch {
            what: "commitment values",
            got: e.got,
            want: e.want,
        }
    })
}

/// A complete statement and witness, checked natively before any proving.
#[derive(Clone, Debug)]
pub struct Witness {
    /// The statement.
    pub public: Public,
    /// The witness.
    pub private: Private,
    /// `w_K − w` from the replay (what `x` was checked against).
    pub replayed_update: Vec<i64>,
}

impl Witness {
    /// Builds the statement and witness for `update` (already quantised): replays the
    /// training on the rows of the selected blocks (`indices`: `K` steps of `B /
    /// block_rows` block indices into `rows`, the holder's committed rows in order), checks
    /// the rows are in the job's format, the update is within τ and under the clip bound,
    /// and commits to it with blinding `rho`. For a shape that proves every step.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shape: &Shape,
        tree: &MerkleTree,
        rows: &[Vec<i64>],
        indices: Vec<Vec<u32>>,
        model: Vec<i64>,
        hyper: FixedHyper,
        update: Vec<i64>,
        rho: Scalar,
    ) -> Result<Self, TrainingError> {
        check_inputs(shape, tree, &model, &update, &indices)?;
        if shape.sampled_steps.is_some() {
            return Err(TrainingError::Shape(
                "a sampled-step shape: its witness is Witness::sampled".into(),
            ));
        }
        let (batches, paths) = open_rows(shape, tree, rows, &indices)?;
        let replayed_update = delta(shape, &model, &batches, &hyper)?;
        let commitment = check_update(shape, &hyper, &update, &replayed_update, &rho)?;
        let public = Public::new(shape, tree.root(), &model, &indices, &hyper, commitment);
        let private = Private {
            model,
            indices,
            rows: batches,
            paths,
            hyper,
            update,
            rho,
            step_inputs: Vec::new(),
            final_params: Vec::new(),
            noise: None,
        };
        Ok(Self {
            public,
            private,
            replayed_update,
        })
    }

    /// The statement and witness of a sampled-step proof: `traj` is the trajectory the
    /// holder committed to (its digests), `challenged` the steps (0-based, ascending) the
    /// challenge names, `indices` the blocks of all K steps. Checks natively what the
    /// circuit will: each challenged step is one SGD step from the committed model before it
    /// to the committed model after it, on its rows; the update is within τ of `w_K`
    /// rescaled, minus the global model; the norm bound; then commits with `rho`.
    #[allow(clippy::too_many_arguments)]
    pub fn sampled(
        shape: &Shape,
        tree: &MerkleTree,
        rows: &[Vec<i64>],
        indices: &[Vec<u32>],
        traj: &Trajectory,
        challenged: &[u32],
        model: Vec<i64>,
        hyper: FixedHyper,
        update: Vec<i64>,
        rho: Scalar,
    ) -> Result<Self, TrainingError> {
        check_inputs(shape, tree, &model, &update, indices)?;
        check_challenge(shape, challenged)?;
        let k = shape.local_steps as usize;
        for (what, got) in [
            ("committed models", traj.params.len()),
            ("committed digests", traj.digests.len()),
        ] {
            if got != k {
                return Err(TrainingError::Mismatch { what, got, want: k });
            }
        }
        let proved: Vec<Vec<u32>> = challenged
            .iter()
            .map(|&j| indices[j as usize].clone())
            .collect();
        let (batches, paths) = open_rows(shape, tree, rows, &proved)?;
        let m: Vec<i128> = model.iter().map(|&v| v.into()).collect();
        let lifted = sgd::lift(&Native, &m);
        let step = i128::from(hyper.step);
        let mut step_inputs = Vec::with_capacity(challenged.len());
        for (&j, batch) in challenged.iter().zip(wide(&batches)) {
            let j = j as usize;
            let input = if j == 0 {
                lifted.clone()
            } else {
                traj.params[j - 1].clone()
            };
            let out = sgd::fine_step(&mut Native, &shape.model, &input, &batch, &step)?;
            if out != traj.params[j] {
                return Err(TrainingError::StepMismatch { step: j as u32 });
            }
            step_inputs.push(input);
        }
        let mut opened: Vec<usize> = challenged.iter().map(|&j| j as usize).collect();
        opened.extend(
            challenged
                .iter()
                .filter(|&&j| j > 0)
                .map(|&j| j as usize - 1),
        );
        opened.push(k - 1);
        for j in opened {
            if params_digest(&traj.params[j]) != traj.digests[j] {
                return Err(TrainingError::DigestMismatch { step: j as u32 });
            }
        }
        let replayed_update = traj.update(&model)?;
        let commitment = check_update(shape, &hyper, &update, &replayed_update, &rho)?;
        let public = Public::sampled(
            shape,
            tree.root(),
            &model,
            &proved,
            &hyper,
            commitment,
            &traj.digests,
            challenged,
        )?;
        let private = Private {
            model,
            indices: proved,
            rows: batches,
            paths,
            hyper,
            update,
            rho,
            step_inputs,
            final_params: traj.params[k - 1].clone(),
            noise: None,
        };
        Ok(Self {
            public,
            private,
            replayed_update,
        })
    }

    /// [`Witness::new`] for an update computed in float (by the real trainer): quantises
    /// it first. Fails with [`TrainingError::OutsideTolerance`] when the float training
    /// strayed from the fixed-point replay by more than τ.
    #[allow(clippy::too_many_arguments)]
    pub fn from_float_update(
        shape: &Shape,
        tree: &MerkleTree,
        rows: &[Vec<i64>],
        indices: Vec<Vec<u32>>,
        model: Vec<i64>,
        hyper: FixedHyper,
        update: &[f32],
        rho: Scalar,
    ) -> Result<Self, TrainingError> {
        let update = fixed::quantize_all(update)?;
        Self::new(shape, tree, rows, indices, model, hyper, update, rho)
    }
}

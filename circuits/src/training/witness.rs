//! The statement ([`Public`]) and witness ([`Private`]) of the training proof, and the
//! native fixed-point [`replay`] that produces the witness from the holder's rows.

use ark_bn254::Fr;
use ark_ec::AffineRepr;

use super::arith::Native;
use super::sgd::train;
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
    /// The commitment to the update.
    pub commitment: Point,
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
        }
    }

    /// The six public inputs, in the circuit's order.
    pub fn to_inputs(&self) -> Vec<Fr> {
        let (cx, cy) = self
            .commitment
            .xy()
            .unwrap_or((Fr::from(0u64), Fr::from(1u64)));
        vec![
            self.data_root,
            self.model_hash,
            self.indices_hash,
            self.hyper_hash,
            cx,
            cy,
        ]
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
}

impl Private {
    /// An all-zero witness of the right shape (key generation ignores the values).
    pub fn dummy(shape: &Shape) -> Self {
        let (k, b) = (shape.local_steps as usize, shape.batch_size as usize);
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
            update: vec![0; shape.model.param_count()],
            rho: Scalar::from(0u64),
        }
    }
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
    let batches: Vec<Vec<Vec<i128>>> = batches
        .iter()
        .map(|b| {
            b.iter()
                .map(|r| r.iter().map(|&v| v.into()).collect())
                .collect()
        })
        .collect();
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
    /// and commits to it with blinding `rho`.
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
        let batches = block_batches(shape, rows, &indices)?;
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
        let replayed_update = delta(shape, &model, &batches, &hyper)?;
        for (index, (&got, &want)) in update.iter().zip(&replayed_update).enumerate() {
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
        let commitment = pedersen::commit(&Generators::new(n), &update, &rho).map_err(|e| {
            TrainingError::Mismatch {
                what: "commitment values",
                got: e.got,
                want: e.want,
            }
        })?;
        let public = Public::new(shape, tree.root(), &model, &indices, &hyper, commitment);
        let private = Private {
            model,
            indices,
            rows: batches,
            paths,
            hyper,
            update,
            rho,
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

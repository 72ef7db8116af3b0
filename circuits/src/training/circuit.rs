//! The training circuit: the constraint system of the statement in [`super`], for one
//! [`Shape`]. [`TrainingCircuit::synthesize`] also reports where the constraints go.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};
use ark_r1cs_std::{alloc::AllocVar, boolean::Boolean, eq::EqGadget, fields::fp::FpVar};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

use super::arith::InCircuit;
use super::dp::{self, NoiseInputs};
use super::sgd::{self, train};
use super::{Private, Public, Shape, NORM_BITS, RHO_BITS, TOL_BITS, UPDATE_BITS};
use crate::fixed::constraints::{signed_witness, unsigned_bits, SignedVar};
use crate::fixed::to_field;
use crate::merkle::constraints::root_from_path;
use crate::pedersen::constraints::{commit, PointVar};
use crate::pedersen::Generators;
use crate::poseidon::constraints::hash_vec;
use crate::rows::constraints::open_block;

/// Constraints per part of the statement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breakdown {
    /// Hashes of the model, the indices and the hyper-parameters (and index range checks).
    pub hashing: usize,
    /// The rows' range checks: `feature_bits` per feature, one per label (the bits the
    /// leaves pack).
    pub ranges: usize,
    /// Opening the rows: the blocks' leaf hashes (of the packed bits) and Merkle paths.
    pub merkle: usize,
    /// The K SGD steps (a sampled-step proof: the challenged steps, and rescaling `w_K`).
    pub training: usize,
    /// Sampled-step proofs: hashing the committed models around each challenged step and
    /// `w_K` to their public digests.
    pub chain: usize,
    /// `|x − (w_K − w)| ≤ τ` and the range of x.
    pub tolerance: usize,
    /// `‖x‖² ≤ clip²`.
    pub norm: usize,
    /// Distributed-DP shapes ([`super::dp`]): the signs and their hash, the rotation, the
    /// grid and norm checks of y, the seed commitment, the PRG, the draws and z's range
    /// checks ([`super::dp::noise_constraints`]); 0 without noise.
    pub noise: usize,
    /// The Pedersen commitment (to x, or to z with noise).
    pub commitment: usize,
    /// All of them.
    pub total: usize,
}

/// The circuit for one statement (or, with [`Private::dummy`], for key generation).
#[derive(Clone, Debug)]
pub struct TrainingCircuit {
    /// Its shape.
    pub shape: Shape,
    /// The statement.
    pub public: Public,
    /// The witness.
    pub private: Private,
}

fn witnesses(cs: &ConstraintSystemRef<Fr>, xs: &[i64]) -> Result<Vec<FpVar<Fr>>, SynthesisError> {
    xs.iter()
        .map(|&x| FpVar::new_witness(cs.clone(), || Ok(to_field(x.into()))))
        .collect()
}

fn wide_witnesses(
    cs: &ConstraintSystemRef<Fr>,
    xs: &[i128],
) -> Result<Vec<FpVar<Fr>>, SynthesisError> {
    xs.iter()
        .map(|&x| FpVar::new_witness(cs.clone(), || Ok(to_field(x))))
        .collect()
}

fn check_shape(shape: &Shape, public: &Public, p: &Private) -> Result<(), SynthesisError> {
    let (k, b, n, blocks) = (
        shape.proved_steps(),
        shape.batch_size as usize,
        shape.model.param_count(),
        shape.blocks_per_step(),
    );
    let ok = shape.validate().is_ok()
        && p.model.len() == n
        && p.update.len() == n
        && p.indices.len() == k
        && p.rows.len() == k
        && p.paths.len() == k
        && p.indices.iter().all(|v| v.len() == blocks)
        && p.paths.iter().all(|v| v.len() == blocks)
        && p.rows.iter().flatten().all(|r| r.len() == shape.row_len())
        && p.rows.iter().all(|v| v.len() == b)
        && p.paths
            .iter()
            .flatten()
            .all(|q| 2 * q.siblings.len() == shape.tree_depth as usize)
        && match shape.sampled_steps {
            None => p.step_inputs.is_empty() && p.final_params.is_empty(),
            Some(_) => {
                p.step_inputs.len() == k
                    && p.step_inputs.iter().all(|w| w.len() == n)
                    && p.final_params.len() == n
            }
        }
        && match (&shape.noise, &public.noise, &p.noise) {
            (None, None, None) => true,
            (Some(_), Some(_), Some(w)) => {
                let d = super::dp::padded_dim(shape);
                w.negative.len() == d && w.rounded.len() == d && w.noisy.len() == d
            }
            _ => false,
        };
    if ok {
        Ok(())
    } else {
        Err(SynthesisError::Unsatisfiable)
    }
}

impl TrainingCircuit {
    /// Builds the constraints into `cs` and returns how many each part took.
    ///
    /// Runs with no `tracing` subscriber: arkworks' gadgets open `#[tracing::instrument]`
    /// spans (target `gr1cs`) that `Debug`-format their arguments, the whole constraint
    /// system included, so under an application's subscriber at INFO synthesis becomes
    /// quadratic (a 3,000-constraint setup ran for over half an hour in `cairn keygen`).
    pub fn synthesize(&self, cs: &ConstraintSystemRef<Fr>) -> Result<Breakdown, SynthesisError> {
        tracing::dispatcher::with_default(&tracing::Dispatch::none(), || self.build(cs))
    }

    fn build(&self, cs: &ConstraintSystemRef<Fr>) -> Result<Breakdown, SynthesisError> {
        let (shape, p) = (&self.shape, &self.private);
        check_shape(shape, &self.public, p)?;
        let inputs: Vec<FpVar<Fr>> = self
            .public
            .to_inputs()
            .into_iter()
            .map(|v| FpVar::new_input(cs.clone(), || Ok(v)))
            .collect::<Result<_, _>>()?;
        let want = 6
            + shape.noise.as_ref().map_or(0, |_| 3)
            + shape.sampled_steps.map_or(0, |s| 1 + 2 * s as usize);
        if inputs.len() != want {
            return Err(SynthesisError::Unsatisfiable);
        }
        let mut inputs = inputs.into_iter();
        let mut next = || inputs.next().ok_or(SynthesisError::Unsatisfiable);
        let [root, model_hash, indices_hash, hyper_hash, cx, cy] =
            [next()?, next()?, next()?, next()?, next()?, next()?];
        // Noise: the seed commitment, the round and the signs hash.
        let noise_inputs = match shape.noise {
            Some(_) => Some(NoiseInputs {
                seed_commitment: next()?,
                round: next()?,
                signs_hash: next()?,
            }),
            None => None,
        };
        // Sampled: d_K, then (d_{j−1}, d_j) per challenged step.
        let digests: Vec<FpVar<Fr>> = std::iter::from_fn(|| next().ok()).collect();
        let mut bd = Breakdown::default();
        let mut mark = cs.num_constraints();
        let mut take = |cs: &ConstraintSystemRef<Fr>| {
            let now = cs.num_constraints();
            std::mem::replace(&mut mark, now).abs_diff(now)
        };

        // Hashing: hyper-parameters, model, indices.
        let hyper = witnesses(cs, &p.hyper.hashed_values(shape))?;
        hash_vec(&hyper)?.enforce_equal(&hyper_hash)?;
        let (step, clip_sq, tol) = (&hyper[2], &hyper[3], &hyper[4]);
        let model = witnesses(cs, &p.model)?;
        hash_vec(&model)?.enforce_equal(&model_hash)?;
        let mut index_vars = Vec::with_capacity(shape.rows_used());
        let mut index_bits: Vec<Vec<Boolean<Fr>>> = Vec::with_capacity(shape.rows_used());
        for &i in p.indices.iter().flatten() {
            let v = FpVar::new_witness(cs.clone(), || Ok(Fr::from(u64::from(i))))?;
            index_bits.push(unsigned_bits(&v, shape.tree_depth)?);
            index_vars.push(v);
        }
        hash_vec(&index_vars)?.enforce_equal(&indices_hash)?;
        bd.hashing = take(cs);

        // Rows: every block used is the leaf at its index, its values in range.
        let format = shape.row_format();
        let mut batches: Vec<Vec<Vec<FpVar<Fr>>>> = Vec::with_capacity(p.rows.len());
        let mut bits = index_bits.iter();
        for (rows, paths) in p.rows.iter().zip(&p.paths) {
            let mut batch = Vec::with_capacity(rows.len());
            for (block, path) in rows.chunks(shape.block_rows as usize).zip(paths) {
                let before = cs.num_constraints();
                let (values, leaf) = open_block(cs, &format, block)?;
                // The range checks are the bits allocated: one constraint each.
                let ranged = format.row_bits() * block.len();
                let mut sibs: Vec<[FpVar<Fr>; 3]> = Vec::with_capacity(path.siblings.len());
                for s in &path.siblings {
                    let [a, b, c] = s.map(|v| FpVar::new_witness(cs.clone(), || Ok(v)));
                    sibs.push([a?, b?, c?]);
                }
                let b = bits.next().ok_or(SynthesisError::Unsatisfiable)?;
                root_from_path(&leaf, b, &sibs)?.enforce_equal(&root)?;
                // (Nothing is counted when synthesising the witness only.)
                let added = cs.num_constraints() - before;
                bd.ranges += ranged.min(added);
                bd.merkle += added.saturating_sub(ranged);
                batch.extend(values);
            }
            batches.push(batch);
        }
        take(cs);

        // Training: all K steps, or the challenged steps between committed models.
        let params = match digests.split_first() {
            None => {
                let params = train(&mut InCircuit, &shape.model, &model, &batches, step)?;
                bd.training = take(cs);
                params
            }
            Some((d_k, pairs)) => {
                for ((batch, input), pair) in
                    batches.iter().zip(&p.step_inputs).zip(pairs.chunks(2))
                {
                    let w = wide_witnesses(cs, input)?;
                    bd.training += take(cs);
                    hash_vec(&w)?.enforce_equal(&pair[0])?;
                    bd.chain += take(cs);
                    let out = sgd::fine_step(&mut InCircuit, &shape.model, &w, batch, step)?;
                    bd.training += take(cs);
                    hash_vec(&out)?.enforce_equal(&pair[1])?;
                    bd.chain += take(cs);
                }
                let w_k = wide_witnesses(cs, &p.final_params)?;
                hash_vec(&w_k)?.enforce_equal(d_k)?;
                bd.chain += take(cs);
                let params = sgd::finish(&mut InCircuit, &w_k)?;
                bd.training += take(cs);
                params
            }
        };

        // Tolerance: −τ ≤ x − (w_K − w) ≤ τ, with x a signed UPDATE_BITS-bit value.
        let mut xs: Vec<SignedVar> = Vec::with_capacity(p.update.len());
        for ((&x, w_k), w) in p.update.iter().zip(&params).zip(&model) {
            let xv = signed_witness(cs, Some(x.into()), UPDATE_BITS)?;
            let diff = &xv.value - (w_k - w);
            unsigned_bits(&(&diff + tol), TOL_BITS)?;
            unsigned_bits(&(tol - &diff), TOL_BITS)?;
            xs.push(xv);
        }
        bd.tolerance = take(cs);

        // Norm.
        let values: Vec<FpVar<Fr>> = xs.iter().map(|x| x.value.clone()).collect();
        let norm_sq = crate::fixed::constraints::dot(&values, &values);
        unsigned_bits(&(clip_sq - norm_sq), NORM_BITS)?;
        bd.norm = take(cs);

        // Noise: the commitment is to z = y + e (d values) instead of x.
        let committed = match (&shape.noise, &p.noise, &noise_inputs) {
            (Some(ns), Some(w), Some(inputs)) => {
                let zs = dp::enforce(cs, ns, &xs, w, inputs)?;
                bd.noise = take(cs);
                zs
            }
            (None, None, None) => xs,
            _ => return Err(SynthesisError::Unsatisfiable),
        };

        // Commitment.
        let rho = p.rho.into_bigint().to_bits_le();
        let rho_bits: Vec<Boolean<Fr>> = (0..RHO_BITS)
            .map(|i| Boolean::new_witness(cs.clone(), || Ok(rho.get(i).copied().unwrap_or(false))))
            .collect::<Result<_, _>>()?;
        let c = commit(cs, &Generators::new(committed.len()), &committed, &rho_bits)?;
        c.enforce_equal(&PointVar { x: cx, y: cy })?;
        bd.commitment = take(cs);
        bd.total = cs.num_constraints();
        Ok(bd)
    }
}

impl TrainingCircuit {
    /// The circuit of `shape` with an all-zero statement and witness: what key generation
    /// synthesises (the constraints depend on the shape only).
    pub fn blank(shape: &Shape) -> Self {
        let zero = Fr::from(0u64);
        Self {
            shape: shape.clone(),
            public: Public {
                data_root: zero,
                model_hash: zero,
                indices_hash: zero,
                hyper_hash: zero,
                commitment: Default::default(),
                digests: vec![zero; shape.sampled_steps.map_or(0, |s| 1 + 2 * s as usize)],
                noise: shape.noise.as_ref().map(|_| crate::training::NoisePublic {
                    seed_commitment: zero,
                    round: 0,
                    signs_hash: zero,
                }),
            },
            private: Private::dummy(shape),
        }
    }

    /// Where the constraints of `shape` go, without a witness: synthesised in setup mode,
    /// as key generation does (no values computed, no satisfaction check).
    pub fn shape_breakdown(shape: &Shape) -> Result<Breakdown, SynthesisError> {
        let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(ark_relations::gr1cs::SynthesisMode::Setup);
        Self::blank(shape).synthesize(&cs)
    }

    /// The constraints of `shape`'s circuit (an upper estimate), without building it: the
    /// circuit is bilinear in the steps proved s and the blocks b opened per step
    /// (c = A + B·b + C·s + D·s·b: a Merkle opening and range checks per block, the
    /// model's pass per step and per row), so four circuits of one or two steps and one or
    /// two blocks fix A to D; 2 % is added for the hashes of the index and digest vectors,
    /// which grow in absorption chunks. Shapes whose training alone is plainly over
    /// `limit` (two multiply-accumulates per parameter per row per step) are answered with
    /// that lower bound, unbuilt.
    pub fn estimated_constraints(shape: &Shape, limit: u64) -> Result<u64, SynthesisError> {
        shape
            .validate()
            .map_err(|_| SynthesisError::Unsatisfiable)?;
        let s = i128::from(shape.sampled_steps.unwrap_or(shape.local_steps));
        let blocks = i128::from(shape.batch_size / shape.block_rows);
        let params = shape.model.param_count() as u64;
        let floor = u64::from(shape.sampled_steps.unwrap_or(shape.local_steps))
            .saturating_mul(u64::from(shape.batch_size))
            .saturating_mul(params.saturating_mul(2));
        if floor > limit {
            return Ok(floor);
        }
        let small = |steps: u32, blocks: u32| {
            let mut sh = shape.clone();
            sh.batch_size = blocks * shape.block_rows;
            match shape.sampled_steps {
                // Keep K: a sampled proof's size follows s, not K.
                Some(_) => sh.sampled_steps = Some(steps),
                None => sh.local_steps = steps,
            }
            Self::shape_breakdown(&sh).map(|bd| bd.total as i128)
        };
        let (c11, c12) = (small(1, 1)?, small(1, 2)?);
        let per_block = c12 - c11;
        let est = if s == 1 {
            c11 + (blocks - 1) * per_block
        } else {
            // A sampled proof of s ≥ 2 steps has K ≥ 3, so two steps are a valid shape.
            let (c21, c22) = (small(2, 1)?, small(2, 2)?);
            let d = (c22 - c21) - per_block;
            let b = per_block - d;
            let c = c21 - c11 - d;
            let a = c11 - b - c - d;
            a + b * blocks + c * s + d * s * blocks
        };
        let est = u64::try_from(est.max(0)).unwrap_or(u64::MAX);
        Ok(est.saturating_add(est / 50))
    }

    /// Synthesises into a fresh constraint system: where the constraints go, and whether
    /// this witness satisfies them (for benches, `keygen` reports and debugging).
    pub fn count(&self) -> Result<(Breakdown, bool), SynthesisError> {
        let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
        let bd = self.synthesize(&cs)?;
        Ok((bd, cs.is_satisfied()?))
    }
}

impl ConstraintSynthesizer<Fr> for TrainingCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        self.synthesize(&cs).map(|_| ())
    }
}

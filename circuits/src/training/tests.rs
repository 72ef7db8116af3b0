//! The training statement, end to end on small shapes: the honest witness satisfies the
//! circuit, and one negative test per part of the statement (as penumbra does) shows a
//! witness that breaks exactly that part does not.

use ark_bn254::Fr;
use ark_relations::gr1cs::ConstraintSystem;
use ark_std::UniformRand;
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::sampling::batch_indices;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::circuit::{Breakdown, TrainingCircuit};
use super::*;
use crate::fixed::quantize_all;
use crate::merkle::MerkleTree;
use crate::pedersen::{self, Generators, Scalar};

pub(super) struct Fixture {
    pub shape: Shape,
    pub rows: Vec<Vec<i64>>,
    pub tree: MerkleTree,
    pub indices: Vec<Vec<u32>>,
    pub model: Vec<i64>,
    pub hyper: FixedHyper,
    pub witness: Witness,
}

pub(super) fn rows(seed: u64, n: usize, features: usize) -> Vec<Vec<i64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut r: Vec<f32> = (0..features).map(|_| rng.gen_range(-1.5..1.5)).collect();
            r.push(f32::from(rng.gen_bool(0.5)));
            quantize_all(&r).unwrap_or_default()
        })
        .collect()
}

/// A valid statement: 4 features, B = 2, depth 3, the update the replay gives plus noise
/// within τ.
pub(super) fn fixture(hidden: Vec<usize>, k: u32, tolerance: f32) -> Fixture {
    let shape = Shape { model: ModelSpec { n_features: 4, hidden }, local_steps: k, batch_size: 2, tree_depth: 3 };
    let rows = rows(11, 6, 4);
    let tree = MerkleTree::from_rows(&rows, 3).unwrap();
    let indices = batch_indices([3; 32], 0, rows.len(), k, 2);
    let model = quantize_all(&shape.model.init_params(1)).unwrap();
    let hp = HyperParams { local_steps: k, batch_size: 2, learning_rate: 0.5, clip_norm: 5.0 };
    let hyper = FixedHyper::new(&hp, tolerance).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let update = honest_update(&shape, &rows, &indices, &model, &hyper, &mut rng);
    let rho = Scalar::rand(&mut rng);
    let witness =
        Witness::new(&shape, &tree, &rows, indices.clone(), model.clone(), hyper, update, rho).unwrap();
    Fixture { shape, rows, tree, indices, model, hyper, witness }
}

fn honest_update(
    shape: &Shape,
    rows: &[Vec<i64>],
    indices: &[Vec<u32>],
    model: &[i64],
    hyper: &FixedHyper,
    rng: &mut ChaCha20Rng,
) -> Vec<i64> {
    let batches: Vec<Vec<Vec<i64>>> =
        indices.iter().map(|b| b.iter().map(|&i| rows[i as usize].clone()).collect()).collect();
    let w_k = replay(shape, model, &batches, hyper).unwrap();
    let t = hyper.tolerance;
    w_k.iter().zip(model).map(|(a, b)| a - b + rng.gen_range(-t..=t)).collect()
}

pub(super) fn check(shape: &Shape, public: &Public, private: &Private) -> (bool, Breakdown) {
    let cs = ConstraintSystem::<Fr>::new_ref();
    let c = TrainingCircuit { shape: shape.clone(), public: public.clone(), private: private.clone() };
    let bd = c.synthesize(&cs).unwrap();
    (cs.is_satisfied().unwrap(), bd)
}

#[test]
fn honest_logistic_regression_satisfies_with_pinned_counts() {
    let f = fixture(vec![], 2, 0.01);
    let (ok, bd) = check(&f.shape, &f.witness.public, &f.witness.private);
    assert!(ok);
    assert_eq!(bd.total, bd.hashing + bd.merkle + bd.training + bd.tolerance + bd.norm + bd.commitment);
    // training per step: 2 rows × (4 MACs + rescale 49 + sigmoid 68) + 4 weights × (2 MACs
    // + η·g 1 + rescale 65) + bias (1 + 49) = 564; tolerance 5 × (24 + 2·21); norm 5 + 49;
    // commitment 5·12 + 126 windows × 7 − 3, ρ's 252 bits, 2 for C.
    let want =
        Breakdown { hashing: 1039, merkle: 4300, training: 2 * 564, tolerance: 330, norm: 54, commitment: 1553, total: 8404 };
    assert_eq!(bd, want);
}

#[test]
fn honest_mlp_satisfies_with_zero_tolerance() {
    // τ = 0 and x = w_K − w: the circuit must compute exactly what the replay computes.
    let f = fixture(vec![3], 1, 0.0);
    assert_eq!(f.witness.private.update, f.witness.replayed_update);
    let (ok, bd) = check(&f.shape, &f.witness.public, &f.witness.private);
    assert!(ok);
    let want =
        Breakdown { hashing: 1538, merkle: 2150, training: 2090, tolerance: 1254, norm: 68, commitment: 2729, total: 9829 };
    assert_eq!(bd, want);
}

#[test]
fn negative_row_not_in_the_tree() {
    let f = fixture(vec![], 1, 0.01);
    // Train honestly on a table where one used row differs, but claim the committed root.
    let mut other = f.rows.clone();
    other[f.indices[0][0] as usize][0] += 1000;
    let tree = MerkleTree::from_rows(&other, 3).unwrap();
    let w = Witness::new(&f.shape, &tree, &other, f.indices.clone(), f.model.clone(), f.hyper, f.witness.replayed_update.clone(), f.witness.private.rho);
    // The update may fall outside τ of the new training; use that training's own update.
    let w = w.or_else(|_| {
        let upd = replay_update(&f, &other, &f.indices, &f.model);
        Witness::new(&f.shape, &tree, &other, f.indices.clone(), f.model.clone(), f.hyper, upd, f.witness.private.rho)
    }).unwrap();
    assert!(check(&f.shape, &w.public, &w.private).0, "consistent on its own tree");
    let mut public = w.public.clone();
    public.data_root = f.tree.root();
    assert!(!check(&f.shape, &public, &w.private).0);
}

fn replay_update(f: &Fixture, rows: &[Vec<i64>], indices: &[Vec<u32>], model: &[i64]) -> Vec<i64> {
    let batches: Vec<Vec<Vec<i64>>> =
        indices.iter().map(|b| b.iter().map(|&i| rows[i as usize].clone()).collect()).collect();
    let w_k = replay(&f.shape, model, &batches, &f.hyper).unwrap();
    w_k.iter().zip(model).map(|(a, b)| a - b).collect()
}

#[test]
fn negative_row_at_another_index() {
    let f = fixture(vec![], 1, 0.01);
    // Real rows of the tree, but not the ones the round seed selects.
    let mut idx = f.indices.clone();
    idx[0][0] = (0..6).find(|i| !f.indices[0].contains(i)).unwrap();
    let upd = replay_update(&f, &f.rows, &idx, &f.model);
    let w = Witness::new(&f.shape, &f.tree, &f.rows, idx, f.model.clone(), f.hyper, upd, f.witness.private.rho).unwrap();
    assert!(check(&f.shape, &w.public, &w.private).0);
    let mut public = w.public.clone();
    public.indices_hash = f.witness.public.indices_hash;
    assert!(!check(&f.shape, &public, &w.private).0);
}

#[test]
fn negative_tampered_row() {
    let f = fixture(vec![], 1, 0.01);
    let mut private = f.witness.private.clone();
    private.rows[0][1][2] += 1;
    assert!(!check(&f.shape, &f.witness.public, &private).0);
}

#[test]
fn negative_wrong_global_model() {
    let f = fixture(vec![], 1, 0.01);
    let mut model = f.model.clone();
    model[0] += 5000;
    let upd = replay_update(&f, &f.rows, &f.indices, &model);
    let w = Witness::new(&f.shape, &f.tree, &f.rows, f.indices.clone(), model, f.hyper, upd, f.witness.private.rho).unwrap();
    assert!(check(&f.shape, &w.public, &w.private).0);
    let mut public = w.public.clone();
    public.model_hash = f.witness.public.model_hash;
    assert!(!check(&f.shape, &public, &w.private).0);
}

/// The witness with `update` swapped in and the commitment recomputed to match it.
fn with_update(f: &Fixture, update: Vec<i64>) -> (Public, Private) {
    let mut private = f.witness.private.clone();
    let mut public = f.witness.public.clone();
    let gens = Generators::new(f.shape.model.param_count());
    public.commitment = pedersen::commit(&gens, &update, &private.rho).unwrap();
    private.update = update;
    (public, private)
}

#[test]
fn negative_update_outside_tolerance() {
    let f = fixture(vec![2], 1, 0.01);
    let mut update = f.witness.replayed_update.clone();
    update[3] += f.hyper.tolerance + 1;
    let err = Witness::new(&f.shape, &f.tree, &f.rows, f.indices.clone(), f.model.clone(), f.hyper, update.clone(), f.witness.private.rho);
    assert!(matches!(err, Err(TrainingError::OutsideTolerance { index: 3, .. })));
    let (public, private) = with_update(&f, update.clone());
    assert!(!check(&f.shape, &public, &private).0);
    // Exactly at τ is accepted.
    update[3] -= 1;
    let (public, private) = with_update(&f, update);
    assert!(check(&f.shape, &public, &private).0);
}

#[test]
fn negative_over_norm_update() {
    let f = fixture(vec![], 1, 0.01);
    let norm_sq: i128 = f.witness.private.update.iter().map(|&v| i128::from(v) * i128::from(v)).sum();
    let mut private = f.witness.private.clone();
    let mut public = f.witness.public.clone();
    let set_clip = |private: &mut Private, public: &mut Public, clip_sq: i64| {
        private.hyper.clip_sq = clip_sq;
        public.hyper_hash = private.hyper.hash(&f.shape);
    };
    set_clip(&mut private, &mut public, norm_sq as i64 - 1);
    assert!(!check(&f.shape, &public, &private).0);
    set_clip(&mut private, &mut public, norm_sq as i64);
    assert!(check(&f.shape, &public, &private).0, "exactly at the bound is accepted");
}

#[test]
fn negative_commitment_to_another_x() {
    let f = fixture(vec![], 1, 0.01);
    let mut other = f.witness.private.update.clone();
    other[0] += 1;
    let gens = Generators::new(f.shape.model.param_count());
    let mut public = f.witness.public.clone();
    public.commitment = pedersen::commit(&gens, &other, &f.witness.private.rho).unwrap();
    assert!(!check(&f.shape, &public, &f.witness.private).0);
}

#[test]
fn negative_wrong_blinding() {
    let f = fixture(vec![], 1, 0.01);
    let mut private = f.witness.private.clone();
    private.rho += Scalar::from(1u64);
    assert!(!check(&f.shape, &f.witness.public, &private).0);
}

#[test]
fn negative_wrong_hyper_parameters() {
    let f = fixture(vec![], 1, 0.01);
    let mut private = f.witness.private.clone();
    private.hyper.step += 1;
    assert!(!check(&f.shape, &f.witness.public, &private).0);
}

#[test]
fn shape_hash_names_every_parameter() {
    let f = fixture(vec![], 1, 0.01);
    let mut other = f.shape.clone();
    other.tree_depth += 1;
    assert_ne!(f.shape.hash(), other.hash());
    let mut other = f.shape.clone();
    other.model.hidden = vec![1];
    assert_ne!(f.shape.hash(), other.hash());
    assert_eq!(f.shape.hash(), f.shape.clone().hash());
}

//! The proof of correct local training against the real training engine: an update that
//! libtorch (`TchTrainer`) computes in float on the rows the round seed selects lands within
//! τ of the circuit's fixed-point replay, and proves; the same update scaled does not.
//!
//! Issue 5, item 3. The shapes are small (depth-4 tree, B = 4) so the Groth16 setup and
//! proof stay within seconds in the dev profile; the float-vs-fixed gap does not depend on
//! the tree depth, and `cairn-circuits`' tests size τ on the reference shapes R1/R2.

use cairn_circuits::fixed::{dequantize, quantize_all, quantize_row};
use cairn_circuits::merkle::MerkleTree;
use cairn_circuits::pedersen::random_blinding;
use cairn_circuits::training::circuit::TrainingCircuit;
use cairn_circuits::training::prover::Prover;
use cairn_circuits::training::{
    proof, FixedHyper, Public, Shape, TrainingError, Witness, UPDATE_BITS,
};
use cairn_participant::trainer::{DeviceChoice, TchTrainer, TrainInput, Trainer};
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::sampling::{block_indices, block_rows_of};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The reference tolerance (circuits/README.md, "Choosing τ"), for lr = 0.1.
const TAU: f32 = 1e-3;
const LR: f32 = 0.1;
const N_ROWS: usize = 12;
const DEPTH: u32 = 4;
/// Rows per leaf: B = 4 is two blocks.
const BLOCK: u32 = 2;
const ROUND_SEED: [u8; 32] = [7; 32];
const PARTICIPANT: u32 = 3;

/// A holder's table as the datasets crate gives it: standardised features (clipped at 4σ),
/// 0/1 labels, row-major.
struct Table {
    n_features: usize,
    features: Vec<f32>,
    labels: Vec<f32>,
}

fn table(n_features: usize, seed: u64) -> Table {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let features = (0..N_ROWS * n_features)
        .map(|_| (rng.gen_range(-1.0f32..1.0) * 2.0).clamp(-4.0, 4.0))
        .collect();
    let labels = (0..N_ROWS).map(|_| f32::from(rng.gen_bool(0.4))).collect();
    Table {
        n_features,
        features,
        labels,
    }
}

/// Everything both sides of the proof see for one participant and round.
struct Round {
    shape: Shape,
    hyper: HyperParams,
    fixed_hyper: FixedHyper,
    /// The committed rows (fixed point, features then label) and their tree.
    rows: Vec<Vec<i64>>,
    tree: MerkleTree,
    /// The global model as published (fixed point).
    model: Vec<i64>,
    /// The blocks the round seed selects, step by step.
    indices: Vec<Vec<u32>>,
}

fn round(t: &Table, hidden: Vec<usize>, k: u32, b: u32) -> Round {
    let spec = ModelSpec::mlp(t.n_features, hidden);
    let shape = Shape {
        model: spec.clone(),
        local_steps: k,
        batch_size: b,
        tree_depth: DEPTH,
        feature_bits: 20,
        block_rows: BLOCK,
        sampled_steps: None,
        noise: None,
    };
    let rows: Vec<Vec<i64>> = t
        .features
        .chunks(t.n_features)
        .zip(&t.labels)
        .map(|(f, &y)| quantize_row(f, y).expect("standardised rows fit the format"))
        .collect();
    let leaves = shape
        .row_format()
        .leaves(&rows)
        .expect("standardised rows are in range");
    let tree = MerkleTree::from_leaves(leaves, DEPTH).expect("6 blocks fit a depth-4 tree");
    let model = quantize_all(&spec.init_params(5)).expect("initial weights fit");
    let hyper = HyperParams {
        local_steps: k,
        batch_size: b,
        learning_rate: LR,
        clip_norm: 5.0,
    };
    let fixed_hyper = FixedHyper::new(&hyper, TAU).expect("reference τ and clip fit");
    let indices = block_indices(ROUND_SEED, PARTICIPANT, N_ROWS, k, b, BLOCK);
    Round {
        shape,
        hyper,
        fixed_hyper,
        rows,
        tree,
        model,
        indices,
    }
}

/// The update libtorch computes from the published model on the holder's own (float)
/// rows, at the indices the round seed selects: what a participant submits.
fn tch_update(t: &Table, r: &Round) -> Vec<f32> {
    let global: Vec<f32> = r.model.iter().map(|&v| dequantize(v)).collect();
    let input = TrainInput {
        spec: &r.shape.model,
        global: &global,
        features: &t.features,
        labels: &t.labels,
        hyper: &r.hyper,
        batches: &block_rows_of(&r.indices, BLOCK),
    };
    let mut trainer = TchTrainer::new(DeviceChoice::Cpu).expect("the CPU is always available");
    let up = trainer.train(&input).expect("valid input trains");
    assert_eq!(
        up.n_examples,
        u64::from(r.shape.local_steps * r.shape.batch_size)
    );
    up.delta
}

fn witness(r: &Round, update: &[f32], seed: u64) -> Result<Witness, TrainingError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Witness::from_float_update(
        &r.shape,
        &r.tree,
        &r.rows,
        r.indices.clone(),
        r.model.clone(),
        r.fixed_hyper,
        update,
        random_blinding(&mut rng),
    )
}

/// Largest |tch − replay| over the coordinates, in real units.
fn gap(update: &[f32], w: &Witness) -> f32 {
    update
        .iter()
        .zip(&w.replayed_update)
        .map(|(u, &q)| (u - dequantize(q)).abs())
        .fold(0.0, f32::max)
}

#[test]
fn a_tch_update_lands_within_tau_and_proves() {
    let t = table(6, 41);
    let r = round(&t, vec![4], 2, 4);
    let update = tch_update(&t, &r);
    let w = witness(&r, &update, 1).expect("the tch update is within τ of the replay");
    let g = gap(&update, &w);
    eprintln!("MLP 6→4→1, K = 2, B = 4, lr = {LR}: max |tch − replay| = {g:.2e} (τ = {TAU:e})");
    // Training moved the model, the engines differ (float vs fixed point), and by less than τ.
    assert!(update.iter().any(|&d| d.abs() > 10.0 * TAU), "{update:?}");
    assert!(g > 0.0 && g <= TAU, "gap {g}");

    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (pk, vk) = proof::setup(&r.shape, &mut rng).expect("setup on a small shape");
    let prover = Prover::new(&r.shape, pk).expect("prover");
    let p = prover
        .prove(&w, &mut rng)
        .expect("an honest witness proves");
    let bytes = p.to_bytes();
    assert_eq!(bytes.len(), proof::PROOF_BYTES);

    // The verifier rebuilds the statement from public facts only: the enrolled root, the
    // published model, the seed's indices, the round's hyper-parameters and the commitment.
    let public = Public::new(
        &r.shape,
        r.tree.root(),
        &r.model,
        &block_indices(ROUND_SEED, PARTICIPANT, N_ROWS, 2, 4, BLOCK),
        &FixedHyper::new(&r.hyper, TAU).expect("same hyper-parameters"),
        w.public.commitment,
    );
    let pvk = proof::prepare(&vk);
    let decoded = proof::Proof::from_bytes(&bytes).expect("128 valid bytes");
    assert!(proof::verify(&pvk, &public, &decoded).expect("well-formed inputs"));
    // Another participant's indices (same round) are another statement.
    let other = Public::new(
        &r.shape,
        r.tree.root(),
        &r.model,
        &block_indices(ROUND_SEED, PARTICIPANT + 1, N_ROWS, 2, 4, BLOCK),
        &r.fixed_hyper,
        w.public.commitment,
    );
    assert!(!proof::verify(&pvk, &other, &decoded).expect("well-formed inputs"));
}

#[test]
fn a_tch_logistic_regression_update_lands_within_tau() {
    let t = table(8, 42);
    let r = round(&t, vec![], 3, 4);
    let update = tch_update(&t, &r);
    let w = witness(&r, &update, 3).expect("the tch update is within τ of the replay");
    let g = gap(&update, &w);
    eprintln!("logistic regression 8→1, K = 3, B = 4: max |tch − replay| = {g:.2e}");
    assert!(g > 0.0 && g <= TAU, "gap {g}");
    let (_, satisfied) = TrainingCircuit {
        shape: r.shape.clone(),
        public: w.public.clone(),
        private: w.private.clone(),
    }
    .count()
    .expect("synthesis");
    assert!(satisfied);
}

#[test]
fn a_scaled_tch_update_is_refused() {
    let t = table(6, 41);
    let r = round(&t, vec![4], 2, 4);
    let update = tch_update(&t, &r);
    let honest = witness(&r, &update, 4).expect("the unscaled update is accepted");
    // ×2: a participant boosting its honest update to weigh more in the average.
    assert!(update.iter().any(|&d| d.abs() > 10.0 * TAU), "{update:?}");
    let scaled: Vec<f32> = update.iter().map(|d| d * 2.0).collect();
    match witness(&r, &scaled, 4) {
        Err(TrainingError::OutsideTolerance { tolerance, .. }) => {
            assert_eq!(tolerance, r.fixed_hyper.tolerance)
        }
        other => panic!("a scaled update must be outside τ, got {other:?}"),
    }
    // Past the native check (a prover that skips it), the circuit rejects it too: the scaled
    // update, committed with the honest blinding, does not satisfy the constraints.
    let mut private = honest.private.clone();
    private.update = quantize_all(&scaled).expect("scaled update fits");
    assert!(private
        .update
        .iter()
        .all(|&x| x.unsigned_abs() < 1 << (UPDATE_BITS - 1)));
    let mut public = honest.public.clone();
    public.commitment = cairn_circuits::pedersen::commit(
        &cairn_circuits::pedersen::Generators::new(r.shape.model.param_count()),
        &private.update,
        &private.rho,
    )
    .expect("one value per parameter");
    let (_, satisfied) = TrainingCircuit {
        shape: r.shape.clone(),
        public,
        private,
    }
    .count()
    .expect("synthesis");
    assert!(!satisfied);
}

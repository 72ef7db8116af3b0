//! The trainers against each other, against the protocol's reference forward pass, and
//! against the obvious promise of SGD: the loss goes down.

use cairn_participant::trainer::{
    evaluate_loss, DeviceChoice, NativeTrainer, TchTrainer, TrainError, TrainInput, Trainer,
};
use cairn_protocol::model::{logit, logits, HyperParams, ModelSpec};
use cairn_protocol::sampling::batch_indices;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// A linearly separable table: `y = [w*·x + 0.3 > 0]`, features uniform in [-1, 1].
struct Table {
    features: Vec<f32>,
    labels: Vec<f32>,
}

fn separable(n_rows: usize, n_features: usize, seed: u64) -> Table {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let truth: Vec<f32> = (0..n_features).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let mut features = Vec::with_capacity(n_rows * n_features);
    let mut labels = Vec::with_capacity(n_rows);
    for _ in 0..n_rows {
        let x: Vec<f32> = (0..n_features).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let z: f32 = x.iter().zip(&truth).map(|(a, b)| a * b).sum::<f32>() + 0.3;
        labels.push(if z > 0.0 { 1.0 } else { 0.0 });
        features.extend(x);
    }
    Table { features, labels }
}

/// A table of `k` classes: `y = argmax_c (w_c·x + b_c)` for random `w_c`, `b_c`.
fn classes(n_rows: usize, n_features: usize, k: usize, seed: u64) -> Table {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let truth: Vec<Vec<f32>> = (0..k)
        .map(|_| (0..=n_features).map(|_| rng.gen_range(-1.0..1.0)).collect())
        .collect();
    let mut features = Vec::with_capacity(n_rows * n_features);
    let mut labels = Vec::with_capacity(n_rows);
    for _ in 0..n_rows {
        let x: Vec<f32> = (0..n_features).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let score = |w: &Vec<f32>| x.iter().zip(w).map(|(a, b)| a * b).sum::<f32>() + w[n_features];
        let best = (0..k).fold(0, |b, c| {
            if score(&truth[c]) > score(&truth[b]) {
                c
            } else {
                b
            }
        });
        labels.push(best as f32);
        features.extend(x);
    }
    Table { features, labels }
}

fn cpu() -> TchTrainer {
    TchTrainer::new(DeviceChoice::Cpu).expect("the CPU is always available")
}

fn loss(spec: &ModelSpec, params: &[f32], t: &Table) -> f32 {
    evaluate_loss(spec, params, &t.features, &t.labels).expect("shapes are consistent")
}

fn add(global: &[f32], delta: &[f32]) -> Vec<f32> {
    global.iter().zip(delta).map(|(g, d)| g + d).collect()
}

/// Several rounds of one participant training from the previous round's result: the loss
/// before and after each round, and the final parameters.
fn rounds(
    trainer: &mut dyn Trainer,
    spec: &ModelSpec,
    t: &Table,
    n_rounds: u8,
) -> (Vec<f32>, Vec<f32>) {
    let hyper = HyperParams {
        local_steps: 20,
        batch_size: 32,
        learning_rate: 0.5,
        clip_norm: 10.0,
    };
    let mut global = spec.init_params(1);
    let mut losses = vec![loss(spec, &global, t)];
    for r in 0..n_rounds {
        let batches = batch_indices(
            [r; 32],
            0,
            t.labels.len(),
            hyper.local_steps,
            hyper.batch_size,
        );
        let input = TrainInput {
            spec,
            global: &global,
            features: &t.features,
            labels: &t.labels,
            hyper: &hyper,
            batches: &batches,
        };
        let up = trainer.train(&input).expect("valid input trains");
        assert_eq!(up.n_examples, 20 * 32);
        assert!(up.mean_loss.is_finite());
        global = add(&global, &up.delta);
        losses.push(loss(spec, &global, t));
    }
    (losses, global)
}

#[test]
fn loss_decreases_over_rounds_on_a_separable_problem() {
    let t = separable(512, 10, 7);
    for spec in [ModelSpec::logistic(10), ModelSpec::mlp(10, vec![16])] {
        let (losses, _) = rounds(&mut cpu(), &spec, &t, 6);
        assert!(
            losses.windows(2).all(|w| w[1] < w[0]),
            "{}: loss not decreasing: {losses:?}",
            spec.describe()
        );
        assert!(
            losses[6] < 0.5 * losses[0],
            "{}: too little progress: {losses:?}",
            spec.describe()
        );
    }
}

#[test]
fn delta_is_the_weight_change_and_lowers_the_loss_on_the_batches() {
    let t = separable(256, 6, 3);
    let spec = ModelSpec::mlp(6, vec![8]);
    let global = spec.init_params(5);
    let hyper = HyperParams {
        learning_rate: 0.2,
        ..HyperParams::default()
    };
    let batches = vec![(0..64).collect::<Vec<u32>>(); 5];
    let input = TrainInput {
        spec: &spec,
        global: &global,
        features: &t.features,
        labels: &t.labels,
        hyper: &hyper,
        batches: &batches,
    };
    let up = cpu().train(&input).expect("trains");
    let rows = Table {
        features: t.features[..64 * 6].to_vec(),
        labels: t.labels[..64].to_vec(),
    };
    // Full-batch steps on the same 64 rows: mean_loss is the mean of 5 decreasing losses,
    // so it lies between the loss before and the loss after.
    let before = loss(&spec, &global, &rows);
    let after = loss(&spec, &add(&global, &up.delta), &rows);
    assert!(
        after < before,
        "loss after {after} not below before {before}"
    );
    assert!(
        up.mean_loss < before && up.mean_loss > after,
        "{after} < {} < {before}",
        up.mean_loss
    );
    assert!((up.mean_loss - before).abs() > 1e-4);
    // A zero learning rate must give a zero delta with the same first loss.
    let frozen = HyperParams {
        learning_rate: 0.0,
        ..hyper
    };
    let up0 = cpu()
        .train(&TrainInput {
            hyper: &frozen,
            ..input
        })
        .expect("trains");
    assert!(up0.delta.iter().all(|d| *d == 0.0));
    assert!(
        (up0.mean_loss - before).abs() < 1e-5,
        "{} vs {before}",
        up0.mean_loss
    );
}

/// TchTrainer and NativeTrainer on the same input. 10 steps of 32 rows: a table of 300
/// rows takes tch's device-gather path, one of 1000 its host-gather path.
fn agree(spec: &ModelSpec, seed: u64, n_rows: usize) {
    let t = if spec.is_binary() {
        separable(n_rows, spec.n_features, seed)
    } else {
        classes(n_rows, spec.n_features, spec.outputs, seed)
    };
    let global = spec.init_params(seed);
    let hyper = HyperParams {
        local_steps: 10,
        batch_size: 32,
        learning_rate: 0.3,
        clip_norm: 10.0,
    };
    let batches = batch_indices([9; 32], 2, n_rows, hyper.local_steps, hyper.batch_size);
    let input = TrainInput {
        spec,
        global: &global,
        features: &t.features,
        labels: &t.labels,
        hyper: &hyper,
        batches: &batches,
    };
    let a = cpu().train(&input).expect("tch trains");
    let b = NativeTrainer::new().train(&input).expect("native trains");
    assert_eq!(a.n_examples, b.n_examples);
    assert!(
        (a.mean_loss - b.mean_loss).abs() < 1e-5,
        "{} vs {}",
        a.mean_loss,
        b.mean_loss
    );
    let max_diff = a
        .delta
        .iter()
        .zip(&b.delta)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let max_abs = a.delta.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
    assert!(
        max_diff < 1e-4,
        "{}: tch and native differ by {max_diff}",
        spec.describe()
    );
    assert!(
        max_abs > 1e-2,
        "a tiny delta would agree trivially ({max_abs})"
    );
}

#[test]
fn tch_and_native_agree_on_logistic_regression() {
    agree(&ModelSpec::logistic(45), 21, 300);
    agree(&ModelSpec::logistic(45), 21, 1000);
}

#[test]
fn tch_and_native_agree_on_an_mlp() {
    agree(&ModelSpec::mlp(45, vec![16]), 22, 300);
    agree(&ModelSpec::mlp(45, vec![16]), 22, 1000);
    agree(&ModelSpec::mlp(12, vec![8, 4]), 23, 300);
}

#[test]
fn tch_and_native_agree_on_softmax_models() {
    agree(&ModelSpec::logistic(20).with_classes(3), 24, 300);
    agree(&ModelSpec::mlp(20, vec![8]).with_classes(5), 25, 1000);
}

#[test]
fn softmax_training_lowers_the_loss_and_learns_the_classes() {
    let spec = ModelSpec::mlp(6, vec![12]).with_classes(3);
    let t = classes(600, 6, 3, 8);
    let counts: Vec<usize> = (0..3)
        .map(|c| t.labels.iter().filter(|&&y| y == c as f32).count())
        .collect();
    assert!(
        counts.iter().all(|&n| n > 30),
        "every class has rows: {counts:?}"
    );
    let (losses, trained) = rounds(&mut cpu(), &spec, &t, 8);
    assert!(losses[8] < 0.6 * losses[0], "{losses:?}");
    let correct = t
        .features
        .chunks_exact(6)
        .zip(&t.labels)
        .filter(|(x, &y)| {
            let z = logits(&spec, &trained, x);
            let best = (0..3).fold(0, |b, c| if z[c] > z[b] { c } else { b });
            best == y as usize
        })
        .count();
    let majority = *counts.iter().max().expect("three classes") as f64 / 600.0;
    let accuracy = correct as f64 / 600.0;
    assert!(
        accuracy > 0.85 && accuracy > majority + 0.2,
        "accuracy {accuracy} against the majority class's {majority}"
    );
}

#[test]
fn tch_forward_gives_every_logit_of_a_softmax_model() {
    let spec = ModelSpec::mlp(7, vec![5]).with_classes(4);
    let params = spec.init_params(4);
    let t = separable(50, 7, 4);
    let got = cpu().forward(&spec, &params, &t.features).expect("forward");
    assert_eq!(got.len(), 50 * 4);
    for (x, z) in t.features.chunks_exact(7).zip(got.chunks_exact(4)) {
        for (a, b) in z.iter().zip(logits(&spec, &params, x)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}

#[test]
fn a_label_outside_the_models_classes_is_a_typed_error() {
    let spec = ModelSpec::logistic(2).with_classes(3);
    let global = spec.init_params(1);
    let features = vec![0.5; 6];
    let hyper = HyperParams::default();
    let batches = vec![vec![0, 1, 2]];
    for (labels, bad_row) in [
        (vec![0.0, 3.0, 1.0], 1u32),
        (vec![0.0, 1.0, 1.5], 2),
        (vec![-1.0, 0.0, 2.0], 0),
    ] {
        let input = TrainInput {
            spec: &spec,
            global: &global,
            features: &features,
            labels: &labels,
            hyper: &hyper,
            batches: &batches,
        };
        let trainers: [&mut dyn Trainer; 2] = [&mut cpu(), &mut NativeTrainer::new()];
        for t in trainers {
            match t.train(&input) {
                Err(TrainError::Label { row, classes, .. }) => {
                    assert_eq!((row, classes), (bad_row, 3), "{labels:?}")
                }
                other => panic!("{labels:?}: {other:?}"),
            }
        }
    }
    // A binary model takes 0 and 1 only.
    let bin = ModelSpec::logistic(2);
    let g = bin.init_params(1);
    let labels = vec![0.0, 2.0, 1.0];
    let input = TrainInput {
        spec: &bin,
        global: &g,
        features: &features,
        labels: &labels,
        hyper: &hyper,
        batches: &batches,
    };
    assert!(matches!(
        NativeTrainer::new().train(&input),
        Err(TrainError::Label {
            row: 1,
            classes: 2,
            ..
        })
    ));
}

#[test]
fn tch_forward_matches_the_protocol_reference() {
    let spec = ModelSpec::mlp(7, vec![5, 3]);
    let params = spec.init_params(4);
    let t = separable(50, 7, 4);
    let got = cpu().forward(&spec, &params, &t.features).expect("forward");
    assert_eq!(got.len(), 50);
    for (x, z) in t.features.chunks_exact(7).zip(&got) {
        let want = logit(&spec, &params, x);
        assert!((z - want).abs() < 1e-5, "{z} vs {want}");
    }
    assert!(got.iter().any(|z| z.abs() > 1e-2));
}

#[test]
fn bad_inputs_are_typed_errors_for_both_engines() {
    let spec = ModelSpec::logistic(3);
    let global = vec![0.0; 4];
    let features = vec![0.5; 12];
    let labels = vec![1.0; 4];
    let hyper = HyperParams::default();
    let batches = vec![vec![0, 1]];
    let ok = TrainInput {
        spec: &spec,
        global: &global,
        features: &features,
        labels: &labels,
        hyper: &hyper,
        batches: &batches,
    };
    let oob = vec![vec![0, 4]];
    let empty = vec![vec![]];
    type Case<'a> = (TrainInput<'a>, fn(&TrainError) -> bool);
    let cases: Vec<Case<'_>> = vec![
        (
            TrainInput {
                global: &global[..3],
                ..ok
            },
            |e| matches!(e, TrainError::Model(_)),
        ),
        (
            TrainInput {
                features: &features[..11],
                ..ok
            },
            |e| matches!(e, TrainError::FeaturesLength { .. }),
        ),
        (
            TrainInput {
                labels: &labels[..3],
                ..ok
            },
            |e| matches!(e, TrainError::LabelsLength { .. }),
        ),
        (TrainInput { batches: &[], ..ok }, |e| {
            *e == TrainError::NoBatches
        }),
        (
            TrainInput {
                batches: &empty,
                ..ok
            },
            |e| *e == TrainError::EmptyBatch { step: 0 },
        ),
        (
            TrainInput {
                batches: &oob,
                ..ok
            },
            |e| {
                *e == TrainError::RowOutOfRange {
                    step: 0,
                    row: 4,
                    rows: 4,
                }
            },
        ),
    ];
    let mut engines: [Box<dyn Trainer>; 2] = [Box::new(cpu()), Box::new(NativeTrainer::new())];
    for engine in &mut engines {
        assert!(engine.train(&ok).is_ok());
        for (i, (input, want)) in cases.iter().enumerate() {
            let err = engine.train(input).expect_err("bad input must fail");
            assert!(want(&err), "{}: case {i} gave {err:?}", engine.device());
        }
    }
    let bad_spec = ModelSpec::mlp(3, vec![0]);
    assert!(matches!(
        cpu().forward(&bad_spec, &global, &features),
        Err(TrainError::Model(_))
    ));
}

#[test]
fn devices_are_chosen_as_asked() {
    assert_eq!(cpu().device(), "cpu");
    assert_eq!(NativeTrainer::new().device(), "native-cpu");
    let auto = TchTrainer::new(DeviceChoice::Auto).expect("auto always works");
    match TchTrainer::new(DeviceChoice::Cuda) {
        Ok(t) => {
            assert!(tch::Cuda::is_available());
            assert_eq!(t.device(), "cuda:0");
            assert_eq!(auto.device(), "cuda:0");
        }
        Err(e) => {
            assert!(!tch::Cuda::is_available());
            assert_eq!(e, TrainError::CudaUnavailable);
            assert!(e.to_string().contains("CUDA requested but not available"));
            assert_eq!(auto.device(), "cpu");
        }
    }
}

/// On a GPU machine (the device tool) this holds CUDA training to the native reference;
/// elsewhere it checks nothing more than `devices_are_chosen_as_asked`.
#[test]
fn cuda_agrees_with_native_when_present() {
    let Ok(mut gpu) = TchTrainer::new(DeviceChoice::Cuda) else {
        return;
    };
    let spec = ModelSpec::mlp(45, vec![16]);
    let t = separable(300, 45, 31);
    let global = spec.init_params(31);
    let hyper = HyperParams {
        learning_rate: 0.3,
        ..HyperParams::default()
    };
    let batches = batch_indices([4; 32], 1, 300, 10, 32);
    let input = TrainInput {
        spec: &spec,
        global: &global,
        features: &t.features,
        labels: &t.labels,
        hyper: &hyper,
        batches: &batches,
    };
    let a = gpu.train(&input).expect("cuda trains");
    let b = NativeTrainer::new().train(&input).expect("native trains");
    let max_diff = a
        .delta
        .iter()
        .zip(&b.delta)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-4, "cuda and native differ by {max_diff}");
}

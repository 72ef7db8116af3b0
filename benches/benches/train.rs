//! Local-training throughput: `TchTrainer` (libtorch, CPU) and `NativeTrainer` against
//! the same loop in PyTorch eager (`scripts/bench_torch.py`), which is the bar: the goal
//! is tch within 1.25× of PyTorch's time per step.
//!
//! ```text
//! . scripts/torch-env.sh && cargo bench -p cairn-benches --bench train [-- --threads N]
//! ```
//!
//! `--threads N` sets libtorch's intra-op threads on both sides (`tch::set_num_threads`,
//! `torch.set_num_threads`); without it both keep libtorch's default.
//!
//! Models 45→1 and 45→16→1, batches of 32 and 256, 200 steps of plain SGD on
//! BCE-with-logits, best of 5 rounds after a warm-up. The Python baseline is run by this
//! harness with the `python3` on PATH (the venv's, once torch-env.sh is sourced); without
//! it the ratio column is left empty.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cairn_participant::trainer::{DeviceChoice, NativeTrainer, TchTrainer, TrainInput, Trainer};
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::sampling::batch_indices;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const N_ROWS: usize = 4096;
const N_FEATURES: usize = 45;
const STEPS: u32 = 200;
const REPEATS: usize = 10;

/// Best-of-`REPEATS` steps per second of one engine on one configuration.
fn steps_per_sec(
    trainer: &mut dyn Trainer,
    spec: &ModelSpec,
    batch: u32,
    features: &[f32],
    labels: &[f32],
) -> f64 {
    let global = spec.init_params(0);
    let hyper = HyperParams {
        local_steps: STEPS,
        batch_size: batch,
        learning_rate: 0.1,
        clip_norm: 10.0,
    };
    let batches = batch_indices([1; 32], 0, N_ROWS, STEPS, batch);
    let input = TrainInput {
        spec,
        global: &global,
        features,
        labels,
        hyper: &hyper,
        batches: &batches,
    };
    let warm = TrainInput {
        batches: &batches[..10],
        ..input
    };
    if let Err(e) = trainer.train(&warm) {
        eprintln!("{}: {e}", trainer.device());
        return f64::NAN;
    }
    let mut best = f64::INFINITY;
    for _ in 0..REPEATS {
        let t0 = Instant::now();
        if trainer.train(&input).is_err() {
            return f64::NAN;
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    f64::from(STEPS) / best
}

/// Runs the PyTorch baseline; `(model, batch) → steps/s`, empty when it cannot run.
fn pytorch_baseline(threads: Option<usize>) -> HashMap<(String, u32), f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_torch.py");
    let steps = STEPS.to_string();
    let repeats = REPEATS.to_string();
    let threads = threads.unwrap_or(0).to_string();
    let out = Command::new("python3")
        .arg(&script)
        .args([
            "--steps",
            &steps,
            "--repeats",
            &repeats,
            "--threads",
            &threads,
        ])
        .output();
    let Ok(out) = out.map_err(|e| eprintln!("python3: {e}")) else {
        return HashMap::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(first) = text.lines().next() {
        println!("baseline: {first}");
    }
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let (model, batch, rate) = (
                it.next()?,
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
            );
            Some(((model.to_owned(), batch), rate))
        })
        .collect()
}

fn main() {
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    let features: Vec<f32> = (0..N_ROWS * N_FEATURES)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let labels: Vec<f32> = features
        .chunks_exact(N_FEATURES)
        .map(|x| {
            if x.iter().sum::<f32>() > 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    // `cargo bench` adds `--bench`; the only option of ours is `--threads N`.
    let args: Vec<String> = std::env::args().collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1)?.parse::<usize>().ok());
    let baseline = pytorch_baseline(threads);

    let Ok(tch_cpu) = TchTrainer::new(DeviceChoice::Cpu) else {
        return;
    };
    let mut tch_cpu = tch_cpu.with_cpu_threads(threads);
    // Before any training, libtorch reports its default.
    let default_threads = usize::try_from(tch::get_num_threads()).unwrap_or(1);
    println!("tch threads: {}", threads.unwrap_or(default_threads));
    let mut native = NativeTrainer::new();
    println!(
        "{:<10} {:>5} {:>12} {:>12} {:>12} {:>16}",
        "model", "batch", "pytorch/s", "tch/s", "native/s", "tch time/pytorch"
    );
    for hidden in [vec![], vec![16]] {
        let spec = ModelSpec::mlp(N_FEATURES, hidden);
        for batch in [32, 256] {
            let t = steps_per_sec(&mut tch_cpu, &spec, batch, &features, &labels);
            let n = steps_per_sec(&mut native, &spec, batch, &features, &labels);
            let (py, ratio) = match baseline.get(&(spec.describe(), batch)) {
                Some(&p) => (format!("{p:.0}"), format!("{:.2}", p / t)),
                None => ("-".to_owned(), "-".to_owned()),
            };
            println!(
                "{:<10} {:>5} {:>12} {:>12.0} {:>12.0} {:>16}",
                spec.describe(),
                batch,
                py,
                t,
                n,
                ratio
            );
        }
    }
}

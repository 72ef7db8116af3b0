//! What the harnesses share: their `main` ([`harness_main`]); and for `round_breakdown` and
//! `audit`, the reference configuration R1 (`cairn demo`'s defaults) on the real data split
//! among 5 holders, its proof keys and cached files under the target directory, and the
//! job run on loopback.

#![allow(dead_code)] // each harness uses part of it

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cairn_cli::demo::demo_defaults;
use cairn_cli::federate::{run_federated, Proving};
use cairn_cli::options::{DataArgs, TrainArgs};
use cairn_coordinator::{JobSummary, Progress};
use cairn_datasets::{partition, Dataset, Partition};
use cairn_participant::trainer::{DeviceChoice, TchTrainer, Trainer};
use cairn_protocol::job::JobConfig;
use tokio::sync::mpsc;

/// A harness's `main`: runs `bench` on a multi-threaded tokio runtime, except under
/// `cargo test --benches`, which runs bench targets with `--test` (or `--list`): nothing to
/// do then.
pub fn harness_main<F: std::future::Future<Output = Result<()>>>(
    bench: impl FnOnce() -> F,
) -> Result<()> {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench())
}

/// Holders (participants) of the benchmarked job.
pub const HOLDERS: usize = 5;

/// `<target dir>/cairn-bench`: proof keys and cached transcripts live here, beside the
/// build, not in the source tree.
pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // target/release/deps/<bench>-<hash>
            let exe = std::env::current_exe().ok()?;
            Some(exe.ancestors().nth(3)?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("cairn-bench")
}

/// A positive integer from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// The proving benches' reference shapes, trees of depth 12 over blocks of 8 rows, 20-bit
/// features: R1 (logistic regression on 45 features, K = 1, B = 16), R2 (45→16→1, K = 4,
/// B = 16, every step proved) and R3, the demo's (38→8→1 on the fraud table's 38
/// features, K = 10, B = 32, one sampled step per proof; R3FULL: the same with every step proved).
pub fn reference_shape(name: &str) -> cairn_circuits::training::Shape {
    if name == "R3" || name == "R3FULL" {
        return cairn_circuits::training::Shape {
            model: cairn_protocol::model::ModelSpec::mlp(38, vec![8]),
            local_steps: 10,
            batch_size: 32,
            tree_depth: 12,
            feature_bits: 20,
            block_rows: 8,
            sampled_steps: (name == "R3").then_some(1),
            noise: None,
        };
    }
    let (hidden, local_steps) = if name == "R2" {
        (vec![16], 4)
    } else {
        (vec![], 1)
    };
    cairn_circuits::training::Shape {
        model: cairn_protocol::model::ModelSpec::mlp(45, hidden),
        local_steps,
        batch_size: 16,
        tree_depth: 12,
        feature_bits: 20,
        block_rows: 8,
        sampled_steps: None,
        noise: None,
    }
}

/// The Markdown heading the proving benches print for `shape`.
pub fn shape_heading(name: &str, shape: &cairn_circuits::training::Shape) -> String {
    format!(
        "## {name}: model {}, K = {}, B = {}, depth {} over blocks of {} rows",
        shape.model.describe(),
        shape.local_steps,
        shape.batch_size,
        shape.tree_depth,
        shape.block_rows
    )
}

/// A valid statement and witness of `shape` on `n_rows` synthetic standardised rows
/// (features uniform in [−2, 2), 30% positive labels) committed in the shape's blocks,
/// with the fixed-point replay's own update, τ = 1e-3 and clip 10: what the proving benches
/// prove. Also returns the seconds the dataset tree took (once per job for a holder).
pub fn synthetic_witness(
    shape: &cairn_circuits::training::Shape,
    n_rows: usize,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> (cairn_circuits::training::Witness, f64) {
    use cairn_circuits::fixed::quantize_all;
    use cairn_circuits::merkle::MerkleTree;
    use cairn_circuits::training::{replayed_update, FixedHyper, Witness};
    use cairn_protocol::model::HyperParams;
    use cairn_protocol::sampling::block_indices;
    use rand::Rng;

    let nf = shape.model.n_features;
    let rows: Vec<Vec<i64>> = (0..n_rows)
        .map(|_| {
            let mut r: Vec<f32> = (0..nf).map(|_| rng.gen_range(-2.0..2.0)).collect();
            r.push(f32::from(rng.gen_bool(0.3)));
            quantize_all(&r).expect("standardised rows fit the format")
        })
        .collect();
    let t = Instant::now();
    let leaves = shape.row_format().leaves(&rows).expect("rows in range");
    let tree = MerkleTree::from_leaves(leaves, shape.tree_depth).expect("tree");
    let tree_seconds = t.elapsed().as_secs_f64();
    let hp = HyperParams {
        local_steps: shape.local_steps,
        batch_size: shape.batch_size,
        learning_rate: 0.1,
        clip_norm: 10.0,
    };
    let hyper = FixedHyper::new(&hp, 0.001).expect("hyper");
    let indices = block_indices(
        [9; 32],
        0,
        rows.len(),
        shape.local_steps,
        shape.batch_size,
        shape.block_rows,
    );
    let model = quantize_all(&shape.model.init_params(3)).expect("model");
    if let Some(s) = shape.sampled_steps {
        // The last s steps challenged (the cost does not depend on which).
        let traj = cairn_circuits::training::trajectory(shape, &rows, &indices, &model, &hyper)
            .expect("trajectory");
        let challenged: Vec<u32> = (shape.local_steps - s..shape.local_steps).collect();
        let update = traj.update(&model).expect("update");
        let witness = Witness::sampled(
            shape,
            &tree,
            &rows,
            &indices,
            &traj,
            &challenged,
            model,
            hyper,
            update,
            cairn_circuits::pedersen::random_blinding(rng),
        )
        .expect("witness");
        return (witness, tree_seconds);
    }
    let update = replayed_update(shape, &rows, &indices, &model, &hyper).expect("replay");
    let witness = Witness::new(
        shape,
        &tree,
        &rows,
        indices,
        model,
        hyper,
        update,
        cairn_circuits::pedersen::random_blinding(rng),
    )
    .expect("witness");
    (witness, tree_seconds)
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Peak resident memory since the last [`reset_peak_rss`], in MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the peak resident memory to the current one (Linux ≥ 4.0: writing 5 to
/// `clear_refs`), so that [`peak_rss_mib`] measures from here.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU seconds this process has used (user + system, all threads), from /proc/self/stat
/// (100 Hz ticks): over a wall-clock interval, how many cores it actually got.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // utime and stime are fields 14 and 15: the 12th and 13th after the command name.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok());
    tick(11)
        .zip(tick(12))
        .map_or(f64::NAN, |(u, s)| (u + s) / 100.0)
}

/// The median (the upper one for an even count); NaN for none.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The median of `reps` timed runs of `f`.
pub fn time_median(reps: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..reps.max(1))
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed()
        })
        .collect();
    t.sort();
    t[t.len() / 2]
}

/// The R1 job on the real data: `cairn demo`'s defaults (logistic regression, K = 1,
/// B = 16, trees of depth 12 over blocks of 8 rows, τ = 1e-3, secure aggregation, proofs), the fraud table
/// (synthetic data when it is absent) dealt IID to [`HOLDERS`] holders as the demo deals it.
pub struct R1 {
    /// Where the rows came from.
    pub source: String,
    /// The job (proven).
    pub job: JobConfig,
    /// Its initial model.
    pub initial: Vec<f32>,
    /// The holders' rows.
    pub holders: Vec<Dataset>,
    /// The coordinator's test split.
    pub test: Dataset,
}

impl R1 {
    /// R1 with `rounds` rounds.
    pub fn load(rounds: u32) -> Result<Self> {
        let data = DataArgs::default();
        let (prepared, source) = data.load()?;
        let train = demo_defaults(TrainArgs {
            rounds: Some(rounds),
            ..TrainArgs::default()
        });
        let mut job = train.job(
            "bench-r1",
            prepared.train.n_features,
            HOLDERS,
            HOLDERS.div_ceil(2),
        )?;
        // Five provers share two cores: on a loaded machine a round can outlast the
        // default 120 s. The timeout only decides when to give up on a holder.
        job.round_timeout = Duration::from_secs(1800);
        let initial = job.model.init_params(train.seed());
        let holders = partition(&prepared.train, HOLDERS, &Partition::Iid, 7)
            .context("partitioning the training rows")?;
        Ok(Self {
            source,
            job,
            initial,
            holders,
            test: prepared.test,
        })
    }

    /// The same job without proofs (still secure aggregation): the baseline round.
    pub fn proof_free(&self, rounds: u32) -> JobConfig {
        JobConfig {
            proof: None,
            data: None,
            rounds,
            ..self.job.clone()
        }
    }

    /// The job's Groth16 keys from `<bench dir>/keys`, set up there on first use; with
    /// whether they were loaded and the seconds it took.
    pub fn keys(&self) -> Result<(Proving, bool, f64)> {
        let t = Instant::now();
        let (keys, existed) = Proving::load_or_setup(&self.job, &bench_dir().join("keys"))?;
        Ok((keys, existed, t.elapsed().as_secs_f64()))
    }

    /// Runs `job` (this one or its proof-free twin) on loopback with one tch trainer (CPU)
    /// per holder; returns the summary and every progress event.
    pub async fn run(
        &self,
        job: JobConfig,
        proving: Option<&Proving>,
    ) -> Result<(JobSummary, Vec<Progress>)> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let collector = tokio::spawn(async move {
            let mut events = Vec::new();
            while let Some(e) = rx.recv().await {
                events.push(e);
            }
            events
        });
        let summary = run_federated(
            job,
            self.initial.clone(),
            &self.test,
            self.holders.clone(),
            || Ok(Box::new(TchTrainer::new(DeviceChoice::Cpu)?) as Box<dyn Trainer>),
            tx,
            proving,
        )
        .await?;
        let events = tokio::time::timeout(Duration::from_secs(30), collector)
            .await
            .context("progress events still coming 30 s after the job")??;
        if let Some(e) = &summary.error {
            anyhow::bail!("the job stopped early: {e}");
        }
        Ok((summary, events))
    }
}

//! Distributed DP: privacy–utility on the fraud table (issue #16 item 4, proof-free jobs).
//!
//! The same secure job (`cairn simulate`'s in-process federation: real QUIC on loopback,
//! the `cairn participant` driver per holder, the native engine) on the fraud table with the
//! demo's split and IID partition (data seed 7), for N holders, with no DP and with the job
//! file's `[privacy] epsilon = ε, delta = 1e-5` (the noise multiplier z derived for the job's
//! rounds at q = 1, `min_survivors` = `participants.min`, γ = C / (4 √d)); each over a few
//! initial-model seeds (the round seeds, batches and noise come from the holders'
//! commit-reveal and their own randomness, fresh every run). Prints test AUC (median and
//! range over the seeds), z, the per-coordinate noise std of the released mean and the wall
//! time per job.
//!
//! Run: `. scripts/torch-env.sh && cargo bench -p cairn-benches --bench dp_utility`.
//! Settings (environment, defaults in brackets): `DP_HOLDERS` [5,50], `DP_EPSILONS`
//! [none,8,3,1], `DP_SEEDS` [5], `DP_ROUNDS` [20], `DP_CLIP` [0.25], `DP_LR` [0.5],
//! `DP_STEPS` [20], `DP_BATCH` [32], `DP_HIDDEN` [none].

use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_cli::options::{DataArgs, TrainArgs};
use cairn_cli::simulate::faults::{FaultPlan, FaultSpec};
use cairn_cli::simulate::{simulate, Engine, Setup};
use cairn_coordinator::job_file::JobFile;
use cairn_datasets::{default_fraud_csv, partition, shared_files, Partition};
use cairn_participant::trainer::{DeviceChoice, NativeTrainer, TrainInput, Trainer};
use cairn_protocol::job::JobConfig;
use cairn_protocol::metrics::evaluate;
use cairn_protocol::privacy::DpSettings;
use cairn_protocol::sampling::batch_indices;
use std::sync::Arc;

mod common;

/// The job's settings that the grid holds fixed.
#[derive(Clone, Debug)]
struct Settings {
    rounds: u32,
    clip: f32,
    lr: f32,
    steps: u32,
    batch: u32,
    /// `none` (logistic regression) or hidden widths.
    hidden: String,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let get =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Ok(Self {
            rounds: get("DP_ROUNDS", "20").parse().context("DP_ROUNDS")?,
            clip: get("DP_CLIP", "0.25").parse().context("DP_CLIP")?,
            lr: get("DP_LR", "0.5").parse().context("DP_LR")?,
            steps: get("DP_STEPS", "20").parse().context("DP_STEPS")?,
            batch: get("DP_BATCH", "32").parse().context("DP_BATCH")?,
            hidden: get("DP_HIDDEN", "none"),
        })
    }

    fn train_args(&self, seed: u64) -> TrainArgs {
        TrainArgs {
            hidden: Some(self.hidden.clone()),
            rounds: Some(self.rounds),
            steps: Some(self.steps),
            batch: Some(self.batch),
            lr: Some(self.lr),
            clip: Some(self.clip),
            seed: Some(seed),
            aggregation: Some("secure".into()),
            proofs: Some(false),
            ..TrainArgs::default()
        }
    }

    /// The hidden widths as the job file writes them.
    fn hidden_toml(&self) -> String {
        if self.hidden == "none" {
            "[]".into()
        } else {
            format!("[{}]", self.hidden)
        }
    }
}

/// The DP settings a job file with `[privacy] epsilon` gives the job `job` (same rounds,
/// model, clip and participants), through `JobFile::to_config` as the coordinator derives
/// them.
fn privacy_for(job: &JobConfig, s: &Settings, epsilon: f64) -> Result<DpSettings> {
    let toml = format!(
        "rounds = {rounds}\nseed = {seed}\n[model]\nhidden = {hidden}\n\
         [participants]\nper_round = {n}\nmin = {min}\n\
         [train]\nsteps = {steps}\nbatch = {batch}\nlr = {lr}\nclip = {clip}\n\
         [aggregation]\nmode = \"secure\"\n[proofs]\nenabled = false\n\
         [privacy]\nepsilon = {epsilon}\ndelta = 1e-5\n",
        rounds = s.rounds,
        seed = job.seed,
        hidden = s.hidden_toml(),
        n = job.participants,
        min = job.min_participants,
        steps = s.steps,
        batch = s.batch,
        lr = s.lr,
        clip = s.clip,
    );
    let file = JobFile::from_toml(&toml).context("the [privacy] job file")?;
    let resolved = file
        .to_config("dp-utility", job.model.n_features, 2)
        .context("resolving the [privacy] job file")?;
    resolved
        .config
        .privacy
        .context("the job file resolved without privacy")
}

/// One cell of the grid: every seed's test AUC and wall time.
struct Cell {
    holders: usize,
    epsilon: Option<f64>,
    z: Option<f64>,
    /// Per-coordinate std of the noise in the released mean with all holders surviving.
    sigma_mean: Option<f64>,
    /// ε the accountant gives the job's rounds at that z.
    spent: Option<f64>,
    aucs: Vec<f64>,
    seconds: Vec<f64>,
    failures: Vec<String>,
}

fn median(v: &[f64]) -> f64 {
    common::median(v)
}

/// The L2 norm of holder 0's first-round update from the initial model (unclipped), for
/// the clip-to-update ratio.
fn first_update_norm(
    job: &JobConfig,
    initial: &[f32],
    rows: &cairn_datasets::Dataset,
) -> Result<f64> {
    let batches = batch_indices(
        [1; 32],
        0,
        rows.n_rows(),
        job.hyper.local_steps,
        job.hyper.batch_size,
    );
    let input = TrainInput {
        spec: &job.model,
        global: initial,
        features: &rows.features,
        labels: &rows.labels,
        hyper: &job.hyper,
        batches: &batches,
    };
    let update = NativeTrainer::new().train(&input)?;
    Ok(update
        .delta
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        .sqrt())
}

fn list<T: std::str::FromStr>(name: &str, default: &str) -> Result<Vec<T>> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<T>()
                .map_err(|_| anyhow::anyhow!("{name}: cannot read {x:?}"))
        })
        .collect()
}

async fn bench() -> Result<()> {
    let Some([csv]) = shared_files([default_fraud_csv()]) else {
        return Ok(());
    };
    let s = Settings::from_env()?;
    let holder_counts: Vec<usize> = list("DP_HOLDERS", "5,50")?;
    let epsilons: Vec<Option<f64>> = std::env::var("DP_EPSILONS")
        .unwrap_or_else(|_| "none,8,3,1".into())
        .split(',')
        .map(|x| match x.trim() {
            "none" => Ok(None),
            e => e
                .parse::<f64>()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("DP_EPSILONS: cannot read {e:?}")),
        })
        .collect::<Result<_>>()?;
    let seeds = common::env_usize("DP_SEEDS", 5) as u64;
    let data = DataArgs {
        data: Some(csv),
        ..DataArgs::default()
    };
    let (prepared, source) = data.load()?;
    println!("data: {source}");
    println!(
        "settings: model {}, {} rounds x K = {} x B = {}, lr {}, clip {}, secure aggregation, FedAvg (server lr 1), native engine, {} seeds; load average {}",
        s.hidden, s.rounds, s.steps, s.batch, s.lr, s.clip, seeds, common::load_average()
    );
    let t_all = Instant::now();
    let mut cells = Vec::new();
    for &n in &holder_counts {
        // The demo's split (test fraction 0.2, split seed 7) and partition (IID, seed 7).
        let holders = partition(&prepared.train, n, &Partition::Iid, 7)
            .with_context(|| format!("dealing the training rows to {n} holders"))?;
        let base = s
            .train_args(7)
            .job_for("dp-utility", &prepared, n, n.div_ceil(2))?;
        let initial = base.model.init_params(base.seed);
        let norm = first_update_norm(&base, &initial, &holders[0])?;
        println!(
            "\n{n} holders ({} rows each on average), participants.min {}, model {} ({} parameters); holder 0's first update: ‖Δ‖ = {norm:.3}, clip / ‖Δ‖ = {:.2}",
            prepared.train.n_rows() / n,
            base.min_participants,
            base.model.describe(),
            base.model.param_count(),
            f64::from(s.clip) / norm
        );
        for &epsilon in &epsilons {
            let privacy = match epsilon {
                Some(e) => Some(privacy_for(&base, &s, e)?),
                None => None,
            };
            let (z, sigma_mean, spent) = match &privacy {
                Some(p) => {
                    let v = p.params.holder_variance();
                    let sigma = p.params.granularity * (n as f64 * v).sqrt() / n as f64;
                    (
                        Some(p.params.noise_multiplier),
                        Some(sigma),
                        Some(p.epsilon_after(s.rounds)?),
                    )
                }
                None => (None, None, None),
            };
            let mut cell = Cell {
                holders: n,
                epsilon,
                z,
                sigma_mean,
                spent,
                aucs: Vec::new(),
                seconds: Vec::new(),
                failures: Vec::new(),
            };
            for seed in 0..seeds {
                let mut job =
                    s.train_args(7 + seed)
                        .job_for("dp-utility", &prepared, n, n.div_ceil(2))?;
                job.privacy = privacy;
                job.validate().context("the DP job")?;
                let setup = Setup {
                    holders: holders.clone(),
                    trainer: Arc::new(|_| Engine::Native.trainer(DeviceChoice::Cpu)),
                    plan: Arc::new(FaultPlan::new(FaultSpec::default(), n)),
                    threads: 1,
                };
                let t = Instant::now();
                let report = simulate(job.clone(), &prepared.test, setup, false).await?;
                let secs = t.elapsed().as_secs_f64();
                if let Some(e) = &report.error {
                    cell.failures.push(format!("seed {seed}: {e}"));
                    continue;
                }
                if report.rounds_completed != s.rounds {
                    cell.failures.push(format!(
                        "seed {seed}: {} of {} rounds",
                        report.rounds_completed, s.rounds
                    ));
                    continue;
                }
                let auc = evaluate(
                    &job.model,
                    &report.model,
                    &prepared.test.features,
                    &prepared.test.labels,
                )
                .auc;
                println!(
                    "  {n:>3} holders, {:<8} seed {seed}: AUC {auc:.4} in {secs:.1} s",
                    epsilon.map_or("no DP".into(), |e| format!("ε = {e}"))
                );
                cell.aucs.push(auc);
                cell.seconds.push(secs);
            }
            for f in &cell.failures {
                println!("  failed: {f}");
            }
            cells.push(cell);
        }
    }
    let total = t_all.elapsed().as_secs_f64();
    println!(
        "\nfraud table, {} rounds x K = {} x B = {}, lr {}, clip {}, model {}; δ = 1e-5, q = 1, min_survivors = participants.min = ⌈n/2⌉",
        s.rounds, s.steps, s.batch, s.lr, s.clip, s.hidden
    );
    println!("| holders | ε (δ = 1e-5) | z | noise std of the mean, per coordinate | ε spent (accountant) | test AUC, median | range | seeds | wall s per job (median) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for c in &cells {
        let fmt = |v: Option<f64>, p: usize| v.map_or("—".to_string(), |x| format!("{x:.p$}"));
        let (lo, hi) = c
            .aucs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.holders,
            c.epsilon.map_or("no DP".into(), |e| format!("{e}")),
            fmt(c.z, 3),
            fmt(c.sigma_mean, 4),
            fmt(c.spent, 2),
            if c.aucs.is_empty() {
                "—".into()
            } else {
                format!("{:.4}", median(&c.aucs))
            },
            if c.aucs.is_empty() {
                "—".into()
            } else {
                format!("{lo:.4}–{hi:.4}")
            },
            c.aucs.len(),
            if c.seconds.is_empty() {
                "—".into()
            } else {
                format!("{:.1}", median(&c.seconds))
            },
        );
    }
    println!(
        "\nwhole grid: {total:.0} s; load average at the end: {}",
        common::load_average()
    );
    if cells.iter().all(|c| c.aucs.is_empty()) {
        bail!("no job of the grid completed");
    }
    Ok(())
}

fn main() -> Result<()> {
    common::harness_main(bench)
}

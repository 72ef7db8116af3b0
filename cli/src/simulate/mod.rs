//! `cairn simulate`: a coordinator and N holders in one process, over real QUIC and TLS on
//! loopback, to size a federation before anyone runs a participant.
//!
//! Each holder is what `cairn participant` runs (the same driver and state machine), with
//! its own identity key, its own QUIC endpoint and connection, and its own partition of the
//! table (IID or Dirichlet). The coordinator runs on a runtime of its own (threads named
//! `cairn-coord`), so its CPU time is told apart from the holders'. Failures are injected
//! through the driver's fault hook ([`faults`]): holders vanishing at each SecAgg+ phase,
//! stragglers, holders coming back, corrupt holders. Each round prints a per-phase
//! breakdown (wall time, the coordinator's busy time and CPU, bytes in and out per holder)
//! and everything goes to `OUT/metrics.json`.

pub mod faults;
mod report;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_coordinator::cpu::threads_cpu_seconds;
use cairn_coordinator::CpuMeter;
use cairn_crypto::sign::IdentityKey;
use cairn_datasets::{partition, Dataset};
use cairn_participant::trainer::{DeviceChoice, NativeTrainer, TchTrainer, Trainer};
use cairn_participant::{run as participate, ParticipantConfig, ParticipantError};
use cairn_protocol::round::Aggregation;
use clap::Args;
use rand::rngs::OsRng;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::federate::{start_coordinator_with, LocalCoordinator};
use crate::options::{ConfigFile, DataArgs, TrainArgs};
use faults::{FaultPlan, FaultSpec};

pub use report::{HolderStats, SimulationReport};

/// Name prefix of the coordinator runtime's threads (what its CPU meter counts).
pub const COORDINATOR_THREADS: &str = "cairn-coord";

/// The simulation's own settings: flags, or a `[simulate]` table in `--config`.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateOptions {
    /// Simulated holders [default: 100]
    #[arg(long)]
    pub participants: Option<usize>,
    /// Model size: the widest one hidden layer within this many parameters (instead
    /// of --hidden), e.g. 100000
    #[arg(long)]
    pub params: Option<usize>,
    /// Every holder's training engine: `native` (plain Rust: cheap, so the protocol's cost
    /// shows) or `tch` (libtorch, as `cairn participant`) [default: native]
    #[arg(long)]
    pub engine: Option<String>,
    /// Holders that vanish (crash: their connection closes) instead of sending a phase's
    /// message, each round: PHASE=FRACTION,… with phases keys, shares, masked (before the
    /// masked input), consistency (after it) and unmask; e.g. `consistency=0.1`
    #[arg(long)]
    pub drop: Option<String>,
    /// Stragglers: FRACTION:MEAN_SECONDS, each round that fraction of holders sends its
    /// masked input late by an exponentially distributed delay of that mean
    #[arg(long)]
    pub stragglers: Option<String>,
    /// Seconds a vanished holder stays away before it connects again (it takes part from
    /// the next round it finds), or `never` [default: 0]
    #[arg(long)]
    pub rejoin_after: Option<String>,
    /// Fraction of corrupt holders: they tamper with their round keys after signing them,
    /// which the coordinator refuses every round [default: 0]
    #[arg(long)]
    pub corrupt_holders: Option<f64>,
    /// Seed of the injected faults [default: 1]
    #[arg(long)]
    pub fault_seed: Option<u64>,
    /// Worker threads of the coordinator's runtime (the holders share the others) [default: 1]
    #[arg(long)]
    pub coordinator_threads: Option<usize>,
}

impl SimulateOptions {
    /// Fills unset values from the config file.
    pub fn merge(mut self, file: &SimulateOptions) -> Self {
        crate::options::merge!(
            self,
            file,
            [
                participants,
                params,
                engine,
                drop,
                stragglers,
                rejoin_after,
                corrupt_holders,
                fault_seed,
                coordinator_threads
            ]
        );
        self
    }

    /// The faults these options inject (checked before any data loads).
    pub fn faults(&self) -> Result<FaultSpec> {
        let corrupt = self.corrupt_holders.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&corrupt) {
            bail!("--corrupt-holders must be a fraction in [0, 1], got {corrupt}");
        }
        Ok(FaultSpec {
            drop: self
                .drop
                .as_deref()
                .map(FaultSpec::parse_drop)
                .transpose()?
                .unwrap_or_default(),
            stragglers: self
                .stragglers
                .as_deref()
                .map(FaultSpec::parse_stragglers)
                .transpose()?,
            rejoin_after: match self.rejoin_after.as_deref() {
                Some(s) => FaultSpec::parse_rejoin(s)?,
                None => Some(Duration::ZERO),
            },
            corrupt,
            seed: self.fault_seed.unwrap_or(1),
        })
    }

    /// The training engine.
    pub fn engine(&self) -> Result<Engine> {
        match self.engine.as_deref().unwrap_or("native") {
            "native" => Ok(Engine::Native),
            "tch" => Ok(Engine::Tch),
            other => bail!("--engine must be `native` or `tch`, got {other:?}"),
        }
    }
}

/// A holder's training engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// [`NativeTrainer`].
    Native,
    /// [`TchTrainer`].
    Tch,
}

/// `cairn simulate` arguments.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The simulation's settings.
    #[command(flatten)]
    pub sim: SimulateOptions,
    /// Training device with `--engine tch`: auto (CUDA when present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Directory for metrics.json.
    #[arg(long, default_value = "cairn-sim")]
    pub out: PathBuf,
    /// TOML config with `[simulate]`, `[data]` and `[train]` tables (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Training options.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// Rounds a simulation runs unless told otherwise.
pub const DEFAULT_ROUNDS: u32 = 3;
/// Holders a simulation runs unless told otherwise.
pub const DEFAULT_PARTICIPANTS: usize = 100;

/// The widest single hidden layer that keeps the model within `params` parameters for `n_features`
/// inputs: `n_features·h + h` (hidden layer) `+ h + 1` (output).
pub fn hidden_for(params: usize, n_features: usize) -> usize {
    (params.saturating_sub(1) / (n_features + 2)).max(1)
}

/// Runs `cairn simulate`.
pub async fn run(args: SimulateArgs) -> Result<()> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let sim = args.sim.clone().merge(&file.simulate);
    let data_args = args.data.clone().merge(&file.data);
    let mut train = args.train.clone().merge(&file.train);
    // Every setting is checked before the data loads.
    let spec = sim.faults()?;
    let engine = sim.engine()?;
    let scheme = data_args.partition()?;
    let n = sim.participants.unwrap_or(DEFAULT_PARTICIPANTS);
    if n == 0 {
        bail!("--participants must be at least 1");
    }
    if train.proofs == Some(true) {
        bail!("cairn simulate runs proof-free jobs (proofs at this scale: see benches/README.md); drop --proofs");
    }
    train.proofs = Some(false);
    train.rounds.get_or_insert(DEFAULT_ROUNDS);
    let threads = sim.coordinator_threads.unwrap_or(1);
    if threads == 0 {
        bail!("--coordinator-threads must be at least 1");
    }
    let (prepared, source) = data_args.load()?;
    if let Some(p) = sim.params {
        train.hidden = Some(hidden_for(p, prepared.train.n_features).to_string());
    }
    let job = train.job_for("simulate", &prepared, n, n.div_ceil(2))?;
    let holders = partition(
        &prepared.train,
        n,
        &scheme,
        data_args.data_seed.unwrap_or(7),
    )
    .with_context(|| {
        format!(
            "dealing {} training rows to {n} holders",
            prepared.train.n_rows()
        )
    })?;
    println!("data: {source}");
    println!(
        "simulating {n} holders ({scheme}, {} rows each on average), model {} ({} parameters), {} rounds of K={} B={}, {} training",
        prepared.train.n_rows() / n,
        job.model.describe(),
        job.model.param_count(),
        job.rounds,
        job.hyper.local_steps,
        job.hyper.batch_size,
        match engine {
            Engine::Native => "native".to_string(),
            Engine::Tch => format!("tch ({})", args.device),
        }
    );
    println!("aggregation: {}", job.aggregation);
    if let Aggregation::Secure(s) = &job.aggregation {
        if let Ok(p) = s.params(n) {
            println!(
                "SecAgg+ with all {n} holders: k = {} neighbours, threshold t = {}",
                p.k, p.threshold
            );
        }
    }
    let plan = Arc::new(FaultPlan::new(spec, n));
    println!("faults: {}", plan.spec().describe());

    let device = args.device;
    let setup = Setup {
        holders,
        trainer: Arc::new(move |_| engine.trainer(device)),
        plan,
        threads,
    };
    let report = simulate(job, &prepared.test, setup, true).await?;
    report.print_summary();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let path = args.out.join("metrics.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    if let Some(e) = &report.error {
        bail!("the simulated job stopped early: {e}");
    }
    Ok(())
}

/// Makes holder `i`'s trainer (again each time it connects).
pub type TrainerFactory = Arc<dyn Fn(usize) -> Result<Box<dyn Trainer>> + Send + Sync>;

/// What a simulation runs besides the job.
pub struct Setup {
    /// Each holder's rows.
    pub holders: Vec<Dataset>,
    /// Their trainers.
    pub trainer: TrainerFactory,
    /// The faults.
    pub plan: Arc<FaultPlan>,
    /// Worker threads of the coordinator's runtime.
    pub threads: usize,
}

/// How many times a holder tries to reach the coordinator before it gives up (a join storm
/// may find its handshake queue full).
const CONNECT_ATTEMPTS: u32 = 5;

/// Runs `job` with one holder task per partition and the coordinator on its own runtime;
/// prints each round (with its phases) when `print` is set. Returns the report.
pub async fn simulate(
    job: cairn_protocol::job::JobConfig,
    test: &Dataset,
    setup: Setup,
    print: bool,
) -> Result<SimulationReport> {
    let Setup {
        holders,
        trainer,
        plan,
        threads,
    } = setup;
    let n = holders.len();
    let coord_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(COORDINATOR_THREADS)
        .enable_all()
        .build()
        .context("starting the coordinator's runtime")?;
    let cpu: CpuMeter = Arc::new(|| threads_cpu_seconds(COORDINATOR_THREADS).ok());
    let (ptx, prx) = mpsc::unbounded_channel();
    let initial = job.model.init_params(job.seed);
    let rounds = job.rounds;
    let t0 = Instant::now();
    let coordinator: LocalCoordinator = {
        // The endpoint's driver and the job's loop run on the coordinator's runtime.
        let _inside = coord_rt.enter();
        start_coordinator_with(job, initial, test, ptx, None, Some(cpu))?
    };
    let renderer = tokio::spawn(report::collect(prx, n, rounds, print));
    let done = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(HolderCounters::default());
    // The holders' heavy work (training, masking, shares, signatures) runs at most one
    // per core at a time, off the async workers: on a machine shared by thousands of
    // holders, the QUIC endpoints and the coordinator keep answering.
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let compute = Arc::new(tokio::sync::Semaphore::new(cores));
    let mut tasks = Vec::with_capacity(n);
    for (i, rows) in holders.into_iter().enumerate() {
        let mut cfg = coordinator.participant(format!("holder-{i}"), None);
        cfg.identity = Some(IdentityKey::random(&mut OsRng));
        cfg.faults = Some(plan.hook(i));
        cfg.compute = Some(Arc::clone(&compute));
        let holder = Holder {
            index: i,
            cfg,
            rows: Arc::new(rows),
            trainer: Arc::clone(&trainer),
            rejoin_after: plan.spec().rejoin_after,
            done: Arc::clone(&done),
            stats: Arc::clone(&stats),
        };
        tasks.push((format!("holder-{i}"), tokio::spawn(holder.run())));
    }
    let summary = coordinator.finish().await;
    done.store(true, Ordering::Release);
    let seconds = t0.elapsed().as_secs_f64();
    // Holders get the job's end at once; one waiting to rejoin wakes within its delay.
    let mut failures = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    for (name, t) in tasks {
        match tokio::time::timeout_at(until, t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => failures.push(e),
            Ok(Err(e)) => failures.push(format!("{name}: task: {e}")),
            Err(_) => failures.push(format!("{name}: still running 10 s after the job ended")),
        }
    }
    coord_rt.shutdown_background();
    let summary = summary?;
    let collected = renderer.await.context("progress task")?;
    Ok(SimulationReport::new(
        collected,
        summary,
        seconds,
        HolderStats {
            connect_retries: stats.retries.load(Ordering::Acquire),
            rejoins: stats.rejoins.load(Ordering::Acquire),
            failures,
        },
        &plan,
    ))
}

#[derive(Default)]
struct HolderCounters {
    retries: AtomicU64,
    rejoins: AtomicU64,
}

/// One simulated holder: runs the participant driver, and again after it vanished.
struct Holder {
    index: usize,
    cfg: ParticipantConfig,
    rows: Arc<Dataset>,
    trainer: TrainerFactory,
    rejoin_after: Option<Duration>,
    done: Arc<AtomicBool>,
    stats: Arc<HolderCounters>,
}

impl Engine {
    /// A trainer of this engine.
    pub fn trainer(self, device: DeviceChoice) -> Result<Box<dyn Trainer>> {
        Ok(match self {
            Engine::Native => Box::new(NativeTrainer::new()),
            Engine::Tch => Box::new(TchTrainer::new(device).context("choosing the device")?),
        })
    }
}

impl Holder {
    fn trainer(&self) -> Result<Box<dyn Trainer>, String> {
        (self.trainer)(self.index).map_err(|e| format!("{}: {e:#}", self.cfg.name))
    }

    async fn run(self) -> Result<(), String> {
        let name = self.cfg.name.clone();
        let mut attempts = 0;
        loop {
            let (tx, _reports) = mpsc::unbounded_channel();
            let result = participate(&self.cfg, self.rows.clone(), self.trainer()?, tx).await;
            match result {
                Ok(_) => return Ok(()),
                Err(ParticipantError::Vanished(_)) => {
                    let Some(after) = self.rejoin_after else {
                        return Ok(());
                    };
                    tokio::time::sleep(after).await;
                    if self.done.load(Ordering::Acquire) {
                        return Ok(());
                    }
                    self.stats.rejoins.fetch_add(1, Ordering::AcqRel);
                }
                // A holder back after vanishing finds the job over: that is its end.
                Err(_) if self.done.load(Ordering::Acquire) => return Ok(()),
                Err(e) if e.is_connection_lost() && attempts + 1 < CONNECT_ATTEMPTS => {
                    attempts += 1;
                    self.stats.retries.fetch_add(1, Ordering::AcqRel);
                    tokio::time::sleep(Duration::from_millis(200 << attempts)).await;
                }
                Err(e) => return Err(format!("{name}: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulate_table_fills_what_flags_leave_unset_and_bad_values_are_named() {
        let file: ConfigFile = toml::from_str(
            "[simulate]\nparticipants = 300\ndrop = \"masked=0.1\"\nstragglers = \"0.1:2\"\n",
        )
        .expect("parse");
        let flags = SimulateOptions {
            participants: Some(50),
            ..SimulateOptions::default()
        };
        let sim = flags.merge(&file.simulate);
        assert_eq!(sim.participants, Some(50));
        let spec = sim.faults().expect("faults");
        assert_eq!(spec.drop, vec![(faults::SecPhase::Masked, 0.1)]);
        assert_eq!(spec.stragglers, Some((0.1, Duration::from_secs(2))));
        assert_eq!(spec.rejoin_after, Some(Duration::ZERO));
        assert!(toml::from_str::<ConfigFile>("[simulate]\nparticipant = 3\n").is_err());
        let bad = SimulateOptions {
            corrupt_holders: Some(1.5),
            ..SimulateOptions::default()
        };
        assert!(bad
            .faults()
            .is_err_and(|e| e.to_string().contains("--corrupt-holders")));
        let bad = SimulateOptions {
            engine: Some("gpu".into()),
            ..SimulateOptions::default()
        };
        assert!(bad
            .engine()
            .is_err_and(|e| e.to_string().contains("--engine")));
        assert_eq!(hidden_for(100_000, 38), 2499);
        assert_eq!(hidden_for(0, 38), 1);
    }
}

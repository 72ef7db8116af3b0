//! `cairn coordinator` and `cairn participant`: each side as its own process, on its own
//! machine, addresses and files as flags, a TOML config, or (coordinator) a job file.
//!
//! - **Enrolment.** The coordinator admits participants by Ed25519 identity key over
//!   mutual TLS: `[enrolment] allowed = ["<hex key>", …]` in its job file (or `--config`);
//!   open (any key) when absent. A participant authenticates with `--identity FILE`, a key
//!   from `cairn keygen identity` (a fresh key for the run without it).
//! - **Proofs.** With `[proofs] enabled` (job file) or `--proofs`, the coordinator loads the
//!   job shape's Groth16 keys from `--keys DIR` (running the setup there when they are
//!   absent, as `cairn demo` does), verifies every proof, and writes the job's transcript to
//!   `OUT/transcript.cairn` for `cairn audit`.
//! - **Store and restarts.** The coordinator is a service over its store in `OUT/`
//!   ([`crate::service`]): each round's record, model, optimiser state and transcript
//!   records are committed in one transaction; started again with the same `--out` it
//!   resumes an unfinished job, and participants reconnect by themselves (`--reconnect`).
//!   With `--serve` it takes jobs from `cairn job submit` and participants with `--serve`
//!   serve job after job. Each participant loads the proving key of the shape its welcome
//!   announces from its own `--keys DIR` (the operator's key files; it never runs a
//!   setup), commits to its rows at the welcome's tree depth and proves every update.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_coordinator::job_file::{
    AggregationSection, DataSection, DeadlineSection, JobFile, ModelSection, ParticipantsSection,
    ProofSection, TrainSection,
};
use cairn_crypto::sign::IdentityKey;
use cairn_datasets::{partition, prepare_for_job, DataSpec, Dataset};
use cairn_participant::trainer::{DeviceChoice, TchTrainer, Trainer};
use cairn_participant::{run, HolderData, ParticipantConfig, ParticipantError};
use cairn_protocol::round::Aggregation;
use cairn_protocol::wire::Offer;
use clap::Args;
use rand::rngs::OsRng;
use tokio::sync::mpsc;

use crate::keygen::read_identity;
use crate::options::{ConfigFile, DataArgs, TrainArgs};
use crate::service::{self, ServiceOptions, Submission};

/// The coordinator's job store, in its output directory.
pub use crate::service::STORE_FILE;

/// `cairn coordinator` arguments.
#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    /// Address to listen on (QUIC/UDP).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub listen: SocketAddr,
    /// Participants to wait for before the first round [default: 5]
    #[arg(long)]
    pub participants: Option<usize>,
    /// Fewest valid updates for a round to count [default: half the participants, rounded up]
    #[arg(long)]
    pub min: Option<usize>,
    /// Directory of the coordinator's state: its job store (`cairn.redb`), TLS identity,
    /// admin token and connection info, and the last job's model, metrics and transcript.
    /// A coordinator started again with the same directory resumes an unfinished job.
    #[arg(long, default_value = "cairn-out")]
    pub out: PathBuf,
    /// Address of the admin interface (`cairn job …`, status page): loopback only; port 0
    /// picks a free one (written to OUT/coordinator.json, where `cairn job` finds it).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub admin: SocketAddr,
    /// Keep running and take jobs from `cairn job submit` (without it the coordinator stops
    /// once no job is queued or running).
    #[arg(long)]
    pub serve: bool,
    /// A job file (examples/job.toml): data, model, rounds, participants, training,
    /// aggregation, proofs, enrolment and deadlines. It replaces --config and the job's
    /// flags (only --listen, --out and --keys go with it).
    #[arg(long, conflicts_with = "config")]
    pub job: Option<PathBuf>,
    /// The directory jobs submitted later (`cairn job submit`) may read their `data.path`
    /// from; a path elsewhere, or a link leading out of it, is refused
    #[arg(long, default_value = ".")]
    pub data_root: PathBuf,
    /// TOML config with `[data]`, `[train]` and `[enrolment]` tables (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data options (the coordinator evaluates on the test split).
    #[command(flatten)]
    pub data: DataArgs,
    /// Training options.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// The job's own flags given beside `--job` (which sets all of them).
fn flags_beside_job(args: &CoordinatorArgs) -> Vec<&'static str> {
    let (t, d) = (&args.train, &args.data);
    let mut given = Vec::new();
    macro_rules! given {
        ($($v:expr => $flag:literal),* $(,)?) => { $( if $v { given.push($flag); } )* };
    }
    given!(
        args.participants.is_some() => "--participants",
        args.min.is_some() => "--min",
        t.hidden.is_some() => "--hidden",
        t.rounds.is_some() => "--rounds",
        t.steps.is_some() => "--steps",
        t.batch.is_some() => "--batch",
        t.lr.is_some() => "--lr",
        t.clip.is_some() => "--clip",
        t.server_lr.is_some() => "--server-lr",
        t.round_timeout.is_some() => "--round-timeout",
        t.join_timeout.is_some() => "--join-timeout",
        t.seed.is_some() => "--seed",
        t.aggregation.is_some() => "--aggregation",
        t.dropout.is_some() => "--dropout",
        t.corruption.is_some() => "--corruption",
        t.proofs.is_some() => "--proofs",
        t.tolerance.is_some() => "--tolerance",
        t.tree_depth.is_some() => "--tree-depth",
        t.feature_bits.is_some() => "--feature-bits",
        t.block_rows.is_some() => "--block-rows",
        t.proved_steps.is_some() => "--proved-steps",
        d.data.is_some() => "--data",
        d.labels.is_some() => "--labels",
        d.delimiter.is_some() => "--delimiter",
        d.synthetic => "--synthetic",
        d.label.is_some() => "--label",
        d.test_fraction.is_some() => "--test-fraction",
        d.partition.is_some() => "--partition",
        d.data_seed.is_some() => "--data-seed",
    );
    given
}

/// The job file the flags and `--config` describe: every coordinator job runs from a job
/// file, so a restarted coordinator can resume it from its store.
fn job_file_from_flags(args: &CoordinatorArgs) -> Result<JobFile> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let data = args.data.clone().merge(&file.data);
    let train = args.train.clone().merge(&file.train);
    let participants = args.participants.unwrap_or(5);
    let min = args.min.unwrap_or(participants.div_ceil(2));
    // Resolved (and checked) once here; the table's width is not needed for the file.
    let cfg = train.job("flags", 1, participants, min)?;
    let load = data.load_options();
    Ok(JobFile {
        privacy: None,
        name: "job".into(),
        rounds: cfg.rounds,
        seed: cfg.seed,
        data: DataSection {
            label: load.label,
            features: None,
            drop_columns: Vec::new(),
            path: data.data.clone(),
            // A transaction export's labels and a CSV's delimiter: the coordinator reads its
            // own table as the holders read theirs.
            labels: data.labels.clone(),
            delimiter: data
                .delimiter
                .map(|d| cairn_coordinator::job_file::delimiter_text(d.0)),
            synthetic: data.synthetic,
            test_fraction: load.test_fraction,
            split_seed: load.seed,
        },
        model: ModelSection {
            hidden: cfg.model.hidden,
        },
        participants: ParticipantsSection {
            per_round: participants,
            min: Some(min),
        },
        train: TrainSection {
            steps: cfg.hyper.local_steps,
            batch: cfg.hyper.batch_size,
            lr: cfg.hyper.learning_rate,
            clip: cfg.hyper.clip_norm,
        },
        server: cfg.server,
        aggregation: match cfg.aggregation {
            Aggregation::Plain => AggregationSection::Plain {},
            Aggregation::Secure(s) => AggregationSection::Secure {
                dropout: s.dropout,
                corruption: s.corruption,
                scale_bits: s.scale_bits,
            },
        },
        proofs: {
            let d = ProofSection::default();
            ProofSection {
                enabled: cfg.proof.is_some(),
                tolerance: train.tolerance.unwrap_or(d.tolerance),
                tree_depth: train.tree_depth.unwrap_or(d.tree_depth),
                feature_bits: train.feature_bits.unwrap_or(d.feature_bits),
                block_rows: train.block_rows.or(d.block_rows),
                steps: train.proved_steps.or(d.steps),
            }
        },
        enrolment: file.enrolment,
        deadlines: DeadlineSection {
            round_timeout_secs: cfg.round_timeout.as_secs_f64(),
            join_timeout_secs: cfg.join_timeout.as_secs_f64(),
        },
        metrics: cairn_coordinator::job_file::MetricsSection::default(),
    })
}

/// Runs a coordinator: the job of `--job` (or of the flags), then any queued job; with
/// `--serve`, jobs submitted with `cairn job submit` until Ctrl-C. A job a previous
/// coordinator left running in `--out` resumes first.
pub async fn coordinator(args: CoordinatorArgs, started: Instant) -> Result<()> {
    let submit = match &args.job {
        Some(path) => {
            let beside = flags_beside_job(&args);
            if !beside.is_empty() {
                bail!(
                    "--job {} sets the whole job: drop {} (or leave out --job)",
                    path.display(),
                    beside.join(", ")
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading job file {}", path.display()))?;
            Some(Submission {
                source: path.display().to_string(),
                text,
            })
        }
        None if args.serve && flags_beside_job(&args).is_empty() && args.config.is_none() => None,
        None => {
            let file = job_file_from_flags(&args)?;
            Some(Submission {
                source: "the command line".into(),
                text: file.to_toml().context("writing the flags as a job file")?,
            })
        }
    };
    service::run(
        ServiceOptions {
            listen: args.listen,
            admin: args.admin,
            out: args.out.clone(),
            keys: args.train.keys_dir(),
            serve: args.serve,
            submit,
            data_root: args.data_root.clone(),
        },
        started,
    )
    .await
}

/// `cairn participant` arguments.
#[derive(Args, Debug)]
pub struct ParticipantArgs {
    /// The coordinator's address.
    #[arg(long)]
    pub coordinator: SocketAddr,
    /// The coordinator's certificate fingerprint (hex SHA-256), as it printed it.
    #[arg(long)]
    pub fingerprint: String,
    /// This holder's index among `--of` holders of the dataset (simulated holders of one
    /// table); with `--of 1` the whole training split of `--data` is this holder's.
    #[arg(long, default_value_t = 0)]
    pub holder: usize,
    /// Number of holders the table is dealt to.
    #[arg(long, default_value_t = 1)]
    pub of: usize,
    /// Display name [default: holder-I]
    #[arg(long)]
    pub name: Option<String>,
    /// Training device: auto (CUDA when present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// This holder's identity key, as `cairn keygen identity --out FILE` wrote it (the
    /// operator allow-lists its public key, `FILE.pub`) [default: a fresh key for this
    /// run, which only a coordinator with open enrolment admits]
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// Directory of the job's Groth16 key files, as its operator published them; read only
    /// when the job proves its rounds [default: cairn-keys]
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// TOML config with a `[data]` table (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Serve job after job: when a job ends, wait for the coordinator's next one (until
    /// Ctrl-C), instead of exiting.
    #[arg(long)]
    pub serve: bool,
    /// Seconds to keep trying to reach a coordinator that went away (restarting) before
    /// giving up; with `--serve`, for ever.
    #[arg(long, default_value_t = 60)]
    pub reconnect: u64,
    /// Threads for proving (Groth16's FFTs and multi-scalar multiplications) [default: one
    /// per core]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub prove_threads: Option<u16>,
    /// The least corrupt fraction γ this holder lets a secure job plan for: a job whose γ
    /// is lower (so its Shamir threshold weaker) is refused, round by round, with the
    /// reason
    #[arg(long, default_value_t = cairn_protocol::client::DEFAULT_MIN_CORRUPTION)]
    pub min_corruption: f64,
    /// The least DP noise multiplier this holder accepts: above 0, the holder takes part
    /// only in jobs with distributed DP (`[privacy]` in the job file) whose noise is at least
    /// this, so a coordinator cannot quietly lower it (0: any job)
    #[arg(long, default_value_t = 0.0)]
    pub min_noise_multiplier: f64,
    /// Data options.
    #[command(flatten)]
    pub data: DataArgs,
}

/// How long a serving holder that could not prepare a job's data waits before asking again.
const CANNOT_JOIN_RETRY: Duration = Duration::from_secs(30);
/// How often a serving holder repeats an unchanged waiting message.
const QUIET_REPEAT: Duration = Duration::from_secs(60);

/// Prints a message when it differs from the last one, or when the last was printed
/// [`QUIET_REPEAT`] ago: a holder polling an idle coordinator logs once a minute.
#[derive(Default)]
struct QuietLog {
    last: Option<(String, Instant)>,
}

impl QuietLog {
    fn say(&mut self, line: &str) {
        if quiet_repeats(self.last.as_ref(), line, Instant::now()) {
            return;
        }
        println!("{line}");
        self.last = Some((line.to_string(), Instant::now()));
    }
}

/// Whether `line` at `now` repeats `last` too soon to be printed again.
fn quiet_repeats(last: Option<&(String, Instant)>, line: &str, now: Instant) -> bool {
    last.is_some_and(|(l, at)| l == line && now.duration_since(*at) < QUIET_REPEAT)
}

/// A `cairn participant`'s rows: its own table (`--data`…), read afresh for each job it is
/// offered with the job's label, columns and transforms, then its share (`--holder` of
/// `--of`) of the training split.
struct OwnTable {
    name: String,
    data: DataArgs,
    partition: cairn_datasets::Partition,
    holder: usize,
    of: usize,
    /// The last job prepared for and its rows: a holder that calls again in the same job
    /// (it reconnected, or its first answer came too late) reuses them.
    last: std::sync::Mutex<Option<(Offer, Arc<Dataset>)>>,
}

impl OwnTable {
    fn prepare(&self, spec: &DataSpec) -> Result<Dataset> {
        // The job's label, its values read as the job's classes (same index, same class).
        let opts = spec.holder_options(&self.data.load_options());
        let (table, report, source) = self.data.raw_table(&opts)?;
        let prepared = prepare_for_job(table, report, spec, &opts)
            .with_context(|| format!("preparing {source} for the job"))?;
        let rows = partition(
            &prepared.train,
            self.of,
            &self.partition,
            self.data.data_seed.unwrap_or(7),
        )?
        .into_iter()
        .nth(self.holder)
        .context("holder index")?;
        if rows.n_rows() == 0 {
            bail!(
                "share {} of {} of {source} has no training rows",
                self.holder,
                self.of
            );
        }
        let mix = if spec.is_binary() {
            format!("{:.1}% positive", 100.0 * rows.positive_rate())
        } else {
            spec.classes
                .iter()
                .zip(rows.class_counts(spec.n_classes()))
                .map(|(c, n)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{}: {} rows of {source} ({mix}, label {:?}, {} input columns)",
            self.name,
            rows.n_rows(),
            spec.label,
            rows.n_features
        );
        Ok(rows)
    }
}

impl HolderData for OwnTable {
    fn for_job(&self, offer: &Offer) -> std::result::Result<Arc<Dataset>, String> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((o, rows)) = last.as_ref() {
            if o == offer {
                return Ok(Arc::clone(rows));
            }
            // One job, one preparation: a coordinator that offers the same job again with
            // other data would have the holder train (and commit to) two tables in it.
            if o.job_id == offer.job_id {
                return Err(format!(
                    "job {} was offered before with other data; this holder keeps to the first",
                    offer.job_id
                ));
            }
        }
        let Some(spec) = &offer.data else {
            return Err(
                "the job names no data (label, columns and transforms) to prepare this holder's table with"
                    .into(),
            );
        };
        let rows = match self.prepare(spec) {
            Ok(rows) => Arc::new(rows),
            Err(e) => {
                // The whole story stays here; the coordinator learns only what the job's
                // own spec already names (no path, cell value or column of this table).
                println!(
                    "{}: cannot prepare its table for job {}: {e:#}",
                    self.name, offer.job_id
                );
                return Err(reason_for_coordinator(&e, spec));
            }
        };
        *last = Some((offer.clone(), Arc::clone(&rows)));
        Ok(rows)
    }
}

/// Why a holder cannot prepare its table, as the coordinator may hear it: in terms of the
/// job's own spec only (its label and columns), never the holder's paths, cell values or
/// other column names, which the full error carries.
fn reason_for_coordinator(e: &anyhow::Error, spec: &DataSpec) -> String {
    use cairn_datasets::DatasetError;
    let dataset = e.chain().find_map(|c| c.downcast_ref::<DatasetError>());
    match dataset {
        Some(DatasetError::MissingLabel { .. }) => {
            format!("this holder's table has no label column {:?}", spec.label)
        }
        Some(DatasetError::NonBinaryLabel { .. }) => format!(
            "the label column {:?} is not 0/1 in this holder's table",
            spec.label
        ),
        // The holder's own value stays here: the job hears only its own classes.
        Some(DatasetError::UnknownClass { .. }) => format!(
            "the label column {:?} of this holder's table has values that are none of the job's {} classes ({})",
            spec.label,
            spec.n_classes(),
            spec.classes.join(", ")
        ),
        // Names only the job's columns the table lacks (`DataSpec::apply`).
        Some(DatasetError::InvalidOption(m)) if m.starts_with("the table lacks") => m.clone(),
        Some(DatasetError::Empty(_)) => "this holder's table has no usable rows".into(),
        _ => "this holder could not prepare its table for the job (the reason is in its own log)"
            .into(),
    }
}

/// How long a serving holder waits before asking an idle coordinator again: from
/// [`IdleBackoff::FIRST`], doubling to [`IdleBackoff::MOST`], each wait jittered by up to
/// ±20 % (so that a thousand idle holders do not ask in step).
#[derive(Debug)]
struct IdleBackoff {
    next: Duration,
    rng: rand::rngs::StdRng,
}

impl Default for IdleBackoff {
    fn default() -> Self {
        use rand::SeedableRng;
        Self {
            next: Self::FIRST,
            rng: rand::rngs::StdRng::from_entropy(),
        }
    }
}

impl IdleBackoff {
    /// The first wait.
    const FIRST: Duration = Duration::from_millis(500);
    /// The longest wait (before jitter): a job's holders still join within seconds.
    const MOST: Duration = Duration::from_secs(5);

    /// The wait before the next ask, and the one after it doubled.
    fn next(&mut self) -> Duration {
        use rand::Rng;
        let base = self.next;
        self.next = (self.next * 2).min(Self::MOST);
        base.mul_f64(self.rng.gen_range(0.8..1.2))
    }

    /// Back to the first wait (a job was found, or something else went wrong).
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Runs a participant until its job ends (with `--serve`, job after job).
pub async fn participant(args: ParticipantArgs) -> Result<()> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let data = args.data.clone().merge(&file.data);
    if args.holder >= args.of {
        bail!(
            "--holder {} must be less than --of {}",
            args.holder,
            args.of
        );
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("holder-{}", args.holder));
    let identity = match &args.identity {
        Some(path) => {
            let key = read_identity(path)?;
            println!(
                "{name}: identity key {} (from {})",
                hex::encode(key.public().0),
                path.display()
            );
            key
        }
        None => {
            let key = IdentityKey::random(&mut OsRng);
            println!(
                "{name}: fresh identity key {} for this run (a coordinator with an allow-list refuses it; make a lasting one with `cairn keygen identity`)",
                hex::encode(key.public().0)
            );
            key
        }
    };
    // The table is read for each job, with the job's label and columns; a file that is
    // not there, or a bad option, is reported now rather than at the first job.
    data.check()?;
    if let Some(path) = &data.data {
        if !path.exists() {
            bail!("--data {}: no such file", path.display());
        }
    }
    let own = Arc::new(OwnTable {
        name: name.clone(),
        partition: data.partition()?,
        data,
        holder: args.holder,
        of: args.of,
        last: std::sync::Mutex::new(None),
    });
    let trainer = TchTrainer::new(args.device).context("choosing the training device")?;
    println!(
        "{name}: training on {}; prepares its table for each job it is offered",
        trainer.device()
    );
    let keys = args
        .keys
        .clone()
        .or_else(|| file.train.keys.clone())
        .unwrap_or_else(|| PathBuf::from("cairn-keys"));
    let cfg = ParticipantConfig {
        coordinator: args.coordinator,
        fingerprint: args.fingerprint.clone(),
        name: name.clone(),
        identity: Some(identity),
        prover: None,
        keys: Some(keys),
        prove_threads: args.prove_threads.map(usize::from),
        min_corruption: args.min_corruption,
        min_noise: args.min_noise_multiplier,
        faults: None,
        compute: None,
    };
    let (rtx, mut rrx) = mpsc::unbounded_channel::<cairn_participant::TrainedRound>();
    let printer = tokio::spawn(async move {
        while let Some(r) = rrx.recv().await {
            let proved = r
                .prove_seconds
                .map(|s| format!(", proved in {s:.2} s"))
                .unwrap_or_default();
            println!(
                "round {:>3}: local loss {:.4}, trained in {:.2} s{proved}",
                r.round, r.loss, r.train_seconds
            );
        }
    });
    let reconnect = Duration::from_secs(args.reconnect);
    // Since when the coordinator has been out of reach (None while in touch).
    let mut lost_since: Option<Instant> = None;
    // What a serving holder last said about waiting, and when: an idle coordinator is
    // polled twice a second, but said so once a minute.
    let mut quiet = QuietLog::default();
    let mut idle = IdleBackoff::default();
    let mut jobs = 0u32;
    // The trainer chosen above serves the first job; each later one gets its own.
    let mut first = Some(trainer);
    loop {
        let trainer = match first.take() {
            Some(t) => t,
            None => TchTrainer::new(args.device).context("choosing the training device")?,
        };
        match run(
            &cfg,
            own.clone(),
            Box::new(trainer) as Box<dyn Trainer>,
            rtx.clone(),
        )
        .await
        {
            Ok(summary) => {
                jobs += 1;
                lost_since = None;
                idle.reset();
                println!(
                    "{name}: {} (trained in {} rounds)",
                    summary.message, summary.rounds_trained
                );
                if !args.serve {
                    if !summary.completed {
                        bail!("{name}: the job did not complete: {}", summary.message);
                    }
                    break;
                }
                println!("{name}: waiting for the coordinator's next job");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) if e.is_connection_lost() => {
                // Out of reach since the first unanswered attempt; a connection that was
                // made and then lost starts the count again.
                let since = match (&e, lost_since) {
                    (ParticipantError::Unreachable(_) | ParticipantError::NoJob(_), Some(t)) => t,
                    _ => Instant::now(),
                };
                lost_since = Some(since);
                if !args.serve && since.elapsed() >= reconnect {
                    return Err(e).with_context(|| {
                        format!(
                            "{name}: the coordinator at {} stayed out of reach for {} s",
                            args.coordinator, args.reconnect
                        )
                    });
                }
                quiet.say(&format!("{name}: {e}; trying again"));
                // A coordinator between jobs is asked again less and less often (each ask
                // is a whole handshake): 0.5 s doubling to 5 s, jittered so that many idle
                // holders do not ask in step. Anything else is retried at once.
                let wait = if matches!(e, ParticipantError::NoJob(_)) {
                    idle.next()
                } else {
                    idle.reset();
                    IdleBackoff::FIRST
                };
                tokio::time::sleep(wait).await;
            }
            Err(e @ ParticipantError::CannotJoin { .. }) if args.serve => {
                // The coordinator has been told why; the next job may suit this table.
                quiet.say(&format!("{name}: {e}; asking again every 30 s"));
                tokio::time::sleep(CANNOT_JOIN_RETRY).await;
            }
            Err(e) if args.serve => {
                // Refused (e.g. the job has already started): the next job may take us.
                quiet.say(&format!("{name}: {e}; trying again every 2 s"));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{name}: taking part in the job at {}", args.coordinator)
                })
            }
        }
    }
    drop(rtx);
    printer.await.ok();
    if args.serve {
        println!("{name}: served {jobs} job(s)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_datasets::{prepare, synthetic_table, LoadOptions, LoadReport};

    #[test]
    fn an_idle_coordinator_is_asked_less_and_less_often_up_to_five_seconds() {
        let mut b = IdleBackoff::default();
        let waits: Vec<f64> = (0..8).map(|_| b.next().as_secs_f64()).collect();
        // 0.5, 1, 2, 4, 5, 5, … each within ±20 %.
        for (w, base) in waits.iter().zip([0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]) {
            assert!((0.8 * base..1.2 * base).contains(w), "{waits:?}");
        }
        b.reset();
        assert!(b.next() < Duration::from_millis(600));
    }

    /// A holder's own file (columns `f0..f3`, label `label`) and the spec of a job on it.
    fn holder(dir: &std::path::Path) -> (OwnTable, DataSpec) {
        let table = synthetic_table(300, 4, 5);
        let mut text = table.feature_names.join(",") + ",label\n";
        for i in 0..table.n_rows() {
            let row: Vec<String> = table.row(i).iter().map(|v| v.to_string()).collect();
            text.push_str(&format!("{},{}\n", row.join(","), table.labels[i]));
        }
        let path = dir.join("secret-holder-file.csv");
        std::fs::write(&path, text).expect("write");
        let report = LoadReport {
            label: "label".into(),
            ..LoadReport::default()
        };
        let spec = DataSpec::of(&prepare(table, report, &LoadOptions::default()).expect("prepare"));
        let own = OwnTable {
            name: "h".into(),
            data: DataArgs {
                data: Some(path),
                ..DataArgs::default()
            },
            partition: cairn_datasets::Partition::Iid,
            holder: 0,
            of: 1,
            last: std::sync::Mutex::new(None),
        };
        (own, spec)
    }

    fn offer(job: &str, spec: &DataSpec) -> Offer {
        Offer {
            job_id: job.into(),
            data: Some(spec.clone()),
        }
    }

    #[test]
    fn the_coordinator_hears_why_in_the_jobs_terms_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (own, spec) = holder(dir.path());
        assert!(own.for_job(&offer("j", &spec)).is_ok());
        // A label the file lacks: the full error names the file and its columns; the
        // reason sent names only the job's label.
        let mut probe = spec.clone();
        probe.label = "balance".into();
        let why = own.for_job(&offer("k", &probe)).expect_err("no such label");
        assert_eq!(why, "this holder's table has no label column \"balance\"");
        // A column the file lacks: named, being the job's own.
        let mut wider = spec.clone();
        wider.normalizer.columns[0].name = "not here".into();
        let why = own
            .for_job(&offer("m", &wider))
            .expect_err("no such column");
        assert!(
            why.contains("not here") && !why.contains("secret-holder-file") && !why.contains("f1"),
            "{why}"
        );
    }

    #[test]
    fn a_job_offered_again_with_other_data_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (own, spec) = holder(dir.path());
        let first = own.for_job(&offer("j", &spec)).expect("first");
        // The same offer again (a reconnection): the same rows, not prepared again.
        let again = own.for_job(&offer("j", &spec)).expect("again");
        assert!(Arc::ptr_eq(&first, &again));
        let mut other = spec.clone();
        other.normalizer.columns[0].mean += 1.0;
        let why = own.for_job(&offer("j", &other)).expect_err("switched data");
        assert!(why.contains("offered before with other data"), "{why}");
        // Another job may bring other data.
        assert!(own.for_job(&offer("j2", &other)).is_ok());
    }
}

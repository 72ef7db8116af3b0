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
//! - **Store.** The coordinator records the job as it goes in `OUT/cairn.redb` (redb): each
//!   round's record, model and transcript records in one transaction, so a coordinator that
//!   dies mid-job leaves a transcript `cairn audit --store OUT/cairn.redb` can still check. Each participant loads the proving key of
//!   the shape its welcome announces from its own `--keys DIR` (the operator's key files;
//!   it never runs a setup), commits to its rows at the welcome's tree depth and proves
//!   every update.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use cairn_circuits::rounds;
use cairn_circuits::training::proof::KeyStore;
use cairn_coordinator::export::write_safetensors;
use cairn_coordinator::job_file::JobFile;
use cairn_coordinator::persist::Persist;
use cairn_coordinator::run_job_with;
use cairn_coordinator::store::Store;

/// The coordinator's job store, in its output directory.
pub const STORE_FILE: &str = "cairn.redb";
use cairn_coordinator::verify::{with_sum_check, Verifier};
use cairn_crypto::sign::IdentityKey;
use cairn_datasets::{partition, Prepared};
use cairn_participant::trainer::{DeviceChoice, TchTrainer, Trainer};
use cairn_participant::{run, ParticipantConfig};
use cairn_protocol::job::{Job, JobConfig};
use cairn_protocol::server_opt::ServerOptimizer;
use cairn_protocol::transport::{server_endpoint, Enrolment, ServerIdentity};
use clap::Args;
use rand::rngs::OsRng;
use tokio::sync::mpsc;

use crate::federate::Proving;
use crate::keygen::read_identity;
use crate::options::{ConfigFile, DataArgs, TrainArgs};
use crate::ui;

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
    /// Directory for the model, metrics, the connection info and a proven job's transcript.
    #[arg(long, default_value = "cairn-out")]
    pub out: PathBuf,
    /// A job file (examples/job.toml): data, model, rounds, participants, training,
    /// aggregation, proofs, enrolment and deadlines. It replaces --config and the job's
    /// flags (only --listen, --out and --keys go with it).
    #[arg(long, conflicts_with = "config")]
    pub job: Option<PathBuf>,
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

/// What a coordinator runs: the job, who may join, its evaluation data.
struct Plan {
    cfg: JobConfig,
    enrolment: Enrolment,
    prepared: Prepared,
    source: String,
    /// Where the proof keys are (proven jobs).
    keys: PathBuf,
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
        d.data.is_some() => "--data",
        d.synthetic => "--synthetic",
        d.label.is_some() => "--label",
        d.test_fraction.is_some() => "--test-fraction",
        d.partition.is_some() => "--partition",
        d.data_seed.is_some() => "--data-seed",
    );
    given
}

/// The plan of a job file: its `[data]` table loaded, its job and enrolment.
fn plan_from_job_file(path: &Path, args: &CoordinatorArgs) -> Result<Plan> {
    let beside = flags_beside_job(args);
    if !beside.is_empty() {
        bail!(
            "--job {} sets the whole job: drop {} (or leave out --job)",
            path.display(),
            beside.join(", ")
        );
    }
    let file = JobFile::load(path).with_context(|| format!("job file {}", path.display()))?;
    if !matches!(file.server, ServerOptimizer::FedAvg { .. }) {
        bail!(
            "job file {}: server.optimizer: `cairn coordinator` runs \"fedavg\" only in this version (the adaptive optimisers' state is not in the transcript `cairn audit` replays)",
            path.display()
        );
    }
    let source = DataArgs {
        data: file.data.path.clone(),
        synthetic: file.data.synthetic,
        ..DataArgs::default()
    };
    let (prepared, source) = source.load_with(&file.load_options())?;
    file.check_schema(&prepared.train.feature_names)
        .with_context(|| format!("job file {}", path.display()))?;
    let resolved = file
        .to_config(&file.name, prepared.train.n_features)
        .with_context(|| format!("job file {}", path.display()))?;
    Ok(Plan {
        cfg: resolved.config,
        enrolment: resolved.enrolment,
        prepared,
        source,
        keys: args.train.keys_dir(),
    })
}

/// The plan of the flags and `--config`.
fn plan_from_flags(args: &CoordinatorArgs) -> Result<Plan> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let data = args.data.clone().merge(&file.data);
    let train = args.train.clone().merge(&file.train);
    let enrolment = file.enrolment.enrolment().map_err(|fields| {
        anyhow!(
            "config {}: {}",
            args.config
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            fields
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let (prepared, source) = data.load()?;
    let participants = args.participants.unwrap_or(5);
    let min = args.min.unwrap_or(participants.div_ceil(2));
    let cfg = train.job("job-1", prepared.train.n_features, participants, min)?;
    Ok(Plan {
        cfg,
        enrolment,
        prepared,
        source,
        keys: train.keys_dir(),
    })
}

/// Runs a coordinator until its job ends (or Ctrl-C).
pub async fn coordinator(args: CoordinatorArgs) -> Result<()> {
    let plan = match &args.job {
        Some(path) => plan_from_job_file(path, &args)?,
        None => plan_from_flags(&args)?,
    };
    let Plan {
        cfg,
        enrolment,
        prepared,
        source,
        keys,
    } = plan;
    eprintln!(
        "data: {source}: {} train rows, {} test rows, {} features",
        prepared.train.n_rows(),
        prepared.test.n_rows(),
        prepared.train.n_features
    );
    let initial = cfg.model.init_params(cfg.seed);
    // A proven job: the shape's keys (set up here when absent, as the demo does), the
    // verifier, and the aggregate commitment check.
    let proving = match cfg.proof {
        Some(spec) => {
            let t = Instant::now();
            let (p, existed) = Proving::load_or_setup(&cfg, &keys)?;
            let shape = rounds::shape(&cfg.model, &cfg.hyper, &spec);
            let (pk_path, _) = KeyStore::new(&keys).paths(&shape);
            println!(
                "proofs: Groth16 (BN254) of each update, τ = {}, trees of depth {}; keys {} {} in {:.1} s",
                spec.tolerance,
                spec.tree_depth,
                if existed { "loaded from" } else { "set up (trusted setup, see circuits/README.md) in" },
                keys.display(),
                t.elapsed().as_secs_f64()
            );
            println!(
                "participants need the proving key {} (pass its directory as --keys)",
                pk_path.display()
            );
            Some(Verifier::new(&p.vk, &shape))
        }
        None => None,
    };
    let identity = ServerIdentity::generate()?;
    let endpoint = server_endpoint(args.listen, &identity, &enrolment)
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = endpoint.local_addr()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let info = serde_json::json!({
        "address": addr.to_string(),
        "fingerprint": identity.fingerprint,
        "job": cfg.job_id,
        "enrolment": enrolment.describe(),
        "proofs": cfg.proof.is_some(),
    });
    std::fs::write(
        args.out.join("coordinator.json"),
        serde_json::to_vec_pretty(&info)?,
    )?;
    println!("listening on {addr}");
    println!("aggregation: {}", cfg.aggregation);
    println!("enrolment: {}", enrolment.describe());
    println!("fingerprint {}", identity.fingerprint);
    println!(
        "join with: cairn participant --coordinator {addr} --fingerprint {} --identity KEY_FILE{} --holder I --of {}",
        identity.fingerprint,
        if cfg.proof.is_some() { " --keys DIR" } else { "" },
        cfg.participants
    );
    let (ptx, prx) = mpsc::unbounded_channel();
    let renderer = tokio::spawn(ui::render(prx, cfg.rounds, true));
    let model = cfg.model.clone();
    let mut job = Job::new(cfg, initial, Instant::now());
    if proving.is_some() {
        job = with_sum_check(job);
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // The job is recorded as it goes in OUT/cairn.redb (rounds, models, transcript).
    let db = args.out.join(STORE_FILE);
    let store = Arc::new(
        Store::open(&db).with_context(|| format!("opening the job store {}", db.display()))?,
    );
    let job_config = match &args.job {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => Vec::new(),
    };
    let persist = Persist::start(
        store,
        &job.config().job_id,
        &job_config,
        job.global(),
        job.config().server,
    )
    .with_context(|| format!("recording the job in {}", db.display()))?;
    println!(
        "recording the job in {} (job {})",
        db.display(),
        persist.job()
    );
    let summary = run_job_with(
        endpoint,
        job,
        &prepared.test,
        ptx,
        shutdown,
        proving,
        Some(persist),
    )
    .await?;
    renderer.await.ok();
    write_safetensors(&args.out.join("model.safetensors"), &model, &summary.model)?;
    std::fs::write(
        args.out.join("metrics.json"),
        serde_json::to_vec_pretty(&summary.rounds)?,
    )?;
    if let Some(t) = &summary.transcript {
        let path = args.out.join("transcript.cairn");
        std::fs::write(&path, t.to_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "transcript in {}; check it with: cairn audit {}",
            path.display(),
            path.display()
        );
    }
    match summary.error {
        Some(e) => bail!("job stopped after {} rounds: {e}", summary.rounds_completed),
        None => {
            println!(
                "job complete: {} rounds; model and metrics in {}",
                summary.rounds_completed,
                args.out.display()
            );
            Ok(())
        }
    }
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
    /// Data options.
    #[command(flatten)]
    pub data: DataArgs,
}

/// Runs a participant until its job ends.
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
    let (prepared, source) = data.load()?;
    let holders = partition(
        &prepared.train,
        args.of,
        &data.partition()?,
        data.data_seed.unwrap_or(7),
    )?;
    let rows = holders
        .into_iter()
        .nth(args.holder)
        .context("holder index")?;
    let trainer = TchTrainer::new(args.device).context("choosing the training device")?;
    println!(
        "{name}: {} rows of {source} ({:.1}% positive), training on {}",
        rows.n_rows(),
        100.0 * rows.positive_rate(),
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
    let summary = run(
        &cfg,
        Arc::new(rows),
        Box::new(trainer) as Box<dyn Trainer>,
        rtx,
    )
    .await
    .with_context(|| format!("{name}: taking part in the job at {}", args.coordinator))?;
    printer.await.ok();
    println!(
        "{name}: {} (trained in {} rounds)",
        summary.message, summary.rounds_trained
    );
    Ok(())
}

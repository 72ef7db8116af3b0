//! `cairn coordinator` and `cairn participant`: each side as its own process, on its own
//! machine, addresses and files as flags or a TOML config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_coordinator::export::write_safetensors;
use cairn_coordinator::run_job;
use cairn_datasets::partition;
use cairn_participant::trainer::{DeviceChoice, TchTrainer, Trainer};
use cairn_participant::{run, ParticipantConfig};
use cairn_protocol::job::Job;
use cairn_protocol::transport::{server_endpoint, Enrolment, ServerIdentity};
use clap::Args;
use tokio::sync::mpsc;

use crate::options::{ConfigFile, DataArgs, TrainArgs};
use crate::ui;

/// `cairn coordinator` arguments.
#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    /// Address to listen on (QUIC/UDP).
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub listen: SocketAddr,
    /// Participants to wait for before the first round.
    #[arg(long, default_value_t = 5)]
    pub participants: usize,
    /// Fewest valid updates for a round to count [default: half the participants, rounded up]
    #[arg(long)]
    pub min: Option<usize>,
    /// Directory for the model, metrics and the connection info.
    #[arg(long, default_value = "cairn-out")]
    pub out: PathBuf,
    /// TOML config with `[data]` and `[train]` tables (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data options (the coordinator evaluates on the test split).
    #[command(flatten)]
    pub data: DataArgs,
    /// Training options.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// Runs a coordinator until its job ends (or Ctrl-C).
pub async fn coordinator(args: CoordinatorArgs) -> Result<()> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let data = args.data.clone().merge(&file.data);
    let train = args.train.clone().merge(&file.train);
    let (prepared, source) = data.load()?;
    eprintln!(
        "data: {source}: {} train rows, {} test rows, {} features",
        prepared.train.n_rows(),
        prepared.test.n_rows(),
        prepared.train.n_features
    );
    let min = args.min.unwrap_or(args.participants.div_ceil(2));
    let cfg = train.job("job-1", prepared.train.n_features, args.participants, min)?;
    if cfg.proof.is_some() {
        bail!("--proofs runs in `cairn demo` in this version; separate coordinator and participant processes do not prove yet");
    }
    let initial = cfg.model.init_params(train.seed());
    let identity = ServerIdentity::generate()?;
    let endpoint = server_endpoint(args.listen, &identity, &Enrolment::Open)
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = endpoint.local_addr()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let info =
        serde_json::json!({ "address": addr.to_string(), "fingerprint": identity.fingerprint });
    std::fs::write(
        args.out.join("coordinator.json"),
        serde_json::to_vec_pretty(&info)?,
    )?;
    println!("listening on {addr}");
    println!("aggregation: {}", cfg.aggregation);
    println!("fingerprint {}", identity.fingerprint);
    println!(
        "join with: cairn participant --coordinator {addr} --fingerprint {} --holder I --of {}",
        identity.fingerprint, args.participants
    );
    let (ptx, prx) = mpsc::unbounded_channel();
    let renderer = tokio::spawn(ui::render(prx, cfg.rounds, true));
    let model = cfg.model.clone();
    let job = Job::new(cfg, initial, Instant::now());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let summary = run_job(endpoint, job, &prepared.test, ptx, shutdown, None).await?;
    renderer.await.ok();
    write_safetensors(&args.out.join("model.safetensors"), &model, &summary.model)?;
    std::fs::write(
        args.out.join("metrics.json"),
        serde_json::to_vec_pretty(&summary.rounds)?,
    )?;
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
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("holder-{}", args.holder));
    println!(
        "{name}: {} rows of {source} ({:.1}% positive), training on {}",
        rows.n_rows(),
        100.0 * rows.positive_rate(),
        trainer.device()
    );
    let cfg = ParticipantConfig {
        coordinator: args.coordinator,
        fingerprint: args.fingerprint.clone(),
        name: name.clone(),
        identity: None,
        prover: None,
        keys: None,
    };
    let (rtx, mut rrx) = mpsc::unbounded_channel::<cairn_participant::TrainedRound>();
    let printer = tokio::spawn(async move {
        while let Some(r) = rrx.recv().await {
            println!(
                "round {:>3}: local loss {:.4}, trained in {:.2} s",
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
    .await?;
    printer.await.ok();
    println!(
        "{name}: {} (trained in {} rounds)",
        summary.message, summary.rounds_trained
    );
    Ok(())
}

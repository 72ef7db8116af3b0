//! `cairn demo`: a coordinator and N participants on loopback train the job's model on
//! the real dataset split among them, then the federated model is compared with a
//! centralised baseline trained on the pooled rows with the same budget. Writes the
//! model (safetensors), a metrics JSON file and two PNG plots (loss and AUC per round with
//! the centralised baseline; ROC curves of both models on the test split).
//!
//! By default the demo runs the full verifiable round in the reference configuration R3
//! (an MLP 38→8→1, K = 10 local steps of batch 32 at lr 0.5, 20 rounds, dataset trees of
//! depth 12 over blocks of 8 rows, secure aggregation): every holder commits to its ten
//! intermediate models, proves the one step the coordinator's beacon then challenges, and
//! every proof is verified; the demo ends by auditing its own transcript. `--proofs false`
//! runs the proof-free secure demo (an MLP-16, K = 20 at lr 0.1 unless flags say otherwise).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_coordinator::admin::ClassReport;
use cairn_coordinator::export::write_safetensors;
use cairn_datasets::partition;
use cairn_participant::trainer::{DeviceChoice, TchTrainer, Trainer};
use cairn_protocol::metrics::{parse_threshold, Metrics, DEFAULT_THRESHOLD};
use clap::Args;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::evaluation::{comparison, job_report};
use crate::federate::{run_federated_at, Proving};
use crate::options::{ConfigFile, DataArgs, TrainArgs};
use crate::plot::{plot_roc, plot_rounds};
use crate::ui;

/// `cairn demo` arguments.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of data holders (participants).
    #[arg(long, default_value_t = 5)]
    pub participants: usize,
    /// Training device of every participant: auto (CUDA when present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Directory for the model and metrics.
    #[arg(long, default_value = "cairn-out")]
    pub out: PathBuf,
    /// TOML config with `[data]` and `[train]` tables (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Decision threshold of the test accuracy, precision, recall and F1, each round's and
    /// the final comparison's (a row is positive when its score is at least this), strictly
    /// between 0 and 1
    #[arg(long, default_value_t = DEFAULT_THRESHOLD, value_parser = parse_threshold)]
    pub threshold: f64,
    /// Data options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Training options.
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Serialize)]
struct DemoReport<'a> {
    data: &'a str,
    model: String,
    participants: usize,
    partition: String,
    device: String,
    rounds: &'a [cairn_coordinator::RoundRecord],
    /// The decision threshold of the thresholded metrics.
    threshold: f64,
    federated: Metrics,
    centralised: Metrics,
    /// Each class against the rest (both classes of a binary label).
    classes: &'a [ClassReport],
    seconds: f64,
    /// A DP job's (ε, δ) after its rounds (absent without DP).
    #[serde(skip_serializing_if = "Option::is_none")]
    privacy: Option<cairn_coordinator::PrivacySpent>,
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<()> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let data_args = args.data.clone().merge(&file.data);
    let train_args = demo_defaults(args.train.clone().merge(&file.train));
    if args.participants == 0 {
        bail!("--participants must be at least 1");
    }
    let (prepared, source) = data_args.load()?;
    println!("data: {source}");
    println!("{}", prepared.report);
    let scheme = data_args.partition()?;
    let holders = partition(
        &prepared.train,
        args.participants,
        &scheme,
        data_args.data_seed.unwrap_or(7),
    )
    .context("partitioning the training rows")?;
    let job = train_args.job_for(
        "demo",
        &prepared,
        args.participants,
        args.participants.div_ceil(2),
    )?;
    if let Some(spec) = &job.proof {
        let rows: Vec<u64> = holders.iter().map(|h| h.n_rows() as u64).collect();
        check_tree_depth(spec.tree_depth, spec.block_rows, &rows)?;
    }
    let initial = job.model.init_params(train_args.seed());
    let device = TchTrainer::new(args.device)
        .context("choosing the training device")?
        .device();
    println!(
        "model {} ({} parameters), {} holders ({}: {}), {} rounds of K={} steps, B={}, lr={}, on {device}",
        job.model.describe(),
        job.model.param_count(),
        args.participants,
        scheme,
        holders.iter().map(|h| holder_mix(h, job.model.classes())).collect::<Vec<_>>().join(" "),
        job.rounds,
        job.hyper.local_steps,
        job.hyper.batch_size,
        job.hyper.learning_rate
    );
    println!("aggregation: {}", job.aggregation);
    let proving = match job.proof {
        Some(spec) => {
            let dir = train_args.keys_dir();
            let t = Instant::now();
            let (keys, existed) = Proving::load_or_setup(&job, &dir)?;
            println!(
                "proofs: Groth16 (BN254) of each update ({}), τ = {}, trees of depth {}; keys {} {} in {:.1} s",
                match spec.sampled_steps {
                    Some(s) => format!("{s} of K = {} steps per proof, challenged after the holder commits to all", job.hyper.local_steps),
                    None => format!("all K = {} steps", job.hyper.local_steps),
                },
                spec.tolerance,
                spec.tree_depth,
                if existed { "loaded from" } else { "set up (trusted setup, see circuits/README.md) in" },
                dir.display(),
                t.elapsed().as_secs_f64()
            );
            Some(keys)
        }
        None => None,
    };

    let t0 = Instant::now();
    let (ptx, prx) = mpsc::unbounded_channel();
    let renderer = tokio::spawn(ui::render(
        prx,
        job.rounds,
        !std::io::stderr().is_terminal(),
    ));
    let choice = args.device;
    let summary = run_federated_at(
        args.threshold,
        job.clone(),
        initial.clone(),
        &prepared.test,
        holders,
        move || Ok(Box::new(TchTrainer::new(choice)?) as Box<dyn Trainer>),
        ptx,
        proving.as_ref(),
    )
    .await?;
    renderer.await.ok();
    let seconds = t0.elapsed().as_secs_f64();
    if let Some(e) = &summary.error {
        bail!("the federated job stopped early: {e}");
    }
    if summary.rounds_completed == 0 {
        bail!(
            "no round completed: {}",
            summary
                .rounds
                .iter()
                .filter_map(|r| Some(format!("round {}: {}", r.round, r.failure.as_deref()?)))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }

    let mut trainer = TchTrainer::new(args.device)?;
    let test = &prepared.test;
    let mut eval = job_report(
        &job,
        &prepared.train,
        test,
        &summary.model,
        args.threshold,
        &mut trainer,
    )?;
    eval.privacy = summary.privacy;
    println!(
        "\n{} rounds in {seconds:.1} s on {device}; test split of {} rows ({}):",
        summary.rounds_completed,
        test.n_rows(),
        ui::class_counts(&eval.classes)
    );
    println!("{}", comparison(&eval, args.threshold));

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let model_path = args.out.join("model.safetensors");
    write_safetensors(&model_path, &job.model, job.data.as_ref(), &summary.model)?;
    let report = DemoReport {
        data: &source,
        model: job.model.describe(),
        participants: args.participants,
        partition: scheme.to_string(),
        device,
        rounds: &summary.rounds,
        threshold: args.threshold,
        federated: eval.federated,
        centralised: eval.centralised.unwrap_or_default(),
        classes: &eval.classes,
        seconds,
        privacy: summary.privacy,
    };
    let metrics_path = args.out.join("metrics.json");
    std::fs::write(&metrics_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", metrics_path.display()))?;
    println!(
        "wrote {} and {}",
        model_path.display(),
        metrics_path.display()
    );
    let (rounds_png, roc_png) = (args.out.join("rounds.png"), args.out.join("roc.png"));
    let title = format!(
        "{} holders, {}, {}",
        args.participants,
        job.model.describe(),
        if job.proof.is_some() {
            "proven rounds"
        } else {
            "secure aggregation"
        }
    );
    plot_rounds(
        &rounds_png,
        &summary.rounds,
        eval.centralised.as_ref(),
        &title,
    )?;
    if let (false, Some(cen), Some(cen_roc)) = (
        eval.roc.is_empty(),
        eval.centralised.as_ref(),
        eval.centralised_roc.as_ref(),
    ) {
        plot_roc(
            &roc_png,
            &[
                ("federated", &eval.roc, eval.federated.auc),
                ("centralised", cen_roc, cen.auc),
            ],
            &format!("ROC on the test split ({} rows)", test.n_rows()),
        )?;
        println!(
            "plots: {} (loss and AUC per round) and {} (ROC)",
            rounds_png.display(),
            roc_png.display()
        );
    } else {
        println!(
            "plot: {} (loss and macro AUC per round; each class's AUC is in the table above)",
            rounds_png.display()
        );
    }
    if let Some(t) = &summary.transcript {
        let path = args.out.join("transcript.cairn");
        std::fs::write(&path, t.to_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nwrote the transcript to {}; auditing it:", path.display());
        crate::audit::run(&crate::audit::AuditArgs::file(path))?;
    }
    Ok(())
}

/// A holder's rows for the demo's opening line: `rows/positive%` for a binary label,
/// `rows (n₀/n₁/…)` per class for more.
fn holder_mix(rows: &cairn_datasets::Dataset, classes: usize) -> String {
    if classes == 2 {
        format!("{}/{:.0}%", rows.n_rows(), 100.0 * rows.positive_rate())
    } else {
        let counts: Vec<String> = rows
            .class_counts(classes)
            .iter()
            .map(ToString::to_string)
            .collect();
        format!("{} ({})", rows.n_rows(), counts.join("/"))
    }
}

/// The demo's defaults: unless proofs are turned off, the reference configuration R3 of
/// the proven round (an MLP 38→8→1, K = 10 steps of B = 32 at lr 0.5, 20 rounds, a round
/// deadline of 600 s) for whatever the flags and config leave unset; with `--proofs false`,
/// the options' own defaults. `cairn demo --help` shows these ([`with_demo_help`]).
pub fn demo_defaults(mut t: TrainArgs) -> TrainArgs {
    if t.proofs.is_none() {
        t.proofs = Some(true);
    }
    if t.proofs == Some(true) {
        // R3: an MLP 38→8→1, K = 10 steps of B = 32 at lr 0.5, 20 rounds, each proof covering
        // one challenged step (the default for K > 1).
        t.hidden.get_or_insert_with(|| R3_HIDDEN.into());
        t.steps.get_or_insert(R3_STEPS);
        t.batch.get_or_insert(R3_BATCH);
        t.lr.get_or_insert(R3_LR);
        t.rounds.get_or_insert(R3_ROUNDS);
        // Five holders proving on one 2-core machine: a round takes the sum of their proofs
        // over the cores.
        t.round_timeout.get_or_insert(R3_ROUND_TIMEOUT_SECS);
    }
    t
}

/// Hidden layer of the default (proven) demo, R3.
pub const R3_HIDDEN: &str = "8";
/// Local steps K of R3.
pub const R3_STEPS: u32 = 10;
/// Batch size B of R3.
pub const R3_BATCH: u32 = 32;
/// Local learning rate of R3.
pub const R3_LR: f32 = 0.5;
/// Rounds of R3.
pub const R3_ROUNDS: u32 = 20;
/// Round deadline of the default (proven) demo, in seconds.
pub const R3_ROUND_TIMEOUT_SECS: u64 = 600;

/// Refuses a tree depth too small for some holder's rows (`rows`, one entry per holder),
/// before the trusted setup rather than when the holders commit after it, naming the
/// smallest depth that holds every holder's rows.
pub fn check_tree_depth(depth: u32, block_rows: u32, rows: &[u64]) -> Result<()> {
    let need = |n: u64| cairn_circuits::merkle::depth_for_rows(n, block_rows);
    let Some((i, &most)) = rows.iter().enumerate().max_by_key(|&(_, &n)| n) else {
        return Ok(());
    };
    let fits = need(most);
    if depth >= fits {
        return Ok(());
    }
    bail!(
        "--tree-depth {depth} is too small: a tree of depth {depth} holds {} blocks of {block_rows} rows, and holder {i} has {most} training rows ({} blocks); the smallest depth that holds every holder's rows is {fits} (--tree-depth {fits})",
        1u64 << depth.min(32),
        most / u64::from(block_rows.max(1))
    )
}

/// The training options whose default the demo sets itself ([`demo_defaults`]), by clap id
/// (the field's name), with the value it gives each; the options' own defaults (their help's
/// `[default: …]`) are what `--proofs false` runs with.
pub fn demo_default_values() -> Vec<(&'static str, String)> {
    let d = demo_defaults(TrainArgs::default());
    let mut out = Vec::new();
    let mut put = |id: &'static str, v: Option<String>| {
        if let Some(v) = v {
            out.push((id, v));
        }
    };
    put("proofs", d.proofs.map(|v| v.to_string()));
    put("hidden", d.hidden.clone());
    put("steps", d.steps.map(|v| v.to_string()));
    put("batch", d.batch.map(|v| v.to_string()));
    put("lr", d.lr.map(|v| v.to_string()));
    put("rounds", d.rounds.map(|v| v.to_string()));
    put("round_timeout", d.round_timeout.map(|v| v.to_string()));
    out
}

/// `cairn demo`'s command with the help its own defaults give: each option the demo sets
/// unless told otherwise shows `[default: <the demo's value>; <the option's default> with
/// --proofs false]` in place of the option's proof-free default alone.
pub fn with_demo_help(mut cmd: clap::Command) -> clap::Command {
    for (id, value) in demo_default_values() {
        cmd = cmd.mut_arg(id, |a| {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let long = a.get_long_help().map(|h| h.to_string());
            let a = a.help(demo_help(&help, id, &value));
            match long {
                Some(l) => a.long_help(demo_help(&l, id, &value)),
                None => a,
            }
        });
    }
    cmd
}

/// `help` with its `[default: X]` replaced by the demo's `value` (and X with --proofs false).
fn demo_help(help: &str, id: &str, value: &str) -> String {
    let help = help.trim_end();
    let (text, own) = match help.rfind("[default: ") {
        Some(i) if help.ends_with(']') => (
            help[..i].trim_end(),
            Some(&help[i + "[default: ".len()..help.len() - 1]),
        ),
        _ => (help, None),
    };
    match own {
        // `--proofs` itself: its own default is what `--proofs false` turns it to.
        Some(own) if own != value && id != "proofs" => {
            format!("{text} [default: {value}; {own} with --proofs false]")
        }
        _ => format!("{text} [default: {value}]"),
    }
}

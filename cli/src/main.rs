//! `cairn`: privacy-preserving federated learning on on-chain analytics data.
//!
//! The binary only parses arguments and calls the libraries.

use anyhow::Result;
use cairn_cli::{audit, demo, export_verifier, jobs, keygen, nodes, predict, service, simulate};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Federated learning on on-chain data: coordinator, participants, demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A coordinator and N participants on loopback train on the real dataset, compared
    /// with a centralised baseline.
    Demo(demo::DemoArgs),
    /// A coordinator and N (hundreds, thousands) holders in one process over QUIC on
    /// loopback, with injected failures: each round's cost per SecAgg+ phase, to size a
    /// federation.
    Simulate(simulate::SimulateArgs),
    /// Run a coordinator: a job file (or the flags' job), then its queue; `--serve` keeps it
    /// taking jobs. Its state lives in `--out`: started again there, it resumes.
    Coordinator(nodes::CoordinatorArgs),
    /// A researcher's job commands against a running coordinator: submit, list, status,
    /// watch, cancel, pull, plot.
    Job(jobs::JobArgs),
    /// Join a coordinator's job as a data holder.
    Participant(nodes::ParticipantArgs),
    /// Write a verifying key and proofs for independent verifiers: snarkjs JSON and a
    /// Solidity verifier contract with calldata.
    ExportVerifier(export_verifier::ExportVerifierArgs),
    /// Re-check a proven job from its transcript: chain, signatures, proofs, aggregate
    /// checks and the model chain; exit status 0 only when everything holds.
    Audit(audit::AuditArgs),
    /// Make a job's proof keys (Groth16 setup per shape) or a data holder's identity key.
    Keygen(keygen::KeygenArgs),
    /// Score rows with a trained model (CSV out), prepared as its training rows were: the
    /// job's columns and transforms travel in the model file.
    Predict(predict::PredictArgs),
}

fn main() -> Result<()> {
    let started = std::time::Instant::now();
    // The demo's help shows the defaults it runs with (proven, R3), not the options'
    // proof-free ones; the coordinator's `--admin` takes what `cairn job --admin` takes
    // (`127.0.0.1:PORT`, `[::1]:PORT`, `localhost:PORT`, `http://…`) and refuses any address
    // off loopback while the arguments are read, before anything is written.
    let mut cmd = Cli::command()
        .mut_subcommand("demo", demo::with_demo_help)
        .mut_subcommand("coordinator", |c| {
            c.mut_arg("admin", |a| a.value_parser(service::admin_address))
        });
    let mut matches = cmd.get_matches_mut();
    let cli = Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut cmd).exit());
    let default_level = match cli.command {
        Command::Demo(_) | Command::Job(_) | Command::Predict(_) => "warn",
        // Injected faults make the coordinator warn by the hundred: the tables say it all.
        Command::Simulate(_) => "error",
        _ => "info",
    };
    // arkworks' R1CS gadgets open an INFO span (target `gr1cs`) on every call: with a
    // subscriber listening, synthesising a circuit crawls (the 4-feature demo circuit: over
    // two minutes instead of 0.9 s). Those spans are never wanted in cairn's logs.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level))
        .add_directive("gr1cs=off".parse()?);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            Command::Demo(a) => demo::run(a).await,
            Command::Simulate(a) => simulate::run(a).await,
            Command::Coordinator(a) => nodes::coordinator(a, started).await,
            Command::Participant(a) => nodes::participant(a).await,
            Command::ExportVerifier(a) => export_verifier::run(a).await,
            Command::Audit(a) => audit::run(&a),
            Command::Job(a) => jobs::run(&a),
            Command::Keygen(a) => keygen::run(a),
            Command::Predict(a) => predict::run(&a),
        }
    })
}

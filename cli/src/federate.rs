//! Running a whole federated job in one process on loopback (the demo, tests and
//! benches), and the centralised baseline it is compared with.
//!
//! The coordinator and every participant are the same library functions the separate
//! `cairn coordinator` / `cairn participant` processes run; here they are tasks talking
//! real QUIC over 127.0.0.1.

use std::sync::Arc;
use std::time::Instant;

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use cairn_circuits::training::proof::{self, KeyStore, VerifyingKey};
use cairn_circuits::training::prover::Prover as Groth16Prover;
use cairn_coordinator::{run_job_with, CpuMeter, JobSummary, Progress, RunOptions, Stop};
use cairn_datasets::Dataset;
use cairn_participant::trainer::{TrainInput, Trainer};
use cairn_participant::{run, ParticipantConfig, Prover, TrainedRound, UpdateProver};
use cairn_proofs::rounds::{self, CommittedData};
use cairn_proofs::verify::Verifier;
use cairn_protocol::job::{Job, JobConfig};
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::sampling::batch_indices;
use cairn_protocol::transport::{server_endpoint, Enrolment, ServerIdentity};
use cairn_protocol::wire::ProofSpec;
use tokio::sync::mpsc;

/// The keys of a proven job's circuit shape.
pub struct Proving {
    /// The prover (proving key and constraint matrices), shared by the holders.
    pub pk: Arc<Groth16Prover>,
    /// Verifying key, for the coordinator.
    pub vk: VerifyingKey,
}

impl Proving {
    /// Loads the keys of `job`'s shape from `dir`, or runs the setup and stores them
    /// (the trusted setup: see circuits/README.md).
    pub fn load_or_setup(job: &JobConfig, dir: &Path) -> Result<(Self, bool)> {
        let spec = job.proof.context("the job does not prove its rounds")?;
        let shape = rounds::shape(&job.model, &job.hyper, &spec)?;
        let store = KeyStore::new(dir);
        let loaded = store
            .load(&shape)
            .with_context(|| format!("reading keys in {}", dir.display()))?;
        let existed = loaded.is_some();
        let (pk, vk) = match loaded {
            Some(keys) => keys,
            None => {
                let keys = proof::setup(&shape, &mut rand::rngs::OsRng)
                    .with_context(|| format!("setting up keys for shape {}", shape.id()))?;
                store
                    .save(&shape, &keys.0, &keys.1)
                    .with_context(|| format!("writing keys in {}", dir.display()))?;
                keys
            }
        };
        Ok((
            Self {
                pk: Arc::new(
                    Groth16Prover::new(&shape, pk)
                        .with_context(|| format!("preparing the prover of shape {}", shape.id()))?,
                ),
                vk,
            },
            existed,
        ))
    }
}

/// Runs `job` from `initial` with one participant task per holder, each with a trainer
/// from `make_trainer`; reports progress on `progress`. Each round's test accuracy,
/// precision, recall and F1 are at the default threshold 0.5 ([`run_federated_at`]).
pub async fn run_federated(
    job: JobConfig,
    initial: Vec<f32>,
    test: &Dataset,
    holders: Vec<Dataset>,
    make_trainer: impl Fn() -> Result<Box<dyn Trainer>>,
    progress: mpsc::UnboundedSender<Progress>,
    proving: Option<&Proving>,
) -> Result<JobSummary> {
    let threshold = cairn_protocol::metrics::DEFAULT_THRESHOLD;
    run_federated_at(
        threshold,
        job,
        initial,
        test,
        holders,
        make_trainer,
        progress,
        proving,
    )
    .await
}

/// [`run_federated`], each round's test metrics at decision `threshold`.
#[allow(clippy::too_many_arguments)]
pub async fn run_federated_at(
    threshold: f64,
    job: JobConfig,
    initial: Vec<f32>,
    test: &Dataset,
    holders: Vec<Dataset>,
    make_trainer: impl Fn() -> Result<Box<dyn Trainer>>,
    progress: mpsc::UnboundedSender<Progress>,
    proving: Option<&Proving>,
) -> Result<JobSummary> {
    let mut provers = Vec::with_capacity(holders.len());
    for (i, rows) in holders.iter().enumerate() {
        provers.push(match (proving, job.proof) {
            (Some(p), Some(spec)) => Some(Arc::new(
                commit_holder(p, rows, &spec).with_context(|| format!("holder {i}"))?,
            ) as Arc<dyn UpdateProver>),
            _ => None,
        });
    }
    let coordinator = start_coordinator_at(
        job,
        initial,
        test,
        progress.clone(),
        proving,
        None,
        threshold,
    )?;
    let mut tasks = Vec::new();
    for (i, (rows, prover)) in holders.into_iter().zip(provers).enumerate() {
        let name = format!("holder-{i}");
        let cfg = coordinator.participant(name.clone(), prover);
        let trainer = make_trainer()?;
        // Each holder's per-round times join the coordinator's progress.
        let (trained, mut reports) = mpsc::unbounded_channel();
        let progress = progress.clone();
        tokio::spawn(async move {
            while let Some(t) = reports.recv().await {
                let t: TrainedRound = t;
                let _ = progress.send(Progress::Trained {
                    round: t.round,
                    holder: name.clone(),
                    train_seconds: t.train_seconds,
                    prove_seconds: t.prove_seconds,
                });
            }
        });
        tasks.push(tokio::spawn(async move {
            run(&cfg, Arc::new(rows), trainer, trained).await
        }));
    }
    drop(progress);
    let summary = coordinator.finish().await?;
    for (i, t) in tasks.into_iter().enumerate() {
        if let Err(e) = t.await.context("participant task")? {
            tracing::warn!(holder = i, error = %e, "participant ended with an error");
        }
    }
    Ok(summary)
}

/// The honest prover of a holder: its rows committed in fixed point under a Poseidon
/// Merkle tree of `tree_depth` (once per job), with the job's proving key.
pub fn commit_holder(proving: &Proving, rows: &Dataset, spec: &ProofSpec) -> Result<Prover> {
    Ok(Prover {
        key: Arc::clone(&proving.pk),
        data: CommittedData::new(&rows.features, rows.n_features, &rows.labels, spec)
            .map_err(|e| anyhow!("{e}"))?,
    })
}

/// A coordinator running one job on a loopback QUIC endpoint, as a task.
pub struct LocalCoordinator {
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// Its certificate's fingerprint.
    pub fingerprint: String,
    /// The job's γ: the holders here are the operator's own, so they accept what it chose.
    corruption: f64,
    task: tokio::task::JoinHandle<Result<JobSummary, cairn_coordinator::CoordinatorError>>,
}

impl LocalCoordinator {
    /// The configuration of a participant that joins this coordinator.
    pub fn participant(
        &self,
        name: String,
        prover: Option<Arc<dyn UpdateProver>>,
    ) -> ParticipantConfig {
        ParticipantConfig {
            coordinator: self.addr,
            fingerprint: self.fingerprint.clone(),
            name,
            identity: None,
            prover,
            keys: None,
            prove_threads: None,
            min_corruption: self.corruption,
            min_noise: 0.0,
            faults: None,
            compute: None,
        }
    }

    /// Waits for the job to end.
    pub async fn finish(self) -> Result<JobSummary> {
        self.task
            .await
            .context("coordinator task")?
            .context("coordinator")
    }
}

/// Starts the coordinator of `job` on 127.0.0.1 (with the verifier and the aggregate check
/// when the job proves its rounds).
pub fn start_coordinator(
    job: JobConfig,
    initial: Vec<f32>,
    test: &Dataset,
    progress: mpsc::UnboundedSender<Progress>,
    proving: Option<&Proving>,
) -> Result<LocalCoordinator> {
    start_coordinator_with(job, initial, test, progress, proving, None)
}

/// [`start_coordinator`], with a meter of the coordinator's CPU time for its per-phase
/// records (`cairn simulate`). Spawns on the current runtime.
pub fn start_coordinator_with(
    job: JobConfig,
    initial: Vec<f32>,
    test: &Dataset,
    progress: mpsc::UnboundedSender<Progress>,
    proving: Option<&Proving>,
    cpu: Option<CpuMeter>,
) -> Result<LocalCoordinator> {
    let threshold = cairn_protocol::metrics::DEFAULT_THRESHOLD;
    start_coordinator_at(job, initial, test, progress, proving, cpu, threshold)
}

fn start_coordinator_at(
    job: JobConfig,
    initial: Vec<f32>,
    test: &Dataset,
    progress: mpsc::UnboundedSender<Progress>,
    proving: Option<&Proving>,
    cpu: Option<CpuMeter>,
    threshold: f64,
) -> Result<LocalCoordinator> {
    if job.proof.is_some() != proving.is_some() {
        bail!("a proven job needs its keys, and keys need a proven job");
    }
    let verifier = match (proving, job.proof) {
        (Some(p), Some(spec)) => Some(Verifier::new(
            &p.vk,
            &rounds::shape(&job.model, &job.hyper, &spec)?,
        )),
        _ => None,
    };
    let identity = ServerIdentity::generate()?;
    // Open enrolment: every holder draws a fresh identity key for this run; mutual TLS
    // still binds each connection to the key its Hello names.
    let endpoint = server_endpoint("127.0.0.1:0".parse()?, &identity, &Enrolment::Open)?;
    let addr = endpoint.local_addr()?;
    let _ = progress.send(Progress::Listening {
        addr,
        fingerprint: identity.fingerprint.clone(),
    });
    let corruption = match &job.aggregation {
        cairn_protocol::round::Aggregation::Secure(s) => s.corruption,
        cairn_protocol::round::Aggregation::Plain => 0.0,
    };
    let job = Job::new(job, initial, Instant::now());
    let test = test.clone();
    let task = tokio::spawn(async move {
        let opts = RunOptions {
            verifier,
            cpu,
            threshold: Some(threshold),
            ..RunOptions::default()
        };
        let stop = std::future::pending::<Stop>();
        let summary = run_job_with(endpoint.clone(), job, &test, progress, stop, opts).await;
        if summary.is_err() {
            endpoint.close(0u32.into(), b"shutdown");
        }
        summary
    });
    Ok(LocalCoordinator {
        addr,
        fingerprint: identity.fingerprint,
        corruption,
        task,
    })
}

/// The centralised baseline with the same budget: every round, K steps of SGD with
/// batches of N·B rows from the pooled training rows (the same examples per round as N
/// holders with batch B), from the same initial model.
#[allow(clippy::too_many_arguments)] // each is a distinct setting of the baseline run
pub fn centralised_baseline(
    spec: &ModelSpec,
    initial: &[f32],
    train: &Dataset,
    hyper: &HyperParams,
    rounds: u32,
    n_holders: usize,
    seed: u64,
    trainer: &mut dyn Trainer,
) -> Result<Vec<f32>> {
    let mut params = initial.to_vec();
    let batch = hyper.batch_size.saturating_mul(n_holders as u32);
    for r in 0..rounds {
        let mut round_seed = [0u8; 32];
        round_seed[..8].copy_from_slice(&seed.to_le_bytes());
        round_seed[8..12].copy_from_slice(&r.to_le_bytes());
        let batches = batch_indices(
            round_seed,
            u32::MAX,
            train.n_rows(),
            hyper.local_steps,
            batch,
        );
        let input = TrainInput {
            spec,
            global: &params,
            features: &train.features,
            labels: &train.labels,
            hyper,
            batches: &batches,
        };
        let update = trainer.train(&input).context("baseline training")?;
        for (w, d) in params.iter_mut().zip(&update.delta) {
            *w += d;
        }
    }
    Ok(params)
}

//! Shared by the dishonest-holder tests (`malicious.rs`, `proven_dp.rs`): a proven job run in
//! process over loopback QUIC with each holder's own [`UpdateProver`] behind the real
//! participant driver, and the transcript's map from a holder's roster index (what it proves
//! under) to its participant id (what the transcript names it by).

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_cli::federate::{start_coordinator, Proving};
use cairn_coordinator::JobSummary;
use cairn_datasets::Dataset;
use cairn_participant::trainer::{DeviceChoice, TchTrainer};
use cairn_participant::{run, UpdateProver};
use cairn_protocol::job::JobConfig;
use cairn_protocol::transcript::{Entry, Transcript};
use tokio::sync::mpsc;

/// Runs `job` with one holder per `(rows, prover)`, each through the real participant
/// driver with the tch trainer, and the coordinator evaluating on `test`; panics when a
/// holder ends with an error. The job's summary.
pub async fn run_job(
    job: JobConfig,
    proving: &Proving,
    test: &Dataset,
    holders: Vec<(Dataset, Arc<dyn UpdateProver>)>,
) -> JobSummary {
    let initial = job.model.init_params(5);
    let coordinator = start_coordinator(
        job,
        initial,
        test,
        mpsc::unbounded_channel().0,
        Some(proving),
    )
    .expect("coordinator");
    let mut tasks = Vec::new();
    for (i, (rows, prover)) in holders.into_iter().enumerate() {
        let cfg = coordinator.participant(format!("holder-{i}"), Some(prover));
        let trainer = Box::new(TchTrainer::new(DeviceChoice::Cpu).expect("tch"));
        tasks.push(tokio::spawn(async move {
            run(&cfg, Arc::new(rows), trainer, mpsc::unbounded_channel().0).await
        }));
    }
    let summary = coordinator.finish().await.expect("job runs");
    for (i, t) in tasks.into_iter().enumerate() {
        if let Err(e) = t.await.expect("participant task") {
            panic!("holder {i} ended with an error: {e}");
        }
    }
    summary
}

/// A holder proves under its index in the job's randomness roster; the transcript names it
/// by its connection's id. The participant id of each roster index, from `t`'s enrolments
/// and randomness record.
pub fn participant_of_index(t: &Transcript) -> impl Fn(u32) -> u32 {
    let mut pid_of_identity = BTreeMap::new();
    let mut roster = Vec::new();
    for r in &t.records {
        match &r.entry {
            Entry::Enrolled {
                participant,
                identity,
                ..
            } => {
                pid_of_identity.insert(*identity, *participant);
            }
            Entry::Randomness { contributions } => roster.clone_from(contributions),
            _ => {}
        }
    }
    move |i: u32| pid_of_identity[&roster[i as usize].identity]
}

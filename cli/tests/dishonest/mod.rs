//! Shared by the dishonest-holder tests (`malicious.rs`, `proven_dp.rs`): a proven job run in
//! process over loopback QUIC with each holder's own [`UpdateProver`] behind the real
//! participant driver, and the transcript's map from a holder's roster index (what it proves
//! under) to its participant id (what the transcript names it by).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cairn_cli::federate::{start_coordinator, Proving};
use cairn_coordinator::JobSummary;
use cairn_datasets::Dataset;
use cairn_participant::trainer::{DeviceChoice, TchTrainer};
use cairn_participant::{run, UpdateProver};
use cairn_protocol::job::JobConfig;
use cairn_protocol::transcript::{Entry, Transcript};
use cairn_protocol::wire::ProvenInput;
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

/// Every honest vector a holder masked, by (round, index in the job's randomness roster): what
/// an honest [`UpdateProver`] records as it proves.
pub type Ledger = Arc<Mutex<BTreeMap<(u32, u32), Vec<i64>>>>;

/// The ledger keyed by (round, participant id), the transcript's names.
pub fn by_participant(
    ledger: &Ledger,
    pid_of_index: impl Fn(u32) -> u32,
) -> BTreeMap<(u32, u32), Vec<i64>> {
    ledger
        .lock()
        .expect("ledger")
        .iter()
        .map(|(&(round, index), x)| ((round, pid_of_index(index)), x.clone()))
        .collect()
}

/// Asserts that `round`'s unmasked sum S is exactly the sum of the vectors its survivors
/// (`inputs`) masked honestly, as `ledger` (by participant id) recorded them.
pub fn assert_honest_sum(
    round: u32,
    inputs: &[(u32, ProvenInput)],
    update_sum: &[i64],
    ledger: &BTreeMap<(u32, u32), Vec<i64>>,
) {
    let mut honest_sum = vec![0i64; update_sum.len()];
    for (p, _) in inputs {
        let x = ledger
            .get(&(round, *p))
            .unwrap_or_else(|| panic!("round {round}: survivor {p} sent no honest vector"));
        assert_eq!(
            x.len(),
            update_sum.len(),
            "round {round}: survivor {p}'s vector"
        );
        honest_sum.iter_mut().zip(x).for_each(|(s, v)| *s += v);
    }
    assert_eq!(update_sum, honest_sum, "round {round}: S is the honest sum");
}

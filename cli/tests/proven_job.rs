//! The full verifiable round over real QUIC on loopback, with real Groth16 proofs on a
//! small circuit shape: holders commit to their rows, train with tch, prove, and send
//! their masked input with its commitment and proof; the coordinator verifies every
//! proof and checks Σ C_u = commit(S, R) before it applies each round.

use cairn_cli::federate::{run_federated, Proving};
use cairn_cli::options::TrainArgs;
use cairn_datasets::{partition, synthetic, LoadOptions, Partition};
use cairn_participant::trainer::{DeviceChoice, TchTrainer, Trainer};
use tokio::sync::mpsc;

fn proven_args() -> TrainArgs {
    TrainArgs {
        rounds: Some(2),
        hidden: Some("none".into()),
        steps: Some(1),
        batch: Some(2),
        proofs: Some(true),
        tree_depth: Some(6),
        round_timeout: Some(60),
        join_timeout: Some(60),
        ..TrainArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proven_rounds_over_quic_verify_every_proof_and_apply_the_checked_sum() {
    let data = synthetic(150, 3, 5, &LoadOptions::default());
    let holders = partition(&data.train, 3, &Partition::Iid, 1).expect("partition");
    assert!(
        holders.iter().all(|h| h.n_rows() <= 64),
        "rows fit the depth-6 trees"
    );
    let job = proven_args()
        .job("proven", data.train.n_features, 3, 3)
        .expect("job");
    let keys = tempfile::tempdir().expect("tempdir");
    let (proving, existed) = Proving::load_or_setup(&job, keys.path()).expect("keys");
    assert!(!existed, "a fresh key directory runs the setup");
    let initial = job.model.init_params(3);
    let summary = run_federated(
        job.clone(),
        initial.clone(),
        &data.test,
        holders,
        || Ok(Box::new(TchTrainer::new(DeviceChoice::Cpu)?) as Box<dyn Trainer>),
        mpsc::unbounded_channel().0,
        Some(&proving),
    )
    .await
    .expect("job runs");
    assert_eq!(summary.error, None, "{:?}", summary.rounds);
    assert_eq!(summary.rounds_completed, 2, "{:?}", summary.rounds);
    for r in &summary.rounds {
        assert_eq!(r.failure, None);
        assert_eq!(r.contributors, 3, "{r:?}");
        let verified = r.verify_seconds.as_ref().expect("proofs were verified");
        assert_eq!(verified.len(), 3, "one verification per holder");
    }
    assert_ne!(summary.model, initial, "the checked sums were applied");

    // The keys are cached by shape: a second load reuses them.
    let (_, existed) = Proving::load_or_setup(&job, keys.path()).expect("keys");
    assert!(existed);
    // Keys of another shape are never taken for this one.
    let mut other = proven_args();
    other.batch = Some(3);
    let other = other
        .job("other", data.train.n_features, 3, 3)
        .expect("job");
    let store = cairn_circuits::training::proof::KeyStore::new(keys.path());
    let spec = other.proof.expect("proven");
    let shape = cairn_circuits::rounds::shape(&other.model, &other.hyper, &spec);
    assert!(store.load(&shape).expect("readable").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proven_job_without_keys_is_refused_with_a_clear_error() {
    let data = synthetic(60, 3, 5, &LoadOptions::default());
    let holders = partition(&data.train, 3, &Partition::Iid, 1).expect("partition");
    let job = proven_args().job("proven", 3, 3, 3).expect("job");
    let initial = job.model.init_params(3);
    let err = run_federated(
        job,
        initial,
        &data.test,
        holders,
        || Ok(Box::new(TchTrainer::new(DeviceChoice::Cpu)?) as Box<dyn Trainer>),
        mpsc::unbounded_channel().0,
        None,
    )
    .await
    .expect_err("no keys");
    assert!(err.to_string().contains("needs its keys"), "{err}");
}

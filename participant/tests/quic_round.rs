//! Real QUIC on loopback: a coordinator and several participants (tch trainers) run a
//! multi-round job with secure aggregation on synthetic data; a participant with the
//! wrong fingerprint is refused at the TLS handshake; one that vanishes mid-round is
//! recovered from (its masks removed) and the job completes with the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_coordinator::{run_job, Progress};
use cairn_datasets::{partition, synthetic, LoadOptions, Partition};
use cairn_participant::trainer::{DeviceChoice, TchTrainer};
use cairn_participant::{run, ParticipantConfig, ParticipantError};
use cairn_protocol::job::{Job, JobConfig};
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::round::{Aggregation, SecureSettings};
use cairn_protocol::transport::{server_endpoint, Enrolment, ServerIdentity};
use tokio::sync::mpsc;

fn job_config(n: usize, min: usize, rounds: u32, n_features: usize) -> JobConfig {
    JobConfig {
        privacy: None,
        aggregation: Aggregation::Secure(SecureSettings::default()),
        job_id: "loopback".into(),
        model: ModelSpec::mlp(n_features, vec![8]),
        rounds,
        participants: n,
        min_participants: min,
        hyper: HyperParams {
            local_steps: 10,
            batch_size: 32,
            learning_rate: 0.2,
            clip_norm: 10.0,
        },
        server: cairn_protocol::server_opt::ServerOptimizer::FedAvg { lr: 1.0 },
        round_timeout: Duration::from_secs(20),
        join_timeout: Duration::from_secs(20),
        seed: 5,
        proof: None,
        data: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_round_job_over_quic_loopback_learns() {
    let data = synthetic(1500, 6, 11, &LoadOptions::default());
    let holders = partition(&data.train, 3, &Partition::Iid, 1).expect("partition");
    let cfg = job_config(3, 2, 4, data.train.n_features);
    let initial = cfg.model.init_params(9);
    let before = cairn_protocol::metrics::evaluate(
        &cfg.model,
        &initial,
        &data.test.features,
        &data.test.labels,
    );

    let identity = ServerIdentity::generate().expect("identity");
    let endpoint = server_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        &identity,
        &Enrolment::Open,
    )
    .expect("bind");
    let addr = endpoint.local_addr().expect("addr");
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let job = Job::new(cfg, initial, Instant::now());
    let test = data.test.clone();
    let server = tokio::spawn(async move {
        run_job(endpoint, job, &test, ptx, std::future::pending(), None).await
    });

    // An impostor pinning another fingerprint never gets through the handshake.
    let wrong = ParticipantConfig {
        coordinator: addr,
        fingerprint: "00".repeat(32),
        name: "mallory".into(),
        identity: None,
        prover: None,
        keys: None,
        prove_threads: None,
        min_corruption: cairn_protocol::client::DEFAULT_MIN_CORRUPTION,
        min_noise: 0.0,
        faults: None,
        compute: None,
    };
    let trainer = Box::new(TchTrainer::new(DeviceChoice::Cpu).expect("cpu"));
    let err = run(
        &wrong,
        Arc::new(holders[0].clone()),
        trainer,
        mpsc::unbounded_channel().0,
    )
    .await;
    assert!(
        matches!(err, Err(ParticipantError::Transport(_))),
        "{err:?}"
    );

    let mut tasks = Vec::new();
    for (i, h) in holders.into_iter().enumerate() {
        let cfg = ParticipantConfig {
            coordinator: addr,
            fingerprint: identity.fingerprint.clone(),
            name: format!("holder-{i}"),
            identity: None,
            prover: None,
            keys: None,
            prove_threads: None,
            min_corruption: cairn_protocol::client::DEFAULT_MIN_CORRUPTION,
            min_noise: 0.0,
            faults: None,
            compute: None,
        };
        tasks.push(tokio::spawn(async move {
            let trainer = Box::new(TchTrainer::new(DeviceChoice::Cpu).expect("cpu"));
            run(&cfg, Arc::new(h), trainer, mpsc::unbounded_channel().0).await
        }));
    }
    for t in tasks {
        let s = t.await.expect("join").expect("participant ok");
        assert_eq!(s.rounds_trained, 4);
    }
    let summary = tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("in time")
        .expect("join")
        .expect("job");
    assert_eq!(summary.rounds_completed, 4);
    assert!(summary.error.is_none());
    let last = summary.rounds.last().and_then(|r| r.test).expect("metrics");
    assert!(
        last.loss < before.loss,
        "test loss {} → {}",
        before.loss,
        last.loss
    );
    assert!(
        last.auc > 0.7 && last.auc > before.auc + 0.05,
        "AUC {} → {}",
        before.auc,
        last.auc
    );
    assert!(summary
        .rounds
        .iter()
        .all(|r| r.contributors == 3 && r.dropped.is_empty()));
    let mut joined = 0;
    while let Ok(p) = prx.try_recv() {
        joined += usize::from(matches!(p, Progress::Joined { .. }));
    }
    assert_eq!(joined, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_that_vanishes_mid_job_is_left_out() {
    let data = synthetic(900, 5, 3, &LoadOptions::default());
    let holders = partition(&data.train, 4, &Partition::Iid, 2).expect("partition");
    let mut cfg = job_config(4, 3, 3, data.train.n_features);
    // A vanished peer is noticed by the phase deadline (or QUIC's idle timeout).
    cfg.round_timeout = Duration::from_secs(3);
    let initial = cfg.model.init_params(1);
    let identity = ServerIdentity::generate().expect("identity");
    let endpoint = server_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        &identity,
        &Enrolment::Open,
    )
    .expect("bind");
    let addr = endpoint.local_addr().expect("addr");
    let job = Job::new(cfg, initial, Instant::now());
    let test = data.test.clone();
    let server = tokio::spawn(async move {
        run_job(
            endpoint,
            job,
            &test,
            mpsc::unbounded_channel().0,
            std::future::pending(),
            None,
        )
        .await
    });

    let mut tasks = Vec::new();
    for (i, h) in holders.into_iter().enumerate() {
        let cfg = ParticipantConfig {
            coordinator: addr,
            fingerprint: identity.fingerprint.clone(),
            name: format!("h{i}"),
            identity: None,
            prover: None,
            keys: None,
            prove_threads: None,
            min_corruption: cairn_protocol::client::DEFAULT_MIN_CORRUPTION,
            min_noise: 0.0,
            faults: None,
            compute: None,
        };
        let (rtx, mut rrx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let trainer = Box::new(TchTrainer::new(DeviceChoice::Cpu).expect("cpu"));
            run(&cfg, Arc::new(h), trainer, rtx).await
        });
        if i == 2 {
            // Kill this participant as soon as it has trained its first round.
            tokio::spawn(async move {
                let _ = rrx.recv().await;
                task.abort();
            });
        } else {
            tasks.push(task);
        }
    }
    for t in tasks {
        t.await.expect("join").expect("participant ok");
    }
    let summary = tokio::time::timeout(Duration::from_secs(90), server)
        .await
        .expect("in time")
        .expect("join")
        .expect("job");
    assert_eq!(summary.rounds_completed, 3, "{:?}", summary.rounds);
    // Every round after the kill went on without participant 2.
    let later: Vec<_> = summary
        .rounds
        .iter()
        .filter(|r| r.contributors == 3)
        .collect();
    assert!(!later.is_empty(), "{:?}", summary.rounds);
    assert!(summary.rounds.last().map(|r| r.contributors) == Some(3));
    // Its drop is on record (ids follow connection order, so not necessarily id 2).
    assert!(
        summary.rounds.iter().any(|r| r.dropped.len() == 1),
        "{:?}",
        summary.rounds
    );
}

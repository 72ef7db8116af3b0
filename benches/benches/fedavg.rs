//! Federated training quality and round overhead (issue: the foundation's targets).
//!
//! 1. Quality: on the Ethereum fraud table, 5 holders, IID and Dirichlet(α = 0.5): the
//!    federated model's test AUC next to the centralised baseline trained on the pooled
//!    rows with the same budget (targets: gap ≤ 0.01 IID, ≤ 0.03 Dirichlet).
//! 2. Round overhead besides training (serialisation, QUIC, aggregation, evaluation) for 5
//!    participants and a ~10^5-parameter model on loopback: the trainer returns a fixed
//!    update instantly, so a round's wall time is all overhead (target < 50 ms).
//!
//! Run:
//! `. scripts/torch-env.sh && cargo bench -p cairn-benches --bench fedavg`.

use std::time::Instant;

use anyhow::Result;
use cairn_cli::federate::{centralised_baseline, run_federated};
use cairn_cli::options::{DataArgs, TrainArgs};
use cairn_datasets::{partition, synthetic, LoadOptions, Partition};
use cairn_participant::trainer::{
    DeviceChoice, LocalUpdate, TchTrainer, TrainError, TrainInput, Trainer,
};
use cairn_protocol::metrics::evaluate;
use cairn_protocol::model::ModelSpec;
use tokio::sync::mpsc;

mod common;

/// Returns a fixed small update at once: isolates the protocol's overhead.
struct InstantTrainer;
impl Trainer for InstantTrainer {
    fn train(&mut self, input: &TrainInput<'_>) -> Result<LocalUpdate, TrainError> {
        Ok(LocalUpdate {
            delta: vec![1e-4; input.global.len()],
            n_examples: 1,
            mean_loss: 0.5,
        })
    }
    fn device(&self) -> String {
        "instant".into()
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn quality(partition_name: &str, scheme: Partition) -> Result<(f64, f64, f64)> {
    let data = DataArgs::default();
    let (prepared, _) = data.load()?;
    let train = TrainArgs::default();
    let job = train.job("bench", prepared.train.n_features, 5, 3)?;
    let initial = job.model.init_params(train.seed());
    let holders = partition(&prepared.train, 5, &scheme, 7)?;
    let t0 = Instant::now();
    let summary = run_federated(
        job.clone(),
        initial.clone(),
        &prepared.test,
        holders,
        || Ok(Box::new(TchTrainer::new(DeviceChoice::Cpu)?) as Box<dyn Trainer>),
        mpsc::unbounded_channel().0,
        None,
    )
    .await?;
    let secs = t0.elapsed().as_secs_f64();
    let mut t = TchTrainer::new(DeviceChoice::Cpu)?;
    let central = centralised_baseline(
        &job.model,
        &initial,
        &prepared.train,
        &job.hyper,
        job.rounds,
        5,
        train.seed(),
        &mut t,
    )?;
    let fed = evaluate(
        &job.model,
        &summary.model,
        &prepared.test.features,
        &prepared.test.labels,
    )
    .auc;
    let cen = evaluate(
        &job.model,
        &central,
        &prepared.test.features,
        &prepared.test.labels,
    )
    .auc;
    println!(
        "{partition_name:<16} {fed:>9.4} {cen:>11.4} {:>+8.4} {secs:>8.2}",
        fed - cen
    );
    Ok((fed, cen, secs))
}

async fn overhead(aggregation: &str) -> Result<()> {
    let opts = LoadOptions::default();
    let data = synthetic(2000, 38, 1, &opts);
    let holders = partition(&data.train, 5, &Partition::Iid, 1)?;
    let mut train = TrainArgs {
        rounds: Some(20),
        hidden: Some("2600".into()),
        aggregation: Some(aggregation.into()),
        ..TrainArgs::default()
    };
    // Far above the instant update's norm (1e-4 per coordinate: ~0.03), so nothing is
    // clipped, and small enough for the secure ring (5 x 100 x 2^16 < 2^31).
    train.clip = Some(100.0);
    let job = train.job("overhead", 38, 5, 5)?;
    let n = job.model.param_count();
    let initial = ModelSpec::init_params(&job.model, 1);
    let summary = run_federated(
        job,
        initial,
        &data.test,
        holders,
        || Ok(Box::new(InstantTrainer) as Box<dyn Trainer>),
        mpsc::unbounded_channel().0,
        None,
    )
    .await?;
    let mut ms: Vec<f64> = summary
        .rounds
        .iter()
        .skip(1)
        .map(|r| r.seconds * 1e3)
        .collect();
    let med = median(&mut ms);
    println!(
        "\nround overhead, {aggregation} aggregation, 5 participants, {n} parameters ({} rounds, first excluded):",
        ms.len()
    );
    println!(
        "  median {med:.1} ms, min {:.1} ms, max {:.1} ms   (target < 50 ms: {:.2}x of budget)",
        ms[0],
        ms[ms.len() - 1],
        med / 50.0
    );
    Ok(())
}

fn main() -> Result<()> {
    common::harness_main(|| async {
        println!("federated vs centralised test AUC, fraud table, 5 holders, model 38→16→1, 20 rounds x K=20 x B=32");
        println!(
            "{:<16} {:>9} {:>11} {:>8} {:>8}",
            "partition", "federated", "centralised", "gap", "seconds"
        );
        quality("iid", Partition::Iid).await?;
        quality("dirichlet(0.5)", Partition::Dirichlet { alpha: 0.5 }).await?;
        overhead("plain").await?;
        overhead("secure").await
    })
}

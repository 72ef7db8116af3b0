//! `cairn simulate` at a scale CI can afford: 200 holders over real QUIC and TLS on
//! loopback, each with its own identity and connection, holders vanishing at every SecAgg+
//! phase. The model the coordinator applies must be exactly (up to the fixed-point
//! quantum) the mean of the clipped updates of the holders it says it aggregated, and those
//! must be the ones that sent their masked input: the ones that vanished before it are
//! out, the ones that vanished after it are in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_cli::options::{DataArgs, TrainArgs};
use cairn_cli::simulate::faults::{FaultPlan, FaultSpec, SecPhase};
use cairn_cli::simulate::{simulate, Setup};
use cairn_datasets::{partition, Partition};
use cairn_participant::trainer::{LocalUpdate, NativeTrainer, TrainError, TrainInput, Trainer};
use cairn_protocol::model::clip_l2;

const N: usize = 200;

/// A native trainer that keeps a copy of each update it makes, by holder and round.
struct Recording {
    holder: usize,
    inner: NativeTrainer,
    updates: Arc<Mutex<BTreeMap<usize, Vec<f32>>>>,
}

impl Trainer for Recording {
    fn train(&mut self, input: &TrainInput<'_>) -> Result<LocalUpdate, TrainError> {
        let update = self.inner.train(input)?;
        self.updates
            .lock()
            .expect("lock")
            .insert(self.holder, update.delta.clone());
        Ok(update)
    }

    fn device(&self) -> String {
        "native-cpu (recording)".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_holders_dropping_at_every_phase_aggregate_exactly_the_survivors() {
    let data = DataArgs::default();
    let (prepared, _) = data
        .load()
        .expect("the fraud table (or the synthetic fallback)");
    let train = TrainArgs {
        hidden: Some("none".into()),
        rounds: Some(1),
        steps: Some(2),
        batch: Some(8),
        lr: Some(0.1),
        clip: Some(0.5),
        round_timeout: Some(60),
        join_timeout: Some(60),
        ..TrainArgs::default()
    };
    let job = train
        .job("simulate-test", prepared.train.n_features, N, N / 2)
        .expect("job");
    let initial = job.model.init_params(job.seed);
    let holders = partition(&prepared.train, N, &Partition::Iid, 7).expect("partition");
    // 4 % of the holders vanish at each of the five phases: 8 before their keys, 8 before
    // their shares, 8 before their masked input (all three out of the sum), 8 after it
    // (before signing the survivor list) and 8 before their unmask answer (both in it).
    let spec = FaultSpec {
        drop: SecPhase::ALL.iter().map(|&p| (p, 0.04)).collect(),
        rejoin_after: None,
        seed: 11,
        ..FaultSpec::default()
    };
    let plan = Arc::new(FaultPlan::new(spec, N));
    let fates = plan.round(1);
    let updates = Arc::new(Mutex::new(BTreeMap::new()));
    let recorded = Arc::clone(&updates);
    let setup = Setup {
        holders,
        trainer: Arc::new(move |holder| {
            Ok(Box::new(Recording {
                holder,
                inner: NativeTrainer::new(),
                updates: Arc::clone(&recorded),
            }) as Box<dyn Trainer>)
        }),
        plan: Arc::clone(&plan),
        threads: 1,
    };
    let report = tokio::time::timeout(
        Duration::from_secs(240),
        simulate(job.clone(), &prepared.test, setup, false),
    )
    .await
    .expect("the simulation ends")
    .expect("the simulation runs");
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.rounds_completed, 1);
    assert!(
        report.holders.failures.is_empty(),
        "{:?}; their fates: {:?}",
        report.holders.failures,
        report
            .holders
            .failures
            .iter()
            .filter_map(|f| f
                .strip_prefix("holder-")?
                .split(':')
                .next()?
                .parse::<usize>()
                .ok())
            .map(|h| fates[h].vanish)
            .collect::<Vec<_>>()
    );
    let round = &report.rounds[0];

    // Who was aggregated: everyone that sent a masked input.
    let mut aggregated: Vec<usize> = round
        .aggregated
        .iter()
        .map(|name| {
            name.strip_prefix("holder-")
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("unexpected holder name {name}"))
        })
        .collect();
    aggregated.sort_unstable();
    let expected: Vec<usize> = (0..N)
        .filter(|&h| {
            !matches!(
                fates[h].vanish,
                Some(SecPhase::Keys | SecPhase::Shares | SecPhase::Masked)
            )
        })
        .collect();
    assert_eq!(aggregated, expected);
    assert_eq!(aggregated.len(), N - 24);
    assert_eq!(round.record.dropped.len(), 40, "{:?}", round.record.dropped);
    // Every phase closed, and every phase lost its holders without waiting for a deadline.
    let phases: Vec<&str> = round.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(
        phases,
        [
            "advertise keys",
            "share keys",
            "masked input",
            "consistency check",
            "unmask"
        ]
    );
    assert!(round.record.seconds < 60.0, "{}", round.record.seconds);

    // The model moved by exactly the mean of the survivors' clipped updates.
    let updates = updates.lock().expect("lock");
    let clipped = |h: &usize| {
        let mut d = updates
            .get(h)
            .unwrap_or_else(|| panic!("holder {h} aggregated without training"))
            .clone();
        clip_l2(&mut d, 0.5);
        d
    };
    let mean_of = |who: &[usize]| {
        let mut m = vec![0f64; initial.len()];
        for h in who {
            for (a, v) in m.iter_mut().zip(clipped(h)) {
                *a += f64::from(v) / who.len() as f64;
            }
        }
        m
    };
    let want = mean_of(&aggregated);
    let moved: Vec<f64> = report
        .model
        .iter()
        .zip(&initial)
        .map(|(w, w0)| f64::from(*w) - f64::from(*w0))
        .collect();
    let quantum = 2f64.powi(-16);
    for (j, (m, w)) in moved.iter().zip(&want).enumerate() {
        assert!(
            (m - w).abs() <= quantum + 1e-6,
            "coordinate {j}: moved {m}, mean of the survivors' updates {w}"
        );
    }
    // The check can fail: the mean over every holder that trained is another vector.
    let all: Vec<usize> = updates.keys().copied().collect();
    let everyone = mean_of(&all);
    assert!(
        moved
            .iter()
            .zip(&everyone)
            .any(|(m, e)| (m - e).abs() > 10.0 * quantum),
        "the survivors' mean should differ from everyone's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_holders_are_refused_stragglers_wait_and_vanished_holders_come_back() {
    let data = DataArgs::default();
    let (prepared, _) = data.load().expect("the fraud table");
    let n = 12;
    let train = TrainArgs {
        hidden: Some("none".into()),
        rounds: Some(3),
        steps: Some(1),
        batch: Some(8),
        round_timeout: Some(60),
        join_timeout: Some(60),
        ..TrainArgs::default()
    };
    let job = train
        .job("simulate-faults", prepared.train.n_features, n, n / 2)
        .expect("job");
    let holders = partition(&prepared.train, n, &Partition::Iid, 7).expect("partition");
    // One corrupt holder, three stragglers (mean 0.3 s), one holder vanishing before its
    // masked input each round and coming back at once.
    let spec = FaultSpec {
        drop: vec![(SecPhase::Masked, 1.0 / 12.0)],
        stragglers: Some((0.25, Duration::from_millis(300))),
        rejoin_after: Some(Duration::ZERO),
        corrupt: 1.0 / 12.0,
        seed: 5,
    };
    let plan = Arc::new(FaultPlan::new(spec, n));
    let corrupt: Vec<usize> = (0..n).filter(|&h| plan.is_corrupt(h)).collect();
    assert_eq!(corrupt.len(), 1);
    let setup = Setup {
        holders,
        trainer: Arc::new(|_| Ok(Box::new(NativeTrainer::new()) as Box<dyn Trainer>)),
        plan: Arc::clone(&plan),
        threads: 1,
    };
    let report = tokio::time::timeout(
        Duration::from_secs(240),
        simulate(job, &prepared.test, setup, false),
    )
    .await
    .expect("the simulation ends")
    .expect("the simulation runs");
    assert_eq!(report.error, None);
    assert_eq!(report.rounds_completed, 3, "{:?}", report.rounds);
    assert!(
        report.holders.failures.is_empty(),
        "{:?}",
        report.holders.failures
    );
    // Each vanished holder connected again (the last round's may find the job over).
    assert!(report.holders.rejoins >= 2, "{:?}", report.holders);
    let bad = format!("holder-{}", corrupt[0]);
    for round in &report.rounds {
        assert!(
            !round.aggregated.contains(&bad),
            "round {}",
            round.record.round
        );
        assert!(
            round
                .record
                .dropped
                .iter()
                .any(|(_, why)| why.starts_with(&bad) && why.contains("bad signature")),
            "round {}: {:?}",
            round.record.round,
            round.record.dropped
        );
        let vanished = plan
            .round(round.record.round)
            .iter()
            .position(|f| f.vanish.is_some());
        let vanished = format!("holder-{}", vanished.expect("one vanishes"));
        assert!(!round.aggregated.contains(&vanished));
    }
    // The stragglers held up the masked-input phase by their delay at least once.
    let longest = plan
        .round(1)
        .iter()
        .filter_map(|f| f.delay)
        .max()
        .expect("stragglers");
    let masked = report.rounds[0]
        .phases
        .iter()
        .find(|p| p.phase == "masked input")
        .expect("the phase");
    assert!(
        masked.seconds >= longest.as_secs_f64() * 0.9,
        "{} s < {longest:?}",
        masked.seconds
    );
}

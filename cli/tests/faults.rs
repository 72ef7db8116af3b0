//! Network faults, end to end over real QUIC: SecAgg+ jobs (no proofs) whose holders reach
//! the coordinator through a faulty network.
//!
//! 1. 5 % loss each way with 100 ± 50 ms delay (which reorders): a 10-round job completes,
//!    every round with every holder, and each round's step is exactly the mean of the
//!    holders' updates.
//! 2. Seven holders, two partitioned mid-round (after their keys and shares, before their
//!    masked input): the round completes with the other five, the two partitioned holders'
//!    masks recovered, and once the partition heals the two take part again in the next
//!    round, on the connections they opened at the start.
//! 3. The coordinator partitioned from every holder for 20 s mid-round: with phases that
//!    time out after 30 s the round waits it out and every round completes with every
//!    holder. With phases that time out within the partition, the rounds in flight fail and
//!    the job goes on once the network is back (the holders' messages of the failed rounds,
//!    delivered late, are ignored, not held against them).
//!
//! Each runs twice where it can: through the userspace fault proxy on loopback
//! (`common/faultnet.rs`, always), and with `netem` between network namespaces
//! (`common/netns.rs`), which is skipped, saying why, where the machine has no network
//! namespaces or its kernel no `sch_netem`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_cli::federate::{start_coordinator, LocalCoordinator};
use cairn_cli::options::TrainArgs;
use cairn_coordinator::{JobSummary, Progress, RoundRecord};
use cairn_datasets::{partition, synthetic, LoadOptions, Partition};
use cairn_participant::trainer::{LocalUpdate, NativeTrainer, TrainError, TrainInput, Trainer};
use cairn_participant::{run, ParticipantError, ParticipantSummary};
use cairn_protocol::model::clip_l2;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

mod common;
#[path = "common/faultnet.rs"]
mod faultnet;
#[path = "common/netns.rs"]
mod netns;

use common::Proc;
use faultnet::{FaultNet, Faults, Stats};
use netns::Topology;

/// One local training: the holder, the global model it started from, and its update.
#[derive(Clone, Debug)]
struct Training {
    holder: usize,
    global: Vec<f32>,
    delta: Vec<f32>,
}

type Ledger = Arc<Mutex<Vec<Training>>>;

/// Runs before a holder's n-th training (n from 1), on the training thread.
type Hook = Arc<dyn Fn(usize, u32) + Send + Sync>;

/// The native trainer, recording every update in the ledger (and running the scenario's
/// hook first).
struct Recording {
    holder: usize,
    trained: u32,
    ledger: Ledger,
    hook: Option<Hook>,
}

impl Trainer for Recording {
    fn train(&mut self, input: &TrainInput<'_>) -> Result<LocalUpdate, TrainError> {
        self.trained += 1;
        if let Some(hook) = &self.hook {
            hook(self.holder, self.trained);
        }
        let update = NativeTrainer::new().train(input)?;
        self.ledger.lock().expect("ledger").push(Training {
            holder: self.holder,
            global: input.global.to_vec(),
            delta: update.delta.clone(),
        });
        Ok(update)
    }

    fn device(&self) -> String {
        "native-cpu (recorded)".into()
    }
}

/// A job's shape and its network.
struct Scenario {
    holders: usize,
    min: usize,
    rounds: u32,
    /// The share of holders that may drop out of a round (SecAgg+'s δ).
    dropout: f64,
    /// Each secure-aggregation phase's deadline.
    round_timeout: Duration,
    faults: Faults,
}

impl Scenario {
    fn train_args(&self) -> TrainArgs {
        TrainArgs {
            rounds: Some(self.rounds),
            hidden: Some("none".into()),
            steps: Some(2),
            batch: Some(8),
            aggregation: Some("secure".into()),
            dropout: Some(self.dropout),
            join_timeout: Some(60),
            seed: Some(3),
            ..TrainArgs::default()
        }
    }
}

/// A job under way: the coordinator, the proxy, the holders' tasks.
struct Running {
    coordinator: LocalCoordinator,
    net: Arc<FaultNet>,
    progress: mpsc::UnboundedReceiver<Progress>,
    seen: Vec<Progress>,
    holders: Vec<JoinHandle<Held>>,
    ledger: Ledger,
    initial: Vec<f32>,
    clip: f32,
    started: Instant,
}

/// How a holder's run ended, and how many connection attempts it made.
type Held = (Result<ParticipantSummary, ParticipantError>, u32);

/// Starts `s`'s job with the holders behind the fault proxy; `hook` (given the proxy) runs
/// before each training.
async fn start(s: &Scenario, hook: impl FnOnce(Arc<FaultNet>) -> Option<Hook>) -> Running {
    let n = s.holders;
    let data = synthetic(60 * n, 4, 11, &LoadOptions::default());
    let rows = partition(&data.train, n, &Partition::Iid, 2).expect("partition");
    let mut job = s
        .train_args()
        .job("faults", data.train.n_features, n, s.min)
        .expect("job");
    job.round_timeout = s.round_timeout;
    let clip = job.hyper.clip_norm;
    let initial = job.model.init_params(5);
    let (tx, progress) = mpsc::unbounded_channel();
    let coordinator =
        start_coordinator(job, initial.clone(), &data.test, tx, None).expect("coordinator");
    let net = Arc::new(
        FaultNet::start(coordinator.addr, n, s.faults, 17)
            .await
            .expect("fault proxy"),
    );
    let hook = hook(Arc::clone(&net));
    let ledger = Ledger::default();
    let mut holders = Vec::new();
    for (i, rows) in rows.into_iter().enumerate() {
        let mut cfg = coordinator.participant(format!("holder-{i}"), None);
        cfg.coordinator = net.addr(i);
        let (ledger, hook) = (Arc::clone(&ledger), hook.clone());
        let rows = Arc::new(rows);
        holders.push(tokio::spawn(async move {
            // As `cairn participant` does: a holder that could not reach the coordinator
            // (a lost handshake under loss and delay) tries again.
            let mut tries = 0;
            loop {
                tries += 1;
                let trainer = Box::new(Recording {
                    holder: i,
                    trained: 0,
                    ledger: Arc::clone(&ledger),
                    hook: hook.clone(),
                });
                let out = run(&cfg, rows.clone(), trainer, mpsc::unbounded_channel().0).await;
                match out {
                    Err(ParticipantError::Unreachable(_)) if tries < 10 => continue,
                    out => break (out, tries),
                }
            }
        }));
    }
    Running {
        coordinator,
        net,
        progress,
        seen: Vec::new(),
        holders,
        ledger,
        initial,
        clip,
        started: Instant::now(),
    }
}

/// The end of a job.
struct Outcome {
    summary: JobSummary,
    holders: Vec<Held>,
    stats: Stats,
    seconds: f64,
    ledger: Vec<Training>,
    initial: Vec<f32>,
    clip: f32,
}

impl Running {
    /// Waits (at most `limit`) for a progress report satisfying `pred`.
    async fn wait_for(&mut self, limit: Duration, pred: impl Fn(&Progress) -> bool) -> Progress {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.progress.recv())
                .await
                .unwrap_or_else(|_| panic!("no such progress within {limit:?}: {:?}", self.seen))
                .expect("the coordinator ended first");
            self.seen.push(next.clone());
            if pred(&next) {
                return next;
            }
        }
    }

    /// Waits for the job and every holder to end (at most `limit`).
    async fn finish(self, limit: Duration) -> Outcome {
        let summary = tokio::time::timeout(limit, self.coordinator.finish())
            .await
            .expect("the job ends in time")
            .expect("the coordinator runs the job");
        let mut holders = Vec::new();
        for (i, t) in self.holders.into_iter().enumerate() {
            let held = tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .unwrap_or_else(|_| panic!("holder {i} did not end"))
                .expect("holder task");
            holders.push(held);
        }
        let ledger = self.ledger.lock().expect("ledger").clone();
        Outcome {
            summary,
            holders,
            stats: self.net.stats(),
            seconds: self.started.elapsed().as_secs_f64(),
            ledger,
            initial: self.initial,
            clip: self.clip,
        }
    }
}

/// The holder a drop reason names (`holder-5: timed out`).
fn dropped_holder(reason: &str) -> usize {
    reason
        .strip_prefix("holder-")
        .and_then(|r| r.split(':').next())
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("a drop reason without its holder: {reason}"))
}

/// The holders a round dropped.
fn dropped(r: &RoundRecord) -> Vec<usize> {
    let mut d: Vec<usize> = r.dropped.iter().map(|(_, w)| dropped_holder(w)).collect();
    d.sort_unstable();
    d
}

const TOLERANCE: f32 = 1e-4;

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `g` plus the mean of the clipped updates of `from` trained on `g`.
fn step(g: &[f32], from: &[&Training], clip: f32) -> Vec<f32> {
    let mut sum = vec![0f64; g.len()];
    for t in from {
        let mut d = t.delta.clone();
        clip_l2(&mut d, clip);
        sum.iter_mut()
            .zip(&d)
            .for_each(|(s, v)| *s += f64::from(*v));
    }
    g.iter()
        .zip(&sum)
        .map(|(w, s)| w + (s / from.len() as f64) as f32)
        .collect()
}

/// Every round completed; checks that each round's step is the mean of exactly the
/// updates of its contributors (the holders that trained on its model and were not
/// dropped), to the quantisation's precision, ending at the job's final model: nothing
/// lost, nothing counted twice, the dropped holders' inputs left out and their masks
/// recovered. Returns, per round, the holders that contributed.
fn check_model_chain(o: &Outcome) -> Vec<Vec<usize>> {
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    let mut g = o.initial.clone();
    let mut contributed = Vec::new();
    let rounds = &o.summary.rounds;
    for (k, r) in rounds.iter().enumerate() {
        assert_eq!(r.failure, None, "round {}", r.round);
        let gone = dropped(r);
        let trained: Vec<&Training> = o.ledger.iter().filter(|t| same(&t.global, &g)).collect();
        let from: Vec<&Training> = trained
            .iter()
            .copied()
            .filter(|t| !gone.contains(&t.holder))
            .collect();
        let mut who: Vec<usize> = from.iter().map(|t| t.holder).collect();
        who.sort_unstable();
        who.dedup();
        assert_eq!(
            who.len(),
            from.len(),
            "round {}: one training each",
            r.round
        );
        assert_eq!(
            who.len(),
            r.contributors,
            "round {}: contributors {who:?}",
            r.round
        );
        let expected = step(&g, &from, o.clip);
        if gone.iter().any(|h| trained.iter().any(|t| t.holder == *h)) {
            // The dropped holders trained too: counting them would give another model.
            let with_all = step(&g, &trained, o.clip);
            assert!(
                max_diff(&with_all, &expected) > 10.0 * TOLERANCE,
                "round {}: the check cannot tell the dropped inputs apart",
                r.round
            );
        }
        let next = if k + 1 == rounds.len() {
            o.summary.model.clone()
        } else {
            o.ledger
                .iter()
                .map(|t| &t.global)
                .filter(|n| !same(n, &g))
                .min_by(|a, b| max_diff(a, &expected).total_cmp(&max_diff(b, &expected)))
                .unwrap_or_else(|| panic!("round {}: nobody trained after it", r.round))
                .clone()
        };
        let diff = max_diff(&next, &expected);
        assert!(
            diff <= TOLERANCE,
            "round {}: the new model is {diff} away from the mean of {who:?}'s updates",
            r.round
        );
        contributed.push(who);
        g = next;
    }
    contributed
}

fn print_rounds(what: &str, o: &Outcome) {
    println!(
        "{what}: {} of {} rounds completed in {:.1} s; proxy {:?}",
        o.summary.rounds_completed,
        o.summary.rounds.len(),
        o.seconds,
        o.stats
    );
    for r in &o.summary.rounds {
        println!(
            "  round {:>2}: {} selected, {} contributed, dropped {:?}, {:.2} s{}",
            r.round,
            r.selected,
            r.contributors,
            r.dropped,
            r.seconds,
            r.failure
                .as_ref()
                .map(|f| format!(", failed: {f}"))
                .unwrap_or_default()
        );
    }
    for (i, (out, tries)) in o.holders.iter().enumerate() {
        println!("  holder-{i}: {tries} connection attempt(s), {out:?}");
    }
}

/// Every holder ran the whole job (on the connection it opened at the start).
fn assert_holders_completed(o: &Outcome) {
    for (i, (out, _)) in o.holders.iter().enumerate() {
        match out {
            Ok(s) => assert!(s.completed, "holder {i}: {s:?}"),
            Err(e) => panic!("holder {i} ended with an error: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_delay_and_reordering_a_ten_round_secure_job_completes() {
    let s = Scenario {
        holders: 5,
        min: 4,
        rounds: 10,
        dropout: 0.2,
        round_timeout: Duration::from_secs(15),
        faults: Faults {
            loss: 0.05,
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
        },
    };
    let job = start(&s, |_| None).await;
    let o = job.finish(Duration::from_secs(150)).await;
    print_rounds("5 % loss, 100 ± 50 ms (proxy)", &o);
    assert_eq!(o.summary.error, None);
    assert_eq!(o.summary.rounds_completed, s.rounds);
    for r in &o.summary.rounds {
        assert_eq!(r.contributors, s.holders, "round {}: {r:?}", r.round);
        assert!(r.dropped.is_empty(), "round {}: {r:?}", r.round);
    }
    let contributed = check_model_chain(&o);
    assert!(contributed.iter().all(|c| c.len() == s.holders));
    assert_holders_completed(&o);
    let st = o.stats;
    assert!(st.lost > 0 && st.delayed > 0 && st.reordered > 0, "{st:?}");
    // About 5 % of what arrived was lost.
    let rate = st.lost as f64 / st.received as f64;
    assert!((0.02..0.09).contains(&rate), "loss rate {rate}: {st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_seven_holders_partitioned_mid_round_are_dropped_then_take_part_again() {
    const HIT: u32 = 3;
    let cut = [5usize, 6];
    let s = Scenario {
        holders: 7,
        min: 5,
        // Rounds to spare: the two may come back a round or two late.
        rounds: 8,
        // Two of seven may drop.
        dropout: 0.3,
        round_timeout: Duration::from_secs(3),
        faults: Faults::default(),
    };
    let cut_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let at = Arc::clone(&cut_at);
    let mut job = start(&s, move |net| {
        Some(Arc::new(move |holder: usize, n: u32| {
            // Round HIT's spec has arrived and the holder's keys are out; the keys phase
            // closes and the shares go out while it "trains": then its link is cut, so
            // its masked input never arrives.
            if n == HIT && cut.contains(&holder) {
                std::thread::sleep(Duration::from_millis(1000));
                net.partition(&[holder]);
                at.lock().expect("cut_at").get_or_insert_with(Instant::now);
            }
        }) as Hook)
    })
    .await;
    // The partition lasts until the round it hit is over.
    job.wait_for(
        Duration::from_secs(60),
        |p| matches!(p, Progress::Round(r) if r.round == HIT),
    )
    .await;
    let net = Arc::clone(&job.net);
    net.heal(&cut);
    let healed = Instant::now();
    let o = job.finish(Duration::from_secs(120)).await;
    let lasted = healed
        - cut_at
            .lock()
            .expect("cut_at")
            .expect("the holders were cut");
    print_rounds(
        &format!(
            "holders {cut:?} partitioned in round {HIT} for {:.1} s (proxy)",
            lasted.as_secs_f64()
        ),
        &o,
    );
    assert_eq!(o.summary.error, None);
    assert_eq!(o.summary.rounds_completed, s.rounds);
    let rounds = &o.summary.rounds;
    let hit = &rounds[HIT as usize - 1];
    assert_eq!(hit.selected, 7, "{hit:?}");
    assert_eq!(hit.contributors, 5, "{hit:?}");
    assert_eq!(dropped(hit), cut.to_vec(), "{hit:?}");
    assert!(
        hit.dropped.iter().all(|(_, w)| w.ends_with("timed out")),
        "{hit:?}"
    );
    let contributed = check_model_chain(&o);
    assert!(contributed[..HIT as usize - 1].iter().all(|c| c.len() == 7));
    // Back in the next round, on the connections they opened at the start: their masked
    // input of round HIT, held up by the partition, reaches the coordinator when the link
    // heals, in round HIT + 1, and is ignored as late (it used to drop them from that round
    // as invalid, "update for round 3, this is round 4").
    assert!(
        contributed[HIT as usize..].iter().all(|c| c.len() == 7),
        "{rounds:?}"
    );
    assert_holders_completed(&o);
    assert!(o.stats.partitioned > 0, "{:?}", o.stats);
}

/// Partitions the coordinator from every holder for 20 s from the start of round 3's
/// training, in a 6-round job of 5 holders whose phases time out after `round_timeout`.
async fn coordinator_partitioned(round_timeout: Duration) -> Outcome {
    const HIT: u32 = 3;
    const PARTITION: Duration = Duration::from_secs(20);
    let s = Scenario {
        holders: 5,
        min: 4,
        rounds: 6,
        dropout: 0.2,
        round_timeout,
        faults: Faults::default(),
    };
    let cut_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let at = Arc::clone(&cut_at);
    let mut job = start(&s, move |net| {
        Some(Arc::new(move |holder: usize, n: u32| {
            // Mid-round: round HIT's spec reached holder 0, its masked input is not out.
            if n == HIT && holder == 0 {
                net.partition(&net.all());
                at.lock().expect("cut_at").get_or_insert_with(Instant::now);
            }
        }) as Hook)
    })
    .await;
    job.wait_for(
        Duration::from_secs(60),
        |p| matches!(p, Progress::RoundStarted { round, .. } if *round == HIT),
    )
    .await;
    let cut = loop {
        if let Some(t) = *cut_at.lock().expect("cut_at") {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep_until((cut + PARTITION).into()).await;
    let net = Arc::clone(&job.net);
    net.heal(&net.all());
    let o = job.finish(Duration::from_secs(150)).await;
    print_rounds(
        &format!("the coordinator partitioned for 20 s, phases timing out after {round_timeout:?} (proxy)"),
        &o,
    );
    assert!(o.stats.partitioned > 0, "{:?}", o.stats);
    o
}

/// Round 3 waits the partition out (its phases time out after 30 s): once the network is
/// back QUIC delivers what was held up, on the connections opened at the start, and every
/// round completes with every holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_partitioned_for_20_s_the_job_continues() {
    let o = coordinator_partitioned(Duration::from_secs(30)).await;
    assert_eq!(o.summary.error, None);
    assert_eq!(o.summary.rounds_completed, 6);
    for r in &o.summary.rounds {
        assert_eq!(r.contributors, 5, "{r:?}");
    }
    let hit = &o.summary.rounds[2];
    assert!(
        hit.seconds >= 19.0,
        "round 3 did not span the partition: {hit:?}"
    );
    let contributed = check_model_chain(&o);
    assert!(contributed.iter().all(|c| c.len() == 5));
    assert_holders_completed(&o);
}

/// Phases that time out well within the partition (8 s): round 3 fails while the
/// coordinator is cut off, and so does round 4 when round 3 failed at its first phase
/// (whether round 3's keys got out before the cut is a race: then it fails a phase later,
/// and round 4 outlives the partition); the job goes on once the network is back. The
/// holders' messages of the failed rounds, held up by the partition and delivered by QUIC
/// when it heals, arrive in the round then under way and are ignored as late; before, the
/// coordinator dropped their senders from it as invalid ("update for round 3, this is
/// round 5"), so that round failed too and the job ended after three failed rounds in a
/// row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_partitioned_longer_than_two_round_timeouts_the_job_continues() {
    let o = coordinator_partitioned(Duration::from_secs(8)).await;
    assert_eq!(o.summary.error, None);
    let rounds = &o.summary.rounds;
    let failed: Vec<u32> = rounds
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| r.round)
        .collect();
    assert!(failed == [3] || failed == [3, 4], "{rounds:?}");
    assert_eq!(rounds.len(), 6, "{rounds:?}");
    for r in rounds.iter().filter(|r| r.failure.is_none()) {
        assert_eq!(r.contributors, 5, "{r:?}");
    }
    assert_holders_completed(&o);
}

// The netem variants: the same scenarios with `cairn coordinator` and `cairn participant`
// processes in network namespaces, the faults made by the kernel's netem.

/// A job of processes in namespaces. (Fields drop in order: the processes are killed
/// before their namespaces are deleted.)
struct NetemJob {
    holders: Vec<Proc>,
    coordinator: Proc,
    topo: Topology,
    out: tempfile::TempDir,
}

/// Says, past the test harness's capture, why a variant did not run.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "netem variant skipped: {why}");
}

impl NetemJob {
    /// Starts a coordinator with `flags` and `n` holders, every link shaped by `netem`;
    /// `None` (after saying why) where namespaces or netem are unavailable.
    fn start(n: usize, flags: &[&str], netem: &[&str]) -> Option<Self> {
        if let Err(why) = netns::probe() {
            skip(&why);
            return None;
        }
        let topo = Topology::new(n, netem).expect("namespaces and links");
        let out = tempfile::tempdir().expect("tempdir");
        let bin = env!("CARGO_BIN_EXE_cairn");
        let mut cmd = topo.in_coordinator(bin);
        cmd.args(["coordinator", "--listen", "0.0.0.0:0", "--synthetic"])
            .args(["--hidden", "none", "--join-timeout", "60"])
            .args(["--participants", &n.to_string()])
            .args(flags)
            .arg("--out")
            .arg(out.path());
        let mut coordinator = Proc::spawn(cmd);
        let (addr, fp) = coordinator.address(Duration::from_secs(60));
        let port: u16 = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("a port in {addr}"));
        let holders = (0..n)
            .map(|i| {
                let mut cmd = topo.in_holder(i, bin);
                cmd.args([
                    "participant",
                    "--coordinator",
                    &topo.coordinator_addr(i, port),
                ])
                .args(["--fingerprint", &fp, "--device", "cpu", "--synthetic"])
                .args(["--holder", &i.to_string(), "--of", &n.to_string()]);
                Proc::spawn(cmd)
            })
            .collect();
        Some(Self {
            holders,
            coordinator,
            topo,
            out,
        })
    }

    /// Waits for the coordinator's line of round `round`.
    fn wait_round(&mut self, round: u32) {
        let r = round.to_string();
        self.coordinator.wait_for(Duration::from_secs(120), |l| {
            let mut w = l.split_whitespace();
            w.next() == Some(r.as_str()) && w.next().is_some_and(|p| p.contains('/'))
        });
    }

    /// Waits for every process to succeed (each within `limit`); the job's rounds.
    fn finish(&mut self, limit: Duration) -> Vec<serde_json::Value> {
        for (i, h) in self.holders.iter_mut().enumerate() {
            let status = h.wait(limit);
            assert!(status.success(), "holder {i}: {:?}", h.seen);
        }
        let status = self.coordinator.wait(limit);
        assert!(status.success(), "{:?}", self.coordinator.seen);
        let (sent, dropped) = self.topo.stats();
        println!("netem qdiscs: {sent} packets sent, {dropped} dropped");
        for l in &self.coordinator.seen {
            println!("  {l}");
        }
        let metrics = std::fs::read(self.out.path().join("metrics.json")).expect("metrics");
        let rounds: serde_json::Value = serde_json::from_slice(&metrics).expect("json");
        rounds.as_array().expect("rounds").clone()
    }
}

/// The holders a round of `metrics.json` dropped, and why.
fn dropped_json(r: &serde_json::Value) -> Vec<(usize, String)> {
    let mut d: Vec<(usize, String)> = r["dropped"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e[1].as_str())
                .map(|w| (dropped_holder(w), w.to_string()))
                .collect()
        })
        .unwrap_or_default();
    d.sort();
    d
}

#[test]
fn netem_loss_delay_and_reordering_a_ten_round_secure_job_completes() {
    let netem = ["delay", "100ms", "50ms", "loss", "5%"];
    let flags = ["--min", "4", "--rounds", "10", "--round-timeout", "15"];
    let Some(mut job) = NetemJob::start(5, &flags, &netem) else {
        return;
    };
    let rounds = job.finish(Duration::from_secs(240));
    assert_eq!(rounds.len(), 10, "{rounds:?}");
    for r in &rounds {
        assert!(r["failure"].is_null(), "{r}");
        assert_eq!(r["contributors"], 5, "{r}");
    }
    let (_, dropped) = job.topo.stats();
    assert!(dropped > 0, "netem dropped nothing");
}

#[test]
fn netem_two_of_seven_holders_partitioned_mid_round_are_dropped_then_take_part_again() {
    let flags = [
        "--min",
        "5",
        "--rounds",
        "8",
        "--round-timeout",
        "3",
        "--dropout",
        "0.3",
    ];
    let Some(mut job) = NetemJob::start(7, &flags, &[]) else {
        return;
    };
    let cut = [5usize, 6];
    // Holder 5 has handed in its masked input of round 3 (it may or may not be out).
    job.holders[5].wait_for(Duration::from_secs(120), |l| l.starts_with("round   3:"));
    job.topo.partition(&cut).expect("partition");
    job.wait_round(3);
    job.topo.heal(&cut).expect("heal");
    let rounds = job.finish(Duration::from_secs(120));
    assert_eq!(rounds.len(), 8, "{rounds:?}");
    assert!(rounds.iter().all(|r| r["failure"].is_null()), "{rounds:?}");
    let hit = &rounds[2];
    let gone = dropped_json(hit);
    for c in cut {
        assert!(
            gone.iter()
                .any(|(h, w)| *h == c && w.ends_with("timed out")),
            "{hit}"
        );
    }
    assert!(hit["contributors"].as_u64() >= Some(5), "{hit}");
    // As with the proxy: later rounds drop the two only for stale messages.
    for r in &rounds[3..] {
        let round = r["round"].as_u64().expect("round");
        let stale = format!("update for round {}, this is round {round}", round - 1);
        for (h, why) in dropped_json(r) {
            assert!(cut.contains(&h) && why.contains(&stale), "{r}");
        }
    }
    assert_eq!(rounds[7]["contributors"], 7, "{rounds:?}");
}

#[test]
fn netem_the_coordinator_partitioned_for_20_s_the_job_continues() {
    // As with the proxy, the round in flight waits the partition out (30 s phases); the
    // links' 50 ms each way keep round 3 under way when the partition begins.
    let flags = ["--min", "4", "--rounds", "6", "--round-timeout", "30"];
    let Some(mut job) = NetemJob::start(5, &flags, &["delay", "50ms"]) else {
        return;
    };
    // Round 3 starts as round 2 ends.
    job.wait_round(2);
    let all = job.topo.all();
    job.topo.partition(&all).expect("partition");
    std::thread::sleep(Duration::from_secs(20));
    job.topo.heal(&all).expect("heal");
    let rounds = job.finish(Duration::from_secs(150));
    assert_eq!(rounds.len(), 6, "{rounds:?}");
    for r in &rounds {
        assert!(r["failure"].is_null(), "{r}");
        assert_eq!(r["contributors"], 5, "{r}");
    }
    assert!(
        rounds.iter().any(|r| r["seconds"].as_f64() >= Some(19.0)),
        "no round spanned the partition: {rounds:?}"
    );
}

//! What `cairn simulate` measures and prints: per round its record and the coordinator's
//! and process's CPU, per phase the coordinator's cost and the bytes each holder sent and
//! received, the process's peak memory; `metrics.json` is [`SimulationReport`].

use std::collections::BTreeMap;
use std::io::IsTerminal;

use cairn_coordinator::cpu::{process_cpu_seconds, threads_cpu_seconds};
use cairn_coordinator::{JobSummary, PhaseRecord, Progress, RoundRecord};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::mpsc;

use super::faults::FaultPlan;
use super::COORDINATOR_THREADS;
use crate::ui::round_line;

/// One round of a simulation.
#[derive(Clone, Debug, Serialize)]
pub struct SimRound {
    /// The coordinator's record of it.
    #[serde(flatten)]
    pub record: RoundRecord,
    /// Its phases, in order.
    pub phases: Vec<PhaseRecord>,
    /// CPU seconds of the whole process (coordinator and holders) during the round.
    pub process_cpu_seconds: Option<f64>,
    /// CPU seconds of the coordinator's threads during the round.
    pub coordinator_cpu_seconds: Option<f64>,
    /// Frame bytes the coordinator received during the round, per selected holder.
    pub bytes_in_per_holder: f64,
    /// Frame bytes the coordinator sent during the round, per selected holder.
    pub bytes_out_per_holder: f64,
    /// The holders aggregated, by name.
    pub aggregated: Vec<String>,
}

/// What the progress task gathered.
#[derive(Debug, Default)]
pub struct Collected {
    rounds: Vec<SimRound>,
    joined: usize,
    refused: Vec<String>,
    /// Seconds from the start until the first round began.
    enrolment_seconds: Option<f64>,
}

/// The holders' side of the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HolderStats {
    /// Connection attempts repeated because the coordinator did not answer in time.
    pub connect_retries: u64,
    /// Times a vanished holder connected again.
    pub rejoins: u64,
    /// Holders that ended with an error, with it.
    pub failures: Vec<String>,
}

/// `metrics.json` of a simulation.
#[derive(Debug, Serialize)]
pub struct SimulationReport {
    /// Holders simulated.
    pub participants: usize,
    /// Holders that joined (connections admitted, rejoins included).
    pub joined: usize,
    /// Seconds until the first round began (connections, enrolment and the commit-reveal).
    pub enrolment_seconds: Option<f64>,
    /// The faults injected.
    pub faults: String,
    /// Corrupt holders.
    pub corrupt_holders: usize,
    /// The rounds.
    pub rounds: Vec<SimRound>,
    /// Refused handshakes or holders (first 20).
    pub refused: Vec<String>,
    /// The holders' side.
    pub holders: HolderStats,
    /// Highest resident memory of the whole process, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Seconds of the whole job.
    pub seconds: f64,
    /// Rounds completed.
    pub rounds_completed: u32,
    /// Why the job ended early, if it did.
    pub error: Option<String>,
    /// The final model's parameters (the test metrics are in the last round's record).
    #[serde(skip)]
    pub model: Vec<f32>,
}

impl SimulationReport {
    /// Puts the pieces together.
    pub fn new(
        c: Collected,
        summary: JobSummary,
        seconds: f64,
        holders: HolderStats,
        plan: &FaultPlan,
    ) -> Self {
        Self {
            participants: plan.round(0).len(),
            joined: c.joined,
            enrolment_seconds: c.enrolment_seconds,
            faults: plan.spec().describe(),
            corrupt_holders: plan.corrupt_count(),
            rounds: c.rounds,
            refused: c.refused,
            holders,
            peak_rss_bytes: cairn_coordinator::rss::sample().ok().map(|m| m.peak_bytes),
            seconds,
            rounds_completed: summary.rounds_completed,
            error: summary.error,
            model: summary.model,
        }
    }

    /// The closing lines.
    pub fn print_summary(&self) {
        println!(
            "\n{} of {} rounds in {:.1} s; enrolment of {} holders {}; peak memory (whole process) {}",
            self.rounds_completed,
            self.rounds.len(),
            self.seconds,
            self.participants,
            self.enrolment_seconds
                .map_or("did not finish".into(), |s| format!("took {s:.1} s")),
            self.peak_rss_bytes
                .map_or("unknown".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0)),
        );
        println!(
            "holders: {} connection retries, {} rejoins, {} ended with an error",
            self.holders.connect_retries,
            self.holders.rejoins,
            self.holders.failures.len()
        );
        for f in self.holders.failures.iter().take(5) {
            println!("  {f}");
        }
        if let Some(e) = &self.error {
            println!("the job stopped early: {e}");
        }
    }
}

/// Bytes, short.
fn bytes(b: f64) -> String {
    if b >= 1048576.0 {
        format!("{:.1} MiB", b / 1048576.0)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// The per-phase table of one round.
pub fn phase_table(round: &SimRound) -> Vec<String> {
    let selected = round.record.selected.max(1) as f64;
    let mut lines = vec![format!(
        "        {:<18} {:>8} {:>8} {:>9} {:>8} {:>8} {:>12} {:>12}",
        "phase", "seconds", "busy", "coord-cpu", "answered", "dropped", "in/holder", "out/holder"
    )];
    for p in &round.phases {
        lines.push(format!(
            "        {:<18} {:>8.2} {:>8.2} {:>9} {:>8} {:>8} {:>12} {:>12}",
            p.phase,
            p.seconds,
            p.busy_seconds,
            p.cpu_seconds.map_or("-".into(), |c| format!("{c:.2}")),
            p.answered,
            p.dropped,
            bytes(p.bytes_in as f64 / selected),
            bytes(p.bytes_out as f64 / selected),
        ));
    }
    lines.push(format!(
        "        round: process CPU {}, coordinator CPU {}, per holder {} in / {} out",
        round
            .process_cpu_seconds
            .map_or("-".into(), |c| format!("{c:.1} s")),
        round
            .coordinator_cpu_seconds
            .map_or("-".into(), |c| format!("{c:.1} s")),
        bytes(round.bytes_in_per_holder),
        bytes(round.bytes_out_per_holder),
    ));
    lines
}

/// Why holders were dropped, counted (the reason after the holder's name).
fn drop_reasons(r: &RoundRecord) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, why) in &r.dropped {
        let reason = why.split_once(": ").map_or(why.as_str(), |(_, r)| r);
        let short: String = reason.chars().take(60).collect();
        *counts.entry(short).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(r, c)| format!("{c} × {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Gathers progress until the coordinator's sender closes, printing as it goes.
pub async fn collect(
    mut rx: mpsc::UnboundedReceiver<Progress>,
    n: usize,
    rounds: u32,
    print: bool,
) -> Collected {
    let t0 = std::time::Instant::now();
    let bar = if print && std::io::stderr().is_terminal() {
        ProgressBar::new(n as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("holders joined");
    let say = |line: String| match (print, bar.is_hidden()) {
        (false, _) => {}
        (true, true) => println!("{line}"),
        (true, false) => bar.println(line),
    };
    let mut c = Collected::default();
    let mut phases: Vec<PhaseRecord> = Vec::new();
    let mut aggregated: Vec<String> = Vec::new();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut at_start = (None, None);
    let mut header = false;
    while let Some(p) = rx.recv().await {
        match p {
            Progress::Joined {
                participant, name, ..
            } => {
                names.insert(participant, name);
                c.joined += 1;
                if c.enrolment_seconds.is_none() {
                    bar.set_position(c.joined.min(n) as u64);
                }
            }
            Progress::Refused {
                participant,
                reason,
            } => {
                if c.refused.len() < 20 {
                    c.refused.push(format!("id {participant}: {reason}"));
                }
            }
            Progress::Declined {
                participant,
                name,
                reason,
            } => {
                if c.refused.len() < 20 {
                    c.refused
                        .push(format!("{name} (id {participant}) cannot join: {reason}"));
                }
            }
            Progress::RoundStarted {
                round,
                participants,
            } => {
                if c.enrolment_seconds.is_none() {
                    c.enrolment_seconds = Some(t0.elapsed().as_secs_f64());
                    say(format!(
                        "{} holders joined in {:.1} s",
                        c.joined,
                        t0.elapsed().as_secs_f64()
                    ));
                    bar.set_length(u64::from(rounds));
                    bar.set_position(0);
                }
                if !header {
                    say(crate::ui::HEADER.to_string());
                    header = true;
                }
                bar.set_message(format!("round {round}: {participants} holders"));
                at_start = (
                    process_cpu_seconds().ok(),
                    threads_cpu_seconds(COORDINATOR_THREADS).ok(),
                );
                phases.clear();
            }
            Progress::Phase(ph) => {
                bar.set_message(format!(
                    "round {}: {} done ({} answered, {} dropped so far)",
                    ph.round, ph.phase, ph.answered, ph.dropped
                ));
                phases.push(ph);
            }
            Progress::Aggregated { participants, .. } => {
                aggregated = participants
                    .iter()
                    .map(|p| names.get(p).cloned().unwrap_or_else(|| format!("id {p}")))
                    .collect();
            }
            Progress::Round(r) => {
                let selected = r.selected.max(1) as f64;
                let (bin, bout) = phases
                    .iter()
                    .fold((0, 0), |(i, o), p| (i + p.bytes_in, o + p.bytes_out));
                let delta = |now: Option<f64>, then: Option<f64>| now.zip(then).map(|(a, b)| a - b);
                let round = SimRound {
                    process_cpu_seconds: delta(process_cpu_seconds().ok(), at_start.0),
                    coordinator_cpu_seconds: delta(
                        threads_cpu_seconds(COORDINATOR_THREADS).ok(),
                        at_start.1,
                    ),
                    bytes_in_per_holder: bin as f64 / selected,
                    bytes_out_per_holder: bout as f64 / selected,
                    phases: std::mem::take(&mut phases),
                    aggregated: std::mem::take(&mut aggregated),
                    record: r,
                };
                say(round_line(&round.record));
                if !round.record.dropped.is_empty() {
                    say(format!("        dropped: {}", drop_reasons(&round.record)));
                }
                for line in phase_table(&round) {
                    say(line);
                }
                bar.inc(1);
                c.rounds.push(round);
            }
            Progress::Listening { .. } | Progress::Trained { .. } => {}
        }
    }
    bar.finish_and_clear();
    c
}

//! Terminal rendering of a job's progress: a progress bar over the rounds and one line
//! per round (round, participants, loss, accuracy, AUC, seconds), with the proving and
//! verification times of a proven round on the line below.

use std::collections::BTreeMap;

use cairn_coordinator::{Progress, RoundRecord};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

/// The per-round table's header.
pub const HEADER: &str = "round  parts  dropped  train-loss  test-loss  accuracy    AUC   seconds";

/// One round as a table line.
pub fn round_line(r: &RoundRecord) -> String {
    match (&r.test, &r.failure) {
        (Some(m), _) => format!(
            "{:>5}  {:>2}/{:<2}  {:>7}  {:>10.4}  {:>9.4}  {:>8.4}  {:>6.4}  {:>7.2}",
            r.round,
            r.contributors,
            r.selected,
            r.dropped.len(),
            r.train_loss,
            m.loss,
            m.accuracy,
            m.auc,
            r.seconds
        ),
        (None, failure) => format!(
            "{:>5}  {:>2}/{:<2}  {:>7}  round failed: {}",
            r.round,
            r.contributors,
            r.selected,
            r.dropped.len(),
            failure.as_deref().unwrap_or("unknown")
        ),
    }
}

/// The times of a proven round: the holders' proving (median and max, from in-process
/// holders' reports, when there are any) and the coordinator's verification of each proof.
pub fn proof_line(r: &RoundRecord, prove_seconds: &[f64]) -> Option<String> {
    let verify = r.verify_seconds.as_deref()?;
    let mut line = String::from("        proofs:");
    if let Some((median, max)) = median_max(prove_seconds) {
        line += &format!(
            " proved by {} holders in {median:.2} s median ({max:.2} s max);",
            prove_seconds.len()
        );
    }
    match median_max(verify) {
        Some((median, max)) => {
            line += &format!(
                " {} verified in {:.2} ms median ({:.2} ms max)",
                verify.len(),
                1e3 * median,
                1e3 * max
            )
        }
        None => line += " none verified",
    }
    Some(line)
}

fn median_max(xs: &[f64]) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    Some((*v.get(v.len() / 2)?, *v.last()?))
}

/// Renders progress events until the sender side closes; returns nothing, prints as it goes.
/// With `quiet` only the per-round lines are printed (no bar), e.g. when not on a terminal.
pub async fn render(mut rx: mpsc::UnboundedReceiver<Progress>, rounds: u32, quiet: bool) {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::from(rounds))
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rounds {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut header_done = false;
    let mut proving: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    // A hidden bar prints nothing: without a terminal, lines go straight to stdout.
    let say = |line: String| {
        if quiet {
            println!("{line}")
        } else {
            bar.println(line)
        }
    };
    while let Some(p) = rx.recv().await {
        match p {
            Progress::Listening { addr, fingerprint } => {
                say(format!(
                    "coordinator on {addr} (certificate sha256 {fingerprint})"
                ));
            }
            Progress::Joined {
                participant,
                name,
                n_rows,
            } => {
                say(format!(
                    "  joined: {name} (id {participant}, {n_rows} rows)"
                ));
            }
            Progress::Refused {
                participant,
                reason,
            } => {
                say(format!("  refused: id {participant}: {reason}"));
            }
            Progress::Declined {
                participant,
                name,
                reason,
            } => {
                say(format!(
                    "  cannot join: {name} (id {participant}): {reason}"
                ));
            }
            Progress::RoundStarted {
                round,
                participants,
            } => {
                if !header_done {
                    say(HEADER.to_string());
                    header_done = true;
                }
                bar.set_message(format!(
                    "(round {round}: training on {participants} holders)"
                ));
            }
            Progress::Trained {
                round,
                prove_seconds: Some(s),
                ..
            } => proving.entry(round).or_default().push(s),
            Progress::Trained { .. } | Progress::Aggregated { .. } => {}
            Progress::Phase(ph) => bar.set_message(format!(
                "(round {}: {} done, {} answered, {} dropped so far)",
                ph.round, ph.phase, ph.answered, ph.dropped
            )),
            Progress::Round(r) => {
                say(round_line(&r));
                let proved = proving.remove(&r.round).unwrap_or_default();
                if let Some(line) = proof_line(&r, &proved) {
                    say(line);
                }
                for (p, why) in &r.dropped {
                    say(format!("        dropped {p}: {why}"));
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
}

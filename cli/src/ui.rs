//! Terminal rendering of a job's progress: a progress bar over the rounds and one line
//! per round (round, participants, loss, accuracy, AUC, PR-AUC, F1, seconds), with the proving and
//! verification times of a proven round on the line below.

use std::collections::BTreeMap;

use cairn_coordinator::{Progress, RoundRecord};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

/// The per-round table's header (accuracy and F1 at the job's decision threshold).
pub const HEADER: &str =
    "round  parts  dropped  train-loss  test-loss  accuracy     AUC   PR-AUC      F1  seconds";

/// The per-round table's header, with a DP job's `epsilon` column (ε after each round, at
/// the job's δ) when `dp`.
pub fn header(dp: bool) -> String {
    if dp {
        format!("{HEADER}  epsilon")
    } else {
        HEADER.to_string()
    }
}

/// What a DP job has spent, as the line below its table.
pub fn privacy_line(p: &cairn_coordinator::PrivacySpent) -> String {
    format!("  privacy spent: {}", p.describe())
}

/// The test split's rows per class: `N positive` for a binary label, else `N name` per
/// class.
pub fn class_counts(classes: &[cairn_coordinator::admin::ClassReport]) -> String {
    match classes {
        [_, positive] => format!("{} positive", positive.federated.support),
        _ => classes
            .iter()
            .map(|c| format!("{} {}", c.federated.support, c.class))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A metric to four places, or `-` where the record does not hold it (a record an older
/// build wrote has no PR-AUC or F1).
pub fn metric(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.4}"))
}

/// Which threshold the table's accuracy and F1 are at (the latest round's with test
/// metrics), as a line below it; `None` when no round has test metrics.
pub fn threshold_note(records: &[&RoundRecord]) -> Option<String> {
    let m = records.iter().rev().find_map(|r| r.test)?;
    Some(format!(
        "  accuracy and F1 at decision threshold {} (a row is positive when its score is at least that)",
        m.threshold
    ))
}

/// One round as a table line: a DP job's ends with ε after the round (see [`header`]); a
/// loss the round did not release (a DP job's train loss) is `-`.
pub fn round_line(r: &RoundRecord) -> String {
    let line = match (&r.test, &r.failure) {
        (Some(m), _) => format!(
            "{:>5}  {:>2}/{:<2}  {:>7}  {:>10}  {:>9.4}  {:>8.4}  {:>6.4}  {:>7}  {:>6}  {:>7.2}",
            r.round,
            r.contributors,
            r.selected,
            r.dropped.len(),
            metric(Some(r.train_loss).filter(|l| l.is_finite())),
            m.loss,
            m.accuracy,
            m.auc,
            metric(m.pr_auc),
            metric(m.f1),
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
    };
    match (r.epsilon, &r.test) {
        (None, _) => line,
        (Some(e), Some(_)) => format!("{line}  {e:>7.3}"),
        // A failed round counts too (its sum may have been released).
        (Some(e), None) => format!("{line} (ε now {e:.3})"),
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
                // Above the first round's line: a DP job's record says it has an ε column.
                if !header_done {
                    say(header(r.epsilon.is_some()));
                    header_done = true;
                }
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

#[cfg(test)]
mod tests {
    use cairn_protocol::metrics::Metrics;

    use super::*;

    fn record(test: Option<Metrics>) -> RoundRecord {
        RoundRecord {
            round: 7,
            selected: 5,
            contributors: 4,
            dropped: vec![],
            train_loss: 0.5,
            test,
            seconds: 2.0,
            failure: None,
            verify_seconds: None,
            rss_bytes: None,
            epsilon: None,
        }
    }

    #[test]
    fn a_round_line_has_pr_auc_and_f1_under_the_header() {
        let m = Metrics::of_scores_at(&[0.2, 0.6, 0.4, 0.7, 0.9], &[0.0, 0.0, 1.0, 1.0, 1.0], 0.35);
        let line = round_line(&record(Some(m)));
        // PR-AUC: 0.9, 0.7 → P 1, R 2/3 → 2/3; 0.6 → P 2/3, R 2/3; 0.4 → P 3/4, R 1 →
        // (1/3)(3/4) = 1/4; AP = 11/12 = 0.9167. F1 at 0.35: 6/7 = 0.8571.
        assert!(line.contains("0.9167"), "{line}");
        assert!(line.contains("0.8571"), "{line}");
        // Each value ends under its column's name.
        for (name, value) in [
            ("accuracy", "0.8000"),
            ("AUC", "0.8333"),
            ("PR-AUC", "0.9167"),
            ("F1", "0.8571"),
        ] {
            let col = HEADER.find(&format!(" {name} ")).expect(name) + name.len() + 1;
            let end = line.find(value).expect(value) + value.len();
            assert_eq!(col, end, "{name}\n{HEADER}\n{line}");
        }
        assert_eq!(HEADER.len(), line.len(), "seconds\n{HEADER}\n{line}");
        let note = threshold_note(&[&record(Some(m))]).expect("a note");
        assert!(note.contains("threshold 0.35"), "{note}");
        assert_eq!(threshold_note(&[&record(None)]), None);
    }

    #[test]
    fn a_dp_round_shows_its_epsilon_under_the_header_and_no_train_loss() {
        let m = Metrics::of_scores_at(&[0.2, 0.6, 0.4, 0.7, 0.9], &[0.0, 0.0, 1.0, 1.0, 1.0], 0.5);
        let dp = RoundRecord {
            train_loss: f64::NAN,
            epsilon: Some(1.23456),
            ..record(Some(m))
        };
        let line = round_line(&dp);
        let head = header(true);
        assert_eq!(head.len(), line.len(), "\n{head}\n{line}");
        assert!(line.ends_with("  1.235"), "{line}");
        let col = HEADER.find("train-loss").expect("train-loss") + "train-loss".len();
        assert_eq!(&line[col - 1..col], "-", "\n{HEADER}\n{line}");
        assert!(!line.contains("NaN"), "{line}");
        let failed = RoundRecord {
            test: None,
            failure: Some("too few".into()),
            ..dp
        };
        assert!(round_line(&failed).ends_with("too few (ε now 1.235)"));
        assert_eq!(header(false), HEADER);
    }

    #[test]
    fn a_round_an_older_build_recorded_shows_dashes_for_what_it_lacks() {
        let old = Metrics {
            loss: 0.4,
            accuracy: 0.9,
            auc: 0.8,
            ..Metrics::default()
        };
        let line = round_line(&record(Some(old)));
        assert!(line.contains("0.8000        -       -"), "{line}");
    }
}

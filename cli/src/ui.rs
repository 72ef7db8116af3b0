//! Terminal rendering of a job's progress: a progress bar over the rounds and one line
//! per round (round, participants, loss, accuracy, AUC, seconds).

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
            Progress::Round(r) => {
                say(round_line(&r));
                for (p, why) in &r.dropped {
                    say(format!("        dropped {p}: {why}"));
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
}

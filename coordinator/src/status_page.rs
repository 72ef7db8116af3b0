//! The coordinator's read-only status page: every job with its state, rounds, participants,
//! drops, a chart of test AUC and loss per round, and its proof and audit status. Rendered
//! on the server as one self-contained HTML document (inline CSS and SVG, no script), which
//! refreshes itself every few seconds.

use std::fmt::Write;

use crate::admin::JobStatus;
use crate::store::{JobState, RoundOutcome};

/// Seconds between the page's refreshes.
pub const REFRESH_SECS: u32 = 5;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#1d2430;background:#f6f7f9}\
h1{font-size:22px;margin:0 0 4px}.sub{color:#667;margin-bottom:18px}\
.job{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 18px;margin-bottom:16px}\
.head{display:flex;gap:12px;align-items:baseline}.name{font-weight:600;font-size:17px}\
.state{padding:2px 8px;border-radius:10px;font-size:12px;color:#fff}\
.queued{background:#8a94a6}.running{background:#2f6fde}.finished{background:#23955a}\
.failed{background:#c4392d}.cancelled{background:#a36b00}\
.bar{height:8px;background:#e6e9ee;border-radius:4px;margin:10px 0;overflow:hidden}\
.fill{height:100%;background:#2f6fde}\
table{border-collapse:collapse;font-size:13px;margin-top:6px}td,th{padding:2px 12px 2px 0;text-align:left}\
th{color:#667;font-weight:500}.ok{color:#23955a}.bad{color:#c4392d}.legend{font-size:12px;color:#667}";

/// The page for `jobs` (newest first).
pub fn render(jobs: &[JobStatus]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>cairn coordinator</title><style>{STYLE}</style></head><body>\
         <h1>cairn coordinator</h1><div class=\"sub\">{} job(s): {} running, {} queued; refreshes every {REFRESH_SECS} s</div>",
        jobs.len(),
        jobs.iter().filter(|j| j.info.state == JobState::Running).count(),
        jobs.iter().filter(|j| j.info.state == JobState::Queued).count(),
    );
    if jobs.is_empty() {
        h.push_str("<p>No jobs yet: submit one with <code>cairn job submit job.toml</code>.</p>");
    }
    for j in jobs {
        job_section(&mut h, j);
    }
    h.push_str("</body></html>");
    h
}

fn job_section(h: &mut String, j: &JobStatus) {
    let info = &j.info;
    let total = j.plan.as_ref().map_or(0, |p| p.rounds);
    let done = info.rounds_completed;
    let pct = if total > 0 {
        (f64::from(done) * 100.0 / f64::from(total)).min(100.0)
    } else {
        0.0
    };
    let _ = write!(
        h,
        "<div class=\"job\" id=\"job-{id}\"><div class=\"head\"><span class=\"name\">#{id} {name}</span>\
         <span class=\"state {cls}\">{state}</span></div>",
        id = info.id,
        name = escape(&info.name),
        cls = info.state.name(),
        state = escape(&info.state.to_string()),
    );
    let _ = write!(
        h,
        "<div class=\"bar\"><div class=\"fill\" style=\"width:{pct:.1}%\"></div></div>"
    );
    let records: Vec<_> = j.rounds.iter().filter_map(|r| r.record.as_ref()).collect();
    let last = records.iter().rev().find(|r| r.test.is_some());
    let dropped: usize = records.iter().map(|r| r.dropped.len()).sum();
    let abandoned = j
        .rounds
        .iter()
        .filter(|r| r.outcome == RoundOutcome::Abandoned)
        .count();
    let proofs: usize = records
        .iter()
        .filter_map(|r| r.verify_seconds.as_ref())
        .map(Vec::len)
        .sum();
    h.push_str("<table><tr><th>rounds</th><th>participants</th><th>dropped</th><th>test AUC</th><th>test loss</th><th>proofs</th><th>audit</th></tr><tr>");
    let _ = write!(
        h,
        "<td>{done} / {total} completed, {failed} failed{abandoned}</td>",
        failed = info.rounds_failed - abandoned as u32,
        abandoned = if abandoned > 0 {
            format!(", {abandoned} abandoned (restart)")
        } else {
            String::new()
        }
    );
    let _ = write!(
        h,
        "<td>{}</td><td>{dropped}</td>",
        records.last().map_or_else(
            || j.plan
                .as_ref()
                .map_or("-".into(), |p| format!("{} expected", p.participants)),
            |r| format!("{} of {} in round {}", r.contributors, r.selected, r.round)
        )
    );
    match last.and_then(|r| r.test) {
        Some(m) => {
            let _ = write!(h, "<td>{:.4}</td><td>{:.4}</td>", m.auc, m.loss);
        }
        None => h.push_str("<td>-</td><td>-</td>"),
    }
    let proven = j.plan.as_ref().is_some_and(|p| p.proofs);
    if proven {
        let _ = write!(h, "<td>{proofs} verified</td>");
    } else {
        h.push_str("<td>off</td>");
    }
    match &j.audit {
        Some(a) if a.passed => {
            let _ = write!(h, "<td class=\"ok\">passed ({} proofs)</td>", a.proofs);
        }
        Some(a) => {
            let _ = write!(
                h,
                "<td class=\"bad\" title=\"{}\">failed: {} problem(s)</td>",
                escape(&a.problems.join("\n")),
                a.problems.len()
            );
        }
        None if proven => h.push_str("<td>when the job ends</td>"),
        None => h.push_str("<td>-</td>"),
    }
    h.push_str("</tr></table>");
    // Who was left out of which round, and why (the latest few): a holder that declined,
    // left, timed out or sent a bad proof is named with its reason.
    let drops: Vec<(u32, u32, &str)> = records
        .iter()
        .flat_map(|r| r.dropped.iter().map(|(p, why)| (r.round, *p, why.as_str())))
        .collect();
    if !drops.is_empty() {
        h.push_str("<table class=\"drops\"><tr><th>round</th><th>holder</th><th>why</th></tr>");
        for (round, p, why) in drops.iter().rev().take(MAX_DROPS_SHOWN).rev() {
            let _ = write!(
                h,
                "<tr><td>{round}</td><td>{p}</td><td>{}</td></tr>",
                escape(why)
            );
        }
        h.push_str("</table>");
    }
    let points: Vec<(u32, f64, f64)> = records
        .iter()
        .filter_map(|r| r.test.map(|m| (r.round, m.auc, m.loss)))
        .collect();
    if !points.is_empty() {
        chart(h, &points, total.max(points.last().map_or(1, |p| p.0)));
    }
    h.push_str("</div>");
}

/// Drops listed on the page, the latest.
const MAX_DROPS_SHOWN: usize = 12;

/// An SVG line chart: test AUC (blue, 0..1) and test loss (orange, scaled to its maximum)
/// per round.
fn chart(h: &mut String, points: &[(u32, f64, f64)], rounds: u32) {
    const W: f64 = 560.0;
    const H: f64 = 160.0;
    const PAD: f64 = 28.0;
    // Round 1 at the left axis, the job's last round at the right end.
    let x = |r: u32| {
        PAD + (W - 2.0 * PAD) * f64::from(r.saturating_sub(1)) / f64::from(rounds.max(2) - 1)
    };
    let y = |v: f64| H - PAD + (v.clamp(0.0, 1.0)) * -(H - 2.0 * PAD);
    let max_loss = points
        .iter()
        .map(|p| p.2)
        .filter(|v| v.is_finite())
        .fold(f64::MIN_POSITIVE, f64::max);
    let line = |f: &dyn Fn(&(u32, f64, f64)) -> f64| {
        points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(f(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = write!(
        h,
        "<svg class=\"chart\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"test AUC and loss per round\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>\
         <line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#99a\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#99a\"/>\
         <text x=\"4\" y=\"{t}\" font-size=\"10\" fill=\"#667\">1.0</text>\
         <text x=\"4\" y=\"{b}\" font-size=\"10\" fill=\"#667\">0</text>\
         <text x=\"{r}\" y=\"{lb}\" font-size=\"10\" fill=\"#667\" text-anchor=\"end\">round {rounds}</text>\
         <polyline fill=\"none\" stroke=\"#2f6fde\" stroke-width=\"2\" points=\"{auc}\"/>\
         <polyline fill=\"none\" stroke=\"#e07b00\" stroke-width=\"2\" points=\"{loss}\"/></svg>\
         <div class=\"legend\"><span style=\"color:#2f6fde\">&#9632;</span> test AUC &nbsp; \
         <span style=\"color:#e07b00\">&#9632;</span> test loss (max {max_loss:.3})</div>",
        b = H - PAD,
        r = W - PAD,
        t = PAD + 4.0,
        lb = H - 8.0,
        auc = line(&|p| p.1),
        loss = line(&|p| p.2 / max_loss),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AuditSummary, JobPlan, RoundView};
    use crate::progress::RoundRecord;
    use crate::store::JobInfo;
    use cairn_protocol::metrics::Metrics;
    use cairn_protocol::model::ModelSpec;

    fn job(state: JobState) -> JobStatus {
        let rec = |round, auc| RoundRecord {
            round,
            selected: 5,
            contributors: 4,
            dropped: vec![(
                3,
                if round == 3 {
                    "eve: declined: <non-finite>"
                } else {
                    "timed out"
                }
                .into(),
            )],
            train_loss: 0.6,
            test: Some(Metrics {
                loss: 0.5,
                accuracy: 0.8,
                auc,
            }),
            seconds: 1.0,
            failure: None,
            verify_seconds: Some(vec![0.01; 4]),
            rss_bytes: None,
        };
        JobStatus {
            info: JobInfo {
                id: 3,
                name: "fraud <v2>".into(),
                state,
                created_unix_ms: 0,
                updated_unix_ms: 0,
                params: Some(10),
                rounds_completed: 2,
                rounds_failed: 1,
                last_completed: Some(3),
                next_round: 4,
                in_flight: None,
                transcript_len: 0,
                transcript_head: [0; 32],
            },
            plan: Some(JobPlan {
                job_id: "fraud-3".into(),
                model: ModelSpec {
                    n_features: 4,
                    hidden: vec![],
                },
                rounds: 4,
                participants: 5,
                min_participants: 3,
                server: "fedavg".into(),
                aggregation: "secure".into(),
                proofs: true,
                test_rows: 100,
            }),
            rounds: vec![
                RoundView {
                    round: 1,
                    outcome: RoundOutcome::Completed,
                    record: Some(rec(1, 0.6)),
                },
                RoundView {
                    round: 2,
                    outcome: RoundOutcome::Abandoned,
                    record: None,
                },
                RoundView {
                    round: 3,
                    outcome: RoundOutcome::Completed,
                    record: Some(rec(3, 0.7)),
                },
            ],
            audit: Some(AuditSummary {
                passed: true,
                proofs: 8,
                problems: vec![],
            }),
        }
    }

    #[test]
    fn the_page_shows_each_job_and_escapes_what_researchers_wrote() {
        let page = render(&[job(JobState::Running)]);
        assert!(page.contains("#3 fraud &lt;v2&gt;"), "names are escaped");
        assert!(!page.contains("<v2>"));
        assert!(page.contains("2 / 4 completed, 0 failed, 1 abandoned (restart)"));
        assert!(page.contains("4 of 5 in round 3"));
        assert!(page.contains("<td>0.7000</td>"), "the last round's AUC");
        assert!(page.contains("8 verified"), "proofs of both rounds");
        assert!(page.contains("passed (8 proofs)"));
        assert_eq!(page.matches("<polyline").count(), 2, "AUC and loss lines");
        assert!(page.contains("width:50.0%"), "progress bar");
        assert!(page.contains("1 running, 0 queued"));
        // Each drop, with the holder and its reason (escaped: a reason is holder text).
        assert!(
            page.contains(
                "<tr><td>3</td><td>3</td><td>eve: declined: &lt;non-finite&gt;</td></tr>"
            ),
            "{page}"
        );
    }

    #[test]
    fn an_empty_coordinator_says_how_to_submit() {
        assert!(render(&[]).contains("cairn job submit"));
        let mut j = job(JobState::Queued);
        j.rounds.clear();
        j.audit = None;
        let page = render(&[j]);
        assert!(!page.contains("<svg"), "no chart without a round");
        assert!(page.contains("5 expected"));
    }
}

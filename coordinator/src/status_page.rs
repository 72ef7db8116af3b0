//! The coordinator's read-only status page: every job with its state, progress, privacy and
//! proof settings, links to its model, metrics and plots, the holders of a job this
//! coordinator runs (or ran) with their state, a table of its rounds (participants, drops
//! with their reasons, losses, accuracy, AUC, seconds, phase and proof times) and a chart
//! of test AUC and loss per round, with its proof and audit status. Rendered on the server
//! as one self-contained HTML document (inline CSS and SVG, no script, nothing fetched from
//! elsewhere), which refreshes itself every few seconds. Everything a holder or researcher
//! wrote (names, reasons, job names) is HTML-escaped.
//!
//! The same charts are served alone as SVG documents ([`rounds_svg`], [`roc_svg`]).

use std::fmt::Write;

use crate::admin::{
    AggregationSettings, HolderView, JobPlan, JobReport, JobSettings, JobStatus, LiveView,
};
use crate::progress::RoundRecord;
use crate::store::{JobState, RoundOutcome};

/// Seconds between the page's refreshes.
pub const REFRESH_SECS: u32 = 5;
/// Rounds listed in a job's table of rounds (the latest); all of them are in its metrics.
pub const MAX_ROUNDS_SHOWN: usize = 50;
/// Hex digits of a holder's identity key shown (the whole key is in the cell's title).
pub const IDENTITY_PREFIX: usize = 16;

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

/// Percent-encodes `s` for a URL's query (everything but RFC 3986's unreserved characters).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `path` on this admin interface with the token as the page had it, escaped for an
/// attribute.
fn href(path: &str, token: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    escape(&format!("{path}{sep}token={}", url_encode(token)))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#1d2430;background:#f6f7f9}\
h1{font-size:22px;margin:0 0 4px}.sub{color:#667;margin-bottom:18px}\
h3{font-size:13px;color:#445;margin:14px 0 2px;font-weight:600}\
.job{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 18px;margin-bottom:16px}\
.head{display:flex;gap:12px;align-items:baseline}.name{font-weight:600;font-size:17px}\
.state{padding:2px 8px;border-radius:10px;font-size:12px;color:#fff}\
.queued{background:#8a94a6}.running{background:#2f6fde}.finished{background:#23955a}\
.failed{background:#c4392d}.cancelled{background:#a36b00}\
.bar{height:8px;background:#e6e9ee;border-radius:4px;margin:10px 0;overflow:hidden}\
.fill{height:100%;background:#2f6fde}\
table{border-collapse:collapse;font-size:13px;margin-top:6px}td,th{padding:2px 12px 2px 0;text-align:left;vertical-align:top}\
th{color:#667;font-weight:500}.ok{color:#23955a}.bad{color:#c4392d}.legend{font-size:12px;color:#667}\
table.rounds td.n,table.holders td.n{text-align:right;font-variant-numeric:tabular-nums}\
table.settings th{padding-right:18px}.links{font-size:13px;margin:8px 0}.links a{margin-right:14px}\
.h-training{color:#2f6fde}.h-answered{color:#23955a}.h-dropped,.h-declined{color:#c4392d}.h-left{color:#8a94a6}\
code{font-size:12px}.note{font-size:12px;color:#667}";

/// The page for `jobs` (newest first); its links carry `token` (the page is reached with it).
pub fn render(jobs: &[JobStatus], token: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
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
        job_section(&mut h, j, token);
    }
    h.push_str("</body></html>");
    h
}

fn job_section(h: &mut String, j: &JobStatus, token: &str) {
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
    let privacy = j.privacy_spent();
    h.push_str("<table class=\"summary\"><tr><th>rounds</th><th>participants</th><th>dropped</th><th>test AUC</th><th>test loss</th><th>proofs</th><th>audit</th>");
    if privacy.is_some() {
        h.push_str("<th title=\"differential privacy spent: every round started counts\">privacy (ε, δ)</th>");
    }
    h.push_str("</tr><tr>");
    let _ = write!(
        h,
        "<td>{done} / {total} completed, {failed} failed{abandoned}{now}</td>",
        failed = info.rounds_failed.saturating_sub(abandoned as u32),
        abandoned = if abandoned > 0 {
            format!(", {abandoned} abandoned (restart)")
        } else {
            String::new()
        },
        now = match (j.round_in_flight(), j.interrupted_round) {
            (Some(r), _) => format!("; round {r} in flight"),
            (None, Some(r)) => format!("; stopped during round {r} (nothing of it applied)"),
            (None, None) => String::new(),
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
    if let Some(spent) = privacy {
        let _ = write!(
            h,
            "<td class=\"privacy\">{}</td>",
            escape(&spent.describe())
        );
    }
    h.push_str("</tr></table>");
    links(h, j, token);
    settings(h, j.plan.as_ref());
    holders(h, j);
    rounds_table(h, j, token);
    let points = chart_points(&records);
    if !points.is_empty() {
        let rounds = total.max(points.last().map_or(1, |p| p.0));
        h.push_str(&rounds_chart(&points, rounds, None, 560.0, 200.0));
        h.push_str(
            "<div class=\"legend\"><span style=\"color:#2f6fde\">&#9632;</span> test AUC &nbsp; \
             <span style=\"color:#e07b00\">&#9632;</span> test loss, divided by its largest value",
        );
        let _ = write!(h, " ({:.3})</div>", max_loss(&points));
    }
    h.push_str("</div>");
}

/// Links to what the admin interface serves of the job.
fn links(h: &mut String, j: &JobStatus, token: &str) {
    let id = j.info.id;
    let base = format!("/api/jobs/{id}");
    h.push_str("<div class=\"links\">");
    let mut link = |path: String, class: &str, text: &str| {
        let _ = write!(
            h,
            "<a class=\"{class}\" href=\"{}\">{}</a>",
            href(&path, token),
            escape(text)
        );
    };
    if let Some(r) = j.info.last_completed {
        link(
            format!("{base}/model"),
            "model",
            &format!("model (round {r}, safetensors)"),
        );
    }
    link(format!("{base}/metrics"), "metrics", "metrics (JSON)");
    link(
        format!("{base}/metrics.csv"),
        "metrics-csv",
        "metrics (CSV)",
    );
    link(
        format!("{base}/plots/rounds.svg"),
        "plot-rounds",
        "plot: AUC and loss per round (SVG)",
    );
    // A multi-class job has no ROC (its report has each class's AUC).
    let binary = j.plan.as_ref().is_none_or(|p| p.model.is_binary());
    if j.has_report && binary {
        link(
            format!("{base}/plots/roc.svg"),
            "plot-roc",
            "plot: ROC (SVG)",
        );
    }
    if j.has_report {
        link(format!("{base}/report"), "report", "report (JSON)");
    }
    if j.plan.as_ref().is_some_and(|p| p.proofs) {
        link(
            format!("{base}/transcript"),
            "transcript",
            "transcript (cairn audit)",
        );
    }
    link(format!("{base}/config"), "config", "job file");
    link(base, "status", "status (JSON)");
    h.push_str("</div>");
}

/// The job's privacy, proof and training settings.
/// The label column and its classes: `FLAG: 0 and 1 (sigmoid output)`, or `kind: 3 classes
/// (benign, fraud, phish_hack), softmax output; AUC, PR-AUC and F1 are macro averages`.
pub fn label_text(d: &cairn_datasets::DataSpec) -> String {
    if d.is_binary() {
        format!(
            "{}: {} and {} (sigmoid output; class {} is positive)",
            d.label, d.classes[0], d.classes[1], d.classes[1]
        )
    } else {
        format!(
            "{}: {} classes ({}), softmax output; AUC, PR-AUC and F1 are macro averages of each class against the rest",
            d.label,
            d.classes.len(),
            d.classes.join(", ")
        )
    }
}

fn settings(h: &mut String, plan: Option<&JobPlan>) {
    h.push_str("<h3>settings</h3>");
    let Some(p) = plan else {
        h.push_str("<p class=\"note settings\">Shown once the job starts (its job file is linked above).</p>");
        return;
    };
    h.push_str("<table class=\"settings\">");
    let mut row = |k: &str, v: &str| {
        let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    };
    row("model", &p.model.describe());
    if let Some(d) = &p.data {
        row("label", &label_text(d));
    }
    row(
        "rounds",
        &format!(
            "{} rounds of {} participants (at least {})",
            p.rounds, p.participants, p.min_participants
        ),
    );
    row("server optimiser", &p.server);
    match &p.settings {
        Some(s) => {
            row("aggregation", &aggregation_text(s, p.participants));
            row("proofs", &proofs_text(s));
            row(
                "local training",
                &format!(
                    "K = {} steps of B = {} rows, learning rate {}, updates clipped to L2 norm {}",
                    s.local_steps, s.batch_size, s.learning_rate, s.clip_norm
                ),
            );
            row(
                "deadlines",
                &format!(
                    "a round waits {} s for updates; holders have {} s to join",
                    s.round_timeout_secs, s.join_timeout_secs
                ),
            );
            row("differential privacy", &privacy_text(s, p.rounds));
        }
        None => {
            row("aggregation", &p.aggregation);
            row("proofs", if p.proofs { "on" } else { "off" });
        }
    }
    row("test split", &format!("{} rows", p.test_rows));
    row("job id", &p.job_id);
    h.push_str("</table>");
}

fn aggregation_text(s: &JobSettings, n: usize) -> String {
    match &s.aggregation {
        AggregationSettings::Plain => "plain FedAvg (the coordinator sees each update)".into(),
        AggregationSettings::Secure {
            dropout,
            corruption,
            scale_bits,
            k,
            t,
        } => {
            let kt = match (k, t) {
                (Some(k), Some(t)) => {
                    format!("; {k} neighbours each, threshold t = {t} with all {n}")
                }
                _ => String::new(),
            };
            format!(
                "secure (SecAgg+): tolerates dropout {:.0}% and corruption {:.0}%{kt}; 2^{scale_bits} fixed point",
                100.0 * dropout,
                100.0 * corruption,
            )
        }
    }
}

fn proofs_text(s: &JobSettings) -> String {
    match &s.proofs {
        None => "off".into(),
        Some(p) => format!(
            "on: Groth16 of every update; dataset trees of depth {} over blocks of {} rows, \
             tolerance {}, {}, features of {} bits, clip {}",
            p.tree_depth,
            p.block_rows,
            p.tolerance,
            match p.proved_steps {
                Some(n) => format!("{n} of K = {} steps proved (sampled)", s.local_steps),
                None => format!("all K = {} steps proved", s.local_steps),
            },
            p.feature_bits,
            s.clip_norm,
        ),
    }
}

/// What the job's differential privacy is: the mechanism, its parameters and the (ε, δ)
/// the job plans for over its `rounds`.
fn privacy_text(s: &JobSettings, rounds: u32) -> String {
    let Some(p) = &s.privacy else {
        return "off (the released sums and the model carry no formal privacy guarantee)".into();
    };
    let m = &p.dp.params;
    let planned = p.planned_epsilon.map_or_else(
        || "the accountant could not bound ε".to_string(),
        |e| {
            format!(
                "(ε, δ) = ({e:.3}, {:e}) after all {rounds} rounds",
                p.dp.delta
            )
        },
    );
    format!(
        "distributed Skellam noise in the secure sum: {planned}; noise multiplier {:.4}, clip {},          the noise of at least {} holders in every released sum, grid γ = {:.3e}; {}. Holder-level          (ε, δ) of the released sums and everything computed from them (Rényi DP accountant,          every holder in every round)",
        m.noise_multiplier,
        m.clip,
        m.min_survivors,
        m.granularity,
        match p.dp.budget {
            Some(b) => format!("the job stops before a round that would take ε past {b}"),
            None => "no budget to stop at".into(),
        }
    )
}

/// The holders this coordinator saw in the job, with their state.
fn holders(h: &mut String, j: &JobStatus) {
    let live: Option<&LiveView> = j.live.as_ref();
    let list: &[HolderView] = live.map_or(&[], |l| &l.holders);
    if list.is_empty() {
        if j.info.state == JobState::Running {
            h.push_str("<h3>holders</h3><p class=\"note holders\">No holder has joined this run of the job yet.</p>");
        }
        return;
    }
    let _ = write!(
        h,
        "<h3>holders{}</h3><table class=\"holders\"><tr><th>holder</th><th>identity key</th>\
         <th>rows</th><th>state</th><th>rounds answered</th></tr>",
        if j.info.state.is_terminal() {
            " (as the job ended)"
        } else {
            ""
        }
    );
    for v in list {
        let (short, full) = match &v.identity {
            Some(id) => (
                format!("{}…", id.get(..IDENTITY_PREFIX).unwrap_or(id)),
                id.clone(),
            ),
            None => ("-".into(), String::new()),
        };
        let _ = write!(
            h,
            "<tr><td>{name}</td><td title=\"{full}\"><code>{short}</code></td><td class=\"n\">{rows}</td>\
             <td class=\"h-{cls}\">{state}</td><td class=\"n\">{answered}</td></tr>",
            name = escape(&v.name),
            full = escape(&full),
            short = escape(&short),
            rows = v.rows,
            cls = v.state.name(),
            state = escape(&v.state.to_string()),
            answered = v.rounds_answered,
        );
    }
    h.push_str("</table>");
}

fn median_max(v: &[f64]) -> Option<(f64, f64)> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let median = s[s.len() / 2];
    Some((median, s[s.len() - 1]))
}

fn cell(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("<td class=\"n\">{x:.digits$}</td>"),
        _ => "<td class=\"n\">-</td>".into(),
    }
}

/// One row per round (the latest [`MAX_ROUNDS_SHOWN`]).
fn rounds_table(h: &mut String, j: &JobStatus, token: &str) {
    if j.rounds.is_empty() {
        return;
    }
    let proven = j.plan.as_ref().is_some_and(|p| p.proofs);
    let masked = |round: u32| {
        j.live.as_ref().and_then(|l| {
            l.phases
                .iter()
                .find(|p| p.round == round && p.phase == "masked input")
                .map(|p| p.seconds)
        })
    };
    let phases = j.rounds.iter().any(|r| masked(r.round).is_some());
    // A DP job's ε after each round (its δ is in the summary and the settings).
    let dp = j
        .rounds
        .iter()
        .any(|r| r.record.as_ref().is_some_and(|rec| rec.epsilon.is_some()));
    let shown = j.rounds.len().min(MAX_ROUNDS_SHOWN);
    // The decision threshold of accuracy and F1 (the job's; 0.5 in records before it).
    let threshold = j
        .rounds
        .iter()
        .rev()
        .find_map(|r| r.record.as_ref()?.test)
        .map_or(cairn_protocol::metrics::DEFAULT_THRESHOLD, |m| m.threshold);
    let _ = write!(
        h,
        "<h3>rounds{}</h3><table class=\"rounds\"><tr><th>round</th><th>outcome</th><th>participants</th>\
         <th>dropped (why)</th><th>train loss</th><th>test loss</th><th title=\"at threshold {threshold}\">accuracy</th><th>AUC</th>\
         <th title=\"average precision: the area under the precision-recall curve\">PR-AUC</th><th title=\"at threshold {threshold}\">F1 @ {threshold}</th><th>seconds</th>",
        if shown < j.rounds.len() {
            format!(" (the latest {shown} of {}; all in the metrics)", j.rounds.len())
        } else {
            String::new()
        }
    );
    if dp {
        h.push_str("<th title=\"the job&#39;s ε after this round, at its δ: every round started counts, failed ones too\">ε</th>");
    }
    if phases {
        h.push_str("<th title=\"the masked-input phase of a secure round: it waits for the holders&#39; updates (and in a proven job their proofs), so what is left of their training and proving falls in it, the slowest holder setting its length\">masked input s</th>");
    }
    if proven {
        h.push_str("<th>proofs verified</th><th>verify ms (median / max)</th>");
    }
    h.push_str("</tr>");
    for r in &j.rounds[j.rounds.len() - shown..] {
        let round = match r.outcome {
            RoundOutcome::Completed => format!(
                "<a href=\"{}\" title=\"this round's model (safetensors)\">{}</a>",
                href(
                    &format!("/api/jobs/{}/model?round={}", j.info.id, r.round),
                    token
                ),
                r.round
            ),
            _ => r.round.to_string(),
        };
        let _ = write!(h, "<tr class=\"round\"><td class=\"n\">{round}</td>");
        let Some(rec) = &r.record else {
            let _ = write!(
                h,
                "<td>abandoned</td><td colspan=\"9\" class=\"note\">the coordinator restarted during it; nothing of it was applied</td>"
            );
            if dp {
                h.push_str("<td></td>");
            }
            if phases {
                h.push_str("<td></td>");
            }
            if proven {
                h.push_str("<td></td><td></td>");
            }
            h.push_str("</tr>");
            continue;
        };
        let outcome = match &rec.failure {
            Some(why) => format!("<td class=\"bad\">failed: {}</td>", escape(why)),
            None => "<td class=\"ok\">completed</td>".into(),
        };
        let _ = write!(
            h,
            "{outcome}<td>{} of {}</td><td>",
            rec.contributors, rec.selected
        );
        drops(h, rec);
        h.push_str("</td>");
        h.push_str(&cell(Some(rec.train_loss), 4));
        h.push_str(&cell(rec.test.map(|m| m.loss), 4));
        h.push_str(&cell(rec.test.map(|m| m.accuracy), 4));
        h.push_str(&cell(rec.test.map(|m| m.auc), 4));
        h.push_str(&cell(rec.test.and_then(|m| m.pr_auc), 4));
        h.push_str(&cell(rec.test.and_then(|m| m.f1), 4));
        h.push_str(&cell(Some(rec.seconds), 2));
        if dp {
            h.push_str(&cell(rec.epsilon, 3));
        }
        if phases {
            h.push_str(&cell(masked(r.round), 2));
        }
        if proven {
            let v = rec.verify_seconds.as_deref().unwrap_or(&[]);
            let _ = write!(h, "<td class=\"n\">{}</td>", v.len());
            match median_max(v) {
                Some((m, x)) => {
                    let _ = write!(h, "<td class=\"n\">{:.1} / {:.1}</td>", m * 1e3, x * 1e3);
                }
                None => h.push_str("<td class=\"n\">-</td>"),
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    if proven {
        h.push_str("<p class=\"note\">The holders' proving times are their own (they do not report them): the coordinator measures the verification of each proof, and the masked-input phase that waits for the proofs.</p>");
    }
}

/// A round's drops: how many, and each holder with why (holder text, escaped).
fn drops(h: &mut String, rec: &RoundRecord) {
    if rec.dropped.is_empty() {
        h.push('0');
        return;
    }
    let _ = write!(h, "{}", rec.dropped.len());
    for (p, why) in &rec.dropped {
        let _ = write!(
            h,
            "<div class=\"drop\">participant {p}: {}</div>",
            escape(why)
        );
    }
}

/// (round, test AUC, test loss) of each round with test metrics.
fn chart_points(records: &[&RoundRecord]) -> Vec<(u32, f64, f64)> {
    records
        .iter()
        .filter_map(|r| r.test.map(|m| (r.round, m.auc, m.loss)))
        .collect()
}

fn max_loss(points: &[(u32, f64, f64)]) -> f64 {
    points
        .iter()
        .map(|p| p.2)
        .filter(|v| v.is_finite())
        .fold(f64::MIN_POSITIVE, f64::max)
}

/// Round numbers labelled on an axis of rounds 1..=`rounds`: 1 and every multiple of a step
/// of 1, 2 or 5 times a power of ten, at most about ten of them.
fn round_ticks(rounds: u32) -> Vec<u32> {
    let rounds = rounds.max(1);
    let mut step = 1u32;
    'search: for scale in [1u32, 10, 100, 1000, 10_000, 100_000, 1_000_000] {
        for m in [1u32, 2, 5] {
            step = m.saturating_mul(scale);
            if rounds / step <= 10 {
                break 'search;
            }
        }
    }
    std::iter::once(1)
        .chain((1..=rounds / step).map(|k| k * step))
        .filter(|&r| r >= 1)
        .fold(Vec::new(), |mut v, r| {
            if v.last() != Some(&r) {
                v.push(r);
            }
            v
        })
}

/// An SVG line chart of test AUC (blue, 0..1) and test loss (orange, divided by its
/// largest value) per round, round 1 at the left axis and round `rounds` at the right; the
/// x axis is titled "round" with its ticks labelled, the y axis 0..1. `baseline` draws the
/// centralised model's AUC dashed.
fn rounds_chart(
    points: &[(u32, f64, f64)],
    rounds: u32,
    baseline: Option<f64>,
    w: f64,
    ht: f64,
) -> String {
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 38.0;
    let span = f64::from(rounds.max(2) - 1);
    let x = |r: u32| LEFT + (w - LEFT - RIGHT) * f64::from(r.saturating_sub(1)) / span;
    let y = |v: f64| ht - BOTTOM - v.clamp(0.0, 1.0) * (ht - TOP - BOTTOM);
    let ml = max_loss(points);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" \
         role=\"img\" aria-label=\"test AUC and loss per round\" font-family=\"sans-serif\">\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{ht}\" fill=\"#fff\"/>"
    );
    // Horizontal grid with the y axis's labels.
    for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{r}\" y2=\"{yy:.1}\" stroke=\"{c}\"/>\
             <text class=\"ytick\" x=\"{tx}\" y=\"{ty:.1}\" font-size=\"10\" fill=\"#667\" text-anchor=\"end\">{v}</text>",
            yy = y(v),
            r = w - RIGHT,
            c = if v == 0.0 { "#99a" } else { "#eceef2" },
            tx = LEFT - 4.0,
            ty = y(v) + 3.5,
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"#99a\"/>",
        b = ht - BOTTOM
    );
    for r in round_ticks(rounds) {
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" y1=\"{b}\" x2=\"{xx:.1}\" y2=\"{b4}\" stroke=\"#99a\"/>\
             <text class=\"xtick\" x=\"{xx:.1}\" y=\"{ty}\" font-size=\"10\" fill=\"#667\" text-anchor=\"middle\">{r}</text>",
            xx = x(r),
            b = ht - BOTTOM,
            b4 = ht - BOTTOM + 4.0,
            ty = ht - BOTTOM + 15.0,
        );
    }
    let _ = write!(
        s,
        "<text class=\"axis-title\" x=\"{cx:.1}\" y=\"{ty}\" font-size=\"11\" fill=\"#445\" text-anchor=\"middle\">round</text>",
        cx = LEFT + (w - LEFT - RIGHT) / 2.0,
        ty = ht - 6.0,
    );
    let _ = write!(
        s,
        "<text class=\"axis-title\" x=\"12\" y=\"{cy:.1}\" font-size=\"11\" fill=\"#445\" text-anchor=\"middle\" \
         transform=\"rotate(-90 12 {cy:.1})\">AUC · loss ÷ max</text>",
        cy = TOP + (ht - TOP - BOTTOM) / 2.0,
    );
    if let Some(b) = baseline.filter(|b| b.is_finite()) {
        let _ = write!(
            s,
            "<line class=\"baseline\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{r}\" y2=\"{yy:.1}\" stroke=\"#2f6fde\" \
             stroke-dasharray=\"5 4\" opacity=\"0.7\"/>",
            yy = y(b),
            r = w - RIGHT
        );
    }
    for (color, f) in [
        (
            "#2f6fde",
            &(|p: &(u32, f64, f64)| p.1) as &dyn Fn(&(u32, f64, f64)) -> f64,
        ),
        ("#e07b00", &|p: &(u32, f64, f64)| p.2 / ml),
    ] {
        let pts: Vec<String> = points
            .iter()
            .filter(|p| f(p).is_finite())
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(f(p))))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        // Marks make a lone round visible (a line needs two points).
        if pts.len() <= 60 {
            for p in &pts {
                if let Some((px, py)) = p.split_once(',') {
                    let _ = write!(
                        s,
                        "<circle cx=\"{px}\" cy=\"{py}\" r=\"2.5\" fill=\"{color}\"/>"
                    );
                }
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// The chart of test AUC and loss per round as an SVG document, with a title and legend,
/// and the centralised baseline's AUC dashed when the job's report has one.
pub fn rounds_svg(j: &JobStatus, report: Option<&JobReport>) -> String {
    const W: f64 = 720.0;
    const H: f64 = 320.0;
    const HEAD: f64 = 28.0;
    const FOOT: f64 = 24.0;
    let records: Vec<&RoundRecord> = j.rounds.iter().filter_map(|r| r.record.as_ref()).collect();
    let points = chart_points(&records);
    let total = j.plan.as_ref().map_or(0, |p| p.rounds);
    let rounds = total.max(points.last().map_or(1, |p| p.0));
    let baseline = report.and_then(|r| r.centralised.map(|m| m.auc));
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{t}\" viewBox=\"0 0 {W} {t}\" font-family=\"sans-serif\">\
         <rect width=\"{W}\" height=\"{t}\" fill=\"#fff\"/>\
         <text x=\"12\" y=\"19\" font-size=\"14\" fill=\"#1d2430\">job {id} ({name}): test AUC and loss per round</text>\
         <g transform=\"translate(0 {HEAD})\">{chart}</g>",
        t = H + HEAD + FOOT,
        id = j.info.id,
        name = escape(&j.info.name),
        chart = rounds_chart(&points, rounds, baseline, W, H),
    );
    let legend_y = H + HEAD + 16.0;
    if points.is_empty() {
        let _ = write!(
            s,
            "<text x=\"{cx}\" y=\"{cy}\" font-size=\"13\" fill=\"#667\" text-anchor=\"middle\">no completed round yet</text>",
            cx = W / 2.0,
            cy = HEAD + H / 2.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"44\" y=\"{legend_y}\" font-size=\"11\" fill=\"#445\">\
         <tspan fill=\"#2f6fde\">■</tspan> test AUC   <tspan fill=\"#e07b00\">■</tspan> test loss ÷ {ml:.3}{base}</text></svg>",
        ml = max_loss(&points),
        base = match baseline {
            Some(b) => format!("   <tspan fill=\"#2f6fde\">- -</tspan> centralised AUC {b:.4}"),
            None => String::new(),
        }
    );
    s
}

/// The ROC curves of the job's final model and its centralised baseline on the test split,
/// as an SVG document with labelled axes.
pub fn roc_svg(id: u64, report: &JobReport) -> String {
    const S: f64 = 420.0;
    const L: f64 = 52.0;
    const T: f64 = 36.0;
    const B: f64 = 48.0;
    const R: f64 = 16.0;
    let (w, ht) = (L + S + R, T + S + B);
    let x = |v: f64| L + v.clamp(0.0, 1.0) * S;
    let y = |v: f64| T + S - v.clamp(0.0, 1.0) * S;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" font-family=\"sans-serif\">\
         <rect width=\"{w}\" height=\"{ht}\" fill=\"#fff\"/>\
         <text x=\"12\" y=\"20\" font-size=\"14\" fill=\"#1d2430\">job {id}: ROC on the test split ({} rows)</text>",
        report.test_rows
    );
    for i in 0..=5 {
        let v = f64::from(i) / 5.0;
        let _ = write!(
            s,
            "<line x1=\"{x0}\" y1=\"{yy:.1}\" x2=\"{x1}\" y2=\"{yy:.1}\" stroke=\"#eceef2\"/>\
             <line x1=\"{xx:.1}\" y1=\"{T}\" x2=\"{xx:.1}\" y2=\"{y0}\" stroke=\"#eceef2\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"10\" fill=\"#667\" text-anchor=\"end\">{v:.1}</text>\
             <text x=\"{xx:.1}\" y=\"{by}\" font-size=\"10\" fill=\"#667\" text-anchor=\"middle\">{v:.1}</text>",
            x0 = L,
            x1 = L + S,
            yy = y(v),
            xx = x(v),
            y0 = T + S,
            tx = L - 4.0,
            ty = y(v) + 3.5,
            by = T + S + 14.0,
        );
    }
    let _ = write!(
        s,
        "<rect x=\"{L}\" y=\"{T}\" width=\"{S}\" height=\"{S}\" fill=\"none\" stroke=\"#99a\"/>\
         <line x1=\"{L}\" y1=\"{b}\" x2=\"{r}\" y2=\"{T}\" stroke=\"#aab\" stroke-dasharray=\"4 4\"/>\
         <text x=\"{cx}\" y=\"{ty}\" font-size=\"11\" fill=\"#445\" text-anchor=\"middle\">false-positive rate</text>\
         <text x=\"14\" y=\"{cy}\" font-size=\"11\" fill=\"#445\" text-anchor=\"middle\" transform=\"rotate(-90 14 {cy})\">true-positive rate</text>",
        b = T + S,
        r = L + S,
        cx = L + S / 2.0,
        ty = T + S + 34.0,
        cy = T + S / 2.0,
    );
    let mut curves = vec![("federated", "#d62728", &report.roc[..], report.federated)];
    if let (Some(c), Some(m)) = (&report.centralised_roc, &report.centralised) {
        curves.push(("centralised", "#1f77b4", &c[..], *m));
    }
    for (i, (name, color, pts, m)) in curves.iter().enumerate() {
        let mut label = format!("AUC {:.4}", m.auc);
        if let Some(ap) = m.pr_auc {
            let _ = write!(label, ", PR-AUC {ap:.4}");
        }
        if let Some(f1) = m.f1 {
            let _ = write!(label, ", F1 {f1:.4} @ {}", m.threshold);
        }
        let line: Vec<String> = pts
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\
             <text x=\"{lx}\" y=\"{ly}\" font-size=\"11\" fill=\"{color}\" text-anchor=\"end\">{name} ({label})</text>",
            line.join(" "),
            lx = L + S - 8.0,
            ly = T + S - 10.0 - 16.0 * (curves.len() - 1 - i) as f64,
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{
        AuditSummary, HolderState, JobPlan, JobSettings, PhaseTime, ProofSettings, RoundView,
    };
    use crate::progress::RoundRecord;
    use crate::store::JobInfo;
    use cairn_protocol::metrics::Metrics;
    use cairn_protocol::model::ModelSpec;

    const TOKEN: &str = "t0k&n";

    fn settings() -> JobSettings {
        JobSettings {
            aggregation: AggregationSettings::Secure {
                dropout: 0.2,
                corruption: 0.1,
                scale_bits: 16,
                k: Some(4),
                t: Some(3),
            },
            proofs: Some(ProofSettings {
                tolerance: 0.01,
                tree_depth: 12,
                block_rows: 8,
                feature_bits: 20,
                proved_steps: Some(1),
            }),
            local_steps: 10,
            batch_size: 32,
            learning_rate: 0.5,
            clip_norm: 2.0,
            round_timeout_secs: 60.0,
            join_timeout_secs: 120.0,
            privacy: None,
        }
    }

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
                pr_auc: Some(0.45),
                threshold: 0.3,
                f1: Some(0.35),
                ..Metrics::default()
            }),
            seconds: 1.0,
            failure: None,
            verify_seconds: Some(vec![0.01, 0.03, 0.02, 0.02]),
            rss_bytes: None,
            epsilon: None,
        };
        let holder = |participant, name: &str, state| HolderView {
            participant,
            name: name.into(),
            identity: Some(format!("{participant:02x}").repeat(32)),
            rows: 100 + u64::from(participant),
            state,
            rounds_answered: 2,
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
                in_flight: Some(4),
                transcript_len: 0,
                transcript_head: [0; 32],
            },
            plan: Some(JobPlan {
                job_id: "fraud-3".into(),
                model: ModelSpec::mlp(4, vec![]),
                rounds: 4,
                participants: 5,
                min_participants: 3,
                server: "fedavg".into(),
                aggregation: "secure".into(),
                proofs: true,
                test_rows: 100,
                settings: Some(settings()),
                data: None,
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
            interrupted_round: None,
            live: Some(LiveView {
                holders: vec![
                    holder(0, "alice", HolderState::Training { round: 4 }),
                    holder(
                        1,
                        "<script>alert(1)</script>",
                        HolderState::Dropped {
                            round: 3,
                            reason: "declined: <bad rows>".into(),
                        },
                    ),
                    holder(
                        2,
                        "carol",
                        HolderState::Declined {
                            reason: "no column \"FLAG\"".into(),
                        },
                    ),
                    holder(3, "dave", HolderState::Left { reason: None }),
                ],
                phases: vec![PhaseTime {
                    round: 3,
                    phase: "masked input".into(),
                    seconds: 12.5,
                }],
            }),
            has_report: false,
        }
    }

    #[test]
    fn the_page_shows_each_job_and_escapes_what_researchers_wrote() {
        let page = render(&[job(JobState::Running)], TOKEN);
        assert!(page.contains("#3 fraud &lt;v2&gt;"), "names are escaped");
        assert!(!page.contains("<v2>"));
        assert!(
            page.contains("2 / 4 completed, 0 failed, 1 abandoned (restart); round 4 in flight")
        );
        assert!(page.contains("4 of 5 in round 3"));
        assert!(page.contains("<td>0.7000</td>"), "the last round's AUC");
        assert!(page.contains("8 verified"), "proofs of both rounds");
        assert!(page.contains("passed (8 proofs)"));
        assert_eq!(page.matches("<polyline").count(), 2, "AUC and loss lines");
        assert!(page.contains("width:50.0%"), "progress bar");
        assert!(page.contains("1 running, 0 queued"));
        assert!(
            !page.contains("<script"),
            "no script, and holder text escaped"
        );
        assert!(
            !page.contains("src=\"http"),
            "nothing fetched from elsewhere"
        );
    }

    #[test]
    fn the_table_of_rounds_has_a_row_per_round_with_drops_losses_and_proof_times() {
        let page = render(&[job(JobState::Running)], TOKEN);
        assert!(page.contains("<table class=\"rounds\">"), "{page}");
        assert_eq!(page.matches("<tr class=\"round\">").count(), 3);
        // Each drop with the holder and its reason (escaped: a reason is holder text).
        assert!(
            page.contains("participant 3: eve: declined: &lt;non-finite&gt;"),
            "{page}"
        );
        assert!(page.contains("participant 3: timed out"));
        // train loss, test loss, accuracy, AUC, PR-AUC, F1, seconds.
        assert!(page.contains(
            "<td class=\"n\">0.6000</td><td class=\"n\">0.5000</td><td class=\"n\">0.8000</td>\
             <td class=\"n\">0.6000</td><td class=\"n\">0.4500</td><td class=\"n\">0.3500</td>\
             <td class=\"n\">1.00</td>"
        ));
        // The job's threshold heads the thresholded columns.
        assert!(
            page.contains("<th title=\"at threshold 0.3\">F1 @ 0.3</th>"),
            "{page}"
        );
        assert!(page.contains("<td>abandoned</td>"));
        // The masked-input phase of round 3, where it is known.
        assert!(page.contains("<td class=\"n\">12.50</td>"));
        assert!(page.contains("masked input s"));
        // Verification: 4 proofs, median 20 ms, max 30 ms.
        assert!(page.contains("<td class=\"n\">4</td><td class=\"n\">20.0 / 30.0</td>"));
        // A completed round links its model, with the token (escaped and encoded).
        assert!(
            page.contains("href=\"/api/jobs/3/model?round=3&amp;token=t0k%26n\""),
            "{page}"
        );
        assert!(
            !page.contains("model?round=2"),
            "an abandoned round has no model"
        );
    }

    #[test]
    fn the_holders_are_listed_with_their_state_and_their_text_escaped() {
        let page = render(&[job(JobState::Running)], TOKEN);
        assert!(page.contains("<table class=\"holders\">"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("training (round 4)"));
        assert!(page.contains("dropped from round 3: declined: &lt;bad rows&gt;"));
        assert!(page.contains("declined: no column &quot;FLAG&quot;"));
        assert!(page.contains("<td class=\"h-left\">left</td>"));
        // The identity key's prefix, the whole key in the title.
        assert!(page.contains(&format!("<code>{}…</code>", "01".repeat(8))));
        assert!(page.contains(&format!("title=\"{}\"", "01".repeat(32))));
        assert!(page.contains("<td class=\"n\">101</td>"), "rows");
    }

    #[test]
    fn the_settings_say_how_private_and_how_proven_the_job_is() {
        let page = render(&[job(JobState::Running)], TOKEN);
        assert!(page.contains("<table class=\"settings\">"));
        assert!(page.contains(
            "secure (SecAgg+): tolerates dropout 20% and corruption 10%; 4 neighbours each, threshold t = 3 with all 5"
        ));
        assert!(page.contains("dataset trees of depth 12 over blocks of 8 rows"));
        assert!(page.contains("tolerance 0.01"));
        assert!(page.contains("1 of K = 10 steps proved (sampled)"));
        assert!(page.contains("clip 2"));
        assert!(page.contains("K = 10 steps of B = 32 rows, learning rate 0.5"));

        let mut plain = job(JobState::Running);
        if let Some(p) = plain.plan.as_mut() {
            p.proofs = false;
            p.settings = Some(JobSettings {
                aggregation: AggregationSettings::Plain,
                proofs: None,
                ..settings()
            });
        }
        let page = render(&[plain], TOKEN);
        assert!(page.contains("plain FedAvg (the coordinator sees each update)"));
        assert!(page.contains("<tr><th>proofs</th><td>off</td></tr>"));
        assert!(!page.contains("verify ms"), "no proof columns");
        assert!(!page.contains("/transcript"), "no transcript link");
    }

    #[test]
    fn a_dp_job_shows_epsilon_after_each_round_and_its_epsilon_delta() {
        let dp = cairn_protocol::privacy::DpSettings {
            params: cairn_protocol::privacy::SkellamParams {
                clip: 2.0,
                noise_multiplier: 1.5,
                granularity: 0.25,
                beta: (-0.5f64).exp(),
                min_survivors: 3,
                dim: 5,
            },
            delta: 1e-5,
            budget: Some(8.0),
        };
        let mut j = job(JobState::Finished);
        if let Some(p) = j.plan.as_mut() {
            p.proofs = false;
            p.settings = Some(JobSettings {
                proofs: None,
                privacy: Some(crate::admin::PrivacySettings {
                    dp,
                    planned_epsilon: Some(7.5),
                }),
                ..settings()
            });
        }
        for (r, eps) in j.rounds.iter_mut().zip([1.5, 2.25, 3.125]) {
            if let Some(rec) = r.record.as_mut() {
                rec.train_loss = f64::NAN;
                rec.epsilon = Some(eps);
                rec.verify_seconds = None;
            }
        }
        let page = render(&[j.clone()], TOKEN);
        assert!(page.contains("privacy (ε, δ)</th>"), "a summary column");
        let last = j
            .rounds
            .iter()
            .rev()
            .find(|r| r.record.is_some())
            .expect("a recorded round");
        let want = format!(
            "(ε, δ) = ({:.3}, 1e-5) after {} rounds (budget ε = 8)",
            last.record.as_ref().and_then(|r| r.epsilon).unwrap_or(0.0),
            last.round
        );
        assert!(page.contains(&want), "{want}");
        assert!(page.contains("\">ε</th>"), "an ε column");
        // Rounds 1 and 3 have records (2 was abandoned).
        assert!(page.contains("<td class=\"n\">1.500</td>"), "round 1's ε");
        assert!(page.contains("<td class=\"n\">3.125</td>"), "round 3's ε");
        assert!(!page.contains("NaN"), "unreleased losses are dashes");
        assert!(page.contains("(ε, δ) = (7.500, 1e-5) after all 4 rounds"));
        assert!(page.contains("noise multiplier 1.5000"));
        assert!(page.contains("stops before a round that would take ε past 8"));
        // A job without DP says so, and has no ε column.
        let plain = render(&[job(JobState::Finished)], TOKEN);
        assert!(!plain.contains("privacy (ε, δ)"));
        assert!(!plain.contains("\">ε</th>"));
        assert!(plain.contains("<tr><th>differential privacy</th><td>off"));
    }

    #[test]
    fn the_page_links_the_model_metrics_and_plots_with_the_token() {
        let page = render(&[job(JobState::Running)], TOKEN);
        for path in [
            "/api/jobs/3/model?token=t0k%26n",
            "/api/jobs/3/metrics?token=t0k%26n",
            "/api/jobs/3/metrics.csv?token=t0k%26n",
            "/api/jobs/3/plots/rounds.svg?token=t0k%26n",
            "/api/jobs/3/transcript?token=t0k%26n",
            "/api/jobs/3/config?token=t0k%26n",
        ] {
            assert!(
                page.contains(&format!("href=\"{path}\"")),
                "{path} in {page}"
            );
        }
        assert!(page.contains("model (round 3, safetensors)"));
        assert!(!page.contains("roc.svg"), "no ROC before the report");
        let mut ended = job(JobState::Finished);
        ended.has_report = true;
        let page = render(&[ended], TOKEN);
        assert!(page.contains("href=\"/api/jobs/3/plots/roc.svg?token=t0k%26n\""));
        assert!(page.contains("href=\"/api/jobs/3/report?token=t0k%26n\""));
    }

    #[test]
    fn the_chart_labels_its_round_axis() {
        let page = render(&[job(JobState::Running)], TOKEN);
        assert!(page.contains(">round</text>"), "the axis title");
        for r in 1..=4 {
            assert!(
                page.contains(&format!("text-anchor=\"middle\">{r}</text>")),
                "tick {r}"
            );
        }
        assert_eq!(round_ticks(5), vec![1, 2, 3, 4, 5]);
        assert_eq!(round_ticks(1), vec![1]);
        assert_eq!(round_ticks(20), vec![1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
        assert_eq!(
            round_ticks(100),
            vec![1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
        );
        assert!(round_ticks(12_345).len() <= 12);
    }

    #[test]
    fn a_cancelled_job_shows_no_round_in_flight() {
        let mut j = job(JobState::Cancelled);
        // As `admin::job_status_with` reports it: the store's marker moved aside.
        j.interrupted_round = j.info.in_flight.take();
        let page = render(&[j], TOKEN);
        assert!(!page.contains("in flight"), "{page}");
        assert!(page.contains("stopped during round 4 (nothing of it applied)"));
        // Even a status that still carries the marker is not shown as in flight.
        let mut stale = job(JobState::Cancelled);
        stale.interrupted_round = None;
        assert_eq!(stale.round_in_flight(), None);
        assert!(!render(&[stale], TOKEN).contains("in flight"));
    }

    #[test]
    fn an_empty_coordinator_says_how_to_submit() {
        assert!(render(&[], TOKEN).contains("cairn job submit"));
        let mut j = job(JobState::Queued);
        j.rounds.clear();
        j.audit = None;
        j.live = None;
        j.info.in_flight = None;
        j.info.last_completed = None;
        let page = render(&[j.clone()], TOKEN);
        assert!(!page.contains("<svg"), "no chart without a round");
        assert!(page.contains("5 expected"));
        assert!(!page.contains("class=\"rounds\""), "no table of rounds");
        assert!(!page.contains("/model"), "no model to pull");
        assert!(page.contains("/plots/rounds.svg"));
        j.plan = None;
        let page = render(&[j], TOKEN);
        assert!(page.contains("Shown once the job starts"));
    }

    #[test]
    fn a_multi_class_job_names_its_classes_and_links_no_roc() {
        let mut j = job(JobState::Finished);
        j.has_report = true;
        let data: cairn_datasets::DataSpec = serde_json::from_value(serde_json::json!({
            "label": "kind",
            "normalizer": {
                "columns": [{"name": "a", "fill": 0.0, "signed_log": false, "mean": 0.0, "sd": 1.0}],
                "clamp": 5.0
            },
            "classes": ["benign", "<bot>", "phish"]
        }))
        .expect("a spec");
        if let Some(p) = j.plan.as_mut() {
            p.model = ModelSpec::mlp(1, vec![]).with_classes(3);
            p.data = Some(data);
        }
        let page = render(&[j.clone()], "t");
        assert!(
            page.contains("kind: 3 classes (benign, &lt;bot&gt;, phish), softmax output"),
            "{page}"
        );
        assert!(!page.contains("roc.svg"), "no ROC for three classes");
        assert!(
            page.contains("/report?"),
            "the report (with each class) is linked"
        );
        // A binary job's label row names its positive class.
        let mut b = job(JobState::Finished);
        b.has_report = true;
        if let Some(p) = b.plan.as_mut() {
            p.data =
                j.plan
                    .as_ref()
                    .and_then(|q| q.data.clone())
                    .map(|d| cairn_datasets::DataSpec {
                        classes: vec!["0".into(), "1".into()],
                        ..d
                    });
        }
        let page = render(&[b], "t");
        assert!(
            page.contains("kind: 0 and 1 (sigmoid output; class 1 is positive)"),
            "{page}"
        );
        assert!(page.contains("roc.svg"));
    }

    #[test]
    fn the_plots_are_svg_documents_with_labelled_axes() {
        let j = job(JobState::Finished);
        let report = JobReport {
            federated: Metrics {
                loss: 0.4,
                accuracy: 0.9,
                auc: 0.91,
                pr_auc: Some(0.8),
                f1: Some(0.75),
                ..Metrics::default()
            },
            roc: vec![(0.0, 0.0), (0.1, 0.7), (1.0, 1.0)],
            // A report an older build stored: no PR-AUC or F1.
            centralised: Some(Metrics {
                loss: 0.3,
                accuracy: 0.92,
                auc: 0.93,
                ..Metrics::default()
            }),
            centralised_roc: Some(vec![(0.0, 0.0), (0.05, 0.8), (1.0, 1.0)]),
            test_rows: 100,
            classes: Vec::new(),
            privacy: None,
        };
        let rounds = rounds_svg(&j, Some(&report));
        assert!(rounds.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(rounds.ends_with("</svg>"));
        assert!(rounds.contains("job 3 (fraud &lt;v2&gt;)"));
        assert!(rounds.contains(">round</text>"));
        assert!(rounds.contains("class=\"baseline\""));
        assert!(rounds.contains("centralised AUC 0.9300"));
        let mut empty = job(JobState::Queued);
        empty.rounds.clear();
        assert!(rounds_svg(&empty, None).contains("no completed round yet"));
        let roc = roc_svg(3, &report);
        assert!(roc.contains("false-positive rate") && roc.contains("true-positive rate"));
        assert!(
            roc.contains("federated (AUC 0.9100, PR-AUC 0.8000, F1 0.7500 @ 0.5)"),
            "{roc}"
        );
        assert!(roc.contains("centralised (AUC 0.9300)"));
        assert_eq!(roc.matches("<polyline").count(), 2);
    }
}

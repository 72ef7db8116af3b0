//! `cairn job`: a researcher's commands against a running coordinator's admin interface —
//! submit a job file, list jobs, show one, watch it live, cancel it, pull its results, plot
//! them.
//!
//! The coordinator is found from its output directory (`--dir`, default `cairn-out`: the
//! admin address and token file in `coordinator.json`), or given as `--admin ADDR` (a
//! loopback `HOST:PORT` or `http://` URL) with `--token-file FILE` (or `CAIRN_ADMIN_TOKEN`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cairn_coordinator::admin::{ApiError, Cancelled, JobReport, JobStatus, Submitted};
use cairn_coordinator::store::{JobInfo, JobState, RoundOutcome};
use cairn_coordinator::RoundRecord;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::plot::{plot_roc, plot_rounds};

/// `println!` that ends the command quietly when its reader has gone (`cairn job status |
/// head`), where `println!` would panic on the closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
use crate::ui;

/// `cairn job` arguments.
#[derive(Args, Debug)]
pub struct JobArgs {
    /// The coordinator's output directory: its `coordinator.json` names the admin address
    /// and token file.
    #[arg(long, default_value = DEFAULT_DIR, global = true)]
    pub dir: PathBuf,
    /// The admin interface's address (instead of reading `--dir`): 127.0.0.1:PORT,
    /// [::1]:PORT or localhost:PORT, also as a URL (http://127.0.0.1:7401); loopback only
    // The doc comment is the flag's help text, not rustdoc: `[::1]` is an address.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, global = true, value_parser = crate::service::admin_address)]
    pub admin: Option<SocketAddr>,
    /// File holding the admin token [default: the one `--dir` names]
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: JobCommand,
}

/// Where `cairn job` looks for the coordinator's `coordinator.json` unless told.
pub const DEFAULT_DIR: &str = "cairn-out";

/// `cairn job` subcommands.
#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Queue a job file (TOML; see examples/job.toml). Errors name each bad field.
    Submit {
        /// The job file.
        file: PathBuf,
    },
    /// Every job, newest first.
    List,
    /// One job: state, rounds, last metrics, audit.
    Status {
        /// Job id.
        id: u64,
    },
    /// Follow a job live: a progress bar and a line per round, until it ends.
    Watch {
        /// Job id.
        id: u64,
        /// Seconds between polls.
        #[arg(long, default_value_t = 1.0)]
        every: f64,
    },
    /// Cancel a queued or running job.
    Cancel {
        /// Job id.
        id: u64,
    },
    /// Download a job's results: the final and per-round models (safetensors), metrics
    /// (JSON and CSV), the job file, the report and a proven job's transcript.
    Pull {
        /// Job id.
        id: u64,
        /// Where to write [default: job-ID]
        #[arg(long)]
        dest: Option<PathBuf>,
    },
    /// Plot a job: loss and AUC per round with the centralised baseline, and the ROC curve
    /// of the final model on the test split (PNG).
    Plot {
        /// Job id.
        id: u64,
        /// Where to write rounds.png and roc.png [default: job-ID]
        #[arg(long)]
        dest: Option<PathBuf>,
    },
}

/// A connection to a coordinator's admin interface.
pub struct Admin {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// Largest answer read (a model per round is small; a transcript of a long proven job is
/// the largest).
const MAX_BODY: u64 = 1 << 30;

impl Admin {
    /// Finds the coordinator from the arguments.
    pub fn connect(args: &JobArgs) -> Result<Self> {
        let (base, token_file) = match &args.admin {
            Some(addr) if addr.port() == 0 => {
                bail!("--admin {addr}: name the port the coordinator printed (its `admin interface http://…` line)")
            }
            Some(addr) => (format!("http://{addr}"), args.token_file.clone()),
            None => {
                let info_path = args.dir.join("coordinator.json");
                let text = std::fs::read_to_string(&info_path).with_context(|| {
                    format!(
                        "reading {} (is a coordinator running with --out {}? or pass --admin URL)",
                        info_path.display(),
                        args.dir.display()
                    )
                })?;
                let info: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", info_path.display()))?;
                let admin = info["admin"]
                    .as_str()
                    .ok_or_else(|| anyhow!("{} names no admin address", info_path.display()))?;
                let file = args
                    .token_file
                    .clone()
                    .or_else(|| info["token_file"].as_str().map(PathBuf::from));
                (admin.to_string(), file)
            }
        };
        let token = match (token_file, std::env::var("CAIRN_ADMIN_TOKEN")) {
            (Some(f), _) => std::fs::read_to_string(&f)
                .with_context(|| format!("reading the admin token {}", f.display()))?
                .trim()
                .to_string(),
            (None, Ok(t)) => t,
            (None, Err(_)) => {
                bail!("no admin token: pass --token-file FILE or set CAIRN_ADMIN_TOKEN")
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(Self { base, token, agent })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path`: the body, or the API's error as an error.
    pub fn get(&self, path: &str) -> Result<Vec<u8>> {
        let resp = self
            .agent
            .get(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("asking the coordinator at {}", self.base))?;
        answer(resp)
    }

    /// POST `body` to `path`.
    pub fn post(&self, path: &str, body: &str) -> Result<Vec<u8>> {
        let resp = self
            .agent
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send(body)
            .with_context(|| format!("asking the coordinator at {}", self.base))?;
        answer(resp)
    }

    /// GET `path` as JSON.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        serde_json::from_slice(&self.get(path)?).with_context(|| format!("reading {path}"))
    }

    /// GET `path`, or `None` when the coordinator has no such thing (404).
    pub fn get_optional(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.get(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.downcast_ref::<NotFound>().is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A 404 from the admin interface.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotFound(String);

fn answer(mut resp: ureq::http::Response<ureq::Body>) -> Result<Vec<u8>> {
    let status = resp.status();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .context("reading the coordinator's answer")?;
    if status.is_success() {
        return Ok(bytes);
    }
    let err: Option<ApiError> = serde_json::from_slice(&bytes).ok();
    let msg = match err {
        Some(e) if e.fields.is_empty() => e.error,
        Some(e) => format!(
            "{}:\n{}",
            e.error,
            e.fields
                .iter()
                .map(|f| format!("  {}: {}", f.field, f.reason))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    };
    if status.as_u16() == 404 {
        return Err(NotFound(msg).into());
    }
    Err(anyhow!("{msg} (HTTP {})", status.as_u16()))
}

/// Runs a `cairn job` command.
pub fn run(args: &JobArgs) -> Result<()> {
    let admin = Admin::connect(args)?;
    match &args.command {
        JobCommand::Submit { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading job file {}", file.display()))?;
            let s: Submitted = serde_json::from_slice(
                &admin
                    .post("/api/jobs", &text)
                    .with_context(|| format!("job file {} refused", file.display()))?,
            )?;
            out!(
                "submitted job {} ({}); {} job(s) ahead of it",
                s.id,
                s.name,
                s.ahead
            );
            out!(
                "follow it with: {}",
                again(args, &format!("watch {}", s.id))
            );
            out!(
                "and fetch its results with: {}",
                again(args, &format!("pull {}", s.id))
            );
        }
        JobCommand::List => {
            let jobs: Vec<JobInfo> = admin.get_json("/api/jobs")?;
            if jobs.is_empty() {
                out!("no jobs");
            }
            out!(
                "{:>4}  {:<24} {:<10} {:>9} {:>6}",
                "id",
                "name",
                "state",
                "completed",
                "failed"
            );
            for j in jobs {
                out!(
                    "{:>4}  {:<24} {:<10} {:>9} {:>6}",
                    j.id,
                    j.name,
                    j.state.name(),
                    j.rounds_completed,
                    j.rounds_failed
                );
            }
        }
        JobCommand::Status { id } => {
            let st: JobStatus = admin.get_json(&format!("/api/jobs/{id}"))?;
            print_status(&st);
        }
        JobCommand::Watch { id, every } => watch(&admin, *id, *every)?,
        JobCommand::Cancel { id } => {
            let c: Cancelled =
                serde_json::from_slice(&admin.post(&format!("/api/jobs/{id}/cancel"), "")?)?;
            out!("cancelled job {} (it was {})", c.id, c.was);
        }
        JobCommand::Pull { id, dest } => {
            let dest = dest
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("job-{id}")));
            pull(&admin, *id, &dest)?;
        }
        JobCommand::Plot { id, dest } => {
            let dest = dest
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("job-{id}")));
            plot(&admin, *id, &dest)?;
        }
    }
    Ok(())
}

/// The `cairn job …` command line that reaches the same coordinator the way `args` did
/// (`--dir`, or `--admin` and `--token-file`, as given), running `sub`.
pub fn again(args: &JobArgs, sub: &str) -> String {
    let mut line = String::from("cairn job");
    match &args.admin {
        Some(addr) => line.push_str(&format!(" --admin {addr}")),
        None if args.dir != Path::new(DEFAULT_DIR) => {
            line.push_str(&format!(
                " --dir {}",
                shell_word(&args.dir.to_string_lossy())
            ));
        }
        None => {}
    }
    if let Some(f) = &args.token_file {
        line.push_str(&format!(
            " --token-file {}",
            shell_word(&f.to_string_lossy())
        ));
    }
    line.push(' ');
    line.push_str(sub);
    line
}

/// `w` as one word for a POSIX shell: as it is when that is safe, else single-quoted.
fn shell_word(w: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./+:@%,=".contains(c);
    if !w.is_empty() && w.chars().all(safe) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

fn print_status(st: &JobStatus) {
    let i = &st.info;
    out!("job {} ({}): {}", i.id, i.name, i.state);
    if let Some(p) = &st.plan {
        out!(
            "  {} rounds of {} participants (at least {}), {}, {}, {}{}",
            p.rounds,
            p.participants,
            p.min_participants,
            p.model.describe(),
            p.server,
            p.aggregation,
            if p.proofs { ", proven" } else { "" }
        );
        if let Some(d) = &p.data {
            out!("  label {}", cairn_coordinator::status_page::label_text(d));
        }
    }
    let abandoned = st
        .rounds
        .iter()
        .filter(|r| r.outcome == RoundOutcome::Abandoned)
        .count();
    out!(
        "  rounds: {} completed, {} failed, {abandoned} abandoned by a restart{}",
        i.rounds_completed,
        i.rounds_failed as usize - abandoned,
        // Only a running job has a round in flight; a cancelled or failed one names the
        // round it stopped in.
        match (st.round_in_flight(), st.interrupted_round) {
            (Some(r), _) => format!("; round {r} in flight"),
            (None, Some(r)) => format!("; stopped during round {r} (nothing of it applied)"),
            (None, None) => String::new(),
        }
    );
    let records: Vec<&RoundRecord> = st.rounds.iter().filter_map(|r| r.record.as_ref()).collect();
    let privacy = st.privacy_spent();
    if !records.is_empty() {
        let dp = privacy.is_some() || records.iter().any(|r| r.epsilon.is_some());
        out!("{}", ui::header(dp));
        for r in &records {
            out!("{}", ui::round_line(r));
        }
        if let Some(note) = ui::threshold_note(&records) {
            out!("{note}");
        }
        // Who was left out, and why.
        for r in &records {
            for (p, why) in &r.dropped {
                out!("  round {}: participant {p} dropped — {why}", r.round);
            }
        }
    }
    if let Some(p) = &privacy {
        out!("{}", ui::privacy_line(p));
    }
    if let Some(a) = &st.audit {
        if a.passed {
            out!("  audit: passed ({} proofs)", a.proofs);
        } else {
            out!("  audit: FAILED");
            for p in &a.problems {
                out!("    {p}");
            }
        }
    }
}

/// A line above the bar (a hidden bar, off a terminal, prints nothing itself).
fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        out!("{line}");
    } else {
        bar.println(line);
    }
}

fn watch(admin: &Admin, id: u64, every: f64) -> Result<()> {
    if !every.is_finite() {
        bail!("--every must be a number of seconds, got {every}");
    }
    let every = Duration::from_secs_f64(every.clamp(0.1, 60.0));
    let mut shown = 0usize;
    let mut bar: Option<ProgressBar> = None;
    let mut header_done = false;
    loop {
        let st: JobStatus = admin.get_json(&format!("/api/jobs/{id}"))?;
        let total = st.plan.as_ref().map_or(0, |p| p.rounds);
        let b = bar.get_or_insert_with(|| {
            let b = if std::io::stderr().is_terminal() {
                ProgressBar::new(u64::from(total))
            } else {
                ProgressBar::hidden()
            };
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rounds {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            out!(
                "job {} ({}): {}",
                st.info.id,
                st.info.name,
                st.info.state.name()
            );
            b
        });
        if total > 0 {
            b.set_length(u64::from(total));
        }
        for r in st.rounds.iter().skip(shown) {
            // Above the first round (the plan, with a DP job's privacy, is known by then).
            if !header_done {
                let dp = st.privacy_spent().is_some()
                    || r.record.as_ref().is_some_and(|rec| rec.epsilon.is_some());
                say(b, &ui::header(dp));
                header_done = true;
            }
            match &r.record {
                Some(rec) => say(b, &ui::round_line(rec)),
                None => say(
                    b,
                    &format!(
                        "{:>5}  abandoned: the coordinator restarted during it",
                        r.round
                    ),
                ),
            }
        }
        shown = st.rounds.len();
        b.set_position(u64::from(st.info.rounds_completed));
        b.set_message(st.info.state.name().to_string());
        if st.info.state.is_terminal() {
            b.finish_and_clear();
            let records: Vec<&RoundRecord> =
                st.rounds.iter().filter_map(|r| r.record.as_ref()).collect();
            if let Some(note) = ui::threshold_note(&records) {
                out!("{note}");
            }
            if let Some(p) = st.privacy_spent() {
                out!("{}", ui::privacy_line(&p));
            }
            out!("job {id} {}", st.info.state);
            return match st.info.state {
                JobState::Finished => Ok(()),
                other => Err(anyhow!("job {id} {other}")),
            };
        }
        std::thread::sleep(every);
    }
}

fn write(dest: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = dest.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes job `id`'s results into `dest`; returns the files written.
pub fn pull(admin: &Admin, id: u64, dest: &Path) -> Result<Vec<PathBuf>> {
    let st: JobStatus = admin.get_json(&format!("/api/jobs/{id}"))?;
    std::fs::create_dir_all(dest.join("models"))
        .with_context(|| format!("creating {}", dest.display()))?;
    let mut files = vec![
        write(
            dest,
            "job.toml",
            &admin.get(&format!("/api/jobs/{id}/config"))?,
        )?,
        write(dest, "status.json", &serde_json::to_vec_pretty(&st)?)?,
        write(
            dest,
            "metrics.json",
            &admin.get(&format!("/api/jobs/{id}/metrics"))?,
        )?,
        write(
            dest,
            "metrics.csv",
            &admin.get(&format!("/api/jobs/{id}/metrics.csv"))?,
        )?,
    ];
    if st.info.last_completed.is_some() {
        files.push(write(
            dest,
            "model.safetensors",
            &admin.get(&format!("/api/jobs/{id}/model"))?,
        )?);
    }
    for r in st
        .rounds
        .iter()
        .filter(|r| r.outcome == RoundOutcome::Completed)
    {
        files.push(write(
            &dest.join("models"),
            &format!("round-{:03}.safetensors", r.round),
            &admin.get(&format!("/api/jobs/{id}/model?round={}", r.round))?,
        )?);
    }
    if let Some(t) = admin.get_optional(&format!("/api/jobs/{id}/transcript"))? {
        files.push(write(dest, "transcript.cairn", &t)?);
    }
    if let Some(r) = admin.get_optional(&format!("/api/jobs/{id}/report"))? {
        files.push(write(dest, "report.json", &r)?);
    }
    out!(
        "job {id} ({}): {} files in {}",
        st.info.state,
        files.len(),
        dest.display()
    );
    for f in &files {
        out!("  {}", f.display());
    }
    Ok(files)
}

/// Writes `rounds.png` and `roc.png` of job `id` into `dest`.
pub fn plot(admin: &Admin, id: u64, dest: &Path) -> Result<()> {
    let st: JobStatus = admin.get_json(&format!("/api/jobs/{id}"))?;
    let records: Vec<RoundRecord> = st.rounds.iter().filter_map(|r| r.record.clone()).collect();
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let report: Option<JobReport> = admin
        .get_optional(&format!("/api/jobs/{id}/report"))?
        .map(|b| serde_json::from_slice(&b))
        .transpose()?;
    let title = match &st.plan {
        Some(p) => format!(
            "job {id}: {} holders, {}, {}",
            p.participants,
            p.model.describe(),
            p.server
        ),
        None => format!("job {id}"),
    };
    let rounds_png = dest.join("rounds.png");
    plot_rounds(
        &rounds_png,
        &records,
        report.as_ref().and_then(|r| r.centralised.as_ref()),
        &title,
    )?;
    out!("wrote {}", rounds_png.display());
    match report {
        Some(r) if r.roc.is_empty() => out!(
            "no ROC: job {id} has {} classes (its report lists each class's AUC)",
            r.classes.len()
        ),
        Some(r) => {
            let roc_png = dest.join("roc.png");
            let mut curves = vec![("federated", &r.roc[..], r.federated.auc)];
            if let (Some(c), Some(m)) = (&r.centralised_roc, &r.centralised) {
                curves.push(("centralised", &c[..], m.auc));
            }
            plot_roc(
                &roc_png,
                &curves,
                &format!("ROC on the test split ({} rows)", r.test_rows),
            )?;
            out!("wrote {}", roc_png.display());
        }
        None => out!("no ROC yet: job {id} has no report until it ends"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::admin_address;

    fn args(dir: &str, admin: Option<&str>, token_file: Option<&str>) -> JobArgs {
        JobArgs {
            dir: PathBuf::from(dir),
            admin: admin.map(|a| admin_address(a).expect("a loopback address")),
            token_file: token_file.map(PathBuf::from),
            command: JobCommand::List,
        }
    }

    #[test]
    fn the_follow_up_command_reaches_the_coordinator_the_way_the_user_did() {
        assert_eq!(
            again(&args(DEFAULT_DIR, None, None), "watch 3"),
            "cairn job watch 3"
        );
        assert_eq!(
            again(&args("runs/out", None, None), "watch 3"),
            "cairn job --dir runs/out watch 3"
        );
        assert_eq!(
            again(&args("my runs/it's", None, Some("t")), "pull 3"),
            "cairn job --dir 'my runs/it'\\''s' --token-file t pull 3"
        );
        assert_eq!(
            again(
                &args(DEFAULT_DIR, Some("localhost:7401"), Some("/a/admin.token")),
                "watch 1"
            ),
            "cairn job --admin 127.0.0.1:7401 --token-file /a/admin.token watch 1"
        );
        // With --admin, --dir is not what reaches the coordinator.
        assert_eq!(
            again(&args("elsewhere", Some("[::1]:9"), None), "watch 1"),
            "cairn job --admin [::1]:9 watch 1"
        );
    }

    #[test]
    fn admin_addresses_on_loopback_are_taken_and_others_refused_naming_why() {
        for (given, want) in [
            ("127.0.0.1:7401", "127.0.0.1:7401"),
            ("127.1.2.3:7401", "127.1.2.3:7401"),
            ("[::1]:7401", "[::1]:7401"),
            ("localhost:7401", "127.0.0.1:7401"),
            ("LOCALHOST:0", "127.0.0.1:0"),
            ("http://127.0.0.1:7401", "127.0.0.1:7401"),
            ("http://127.0.0.1:7401/", "127.0.0.1:7401"),
            ("http://[::1]:7401", "[::1]:7401"),
            ("http://localhost:7401", "127.0.0.1:7401"),
        ] {
            assert_eq!(
                admin_address(given).map(|a| a.to_string()),
                Ok(want.to_string()),
                "{given}"
            );
        }
        for (given, why) in [
            ("0.0.0.0:7401", "loopback"),
            ("10.0.0.1:7401", "loopback"),
            ("[2001:db8::1]:7401", "loopback"),
            ("http://192.168.1.1:7401", "loopback"),
            ("example.com:7401", "loopback"),
            ("127.0.0.1", "no port"),
            ("localhost:", "no port"),
            ("127.0.0.1:70000", "port"),
            ("https://127.0.0.1:7401", "not an admin address"),
            ("http://127.0.0.1:7401/api", "not an admin address"),
        ] {
            let e = admin_address(given).expect_err(given);
            assert!(e.contains(why) && e.contains(given), "{given}: {e}");
        }
    }
}

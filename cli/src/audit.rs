//! `cairn audit TRANSCRIPT`: re-checks a proven job from its transcript alone and prints a
//! per-round table and a verdict; the exit status is 0 only when everything holds.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_coordinator::audit::{audit, AuditReport};
use cairn_coordinator::persist::transcript_of;
use cairn_coordinator::store::Store;
use cairn_protocol::transcript::Transcript;
use clap::Args;

/// `cairn audit` arguments.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The transcript file a proven job wrote (e.g. `cairn-out/transcript.cairn`).
    #[arg(required_unless_present = "store")]
    pub transcript: Option<PathBuf>,
    /// Read the transcript from a coordinator's job store instead (`OUT/cairn.redb`, as
    /// recorded round by round: while the coordinator runs, or after it died). The store is
    /// only read: nothing is locked from the coordinator or written.
    #[arg(long, conflicts_with = "transcript")]
    pub store: Option<PathBuf>,
    /// With --store: which job [default: the latest].
    #[arg(long, requires = "store")]
    pub job: Option<u64>,
}

impl AuditArgs {
    /// Audits one transcript file.
    pub fn file(path: PathBuf) -> Self {
        Self {
            transcript: Some(path),
            store: None,
            job: None,
        }
    }
}

/// Runs the audit of one transcript.
pub fn run(args: &AuditArgs) -> Result<()> {
    let (t, what) = load(args)?;
    let t0 = Instant::now();
    let report = audit(&t);
    print(&report, t0.elapsed().as_secs_f64());
    if !report.passed() {
        bail!(
            "audit failed: {} problem(s) in {what}",
            report.problems.len()
        );
    }
    Ok(())
}

/// The transcript the arguments name, and how to name it.
fn load(args: &AuditArgs) -> Result<(Transcript, String)> {
    if let Some(db) = &args.store {
        let store =
            Store::open_read_only(db).with_context(|| format!("opening {}", db.display()))?;
        let job = match args.job {
            Some(j) => j,
            None => store
                .jobs()?
                .iter()
                .map(|j| j.id)
                .max()
                .with_context(|| format!("{} holds no job", db.display()))?,
        };
        let t = transcript_of(&store, job)
            .with_context(|| format!("reading job {job}'s transcript from {}", db.display()))?;
        if t.records.is_empty() {
            let info = store.job(job)?;
            bail!(
                "job {job} ({}, {}) of {} has no transcript to audit: only a proven job records one, from the round it starts",
                info.name,
                info.state.name(),
                db.display()
            );
        }
        return Ok((t, format!("job {job} of {}", db.display())));
    }
    let path = args
        .transcript
        .as_ref()
        .context("name a transcript file or --store")?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let t =
        Transcript::from_bytes(&bytes).with_context(|| format!("decoding {}", path.display()))?;
    Ok((t, path.display().to_string()))
}

/// Prints the per-round table, the problems and the verdict.
pub fn print(report: &AuditReport, seconds: f64) {
    println!(
        "{} records, {} holders enrolled",
        report.records, report.enrolled
    );
    println!("round  selected  survivors  proofs-ok  dropped  sum-check  signed  model");
    for r in &report.rounds {
        if r.failed {
            println!(
                "{:>5}  {:>8}  {:>9}  {:>9}  {:>7}  round failed, nothing applied",
                r.round, "-", "-", "-", r.dropped
            );
            continue;
        }
        println!(
            "{:>5}  {:>8}  {:>9}  {:>9}  {:>7}  {:>9}  {:>6}  {}",
            r.round,
            r.selected,
            r.survivors,
            format!("{}/{}", r.proofs_ok, r.survivors),
            r.dropped,
            if r.sum_ok { "ok" } else { "FAILED" },
            if r.signatures_ok { "ok" } else { "FAILED" },
            if r.model_ok { "ok" } else { "FAILED" }
        );
    }
    let proofs: usize = report.rounds.iter().map(|r| r.proofs_ok).sum();
    if let Some(s) = &report.sampling {
        let r = s.rounds_per_holder;
        println!(
            "sampled steps: each proof covers {} of K = {} local steps, challenged after the holder committed to all K ({} challenges re-derived from the transcript's beacons and chains)",
            s.sampled, s.local_steps, s.challenges
        );
        for m in [1, 2, s.local_steps.div_ceil(2)] {
            if m > s.local_steps {
                continue;
            }
            println!(
                "  a holder deviating in {m} of {} steps escapes a round with p = {:.3}; in every one of its {r} rounds, p = {:.2e}",
                s.local_steps,
                s.escape_one_round(m),
                s.escape_rounds(m, r)
            );
        }
    }
    if let Some(p) = &report.privacy {
        let dp = &p.settings;
        let eps = p
            .epsilon
            .map_or_else(|| "unbounded".to_string(), |e| format!("{e:.4}"));
        println!(
            "privacy: (ε, δ) = ({eps}, {:e}) after {} released round(s): distributed Skellam, noise multiplier {:.4}, clip {}, noise shared over at least {} survivors",
            dp.delta, p.rounds, dp.params.noise_multiplier, dp.params.clip, dp.params.min_survivors
        );
        if let Some(extra) = p.sampler_delta {
            println!(
                "  the sampler's distance from the exact Skellam adds {extra:.1e} to δ over the job's draws"
            );
        }
        if p.proven {
            println!(
                "  proven: every survivor's proof shows its rotated, rounded update within the sensitivity bound and its noise drawn from its committed seed; every aggregate check held"
            );
        } else {
            println!("  NOT proven: the transcript does not show every released sum's noise (see the problems)");
        }
    }
    if report.contributors > 0 {
        println!(
            "randomness: drawn by commit-reveal from {} holder(s)' contributions; every round seed re-derived from them",
            report.contributors
        );
    }
    if report.finished {
        println!(
            "sealed: the coordinator signed the transcript's head and {} holder(s) countersigned it",
            report.countersigned
        );
    }
    for p in &report.problems {
        println!("  problem: {p}");
    }
    if report.passed() {
        println!("verdict: PASS — chain, signatures, {proofs} proofs, every aggregate check and the model chain hold ({seconds:.2} s)");
    } else {
        println!("verdict: FAIL — {} problem(s)", report.problems.len());
    }
}

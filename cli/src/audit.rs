//! `cairn audit TRANSCRIPT`: re-checks a proven job from its transcript alone and prints a
//! per-round table and a verdict; the exit status is 0 only when everything holds.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_coordinator::audit::{audit, AuditReport};
use cairn_protocol::transcript::Transcript;
use clap::Args;

/// `cairn audit` arguments.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The transcript file a proven job wrote (e.g. `cairn-out/transcript.cairn`).
    pub transcript: PathBuf,
}

/// Runs the audit of one transcript file.
pub fn run(args: &AuditArgs) -> Result<()> {
    let bytes = std::fs::read(&args.transcript)
        .with_context(|| format!("reading {}", args.transcript.display()))?;
    let t = Transcript::from_bytes(&bytes)
        .with_context(|| format!("decoding {}", args.transcript.display()))?;
    let t0 = Instant::now();
    let report = audit(&t);
    print(&report, t0.elapsed().as_secs_f64());
    if !report.passed() {
        bail!(
            "audit failed: {} problem(s) in {}",
            report.problems.len(),
            args.transcript.display()
        );
    }
    Ok(())
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
    for p in &report.problems {
        println!("  problem: {p}");
    }
    if report.passed() {
        println!("verdict: PASS — chain, signatures, {proofs} proofs, every aggregate check and the model chain hold ({seconds:.2} s)");
    } else {
        println!("verdict: FAIL — {} problem(s)", report.problems.len());
    }
}

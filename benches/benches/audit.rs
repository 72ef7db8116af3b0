//! Audit throughput: proofs per second that `cairn_coordinator::audit::audit` checks on a
//! real transcript (target: ≥ 300 proofs/s on 2 cores).
//!
//! The transcript is a proven R1 job's (`cairn demo`'s defaults, 5 holders on the fraud
//! table, `CAIRN_AUDIT_ROUNDS` rounds, default 4, i.e. 20 proofs), made on the first run
//! and cached under `<target>/cairn-bench/` (with the keys), so reruns only audit.
//!
//! Reports, as medians of `CAIRN_AUDIT_REPS` runs (default 25): the whole `audit()`; its
//! in-order walk alone (`proof_items`: chain, enrolment signatures, survivor signatures,
//! Σ C_u = commit(S, R), model replay) and the parts of that walk; the proof phase alone:
//! the key, then the proofs one by one (`ProofItem::verify`, the coordinator's per-proof
//! path) sequentially and in parallel with rayon, and as `audit()` checks them
//! (`verify_items`: each round's shared statement parts once, one batch equation); per
//! proof, what one-by-one verification spends on building the statement (Poseidon hashes
//! of the model, the row indices and the hyper-parameters; decoding the commitment) against
//! decoding the proof and the pairing check; and the steps of `verify_items`. Next to the
//! parallel figures, the cores the process actually kept busy (CPU time over wall time).
//!
//! Run: `. scripts/torch-env.sh && cargo bench -p cairn-benches --bench audit`.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cairn_circuits::encoding::point_from_bytes;
use cairn_circuits::fixed::quantize_all;
use cairn_circuits::pedersen::{self, Generators};
use cairn_circuits::training::proof::{self, Proof};
use cairn_circuits::training::{indices_hash, model_hash, FixedHyper, Public};
use cairn_coordinator::audit::{audit, proof_items, verify_items, ProofItem};
use cairn_proofs::rounds::{self, RoundPublic};
use cairn_protocol::job::RoundStatement;
use cairn_protocol::round::{check_survivor_signatures, ProvenSum};
use cairn_protocol::sampling::block_indices;
use cairn_protocol::transcript::{Entry, Transcript};
use common::{bench_dir, load_average, time_median, HOLDERS, R1};
use rayon::prelude::*;

/// The cached transcript of a proven R1 job of `rounds` rounds, or a fresh one.
async fn transcript(rounds: u32) -> Result<(Transcript, String)> {
    let path = bench_dir().join(format!("r1-{HOLDERS}x{rounds}.transcript"));
    if let Ok(bytes) = std::fs::read(&path) {
        match Transcript::from_bytes(&bytes) {
            Ok(t) => return Ok((t, format!("cached {}", path.display()))),
            Err(e) => eprintln!("{}: {e}; making a new one", path.display()),
        }
    }
    let r1 = R1::load(rounds)?;
    let (proving, existed, secs) = r1.keys()?;
    println!(
        "keys {} in {secs:.1} s; running the proven job ({rounds} rounds, {HOLDERS} holders, data: {})…",
        if existed { "loaded" } else { "set up" },
        r1.source
    );
    let t = Instant::now();
    let (summary, _) = r1.run(r1.job.clone(), Some(&proving)).await?;
    let transcript = summary.transcript.context("a proven job's transcript")?;
    std::fs::create_dir_all(bench_dir())?;
    std::fs::write(&path, transcript.to_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((
        transcript,
        format!(
            "made in {:.0} s, saved to {}",
            t.elapsed().as_secs_f64(),
            path.display()
        ),
    ))
}

/// [`time_median`], and the cores the process kept busy over all the runs (CPU time over
/// wall time): on a shared machine, what parallel code actually got.
fn time_with_cores(reps: usize, f: impl FnMut()) -> (Duration, f64) {
    let (t, cpu) = (Instant::now(), common::cpu_seconds());
    let d = time_median(reps, f);
    (d, (common::cpu_seconds() - cpu) / t.elapsed().as_secs_f64())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// The walk's parts, timed each on its own over the whole transcript.
fn walk_parts(t: &Transcript, reps: usize) -> Result<Vec<(&'static str, Duration)>> {
    let Some(Entry::Job { job_id, .. }) = t.records.first().map(|r| &r.entry) else {
        bail!("no job header");
    };
    let mut identities = std::collections::BTreeMap::new();
    let mut enrolments = Vec::new();
    let mut sums = Vec::new();
    for r in &t.records {
        match &r.entry {
            Entry::Enrolled {
                participant,
                identity,
                dataset,
            } => {
                identities.insert(*participant, *identity);
                enrolments.push((*identity, dataset.clone()));
            }
            Entry::Round {
                round,
                inputs,
                threshold,
                survivor_signatures,
                update_sum,
                blinding_limb_sums,
                beacon,
                ..
            } => sums.push((
                *round,
                ProvenSum {
                    update_sum: update_sum.clone(),
                    blinding_limb_sums: blinding_limb_sums.clone(),
                    inputs: inputs.clone(),
                    threshold: *threshold,
                    survivor_signatures: survivor_signatures.clone(),
                    beacon: *beacon,
                },
            )),
            _ => {}
        }
    }
    let d = sums.first().map_or(0, |(_, s)| s.update_sum.len());
    let gens = Generators::new(d);
    Ok(vec![
        (
            "hash chain",
            time_median(reps, || drop(black_box(t.verify_chain()))),
        ),
        (
            "enrolment signatures",
            time_median(reps, || {
                for (id, ds) in &enrolments {
                    black_box(ds.verify(job_id, id).is_ok());
                }
            }),
        ),
        (
            "survivor-list signatures",
            time_median(reps, || {
                for (round, s) in &sums {
                    black_box(
                        check_survivor_signatures(job_id, *round, s, |p| {
                            identities.get(&p).copied()
                        })
                        .is_ok(),
                    );
                }
            }),
        ),
        (
            "Pedersen generators of the aggregate checks (once per audit)",
            time_median(reps, || drop(black_box(Generators::new(d)))),
        ),
        (
            "aggregate checks Σ C_u = commit(S, R), all rounds",
            time_median(reps, || {
                for (_, s) in &sums {
                    black_box(rounds::check_sum_with(&gens, s).is_ok());
                }
            }),
        ),
        (
            "  of which decoding the commitments and summing them",
            time_median(reps, || {
                for (_, s) in &sums {
                    let c: Vec<_> = s
                        .inputs
                        .iter()
                        .filter_map(|(_, i)| point_from_bytes(&i.commitment).ok())
                        .collect();
                    let _ = black_box(pedersen::sum(&c));
                }
            }),
        ),
    ])
}

/// Per-proof costs of the sequential proof phase, summed over all proofs.
fn proof_parts(
    items: &[ProofItem],
    check: impl Fn(&Public, &Proof) -> bool,
    reps: usize,
) -> Vec<(&'static str, Duration)> {
    let statements: Vec<_> = items
        .iter()
        .filter_map(|it| {
            rounds::statement(&it.statement, it.participant, &it.dataset, &it.input).ok()
        })
        .collect();
    let proofs: Vec<Proof> = items
        .iter()
        .filter_map(|it| Proof::from_bytes(&it.input.proof).ok())
        .collect();
    vec![
        (
            "statement (rounds::statement), all of it",
            time_median(reps, || {
                for it in items {
                    black_box(
                        rounds::statement(&it.statement, it.participant, &it.dataset, &it.input)
                            .is_ok(),
                    );
                }
            }),
        ),
        (
            "  model: quantise + Poseidon hash (same for a round's proofs)",
            time_median(reps, || {
                for it in items {
                    let m = quantize_all(&it.statement.global).unwrap_or_default();
                    black_box(model_hash(&m));
                }
            }),
        ),
        (
            "  block indices: sample + Poseidon hash",
            time_median(reps, || {
                for it in items {
                    let st = &it.statement;
                    let idx = block_indices(
                        st.round_seed,
                        it.participant,
                        it.dataset.n_rows as usize,
                        st.hyper.local_steps,
                        st.hyper.batch_size,
                        st.proof.block_rows,
                    );
                    black_box(indices_hash(&idx));
                }
            }),
        ),
        (
            "  hyper-parameters: Poseidon hash (same for the job)",
            time_median(reps, || {
                for it in items {
                    let st = &it.statement;
                    let shape = rounds::shape(&st.model, &st.hyper, &st.proof).expect("shape");
                    if let Ok(h) = FixedHyper::new(&st.hyper, st.proof.tolerance) {
                        black_box(h.hash(&shape));
                    }
                }
            }),
        ),
        (
            "  commitment: decode (curve and subgroup checks)",
            time_median(reps, || {
                for it in items {
                    black_box(point_from_bytes(&it.input.commitment).is_ok());
                }
            }),
        ),
        (
            "proof: decode (curve and subgroup checks)",
            time_median(reps, || {
                for it in items {
                    black_box(Proof::from_bytes(&it.input.proof).is_ok());
                }
            }),
        ),
        (
            "Groth16 check (input MSM + pairings)",
            time_median(reps, || {
                for ((_, public), p) in statements.iter().zip(&proofs) {
                    black_box(check(public, p));
                }
            }),
        ),
    ]
}

/// The steps of `verify_items`, each timed alone over all proofs, one thread.
fn batch_parts(
    items: &[ProofItem],
    pvk: &ark_groth16::PreparedVerifyingKey<ark_bn254::Bn254>,
    reps: usize,
) -> Vec<(&'static str, Duration)> {
    let mut statements: Vec<&Arc<RoundStatement>> = Vec::new();
    for it in items {
        if !statements.iter().any(|s| Arc::ptr_eq(s, &it.statement)) {
            statements.push(&it.statement);
        }
    }
    let parts: Vec<RoundPublic> = statements
        .iter()
        .filter_map(|st| RoundPublic::new(st).ok())
        .collect();
    let part_of = |it: &ProofItem| {
        statements
            .iter()
            .position(|s| Arc::ptr_eq(s, &it.statement))
            .and_then(|i| parts.get(i))
    };
    let batch: Vec<(Public, Proof)> = items
        .iter()
        .filter_map(|it| {
            let public = part_of(it)?
                .statement(it.participant, &it.dataset, &it.input)
                .ok()?;
            Some((public, Proof::from_bytes(&it.input.proof).ok()?))
        })
        .collect();
    vec![
        (
            "shared statement parts, once per round (RoundPublic::new)",
            time_median(reps, || {
                for st in &statements {
                    black_box(RoundPublic::new(st).is_ok());
                }
            }),
        ),
        (
            "each proof's statement from them (indices hash, commitment)",
            time_median(reps, || {
                for it in items {
                    if let Some(p) = part_of(it) {
                        black_box(p.statement(it.participant, &it.dataset, &it.input).is_ok());
                    }
                }
            }),
        ),
        (
            "decoding the proofs",
            time_median(reps, || {
                for it in items {
                    black_box(Proof::from_bytes(&it.input.proof).is_ok());
                }
            }),
        ),
        (
            "the batch equation (proof::verify_batch), all proofs",
            time_median(reps, || {
                let ok = proof::verify_batch(pvk, &batch, &mut rand::rngs::OsRng);
                assert!(ok.unwrap_or(false), "the batch holds");
            }),
        ),
    ]
}

async fn bench() -> Result<()> {
    let rounds = common::env_usize("CAIRN_AUDIT_ROUNDS", 4) as u32;
    let reps = common::env_usize("CAIRN_AUDIT_REPS", 25);
    println!("load average at start: {}", load_average());
    let (t, origin) = transcript(rounds).await?;
    let report = audit(&t);
    if !report.passed() {
        bail!(
            "the transcript does not pass its audit: {}",
            report
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let (vk_bytes, items) = proof_items(&t).map_err(|e| anyhow!(e))?;
    let n = items.len();
    println!(
        "transcript: {} records, {} rounds, {n} proofs, {} holders ({origin}); rayon threads: {}",
        t.records.len(),
        report.rounds.len(),
        report.enrolled,
        rayon::current_num_threads()
    );

    let Some(Entry::Job {
        model,
        hyper,
        proof: spec,
        ..
    }) = t.records.first().map(|r| &r.entry)
    else {
        bail!("no job header");
    };
    let shape = rounds::shape(model, hyper, spec)?;
    let prepare = || -> Result<_> { Ok(proof::prepare(&proof::vk_from_bytes(&shape, &vk_bytes)?)) };
    let pvk = prepare()?;

    let (whole, whole_cores) = time_with_cores(reps, || drop(black_box(audit(&t))));
    let walk = time_median(reps, || drop(black_box(proof_items(&t))));
    let key = time_median(reps, || drop(black_box(prepare())));
    let seq = time_median(reps, || {
        let ok = items.iter().all(|it| it.verify(&pvk).is_ok());
        assert!(ok, "every proof verifies");
    });
    let (par, par_cores) = time_with_cores(reps, || {
        let ok = items.par_iter().all(|it| it.verify(&pvk).is_ok());
        assert!(ok, "every proof verifies");
    });
    let (batched, batched_cores) = time_with_cores(reps, || {
        let ok = verify_items(&pvk, &items).iter().all(Result::is_ok);
        assert!(ok, "every proof verifies");
    });
    let threads = rayon::current_num_threads();

    println!("\n| measure | time | proofs/s |");
    println!("|---|---:|---:|");
    println!(
        "| **whole `audit()`** ({n} proofs: walk + key + `verify_items`; {whole_cores:.2} cores busy) | {:.1} ms | **{:.0}** |",
        ms(whole),
        rate(n, whole)
    );
    println!(
        "| the same with the proofs one by one in parallel (the audit before `verify_items`: walk + key + per-proof, rayon) | {:.1} ms | {:.0} |",
        ms(walk + key + par),
        rate(n, walk + key + par)
    );
    println!(
        "| walk alone (`proof_items`: every check but the proofs) | {:.1} ms | — |",
        ms(walk)
    );
    println!(
        "| verifying key: decode + prepare | {:.2} ms | — |",
        ms(key)
    );
    println!(
        "| proofs one by one, sequential (`ProofItem::verify`, 1 thread) | {:.1} ms | {:.0} |",
        ms(seq),
        rate(n, seq)
    );
    println!(
        "| proofs one by one, parallel (rayon, {threads} threads; {par_cores:.2} cores busy) | {:.1} ms | {:.0} |",
        ms(par),
        rate(n, par)
    );
    println!(
        "| **proofs as `audit()` checks them** (`verify_items`: shared parts per round, batch equation; rayon, {threads} threads; {batched_cores:.2} cores busy) | {:.1} ms | **{:.0}** |",
        ms(batched),
        rate(n, batched)
    );

    println!("\nwhere the walk's time goes (all rounds):");
    for (what, d) in walk_parts(&t, reps)? {
        println!("  {what:<55} {:>8.2} ms", ms(d));
    }
    println!(
        "\nwhere the sequential proof phase's time goes (all {n} proofs, per proof in brackets):"
    );
    let check = |public: &Public, p: &Proof| proof::verify(&pvk, public, p).unwrap_or(false);
    for (what, d) in proof_parts(&items, check, reps) {
        println!(
            "  {what:<65} {:>8.2} ms  ({:.3} ms)",
            ms(d),
            ms(d) / n as f64
        );
    }
    println!("\nwhere `verify_items`'s time goes (all {n} proofs, sequential parts):");
    for (what, d) in batch_parts(&items, &pvk, reps) {
        println!("  {what:<65} {:>8.2} ms", ms(d));
    }
    println!(
        "\ntarget >= 300 proofs/s on 2 cores: {} ({:.0} proofs/s for the whole audit)",
        if rate(n, whole) >= 300.0 {
            "met"
        } else {
            "NOT met"
        },
        rate(n, whole)
    );
    println!("load average at the end: {}", load_average());
    Ok(())
}

fn main() -> Result<()> {
    common::harness_main(bench)
}

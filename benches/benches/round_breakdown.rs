//! Where a proven round's time goes: 5 holders, the reference configuration R1 (`cairn
//! demo`'s defaults: logistic regression, K = 1, B = 16, trees of depth 12 over blocks of 8 rows, τ = 1e-3,
//! SecAgg+) on the fraud table, run end to end on loopback QUIC, against the same job
//! without proofs (the proof-free secure round).
//!
//! Each round's wall time (the coordinator's `RoundRecord::seconds`) is split along the
//! round's critical path:
//!
//! - **train**, **prove**: the slowest holder's (largest train + prove) seconds from its
//!   `Progress::Trained` report. The holders train and prove at the same time, so these
//!   are wall times with 5 provers sharing the machine's cores.
//! - **replay**: `rounds::replay_update` (the fixed-point replay of that holder's round,
//!   the part of proving that is not Groth16), timed alone after the job on the round's
//!   statement from the transcript; subtracted from the holder's prove seconds.
//! - **mask**: one holder's `ClientShared::mask` (decrypt its inbox, key agreements,
//!   masking) with the proven update's encoding into the ring, measured with the
//!   `cairn_crypto::secagg` API for n = 5 and the job's vector length (parameters + 16
//!   blinding limbs + 1 loss).
//! - **verify**: the round's last verdict's `RoundRecord::verify_seconds` entry (verdicts are
//!   recorded as they come back; each proof is checked on a blocking thread as it
//!   arrives, so only the last one holds the round up).
//! - **unmask**: what follows the masked inputs, measured like mask: the coordinator's
//!   sum of the masked inputs, survivor list, signature checks, seed reconstruction and
//!   mask removal (`Unmasking::finish`), plus one holder's consistency signature and
//!   unmask response (the holders answer in parallel).
//! - **network**: the rest, wall − (train + prove + mask + verify + unmask): QUIC and
//!   serialisation, the round trips of the SecAgg+ phases, scheduling, the coordinator's
//!   test evaluation. The key-agreement and share phases run while the holders train,
//!   so their (measured, printed) cost is off the critical path.
//!
//! The proof-free baseline runs the same job with `proof: None` (still secure
//! aggregation; more rounds, they are fast). The overhead factor is the median proven
//! round wall time over the median proof-free one. Key setup and the holders' dataset
//! trees are per job, not per round: reported separately.
//!
//! Run: `. scripts/torch-env.sh && cargo bench -p cairn-benches --bench round_breakdown`
//! (`CAIRN_BENCH_ROUNDS`, default 3: proven rounds; `CAIRN_BENCH_BASE_ROUNDS`, default 20:
//! proof-free rounds). Keys live in `<target>/cairn-bench/keys` (set up on first run).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use cairn_circuits::pedersen::random_blinding;
use cairn_coordinator::audit::proof_items;
use cairn_coordinator::{Progress, RoundRecord};
use cairn_crypto::quant::{quantise_stochastic, QuantParams};
use cairn_crypto::ring::{from_signed, RingElem};
use cairn_crypto::secagg::*;
use cairn_crypto::sign::IdentityKey;
use cairn_crypto::{ParticipantId, RoundId};
use cairn_proofs::rounds::{self, CommittedData};
use cairn_protocol::round::SecureSettings;
use common::{load_average, median, time_median, HOLDERS, R1};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Seconds of each SecAgg+ step of one round (medians over repetitions): per holder for
/// the client steps, in all for the coordinator's.
#[derive(Clone, Copy, Debug, Default)]
struct SecAggCosts {
    client_keys: f64,
    client_shares: f64,
    server_keys_shares: f64,
    client_mask: f64,
    server_masked: f64,
    client_consistency: f64,
    server_consistency: f64,
    client_unmask: f64,
    server_unmask: f64,
}

impl SecAggCosts {
    /// On the critical path after the masked inputs are sent.
    fn unmask(&self) -> f64 {
        self.server_masked
            + self.client_consistency
            + self.server_consistency
            + self.client_unmask
            + self.server_unmask
    }
}

/// One SecAgg+ round of `n` holders on the crypto API, with `params` update values and
/// `limbs` blinding limbs (the proven encoding when `limbs > 0`, else the float update
/// quantised), timing each step; checks the sum.
fn secagg_round(n: u32, params: usize, limbs: usize, seed: u64) -> Result<SecAggCosts> {
    let settings = SecureSettings::default();
    let p = settings.params(n as usize)?;
    let len = params + limbs + 1;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let ids: Vec<ParticipantId> = (0..n).map(ParticipantId).collect();
    let keys: BTreeMap<ParticipantId, IdentityKey> = ids
        .iter()
        .map(|&id| (id, IdentityKey::random(&mut rng)))
        .collect();
    let identities = keys.iter().map(|(&id, k)| (id, k.public())).collect();
    let config = Arc::new(RoundConfig::new(
        RoundId::new("bench", seed as u32),
        rng.gen(),
        p.k,
        p.threshold,
        len,
        identities,
    )?);
    let quant = QuantParams::new(10.0, settings.scale_bits)?;
    let mut c = SecAggCosts::default();
    let per_client = f64::from(n);
    let secs = |t: Instant| t.elapsed().as_secs_f64();

    let mut server = KeyCollection::new(config.clone());
    let mut advertised = Vec::new();
    for &id in &ids {
        let t = Instant::now();
        let (client, msg) = ClientAdvertised::new(config.clone(), id, &keys[&id], &mut rng)?;
        c.client_keys += secs(t) / per_client;
        let t = Instant::now();
        server.receive(msg)?;
        c.server_keys_shares += secs(t);
        advertised.push((id, client));
    }
    let t = Instant::now();
    let mut server = server.close()?;
    let roster = server.roster();
    c.server_keys_shares += secs(t);
    let mut shared = Vec::new();
    for (id, client) in advertised {
        let t = Instant::now();
        let (client, msg) = client.share_keys(&roster, &mut rng)?;
        c.client_shares += secs(t) / per_client;
        let t = Instant::now();
        server.receive(msg)?;
        c.server_keys_shares += secs(t);
        shared.push((id, client));
    }
    let t = Instant::now();
    let mut server = server.close()?;
    c.server_keys_shares += secs(t);

    let inboxes: Vec<Vec<EncryptedShare>> =
        ids.iter().map(|&id| server.inbox(id).to_vec()).collect();
    let mut expected = vec![0 as RingElem; len];
    let mut masked = Vec::new();
    for ((id, client), inbox) in shared.into_iter().zip(inboxes) {
        let loss: f32 = rng.gen_range(0.0..1.0);
        let update: Vec<i64> = (0..params).map(|_| rng.gen_range(-3000..3000)).collect();
        let floats: Vec<f32> = (0..params).map(|_| rng.gen_range(-0.05..0.05)).collect();
        let limb_values: Vec<u32> = (0..limbs).map(|_| rng.gen_range(0..1 << 16)).collect();
        let t = Instant::now();
        let x: Vec<RingElem> = if limbs > 0 {
            // SecureClient::submit_proven's encoding.
            let mut v: Vec<RingElem> = update.iter().map(|&x| from_signed(x)).collect();
            v.extend(limb_values.iter().map(|&l| RingElem::from(l)));
            v.extend(quantise_stochastic(&[loss], &quant, &mut rng)?);
            v
        } else {
            // SecureClient::submit's.
            let mut f = floats;
            f.push(loss);
            quantise_stochastic(&f, &quant, &mut rng)?
        };
        cairn_crypto::ring::add_assign(&mut expected, &x);
        let (client, msg) = client.mask(&inbox, x)?;
        c.client_mask += secs(t) / per_client;
        let t = Instant::now();
        server.receive(&msg)?;
        c.server_masked += secs(t);
        masked.push((id, client));
    }
    let t = Instant::now();
    let mut server = server.close()?;
    let survivors = server.survivors().to_vec();
    c.server_masked += secs(t);
    let mut consistent = Vec::new();
    for (id, client) in masked {
        let t = Instant::now();
        let (client, sig) = client.consistency(&survivors, &keys[&id])?;
        c.client_consistency += secs(t) / per_client;
        let t = Instant::now();
        server.receive(sig)?;
        c.server_consistency += secs(t);
        consistent.push((id, client));
    }
    let t = Instant::now();
    let mut server = server.close()?;
    c.server_consistency += secs(t);
    for (id, client) in consistent {
        let t = Instant::now();
        let request = server
            .request_for(id)
            .ok_or_else(|| anyhow!("no unmask request for {id}"))?;
        c.server_unmask += secs(t);
        let t = Instant::now();
        let response = client.unmask(&request)?;
        c.client_unmask += secs(t) / per_client;
        let t = Instant::now();
        server.receive(response)?;
        c.server_unmask += secs(t);
    }
    let t = Instant::now();
    let sum = server.finish()?;
    c.server_unmask += secs(t);
    anyhow::ensure!(sum == expected, "the bench's SecAgg+ round must be exact");
    Ok(c)
}

/// Medians of each step over `reps` rounds.
fn secagg_costs(params: usize, limbs: usize, reps: usize) -> Result<SecAggCosts> {
    let runs = (0..reps)
        .map(|r| secagg_round(HOLDERS as u32, params, limbs, r as u64 + 1))
        .collect::<Result<Vec<_>>>()?;
    let m = |f: fn(&SecAggCosts) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Ok(SecAggCosts {
        client_keys: m(|c| c.client_keys),
        client_shares: m(|c| c.client_shares),
        server_keys_shares: m(|c| c.server_keys_shares),
        client_mask: m(|c| c.client_mask),
        server_masked: m(|c| c.server_masked),
        client_consistency: m(|c| c.client_consistency),
        server_consistency: m(|c| c.server_consistency),
        client_unmask: m(|c| c.client_unmask),
        server_unmask: m(|c| c.server_unmask),
    })
}

/// One round's critical path, in seconds.
#[derive(Clone, Copy, Debug, Default)]
struct Breakdown {
    round: u32,
    wall: f64,
    train: f64,
    replay: f64,
    prove: f64,
    mask: f64,
    verify: f64,
    unmask: f64,
}

impl Breakdown {
    fn network(&self) -> f64 {
        self.wall - (self.train + self.replay + self.prove + self.mask + self.verify + self.unmask)
    }
}

/// (round, holder) → (train, prove) seconds, and the completed rounds' records.
type Reports = (
    BTreeMap<(u32, String), (f64, Option<f64>)>,
    Vec<RoundRecord>,
);

fn reports(events: &[Progress]) -> Reports {
    let mut trained = BTreeMap::new();
    let mut records = Vec::new();
    for e in events {
        match e {
            Progress::Trained {
                round,
                holder,
                train_seconds,
                prove_seconds,
            } => {
                trained.insert((*round, holder.clone()), (*train_seconds, *prove_seconds));
            }
            Progress::Round(r) if r.failure.is_none() => records.push(r.clone()),
            _ => {}
        }
    }
    (trained, records)
}

/// The slowest holder of `round` (largest train + prove) and its times.
fn slowest(trained: &Reports, round: u32) -> Option<(String, f64, f64)> {
    trained
        .0
        .iter()
        .filter(|((r, _), _)| *r == round)
        .map(|((_, h), (t, p))| (h.clone(), *t, p.unwrap_or(0.0)))
        .max_by(|a, b| (a.1 + a.2).total_cmp(&(b.1 + b.2)))
}

fn ms(s: f64) -> String {
    let v = s * 1e3;
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn print_table(title: &str, rows: &[Breakdown]) {
    println!("\n{title}");
    println!("| round | wall | train | replay | prove | mask | verify | unmask | network |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let line = |name: String, b: &Breakdown, net: f64| {
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ms(b.wall),
            ms(b.train),
            ms(b.replay),
            ms(b.prove),
            ms(b.mask),
            ms(b.verify),
            ms(b.unmask),
            ms(net)
        );
    };
    for b in rows {
        line(b.round.to_string(), b, b.network());
    }
    let m = |f: fn(&Breakdown) -> f64| median(&rows.iter().map(f).collect::<Vec<_>>());
    let med = Breakdown {
        round: 0,
        wall: m(|b| b.wall),
        train: m(|b| b.train),
        replay: m(|b| b.replay),
        prove: m(|b| b.prove),
        mask: m(|b| b.mask),
        verify: m(|b| b.verify),
        unmask: m(|b| b.unmask),
    };
    line(
        format!("**median** ({} rounds)", rows.len()),
        &med,
        m(Breakdown::network),
    );
    println!("(milliseconds; the median row is the median of each column)");
}

async fn bench() -> Result<()> {
    let rounds = common::env_usize("CAIRN_BENCH_ROUNDS", 3) as u32;
    let base_rounds = common::env_usize("CAIRN_BENCH_BASE_ROUNDS", 20) as u32;
    println!("load average at start: {}", load_average());
    let r1 = R1::load(rounds)?;
    let n_params = r1.job.model.param_count();
    let limbs = r1.job.proof.map_or(0, |p| p.blinding_limbs as usize);
    println!(
        "R1: {} ({n_params} parameters), K={}, B={}, {HOLDERS} holders ({} rows), data: {}",
        r1.job.model.describe(),
        r1.job.hyper.local_steps,
        r1.job.hyper.batch_size,
        r1.holders
            .iter()
            .map(|h| h.n_rows().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        r1.source
    );

    let (proving, existed, key_secs) = r1.keys()?;
    println!(
        "keys: {} in {key_secs:.1} s ({})",
        if existed { "loaded" } else { "set up" },
        common::bench_dir().join("keys").display()
    );
    let spec = r1.job.proof.context("R1 proves")?;
    let t = Instant::now();
    let data: Vec<CommittedData> = r1
        .holders
        .iter()
        .map(|h| CommittedData::new(&h.features, h.n_features, &h.labels, &spec))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!(e))?;
    println!(
        "dataset trees (depth {}), once per job per holder: {:.2} s each (mean of {HOLDERS}, built here for the replay timing)",
        spec.tree_depth,
        t.elapsed().as_secs_f64() / HOLDERS as f64
    );

    // SecAgg+ steps with the crypto API, both vector layouts.
    let proven_sa = secagg_costs(n_params, limbs, 101)?;
    let plain_sa = secagg_costs(n_params, 0, 101)?;

    // The proof-free secure round first (seconds), then the proven job (minutes).
    let (base, base_events) = r1.run(r1.proof_free(base_rounds), None).await?;
    let base_reports = reports(&base_events);
    println!(
        "proof-free job: {} rounds; load average now {}",
        base.rounds_completed,
        load_average()
    );
    let (t, cpu) = (Instant::now(), common::cpu_seconds());
    let (summary, events) = r1.run(r1.job.clone(), Some(&proving)).await?;
    let job_secs = t.elapsed().as_secs_f64();
    let job_cpu = common::cpu_seconds() - cpu;
    println!(
        "proven job: {} rounds in {job_secs:.1} s (with enrolment and the holders' trees), {job_cpu:.0} CPU-s = {:.2} cores busy on average; load average now {}",
        summary.rounds_completed,
        job_cpu / job_secs,
        load_average()
    );
    let proven_reports = reports(&events);

    // Replay times, alone, for each proof of the transcript (holder found by its root).
    let transcript = summary
        .transcript
        .as_ref()
        .context("a proven job's transcript")?;
    let (_, items) = proof_items(transcript).map_err(|e| anyhow!(e))?;
    let roots: Vec<[u8; 32]> = data.iter().map(CommittedData::root).collect();
    let mut replay: BTreeMap<(u32, String), f64> = BTreeMap::new();
    let mut witness = Vec::new();
    for it in &items {
        let h = roots
            .iter()
            .position(|r| *r == it.dataset.root)
            .context("a proof from an unknown holder")?;
        let d = &data[h];
        let mut update = Vec::new();
        let t = time_median(21, || {
            update = rounds::replay_update(&it.statement, it.participant, d).unwrap_or_default();
        });
        replay.insert((it.round, format!("holder-{h}")), t.as_secs_f64());
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(it.participant));
        let w = time_median(5, || {
            let _ = rounds::round_witness(
                &it.statement,
                it.participant,
                d,
                &update,
                random_blinding(&mut rng),
            );
        });
        witness.push(w.as_secs_f64());
    }

    let mut rows = Vec::new();
    for rec in &proven_reports.1 {
        let (holder, train, prove) =
            slowest(&proven_reports, rec.round).context("no holder reported the round")?;
        let replay = replay.get(&(rec.round, holder)).copied().unwrap_or(0.0);
        let verify = rec
            .verify_seconds
            .as_ref()
            .and_then(|v| v.last().copied())
            .unwrap_or(0.0);
        rows.push(Breakdown {
            round: rec.round,
            wall: rec.seconds,
            train,
            replay,
            prove: prove - replay,
            mask: proven_sa.client_mask,
            verify,
            unmask: proven_sa.unmask(),
        });
    }
    let mut base_rows = Vec::new();
    for rec in &base_reports.1 {
        let (_, train, _) = slowest(&base_reports, rec.round).context("no holder reported")?;
        base_rows.push(Breakdown {
            round: rec.round,
            wall: rec.seconds,
            train,
            mask: plain_sa.client_mask,
            unmask: plain_sa.unmask(),
            ..Breakdown::default()
        });
    }

    print_table(
        "proven round (R1, 5 holders, SecAgg+ and Groth16), critical path:",
        &rows,
    );
    print_table(
        "proof-free secure round (same job, proof: None):",
        &base_rows,
    );
    let proven_wall = median(&rows.iter().map(|b| b.wall).collect::<Vec<_>>());
    let base_wall = median(&base_rows.iter().map(|b| b.wall).collect::<Vec<_>>());
    println!(
        "\noverhead factor: median proven round {} ms / median proof-free secure round {} ms = x{:.0} (RoFL: x2.9-9.8)",
        ms(proven_wall),
        ms(base_wall),
        proven_wall / base_wall
    );

    let all_verify: Vec<f64> = proven_reports
        .1
        .iter()
        .filter_map(|r| r.verify_seconds.clone())
        .flatten()
        .collect();
    let all_prove: Vec<f64> = proven_reports.0.values().filter_map(|(_, p)| *p).collect();
    let all_train: Vec<f64> = proven_reports.0.values().map(|(t, _)| *t).collect();
    println!("\ndetails (medians; milliseconds):");
    println!(
        "  per holder, all rounds: train {} (proof-free job: {}), prove {} (min {}, max {}), replay alone {}, whole witness alone (replay + Merkle paths + commitment) {}",
        ms(median(&all_train)),
        ms(median(&base_reports.0.values().map(|(t, _)| *t).collect::<Vec<_>>())),
        ms(median(&all_prove)),
        ms(all_prove.iter().copied().fold(f64::INFINITY, f64::min)),
        ms(all_prove.iter().copied().fold(0.0, f64::max)),
        ms(median(&replay.values().copied().collect::<Vec<_>>())),
        ms(median(&witness))
    );
    println!(
        "  verify, each of the {} proofs: median {}, max {}",
        all_verify.len(),
        ms(median(&all_verify)),
        ms(all_verify.iter().copied().fold(0.0, f64::max))
    );
    for (name, c, len) in [
        ("proven", proven_sa, n_params + limbs + 1),
        ("proof-free", plain_sa, n_params + 1),
    ] {
        println!(
            "  SecAgg+ ({name}, n={HOLDERS}, {len} ring elements): client keys {} + shares {}, coordinator keys+shares {} (off the path: during training); client mask {}; coordinator sum+close {}, client consistency {}, coordinator consistency {}, client unmask {}, coordinator unmask {} (= unmask {})",
            ms(c.client_keys),
            ms(c.client_shares),
            ms(c.server_keys_shares),
            ms(c.client_mask),
            ms(c.server_masked),
            ms(c.client_consistency),
            ms(c.server_consistency),
            ms(c.client_unmask),
            ms(c.server_unmask),
            ms(c.unmask()),
        );
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}

fn main() -> Result<()> {
    common::harness_main(bench)
}

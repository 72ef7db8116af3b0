//! The audit is complete, not just consistent (security review, issue 12 item 5): the
//! attacks of `../shared/security-poc/audit-truncation.patch`, run on a real proven
//! transcript (three holders, real Groth16 proofs, real signatures), and more — each must
//! now fail the audit, naming what is wrong, while the honest transcript passes.

use std::sync::Arc;

use cairn_circuits::training::{proof, prover::Prover};
use cairn_coordinator::audit::{audit, AuditReport, FindingKind};
use cairn_crypto::secagg::survivors_payload;
use cairn_crypto::sign::IdentityKey;
use cairn_crypto::{ParticipantId as CryptoId, RoundId};
use cairn_proofs::rounds::{self, proof_spec, prove_update, replay_update, CommittedData};
use cairn_protocol::job::RoundStatement;
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::randomness::{self, Contribution, RandomnessError};
use cairn_protocol::round::{mean_from_sum, SecureSettings, SurvivorSignatureError};
use cairn_protocol::server_opt::{ServerOptState, ServerOptimizer};
use cairn_protocol::transcript::{model_hash, seal_payload, Entry, Transcript};
use cairn_protocol::wire::{DatasetCommitment, PROVEN_SCALE_BITS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const JOB: &str = "audit-completeness";
const HOLDERS: u32 = 3;

/// An honest, sealed transcript of `rounds` proven rounds, and the keys that made it.
struct Job {
    t: Transcript,
    holders: Vec<IdentityKey>,
    coordinator: IdentityKey,
}

fn honest_job(rounds: u32) -> Job {
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let model = ModelSpec::mlp(3, vec![]);
    let hyper = HyperParams {
        local_steps: 1,
        batch_size: 2,
        learning_rate: 0.1,
        clip_norm: 5.0,
    };
    let spec = proof_spec(0.01, 2, 20, 2);
    let shape = rounds::shape(&model, &hyper, &spec).expect("shape");
    let (pk, vk) = proof::setup(&shape, &mut rng).expect("setup");
    let prover = Prover::new(&shape, pk).expect("prover");
    let server = ServerOptimizer::FedAvg { lr: 1.0 };
    let secure = SecureSettings::default();
    let coordinator = IdentityKey::random(&mut rng);
    let initial = vec![0.1, -0.2, 0.3, 0.05];
    let mut t = Transcript::default();
    t.append(Entry::Job {
        job_id: JOB.into(),
        model: model.clone(),
        hyper: hyper.clone(),
        server,
        scale_bits: PROVEN_SCALE_BITS,
        proof: spec,
        verifying_key: proof::vk_to_bytes(&shape, &vk),
        initial_model: initial.clone(),
        min_participants: 2,
        dropout: secure.dropout,
        corruption: secure.corruption,
        coordinator: coordinator.public(),
        privacy: None,
    });
    let mut holders = Vec::new();
    let mut data = Vec::new();
    for p in 0..HOLDERS {
        let key = IdentityKey::random(&mut rng);
        let features: Vec<f32> = (0..12).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let rows = CommittedData::new(&features, 3, &[0.0, 1.0, 1.0, 0.0], &spec).expect("rows");
        t.append(Entry::Enrolled {
            participant: p,
            identity: key.public(),
            dataset: DatasetCommitment::sign(JOB, rows.root(), 4, &key),
        });
        holders.push(key);
        data.push(rows);
    }
    // The holders' commit-reveal, recorded before the first round.
    let mut contributions: Vec<Contribution> = holders
        .iter()
        .map(|k| {
            let r = randomness::contribution(k, JOB);
            Contribution {
                identity: k.public(),
                commitment: randomness::commit(&r),
                reveal: r,
            }
        })
        .collect();
    contributions.sort_by_key(|c| c.identity.0);
    let beacon = randomness::beacon(JOB, &contributions);
    let index = |p: u32| {
        randomness::holder_index(&contributions, &holders[p as usize].public()).expect("index")
    };
    let indices: Vec<u32> = (0..HOLDERS).map(index).collect();
    t.append(Entry::Randomness { contributions });
    let mut current = initial;
    let mut opt = ServerOptState::new(server, current.len()).expect("optimiser");
    let t_round = secure.params(HOLDERS as usize).expect("params").threshold;
    for round in 1..=rounds {
        let st = Arc::new(RoundStatement {
            round,
            model: model.clone(),
            global: current.clone(),
            hyper: hyper.clone(),
            round_seed: randomness::round_seed(&beacon, round),
            proof: spec,
        });
        let mut s = vec![0i64; current.len()];
        let mut limbs = vec![0u64; spec.blinding_limbs as usize];
        let mut inputs = Vec::new();
        for p in 0..HOLDERS {
            let i = indices[p as usize];
            let update = replay_update(&st, i, &data[p as usize]).expect("replay");
            let proven = prove_update(&prover, &st, i, &data[p as usize], &update, None, &mut rng)
                .expect("proof");
            for (a, b) in s.iter_mut().zip(&proven.update) {
                *a += b;
            }
            for (a, b) in limbs.iter_mut().zip(&proven.blinding_limbs) {
                *a += u64::from(*b);
            }
            inputs.push((p, proven.input));
        }
        let survivors: Vec<CryptoId> = (0..HOLDERS).map(CryptoId).collect();
        let payload = survivors_payload(&RoundId::new(JOB, round), &survivors);
        let signatures = (0..HOLDERS)
            .map(|p| (p, holders[p as usize].sign(&payload)))
            .collect();
        let before = model_hash(&current);
        opt.apply(
            &mut current,
            &mean_from_sum(&s, HOLDERS as usize, PROVEN_SCALE_BITS),
        )
        .expect("step");
        t.append(Entry::Round {
            round,
            round_seed: st.round_seed,
            global_hash: before,
            participants: (0..HOLDERS).collect(),
            inputs,
            dropped: vec![],
            threshold: t_round as u32,
            survivor_signatures: signatures,
            update_sum: s,
            blinding_limb_sums: limbs,
            new_model_hash: model_hash(&current),
            beacon: None,
        });
    }
    let mut job = Job {
        t,
        holders,
        coordinator,
    };
    let final_hash = model_hash(&current);
    job.seal(rounds, rounds, final_hash, true);
    job
}

impl Job {
    /// Appends the seal over the current head: the coordinator's signature and, when
    /// `holders_sign`, every holder's.
    fn seal(&mut self, last_round: u32, completed: u32, final_hash: [u8; 32], holders_sign: bool) {
        let payload = seal_payload(JOB, &self.t.head(), last_round, completed, &final_hash);
        let countersignatures = if holders_sign {
            self.holders
                .iter()
                .map(|k| (k.public(), k.sign(&payload)))
                .collect()
        } else {
            Vec::new()
        };
        self.t.append(Entry::Finished {
            last_round,
            rounds_completed: completed,
            final_model_hash: final_hash,
            error: None,
            coordinator_signature: self.coordinator.sign(&payload),
            countersignatures,
        });
    }
}

/// The entries of `t` rebuilt into a fresh chain (what a forger writes: the chain is
/// unkeyed, so its hashes alone prove nothing).
fn rechain(entries: impl IntoIterator<Item = Entry>) -> Transcript {
    let mut t = Transcript::default();
    for e in entries {
        t.append(e);
    }
    t
}

fn entries(t: &Transcript) -> Vec<Entry> {
    t.records.iter().map(|r| r.entry.clone()).collect()
}

/// The report fails, and one of its findings is of the kind the pattern names.
macro_rules! assert_finds {
    ($report:expr, $kind:pat $(if $guard:expr)?) => {{
        let report: &AuditReport = $report;
        assert!(!report.passed(), "passed: {report:?}");
        assert!(
            report
                .problems
                .iter()
                .any(|f| matches!(&f.kind, $kind $(if $guard)?)),
            "no finding is {}: {:#?}",
            stringify!($kind),
            report.problems
        );
    }};
}

#[test]
fn an_honest_sealed_transcript_passes() {
    let job = honest_job(2);
    let report = audit(&job.t);
    assert!(report.passed(), "{:?}", report.problems);
    assert!(report.finished);
    assert_eq!(report.countersigned, HOLDERS as usize);
    assert_eq!(report.rounds.len(), 2);
}

#[test]
fn an_unsigned_round_with_threshold_zero_fails() {
    // The PoC's first transcript: the coordinator records t = 0 and no survivor signed.
    let job = honest_job(1);
    let forged = rechain(entries(&job.t).into_iter().map(|mut e| {
        if let Entry::Round {
            threshold,
            survivor_signatures,
            ..
        } = &mut e
        {
            *threshold = 0;
            survivor_signatures.clear();
        }
        e
    }));
    let report = audit(&forged);
    assert_finds!(
        &report,
        FindingKind::ThresholdMismatch {
            recorded: 0,
            selected: 3,
            ..
        }
    );
    assert_finds!(
        &report,
        FindingKind::SurvivorSignatures {
            error: SurvivorSignatureError::TooFew { have: 0, need: 2 }
        }
    );
}

#[test]
fn a_transcript_cut_short_fails() {
    let job = honest_job(2);
    // Cut after the enrolments (the PoC's second transcript), after the randomness, and
    // after round 1.
    let header = 2 + HOLDERS as usize;
    for keep in [header - 1, header, header + 1] {
        let cut = rechain(entries(&job.t).into_iter().take(keep));
        assert_finds!(&audit(&cut), FindingKind::NotFinished);
    }
    // Cut after round 1 and sealed again by the coordinator, which cannot get the holders
    // to sign that head: with their old countersignatures copied, or with none.
    let mut cut = Job {
        t: rechain(entries(&job.t).into_iter().take(header + 1)),
        holders: job.holders.clone(),
        coordinator: job.coordinator.clone(),
    };
    let Some(Entry::Round { new_model_hash, .. }) = cut.t.records.last().map(|r| r.entry.clone())
    else {
        unreachable!()
    };
    cut.seal(1, 1, new_model_hash, false);
    assert_finds!(
        &audit(&cut.t),
        FindingKind::TooFewCountersignatures {
            round: 1,
            vouching: 0,
            threshold: 2
        }
    );
    let Some(Entry::Finished {
        countersignatures: old,
        ..
    }) = job.t.records.last().map(|r| r.entry.clone())
    else {
        unreachable!()
    };
    let mut copied = entries(&cut.t);
    if let Some(Entry::Finished {
        countersignatures, ..
    }) = copied.last_mut()
    {
        *countersignatures = old;
    }
    assert_finds!(
        &audit(&rechain(copied)),
        FindingKind::CountersignatureInvalid { .. }
    );
}

#[test]
fn a_round_appended_after_the_seal_or_out_of_sequence_fails() {
    // The PoC's appended round: no survivors, no proofs, no signatures, numbered 9.
    let job = honest_job(1);
    let Some(Entry::Round { new_model_hash, .. }) = job
        .t
        .records
        .iter()
        .rev()
        .find(|r| matches!(r.entry, Entry::Round { .. }))
        .map(|r| r.entry.clone())
    else {
        unreachable!()
    };
    let empty = Entry::Round {
        round: 9,
        round_seed: [0; 32],
        global_hash: new_model_hash,
        participants: vec![],
        inputs: vec![],
        dropped: vec![],
        threshold: 0,
        survivor_signatures: vec![],
        update_sum: vec![0; 4],
        blinding_limb_sums: vec![0; 16],
        new_model_hash,
        beacon: None,
    };
    let mut after = entries(&job.t);
    after.push(empty.clone());
    let report = audit(&rechain(after));
    assert_finds!(&report, FindingKind::AfterSeal { .. });
    assert_finds!(
        &report,
        FindingKind::OutOfSequence {
            round: 9,
            expected: 2
        }
    );
    assert_finds!(&report, FindingKind::TooFewSurvivors { need: 2, .. });

    // Slipped in before the seal (the coordinator re-seals, with no holder's signature).
    let mut before = entries(&job.t);
    before.pop();
    before.push(empty);
    let mut resealed = Job {
        t: rechain(before),
        holders: job.holders.clone(),
        coordinator: job.coordinator.clone(),
    };
    resealed.seal(9, 2, new_model_hash, false);
    let report = audit(&resealed.t);
    assert_finds!(
        &report,
        FindingKind::OutOfSequence {
            round: 9,
            expected: 2
        }
    );
    assert_finds!(&report, FindingKind::NoSecAggParams { selected: 0, .. });
    assert_finds!(
        &report,
        FindingKind::TooFewCountersignatures { round: 9, .. }
    );
}

/// #12 item 4: the auditor re-derives every round seed from the recorded contributions.
#[test]
fn round_seeds_not_drawn_from_the_recorded_randomness_fail() {
    let job = honest_job(1);
    let base = entries(&job.t);
    // The coordinator picks round 1's seed itself.
    let mut e = base.clone();
    for entry in &mut e {
        if let Entry::Round { round_seed, .. } = entry {
            *round_seed = [7; 32];
        }
    }
    assert_finds!(
        &audit(&rechain(e)),
        FindingKind::SeedNotDerived { round: 1 }
    );
    // Or leaves the randomness out.
    let e: Vec<Entry> = base
        .iter()
        .filter(|e| !matches!(e, Entry::Randomness { .. }))
        .cloned()
        .collect();
    assert_finds!(&audit(&rechain(e)), FindingKind::RoundBeforeRandomness);
    // Or records a contribution that does not open its commitment.
    let mut e = base.clone();
    for entry in &mut e {
        if let Entry::Randomness { contributions } = entry {
            contributions[0].reveal[0] ^= 1;
        }
    }
    assert_finds!(
        &audit(&rechain(e)),
        FindingKind::Randomness {
            error: RandomnessError::BadReveal(_)
        }
    );
    // Or records it twice.
    let mut e = base;
    let again = e
        .iter()
        .find(|e| matches!(e, Entry::Randomness { .. }))
        .cloned()
        .expect("recorded");
    e.insert(5, again);
    assert_finds!(&audit(&rechain(e)), FindingKind::RandomnessTwice);
}

//! The full verifiable round over real QUIC on loopback, with real Groth16 proofs on a
//! small circuit shape: holders commit to their rows, train with tch, prove, and send
//! their masked input with its commitment and proof; the coordinator verifies every
//! proof and checks Σ C_u = commit(S, R) before it applies each round; the transcript it
//! keeps audits clean, and tampering with any kind of element is named by the audit.

use ark_bn254::Bn254;
use ark_groth16::Groth16;
use cairn_cli::export_verifier::{from_transcript, write};
use cairn_cli::federate::{run_federated, Proving};
use cairn_cli::options::TrainArgs;
use cairn_coordinator::audit::{audit, FindingKind};
use cairn_datasets::{partition, synthetic, LoadOptions, Partition};
use cairn_participant::trainer::{DeviceChoice, TchTrainer, Trainer};
use cairn_protocol::round::SurvivorSignatureError;
use cairn_protocol::transcript::{Entry, Transcript};
use cairn_protocol::wire::ProvenInput;
use tokio::sync::mpsc;

fn proven_args() -> TrainArgs {
    TrainArgs {
        rounds: Some(2),
        hidden: Some("none".into()),
        steps: Some(1),
        batch: Some(2),
        proofs: Some(true),
        tree_depth: Some(6),
        round_timeout: Some(60),
        join_timeout: Some(60),
        ..TrainArgs::default()
    }
}

/// Whether one of `kinds` is of the kind the pattern names.
macro_rules! has {
    ($kinds:expr, $kind:pat) => {
        $kinds.iter().any(|k| matches!(k, $kind))
    };
}

/// Edits the inputs, S and the new model hash of the round record at `at`.
fn edit_round(
    t: &mut Transcript,
    at: usize,
    f: impl Fn(&mut Vec<(u32, ProvenInput)>, &mut Vec<i64>, &mut [u8; 32]),
) {
    if let Entry::Round {
        inputs,
        update_sum,
        new_model_hash,
        ..
    } = &mut t.records[at].entry
    {
        f(inputs, update_sum, new_model_hash);
    }
}

/// Runs `job` (two rounds) over QUIC with a tch trainer per holder; it must complete both.
async fn run_two_rounds(
    job: &cairn_protocol::job::JobConfig,
    initial: &[f32],
    test: &cairn_datasets::Dataset,
    holders: Vec<cairn_datasets::Dataset>,
    proving: &Proving,
) -> cairn_coordinator::JobSummary {
    let summary = run_federated(
        job.clone(),
        initial.to_vec(),
        test,
        holders,
        || Ok(Box::new(TchTrainer::new(DeviceChoice::Cpu)?) as Box<dyn Trainer>),
        mpsc::unbounded_channel().0,
        Some(proving),
    )
    .await
    .expect("job runs");
    assert_eq!(summary.error, None, "{:?}", summary.rounds);
    assert_eq!(summary.rounds_completed, 2, "{:?}", summary.rounds);
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proven_rounds_over_quic_verify_every_proof_and_apply_the_checked_sum() {
    let data = synthetic(150, 3, 5, &LoadOptions::default());
    let holders = partition(&data.train, 3, &Partition::Iid, 1).expect("partition");
    assert!(
        holders.iter().all(|h| h.n_rows() <= 64),
        "rows fit the depth-6 trees"
    );
    let job = proven_args()
        .job("proven", data.train.n_features, 3, 3)
        .expect("job");
    let keys = tempfile::tempdir().expect("tempdir");
    let (proving, existed) = Proving::load_or_setup(&job, keys.path()).expect("keys");
    assert!(!existed, "a fresh key directory runs the setup");
    let initial = job.model.init_params(3);
    let summary = run_two_rounds(&job, &initial, &data.test, holders, &proving).await;
    for r in &summary.rounds {
        assert_eq!(r.failure, None);
        assert_eq!(r.contributors, 3, "{r:?}");
        let verified = r.verify_seconds.as_ref().expect("proofs were verified");
        assert_eq!(verified.len(), 3, "one verification per holder");
    }
    assert_ne!(summary.model, initial, "the checked sums were applied");

    // The transcript audits clean, and each kind of tampering is named.
    let t = summary.transcript.expect("a proven job keeps a transcript");
    let clean = audit(&t);
    assert!(clean.passed(), "{:?}", clean.problems);
    assert_eq!(clean.rounds.len(), 2);
    assert!(clean
        .rounds
        .iter()
        .all(|r| r.proofs_ok == 3 && r.sum_ok && r.signatures_ok && r.model_ok));
    let round_at = t
        .records
        .iter()
        .position(|r| matches!(r.entry, Entry::Round { .. }))
        .expect("a round record");
    let tampered = |edit: &dyn Fn(&mut Transcript)| {
        let mut bad = t.clone();
        edit(&mut bad);
        let report = audit(&bad);
        assert!(!report.passed());
        report
            .problems
            .into_iter()
            .map(|f| f.kind)
            .collect::<Vec<_>>()
    };
    // The survivors' ids in the record's order, for the findings that name them.
    let Entry::Round { inputs, .. } = &t.records[round_at].entry else {
        unreachable!("found as a round")
    };
    let ids: Vec<u32> = inputs.iter().map(|(p, _)| *p).collect();
    let proof_of = |kinds: &[FindingKind], who: u32| {
        kinds.iter().any(
            |k| matches!(k, FindingKind::ProofInvalid { participant, .. } if *participant == who),
        )
    };
    let p = tampered(&|b| edit_round(b, round_at, |inputs, _, _| inputs[1].1.proof[5] ^= 1));
    assert!(
        proof_of(&p, ids[1]) && has!(p, FindingKind::Chain { .. }),
        "{p:#?}"
    );
    let p = tampered(&|b| {
        edit_round(b, round_at, |inputs, _, _| {
            inputs[0].1.commitment = inputs[1].1.commitment.clone()
        })
    });
    assert!(
        proof_of(&p, ids[0]) && has!(p, FindingKind::AggregateInvalid { .. }),
        "{p:#?}"
    );
    // A survivor signature: a flipped byte, one dropped below the threshold.
    let p = tampered(&|bad: &mut Transcript| {
        if let Entry::Round {
            survivor_signatures,
            ..
        } = &mut bad.records[round_at].entry
        {
            survivor_signatures[0].1 .0[7] ^= 1;
        }
    });
    assert!(
        has!(
            p,
            FindingKind::SurvivorSignatures {
                error: SurvivorSignatureError::Invalid(_)
            }
        ),
        "{p:#?}"
    );
    let p = tampered(&|bad: &mut Transcript| {
        if let Entry::Round {
            survivor_signatures,
            threshold,
            ..
        } = &mut bad.records[round_at].entry
        {
            survivor_signatures.truncate(*threshold as usize - 1);
        }
    });
    assert!(
        has!(
            p,
            FindingKind::SurvivorSignatures {
                error: SurvivorSignatureError::TooFew { .. }
            }
        ),
        "{p:#?}"
    );
    let p = tampered(&|b| edit_round(b, round_at, |_, s, _| s[0] += 1));
    assert!(
        has!(p, FindingKind::AggregateInvalid { .. }) && has!(p, FindingKind::ModelMismatch),
        "{p:#?}"
    );
    let p = tampered(&|b| edit_round(b, round_at, |_, _, h| h[0] ^= 1));
    assert!(
        has!(p, FindingKind::ModelMismatch)
            && !has!(
                p,
                FindingKind::AggregateInvalid { .. } | FindingKind::ScaleMismatch { .. }
            ),
        "{p:#?}"
    );
    let p = tampered(&|bad: &mut Transcript| {
        bad.records.remove(round_at);
    });
    assert!(
        has!(p, FindingKind::Chain { .. }) && has!(p, FindingKind::WrongStartModel),
        "{p:#?}"
    );
    let p = tampered(&|bad: &mut Transcript| bad.records.swap(round_at, round_at + 1));
    assert!(
        has!(p, FindingKind::Chain { .. })
            && has!(
                p,
                FindingKind::OutOfSequence { .. } | FindingKind::ResumeRound { .. }
            ),
        "{p:#?}"
    );
    let p = tampered(&|bad: &mut Transcript| {
        if let Entry::Enrolled { dataset, .. } = &mut bad.records[1].entry {
            dataset.root[0] ^= 1;
        }
    });
    let Entry::Enrolled { participant, .. } = t.records[1].entry else {
        panic!("record 1 is an enrolment: {:?}", t.records[1].entry)
    };
    assert!(
        p.iter().any(|k| matches!(
            k,
            FindingKind::DatasetSignature { participant: q, .. } if *q == participant
        )),
        "{p:#?}"
    );
    // The file format round-trips.
    assert_eq!(Transcript::from_bytes(&t.to_bytes()).expect("decodes"), t);

    // export-verifier --transcript: the job's key and each survivor's proof with the public
    // inputs the transcript fixes; they verify with the plain Groth16 verifier, and a
    // tampered input does not.
    let file = keys.path().join("transcript.cairn");
    std::fs::write(&file, t.to_bytes()).expect("write");
    let export = from_transcript(&file).expect("export");
    assert_eq!(export.proofs.len(), 6, "3 survivors × 2 rounds");
    assert_eq!(export.proofs[0].name, "r1_p0");
    let pvk = ark_groth16::prepare_verifying_key(&export.vk);
    for p in &export.proofs {
        assert!(
            Groth16::<Bn254>::verify_proof(&pvk, &p.proof, &p.inputs).expect("verifier"),
            "{}",
            p.name
        );
    }
    let mut inputs = export.proofs[0].inputs.clone();
    inputs[0] += ark_bn254::Fr::from(1u64);
    assert!(
        !Groth16::<Bn254>::verify_proof(&pvk, &export.proofs[0].proof, &inputs).expect("verifier")
    );
    let written = write(&keys.path().join("verifier"), &export).expect("bundle");
    assert!(
        written.iter().any(|f| f.ends_with("proof_r2_p1.json")),
        "{written:?}"
    );

    // The keys are cached by shape: a second load reuses them.
    let (_, existed) = Proving::load_or_setup(&job, keys.path()).expect("keys");
    assert!(existed);
    // Keys of another shape are never taken for this one.
    let mut other = proven_args();
    other.batch = Some(3);
    let other = other
        .job("other", data.train.n_features, 3, 3)
        .expect("job");
    let store = cairn_circuits::training::proof::KeyStore::new(keys.path());
    let spec = other.proof.expect("proven");
    let shape = cairn_proofs::rounds::shape(&other.model, &other.hyper, &spec).expect("shape");
    assert!(store.load(&shape).expect("readable").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proven_job_without_keys_is_refused_with_a_clear_error() {
    let data = synthetic(60, 3, 5, &LoadOptions::default());
    let holders = partition(&data.train, 3, &Partition::Iid, 1).expect("partition");
    let job = proven_args().job("proven", 3, 3, 3).expect("job");
    let initial = job.model.init_params(3);
    let err = run_federated(
        job,
        initial,
        &data.test,
        holders,
        || Ok(Box::new(TchTrainer::new(DeviceChoice::Cpu)?) as Box<dyn Trainer>),
        mpsc::unbounded_channel().0,
        None,
    )
    .await
    .expect_err("no keys");
    assert!(err.to_string().contains("needs its keys"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_step_job_over_quic_proves_challenged_steps_and_audits_clean() {
    // K = 3 local steps, each proof covers the one step the beacon challenges (the default
    // for K > 1), after the holder committed to all three intermediate models.
    let data = synthetic(150, 3, 5, &LoadOptions::default());
    let holders = partition(&data.train, 3, &Partition::Iid, 2).expect("partition");
    let args = TrainArgs {
        steps: Some(3),
        ..proven_args()
    };
    let job = args
        .job("sampled", data.train.n_features, 3, 3)
        .expect("job");
    let spec = job.proof.expect("a proven job");
    assert_eq!(
        spec.sampled_steps,
        Some(1),
        "one sampled step is the default for K > 1"
    );
    let keys = tempfile::tempdir().expect("tempdir");
    let (proving, _) = Proving::load_or_setup(&job, keys.path()).expect("keys");
    let initial = job.model.init_params(3);
    let summary = run_two_rounds(&job, &initial, &data.test, holders, &proving).await;
    assert!(
        summary.rounds.iter().all(|r| r.contributors == 3),
        "{:?}",
        summary.rounds
    );
    assert_ne!(summary.model, initial);

    let t = summary.transcript.expect("transcript");
    let clean = audit(&t);
    assert!(clean.passed(), "{:?}", clean.problems);
    let sampling = clean
        .sampling
        .clone()
        .expect("the audit reports the sampling");
    assert_eq!((sampling.local_steps, sampling.sampled), (3, 1));
    assert_eq!(sampling.challenges, 6, "one re-derived challenge per proof");
    assert_eq!(sampling.rounds_per_holder, 2);
    assert!((sampling.escape_one_round(1) - 2.0 / 3.0).abs() < 1e-12);
    let round_at = t
        .records
        .iter()
        .position(|r| matches!(r.entry, Entry::Round { .. }))
        .expect("a round record");
    // export-verifier: each proof with its nine public inputs (six, d_K, d_(j-1), d_j),
    // accepted by the plain Groth16 verifier.
    let file = keys.path().join("sampled.cairn");
    std::fs::write(&file, t.to_bytes()).expect("write");
    let export = from_transcript(&file).expect("export");
    assert_eq!(export.proofs.len(), 6);
    let pvk = ark_groth16::prepare_verifying_key(&export.vk);
    for p in &export.proofs {
        assert_eq!(p.inputs.len(), 9, "{}", p.name);
        assert!(
            Groth16::<Bn254>::verify_proof(&pvk, &p.proof, &p.inputs).expect("verifier"),
            "{}",
            p.name
        );
    }
    // The recorded d_K changed: that holder's proof no longer verifies (d_K is a public input
    // whatever the challenge; a digest outside the statement changes only the challenge, which
    // may by chance stay the same — the transcript's hash chain names that edit).
    let mut bad = t.clone();
    edit_round(&mut bad, round_at, |inputs, _, _| {
        if let Some(d) = inputs[1]
            .1
            .steps
            .as_mut()
            .and_then(|c| c.digests.last_mut())
        {
            d[0] ^= 1;
        }
    });
    let report = audit(&bad);
    assert!(
        report
            .problems
            .iter()
            .any(|f| matches!(f.kind, FindingKind::ProofInvalid { participant: 1, .. })),
        "{:#?}",
        report.problems
    );
    // Another round beacon than the one the holders' beacons derive from.
    let mut bad = t.clone();
    if let Entry::Round { beacon, .. } = &mut bad.records[round_at].entry {
        *beacon = Some([0; 32]);
    }
    let report = audit(&bad);
    assert_eq!(
        report
            .problems
            .iter()
            .filter(|f| matches!(f.kind, FindingKind::WrongHolderBeacon { .. }))
            .count(),
        3,
        "{:?}",
        report.problems
    );
    // #12 item 1: the same job re-chained with a header claiming another aggregation scale
    // (what a coordinator at 2^20 recorded): the audit decodes S at the proofs' scale and
    // names the header, so such a transcript no longer passes.
    let mut rescaled = Transcript::default();
    for (i, r) in t.records.iter().enumerate() {
        let mut entry = r.entry.clone();
        if i == 0 {
            if let Entry::Job { scale_bits, .. } = &mut entry {
                *scale_bits = 20;
            }
        }
        rescaled.append(entry);
    }
    assert!(
        rescaled.verify_chain().is_ok(),
        "a consistent chain: only the scale differs"
    );
    let report = audit(&rescaled);
    // Re-chaining also moves the head the coordinator and the holders signed: the seal no
    // longer verifies (#12 item 5), and nothing else is wrong.
    let at_2_20 = |k: &FindingKind| matches!(k, FindingKind::ScaleMismatch { scale_bits: 20, .. });
    assert!(
        report.problems.iter().any(|f| at_2_20(&f.kind))
            && report.problems.iter().all(|f| at_2_20(&f.kind)
                || matches!(
                    f.kind,
                    FindingKind::SealInvalid
                        | FindingKind::CountersignatureInvalid { .. }
                        | FindingKind::TooFewCountersignatures { .. }
                )),
        "{:#?}",
        report.problems
    );
    // A chain dropped from the record.
    let mut bad = t.clone();
    edit_round(&mut bad, round_at, |inputs, _, _| inputs[0].1.steps = None);
    let report = audit(&bad);
    assert!(
        report
            .problems
            .iter()
            .any(|f| matches!(f.kind, FindingKind::MissingStepChain { participant: 0 })),
        "{:#?}",
        report.problems
    );
}

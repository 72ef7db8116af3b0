//! Proven secure rounds in memory: holders commit to their datasets before the first
//! round, send a commitment and proof with their masked input, the driver's verdicts gate
//! each input, and the aggregate check gates applying the round. The proof system itself
//! lives in `cairn-circuits` (tested there and over QUIC); here the verdicts and the
//! aggregate check are the driver's answers, so every branch of the state machine is
//! driven deterministically.

mod common;

use std::time::Instant;

use cairn_crypto::sign::IdentityKey;
use cairn_proofs::verify::SumChecker;
use cairn_proofs::ProofError;
use cairn_protocol::client::{Client, ClientEvent};
use cairn_protocol::job::{Job, JobConfig, JobEvent, ResumePoint};
use cairn_protocol::round::{
    check_survivor_signatures, Aggregation, DropReason, SecureSettings, SurvivorSignatureError,
};
use cairn_protocol::server_opt::ServerOptState;
use cairn_protocol::wire::{
    self, DatasetCommitment, ProofSpec, ProvenInput, SecureUp, StepChain, ToCoordinator,
    ToParticipant,
};
use cairn_protocol::work::{Done, Work};
use common::{body, cfg, N_FEATURES};

const LIMBS: usize = 16;
/// The job id of `common::cfg`.
const JOB_ID: &str = "test";

fn proven_cfg(n: usize, min: usize, rounds: u32) -> JobConfig {
    let mut c = cfg(n, min, rounds);
    c.aggregation = Aggregation::Secure(SecureSettings::default());
    c.proof = Some(ProofSpec {
        tolerance: 1e-3,
        tree_depth: 8,
        blinding_limbs: LIMBS as u32,
        feature_bits: 20,
        block_rows: 1,
        sampled_steps: None,
        noise: None,
    });
    c
}

/// Participant `i`'s fixed-point update in `round` and its blinding limbs.
fn update_of(i: usize, round: u32) -> (Vec<i64>, Vec<u32>) {
    let d = N_FEATURES + 1;
    let x = (0..d)
        .map(|j| (i as i64 + 1) * 1000 * (j as i64 - 1) + i64::from(round))
        .collect();
    let limbs = (0..LIMBS)
        .map(|l| (i * 1000 + l * 17) as u32 % 65536)
        .collect();
    (x, limbs)
}

struct World {
    job: Job,
    clients: Vec<Client>,
    now: Instant,
    events: Vec<JobEvent>,
    /// Participants whose proofs the driver rejects.
    bad_proofs: Vec<u32>,
    /// Proof checks the driver saw: (round, participant, dataset root).
    checks: Vec<(u32, u32, [u8; 32])>,
    /// A coordinator lying about the last round in its seal request.
    seal_last_round: Option<u32>,
    /// What the clients refused.
    client_errors: Vec<String>,
    /// Aggregate checks that fail before they start to pass.
    failing_sums: u32,
}

impl World {
    /// `failing` aggregate checks fail before they start to pass.
    fn new(cfg: JobConfig, n: usize, failing: u32) -> Self {
        let now = Instant::now();
        let init = cfg.model.init_params(1);
        let mut w = Self::around(Job::new(cfg, init, now), n, now);
        w.failing_sums = failing;
        w
    }

    /// A world of `n` fresh clients around `job` (e.g. one resumed after a stop).
    fn around(job: Job, n: usize, now: Instant) -> Self {
        let clients = (0..n)
            .map(|i| {
                Client::new(
                    "p",
                    40,
                    N_FEATURES,
                    IdentityKey::from_seed(&[i as u8 + 1; 32]),
                    [i as u8 + 50; 32],
                )
                .with_dataset_root([i as u8; 32])
            })
            .collect();
        World {
            job,
            clients,
            now,
            events: Vec::new(),
            bad_proofs: Vec::new(),
            checks: Vec::new(),
            seal_last_round: None,
            client_errors: Vec::new(),
            failing_sums: 0,
        }
    }

    fn completed_rounds(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, JobEvent::RoundCompleted { .. }))
            .count()
    }

    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for (i, c) in self.clients.iter_mut().enumerate() {
                while let Some(ev) = c.poll_event() {
                    if let ClientEvent::Train { spec, .. } = ev {
                        let (x, limbs) = update_of(i, spec.round);
                        let input = ProvenInput {
                            commitment: vec![i as u8; 32],
                            proof: vec![i as u8; 128],
                            steps: None,
                        };
                        c.submit_proven(spec.round, &x, &limbs, 0.25, input)
                            .expect("submit");
                    }
                }
                while let Some(msg) = c.poll_transmit() {
                    let frame = wire::encode(&msg).expect("encode");
                    let _ = self.job.handle_frame(i as u32, body(&frame), self.now);
                    progressed = true;
                }
            }
            while let Some(work) = self.job.poll_work() {
                let done = match work {
                    Work::Verify(check) => {
                        self.checks.push((
                            check.statement.round,
                            check.participant,
                            check.dataset.root,
                        ));
                        Done::Verdict {
                            round: check.statement.round,
                            participant: check.participant,
                            result: if self.bad_proofs.contains(&check.participant) {
                                Err(ProofError::DoesNotVerify)
                            } else {
                                Ok(())
                            },
                        }
                    }
                    Work::SumCheck(c) => Done::SumChecked {
                        round: c.round,
                        result: if self.failing_sums == 0 {
                            Ok(())
                        } else {
                            self.failing_sums -= 1;
                            Err(ProofError::SumMismatch { survivors: 0 })
                        },
                    },
                    unmask @ Work::Unmask(_) => unmask.run(None, &SumChecker::new(), 2),
                };
                self.job.handle_done(done, self.now);
                progressed = true;
            }
            while let Some(mut t) = self.job.poll_transmit() {
                if let (ToParticipant::Seal { last_round, .. }, Some(lie)) =
                    (&mut t.msg, self.seal_last_round)
                {
                    *last_round = lie;
                }
                let frame = wire::encode(&t.msg).expect("encode");
                if let Err(e) = self.clients[t.to as usize].handle_frame(body(&frame)) {
                    self.client_errors.push(e.to_string());
                }
                progressed = true;
            }
            while let Some(e) = self.job.poll_event() {
                if let JobEvent::Sealing { .. } = e {
                    // The driver's transcript head (any 32 bytes: this world keeps none).
                    self.job.seal(SEALED_HEAD, self.now);
                    progressed = true;
                }
                self.events.push(e);
            }
            if !progressed {
                break;
            }
        }
    }
}

/// The head the test driver hands to [`Job::seal`].
const SEALED_HEAD: [u8; 32] = [0x5e; 32];

#[test]
fn a_proven_job_ends_with_every_holder_countersigning_its_head() {
    // #12 item 5: the holders vouch for the transcript's end, so it cannot be cut short
    // or extended afterwards without their keys.
    let cfg = proven_cfg(4, 3, 2);
    let job_id = cfg.job_id.clone();
    let mut w = World::new(cfg, 4, 0);
    w.pump();
    let Some(JobEvent::Finished {
        rounds_completed,
        last_round,
        error,
        countersignatures,
    }) = w.events.last().cloned()
    else {
        panic!("not finished: {:?}", w.events.last())
    };
    assert_eq!((rounds_completed, last_round, error), (2, 2, None));
    let payload = cairn_protocol::transcript::seal_payload(
        &job_id,
        &SEALED_HEAD,
        2,
        2,
        &cairn_protocol::transcript::model_hash(w.job.global()),
    );
    assert_eq!(countersignatures.len(), 4);
    for (i, (who, sig)) in countersignatures.iter().enumerate() {
        assert!(who.verify(&payload, sig).is_ok(), "countersignature {i}");
    }
}

#[test]
fn a_holder_refuses_to_countersign_a_head_that_drops_its_round() {
    // A coordinator sealing at round 1 after round 2 ran (a transcript cut before round 2):
    // every holder of round 2 refuses, and the job ends with no countersignature.
    let mut w = World::new(proven_cfg(4, 3, 2), 4, 0);
    w.seal_last_round = Some(1);
    w.pump();
    assert_eq!(w.completed_rounds(), 2);
    w.now += cairn_protocol::job::SEAL_TIMEOUT;
    w.job.handle_timeout(w.now);
    w.pump();
    let Some(JobEvent::Finished {
        countersignatures, ..
    }) = w.events.last()
    else {
        panic!("not finished: {:?}", w.events.last())
    };
    assert!(countersignatures.is_empty(), "{countersignatures:?}");
    assert_eq!(w.client_errors.len(), 4, "{:?}", w.client_errors);
    assert!(w
        .client_errors
        .iter()
        .all(|e| e.contains("seals the job at round 1, but this holder was in round 2")));
}

#[test]
fn a_bad_proof_drops_its_sender_and_the_sum_is_exact_over_the_others() {
    let mut w = World::new(proven_cfg(4, 3, 1), 4, 0);
    w.bad_proofs = vec![3];
    w.pump();
    let enrolled = w
        .events
        .iter()
        .filter(|e| matches!(e, JobEvent::Enrolled { .. }))
        .count();
    assert_eq!(enrolled, 4, "every holder committed before the round");
    // Each proof was checked against the root its sender enrolled.
    assert_eq!(w.checks.len(), 4);
    assert!(w
        .checks
        .iter()
        .all(|(r, p, root)| *r == 1 && *root == [*p as u8; 32]));
    let Some(JobEvent::RoundCompleted {
        aggregate, dropped, ..
    }) = w
        .events
        .iter()
        .find(|e| matches!(e, JobEvent::RoundCompleted { .. }))
    else {
        panic!("round did not complete: {:?}", w.events);
    };
    assert_eq!(aggregate.contributors, vec![0, 1, 2]);
    assert!(matches!(
        dropped.as_slice(),
        [(3, DropReason::BadProof(reason))] if *reason == ProofError::DoesNotVerify.to_string()
    ));
    let proven = aggregate.proven.as_ref().expect("proven sum");
    let (mut sum_x, mut sum_limbs) = (vec![0i64; N_FEATURES + 1], vec![0u64; LIMBS]);
    for i in 0..3 {
        let (x, limbs) = update_of(i, 1);
        sum_x.iter_mut().zip(&x).for_each(|(s, v)| *s += v);
        sum_limbs
            .iter_mut()
            .zip(&limbs)
            .for_each(|(s, v)| *s += u64::from(*v));
    }
    assert_eq!(proven.update_sum, sum_x, "S is exact over the survivors");
    assert_eq!(proven.blinding_limb_sums, sum_limbs, "R's limbs are exact");
    let senders: Vec<u32> = proven.inputs.iter().map(|(p, _)| *p).collect();
    assert_eq!(senders, vec![0, 1, 2]);
    // Every survivor signed the survivor list, verifiable with the enrolled keys alone.
    let key_of = |p: u32| Some(IdentityKey::from_seed(&[p as u8 + 1; 32]).public());
    assert_eq!(check_survivor_signatures(JOB_ID, 1, proven, key_of), Ok(3));
    let mut forged = proven.clone();
    forged.survivor_signatures[1].1 = forged.survivor_signatures[0].1.clone();
    assert_eq!(
        check_survivor_signatures(JOB_ID, 1, &forged, key_of),
        Err(SurvivorSignatureError::Invalid(1))
    );
    assert!(
        check_survivor_signatures(JOB_ID, 2, proven, key_of).is_err(),
        "bound to the round"
    );
    assert!(proven
        .inputs
        .iter()
        .all(|(p, inp)| inp.commitment == vec![*p as u8; 32]));
    // The applied mean is S / 3 at the 2^16 scale.
    let mean0 = aggregate.mean_delta[0];
    assert!((f64::from(mean0) - sum_x[0] as f64 / 3.0 / 65536.0).abs() < 1e-6);
}

#[test]
fn a_failed_aggregate_check_rejects_the_round_and_applies_nothing() {
    let mut w = World::new(proven_cfg(3, 3, 2), 3, 1);
    let before = w.job.global().to_vec();
    w.pump();
    let failed: Vec<&String> = w
        .events
        .iter()
        .filter_map(|e| match e {
            JobEvent::RoundFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        failed
            .first()
            .is_some_and(|r| r.contains("aggregate commitment check failed")),
        "{:?}",
        w.events
    );
    // Round 1 was rejected; the job went on, and round 2 started from the untouched
    // model, passed the check and was applied.
    let round2 = w.events.iter().find_map(|e| match e {
        JobEvent::RoundCompleted {
            round: 2,
            aggregate,
            model,
            ..
        } => Some((aggregate, model)),
        _ => None,
    });
    let (aggregate, model) = round2.expect("round 2 completed");
    let expected: Vec<f32> = before
        .iter()
        .zip(&aggregate.mean_delta)
        .map(|(w0, d)| w0 + d)
        .collect();
    assert_eq!(model, &expected, "only round 2's update was applied");
}

#[test]
fn enrolment_is_signed_once_and_required() {
    let mut job = Job::new(
        proven_cfg(3, 3, 1),
        vec![0.0; N_FEATURES + 1],
        Instant::now(),
    );
    let now = Instant::now();
    let key = IdentityKey::from_seed(&[1; 32]);
    let hello = ToCoordinator::Hello(wire::Hello {
        version: wire::PROTOCOL_VERSION,
        name: "a".into(),
        n_rows: 10,
        n_features: N_FEATURES as u32,
        identity: key.public(),
    });
    let send = |job: &mut Job, from: u32, msg: &ToCoordinator| {
        let f = wire::encode(msg).expect("encode");
        let _ = job.handle_frame(from, body(&f), now);
    };
    send(&mut job, 0, &hello);
    let welcome = job.poll_transmit().expect("welcome");
    assert!(matches!(&welcome.msg, ToParticipant::Welcome(w) if w.proof.is_some()));
    // Signed by another key: refused.
    let forged = DatasetCommitment::sign("test", [5; 32], 10, &IdentityKey::from_seed(&[9; 32]));
    send(&mut job, 0, &ToCoordinator::Dataset(forged));
    let t = job.poll_transmit().expect("refusal");
    assert!(
        t.close
            && matches!(&t.msg, ToParticipant::Rejected { reason } if reason.contains("dataset commitment"))
    );

    // A good commitment is accepted once; a second one is refused.
    let mut job = Job::new(proven_cfg(3, 3, 1), vec![0.0; N_FEATURES + 1], now);
    send(&mut job, 0, &hello);
    let _ = job.poll_transmit();
    let good = DatasetCommitment::sign("test", [5; 32], 10, &key);
    send(&mut job, 0, &ToCoordinator::Dataset(good.clone()));
    assert!(job.poll_transmit().is_none(), "accepted silently");
    send(&mut job, 0, &ToCoordinator::Dataset(good));
    let t = job.poll_transmit().expect("refusal");
    assert!(
        matches!(&t.msg, ToParticipant::Rejected { reason } if reason.contains("cannot change"))
    );

    // More rows than the job's trees hold: refused.
    let mut job = Job::new(proven_cfg(3, 3, 1), vec![0.0; N_FEATURES + 1], now);
    send(&mut job, 0, &hello);
    let _ = job.poll_transmit();
    let huge = DatasetCommitment::sign("test", [5; 32], 1 << 20, &key);
    send(&mut job, 0, &ToCoordinator::Dataset(huge));
    let t = job.poll_transmit().expect("refusal");
    assert!(matches!(&t.msg, ToParticipant::Rejected { reason } if reason.contains("trees hold")));

    // A client without a root up front commits after the welcome (once it has built its
    // tree for the welcome's depth), exactly once; the job enrols it.
    let mut c = Client::new("b", 10, N_FEATURES, key, [3; 32]);
    let mut job = Job::new(proven_cfg(3, 3, 1), vec![0.0; N_FEATURES + 1], now);
    assert!(
        c.commit_dataset([5; 32]).is_err(),
        "nothing to commit to before a welcome"
    );
    let hello = c.poll_transmit().expect("hello");
    send(&mut job, 0, &hello);
    let w = job.poll_transmit().expect("welcome");
    let f = wire::encode(&w.msg).expect("encode");
    c.handle_frame(body(&f)).expect("welcomed");
    let Some(ClientEvent::Joined(w)) = c.poll_event() else {
        panic!("joined")
    };
    assert_eq!(
        w.hyper,
        proven_cfg(3, 3, 1).hyper,
        "the welcome carries K and B"
    );
    assert!(
        matches!(c.poll_transmit(), Some(ToCoordinator::Commit { .. })),
        "the randomness commitment follows the welcome"
    );
    assert!(
        c.poll_transmit().is_none(),
        "no dataset commitment without a root"
    );
    c.commit_dataset([5; 32]).expect("commit");
    assert!(c.commit_dataset([6; 32]).is_err(), "only once");
    let d = c.poll_transmit().expect("commitment");
    assert!(matches!(&d, ToCoordinator::Dataset(d) if d.root == [5; 32] && d.n_rows == 10));
    send(&mut job, 0, &d);
    assert!(job.poll_transmit().is_none(), "accepted silently");
    assert!(std::iter::from_fn(|| job.poll_event())
        .any(|e| matches!(e, JobEvent::Enrolled { participant: 0, .. })));
}

#[test]
fn proofs_need_secure_aggregation_and_sane_settings() {
    let mut c = proven_cfg(3, 3, 1);
    c.aggregation = Aggregation::Plain;
    assert!(c
        .validate()
        .is_err_and(|e| e.to_string().contains("secure aggregation")));
    let mut c = proven_cfg(3, 3, 1);
    c.proof = Some(ProofSpec {
        tolerance: f32::NAN,
        tree_depth: 8,
        blinding_limbs: 16,
        feature_bits: 20,
        block_rows: 1,
        sampled_steps: None,
        noise: None,
    });
    assert!(c
        .validate()
        .is_err_and(|e| e.to_string().contains("tolerance")));
    let mut c = proven_cfg(3, 3, 1);
    c.proof = Some(ProofSpec {
        tolerance: 0.0,
        tree_depth: 7,
        blinding_limbs: 16,
        feature_bits: 20,
        block_rows: 1,
        sampled_steps: None,
        noise: None,
    });
    assert!(c
        .validate()
        .is_err_and(|e| e.to_string().contains("tree_depth: must be even")));
    // Sampling must leave some steps out and prove at least one.
    for s in [0, 2] {
        let mut c = proven_cfg(3, 3, 1);
        if let Some(p) = &mut c.proof {
            p.sampled_steps = Some(s);
        }
        assert!(
            c.validate()
                .is_err_and(|e| e.to_string().contains("sampled steps")),
            "{s} of K = 2"
        );
    }
}

#[test]
fn a_proven_job_at_another_scale_is_refused() {
    // #12 item 1: holders mask the x their proofs commit to at 2^16; a job aggregating at
    // 2^20 decoded that sum 16× too small (one round moved the model 14× less than it
    // should) and its audit passed. Such a job is now refused before it starts.
    let mut c = proven_cfg(3, 3, 1);
    c.aggregation = Aggregation::Secure(SecureSettings {
        scale_bits: 20,
        ..SecureSettings::default()
    });
    assert!(c
        .validate()
        .is_err_and(|e| e.to_string().contains("scale bits 20")));
    // At the proven scale it runs.
    let mut c = proven_cfg(3, 3, 1);
    c.aggregation = Aggregation::Secure(SecureSettings {
        scale_bits: wire::PROVEN_SCALE_BITS,
        ..SecureSettings::default()
    });
    assert!(c.validate().is_ok());
}

#[test]
fn after_a_resume_a_holder_must_commit_to_the_dataset_it_committed_to_before() {
    let cfg = proven_cfg(3, 3, 3);
    let now = Instant::now();
    let init = cfg.model.init_params(1);
    // Before the stop, holders 0 and 1 committed to the roots they commit to now; holder
    // 2's identity committed to another root.
    let id = |i: u8| IdentityKey::from_seed(&[i + 1; 32]).public();
    let committed = [
        (id(0), ([0u8; 32], 40, None)),
        (id(1), ([1u8; 32], 40, None)),
        (id(2), ([9u8; 32], 40, None)),
    ]
    .into_iter()
    .collect();
    let point = ResumePoint {
        opt_state: ServerOptState::new(cfg.server, init.len()).expect("state"),
        model: init,
        next_round: 2,
        completed: 1,
        committed,
        abandoned: 0,
        randomness: Vec::new(),
    };
    let job = Job::resume(cfg, point, now);
    let mut w = World::around(job, 3, now);
    w.pump();
    assert!(
        w.events.iter().any(|e| matches!(
            e,
            JobEvent::Refused { participant: 2, reason } if reason.contains("another dataset")
        )),
        "{:?}",
        w.events
    );
    let enrolled: Vec<u32> = w
        .events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Enrolled { participant, .. } => Some(*participant),
            _ => None,
        })
        .collect();
    assert_eq!(enrolled, [0, 1]);
    assert!(
        !w.events
            .iter()
            .any(|e| matches!(e, JobEvent::RoundStarted { .. })),
        "no round without the third holder"
    );
}

/// How a holder in [`sampled_round`] behaves.
#[derive(Clone, Copy, PartialEq)]
enum Holder {
    /// Chain, then (on its challenge) the masked input.
    Honest,
    /// Tries to learn its challenge without committing: sends its masked input first.
    MaskedFirst,
    /// Tries to re-grind: a second chain after seeing its beacon.
    TwoChains,
    /// Writes its own chain and beacon into its proven input.
    ForgesSteps,
}

/// The job's events, what each holder was told (beacon, its chains sent by then), and the
/// beacon commitment of the round spec.
type SampledRound = (Vec<JobEvent>, Vec<Vec<([u8; 32], usize)>>, Option<[u8; 32]>);

/// One sampled-step round (K = 2, s = 1) of `holders`, in memory. Returns the job's events
/// and, per holder, the round specs it got, the beacons it was told and when (the number
/// of its own chains sent by then).
fn sampled_round(holders: &[Holder]) -> SampledRound {
    let mut c = proven_cfg(holders.len(), 3, 1);
    if let Some(p) = &mut c.proof {
        p.sampled_steps = Some(1);
    }
    let mut w = World::new(c, holders.len(), 0);
    let mut told: Vec<Vec<([u8; 32], usize)>> = vec![Vec::new(); holders.len()];
    let mut chains_sent = vec![0usize; holders.len()];
    let mut commitment = None;
    loop {
        let mut progressed = false;
        for (i, cl) in w.clients.iter_mut().enumerate() {
            while let Some(ev) = cl.poll_event() {
                let (x, limbs) = update_of(i, 1);
                let input = ProvenInput {
                    commitment: vec![i as u8; 32],
                    proof: vec![i as u8; 128],
                    steps: (holders[i] == Holder::ForgesSteps).then(|| StepChain {
                        digests: vec![[9; 32]; 2],
                        beacon: [9; 32],
                    }),
                };
                match ev {
                    ClientEvent::Train { spec, .. } => {
                        commitment = spec.beacon_commitment;
                        if holders[i] == Holder::MaskedFirst {
                            cl.submit_proven(1, &x, &limbs, 0.25, input)
                                .expect("submit");
                        } else {
                            cl.send_chain(1, vec![[i as u8 + 1; 32]; 2]).expect("chain");
                            chains_sent[i] += 1;
                        }
                    }
                    ClientEvent::Challenge { round, beacon } => {
                        assert_eq!(round, 1);
                        told[i].push((beacon, chains_sent[i]));
                        if holders[i] == Holder::TwoChains {
                            // The client refuses a second chain; a raw frame carries it.
                            assert!(cl.send_chain(1, vec![[7; 32]; 2]).is_err());
                            let frame = wire::encode(&ToCoordinator::Secure(SecureUp::Chain {
                                round: 1,
                                digests: vec![[7; 32]; 2],
                            }))
                            .expect("encode");
                            let _ = w.job.handle_frame(i as u32, body(&frame), w.now);
                            chains_sent[i] += 1;
                        } else {
                            cl.submit_proven(1, &x, &limbs, 0.25, input)
                                .expect("submit");
                        }
                    }
                    _ => {}
                }
            }
            while let Some(msg) = cl.poll_transmit() {
                let frame = wire::encode(&msg).expect("encode");
                let _ = w.job.handle_frame(i as u32, body(&frame), w.now);
                progressed = true;
            }
        }
        while let Some(work) = w.job.poll_work() {
            let done = match work {
                Work::Verify(check) => {
                    // The statement the verifier builds must carry the round's record of
                    // the chain.
                    let steps = check
                        .input
                        .steps
                        .clone()
                        .expect("a chain with every sampled proof");
                    assert_eq!(steps.digests, vec![[check.participant as u8 + 1; 32]; 2]);
                    Done::Verdict {
                        round: check.statement.round,
                        participant: check.participant,
                        result: Ok(()),
                    }
                }
                Work::SumCheck(c) => Done::SumChecked {
                    round: c.round,
                    result: Ok(()),
                },
                unmask @ Work::Unmask(_) => unmask.run(None, &SumChecker::new(), 2),
            };
            w.job.handle_done(done, w.now);
            progressed = true;
        }
        while let Some(t) = w.job.poll_transmit() {
            let frame = wire::encode(&t.msg).expect("encode");
            let _ = w.clients[t.to as usize].handle_frame(body(&frame));
            progressed = true;
        }
        while let Some(e) = w.job.poll_event() {
            w.events.push(e);
        }
        if !progressed {
            break;
        }
    }
    (w.events, told, commitment)
}

#[test]
fn a_sampled_round_reveals_each_beacon_only_after_its_holders_chain() {
    use cairn_protocol::challenge::{beacon_commitment, holder_beacon};
    let holders = [
        Holder::Honest,
        Holder::MaskedFirst,
        Holder::TwoChains,
        Holder::ForgesSteps,
        Holder::Honest,
        Holder::Honest,
        Holder::Honest,
        Holder::Honest,
    ];
    let (events, told, commitment) = sampled_round(&holders);
    let Some(JobEvent::RoundCompleted {
        aggregate, dropped, ..
    }) = events
        .iter()
        .find(|e| matches!(e, JobEvent::RoundCompleted { .. }))
    else {
        panic!("round did not complete: {events:?}");
    };
    assert_eq!(aggregate.contributors, vec![0, 3, 4, 5, 6, 7]);
    let reason = |p: u32| {
        dropped
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, r)| r.to_string())
            .unwrap_or_default()
    };
    assert!(reason(1).contains("before its step chain"), "{}", reason(1));
    assert!(reason(2).contains("second step chain"), "{}", reason(2));
    // Nobody was told a beacon before committing, the one that never committed never was,
    // and each was told exactly once.
    assert!(told[1].is_empty());
    for (i, t) in told.iter().enumerate() {
        assert!(
            t.iter().all(|&(_, chains)| chains == 1),
            "holder {i}: {t:?}"
        );
        assert!(t.len() <= 1);
    }
    // The round's beacon is in the record; its hash was published in the round spec;
    // every holder's beacon derives from it, and they differ.
    let proven = aggregate.proven.as_ref().expect("proven sum");
    let beacon = proven.beacon.expect("the round's beacon is recorded");
    assert_eq!(commitment, Some(beacon_commitment(&beacon)));
    for (p, input) in &proven.inputs {
        let steps = input.steps.as_ref().expect("chain recorded");
        assert_eq!(steps.beacon, holder_beacon(&beacon, 1, *p));
        assert_eq!(told[*p as usize], vec![(steps.beacon, 1)]);
        // The forger's own chain and beacon were replaced by the round's record.
        assert_eq!(steps.digests, vec![[*p as u8 + 1; 32]; 2]);
    }
    assert_ne!(told[0][0].0, told[4][0].0);
}

//! Whole jobs driven in memory: a coordinator `Job` and several `Client`s exchange real
//! wire frames through queues, with time advanced by hand. No sockets, no sleeps.

mod common;

use std::time::Duration;

use cairn_protocol::client::{ClientError, ClientEvent};
use std::time::Instant;

use cairn_protocol::job::{Job, JobEvent, ResumePoint};
use cairn_protocol::round::{DropReason, RoundError};
use cairn_protocol::server_opt::{AdaptiveParams, ServerOptimizer};
use cairn_protocol::wire::{self, ToCoordinator, ToParticipant, Update};
use common::{body, cfg, delta_of, Behaviour, Sim};

/// Each round's seed, from the job's events.
fn round_seeds(events: &[JobEvent]) -> Vec<(u32, [u8; 32])> {
    events
        .iter()
        .filter_map(|e| match e {
            JobEvent::RoundStarted {
                round, round_seed, ..
            } => Some((*round, *round_seed)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_job_resumed_after_a_stop_ends_where_one_that_never_stopped_does() {
    let behaviours = [10u64, 30, 60].map(|r| (Behaviour::Honest, r));
    let mut c = cfg(3, 2, 4);
    c.server = ServerOptimizer::FedAdam(AdaptiveParams::default());
    let mut whole = Sim::new(c.clone(), &behaviours);
    whole.pump();
    assert_eq!(whole.completed().len(), 4);

    // The same job, stopped after round 2: what the store holds then is its model and the
    // optimiser's moments. A new coordinator resumes it with new connections.
    let mut first = Sim::new(cfg_rounds(&c, 2), &behaviours);
    first.pump();
    assert_eq!(first.completed().len(), 2);
    let point = stopped(&first.job, 3, 0);
    assert_ne!(point.opt_state.first_moment(), vec![0.0; point.model.len()]);
    let now = Instant::now();
    let mut rest = Sim::with_job(Job::resume(c.clone(), point, now), now, &behaviours);
    rest.pump();
    assert_eq!(
        completed_rounds(&rest),
        [3, 4],
        "the resumed job runs only the rounds left"
    );
    assert_eq!(rest.job.global(), whole.job.global(), "bit-identical model");
    assert_eq!(rest.job.opt_state(), whole.job.opt_state());
    assert_eq!(rest.job.rounds_completed(), 4);
    assert!(matches!(
        rest.events.last(),
        Some(JobEvent::Finished {
            rounds_completed: 4,
            error: None,
            ..
        })
    ));
    // Each round's seeds come from (seed, round): the same whether or not the job stopped.
    let mut seeds = round_seeds(&first.events);
    seeds.extend(round_seeds(&rest.events));
    assert_eq!(seeds, round_seeds(&whole.events));

    // A stop that abandoned round 3: the job makes up for the number and still completes 4.
    let point = stopped(&first.job, 4, 1);
    let mut again = Sim::with_job(Job::resume(c.clone(), point, now), now, &behaviours);
    again.pump();
    assert_eq!(completed_rounds(&again), [4, 5]);
    assert_eq!(again.job.rounds_completed(), 4);

    // Stopped after its last round was recorded (before it was marked finished): the
    // resumed job ends at once, waiting for no one.
    let mut job = Job::resume(c.clone(), stopped(&whole.job, 5, 0), now);
    assert!(job.is_finished());
    assert!(std::iter::from_fn(|| job.poll_event()).any(|e| matches!(
        e,
        JobEvent::Finished {
            rounds_completed: 4,
            error: None,
            ..
        }
    )));

    // A stored state that does not fit the job (another optimiser) ends it with a reason.
    let bad = stopped(&first.job, 3, 0);
    let mut yogi = c.clone();
    yogi.server = ServerOptimizer::FedYogi(AdaptiveParams::default());
    let mut job = Job::resume(yogi, bad, now);
    assert!(job.is_finished());
    assert!(std::iter::from_fn(|| job.poll_event()).any(|e| matches!(
        e,
        JobEvent::Finished { error: Some(ref m), .. } if m.contains("does not fit")
    )));
}

/// What the store holds of `job` stopped now, to resume at `next_round` after `abandoned`
/// abandoned rounds.
fn stopped(job: &Job, next_round: u32, abandoned: u32) -> ResumePoint {
    ResumePoint {
        model: job.global().to_vec(),
        opt_state: job.opt_state().clone(),
        next_round,
        completed: job.rounds_completed(),
        committed: Default::default(),
        abandoned,
        randomness: Vec::new(),
    }
}

/// The numbers of the rounds that completed in `sim`.
fn completed_rounds(sim: &Sim) -> Vec<u32> {
    sim.completed()
        .iter()
        .map(|e| match e {
            JobEvent::RoundCompleted { round, .. } => *round,
            _ => unreachable!(),
        })
        .collect()
}

fn cfg_rounds(c: &cairn_protocol::job::JobConfig, rounds: u32) -> cairn_protocol::job::JobConfig {
    let mut c = c.clone();
    c.rounds = rounds;
    c
}

#[test]
fn a_job_runs_its_rounds_with_example_weighted_fedavg() {
    let rows = [10u64, 30, 60];
    let mut sim = Sim::new(cfg(3, 2, 3), &rows.map(|r| (Behaviour::Honest, r)));
    let finished = finished_messages(&mut sim);
    let start = sim.job.global().to_vec();
    sim.pump();
    assert_eq!(
        *finished.borrow(),
        vec![(true, "job complete after 3 rounds".to_string()); 3]
    );
    assert!(sim.job.is_finished());
    let done = sim.completed();
    assert_eq!(done.len(), 3);
    let mut expect = start.clone();
    for (k, e) in done.iter().enumerate() {
        let JobEvent::RoundCompleted {
            round,
            aggregate,
            dropped,
            model,
            ..
        } = e
        else {
            unreachable!()
        };
        assert_eq!(*round, k as u32 + 1);
        assert!(dropped.is_empty());
        assert_eq!(aggregate.contributors, vec![0, 1, 2]);
        assert_eq!(aggregate.total_examples, 100);
        for (j, (e, &got)) in expect.iter_mut().zip(&aggregate.mean_delta).enumerate() {
            let mean: f64 = (0..3)
                .map(|i| rows[i] as f64 * delta_of(i as u32, *round)[j] as f64)
                .sum::<f64>()
                / 100.0;
            assert!((got as f64 - mean).abs() < 1e-6);
            *e += got;
        }
        assert_eq!(model, &expect);
    }
    assert_eq!(sim.job.global(), &expect[..]);
    assert!(matches!(
        sim.events.last(),
        Some(JobEvent::Finished {
            rounds_completed: 3,
            error: None,
            ..
        })
    ));
    for (c, _, _) in &sim.clients {
        assert!(c.is_done());
    }
}

#[test]
fn a_silent_participant_times_out_and_the_round_completes_without_it() {
    let mut sim = Sim::new(
        cfg(3, 2, 1),
        &[
            (Behaviour::Honest, 5),
            (Behaviour::Silent, 5),
            (Behaviour::Honest, 5),
        ],
    );
    sim.pump();
    assert!(
        sim.completed().is_empty(),
        "must wait for the silent one until the deadline"
    );
    let deadline = sim.job.poll_timeout().expect("a deadline");
    assert_eq!(deadline, sim.now + Duration::from_secs(10));
    sim.advance(Duration::from_secs(9));
    assert!(sim.completed().is_empty());
    sim.advance(Duration::from_secs(1));
    let JobEvent::RoundCompleted {
        aggregate, dropped, ..
    } = sim.completed()[0]
    else {
        unreachable!()
    };
    assert_eq!(aggregate.contributors, vec![0, 2]);
    assert_eq!(dropped, &vec![(1, DropReason::Timeout)]);
}

#[test]
fn too_few_answers_fail_the_round_clearly_and_the_job_gives_up_after_three() {
    let mut sim = Sim::new(
        cfg(3, 3, 5),
        &[
            (Behaviour::Honest, 5),
            (Behaviour::Silent, 5),
            (Behaviour::Honest, 5),
        ],
    );
    let finished = finished_messages(&mut sim);
    sim.pump();
    for _ in 0..3 {
        sim.advance(Duration::from_secs(10));
    }
    let failures: Vec<_> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            JobEvent::RoundFailed { round, reason, .. } => Some((*round, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 3);
    assert_eq!(
        failures[0],
        (
            1,
            "only 2 valid update(s) arrived; the round needs 3".to_string()
        )
    );
    assert!(sim.job.is_finished());
    assert!(matches!(
        sim.events.last(),
        Some(JobEvent::Finished {
            rounds_completed: 0,
            error: Some(_),
            ..
        })
    ));
    // Every holder still connected (the silent one too) is told the job did not complete.
    let told = finished.borrow();
    assert_eq!(told.len(), 3, "{told:?}");
    assert!(told
        .iter()
        .all(|(completed, m)| !completed && m.contains("in a row failed")));
}

/// Records each `Finished` the coordinator sends: (completed, message).
fn finished_messages(sim: &mut Sim) -> std::rc::Rc<std::cell::RefCell<Vec<(bool, String)>>> {
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = std::rc::Rc::clone(&seen);
    sim.tamper = Some(Box::new(move |_, msg| {
        if let ToParticipant::Finished {
            completed, message, ..
        } = msg
        {
            sink.borrow_mut().push((*completed, message.clone()));
        }
    }));
    seen
}

#[test]
fn join_deadline_starts_with_fewer_or_fails_with_too_few() {
    let mut sim = Sim::new(
        cfg(4, 2, 1),
        &[(Behaviour::Honest, 5), (Behaviour::Honest, 5)],
    );
    sim.pump();
    assert!(sim.completed().is_empty(), "waits for 4");
    sim.advance(Duration::from_secs(30));
    assert_eq!(sim.completed().len(), 1);

    let mut lonely = Sim::new(cfg(4, 2, 1), &[(Behaviour::Honest, 5)]);
    lonely.pump();
    lonely.advance(Duration::from_secs(30));
    let Some(JobEvent::Finished { error: Some(e), .. }) = lonely.events.last() else {
        panic!("must fail")
    };
    assert!(e.contains("only 1 participant(s) joined"), "{e}");
}

/// Starts a 3-participant, 1-round job and returns it with the round open.
fn open_round() -> Sim {
    let mut sim = Sim::new(
        cfg(3, 2, 1),
        &[
            (Behaviour::Honest, 5),
            (Behaviour::Silent, 5),
            (Behaviour::Honest, 5),
        ],
    );
    sim.pump();
    sim
}

fn update(round: u32, delta: Vec<f32>) -> ToCoordinator {
    ToCoordinator::Update(Update {
        round,
        n_examples: 5,
        delta,
        train_loss: 0.3,
    })
}

/// Sends `msg` as participant 1 and checks the error and that the round still completes
/// with 0 and 2, participant 1 dropped as invalid.
fn bad_message_is_dropped(frame_body: Vec<u8>, check: impl Fn(&RoundError) -> bool) {
    let mut sim = open_round();
    let now = sim.now;
    let err = sim
        .job
        .handle_frame(1, &frame_body, now)
        .expect_err("refused");
    assert!(check(&err), "unexpected error {err:?}");
    sim.pump();
    let JobEvent::RoundCompleted {
        aggregate, dropped, ..
    } = sim.completed()[0]
    else {
        panic!("round must complete")
    };
    assert_eq!(aggregate.contributors, vec![0, 2]);
    assert!(
        matches!(&dropped[..], [(1, DropReason::Invalid(_))]),
        "{dropped:?}"
    );
}

fn enc(msg: &ToCoordinator) -> Vec<u8> {
    body(&wire::encode(msg).expect("encode")).to_vec()
}

#[test]
fn malformed_bytes_are_a_typed_error_and_only_drop_the_sender() {
    bad_message_is_dropped(vec![0xff; 40], |e| {
        matches!(e, RoundError::Wire { from: 1, .. })
    });
    let mut truncated = enc(&update(1, vec![0.0; 4]));
    truncated.truncate(truncated.len() - 3);
    bad_message_is_dropped(truncated, |e| matches!(e, RoundError::Wire { .. }));
}

#[test]
fn oversized_wrong_round_nonfinite_and_over_norm_updates_are_dropped() {
    bad_message_is_dropped(enc(&update(1, vec![0.0; 10_000])), |e| {
        matches!(
            e,
            RoundError::WrongLength {
                got: 10_000,
                want: 4,
                ..
            }
        )
    });
    bad_message_is_dropped(enc(&update(7, vec![0.0; 4])), |e| {
        matches!(e, RoundError::WrongRound { got: 7, .. })
    });
    bad_message_is_dropped(enc(&update(1, vec![0.0, f32::NAN, 0.0, 0.0])), |e| {
        matches!(e, RoundError::NonFinite(1))
    });
    bad_message_is_dropped(
        enc(&update(1, vec![2.0, 0.0, 0.0, 0.0])),
        |e| matches!(e, RoundError::OverNorm { norm, .. } if *norm == 2.0),
    );
    bad_message_is_dropped(
        enc(&ToCoordinator::Update(Update {
            round: 1,
            n_examples: 0,
            delta: vec![0.0; 4],
            train_loss: 0.0,
        })),
        |e| matches!(e, RoundError::BadWeight { n: 0, .. }),
    );
}

#[test]
fn duplicates_and_strangers_are_refused() {
    let mut sim = Sim::new(
        cfg(2, 2, 2),
        &[(Behaviour::Honest, 5), (Behaviour::Silent, 5)],
    );
    sim.pump();
    let now = sim.now;
    assert!(sim
        .job
        .handle_frame(1, &enc(&update(1, vec![0.1; 4])), now)
        .is_ok());
    // Round 1 is over (both answered); round 2 is open. A second update for round 1 is stale.
    assert!(matches!(
        sim.job.handle_frame(1, &enc(&update(1, vec![0.1; 4])), now),
        Err(RoundError::WrongRound {
            got: 1,
            want: 2,
            ..
        })
    ));
    // A connection that never said hello is refused, not admitted.
    assert!(sim
        .job
        .handle_frame(9, &enc(&update(2, vec![0.1; 4])), now)
        .is_err());
    sim.pump();
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, JobEvent::Refused { participant: 9, .. })));
}

#[test]
fn a_disconnect_mid_round_drops_the_participant() {
    let mut sim = open_round();
    let now = sim.now;
    sim.job.handle_disconnect(1, now);
    sim.pump();
    let JobEvent::RoundCompleted { dropped, .. } = sim.completed()[0] else {
        panic!("must complete")
    };
    assert_eq!(dropped, &vec![(1, DropReason::Disconnected)]);
}

#[test]
fn admission_checks_version_features_and_capacity() {
    let mut sim = Sim::new(cfg(1, 1, 1), &[]);
    let now = sim.now;
    let hello = |version, n_features| {
        enc(&ToCoordinator::Hello(wire::Hello {
            version,
            name: "x".into(),
            n_rows: 5,
            n_features,
            identity: cairn_crypto::sign::IdentityKey::from_seed(&[9; 32]).public(),
        }))
    };
    sim.job
        .handle_frame(0, &hello(99, 3), now)
        .expect("handled");
    sim.job
        .handle_frame(1, &hello(wire::PROTOCOL_VERSION, 7), now)
        .expect("handled");
    let refusals: Vec<_> = std::iter::from_fn(|| sim.job.poll_event())
        .filter_map(|e| match e {
            JobEvent::Refused { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(refusals[0].contains("protocol version 99"), "{refusals:?}");
    assert!(refusals[1].contains("7 features"), "{refusals:?}");
    let t = sim.job.poll_transmit().expect("rejection");
    assert!(t.close && matches!(t.msg, ToParticipant::Rejected { .. }));
}

/// A holder that cannot prepare the offered job's data answers the offer with its reason
/// instead of a Hello: the job reports it (name and reason made printable and bounded, the
/// certificate's key attached), closes the connection, and admits nobody.
#[test]
fn a_holder_that_cannot_prepare_the_data_is_reported_with_its_reason() {
    use cairn_crypto::sign::IdentityKey;
    let mut sim = Sim::new(cfg(3, 1, 1), &[]);
    let now = sim.now;
    let key = IdentityKey::from_seed(&[7; 32]).public();
    sim.job.handle_connected(4, key);
    let offer = sim.job.poll_transmit().expect("the offer");
    assert!(matches!(offer.msg, ToParticipant::Offer(_)), "{offer:?}");
    let long = "x".repeat(4 * wire::MAX_REASON_BYTES);
    let frame = enc(&ToCoordinator::CannotJoin {
        name: "bad\u{1b}[2Jname".into(),
        reason: format!("lacks column b\n{long}"),
    });
    sim.job.handle_frame(4, &frame, now).expect("handled");
    let events: Vec<JobEvent> = std::iter::from_fn(|| sim.job.poll_event()).collect();
    assert!(
        !events.iter().any(|e| matches!(e, JobEvent::Joined { .. })),
        "nobody admitted: {events:?}"
    );
    let declined = events
        .into_iter()
        .find_map(|e| match e {
            JobEvent::Declined {
                participant,
                identity,
                name,
                reason,
            } => Some((participant, identity, name, reason)),
            _ => None,
        })
        .expect("a Declined event");
    assert_eq!(declined.0, 4);
    assert_eq!(declined.1, Some(key));
    assert!(!declined.2.contains('\u{1b}') && declined.2.starts_with("bad"));
    assert!(declined.3.starts_with("lacks column b?"));
    assert!(declined.3.len() <= wire::MAX_REASON_BYTES);
    let t = sim.job.poll_transmit().expect("the close");
    assert!(t.to == 4 && t.close, "{t:?}");
    // Saying it again on the same connection is not heard: no second event.
    assert!(sim.job.handle_frame(4, &frame, now).is_err());
    assert!(
        !std::iter::from_fn(|| sim.job.poll_event())
            .any(|e| matches!(e, JobEvent::Declined { .. })),
        "one Declined per connection"
    );
}

/// Mutual TLS binds each connection to an identity key; the job refuses a Hello that
/// names another key than its connection's certificate, and a second live connection
/// with a key already in the job.
#[test]
fn a_hello_must_name_the_identity_of_its_tls_certificate() {
    use cairn_crypto::sign::IdentityKey;
    let mut sim = Sim::new(cfg(3, 1, 1), &[]);
    let now = sim.now;
    let (a, b) = (
        IdentityKey::from_seed(&[1; 32]).public(),
        IdentityKey::from_seed(&[2; 32]).public(),
    );
    let hello = |identity| {
        enc(&ToCoordinator::Hello(wire::Hello {
            version: wire::PROTOCOL_VERSION,
            name: "x".into(),
            n_rows: 5,
            n_features: 3,
            identity,
        }))
    };
    // Every connection is offered the job first.
    let offered = |sim: &mut Sim, to| {
        let t = sim.job.poll_transmit().expect("the offer");
        assert!(
            t.to == to
                && !t.close
                && matches!(&t.msg, ToParticipant::Offer(o) if o.job_id == "test"),
            "{t:?}"
        );
    };
    // Connection 0's certificate carries a; its Hello claims b.
    sim.job.handle_connected(0, a);
    offered(&mut sim, 0);
    let err = sim
        .job
        .handle_frame(0, &hello(b), now)
        .expect_err("mismatch is an error");
    assert!(
        matches!(err, RoundError::IdentityMismatch { from: 0, hello, certificate } if hello == b && certificate == a),
        "{err}"
    );
    let t = sim.job.poll_transmit().expect("refusal");
    assert_eq!(t.to, 0);
    assert!(
        t.close
            && matches!(&t.msg, ToParticipant::Rejected { reason } if reason.contains(&hex::encode(b.0)) && reason.contains("TLS certificate")),
        "{t:?}"
    );
    // Connection 1 is a, and says so: admitted.
    sim.job.handle_connected(1, a);
    offered(&mut sim, 1);
    sim.job.handle_frame(1, &hello(a), now).expect("admitted");
    let t = sim.job.poll_transmit().expect("welcome");
    assert!(matches!(t.msg, ToParticipant::Welcome(_)) && !t.close);
    // Connection 2 is a as well while 1 is live: refused.
    sim.job.handle_connected(2, a);
    offered(&mut sim, 2);
    sim.job.handle_frame(2, &hello(a), now).expect("handled");
    let t = sim.job.poll_transmit().expect("refusal");
    assert!(
        t.close
            && matches!(&t.msg, ToParticipant::Rejected { reason } if reason.contains("already in the job")),
        "{t:?}"
    );
    // Without a certificate on record (a job driven in memory) the Hello's key is taken.
    sim.job.handle_frame(3, &hello(b), now).expect("admitted");
    assert!(matches!(
        sim.job.poll_transmit().map(|t| t.msg),
        Some(ToParticipant::Welcome(_))
    ));
}

#[test]
fn the_client_refuses_bad_round_specs_and_stale_updates_and_clips() {
    let mut sim = Sim::new(cfg(1, 1, 1), &[(Behaviour::Silent, 8)]);
    sim.pump();
    let (c, _, _) = &mut sim.clients[0];
    let Some(ClientEvent::Joined(_)) = c.poll_event() else {
        panic!("joined first")
    };
    let Some(ClientEvent::Train { spec, batches, .. }) = c.poll_event() else {
        panic!("train next")
    };
    assert_eq!(batches.len(), 2);
    assert!(batches
        .iter()
        .all(|b| b.len() == 4 && b.iter().all(|&i| i < 8)));
    assert!(matches!(
        c.submit_update(5, vec![0.0; 4], 0.1),
        Err(ClientError::StaleRound { got: 5, .. })
    ));
    c.submit_update(spec.round, vec![3.0, 4.0, 0.0, 0.0], 0.1)
        .expect("submit");
    let Some(ToCoordinator::Update(u)) = c.poll_transmit() else {
        panic!("update queued")
    };
    assert!(
        (u.delta[0] - 0.6).abs() < 1e-6 && (u.delta[1] - 0.8).abs() < 1e-6,
        "clipped to 1.0"
    );

    let mut wrong = (*spec).clone();
    wrong.global.push(0.0);
    assert!(matches!(
        c.handle_message(ToParticipant::Round(wrong)),
        Err(ClientError::WrongModel {
            got: 5,
            want: 4,
            ..
        })
    ));
    let mut nan = (*spec).clone();
    nan.global[0] = f32::NAN;
    assert!(matches!(
        c.handle_message(ToParticipant::Round(nan)),
        Err(ClientError::BadRound { .. })
    ));
    let mut lr = *spec;
    lr.hyper.learning_rate = -1.0;
    assert!(matches!(
        c.handle_message(ToParticipant::Round(lr)),
        Err(ClientError::BadRound { .. })
    ));
    assert!(matches!(
        c.handle_frame(&[1, 2, 3]),
        Err(ClientError::Wire(_))
    ));
}

/// #12 item 9: a holder that cannot take part says why, and the round does not wait for
/// it: one whose training gave NaN, one refusing its round spec (a learning rate past the
/// holders' limit). Both are dropped at once with their reasons; the round completes
/// without any time passing.
#[test]
fn a_holder_that_cannot_take_part_declines_with_its_reason_and_the_round_goes_on_at_once() {
    let mut who = vec![(Behaviour::Honest, 10); 4];
    who[1] = (Behaviour::Scaled(f32::NAN), 10);
    let mut sim = Sim::new(cfg(4, 2, 1), &who);
    sim.tamper = Some(Box::new(|i, msg| {
        if let (2, ToParticipant::Round(spec)) = (i, msg) {
            spec.hyper.learning_rate = 1e30;
        }
    }));
    sim.pump();
    let Some(JobEvent::RoundCompleted {
        aggregate, dropped, ..
    }) = sim.completed().first().copied()
    else {
        panic!("the round must complete without waiting: {:?}", sim.events)
    };
    assert_eq!(aggregate.contributors, vec![0, 3]);
    let reason = |p: u32| match dropped.iter().find(|(q, _)| *q == p) {
        Some((_, DropReason::Declined(r))) => r.clone(),
        other => panic!("participant {p}: {other:?} in {dropped:?}"),
    };
    assert!(reason(1).contains("non-finite"), "{}", reason(1));
    assert!(reason(2).contains("lr"), "{}", reason(2));
    // Each shows, named, in the round's record.
    assert!(
        dropped
            .iter()
            .all(|(_, r)| r.to_string().starts_with("declined: ")),
        "{dropped:?}"
    );
}

/// #12 item 9: a holder's chosen name and reasons reach the coordinator's terminal and
/// logs without control characters (no escape sequences, no forged log lines).
#[test]
fn names_and_reasons_are_stripped_of_control_characters() {
    let now = Instant::now();
    let c = cfg(2, 1, 1);
    let mut job = Job::new(c.clone(), c.model.init_params(1), now);
    let hello = ToCoordinator::Hello(wire::Hello {
        version: wire::PROTOCOL_VERSION,
        name: "eve\u{1b}[2J\nINFO round 1 completed".into(),
        n_rows: 10,
        n_features: common::N_FEATURES as u32,
        identity: cairn_crypto::sign::IdentityKey::from_seed(&[7; 32]).public(),
    });
    let frame = wire::encode(&hello).expect("encode");
    job.handle_frame(0, body(&frame), now).expect("admitted");
    let name = std::iter::from_fn(|| job.poll_event())
        .find_map(|e| match e {
            JobEvent::Joined { name, .. } => Some(name),
            _ => None,
        })
        .expect("joined");
    assert_eq!(name, "eve?[2J?INFO round 1 completed");
    assert_eq!(wire::printable("a\tb\r\nc", 64), "a?b??c");
    assert_eq!(
        wire::printable("ééé", 5),
        "éé",
        "cut on a character boundary"
    );
}

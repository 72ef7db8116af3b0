//! Secure aggregation (SecAgg+) inside the job state machines, in memory and seeded:
//! the mean the coordinator learns matches the plain mean of the updates up to
//! quantisation; participants dropping after each phase are recovered from; one drop
//! more than the threshold allows aborts the round cleanly (nothing applied, the job goes
//! on); a coordinator asking for both secrets of a peer is refused.

mod common;

use std::time::Duration;

use cairn_crypto::secagg::{choose_params, ParamRequest};
use cairn_crypto::ParticipantId as CryptoId;
use cairn_proofs::verify::SumChecker;
use cairn_protocol::job::JobEvent;
use cairn_protocol::round::{Aggregation, SecureSettings};
use cairn_protocol::wire::{SecureDown, ToParticipant};
use cairn_protocol::work::Work;
use common::{cfg, delta_of, Behaviour, Sim, N_FEATURES};

const SETTINGS: SecureSettings = SecureSettings {
    dropout: 0.2,
    corruption: 0.1,
    scale_bits: 16,
};

fn secure_cfg(n: usize, min: usize, rounds: u32) -> cairn_protocol::job::JobConfig {
    let mut c = cfg(n, min, rounds);
    c.aggregation = Aggregation::Secure(SETTINGS);
    c
}

/// The unweighted mean of the clipped deltas of `who` in `round` (clip 1.0 in `cfg`).
fn plain_mean(who: &[u32], round: u32) -> Vec<f64> {
    let mut m = vec![0.0; N_FEATURES + 1];
    for &i in who {
        let mut d = delta_of(i, round);
        cairn_protocol::model::clip_l2(&mut d, 1.0);
        for (a, v) in m.iter_mut().zip(d) {
            *a += f64::from(v) / who.len() as f64;
        }
    }
    m
}

fn assert_close_to_mean(got: &[f32], who: &[u32], round: u32) {
    let want = plain_mean(who, round);
    for (g, w) in got.iter().zip(&want) {
        // Stochastic rounding: each coordinate is off by less than one quantum.
        assert!(
            (f64::from(*g) - w).abs() <= 2f64.powi(-16) + 1e-7,
            "{got:?} vs {want:?}"
        );
    }
}

/// Runs until the first round ends, advancing time a phase deadline at a time.
fn run_first_round(sim: &mut Sim) {
    sim.pump();
    for _ in 0..8 {
        if sim.events.iter().any(|e| {
            matches!(
                e,
                JobEvent::RoundCompleted { .. } | JobEvent::RoundFailed { .. }
            )
        }) {
            return;
        }
        sim.advance(Duration::from_secs(10));
    }
    panic!("round did not end: {:?}", sim.events);
}

#[test]
fn a_secure_job_learns_the_mean_of_the_updates_and_nothing_else() {
    let mut sim = Sim::new(secure_cfg(5, 3, 2), &[(Behaviour::Honest, 10); 5]);
    sim.pump();
    let done = sim.completed();
    assert_eq!(done.len(), 2, "{:?}", sim.events);
    for e in done {
        let JobEvent::RoundCompleted {
            round,
            aggregate,
            dropped,
            ..
        } = e
        else {
            unreachable!()
        };
        assert!(dropped.is_empty());
        assert_eq!(aggregate.contributors, vec![0, 1, 2, 3, 4]);
        assert_close_to_mean(&aggregate.mean_delta, &[0, 1, 2, 3, 4], *round);
        // The loss travels inside the masked vector too: its mean is learned, not each.
        assert!(
            (aggregate.mean_train_loss - 0.5).abs() < 1e-4,
            "{}",
            aggregate.mean_train_loss
        );
    }
    assert!(sim.client_errors.is_empty(), "{:?}", sim.client_errors);
}

/// Runs one round with holder `who` behaving as `lose(cut)` for each cut point (its messages
/// stop, or its connection closes, after that many), checking the round completes (by
/// `finish`) with exactly the holders whose masked input arrived, and names the lost one.
fn one_lost_holder_each_phase(who: u32, lose: fn(usize) -> Behaviour, finish: fn(&mut Sim)) {
    // Messages a participant sends: hello 1, randomness commitment 2 and reveal 3, keys 4,
    // shares 5, masked input 6, consistency signature 7, unmask shares 8.
    for (cut, in_sum) in [(4, false), (5, false), (6, true), (7, true)] {
        let mut holders = vec![(Behaviour::Honest, 10); 5];
        holders[who as usize] = (lose(cut), 10);
        let mut sim = Sim::new(secure_cfg(5, 3, 1), &holders);
        finish(&mut sim);
        let Some(JobEvent::RoundCompleted {
            aggregate, dropped, ..
        }) = sim
            .events
            .iter()
            .find(|e| matches!(e, JobEvent::RoundCompleted { .. }))
        else {
            panic!("lost after {cut}: round must complete: {:?}", sim.events)
        };
        let expect: Vec<u32> = (0..5).filter(|&i| in_sum || i != who).collect();
        assert_eq!(aggregate.contributors, expect, "lost after {cut}");
        assert_close_to_mean(&aggregate.mean_delta, &expect, 1);
        assert!(
            dropped.iter().any(|(p, _)| *p == who),
            "lost after {cut}: {dropped:?}"
        );
    }
}

#[test]
fn drops_after_each_phase_are_recovered_from() {
    one_lost_holder_each_phase(3, Behaviour::CutAfter, run_first_round);
}

#[test]
fn a_holder_that_disconnects_after_answering_a_phase_is_not_waited_for() {
    // A holder that answered a phase and then crashed (its connection closed) used to be
    // put back on the next phase's waiting list, so every such crash cost the round a whole
    // phase deadline. Here the round must complete with no time passing at all.
    one_lost_holder_each_phase(1, Behaviour::DisconnectAfter, Sim::pump);
}

#[test]
fn a_holder_that_crashed_joins_the_running_job_again_and_a_stranger_cannot() {
    // Holder 1 crashes after its shares in round 1; holder 4 goes quiet after its masked
    // input, so round 1 waits for its deadline. Meanwhile holder 1 connects again (same
    // identity key, new connection 5) and a stranger tries to join.
    let mut who = vec![(Behaviour::Honest, 10); 5];
    who[1] = (Behaviour::DisconnectAfter(5), 10);
    who[4] = (Behaviour::CutAfter(6), 10);
    let seeds = [1, 2, 3, 4, 5];
    let now = std::time::Instant::now();
    let cfg = secure_cfg(5, 3, 2);
    let init = cfg.model.init_params(1);
    let job = cairn_protocol::job::Job::new(cfg, init, now);
    let mut sim = Sim::with_seeds(job, now, &who, &seeds);
    sim.pump();
    assert!(sim.completed().is_empty(), "round 1 waits for holder 4");
    let again = sim.connect(seeds[1], 10);
    let stranger = sim.connect(77, 10);
    sim.pump();
    assert!(
        sim.events.iter().any(|e| matches!(
            e,
            JobEvent::Refused { participant, reason }
                if *participant == stranger && reason.contains("already started")
        )),
        "{:?}",
        sim.events
    );
    let round_2_done = |sim: &Sim| {
        sim.events
            .iter()
            .any(|e| matches!(e, JobEvent::RoundCompleted { round: 2, .. }))
    };
    for _ in 0..8 {
        if round_2_done(&sim) {
            break;
        }
        sim.advance(Duration::from_secs(10));
    }
    let Some(JobEvent::RoundStarted { participants, .. }) = sim
        .events
        .iter()
        .find(|e| matches!(e, JobEvent::RoundStarted { round: 2, .. }))
    else {
        panic!("no round 2: {:?}", sim.events)
    };
    assert!(participants.contains(&again), "{participants:?}");
    assert!(!participants.contains(&1) && !participants.contains(&stranger));
    // (Round 1 itself may fail: with 5 holders, two lost leave too few shares.)
    let Some(JobEvent::RoundCompleted { aggregate, .. }) = sim
        .events
        .iter()
        .find(|e| matches!(e, JobEvent::RoundCompleted { round: 2, .. }))
    else {
        panic!("round 2 must complete: {:?}", sim.events)
    };
    assert!(aggregate.contributors.contains(&again), "{aggregate:?}");
    assert!(sim.client_errors.is_empty(), "{:?}", sim.client_errors);
}

#[test]
fn as_many_drops_as_the_threshold_allows_and_one_more_aborts_cleanly() {
    let n = 7;
    let params = SETTINGS.params(n).expect("params");
    let tolerable = params.k - params.threshold; // a participant's neighbours that may vanish
    let drops_ok = tolerable.min(n - 3);
    for (drops, completes) in [(drops_ok, true), (n - params.threshold + 1, false)] {
        let mut who = vec![(Behaviour::Honest, 10); n];
        for w in who.iter_mut().take(drops) {
            *w = (Behaviour::CutAfter(3), 10); // shared keys, then vanished before masking
        }
        let mut sim = Sim::new(secure_cfg(n, 1, 1), &who);
        let start = sim.job.global().to_vec();
        run_first_round(&mut sim);
        let survivors: Vec<u32> = (drops as u32..n as u32).collect();
        match sim.events.iter().find(|e| {
            matches!(
                e,
                JobEvent::RoundCompleted { .. } | JobEvent::RoundFailed { .. }
            )
        }) {
            Some(JobEvent::RoundCompleted { aggregate, .. }) if completes => {
                assert_eq!(aggregate.contributors, survivors);
                assert_close_to_mean(&aggregate.mean_delta, &survivors, 1);
            }
            Some(JobEvent::RoundFailed { reason, .. }) if !completes => {
                assert!(
                    reason.contains("secure aggregation") || reason.contains("survived"),
                    "{reason}"
                );
                assert_eq!(sim.job.global(), &start[..], "nothing applied");
                // The job is over (its only round failed) and says so.
                assert!(matches!(sim.events.last(), Some(JobEvent::Finished { .. })));
            }
            other => panic!(
                "{drops} drops (k {}, t {}): unexpected {other:?}",
                params.k, params.threshold
            ),
        }
    }
}

#[test]
fn a_coordinator_asking_for_both_secrets_of_a_peer_is_refused() {
    let mut sim = Sim::new(secure_cfg(5, 3, 1), &[(Behaviour::Honest, 10); 5]);
    // The malicious coordinator lists a survivor as dropped too, asking participant 0
    // for both its share of that peer's b and of its mask key.
    sim.tamper = Some(Box::new(|to, msg| {
        if let (0, ToParticipant::Secure(SecureDown::Unmask { request, .. })) = (to, msg) {
            let peer = request
                .survivors
                .iter()
                .copied()
                .find(|&p| p != CryptoId(0))
                .expect("a peer");
            request.dropped.push(peer);
        }
    }));
    run_first_round(&mut sim);
    assert!(
        sim.client_errors
            .iter()
            .any(|(i, e)| *i == 0 && e.contains("secure aggregation")),
        "{:?}",
        sim.client_errors
    );
    // Participant 0 sent hello, commitment, reveal, keys, shares, masked input, signature —
    // and no shares.
    assert_eq!(sim.sent[0], 7);
}

#[test]
fn holders_refuse_parameters_weaker_than_the_malicious_bound() {
    // #12 item 2: a coordinator hands out the semi-honest (k, t) = (4, 3) for 7 holders at
    // δ = 0.2, γ = 0.1 (t ≤ k/2 lets it collect both secrets of a holder by showing its
    // neighbours two survivor lists). Every holder recomputes (6, 4) and refuses the round
    // before sending any key: the round fails with nothing learnt.
    let n = 7;
    let semi =
        choose_params(&ParamRequest::new(n, SETTINGS.dropout, SETTINGS.corruption).semi_honest())
            .expect("feasible");
    let mal = SETTINGS.params(n).expect("feasible");
    assert_ne!((semi.k, semi.threshold), (mal.k, mal.threshold));
    for lie in [
        (semi.k, semi.threshold),
        (mal.k, mal.threshold - 1),
        (mal.k, 1),
    ] {
        let mut sim = Sim::new(secure_cfg(n, 3, 1), &[(Behaviour::Honest, 10); 7]);
        sim.tamper = Some(Box::new(move |_, msg| {
            if let ToParticipant::Round(spec) = msg {
                let s = spec.secure.as_mut().expect("secure");
                (s.k, s.threshold) = (lie.0 as u32, lie.1 as u32);
            }
        }));
        run_first_round(&mut sim);
        assert!(sim.completed().is_empty(), "{lie:?}: {:?}", sim.events);
        assert_eq!(
            sim.client_errors.len(),
            n,
            "{lie:?}: {:?}",
            sim.client_errors
        );
        for (_, e) in &sim.client_errors {
            assert!(e.contains("against a malicious coordinator"), "{e}");
        }
        // Hello, commitment and reveal, then the Decline naming the reason: no holder
        // advertised keys for the weakened round.
        assert!(sim.sent.iter().all(|&m| m == 4), "{:?}", sim.sent);
    }
    // The honest parameters run.
    let mut sim = Sim::new(secure_cfg(n, 3, 1), &[(Behaviour::Honest, 10); 7]);
    run_first_round(&mut sim);
    assert_eq!(sim.completed().len(), 1, "{:?}", sim.client_errors);
}

#[test]
fn secure_configurations_are_checked_up_front() {
    let mut two = Sim::new(secure_cfg(2, 1, 1), &[(Behaviour::Honest, 10); 2]);
    two.pump();
    let finished = |sim: &Sim| {
        sim.events.iter().find_map(|e| match e {
            JobEvent::Finished { error: Some(e), .. } => Some(e.clone()),
            _ => None,
        })
    };
    let e = finished(&two).expect("job refused");
    assert!(e.contains("at least 3 participants"), "{e}");

    let mut c = secure_cfg(5, 3, 1);
    c.hyper.clip_norm = 1e6; // 5 · 1e6 · 2^16 overflows Z_2^32
    let mut wide = Sim::new(c, &[(Behaviour::Honest, 10); 5]);
    wide.pump();
    let e = finished(&wide).expect("job refused");
    assert!(e.contains("secure aggregation"), "{e}");
}

#[test]
fn an_unclipped_input_is_refused_after_unmasking() {
    // #12 item 7: a holder masks an input far past the clip bound (here: its round spec says
    // clip 100, so it does not clip a delta 1,000× an honest one). Before the check the
    // round completed and the mean moved by ~15 per coordinate; now the unmasked sum is
    // past n × clip and the round is refused with nothing applied.
    let mut behaviours = [(Behaviour::Honest, 10); 5];
    behaviours[2] = (Behaviour::Scaled(1000.0), 10);
    let mut sim = Sim::new(secure_cfg(5, 3, 1), &behaviours);
    sim.tamper = Some(Box::new(|i, msg| {
        if let (2, ToParticipant::Round(spec)) = (i, msg) {
            spec.hyper.clip_norm = 100.0;
        }
    }));
    run_first_round(&mut sim);
    assert!(sim.completed().is_empty(), "{:?}", sim.events);
    let failed = sim.events.iter().find_map(|e| match e {
        JobEvent::RoundFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let reason = failed.expect("the round is refused");
    assert!(reason.contains("was not clipped"), "{reason}");
    // Honest holders alone still complete a round.
    let mut sim = Sim::new(secure_cfg(5, 3, 1), &[(Behaviour::Honest, 10); 5]);
    run_first_round(&mut sim);
    assert_eq!(sim.completed().len(), 1);
}

#[test]
fn a_replayed_round_is_refused_by_every_holder() {
    // #12 item 3: a coordinator re-runs round 1 (same model, same round seed) as round 2,
    // meaning to drop a different holder and subtract the two sums. Every holder refuses
    // the repeat: nobody sends a masked input for it, so there is no second sum.
    let mut sim = Sim::new(secure_cfg(5, 3, 2), &[(Behaviour::Honest, 10); 5]);
    type FirstSpec = std::sync::Arc<std::sync::Mutex<Option<cairn_protocol::wire::RoundSpec>>>;
    let first: FirstSpec = Default::default();
    let seen = std::sync::Arc::clone(&first);
    sim.tamper = Some(Box::new(move |_, msg| {
        if let ToParticipant::Round(spec) = msg {
            let mut first = seen.lock().expect("lock");
            match &*first {
                None => *first = Some(spec.clone()),
                // Round 1 again, word for word (its seeds are the job's randomness for
                // round 1, so only the holders' memory of it can refuse it).
                Some(replay) => *spec = replay.clone(),
            }
        }
    }));
    run_first_round(&mut sim);
    assert_eq!(sim.completed().len(), 1, "round 1 is honest");
    for _ in 0..6 {
        sim.advance(Duration::from_secs(10));
    }
    assert_eq!(
        sim.completed().len(),
        1,
        "the replay completes nothing: {:?}",
        sim.events
    );
    let refusals = sim
        .client_errors
        .iter()
        .filter(|(_, e)| e.contains("replayed round"))
        .count();
    // Each replayed round (the job tries again after a failed one) is refused by all five.
    assert!(
        refusals >= 5 && refusals % 5 == 0,
        "{:?}",
        sim.client_errors
    );
}

#[test]
fn holders_refuse_a_job_that_plans_for_fewer_corrupt_holders_than_their_floor() {
    // The job's γ sets (k, t): a coordinator that says γ = 0.02 gets a weaker threshold
    // than the holders' floor (0.1 by default) allows. Each refuses before sending a key.
    let mut c = secure_cfg(7, 3, 1);
    c.aggregation = Aggregation::Secure(SecureSettings {
        corruption: 0.02,
        ..SETTINGS
    });
    let mut sim = Sim::new(c, &[(Behaviour::Honest, 10); 7]);
    run_first_round(&mut sim);
    assert!(sim.completed().is_empty(), "{:?}", sim.events);
    assert_eq!(sim.client_errors.len(), 7, "{:?}", sim.client_errors);
    for (_, e) in &sim.client_errors {
        assert!(e.contains("below this holder's floor of 0.1"), "{e}");
    }
    let declined = sim.events.iter().any(|e| {
        matches!(e, JobEvent::RoundFailed { dropped, .. }
            if dropped.iter().any(|(_, r)| r.to_string().contains("floor")))
    });
    assert!(declined, "the round names the reason: {:?}", sim.events);
}

#[test]
fn each_holder_is_sent_its_neighbourhood_not_the_whole_round() {
    // #13: with n = 40 at δ = 0.2, γ = 0.1 the graph is sparse ((k, t) = (30, 18)); the
    // keys roster a holder gets holds its neighbours' keys and its own, and its unmask
    // request the signatures of the same neighbourhood (with the whole survivor list).
    let n = 40;
    let p = SETTINGS.params(n).expect("feasible");
    assert!(p.k < n - 1, "a sparse graph: {p:?}");
    #[derive(Default)]
    struct Seen {
        spec: Option<cairn_protocol::wire::SecureSpec>,
        rosters: Vec<(usize, Vec<CryptoId>)>,
        requests: Vec<(usize, Vec<CryptoId>, usize)>,
    }
    let seen: std::sync::Arc<std::sync::Mutex<Seen>> = Default::default();
    let log = std::sync::Arc::clone(&seen);
    let mut sim = Sim::new(secure_cfg(n, 3, 1), &vec![(Behaviour::Honest, 10); n]);
    sim.tamper = Some(Box::new(move |to, msg| {
        let mut log = log.lock().expect("lock");
        match msg {
            ToParticipant::Round(spec) => log.spec = spec.secure.clone(),
            ToParticipant::Secure(SecureDown::Roster { keys, .. }) => {
                let senders = keys.iter().map(|a| a.sender).collect();
                log.rosters.push((to, senders));
            }
            ToParticipant::Secure(SecureDown::Unmask { request, .. }) => {
                let signers = request.signatures.iter().map(|s| s.sender).collect();
                log.requests.push((to, signers, request.survivors.len()));
            }
            _ => {}
        }
    }));
    run_first_round(&mut sim);
    assert_eq!(sim.completed().len(), 1, "{:?}", sim.client_errors);
    assert!(sim.client_errors.is_empty(), "{:?}", sim.client_errors);
    let seen = seen.lock().expect("lock");
    let spec = seen.spec.as_ref().expect("a secure round");
    let ids: Vec<CryptoId> = spec.roster.iter().map(|(id, _)| *id).collect();
    let graph = cairn_crypto::secagg::NeighbourGraph::new(&ids, spec.k as usize, &spec.graph_seed);
    let neighbourhood = |i: usize| {
        let me = CryptoId(i as u32);
        let mut v: Vec<CryptoId> = graph.neighbours(me).chain([me]).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(seen.rosters.len(), n);
    for (to, senders) in &seen.rosters {
        assert_eq!(senders, &neighbourhood(*to), "roster of {to}");
    }
    assert_eq!(seen.requests.len(), n);
    for (to, signers, survivors) in &seen.requests {
        assert_eq!(signers, &neighbourhood(*to), "unmask request of {to}");
        assert_eq!(*survivors, n);
    }
}

#[test]
fn the_masks_come_off_on_the_drivers_thread_and_nobody_is_awaited_meanwhile() {
    // #15 item 3: the round hands its mask removal to the driver instead of running it
    // inside handle_frame; while it runs, the round has no deadline (a driver would spin on
    // a past one) and a survivor that disconnects is still in the sum it already is in.
    let mut sim = Sim::new(secure_cfg(4, 3, 1), &[(Behaviour::Honest, 10); 4]);
    sim.hold_work = true;
    sim.pump();
    assert!(sim.completed().is_empty(), "{:?}", sim.events);
    let Some(Work::Unmask(work)) = sim.job.poll_work() else {
        panic!("no mask removal handed out: {:?}", sim.events);
    };
    assert!(
        sim.job.poll_work().is_none(),
        "the removal is handed out once"
    );
    assert_eq!(work.round(), 1);
    assert_eq!(
        sim.job.poll_timeout(),
        None,
        "nobody is awaited while the masks come off"
    );
    sim.closed[2] = true;
    sim.job.handle_disconnect(2, sim.now);
    assert!(sim.completed().is_empty());
    let done = Work::Unmask(work).run(None, &SumChecker::new(), 2);
    sim.job.handle_done(done, sim.now);
    sim.hold_work = false;
    sim.pump();
    let [JobEvent::RoundCompleted {
        aggregate, dropped, ..
    }] = sim.completed().as_slice()
    else {
        panic!("round did not complete: {:?}", sim.events);
    };
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(aggregate.contributors, vec![0, 1, 2, 3]);
    assert_close_to_mean(&aggregate.mean_delta, &[0, 1, 2, 3], 1);
}

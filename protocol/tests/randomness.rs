//! #12 item 4: the job's randomness comes from a commit-reveal among its holders after
//! every commitment is in, and a holder's rows follow its identity key, not its place in
//! the join order.
//!
//! Before: round and graph seeds were a ChaCha20 stream of the job file's 64-bit seed
//! (default 7, known to everyone before enrolment) and rows were drawn by participant id
//! (the join order), so a holder could compute which of its rows each round would use
//! before committing to them, and the same job gave another model when holders joined in
//! another order. These tests ran against that code fail (the attacker's prediction
//! holds; the two join orders train different models).

mod common;

use std::time::{Duration, Instant};

use cairn_crypto::sign::IdentityKey;
use cairn_protocol::client::ClientEvent;
use cairn_protocol::job::{Job, JobConfig, JobEvent, ResumePoint};
use cairn_protocol::randomness::{self, Contribution};
use cairn_protocol::round::{Aggregation, SecureSettings};
use cairn_protocol::wire::ToParticipant;
use common::{cfg, Behaviour, Sim};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn secure(n: usize, rounds: u32) -> JobConfig {
    let mut c = cfg(n, 3, rounds);
    c.aggregation = Aggregation::Secure(SecureSettings::default());
    c
}

fn sim(cfg: JobConfig, seeds: &[u8]) -> Sim {
    let now = Instant::now();
    let init = cfg.model.init_params(1);
    let behaviours = vec![(Behaviour::FromRows, 40); seeds.len()];
    Sim::with_seeds(Job::new(cfg, init, now), now, &behaviours, seeds)
}

fn run(cfg: JobConfig, seeds: &[u8]) -> Sim {
    let mut s = sim(cfg, seeds);
    s.pump();
    s
}

fn contributions(sim: &Sim) -> Vec<Contribution> {
    sim.events
        .iter()
        .find_map(|e| match e {
            JobEvent::Randomness { contributions } => Some(contributions.clone()),
            _ => None,
        })
        .expect("the randomness was drawn")
}

fn round_seeds(sim: &Sim) -> Vec<[u8; 32]> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            JobEvent::RoundStarted { round_seed, .. } => Some(*round_seed),
            _ => None,
        })
        .collect()
}

fn final_model(sim: &Sim) -> Vec<u32> {
    sim.events
        .iter()
        .rev()
        .find_map(|e| match e {
            JobEvent::RoundCompleted { model, .. } => {
                Some(model.iter().map(|v| v.to_bits()).collect())
            }
            _ => None,
        })
        .expect("a round completed")
}

#[test]
fn the_same_job_trains_the_same_model_whatever_the_join_order() {
    let cfg = secure(5, 3);
    let a = run(cfg.clone(), &[1, 2, 3, 4, 5]);
    let b = run(cfg, &[5, 3, 1, 4, 2]);
    for s in [&a, &b] {
        assert_eq!(s.completed().len(), 3, "{:?}", s.client_errors);
        assert!(s.client_errors.is_empty(), "{:?}", s.client_errors);
    }
    assert_eq!(contributions(&a), contributions(&b));
    assert_eq!(round_seeds(&a), round_seeds(&b));
    assert_eq!(final_model(&a), final_model(&b), "bit for bit");
    // The rows matter (so the test can fail): the same holder drawn under another index
    // trains on other rows.
    let seed = round_seeds(&a)[0];
    assert_ne!(
        cairn_protocol::sampling::batch_indices(seed, 0, 40, 2, 4),
        cairn_protocol::sampling::batch_indices(seed, 1, 40, 2, 4)
    );
}

/// What the old code drew for round `round` from the job file's seed alone.
fn predicted_from_the_job_file(seed: u64, round: u32) -> [u8; 32] {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(round));
    let mut s = [0u8; 32];
    rng.fill_bytes(&mut s);
    s
}

/// The batches holder `i` of `sim` was given in its first round.
fn first_batches(sim: &mut Sim, i: usize) -> Vec<Vec<u32>> {
    let (c, ..) = &mut sim.clients[i];
    std::iter::from_fn(|| c.poll_event())
        .find_map(|e| match e {
            ClientEvent::Train { batches, .. } => Some(batches),
            _ => None,
        })
        .expect("trained")
}

#[test]
fn no_holder_can_know_its_rows_before_every_commitment_is_in() {
    // The attacker is holder 1 (key seed 1). When it commits to its rows it knows the job
    // file and its own key, nothing else.
    let cfg = secure(5, 1);
    let job_seed = cfg.seed;
    let silent = |seeds: &[u8]| {
        let now = Instant::now();
        let init = cfg.model.init_params(1);
        let behaviours = vec![(Behaviour::Silent, 40); seeds.len()];
        let mut s = Sim::with_seeds(Job::new(cfg.clone(), init, now), now, &behaviours, seeds);
        s.pump();
        s
    };
    let mut a = silent(&[1, 2, 3, 4, 5]);
    let mut b = silent(&[1, 2, 3, 4, 9]);
    // The old derivation from the job file does not give the round seed...
    assert_ne!(round_seeds(&a)[0], predicted_from_the_job_file(job_seed, 1));
    // ...and nothing the attacker knows does: another holder with another key (whose
    // contribution the attacker cannot compute) moves the attacker's own rows.
    assert_ne!(round_seeds(&a), round_seeds(&b));
    assert_ne!(first_batches(&mut a, 0), first_batches(&mut b, 0));
    // Every holder's commitment was in the roster before anyone revealed: the roster each
    // holder was shown holds all five.
    assert_eq!(contributions(&a).len(), 5);
}

/// A holder that never reveals (it sends its Hello and its commitment, then nothing) stops
/// the job at the reveal's deadline, named; nothing is drawn without it.
#[test]
fn a_withheld_reveal_stops_the_job_and_names_the_holder() {
    let cfg = secure(5, 2);
    let now = Instant::now();
    let init = cfg.model.init_params(1);
    let mut behaviours = vec![(Behaviour::FromRows, 40); 5];
    behaviours[2] = (Behaviour::CutAfter(2), 40);
    let mut s = Sim::with_seeds(Job::new(cfg, init, now), now, &behaviours, &[1, 2, 3, 4, 5]);
    s.pump();
    assert!(round_seeds(&s).is_empty(), "no round without every reveal");
    s.advance(Duration::from_secs(11));
    let error = s.events.iter().find_map(|e| match e {
        JobEvent::Finished { error, .. } => error.clone(),
        _ => None,
    });
    let error = error.expect("the job stopped");
    assert!(
        error.contains("participant(s) 2 (") && error.contains("did not reveal"),
        "{error}"
    );
    assert!(!s
        .events
        .iter()
        .any(|e| matches!(e, JobEvent::Randomness { .. })));
}

/// A coordinator that tampers with the commit-reveal or with the seeds it derives is
/// refused by the holders: no holder trains.
#[test]
fn holders_refuse_a_coordinator_that_biases_the_randomness() {
    type Hook = fn(usize, &mut ToParticipant);
    let attacks: [(&str, Hook, &str); 4] = [
        (
            "leaves holder 0 out of the roster it shows holder 0",
            |to, msg| {
                if let (0, ToParticipant::Reveal { roster }) = (to, msg) {
                    roster.retain(|(id, _)| *id != IdentityKey::from_seed(&[1; 32]).public());
                }
            },
            "does not hold this holder's commitment",
        ),
        (
            "swaps in a contribution of its own choosing after the reveals",
            |_, msg| {
                if let ToParticipant::Randomness { contributions } = msg {
                    let chosen = [0xc0; 32];
                    contributions[1].reveal = chosen;
                    contributions[1].commitment = randomness::commit(&chosen);
                }
            },
            "do not match the roster",
        ),
        (
            "picks its own round seed",
            |_, msg| {
                if let ToParticipant::Round(spec) = msg {
                    spec.round_seed = [7; 32];
                }
            },
            "round seed is not the job's randomness",
        ),
        (
            "picks its own graph seed",
            |_, msg| {
                if let ToParticipant::Round(spec) = msg {
                    if let Some(s) = spec.secure.as_mut() {
                        s.graph_seed = [7; 32];
                    }
                }
            },
            "graph seed is not the job's randomness",
        ),
    ];
    for (what, hook, refusal) in attacks {
        let mut s = sim(secure(5, 1), &[1, 2, 3, 4, 5]);
        s.tamper = Some(Box::new(hook));
        s.pump();
        for _ in 0..4 {
            s.advance(Duration::from_secs(11));
        }
        assert!(
            s.client_errors.iter().any(|(_, e)| e.contains(refusal)),
            "{what}: {:?}",
            s.client_errors
        );
        assert!(s.completed().is_empty(), "{what}: {:?}", s.events);
    }
}

/// A resumed job keeps the randomness it drew: its rounds get the seeds the job would have
/// drawn had it never stopped, and only the roster's holders may join again.
#[test]
fn a_resumed_job_keeps_its_randomness_and_its_roster() {
    let cfg = secure(5, 4);
    let first = run(cfg.clone(), &[1, 2, 3, 4, 5]);
    let drawn = contributions(&first);
    let beacon = randomness::beacon(&cfg.job_id, &drawn);
    let now = Instant::now();
    let init = cfg.model.init_params(1);
    let point = ResumePoint {
        opt_state: cairn_protocol::server_opt::ServerOptState::new(cfg.server, init.len())
            .expect("state"),
        model: init,
        next_round: 3,
        completed: 2,
        committed: Default::default(),
        abandoned: 0,
        randomness: drawn.clone(),
    };
    let mut s = Sim::with_seeds(
        Job::resume(cfg.clone(), point.clone(), now),
        now,
        &[(Behaviour::FromRows, 40); 5],
        &[4, 2, 5, 1, 3],
    );
    s.pump();
    assert!(s.client_errors.is_empty(), "{:?}", s.client_errors);
    assert_eq!(
        round_seeds(&s),
        [3, 4].map(|r| randomness::round_seed(&beacon, r))
    );
    assert_eq!(round_seeds(&s), round_seeds(&first)[2..]);
    assert!(
        !s.events
            .iter()
            .any(|e| matches!(e, JobEvent::Randomness { .. })),
        "drawn once"
    );
    // A stranger is refused.
    let mut s = Sim::with_seeds(
        Job::resume(cfg, point, now),
        now,
        &[(Behaviour::FromRows, 40); 5],
        &[1, 2, 3, 4, 77],
    );
    s.pump();
    assert!(s.events.iter().any(|e| matches!(
        e,
        JobEvent::Refused { participant: 4, reason } if reason.contains("only they may join")
    )));
}

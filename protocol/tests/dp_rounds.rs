//! Distributed differential privacy in the job state machines (#16 item 1), in memory: a DP
//! job's holders mask their rotated, rounded updates plus their Skellam noise shares, the
//! coordinator decodes only the noisy sum, a budget stops the job before it is overspent,
//! and the settings a holder or the job cannot honour are refused.

mod common;

use cairn_privacy::SkellamParams;
use cairn_protocol::job::{JobConfigError, JobEvent};
use cairn_protocol::privacy::{DpSettings, PrivacyError};
use cairn_protocol::round::{Aggregation, SecureSettings};
use cairn_protocol::wire::ToParticipant;
use common::{cfg, delta_of, Behaviour, Sim, N_FEATURES};

const D: usize = N_FEATURES + 1;

fn dp(budget: Option<f64>) -> DpSettings {
    DpSettings {
        params: SkellamParams {
            clip: 1.0,
            noise_multiplier: 1.0,
            granularity: 1.0 / 64.0,
            beta: (-0.5f64).exp(),
            min_survivors: 3,
            dim: D,
        },
        delta: 1e-5,
        budget,
    }
}

fn dp_cfg(n: usize, rounds: u32, budget: Option<f64>) -> cairn_protocol::job::JobConfig {
    let mut c = cfg(n, 3, rounds);
    c.aggregation = Aggregation::Secure(SecureSettings::default());
    c.privacy = Some(dp(budget));
    c
}

/// The unweighted mean of the clipped deltas of `who` in `round`.
fn plain_mean(who: &[u32], round: u32) -> Vec<f64> {
    let mut m = vec![0.0; D];
    for &i in who {
        let mut d = delta_of(i, round);
        cairn_protocol::model::clip_l2(&mut d, 1.0);
        for (a, v) in m.iter_mut().zip(d) {
            *a += f64::from(v) / who.len() as f64;
        }
    }
    m
}

#[test]
fn a_dp_job_releases_only_the_noisy_mean() {
    let mut sim = Sim::new(dp_cfg(5, 3, None), &[(Behaviour::Honest, 10); 5]);
    sim.pump();
    let done = sim.completed();
    assert_eq!(done.len(), 3, "{:?}", sim.events);
    assert!(sim.client_errors.is_empty(), "{:?}", sim.client_errors);
    let p = dp(None).params;
    // The noise of the mean, per coordinate: the sum of 5 shares of variance V/t_min on the
    // grid, times γ, over 5; the rounding adds at most γ/2 per holder.
    let sigma = p.granularity * (5.0 * p.holder_variance()).sqrt() / 5.0;
    let mut largest = 0.0f64;
    for e in done {
        let JobEvent::RoundCompleted {
            round, aggregate, ..
        } = e
        else {
            unreachable!()
        };
        assert_eq!(aggregate.contributors, vec![0, 1, 2, 3, 4]);
        assert!(
            aggregate.mean_train_loss.is_nan(),
            "a holder's loss is not released"
        );
        let want = plain_mean(&[0, 1, 2, 3, 4], *round);
        for (g, w) in aggregate.mean_delta.iter().zip(&want) {
            let err = (f64::from(*g) - w).abs();
            assert!(err < 6.0 * sigma + p.granularity, "{err} vs σ {sigma}");
            largest = largest.max(err);
        }
    }
    // Twelve coordinates of noise of σ ≈ 0.26: all within the rounding would mean no noise.
    assert!(
        largest > 4.0 * p.granularity,
        "no noise in the released means"
    );
}

#[test]
fn a_budget_stops_the_job_before_it_is_overspent() {
    let two = dp(None).epsilon_after(2).expect("ε after 2 rounds");
    let three = dp(None).epsilon_after(3).expect("ε after 3 rounds");
    assert!(three > two);
    let budget = (two + three) / 2.0;
    let mut sim = Sim::new(dp_cfg(5, 6, Some(budget)), &[(Behaviour::Honest, 10); 5]);
    sim.pump();
    assert_eq!(sim.completed().len(), 2, "{:?}", sim.events);
    let Some(JobEvent::Finished {
        rounds_completed,
        error: Some(error),
        ..
    }) = sim.events.last()
    else {
        panic!("the job did not stop on its budget: {:?}", sim.events);
    };
    assert_eq!(*rounds_completed, 2);
    assert!(error.contains("privacy budget spent"), "{error}");
}

#[test]
fn settings_the_job_cannot_honour_are_refused_naming_the_field() {
    let field = |c: cairn_protocol::job::JobConfig| match c.validate() {
        Err(JobConfigError::Privacy(PrivacyError::Field { field, .. })) => field,
        other => panic!("{other:?}"),
    };
    let mut plain = dp_cfg(5, 1, None);
    plain.aggregation = Aggregation::Plain;
    assert_eq!(field(plain), "aggregation");
    let mut too_many = dp_cfg(5, 1, None);
    if let Some(d) = &mut too_many.privacy {
        d.params.min_survivors = 4;
    }
    assert_eq!(field(too_many), "min_survivors");
    let mut clip = dp_cfg(5, 1, None);
    if let Some(d) = &mut clip.privacy {
        d.params.clip = 2.0;
    }
    assert_eq!(field(clip), "clip");
    dp_cfg(5, 1, None)
        .validate()
        .expect("the test's own job is valid");
}

#[test]
fn a_holder_refuses_dp_parameters_for_another_clip() {
    // A coordinator that tells the holders another clip than the job's would have them add
    // noise calibrated to the wrong sensitivity.
    let mut sim = Sim::new(dp_cfg(5, 1, None), &[(Behaviour::Honest, 10); 5]);
    sim.tamper = Some(Box::new(|_, msg| {
        if let ToParticipant::Round(spec) = msg {
            if let Some(p) = spec.secure.as_mut().and_then(|s| s.privacy.as_mut()) {
                p.clip = 4.0;
            }
        }
    }));
    sim.pump();
    assert!(sim.completed().is_empty(), "{:?}", sim.events);
    assert!(
        sim.client_errors
            .iter()
            .any(|(_, e)| e.contains("DP parameters")),
        "{:?}",
        sim.client_errors
    );
}

/// Gives holder `i` of `sim` a noise floor of `z`.
fn with_floor(sim: &mut Sim, i: usize, z: f64) {
    let placeholder = cairn_protocol::client::Client::new(
        "p",
        1,
        N_FEATURES,
        cairn_crypto::sign::IdentityKey::from_seed(&[0; 32]),
        [0; 32],
    );
    let c = std::mem::replace(&mut sim.clients[i].0, placeholder);
    sim.clients[i].0 = c.with_min_noise(z);
}

#[test]
fn a_holder_with_a_noise_floor_refuses_a_round_with_less_noise_or_none() {
    // The coordinator lowers the noise it tells the holders: a holder whose floor is the
    // job's promised z refuses, and so does one asked to join a round without DP.
    let mut sim = Sim::new(dp_cfg(5, 1, None), &[(Behaviour::Honest, 10); 5]);
    with_floor(&mut sim, 0, 1.0);
    sim.tamper = Some(Box::new(|_, msg| {
        if let ToParticipant::Round(spec) = msg {
            if let Some(p) = spec.secure.as_mut().and_then(|s| s.privacy.as_mut()) {
                p.noise_multiplier = 0.5;
            }
        }
    }));
    sim.pump();
    assert!(
        sim.client_errors
            .iter()
            .any(|(i, e)| *i == 0 && e.contains("below this holder's floor")),
        "{:?}",
        sim.client_errors
    );

    let mut plain = cfg(5, 3, 1);
    plain.aggregation = Aggregation::Secure(SecureSettings::default());
    let mut sim = Sim::new(plain, &[(Behaviour::Honest, 10); 5]);
    with_floor(&mut sim, 1, 1.0);
    sim.pump();
    assert!(
        sim.client_errors
            .iter()
            .any(|(i, e)| *i == 1 && e.contains("adds no DP noise")),
        "{:?}",
        sim.client_errors
    );
    // The honest holders' floor of the job's own noise is met: nothing refused.
    let mut sim = Sim::new(dp_cfg(5, 1, None), &[(Behaviour::Honest, 10); 5]);
    for i in 0..5 {
        with_floor(&mut sim, i, 1.0);
    }
    sim.pump();
    assert!(sim.client_errors.is_empty(), "{:?}", sim.client_errors);
    assert_eq!(sim.completed().len(), 1);
}

#[test]
fn a_holder_refuses_noise_shared_over_more_survivors_than_the_round_has() {
    // t_min above the roster: each holder would add V / t_min, the sum far less than V.
    let mut sim = Sim::new(dp_cfg(5, 1, None), &[(Behaviour::Honest, 10); 5]);
    sim.tamper = Some(Box::new(|_, msg| {
        if let ToParticipant::Round(spec) = msg {
            if let Some(p) = spec.secure.as_mut().and_then(|s| s.privacy.as_mut()) {
                p.min_survivors = 50;
            }
        }
    }));
    sim.pump();
    assert!(sim.completed().is_empty(), "{:?}", sim.events);
    assert!(
        sim.client_errors
            .iter()
            .any(|(_, e)| e.contains("shared over 50 survivors")),
        "{:?}",
        sim.client_errors
    );
}

#[test]
fn proofs_of_noise_must_carry_the_jobs_own_mechanism() {
    // A proven DP job's proof settings name the job's Skellam parameters: other noise, or
    // noise in a job without privacy, is refused naming it.
    let spec = |noise| cairn_protocol::wire::ProofSpec {
        tolerance: 1e-3,
        tree_depth: 8,
        blinding_limbs: 16,
        feature_bits: 20,
        block_rows: 1,
        sampled_steps: None,
        noise,
    };
    let mut other = dp_cfg(5, 1, None);
    let mut weaker = dp(None).params;
    weaker.noise_multiplier = 0.5;
    other.proof = Some(spec(Some(weaker)));
    match other.validate() {
        Err(JobConfigError::Privacy(PrivacyError::Field { field, .. })) => {
            assert_eq!(field, "proofs")
        }
        e => panic!("{e:?}"),
    }
    let mut without = dp_cfg(5, 1, None);
    without.privacy = None;
    without.proof = Some(spec(Some(dp(None).params)));
    assert!(
        matches!(without.validate(), Err(JobConfigError::Proof(ref why)) if why.contains("without [privacy]")),
        "{:?}",
        without.validate()
    );

    // A coordinator whose round spec names weaker noise in its proof settings than in its
    // privacy parameters: every holder refuses the round.
    let mut sim = Sim::new(dp_cfg(5, 1, None), &[(Behaviour::Honest, 10); 5]);
    sim.tamper = Some(Box::new(move |_, msg| {
        if let ToParticipant::Round(r) = msg {
            r.proof = Some(spec(Some(weaker)));
        }
    }));
    sim.pump();
    assert!(sim.completed().is_empty(), "{:?}", sim.events);
    assert!(
        sim.client_errors
            .iter()
            .any(|(_, e)| e.contains("other noise than its privacy parameters")),
        "{:?}",
        sim.client_errors
    );
}

//! Whole SecAgg+ rounds in memory: the unmasked sum equals the plain sum of the
//! survivors' quantised updates exactly, with and without dropouts, and one drop too
//! many aborts the round with a typed error.

mod common;

use std::collections::BTreeSet;

use cairn_crypto::quant::dequantise;
use cairn_crypto::secagg::{Phase, SecAggError};
use cairn_crypto::ParticipantId;
use common::{maximal_drops, Drops, Harness};

const N: u32 = 10;
const K: usize = 6;
const T: usize = 3;
const D: usize = 1000;

fn all(h: &Harness) -> BTreeSet<ParticipantId> {
    h.ids.iter().copied().collect()
}

#[test]
fn full_round_sparse_graph_sums_exactly() {
    let mut h = Harness::new(N, K, T, D, 1);
    assert_eq!(h.graph().degree(), K);
    assert!(K < N as usize - 1, "the graph must be sparse for this test");
    let out = h.run(&Drops::default());
    assert!(out.client_errors.is_empty(), "{:?}", out.client_errors);
    let sum = out.result.expect("round completes");
    assert_eq!(out.masked, all(&h));
    assert_eq!(sum, h.expected_sum(&all(&h)));
    // And the dequantised sum is the float sum up to rounding (≤ n/2 units of 2^-16).
    let plain = dequantise(&h.expected_sum(&all(&h)), 16);
    assert_eq!(dequantise(&sum, 16), plain);
}

#[test]
fn full_round_complete_graph_sums_exactly() {
    let mut h = Harness::new(7, 6, 4, 257, 2);
    assert_eq!(h.graph().degree(), 6);
    let out = h.run(&Drops::default());
    assert_eq!(
        out.result.expect("round completes"),
        h.expected_sum(&all(&h))
    );
}

/// Drops as many as the threshold allows at one phase, checks the exact sum over the
/// survivors; then drops one more there and checks the round aborts with a typed error.
fn drop_at(phase: Phase, seed: u64) {
    let mut h = Harness::new(N, K, T, D, seed);
    let before_sharing = matches!(phase, Phase::AdvertiseKeys | Phase::ShareKeys);
    let (max, breaker) = maximal_drops(h.graph(), T, before_sharing);
    assert!(!max.is_empty(), "the threshold must allow some drops");
    let place = |set: BTreeSet<ParticipantId>| {
        let mut d = Drops::default();
        match phase {
            Phase::AdvertiseKeys => d.before_advertise = set,
            Phase::ShareKeys => d.before_sharing = set,
            Phase::MaskedInput => d.after_sharing = set,
            Phase::Consistency => d.after_masked = set,
            Phase::Unmask => d.during_unmask = set,
        }
        d
    };
    let out = h.run(&place(max.clone()));
    assert!(
        out.client_errors.is_empty(),
        "{phase:?}: {:?}",
        out.client_errors
    );
    let expected_in_sum: BTreeSet<ParticipantId> = match phase {
        Phase::Consistency | Phase::Unmask => all(&h),
        _ => all(&h).difference(&max).copied().collect(),
    };
    assert_eq!(out.masked, expected_in_sum);
    assert_eq!(
        out.result.expect("recoverable drops"),
        h.expected_sum(&expected_in_sum),
        "{phase:?} with {max:?}"
    );

    let mut too_many = max.clone();
    too_many.insert(breaker);
    let out = h.run(&place(too_many));
    eprintln!(
        "{phase:?}: dropped {max:?} fine, +{breaker} -> {:?}; client errors {:?}",
        out.result.as_ref().err(),
        out.client_errors
    );
    match out.result {
        Err(SecAggError::TooFewShares { have, need, .. }) => assert!(have < need),
        Err(SecAggError::TooFewParticipants { .. } | SecAggError::TooFewSignatures { .. }) => {}
        other => panic!("{phase:?}: expected a clean abort, got {other:?}"),
    }
}

#[test]
fn drops_before_advertising() {
    drop_at(Phase::AdvertiseKeys, 10);
}

#[test]
fn drops_before_sharing() {
    drop_at(Phase::ShareKeys, 11);
}

#[test]
fn drops_after_sharing() {
    drop_at(Phase::MaskedInput, 12);
}

#[test]
fn drops_after_masked_input() {
    drop_at(Phase::Consistency, 13);
}

#[test]
fn drops_during_unmasking() {
    drop_at(Phase::Unmask, 14);
}

#[test]
fn drops_in_every_phase_at_once() {
    let mut h = Harness::new(16, 8, 4, 300, 15);
    let ids = h.ids.clone();
    let drops = Drops {
        before_advertise: [ids[0]].into(),
        before_sharing: [ids[5]].into(),
        after_sharing: [ids[9]].into(),
        after_masked: [ids[12]].into(),
        during_unmask: [ids[14]].into(),
    };
    let out = h.run(&drops);
    let in_sum: BTreeSet<ParticipantId> = ids
        .iter()
        .copied()
        .filter(|id| ![ids[0], ids[5], ids[9]].contains(id))
        .collect();
    assert_eq!(out.masked, in_sum);
    assert_eq!(out.result.expect("recoverable"), h.expected_sum(&in_sum));
}

#[test]
fn too_few_masked_inputs_abort_before_any_unmasking() {
    let mut h = Harness::new(N, K, T, D, 16);
    let ids = h.ids.clone();
    // Only two participants send masked inputs: fewer than t, no unmask request goes out.
    let drops = Drops {
        after_sharing: ids[2..].iter().copied().collect(),
        ..Default::default()
    };
    let out = h.run(&drops);
    assert_eq!(
        out.result,
        Err(SecAggError::TooFewParticipants {
            phase: Phase::MaskedInput,
            have: 2,
            need: T
        })
    );
}

#[test]
fn round_with_parameters_from_choose_params() {
    use cairn_crypto::secagg::{choose_params, ParamRequest};
    let n = 20;
    let p = choose_params(&ParamRequest::new(n, 0.1, 0.05)).expect("feasible");
    let mut h = Harness::new(n as u32, p.k, p.threshold, 128, 17);
    assert_eq!(h.graph().degree(), p.k);
    // δn = 2 participants drop: one before sharing, one after sharing.
    let ids = h.ids.clone();
    let (gone, recoverable) = {
        let g = h.graph();
        // Pick two participants that are not neighbours of each other, so no neighbourhood
        // loses more than one (the parameters guarantee this only with high probability).
        let a = ids[0];
        let b = ids
            .iter()
            .copied()
            .find(|&v| v != a && !g.are_neighbours(a, v))
            .expect("sparse");
        (
            (a, b),
            common::recoverable(g, p.threshold, &[a].into(), &[b].into()),
        )
    };
    assert!(recoverable);
    let drops = Drops {
        before_sharing: [gone.0].into(),
        after_sharing: [gone.1].into(),
        ..Default::default()
    };
    let out = h.run(&drops);
    let in_sum: BTreeSet<ParticipantId> = ids
        .iter()
        .copied()
        .filter(|&v| v != gone.0 && v != gone.1)
        .collect();
    assert_eq!(out.result.expect("recoverable"), h.expected_sum(&in_sum));
}

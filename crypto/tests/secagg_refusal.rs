//! A coordinator asking for too much: the client refuses an unmask request that asks for
//! both secrets of a peer, names a peer outside its neighbourhood, edits the signed
//! survivor list or lacks the survivors' signatures — and reveals nothing.

mod common;

use std::collections::BTreeSet;

use cairn_crypto::secagg::*;
use common::Harness;

#[test]
fn client_refuses_to_reveal_both_secrets_of_a_peer() {
    let mut h = Harness::new(10, 4, 3, 64, 21);
    let (mut ready, server) = h.run_to_unmask(&BTreeSet::new());
    let me = h.ids[0];
    let neighbour = h.graph().neighbours(me).next().expect("has neighbours");

    // A coordinator asking for s_sk of a peer it also lists as a survivor (whose b share
    // the client then reveals) is refused, and nothing is revealed.
    let mut both = server.request_for(me).expect("survivor");
    both.dropped.push(neighbour);
    let client = ready.remove(&me).expect("ready");
    assert_eq!(
        client.unmask(&both),
        Err(SecAggError::BothSecretsRequested(neighbour))
    );

    // Moving a peer from the signed survivor list to the dropped list: the list no longer
    // matches what the client signed, so it is refused.
    let other = h.ids[1];
    let mut edited = server.request_for(other).expect("survivor");
    let moved = h.graph().neighbours(other).next().expect("has neighbours");
    edited.survivors.retain(|&v| v != moved);
    edited.dropped.push(moved);
    let c = ready.remove(&other).expect("ready");
    assert!(matches!(
        c.unmask(&edited),
        Err(SecAggError::InconsistentSurvivors(_))
    ));

    // With the list intact, a dropped entry for a surviving stranger is again "both secrets".
    let third = h.ids[2];
    let mut req = server.request_for(third).expect("survivor");
    let not_mine = h
        .ids
        .iter()
        .copied()
        .find(|&v| v != third && !h.graph().are_neighbours(third, v))
        .expect("sparse");
    req.dropped.push(not_mine);
    assert_eq!(
        ready.remove(&third).expect("ready").unmask(&req),
        Err(SecAggError::BothSecretsRequested(not_mine))
    );

    // Too few signatures: the coordinator cannot skip the consistency check.
    let fourth = h.ids[3];
    let mut req = server.request_for(fourth).expect("survivor");
    let g = h.graph().clone();
    req.signatures
        .retain(|s| s.sender == fourth || g.are_neighbours(fourth, s.sender));
    req.signatures.truncate(2);
    assert_eq!(
        ready.remove(&fourth).expect("ready").unmask(&req),
        Err(SecAggError::TooFewSignatures { have: 2, need: 3 })
    );

    // An honest request is answered with exactly the b shares of surviving neighbours.
    let fifth = h.ids[4];
    let resp = ready
        .remove(&fifth)
        .expect("ready")
        .unmask(&server.request_for(fifth).expect("survivor"))
        .expect("honest");
    assert_eq!(resp.self_mask_shares.len(), h.graph().degree());
    assert!(resp.mask_key_shares.is_empty());
}

#[test]
fn client_refuses_s_sk_of_a_non_neighbour_when_peer_really_dropped() {
    // Drop one participant after sharing so a genuine "dropped" list exists, then ask a
    // client for the mask key of a dropped participant that is not its neighbour.
    let mut h = Harness::new(12, 4, 2, 32, 22);
    let victim = h.ids[0];
    let asker = h
        .ids
        .iter()
        .copied()
        .find(|&v| v != victim && !h.graph().are_neighbours(victim, v))
        .expect("sparse");
    let (mut ready, server) = h.run_to_unmask(&[victim].into());
    assert!(!server.survivors().contains(&victim));
    let mut req = server.request_for(asker).expect("survivor");
    assert!(req.dropped.is_empty());
    req.dropped.push(victim);
    assert_eq!(
        ready.remove(&asker).expect("ready").unmask(&req),
        Err(SecAggError::NotNeighbour(victim))
    );
}

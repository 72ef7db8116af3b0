//! What a participant receives is its neighbourhood's, not the whole round's (issue #13):
//! the keys roster holds only its neighbours' keys and its own, the unmask request only the
//! signatures of its neighbourhood (with the whole survivor list). The client still
//! refuses everything it refused when it was sent everyone's.

mod common;

use std::collections::BTreeSet;

use cairn_crypto::secagg::*;
use cairn_crypto::sign::IdentityKey;
use cairn_crypto::ParticipantId;
use common::Harness;
use rand::SeedableRng;

fn senders(roster: &[AdvertiseKeys]) -> Vec<ParticipantId> {
    roster.iter().map(|a| a.sender).collect()
}

#[test]
fn the_roster_for_a_participant_is_its_neighbours_and_itself() {
    let mut h = Harness::new(30, 6, 4, 8, 41);
    let absent: BTreeSet<ParticipantId> = [h.ids[3]].into();
    let (_, server) = h.advertise(&absent);
    let g = h.graph().clone();
    for &id in &h.ids {
        let mut want: Vec<ParticipantId> = g
            .neighbours(id)
            .chain([id])
            .filter(|v| !absent.contains(v))
            .collect();
        want.sort_unstable();
        let got = server.roster_for(id);
        assert_eq!(senders(&got), want, "{id}");
        // Each entry is the one the whole roster holds.
        let whole = server.roster();
        assert!(got.iter().all(|a| whole.contains(a)));
    }
    assert!(server.roster_for(ParticipantId(9999)).is_empty());
}

#[test]
fn a_neighbour_only_roster_gives_the_same_shares_as_the_whole_one() {
    let mut h = Harness::new(20, 4, 3, 8, 42);
    let (clients, server) = h.advertise(&BTreeSet::new());
    for (id, c) in clients {
        let seed = u64::from(id.0);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let (_, local) = c
            .share_keys(&server.roster_for(id), &mut rng)
            .expect("neighbour roster");
        let recipients: Vec<ParticipantId> = local.shares.iter().map(|s| s.receiver).collect();
        let neighbours: Vec<ParticipantId> = h.graph().neighbours(id).collect();
        assert_eq!(recipients, neighbours, "{id}");
    }
    // A whole roster (what a coordinator sent before) is still taken: the entries of
    // non-neighbours are skipped.
    let (clients, mut server) = h.advertise(&BTreeSet::new());
    for (_, c) in clients {
        let (_, m) = c.share_keys(&server.roster(), &mut h.rng).expect("whole");
        server.receive(m).expect("the same shares");
    }
}

#[test]
fn a_neighbour_only_roster_is_checked_as_before() {
    let mut h = Harness::new(20, 4, 3, 8, 43);
    let (mut clients, server) = h.advertise(&BTreeSet::new());
    let me = h.ids[0];
    let g = h.graph().clone();
    let honest = server.roster_for(me);
    let nb = g.neighbours(me).next().expect("neighbours");
    let at = |r: &[AdvertiseKeys], v: ParticipantId| {
        r.iter().position(|a| a.sender == v).expect("in the roster")
    };

    // A neighbour's entry with a bad signature.
    let mut bad = honest.clone();
    let i = at(&bad, nb);
    bad[i].signature = IdentityKey::random(&mut h.rng).sign(b"not the keys");
    assert_eq!(
        clients
            .remove(&me)
            .expect("advertised")
            .share_keys(&bad, &mut h.rng)
            .err(),
        Some(SecAggError::BadSignature(nb))
    );
    // Rebuild `me` for the next cases (a client consumes itself).
    let again = |h: &mut Harness| {
        ClientAdvertised::new(h.config.clone(), me, &h.keys[&me], &mut h.rng)
            .expect("member")
            .0
    };

    // A neighbour's entry twice.
    let mut dup = honest.clone();
    dup.push(honest[at(&honest, nb)].clone());
    assert_eq!(
        again(&mut h).share_keys(&dup, &mut h.rng).err(),
        Some(SecAggError::Duplicate {
            id: nb,
            phase: Phase::AdvertiseKeys
        })
    );

    // An entry of someone outside the round.
    let mut stranger = honest.clone();
    let mut forged = honest[0].clone();
    forged.sender = ParticipantId(9999);
    stranger.push(forged);
    assert_eq!(
        again(&mut h).share_keys(&stranger, &mut h.rng).err(),
        Some(SecAggError::NotInRound(ParticipantId(9999)))
    );

    // Fewer than t neighbours left in the roster.
    let few: Vec<AdvertiseKeys> = honest
        .iter()
        .filter(|a| a.sender == me)
        .chain(honest.iter().filter(|a| a.sender != me).take(2))
        .cloned()
        .collect();
    assert_eq!(
        again(&mut h).share_keys(&few, &mut h.rng).err(),
        Some(SecAggError::TooFewNeighbours { have: 2, need: 3 })
    );

    // Our own entry need not be there: the neighbours' keys are what we use.
    let without_me: Vec<AdvertiseKeys> =
        honest.iter().filter(|a| a.sender != me).cloned().collect();
    let (_, m) = again(&mut h)
        .share_keys(&without_me, &mut h.rng)
        .expect("neighbours suffice");
    assert_eq!(m.shares.len(), g.degree());
}

#[test]
fn the_unmask_request_carries_the_neighbourhood_signatures_only() {
    let mut h = Harness::new(24, 6, 4, 8, 44);
    let gone: BTreeSet<ParticipantId> = [h.ids[5]].into();
    let (mut ready, server) = h.run_to_unmask(&gone);
    let g = h.graph().clone();
    assert_eq!(
        server.signatures().len(),
        23,
        "the transcript keeps them all"
    );
    assert_eq!(server.dropped(), [h.ids[5]]);
    let mut responses = Vec::new();
    for (&id, _) in ready.iter() {
        let req = server.request_for(id).expect("survivor");
        assert_eq!(req.survivors, server.survivors(), "the whole list");
        let signers: Vec<ParticipantId> = req.signatures.iter().map(|s| s.sender).collect();
        let mut want: Vec<ParticipantId> = g
            .neighbours(id)
            .chain([id])
            .filter(|v| !gone.contains(v))
            .collect();
        want.sort_unstable();
        assert_eq!(signers, want, "{id}");
        let dropped: Vec<ParticipantId> = g.neighbours(id).filter(|v| gone.contains(v)).collect();
        assert_eq!(req.dropped, dropped, "{id}");
    }
    for (id, c) in std::mem::take(&mut ready) {
        responses.push(
            c.unmask(&server.request_for(id).expect("survivor"))
                .expect("honest"),
        );
    }
    let mut server = server;
    for r in responses {
        server.receive(r).expect("valid");
    }
    let survivors: BTreeSet<ParticipantId> = h
        .ids
        .iter()
        .copied()
        .filter(|v| !gone.contains(v))
        .collect();
    assert_eq!(
        server.finish().expect("recoverable"),
        h.expected_sum(&survivors)
    );
}

#[test]
fn a_neighbourhood_request_is_checked_as_before() {
    let mut h = Harness::new(24, 6, 4, 8, 45);
    let (mut ready, server) = h.run_to_unmask(&BTreeSet::new());
    let g = h.graph().clone();
    let ids = h.ids.clone();
    let stranger_of = |me: ParticipantId| {
        ids.iter()
            .copied()
            .find(|&v| v != me && !g.are_neighbours(me, v))
            .expect("sparse")
    };

    // One local signature short of t: refused, even with a stranger's valid one added.
    let me = ids[0];
    let mut req = server.request_for(me).expect("survivor");
    let stranger = stranger_of(me);
    req.signatures.truncate(3);
    req.signatures.extend(
        server
            .signatures()
            .iter()
            .find(|s| s.sender == stranger)
            .cloned(),
    );
    assert_eq!(
        ready.remove(&me).expect("ready").unmask(&req),
        Err(SecAggError::TooFewSignatures { have: 3, need: 4 })
    );

    // A bad signature, local or not, is refused.
    let me = ids[1];
    let mut req = server.request_for(me).expect("survivor");
    let stranger = stranger_of(me);
    req.signatures.push(ConsistencySignature {
        sender: stranger,
        signature: h.keys[&me].sign(b"not the list"),
    });
    req.signatures.sort_by_key(|s| s.sender);
    assert_eq!(
        ready.remove(&me).expect("ready").unmask(&req),
        Err(SecAggError::BadSignature(stranger))
    );
    let me = ids[2];
    let mut req = server.request_for(me).expect("survivor");
    let local = req.signatures[0].sender;
    req.signatures[0].signature = h.keys[&me].sign(b"not the list");
    assert_eq!(
        ready.remove(&me).expect("ready").unmask(&req),
        Err(SecAggError::BadSignature(local))
    );

    // The same signer twice.
    let me = ids[3];
    let mut req = server.request_for(me).expect("survivor");
    let twice = req.signatures[0].clone();
    req.signatures.push(twice.clone());
    assert_eq!(
        ready.remove(&me).expect("ready").unmask(&req),
        Err(SecAggError::NotExpected {
            id: twice.sender,
            phase: Phase::Consistency
        })
    );

    // A list shortened to the neighbourhood is not the list we signed.
    let me = ids[4];
    let mut req = server.request_for(me).expect("survivor");
    req.survivors
        .retain(|&v| v == me || g.are_neighbours(me, v));
    assert!(matches!(
        ready.remove(&me).expect("ready").unmask(&req),
        Err(SecAggError::InconsistentSurvivors(_))
    ));

    // The whole set of signatures (what a coordinator sent before) is still taken.
    let me = ids[6];
    let mut req = server.request_for(me).expect("survivor");
    req.signatures = server.signatures().to_vec();
    ready
        .remove(&me)
        .expect("ready")
        .unmask(&req)
        .expect("honest");
}

//! Misbehaving messages: tampered signatures, keys from another round, low-order keys,
//! oversized or short vectors, mis-addressed or tampered ciphertexts, duplicates and
//! outsiders are rejected with typed errors, by the coordinator and by the clients.

mod common;

use std::collections::BTreeSet;

use cairn_crypto::ring::RingElem;
use cairn_crypto::secagg::*;
use cairn_crypto::sign::IdentityKey;
use cairn_crypto::ParticipantId;
use common::Harness;
use rand::SeedableRng;

#[test]
fn coordinator_rejects_bad_advertisements() {
    let mut h = Harness::new(6, 5, 3, 16, 23);
    let cfg = h.config.clone();
    let (a, b) = (h.ids[0], h.ids[1]);
    let mut server = KeyCollection::new(cfg.clone());

    let (_, mut tampered) =
        ClientAdvertised::new(cfg.clone(), a, &h.keys[&a], &mut h.rng).expect("member");
    tampered.signature.0[0] ^= 1;
    assert_eq!(
        server.receive(tampered.clone()),
        Err(SecAggError::BadSignature(a))
    );
    // Keys signed by someone else's identity.
    let (_, mut forged) =
        ClientAdvertised::new(cfg.clone(), b, &h.keys[&a], &mut h.rng).expect("member");
    assert_eq!(
        server.receive(forged.clone()),
        Err(SecAggError::BadSignature(b))
    );
    // Keys signed for another round.
    let other_round = Harness::new(6, 5, 3, 16, 99);
    let (_, replay) = ClientAdvertised::new(
        other_round.config.clone(),
        a,
        &other_round.keys[&a],
        &mut h.rng,
    )
    .expect("member");
    let mut replay = replay;
    replay.signature = h.keys[&a].sign(b"not the payload");
    assert_eq!(server.receive(replay), Err(SecAggError::BadSignature(a)));
    // An outsider.
    forged.sender = ParticipantId(9999);
    assert_eq!(
        server.receive(forged),
        Err(SecAggError::NotInRound(ParticipantId(9999)))
    );
    // A low-order key, correctly signed.
    let mut weak = tampered;
    weak.signature.0[0] ^= 1;
    weak.s_pk = cairn_crypto::keys::AgreementPublic([0; 32]);
    weak.signature = h.keys[&a].sign(&advertise_payload(cfg.round(), a, &weak.c_pk, &weak.s_pk));
    assert_eq!(server.receive(weak), Err(SecAggError::WeakKey(a)));
    // A good one, then a duplicate.
    let (_, good) = ClientAdvertised::new(cfg.clone(), a, &h.keys[&a], &mut h.rng).expect("member");
    assert_eq!(server.receive(good.clone()), Ok(()));
    assert_eq!(
        server.receive(good),
        Err(SecAggError::Duplicate {
            id: a,
            phase: Phase::AdvertiseKeys
        })
    );
    // One participant is below the threshold of 3.
    assert!(matches!(
        server.close(),
        Err(SecAggError::TooFewParticipants {
            have: 1,
            need: 3,
            ..
        })
    ));
}

#[test]
fn keys_from_another_round_do_not_verify_in_this_one() {
    let mut h = Harness::new(6, 5, 3, 16, 24);
    let mut other = Harness::new(6, 5, 3, 16, 25);
    // Same identities, different round id: re-key the other round with h's identities.
    let ids = h.ids.clone();
    let identities = ids.iter().map(|&id| (id, h.keys[&id].public())).collect();
    let foreign = RoundConfig::new(
        cairn_crypto::RoundId::new("other-job", 1),
        [7; 32],
        5,
        3,
        16,
        identities,
    )
    .expect("valid");
    let (_, msg) = ClientAdvertised::new(
        std::sync::Arc::new(foreign),
        ids[0],
        &h.keys[&ids[0]],
        &mut other.rng,
    )
    .expect("member");
    let mut server = KeyCollection::new(h.config.clone());
    assert_eq!(server.receive(msg), Err(SecAggError::BadSignature(ids[0])));
    let (_, fresh) = ClientAdvertised::new(h.config.clone(), ids[0], &h.keys[&ids[0]], &mut h.rng)
        .expect("member");
    assert_eq!(server.receive(fresh), Ok(()));
}

#[test]
fn clients_reject_tampered_roster_and_ciphertexts() {
    let mut h = Harness::new(6, 5, 3, 16, 26);
    let (mut clients, server) = h.advertise(&BTreeSet::new());
    let mut roster = server.roster();
    let (victim, c0) = clients.pop_first().expect("a client");
    let swapped = roster
        .iter()
        .position(|e| e.sender != victim)
        .expect("others");
    let evil = IdentityKey::random(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
    roster[swapped].s_pk = cairn_crypto::keys::AgreementSecret::random(&mut h.rng).public();
    roster[swapped].signature = evil.sign(b"whatever");
    let bad_id = roster[swapped].sender;
    assert_eq!(
        c0.share_keys(&roster, &mut h.rng).err(),
        Some(SecAggError::BadSignature(bad_id))
    );

    // Tampered ciphertext in an inbox.
    let (mut shared, server) = h.share(clients, server);
    let (id, c) = shared.pop_first().expect("a client");
    let mut inbox = server.inbox(id).to_vec();
    inbox[0].ciphertext[3] ^= 0x80;
    let from = inbox[0].sender;
    assert_eq!(
        c.mask(&inbox, h.inputs[&id].clone()).err(),
        Some(SecAggError::Decryption(from))
    );
    // A ciphertext re-addressed by the coordinator to someone else fails too.
    let (id2, c2) = shared.pop_first().expect("a second client");
    let mut inbox2 = server.inbox(id2).to_vec();
    let third = *shared.keys().next().expect("a third client");
    let stolen = server
        .inbox(third)
        .iter()
        .find(|s| s.sender != id2)
        .expect("a share")
        .clone();
    inbox2[0] = EncryptedShare {
        receiver: id2,
        ..stolen.clone()
    };
    assert_eq!(
        c2.mask(&inbox2, h.inputs[&id2].clone()).err(),
        Some(SecAggError::Decryption(stolen.sender))
    );
}

#[test]
fn coordinator_rejects_wrong_sizes_and_duplicates() {
    let mut h = Harness::new(6, 5, 3, 16, 27);
    let (clients, mut server) = h.advertise(&BTreeSet::new());
    let roster = server.roster();
    let mut shared = Vec::new();
    for (i, (id, c)) in clients.into_iter().enumerate() {
        let (c, m) = c.share_keys(&roster, &mut h.rng).expect("honest");
        if i == 0 {
            let mut long = m.clone();
            long.shares[0].ciphertext.push(0);
            assert!(matches!(
                server.receive(long),
                Err(SecAggError::WrongSize {
                    what: "share ciphertext",
                    ..
                })
            ));
            let mut missing = m.clone();
            missing.shares.pop();
            assert!(matches!(
                server.receive(missing),
                Err(SecAggError::WrongSize {
                    what: "share count",
                    ..
                })
            ));
            let mut misaddressed = m.clone();
            misaddressed.shares[0].receiver = id;
            assert!(matches!(
                server.receive(misaddressed),
                Err(SecAggError::WrongRecipients { .. })
            ));
        }
        server.receive(m.clone()).expect("valid");
        if i == 0 {
            assert_eq!(
                server.receive(m),
                Err(SecAggError::Duplicate {
                    id,
                    phase: Phase::ShareKeys
                })
            );
        }
        shared.push((id, c));
    }
    let mut server = server.close().expect("enough");
    for (i, (id, c)) in shared.into_iter().enumerate() {
        let (_, m) = c
            .mask(server.inbox(id), h.inputs[&id].clone())
            .expect("honest");
        if i == 0 {
            let mut over = m.clone();
            over.y.push(0 as RingElem);
            assert_eq!(
                server.receive(&over),
                Err(SecAggError::WrongSize {
                    from: id,
                    what: "masked vector",
                    got: 17,
                    expected: 16
                })
            );
            let mut short = m.clone();
            short.y.truncate(3);
            assert!(matches!(
                server.receive(&short),
                Err(SecAggError::WrongSize { got: 3, .. })
            ));
            let mut outsider = m.clone();
            outsider.sender = ParticipantId(4242);
            assert_eq!(
                server.receive(&outsider),
                Err(SecAggError::NotInRound(ParticipantId(4242)))
            );
        }
        server.receive(&m).expect("valid");
        if i == 0 {
            assert_eq!(
                server.receive(&m),
                Err(SecAggError::Duplicate {
                    id,
                    phase: Phase::MaskedInput
                })
            );
        }
    }
    let mut server = server.close().expect("enough");
    let s0 = server.survivors()[0];
    let bad = ConsistencySignature {
        sender: s0,
        signature: h.keys[&s0].sign(b"another list"),
    };
    assert_eq!(server.receive(bad), Err(SecAggError::BadSignature(s0)));
}

#[test]
fn client_rejects_wrong_input_length() {
    let mut h = Harness::new(6, 5, 3, 16, 28);
    let (mut clients, server) = h.advertise(&BTreeSet::new());
    let (id, c) = clients.pop_first().expect("a client");
    let (c, _) = c.share_keys(&server.roster(), &mut h.rng).expect("honest");
    assert_eq!(
        c.mask(&[], vec![0; 15]).err(),
        Some(SecAggError::WrongSize {
            from: id,
            what: "input vector",
            got: 15,
            expected: 16
        })
    );
}

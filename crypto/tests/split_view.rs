//! The split-view attack on SecAgg+ (security review, issue 12 item 2), run for real from
//! the coordinator's side with no colluding client.
//!
//! The coordinator keeps the victim's masked input, then shows the survivor list with the
//! victim (list A) to part of the holders and the list without it (list B) to the rest.
//! The victim's neighbours on list A reveal their shares of its self-mask seed b, those on
//! list B (told the victim dropped) their shares of its mask key s_sk: with t of each, the
//! coordinator removes every mask and reads the victim's input. Each honest holder answers
//! one request, so this needs 2t of the victim's k neighbours; against a malicious
//! coordinator cairn's parameters have t > k/2 (t > (k + c)/2 with c corrupt neighbours),
//! and a holder counts only its own neighbourhood's signatures on the list it signed.
//!
//! The attacker here picks its split knowing the graph: it searches every assignment of
//! the holders to the two lists for one where t of the victim's neighbours on each side
//! pass their consistency check, then runs the round with that split.
mod common;

use std::collections::{BTreeMap, BTreeSet};

use cairn_crypto::keys::AgreementSecret;
use cairn_crypto::prg::{apply_masks, MaskSeed, MaskSign};
use cairn_crypto::ring::RingElem;
use cairn_crypto::secagg::*;
use cairn_crypto::shamir::{self, Share};
use cairn_crypto::ParticipantId;
use common::Harness;

/// The best split the coordinator can find: the holders shown list A (the victim among
/// them), or `None` when no split lets t of the victim's neighbours answer on each side.
fn best_split(h: &Harness, victim: ParticipantId, t: usize) -> Option<BTreeSet<ParticipantId>> {
    let g = h.graph();
    let others: Vec<ParticipantId> = h.ids.iter().copied().filter(|&v| v != victim).collect();
    let answering = |group: &BTreeSet<ParticipantId>| {
        // Neighbours of the victim in `group` whose own neighbourhood signed t times.
        g.neighbours(victim)
            .filter(|w| group.contains(w))
            .filter(|&w| {
                group
                    .iter()
                    .filter(|&&v| v == w || g.are_neighbours(w, v))
                    .count()
                    >= t
            })
            .count()
    };
    (0u32..1 << others.len()).find_map(|bits| {
        let a: BTreeSet<ParticipantId> = std::iter::once(victim)
            .chain(
                others
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits >> i & 1 == 1)
                    .map(|(_, &v)| v),
            )
            .collect();
        let b: BTreeSet<ParticipantId> =
            others.iter().copied().filter(|v| !a.contains(v)).collect();
        (answering(&a) >= t && answering(&b) >= t).then_some(a)
    })
}

/// What the attack collected.
struct Loot {
    y_victim: Vec<RingElem>,
    b_shares: Vec<Share>,
    s_shares: Vec<Share>,
    refusals: Vec<(ParticipantId, SecAggError)>,
    s_pk: BTreeMap<ParticipantId, cairn_crypto::keys::AgreementPublic>,
}

/// Runs a whole round in which the coordinator shows list A (victim included) to `group_a`
/// and list B (victim dropped) to everyone else.
fn run_split_view(
    h: &mut Harness,
    victim: ParticipantId,
    group_a: &BTreeSet<ParticipantId>,
) -> Loot {
    let (clients, server) = h.advertise(&BTreeSet::new());
    let s_pk = server.roster().iter().map(|a| (a.sender, a.s_pk)).collect();
    let (shared, mut server) = h.share(clients, server);
    let mut y_victim = None;
    let mut masked = BTreeMap::new();
    for (id, c) in shared {
        let (c, m) = c
            .mask(server.inbox(id), h.inputs[&id].clone())
            .expect("honest step");
        if id == victim {
            y_victim = Some(m.y.clone());
        }
        server.receive(&m).expect("honest step");
        masked.insert(id, c);
    }
    let all: Vec<ParticipantId> = masked.keys().copied().collect();
    let without: Vec<ParticipantId> = all.iter().copied().filter(|&v| v != victim).collect();
    let mut refusals = Vec::new();
    let (mut sig_a, mut sig_b) = (Vec::new(), Vec::new());
    let mut ready = Vec::new();
    for (id, c) in masked {
        let in_a = group_a.contains(&id);
        let list = if in_a { &all } else { &without };
        match c.consistency(list, &h.keys[&id]) {
            Ok((c, s)) => {
                if in_a { &mut sig_a } else { &mut sig_b }.push(s);
                ready.push((id, in_a, c));
            }
            Err(e) => refusals.push((id, e)),
        }
    }
    let (mut b_shares, mut s_shares) = (Vec::new(), Vec::new());
    for (id, in_a, c) in ready {
        let req = if in_a {
            UnmaskRequest {
                survivors: all.clone(),
                signatures: sig_a.clone(),
                dropped: vec![],
            }
        } else {
            let dropped = if h.graph().are_neighbours(id, victim) {
                vec![victim]
            } else {
                vec![]
            };
            UnmaskRequest {
                survivors: without.clone(),
                signatures: sig_b.clone(),
                dropped,
            }
        };
        match c.unmask(&req) {
            Ok(r) => {
                let mine = |s: &RevealedShare| (s.owner == victim).then(|| s.share.clone());
                b_shares.extend(r.self_mask_shares.iter().filter_map(mine));
                s_shares.extend(r.mask_key_shares.iter().filter_map(mine));
            }
            Err(e) => refusals.push((id, e)),
        }
    }
    Loot {
        y_victim: y_victim.expect("the victim masked"),
        b_shares,
        s_shares,
        refusals,
        s_pk,
    }
}

/// Removes every mask from the victim's masked input, if the loot holds both secrets.
fn unmask_victim(
    h: &Harness,
    victim: ParticipantId,
    t: usize,
    loot: &Loot,
) -> Result<Vec<RingElem>, String> {
    let b = shamir::reconstruct(&loot.b_shares, t).map_err(|e| format!("b: {e}"))?;
    let s = shamir::reconstruct(&loot.s_shares, t).map_err(|e| format!("s_sk: {e}"))?;
    let s_sk = AgreementSecret::from_bytes(*s);
    assert_eq!(s_sk.public(), loot.s_pk[&victim], "s_sk rebuilt");
    let round = *h.config.round();
    let mut seeds = vec![(MaskSeed::from_bytes(*b), MaskSign::Sub)];
    for v in h.graph().neighbours(victim) {
        let seed = s_sk
            .agree(&loot.s_pk[&v])
            .expect("agreement")
            .mask_seed(&round, victim, v);
        seeds.push((
            seed,
            if victim < v {
                MaskSign::Sub
            } else {
                MaskSign::Add
            },
        ));
    }
    let masks: Vec<(&MaskSeed, MaskSign)> = seeds.iter().map(|(s, g)| (s, *g)).collect();
    let mut x = loot.y_victim.clone();
    apply_masks(&masks, &mut x).expect("honest step");
    Ok(x)
}

/// The attack is real: against the parameters a semi-honest coordinator would be given
/// (n = 10, δ = 0.3, γ = 0.2: (k, t) = (6, 3), what cairn used before), it recovers the
/// victim's individual input exactly.
#[test]
fn split_view_recovers_an_input_under_semi_honest_parameters() {
    let p = choose_params(&ParamRequest::new(10, 0.3, 0.2).semi_honest()).expect("feasible");
    assert_eq!((p.k, p.threshold), (6, 3));
    let mut h = Harness::new(10, p.k, p.threshold, 16, 77);
    let victim = h.ids[0];
    let group_a = best_split(&h, victim, p.threshold).expect("a split exists for t ≤ k/2");
    let loot = run_split_view(&mut h, victim, &group_a);
    let x = unmask_victim(&h, victim, p.threshold, &loot).expect("both secrets rebuilt");
    assert_eq!(x, h.inputs[&victim], "the victim's input, in the clear");
}

/// With the parameters every holder now insists on (the malicious-coordinator bound), no
/// split of the holders gives the coordinator t answers on both sides, for any victim;
/// run anyway, the attack rebuilds at most one of the victim's secrets and the masked
/// input stays masked.
#[test]
fn split_view_recovers_nothing_under_malicious_parameters() {
    for (n, dropout, corruption, seed) in [(10, 0.2, 0.1, 77), (9, 0.2, 0.1, 5), (12, 0.1, 0.2, 9)]
    {
        let p = choose_params(&ParamRequest::new(n, dropout, corruption)).expect("feasible");
        assert!(2 * p.threshold > p.k, "{p:?}");
        let mut h = Harness::new(n as u32, p.k, p.threshold, 16, seed);
        for victim in h.ids.clone() {
            assert_eq!(
                best_split(&h, victim, p.threshold),
                None,
                "n = {n}, victim {victim}"
            );
        }
        // The attacker's best effort: half the victim's neighbours (and half the others)
        // on each list.
        let victim = h.ids[0];
        let nbrs: Vec<ParticipantId> = h.graph().neighbours(victim).collect();
        let rest: Vec<ParticipantId> = h
            .ids
            .iter()
            .copied()
            .filter(|&v| v != victim && !nbrs.contains(&v))
            .collect();
        let group_a: BTreeSet<ParticipantId> = std::iter::once(victim)
            .chain(nbrs[..nbrs.len() / 2].iter().copied())
            .chain(rest[..rest.len() / 2].iter().copied())
            .collect();
        let loot = run_split_view(&mut h, victim, &group_a);
        let got = unmask_victim(&h, victim, p.threshold, &loot);
        assert!(got.is_err(), "n = {n}: the victim's input was recovered");
        assert!(
            loot.b_shares.len() < p.threshold || loot.s_shares.len() < p.threshold,
            "n = {n}: {} b-shares, {} s_sk-shares",
            loot.b_shares.len(),
            loot.s_shares.len()
        );
    }
}

/// The consistency check counts only the checking holder's own neighbourhood: t valid
/// signatures on the list, but from holders that are not its neighbours, are refused.
#[test]
fn signatures_from_outside_the_neighbourhood_do_not_count() {
    let p = choose_params(&ParamRequest::new(20, 0.1, 0.05)).expect("feasible");
    assert!(p.k < 19, "a sparse graph: {p:?}");
    let mut h = Harness::new(20, p.k, p.threshold, 4, 3);
    let me = h.ids[0];
    let strangers: BTreeSet<ParticipantId> = h
        .ids
        .iter()
        .copied()
        .filter(|&v| v != me && !h.graph().are_neighbours(me, v))
        .collect();
    assert!(strangers.len() >= p.threshold);
    // Everyone but `me`'s neighbours sees list A; `me` has only itself among the signers
    // of its neighbourhood, and refuses.
    let group_a: BTreeSet<ParticipantId> = std::iter::once(me).chain(strangers).collect();
    let loot = run_split_view(&mut h, me, &group_a);
    assert!(
        loot.refusals.iter().any(
            |(who, e)| *who == me && matches!(e, SecAggError::TooFewSignatures { have: 1, .. })
        ),
        "{:?}",
        loot.refusals
    );
}

//! An in-memory SecAgg+ round: n clients and the coordinator exchanging messages through
//! plain function calls, with participants dropping at chosen phases. [`Harness::run`]
//! plays a whole round; [`Harness::advertise`], [`Harness::share`], [`Harness::mask`],
//! [`Harness::sign`] and [`Harness::run_to_unmask`] drive an honest one phase by phase, for
//! the tests that tamper with what comes next.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cairn_crypto::quant::{quantise, QuantParams};
use cairn_crypto::ring::{self, RingElem};
use cairn_crypto::secagg::*;
use cairn_crypto::sign::IdentityKey;
use cairn_crypto::{ParticipantId, RoundId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Who drops, and when (each set is cumulative with the phases before it).
#[derive(Default, Clone, Debug)]
pub struct Drops {
    /// Never advertise keys.
    pub before_advertise: BTreeSet<ParticipantId>,
    /// Advertise keys, then vanish before sending shares.
    pub before_sharing: BTreeSet<ParticipantId>,
    /// Send shares, then vanish before the masked input.
    pub after_sharing: BTreeSet<ParticipantId>,
    /// Send the masked input, then vanish before signing the survivor list.
    pub after_masked: BTreeSet<ParticipantId>,
    /// Sign the survivor list, then vanish before answering the unmask request.
    pub during_unmask: BTreeSet<ParticipantId>,
}

/// What a round produced.
#[derive(Debug)]
pub struct Outcome {
    /// The coordinator's result.
    pub result: Result<Vec<RingElem>, SecAggError>,
    /// Who sent a masked input (whose x is in the sum).
    pub masked: BTreeSet<ParticipantId>,
    /// Clients that aborted, and why.
    pub client_errors: Vec<(ParticipantId, SecAggError)>,
}

pub struct Harness {
    pub config: Arc<RoundConfig>,
    pub ids: Vec<ParticipantId>,
    pub keys: BTreeMap<ParticipantId, IdentityKey>,
    pub inputs: BTreeMap<ParticipantId, Vec<RingElem>>,
    pub rng: ChaCha20Rng,
}

impl Harness {
    pub fn new(n: u32, k: usize, t: usize, d: usize, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ids: Vec<ParticipantId> = (0..n).map(|i| ParticipantId(i * 3 + 1)).collect();
        let keys: BTreeMap<_, _> = ids
            .iter()
            .map(|&id| (id, IdentityKey::random(&mut rng)))
            .collect();
        let identities = keys.iter().map(|(&id, k)| (id, k.public())).collect();
        let graph_seed: [u8; 32] = rng.gen();
        let config = RoundConfig::new(
            RoundId::new("test-job", seed as u32),
            graph_seed,
            k,
            t,
            d,
            identities,
        )
        .expect("valid config");
        let q = QuantParams::new(1.0, 16).expect("fits");
        let inputs = ids
            .iter()
            .map(|&id| {
                let x: Vec<f32> = (0..d).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
                (id, quantise(&x, &q).expect("finite"))
            })
            .collect();
        Self {
            config: Arc::new(config),
            ids,
            keys,
            inputs,
            rng,
        }
    }

    pub fn graph(&self) -> &NeighbourGraph {
        self.config.graph()
    }

    /// The plain ring sum of the inputs of `who`.
    pub fn expected_sum(&self, who: &BTreeSet<ParticipantId>) -> Vec<RingElem> {
        let vs: Vec<&[RingElem]> = who.iter().map(|id| self.inputs[id].as_slice()).collect();
        ring::sum(&vs, self.config.vector_len())
    }

    /// Phase 0, honest: everyone but `absent` advertises keys. The clients, in id order,
    /// and the share router.
    pub fn advertise(
        &mut self,
        absent: &BTreeSet<ParticipantId>,
    ) -> (BTreeMap<ParticipantId, ClientAdvertised>, ShareRouting) {
        let cfg = self.config.clone();
        let mut server = KeyCollection::new(cfg.clone());
        let mut clients = BTreeMap::new();
        for &id in self.ids.iter().filter(|id| !absent.contains(id)) {
            let (c, m) = ClientAdvertised::new(cfg.clone(), id, &self.keys[&id], &mut self.rng)
                .expect("member");
            server.receive(m).expect("honest keys accepted");
            clients.insert(id, c);
        }
        (clients, server.close().expect("enough keys"))
    }

    /// Phase 1, honest: each of `clients` shares its keys, given the roster the coordinator
    /// sends it (its neighbours' keys and its own).
    pub fn share(
        &mut self,
        clients: BTreeMap<ParticipantId, ClientAdvertised>,
        mut server: ShareRouting,
    ) -> (BTreeMap<ParticipantId, ClientShared>, MaskedCollection) {
        let mut shared = BTreeMap::new();
        for (id, c) in clients {
            let (c, m) = c
                .share_keys(&server.roster_for(id), &mut self.rng)
                .expect("honest roster");
            server.receive(m).expect("honest shares accepted");
            shared.insert(id, c);
        }
        (shared, server.close().expect("enough shares"))
    }

    /// Phase 2, honest: each of `clients` but `gone` sends its masked input.
    pub fn mask(
        &mut self,
        clients: BTreeMap<ParticipantId, ClientShared>,
        mut server: MaskedCollection,
        gone: &BTreeSet<ParticipantId>,
    ) -> (BTreeMap<ParticipantId, ClientMasked>, ConsistencyCollection) {
        let mut masked = BTreeMap::new();
        for (id, c) in clients.into_iter().filter(|(id, _)| !gone.contains(id)) {
            let (c, m) = c
                .mask(server.inbox(id), self.inputs[&id].clone())
                .expect("honest inbox");
            server.receive(&m).expect("honest input accepted");
            masked.insert(id, c);
        }
        (masked, server.close().expect("enough masked inputs"))
    }

    /// Phase 3, honest: each of `clients` signs the survivor list.
    pub fn sign(
        &mut self,
        clients: BTreeMap<ParticipantId, ClientMasked>,
        mut server: ConsistencyCollection,
    ) -> (BTreeMap<ParticipantId, ClientConsistent>, Unmasking) {
        let survivors = server.survivors().to_vec();
        let mut ready = BTreeMap::new();
        for (id, c) in clients {
            let (c, m) = c
                .consistency(&survivors, &self.keys[&id])
                .expect("honest list");
            server.receive(m).expect("honest signature accepted");
            ready.insert(id, c);
        }
        (ready, server.close().expect("enough signatures"))
    }

    /// An honest round up to the unmask requests, `gone` dropping after sharing: the
    /// clients ready to unmask and the coordinator's unmasking phase.
    pub fn run_to_unmask(
        &mut self,
        gone: &BTreeSet<ParticipantId>,
    ) -> (BTreeMap<ParticipantId, ClientConsistent>, Unmasking) {
        let (clients, server) = self.advertise(&BTreeSet::new());
        let (clients, server) = self.share(clients, server);
        let (clients, server) = self.mask(clients, server, gone);
        self.sign(clients, server)
    }

    /// Runs one whole round with the given drops.
    pub fn run(&mut self, drops: &Drops) -> Outcome {
        let mut errors = Vec::new();
        let cfg = self.config.clone();
        let ids = self.ids.clone();
        let masked = BTreeSet::new();
        let abort = |e, errors, masked| Outcome {
            result: Err(e),
            masked,
            client_errors: errors,
        };

        // Phase 0: advertise.
        let mut server = KeyCollection::new(cfg.clone());
        let mut clients = BTreeMap::new();
        for &id in ids.iter().filter(|id| !drops.before_advertise.contains(id)) {
            let (c, msg) = ClientAdvertised::new(cfg.clone(), id, &self.keys[&id], &mut self.rng)
                .expect("member");
            server.receive(msg).expect("honest keys accepted");
            clients.insert(id, c);
        }
        let mut server = match server.close() {
            Ok(s) => s,
            Err(e) => return abort(e, errors, masked),
        };
        // Phase 1: share keys, each client given only its neighbours' keys.
        let mut shared = BTreeMap::new();
        for (id, c) in clients {
            if drops.before_sharing.contains(&id) {
                continue;
            }
            let roster = server.roster_for(id);
            // O(k), not O(n): what a participant is sent stays local (issue #13).
            assert!(roster.len() <= cfg.graph().degree() + 1);
            match c.share_keys(&roster, &mut self.rng) {
                Ok((c, msg)) => {
                    server.receive(msg).expect("honest shares accepted");
                    shared.insert(id, c);
                }
                Err(e) => errors.push((id, e)),
            }
        }
        let mut server = match server.close() {
            Ok(s) => s,
            Err(e) => return abort(e, errors, masked),
        };
        // Phase 2: masked input.
        let mut masked_clients = BTreeMap::new();
        let mut masked = BTreeSet::new();
        for (id, c) in shared {
            if drops.after_sharing.contains(&id) {
                continue;
            }
            match c.mask(server.inbox(id), self.inputs[&id].clone()) {
                Ok((c, msg)) => {
                    server.receive(&msg).expect("honest input accepted");
                    masked_clients.insert(id, c);
                    masked.insert(id);
                }
                Err(e) => errors.push((id, e)),
            }
        }
        let mut server = match server.close() {
            Ok(s) => s,
            Err(e) => return abort(e, errors, masked),
        };
        // Phase 3: consistency.
        let survivors = server.survivors().to_vec();
        let mut consistent = BTreeMap::new();
        for (id, c) in masked_clients {
            if drops.after_masked.contains(&id) {
                continue;
            }
            match c.consistency(&survivors, &self.keys[&id]) {
                Ok((c, msg)) => {
                    server.receive(msg).expect("honest signature accepted");
                    consistent.insert(id, c);
                }
                Err(e) => errors.push((id, e)),
            }
        }
        let mut server = match server.close() {
            Ok(s) => s,
            Err(e) => return abort(e, errors, masked),
        };
        // Phase 4: unmask.
        for (id, c) in consistent {
            if drops.during_unmask.contains(&id) {
                continue;
            }
            let req = server.request_for(id).expect("a survivor");
            assert!(req.signatures.len() <= cfg.graph().degree() + 1);
            match c.unmask(&req) {
                Ok(msg) => server.receive(msg).expect("honest response accepted"),
                Err(e) => errors.push((id, e)),
            }
        }
        Outcome {
            result: server.finish(),
            masked,
            client_errors: errors,
        }
    }
}

/// Whether every participant that shared keeps at least t answering neighbours, given
/// `gone_before_sharing` (need nothing) and `silent` (shared but never answer unmasking).
pub fn recoverable(
    g: &NeighbourGraph,
    t: usize,
    gone_before_sharing: &BTreeSet<ParticipantId>,
    silent: &BTreeSet<ParticipantId>,
) -> bool {
    let gone = |v: &ParticipantId| gone_before_sharing.contains(v) || silent.contains(v);
    g.participants()
        .filter(|u| !gone_before_sharing.contains(u))
        .all(|u| g.neighbours(u).filter(|v| !gone(v)).count() >= t)
}

/// Greedily grows a drop set (in id order) while the round stays recoverable; returns the
/// maximal set and the first participant whose addition breaks it.
pub fn maximal_drops(
    g: &NeighbourGraph,
    t: usize,
    before_sharing: bool,
) -> (BTreeSet<ParticipantId>, ParticipantId) {
    let empty = BTreeSet::new();
    let mut set = BTreeSet::new();
    let mut breaker = None;
    for id in g.participants() {
        set.insert(id);
        let ok = if before_sharing {
            recoverable(g, t, &set, &empty)
        } else {
            recoverable(g, t, &empty, &set)
        };
        if !ok {
            set.remove(&id);
            breaker.get_or_insert(id);
        }
    }
    (set, breaker.expect("some drop must break the round"))
}

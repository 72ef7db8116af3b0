//! The coordinator's side of SecAgg+: one collector per phase. Each `receive` checks one
//! message and either accepts it or rejects it with a typed error (its sender then
//! counts as dropped); `close` ends the phase and yields the next collector, or aborts
//! the round when fewer than t participants remain. Masked inputs are added into one
//! running sum as they arrive: no individual input is ever stored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::client_unmask::check_survivor_list;
use super::messages::*;
use super::{Phase, RoundConfig, SecAggError};
use crate::keys::{AgreementPublic, AgreementSecret};
use crate::ring::{add_assign, RingElem};
use crate::ParticipantId;

fn too_few(phase: Phase, have: usize, cfg: &RoundConfig) -> Result<(), SecAggError> {
    if have < cfg.threshold() {
        return Err(SecAggError::TooFewParticipants {
            phase,
            have,
            need: cfg.threshold(),
        });
    }
    Ok(())
}

/// Rejects agreement keys of low order, which would make the shared secrets predictable.
fn check_key(id: ParticipantId, pk: &AgreementPublic) -> Result<(), SecAggError> {
    // Any fixed secret detects a non-contributory result; the secret's value is irrelevant.
    AgreementSecret::from_bytes([0x5a; 32])
        .agree(pk)
        .map(|_| ())
        .map_err(|_| SecAggError::WeakKey(id))
}

/// Phase 0: collects signed agreement keys.
#[derive(Debug, Clone)]
pub struct KeyCollection {
    config: Arc<RoundConfig>,
    keys: BTreeMap<ParticipantId, AdvertiseKeys>,
}

impl KeyCollection {
    /// Opens the round.
    pub fn new(config: Arc<RoundConfig>) -> Self {
        Self {
            config,
            keys: BTreeMap::new(),
        }
    }

    /// Accepts one participant's keys if signed by its identity key, fresh and not a duplicate.
    pub fn receive(&mut self, msg: AdvertiseKeys) -> Result<(), SecAggError> {
        let id = msg.sender;
        let identity = self.config.identity(id)?;
        if self.keys.contains_key(&id) {
            return Err(SecAggError::Duplicate {
                id,
                phase: Phase::AdvertiseKeys,
            });
        }
        identity
            .verify(
                &advertise_payload(self.config.round(), id, &msg.c_pk, &msg.s_pk),
                &msg.signature,
            )
            .map_err(|_| SecAggError::BadSignature(id))?;
        if msg.c_pk == msg.s_pk {
            return Err(SecAggError::WeakKey(id));
        }
        check_key(id, &msg.c_pk)?;
        check_key(id, &msg.s_pk)?;
        self.keys.insert(id, msg);
        Ok(())
    }

    /// Ends the phase: the roster of advertised keys goes to every participant.
    pub fn close(self) -> Result<ShareRouting, SecAggError> {
        too_few(Phase::AdvertiseKeys, self.keys.len(), &self.config)?;
        Ok(ShareRouting {
            config: self.config,
            keys: self.keys,
            shares: BTreeMap::new(),
        })
    }
}

/// Phase 1: collects encrypted shares and routes them.
#[derive(Debug, Clone)]
pub struct ShareRouting {
    config: Arc<RoundConfig>,
    keys: BTreeMap<ParticipantId, AdvertiseKeys>,
    shares: BTreeMap<ParticipantId, Vec<EncryptedShare>>,
}

impl ShareRouting {
    /// The signed keys of every participant that advertised (U1). A participant needs only
    /// its neighbours' keys: send each one [`ShareRouting::roster_for`] instead, O(k)
    /// rather than O(n) entries.
    pub fn roster(&self) -> Vec<AdvertiseKeys> {
        self.keys.values().cloned().collect()
    }

    /// The participants that advertised keys (U1), sorted: the ones to send a roster to.
    pub fn advertised(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.keys.keys().copied()
    }

    /// The signed keys `id` needs, sorted by sender: those of its neighbours that
    /// advertised, and its own. O(k log n); what a client's
    /// [`ClientAdvertised::share_keys`](super::ClientAdvertised::share_keys) takes.
    pub fn roster_for(&self, id: ParticipantId) -> Vec<AdvertiseKeys> {
        let graph = self.config.graph();
        let mut wanted: Vec<ParticipantId> = graph.neighbours(id).collect();
        if graph.contains(id) {
            wanted.push(id);
        }
        wanted.sort_unstable();
        wanted
            .into_iter()
            .filter_map(|v| self.keys.get(&v).cloned())
            .collect()
    }

    /// Accepts one participant's shares: exactly one well-sized ciphertext for each of
    /// its neighbours in U1, and nothing else.
    pub fn receive(&mut self, msg: ShareKeys) -> Result<(), SecAggError> {
        let from = msg.sender;
        self.config.identity(from)?;
        if !self.keys.contains_key(&from) {
            return Err(SecAggError::NotExpected {
                id: from,
                phase: Phase::ShareKeys,
            });
        }
        if self.shares.contains_key(&from) {
            return Err(SecAggError::Duplicate {
                id: from,
                phase: Phase::ShareKeys,
            });
        }
        let expected: BTreeSet<ParticipantId> = self
            .config
            .graph()
            .neighbours(from)
            .filter(|v| self.keys.contains_key(v))
            .collect();
        if msg.shares.len() != expected.len() {
            return Err(SecAggError::WrongSize {
                from,
                what: "share count",
                got: msg.shares.len(),
                expected: expected.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for s in &msg.shares {
            if s.sender != from || !expected.contains(&s.receiver) || !seen.insert(s.receiver) {
                return Err(SecAggError::WrongRecipients {
                    from,
                    detail: format!("share {} → {}", s.sender, s.receiver),
                });
            }
            if s.ciphertext.len() != SHARE_CIPHERTEXT_BYTES {
                return Err(SecAggError::WrongSize {
                    from,
                    what: "share ciphertext",
                    got: s.ciphertext.len(),
                    expected: SHARE_CIPHERTEXT_BYTES,
                });
            }
        }
        self.shares.insert(from, msg.shares);
        Ok(())
    }

    /// Ends the phase: senders form U2; each gets its inbox from [`MaskedCollection::inbox`].
    pub fn close(self) -> Result<MaskedCollection, SecAggError> {
        too_few(Phase::ShareKeys, self.shares.len(), &self.config)?;
        let shared: BTreeSet<ParticipantId> = self.shares.keys().copied().collect();
        let mut inboxes: BTreeMap<ParticipantId, Vec<EncryptedShare>> = BTreeMap::new();
        for s in self.shares.into_values().flatten() {
            inboxes.entry(s.receiver).or_default().push(s);
        }
        // Shares addressed to participants that did not share themselves are of no use.
        inboxes.retain(|id, _| shared.contains(id));
        let sum = vec![0 as RingElem; self.config.vector_len()];
        Ok(MaskedCollection {
            config: self.config,
            keys: self.keys,
            shared,
            inboxes,
            sum,
            masked: BTreeSet::new(),
        })
    }
}

/// Phase 2: routes shares and sums masked inputs as they arrive.
#[derive(Debug, Clone)]
pub struct MaskedCollection {
    pub(super) config: Arc<RoundConfig>,
    pub(super) keys: BTreeMap<ParticipantId, AdvertiseKeys>,
    pub(super) shared: BTreeSet<ParticipantId>,
    pub(super) inboxes: BTreeMap<ParticipantId, Vec<EncryptedShare>>,
    pub(super) sum: Vec<RingElem>,
    pub(super) masked: BTreeSet<ParticipantId>,
}

impl MaskedCollection {
    /// The participants that shared keys (U2): the ones to send an inbox to.
    pub fn shared(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.shared.iter().copied()
    }

    /// The encrypted shares addressed to `id`.
    pub fn inbox(&self, id: ParticipantId) -> &[EncryptedShare] {
        self.inboxes.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Accepts one masked input of the right length from a member of U2 and adds it to the
    /// sum. Taken by reference: the coordinator keeps only the sum, never the input.
    pub fn receive(&mut self, msg: &MaskedInput) -> Result<(), SecAggError> {
        let from = msg.sender;
        self.config.identity(from)?;
        if !self.shared.contains(&from) {
            return Err(SecAggError::NotExpected {
                id: from,
                phase: Phase::MaskedInput,
            });
        }
        if self.masked.contains(&from) {
            return Err(SecAggError::Duplicate {
                id: from,
                phase: Phase::MaskedInput,
            });
        }
        if msg.y.len() != self.config.vector_len() {
            return Err(SecAggError::WrongSize {
                from,
                what: "masked vector",
                got: msg.y.len(),
                expected: self.config.vector_len(),
            });
        }
        add_assign(&mut self.sum, &msg.y);
        self.masked.insert(from);
        Ok(())
    }

    /// Ends the phase: the senders are the survivors (U3), whose sorted list every one of
    /// them must sign.
    pub fn close(self) -> Result<ConsistencyCollection, SecAggError> {
        too_few(Phase::MaskedInput, self.masked.len(), &self.config)?;
        let survivors: Vec<ParticipantId> = self.masked.iter().copied().collect();
        let payload = survivors_payload(self.config.round(), &survivors);
        Ok(ConsistencyCollection {
            state: self,
            survivors,
            payload,
            signatures: BTreeMap::new(),
        })
    }
}

/// Phase 3: collects the survivors' signatures on the survivor list.
#[derive(Debug, Clone)]
pub struct ConsistencyCollection {
    state: MaskedCollection,
    survivors: Vec<ParticipantId>,
    /// What each signature covers, built once rather than per signature (it is O(n)).
    payload: Vec<u8>,
    signatures: BTreeMap<ParticipantId, ConsistencySignature>,
}

impl ConsistencyCollection {
    /// The sorted survivor list to send every survivor.
    pub fn survivors(&self) -> &[ParticipantId] {
        &self.survivors
    }

    /// Accepts one survivor's valid signature on the list.
    pub fn receive(&mut self, msg: ConsistencySignature) -> Result<(), SecAggError> {
        let id = msg.sender;
        let cfg = &self.state.config;
        let identity = cfg.identity(id)?;
        if self.survivors.binary_search(&id).is_err() {
            return Err(SecAggError::NotExpected {
                id,
                phase: Phase::Consistency,
            });
        }
        if self.signatures.contains_key(&id) {
            return Err(SecAggError::Duplicate {
                id,
                phase: Phase::Consistency,
            });
        }
        identity
            .verify(&self.payload, &msg.signature)
            .map_err(|_| SecAggError::BadSignature(id))?;
        self.signatures.insert(id, msg);
        Ok(())
    }

    /// Ends the phase once at least t survivors signed.
    pub fn close(self) -> Result<Unmasking, SecAggError> {
        let cfg = &self.state.config;
        if self.signatures.len() < cfg.threshold() {
            return Err(SecAggError::TooFewSignatures {
                have: self.signatures.len(),
                need: cfg.threshold(),
            });
        }
        check_survivor_list(cfg, &self.survivors)?;
        let signatures = self.signatures.into_values().collect();
        let dropped = self
            .state
            .shared
            .iter()
            .copied()
            .filter(|v| self.survivors.binary_search(v).is_err())
            .collect();
        Ok(Unmasking {
            state: self.state,
            survivors: self.survivors,
            dropped,
            signatures,
            responses: BTreeMap::new(),
        })
    }
}

/// Phase 4: asks for shares, collects them, rebuilds the secrets and removes the masks.
#[derive(Debug, Clone)]
pub struct Unmasking {
    pub(super) state: MaskedCollection,
    pub(super) survivors: Vec<ParticipantId>,
    /// U2 \ U3, sorted: computed once when the phase opens.
    pub(super) dropped: Vec<ParticipantId>,
    /// Sorted by signer (so that a signer is found by binary search).
    pub(super) signatures: Vec<ConsistencySignature>,
    pub(super) responses: BTreeMap<ParticipantId, UnmaskResponse>,
}

//! The participant's last two phases: signing the coordinator's survivor list, and
//! answering the one unmask request — refusing any request that would expose a peer.

use std::collections::BTreeSet;

use super::client::{ClientConsistent, ClientMasked};
use super::messages::*;
use super::{Phase, RoundConfig, SecAggError};
use crate::shamir::Share;
use crate::sign::IdentityKey;
use crate::ParticipantId;

/// Checks a survivor list is sorted, duplicate-free and made of participants.
pub(crate) fn check_survivor_list(
    cfg: &RoundConfig,
    survivors: &[ParticipantId],
) -> Result<(), SecAggError> {
    if survivors.windows(2).any(|w| w[0] >= w[1]) {
        return Err(SecAggError::InconsistentSurvivors(
            "not sorted and duplicate-free".into(),
        ));
    }
    for &id in survivors {
        cfg.identity(id)?;
    }
    Ok(())
}

impl ClientMasked {
    /// Signs the coordinator's survivor list, after checking it: well formed, includes us,
    /// at least t long, and every neighbour in it sent us shares.
    pub fn consistency(
        self,
        survivors: &[ParticipantId],
        identity: &IdentityKey,
    ) -> Result<(ClientConsistent, ConsistencySignature), SecAggError> {
        let cfg = &self.config;
        check_survivor_list(cfg, survivors)?;
        if survivors.binary_search(&self.me).is_err() {
            return Err(SecAggError::InconsistentSurvivors(format!(
                "{} is not on it",
                self.me
            )));
        }
        if survivors.len() < cfg.threshold() {
            return Err(SecAggError::TooFewParticipants {
                phase: Phase::Consistency,
                have: survivors.len(),
                need: cfg.threshold(),
            });
        }
        // Our neighbours (sorted) rather than the whole list: O(k log n), and the same
        // first offender as a scan of the list would find.
        if let Some(v) = cfg
            .graph()
            .neighbours(self.me)
            .find(|v| survivors.binary_search(v).is_ok() && !self.held.contains_key(v))
        {
            return Err(SecAggError::InconsistentSurvivors(format!(
                "{v} survived but never shared with us"
            )));
        }
        let signature = identity.sign(&survivors_payload(cfg.round(), survivors));
        let msg = ConsistencySignature {
            sender: self.me,
            signature,
        };
        Ok((
            ClientConsistent {
                inner: self,
                survivors: survivors.to_vec(),
            },
            msg,
        ))
    }
}

impl ClientConsistent {
    /// Answers the one unmask request: shares of b for surviving neighbours, shares of
    /// s_sk for the dropped ones named. Refuses a request whose list differs from the one
    /// we signed, that carries fewer than t valid signatures from our neighbourhood (our
    /// neighbours and us) on that list, that names a peer as both
    /// survivor and dropped, or names a peer that is not a neighbour that shared with us.
    /// An honest coordinator sends only our neighbourhood's signatures
    /// ([`Unmasking::request_for`](super::Unmasking::request_for)); any other signature
    /// must still be a valid one of a survivor, but does not count.
    pub fn unmask(self, req: &UnmaskRequest) -> Result<UnmaskResponse, SecAggError> {
        let ClientConsistent { inner, survivors } = self;
        let cfg = &inner.config;
        if req.survivors != survivors {
            return Err(SecAggError::InconsistentSurvivors(
                "differs from the list we signed".into(),
            ));
        }
        let payload = survivors_payload(cfg.round(), &survivors);
        let mut signers = BTreeSet::new();
        for sig in &req.signatures {
            if survivors.binary_search(&sig.sender).is_err() || !signers.insert(sig.sender) {
                return Err(SecAggError::NotExpected {
                    id: sig.sender,
                    phase: Phase::Consistency,
                });
            }
            cfg.identity(sig.sender)?
                .verify(&payload, &sig.signature)
                .map_err(|_| SecAggError::BadSignature(sig.sender))?;
        }
        // Only signatures of our own neighbourhood (and ours) count: the secrets we hold
        // belong to our neighbours, and a coordinator showing different lists to different
        // parts of the graph must convince t of the very holders whose shares it wants.
        let local = signers
            .iter()
            .filter(|&&v| v == inner.me || cfg.graph().are_neighbours(inner.me, v))
            .count();
        if local < cfg.threshold() {
            return Err(SecAggError::TooFewSignatures {
                have: local,
                need: cfg.threshold(),
            });
        }
        let mut dropped = BTreeSet::new();
        for &v in &req.dropped {
            if survivors.binary_search(&v).is_ok() {
                return Err(SecAggError::BothSecretsRequested(v));
            }
            if !inner.held.contains_key(&v) {
                return Err(SecAggError::NotNeighbour(v));
            }
            if !dropped.insert(v) {
                return Err(SecAggError::Duplicate {
                    id: v,
                    phase: Phase::Unmask,
                });
            }
        }
        let reveal = |owner: &ParticipantId, share: &Share| RevealedShare {
            owner: *owner,
            share: share.clone(),
        };
        let self_mask_shares = inner
            .held
            .iter()
            .filter(|(v, _)| survivors.binary_search(v).is_ok())
            .map(|(v, h)| reveal(v, &h.b))
            .collect();
        let mask_key_shares = inner
            .held
            .iter()
            .filter(|(v, _)| dropped.contains(*v))
            .map(|(v, h)| reveal(v, &h.s_sk))
            .collect();
        Ok(UnmaskResponse {
            sender: inner.me,
            self_mask_shares,
            mask_key_shares,
        })
    }
}

//! The coordinator's last phase: ask each survivor for the shares it holds, rebuild
//! the survivors' self-mask seeds b and the dropped participants' mask keys s_sk, and
//! strip every mask from the running sum, leaving exactly Σ x over the survivors.

use std::collections::BTreeSet;

use super::messages::*;
use super::server::Unmasking;
use super::{Phase, RoundConfig, SecAggError};
use crate::keys::AgreementSecret;
use crate::prg::{apply_masks_parallel, MaskSeed, MaskSign};
use crate::ring::RingElem;
use crate::shamir::{self, ShamirError, Share};
use crate::ParticipantId;

impl Unmasking {
    /// The survivors (U3), sorted.
    pub fn survivors(&self) -> &[ParticipantId] {
        &self.survivors
    }

    /// The survivors' signatures on the survivor list (at least [`threshold`] of them),
    /// sorted by signer: what an auditor checks to see every survivor agreed on U3.
    ///
    /// [`threshold`]: Self::threshold
    pub fn signatures(&self) -> &[ConsistencySignature] {
        &self.signatures
    }

    /// The round's Shamir threshold t.
    pub fn threshold(&self) -> usize {
        self.state.config.threshold()
    }

    /// Participants that shared keys but sent no masked input (U2 \ U3).
    pub fn dropped(&self) -> Vec<ParticipantId> {
        self.state
            .shared
            .iter()
            .copied()
            .filter(|v| self.survivors.binary_search(v).is_err())
            .collect()
    }

    /// The request for survivor `id`: the signed list, and its dropped neighbours.
    /// `None` if `id` is not a survivor.
    pub fn request_for(&self, id: ParticipantId) -> Option<UnmaskRequest> {
        self.survivors.binary_search(&id).ok()?;
        let graph = self.state.config.graph();
        let dropped = self
            .dropped()
            .into_iter()
            .filter(|&v| graph.are_neighbours(id, v))
            .collect();
        Some(UnmaskRequest {
            survivors: self.survivors.clone(),
            signatures: self.signatures.clone(),
            dropped,
        })
    }

    /// Accepts one survivor's shares: only shares it can hold (its neighbours' secrets,
    /// b of survivors and s_sk of dropped ones), at its own x-coordinate, each owner once.
    pub fn receive(&mut self, msg: UnmaskResponse) -> Result<(), SecAggError> {
        let from = msg.sender;
        let cfg = &self.state.config;
        cfg.identity(from)?;
        if !self.signatures.iter().any(|s| s.sender == from) {
            return Err(SecAggError::NotExpected {
                id: from,
                phase: Phase::Unmask,
            });
        }
        if self.responses.contains_key(&from) {
            return Err(SecAggError::Duplicate {
                id: from,
                phase: Phase::Unmask,
            });
        }
        let dropped: BTreeSet<ParticipantId> = self.dropped().into_iter().collect();
        let check = |shares: &[RevealedShare],
                     allowed: &dyn Fn(ParticipantId) -> bool|
         -> Result<(), SecAggError> {
            let mut owners = BTreeSet::new();
            for r in shares {
                if !cfg.graph().are_neighbours(from, r.owner)
                    || !allowed(r.owner)
                    || !owners.insert(r.owner)
                {
                    return Err(SecAggError::WrongRecipients {
                        from,
                        detail: format!("revealed a share of {}", r.owner),
                    });
                }
                if r.share.x() != RoundConfig::share_x(from) {
                    return Err(SecAggError::BadShare {
                        from,
                        source: ShamirError::InvalidX(r.share.x()),
                    });
                }
            }
            Ok(())
        };
        check(&msg.self_mask_shares, &|v| {
            self.survivors.binary_search(&v).is_ok()
        })?;
        check(&msg.mask_key_shares, &|v| dropped.contains(&v))?;
        self.responses.insert(from, msg);
        Ok(())
    }

    fn rebuild(
        &self,
        owner: ParticipantId,
        pick: impl Fn(&UnmaskResponse) -> &[RevealedShare],
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, SecAggError> {
        let t = self.state.config.threshold();
        let shares: Vec<Share> = self
            .responses
            .values()
            .flat_map(|r| {
                pick(r)
                    .iter()
                    .filter(|s| s.owner == owner)
                    .map(|s| s.share.clone())
            })
            .collect();
        shamir::reconstruct(&shares, t).map_err(|e| match e {
            ShamirError::TooFewShares { got, need } => SecAggError::TooFewShares {
                owner,
                have: got,
                need,
            },
            _ => SecAggError::InconsistentShares { owner },
        })
    }

    /// Rebuilds every needed secret, then removes all masks from the sum. Fails, before
    /// touching the sum, if any secret lacks t consistent shares: the round aborts with
    /// nothing learnt beyond fewer than t shares of any secret.
    pub fn finish(self) -> Result<Vec<RingElem>, SecAggError> {
        self.finish_parallel(1)
    }

    /// [`Unmasking::finish`] with the mask removal spread over `threads` scoped threads
    /// (the result is identical). Call it from a blocking context.
    pub fn finish_parallel(self, threads: usize) -> Result<Vec<RingElem>, SecAggError> {
        let cfg = self.state.config.clone();
        let mut seeds: Vec<(MaskSeed, MaskSign)> = Vec::new();
        for &u in &self.survivors {
            let b = self.rebuild(u, |r| &r.self_mask_shares)?;
            seeds.push((MaskSeed::from_bytes(*b), MaskSign::Sub));
        }
        for v in self.dropped() {
            let s_sk = AgreementSecret::from_bytes(*self.rebuild(v, |r| &r.mask_key_shares)?);
            let advertised = self.state.keys.get(&v).ok_or(SecAggError::NotInRound(v))?;
            if s_sk.public() != advertised.s_pk {
                return Err(SecAggError::InconsistentShares { owner: v });
            }
            for u in cfg
                .graph()
                .neighbours(v)
                .filter(|u| self.survivors.binary_search(u).is_ok())
            {
                let s_pk_u = &self
                    .state
                    .keys
                    .get(&u)
                    .ok_or(SecAggError::NotInRound(u))?
                    .s_pk;
                let shared = s_sk
                    .agree(s_pk_u)
                    .map_err(|source| SecAggError::Key { peer: u, source })?;
                // u added +PRG(s_uv) if u < v, −PRG(s_uv) otherwise: undo it.
                let sign = if u < v { MaskSign::Sub } else { MaskSign::Add };
                seeds.push((shared.mask_seed(cfg.round(), u, v), sign));
            }
        }
        let mut sum = self.state.sum;
        let masks: Vec<(&MaskSeed, MaskSign)> = seeds.iter().map(|(s, sign)| (s, *sign)).collect();
        apply_masks_parallel(&masks, &mut sum, threads)?;
        Ok(sum)
    }
}

//! The coordinator's last phase: ask each survivor for the shares it holds, rebuild
//! the survivors' self-mask seeds b and the dropped participants' mask keys s_sk, and
//! strip every mask from the running sum, leaving exactly Σ x over the survivors.

use std::collections::{BTreeMap, BTreeSet};

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

    /// Participants that shared keys but sent no masked input (U2 \ U3), sorted.
    pub fn dropped(&self) -> &[ParticipantId] {
        &self.dropped
    }

    /// The request for survivor `id`: the signed list, the signatures on it of `id` and
    /// its neighbours (the only ones its check counts: see
    /// [`ClientConsistent::unmask`](super::ClientConsistent::unmask)), and its dropped
    /// neighbours. `None` if `id` is not a survivor. O(n) for the list, O(k log n) for
    /// the rest.
    pub fn request_for(&self, id: ParticipantId) -> Option<UnmaskRequest> {
        self.survivors.binary_search(&id).ok()?;
        let graph = self.state.config.graph();
        let neighbours: Vec<ParticipantId> = graph.neighbours(id).collect();
        let dropped = neighbours
            .iter()
            .copied()
            .filter(|v| self.dropped.binary_search(v).is_ok())
            .collect();
        let mut local = neighbours;
        local.push(id);
        local.sort_unstable();
        let signatures = local
            .into_iter()
            .filter_map(|v| self.signature_of(v).cloned())
            .collect();
        Some(UnmaskRequest {
            survivors: self.survivors.clone(),
            signatures,
            dropped,
        })
    }

    /// The signature of `id` on the survivor list, if it signed.
    fn signature_of(&self, id: ParticipantId) -> Option<&ConsistencySignature> {
        self.signatures
            .binary_search_by_key(&id, |s| s.sender)
            .ok()
            .map(|i| &self.signatures[i])
    }

    /// Accepts one survivor's shares: only shares it can hold (its neighbours' secrets,
    /// b of survivors and s_sk of dropped ones), at its own x-coordinate, each owner once.
    pub fn receive(&mut self, msg: UnmaskResponse) -> Result<(), SecAggError> {
        let from = msg.sender;
        let cfg = &self.state.config;
        cfg.identity(from)?;
        if self.signature_of(from).is_none() {
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
        check(&msg.mask_key_shares, &|v| {
            self.dropped.binary_search(&v).is_ok()
        })?;
        self.responses.insert(from, msg);
        Ok(())
    }

    /// Rebuilds `owner`'s secret from the shares revealed of it.
    fn rebuild(
        owner: ParticipantId,
        shares: Option<Vec<Share>>,
        t: usize,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, SecAggError> {
        shamir::reconstruct(&shares.unwrap_or_default(), t).map_err(|e| match e {
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
    pub fn finish_parallel(mut self, threads: usize) -> Result<Vec<RingElem>, SecAggError> {
        let cfg = self.state.config.clone();
        let t = cfg.threshold();
        // One pass over the responses (in responder order, as each owner's shares are
        // then handed to Shamir) groups the revealed shares by whose secret they are.
        let mut b_shares: BTreeMap<ParticipantId, Vec<Share>> = BTreeMap::new();
        let mut s_shares: BTreeMap<ParticipantId, Vec<Share>> = BTreeMap::new();
        for r in std::mem::take(&mut self.responses).into_values() {
            for s in r.self_mask_shares {
                b_shares.entry(s.owner).or_default().push(s.share);
            }
            for s in r.mask_key_shares {
                s_shares.entry(s.owner).or_default().push(s.share);
            }
        }
        let mut seeds: Vec<(MaskSeed, MaskSign)> = Vec::new();
        for &u in &self.survivors {
            let b = Self::rebuild(u, b_shares.remove(&u), t)?;
            seeds.push((MaskSeed::from_bytes(*b), MaskSign::Sub));
        }
        for &v in &self.dropped {
            let s_sk = AgreementSecret::from_bytes(*Self::rebuild(v, s_shares.remove(&v), t)?);
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

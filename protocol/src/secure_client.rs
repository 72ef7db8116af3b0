//! The participant's secure-aggregation phases for one round: a small state machine over
//! `cairn_crypto::secagg`'s client typestates, fed by the coordinator's messages and by
//! the trained update (which may arrive before or after the shares addressed to us).
//!
//! The update vector is the clipped delta followed by the training loss (clamped to
//! `[0, clip]`), quantised with stochastic rounding at the round's scale. A step the
//! crypto core refuses (a bad signature in the roster, an inconsistent survivor list, an
//! unmask request asking for both secrets of a peer) ends this round for the participant:
//! it sends nothing more, and the error is returned to the driver.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use cairn_crypto::quant::{quantise_stochastic, QuantParams};
use cairn_crypto::ring::{from_signed, RingElem};
use cairn_crypto::secagg::{
    self, ClientAdvertised, ClientConsistent, ClientMasked, ClientShared, EncryptedShare,
};
use cairn_crypto::sign::{IdentityKey, IdentityPublic};
use cairn_crypto::{ParticipantId as CryptoId, RoundId};
use rand_chacha::ChaCha20Rng;

use cairn_privacy::skellam::SkellamTable;
use cairn_privacy::SkellamParams;

use crate::client::ClientError;
use crate::privacy::{noise_table, noised, rotation_seed};
use crate::round::SecureSettings;
use crate::wire::{ProvenInput, RoundSpec, SecureDown, SecureSpec, SecureUp};

enum Step {
    Advertised(ClientAdvertised),
    Shared(ClientShared),
    Masked(ClientMasked),
    Consistent(ClientConsistent),
    Finished,
}

/// What a holder needs to add its noise in a DP round.
struct Private {
    params: SkellamParams,
    table: Arc<SkellamTable>,
    rotation_seed: [u8; 32],
}

/// One participant's secure-aggregation state for one round.
pub struct SecureClient {
    round: u32,
    step: Step,
    inbox: Option<Vec<EncryptedShare>>,
    input: Option<Vec<RingElem>>,
    proof: Option<ProvenInput>,
    /// Update coordinates and blinding limbs the masked vector carries before the loss.
    layout: (usize, usize),
    quant: QuantParams,
    /// A DP round: the mechanism, its noise table and the round's rotation seed.
    privacy: Option<Private>,
    transmits: VecDeque<SecureUp>,
}

impl SecureClient {
    /// Starts the round: checks the public parameters (a roster without our identity or
    /// naming someone twice, or a (k, t) other than the malicious-coordinator choice for
    /// the roster's size and the job's δ, γ, is refused) and returns the signed keys to
    /// advertise.
    pub fn start(
        job_id: &str,
        spec: &RoundSpec,
        s: &SecureSpec,
        me: u32,
        n_params: usize,
        identity: &IdentityKey,
        rng: &mut ChaCha20Rng,
    ) -> Result<(Self, SecureUp), ClientError> {
        let round = spec.round;
        let err = |error: String| ClientError::Secure { round, error };
        let identities: BTreeMap<CryptoId, IdentityPublic> = s.roster.iter().copied().collect();
        if identities.len() != s.roster.len() {
            return Err(err("the roster names a participant twice".into()));
        }
        if identities.get(&CryptoId(me)) != Some(&identity.public()) {
            return Err(err("the roster does not carry our identity key".into()));
        }
        // (k, t) must be what the job's δ and γ give for this roster against a malicious
        // coordinator: a smaller t (a semi-honest choice, a threshold of 1) would let the
        // coordinator rebuild both our secrets by showing our neighbours two survivor
        // lists. A larger k with the same t would weaken t > k/2 just the same, so the
        // pair must match exactly.
        let settings = SecureSettings {
            dropout: s.dropout,
            corruption: s.corruption,
            scale_bits: s.scale_bits,
        };
        let want = settings.params(s.roster.len()).map_err(|e| {
            err(format!(
                "no secure parameters for {} participants at dropout {}, corruption {}: {e}",
                s.roster.len(),
                s.dropout,
                s.corruption
            ))
        })?;
        if (s.k as usize, s.threshold as usize) != (want.k, want.threshold) {
            return Err(err(format!(
                "(k, t) = ({}, {}) is not what {} participants at dropout {}, corruption {} need \
                 against a malicious coordinator: ({}, {})",
                s.k,
                s.threshold,
                s.roster.len(),
                s.dropout,
                s.corruption,
                want.k,
                want.threshold
            )));
        }
        let limbs = spec.proof.map_or(0, |p| p.blinding_limbs as usize);
        let privacy = match &s.privacy {
            None => None,
            Some(params) => {
                // A proven round proves the noise its proof settings name: they must be
                // the round's mechanism, or the proof would show other noise than promised.
                if let Some(p) = &spec.proof {
                    if p.noise != Some(*params) {
                        return Err(err(
                            "a proven DP round whose proof settings name other noise than its privacy parameters".into(),
                        ));
                    }
                }
                // Each holder adds V / t_min: with fewer holders than t_min in the round,
                // the sum could never carry the noise the job promises.
                if params.min_survivors as usize > s.roster.len() {
                    return Err(err(format!(
                        "DP noise shared over {} survivors, but the round has {} holders: the sum would carry less noise than promised",
                        params.min_survivors,
                        s.roster.len()
                    )));
                }
                if params.dim != n_params || params.clip != f64::from(spec.hyper.clip_norm) {
                    return Err(err(format!(
                        "DP parameters for {} values clipped to {}; the round trains {n_params} clipped to {}",
                        params.dim, params.clip, spec.hyper.clip_norm
                    )));
                }
                let table = noise_table(params).map_err(|e| err(e.to_string()))?;
                Some(Private {
                    params: *params,
                    table,
                    rotation_seed: rotation_seed(&spec.round_seed),
                })
            }
        };
        if privacy.is_none() && spec.proof.is_some_and(|p| p.noise.is_some()) {
            return Err(err(
                "proofs of noise in a round without privacy parameters".into()
            ));
        }
        let update_len = match &privacy {
            Some(p) => p.params.padded_dim().map_err(|e| err(e.to_string()))?,
            None => n_params,
        };
        let config = secagg::RoundConfig::new(
            RoundId::new(job_id, round),
            s.graph_seed,
            s.k as usize,
            s.threshold as usize,
            update_len + limbs + 1,
            identities,
        )
        .map_err(|e| err(e.to_string()))?;
        let quant = QuantParams::new(f64::from(spec.hyper.clip_norm), s.scale_bits)
            .map_err(|e| err(e.to_string()))?;
        let (state, keys) = ClientAdvertised::new(Arc::new(config), CryptoId(me), identity, rng)
            .map_err(|e| err(e.to_string()))?;
        let client = SecureClient {
            round,
            step: Step::Advertised(state),
            inbox: None,
            input: None,
            proof: None,
            layout: (update_len, limbs),
            quant,
            privacy,
            transmits: VecDeque::new(),
        };
        Ok((client, SecureUp::Keys { round, msg: keys }))
    }

    /// Acts on a coordinator message.
    pub fn handle(
        &mut self,
        down: SecureDown,
        identity: &IdentityKey,
        rng: &mut ChaCha20Rng,
    ) -> Result<(), ClientError> {
        let round = self.round;
        let got = match &down {
            SecureDown::Roster { round, .. }
            | SecureDown::Inbox { round, .. }
            | SecureDown::Survivors { round, .. }
            | SecureDown::Challenge { round, .. }
            | SecureDown::Unmask { round, .. } => *round,
        };
        if got != round {
            return Err(ClientError::Secure {
                round,
                error: format!("message for round {got}"),
            });
        }
        let step = std::mem::replace(&mut self.step, Step::Finished);
        let result = match (step, down) {
            (Step::Advertised(c), SecureDown::Roster { keys, .. }) => {
                c.share_keys(&keys, rng).map(|(next, msg)| {
                    self.transmits.push_back(SecureUp::Shares { round, msg });
                    Step::Shared(next)
                })
            }
            (Step::Shared(c), SecureDown::Inbox { shares, .. }) => {
                self.inbox = Some(shares);
                return self.try_mask(Step::Shared(c));
            }
            (Step::Masked(c), SecureDown::Survivors { survivors, .. }) => {
                c.consistency(&survivors, identity).map(|(next, msg)| {
                    self.transmits
                        .push_back(SecureUp::Consistency { round, msg });
                    Step::Consistent(next)
                })
            }
            (Step::Consistent(c), SecureDown::Unmask { request, .. }) => {
                c.unmask(&request).map(|msg| {
                    self.transmits.push_back(SecureUp::Unmask { round, msg });
                    Step::Finished
                })
            }
            (step, _) => {
                self.step = step;
                return Err(ClientError::Unexpected {
                    what: "secure-aggregation message",
                    state: "in another phase",
                });
            }
        };
        match result {
            Ok(next) => {
                self.step = next;
                Ok(())
            }
            Err(e) => Err(ClientError::Secure {
                round,
                error: e.to_string(),
            }),
        }
    }

    /// The trained (clipped) update and its loss.
    pub fn submit(
        &mut self,
        delta: Vec<f32>,
        loss: f32,
        rng: &mut ChaCha20Rng,
    ) -> Result<(), ClientError> {
        let round = self.round;
        let err = |error: String| ClientError::Secure { round, error };
        let q = match &self.privacy {
            // Rotated, rounded, with this holder's share of the noise; the loss slot stays
            // 0 (a holder's loss is not released in a DP round).
            Some(p) => {
                let y = noised(&p.params, &p.table, &delta, &p.rotation_seed, rng)
                    .map_err(|e| err(e.to_string()))?;
                let mut q: Vec<RingElem> = y.into_iter().map(from_signed).collect();
                q.push(0);
                q
            }
            None => {
                let mut x = delta;
                x.push(loss);
                // Stochastic rounding keeps the quantised sum unbiased.
                quantise_stochastic(&x, &self.quant, rng).map_err(|e| err(e.to_string()))?
            }
        };
        self.input = Some(q);
        let step = std::mem::replace(&mut self.step, Step::Finished);
        self.try_mask(step)
    }

    /// The proven update of a proven round: the vector the proof's commitment opens to (the
    /// fixed-point update x, or in a DP round the rotated, rounded, noisy z), the limbs of
    /// the commitment's blinding, the loss (not sent in a DP round), and the commitment and
    /// proof. The vector and the limbs enter the ring exactly, so the coordinator's sum is
    /// exact.
    pub fn submit_proven(
        &mut self,
        update: &[i64],
        blinding_limbs: &[u32],
        loss: f32,
        input: ProvenInput,
        rng: &mut ChaCha20Rng,
    ) -> Result<(), ClientError> {
        let round = self.round;
        let err = |error: String| ClientError::Secure { round, error };
        if (update.len(), blinding_limbs.len()) != self.layout {
            return Err(err(format!(
                "proven update of {} values and {} blinding limbs; the round expects {:?}",
                update.len(),
                blinding_limbs.len(),
                self.layout
            )));
        }
        let mut v: Vec<RingElem> = Vec::with_capacity(update.len() + blinding_limbs.len() + 1);
        for &x in update {
            let x =
                i32::try_from(x).map_err(|_| err(format!("update value {x} outside the ring")))?;
            v.push(from_signed(i64::from(x)));
        }
        v.extend(blinding_limbs.iter().map(|&l| RingElem::from(l)));
        if self.privacy.is_some() {
            // A holder's loss is not released in a DP round.
            v.push(0);
        } else {
            let loss =
                quantise_stochastic(&[loss], &self.quant, rng).map_err(|e| err(e.to_string()))?;
            v.extend(loss);
        }
        self.input = Some(v);
        self.proof = Some(input);
        let step = std::mem::replace(&mut self.step, Step::Finished);
        self.try_mask(step)
    }

    fn try_mask(&mut self, step: Step) -> Result<(), ClientError> {
        match step {
            Step::Shared(c) if self.inbox.is_some() && self.input.is_some() => {
                let inbox = self.inbox.take().unwrap_or_default();
                let x = self.input.take().unwrap_or_default();
                match c.mask(&inbox, x) {
                    Ok((next, msg)) => {
                        self.transmits.push_back(SecureUp::Masked {
                            round: self.round,
                            msg,
                            proof: self.proof.take(),
                        });
                        self.step = Step::Masked(next);
                        Ok(())
                    }
                    Err(e) => Err(ClientError::Secure {
                        round: self.round,
                        error: e.to_string(),
                    }),
                }
            }
            other => {
                self.step = other;
                Ok(())
            }
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<SecureUp> {
        self.transmits.pop_front()
    }
}

//! The coordinator's side of one round with secure aggregation (SecAgg+), as a sans-IO
//! state machine around `cairn_crypto::secagg`'s per-phase collectors.
//!
//! Phases, each closed when every expected participant has answered or its deadline
//! passes (whoever is missing is dropped and the protocol recovers from it):
//! keys → shares → masked input → consistency (survivor list signed) → unmask. The
//! coordinator adds each masked input into a running sum on arrival and learns only
//! Σ x over the survivors; the round then reports the plain mean of the survivors'
//! updates (every survivor weighs the same: per-holder example counts are not revealed).
//! The update vector carries one extra coordinate: the holder's training loss, clamped
//! to `[0, clip]`, so the mean loss is also learned only in aggregate.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use cairn_crypto::quant::dequantise;
use cairn_crypto::ring::centred;
use cairn_crypto::secagg::{
    self, ConsistencyCollection, KeyCollection, MaskedCollection, MaskedInput, SecAggError,
    ShareRouting, Unmasking,
};
use cairn_crypto::sign::IdentityPublic;
use cairn_crypto::{ParticipantId as CryptoId, RoundId};

use crate::challenge;
use crate::round::{
    mean_from_sum, Aggregate, DropReason, ParticipantId, ProvenSum, RoundConfig, RoundError,
    RoundOutcome, SecureSettings,
};
use crate::round_common::{triage, RoundCore, RoundState, Triage};
use crate::wire::{
    self, ProvenInput, RoundSpec, SecureDown, SecureSpec, SecureUp, StepChain, ToCoordinator,
    ToParticipant,
};

/// Fewest participants secure aggregation runs with: with two, each would learn the
/// other's update from the sum.
pub const MIN_SECURE_PARTICIPANTS: usize = 3;

enum Phase {
    Keys(KeyCollection),
    Shares(ShareRouting),
    Masked(MaskedCollection),
    Consistency(ConsistencyCollection),
    Unmask(Unmasking),
    /// Every unmask answer is in: the driver removes the masks ([`UnmaskWork`]) and hands
    /// back the sum ([`SecureRound::handle_unmasked`]). Nobody is awaited meanwhile.
    Summing(Box<Agreement>),
    Done,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Keys(_) => "advertise keys",
            Phase::Shares(_) => "share keys",
            Phase::Masked(_) => "masked input",
            Phase::Consistency(_) => "consistency check",
            Phase::Unmask(_) => "unmask",
            Phase::Summing(_) => "summing",
            Phase::Done => "done",
        }
    }
}

/// One secure round on the coordinator's side.
pub struct SecureRound {
    core: RoundCore,
    settings: SecureSettings,
    phase: Phase,
    /// Masked inputs held back until their proof is verified (proven rounds).
    awaiting: BTreeMap<ParticipantId, (MaskedInput, ProvenInput)>,
    /// Proofs for the driver to verify.
    verify_queue: VecDeque<VerifyRequest>,
    /// Verified commitments and proofs of the participants whose masked input counts.
    proven: BTreeMap<ParticipantId, ProvenInput>,
    /// Sampled-step rounds: the round's beacon (revealed only in the transcript).
    beacon: Option<[u8; 32]>,
    /// Sampled-step rounds: each holder's committed chain `d_1..d_K`, as it arrived, with
    /// the beacon it was told: what its proven input is recorded with.
    chains: BTreeMap<ParticipantId, StepChain>,
    /// The round's roster.
    members: BTreeSet<ParticipantId>,
    /// Messages accepted in the current phase.
    answered: usize,
    /// Phases closed and not yet polled ([`SecureRound::poll_phase`]).
    closed: VecDeque<PhaseClosed>,
    /// The mask removal for the driver to run, once every unmask answer is in.
    unmask: Option<UnmaskWork>,
}

/// A round's mask removal: O(survivors · neighbours · d) PRG expansion, the heaviest work
/// of a secure round, handed to the driver ([`SecureRound::poll_unmask`]) to run on a
/// blocking thread with [`UnmaskWork::run`]; the result goes back to
/// [`SecureRound::handle_unmasked`].
pub struct UnmaskWork {
    round: u32,
    unmasking: Unmasking,
}

impl std::fmt::Debug for UnmaskWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnmaskWork")
            .field("round", &self.round)
            .field("survivors", &self.unmasking.survivors().len())
            .finish_non_exhaustive()
    }
}

impl UnmaskWork {
    /// The round.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// Removes the masks: the survivors' sum, split over `threads` threads (CTR mode seeks
    /// in O(1)). Blocking.
    pub fn run(self, threads: usize) -> Unmasked {
        Unmasked {
            round: self.round,
            sum: self
                .unmasking
                .finish_parallel(threads.max(1))
                .map_err(|e| e.to_string()),
        }
    }
}

/// The result of an [`UnmaskWork`]: the unmasked sum, or why the masks could not be removed.
#[derive(Debug)]
pub struct Unmasked {
    round: u32,
    sum: Result<Vec<cairn_crypto::ring::RingElem>, String>,
}

impl Unmasked {
    /// The round.
    pub fn round(&self) -> u32 {
        self.round
    }
}

/// One closed phase of a secure round, for the driver's per-phase metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseClosed {
    /// Round number.
    pub round: u32,
    /// The phase: `advertise keys`, `share keys`, `masked input`, `consistency check` or
    /// `unmask`.
    pub phase: &'static str,
    /// Participants whose message of this phase was accepted.
    pub answered: usize,
    /// Participants dropped from the round so far (all phases).
    pub dropped: usize,
}

/// A proof the driver must verify (off the protocol thread) before the masked input it
/// came with is accepted; the answer goes to [`SecureRound::handle_verdict`].
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyRequest {
    /// Round.
    pub round: u32,
    /// Who sent it.
    pub participant: ParticipantId,
    /// The commitment and proof.
    pub input: ProvenInput,
}

impl std::fmt::Debug for SecureRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureRound")
            .field("round", &self.core.cfg.round)
            .field("phase", &self.phase.name())
            .field("pending", &self.core.pending)
            .finish_non_exhaustive()
    }
}

impl RoundState for SecureRound {
    fn core(&self) -> &RoundCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut RoundCore {
        &mut self.core
    }

    /// No deadline while the driver removes the masks: nobody is awaited then.
    fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Summing(_)) {
            return None;
        }
        self.core.outcome.is_none().then_some(self.core.deadline)
    }
}

impl SecureRound {
    /// Opens a secure round for `participants` (with their identity keys); `graph_seed`
    /// must be drawn after the participant list is fixed. A configuration the protocol
    /// cannot run (too few participants, no feasible (k, t)) ends the round at once as
    /// failed, with the reason. A round with sampled-step proofs needs a fresh secret
    /// `beacon` (from the OS's randomness: nobody may predict it); other rounds ignore it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: RoundConfig,
        settings: SecureSettings,
        job_id: &str,
        global: &[f32],
        participants: &[(ParticipantId, IdentityPublic)],
        graph_seed: [u8; 32],
        beacon: [u8; 32],
        now: Instant,
    ) -> Self {
        let sampled = cfg.proof.is_some_and(|p| p.sampled_steps.is_some());
        let mut round = SecureRound {
            awaiting: BTreeMap::new(),
            verify_queue: VecDeque::new(),
            proven: BTreeMap::new(),
            beacon: sampled.then_some(beacon),
            chains: BTreeMap::new(),
            members: participants.iter().map(|(p, _)| *p).collect(),
            answered: 0,
            closed: VecDeque::new(),
            unmask: None,
            phase: Phase::Done,
            settings,
            core: RoundCore::new(cfg, participants.iter().map(|(p, _)| *p), now),
        };
        match round.open(job_id, global, participants, graph_seed) {
            Ok(()) => {}
            Err(reason) => round.fail(reason),
        }
        round
    }

    fn open(
        &mut self,
        job_id: &str,
        global: &[f32],
        participants: &[(ParticipantId, IdentityPublic)],
        graph_seed: [u8; 32],
    ) -> Result<(), String> {
        let n = participants.len();
        if n < MIN_SECURE_PARTICIPANTS {
            return Err(format!("secure aggregation needs at least {MIN_SECURE_PARTICIPANTS} participants, {n} selected"));
        }
        let params = self
            .settings
            .params(n)
            .map_err(|e| format!("secure aggregation parameters: {e}"))?;
        let identities: BTreeMap<CryptoId, IdentityPublic> = participants
            .iter()
            .map(|(p, id)| (CryptoId(*p), *id))
            .collect();
        let config = secagg::RoundConfig::new(
            RoundId::new(job_id, self.core.cfg.round),
            graph_seed,
            params.k,
            params.threshold,
            self.vector_len(),
            identities,
        )
        .map_err(|e| format!("secure aggregation set-up: {e}"))?;
        let spec = RoundSpec {
            secure: Some(SecureSpec {
                roster: participants
                    .iter()
                    .map(|(p, id)| (CryptoId(*p), *id))
                    .collect(),
                k: params.k as u32,
                threshold: params.threshold as u32,
                graph_seed,
                scale_bits: self.settings.scale_bits,
                dropout: self.settings.dropout,
                corruption: self.settings.corruption,
                privacy: self.core.cfg.privacy.map(|dp| dp.params),
            }),
            proof: self.core.cfg.proof,
            beacon_commitment: self.beacon.as_ref().map(challenge::beacon_commitment),
            ..self.core.spec(global)
        };
        for (p, _) in participants {
            self.core
                .transmits
                .push_back((*p, ToParticipant::Round(spec.clone())));
        }
        self.phase = Phase::Keys(KeyCollection::new(Arc::new(config)));
        Ok(())
    }

    /// Ring elements per masked input: the update (in a DP round, rotated and padded to
    /// a power of two), the blinding limbs of a proven round, and the loss (0 in a DP
    /// round: a holder's loss is not released).
    fn vector_len(&self) -> usize {
        self.update_len() + self.limbs() + 1
    }

    fn update_len(&self) -> usize {
        self.core
            .cfg
            .privacy
            .and_then(|dp| dp.params.padded_dim().ok())
            .unwrap_or(self.core.n_params)
    }

    fn limbs(&self) -> usize {
        self.core.cfg.proof.map_or(0, |p| p.blinding_limbs as usize)
    }

    /// The next proof to verify.
    pub fn poll_verification(&mut self) -> Option<VerifyRequest> {
        self.verify_queue.pop_front()
    }

    /// The driver's verdict on `from`'s proof: `Ok` admits its masked input, `Err` drops
    /// it from the round with the reason. A verdict for someone not awaiting one is
    /// ignored (it timed out or dropped meanwhile).
    pub fn handle_verdict(
        &mut self,
        from: ParticipantId,
        verdict: Result<(), String>,
        now: Instant,
    ) {
        let Some((msg, input)) = self.awaiting.remove(&from) else {
            return;
        };
        if self.core.outcome.is_some() || !self.core.pending.contains(&from) {
            return;
        }
        if let Err(reason) = verdict {
            self.drop_participant(from, DropReason::BadProof(reason), now);
            return;
        }
        let Phase::Masked(c) = &mut self.phase else {
            return;
        };
        match c.receive(&msg) {
            Ok(()) => {
                self.proven.insert(from, input);
                self.accepted(from, now);
            }
            Err(e) => {
                let err = RoundError::Secure {
                    from,
                    error: e.to_string(),
                };
                self.drop_participant(from, DropReason::Invalid(err.to_string()), now);
            }
        }
    }

    /// Feeds a frame body from `from`; an invalid message drops the sender.
    pub fn handle_frame(
        &mut self,
        from: ParticipantId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), RoundError> {
        match wire::decode_body::<ToCoordinator>(body) {
            Ok(msg) => self.handle_message(from, msg, now),
            Err(source) => self.reject(from, RoundError::Wire { from, source }, now),
        }
    }

    /// Feeds a decoded message from `from`.
    pub fn handle_message(
        &mut self,
        from: ParticipantId,
        msg: ToCoordinator,
        now: Instant,
    ) -> Result<(), RoundError> {
        if let ToCoordinator::Secure(SecureUp::Chain { round, digests }) = msg {
            return self.chain(from, round, digests, now);
        }
        if self.core.outcome.is_some() || !self.core.pending.contains(&from) {
            return Err(RoundError::NotInRound(from));
        }
        let up = match triage(msg, self.core.cfg.round) {
            Triage::Secure(up) => up,
            Triage::Drop(why) => {
                self.drop_participant(from, why, now);
                return Ok(());
            }
            Triage::NotInRound => return Err(RoundError::NotInRound(from)),
            Triage::Foreign(what) => {
                return self.reject(from, RoundError::Unexpected { from, what }, now)
            }
            Triage::Update(_) => {
                return self.reject(
                    from,
                    RoundError::Unexpected {
                        from,
                        what: "plain update in a secure round",
                    },
                    now,
                )
            }
        };
        // A message of an earlier round, delivered late (QUIC retransmits it once a partition
        // heals): ignored, its sender stays in this round. Only a message for a round that
        // has not begun is a fault.
        if up.round() < self.core.cfg.round {
            return Err(RoundError::WrongRound {
                from,
                got: up.round(),
                want: self.core.cfg.round,
            });
        }
        if up.round() != self.core.cfg.round {
            return self.reject(
                from,
                RoundError::WrongRound {
                    from,
                    got: up.round(),
                    want: self.core.cfg.round,
                },
                now,
            );
        }
        let me = CryptoId(from);
        let result = match (&mut self.phase, up) {
            (Phase::Keys(c), SecureUp::Keys { msg, .. }) if msg.sender == me => c.receive(msg),
            (Phase::Shares(c), SecureUp::Shares { msg, .. }) if msg.sender == me => c.receive(msg),
            (Phase::Masked(_), SecureUp::Masked { msg, proof, .. }) if msg.sender == me => {
                return self.masked_input(from, msg, proof, now);
            }
            (Phase::Consistency(c), SecureUp::Consistency { msg, .. }) if msg.sender == me => {
                c.receive(msg)
            }
            (Phase::Unmask(c), SecureUp::Unmask { msg, .. }) if msg.sender == me => c.receive(msg),
            (phase, _) => {
                let what = phase.name();
                return self.reject(
                    from,
                    RoundError::Secure {
                        from,
                        error: format!("message out of phase ({what}) or with a forged sender"),
                    },
                    now,
                );
            }
        };
        match result {
            Ok(()) => {
                self.accepted(from, now);
                Ok(())
            }
            Err(e) => self.reject(
                from,
                RoundError::Secure {
                    from,
                    error: e.to_string(),
                },
                now,
            ),
        }
    }

    /// A holder's step chain (sampled-step rounds): recorded once, answered with its beacon.
    /// Accepted from a member still in the round, up to its masked input.
    fn chain(
        &mut self,
        from: ParticipantId,
        round: u32,
        digests: Vec<[u8; 32]>,
        now: Instant,
    ) -> Result<(), RoundError> {
        if self.core.outcome.is_some()
            || !self.members.contains(&from)
            || self.core.dropped.contains_key(&from)
        {
            return Err(RoundError::NotInRound(from));
        }
        let invalid = |error: String| RoundError::Secure { from, error };
        if round < self.core.cfg.round {
            // Late, from an earlier round: ignored (see `handle_message`).
            return Err(RoundError::WrongRound {
                from,
                got: round,
                want: self.core.cfg.round,
            });
        }
        if round != self.core.cfg.round {
            let want = self.core.cfg.round;
            return self.reject(
                from,
                RoundError::WrongRound {
                    from,
                    got: round,
                    want,
                },
                now,
            );
        }
        let Some(beacon) = self.beacon else {
            return self.reject(
                from,
                invalid("a step chain in a round without sampled steps".into()),
                now,
            );
        };
        let open = matches!(
            self.phase,
            Phase::Keys(_) | Phase::Shares(_) | Phase::Masked(_)
        ) && !self.awaiting.contains_key(&from)
            && !self.proven.contains_key(&from);
        if !open {
            return self.reject(
                from,
                invalid("a step chain after the masked input".into()),
                now,
            );
        }
        if self.chains.contains_key(&from) {
            return self.reject(
                from,
                invalid("a second step chain (the challenge was already drawn)".into()),
                now,
            );
        }
        let k = self.core.cfg.hyper.local_steps as usize;
        if digests.len() != k {
            return self.reject(
                from,
                invalid(format!(
                    "a step chain of {} digests for K = {k}",
                    digests.len()
                )),
                now,
            );
        }
        let beacon = challenge::holder_beacon(&beacon, round, from);
        self.chains.insert(from, StepChain { digests, beacon });
        self.core.transmits.push_back((
            from,
            ToParticipant::Secure(SecureDown::Challenge { round, beacon }),
        ));
        Ok(())
    }

    fn masked_input(
        &mut self,
        from: ParticipantId,
        msg: MaskedInput,
        proof: Option<ProvenInput>,
        now: Instant,
    ) -> Result<(), RoundError> {
        let invalid = |error: String| RoundError::Secure { from, error };
        match (self.core.cfg.proof.is_some(), proof) {
            (true, Some(mut input)) => {
                if let Err(e) = input.check_sizes() {
                    return self.reject(from, invalid(e), now);
                }
                // The chain and beacon are the round's record, never the sender's word.
                input.steps = self.chains.get(&from).cloned();
                if self.beacon.is_some() && input.steps.is_none() {
                    return self.reject(
                        from,
                        invalid("a masked input before its step chain".into()),
                        now,
                    );
                }
                if self.awaiting.contains_key(&from) {
                    return self.reject(from, invalid("a second masked input".into()), now);
                }
                self.verify_queue.push_back(VerifyRequest {
                    round: self.core.cfg.round,
                    participant: from,
                    input: input.clone(),
                });
                self.awaiting.insert(from, (msg, input));
                Ok(())
            }
            (true, None) => {
                self.reject(from, invalid("masked input without its proof".into()), now)
            }
            (false, Some(_)) => self.reject(
                from,
                invalid("a proof in a round that takes none".into()),
                now,
            ),
            (false, None) => {
                let Phase::Masked(c) = &mut self.phase else {
                    return Ok(());
                };
                match c.receive(&msg) {
                    Ok(()) => {
                        self.accepted(from, now);
                        Ok(())
                    }
                    Err(e) => self.reject(from, invalid(e.to_string()), now),
                }
            }
        }
    }

    /// `from`'s message of the current phase was accepted: the phase closes once nobody
    /// else is awaited.
    fn accepted(&mut self, from: ParticipantId, now: Instant) {
        if self.core.pending.remove(&from) {
            self.answered += 1;
        }
        if self.core.pending.is_empty() {
            self.advance(now);
        }
    }

    /// The next closed phase, for the driver's metrics (each is reported once).
    pub fn poll_phase(&mut self) -> Option<PhaseClosed> {
        self.closed.pop_front()
    }

    /// The connection of `from` closed.
    pub fn handle_disconnect(&mut self, from: ParticipantId, now: Instant) {
        self.drop_participant(from, DropReason::Disconnected, now);
    }

    /// Advances time: at a phase's deadline, whoever has not answered is dropped and
    /// the protocol moves on without them.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.core.expire(now) {
            self.awaiting.clear();
            self.advance(now);
        }
    }

    fn reject(
        &mut self,
        from: ParticipantId,
        err: RoundError,
        now: Instant,
    ) -> Result<(), RoundError> {
        self.drop_participant(from, DropReason::Invalid(err.to_string()), now);
        Err(err)
    }

    /// `p` leaves the round: awaited or not (one that answered this phase and then
    /// disconnected is not waited for in the next).
    fn drop_participant(&mut self, p: ParticipantId, why: DropReason, now: Instant) {
        self.awaiting.remove(&p);
        // Once the masks come off, the survivors are fixed: a disconnect then changes
        // nothing (the sum already holds its input).
        if self.core.outcome.is_some()
            || matches!(self.phase, Phase::Summing(_))
            || !self.members.contains(&p)
            || self.core.dropped.contains_key(&p)
        {
            return;
        }
        self.core.dropped.insert(p, why);
        if self.core.pending.remove(&p) && self.core.pending.is_empty() {
            self.advance(now);
        }
    }

    fn fail(&mut self, reason: String) {
        self.phase = Phase::Done;
        self.core.pending.clear();
        self.core.outcome = Some(RoundOutcome::Failed { reason });
    }

    /// Closes the current phase and opens the next, sending what it needs.
    fn advance(&mut self, now: Instant) {
        let round = self.core.cfg.round;
        self.core.deadline = now + self.core.cfg.timeout;
        if !matches!(self.phase, Phase::Done | Phase::Summing(_)) {
            self.closed.push_back(PhaseClosed {
                round,
                phase: self.phase.name(),
                answered: std::mem::take(&mut self.answered),
                dropped: self.core.dropped.len(),
            });
        }
        let step: Result<(), SecAggError> = (|| {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Keys(c) => {
                    let routing = c.close()?;
                    // Each participant gets its neighbours' keys (and its own), O(k), not
                    // the whole roster: O(n·k) in all rather than O(n²).
                    for id in routing.advertised() {
                        if self.core.dropped.contains_key(&id.0) {
                            continue;
                        }
                        self.core.pending.insert(id.0);
                        let msg = ToParticipant::Secure(SecureDown::Roster {
                            round,
                            keys: routing.roster_for(id),
                        });
                        self.core.transmits.push_back((id.0, msg));
                    }
                    self.phase = Phase::Shares(routing);
                }
                Phase::Shares(c) => {
                    let masked = c.close()?;
                    for id in masked.shared().collect::<Vec<_>>() {
                        if self.core.dropped.contains_key(&id.0) {
                            continue;
                        }
                        self.core.pending.insert(id.0);
                        let shares = masked.inbox(id).to_vec();
                        self.core.transmits.push_back((
                            id.0,
                            ToParticipant::Secure(SecureDown::Inbox { round, shares }),
                        ));
                    }
                    self.phase = Phase::Masked(masked);
                }
                Phase::Masked(c) => {
                    let cons = c.close()?;
                    let survivors = cons.survivors().to_vec();
                    // A survivor gone since its masked input (its input is in the sum)
                    // cannot sign: not waited for.
                    for id in &survivors {
                        if self.core.dropped.contains_key(&id.0) {
                            continue;
                        }
                        self.core.pending.insert(id.0);
                        let msg = SecureDown::Survivors {
                            round,
                            survivors: survivors.clone(),
                        };
                        self.core
                            .transmits
                            .push_back((id.0, ToParticipant::Secure(msg)));
                    }
                    self.phase = Phase::Consistency(cons);
                }
                Phase::Consistency(c) => {
                    let unmask = c.close()?;
                    // Only the survivors that signed the list may answer an unmask request.
                    let signers: Vec<_> = unmask.signatures().iter().map(|s| s.sender).collect();
                    for id in signers {
                        if self.core.dropped.contains_key(&id.0) {
                            continue;
                        }
                        if let Some(request) = unmask.request_for(id) {
                            self.core.pending.insert(id.0);
                            self.core.transmits.push_back((
                                id.0,
                                ToParticipant::Secure(SecureDown::Unmask { round, request }),
                            ));
                        }
                    }
                    self.phase = Phase::Unmask(unmask);
                }
                Phase::Unmask(c) => {
                    let agreement = Agreement {
                        survivors: c.survivors().iter().map(|id| id.0).collect(),
                        threshold: u32::try_from(c.threshold()).unwrap_or(u32::MAX),
                        signatures: c
                            .signatures()
                            .iter()
                            .map(|s| (s.sender.0, s.signature.clone()))
                            .collect(),
                    };
                    // The masks come off on the driver's blocking thread.
                    self.unmask = Some(UnmaskWork {
                        round,
                        unmasking: c,
                    });
                    self.phase = Phase::Summing(Box::new(agreement));
                }
                // Nothing to close: the driver's sum is awaited.
                summing @ Phase::Summing(_) => self.phase = summing,
                Phase::Done => {}
            }
            Ok(())
        })();
        if let Err(e) = step {
            self.fail(format!("secure aggregation aborted: {e}"));
        } else if self.core.outcome.is_none()
            && self.core.pending.is_empty()
            && !matches!(self.phase, Phase::Summing(_))
        {
            // Nobody to wait for in the new phase (e.g. every survivor dropped).
            self.advance(now);
        }
    }

    /// Every coordinate of an honest input is at most the clip bound in absolute value (a
    /// clipped update's, and the loss clamped to `[0, clip]`), so each unmasked sum over `n`
    /// survivors is at most `n · (clip · 2^s + 1)` (quantisation rounds by less than one).
    /// A sum past that means some input was not clipped: the round is refused rather than
    /// let one holder shift the model as far as it likes.
    fn check_bounds(&self, n: usize, sum: &[cairn_crypto::ring::RingElem]) -> Result<(), String> {
        let (d, limbs) = (self.core.n_params, self.limbs());
        let scale = 2f64.powi(self.settings.scale_bits as i32);
        let bound = n as f64 * (f64::from(self.core.cfg.hyper.clip_norm) * scale + 1.0);
        let coords = sum[..d]
            .iter()
            .enumerate()
            .chain(sum.get(d + limbs).map(|l| (d, l)));
        for (j, &q) in coords {
            let v = f64::from(centred(q));
            if v.abs() > bound {
                let what = if j == d {
                    "the loss".to_string()
                } else {
                    format!("coordinate {j}")
                };
                return Err(format!(
                    "the unmasked sum of {what} is {:.3}, past {n} survivors × the clip bound {} ({:.3}): an input was not clipped; nothing applied",
                    v / scale,
                    self.core.cfg.hyper.clip_norm,
                    bound / scale
                ));
            }
        }
        Ok(())
    }

    /// The round's mask removal, once every unmask answer is in (at most once per round).
    pub fn poll_unmask(&mut self) -> Option<UnmaskWork> {
        self.unmask.take()
    }

    /// The driver's result of the round's [`UnmaskWork`]: the round completes with the
    /// survivors' mean (or fails). A result for another round, or when the round is not
    /// waiting for one, is ignored.
    pub fn handle_unmasked(&mut self, done: Unmasked) {
        if done.round != self.core.cfg.round {
            return;
        }
        let Phase::Summing(agreement) = std::mem::replace(&mut self.phase, Phase::Done) else {
            return;
        };
        match done.sum {
            Ok(sum) => self.complete(&sum, *agreement),
            Err(e) => self.fail(format!("secure aggregation aborted: {e}")),
        }
    }

    fn complete(&mut self, sum: &[cairn_crypto::ring::RingElem], agreement: Agreement) {
        let survivors = &agreement.survivors;
        let need = self.core.cfg.min_participants.max(1);
        if survivors.len() < need {
            self.fail(format!(
                "only {} participant(s) survived the round; it needs {need}",
                survivors.len()
            ));
            return;
        }
        if let Some(dp) = self.core.cfg.privacy {
            self.complete_private(&dp, sum, agreement);
            return;
        }
        let n = survivors.len() as f64;
        let (d, limbs) = (self.core.n_params, self.limbs());
        if let Err(e) = self.check_bounds(survivors.len(), sum) {
            self.fail(e);
            return;
        }
        let total = dequantise(sum, self.settings.scale_bits);
        let update_sum: Vec<i64> = sum[..d].iter().map(|&q| i64::from(centred(q))).collect();
        let mean_delta = mean_from_sum(&update_sum, survivors.len(), self.settings.scale_bits);
        let mean_train_loss = total.get(d + limbs).map_or(f64::NAN, |l| l / n);
        let (total_examples, contributors) = (survivors.len() as u64, survivors.clone());
        let proven = self.proven_sum(update_sum, sum, agreement);
        self.core.outcome = Some(RoundOutcome::Completed(Aggregate {
            mean_delta,
            total_examples,
            contributors,
            mean_train_loss,
            proven,
        }));
    }

    /// A proven round's sum for the commitment check: `update_sum` (the lifted sum of what
    /// the survivors committed to), the blinding limbs' sums after it in `sum`, the
    /// survivors' commitments and proofs and their signed agreement; `None` unproven.
    fn proven_sum(
        &self,
        update_sum: Vec<i64>,
        sum: &[cairn_crypto::ring::RingElem],
        agreement: Agreement,
    ) -> Option<ProvenSum> {
        self.core.cfg.proof?;
        let (d, limbs) = (update_sum.len(), self.limbs());
        Some(ProvenSum {
            update_sum,
            blinding_limb_sums: sum[d..d + limbs].iter().map(|&q| u64::from(q)).collect(),
            inputs: agreement
                .survivors
                .iter()
                .filter_map(|p| Some((*p, self.proven.get(p)?.clone())))
                .collect(),
            threshold: agreement.threshold,
            survivor_signatures: agreement.signatures,
            beacon: self.beacon,
        })
    }
}

impl SecureRound {
    /// A DP round's end: the unmasked sum is the survivors' rotated, rounded updates plus
    /// their noise; the mean update is its decoding over the survivors. A coordinate past
    /// what honest holders can sum to fails the round (an input was not clipped or its
    /// noise was not the mechanism's). A proven DP round also yields the lifted sum for the
    /// commitment check: the survivors committed to exactly these noisy vectors.
    fn complete_private(
        &mut self,
        dp: &crate::privacy::DpSettings,
        sum: &[cairn_crypto::ring::RingElem],
        agreement: Agreement,
    ) {
        let survivors = agreement.survivors.clone();
        let padded = self.update_len();
        let lifted: Vec<i64> = sum[..padded]
            .iter()
            .map(|&q| i64::from(centred(q)))
            .collect();
        let decoded = crate::privacy::noise_table(&dp.params).and_then(|table| {
            let bound = crate::privacy::sum_bound(&dp.params, &table, survivors.len())?;
            if let Some((j, v)) = lifted
                .iter()
                .enumerate()
                .find(|(_, v)| v.unsigned_abs() as f64 > bound)
            {
                return Ok(Err(format!(
                    "the unmasked sum of rotated coordinate {j} is {v}, past what {} honest holders' rounded updates and noise reach ({bound}): an input was not clipped or not noised as the mechanism says; nothing applied",
                    survivors.len()
                )));
            }
            let seed = crate::privacy::rotation_seed(&self.core.cfg.round_seed);
            crate::privacy::decode(&dp.params, &lifted, &seed).map(Ok)
        });
        let total = match decoded {
            Ok(Ok(total)) => total,
            Ok(Err(reason)) => return self.fail(reason),
            Err(e) => return self.fail(format!("decoding the noisy sum: {e}")),
        };
        let n = survivors.len() as f64;
        let proven = self.proven_sum(lifted, sum, agreement);
        self.core.outcome = Some(RoundOutcome::Completed(Aggregate {
            mean_delta: total.iter().map(|v| (v / n) as f32).collect(),
            total_examples: survivors.len() as u64,
            contributors: survivors,
            // A holder's loss is not released in a DP round.
            mean_train_loss: f64::NAN,
            proven,
        }));
    }
}

/// The survivors' signed agreement on the survivor list, kept for the transcript.
struct Agreement {
    survivors: Vec<ParticipantId>,
    threshold: u32,
    signatures: Vec<(ParticipantId, cairn_crypto::sign::Signature)>,
}

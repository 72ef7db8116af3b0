//! What the coordinator's two round state machines, [`Round`](crate::round::Round) (plain
//! FedAvg) and [`SecureRound`](crate::secure_round::SecureRound) (SecAgg+), share: the
//! state every round keeps ([`RoundCore`]) and the accessors a driver reads it through
//! ([`RoundState`]), and the sorting of a holder's message into what both handle alike
//! (leaving, declining, a message no round takes) and each machine's own kind. Each machine
//! keeps its own phase logic; the bookkeeping around it lives here, once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use crate::round::{DropReason, ParticipantId, RoundConfig, RoundOutcome};
use crate::wire::{self, RoundSpec, SecureUp, ToCoordinator, ToParticipant, Update};

/// The state every coordinator round keeps, whatever it aggregates. Opaque outside this
/// crate: a driver reads it through [`RoundState`].
#[derive(Debug)]
pub struct RoundCore {
    /// What the round was opened with.
    pub(crate) cfg: RoundConfig,
    /// The model's parameter count (the length of an update).
    pub(crate) n_params: usize,
    /// When the current phase (a plain round has one) times out.
    pub(crate) deadline: Instant,
    /// Who is still awaited in the current phase.
    pub(crate) pending: BTreeSet<ParticipantId>,
    /// Who was dropped from the round, and why.
    pub(crate) dropped: BTreeMap<ParticipantId, DropReason>,
    /// Messages queued for [`RoundState::poll_transmit`].
    pub(crate) transmits: VecDeque<(ParticipantId, ToParticipant)>,
    /// Set once the round has ended.
    pub(crate) outcome: Option<RoundOutcome>,
}

impl RoundCore {
    /// A round of `cfg` awaiting `pending`, its first deadline `cfg.timeout` from `now`.
    pub(crate) fn new(
        cfg: RoundConfig,
        pending: impl IntoIterator<Item = ParticipantId>,
        now: Instant,
    ) -> Self {
        Self {
            n_params: cfg.model.param_count(),
            deadline: now + cfg.timeout,
            pending: pending.into_iter().collect(),
            dropped: BTreeMap::new(),
            transmits: VecDeque::new(),
            outcome: None,
            cfg,
        }
    }

    /// The round spec of a plain round starting from the global model `global`; a secure
    /// round fills in its secure-aggregation, proof and beacon fields on top.
    pub(crate) fn spec(&self, global: &[f32]) -> RoundSpec {
        RoundSpec {
            round: self.cfg.round,
            global: global.to_vec(),
            hyper: self.cfg.hyper.clone(),
            round_seed: self.cfg.round_seed,
            deadline_ms: self.cfg.timeout.as_millis().try_into().unwrap_or(u64::MAX),
            secure: None,
            proof: None,
            beacon_commitment: None,
        }
    }

    /// At the deadline of a round still running, drops everyone still awaited as timed
    /// out and returns `true` (the caller then closes the phase); otherwise `false`.
    pub(crate) fn expire(&mut self, now: Instant) -> bool {
        if self.outcome.is_some() || now < self.deadline {
            return false;
        }
        for p in std::mem::take(&mut self.pending) {
            self.dropped.insert(p, DropReason::Timeout);
        }
        true
    }
}

/// A message to a round from a holder it awaits, sorted by what both machines do with it
/// alike ([`triage`]); each machine handles its own kind and refuses the other's.
#[derive(Debug)]
pub(crate) enum Triage {
    /// A plain round's update.
    Update(Update),
    /// A secure round's phase message.
    Secure(SecureUp),
    /// The holder leaves the round, for this reason (it stays in the job).
    Drop(DropReason),
    /// A decline for another round: refused, its sender stays.
    NotInRound,
    /// A message no round takes: its sender is dropped as invalid.
    Foreign(&'static str),
}

/// Sorts `msg` for round `round` ([`Triage`]); the reasons a holder gives are kept as a
/// terminal may show them.
pub(crate) fn triage(msg: ToCoordinator, round: u32) -> Triage {
    let printable = |reason: &str| wire::printable(reason, wire::MAX_REASON_BYTES);
    match msg {
        ToCoordinator::Update(u) => Triage::Update(u),
        ToCoordinator::Secure(up) => Triage::Secure(up),
        ToCoordinator::Leave { reason } => Triage::Drop(DropReason::Left(printable(&reason))),
        ToCoordinator::Decline { round: r, reason } if r == round => {
            Triage::Drop(DropReason::Declined(printable(&reason)))
        }
        ToCoordinator::Decline { .. } => Triage::NotInRound,
        ToCoordinator::Hello(_)
        | ToCoordinator::CannotJoin { .. }
        | ToCoordinator::Dataset(_)
        | ToCoordinator::Countersign { .. }
        | ToCoordinator::Commit { .. }
        | ToCoordinator::Reveal { .. } => {
            Triage::Foreign("hello, dataset, randomness or countersignature message")
        }
    }
}

/// The accessors a driver reads a coordinator round through, the same for both kinds.
pub trait RoundState {
    /// The shared state.
    fn core(&self) -> &RoundCore;

    /// The shared state, mutably.
    fn core_mut(&mut self) -> &mut RoundCore;

    /// This round's number.
    fn number(&self) -> u32 {
        self.core().cfg.round
    }

    /// When the driver should call `handle_timeout` next (`None` once the round has ended).
    fn poll_timeout(&self) -> Option<Instant> {
        let core = self.core();
        core.outcome.is_none().then_some(core.deadline)
    }

    /// The next message to send.
    fn poll_transmit(&mut self) -> Option<(ParticipantId, ToParticipant)> {
        self.core_mut().transmits.pop_front()
    }

    /// The outcome, once the round has ended.
    fn outcome(&self) -> Option<&RoundOutcome> {
        self.core().outcome.as_ref()
    }

    /// Who was dropped and why.
    fn dropped(&self) -> &BTreeMap<ParticipantId, DropReason> {
        &self.core().dropped
    }
}

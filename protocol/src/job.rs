//! The coordinator's side of a whole job, as a sans-IO state machine: admission of
//! participants, the sequence of rounds, and the server optimiser step.
//!
//! Like [`crate::round::Round`], it takes connections, frames and time as inputs and
//! hands out transmits, wake-up times and [`JobEvent`]s. Evaluation and persistence are
//! the driver's business: it reacts to [`JobEvent::RoundCompleted`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use cairn_crypto::quant::{check_ring_capacity, QuantError};
use cairn_crypto::ring::RING_BITS;
use cairn_crypto::sign::IdentityPublic;

use crate::model::{HyperParams, ModelError, ModelSpec};
use crate::round::{
    Aggregate, Aggregation, DropReason, ParticipantId, Round, RoundConfig, RoundError, RoundOutcome,
};
use crate::secure_round::SecureRound;
use crate::wire::{
    self, Hello, ToCoordinator, ToParticipant, Welcome, MAX_NAME_BYTES, PROTOCOL_VERSION,
};

/// Consecutive failed rounds after which the job gives up.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// A job's settings.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// The job's id.
    pub job_id: String,
    /// The model trained.
    pub model: ModelSpec,
    /// Rounds to run.
    pub rounds: u32,
    /// Participants to wait for before the first round (and the most admitted).
    pub participants: usize,
    /// Fewest valid updates for a round to count.
    pub min_participants: usize,
    /// Local training hyper-parameters.
    pub hyper: HyperParams,
    /// Server learning rate applied to the aggregated update (1.0 = plain FedAvg).
    pub server_lr: f32,
    /// How long a round waits for updates.
    pub round_timeout: Duration,
    /// How long to wait for `participants` to join before starting with fewer (at least
    /// `min_participants`) or failing.
    pub join_timeout: Duration,
    /// Seed of the job's public randomness (round seeds, selection).
    pub seed: u64,
    /// Plain FedAvg or secure aggregation.
    pub aggregation: Aggregation,
}

/// Why a job configuration cannot run.
#[derive(Debug, thiserror::Error)]
pub enum JobConfigError {
    /// The model shape is unusable.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// Participant counts are inconsistent.
    #[error("need 1 <= min_participants ({min}) <= participants ({participants})")]
    Counts {
        /// Minimum per round.
        min: usize,
        /// Participants.
        participants: usize,
    },
    /// The ring cannot hold the sum of the quantised updates.
    #[error("secure aggregation: {0}")]
    Ring(#[from] QuantError),
    /// Too few participants for secure aggregation.
    #[error("secure aggregation needs at least {min} participants, the job has {have}", min = crate::secure_round::MIN_SECURE_PARTICIPANTS, have = .0)]
    TooFewForSecure(usize),
}

impl JobConfig {
    /// Checks the configuration can run: a usable model, consistent counts, and for
    /// secure aggregation enough participants and a ring that holds the sum of
    /// `participants` clipped, quantised updates without wrapping.
    pub fn validate(&self) -> Result<(), JobConfigError> {
        self.model.validate()?;
        if self.participants == 0
            || self.min_participants == 0
            || self.min_participants > self.participants
        {
            return Err(JobConfigError::Counts {
                min: self.min_participants,
                participants: self.participants,
            });
        }
        if let Aggregation::Secure(s) = &self.aggregation {
            if self.participants < crate::secure_round::MIN_SECURE_PARTICIPANTS {
                return Err(JobConfigError::TooFewForSecure(self.participants));
            }
            // Every coordinate of a clipped update (and the loss, clamped to the clip
            // bound) is at most the clip bound in absolute value.
            check_ring_capacity(
                self.participants as u64,
                f64::from(self.hyper.clip_norm),
                s.scale_bits,
                RING_BITS,
            )?;
        }
        Ok(())
    }
}

/// What the driver should send: a message, and whether to close the connection after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// Recipient.
    pub to: ParticipantId,
    /// Message.
    pub msg: ToParticipant,
    /// Close the connection once sent.
    pub close: bool,
}

/// What happened, for the driver's logs, metrics and persistence.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEvent {
    /// A participant was admitted.
    Joined {
        /// Its id.
        participant: ParticipantId,
        /// Its display name.
        name: String,
        /// Its row count.
        n_rows: u64,
    },
    /// A participant was refused admission.
    Refused {
        /// Its id.
        participant: ParticipantId,
        /// Why.
        reason: String,
    },
    /// A round began.
    RoundStarted {
        /// Round number.
        round: u32,
        /// Selected participants.
        participants: Vec<ParticipantId>,
    },
    /// A round completed and its update was applied.
    RoundCompleted {
        /// Round number.
        round: u32,
        /// The aggregate.
        aggregate: Aggregate,
        /// Who was dropped and why.
        dropped: Vec<(ParticipantId, DropReason)>,
        /// The new global model.
        model: Vec<f32>,
    },
    /// A round failed; nothing was applied.
    RoundFailed {
        /// Round number.
        round: u32,
        /// Human-readable reason.
        reason: String,
        /// Who was dropped and why.
        dropped: Vec<(ParticipantId, DropReason)>,
    },
    /// The job is over.
    Finished {
        /// Completed rounds.
        rounds_completed: u32,
        /// Set when the job ended early.
        error: Option<String>,
    },
}

#[derive(Debug)]
enum Phase {
    Joining { deadline: Instant },
    Running(AnyRound),
    Done,
}

/// A round of either kind, with one interface.
#[derive(Debug)]
enum AnyRound {
    Plain(Box<Round>),
    Secure(Box<SecureRound>),
}

macro_rules! delegate {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            AnyRound::Plain($r) => $e,
            AnyRound::Secure($r) => $e,
        }
    };
}

impl AnyRound {
    fn handle_frame(
        &mut self,
        from: ParticipantId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), RoundError> {
        delegate!(self, r => r.handle_frame(from, body, now))
    }
    fn handle_disconnect(&mut self, from: ParticipantId, now: Instant) {
        delegate!(self, r => r.handle_disconnect(from, now))
    }
    fn handle_timeout(&mut self, now: Instant) {
        delegate!(self, r => r.handle_timeout(now))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        delegate!(self, r => r.poll_timeout())
    }
    fn poll_transmit(&mut self) -> Option<(ParticipantId, ToParticipant)> {
        delegate!(self, r => r.poll_transmit())
    }
    fn outcome(&self) -> Option<&RoundOutcome> {
        delegate!(self, r => r.outcome())
    }
    fn dropped(&self) -> &std::collections::BTreeMap<ParticipantId, DropReason> {
        delegate!(self, r => r.dropped())
    }
    fn number(&self) -> u32 {
        delegate!(self, r => r.number())
    }
}

#[derive(Debug)]
struct Member {
    connected: bool,
    identity: IdentityPublic,
}

/// A job on the coordinator's side.
#[derive(Debug)]
pub struct Job {
    cfg: JobConfig,
    global: Vec<f32>,
    rng: ChaCha20Rng,
    phase: Phase,
    members: BTreeMap<ParticipantId, Member>,
    next_round: u32,
    completed: u32,
    consecutive_failures: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<JobEvent>,
}

impl Job {
    /// Creates a job starting from `initial` parameters; it waits for participants until
    /// `now + join_timeout`.
    ///
    /// An invalid configuration ([`JobConfig::validate`]) ends the job at once with a
    /// [`JobEvent::Finished`] naming the problem.
    pub fn new(cfg: JobConfig, initial: Vec<f32>, now: Instant) -> Self {
        let rng = ChaCha20Rng::seed_from_u64(cfg.seed);
        let invalid = cfg.validate().err();
        let mut job = Job {
            phase: Phase::Joining {
                deadline: now + cfg.join_timeout,
            },
            global: initial,
            rng,
            members: BTreeMap::new(),
            next_round: 1,
            completed: 0,
            consecutive_failures: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            cfg,
        };
        if let Some(e) = invalid {
            job.finish(Some(format!("invalid job configuration: {e}")));
        }
        job
    }

    /// The current global model.
    pub fn global(&self) -> &[f32] {
        &self.global
    }

    /// The job's settings.
    pub fn config(&self) -> &JobConfig {
        &self.cfg
    }

    /// True once the job is over.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// A frame body arrived from `from`. Errors are returned for logging; the job has
    /// already acted on them (refused or dropped the sender).
    pub fn handle_frame(
        &mut self,
        from: ParticipantId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), RoundError> {
        if !self.members.contains_key(&from) {
            return match wire::decode_body::<ToCoordinator>(body) {
                Ok(ToCoordinator::Hello(h)) => {
                    self.admit(from, h, now);
                    Ok(())
                }
                Ok(_) => {
                    self.refuse(from, "the first message must be Hello".into());
                    Err(RoundError::Unexpected {
                        from,
                        what: "message before hello",
                    })
                }
                Err(source) => {
                    self.refuse(from, format!("malformed hello: {source}"));
                    Err(RoundError::Wire { from, source })
                }
            };
        }
        let result = match &mut self.phase {
            Phase::Running(round) => round.handle_frame(from, body, now),
            _ => Err(RoundError::NotInRound(from)),
        };
        self.after_round_input(now);
        result
    }

    /// The connection of `from` closed.
    pub fn handle_disconnect(&mut self, from: ParticipantId, now: Instant) {
        if let Some(m) = self.members.get_mut(&from) {
            m.connected = false;
        }
        if let Phase::Running(round) = &mut self.phase {
            round.handle_disconnect(from, now);
        }
        self.after_round_input(now);
    }

    /// Advances time.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Joining { deadline } if now >= *deadline => {
                let n = self.connected().len();
                if n >= self.cfg.min_participants.max(1) {
                    self.start_round(now);
                } else {
                    self.finish(Some(format!(
                        "only {n} participant(s) joined within {:?}; the job needs at least {}",
                        self.cfg.join_timeout, self.cfg.min_participants
                    )));
                }
            }
            Phase::Running(round) => {
                round.handle_timeout(now);
                self.after_round_input(now);
            }
            _ => {}
        }
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Joining { deadline } => Some(*deadline),
            Phase::Running(round) => round.poll_timeout(),
            Phase::Done => None,
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Phase::Running(round) = &mut self.phase {
            while let Some((to, msg)) = round.poll_transmit() {
                self.transmits.push_back(Transmit {
                    to,
                    msg,
                    close: false,
                });
            }
        }
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<JobEvent> {
        self.events.pop_front()
    }

    fn connected(&self) -> Vec<ParticipantId> {
        self.members
            .iter()
            .filter(|(_, m)| m.connected)
            .map(|(&p, _)| p)
            .collect()
    }

    fn admit(&mut self, from: ParticipantId, h: Hello, now: Instant) {
        let reason = if h.version != PROTOCOL_VERSION {
            Some(format!(
                "protocol version {} is not supported (coordinator speaks {PROTOCOL_VERSION})",
                h.version
            ))
        } else if h.name.len() > MAX_NAME_BYTES {
            Some(format!("name longer than {MAX_NAME_BYTES} bytes"))
        } else if h.n_features as usize != self.cfg.model.n_features {
            Some(format!(
                "data has {} features, the job's model expects {}",
                h.n_features, self.cfg.model.n_features
            ))
        } else if h.n_rows == 0 {
            Some("participant holds no rows".to_string())
        } else if matches!(self.phase, Phase::Done) {
            Some("the job is over".to_string())
        } else if !matches!(self.phase, Phase::Joining { .. }) {
            Some("the job has already started".to_string())
        } else if self.members.len() >= self.cfg.participants {
            Some(format!(
                "the job is full ({} participants)",
                self.cfg.participants
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.refuse(from, reason);
            return;
        }
        self.members.insert(
            from,
            Member {
                connected: true,
                identity: h.identity,
            },
        );
        self.transmits.push_back(Transmit {
            to: from,
            msg: ToParticipant::Welcome(Welcome {
                participant: from,
                job_id: self.cfg.job_id.clone(),
                model: self.cfg.model.clone(),
                rounds: self.cfg.rounds,
            }),
            close: false,
        });
        self.events.push_back(JobEvent::Joined {
            participant: from,
            name: h.name,
            n_rows: h.n_rows,
        });
        if self.members.len() >= self.cfg.participants {
            self.start_round(now);
        }
    }

    fn refuse(&mut self, to: ParticipantId, reason: String) {
        self.transmits.push_back(Transmit {
            to,
            msg: ToParticipant::Rejected {
                reason: reason.clone(),
            },
            close: true,
        });
        self.events.push_back(JobEvent::Refused {
            participant: to,
            reason,
        });
    }

    fn start_round(&mut self, now: Instant) {
        if self.next_round > self.cfg.rounds {
            self.finish(None);
            return;
        }
        // Every connected member trains in every round (cross-silo FL: few, reliable holders).
        let selected = self.connected();
        if selected.len() < self.cfg.min_participants.max(1) {
            self.finish(Some(format!(
                "only {} participant(s) still connected; the job needs at least {}",
                selected.len(),
                self.cfg.min_participants
            )));
            return;
        }
        let mut round_seed = [0u8; 32];
        self.rng.fill_bytes(&mut round_seed);
        let cfg = RoundConfig {
            round: self.next_round,
            model: self.cfg.model.clone(),
            hyper: self.cfg.hyper.clone(),
            round_seed,
            timeout: self.cfg.round_timeout,
            min_participants: self.cfg.min_participants,
        };
        self.events.push_back(JobEvent::RoundStarted {
            round: self.next_round,
            participants: selected.clone(),
        });
        self.next_round += 1;
        let round = match &self.cfg.aggregation {
            Aggregation::Plain => {
                AnyRound::Plain(Box::new(Round::new(cfg, &self.global, &selected, now)))
            }
            Aggregation::Secure(settings) => {
                // The graph seed is drawn only now, after the participant list is fixed.
                let mut graph_seed = [0u8; 32];
                self.rng.fill_bytes(&mut graph_seed);
                let roster: Vec<_> = selected
                    .iter()
                    .filter_map(|p| Some((*p, self.members.get(p)?.identity)))
                    .collect();
                AnyRound::Secure(Box::new(SecureRound::new(
                    cfg,
                    *settings,
                    &self.cfg.job_id,
                    &self.global,
                    &roster,
                    graph_seed,
                    now,
                )))
            }
        };
        self.phase = Phase::Running(round);
        self.after_round_input(now);
    }

    fn after_round_input(&mut self, now: Instant) {
        let Phase::Running(round) = &mut self.phase else {
            return;
        };
        let Some(outcome) = round.outcome().cloned() else {
            return;
        };
        while let Some((to, msg)) = round.poll_transmit() {
            self.transmits.push_back(Transmit {
                to,
                msg,
                close: false,
            });
        }
        let number = round.number();
        let dropped: Vec<_> = round
            .dropped()
            .iter()
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        match outcome {
            RoundOutcome::Completed(aggregate) => {
                for (w, d) in self.global.iter_mut().zip(&aggregate.mean_delta) {
                    *w += self.cfg.server_lr * d;
                }
                self.completed += 1;
                self.consecutive_failures = 0;
                self.events.push_back(JobEvent::RoundCompleted {
                    round: number,
                    aggregate,
                    dropped,
                    model: self.global.clone(),
                });
            }
            RoundOutcome::Failed { reason } => {
                self.consecutive_failures += 1;
                self.events.push_back(JobEvent::RoundFailed {
                    round: number,
                    reason,
                    dropped,
                });
                if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                    self.finish(Some(format!(
                        "{MAX_CONSECUTIVE_FAILURES} rounds in a row failed"
                    )));
                    return;
                }
            }
        }
        self.start_round(now);
    }

    fn finish(&mut self, error: Option<String>) {
        let message = match &error {
            None => format!("job complete after {} rounds", self.completed),
            Some(e) => format!("job stopped after {} rounds: {e}", self.completed),
        };
        for p in self.connected() {
            self.transmits.push_back(Transmit {
                to: p,
                msg: ToParticipant::Finished {
                    rounds: self.completed,
                    message: message.clone(),
                },
                close: true,
            });
        }
        self.phase = Phase::Done;
        self.events.push_back(JobEvent::Finished {
            rounds_completed: self.completed,
            error,
        });
    }
}

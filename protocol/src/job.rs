//! The coordinator's side of a whole job, as a sans-IO state machine: admission of
//! participants, the sequence of rounds, and the server optimiser step.
//!
//! Like [`crate::round::Round`], it takes connections, frames and time as inputs and
//! hands out transmits, wake-up times and [`JobEvent`]s. Evaluation and persistence are
//! the driver's business: it reacts to [`JobEvent::RoundCompleted`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;

use cairn_crypto::quant::{check_ring_capacity, QuantError};
use cairn_crypto::ring::RING_BITS;
use cairn_crypto::sign::{IdentityPublic, Signature};

use crate::model::{HyperParams, ModelError, ModelSpec};
use crate::randomness::{self, Contribution};
use crate::round::{
    Aggregate, Aggregation, DropReason, ParticipantId, Round, RoundConfig, RoundError, RoundOutcome,
};
use crate::round_common::{RoundCore, RoundState};
use crate::secure_round::SecureRound;
use crate::server_opt::{ServerOptError, ServerOptState, ServerOptimizer};
use crate::wire::{
    self, DataSpec, DatasetCommitment, Hello, ProofSpec, ToCoordinator, ToParticipant, Welcome,
    MAX_NAME_BYTES, PROTOCOL_VERSION,
};
use crate::work::{Done, SumCheck, Work};
pub use cairn_proofs::statement::{ProofCheck, RoundStatement};

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
    /// How the mean update moves the global model (FedAvg with a server rate, FedAdam or
    /// FedYogi); its moments carry over from round to round in the job.
    pub server: ServerOptimizer,
    /// How long a round waits for updates.
    pub round_timeout: Duration,
    /// How long to wait for `participants` to join before starting with fewer (at least
    /// `min_participants`) or failing.
    pub join_timeout: Duration,
    /// Seed of the initial model. The rounds' seeds come from the holders' commit-reveal
    /// ([`crate::randomness`]), never from this public number.
    pub seed: u64,
    /// Plain FedAvg or secure aggregation.
    pub aggregation: Aggregation,
    /// When set, every update is proven (secure aggregation only): holders commit to
    /// their datasets before the first round and send a commitment and proof with their
    /// masked input.
    pub proof: Option<ProofSpec>,
    /// The data each holder prepares for the job (label, input columns, fitted
    /// transforms), offered on every connection; `None` when holders bring prepared rows.
    pub data: Option<DataSpec>,
}

/// Why a job configuration cannot run.
#[derive(Debug, thiserror::Error)]
pub enum JobConfigError {
    /// The model shape is unusable.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// Participant counts are inconsistent.
    #[error("need 1 <= min_participants ({min}) <= participants ({participants}) <= {max}", max = MAX_PARTICIPANTS)]
    Counts {
        /// Minimum per round.
        min: usize,
        /// Participants.
        participants: usize,
    },
    /// The ring cannot hold the sum of the quantised updates.
    #[error("secure aggregation: {0}")]
    Ring(#[from] QuantError),
    /// The proof settings are unusable.
    #[error("proofs: {0}")]
    Proof(String),
    /// The server optimiser's settings are out of range.
    #[error("server optimiser: {0}")]
    Server(#[from] ServerOptError),
    /// No SecAgg+ (k, t) resists a malicious coordinator at these rates and this size.
    #[error("secure aggregation: {0}; lower the dropout or corruption rate, or add participants")]
    SecureParams(#[from] cairn_crypto::secagg::ParamsError),
    /// Too few participants for secure aggregation.
    #[error("secure aggregation needs at least {min} participants, the job has {have}", min = crate::secure_round::MIN_SECURE_PARTICIPANTS, have = .0)]
    TooFewForSecure(usize),
    /// The data's label has another number of classes than the model predicts.
    #[error("the data's label has {data} classes, the model predicts {model}")]
    Classes {
        /// Classes of the data spec.
        data: usize,
        /// Classes of the model.
        model: usize,
    },
    /// Local training settings every holder would refuse.
    #[error("training: {field}: {reason}")]
    Hyper {
        /// `steps`, `batch`, `lr` or `clip`.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl JobConfig {
    /// Checks the configuration can run: a usable model, consistent counts, and for
    /// secure aggregation enough participants and a ring that holds the sum of
    /// `participants` clipped, quantised updates without wrapping.
    pub fn validate(&self) -> Result<(), JobConfigError> {
        self.model.validate()?;
        self.server.validate()?;
        if let Some((field, reason)) = self.hyper.problems().into_iter().next() {
            return Err(JobConfigError::Hyper { field, reason });
        }
        if self.participants == 0
            || self.participants > MAX_PARTICIPANTS
            || self.min_participants == 0
            || self.min_participants > self.participants
        {
            return Err(JobConfigError::Counts {
                min: self.min_participants,
                participants: self.participants,
            });
        }
        if let Some(d) = &self.data {
            if d.n_classes() != self.model.classes() {
                return Err(JobConfigError::Classes {
                    data: d.n_classes(),
                    model: self.model.classes(),
                });
            }
        }
        if let Some(p) = &self.proof {
            if !self.model.is_binary() {
                return Err(JobConfigError::Proof(format!(
                    "the training circuit proves binary classifiers (one sigmoid output); this job's label has {} classes: train it proof-free",
                    self.model.classes()
                )));
            }
            if !matches!(self.aggregation, Aggregation::Secure(_)) {
                return Err(JobConfigError::Proof(
                    "proven rounds need secure aggregation (the commitment check runs on the unmasked sum)".into(),
                ));
            }
            if let Some((field, reason)) = p
                .problems(self.hyper.local_steps, self.hyper.batch_size)
                .into_iter()
                .next()
            {
                return Err(JobConfigError::Proof(format!("{field}: {reason}")));
            }
            if let Aggregation::Secure(s) = &self.aggregation {
                if s.scale_bits != crate::wire::PROVEN_SCALE_BITS {
                    return Err(JobConfigError::Proof(format!(
                        "a proven job aggregates at the circuit's fixed point, 2^{}; scale bits {} would decode every proven update at the wrong scale",
                        crate::wire::PROVEN_SCALE_BITS,
                        s.scale_bits
                    )));
                }
            }
        }
        if let Aggregation::Secure(s) = &self.aggregation {
            if self.participants < crate::secure_round::MIN_SECURE_PARTICIPANTS {
                return Err(JobConfigError::TooFewForSecure(self.participants));
            }
            s.params(self.participants)?;
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
    /// A holder could not prepare its table for the job, and said why.
    Declined {
        /// Its connection's id.
        participant: ParticipantId,
        /// Its identity key (of its TLS certificate).
        identity: Option<IdentityPublic>,
        /// Its display name (printable, at most [`MAX_NAME_BYTES`] bytes).
        name: String,
        /// Its reason (printable, at most [`wire::MAX_REASON_BYTES`] bytes).
        reason: String,
    },
    /// A participant was refused admission.
    Refused {
        /// Its id.
        participant: ParticipantId,
        /// Why.
        reason: String,
    },
    /// A participant committed to its dataset (proven jobs).
    Enrolled {
        /// Its id.
        participant: ParticipantId,
        /// Its identity key.
        identity: IdentityPublic,
        /// The signed commitment.
        dataset: DatasetCommitment,
    },
    /// Every holder of the roster revealed its contribution: the job's randomness, which
    /// the transcript records (once; a resumed job keeps it).
    Randomness {
        /// The contributions, sorted by identity key.
        contributions: Vec<Contribution>,
    },
    /// A round began.
    RoundStarted {
        /// Round number.
        round: u32,
        /// Selected participants.
        participants: Vec<ParticipantId>,
        /// The seed fixing each participant's rows.
        round_seed: [u8; 32],
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
        /// The server optimiser's state after this round's step (what a resumed job
        /// continues from).
        opt_state: Box<ServerOptState>,
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
    /// A phase of a secure round closed (for per-phase metrics; nothing to record).
    PhaseClosed(crate::secure_round::PhaseClosed),
    /// A proven job's rounds are over: the driver appends nothing more to the transcript
    /// and hands its head to [`Job::seal`] for the holders to countersign.
    Sealing {
        /// The last round begun.
        last_round: u32,
        /// Completed rounds.
        rounds_completed: u32,
    },
    /// The job is over.
    Finished {
        /// Completed rounds.
        rounds_completed: u32,
        /// The last round begun (0 when none was).
        last_round: u32,
        /// Set when the job ended early.
        error: Option<String>,
        /// Proven jobs: the holders' valid countersignatures on the transcript head.
        countersignatures: Vec<(IdentityPublic, Signature)>,
    },
}

#[derive(Debug)]
enum Phase {
    Joining {
        deadline: Instant,
    },
    /// Enrolment closed: the roster's holders reveal their contributions to the job's
    /// randomness until all have or the deadline passes.
    Revealing(Box<Revealing>),
    Running(AnyRound),
    /// A proven round completed: its update waits for the driver's aggregate check
    /// ([`Work::SumCheck`]) before it is applied.
    Checking(Box<Checking>),
    /// A proven job's end: the holders connected at the end countersign the transcript's
    /// head ([`Job::seal`]) until they all have or the deadline passes.
    Sealing(Box<Sealing>),
    Done,
}

/// A completed proven round awaiting its aggregate check.
#[derive(Debug)]
struct Checking {
    round: u32,
    aggregate: Aggregate,
    dropped: Vec<(ParticipantId, DropReason)>,
}

/// Most participants a job may select per round.
pub const MAX_PARTICIPANTS: usize = 10_000;

/// How long a proven job waits for the holders' countersignatures on its transcript head.
pub const SEAL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Sealing {
    error: Option<String>,
    last_round: u32,
    deadline: Instant,
    /// What the holders sign, once the driver gave the head.
    payload: Option<Vec<u8>>,
    waiting: std::collections::BTreeSet<ParticipantId>,
    signatures: Vec<(IdentityPublic, Signature)>,
}

/// The roster of the commit-reveal: (member, identity, commitment) sorted by identity
/// key, and the reveals so far.
#[derive(Debug)]
struct Revealing {
    roster: Vec<(ParticipantId, IdentityPublic, [u8; 32])>,
    reveals: BTreeMap<ParticipantId, [u8; 32]>,
    deadline: Instant,
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
    fn handle_message(
        &mut self,
        from: ParticipantId,
        msg: ToCoordinator,
        now: Instant,
    ) -> Result<(), RoundError> {
        delegate!(self, r => r.handle_message(from, msg, now))
    }
    fn handle_disconnect(&mut self, from: ParticipantId, now: Instant) {
        delegate!(self, r => r.handle_disconnect(from, now))
    }
    fn handle_timeout(&mut self, now: Instant) {
        delegate!(self, r => r.handle_timeout(now))
    }
}

impl RoundState for AnyRound {
    fn core(&self) -> &RoundCore {
        delegate!(self, r => r.core())
    }
    fn core_mut(&mut self) -> &mut RoundCore {
        delegate!(self, r => r.core_mut())
    }
    fn poll_timeout(&self) -> Option<Instant> {
        delegate!(self, r => r.poll_timeout())
    }
}

#[derive(Debug)]
struct Member {
    connected: bool,
    identity: IdentityPublic,
    dataset: Option<DatasetCommitment>,
    /// Its commitment to its contribution to the job's randomness.
    commitment: Option<[u8; 32]>,
}

/// A fresh secret beacon for a round's sampled-step challenges: from the OS's randomness,
/// never from the job's seed (which an operator may have shared), so no holder can predict
/// it before it commits to its steps.
fn fresh_beacon() -> [u8; 32] {
    let mut beacon = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut beacon);
    beacon
}

/// Where a resumed job picks up ([`Job::resume`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ResumePoint {
    /// The model after the last completed round (the initial model if none completed).
    pub model: Vec<f32>,
    /// The server optimiser's state after the last completed round.
    pub opt_state: ServerOptState,
    /// The number to give the next round.
    pub next_round: u32,
    /// Rounds completed before the stop.
    pub completed: u32,
    /// The dataset each identity committed to before the stop (root, rows): a holder that
    /// enrols again must commit to the same one.
    pub committed: BTreeMap<IdentityPublic, ([u8; 32], u64)>,
    /// Rounds abandoned by stops so far (the one in flight at this stop included): the job
    /// runs that many more round numbers, so a stop costs no training round.
    pub abandoned: u32,
    /// The job's randomness, when it was fixed before the stop: the resumed job keeps it,
    /// and only the roster's holders may join again.
    pub randomness: Vec<Contribution>,
}

/// A job on the coordinator's side.
pub struct Job {
    cfg: JobConfig,
    global: Vec<f32>,
    opt: ServerOptState,
    phase: Phase,
    members: BTreeMap<ParticipantId, Member>,
    next_round: u32,
    completed: u32,
    consecutive_failures: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<JobEvent>,
    statement: Option<Arc<RoundStatement>>,
    /// Aggregate checks for the driver ([`Job::poll_work`]).
    work: VecDeque<Work>,
    /// The identity key of each connection's TLS certificate, as the driver read it.
    certified: BTreeMap<ParticipantId, IdentityPublic>,
    /// Connections that answered the offer with a reason they cannot join: closing, and
    /// heard no further.
    declined: std::collections::BTreeSet<ParticipantId>,
    /// Datasets committed before a resume, by identity (see [`ResumePoint::committed`]).
    committed: BTreeMap<IdentityPublic, ([u8; 32], u64)>,
    /// Round numbers used up by stops (see [`ResumePoint::abandoned`]).
    abandoned: u32,
    /// The job's randomness, once every holder of the roster revealed.
    randomness: Vec<Contribution>,
    /// Its beacon ([`randomness::beacon`]), from which every round's seeds derive.
    beacon: Option<[u8; 32]>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("job_id", &self.cfg.job_id)
            .field("phase", &self.phase)
            .field("members", &self.members)
            .field("next_round", &self.next_round)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// Creates a job starting from `initial` parameters; it waits for participants until
    /// `now + join_timeout`.
    ///
    /// An invalid configuration ([`JobConfig::validate`]) ends the job at once with a
    /// [`JobEvent::Finished`] naming the problem.
    pub fn new(cfg: JobConfig, initial: Vec<f32>, now: Instant) -> Self {
        let opt = ServerOptState::new(cfg.server, initial.len());
        Self::build(cfg, initial, opt, 1, 0, now)
    }

    /// Continues a job that stopped (its coordinator was killed or restarted) from the
    /// last completed round: its model and optimiser state, the number of rounds it
    /// completed, and the number to give the next round (above every round begun before,
    /// so an abandoned round's number is not reused). Participants join afresh, as for a
    /// new job (only the holders of its randomness roster, when that was fixed), and the
    /// rounds go on from `next_round` with the seeds a job that never stopped would have
    /// drawn.
    pub fn resume(cfg: JobConfig, from: ResumePoint, now: Instant) -> Self {
        let opt = if from.opt_state.dim() == from.model.len()
            && from.opt_state.optimizer() == &cfg.server
        {
            Ok(from.opt_state)
        } else {
            Err(ServerOptError::Corrupt(format!(
                "the stored state ({} over {} parameters) does not fit the job ({} over {})",
                from.opt_state.optimizer().name(),
                from.opt_state.dim(),
                cfg.server.name(),
                from.model.len()
            )))
        };
        let mut job = Self::build(
            cfg,
            from.model,
            opt,
            from.next_round.max(1),
            from.completed,
            now,
        );
        job.committed = from.committed;
        job.abandoned = from.abandoned;
        if !from.randomness.is_empty() && !job.is_finished() {
            match randomness::check(&from.randomness) {
                Ok(()) => {
                    job.beacon = Some(randomness::beacon(&job.cfg.job_id, &from.randomness));
                    job.randomness = from.randomness;
                }
                Err(e) => {
                    job.finish_now(Some(format!("the stored randomness: {e}")), Vec::new());
                    return job;
                }
            }
        }
        // Stopped after its last round was recorded: nothing is left to run.
        if !job.is_finished() && job.next_round > job.cfg.rounds.saturating_add(job.abandoned) {
            job.finish(None, now);
        }
        job
    }

    fn build(
        cfg: JobConfig,
        global: Vec<f32>,
        opt: Result<ServerOptState, ServerOptError>,
        next_round: u32,
        completed: u32,
        now: Instant,
    ) -> Self {
        let invalid = cfg.validate().err().map(|e| e.to_string());
        let (opt, invalid) = match opt {
            Ok(o) => (o, invalid),
            Err(e) => (
                // A placeholder that is never stepped: the job ends at once.
                ServerOptState::new(ServerOptimizer::default(), global.len())
                    .expect("the default optimiser is valid"),
                invalid.or(Some(format!("server optimiser: {e}"))),
            ),
        };
        let mut job = Job {
            phase: Phase::Joining {
                deadline: now + cfg.join_timeout,
            },
            global,
            opt,
            members: BTreeMap::new(),
            next_round,
            completed,
            consecutive_failures: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            statement: None,
            work: VecDeque::new(),
            certified: BTreeMap::new(),
            declined: std::collections::BTreeSet::new(),
            committed: BTreeMap::new(),
            abandoned: 0,
            randomness: Vec::new(),
            beacon: None,
            cfg,
        };
        if let Some(e) = invalid {
            job.finish_now(Some(format!("invalid job configuration: {e}")), Vec::new());
        }
        job
    }

    /// The number the next round gets (rounds abandoned before a resume use up theirs).
    pub fn next_round(&self) -> u32 {
        self.next_round
    }

    /// Rounds completed so far (including those before a resume).
    pub fn rounds_completed(&self) -> u32 {
        self.completed
    }

    /// The server optimiser's current state.
    pub fn opt_state(&self) -> &ServerOptState {
        &self.opt
    }

    /// The next piece of heavy work for the driver to run off its event loop (with
    /// [`Work::run`] on a blocking thread), answered through [`Job::handle_done`]: a proof
    /// to verify, a round's masks to remove, a proven round's aggregate to check.
    pub fn poll_work(&mut self) -> Option<Work> {
        if let Some(check) = self.next_check() {
            return Some(Work::Verify(check));
        }
        if let Phase::Running(AnyRound::Secure(round)) = &mut self.phase {
            if let Some(unmask) = round.poll_unmask() {
                return Some(Work::Unmask(unmask));
            }
        }
        self.work.pop_front()
    }

    fn next_check(&mut self) -> Option<ProofCheck> {
        let Phase::Running(AnyRound::Secure(round)) = &mut self.phase else {
            return None;
        };
        let req = round.poll_verification()?;
        let statement = Arc::clone(self.statement.as_ref()?);
        let member = self.members.get(&req.participant)?;
        let dataset = member.dataset.clone()?;
        let index = randomness::holder_index(&self.randomness, &member.identity)?;
        debug_assert_eq!(statement.round, req.round);
        Some(ProofCheck {
            participant: req.participant,
            index,
            dataset,
            statement,
            input: req.input,
        })
    }

    /// The driver's answer to a [`Work`] ([`Work::run`]'s result). An answer for a round
    /// that is no longer waiting for it (it timed out, the job stopped) is ignored.
    pub fn handle_done(&mut self, done: Done, now: Instant) {
        match done {
            Done::Verdict {
                round,
                participant,
                result,
            } => {
                if let Phase::Running(AnyRound::Secure(r)) = &mut self.phase {
                    if r.number() == round {
                        r.handle_verdict(participant, result.map_err(|e| e.to_string()), now);
                    }
                }
                self.after_round_input(now);
            }
            Done::Unmasked(sum) => {
                if let Phase::Running(AnyRound::Secure(r)) = &mut self.phase {
                    r.handle_unmasked(sum);
                }
                self.after_round_input(now);
            }
            Done::SumChecked { round, result } => {
                if !matches!(&self.phase, Phase::Checking(c) if c.round == round) {
                    return;
                }
                let Phase::Checking(c) = std::mem::replace(&mut self.phase, Phase::Done) else {
                    return;
                };
                let Checking {
                    round,
                    aggregate,
                    dropped,
                } = *c;
                let outcome = match result {
                    Ok(()) => RoundOutcome::Completed(aggregate),
                    Err(e) => RoundOutcome::Failed {
                        reason: format!("aggregate commitment check failed, nothing applied: {e}"),
                    },
                };
                self.end_round(round, outcome, dropped, now);
            }
        }
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

    /// The connection of `from` authenticated as `identity`: the Ed25519 key of its TLS
    /// client certificate (which the transport's enrolment policy admitted). Its Hello
    /// must then name the same key, or it is refused ([`RoundError::IdentityMismatch`]).
    /// Drivers call this before feeding the connection's first frame; a job driven
    /// without TLS (in-memory tests) skips it and takes the Hello's key as given.
    pub fn handle_connected(&mut self, from: ParticipantId, identity: IdentityPublic) {
        self.certified.insert(from, identity);
        self.transmits.push_back(Transmit {
            to: from,
            msg: ToParticipant::Offer(wire::Offer {
                job_id: self.cfg.job_id.clone(),
                data: self.cfg.data.clone(),
            }),
            close: false,
        });
    }

    /// A frame body arrived from `from`. Errors are returned for logging; the job has
    /// already acted on them (refused or dropped the sender).
    pub fn handle_frame(
        &mut self,
        from: ParticipantId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), RoundError> {
        if self.declined.contains(&from) {
            // One answer per connection: a holder that said it cannot join does not get to
            // say it again and again before its connection closes.
            return Err(RoundError::Unexpected {
                from,
                what: "message after declining the job",
            });
        }
        if !self.members.contains_key(&from) {
            return match wire::decode_body::<ToCoordinator>(body) {
                Ok(ToCoordinator::Hello(h)) => match self.certified.get(&from) {
                    Some(&certificate) if certificate != h.identity => {
                        let e = RoundError::IdentityMismatch {
                            from,
                            hello: h.identity,
                            certificate,
                        };
                        self.refuse(
                            from,
                            format!(
                                "the Hello's identity key {} is not the key of this connection's TLS certificate ({})",
                                hex::encode(h.identity.0),
                                hex::encode(certificate.0)
                            ),
                        );
                        Err(e)
                    }
                    _ => {
                        self.admit(from, h, now);
                        Ok(())
                    }
                },
                Ok(ToCoordinator::CannotJoin { name, reason }) => {
                    let name = wire::printable(&name, MAX_NAME_BYTES);
                    let reason = wire::printable(&reason, wire::MAX_REASON_BYTES);
                    self.declined.insert(from);
                    self.events.push_back(JobEvent::Declined {
                        participant: from,
                        identity: self.certified.get(&from).copied(),
                        name,
                        reason,
                    });
                    // One answer per connection: the holder closes it, and so do we.
                    self.transmits.push_back(Transmit {
                        to: from,
                        msg: ToParticipant::Rejected {
                            reason: "noted: this holder cannot prepare the job's data".into(),
                        },
                        close: true,
                    });
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
        let result = match wire::decode_body::<ToCoordinator>(body) {
            Ok(ToCoordinator::Dataset(d)) => {
                self.enrol(from, d, now);
                Ok(())
            }
            Ok(ToCoordinator::Commit { commitment }) => {
                self.on_commit(from, commitment, now);
                Ok(())
            }
            Ok(ToCoordinator::Reveal { contribution }) => self.on_reveal(from, contribution, now),
            Ok(msg) if matches!(self.phase, Phase::Sealing(_)) => {
                return self.on_sealing_message(from, msg)
            }
            Ok(msg) => match &mut self.phase {
                Phase::Running(round) => round.handle_message(from, msg, now),
                _ => Err(RoundError::NotInRound(from)),
            },
            // The round refuses it with the decoding error and drops the sender.
            Err(_) => match &mut self.phase {
                Phase::Running(round) => round.handle_frame(from, body, now),
                _ => Err(RoundError::NotInRound(from)),
            },
        };
        self.after_round_input(now);
        result
    }

    /// The connection of `from` closed.
    pub fn handle_disconnect(&mut self, from: ParticipantId, now: Instant) {
        self.certified.remove(&from);
        self.declined.remove(&from);
        if let Some(m) = self.members.get_mut(&from) {
            m.connected = false;
        }
        if let Phase::Running(round) = &mut self.phase {
            round.handle_disconnect(from, now);
        }
        if let Phase::Revealing(r) = &self.phase {
            if r.roster.iter().any(|(p, ..)| *p == from) && !r.reveals.contains_key(&from) {
                self.finish(
                    Some(format!(
                        "participant {from} disconnected before revealing its contribution to the job's randomness"
                    )),
                    now,
                );
            }
            return;
        }
        if let Phase::Sealing(s) = &mut self.phase {
            s.waiting.remove(&from);
            self.after_sealing_input();
            return;
        }
        self.after_round_input(now);
    }

    /// Advances time.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Joining { deadline } if now >= *deadline => {
                let n = self.ready().len();
                if n >= self.cfg.min_participants.max(1) {
                    self.close_enrolment(now);
                } else {
                    self.finish(
                        Some(format!(
                            "only {n} participant(s) joined within {:?}; the job needs at least {}",
                            self.cfg.join_timeout, self.cfg.min_participants
                        )),
                        now,
                    );
                }
            }
            Phase::Running(round) => {
                round.handle_timeout(now);
                self.after_round_input(now);
            }
            Phase::Revealing(r) if now >= r.deadline => {
                let missing: Vec<String> = r
                    .roster
                    .iter()
                    .filter(|(p, ..)| !r.reveals.contains_key(p))
                    .map(|(p, id, _)| format!("{p} ({})", hex::encode(&id.0[..8])))
                    .collect();
                self.finish(
                    Some(format!(
                        "participant(s) {} did not reveal their contribution to the job's randomness within {:?}; the job cannot draw its seeds without them (submit it again without them)",
                        missing.join(", "),
                        self.cfg.round_timeout
                    )),
                    now,
                );
            }
            Phase::Sealing(s) if now >= s.deadline => self.end_sealing(),
            _ => {}
        }
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Joining { deadline } => Some(*deadline),
            Phase::Revealing(r) => Some(r.deadline),
            Phase::Running(round) => round.poll_timeout(),
            Phase::Checking(_) => None,
            Phase::Sealing(s) => Some(s.deadline),
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
        self.drain_phases();
        self.events.pop_front()
    }

    /// Moves the running round's closed phases into the events.
    fn drain_phases(&mut self) {
        if let Phase::Running(AnyRound::Secure(round)) = &mut self.phase {
            while let Some(p) = round.poll_phase() {
                self.events.push_back(JobEvent::PhaseClosed(p));
            }
        }
    }

    fn connected(&self) -> Vec<ParticipantId> {
        self.members
            .iter()
            .filter(|(_, m)| m.connected)
            .map(|(&p, _)| p)
            .collect()
    }

    /// Connected members that can take part in a round: those that committed to their
    /// contribution to the job's randomness and, in a proven job, to their dataset.
    fn ready(&self) -> Vec<ParticipantId> {
        let proven = self.cfg.proof.is_some();
        self.members
            .iter()
            .filter(|(_, m)| {
                m.connected && m.commitment.is_some() && (!proven || m.dataset.is_some())
            })
            .map(|(&p, _)| p)
            .collect()
    }

    fn maybe_start(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Joining { .. })
            && self.ready().len() >= self.cfg.participants
        {
            self.close_enrolment(now);
        }
    }

    /// Enrolment is over: members not ready are let go; the ready ones reveal their
    /// contributions (a resumed job whose randomness is fixed sends it at once).
    fn close_enrolment(&mut self, now: Instant) {
        let ready = self.ready();
        let late: Vec<ParticipantId> = self
            .connected()
            .into_iter()
            .filter(|p| !ready.contains(p))
            .collect();
        for p in late {
            if let Some(m) = self.members.get_mut(&p) {
                m.connected = false;
            }
            self.refuse(
                p,
                "enrolment closed before this holder committed to its randomness contribution (and, in a proven job, to its dataset)".into(),
            );
        }
        if self.beacon.is_some() {
            for p in ready {
                self.transmits.push_back(Transmit {
                    to: p,
                    msg: ToParticipant::Randomness {
                        contributions: self.randomness.clone(),
                    },
                    close: false,
                });
            }
            self.start_round(now);
            return;
        }
        let mut roster: Vec<(ParticipantId, IdentityPublic, [u8; 32])> = ready
            .iter()
            .filter_map(|p| {
                let m = self.members.get(p)?;
                Some((*p, m.identity, m.commitment?))
            })
            .collect();
        roster.sort_by_key(|(_, id, _)| id.0);
        let shown: Vec<(IdentityPublic, [u8; 32])> =
            roster.iter().map(|(_, id, c)| (*id, *c)).collect();
        for (p, ..) in &roster {
            self.transmits.push_back(Transmit {
                to: *p,
                msg: ToParticipant::Reveal {
                    roster: shown.clone(),
                },
                close: false,
            });
        }
        self.phase = Phase::Revealing(Box::new(Revealing {
            roster,
            reveals: BTreeMap::new(),
            deadline: now + self.cfg.round_timeout,
        }));
    }

    /// A member's commitment to its contribution to the job's randomness: once, before
    /// enrolment closes; after a resume, the one it made before.
    fn on_commit(&mut self, from: ParticipantId, commitment: [u8; 32], now: Instant) {
        let Some(member) = self.members.get(&from) else {
            return;
        };
        let recorded = self
            .randomness
            .iter()
            .find(|c| c.identity == member.identity)
            .map(|c| c.commitment);
        let reason = if member.commitment.is_some() {
            Some("the randomness commitment cannot change during the job".to_string())
        } else if !matches!(self.phase, Phase::Joining { .. } | Phase::Running(_)) {
            Some("randomness commitments close when enrolment closes".to_string())
        } else if matches!(self.phase, Phase::Running(_)) && recorded != Some(commitment) {
            Some("a holder joining a running job again must make the randomness commitment it made before".to_string())
        } else if recorded.is_some_and(|c| c != commitment) {
            Some("this identity committed to another randomness contribution before the coordinator restarted".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            if let Some(m) = self.members.get_mut(&from) {
                m.connected = false;
            }
            self.refuse(from, reason);
            return;
        }
        if let Some(m) = self.members.get_mut(&from) {
            m.commitment = Some(commitment);
        }
        if matches!(self.phase, Phase::Running(_)) {
            // Back in a running job: the randomness is fixed; the next round takes it.
            self.transmits.push_back(Transmit {
                to: from,
                msg: ToParticipant::Randomness {
                    contributions: self.randomness.clone(),
                },
                close: false,
            });
            return;
        }
        self.maybe_start(now);
    }

    /// A roster member's revealed contribution. Once every member has revealed, the
    /// randomness is fixed, sent to all, recorded, and the first round starts. A reveal
    /// that does not open its commitment ends the job (leaving its sender out would let
    /// whoever saw the other reveals choose between two beacons).
    fn on_reveal(
        &mut self,
        from: ParticipantId,
        contribution: [u8; 32],
        now: Instant,
    ) -> Result<(), RoundError> {
        let Phase::Revealing(r) = &mut self.phase else {
            return Err(RoundError::Unexpected {
                from,
                what: "a randomness reveal outside the reveal",
            });
        };
        let Some(&(_, _, commitment)) = r.roster.iter().find(|(p, ..)| *p == from) else {
            return Err(RoundError::Unexpected {
                from,
                what: "a reveal from outside the roster",
            });
        };
        if randomness::commit(&contribution) != commitment {
            self.finish(
                Some(format!(
                    "participant {from} revealed a contribution that does not open its commitment"
                )),
                now,
            );
            return Err(RoundError::Unexpected {
                from,
                what: "a reveal that does not open its commitment",
            });
        }
        r.reveals.insert(from, contribution);
        if r.reveals.len() < r.roster.len() {
            return Ok(());
        }
        let contributions: Vec<Contribution> = r
            .roster
            .iter()
            .filter_map(|(p, identity, commitment)| {
                Some(Contribution {
                    identity: *identity,
                    commitment: *commitment,
                    reveal: *r.reveals.get(p)?,
                })
            })
            .collect();
        let members: Vec<ParticipantId> = r.roster.iter().map(|(p, ..)| *p).collect();
        self.beacon = Some(randomness::beacon(&self.cfg.job_id, &contributions));
        for p in members {
            self.transmits.push_back(Transmit {
                to: p,
                msg: ToParticipant::Randomness {
                    contributions: contributions.clone(),
                },
                close: false,
            });
        }
        self.randomness = contributions.clone();
        self.events
            .push_back(JobEvent::Randomness { contributions });
        self.start_round(now);
        Ok(())
    }

    /// A member's dataset commitment: once, before the first round, signed with its
    /// identity key, of whole blocks, at least one batch of rows and at most what its tree
    /// holds ([`ProofSpec::refuse_rows`]).
    fn enrol(&mut self, from: ParticipantId, d: DatasetCommitment, now: Instant) {
        let Some(spec) = self.cfg.proof else {
            self.refuse(from, "this job takes no dataset commitment".into());
            return;
        };
        let Some(member) = self.members.get(&from) else {
            return;
        };
        let reason = if member.dataset.is_some() {
            Some("the dataset commitment cannot change during the job".to_string())
        } else if !matches!(self.phase, Phase::Joining { .. })
            && self
                .committed
                .get(&member.identity)
                .is_none_or(|&(root, rows)| (root, rows) != (d.root, d.n_rows))
        {
            Some("dataset commitments close when the first round starts (a holder joining again must commit to its dataset of before)".to_string())
        } else if self
            .committed
            .get(&member.identity)
            .is_some_and(|&(root, rows)| (root, rows) != (d.root, d.n_rows))
        {
            Some("this identity committed to another dataset before the coordinator restarted; a holder's dataset is fixed for the job".to_string())
        } else if let Some(reason) = spec.refuse_rows(d.n_rows, self.cfg.hyper.batch_size) {
            Some(reason)
        } else {
            d.verify(&self.cfg.job_id, &member.identity).err()
        };
        if let Some(reason) = reason {
            if let Some(m) = self.members.get_mut(&from) {
                m.connected = false;
            }
            self.refuse(from, reason);
            return;
        }
        let identity = member.identity;
        if let Some(m) = self.members.get_mut(&from) {
            m.dataset = Some(d.clone());
        }
        if !matches!(self.phase, Phase::Joining { .. }) {
            // Joined again with its recorded commitment: nothing new to record.
            return;
        }
        self.events.push_back(JobEvent::Enrolled {
            participant: from,
            identity,
            dataset: d,
        });
        self.maybe_start(now);
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
        } else if !matches!(self.phase, Phase::Joining { .. }) && !self.may_rejoin(&h.identity) {
            Some("the job has already started".to_string())
        } else if matches!(self.phase, Phase::Joining { .. })
            && self.members.len() >= self.cfg.participants
        {
            Some(format!(
                "the job is full ({} participants)",
                self.cfg.participants
            ))
        } else if !self.randomness.is_empty()
            && randomness::holder_index(&self.randomness, &h.identity).is_none()
        {
            Some("this job's randomness was fixed among other holders before the coordinator restarted; only they may join again".to_string())
        } else if self
            .members
            .values()
            .any(|m| m.connected && m.identity == h.identity)
        {
            Some(format!(
                "identity key {} is already in the job on another connection",
                hex::encode(h.identity.0)
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.refuse(from, reason);
            return;
        }
        if !matches!(self.phase, Phase::Joining { .. }) {
            // A roster holder back after losing its connection: its old entry goes, and
            // its dataset commitment is the one it must make again.
            let old: Vec<ParticipantId> = self
                .members
                .iter()
                .filter(|(_, m)| m.identity == h.identity)
                .map(|(&p, _)| p)
                .collect();
            for p in old {
                if let Some(d) = self.members.remove(&p).and_then(|m| m.dataset) {
                    self.committed.insert(h.identity, (d.root, d.n_rows));
                }
            }
        }
        self.members.insert(
            from,
            Member {
                connected: true,
                identity: h.identity,
                dataset: None,
                commitment: None,
            },
        );
        self.transmits.push_back(Transmit {
            to: from,
            msg: ToParticipant::Welcome(Welcome {
                participant: from,
                job_id: self.cfg.job_id.clone(),
                model: self.cfg.model.clone(),
                rounds: self.cfg.rounds,
                hyper: self.cfg.hyper.clone(),
                proof: self.cfg.proof,
            }),
            close: false,
        });
        self.events.push_back(JobEvent::Joined {
            participant: from,
            // What reaches the coordinator's terminal, logs and status page: no escape
            // sequences or forged log lines from a holder's chosen name.
            name: wire::printable(&h.name, MAX_NAME_BYTES),
            n_rows: h.n_rows,
        });
        self.maybe_start(now);
    }

    /// Whether a holder may join the running job again: one of the holders its randomness
    /// was drawn among (so its rows and statements are fixed by it), not connected now.
    /// It takes part from the next round on.
    fn may_rejoin(&self, identity: &IdentityPublic) -> bool {
        matches!(self.phase, Phase::Running(_))
            && randomness::holder_index(&self.randomness, identity).is_some()
            && !self
                .members
                .values()
                .any(|m| m.connected && m.identity == *identity)
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
        if self.next_round > self.cfg.rounds.saturating_add(self.abandoned) {
            self.finish(None, now);
            return;
        }
        // Every ready member trains in every round (cross-silo FL: few, reliable holders).
        let selected = self.ready();
        if selected.len() < self.cfg.min_participants.max(1) {
            self.finish(
                Some(format!(
                    "only {} participant(s) still connected; the job needs at least {}",
                    selected.len(),
                    self.cfg.min_participants
                )),
                now,
            );
            return;
        }
        let Some(beacon) = self.beacon else {
            self.finish(
                Some("no round can start before the job's randomness is fixed".into()),
                now,
            );
            return;
        };
        let round_seed = randomness::round_seed(&beacon, self.next_round);
        // From the holders' randomness, fixed after the roster was.
        let graph_seed = randomness::graph_seed(&beacon, self.next_round);
        let cfg = RoundConfig {
            round: self.next_round,
            model: self.cfg.model.clone(),
            hyper: self.cfg.hyper.clone(),
            round_seed,
            timeout: self.cfg.round_timeout,
            min_participants: self.cfg.min_participants,
            proof: self.cfg.proof,
        };
        self.statement = self.cfg.proof.map(|proof| {
            Arc::new(RoundStatement {
                round: self.next_round,
                model: self.cfg.model.clone(),
                global: self.global.clone(),
                hyper: self.cfg.hyper.clone(),
                round_seed,
                proof,
            })
        });
        self.events.push_back(JobEvent::RoundStarted {
            round: self.next_round,
            participants: selected.clone(),
            round_seed,
        });
        self.next_round += 1;
        let round = match &self.cfg.aggregation {
            Aggregation::Plain => {
                AnyRound::Plain(Box::new(Round::new(cfg, &self.global, &selected, now)))
            }
            Aggregation::Secure(settings) => {
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
                    fresh_beacon(),
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
        if let AnyRound::Secure(r) = &mut *round {
            while let Some(p) = r.poll_phase() {
                self.events.push_back(JobEvent::PhaseClosed(p));
            }
        }
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
        // A proven round's update is applied only after Σ C_u = commit(S, R) holds: the
        // driver checks it off the event loop.
        let outcome = match outcome {
            RoundOutcome::Completed(a) if self.cfg.proof.is_some() => match a.proven.clone() {
                Some(sum) => {
                    self.work.push_back(Work::SumCheck(SumCheck { round: number, sum }));
                    self.phase = Phase::Checking(Box::new(Checking {
                        round: number,
                        aggregate: a,
                        dropped,
                    }));
                    return;
                }
                None => RoundOutcome::Failed {
                    reason: "aggregate commitment check failed, nothing applied: the round produced no proven sum".into(),
                },
            },
            o => o,
        };
        self.end_round(number, outcome, dropped, now);
    }

    /// A round ended: applies its update (or counts its failure) and starts the next.
    fn end_round(
        &mut self,
        number: u32,
        outcome: RoundOutcome,
        dropped: Vec<(ParticipantId, DropReason)>,
        now: Instant,
    ) {
        match outcome {
            RoundOutcome::Completed(aggregate) => {
                if let Err(e) = self.opt.apply(&mut self.global, &aggregate.mean_delta) {
                    // A length mismatch (ruled out by the round's own checks) or a
                    // non-finite mean: nothing is applied and the job stops.
                    self.finish(Some(format!("server optimiser: {e}")), now);
                    return;
                }
                self.completed += 1;
                self.consecutive_failures = 0;
                self.events.push_back(JobEvent::RoundCompleted {
                    round: number,
                    aggregate,
                    dropped,
                    model: self.global.clone(),
                    opt_state: Box::new(self.opt.clone()),
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
                    self.finish(
                        Some(format!("{MAX_CONSECUTIVE_FAILURES} rounds in a row failed")),
                        now,
                    );
                    return;
                }
            }
        }
        self.start_round(now);
    }

    /// The rounds are over. A proven job with holders still connected first collects
    /// their countersignatures on the transcript head ([`JobEvent::Sealing`]).
    fn finish(&mut self, error: Option<String>, now: Instant) {
        let connected = self.connected();
        if self.cfg.proof.is_none() || connected.is_empty() {
            self.finish_now(error, Vec::new());
            return;
        }
        let last_round = self.next_round.saturating_sub(1);
        self.phase = Phase::Sealing(Box::new(Sealing {
            error,
            last_round,
            deadline: now + SEAL_TIMEOUT,
            payload: None,
            waiting: connected.into_iter().collect(),
            signatures: Vec::new(),
        }));
        self.events.push_back(JobEvent::Sealing {
            last_round,
            rounds_completed: self.completed,
        });
    }

    /// The driver's answer to [`JobEvent::Sealing`]: `head` is the hash of the
    /// transcript's last record. Each connected holder is asked to countersign it; the job
    /// finishes when all have answered, left, or [`SEAL_TIMEOUT`] passed.
    pub fn seal(&mut self, head: [u8; 32], now: Instant) {
        let final_model_hash = crate::transcript::model_hash(&self.global);
        let (job_id, completed) = (self.cfg.job_id.clone(), self.completed);
        let Phase::Sealing(sealing) = &mut self.phase else {
            return;
        };
        if sealing.payload.is_some() {
            return;
        }
        sealing.payload = Some(crate::transcript::seal_payload(
            &job_id,
            &head,
            sealing.last_round,
            completed,
            &final_model_hash,
        ));
        sealing.deadline = sealing.deadline.max(now + SEAL_TIMEOUT);
        for &to in &sealing.waiting {
            self.transmits.push_back(Transmit {
                to,
                msg: ToParticipant::Seal {
                    head,
                    last_round: sealing.last_round,
                    rounds_completed: completed,
                    final_model_hash,
                },
                close: false,
            });
        }
    }

    /// A countersignature (or anything else) from `from` while sealing.
    fn on_sealing_message(
        &mut self,
        from: ParticipantId,
        msg: ToCoordinator,
    ) -> Result<(), RoundError> {
        let identity = self.members.get(&from).map(|m| m.identity);
        let Phase::Sealing(sealing) = &mut self.phase else {
            return Err(RoundError::NotInRound(from));
        };
        let (ToCoordinator::Countersign { signature }, Some(payload), Some(identity)) =
            (msg, &sealing.payload, identity)
        else {
            return Err(RoundError::NotInRound(from));
        };
        if !sealing.waiting.remove(&from) {
            return Err(RoundError::Unexpected {
                from,
                what: "a second countersignature",
            });
        }
        let valid = identity.verify(payload, &signature).is_ok();
        if valid {
            sealing.signatures.push((identity, signature));
        }
        self.after_sealing_input();
        if valid {
            Ok(())
        } else {
            Err(RoundError::Unexpected {
                from,
                what: "a countersignature that does not verify",
            })
        }
    }

    fn after_sealing_input(&mut self) {
        if let Phase::Sealing(s) = &self.phase {
            if s.payload.is_some() && s.waiting.is_empty() {
                self.end_sealing();
            }
        }
    }

    fn end_sealing(&mut self) {
        if let Phase::Sealing(s) = std::mem::replace(&mut self.phase, Phase::Done) {
            let Sealing {
                error, signatures, ..
            } = *s;
            self.finish_now(error, signatures);
        }
    }

    fn finish_now(
        &mut self,
        error: Option<String>,
        countersignatures: Vec<(IdentityPublic, Signature)>,
    ) {
        let message = match &error {
            None => format!("job complete after {} rounds", self.completed),
            Some(e) => format!("job stopped after {} rounds: {e}", self.completed),
        };
        for p in self.connected() {
            self.transmits.push_back(Transmit {
                to: p,
                msg: ToParticipant::Finished {
                    rounds: self.completed,
                    completed: error.is_none(),
                    message: message.clone(),
                },
                close: true,
            });
        }
        self.phase = Phase::Done;
        self.events.push_back(JobEvent::Finished {
            rounds_completed: self.completed,
            last_round: self.next_round.saturating_sub(1),
            error,
            countersignatures,
        });
    }
}

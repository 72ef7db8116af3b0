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
use crate::wire::DatasetFacts;
use crate::wire::{
    self, DataSpec, DatasetCommitment, Hello, ProofSpec, ToCoordinator, ToParticipant, Welcome,
    MAX_NAME_BYTES, PROTOCOL_VERSION,
};
use crate::work::{Done, SumCheck, Work};
pub use cairn_proofs::statement::{ProofCheck, RoundStatement};

mod config;
mod events;
mod joining;
mod rounds;
mod sealing;

pub use config::{JobConfig, JobConfigError, MAX_CONSECUTIVE_FAILURES};
pub use events::{JobEvent, Transmit};

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
    /// The dataset each identity committed to before the stop (root, rows, noise seed): a holder that
    /// enrols again must commit to the same one.
    pub committed: BTreeMap<IdentityPublic, DatasetFacts>,
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
    committed: BTreeMap<IdentityPublic, DatasetFacts>,
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
}

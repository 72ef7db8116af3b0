//! The coordinator's side of one round, as a sans-IO state machine.
//!
//! The driver feeds it what arrives (`handle_frame`, `handle_disconnect`) and the time
//! (`handle_timeout`), and takes out what to send (`poll_transmit`) and when to wake it
//! (`poll_timeout`). It validates every update (round, length, finiteness, clip norm,
//! weight), drops a participant that sends anything invalid without harming the round, and
//! ends either `Completed` with the example-weighted FedAvg of the valid updates, or
//! `Failed` when fewer than the minimum answered in time.
//!
//! Updates are folded into a running weighted sum as they arrive and not kept: the round
//! never holds more than one individual update at a time (the secure-aggregation phases
//! later replace this fold with unmasking).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cairn_crypto::secagg;
use cairn_crypto::sign::IdentityPublic;

use crate::model::{HyperParams, ModelSpec};
use crate::round_common::{triage, RoundCore, RoundState, Triage};
use crate::wire::{self, ToCoordinator, ToParticipant, Update, WireError};
pub use cairn_proofs::statement::ProvenSum;

/// A participant's id within a job (assigned by the coordinator per connection).
pub type ParticipantId = u32;

/// How a round aggregates updates.
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregation {
    /// Plain example-weighted FedAvg: the coordinator sees each update.
    Plain,
    /// Secure aggregation (SecAgg+): the coordinator learns only the sum.
    Secure(SecureSettings),
}

impl std::fmt::Display for Aggregation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain => f.write_str("plain FedAvg (the coordinator sees each update)"),
            Self::Secure(s) => write!(
                f,
                "SecAgg+ secure aggregation (tolerates {:.0}% dropout, {:.0}% corrupt; 2^{} fixed point)",
                100.0 * s.dropout,
                100.0 * s.corruption,
                s.scale_bits
            ),
        }
    }
}

/// Settings of secure aggregation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SecureSettings {
    /// Fraction of participants the protocol must tolerate dropping (δ).
    pub dropout: f64,
    /// Fraction of participants that may be corrupt and collude with the coordinator (γ).
    pub corruption: f64,
    /// Fixed-point scale of the quantised update: 2^scale_bits.
    pub scale_bits: u32,
}

impl Default for SecureSettings {
    /// δ = 0.2, γ = 0.1: feasible against a malicious coordinator for every n ≥ 3 (at
    /// n = 5, (k, t) = (4, 3); at n = 10, (8, 5); at n = 100, (72, 42)).
    fn default() -> Self {
        Self {
            dropout: 0.2,
            corruption: 0.1,
            scale_bits: 16,
        }
    }
}

impl SecureSettings {
    /// The SecAgg+ degree and threshold for a round of `n` participants: chosen against a
    /// **malicious** coordinator (t > (k + c)/2, so no split of the survivor list yields
    /// both secrets of an honest holder). The one rule the coordinator opens rounds with,
    /// every participant recomputes and insists on, and a job file is checked against.
    pub fn params(&self, n: usize) -> Result<secagg::SecAggParams, secagg::ParamsError> {
        secagg::choose_params(&secagg::ParamRequest::new(n, self.dropout, self.corruption))
    }
}

/// What a round needs to know.
#[derive(Clone, Debug)]
pub struct RoundConfig {
    /// Round number, from 1.
    pub round: u32,
    /// The job's model (for the update length).
    pub model: ModelSpec,
    /// Local training hyper-parameters (the clip norm is enforced here).
    pub hyper: HyperParams,
    /// Seed fixing the rows each participant trains on.
    pub round_seed: [u8; 32],
    /// How long participants have to answer.
    pub timeout: Duration,
    /// Fewest valid updates for the round to complete.
    pub min_participants: usize,
    /// Proof settings, when the round's updates must be proven (secure rounds only).
    pub proof: Option<crate::wire::ProofSpec>,
    /// Distributed DP (secure rounds only): the holders add noise shares to their rotated,
    /// rounded updates, and the round decodes the noisy sum.
    pub privacy: Option<crate::privacy::DpSettings>,
}

/// Why an incoming message was refused (the sender is dropped from the round).
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The bytes were not a valid message.
    #[error("participant {from}: {source}")]
    Wire {
        /// Sender.
        from: ParticipantId,
        /// What was wrong with the bytes.
        #[source]
        source: WireError,
    },
    /// The sender is not selected for this round (or already dropped).
    #[error("participant {0} is not in this round")]
    NotInRound(ParticipantId),
    /// An update for another round.
    #[error("participant {from}: update for round {got}, this is round {want}")]
    WrongRound {
        /// Sender.
        from: ParticipantId,
        /// Round in the update.
        got: u32,
        /// Current round.
        want: u32,
    },
    /// A second update from the same participant.
    #[error("participant {0} already sent its update")]
    Duplicate(ParticipantId),
    /// The update's length is not the model's.
    #[error("participant {from}: update has {got} values, the model has {want}")]
    WrongLength {
        /// Sender.
        from: ParticipantId,
        /// Received length.
        got: usize,
        /// Model's parameter count.
        want: usize,
    },
    /// NaN or infinity in the update or its loss.
    #[error("participant {0}: update has non-finite values")]
    NonFinite(ParticipantId),
    /// The update's L2 norm exceeds the clip bound.
    #[error("participant {from}: update norm {norm} exceeds the clip bound {clip}")]
    OverNorm {
        /// Sender.
        from: ParticipantId,
        /// Norm of the update.
        norm: f32,
        /// Clip bound of the round.
        clip: f32,
    },
    /// Zero or absurd FedAvg weight.
    #[error("participant {from}: invalid example count {n}")]
    BadWeight {
        /// Sender.
        from: ParticipantId,
        /// Claimed count.
        n: u64,
    },
    /// A secure-aggregation message was refused (bad signature, wrong size, out of phase…).
    #[error("participant {from}: secure aggregation: {error}")]
    Secure {
        /// Sender.
        from: ParticipantId,
        /// What was wrong.
        error: String,
    },
    /// A message that has no place in a round (e.g. a second Hello).
    #[error("participant {from}: unexpected {what} during a round")]
    Unexpected {
        /// Sender.
        from: ParticipantId,
        /// Message kind.
        what: &'static str,
    },
    /// A Hello whose identity key is not the key of its connection's TLS certificate
    /// (the participant was refused).
    #[error("participant {from}: the Hello names identity key {}, the connection's certificate carries {}", hex::encode(.hello.0), hex::encode(.certificate.0))]
    IdentityMismatch {
        /// Sender.
        from: ParticipantId,
        /// The key in the Hello.
        hello: IdentityPublic,
        /// The key of the connection's TLS certificate.
        certificate: IdentityPublic,
    },
}

/// Why a participant is left out of a round's aggregate.
#[derive(Clone, Debug, PartialEq)]
pub enum DropReason {
    /// No update before the deadline.
    Timeout,
    /// Its connection closed.
    Disconnected,
    /// It left the job.
    Left(String),
    /// It declined the round, saying why.
    Declined(String),
    /// It sent something invalid (the error's text).
    Invalid(String),
    /// Its training proof did not verify (the verifier's reason).
    BadProof(String),
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::Timeout => write!(f, "timed out"),
            DropReason::Disconnected => write!(f, "disconnected"),
            DropReason::Left(r) => write!(f, "left: {r}"),
            DropReason::Declined(r) => write!(f, "declined: {r}"),
            DropReason::Invalid(e) => write!(f, "invalid message: {e}"),
            DropReason::BadProof(e) => write!(f, "proof rejected: {e}"),
        }
    }
}

/// The sum a completed round produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    /// Example-weighted mean of the valid updates.
    pub mean_delta: Vec<f32>,
    /// Sum of the contributors' example counts.
    pub total_examples: u64,
    /// Who contributed, in id order.
    pub contributors: Vec<ParticipantId>,
    /// Example-weighted mean of the reported training losses.
    pub mean_train_loss: f64,
    /// In a proven round: the exact sums and each survivor's commitment and proof, for
    /// the homomorphic check and the transcript.
    pub proven: Option<ProvenSum>,
}

/// The mean update of `survivors` participants from the exact sum of their fixed-point
/// updates (scale 2^`scale_bits`): what a secure round applies, and what an auditor
/// recomputes from the transcript — one function, so both get the same bits.
pub fn mean_from_sum(update_sum: &[i64], survivors: usize, scale_bits: u32) -> Vec<f32> {
    let inv = (-f64::from(scale_bits)).exp2();
    let n = survivors as f64;
    update_sum
        .iter()
        .map(|&s| ((s as f64 * inv) / n) as f32)
        .collect()
}

/// Checks the survivors' signatures of a proven round: at least `threshold` of them, each
/// from a survivor, none twice, each valid under that survivor's identity key over the
/// survivor list (the ids of `inputs`) of round `round` of job `job_id`. `identity` gives a
/// participant's enrolled key. Returns the number of valid signatures.
pub fn check_survivor_signatures(
    job_id: &str,
    round: u32,
    sum: &ProvenSum,
    identity: impl Fn(ParticipantId) -> Option<cairn_crypto::sign::IdentityPublic>,
) -> Result<usize, SurvivorSignatureError> {
    use cairn_crypto::secagg::survivors_payload;
    use cairn_crypto::{ParticipantId as CryptoId, RoundId};
    let survivors: Vec<CryptoId> = sum.inputs.iter().map(|(p, _)| CryptoId(*p)).collect();
    let payload = survivors_payload(&RoundId::new(job_id, round), &survivors);
    let mut seen = BTreeSet::new();
    for (p, sig) in &sum.survivor_signatures {
        if survivors.binary_search(&CryptoId(*p)).is_err() {
            return Err(SurvivorSignatureError::NotASurvivor(*p));
        }
        if !seen.insert(*p) {
            return Err(SurvivorSignatureError::Duplicate(*p));
        }
        let key = identity(*p).ok_or(SurvivorSignatureError::UnknownKey(*p))?;
        key.verify(&payload, sig)
            .map_err(|_| SurvivorSignatureError::Invalid(*p))?;
    }
    if seen.len() < sum.threshold as usize {
        return Err(SurvivorSignatureError::TooFew {
            have: seen.len(),
            need: sum.threshold as usize,
        });
    }
    Ok(seen.len())
}

/// Why a proven round's survivor signatures do not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SurvivorSignatureError {
    /// A signer is not among the survivors.
    #[error("participant {0} signed the survivor list but is not a survivor")]
    NotASurvivor(ParticipantId),
    /// A survivor signed twice.
    #[error("participant {0} signed the survivor list twice")]
    Duplicate(ParticipantId),
    /// No identity key is known for a signer.
    #[error("participant {0} signed the survivor list but has no enrolled identity key")]
    UnknownKey(ParticipantId),
    /// A signature does not verify.
    #[error("participant {0}: survivor-list signature does not verify")]
    Invalid(ParticipantId),
    /// Fewer than t survivors signed.
    #[error("{have} survivor signature(s), the round's threshold needs {need}")]
    TooFew {
        /// Valid signatures.
        have: usize,
        /// The threshold.
        need: usize,
    },
}

/// How a round ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RoundOutcome {
    /// Enough valid updates arrived.
    Completed(Aggregate),
    /// Too few valid updates, or secure aggregation aborted: nothing is applied.
    Failed {
        /// Why, for people.
        reason: String,
    },
}

/// One round on the coordinator's side.
#[derive(Debug)]
pub struct Round {
    core: RoundCore,
    contributors: Vec<ParticipantId>,
    weighted_sum: Vec<f64>,
    total_examples: u64,
    loss_sum: f64,
}

impl RoundState for Round {
    fn core(&self) -> &RoundCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut RoundCore {
        &mut self.core
    }
}

impl Round {
    /// Opens a round for `participants` with the global model `global`; the round spec for
    /// each is queued for `poll_transmit`.
    pub fn new(
        cfg: RoundConfig,
        global: &[f32],
        participants: &[ParticipantId],
        now: Instant,
    ) -> Self {
        let mut core = RoundCore::new(cfg, participants.iter().copied(), now);
        let spec = core.spec(global);
        core.transmits = participants
            .iter()
            .map(|&p| (p, ToParticipant::Round(spec.clone())))
            .collect();
        let mut round = Round {
            contributors: Vec::new(),
            weighted_sum: vec![0.0; core.n_params],
            total_examples: 0,
            loss_sum: 0.0,
            core,
        };
        round.maybe_finish();
        round
    }

    /// Feeds a frame body received from `from`. An invalid one drops the sender from the
    /// round and returns the reason; the round goes on.
    pub fn handle_frame(
        &mut self,
        from: ParticipantId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), RoundError> {
        match wire::decode_body::<ToCoordinator>(body) {
            Ok(msg) => self.handle_message(from, msg, now),
            Err(source) => self.reject(RoundError::Wire { from, source }, from),
        }
    }

    /// Feeds a decoded message from `from`.
    pub fn handle_message(
        &mut self,
        from: ParticipantId,
        msg: ToCoordinator,
        _now: Instant,
    ) -> Result<(), RoundError> {
        if self.core.outcome.is_some() || !self.core.pending.contains(&from) {
            return Err(if self.contributors.contains(&from) {
                RoundError::Duplicate(from)
            } else {
                RoundError::NotInRound(from)
            });
        }
        match triage(msg, self.core.cfg.round) {
            // An update of an earlier round, delivered late (a partition healed): ignored,
            // its sender stays in this round.
            Triage::Update(u) if u.round < self.core.cfg.round => Err(RoundError::WrongRound {
                from,
                got: u.round,
                want: self.core.cfg.round,
            }),
            Triage::Update(u) => match self.check(from, &u) {
                Ok(()) => {
                    self.accept(from, u);
                    Ok(())
                }
                Err(e) => self.reject(e, from),
            },
            Triage::Drop(why) => {
                self.drop_participant(from, why);
                Ok(())
            }
            Triage::NotInRound => Err(RoundError::NotInRound(from)),
            Triage::Foreign(what) => self.reject(RoundError::Unexpected { from, what }, from),
            Triage::Secure(_) => self.reject(
                RoundError::Unexpected {
                    from,
                    what: "secure-aggregation message in a plain round",
                },
                from,
            ),
        }
    }

    /// The connection of `from` closed.
    pub fn handle_disconnect(&mut self, from: ParticipantId, _now: Instant) {
        if self.core.pending.contains(&from) {
            self.drop_participant(from, DropReason::Disconnected);
        }
    }

    /// Advances time: at the deadline, everyone still pending is dropped.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.core.expire(now) {
            self.maybe_finish();
        }
    }

    fn check(&self, from: ParticipantId, u: &Update) -> Result<(), RoundError> {
        if u.round != self.core.cfg.round {
            return Err(RoundError::WrongRound {
                from,
                got: u.round,
                want: self.core.cfg.round,
            });
        }
        if u.delta.len() != self.core.n_params {
            return Err(RoundError::WrongLength {
                from,
                got: u.delta.len(),
                want: self.core.n_params,
            });
        }
        if !u.train_loss.is_finite() || u.delta.iter().any(|v| !v.is_finite()) {
            return Err(RoundError::NonFinite(from));
        }
        let norm = u
            .delta
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt() as f32;
        // Clipping in f32 can land a hair above the bound.
        if norm > self.core.cfg.hyper.clip_norm * (1.0 + 1e-4) {
            return Err(RoundError::OverNorm {
                from,
                norm,
                clip: self.core.cfg.hyper.clip_norm,
            });
        }
        if u.n_examples == 0 || u.n_examples > u64::from(u32::MAX) {
            return Err(RoundError::BadWeight {
                from,
                n: u.n_examples,
            });
        }
        Ok(())
    }

    fn accept(&mut self, from: ParticipantId, u: Update) {
        let w = u.n_examples as f64;
        for (s, &d) in self.weighted_sum.iter_mut().zip(&u.delta) {
            *s += w * f64::from(d);
        }
        self.total_examples += u.n_examples;
        self.loss_sum += w * f64::from(u.train_loss);
        self.core.pending.remove(&from);
        self.contributors.push(from);
        self.maybe_finish();
    }

    fn reject(&mut self, err: RoundError, from: ParticipantId) -> Result<(), RoundError> {
        self.drop_participant(from, DropReason::Invalid(err.to_string()));
        Err(err)
    }

    fn drop_participant(&mut self, p: ParticipantId, why: DropReason) {
        if self.core.pending.remove(&p) {
            self.core.dropped.insert(p, why);
            self.maybe_finish();
        }
    }

    fn maybe_finish(&mut self) {
        if self.core.outcome.is_some() || !self.core.pending.is_empty() {
            return;
        }
        let have = self.contributors.len();
        let need = self.core.cfg.min_participants.max(1);
        self.core.outcome = Some(if have < need {
            RoundOutcome::Failed {
                reason: format!("only {have} valid update(s) arrived; the round needs {need}"),
            }
        } else {
            let t = self.total_examples as f64;
            let mut contributors = self.contributors.clone();
            contributors.sort_unstable();
            RoundOutcome::Completed(Aggregate {
                mean_delta: self.weighted_sum.iter().map(|s| (s / t) as f32).collect(),
                total_examples: self.total_examples,
                contributors,
                mean_train_loss: self.loss_sum / t,
                proven: None,
            })
        });
        // The running sum is no longer needed; free it.
        self.weighted_sum = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default rates give a (k, t) against a malicious coordinator for every round
    /// size from the smallest secure one to the thousands, with t > k/2 (no split of a
    /// holder's neighbours yields both its secrets) and room for lost neighbours.
    #[test]
    fn default_settings_are_feasible_against_a_malicious_coordinator() {
        let s = SecureSettings::default();
        for n in (3..=120).chain([200, 500, 1000]) {
            let p = s.params(n).unwrap_or_else(|e| panic!("n = {n}: {e}"));
            assert!(
                2 * p.threshold > p.k && p.threshold <= p.k,
                "n = {n}: {p:?}"
            );
            // From 4 holders on, a round survives a lost neighbour.
            assert!(n < 4 || p.threshold < p.k, "n = {n}: {p:?}");
        }
        let at = |n| s.params(n).map(|p| (p.k, p.threshold)).expect("feasible");
        // The values the README quotes.
        assert_eq!((at(5), at(10), at(100)), ((4, 3), (8, 5), (72, 42)));
    }
}

//! A job's settings and the one check of them ([`JobConfig::validate`]).

use super::*;
use crate::privacy::{DpSettings, PrivacyError};

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
    /// Distributed differential privacy (secure aggregation): each holder adds its share of
    /// Skellam noise to its rotated, rounded update before masking. In a proven job the
    /// proof settings carry the same parameters (`proof.noise`) and every proof shows the
    /// noise was added.
    pub privacy: Option<DpSettings>,
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
    /// The privacy settings are unusable.
    #[error("{0}")]
    Privacy(#[from] PrivacyError),
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
        match (&self.privacy, self.proof.and_then(|p| p.noise)) {
            (Some(dp), _) => self.validate_privacy(dp)?,
            (None, Some(_)) => {
                return Err(JobConfigError::Proof(
                    "proofs of noise in a job without [privacy]".into(),
                ))
            }
            (None, None) => {}
        }
        Ok(())
    }

    fn validate_privacy(&self, dp: &DpSettings) -> Result<(), JobConfigError> {
        let field = |field: &'static str, reason: String| {
            JobConfigError::Privacy(PrivacyError::Field { field, reason })
        };
        if !matches!(self.aggregation, Aggregation::Secure(_)) {
            return Err(field(
                "aggregation",
                "distributed DP needs secure aggregation: the coordinator must see only the noisy sum".into(),
            ));
        }
        // A proven DP job's circuit carries the mechanism: its proofs show each holder's
        // noise, so the proof settings must name exactly the job's parameters.
        if let Some(p) = &self.proof {
            if p.noise != Some(dp.params) {
                return Err(field(
                    "proofs",
                    "the proof settings' noise is not the job's privacy parameters: a proven DP job proves the noise it promises".into(),
                ));
            }
        }
        dp.validate(f64::from(self.hyper.clip_norm), self.model.param_count())?;
        let t = dp.params.min_survivors as usize;
        if t > self.min_participants {
            return Err(field(
                "min_survivors",
                format!(
                    "{t} holders' noise is promised but a round completes with {} survivors",
                    self.min_participants
                ),
            ));
        }
        // The sum of every holder's rounded, noised vector must not wrap the ring (a wrap
        // would only cost accuracy, never privacy, but a job that cannot fit is refused).
        dp.params
            .check_ring(
                u32::try_from(self.participants).unwrap_or(u32::MAX),
                RING_FAILURE,
                RING_BITS,
            )
            .map_err(|e| JobConfigError::Privacy(e.into()))?;
        Ok(())
    }
}

/// The probability a DP job's sum may wrap the ring in a round, at most.
pub const RING_FAILURE: f64 = 1e-9;

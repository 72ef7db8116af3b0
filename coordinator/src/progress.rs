//! What the coordinator reports while a job runs: one record per round, and a summary.

use serde::{Deserialize, Serialize};

use cairn_protocol::metrics::Metrics;

/// One completed (or failed) round, as reported and exported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number.
    pub round: u32,
    /// Participants selected.
    pub selected: usize,
    /// Participants whose update was aggregated.
    pub contributors: usize,
    /// Dropped participants, with the reason.
    pub dropped: Vec<(u32, String)>,
    /// Mean reported training loss (example-weighted); NaN when the round failed (written as
    /// `null` in JSON, and read back from it).
    #[serde(with = "nan_as_none")]
    pub train_loss: f64,
    /// Test metrics of the new global model (`None` when the round failed).
    pub test: Option<Metrics>,
    /// Wall-clock seconds of the round.
    pub seconds: f64,
    /// Why the round failed, if it did.
    pub failure: Option<String>,
    /// Seconds each proof of the round took to verify (proven jobs). (Never skipped when
    /// serialising: the store keeps records in bincode, which has no optional fields.)
    #[serde(default)]
    pub verify_seconds: Option<Vec<f64>>,
    /// The coordinator's resident memory when the round ended, in bytes (where readable).
    #[serde(default)]
    pub rss_bytes: Option<u64>,
    /// A DP job's ε after this round (at the job's δ, [`PrivacySpent::delta`]): every round
    /// started so far counts, failed ones included (a round that failed after unmasking may
    /// have released its sum). `None` for a job without differential privacy.
    #[serde(default)]
    pub epsilon: Option<f64>,
}

/// The privacy a DP job has spent: (ε, δ) after `rounds` rounds started.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivacySpent {
    /// ε of the job's (ε, δ) so far.
    pub epsilon: f64,
    /// The job's δ.
    pub delta: f64,
    /// Rounds counted (every round started, failed or abandoned ones included).
    pub rounds: u32,
    /// The budget the job stops at, when it has one.
    pub budget: Option<f64>,
}

impl PrivacySpent {
    /// `(ε, δ) = (…, …) after N rounds`, as every front end prints it.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "(ε, δ) = ({:.3}, {:e}) after {} round{}",
            self.epsilon,
            self.delta,
            self.rounds,
            if self.rounds == 1 { "" } else { "s" }
        );
        if let Some(b) = self.budget {
            s.push_str(&format!(" (budget ε = {b})"));
        }
        s
    }
}

/// A float that may be NaN, kept as an `Option` (None for NaN) in every format: JSON has
/// no NaN (serde_json writes `null` and cannot read it back as a float).
mod nan_as_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        (!v.is_nan()).then_some(*v).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Progress events for a front end (progress bar, logs).
#[derive(Clone, Debug)]
pub enum Progress {
    /// The coordinator is listening.
    Listening {
        /// Bound address.
        addr: std::net::SocketAddr,
        /// Certificate fingerprint participants must pin.
        fingerprint: String,
    },
    /// A participant joined.
    Joined {
        /// Its id.
        participant: u32,
        /// Its name.
        name: String,
        /// Its rows.
        n_rows: u64,
    },
    /// A holder could not prepare its table for the job (a column or label it lacks…).
    Declined {
        /// Its connection's id.
        participant: u32,
        /// Its name (printable).
        name: String,
        /// Why (printable).
        reason: String,
    },
    /// A participant was refused.
    Refused {
        /// Its id.
        participant: u32,
        /// Why.
        reason: String,
    },
    /// A round started.
    RoundStarted {
        /// Round number.
        round: u32,
        /// Selected participants.
        participants: usize,
    },
    /// A holder finished its local work for a round (reported by in-process holders: the
    /// demo and benches, not by the coordinator, which never sees it).
    Trained {
        /// Round number.
        round: u32,
        /// The holder's name.
        holder: String,
        /// Seconds of local training.
        train_seconds: f64,
        /// Seconds of fixed-point replay and proving (proven jobs).
        prove_seconds: Option<f64>,
    },
    /// A phase of a secure round closed.
    Phase(PhaseRecord),
    /// The participants whose updates a completed round aggregated.
    Aggregated {
        /// Round number.
        round: u32,
        /// Their ids.
        participants: Vec<u32>,
    },
    /// A round ended.
    Round(RoundRecord),
}

/// What one phase of a secure round cost the coordinator, from the previous phase's end (or
/// the round's start) to this one's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// Round number.
    pub round: u32,
    /// The phase (`advertise keys`, `share keys`, `masked input`, `consistency check`,
    /// `unmask`).
    pub phase: String,
    /// Participants whose message of this phase was accepted.
    pub answered: usize,
    /// Participants dropped from the round so far.
    pub dropped: usize,
    /// Wall-clock seconds of the phase.
    pub seconds: f64,
    /// Seconds the coordinator's loop was working (not waiting for messages): the job's
    /// state machine, encoding, unmasking.
    pub busy_seconds: f64,
    /// CPU seconds of the coordinator's threads (its loop, connections and QUIC endpoint),
    /// when the driver was given a meter ([`crate::RunOptions::cpu`]).
    pub cpu_seconds: Option<f64>,
    /// Frame bytes received from the participants.
    pub bytes_in: u64,
    /// Frame bytes sent to the participants.
    pub bytes_out: u64,
}

/// The outcome of a whole job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobSummary {
    /// Rounds completed.
    pub rounds_completed: u32,
    /// Per-round records.
    pub rounds: Vec<RoundRecord>,
    /// The final global model.
    pub model: Vec<f32>,
    /// Set when the job ended early.
    pub error: Option<String>,
    /// The hash-chained transcript of a proven job.
    pub transcript: Option<cairn_protocol::transcript::Transcript>,
    /// A DP job's (ε, δ) after every round it started (`None` without DP).
    #[serde(default)]
    pub privacy: Option<PrivacySpent>,
}

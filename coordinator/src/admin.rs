//! The coordinator's admin interface: an HTTP API for researchers' job commands (`cairn job
//! submit | list | status | watch | cancel | pull | plot`) and a read-only status page, on
//! its own port, **loopback only**, every request authenticated by a bearer token.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/` | the status page (HTML; the token may come as `?token=`) |
//! | GET | `/api/jobs` | every job's [`JobInfo`], newest first |
//! | POST | `/api/jobs` | submit a job file (TOML body): `201` [`Submitted`], or `400` [`ApiError`] naming each bad field |
//! | GET | `/api/jobs/{id}` | [`JobStatus`]: state, plan, rounds, audit |
//! | POST | `/api/jobs/{id}/cancel` | cancel a queued or running job: [`Cancelled`] |
//! | GET | `/api/jobs/{id}/config` | the job file as submitted |
//! | GET | `/api/jobs/{id}/metrics` | the round records (JSON) |
//! | GET | `/api/jobs/{id}/metrics.csv` | the same as CSV |
//! | GET | `/api/jobs/{id}/model[?round=K]` | a model as safetensors (the last completed round's by default) |
//! | GET | `/api/jobs/{id}/transcript` | a proven job's transcript (`cairn audit` reads it) |
//! | GET | `/api/jobs/{id}/report` | the final [`JobReport`]: baseline and ROC points |
//! | GET | `/api/jobs/{id}/plots/rounds.svg` | test AUC and loss per round (SVG, the baseline dashed once the job ended) |
//! | GET | `/api/jobs/{id}/plots/roc.svg` | the final model's ROC beside the baseline's (SVG; once the job ended) |
//!
//! The status page links to the model, the metrics, the plots and the rest with the token in
//! the link (`?token=`), as the page itself is reached.
//!
//! The job logic stays with the caller: [`AdminState::validate`] checks a job file against
//! the coordinator's data before it is queued, and [`AdminState::changed`] wakes the runner
//! when a job is queued or cancelled.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use cairn_protocol::job::JobConfig;
use cairn_protocol::metrics::{ClassMetrics, Metrics};
use cairn_protocol::model::ModelSpec;
use cairn_protocol::privacy::DpSettings;
use cairn_protocol::round::Aggregation;
use cairn_protocol::wire::{printable, MAX_NAME_BYTES, MAX_REASON_BYTES};

use crate::export::to_safetensors;
use crate::job_file::FieldError;
use crate::persist::transcript_of;
use crate::progress::{PrivacySpent, RoundRecord};
use crate::status_page;
use crate::store::{JobId, JobInfo, RoundOutcome, Store, StoreError};

/// Artifact: the job's [`JobPlan`], stored when it starts.
pub const PLAN: &str = "plan.json";
/// Artifact: the job's [`JobReport`], stored when it ends.
pub const REPORT: &str = "report.json";
/// Artifact: the [`AuditSummary`] of a proven job's transcript, stored when it ends.
pub const AUDIT: &str = "audit.json";

/// What the coordinator runs for a job, stored when it starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobPlan {
    /// The id the job runs under (dataset commitments are signed over it).
    pub job_id: String,
    /// The model's shape.
    pub model: ModelSpec,
    /// Rounds to run.
    pub rounds: u32,
    /// Participants per round.
    pub participants: usize,
    /// Fewest valid updates for a round to count.
    pub min_participants: usize,
    /// The server optimiser's name.
    pub server: String,
    /// The aggregation, as it describes itself.
    pub aggregation: String,
    /// Whether every update is proven.
    pub proofs: bool,
    /// Rows of the coordinator's test split.
    pub test_rows: usize,
    /// The privacy, proof and training settings (absent from plans stored before they were
    /// recorded).
    #[serde(default)]
    pub settings: Option<JobSettings>,
    /// The job's data spec (label, input columns, fitted transforms), exported with the
    /// model (absent from plans stored before it was recorded).
    #[serde(default)]
    pub data: Option<cairn_datasets::DataSpec>,
}

/// A job's privacy, proof and local-training settings, as the status page shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSettings {
    /// Plain or secure aggregation, with its parameters.
    pub aggregation: AggregationSettings,
    /// The proofs' settings (`None`: updates are not proven).
    pub proofs: Option<ProofSettings>,
    /// Local SGD steps K.
    pub local_steps: u32,
    /// Mini-batch size B.
    pub batch_size: u32,
    /// Local learning rate.
    pub learning_rate: f32,
    /// L2 bound each update is clipped to.
    pub clip_norm: f32,
    /// How long a round waits for updates, in seconds.
    pub round_timeout_secs: f64,
    /// How long the job waits for its holders to join, in seconds.
    pub join_timeout_secs: f64,
    /// Distributed differential privacy (absent without it, and from settings stored
    /// before it was built).
    #[serde(default)]
    pub privacy: Option<PrivacySettings>,
}

/// A DP job's privacy settings: the mechanism's parameters and the (ε, δ) it plans for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivacySettings {
    /// The job's settings (mechanism parameters, δ, budget).
    pub dp: DpSettings,
    /// ε after all the job's rounds, as the accountant gives it (`None` when it could not).
    pub planned_epsilon: Option<f64>,
}

/// How a job aggregates its holders' updates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AggregationSettings {
    /// Plain FedAvg: the coordinator sees each update.
    Plain,
    /// SecAgg+: the coordinator learns only the sum.
    Secure {
        /// Fraction of holders the protocol tolerates dropping (δ).
        dropout: f64,
        /// Fraction of holders that may be corrupt and collude with the coordinator (γ).
        corruption: f64,
        /// Fixed-point scale of the quantised updates, 2^scale_bits.
        scale_bits: u32,
        /// Neighbours per holder in a round of all the job's participants (`None` when no
        /// (k, t) fits; the job would have been refused).
        k: Option<usize>,
        /// The Shamir threshold in such a round.
        t: Option<usize>,
    },
}

/// A proven job's proof settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProofSettings {
    /// Tolerance τ between an update and its fixed-point replay.
    pub tolerance: f32,
    /// Depth of each holder's dataset tree.
    pub tree_depth: u32,
    /// Rows per leaf of the tree.
    pub block_rows: u32,
    /// Signed bits of each committed fixed-point feature.
    pub feature_bits: u32,
    /// Steps each proof covers when sampled (`None`: all K local steps).
    pub proved_steps: Option<u32>,
}

impl JobSettings {
    /// The settings of the job `cfg` runs.
    pub fn of(cfg: &JobConfig) -> Self {
        let aggregation = match &cfg.aggregation {
            Aggregation::Plain => AggregationSettings::Plain,
            Aggregation::Secure(s) => {
                let kt = s.params(cfg.participants).ok();
                AggregationSettings::Secure {
                    dropout: s.dropout,
                    corruption: s.corruption,
                    scale_bits: s.scale_bits,
                    k: kt.map(|p| p.k),
                    t: kt.map(|p| p.threshold),
                }
            }
        };
        Self {
            aggregation,
            proofs: cfg.proof.map(|p| ProofSettings {
                tolerance: p.tolerance,
                tree_depth: p.tree_depth,
                block_rows: p.block_rows,
                feature_bits: p.feature_bits,
                proved_steps: p.sampled_steps,
            }),
            local_steps: cfg.hyper.local_steps,
            batch_size: cfg.hyper.batch_size,
            learning_rate: cfg.hyper.learning_rate,
            clip_norm: cfg.hyper.clip_norm,
            round_timeout_secs: cfg.round_timeout.as_secs_f64(),
            join_timeout_secs: cfg.join_timeout.as_secs_f64(),
            privacy: cfg.privacy.map(|dp| PrivacySettings {
                dp,
                planned_epsilon: dp.epsilon_after(cfg.rounds).ok(),
            }),
        }
    }
}

/// A job's final evaluation on the coordinator's test split, stored when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The final federated model (for K ≥ 3 classes the macro averages, see [`Metrics`]).
    pub federated: Metrics,
    /// ROC points (false-positive rate, true-positive rate) of the federated model; empty
    /// for a multi-class model (see `classes` for each class's AUC).
    pub roc: Vec<(f64, f64)>,
    /// A centralised model trained on the coordinator's training split with the same
    /// budget, when the coordinator has one.
    pub centralised: Option<Metrics>,
    /// Its ROC points.
    pub centralised_roc: Option<Vec<(f64, f64)>>,
    /// Rows of the test split.
    pub test_rows: usize,
    /// Each class against the rest, in the label's class order (both classes of a binary
    /// job); empty in reports stored before it was computed.
    #[serde(default)]
    pub classes: Vec<ClassReport>,
    /// A DP job's (ε, δ) after every round it started: what the final model and every
    /// metric computed from it cost (`None` without DP, and in reports stored before it).
    #[serde(default)]
    pub privacy: Option<PrivacySpent>,
}

/// One class's row of a [`JobReport`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    /// The class's name (its label value).
    pub class: String,
    /// The federated model's metrics for the class.
    pub federated: ClassMetrics,
    /// The centralised model's, when there is one.
    pub centralised: Option<ClassMetrics>,
}

/// `cairn audit` of a proven job's transcript, run when the job ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditSummary {
    /// Everything held.
    pub passed: bool,
    /// Proofs checked.
    pub proofs: usize,
    /// Problems found.
    pub problems: Vec<String>,
}

/// One recorded round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundView {
    /// Round number.
    pub round: u32,
    /// Completed, failed or abandoned.
    pub outcome: RoundOutcome,
    /// Its record (none for an abandoned round).
    pub record: Option<RoundRecord>,
}

/// `GET /api/jobs/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The store's view of the job.
    pub info: JobInfo,
    /// What it runs (once started).
    pub plan: Option<JobPlan>,
    /// Its rounds so far.
    pub rounds: Vec<RoundView>,
    /// The audit of its transcript (proven jobs, once ended).
    pub audit: Option<AuditSummary>,
    /// The round that was in flight when the job was cancelled or failed (nothing of it
    /// was applied). A job that has ended has no round in flight: `info.in_flight` is
    /// `None` for it here, whatever the store's marker still says.
    #[serde(default)]
    pub interrupted_round: Option<u32>,
    /// Its holders and per-round phase times, as this coordinator process saw them (none
    /// for a job it did not run since it started).
    #[serde(default)]
    pub live: Option<LiveView>,
    /// Whether its final report (metrics, baseline, ROC) is stored: it is once the job
    /// ended after completing a round.
    #[serde(default)]
    pub has_report: bool,
}

impl JobStatus {
    /// A DP job's (ε, δ) after its latest recorded round (ε = 0 before its first): `None`
    /// for a job without DP, or one not started.
    pub fn privacy_spent(&self) -> Option<PrivacySpent> {
        let dp = self.plan.as_ref()?.settings.as_ref()?.privacy.as_ref()?.dp;
        let (epsilon, rounds) = self
            .rounds
            .iter()
            .rev()
            .find_map(|r| Some((r.record.as_ref()?.epsilon?, r.round)))
            .unwrap_or((0.0, 0));
        Some(PrivacySpent {
            epsilon,
            delta: dp.delta,
            rounds,
            budget: dp.budget,
        })
    }

    /// The round in flight now: only a running job has one.
    pub fn round_in_flight(&self) -> Option<u32> {
        if self.info.state.is_terminal() {
            None
        } else {
            self.info.in_flight
        }
    }
}

/// Where a holder of a job is, as the coordinator sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HolderState {
    /// Admitted to the job, waiting for a round to select it.
    Joined,
    /// Selected for the round in flight; its update has not been aggregated yet.
    Training {
        /// The round.
        round: u32,
    },
    /// Its update was aggregated in `round` (or, in a round that failed as a whole, it
    /// was not dropped from it).
    Answered {
        /// The round.
        round: u32,
    },
    /// Dropped from `round`, for `reason` (it stays in the job).
    Dropped {
        /// The round.
        round: u32,
        /// Why (holder text, made printable).
        reason: String,
    },
    /// Could not prepare the job's data, for `reason` (holder text, made printable).
    Declined {
        /// Why.
        reason: String,
    },
    /// Its connection closed, with the transport's reason when it was not an orderly
    /// close; a holder that rejoins with the same identity key is shown again.
    Left {
        /// Why, when known.
        reason: Option<String>,
    },
}

impl HolderState {
    /// The state's one-word name (`joined`, `training`, `answered`, `dropped`,
    /// `declined`, `left`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Training { .. } => "training",
            Self::Answered { .. } => "answered",
            Self::Dropped { .. } => "dropped",
            Self::Declined { .. } => "declined",
            Self::Left { .. } => "left",
        }
    }
}

impl std::fmt::Display for HolderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Joined => f.write_str("joined"),
            Self::Training { round } => write!(f, "training (round {round})"),
            Self::Answered { round } => write!(f, "answered (round {round})"),
            Self::Dropped { round, reason } => write!(f, "dropped from round {round}: {reason}"),
            Self::Declined { reason } => write!(f, "declined: {reason}"),
            Self::Left { reason: None } => f.write_str("left"),
            Self::Left {
                reason: Some(reason),
            } => write!(f, "left: {reason}"),
        }
    }
}

/// One holder of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HolderView {
    /// Its participant id in the job's current connection (a rejoin gets a new one).
    pub participant: u32,
    /// The name it gave (made printable; HTML-escape it before showing it on a page).
    pub name: String,
    /// Its identity key, hex (`None` when the connection's key was not seen).
    pub identity: Option<String>,
    /// Rows it reported.
    pub rows: u64,
    /// Where it is.
    pub state: HolderState,
    /// Rounds whose aggregate included its update.
    pub rounds_answered: u32,
}

/// Seconds one phase of a secure round took (from the previous phase's end, or the round's
/// start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// Round number.
    pub round: u32,
    /// The phase (`advertise keys`, `share keys`, `masked input`, `consistency check`,
    /// `unmask`).
    pub phase: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What this coordinator process saw of a job as it ran: its holders and the phase times
/// of its secure rounds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveView {
    /// The holders, in the order they first joined.
    pub holders: Vec<HolderView>,
    /// Phase times, oldest first (the latest [`MAX_PHASES_KEPT`]).
    pub phases: Vec<PhaseTime>,
}

/// Jobs whose holders the board keeps (the latest started).
pub const MAX_JOBS_KEPT: usize = 16;
/// Phase records kept per job (the latest).
pub const MAX_PHASES_KEPT: usize = 5 * 200;
/// Holders kept per job (a job admits at most its participants; rejoins reuse an entry).
pub const MAX_HOLDERS_KEPT: usize = cairn_protocol::job::MAX_PARTICIPANTS;

/// The holders of the jobs this coordinator ran since it started, shared between the jobs'
/// drivers (which report through [`JobHolders`]) and the admin interface.
#[derive(Clone, Debug, Default)]
pub struct HolderBoard {
    jobs: Arc<Mutex<BTreeMap<JobId, JobBoard>>>,
}

#[derive(Debug, Default)]
struct JobBoard {
    /// Identity keys (hex) of the connections that have not joined yet.
    connecting: HashMap<u32, String>,
    /// Index into `view.holders` of each joined participant id.
    by_participant: HashMap<u32, usize>,
    view: LiveView,
}

impl HolderBoard {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<JobId, JobBoard>> {
        // A panic while holding the lock leaves a board that is still readable.
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The reporter for job `id`'s run: its holders start afresh (a resumed job's holders
    /// join again).
    pub fn job(&self, id: JobId) -> JobHolders {
        let mut jobs = self.lock();
        jobs.insert(id, JobBoard::default());
        while jobs.len() > MAX_JOBS_KEPT {
            jobs.pop_first();
        }
        JobHolders {
            board: self.clone(),
            job: id,
        }
    }

    /// What the board holds of job `id`.
    pub fn view(&self, id: JobId) -> Option<LiveView> {
        self.lock().get(&id).map(|b| b.view.clone())
    }
}

/// Reports one job's holders to a [`HolderBoard`]: the driver calls it as connections
/// open, holders join, rounds start and end, and connections close. Holder text is made
/// printable here.
#[derive(Clone, Debug)]
pub struct JobHolders {
    board: HolderBoard,
    job: JobId,
}

impl JobHolders {
    fn with(&self, f: impl FnOnce(&mut JobBoard)) {
        if let Some(b) = self.board.lock().get_mut(&self.job) {
            f(b);
        }
    }

    /// A connection's handshake completed with `identity`'s key.
    pub fn connected(&self, participant: u32, identity: &[u8; 32]) {
        self.with(|b| {
            b.connecting.insert(participant, hex::encode(identity));
        });
    }

    /// `participant` was admitted as `name` with `rows` rows. A holder whose identity key
    /// is already on the board (it rejoined) takes its old entry.
    pub fn joined(&self, participant: u32, name: &str, rows: u64) {
        self.with(|b| {
            let identity = b.connecting.remove(&participant);
            let name = printable(name, MAX_NAME_BYTES);
            let old = identity.as_ref().and_then(|id| {
                b.view
                    .holders
                    .iter()
                    .position(|h| h.identity.as_ref() == Some(id))
            });
            let i = match old {
                Some(i) => {
                    b.by_participant.retain(|_, &mut j| j != i);
                    let h = &mut b.view.holders[i];
                    h.participant = participant;
                    h.name = name;
                    h.rows = rows;
                    h.state = HolderState::Joined;
                    i
                }
                None if b.view.holders.len() < MAX_HOLDERS_KEPT => {
                    b.view.holders.push(HolderView {
                        participant,
                        name,
                        identity,
                        rows,
                        state: HolderState::Joined,
                        rounds_answered: 0,
                    });
                    b.view.holders.len() - 1
                }
                None => return,
            };
            b.by_participant.insert(participant, i);
        });
    }

    fn set(b: &mut JobBoard, participant: u32, f: impl FnOnce(&mut HolderView)) {
        if let Some(&i) = b.by_participant.get(&participant) {
            if let Some(h) = b.view.holders.get_mut(i) {
                f(h);
            }
        }
    }

    /// `round` started with `participants` selected.
    pub fn round_started(&self, round: u32, participants: &[u32]) {
        self.with(|b| {
            for &p in participants {
                Self::set(b, p, |h| h.state = HolderState::Training { round });
            }
        });
    }

    /// A phase of a secure round closed after `seconds`.
    pub fn phase(&self, round: u32, phase: &str, seconds: f64) {
        self.with(|b| {
            let phases = &mut b.view.phases;
            if phases.len() >= MAX_PHASES_KEPT {
                phases.remove(0);
            }
            phases.push(PhaseTime {
                round,
                phase: phase.to_string(),
                seconds,
            });
        });
    }

    /// `round` ended: `contributors`' updates were aggregated (none when it failed), and
    /// `dropped` were dropped from it with their reasons. Holders still training in it
    /// that were neither count as having answered when it failed as a whole, and wait
    /// again otherwise.
    pub fn round_ended(&self, round: u32, contributors: &[u32], dropped: &[(u32, String)]) {
        let failed = contributors.is_empty();
        self.with(|b| {
            for &p in contributors {
                Self::set(b, p, |h| {
                    h.state = HolderState::Answered { round };
                    h.rounds_answered += 1;
                });
            }
            for (p, why) in dropped {
                Self::set(b, *p, |h| {
                    h.state = HolderState::Dropped {
                        round,
                        reason: printable(why, MAX_REASON_BYTES),
                    };
                });
            }
            for h in &mut b.view.holders {
                if h.state == (HolderState::Training { round }) {
                    h.state = if failed {
                        HolderState::Answered { round }
                    } else {
                        HolderState::Joined
                    };
                }
            }
        });
    }

    /// The holder on connection `participant` (`identity`'s key, named `name`) could not
    /// prepare the job's data, for `reason`. It need not have joined: a holder that never
    /// could is listed with no rows; one already on the board (by key, or by connection)
    /// keeps its entry.
    pub fn declined(&self, participant: u32, identity: Option<[u8; 32]>, name: &str, reason: &str) {
        self.with(|b| {
            let identity = identity
                .map(hex::encode)
                .or_else(|| b.connecting.get(&participant).cloned());
            let state = HolderState::Declined {
                reason: printable(reason, MAX_REASON_BYTES),
            };
            let known = identity
                .as_ref()
                .and_then(|id| {
                    b.view
                        .holders
                        .iter()
                        .position(|h| h.identity.as_ref() == Some(id))
                })
                .or_else(|| b.by_participant.get(&participant).copied());
            match known {
                Some(i) => {
                    if let Some(h) = b.view.holders.get_mut(i) {
                        h.state = state;
                    }
                }
                None if b.view.holders.len() < MAX_HOLDERS_KEPT => {
                    b.view.holders.push(HolderView {
                        participant,
                        name: printable(name, MAX_NAME_BYTES),
                        identity,
                        rows: 0,
                        state,
                        rounds_answered: 0,
                    });
                    b.by_participant
                        .insert(participant, b.view.holders.len() - 1);
                }
                None => {}
            }
        });
    }

    /// `participant`'s connection closed (`reason` when it was not an orderly close).
    pub fn left(&self, participant: u32, reason: Option<&str>) {
        self.with(|b| {
            b.connecting.remove(&participant);
            Self::set(b, participant, |h| {
                // A holder that declined keeps saying why.
                if !matches!(h.state, HolderState::Declined { .. }) {
                    h.state = HolderState::Left {
                        reason: reason.map(|r| printable(r, MAX_REASON_BYTES)),
                    };
                }
            });
            b.by_participant.remove(&participant);
        });
    }

    /// The job's run ended (finished, failed, cancelled or stopped): a holder still
    /// training is no longer in a round.
    pub fn ended(&self, why: &str) {
        self.with(|b| {
            b.connecting.clear();
            for h in &mut b.view.holders {
                if let HolderState::Training { round } = h.state {
                    h.state = HolderState::Left {
                        reason: Some(printable(
                            &format!("{why} during round {round}"),
                            MAX_REASON_BYTES,
                        )),
                    };
                }
            }
        });
    }
}

/// `POST /api/jobs` accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    /// The new job's id.
    pub id: JobId,
    /// Its name.
    pub name: String,
    /// Jobs ahead of it in the queue (including a running one).
    pub ahead: usize,
}

/// `POST /api/jobs/{id}/cancel` accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cancelled {
    /// The job.
    pub id: JobId,
    /// The state it had.
    pub was: String,
}

/// One bad field of a submitted job file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldProblem {
    /// The key, dotted from the top of the file.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Every error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
    /// The bad fields of a refused job file (empty otherwise).
    #[serde(default)]
    pub fields: Vec<FieldProblem>,
}

/// Why a submitted job file was refused.
#[derive(Debug)]
pub enum Refusal {
    /// Fields with bad values.
    Fields(Vec<FieldError>),
    /// Anything else (not TOML, not UTF-8, data that cannot be read).
    Other(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Fields(fields) => {
                for (i, e) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Refusal::Other(m) => f.write_str(m),
        }
    }
}

/// Checks a submitted job file and returns the job's name.
pub type Validator = dyn Fn(&str) -> Result<String, Refusal> + Send + Sync;

/// What the admin interface serves from.
pub struct AdminState {
    /// The coordinator's store.
    pub store: Arc<Store>,
    /// The bearer token every request must carry.
    pub token: String,
    /// Checks a job file before it is queued (runs on a blocking thread).
    pub validate: Arc<Validator>,
    /// Bumped when a job is queued or cancelled.
    pub changed: watch::Sender<u64>,
    /// The holders of the jobs run since the coordinator started (the drivers report to
    /// it through [`HolderBoard::job`]).
    pub holders: HolderBoard,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState").finish_non_exhaustive()
    }
}

/// Why the admin interface cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address is not a loopback address.
    #[error("the admin interface listens on loopback only (127.0.0.0/8 or ::1), not {0}")]
    NotLoopback(SocketAddr),
    /// Binding failed.
    #[error("binding the admin interface to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Binds the admin listener: loopback addresses only.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, AdminError> {
    if !addr.ip().is_loopback() {
        return Err(AdminError::NotLoopback(addr));
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AdminError::Bind { addr, source })
}

/// Serves the admin interface on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The routes, behind the token check.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/jobs", get(list).post(submit))
        .route("/api/jobs/{id}", get(status))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/config", get(config))
        .route("/api/jobs/{id}/metrics", get(metrics_json))
        .route("/api/jobs/{id}/metrics.csv", get(metrics_csv))
        .route("/api/jobs/{id}/model", get(model))
        .route("/api/jobs/{id}/transcript", get(transcript))
        .route("/api/jobs/{id}/report", get(report))
        .route("/api/jobs/{id}/plots/rounds.svg", get(rounds_plot))
        .route("/api/jobs/{id}/plots/roc.svg", get(roc_plot))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(Arc::clone(&state), auth))
        .with_state(state)
}

/// Equal bytes, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn auth(
    State(state): State<Arc<AdminState>>,
    Query(q): Query<TokenQuery>,
    req: Request,
    next: Next,
) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let given = bearer.or(q.token.as_deref());
    match given {
        Some(t) if same(t.as_bytes(), state.token.as_bytes()) => next.run(req).await,
        Some(_) => error(StatusCode::UNAUTHORIZED, "wrong admin token"),
        None => error(
            StatusCode::UNAUTHORIZED,
            "the admin interface needs a token: `Authorization: Bearer TOKEN` (the coordinator wrote it to OUT/admin.token)",
        ),
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: msg.into(),
            fields: Vec::new(),
        }),
    )
        .into_response()
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NoSuchJob(id) => error(StatusCode::NOT_FOUND, format!("no job {id}")),
        e @ StoreError::WrongState { .. } => error(StatusCode::CONFLICT, e.to_string()),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Runs a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    state: &Arc<AdminState>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let st = Arc::clone(state);
    tokio::task::spawn_blocking(move || f(&st.store))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(store_error)
}

async fn list(State(state): State<Arc<AdminState>>) -> Response {
    match blocking(&state, |s| s.jobs()).await {
        Ok(mut jobs) => {
            jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
            Json(jobs).into_response()
        }
        Err(r) => r,
    }
}

async fn submit(State(state): State<Arc<AdminState>>, body: String) -> Response {
    let validate = Arc::clone(&state.validate);
    let text = body.clone();
    let verdict = match tokio::task::spawn_blocking(move || validate(&text)).await {
        Ok(v) => v,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let name = match verdict {
        Ok(name) => name,
        Err(Refusal::Fields(fields)) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(ApiError {
                    error: format!("invalid job file ({} field(s))", fields.len()),
                    fields: fields
                        .into_iter()
                        .map(|f| FieldProblem {
                            field: f.field,
                            reason: f.reason,
                        })
                        .collect(),
                }),
            )
                .into_response()
        }
        Err(Refusal::Other(msg)) => {
            return error(StatusCode::BAD_REQUEST, format!("invalid job file: {msg}"))
        }
    };
    let n = name.clone();
    match blocking(&state, move |s| {
        let ahead = s.jobs()?.iter().filter(|j| !j.state.is_terminal()).count();
        Ok((s.submit(&n, body.as_bytes())?, ahead))
    })
    .await
    {
        Ok((id, ahead)) => {
            state.changed.send_modify(|v| *v += 1);
            (StatusCode::CREATED, Json(Submitted { id, name, ahead })).into_response()
        }
        Err(r) => r,
    }
}

/// A job's full status from the store alone (no holders), as [`job_status_with`].
pub fn job_status(store: &Store, id: JobId) -> Result<JobStatus, StoreError> {
    job_status_with(store, None, id)
}

/// A job's full status, as the API and the status page show it, with what `board` saw of
/// its holders. A job that has ended has no round in flight: a round the store still marks
/// as in flight (the job was cancelled or failed during it) is reported as
/// [`JobStatus::interrupted_round`] instead.
pub fn job_status_with(
    store: &Store,
    board: Option<&HolderBoard>,
    id: JobId,
) -> Result<JobStatus, StoreError> {
    let mut info = store.job(id)?;
    let interrupted_round = if info.state.is_terminal() {
        info.in_flight.take()
    } else {
        None
    };
    let plan = artifact(store, id, PLAN)?;
    let audit = artifact(store, id, AUDIT)?;
    let rounds = store
        .rounds::<RoundRecord>(id)?
        .into_iter()
        .map(|r| RoundView {
            round: r.round,
            outcome: r.outcome,
            record: r.record,
        })
        .collect();
    Ok(JobStatus {
        info,
        plan,
        rounds,
        audit,
        interrupted_round,
        live: board.and_then(|b| b.view(id)),
        has_report: store.artifact(id, REPORT)?.is_some(),
    })
}

/// A JSON artifact, decoded.
fn artifact<T: serde::de::DeserializeOwned>(
    store: &Store,
    id: JobId,
    name: &'static str,
) -> Result<Option<T>, StoreError> {
    store
        .artifact(id, name)?
        .map(|b| {
            serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                what: name,
                reason: e.to_string(),
            })
        })
        .transpose()
}

async fn status(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    let board = state.holders.clone();
    match blocking(&state, move |s| job_status_with(s, Some(&board), id)).await {
        Ok(st) => Json(st).into_response(),
        Err(r) => r,
    }
}

async fn cancel(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    match blocking(&state, move |s| s.cancel(id)).await {
        Ok(was) => {
            state.changed.send_modify(|v| *v += 1);
            Json(Cancelled {
                id,
                was: was.name().into(),
            })
            .into_response()
        }
        Err(r) => r,
    }
}

async fn config(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    match blocking(&state, move |s| s.config(id)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/toml")], bytes).into_response(),
        Err(r) => r,
    }
}

fn completed_records(st: &JobStatus) -> Vec<RoundRecord> {
    st.rounds.iter().filter_map(|r| r.record.clone()).collect()
}

async fn metrics_json(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    match blocking(&state, move |s| job_status(s, id)).await {
        Ok(st) => Json(completed_records(&st)).into_response(),
        Err(r) => r,
    }
}

/// The round records as CSV: one line per recorded round. `threshold` is the decision
/// threshold of the test accuracy, precision, recall and F1; a metric a round's record does
/// not hold (a failed round, or PR-AUC and F1 in a record an older build wrote) is an empty
/// cell, as is `epsilon` (a DP job's ε after the round) in a job without DP.
pub fn metrics_csv_text(records: &[RoundRecord]) -> String {
    let mut out = String::from(
        "round,selected,contributors,dropped,train_loss,test_loss,test_accuracy,test_auc,test_pr_auc,test_precision,test_recall,test_f1,threshold,seconds,rss_bytes,failure,epsilon\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in records {
        let failure = r.failure.as_deref().unwrap_or("").replace('"', "'");
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{},\"{}\",{}\n",
            r.round,
            r.selected,
            r.contributors,
            r.dropped.len(),
            opt((!r.train_loss.is_nan()).then_some(r.train_loss)),
            opt(r.test.map(|m| m.loss)),
            opt(r.test.map(|m| m.accuracy)),
            opt(r.test.map(|m| m.auc)),
            opt(r.test.and_then(|m| m.pr_auc)),
            opt(r.test.and_then(|m| m.precision)),
            opt(r.test.and_then(|m| m.recall)),
            opt(r.test.and_then(|m| m.f1)),
            opt(r.test.map(|m| m.threshold)),
            r.seconds,
            r.rss_bytes.map(|b| b.to_string()).unwrap_or_default(),
            failure,
            opt(r.epsilon),
        ));
    }
    out
}

async fn metrics_csv(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    match blocking(&state, move |s| job_status(s, id)).await {
        Ok(st) => (
            [(header::CONTENT_TYPE, "text/csv")],
            metrics_csv_text(&completed_records(&st)),
        )
            .into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct RoundQuery {
    round: Option<u32>,
}

async fn model(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<JobId>,
    Query(q): Query<RoundQuery>,
) -> Response {
    let got = blocking(&state, move |s| {
        let info = s.job(id)?;
        let plan: Option<JobPlan> = artifact(s, id, PLAN)?;
        let round = q.round.or(info.last_completed).unwrap_or(0);
        Ok((plan, round, s.model(id, round)?))
    })
    .await;
    match got {
        Ok((Some(plan), round, Some(params))) => {
            match to_safetensors(&plan.model, plan.data.as_ref(), &params) {
                Ok(bytes) => (
                    [
                        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                        // A browser following the status page's link saves it under this name.
                        (
                            header::CONTENT_DISPOSITION,
                            format!(
                                "attachment; filename=\"job-{id}-round-{round:03}.safetensors\""
                            ),
                        ),
                    ],
                    bytes,
                )
                    .into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Ok((None, _, _)) => error(StatusCode::NOT_FOUND, format!("job {id} has not started")),
        Ok((_, round, None)) => error(
            StatusCode::NOT_FOUND,
            format!("job {id} has no model for round {round} (not completed)"),
        ),
        Err(r) => r,
    }
}

async fn transcript(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    match blocking(&state, move |s| transcript_of(s, id)).await {
        Ok(t) if t.records.is_empty() => error(
            StatusCode::NOT_FOUND,
            format!("job {id} has no transcript (only proven jobs keep one)"),
        ),
        Ok(t) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            t.to_bytes(),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn report(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    match blocking(&state, move |s| s.artifact(id, REPORT)).await {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("job {id} has no report yet (written when it ends)"),
        ),
        Err(r) => r,
    }
}

async fn page(State(state): State<Arc<AdminState>>) -> Response {
    let board = state.holders.clone();
    let got = blocking(&state, move |s| {
        let mut jobs = s.jobs()?;
        jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
        jobs.iter()
            .map(|j| job_status_with(s, Some(&board), j.id))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    match got {
        Ok(jobs) => {
            // The page's links carry the token as the page was reached with it.
            let mut page = Html(status_page::render(&jobs, &state.token)).into_response();
            page.headers_mut().insert(
                header::REFERRER_POLICY,
                header::HeaderValue::from_static("no-referrer"),
            );
            page
        }
        Err(r) => r,
    }
}

async fn rounds_plot(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    let got = blocking(&state, move |s| {
        let st = job_status(s, id)?;
        let report: Option<JobReport> = artifact(s, id, REPORT)?;
        Ok((st, report))
    })
    .await;
    match got {
        Ok((st, report)) => svg(status_page::rounds_svg(&st, report.as_ref())),
        Err(r) => r,
    }
}

async fn roc_plot(State(state): State<Arc<AdminState>>, Path(id): Path<JobId>) -> Response {
    match blocking(&state, move |s| artifact::<JobReport>(s, id, REPORT)).await {
        Ok(Some(report)) if report.roc.is_empty() => error(
            StatusCode::NOT_FOUND,
            format!(
                "job {id} has {} classes: no ROC (its report lists each class's AUC)",
                report.classes.len()
            ),
        ),
        Ok(Some(report)) => svg(status_page::roc_svg(id, &report)),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("job {id} has no ROC yet (its report is written when it ends)"),
        ),
        Err(r) => r,
    }
}

fn svg(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn csv_has_a_line_per_round_and_empty_cells_for_a_failed_one() {
        let ok = RoundRecord {
            round: 1,
            selected: 3,
            contributors: 3,
            dropped: vec![],
            train_loss: 0.5,
            test: Some(Metrics {
                loss: 0.4,
                accuracy: 0.9,
                auc: 0.8,
                pr_auc: Some(0.7),
                threshold: 0.3,
                precision: Some(0.6),
                recall: Some(0.5),
                f1: Some(0.25),
            }),
            seconds: 1.0,
            failure: None,
            verify_seconds: None,
            rss_bytes: Some(1024),
            epsilon: None,
        };
        // A round an older build recorded: no PR-AUC, precision, recall or F1.
        let older = RoundRecord {
            round: 3,
            test: Some(Metrics {
                loss: 0.4,
                accuracy: 0.9,
                auc: 0.8,
                ..Metrics::default()
            }),
            ..ok.clone()
        };
        let failed = RoundRecord {
            round: 2,
            contributors: 0,
            dropped: vec![(1, "gone".into())],
            train_loss: f64::NAN,
            test: None,
            failure: Some("too \"few\"".into()),
            rss_bytes: None,
            epsilon: Some(2.5),
            ..ok.clone()
        };
        let csv = metrics_csv_text(&[ok, failed, older]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        let columns = lines[0].split(',').count();
        assert!(
            lines.iter().all(|l| l.split(',').count() == columns),
            "{csv}"
        );
        assert_eq!(
            lines[1],
            "1,3,3,0,0.5,0.4,0.9,0.8,0.7,0.6,0.5,0.25,0.3,1.000,1024,\"\","
        );
        assert_eq!(lines[2], "2,3,0,1,,,,,,,,,,1.000,,\"too 'few'\",2.5");
        assert_eq!(lines[3], "3,3,3,0,0.5,0.4,0.9,0.8,,,,,0.5,1.000,1024,\"\",");
    }

    #[test]
    fn the_board_follows_each_holder_through_the_job() {
        let board = HolderBoard::default();
        let h = board.job(7);
        h.connected(0, &[0xaa; 32]);
        h.connected(1, &[0xbb; 32]);
        h.connected(2, &[0xcc; 32]);
        h.joined(0, "alice", 100);
        h.joined(1, "bob\u{1b}[31m\nforged line", 200);
        h.joined(2, "carol", 300);
        let v = board.view(7).expect("the job is on the board");
        assert_eq!(v.holders.len(), 3);
        assert_eq!(
            v.holders[0].identity.as_deref(),
            Some("aa".repeat(32).as_str())
        );
        assert_eq!(v.holders[1].name, "bob?[31m?forged line", "made printable");
        assert_eq!(v.holders[1].rows, 200);
        assert!(v.holders.iter().all(|h| h.state == HolderState::Joined));

        h.round_started(1, &[0, 1, 2]);
        h.phase(1, "masked input", 2.5);
        let v = board.view(7).expect("board");
        assert!(v
            .holders
            .iter()
            .all(|h| h.state == HolderState::Training { round: 1 }));
        h.round_ended(1, &[0, 1], &[(2, "timed out".into())]);
        let v = board.view(7).expect("board");
        assert_eq!(v.holders[0].state, HolderState::Answered { round: 1 });
        assert_eq!(v.holders[0].rounds_answered, 1);
        assert_eq!(
            v.holders[2].state,
            HolderState::Dropped {
                round: 1,
                reason: "timed out".into()
            }
        );
        assert_eq!(v.phases.len(), 1);

        // A round that fails as a whole: who was not dropped answered.
        h.round_started(2, &[0, 1]);
        h.round_ended(2, &[], &[(1, "left".into())]);
        let v = board.view(7).expect("board");
        assert_eq!(v.holders[0].state, HolderState::Answered { round: 2 });
        assert_eq!(
            v.holders[0].rounds_answered, 1,
            "nothing of it was aggregated"
        );

        // Bob's connection drops; he comes back on a new one with the same key.
        h.left(1, Some("connection lost: timed out"));
        assert_eq!(
            board.view(7).expect("board").holders[1].state,
            HolderState::Left {
                reason: Some("connection lost: timed out".into())
            }
        );
        h.connected(9, &[0xbb; 32]);
        h.joined(9, "bob", 200);
        let v = board.view(7).expect("board");
        assert_eq!(v.holders.len(), 3, "the same holder, not a new one");
        assert_eq!(v.holders[1].participant, 9);
        assert_eq!(v.holders[1].state, HolderState::Joined);
        // His old id no longer moves him.
        h.round_started(3, &[1]);
        assert_eq!(
            board.view(7).expect("board").holders[1].state,
            HolderState::Joined
        );

        h.declined(2, None, "carol", "no column \"FLAG\"\r");
        h.left(2, None);
        assert_eq!(
            board.view(7).expect("board").holders[2].state,
            HolderState::Declined {
                reason: "no column \"FLAG\"?".into()
            },
            "a holder that declined keeps saying why"
        );
        // A holder that could not prepare the data before it ever joined is listed too.
        h.connected(5, &[0xdd; 32]);
        h.declined(5, Some([0xdd; 32]), "dan\u{7}", "label column missing");
        let v = board.view(7).expect("board");
        assert_eq!(v.holders.len(), 4);
        assert_eq!(v.holders[3].name, "dan?");
        assert_eq!(
            v.holders[3].identity.as_deref(),
            Some("dd".repeat(32).as_str())
        );
        assert_eq!(
            v.holders[3].state.to_string(),
            "declined: label column missing"
        );

        // The job is cancelled during round 4: nobody is left training in it.
        h.round_started(4, &[0, 9]);
        h.ended("the job stopped");
        let v = board.view(7).expect("board");
        assert!(v
            .holders
            .iter()
            .all(|h| !matches!(h.state, HolderState::Training { .. })));
        assert_eq!(
            v.holders[0].state.to_string(),
            "left: the job stopped during round 4"
        );
        // A job the board never saw.
        assert!(board.view(8).is_none());
    }

    #[test]
    fn each_holder_state_says_what_it_is() {
        let cases = [
            (HolderState::Joined, "joined", "joined"),
            (
                HolderState::Training { round: 2 },
                "training",
                "training (round 2)",
            ),
            (
                HolderState::Answered { round: 2 },
                "answered",
                "answered (round 2)",
            ),
            (
                HolderState::Dropped {
                    round: 3,
                    reason: "timed out".into(),
                },
                "dropped",
                "dropped from round 3: timed out",
            ),
            (
                HolderState::Declined {
                    reason: "no column FLAG".into(),
                },
                "declined",
                "declined: no column FLAG",
            ),
            (HolderState::Left { reason: None }, "left", "left"),
            (
                HolderState::Left {
                    reason: Some("reset".into()),
                },
                "left",
                "left: reset",
            ),
        ];
        for (state, name, shown) in cases {
            assert_eq!(state.name(), name);
            assert_eq!(state.to_string(), shown);
            let json = serde_json::to_string(&state).expect("json");
            assert!(json.contains(&format!("\"kind\":\"{name}\"")), "{json}");
            assert_eq!(
                serde_json::from_str::<HolderState>(&json).expect("back"),
                state
            );
        }
    }

    #[test]
    fn the_board_keeps_the_latest_jobs() {
        let board = HolderBoard::default();
        for id in 1..=(MAX_JOBS_KEPT as u64 + 3) {
            board.job(id).connected(0, &[1; 32]);
        }
        assert!(board.view(1).is_none());
        assert!(board.view(MAX_JOBS_KEPT as u64 + 3).is_some());
    }

    fn store_with_a_round_in_flight(dir: &std::path::Path) -> (Store, JobId) {
        use cairn_protocol::server_opt::{ServerOptState, ServerOptimizer};
        let store = Store::open(dir.join("cairn.redb")).expect("store");
        let id = store.submit("fraud", b"name = \"fraud\"").expect("submit");
        let model = vec![0.0f32; 5];
        let opt = ServerOptState::new(ServerOptimizer::FedAvg { lr: 1.0 }, model.len())
            .expect("optimiser");
        store.start_job(id, &model, &opt).expect("start");
        store.begin_round(id, 1).expect("round 1");
        (store, id)
    }

    #[test]
    fn a_cancelled_job_has_no_round_in_flight() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, id) = store_with_a_round_in_flight(dir.path());
        let running = job_status(&store, id).expect("status");
        assert_eq!(running.info.in_flight, Some(1));
        assert_eq!(running.round_in_flight(), Some(1));
        assert_eq!(running.interrupted_round, None);

        store.cancel(id).expect("cancel");
        let cancelled = job_status(&store, id).expect("status");
        assert_eq!(cancelled.info.state, crate::store::JobState::Cancelled);
        assert_eq!(
            cancelled.info.in_flight, None,
            "the API reports none in flight"
        );
        assert_eq!(cancelled.round_in_flight(), None);
        assert_eq!(cancelled.interrupted_round, Some(1));
        let json = serde_json::to_value(&cancelled).expect("json");
        assert_eq!(json["info"]["in_flight"], serde_json::Value::Null);
        assert_eq!(json["interrupted_round"], 1);
        let page = status_page::render(&[cancelled], "token");
        assert!(!page.contains("in flight"), "{page}");
        assert!(page.contains("stopped during round 1"));
    }

    #[test]
    fn a_failed_job_has_no_round_in_flight_either() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, id) = store_with_a_round_in_flight(dir.path());
        store.fail(id, "the data went away").expect("fail");
        let st = job_status(&store, id).expect("status");
        assert_eq!((st.info.in_flight, st.interrupted_round), (None, Some(1)));
    }

    #[test]
    fn settings_of_a_job_config_name_k_and_t() {
        let config = |extra: &str| {
            let text = format!(
                "name = \"j\"\nrounds = 3\n[data]\nsynthetic = true\n[participants]\nper_round = 5\nmin = 3\n\
                 [train]\nsteps = 10\nbatch = 32\nlr = 0.5\nclip = 2.0\n\
                 [deadlines]\nround_timeout_secs = 60\njoin_timeout_secs = 120\n{extra}"
            );
            crate::job_file::JobFile::from_toml(&text)
                .expect("a job file")
                .to_config("j", 4, 2)
                .expect("its configuration")
                .config
        };
        let cfg = config("[aggregation]\nmode = \"secure\"\n");
        let s = JobSettings::of(&cfg);
        // δ = 0.2, γ = 0.1 at n = 5: (k, t) = (4, 3), as SecureSettings documents.
        assert_eq!(
            s.aggregation,
            AggregationSettings::Secure {
                dropout: 0.2,
                corruption: 0.1,
                scale_bits: 16,
                k: Some(4),
                t: Some(3),
            }
        );
        assert_eq!(s.proofs, None);
        assert_eq!((s.local_steps, s.batch_size), (10, 32));
        assert_eq!(s.round_timeout_secs, 60.0);
        let plain = JobSettings::of(&config("[aggregation]\nmode = \"plain\"\n"));
        assert_eq!(plain.aggregation, AggregationSettings::Plain);
        // A plan stored before settings were recorded still reads.
        let old = r#"{"job_id":"j","model":{"n_features":4,"hidden":[]},"rounds":1,"participants":3,
            "min_participants":2,"server":"fedavg","aggregation":"plain","proofs":false,"test_rows":9}"#;
        let plan: JobPlan = serde_json::from_str(old).expect("an old plan");
        assert_eq!(plan.settings, None);
    }

    #[tokio::test]
    async fn only_loopback_addresses_are_bound() {
        let e = bind("0.0.0.0:0".parse().expect("addr"))
            .await
            .expect_err("refused");
        assert!(matches!(e, AdminError::NotLoopback(_)), "{e}");
        assert!(bind("127.0.0.1:0".parse().expect("addr")).await.is_ok());
    }
}

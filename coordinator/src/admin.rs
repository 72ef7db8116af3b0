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
//!
//! The job logic stays with the caller: [`AdminState::validate`] checks a job file against
//! the coordinator's data before it is queued, and [`AdminState::changed`] wakes the runner
//! when a job is queued or cancelled.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use cairn_protocol::metrics::Metrics;
use cairn_protocol::model::ModelSpec;

use crate::export::to_safetensors;
use crate::job_file::FieldError;
use crate::persist::transcript_of;
use crate::progress::RoundRecord;
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
}

/// A job's final evaluation on the coordinator's test split, stored when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The final federated model.
    pub federated: Metrics,
    /// ROC points (false-positive rate, true-positive rate) of the federated model.
    pub roc: Vec<(f64, f64)>,
    /// A centralised model trained on the coordinator's training split with the same
    /// budget, when the coordinator has one.
    pub centralised: Option<Metrics>,
    /// Its ROC points.
    pub centralised_roc: Option<Vec<(f64, f64)>>,
    /// Rows of the test split.
    pub test_rows: usize,
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

/// A job's full status, as the API and the status page show it.
pub fn job_status(store: &Store, id: JobId) -> Result<JobStatus, StoreError> {
    let info = store.job(id)?;
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
    match blocking(&state, move |s| job_status(s, id)).await {
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

/// The round records as CSV: one line per recorded round.
pub fn metrics_csv_text(records: &[RoundRecord]) -> String {
    let mut out = String::from(
        "round,selected,contributors,dropped,train_loss,test_loss,test_accuracy,test_auc,seconds,rss_bytes,failure\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in records {
        let failure = r.failure.as_deref().unwrap_or("").replace('"', "'");
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{:.3},{},\"{}\"\n",
            r.round,
            r.selected,
            r.contributors,
            r.dropped.len(),
            opt((!r.train_loss.is_nan()).then_some(r.train_loss)),
            opt(r.test.map(|m| m.loss)),
            opt(r.test.map(|m| m.accuracy)),
            opt(r.test.map(|m| m.auc)),
            r.seconds,
            r.rss_bytes.map(|b| b.to_string()).unwrap_or_default(),
            failure
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
        Ok((Some(plan), _, Some(params))) => match to_safetensors(&plan.model, &params) {
            Ok(bytes) => {
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
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
    let got = blocking(&state, |s| {
        let mut jobs = s.jobs()?;
        jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
        jobs.iter()
            .map(|j| job_status(s, j.id))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    match got {
        Ok(jobs) => Html(status_page::render(&jobs)).into_response(),
        Err(r) => r,
    }
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
            }),
            seconds: 1.0,
            failure: None,
            verify_seconds: None,
            rss_bytes: Some(1024),
        };
        let failed = RoundRecord {
            round: 2,
            contributors: 0,
            dropped: vec![(1, "gone".into())],
            train_loss: f64::NAN,
            test: None,
            failure: Some("too \"few\"".into()),
            rss_bytes: None,
            ..ok.clone()
        };
        let csv = metrics_csv_text(&[ok, failed]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "1,3,3,0,0.5,0.4,0.9,0.8,1.000,1024,\"\"");
        assert_eq!(lines[2], "2,3,0,1,,,,,1.000,,\"too 'few'\"");
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

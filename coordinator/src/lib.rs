//! The cairn coordinator: drives a [`cairn_protocol::job::Job`] over QUIC, evaluates each
//! new global model on the test split, and exports the model and metrics.
//!
//! - [`server`]: the QUIC driver, `run_job(endpoint, job, …, shutdown)`, a thin loop
//!   around the sans-IO job state machine.
//! - [`progress`]: the per-round records the driver reports.
//! - [`rss`]: the process's resident memory, for the memory-across-rounds report.
//! - [`audit`]: re-checking a proven job from its transcript alone.
//! - [`export`]: the model as safetensors, metrics as JSON.
//! - [`job_file`]: the TOML job file a researcher submits, validated, into a `JobConfig`.
//! - [`transcript`]: recording a proven job's hash-chained transcript from its events.
//! - [`admin`]: the admin HTTP interface (job commands, loopback only, token) and
//!   [`status_page`], the read-only page it serves.
//! - [`store`]: the durable state (jobs, rounds, models, optimiser states, transcripts) in
//!   an embedded database, committed a whole round at a time.

pub mod admin;
pub mod audit;
pub mod cpu;
pub mod export;
pub mod job_file;
pub mod persist;
pub mod progress;
pub mod rss;
pub mod server;
pub mod status_page;
pub mod store;
pub mod transcript;

pub use progress::{JobSummary, PhaseRecord, PrivacySpent, Progress, RoundRecord};
pub use server::{run_job, run_job_with, CoordinatorError, CpuMeter, RunOptions, Stop};

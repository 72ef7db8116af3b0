//! The `cairn` command's library: argument types and the commands themselves, so tests
//! and benches can run the same code the binary runs.
//!
//! - [`options`]: data and training options (flags and TOML).
//! - [`federate`]: a whole federated job on loopback, and the centralised baseline.
//! - [`audit`]: `cairn audit` of a proven job's transcript.
//! - [`demo`]: `cairn demo`.
//! - [`export_verifier`]: `cairn export-verifier` (snarkjs JSON, Solidity verifier).
//! - [`jobs`]: `cairn job` (submit, list, status, watch, cancel, pull, plot) over the admin
//!   interface.
//! - [`keygen`]: `cairn keygen` (proof keys per job shape, identity keys).
//! - [`nodes`]: `cairn coordinator` and `cairn participant` as separate processes.
//! - [`service`]: the coordinator as a durable service: its queue of jobs, resuming after a
//!   restart, the admin interface.
//! - [`ui`]: progress bar and per-round lines.
//! - [`plot`]: PNG plots (loss/AUC per round, ROC curves) with an embedded font.

pub mod audit;
pub mod demo;
pub mod evaluation;
pub mod export_verifier;
pub mod federate;
pub mod jobs;
pub mod keygen;
pub mod nodes;
pub mod options;
pub mod plot;
pub mod predict;
pub mod service;
pub mod simulate;
pub mod ui;

//! Wire messages and sans-IO round state machines shared by the cairn coordinator and
//! its participants.
//!
//! Nothing here touches a socket, a clock or an OS random source: time comes in as
//! `Instant` arguments and randomness as seeds, so a whole job can be driven in memory by
//! tests (as `quinn-proto` is). The QUIC drivers in `coordinator` and `participant` are thin
//! loops around [`job::Job`] and [`client::Client`].
//!
//! - [`model`] and [`sampling`] (re-exported from `cairn-model`): the model's shape and
//!   flat parameter layout, the reference forward pass; which rows a participant trains on.
//! - [`challenge`] (re-exported from `cairn-proofs`, with the proof payloads the wire
//!   carries): the sampled-step challenge.
//! - [`randomness`]: the job's public randomness, by commit-reveal among its holders.
//! - [`wire`]: the versioned, size-limited messages.
//! - [`round`], [`secure_round`], [`job`]: the coordinator's round (plain FedAvg or
//!   secure aggregation) and job state machines; [`round_common`]: what the two round
//!   machines share (their state's core and the driver's accessors).
//! - [`work`]: the heavy work the job hands its driver (proof checks, mask removal, the
//!   aggregate check), run off the event loop.
//! - [`client`], [`secure_client`]: the participant's state machine and its
//!   secure-aggregation phases.
//! - [`privacy`]: distributed differential privacy in a secure round (what a holder masks,
//!   how the coordinator reads the noisy sum).
//! - [`metrics`]: log loss, accuracy, AUC, ROC.
//! - [`server_opt`]: the server optimisers (FedAvg, FedAdam, FedYogi) and their state.
//! - [`transcript`]: the hash-chained transcript of a proven job, for `cairn audit`.
//! - [`enrolment`]: identity keys, the allow-list, and reading a participant's key out of
//!   its TLS certificate.
//! - `transport` (feature `transport`): QUIC with mutual TLS 1.3, frame I/O.

pub mod client;
pub mod enrolment;
pub mod job;
pub mod metrics;
pub mod privacy;
pub mod randomness;
pub mod round;
pub mod round_common;
pub mod secure_client;
pub mod secure_round;
pub mod server_opt;
pub mod transcript;
#[cfg(feature = "transport")]
pub mod transport;
pub mod wire;
pub mod work;

pub use cairn_model as model;
pub use cairn_model::sampling;
pub use cairn_proofs::challenge;

//! The proof of a cairn round: the glue between the circuits (`cairn-circuits`, which know
//! no message, job or round) and the protocol (`cairn-protocol`, whose messages and state
//! machines carry these types).
//!
//! - [`spec`]: the proof settings a job announces ([`spec::ProofSpec`], with the one check
//!   of their rules), a holder's dataset commitment, the commitment and proof beside each
//!   masked input.
//! - [`challenge`]: the sampled-step challenge (which of its K steps a holder proves).
//! - [`statement`]: a round's public facts ([`statement::RoundStatement`]), one proof to
//!   check ([`statement::ProofCheck`]) and what a proven round yields
//!   ([`statement::ProvenSum`]).
//! - [`rounds`]: the one place a round becomes a circuit shape and statement: the
//!   participant proves with [`rounds::prove_update`], the coordinator and the auditor
//!   check with [`rounds::verify_check`] and [`rounds::check_sum`].
//! - [`noise`]: a proven DP job's noise: the circuit's constants from the job's Skellam
//!   parameters, the round's rotation signs, a holder's noise seed and its commitment.
//! - [`verify`]: the coordinator's job verifier (a prepared key, statements shared per
//!   round) and the aggregate check with cached generators.
//! - [`error`]: [`ProofError`], every reason a proof or check fails.

// Tests unwrap freely: a panic there is a failing test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod challenge;
pub mod error;
pub mod noise;
pub mod rounds;
pub mod spec;
pub mod statement;
pub mod verify;

pub use error::ProofError;

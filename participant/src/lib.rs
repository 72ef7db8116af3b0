//! The cairn data holder: enrolment, local training, masking and proving, and the QUIC
//! driver that takes part in rounds.
//!
//! [`trainer`] runs a round's local SGD steps, with libtorch ([`trainer::TchTrainer`],
//! on the GPU where there is one) or in plain Rust ([`trainer::NativeTrainer`]).

pub mod data;
pub mod driver;
pub mod trainer;

pub use data::HolderData;
pub use driver::{
    run, FaultAction, FaultHook, ParticipantConfig, ParticipantError, ParticipantSummary, Prover,
    TrainedRound, UpdateProver,
};

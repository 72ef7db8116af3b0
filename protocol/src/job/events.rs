//! What the job hands its driver: messages to send and events to record.

use super::*;

/// What the driver should send: a message, and whether to close the connection after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// Recipient.
    pub to: ParticipantId,
    /// Message.
    pub msg: ToParticipant,
    /// Close the connection once sent.
    pub close: bool,
}

/// What happened, for the driver's logs, metrics and persistence.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEvent {
    /// A participant was admitted.
    Joined {
        /// Its id.
        participant: ParticipantId,
        /// Its display name.
        name: String,
        /// Its row count.
        n_rows: u64,
    },
    /// A holder could not prepare its table for the job, and said why.
    Declined {
        /// Its connection's id.
        participant: ParticipantId,
        /// Its identity key (of its TLS certificate).
        identity: Option<IdentityPublic>,
        /// Its display name (printable, at most [`MAX_NAME_BYTES`] bytes).
        name: String,
        /// Its reason (printable, at most [`wire::MAX_REASON_BYTES`] bytes).
        reason: String,
    },
    /// A participant was refused admission.
    Refused {
        /// Its id.
        participant: ParticipantId,
        /// Why.
        reason: String,
    },
    /// A participant committed to its dataset (proven jobs).
    Enrolled {
        /// Its id.
        participant: ParticipantId,
        /// Its identity key.
        identity: IdentityPublic,
        /// The signed commitment.
        dataset: DatasetCommitment,
    },
    /// Every holder of the roster revealed its contribution: the job's randomness, which
    /// the transcript records (once; a resumed job keeps it).
    Randomness {
        /// The contributions, sorted by identity key.
        contributions: Vec<Contribution>,
    },
    /// A round began.
    RoundStarted {
        /// Round number.
        round: u32,
        /// Selected participants.
        participants: Vec<ParticipantId>,
        /// The seed fixing each participant's rows.
        round_seed: [u8; 32],
    },
    /// A round completed and its update was applied.
    RoundCompleted {
        /// Round number.
        round: u32,
        /// The aggregate.
        aggregate: Aggregate,
        /// Who was dropped and why.
        dropped: Vec<(ParticipantId, DropReason)>,
        /// The new global model.
        model: Vec<f32>,
        /// The server optimiser's state after this round's step (what a resumed job
        /// continues from).
        opt_state: Box<ServerOptState>,
    },
    /// A round failed; nothing was applied.
    RoundFailed {
        /// Round number.
        round: u32,
        /// Human-readable reason.
        reason: String,
        /// Who was dropped and why.
        dropped: Vec<(ParticipantId, DropReason)>,
    },
    /// A phase of a secure round closed (for per-phase metrics; nothing to record).
    PhaseClosed(crate::secure_round::PhaseClosed),
    /// A proven job's rounds are over: the driver appends nothing more to the transcript
    /// and hands its head to [`Job::seal`] for the holders to countersign.
    Sealing {
        /// The last round begun.
        last_round: u32,
        /// Completed rounds.
        rounds_completed: u32,
    },
    /// The job is over.
    Finished {
        /// Completed rounds.
        rounds_completed: u32,
        /// The last round begun (0 when none was).
        last_round: u32,
        /// Set when the job ended early.
        error: Option<String>,
        /// Proven jobs: the holders' valid countersignatures on the transcript head.
        countersignatures: Vec<(IdentityPublic, Signature)>,
    },
}

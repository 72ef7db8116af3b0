//! The store's public types: job states and status, round records, what a commit takes
//! and what a resume gives, and the errors.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use cairn_protocol::server_opt::ServerOptState;

#[cfg(doc)]
use super::Store;

/// A job's id: assigned by [`Store::submit`], increasing from 1.
pub type JobId = u64;

/// A transcript head: the hash at the end of the job's hash-chained transcript.
pub type TranscriptHead = [u8; 32];

/// Where a job is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting in the queue.
    Queued,
    /// Started; rounds are being run (or will be, after a restart).
    Running,
    /// All its rounds ran.
    Finished,
    /// It stopped early, for this reason.
    Failed(String),
    /// A researcher or operator cancelled it.
    Cancelled,
}

impl JobState {
    /// True for a state no job leaves (finished, failed, cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Failed(_) | JobState::Cancelled
        )
    }

    /// The state's name: `queued`, `running`, `finished`, `failed`, `cancelled`.
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Failed(_) => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobState::Failed(reason) => write!(f, "failed: {reason}"),
            other => f.write_str(other.name()),
        }
    }
}

/// What the store knows of a job (its status).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's id.
    pub id: JobId,
    /// A display name given at submission.
    pub name: String,
    /// Where it is in its life.
    pub state: JobState,
    /// Submission time, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Time of the last change, milliseconds since the Unix epoch.
    pub updated_unix_ms: u64,
    /// Parameters of the model (set when the job starts).
    pub params: Option<usize>,
    /// Rounds that completed (their update applied).
    pub rounds_completed: u32,
    /// Rounds that failed or were abandoned (nothing applied).
    pub rounds_failed: u32,
    /// The last completed round, if any.
    pub last_completed: Option<u32>,
    /// The least round number not yet used: every round recorded is below it.
    pub next_round: u32,
    /// The round begun and not yet recorded, if any (after a crash: the round to abandon).
    pub in_flight: Option<u32>,
    /// Transcript entries so far; the next entry gets this sequence number.
    pub transcript_len: u64,
    /// The transcript head after the last recorded round (zeros before any).
    pub transcript_head: TranscriptHead,
}

/// How a recorded round ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoundOutcome {
    /// Its update was applied: the store holds its model and optimiser state.
    Completed,
    /// It failed (too few valid updates); nothing was applied.
    Failed,
    /// It was in flight when the coordinator stopped; nothing was applied.
    Abandoned,
}

/// One recorded round as stored (the record still encoded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct RoundRow {
    pub(super) outcome: RoundOutcome,
    pub(super) record: Option<Vec<u8>>,
    pub(super) transcript_start: u64,
    pub(super) transcript_end: u64,
    pub(super) transcript_head: TranscriptHead,
    pub(super) committed_unix_ms: u64,
}

/// One recorded round, as [`Store::rounds`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundEntry<R> {
    /// Round number.
    pub round: u32,
    /// How it ended.
    pub outcome: RoundOutcome,
    /// The caller's record (metrics, participants, …); `None` for an abandoned round.
    pub record: Option<R>,
    /// The sequence numbers of the transcript entries it appended.
    pub transcript: Range<u64>,
    /// The transcript head after it.
    pub transcript_head: TranscriptHead,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub committed_unix_ms: u64,
}

/// A completed round's results, for [`Store::commit_round`].
#[derive(Debug)]
pub struct RoundCommit<'a, R> {
    /// Round number: above every round recorded for the job.
    pub round: u32,
    /// The caller's record of the round (metrics, participants, dropped, …).
    pub record: &'a R,
    /// The new global model.
    pub model: &'a [f32],
    /// The server optimiser's state after applying this round's update.
    pub opt_state: &'a ServerOptState,
    /// Transcript entries of this round, in order; they get the next sequence numbers.
    pub transcript: &'a [Vec<u8>],
    /// The transcript head after these entries.
    pub transcript_head: TranscriptHead,
}

impl<R> Clone for RoundCommit<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for RoundCommit<'_, R> {}

/// Where to continue a job from, as [`Store::resume`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Resume {
    /// The job's status.
    pub info: JobInfo,
    /// The last completed round (`None`: no round completed, `model` is the initial one).
    pub last_completed: Option<u32>,
    /// The number to give the next round.
    pub next_round: u32,
    /// The model after the last completed round.
    pub model: Vec<f32>,
    /// The optimiser state after the last completed round.
    pub opt_state: ServerOptState,
    /// Transcript entries stored: the next entry's sequence number.
    pub transcript_len: u64,
    /// The transcript head after the last recorded round.
    pub transcript_head: TranscriptHead,
    /// A round that was begun and never recorded: abandon it ([`Store::abandon_in_flight`])
    /// before running the next.
    pub in_flight: Option<u32>,
}

/// Why a store operation failed. Nothing was changed by a failed call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error (I/O, corruption, locked by another process).
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// A value could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why.
        source: bincode::error::EncodeError,
    },
    /// A stored value could not be read back.
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// No job has this id.
    #[error("no job {0}")]
    NoSuchJob(JobId),
    /// The job is not in a state that allows the operation.
    #[error("job {job} is {state}: cannot {action}")]
    WrongState {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
        /// What was attempted.
        action: &'static str,
    },
    /// Another job is running (jobs run one after another).
    #[error("job {running} is running: it must end before job {job} starts")]
    Busy {
        /// The job asked to start.
        job: JobId,
        /// The job running.
        running: JobId,
    },
    /// The round number is already used (recorded, or below a recorded round).
    #[error("round {round} of job {job} is already recorded (the next round is {next})")]
    RoundAlreadyRecorded {
        /// The job.
        job: JobId,
        /// The round offered.
        round: u32,
        /// The least unused round number.
        next: u32,
    },
    /// Another round is in flight.
    #[error("round {in_flight} of job {job} is in flight, not round {round}")]
    InFlight {
        /// The job.
        job: JobId,
        /// The round in flight.
        in_flight: u32,
        /// The round offered.
        round: u32,
    },
    /// The model or optimiser state does not have the job's number of parameters.
    #[error("{what} has {got} parameters, job {job} has {want}")]
    Length {
        /// The job.
        job: JobId,
        /// `model` or `optimiser state`.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The job's.
        want: usize,
    },
    /// The store was opened read-only ([`Store::open_read_only`]).
    #[error("the store is open read-only")]
    ReadOnly,
    /// A failure injected by a test between the writes of a transaction.
    #[cfg(test)]
    #[error("injected failure at {0}")]
    Injected(&'static str),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

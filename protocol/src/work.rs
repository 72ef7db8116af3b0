//! The heavy work a job hands its driver: a state machine never verifies a proof, removes
//! masks or checks an aggregate commitment inside `handle_frame`; it queues the work
//! ([`crate::job::Job::poll_work`]) for the driver to run off its event loop (a blocking
//! thread), and the driver answers with the [`Done`] that [`Work::run`] returns
//! ([`crate::job::Job::handle_done`]). A driver keeps one [`Verifier`] and one
//! [`SumChecker`] per job, so the key is prepared and the Pedersen generators are made once.

use cairn_proofs::statement::{ProofCheck, ProvenSum};
use cairn_proofs::verify::{SumChecker, Verifier};
use cairn_proofs::ProofError;

use crate::round::ParticipantId;
use crate::secure_round::{UnmaskWork, Unmasked};

/// One piece of heavy work for the driver.
#[derive(Debug)]
pub enum Work {
    /// Verify a holder's proof (≈ 1–2 ms of pairings); its masked input waits for the verdict.
    Verify(ProofCheck),
    /// Remove the masks of a round whose unmask answers are all in.
    Unmask(UnmaskWork),
    /// Check a proven round's aggregate (Σ C_u = commit(S, R)) before its update is applied.
    SumCheck(SumCheck),
}

/// A proven round's aggregate, to check before the job applies it.
#[derive(Debug)]
pub struct SumCheck {
    /// The round.
    pub round: u32,
    /// The exact sums, the survivors' commitments and proofs.
    pub sum: ProvenSum,
}

/// The answer to a [`Work`], for [`crate::job::Job::handle_done`].
#[derive(Debug)]
pub enum Done {
    /// A proof's verdict.
    Verdict {
        /// The round.
        round: u32,
        /// The prover.
        participant: ParticipantId,
        /// `Ok` admits its masked input; `Err` drops it with the reason.
        result: Result<(), ProofError>,
    },
    /// A round's unmasked sum.
    Unmasked(Unmasked),
    /// A proven round's aggregate check.
    SumChecked {
        /// The round.
        round: u32,
        /// `Ok` applies the round; `Err` fails it, nothing applied.
        result: Result<(), ProofError>,
    },
}

impl Work {
    /// Runs the work (blocking: call it on a blocking thread). `verifier` is the job's
    /// (a job that proves nothing hands out no proof to verify; without one a proof is
    /// refused), `sums` its aggregate checker, and `threads` the threads mask removal may
    /// use.
    pub fn run(self, verifier: Option<&Verifier>, sums: &SumChecker, threads: usize) -> Done {
        match self {
            Work::Verify(check) => Done::Verdict {
                round: check.statement.round,
                participant: check.participant,
                result: verifier.map_or_else(
                    || Err(ProofError::Verifier("the job has no verifying key".into())),
                    |v| v.check(&check),
                ),
            },
            Work::Unmask(u) => Done::Unmasked(u.run(threads)),
            Work::SumCheck(c) => Done::SumChecked {
                round: c.round,
                result: sums.check(&c.sum),
            },
        }
    }
}

/// Threads a driver's mask removal may use: one per core.
pub fn unmask_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

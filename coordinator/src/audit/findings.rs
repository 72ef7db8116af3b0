//! What the audit finds: one [`Finding`] per problem, a [`Location`] in the transcript and
//! a [`FindingKind`] with the facts as fields, so that callers and tests match on what is
//! wrong rather than on its words. `Display` gives the line `cairn audit` prints.

use std::fmt;
use std::sync::Arc;

use cairn_crypto::secagg::ParamsError;
use cairn_crypto::sign::IdentityPublic;
use cairn_proofs::ProofError;
use cairn_protocol::randomness::RandomnessError;
use cairn_protocol::round::SurvivorSignatureError;
use cairn_protocol::server_opt::ServerOptError;
use cairn_protocol::transcript::ChainError;

/// One problem the audit found: where, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Where in the transcript.
    pub at: Location,
    /// What is wrong.
    pub kind: FindingKind,
}

impl Finding {
    /// A finding of `kind` at `at`.
    pub fn new(at: Location, kind: FindingKind) -> Self {
        Self { at, kind }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Location::Transcript => write!(f, "{}", self.kind),
            at => write!(f, "{at}: {}", self.kind),
        }
    }
}

/// Where a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// The transcript as a whole (its chain, its end).
    Transcript,
    /// The record with this sequence number (record 0 is the job header).
    Record(u64),
    /// A round record.
    Round {
        /// Its sequence number.
        record: u64,
        /// The round it records.
        round: u32,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Transcript => f.write_str("the transcript"),
            Location::Record(seq) => write!(f, "record {seq}"),
            Location::Round { record, round } => write!(f, "record {record} (round {round})"),
        }
    }
}

/// What is wrong: one variant per kind of problem the audit detects.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FindingKind {
    // The transcript as a whole.
    /// The hash chain does not hold (the error names the record).
    #[error("chain: {error}")]
    Chain {
        /// Why ([`ChainError`] is not `Clone`: shared).
        error: Arc<ChainError>,
    },
    /// The transcript does not end with its seal.
    #[error("the transcript has no Finished record: it was cut short, or the job is still running or was stopped")]
    NotFinished,

    // The job header (record 0).
    /// The first record is not the job header.
    #[error("the transcript does not start with the job")]
    NoJobHeader,
    /// The header's privacy parameters are not the ones the proofs carry (or one of the two
    /// is missing): the proofs would show other noise than the job accounts.
    #[error("the job's privacy parameters are not the noise its proofs carry: the (ε, δ) it reports is not proven")]
    PrivacyNotProven,
    /// The header's proof settings give no circuit.
    #[error("the proof settings give no circuit: {error}")]
    NoCircuit {
        /// Why.
        error: ProofError,
    },
    /// The header's aggregation scale is not the one the proofs fix.
    #[error("the job aggregates at 2^{scale_bits}, but its proofs fix updates at 2^{proven}: every applied update would be decoded at the wrong scale")]
    ScaleMismatch {
        /// The header's scale.
        scale_bits: u32,
        /// The proofs' scale.
        proven: u32,
    },
    /// The header's server optimiser cannot be built.
    #[error("server optimiser: {error}")]
    ServerOptimiser {
        /// Why.
        error: ServerOptError,
    },
    /// The recorded verifying key does not decode for the job's circuit.
    #[error("verifying key: {reason}")]
    VerifyingKey {
        /// The decoder's reason (its error type is neither `Clone` nor comparable).
        reason: String,
    },

    // Any record.
    /// A record after the seal.
    #[error("recorded after the job's end (record {finished}): appended to a sealed transcript")]
    AfterSeal {
        /// The seal's sequence number.
        finished: u64,
    },
    /// A job header other than the first record.
    #[error("a second job header")]
    SecondJobHeader,
    /// A round (recorded, failed or abandoned) that is not the one due.
    #[error(
        "round {round} recorded where round {expected} was due (a gap, a repeat or a reordering)"
    )]
    OutOfSequence {
        /// The round recorded.
        round: u32,
        /// The round due.
        expected: u32,
    },

    // Enrolments.
    /// An enrolment after a round began (and before any resume).
    #[error("participant {participant} enrolled after round {last_round} began")]
    EnrolledLate {
        /// The participant.
        participant: u32,
        /// The last round begun.
        last_round: u32,
    },
    /// The dataset commitment's signature does not verify under the holder's identity.
    #[error("participant {participant}: {reason}")]
    DatasetSignature {
        /// The participant.
        participant: u32,
        /// Why (as `DatasetCommitment::verify` says it).
        reason: String,
    },
    /// An enrolment after a resume by a holder the job's randomness was not drawn from.
    #[error("participant {participant} enrolled after the resume, but is not in the job's randomness roster")]
    NotInRoster {
        /// The participant.
        participant: u32,
    },
    /// A holder enrolled again with another dataset than before the resume.
    #[error("participant {participant}: identity {} committed to another dataset before the resume", hex::encode(identity.0))]
    DatasetChanged {
        /// The participant.
        participant: u32,
        /// Its identity.
        identity: IdentityPublic,
    },
    /// One participant id enrolled twice between resumes.
    #[error("participant {participant} enrolled twice")]
    EnrolledTwice {
        /// The participant.
        participant: u32,
    },

    // The job's randomness.
    /// A second randomness record.
    #[error("the job's randomness recorded twice")]
    RandomnessTwice,
    /// The randomness recorded after a round.
    #[error("the job's randomness recorded after round {last_round}")]
    RandomnessLate {
        /// The last round begun.
        last_round: u32,
    },
    /// The contributions do not hold (unsorted, a reveal that does not open…).
    #[error("the job's randomness: {error}")]
    Randomness {
        /// Why.
        error: RandomnessError,
    },
    /// An enrolled holder has no contribution.
    #[error("{} enrolled but has no contribution in the job's randomness", hex::encode(identity.0))]
    NoContribution {
        /// The holder.
        identity: IdentityPublic,
    },

    // Resumes.
    /// A resume that goes back before a recorded round.
    #[error("a resume at round {next_round} after round {last_round} was recorded")]
    ResumeBackwards {
        /// Where the resume goes on.
        next_round: u32,
        /// The last round recorded.
        last_round: u32,
    },
    /// A resume that goes on at another round than the one due.
    #[error("the resume goes on at round {next_round}, but round {expected} was due")]
    ResumeRound {
        /// Where the resume goes on.
        next_round: u32,
        /// The round due.
        expected: u32,
    },

    // The seal.
    /// The coordinator's signature on the seal does not verify.
    #[error("the coordinator's seal does not verify under the header's key")]
    SealInvalid,
    /// The seal's last round is not the transcript's.
    #[error("sealed at round {sealed}, but the transcript's last round is {last}")]
    SealedLastRound {
        /// The round sealed.
        sealed: u32,
        /// The transcript's last round.
        last: u32,
    },
    /// The seal's count of completed rounds is not the transcript's.
    #[error("sealed with {sealed} completed round(s), the transcript holds {completed}")]
    SealedCompleted {
        /// The count sealed.
        sealed: u32,
        /// The rounds the transcript completes.
        completed: u32,
    },
    /// The sealed final model is not the replayed one.
    #[error("the sealed final model is not the replayed one")]
    SealedModel,
    /// A countersignature by a key that never enrolled.
    #[error("countersigned by {}, which never enrolled", hex::encode(identity.0))]
    CountersignerNotEnrolled {
        /// The key.
        identity: IdentityPublic,
    },
    /// A countersignature that does not verify.
    #[error("the countersignature of {} does not verify", hex::encode(identity.0))]
    CountersignatureInvalid {
        /// The holder.
        identity: IdentityPublic,
    },
    /// A holder countersigned twice.
    #[error("{} countersigned twice", hex::encode(identity.0))]
    CountersignedTwice {
        /// The holder.
        identity: IdentityPublic,
    },
    /// Fewer than t of the last completed round's survivors countersigned the end.
    #[error("{vouching} of round {round}'s survivors countersigned the end, at least t = {threshold} must")]
    TooFewCountersignatures {
        /// The last completed round.
        round: u32,
        /// Its survivors that countersigned.
        vouching: usize,
        /// The threshold t they must reach.
        threshold: usize,
    },

    // Rounds.
    /// The recorded threshold is not the one the selection and the job's δ, γ give.
    #[error("the round records threshold {recorded}, but {selected} selected holders at dropout {dropout}, corruption {corruption} give t = {threshold}")]
    ThresholdMismatch {
        /// The recorded threshold.
        recorded: u32,
        /// Holders selected.
        selected: usize,
        /// The job's δ.
        dropout: f64,
        /// The job's γ.
        corruption: f64,
        /// The recomputed threshold.
        threshold: usize,
    },
    /// No SecAgg+ parameters exist for the selection.
    #[error("no SecAgg+ parameters for {selected} selected holders: {error}")]
    NoSecAggParams {
        /// Holders selected.
        selected: usize,
        /// Why.
        error: ParamsError,
    },
    /// Fewer survivors applied than the job's minimum or the round's t.
    #[error("{applied} survivor(s) applied, the job needs at least {need} (min {min}{})", threshold.map_or(String::new(), |t| format!(", t {t}")))]
    TooFewSurvivors {
        /// Survivors applied.
        applied: usize,
        /// The larger of the two.
        need: usize,
        /// The job's minimum.
        min: usize,
        /// The round's t, when it has one.
        threshold: Option<usize>,
    },
    /// The round's global model is not the previous round's.
    #[error("the round did not start from the previous round's model")]
    WrongStartModel,
    /// A round before the job's randomness was recorded.
    #[error("a round before the job's randomness was recorded")]
    RoundBeforeRandomness,
    /// The round seed is not re-derived from the job's randomness.
    #[error("the round seed is not the job's randomness for round {round}")]
    SeedNotDerived {
        /// The round.
        round: u32,
    },
    /// A survivor that never enrolled (since the last resume).
    #[error("participant {participant} never enrolled")]
    NeverEnrolled {
        /// The participant.
        participant: u32,
    },
    /// A survivor that was not selected.
    #[error("participant {participant} was not selected")]
    NotSelected {
        /// The participant.
        participant: u32,
    },
    /// A survivor with no index in the randomness roster (its statement cannot be drawn).
    #[error("participant {participant} has no place in the job's randomness roster")]
    NoRosterPlace {
        /// The participant.
        participant: u32,
    },
    /// The survivors' signatures on the survivor list do not hold.
    #[error("{error}")]
    SurvivorSignatures {
        /// Why.
        error: SurvivorSignatureError,
    },
    /// Σ C_u = commit(S, R) does not hold, or cannot be checked.
    #[error("aggregate: {error}")]
    AggregateInvalid {
        /// Why.
        error: ProofError,
    },
    /// S has another length than the job's sums (the model's parameters, or a DP job's
    /// rotated dimension).
    #[error("S has {sum} values, the job's sums {model}")]
    SumLength {
        /// Values in S.
        sum: usize,
        /// Values of the job's sums.
        model: usize,
    },
    /// A DP job's noisy sum cannot be decoded.
    #[error("decoding the noisy sum: {reason}")]
    NoDecode {
        /// Why.
        reason: String,
    },
    /// The server optimiser's step fails.
    #[error("server step: {error}")]
    ServerStep {
        /// Why.
        error: ServerOptError,
    },
    /// No server step can be replayed: the header's optimiser is unusable
    /// ([`FindingKind::ServerOptimiser`]).
    #[error("server step: no usable server optimiser")]
    NoServerOptimiser,
    /// Replaying S from the previous model does not give the recorded model.
    #[error("replaying S from the previous model does not give the recorded model")]
    ModelMismatch,

    // Sampled steps.
    /// Step chains or a beacon in a job that proves every step.
    #[error("step chains in a job that proves every step")]
    UnexpectedStepChains,
    /// A sampled-step round without its beacon.
    #[error("a sampled-step round without its beacon: no challenge can be re-derived")]
    MissingBeacon,
    /// A survivor of a sampled-step round without a step chain.
    #[error("participant {participant}: no step chain in a sampled-step round")]
    MissingStepChain {
        /// The participant.
        participant: u32,
    },
    /// A survivor's beacon is not derived from the round's.
    #[error("participant {participant}: its beacon is not the round's beacon's")]
    WrongHolderBeacon {
        /// The participant.
        participant: u32,
    },

    // Proofs.
    /// A survivor's proof does not verify against the statement the transcript fixes.
    #[error("participant {participant}: proof: {error}")]
    ProofInvalid {
        /// The prover.
        participant: u32,
        /// Why.
        error: ProofError,
    },
}

/// Why [`super::proof_items`] gives no proofs: the transcript has no job header, so there
/// is no key or statement; the findings say what the walk saw instead.
#[derive(Clone, Debug, PartialEq)]
pub struct NoJob {
    /// What the walk found (the header's absence among them).
    pub findings: Vec<Finding>,
}

impl fmt::Display for NoJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.findings.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NoJob {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed lines are the ones `cairn audit` printed when findings were strings.
    #[test]
    fn findings_print_as_before() {
        let id = IdentityPublic([0xab; 32]);
        let round = Location::Round {
            record: 7,
            round: 2,
        };
        let cases = [
            (
                Finding::new(
                    Location::Transcript,
                    FindingKind::Chain {
                        error: Arc::new(ChainError::Link { seq: 3 }),
                    },
                ),
                "chain: record 3: does not follow the record before it (chain broken)".to_string(),
            ),
            (
                Finding::new(Location::Transcript, FindingKind::NotFinished),
                "the transcript has no Finished record: it was cut short, or the job is still running or was stopped".into(),
            ),
            (
                Finding::new(Location::Record(0), FindingKind::NoJobHeader),
                "record 0: the transcript does not start with the job".into(),
            ),
            (
                Finding::new(
                    Location::Record(0),
                    FindingKind::ScaleMismatch {
                        scale_bits: 20,
                        proven: 16,
                    },
                ),
                "record 0: the job aggregates at 2^20, but its proofs fix updates at 2^16: every applied update would be decoded at the wrong scale".into(),
            ),
            (
                Finding::new(
                    Location::Record(4),
                    FindingKind::DatasetChanged {
                        participant: 1,
                        identity: id,
                    },
                ),
                format!(
                    "record 4: participant 1: identity {} committed to another dataset before the resume",
                    "ab".repeat(32)
                ),
            ),
            (
                Finding::new(
                    round,
                    FindingKind::TooFewSurvivors {
                        applied: 0,
                        need: 2,
                        min: 2,
                        threshold: None,
                    },
                ),
                "record 7 (round 2): 0 survivor(s) applied, the job needs at least 2 (min 2)".into(),
            ),
            (
                Finding::new(
                    round,
                    FindingKind::TooFewSurvivors {
                        applied: 1,
                        need: 2,
                        min: 1,
                        threshold: Some(2),
                    },
                ),
                "record 7 (round 2): 1 survivor(s) applied, the job needs at least 2 (min 1, t 2)".into(),
            ),
            (
                Finding::new(
                    round,
                    FindingKind::ThresholdMismatch {
                        recorded: 0,
                        selected: 3,
                        dropout: 0.1,
                        corruption: 0.2,
                        threshold: 2,
                    },
                ),
                "record 7 (round 2): the round records threshold 0, but 3 selected holders at dropout 0.1, corruption 0.2 give t = 2".into(),
            ),
            (
                Finding::new(
                    round,
                    FindingKind::SurvivorSignatures {
                        error: SurvivorSignatureError::TooFew { have: 0, need: 2 },
                    },
                ),
                "record 7 (round 2): 0 survivor signature(s), the round's threshold needs 2".into(),
            ),
            (
                Finding::new(
                    round,
                    FindingKind::AggregateInvalid {
                        error: ProofError::SumMismatch { survivors: 3 },
                    },
                ),
                "record 7 (round 2): aggregate: the 3 survivors' commitments do not add up to a commitment to the unmasked sum".into(),
            ),
            (
                Finding::new(round, FindingKind::NoServerOptimiser),
                "record 7 (round 2): server step: no usable server optimiser".into(),
            ),
            (
                Finding::new(
                    round,
                    FindingKind::ProofInvalid {
                        participant: 1,
                        error: ProofError::DoesNotVerify,
                    },
                ),
                "record 7 (round 2): participant 1: proof: the proof does not verify against the round's statement".into(),
            ),
            (
                Finding::new(
                    Location::Record(9),
                    FindingKind::TooFewCountersignatures {
                        round: 2,
                        vouching: 0,
                        threshold: 2,
                    },
                ),
                "record 9: 0 of round 2's survivors countersigned the end, at least t = 2 must".into(),
            ),
        ];
        for (finding, line) in cases {
            assert_eq!(finding.to_string(), line);
        }
        let none = NoJob {
            findings: vec![
                Finding::new(
                    Location::Transcript,
                    FindingKind::Chain {
                        error: Arc::new(ChainError::Hash { seq: 0 }),
                    },
                ),
                Finding::new(Location::Record(0), FindingKind::NoJobHeader),
            ],
        };
        assert_eq!(
            none.to_string(),
            "chain: record 0: content does not match its hash (edited); record 0: the transcript does not start with the job"
        );
    }
}

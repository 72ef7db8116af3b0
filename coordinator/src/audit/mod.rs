//! `cairn audit`: re-checks a proven job from its transcript alone — the hash chain, every
//! dataset-commitment signature, every proof against the statement the transcript fixes,
//! every homomorphic check Σ C_u = commit(S, R), the survivors' signatures on each round's
//! survivor list, and the model chain replayed from the
//! initial model to the last. Every problem found is reported, not just the first.
//!
//! The audit walks the records once in order (chain, enrolments, sums, signatures, model
//! replay), gathering every proof with the statement the transcript fixes for it; the
//! proofs are then verified together ([`verify_items`]: each round's shared statement
//! parts once, decoding in parallel on all cores, one randomised batch equation, and each
//! proof on its own only when the batch fails, to name the bad ones). [`proof_items`] gives
//! the same list to `cairn export-verifier --transcript`.
//!
//! Each problem is a [`Finding`]: where ([`Location`]) and what ([`FindingKind`], one
//! variant per kind of problem, its facts as fields); its `Display` is the line `cairn
//! audit` prints.

mod findings;

pub use findings::{Finding, FindingKind, Location, NoJob};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ark_bn254::Bn254;
use ark_groth16::PreparedVerifyingKey;
use rayon::prelude::*;

use cairn_circuits::pedersen::Generators;
use cairn_circuits::training::proof::{self, Proof};
use cairn_circuits::training::{Public, Shape};
use cairn_crypto::sign::IdentityPublic;
use cairn_proofs::rounds;
use cairn_proofs::ProofError;
use cairn_protocol::challenge::{escape_over_rounds, escape_probability, holder_beacon};
use cairn_protocol::job::RoundStatement;
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::privacy::DpSettings;
use cairn_protocol::randomness::{self, Contribution};
use cairn_protocol::round::{check_survivor_signatures, mean_from_sum, ProvenSum, SecureSettings};
use cairn_protocol::server_opt::ServerOptState;
use cairn_protocol::transcript::{model_hash, seal_payload, Entry, Record, Transcript};
use cairn_protocol::wire::{DatasetCommitment, DatasetFacts, ProofSpec, ProvenInput};

/// One proof of a transcript, with everything needed to check it.
#[derive(Clone, Debug)]
pub struct ProofItem {
    /// Sequence number of its round record.
    pub record: u64,
    /// Round number.
    pub round: u32,
    /// The prover.
    pub participant: u32,
    /// Its index in the job's randomness roster: what its rows and statement are drawn
    /// for.
    pub index: u32,
    /// The round's statement (shared by the round's proofs).
    pub statement: Arc<RoundStatement>,
    /// The dataset commitment the prover enrolled.
    pub dataset: DatasetCommitment,
    /// Its commitment and proof.
    pub input: ProvenInput,
}

impl ProofItem {
    /// Verifies the proof against its statement.
    pub fn verify(&self, pvk: &PreparedVerifyingKey<Bn254>) -> Result<(), ProofError> {
        rounds::verify_input(pvk, &self.statement, self.index, &self.dataset, &self.input)
    }
}

/// The job's verifying key (as recorded) and every proof in `t`, in order; without a job
/// header, what the walk found instead.
pub fn proof_items(t: &Transcript) -> Result<(Vec<u8>, Vec<ProofItem>), NoJob> {
    let mut report = AuditReport::default();
    let (header, items) = walk(t, &mut report);
    match header {
        Some((_, vk)) => Ok((vk, items)),
        None => Err(NoJob {
            findings: report.problems,
        }),
    }
}

/// One round as the auditor found it.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundAudit {
    /// Round number.
    pub round: u32,
    /// Selected participants.
    pub selected: usize,
    /// Survivors whose proofs were checked.
    pub survivors: usize,
    /// Proofs that verified.
    pub proofs_ok: usize,
    /// Participants dropped during the round (as the transcript says).
    pub dropped: usize,
    /// Whether Σ C_u = commit(S, R) held.
    pub sum_ok: bool,
    /// Whether at least t survivors validly signed the survivor list.
    pub signatures_ok: bool,
    /// Whether the replayed model matched the recorded hash.
    pub model_ok: bool,
    /// The round failed and nothing was applied.
    pub failed: bool,
}

/// The audit's findings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditReport {
    /// Records in the transcript.
    pub records: usize,
    /// Holders enrolled.
    pub enrolled: usize,
    /// Per-round findings.
    pub rounds: Vec<RoundAudit>,
    /// Every problem found, each naming the record and what is wrong.
    pub problems: Vec<Finding>,
    /// DP jobs: the privacy the released sums carry ([`PrivacyAudit`]).
    pub privacy: Option<PrivacyAudit>,
    /// Sampled-step jobs: what the sampling is worth ([`Sampling`]).
    pub sampling: Option<Sampling>,
    /// The transcript ends with its seal ([`Entry::Finished`]).
    pub finished: bool,
    /// Holders whose countersignature on the sealed head verified.
    pub countersigned: usize,
    /// Holders whose contributions the job's randomness was drawn from (every round seed
    /// was re-derived from them).
    pub contributors: usize,
}

/// A DP job's privacy as the audit establishes it: the accountant's (ε, δ) after the rounds
/// whose sums the transcript shows released, and whether the transcript proves every such
/// sum carries the noise accounted (every survivor's proof, noise included, verified and
/// every aggregate check held).
#[derive(Clone, Debug, PartialEq)]
pub struct PrivacyAudit {
    /// The job's mechanism, δ and budget, from the header.
    pub settings: DpSettings,
    /// Rounds whose sums were released (completed rounds).
    pub rounds: u32,
    /// ε after those rounds at the job's δ (`None`: the accountant could not bound it).
    pub epsilon: Option<f64>,
    /// What the sampler's distance from the exact Skellam adds to δ over the job's draws
    /// ([`sampler_delta`]); `None` when the table cannot be built.
    pub sampler_delta: Option<f64>,
    /// Whether the transcript proves the noise of every released sum.
    pub proven: bool,
}

/// What a proven job's noise adds to δ beyond the accountant's exact-Skellam bound, for
/// `draws` draws at the final `epsilon`: (1 + e^ε) · draws · (η + β/3), η the table's total
/// variation from the exact Skellam and β/3 a PRG word's from uniform
/// (`cairn_circuits::noise::BLOCK_TV_BOUND`). At most 1.
pub fn sampler_delta(dp: &DpSettings, epsilon: f64, draws: u64) -> Option<f64> {
    let table = cairn_privacy::SkellamTable::shared(dp.params.holder_variance()).ok()?;
    let prg = (1.0 + epsilon.exp()) * draws as f64 * cairn_circuits::noise::BLOCK_TV_BOUND / 3.0;
    Some((table.delta_penalty(epsilon, draws) + prg).min(1.0))
}

/// How a sampled-step job's proofs were drawn, for the soundness the audit states.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sampling {
    /// Local steps K per round.
    pub local_steps: u32,
    /// Steps proved per holder per round.
    pub sampled: u32,
    /// The most proven rounds any one holder took part in.
    pub rounds_per_holder: u32,
    /// Challenges re-derived from the transcript (one per proof).
    pub challenges: usize,
}

impl Sampling {
    /// The chance that a holder deviating in `m` of its K steps in a round escapes that
    /// round's challenge.
    pub fn escape_one_round(&self, m: u32) -> f64 {
        escape_probability(self.local_steps, m, self.sampled)
    }

    /// The chance it escapes in every one of `rounds` rounds.
    pub fn escape_rounds(&self, m: u32, rounds: u32) -> f64 {
        escape_over_rounds(self.local_steps, m, self.sampled, rounds)
    }
}

impl AuditReport {
    /// True when everything holds.
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.records > 0
    }
}

/// Audits `t`.
pub fn audit(t: &Transcript) -> AuditReport {
    let mut report = AuditReport {
        records: t.records.len(),
        ..AuditReport::default()
    };
    let (header, items) = walk(t, &mut report);
    let Some((shape, vk_bytes)) = header else {
        return report;
    };
    let pvk = match proof::vk_from_bytes(&shape, &vk_bytes) {
        Ok(vk) => proof::prepare(&vk),
        Err(e) => {
            report.problems.push(Finding::new(
                Location::Record(0),
                FindingKind::VerifyingKey {
                    reason: e.to_string(),
                },
            ));
            return report;
        }
    };
    let verdicts = verify_items(&pvk, &items);
    let all_proofs = verdicts.iter().all(Result::is_ok);
    for (it, verdict) in items.iter().zip(verdicts) {
        match verdict {
            Ok(()) => {
                if let Some(r) = report.rounds.iter_mut().find(|r| r.round == it.round) {
                    r.proofs_ok += 1;
                }
            }
            Err(error) => report.problems.push(Finding::new(
                Location::Round {
                    record: it.record,
                    round: it.round,
                },
                FindingKind::ProofInvalid {
                    participant: it.participant,
                    error,
                },
            )),
        }
    }
    // The (ε, δ) is what the transcript proves only when every released sum's noise is:
    // every survivor's proof (noise included) verified and every aggregate check held.
    let sums_ok = report.rounds.iter().all(|r| r.failed || r.sum_ok);
    if let Some(p) = report.privacy.as_mut() {
        p.proven = all_proofs && sums_ok && p.epsilon.is_some();
    }
    report
}

/// Every item's verdict, as [`ProofItem::verify`] gives it, for many proofs at a time:
/// the parts of a statement that a round's proofs share (the model and hyper-parameter
/// hashes) are computed once per round, the statements and proofs are decoded in parallel,
/// and the well-formed proofs are checked together by one randomised batch equation
/// ([`rounds::verify_all`]: a Miller loop per proof and one final exponentiation instead
/// of three and one per proof). Only when the batch fails is each proof checked on its own,
/// so that every bad one is named.
pub fn verify_items(
    pvk: &PreparedVerifyingKey<Bn254>,
    items: &[ProofItem],
) -> Vec<Result<(), ProofError>> {
    // Items of a round share their statement (one Arc): its parts are computed once.
    let mut statements: Vec<&Arc<RoundStatement>> = Vec::new();
    let of_round: Vec<usize> = items
        .iter()
        .map(|it| {
            statements
                .iter()
                .position(|s| Arc::ptr_eq(s, &it.statement))
                .unwrap_or_else(|| {
                    statements.push(&it.statement);
                    statements.len() - 1
                })
        })
        .collect();
    let parts: Vec<Result<rounds::RoundPublic, ProofError>> = statements
        .par_iter()
        .map(|st| rounds::RoundPublic::new(st))
        .collect();
    let decoded: Vec<Result<(Public, Proof), ProofError>> = items
        .par_iter()
        .zip(of_round)
        .map(|(it, r)| {
            let round = parts[r].as_ref().map_err(Clone::clone)?;
            let public = round.statement(it.index, &it.dataset, &it.input)?;
            Ok((public, rounds::decode_proof(&it.input)?))
        })
        .collect();
    let well_formed: Vec<(Public, Proof)> = decoded.iter().filter_map(|d| d.clone().ok()).collect();
    let all_hold = rounds::verify_all(pvk, &well_formed);
    decoded
        .into_par_iter()
        .map(|d| {
            let (public, proof) = d?;
            if all_hold {
                Ok(())
            } else {
                rounds::check_proof(pvk, &public, &proof)
            }
        })
        .collect()
}

/// The in-order walk: every check but the proofs, which it gathers. Returns the job's
/// circuit shape and recorded verifying key (`None` when the transcript has no job header).
fn walk(t: &Transcript, report: &mut AuditReport) -> (Option<(Shape, Vec<u8>)>, Vec<ProofItem>) {
    if let Err(e) = t.verify_chain() {
        report.problems.push(Finding::new(
            Location::Transcript,
            FindingKind::Chain { error: Arc::new(e) },
        ));
    }
    let Some(Entry::Job {
        job_id,
        model,
        hyper,
        server,
        scale_bits,
        proof: spec,
        verifying_key,
        initial_model,
        min_participants,
        dropout,
        corruption,
        coordinator,
        privacy,
    }) = t.records.first().map(|r| &r.entry)
    else {
        report
            .problems
            .push(Finding::new(Location::Record(0), FindingKind::NoJobHeader));
        return (None, Vec::new());
    };
    // A DP job's proofs carry its mechanism: the header's privacy and the proof settings'
    // noise must be the same parameters, or the proofs show other noise than accounted.
    if privacy.map(|dp| dp.params) != spec.noise {
        report.problems.push(Finding::new(
            Location::Record(0),
            FindingKind::PrivacyNotProven,
        ));
    }
    let shape = match rounds::shape(model, hyper, spec) {
        Ok(shape) => shape,
        Err(error) => {
            report.problems.push(Finding::new(
                Location::Record(0),
                FindingKind::NoCircuit { error },
            ));
            return (None, Vec::new());
        }
    };
    // What each round's unmasked sum holds: the update, or a DP job's rotated vector.
    let sum_len = match &spec.noise {
        Some(p) => p.padded_dim().unwrap_or(0),
        None => initial_model.len(),
    };
    if *scale_bits != cairn_protocol::wire::PROVEN_SCALE_BITS {
        report.problems.push(Finding::new(
            Location::Record(0),
            FindingKind::ScaleMismatch {
                scale_bits: *scale_bits,
                proven: cairn_protocol::wire::PROVEN_SCALE_BITS,
            },
        ));
    }
    // The server optimiser's moments, replayed round by round as the coordinator ran them.
    let opt = match ServerOptState::new(*server, initial_model.len()) {
        Ok(o) => Some(o),
        Err(error) => {
            report.problems.push(Finding::new(
                Location::Record(0),
                FindingKind::ServerOptimiser { error },
            ));
            None
        }
    };
    let mut w = Walk {
        job_id,
        model,
        hyper,
        spec,
        coordinator,
        dropout: *dropout,
        corruption: *corruption,
        // Each round's (k, t) is recomputed from its selection and the job's δ, γ: the
        // coordinator's own record of t is checked against it, never trusted.
        secure: SecureSettings {
            dropout: *dropout,
            corruption: *corruption,
            scale_bits: *scale_bits,
        },
        min_survivors: *min_participants as usize,
        report,
        items: Vec::new(),
        expected_round: 1,
        completed_rounds: 0,
        last_survivors: None,
        finished: None,
        current: initial_model.clone(),
        opt,
        datasets: BTreeMap::new(),
        identities: BTreeMap::new(),
        committed: BTreeMap::new(),
        enrolled: BTreeSet::new(),
        last_round: 0,
        enrolment_open: true,
        gens: Generators::new(sum_len),
        privacy: privacy.as_ref(),
        proven_rounds: BTreeMap::new(),
        drawn: None,
    };
    for r in &t.records[1..] {
        w.record(r);
    }
    if w.finished.is_none() {
        w.problem(Location::Transcript, FindingKind::NotFinished);
    }
    w.report.finished = w.finished.is_some();
    w.report.enrolled = w.enrolled.len();
    let released = w.completed_rounds;
    // Every released round's survivors drew one noise value per rotated coordinate.
    let draws: u64 = w
        .report
        .rounds
        .iter()
        .filter(|r| !r.failed)
        .map(|r| r.survivors as u64)
        .sum::<u64>()
        .saturating_mul(sum_len as u64);
    w.report.privacy = privacy.map(|dp| {
        let epsilon = dp.epsilon_after(released).ok();
        PrivacyAudit {
            settings: dp,
            rounds: released,
            epsilon,
            sampler_delta: epsilon.and_then(|e| sampler_delta(&dp, e, draws)),
            proven: false,
        }
    });
    (Some((shape, verifying_key.clone())), w.items)
}

/// The walk's state between records: the job header's facts, what the records so far
/// established, and the proofs gathered. One method per kind of record.
struct Walk<'t, 'r> {
    job_id: &'t str,
    model: &'t ModelSpec,
    hyper: &'t HyperParams,
    spec: &'t ProofSpec,
    /// A DP job's privacy (its sums are decoded with it).
    privacy: Option<&'t DpSettings>,
    coordinator: &'t IdentityPublic,
    dropout: f64,
    corruption: f64,
    secure: SecureSettings,
    min_survivors: usize,
    report: &'r mut AuditReport,
    items: Vec<ProofItem>,
    /// Rounds are numbered 1, 2, … with no gap: a number is skipped only by an
    /// abandonment a resume records.
    expected_round: u32,
    completed_rounds: u32,
    /// The survivors' identities and threshold of the last completed round: they must
    /// countersign the end.
    last_survivors: Option<(u32, Vec<IdentityPublic>, usize)>,
    /// The Finished record's sequence number, once seen.
    finished: Option<u64>,
    /// The model as replayed so far.
    current: Vec<f32>,
    opt: Option<ServerOptState>,
    /// Participant ids name connections: they hold from an enrolment to the next resume.
    datasets: BTreeMap<u32, DatasetCommitment>,
    identities: BTreeMap<u32, IdentityPublic>,
    /// What each identity committed to, across resumes: a holder's dataset is fixed for
    /// the job.
    committed: BTreeMap<IdentityPublic, DatasetFacts>,
    enrolled: BTreeSet<IdentityPublic>,
    last_round: u32,
    /// Enrolments are open before the first round and again after each resume, until a
    /// round begins.
    enrolment_open: bool,
    /// The Pedersen generators of the aggregate checks, made once (every round has the
    /// model's length; a malformed round of another length gets its own).
    gens: Generators,
    /// Sampled-step jobs: proven rounds per holder (by id within the job).
    proven_rounds: BTreeMap<u32, u32>,
    /// The job's randomness (contributions and beacon), once recorded.
    drawn: Option<(Vec<Contribution>, [u8; 32])>,
}

impl Walk<'_, '_> {
    fn problem(&mut self, at: Location, kind: FindingKind) {
        self.report.problems.push(Finding::new(at, kind));
    }

    fn record(&mut self, r: &Record) {
        let at = Location::Record(r.seq);
        if let Some(finished) = self.finished {
            self.problem(at, FindingKind::AfterSeal { finished });
        }
        match &r.entry {
            Entry::Job { .. } => self.problem(at, FindingKind::SecondJobHeader),
            Entry::Enrolled {
                participant,
                identity,
                dataset,
            } => self.enrolled(at, *participant, identity, dataset),
            Entry::Randomness { contributions } => self.randomness(at, contributions),
            Entry::Resumed {
                next_round,
                abandoned,
            } => self.resumed(at, *next_round, *abandoned),
            Entry::Finished { .. } => self.finished(at, r),
            Entry::RoundFailed { round, dropped, .. } => {
                self.enrolment_open = false;
                self.in_sequence(at, *round);
                self.last_round = *round;
                self.report.rounds.push(RoundAudit {
                    round: *round,
                    selected: 0,
                    survivors: 0,
                    proofs_ok: 0,
                    dropped: dropped.len(),
                    sum_ok: false,
                    signatures_ok: true,
                    model_ok: true,
                    failed: true,
                });
            }
            Entry::Round { .. } => self.round(at, r),
        }
    }

    /// A round number must be the one due.
    fn in_sequence(&mut self, at: Location, round: u32) {
        let expected = self.expected_round;
        if round != expected {
            self.problem(at, FindingKind::OutOfSequence { round, expected });
        }
        self.expected_round = round.saturating_add(1);
    }

    fn enrolled(
        &mut self,
        at: Location,
        participant: u32,
        identity: &IdentityPublic,
        dataset: &DatasetCommitment,
    ) {
        if !self.enrolment_open {
            let last_round = self.last_round;
            self.problem(
                at,
                FindingKind::EnrolledLate {
                    participant,
                    last_round,
                },
            );
        }
        if let Err(reason) = dataset.verify(self.job_id, identity) {
            self.problem(
                at,
                FindingKind::DatasetSignature {
                    participant,
                    reason,
                },
            );
        }
        self.enrolled.insert(*identity);
        let outside_roster = self
            .drawn
            .as_ref()
            .is_some_and(|(roster, _)| randomness::holder_index(roster, identity).is_none());
        if outside_roster {
            self.problem(at, FindingKind::NotInRoster { participant });
        }
        let fact = dataset.facts();
        if self.committed.entry(*identity).or_insert(fact) != &fact {
            self.problem(
                at,
                FindingKind::DatasetChanged {
                    participant,
                    identity: *identity,
                },
            );
        }
        self.identities.insert(participant, *identity);
        if self.datasets.insert(participant, dataset.clone()).is_some() {
            self.problem(at, FindingKind::EnrolledTwice { participant });
        }
    }

    fn randomness(&mut self, at: Location, contributions: &[Contribution]) {
        let last_round = self.last_round;
        if self.drawn.is_some() {
            self.problem(at, FindingKind::RandomnessTwice);
        } else if !self.report.rounds.is_empty() {
            // (After a resume that abandoned the rounds before any was recorded, the
            // randomness is drawn afresh: only recorded rounds come too early.)
            self.problem(at, FindingKind::RandomnessLate { last_round });
        }
        if let Err(error) = randomness::check(contributions) {
            self.problem(at, FindingKind::Randomness { error });
        }
        let missing: Vec<IdentityPublic> = self
            .enrolled
            .iter()
            .filter(|id| randomness::holder_index(contributions, id).is_none())
            .copied()
            .collect();
        for identity in missing {
            self.problem(at, FindingKind::NoContribution { identity });
        }
        self.report.contributors = contributions.len();
        if self.drawn.is_none() {
            self.drawn = Some((
                contributions.to_vec(),
                randomness::beacon(self.job_id, contributions),
            ));
        }
    }

    fn resumed(&mut self, at: Location, next_round: u32, abandoned: Option<u32>) {
        let last_round = self.last_round;
        if abandoned.is_some_and(|a| a <= last_round) || next_round <= last_round {
            self.problem(
                at,
                FindingKind::ResumeBackwards {
                    next_round,
                    last_round,
                },
            );
        }
        if let Some(a) = abandoned {
            self.last_round = a;
            self.in_sequence(at, a);
        }
        let expected = self.expected_round;
        if next_round != expected {
            self.problem(
                at,
                FindingKind::ResumeRound {
                    next_round,
                    expected,
                },
            );
        }
        self.enrolment_open = true;
        self.datasets.clear();
        self.identities.clear();
    }

    fn finished(&mut self, at: Location, r: &Record) {
        let Entry::Finished {
            last_round: sealed_last,
            rounds_completed,
            final_model_hash,
            error: _,
            coordinator_signature,
            countersignatures,
        } = &r.entry
        else {
            return;
        };
        self.finished = Some(r.seq);
        let payload = seal_payload(
            self.job_id,
            &r.prev,
            *sealed_last,
            *rounds_completed,
            final_model_hash,
        );
        if self
            .coordinator
            .verify(&payload, coordinator_signature)
            .is_err()
        {
            self.problem(at, FindingKind::SealInvalid);
        }
        let began = self.expected_round.saturating_sub(1);
        if *sealed_last != began {
            self.problem(
                at,
                FindingKind::SealedLastRound {
                    sealed: *sealed_last,
                    last: began,
                },
            );
        }
        let completed = self.completed_rounds;
        if *rounds_completed != completed {
            self.problem(
                at,
                FindingKind::SealedCompleted {
                    sealed: *rounds_completed,
                    completed,
                },
            );
        }
        if *final_model_hash != model_hash(&self.current) {
            self.problem(at, FindingKind::SealedModel);
        }
        let mut signers = BTreeSet::new();
        for (who, sig) in countersignatures {
            let identity = *who;
            if !self.enrolled.contains(who) {
                self.problem(at, FindingKind::CountersignerNotEnrolled { identity });
            } else if who.verify(&payload, sig).is_err() {
                self.problem(at, FindingKind::CountersignatureInvalid { identity });
            } else if !signers.insert(identity) {
                self.problem(at, FindingKind::CountersignedTwice { identity });
            }
        }
        self.report.countersigned = signers.len();
        if let Some((round, survivors, t_last)) = &self.last_survivors {
            let vouching = survivors.iter().filter(|s| signers.contains(s)).count();
            let t_last = (*t_last).min(survivors.len().max(1));
            if vouching < t_last {
                let round = *round;
                self.problem(
                    at,
                    FindingKind::TooFewCountersignatures {
                        round,
                        vouching,
                        threshold: t_last,
                    },
                );
            }
        }
    }

    fn round(&mut self, at: Location, r: &Record) {
        let Entry::Round {
            round,
            round_seed,
            global_hash,
            participants,
            inputs,
            dropped,
            threshold,
            survivor_signatures,
            update_sum,
            blinding_limb_sums,
            new_model_hash,
            beacon,
        } = &r.entry
        else {
            return;
        };
        self.in_sequence(at, *round);
        let at = Location::Round {
            record: r.seq,
            round: *round,
        };
        self.enrolment_open = false;
        self.last_round = *round;
        self.completed_rounds += 1;
        let (dropout, corruption) = (self.dropout, self.corruption);
        // The threshold the round's selection and the job's δ, γ fix.
        let t_round = match self.secure.params(participants.len()) {
            Ok(p) => {
                if *threshold as usize != p.threshold {
                    self.problem(
                        at,
                        FindingKind::ThresholdMismatch {
                            recorded: *threshold,
                            selected: participants.len(),
                            dropout,
                            corruption,
                            threshold: p.threshold,
                        },
                    );
                }
                Some(p.threshold)
            }
            Err(error) => {
                self.problem(
                    at,
                    FindingKind::NoSecAggParams {
                        selected: participants.len(),
                        error,
                    },
                );
                None
            }
        };
        let min_survivors = self.min_survivors;
        let need = min_survivors.max(t_round.unwrap_or(0));
        if inputs.len() < need {
            self.problem(
                at,
                FindingKind::TooFewSurvivors {
                    applied: inputs.len(),
                    need,
                    min: min_survivors,
                    threshold: t_round,
                },
            );
        }
        self.last_survivors = Some((
            *round,
            inputs
                .iter()
                .filter_map(|(p, _)| self.identities.get(p).copied())
                .collect(),
            t_round.unwrap_or(usize::MAX),
        ));
        if *global_hash != model_hash(&self.current) {
            self.problem(at, FindingKind::WrongStartModel);
        }
        match &self.drawn {
            None => self.problem(at, FindingKind::RoundBeforeRandomness),
            Some((_, b)) if *round_seed != randomness::round_seed(b, *round) => {
                self.problem(at, FindingKind::SeedNotDerived { round: *round });
            }
            Some(_) => {}
        }
        let st = Arc::new(RoundStatement {
            round: *round,
            model: self.model.clone(),
            global: self.current.clone(),
            hyper: self.hyper.clone(),
            round_seed: *round_seed,
            proof: *self.spec,
        });
        self.sampled_steps(at, *round, inputs, beacon.as_ref());
        for (p, input) in inputs {
            let participant = *p;
            let Some(dataset) = self.datasets.get(p).cloned() else {
                self.problem(at, FindingKind::NeverEnrolled { participant });
                continue;
            };
            if !participants.contains(p) {
                self.problem(at, FindingKind::NotSelected { participant });
            }
            let index = self
                .drawn
                .as_ref()
                .and_then(|(roster, _)| randomness::holder_index(roster, self.identities.get(p)?));
            let Some(index) = index else {
                self.problem(at, FindingKind::NoRosterPlace { participant });
                continue;
            };
            self.items.push(ProofItem {
                record: r.seq,
                round: *round,
                participant: *p,
                index,
                statement: Arc::clone(&st),
                dataset,
                input: input.clone(),
            });
        }
        let sum = ProvenSum {
            update_sum: update_sum.clone(),
            blinding_limb_sums: blinding_limb_sums.clone(),
            inputs: inputs.clone(),
            // The recomputed t, not the recorded one.
            threshold: t_round.map_or(u32::MAX, |t| u32::try_from(t).unwrap_or(u32::MAX)),
            survivor_signatures: survivor_signatures.clone(),
            beacon: *beacon,
        };
        let identities = &self.identities;
        let signed =
            check_survivor_signatures(self.job_id, *round, &sum, |p| identities.get(&p).copied());
        let signatures_ok = match signed {
            _ if t_round.is_none() => false,
            Ok(_) => true,
            Err(error) => {
                self.problem(at, FindingKind::SurvivorSignatures { error });
                false
            }
        };
        let checked = if update_sum.len() == self.gens.g.len() {
            rounds::check_sum_with(&self.gens, &sum)
        } else {
            rounds::check_sum(&sum)
        };
        let sum_ok = match checked {
            Ok(()) => true,
            Err(error) => {
                self.problem(at, FindingKind::AggregateInvalid { error });
                false
            }
        };
        if update_sum.len() != self.gens.g.len() {
            let (sum, model) = (update_sum.len(), self.gens.g.len());
            self.problem(at, FindingKind::SumLength { sum, model });
        }
        // The applied update is rebuilt from S at the scale the proofs fix, whatever the
        // header claims (a header at another scale is a problem of its own); a DP job's S
        // is the noisy rotated sum, decoded as the coordinator decodes it.
        let n = inputs.len().max(1);
        let mean = match self.privacy {
            None => mean_from_sum(update_sum, n, cairn_protocol::wire::PROVEN_SCALE_BITS),
            Some(dp) => {
                let seed = cairn_protocol::privacy::rotation_seed(round_seed);
                match cairn_protocol::privacy::decode(&dp.params, update_sum, &seed) {
                    Ok(total) => total.iter().map(|v| (v / n as f64) as f32).collect(),
                    Err(e) => {
                        self.problem(
                            at,
                            FindingKind::NoDecode {
                                reason: e.to_string(),
                            },
                        );
                        vec![0.0; self.current.len()]
                    }
                }
            }
        };
        let stepped = match self.opt.as_mut() {
            Some(o) => o
                .apply(&mut self.current, &mean)
                .map_err(|error| FindingKind::ServerStep { error }),
            None => Err(FindingKind::NoServerOptimiser),
        };
        if let Err(kind) = stepped {
            self.problem(at, kind);
        }
        let model_ok = model_hash(&self.current) == *new_model_hash;
        if !model_ok {
            self.problem(at, FindingKind::ModelMismatch);
        }
        self.report.rounds.push(RoundAudit {
            round: *round,
            selected: participants.len(),
            survivors: inputs.len(),
            proofs_ok: 0,
            dropped: dropped.len(),
            sum_ok,
            signatures_ok,
            model_ok,
            failed: false,
        });
    }

    /// A sampled-step job's step chains and beacons (each survivor's chain answers the
    /// round's beacon); step chains in a job that proves every step are a problem.
    fn sampled_steps(
        &mut self,
        at: Location,
        round: u32,
        inputs: &[(u32, ProvenInput)],
        beacon: Option<&[u8; 32]>,
    ) {
        let Some(s) = self.spec.sampled_steps else {
            if beacon.is_some() || inputs.iter().any(|(_, i)| i.steps.is_some()) {
                self.problem(at, FindingKind::UnexpectedStepChains);
            }
            return;
        };
        let local_steps = self.hyper.local_steps;
        let Some(b) = beacon else {
            self.report.sampling.get_or_insert(Sampling {
                local_steps,
                sampled: s,
                ..Sampling::default()
            });
            self.problem(at, FindingKind::MissingBeacon);
            return;
        };
        for (p, input) in inputs {
            match &input.steps {
                None => self.problem(at, FindingKind::MissingStepChain { participant: *p }),
                Some(c) if c.beacon != holder_beacon(b, round, *p) => {
                    self.problem(at, FindingKind::WrongHolderBeacon { participant: *p });
                }
                Some(_) => {
                    let n = self.proven_rounds.entry(*p).or_insert(0u32);
                    *n += 1;
                    let n = *n;
                    let sampling = self.report.sampling.get_or_insert(Sampling {
                        local_steps,
                        sampled: s,
                        ..Sampling::default()
                    });
                    sampling.challenges += 1;
                    sampling.rounds_per_holder = sampling.rounds_per_holder.max(n);
                }
            }
        }
        self.report.sampling.get_or_insert(Sampling {
            local_steps,
            sampled: s,
            ..Sampling::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_crypto::sign::Signature;
    use cairn_proofs::rounds::{proof_spec, prove_update, replay_update, CommittedData};
    use cairn_protocol::model::{HyperParams, ModelSpec};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// Three holders' honest proofs of one small round, as the auditor gathers them.
    fn round_items() -> (PreparedVerifyingKey<Bn254>, Vec<ProofItem>) {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let st = Arc::new(RoundStatement {
            round: 1,
            model: ModelSpec::mlp(3, vec![]),
            global: vec![0.1, -0.2, 0.3, 0.05],
            hyper: HyperParams {
                local_steps: 1,
                batch_size: 2,
                learning_rate: 0.1,
                clip_norm: 5.0,
            },
            round_seed: [4; 32],
            proof: proof_spec(0.01, 2, 20, 2),
        });
        let shape = rounds::shape(&st.model, &st.hyper, &st.proof).expect("shape");
        let (pk, vk) = proof::setup(&shape, &mut rng).expect("setup");
        let prover = cairn_circuits::training::prover::Prover::new(&shape, pk).expect("prover");
        let items = (0..3u32)
            .map(|p| {
                let features: Vec<f32> = (0..12).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let labels = vec![0.0, 1.0, 1.0, 0.0];
                let data = CommittedData::new(&features, 3, &labels, &st.proof).expect("rows");
                let update = replay_update(&st, p, &data).expect("replay");
                let proven = prove_update(&prover, &st, p, &data, &update, None, &mut rng)
                    .expect("honest proof");
                ProofItem {
                    record: 5,
                    round: 1,
                    participant: p,
                    index: p,
                    statement: Arc::clone(&st),
                    dataset: DatasetCommitment {
                        root: data.root(),
                        n_rows: 4,
                        signature: Signature(vec![]),
                        noise_seed: None,
                    },
                    input: proven.input,
                }
            })
            .collect();
        (proof::prepare(&vk), items)
    }

    #[test]
    fn batched_verdicts_name_exactly_the_bad_proofs() {
        let (pvk, items) = round_items();
        let one_by_one: Vec<_> = items.iter().map(|it| it.verify(&pvk)).collect();
        assert!(one_by_one.iter().all(Result::is_ok), "{one_by_one:?}");
        assert_eq!(verify_items(&pvk, &items), one_by_one);

        // A tampered proof (a flipped bit that still decodes), another holder's
        // commitment, and bytes that are not a proof.
        let mut bad = items.clone();
        let proof = bad[1].input.proof.clone();
        bad[1].input.proof = (0..proof.len())
            .map(|i| {
                let mut t = proof.clone();
                t[i] ^= 1;
                t
            })
            .find(|t| Proof::from_bytes(t).is_ok())
            .expect("some one-bit change still decodes");
        let verdicts = verify_items(&pvk, &bad);
        assert_eq!(
            verdicts,
            bad.iter().map(|it| it.verify(&pvk)).collect::<Vec<_>>()
        );
        assert!(verdicts[0].is_ok() && verdicts[2].is_ok(), "{verdicts:?}");
        assert!(
            verdicts[1]
                .as_ref()
                .is_err_and(|e| e == &ProofError::DoesNotVerify),
            "{verdicts:?}"
        );

        let mut bad = items.clone();
        bad[0].input.commitment = items[2].input.commitment.clone();
        bad[2].input.proof = vec![0; 7];
        let verdicts = verify_items(&pvk, &bad);
        assert_eq!(
            verdicts,
            bad.iter().map(|it| it.verify(&pvk)).collect::<Vec<_>>()
        );
        assert!(verdicts[0].is_err() && verdicts[1].is_ok() && verdicts[2].is_err());
        assert!(verify_items(&pvk, &[]).is_empty());
    }
}

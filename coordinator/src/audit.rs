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

use std::collections::BTreeMap;
use std::sync::Arc;

use ark_bn254::Bn254;
use ark_groth16::PreparedVerifyingKey;
use rayon::prelude::*;

use cairn_circuits::pedersen::Generators;
use cairn_circuits::rounds;
use cairn_circuits::training::proof::{self, Proof};
use cairn_circuits::training::{Public, Shape};
use cairn_crypto::sign::IdentityPublic;
use cairn_protocol::challenge::{escape_over_rounds, escape_probability, holder_beacon};
use cairn_protocol::job::RoundStatement;
use cairn_protocol::randomness::{self, Contribution};
use cairn_protocol::round::{check_survivor_signatures, mean_from_sum, ProvenSum, SecureSettings};
use cairn_protocol::server_opt::ServerOptState;
use cairn_protocol::transcript::{model_hash, seal_payload, Entry, Transcript};
use cairn_protocol::wire::{DatasetCommitment, ProvenInput};

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
    pub fn verify(&self, pvk: &PreparedVerifyingKey<Bn254>) -> Result<(), String> {
        rounds::verify_input(pvk, &self.statement, self.index, &self.dataset, &self.input)
    }
}

/// The job's verifying key (as recorded) and every proof in `t`, in order.
pub fn proof_items(t: &Transcript) -> Result<(Vec<u8>, Vec<ProofItem>), String> {
    let mut report = AuditReport::default();
    let (header, items) = walk(t, &mut report);
    match header {
        Some((_, vk)) => Ok((vk, items)),
        None => Err(report.problems.join("; ")),
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
    pub problems: Vec<String>,
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
            report
                .problems
                .push(format!("record 0: verifying key: {e}"));
            return report;
        }
    };
    let verdicts = verify_items(&pvk, &items);
    for (it, verdict) in items.iter().zip(verdicts) {
        match verdict {
            Ok(()) => {
                if let Some(r) = report.rounds.iter_mut().find(|r| r.round == it.round) {
                    r.proofs_ok += 1;
                }
            }
            Err(e) => report.problems.push(format!(
                "record {} (round {}): participant {}: proof: {e}",
                it.record, it.round, it.participant
            )),
        }
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
) -> Vec<Result<(), String>> {
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
    let parts: Vec<Result<rounds::RoundPublic, String>> = statements
        .par_iter()
        .map(|st| rounds::RoundPublic::new(st))
        .collect();
    let decoded: Vec<Result<(Public, Proof), String>> = items
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
    let mut items = Vec::new();
    let problems = &mut report.problems;
    if let Err(e) = t.verify_chain() {
        problems.push(format!("chain: {e}"));
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
    }) = t.records.first().map(|r| &r.entry)
    else {
        problems.push("record 0: the transcript does not start with the job".into());
        return (None, items);
    };
    if *scale_bits != cairn_protocol::wire::PROVEN_SCALE_BITS {
        problems.push(format!(
            "record 0: the job aggregates at 2^{scale_bits}, but its proofs fix updates at 2^{}: every applied update would be decoded at the wrong scale",
            cairn_protocol::wire::PROVEN_SCALE_BITS
        ));
    }
    // Each round's (k, t) is recomputed from its selection and the job's δ, γ: the
    // coordinator's own record of t is checked against it, never trusted.
    let secure = SecureSettings {
        dropout: *dropout,
        corruption: *corruption,
        scale_bits: *scale_bits,
    };
    let min_survivors = *min_participants as usize;
    // Rounds are numbered 1, 2, … with no gap: a number is skipped only by an abandonment
    // a resume records.
    let mut expected_round = 1u32;
    let mut completed_rounds = 0u32;
    // The survivors' identities and threshold of the last completed round: they must
    // countersign the end.
    let mut last_survivors: Option<(u32, Vec<IdentityPublic>, usize)> = None;
    let mut finished: Option<u64> = None;
    let mut current = initial_model.clone();
    // The server optimiser's moments, replayed round by round as the coordinator ran them.
    let mut opt = match ServerOptState::new(*server, current.len()) {
        Ok(o) => Some(o),
        Err(e) => {
            problems.push(format!("record 0: server optimiser: {e}"));
            None
        }
    };
    // Participant ids name connections: they hold from an enrolment to the next resume.
    let mut datasets: BTreeMap<u32, DatasetCommitment> = BTreeMap::new();
    let mut identities: BTreeMap<u32, IdentityPublic> = BTreeMap::new();
    // What each identity committed to, across resumes: a holder's dataset is fixed for the job.
    let mut committed: BTreeMap<IdentityPublic, ([u8; 32], u64)> = BTreeMap::new();
    let mut enrolled: std::collections::BTreeSet<IdentityPublic> = Default::default();
    let mut last_round = 0;
    // Enrolments are open before the first round and again after each resume, until a
    // round begins.
    let mut enrolment_open = true;
    // The Pedersen generators of the aggregate checks, made once (every round has the
    // model's length; a malformed round of another length gets its own).
    let gens = Generators::new(current.len());
    // Sampled-step jobs: proven rounds per holder (by id within the job).
    let mut proven_rounds: BTreeMap<u32, u32> = BTreeMap::new();
    // The job's randomness (contributions and beacon), once recorded.
    let mut drawn: Option<(Vec<Contribution>, [u8; 32])> = None;
    for r in &t.records[1..] {
        let at = format!("record {}", r.seq);
        if let Some(end) = finished {
            problems.push(format!(
                "{at}: recorded after the job's end (record {end}): appended to a sealed transcript"
            ));
        }
        let mut in_sequence = |round: u32, problems: &mut Vec<String>| {
            if round != expected_round {
                problems.push(format!(
                    "{at}: round {round} recorded where round {expected_round} was due (a gap, a repeat or a reordering)"
                ));
            }
            expected_round = round.saturating_add(1);
        };
        match &r.entry {
            Entry::Job { .. } => problems.push(format!("{at}: a second job header")),
            Entry::Enrolled {
                participant,
                identity,
                dataset,
            } => {
                if !enrolment_open {
                    problems.push(format!(
                        "{at}: participant {participant} enrolled after round {last_round} began"
                    ));
                }
                if let Err(e) = dataset.verify(job_id, identity) {
                    problems.push(format!("{at}: participant {participant}: {e}"));
                }
                enrolled.insert(*identity);
                if let Some((roster, _)) = &drawn {
                    if randomness::holder_index(roster, identity).is_none() {
                        problems.push(format!(
                            "{at}: participant {participant} enrolled after the resume, but is not in the job's randomness roster"
                        ));
                    }
                }
                let fact = (dataset.root, dataset.n_rows);
                if committed.entry(*identity).or_insert(fact) != &fact {
                    problems.push(format!(
                        "{at}: participant {participant}: identity {} committed to another dataset before the resume",
                        hex::encode(identity.0)
                    ));
                }
                identities.insert(*participant, *identity);
                if datasets.insert(*participant, dataset.clone()).is_some() {
                    problems.push(format!("{at}: participant {participant} enrolled twice"));
                }
            }
            Entry::Randomness { contributions } => {
                if drawn.is_some() {
                    problems.push(format!("{at}: the job's randomness recorded twice"));
                } else if !report.rounds.is_empty() {
                    // (After a resume that abandoned the rounds before any was recorded,
                    // the randomness is drawn afresh: only recorded rounds come too early.)
                    problems.push(format!(
                        "{at}: the job's randomness recorded after round {last_round}"
                    ));
                }
                if let Err(e) = randomness::check(contributions) {
                    problems.push(format!("{at}: the job's randomness: {e}"));
                }
                for id in &enrolled {
                    if randomness::holder_index(contributions, id).is_none() {
                        problems.push(format!(
                            "{at}: {} enrolled but has no contribution in the job's randomness",
                            hex::encode(id.0)
                        ));
                    }
                }
                report.contributors = contributions.len();
                if drawn.is_none() {
                    drawn = Some((
                        contributions.clone(),
                        randomness::beacon(job_id, contributions),
                    ));
                }
            }
            Entry::Resumed {
                next_round,
                abandoned,
            } => {
                if abandoned.is_some_and(|a| a <= last_round) || *next_round <= last_round {
                    problems.push(format!(
                        "{at}: a resume at round {next_round} after round {last_round} was recorded"
                    ));
                }
                if let Some(a) = abandoned {
                    last_round = *a;
                    in_sequence(*a, problems);
                }
                if *next_round != expected_round {
                    problems.push(format!(
                        "{at}: the resume goes on at round {next_round}, but round {expected_round} was due"
                    ));
                }
                enrolment_open = true;
                datasets.clear();
                identities.clear();
            }
            Entry::Finished {
                last_round: sealed_last,
                rounds_completed,
                final_model_hash,
                error: _,
                coordinator_signature,
                countersignatures,
            } => {
                finished = Some(r.seq);
                let payload = seal_payload(
                    job_id,
                    &r.prev,
                    *sealed_last,
                    *rounds_completed,
                    final_model_hash,
                );
                if coordinator.verify(&payload, coordinator_signature).is_err() {
                    problems.push(format!(
                        "{at}: the coordinator's seal does not verify under the header's key"
                    ));
                }
                let began = expected_round.saturating_sub(1);
                if *sealed_last != began {
                    problems.push(format!(
                        "{at}: sealed at round {sealed_last}, but the transcript's last round is {began}"
                    ));
                }
                if *rounds_completed != completed_rounds {
                    problems.push(format!(
                        "{at}: sealed with {rounds_completed} completed round(s), the transcript holds {completed_rounds}"
                    ));
                }
                if *final_model_hash != model_hash(&current) {
                    problems.push(format!(
                        "{at}: the sealed final model is not the replayed one"
                    ));
                }
                let mut signers = std::collections::BTreeSet::new();
                for (who, sig) in countersignatures {
                    if !enrolled.contains(who) {
                        problems.push(format!(
                            "{at}: countersigned by {}, which never enrolled",
                            hex::encode(who.0)
                        ));
                    } else if who.verify(&payload, sig).is_err() {
                        problems.push(format!(
                            "{at}: the countersignature of {} does not verify",
                            hex::encode(who.0)
                        ));
                    } else if !signers.insert(*who) {
                        problems.push(format!("{at}: {} countersigned twice", hex::encode(who.0)));
                    }
                }
                report.countersigned = signers.len();
                if let Some((round, survivors, t_last)) = &last_survivors {
                    let vouching = survivors.iter().filter(|s| signers.contains(s)).count();
                    let t_last = (*t_last).min(survivors.len().max(1));
                    if vouching < t_last {
                        problems.push(format!(
                            "{at}: {vouching} of round {round}'s survivors countersigned the end, at least t = {t_last} must"
                        ));
                    }
                }
            }
            Entry::RoundFailed { round, dropped, .. } => {
                enrolment_open = false;
                in_sequence(*round, problems);
                last_round = *round;
                report.rounds.push(RoundAudit {
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
            Entry::Round {
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
            } => {
                in_sequence(*round, problems);
                let at = format!("{at} (round {round})");
                enrolment_open = false;
                last_round = *round;
                completed_rounds += 1;
                // The threshold the round's selection and the job's δ, γ fix.
                let t_round = match secure.params(participants.len()) {
                    Ok(p) => {
                        if *threshold as usize != p.threshold {
                            problems.push(format!(
                                "{at}: the round records threshold {threshold}, but {} selected holders at dropout {dropout}, corruption {corruption} give t = {}",
                                participants.len(),
                                p.threshold
                            ));
                        }
                        Some(p.threshold)
                    }
                    Err(e) => {
                        problems.push(format!(
                            "{at}: no SecAgg+ parameters for {} selected holders: {e}",
                            participants.len()
                        ));
                        None
                    }
                };
                let need = min_survivors.max(t_round.unwrap_or(0));
                if inputs.len() < need {
                    problems.push(format!(
                        "{at}: {} survivor(s) applied, the job needs at least {need} (min {min_survivors}{})",
                        inputs.len(),
                        t_round.map_or(String::new(), |t| format!(", t {t}"))
                    ));
                }
                last_survivors = Some((
                    *round,
                    inputs
                        .iter()
                        .filter_map(|(p, _)| identities.get(p).copied())
                        .collect(),
                    t_round.unwrap_or(usize::MAX),
                ));
                if *global_hash != model_hash(&current) {
                    problems.push(format!(
                        "{at}: the round did not start from the previous round's model"
                    ));
                }
                match &drawn {
                    None => problems.push(format!(
                        "{at}: a round before the job's randomness was recorded"
                    )),
                    Some((_, b)) if *round_seed != randomness::round_seed(b, *round) => problems
                        .push(format!(
                            "{at}: the round seed is not the job's randomness for round {round}"
                        )),
                    Some(_) => {}
                }
                let st = Arc::new(RoundStatement {
                    round: *round,
                    model: model.clone(),
                    global: current.clone(),
                    hyper: hyper.clone(),
                    round_seed: *round_seed,
                    proof: *spec,
                });
                if let Some(s) = spec.sampled_steps {
                    let sampling = report.sampling.get_or_insert(Sampling {
                        local_steps: hyper.local_steps,
                        sampled: s,
                        ..Sampling::default()
                    });
                    match beacon {
                        None => problems.push(format!(
                            "{at}: a sampled-step round without its beacon: no challenge can be re-derived"
                        )),
                        Some(b) => {
                            for (p, input) in inputs {
                                match &input.steps {
                                    None => problems.push(format!(
                                        "{at}: participant {p}: no step chain in a sampled-step round"
                                    )),
                                    Some(c) if c.beacon != holder_beacon(b, *round, *p) => {
                                        problems.push(format!(
                                            "{at}: participant {p}: its beacon is not the round's beacon's"
                                        ))
                                    }
                                    Some(_) => {
                                        sampling.challenges += 1;
                                        let n = proven_rounds.entry(*p).or_insert(0u32);
                                        *n += 1;
                                        sampling.rounds_per_holder =
                                            sampling.rounds_per_holder.max(*n);
                                    }
                                }
                            }
                        }
                    }
                } else if beacon.is_some() || inputs.iter().any(|(_, i)| i.steps.is_some()) {
                    problems.push(format!("{at}: step chains in a job that proves every step"));
                }
                for (p, input) in inputs {
                    let Some(dataset) = datasets.get(p) else {
                        problems.push(format!("{at}: participant {p} never enrolled"));
                        continue;
                    };
                    if !participants.contains(p) {
                        problems.push(format!("{at}: participant {p} was not selected"));
                    }
                    let index = drawn.as_ref().and_then(|(roster, _)| {
                        randomness::holder_index(roster, identities.get(p)?)
                    });
                    let Some(index) = index else {
                        problems.push(format!(
                            "{at}: participant {p} has no place in the job's randomness roster"
                        ));
                        continue;
                    };
                    items.push(ProofItem {
                        record: r.seq,
                        round: *round,
                        participant: *p,
                        index,
                        statement: Arc::clone(&st),
                        dataset: dataset.clone(),
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
                let signatures_ok = match check_survivor_signatures(job_id, *round, &sum, |p| {
                    identities.get(&p).copied()
                }) {
                    _ if t_round.is_none() => false,
                    Ok(_) => true,
                    Err(e) => {
                        problems.push(format!("{at}: {e}"));
                        false
                    }
                };
                let checked = if update_sum.len() == gens.g.len() {
                    rounds::check_sum_with(&gens, &sum)
                } else {
                    rounds::check_sum(&sum)
                };
                let sum_ok = match checked {
                    Ok(()) => true,
                    Err(e) => {
                        problems.push(format!("{at}: aggregate: {e}"));
                        false
                    }
                };
                if update_sum.len() != current.len() {
                    problems.push(format!(
                        "{at}: S has {} values, the model {}",
                        update_sum.len(),
                        current.len()
                    ));
                }
                // The applied update is rebuilt from S at the scale the proofs fix, whatever
                // the header claims (a header at another scale is a problem of its own).
                let mean = mean_from_sum(
                    update_sum,
                    inputs.len().max(1),
                    cairn_protocol::wire::PROVEN_SCALE_BITS,
                );
                let stepped = match opt.as_mut() {
                    Some(o) => o.apply(&mut current, &mean).map_err(|e| e.to_string()),
                    None => Err("no usable server optimiser".into()),
                };
                if let Err(e) = stepped {
                    problems.push(format!("{at}: server step: {e}"));
                }
                let model_ok = model_hash(&current) == *new_model_hash;
                if !model_ok {
                    problems.push(format!(
                        "{at}: replaying S from the previous model does not give the recorded model"
                    ));
                }
                report.rounds.push(RoundAudit {
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
        }
    }
    if finished.is_none() {
        problems.push(
            "the transcript has no Finished record: it was cut short, or the job is still running or was stopped"
                .into(),
        );
    }
    report.finished = finished.is_some();
    report.enrolled = enrolled.len();
    let shape = rounds::shape(model, hyper, spec);
    (Some((shape, verifying_key.clone())), items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_circuits::rounds::{proof_spec, prove_update, replay_update, CommittedData};
    use cairn_crypto::sign::Signature;
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
        let shape = rounds::shape(&st.model, &st.hyper, &st.proof);
        let (pk, vk) = proof::setup(&shape, &mut rng).expect("setup");
        let prover = cairn_circuits::training::prover::Prover::new(&shape, pk).expect("prover");
        let items = (0..3u32)
            .map(|p| {
                let features: Vec<f32> = (0..12).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let labels = vec![0.0, 1.0, 1.0, 0.0];
                let data = CommittedData::new(&features, 3, &labels, &st.proof).expect("rows");
                let update = replay_update(&st, p, &data).expect("replay");
                let proven =
                    prove_update(&prover, &st, p, &data, &update, &mut rng).expect("honest proof");
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
                .is_err_and(|e| e.contains("does not verify")),
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

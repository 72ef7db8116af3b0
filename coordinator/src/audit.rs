//! `cairn audit`: re-checks a proven job from its transcript alone — the hash chain, every
//! dataset-commitment signature, every proof against the statement the transcript fixes,
//! every homomorphic check Σ C_u = commit(S, R), and the model chain replayed from the
//! initial model to the last. Every problem found is reported, not just the first.

use std::collections::BTreeMap;

use cairn_circuits::rounds;
use cairn_circuits::training::proof;
use cairn_protocol::job::RoundStatement;
use cairn_protocol::round::{apply_update, mean_from_sum, ProvenSum};
use cairn_protocol::transcript::{model_hash, Entry, Transcript};
use cairn_protocol::wire::DatasetCommitment;

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
    let problems = &mut report.problems;
    if let Err(e) = t.verify_chain() {
        problems.push(format!("chain: {e}"));
    }
    let Some(Entry::Job {
        job_id,
        model,
        hyper,
        server_lr,
        scale_bits,
        proof: spec,
        verifying_key,
        initial_model,
    }) = t.records.first().map(|r| &r.entry)
    else {
        problems.push("record 0: the transcript does not start with the job".into());
        return report;
    };
    let shape = rounds::shape(model, hyper, spec);
    let pvk = match proof::vk_from_bytes(&shape, verifying_key) {
        Ok(vk) => Some(proof::prepare(&vk)),
        Err(e) => {
            problems.push(format!("record 0: verifying key: {e}"));
            None
        }
    };
    let mut current = initial_model.clone();
    let mut datasets: BTreeMap<u32, DatasetCommitment> = BTreeMap::new();
    let mut last_round = 0;
    for r in &t.records[1..] {
        let at = format!("record {}", r.seq);
        match &r.entry {
            Entry::Job { .. } => problems.push(format!("{at}: a second job header")),
            Entry::Enrolled {
                participant,
                identity,
                dataset,
            } => {
                if last_round > 0 {
                    problems.push(format!(
                        "{at}: participant {participant} enrolled after round {last_round} began"
                    ));
                }
                if let Err(e) = dataset.verify(job_id, identity) {
                    problems.push(format!("{at}: participant {participant}: {e}"));
                }
                if datasets.insert(*participant, dataset.clone()).is_some() {
                    problems.push(format!("{at}: participant {participant} enrolled twice"));
                }
            }
            Entry::RoundFailed { round, dropped, .. } => {
                if *round <= last_round {
                    problems.push(format!("{at}: round {round} out of order"));
                }
                last_round = *round;
                report.rounds.push(RoundAudit {
                    round: *round,
                    selected: 0,
                    survivors: 0,
                    proofs_ok: 0,
                    dropped: dropped.len(),
                    sum_ok: false,
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
                update_sum,
                blinding_limb_sums,
                new_model_hash,
            } => {
                let at = format!("{at} (round {round})");
                if *round <= last_round {
                    problems.push(format!("{at}: round {round} out of order"));
                }
                last_round = *round;
                if *global_hash != model_hash(&current) {
                    problems.push(format!(
                        "{at}: the round did not start from the previous round's model"
                    ));
                }
                let st = RoundStatement {
                    round: *round,
                    model: model.clone(),
                    global: current.clone(),
                    hyper: hyper.clone(),
                    round_seed: *round_seed,
                    proof: *spec,
                };
                let mut proofs_ok = 0;
                for (p, input) in inputs {
                    let Some(dataset) = datasets.get(p) else {
                        problems.push(format!("{at}: participant {p} never enrolled"));
                        continue;
                    };
                    if !participants.contains(p) {
                        problems.push(format!("{at}: participant {p} was not selected"));
                    }
                    if let Some(pvk) = &pvk {
                        match rounds::verify_input(pvk, &st, *p, dataset, input) {
                            Ok(()) => proofs_ok += 1,
                            Err(e) => problems.push(format!("{at}: participant {p}: proof: {e}")),
                        }
                    }
                }
                let sum = ProvenSum {
                    update_sum: update_sum.clone(),
                    blinding_limb_sums: blinding_limb_sums.clone(),
                    inputs: inputs.clone(),
                };
                let sum_ok = match rounds::check_sum(&sum) {
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
                let mean = mean_from_sum(update_sum, inputs.len().max(1), *scale_bits);
                apply_update(&mut current, &mean, *server_lr);
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
                    proofs_ok,
                    dropped: dropped.len(),
                    sum_ok,
                    model_ok,
                    failed: false,
                });
            }
        }
    }
    report.enrolled = datasets.len();
    report
}

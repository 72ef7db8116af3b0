//! Malicious participants, end to end over real QUIC on loopback with real Groth16 proofs:
//! one job of nine holders, four of them dishonest, each through the real participant
//! driver with a dishonest [`UpdateProver`]:
//!
//! - **other rows**: commits to its own rows, proves an update on rows it never committed;
//! - **over the clip bound**: sends an update of twice the clip bound's squared norm, committed
//!   and "proved" by the raw Groth16 prover on the unsatisfied witness;
//! - **another commitment**: an honest proof, but C (and the masked x) of another update;
//! - **replay**: honest in round 1, then replays its round-1 x, C and π in round 2.
//!
//! Each is dropped in the rounds it cheats, named in the transcript with the failed proof,
//! and every round completes with exactly the honest holders' sum; the transcript audits
//! clean.

use std::sync::{Arc, Mutex};

use cairn_circuits::encoding::{blinding_limbs, point_to_bytes};
use cairn_circuits::pedersen::{self, Generators};
use cairn_cli::federate::{commit_holder, Proving};
use cairn_cli::options::TrainArgs;
use cairn_coordinator::audit::audit;
use cairn_datasets::{partition, synthetic, LoadOptions, Partition};
use cairn_participant::{Prover, UpdateProver};
use cairn_proofs::noise::NoiseSeed;
use cairn_proofs::rounds::{proven_update, replay_update, round_witness, ProvenUpdate};
use cairn_protocol::job::RoundStatement;
use cairn_protocol::transcript::Entry;
use cairn_protocol::wire::ProvenInput;
use rand::rngs::OsRng;

mod dishonest;
use dishonest::{assert_honest_sum, by_participant, participant_of_index, run_job, Ledger};

const HONEST: usize = 7;
const ROUNDS: u32 = 2;

#[derive(Debug)]
enum Attack {
    /// Proves with these rows instead of the committed ones.
    OtherRows(Prover),
    OverClip,
    OtherCommitment,
    /// Round 1's output, replayed later.
    Replay(Mutex<Option<ProvenUpdate>>),
}

impl Attack {
    fn name(&self) -> &'static str {
        match self {
            Attack::OtherRows(_) => "other rows",
            Attack::OverClip => "over the clip bound",
            Attack::OtherCommitment => "another commitment",
            Attack::Replay(_) => "replayed proof",
        }
    }
}

/// A holder: honest, or running `attack`; records its id and every honest x it sent.
#[derive(Debug)]
struct Holder {
    honest: Prover,
    attack: Option<Attack>,
    id: Mutex<Option<u32>>,
    ledger: Ledger,
}

impl Holder {
    fn honest_update(
        &self,
        st: &RoundStatement,
        participant: u32,
        delta: &[f32],
    ) -> Result<ProvenUpdate, String> {
        let u = self.honest.prove(st, participant, delta, None)?;
        self.ledger
            .lock()
            .expect("ledger")
            .insert((st.round, participant), u.update.clone());
        Ok(u)
    }
}

impl UpdateProver for Holder {
    fn root(&self) -> [u8; 32] {
        self.honest.root()
    }

    fn rows(&self) -> usize {
        self.honest.rows()
    }

    fn prove(
        &self,
        st: &RoundStatement,
        participant: u32,
        delta: &[f32],
        _noise_seed: Option<NoiseSeed>,
    ) -> Result<ProvenUpdate, String> {
        *self.id.lock().expect("id") = Some(participant);
        let gens = Generators::new(st.model.param_count());
        match &self.attack {
            None => self.honest_update(st, participant, delta),
            Some(Attack::OtherRows(other)) => {
                // Trained (exactly, by the replay) on rows it never committed, and proved.
                let delta =
                    replay_update(st, participant, &other.data).map_err(|e| e.to_string())?;
                other.prove(st, participant, &delta, None)
            }
            Some(Attack::OverClip) => {
                let rho = pedersen::random_blinding(&mut OsRng);
                let mut w = round_witness(st, participant, &self.honest.data, delta, rho)
                    .map_err(|e| e.to_string())?;
                // Every coordinate pushed out so that ‖x‖² is twice the clip bound's.
                let d = w.private.update.len() as f64;
                let v = (2.0 * w.private.hyper.clip_sq as f64 / d).sqrt().ceil() as i64;
                w.private
                    .update
                    .iter_mut()
                    .for_each(|x| *x = if *x < 0 { -v } else { v });
                w.public.commitment =
                    pedersen::commit(&gens, &w.private.update, &rho).map_err(|e| e.to_string())?;
                let proof = self
                    .honest
                    .key
                    .prove_unchecked(&w, &mut OsRng)
                    .map_err(|e| e.to_string())?;
                Ok(proven_update(&w, &proof))
            }
            Some(Attack::OtherCommitment) => {
                let honest = self.honest.prove(st, participant, delta, None)?;
                let rho = pedersen::random_blinding(&mut OsRng);
                let mut w = round_witness(st, participant, &self.honest.data, delta, rho)
                    .map_err(|e| e.to_string())?;
                // A different x, consistently masked and committed: the sum check alone
                // would accept it; the proof, bound to the honest C, must not.
                w.private.update[0] += 1 << 12;
                w.public.commitment =
                    pedersen::commit(&gens, &w.private.update, &rho).map_err(|e| e.to_string())?;
                Ok(ProvenUpdate {
                    blinding_limbs: blinding_limbs(&rho),
                    input: ProvenInput {
                        commitment: point_to_bytes(&w.public.commitment),
                        proof: honest.input.proof,
                        steps: None,
                    },
                    update: w.private.update,
                })
            }
            Some(Attack::Replay(slot)) => {
                let mut slot = slot.lock().expect("slot");
                match slot.as_ref() {
                    Some(earlier) => Ok(earlier.clone()),
                    None => {
                        let u = self.honest_update(st, participant, delta)?;
                        *slot = Some(u.clone());
                        Ok(u)
                    }
                }
            }
        }
    }
}

fn job_args() -> TrainArgs {
    TrainArgs {
        rounds: Some(ROUNDS),
        hidden: Some("none".into()),
        steps: Some(1),
        batch: Some(2),
        proofs: Some(true),
        tree_depth: Some(6),
        // Four of eleven holders drop in a round: against a malicious coordinator t > k/2,
        // so a round survives fewer than k/2 lost neighbours; (k, t) = (10, 6) here.
        dropout: Some(0.3),
        corruption: Some(0.1),
        round_timeout: Some(90),
        join_timeout: Some(90),
        ..TrainArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dishonest_holders_are_dropped_named_and_the_round_keeps_the_honest_sum() {
    let n = HONEST + 4;
    let data = synthetic(40 * n, 3, 11, &LoadOptions::default());
    let holders = partition(&data.train, n, &Partition::Iid, 2).expect("partition");
    assert!(holders.iter().all(|h| h.n_rows() <= 64), "rows fit depth 6");
    let job = job_args()
        .job("malicious", data.train.n_features, n, HONEST)
        .expect("job");
    let spec = job.proof.expect("proven");
    let keys = tempfile::tempdir().expect("tempdir");
    let (proving, _) = Proving::load_or_setup(&job, keys.path()).expect("keys");
    let ledger: Ledger = Arc::default();

    let mut all: Vec<Arc<Holder>> = Vec::new();
    for (i, rows) in holders.iter().enumerate() {
        let honest = commit_holder(&proving, rows, &spec).expect("commit");
        let attack = match i.checked_sub(HONEST) {
            None => None,
            Some(0) => Some(Attack::OtherRows(
                commit_holder(&proving, &holders[0], &spec).expect("commit"),
            )),
            Some(1) => Some(Attack::OverClip),
            Some(2) => Some(Attack::OtherCommitment),
            Some(_) => Some(Attack::Replay(Mutex::new(None))),
        };
        all.push(Arc::new(Holder {
            honest,
            attack,
            id: Mutex::new(None),
            ledger: Arc::clone(&ledger),
        }));
    }

    let holders = holders
        .into_iter()
        .zip(&all)
        .map(|(rows, h)| (rows, Arc::clone(h) as Arc<dyn UpdateProver>))
        .collect();
    let summary = run_job(job, &proving, &data.test, holders).await;
    assert_eq!(summary.error, None, "{:?}", summary.rounds);
    assert_eq!(summary.rounds_completed, ROUNDS, "{:?}", summary.rounds);

    let t = summary.transcript.expect("transcript");
    let pid_of_index = participant_of_index(&t);
    let id_of = |h: &Holder| pid_of_index(h.id.lock().expect("id").expect("proved at least once"));
    let cheaters: Vec<(u32, &str, u32)> = all[HONEST..]
        .iter()
        .map(|h| {
            let attack = h.attack.as_ref().expect("attacker");
            let first_cheat = if matches!(attack, Attack::Replay(_)) {
                2
            } else {
                1
            };
            (id_of(h), attack.name(), first_cheat)
        })
        .collect();
    let ledger = by_participant(&ledger, &pid_of_index);
    let mut rounds_seen = 0;
    for r in &t.records {
        let Entry::Round {
            round,
            inputs,
            dropped,
            update_sum,
            ..
        } = &r.entry
        else {
            continue;
        };
        rounds_seen += 1;
        for (id, what, first) in &cheaters {
            let named = dropped.iter().find(|(p, _)| p == id);
            if *round >= *first {
                let (_, why) = named.unwrap_or_else(|| {
                    panic!("round {round}: {what} (participant {id}) not dropped: {dropped:?}")
                });
                assert!(why.contains("proof"), "round {round}: {what}: {why}");
                assert!(inputs.iter().all(|(p, _)| p != id), "{what} contributed");
            } else {
                assert!(
                    named.is_none(),
                    "round {round}: {what} dropped while honest"
                );
            }
        }
        // S is exactly the sum of the honest x's of the round's survivors.
        assert_honest_sum(*round, inputs, update_sum, &ledger);
        let expected = HONEST + usize::from(*round == 1);
        assert_eq!(inputs.len(), expected, "round {round}: survivors");
    }
    assert_eq!(rounds_seen, ROUNDS);
    let report = audit(&t);
    assert!(report.passed(), "{:?}", report.problems);
}

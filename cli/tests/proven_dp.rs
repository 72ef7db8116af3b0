//! Noise a holder cannot skip (#16 item 3), end to end over real QUIC on loopback with real
//! Groth16 proofs: a proven DP job of seven holders through the real participant driver. Each
//! holder enrols a commitment to its noise seed with its dataset; each round it proves that
//! the vector it masks is its update rotated with the round's signs, rounded to the grid
//! within the sensitivity bound, plus the Skellam noise its seed and the round draw.
//!
//! Two holders attack the noise:
//! - **skips its noise**: masks its rounded update without noise, committed and "proved" by
//!   the raw Groth16 prover on the unsatisfied witness (in a proof-free DP job nothing
//!   could tell: the coordinator sees only the sum);
//! - **another seed**: a valid proof of noise from a seed other than the one it committed to
//!   (noise it could have chosen to cancel another holder's).
//!
//! Both are dropped in every round, named in the transcript with the failed proof; every
//! round completes with exactly the honest holders' noisy vectors summed; the audit passes
//! and states the (ε, δ) the transcript proves, which is the accountant's for the rounds run.

use std::sync::{Arc, Mutex};

use ark_bn254::Bn254;
use ark_groth16::Groth16;
use cairn_circuits::encoding::blinding_limbs;
use cairn_circuits::pedersen::{self, Generators};
use cairn_cli::export_verifier::from_transcript;
use cairn_cli::federate::{commit_holder, Proving};
use cairn_cli::options::TrainArgs;
use cairn_coordinator::audit::{audit, FindingKind};
use cairn_datasets::{partition, synthetic, LoadOptions, Partition};
use cairn_participant::{Prover, UpdateProver};
use cairn_proofs::noise::{proven_granularity, NoiseSeed};
use cairn_proofs::rounds::{proven_update, round_witness, with_noise, ProvenUpdate};
use cairn_protocol::job::RoundStatement;
use cairn_protocol::privacy::{DpSettings, SkellamParams};
use cairn_protocol::transcript::{Entry, Transcript};
use rand::rngs::OsRng;

mod dishonest;
use dishonest::{assert_honest_sum, by_participant, participant_of_index, run_job, Ledger};

const HONEST: usize = 5;
const ROUNDS: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    SkipNoise,
    OtherSeed,
}

#[derive(Debug)]
struct Holder {
    honest: Prover,
    attack: Option<Attack>,
    id: Mutex<Option<u32>>,
    ledger: Ledger,
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
        noise_seed: Option<NoiseSeed>,
    ) -> Result<ProvenUpdate, String> {
        *self.id.lock().expect("id") = Some(participant);
        let seed = noise_seed.ok_or("a proven DP round and no noise seed")?;
        match self.attack {
            None => {
                let u = self.honest.prove(st, participant, delta, noise_seed)?;
                self.ledger
                    .lock()
                    .expect("ledger")
                    .insert((st.round, participant), u.update.clone());
                Ok(u)
            }
            Some(Attack::OtherSeed) => {
                self.honest
                    .prove(st, participant, delta, Some(seed + NoiseSeed::from(7u64)))
            }
            Some(Attack::SkipNoise) => {
                let rho = pedersen::random_blinding(&mut OsRng);
                let w = round_witness(st, participant, &self.honest.data, delta, rho)
                    .map_err(|e| e.to_string())?;
                let mut w = with_noise(st, w, Some(seed), &mut OsRng).map_err(|e| e.to_string())?;
                // Mask (and commit to) the rounded update alone.
                let noise = w.private.noise.as_mut().ok_or("a noised witness")?;
                noise.noisy.clone_from(&noise.rounded);
                let gens = Generators::new(noise.noisy.len());
                w.public.commitment =
                    pedersen::commit(&gens, &noise.noisy, &rho).map_err(|e| e.to_string())?;
                let proof = self
                    .honest
                    .key
                    .prove_unchecked(&w, &mut OsRng)
                    .map_err(|e| e.to_string())?;
                let u = proven_update(&w, &proof);
                assert_eq!(u.blinding_limbs, blinding_limbs(&rho));
                Ok(u)
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_that_skip_or_forge_their_noise_are_dropped_and_the_audit_proves_epsilon() {
    let n = HONEST + 2;
    let data = synthetic(40 * n, 3, 17, &LoadOptions::default());
    let holders = partition(&data.train, n, &Partition::Iid, 3).expect("partition");
    let mut job = TrainArgs {
        rounds: Some(ROUNDS),
        hidden: Some("none".into()),
        steps: Some(1),
        batch: Some(2),
        clip: Some(1.0),
        proofs: Some(true),
        tree_depth: Some(6),
        dropout: Some(0.3),
        corruption: Some(0.1),
        round_timeout: Some(90),
        join_timeout: Some(90),
        ..TrainArgs::default()
    }
    .job("proven-dp", data.train.n_features, n, HONEST)
    .expect("job");
    let dim = job.model.param_count();
    let padded = dim.next_power_of_two();
    let params = SkellamParams {
        clip: f64::from(job.hyper.clip_norm),
        noise_multiplier: 1.0,
        granularity: proven_granularity(
            f64::from(job.hyper.clip_norm) / (4.0 * (padded as f64).sqrt()),
            padded,
        ),
        beta: (-0.5f64).exp(),
        min_survivors: 3,
        dim,
    };
    let dp = DpSettings {
        params,
        delta: 1e-5,
        budget: None,
    };
    job.privacy = Some(dp);
    job.proof = job.proof.map(|p| cairn_protocol::wire::ProofSpec {
        noise: Some(params),
        ..p
    });
    job.validate().expect("a valid proven DP job");
    let spec = job.proof.expect("proven");
    let keys = tempfile::tempdir().expect("tempdir");
    let (proving, _) = Proving::load_or_setup(&job, keys.path()).expect("keys");
    let ledger: Ledger = Arc::default();
    let all: Vec<Arc<Holder>> = holders
        .iter()
        .enumerate()
        .map(|(i, rows)| {
            Arc::new(Holder {
                honest: commit_holder(&proving, rows, &spec).expect("commit"),
                attack: match i.checked_sub(HONEST) {
                    None => None,
                    Some(0) => Some(Attack::SkipNoise),
                    Some(_) => Some(Attack::OtherSeed),
                },
                id: Mutex::new(None),
                ledger: Arc::clone(&ledger),
            })
        })
        .collect();

    let holders = holders
        .into_iter()
        .zip(&all)
        .map(|(rows, h)| (rows, Arc::clone(h) as Arc<dyn UpdateProver>))
        .collect();
    let summary = run_job(job, &proving, &data.test, holders).await;
    assert_eq!(summary.error, None, "{:?}", summary.rounds);
    assert_eq!(summary.rounds_completed, ROUNDS, "{:?}", summary.rounds);
    let t = summary.transcript.expect("transcript");

    // Every enrolment carries a noise-seed commitment.
    for r in &t.records {
        if let Entry::Enrolled {
            participant,
            dataset,
            ..
        } = &r.entry
        {
            assert!(
                dataset.noise_seed.is_some(),
                "{participant} enrolled no seed"
            );
        }
    }
    let pid_of_index = participant_of_index(&t);
    let cheaters: Vec<(u32, Attack)> = all[HONEST..]
        .iter()
        .map(|h| {
            let index = h.id.lock().expect("id").expect("proved at least once");
            (pid_of_index(index), h.attack.expect("attacker"))
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
        for (id, attack) in &cheaters {
            let (_, why) = dropped
                .iter()
                .find(|(p, _)| p == id)
                .unwrap_or_else(|| panic!("round {round}: {attack:?} ({id}) not dropped"));
            assert!(why.contains("proof"), "round {round}: {attack:?}: {why}");
            assert!(
                inputs.iter().all(|(p, _)| p != id),
                "{attack:?} contributed"
            );
        }
        // S is the rotated, padded sum of exactly the honest survivors' noisy vectors.
        assert_eq!(update_sum.len(), padded);
        assert_honest_sum(*round, inputs, update_sum, &ledger);
        assert_eq!(inputs.len(), HONEST, "round {round}: survivors");
    }
    assert_eq!(rounds_seen, ROUNDS);

    let report = audit(&t);
    assert!(report.passed(), "{:?}", report.problems);
    let privacy = report
        .privacy
        .as_ref()
        .expect("a DP job's audit states its privacy");
    assert!(privacy.proven, "every released sum's noise is proven");
    assert_eq!(privacy.rounds, ROUNDS);
    let eps = dp.epsilon_after(ROUNDS).expect("ε");
    assert_eq!(privacy.epsilon, Some(eps));
    assert!(eps > 0.0 && eps.is_finite());
    // The sampler's margin over 2 rounds × 5 survivors × 4 coordinates: positive, far below δ.
    let margin = privacy.sampler_delta.expect("the table's margin");
    assert!(margin > 0.0 && margin < 1e-6 * dp.delta, "{margin}");

    // The independent verifier bundle: every survivor's proof verifies with the bare
    // arkworks verifier against its nine public inputs (the six, then the seed commitment,
    // the round and the signs hash); another round in the inputs does not.
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), t.to_bytes()).expect("write");
    let export = from_transcript(file.path()).expect("export");
    assert_eq!(export.proofs.len(), HONEST * ROUNDS as usize);
    let pvk = ark_groth16::prepare_verifying_key(&export.vk);
    for p in &export.proofs {
        assert_eq!(p.inputs.len(), 9, "{}", p.name);
        assert!(
            Groth16::<Bn254>::verify_proof(&pvk, &p.proof, &p.inputs).expect("verifier"),
            "{}",
            p.name
        );
    }
    let mut inputs = export.proofs[0].inputs.clone();
    inputs[7] += ark_bn254::Fr::from(1u64);
    assert!(!Groth16::<Bn254>::verify_proof(&pvk, &export.proofs[0].proof, &inputs).expect("v"));

    // A header claiming more noise than the proofs carry is found out.
    let mut claimed = t.clone();
    if let Entry::Job { privacy, .. } = &mut claimed.records[0].entry {
        let p = privacy.as_mut().expect("DP header");
        p.params.noise_multiplier *= 2.0;
    }
    // Re-chained, so that the header's claim is the only thing wrong.
    let mut rebuilt = Transcript::default();
    for r in claimed.records {
        rebuilt.append(r.entry);
    }
    let report = audit(&rebuilt);
    assert!(
        report
            .problems
            .iter()
            .any(|f| matches!(f.kind, FindingKind::PrivacyNotProven)),
        "{:?}",
        report.problems
    );
}

//! The proof in a federated round: the one place where a round's public facts (the job's
//! model, the round's global model, hyper-parameters and seed, a holder's enrolled
//! dataset) become the circuit's shape and statement. The participant proves with
//! [`prove_update`], the coordinator checks each proof with [`verify_check`] and the
//! aggregate with [`check_sum`], and the auditor re-runs the same two checks from the
//! transcript — so all three build the statement the same way.

use ark_bn254::{Bn254, Fr};
use ark_groth16::PreparedVerifyingKey;
use cairn_circuits::encoding::{
    blinding_from_limb_sums, blinding_limbs, fr_from_bytes, point_from_bytes, point_to_bytes,
    BLINDING_LIMBS,
};
use cairn_circuits::fixed;
use cairn_circuits::merkle::MerkleTree;
use cairn_circuits::pedersen::{self, Generators};
use cairn_circuits::training::dp::signs_hash;
use cairn_circuits::training::proof::{self, Proof};
use cairn_circuits::training::prover::Prover;
use cairn_circuits::training::{
    indices_hash, lifted_digest, model_hash, replayed_update, sampled_digests, trajectory,
    FixedHyper, NoiseInput, NoisePublic, Public, Shape, Trajectory, Witness,
};
use cairn_model::sampling::block_indices;
use cairn_model::{HyperParams, ModelSpec};
use rand::{CryptoRng, RngCore};

use crate::challenge::{chain_commitment, challenge_seed, challenged_steps};
use crate::error::ProofError;
use crate::spec::{DatasetCommitment, ProofSpec, ProvenInput, StepChain};
use crate::statement::{ProofCheck, ProvenSum, RoundStatement};

/// The circuit shape of a job's rounds (with the noise of a DP job: fails when its
/// parameters give no circuit, which [`ProofSpec::problems`] refuses first).
pub fn shape(
    model: &ModelSpec,
    hyper: &HyperParams,
    spec: &ProofSpec,
) -> Result<Shape, ProofError> {
    Ok(Shape {
        model: model.clone(),
        local_steps: hyper.local_steps,
        batch_size: hyper.batch_size,
        tree_depth: spec.tree_depth,
        feature_bits: spec.feature_bits,
        block_rows: spec.block_rows,
        sampled_steps: spec.sampled_steps,
        noise: spec
            .noise
            .as_ref()
            .map(crate::noise::noise_shape)
            .transpose()?,
    })
}

/// Most rows per block when a job does not say: one Merkle path per 8 rows.
pub const DEFAULT_BLOCK_ROWS: u32 = 8;

/// Rows per block when a job does not say: the largest of 8, 4, 2 and 1 that divides the
/// batch size.
pub fn default_block_rows(batch_size: u32) -> u32 {
    let mut b = DEFAULT_BLOCK_ROWS;
    while b > 1 && !batch_size.is_multiple_of(b) {
        b /= 2;
    }
    b
}

/// The [`ProofSpec`] a job announces for tolerance τ, trees of `tree_depth` (index bits
/// over blocks), features of `feature_bits` signed bits and blocks of `block_rows` rows.
pub fn proof_spec(
    tolerance: f32,
    tree_depth: u32,
    feature_bits: u32,
    block_rows: u32,
) -> ProofSpec {
    ProofSpec {
        tolerance,
        tree_depth,
        blinding_limbs: BLINDING_LIMBS as u32,
        feature_bits,
        block_rows,
        sampled_steps: None,
        noise: None,
    }
}

/// The statement of `participant`'s proof in the round `st`, for the dataset it enrolled
/// and the commitment it sent.
pub fn statement(
    st: &RoundStatement,
    participant: u32,
    dataset: &DatasetCommitment,
    input: &ProvenInput,
) -> Result<(Shape, Public), ProofError> {
    let round = RoundPublic::new(st)?;
    let public = round.statement(participant, dataset, input)?;
    Ok((round.shape, public))
}

/// What every proof of one round shares: the circuit shape, the hash of the round's
/// global model and of its hyper-parameters. These Poseidon hashes are most of the cost
/// of building a statement (the model's grows with its size), so a verifier of many proofs
/// of a round (the auditor) computes them once per round with [`RoundPublic::new`] and
/// then each proof's statement with [`RoundPublic::statement`]; [`statement`] is the two
/// in one.
#[derive(Clone, Debug)]
pub struct RoundPublic {
    /// The circuit shape of the round's proofs.
    pub shape: Shape,
    round: u32,
    round_seed: [u8; 32],
    model_hash: Fr,
    hyper_hash: Fr,
    /// Sampled-step rounds: `d_0`, the digest of the global model lifted to 2^48.
    d0: Option<Fr>,
    /// DP rounds: the hash of the round's rotation signs.
    signs_hash: Option<Fr>,
}

impl RoundPublic {
    /// The shared parts of the round `st`'s statements.
    pub fn new(st: &RoundStatement) -> Result<Self, ProofError> {
        let shape = shape(&st.model, &st.hyper, &st.proof)?;
        let model =
            fixed::quantize_all(&st.global).map_err(|e| ProofError::GlobalModel(e.to_string()))?;
        let hyper = FixedHyper::new(&st.hyper, st.proof.tolerance)
            .map_err(|e| ProofError::Settings(e.to_string()))?;
        let signs_hash = match shape.noise {
            Some(_) => Some(signs_hash(&crate::noise::round_signs(
                &st.round_seed,
                st.model.param_count(),
            )?)),
            None => None,
        };
        Ok(Self {
            signs_hash,
            model_hash: model_hash(&model),
            hyper_hash: hyper.hash(&shape),
            round: st.round,
            round_seed: st.round_seed,
            d0: shape.sampled_steps.map(|_| lifted_digest(&model)),
            shape,
        })
    }

    /// The statement of `participant`'s proof in this round, for the dataset it enrolled
    /// and the input it sent (its commitment and, in a sampled-step round, its chain and
    /// beacon): the same [`Public`] as [`Public::new`] or [`Public::sampled`] gives the
    /// prover.
    pub fn statement(
        &self,
        participant: u32,
        dataset: &DatasetCommitment,
        input: &ProvenInput,
    ) -> Result<Public, ProofError> {
        let data_root =
            fr_from_bytes(&dataset.root).map_err(|e| ProofError::DatasetRoot(e.to_string()))?;
        let commitment = point_from_bytes(&input.commitment)
            .map_err(|e| ProofError::Commitment(e.to_string()))?;
        let n_rows =
            usize::try_from(dataset.n_rows).map_err(|_| ProofError::RowCount(dataset.n_rows))?;
        let indices = block_indices(
            self.round_seed,
            participant,
            n_rows,
            self.shape.local_steps,
            self.shape.batch_size,
            self.shape.block_rows,
        );
        let (indices, digests) = match (self.d0, &input.steps) {
            (None, None) => (indices, Vec::new()),
            (None, Some(_)) => return Err(ProofError::UnexpectedChain),
            (Some(_), None) => return Err(ProofError::MissingChain),
            (Some(d0), Some(chain)) => {
                let challenged = challenge_of(&self.shape, self.round, participant, chain)?;
                let digests = chain_digests(chain)?;
                let proved = challenged
                    .iter()
                    .map(|&j| indices[j as usize].clone())
                    .collect::<Vec<_>>();
                (proved, sampled_digests(d0, &digests, &challenged))
            }
        };
        let noise = match (self.signs_hash, &dataset.noise_seed) {
            (None, _) => None,
            (Some(_), None) => return Err(ProofError::MissingNoiseSeed),
            (Some(signs_hash), Some(c)) => Some(NoisePublic {
                seed_commitment: fr_from_bytes(c)
                    .map_err(|e| ProofError::NoiseSeed(e.to_string()))?,
                round: self.round,
                signs_hash,
            }),
        };
        Ok(Public {
            data_root,
            model_hash: self.model_hash,
            indices_hash: indices_hash(&indices),
            hyper_hash: self.hyper_hash,
            commitment,
            digests,
            noise,
        })
    }
}

/// The steps (0-based, ascending) `participant` must prove in sampled-step round `round`
/// of `shape`, given its chain and the beacon it was revealed.
pub fn challenge_of(
    shape: &Shape,
    round: u32,
    participant: u32,
    chain: &StepChain,
) -> Result<Vec<u32>, ProofError> {
    let s = shape.sampled_steps.ok_or(ProofError::UnexpectedChain)?;
    if chain.digests.len() != shape.local_steps as usize {
        return Err(ProofError::ChainLength {
            got: chain.digests.len(),
            steps: shape.local_steps,
        });
    }
    let seed = challenge_seed(
        round,
        participant,
        &chain_commitment(&chain.digests),
        &chain.beacon,
    );
    Ok(challenged_steps(seed, shape.local_steps, s))
}

fn chain_digests(chain: &StepChain) -> Result<Vec<Fr>, ProofError> {
    chain
        .digests
        .iter()
        .enumerate()
        .map(|(j, d)| {
            fr_from_bytes(d).map_err(|e| ProofError::ChainDigest {
                step: j + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Verifies one participant's proof against the round's statement; `Err` says why it
/// does not hold.
pub fn verify_check(
    pvk: &PreparedVerifyingKey<Bn254>,
    check: &ProofCheck,
) -> Result<(), ProofError> {
    verify_input(
        pvk,
        &check.statement,
        check.index,
        &check.dataset,
        &check.input,
    )
}

/// [`verify_check`] from its parts (as the auditor has them).
pub fn verify_input(
    pvk: &PreparedVerifyingKey<Bn254>,
    st: &RoundStatement,
    participant: u32,
    dataset: &DatasetCommitment,
    input: &ProvenInput,
) -> Result<(), ProofError> {
    let (_, public) = statement(st, participant, dataset, input)?;
    check_proof(pvk, &public, &decode_proof(input)?)
}

/// The proof `input` carries, decoded (and its points checked).
pub fn decode_proof(input: &ProvenInput) -> Result<Proof, ProofError> {
    Proof::from_bytes(&input.proof).map_err(|e| ProofError::ProofEncoding(e.to_string()))
}

/// Checks one decoded proof against its statement, with [`verify_input`]'s verdicts.
pub fn check_proof(
    pvk: &PreparedVerifyingKey<Bn254>,
    public: &Public,
    proof: &Proof,
) -> Result<(), ProofError> {
    match proof::verify(pvk, public, proof) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ProofError::DoesNotVerify),
        Err(e) => Err(ProofError::Verifier(e.to_string())),
    }
}

/// True when every proof of `batch` verifies against its statement (one randomised batch
/// equation, [`proof::verify_batch`], with coefficients from the OS's randomness); false
/// when any does not, without saying which: [`check_proof`] each to find out.
pub fn verify_all(pvk: &PreparedVerifyingKey<Bn254>, batch: &[(Public, Proof)]) -> bool {
    proof::verify_batch(pvk, batch, &mut rand::rngs::OsRng).unwrap_or(false)
}

/// The homomorphic check of a proven round: the survivors' commitments add up to a
/// commitment to the unmasked sums, Σ C_u = Σ S_j·G_j + R·H.
pub fn check_sum(sum: &ProvenSum) -> Result<(), ProofError> {
    check_sum_with(&Generators::new(sum.update_sum.len()), sum)
}

/// [`check_sum`] with the Pedersen generators made once (`Generators::new(d)` for the
/// model's d parameters: hashing to the curve costs about as much as the check), for a
/// caller that checks many rounds.
pub fn check_sum_with(gens: &Generators, sum: &ProvenSum) -> Result<(), ProofError> {
    let r = blinding_from_limb_sums(&sum.blinding_limb_sums)
        .map_err(|e| ProofError::Blinding(e.to_string()))?;
    let commitments = sum
        .inputs
        .iter()
        .map(|(p, input)| {
            point_from_bytes(&input.commitment).map_err(|e| ProofError::SurvivorCommitment {
                participant: *p,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expected = pedersen::commit(gens, &sum.update_sum, &r)
        .map_err(|e| ProofError::SumCommitment(e.to_string()))?;
    if pedersen::sum(&commitments) == expected {
        Ok(())
    } else {
        Err(ProofError::SumMismatch {
            survivors: commitments.len(),
        })
    }
}

/// What a holder's proof produces: the fixed-point update it masks (exactly what it
/// committed to), the blinding's limbs, and the commitment and proof to send.
#[derive(Clone, Debug)]
pub struct ProvenUpdate {
    /// What the holder masks, exactly what it committed to: x in the circuit's fixed
    /// point, or in a DP round the rotated, rounded, noisy vector z (d_pad integers).
    pub update: Vec<i64>,
    /// ρ in [`BLINDING_LIMBS`] limbs.
    pub blinding_limbs: Vec<u32>,
    /// C and π.
    pub input: ProvenInput,
}

/// A holder's dataset as the proof sees it: its rows in fixed point, in the order it
/// committed them, and the tree of their blocks.
#[derive(Debug)]
pub struct CommittedData {
    /// Rows (features then label), fixed point: every row of the holder's table, in order
    /// (the ones after the last full block are in no leaf and never trained on).
    pub rows: Vec<Vec<i64>>,
    /// The Poseidon Merkle tree of their blocks ([`cairn_circuits::rows`]).
    pub tree: MerkleTree,
    /// Rows under the root: whole blocks.
    pub committed: usize,
}

impl CommittedData {
    /// Quantises the row-major `features` (`n_features` per row) with their `labels` row
    /// by row, holds every row to the job's format (features within the range
    /// `spec.feature_bits` gives, labels 0 or 1; a feature exactly at the range's upper end
    /// is rounded down one step), and builds the tree of `spec.tree_depth` over blocks of
    /// `spec.block_rows` rows in table order.
    pub fn new(
        features: &[f32],
        n_features: usize,
        labels: &[f32],
        spec: &ProofSpec,
    ) -> Result<Self, ProofError> {
        if n_features == 0 || features.len() != n_features * labels.len() {
            return Err(ProofError::Dataset(format!(
                "{} feature values for {} rows of {n_features}",
                features.len(),
                labels.len()
            )));
        }
        let format = cairn_circuits::rows::RowFormat {
            n_features,
            feature_bits: spec.feature_bits,
            block_rows: spec.block_rows,
        };
        if !(2..=cairn_circuits::rows::MAX_FEATURE_BITS).contains(&spec.feature_bits)
            || spec.block_rows == 0
        {
            return Err(ProofError::Dataset(format!(
                "row format: {} feature bits, blocks of {} rows",
                spec.feature_bits, spec.block_rows
            )));
        }
        let (_, max) = format.feature_range();
        let mut rows = features
            .chunks(n_features)
            .zip(labels)
            .map(|(f, &y)| fixed::quantize_row(f, y))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProofError::Dataset(format!("quantising the rows: {e}")))?;
        for row in &mut rows {
            for v in &mut row[..n_features] {
                if *v == max + 1 {
                    *v = max;
                }
            }
        }
        let leaves = format.leaves(&rows).map_err(|e| {
            ProofError::Dataset(format!(
                "{e}: a proven job holds features to ±{} (proofs.feature_bits = {}); clamp the data to it",
                format.feature_limit(),
                spec.feature_bits
            ))
        })?;
        let committed = leaves.len() * spec.block_rows as usize;
        let tree = MerkleTree::from_leaves(leaves, spec.tree_depth)
            .map_err(|e| ProofError::Dataset(e.to_string()))?;
        Ok(Self {
            rows,
            tree,
            committed,
        })
    }

    /// The dataset root, as enrolment sends it.
    pub fn root(&self) -> [u8; 32] {
        cairn_circuits::encoding::fr_to_bytes(&self.tree.root())
    }
}

/// Proves that `update` (the float trainer's clipped delta) is honest training of the
/// round's model on the rows the round seed gives `participant`: builds the witness by the
/// fixed-point replay (failing when the update strays beyond τ or over the clip bound),
/// commits with a fresh blinding and proves. In a DP round (`st.proof.noise`) the
/// committed vector is the update rotated, rounded and noised from `noise_seed`, the seed
/// the holder enrolled the commitment of ([`crate::noise::noise_seed`]).
pub fn prove_update<R: RngCore + CryptoRng>(
    prover: &Prover,
    st: &RoundStatement,
    participant: u32,
    data: &CommittedData,
    update: &[f32],
    noise_seed: Option<Fr>,
    rng: &mut R,
) -> Result<ProvenUpdate, ProofError> {
    let w = round_witness(
        st,
        participant,
        data,
        update,
        pedersen::random_blinding(rng),
    )?;
    let w = with_noise(st, w, noise_seed, rng)?;
    let proof = prover
        .prove(&w, rng)
        .map_err(|e| ProofError::Proving(e.to_string()))?;
    Ok(proven_update(&w, &proof))
}

/// The witness of `participant`'s round: the rows the round seed gives it, the fixed-point
/// replay of the round's model on them, `update` quantised and committed with `rho`.
/// Fails when the update strays beyond τ or over the clip bound.
pub fn round_witness(
    st: &RoundStatement,
    participant: u32,
    data: &CommittedData,
    update: &[f32],
    rho: pedersen::Scalar,
) -> Result<Witness, ProofError> {
    let (shape, model, hyper, indices) = round_inputs(st, participant, data)?;
    Witness::from_float_update(
        &shape, &data.tree, &data.rows, indices, model, hyper, update, rho,
    )
    .map_err(|e| ProofError::Witness(e.to_string()))
}

/// What `participant`'s proof in round `st` is about, in fixed point: the circuit shape,
/// the global model, the hyper-parameters and the blocks the round seed selects among the
/// holder's committed ones.
#[allow(clippy::type_complexity)]
fn round_inputs(
    st: &RoundStatement,
    participant: u32,
    data: &CommittedData,
) -> Result<(Shape, Vec<i64>, FixedHyper, Vec<Vec<u32>>), ProofError> {
    let shape = shape(&st.model, &st.hyper, &st.proof)?;
    let model =
        fixed::quantize_all(&st.global).map_err(|e| ProofError::GlobalModel(e.to_string()))?;
    let hyper = FixedHyper::new(&st.hyper, st.proof.tolerance)
        .map_err(|e| ProofError::Settings(e.to_string()))?;
    let indices = block_indices(
        st.round_seed,
        participant,
        data.committed,
        st.hyper.local_steps,
        st.hyper.batch_size,
        st.proof.block_rows,
    );
    Ok((shape, model, hyper, indices))
}

/// The update the circuit recomputes for `participant`'s round on `data` (the fixed-point
/// replay of K steps from the round's model on the rows the round seed gives it), as
/// floats: what an honest float trainer must land within τ of.
pub fn replay_update(
    st: &RoundStatement,
    participant: u32,
    data: &CommittedData,
) -> Result<Vec<f32>, ProofError> {
    let (shape, model, hyper, indices) = round_inputs(st, participant, data)?;
    let x = replayed_update(&shape, &data.rows, &indices, &model, &hyper)
        .map_err(|e| ProofError::Replay(e.to_string()))?;
    Ok(x.into_iter().map(fixed::dequantize).collect())
}

/// A sampled-step round's first half for a holder: its K local steps in fixed point from
/// the round's model on the rows the round seed gives it — the trajectory whose digests it
/// commits to ([`chain_of`]) before it learns which steps to prove.
pub fn commit_steps(
    st: &RoundStatement,
    participant: u32,
    data: &CommittedData,
) -> Result<Trajectory, ProofError> {
    let (shape, model, hyper, indices) = round_inputs(st, participant, data)?;
    trajectory(&shape, &data.rows, &indices, &model, &hyper)
        .map_err(|e| ProofError::Replay(e.to_string()))
}

/// The digests a holder sends for its trajectory (`d_1..d_K`).
pub fn chain_of(traj: &Trajectory) -> Vec<[u8; 32]> {
    traj.digests
        .iter()
        .map(cairn_circuits::encoding::fr_to_bytes)
        .collect()
}

/// A sampled-step round's second half: the holder, told `beacon` after it committed to
/// `traj`, proves the challenged steps and that its update is `traj`'s (`w_K` rescaled,
/// minus the round's model: exactly the fixed-point training it committed to).
#[allow(clippy::too_many_arguments)]
pub fn prove_sampled<R: RngCore + CryptoRng>(
    prover: &Prover,
    st: &RoundStatement,
    participant: u32,
    data: &CommittedData,
    traj: &Trajectory,
    beacon: [u8; 32],
    noise_seed: Option<Fr>,
    rng: &mut R,
) -> Result<ProvenUpdate, ProofError> {
    let w = sampled_witness(
        st,
        participant,
        data,
        traj,
        beacon,
        pedersen::random_blinding(rng),
    )?;
    let w = with_noise(st, w, noise_seed, rng)?;
    let proof = prover
        .prove(&w, rng)
        .map_err(|e| ProofError::Proving(e.to_string()))?;
    Ok(proven_update(&w, &proof))
}

/// The witness of [`prove_sampled`], with blinding `rho`.
pub fn sampled_witness(
    st: &RoundStatement,
    participant: u32,
    data: &CommittedData,
    traj: &Trajectory,
    beacon: [u8; 32],
    rho: pedersen::Scalar,
) -> Result<Witness, ProofError> {
    let (shape, model, hyper, indices) = round_inputs(st, participant, data)?;
    let chain = StepChain {
        digests: chain_of(traj),
        beacon,
    };
    let challenged = challenge_of(&shape, st.round, participant, &chain)?;
    let update = traj
        .update(&model)
        .map_err(|e| ProofError::Witness(e.to_string()))?;
    Witness::sampled(
        &shape,
        &data.tree,
        &data.rows,
        &indices,
        traj,
        &challenged,
        model,
        hyper,
        update,
        rho,
    )
    .map_err(|e| ProofError::Witness(e.to_string()))
}

/// `w` noised for a DP round (`st.proof.noise`) with the holder's `noise_seed`, the round
/// and its rotation signs; `w` itself otherwise.
pub fn with_noise<R: RngCore + ?Sized>(
    st: &RoundStatement,
    w: Witness,
    noise_seed: Option<Fr>,
    rng: &mut R,
) -> Result<Witness, ProofError> {
    if st.proof.noise.is_none() {
        return Ok(w);
    }
    let seed = noise_seed.ok_or(ProofError::NoNoiseSeed)?;
    let shape = shape(&st.model, &st.hyper, &st.proof)?;
    let input = NoiseInput {
        seed,
        round: st.round,
        negative: crate::noise::round_signs(&st.round_seed, st.model.param_count())?,
    };
    w.noised(&shape, input, rng)
        .map_err(|e| ProofError::Witness(e.to_string()))
}

/// What a holder sends for witness `w` and its proof: the vector it committed to (x, or
/// in a DP round the noisy rotated update), ρ's limbs, C and π.
pub fn proven_update(w: &Witness, proof: &proof::Proof) -> ProvenUpdate {
    ProvenUpdate {
        blinding_limbs: blinding_limbs(&w.private.rho),
        input: ProvenInput {
            commitment: point_to_bytes(&w.public.commitment),
            proof: proof.to_bytes(),
            steps: None,
        },
        update: w.committed().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_crypto::sign::Signature;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn round_parts_give_the_provers_statement() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let model = ModelSpec::mlp(4, vec![]);
        // 13 rows in blocks of 2: the last row is in no leaf, and everyone agrees on 6 blocks.
        let n_rows = 13;
        let features: Vec<f32> = (0..n_rows * 4).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let labels: Vec<f32> = (0..n_rows).map(|i| (i % 2) as f32).collect();
        let spec = proof_spec(0.01, 4, 20, 2);
        let data = CommittedData::new(&features, 4, &labels, &spec).unwrap();
        assert_eq!(data.committed, 12);
        let st = RoundStatement {
            round: 3,
            global: model.init_params(2),
            model,
            hyper: HyperParams {
                local_steps: 2,
                batch_size: 4,
                learning_rate: 0.1,
                clip_norm: 5.0,
            },
            round_seed: [7; 32],
            proof: spec,
        };
        let dataset = DatasetCommitment {
            root: data.root(),
            n_rows: data.committed as u64,
            signature: Signature(vec![]),
            noise_seed: None,
        };
        let round = RoundPublic::new(&st).unwrap();
        for participant in [0, 1, 4] {
            let update = replay_update(&st, participant, &data).unwrap();
            let w = round_witness(
                &st,
                participant,
                &data,
                &update,
                pedersen::random_blinding(&mut rng),
            )
            .unwrap();
            // The trainer, sampling over all 13 rows, trains on exactly the blocks proved.
            let trained = cairn_model::sampling::round_rows(
                st.round_seed,
                participant,
                n_rows,
                2,
                4,
                Some(2),
            );
            assert_eq!(
                trained,
                cairn_model::sampling::block_rows_of(&w.private.indices, 2)
            );
            let input = ProvenInput {
                commitment: point_to_bytes(&w.public.commitment),
                proof: vec![],
                steps: None,
            };
            let public = round.statement(participant, &dataset, &input).unwrap();
            assert_eq!(public, w.public, "participant {participant}");
            let (shape, again) = statement(&st, participant, &dataset, &input).unwrap();
            assert_eq!((shape, again), (round.shape.clone(), w.public));
        }
        // Another participant's rows are another statement.
        let commitment = ProvenInput {
            commitment: point_to_bytes(
                &round_witness(
                    &st,
                    0,
                    &data,
                    &replay_update(&st, 0, &data).unwrap(),
                    pedersen::random_blinding(&mut rng),
                )
                .unwrap()
                .public
                .commitment,
            ),
            proof: vec![],
            steps: None,
        };
        assert_ne!(
            round
                .statement(0, &dataset, &commitment)
                .unwrap()
                .indices_hash,
            round
                .statement(1, &dataset, &commitment)
                .unwrap()
                .indices_hash
        );
    }

    /// A proven DP round of three holders (logistic on 4 features: n = 5, d_pad = 8): each
    /// proves its noisy rotated update from its committed seed; the statements the
    /// coordinator builds from the enrolled commitments verify; the noisy vectors' sum passes
    /// the aggregate check, carries noise, and decodes near the sum of the updates.
    #[test]
    fn a_dp_round_proves_each_holders_noise_and_its_sum_checks() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let model = ModelSpec::mlp(4, vec![]);
        let dim = model.param_count();
        let params = cairn_privacy::SkellamParams {
            clip: 1.0,
            noise_multiplier: 0.5,
            granularity: crate::noise::proven_granularity(1.0 / 16.0, 8),
            beta: (-0.5f64).exp(),
            min_survivors: 3,
            dim,
        };
        let spec = ProofSpec {
            noise: Some(params),
            ..proof_spec(0.01, 4, 20, 2)
        };
        let st = RoundStatement {
            round: 2,
            global: model.init_params(4),
            model,
            hyper: HyperParams {
                local_steps: 1,
                batch_size: 2,
                learning_rate: 0.5,
                clip_norm: 1.0,
            },
            round_seed: [3; 32],
            proof: spec,
        };
        let shape = shape(&st.model, &st.hyper, &st.proof).unwrap();
        assert!(shape.noise.is_some());
        let (pk, vk) = proof::setup(&shape, &mut rng).unwrap();
        let prover = Prover::new(&shape, pk).unwrap();
        let pvk = proof::prepare(&vk);
        let round = RoundPublic::new(&st).unwrap();
        let mut sum = vec![0i64; 8];
        let mut rho = Vec::new();
        let mut inputs = Vec::new();
        let mut updates = Vec::new();
        for p in 0..3u32 {
            let features: Vec<f32> = (0..8 * 4).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let labels: Vec<f32> = (0..8).map(|i| (i % 2) as f32).collect();
            let data = CommittedData::new(&features, 4, &labels, &spec).unwrap();
            let identity = cairn_crypto::sign::IdentityKey::from_seed(&[p as u8 + 1; 32]);
            let seed = crate::noise::noise_seed(&identity, "dp-job");
            let dataset = DatasetCommitment::sign_with_noise(
                "dp-job",
                data.root(),
                data.committed as u64,
                Some(crate::noise::seed_commitment(seed)),
                &identity,
            );
            dataset.verify("dp-job", &identity.public()).unwrap();
            let update = replay_update(&st, p, &data).unwrap();
            // Without the seed a DP round cannot be proved.
            assert_eq!(
                prove_update(&prover, &st, p, &data, &update, None, &mut rng).err(),
                Some(ProofError::NoNoiseSeed)
            );
            let proven =
                prove_update(&prover, &st, p, &data, &update, Some(seed), &mut rng).unwrap();
            assert_eq!(
                proven.update.len(),
                8,
                "the rotated, padded vector is masked"
            );
            assert_eq!(verify_input(&pvk, &st, p, &dataset, &proven.input), Ok(()));
            // The statement needs the enrolled seed commitment: another one, or none, fails.
            let mut other = dataset.clone();
            other.noise_seed = Some(crate::noise::seed_commitment(seed + Fr::from(1u64)));
            assert_eq!(
                verify_input(&pvk, &st, p, &other, &proven.input),
                Err(ProofError::DoesNotVerify)
            );
            other.noise_seed = None;
            assert_eq!(
                round.statement(p, &other, &proven.input),
                Err(ProofError::MissingNoiseSeed)
            );
            for (s, v) in sum.iter_mut().zip(&proven.update) {
                *s += v;
            }
            rho.push(proven.blinding_limbs.clone());
            inputs.push((p, proven.input));
            updates.push(update);
        }
        let limb_sums = (0..rho[0].len())
            .map(|l| rho.iter().map(|r| u64::from(r[l])).sum())
            .collect();
        let proven_sum = ProvenSum {
            update_sum: sum.clone(),
            blinding_limb_sums: limb_sums,
            inputs,
            threshold: 2,
            survivor_signatures: vec![],
            beacon: None,
        };
        assert_eq!(check_sum(&proven_sum), Ok(()));
        // A sum one off in one coordinate (a holder's vector changed after committing) fails.
        let mut skipped = proven_sum.clone();
        skipped.update_sum[0] += 1;
        assert!(check_sum(&skipped).is_err());
        // Decoded (γ times the inverse rotation) it is the sum of the updates plus noise of
        // variance 3·V/t_min·γ² per coordinate: within 6σ plus the rounding.
        let rotation = cairn_privacy::Rotation::new(
            cairn_privacy::rotation::round_rotation_seed(&st.round_seed),
            dim,
        )
        .unwrap();
        let y: Vec<f64> = sum.iter().map(|&v| v as f64 * params.granularity).collect();
        let decoded = rotation.unrotate(&y).unwrap();
        let sd = (3.0 * params.holder_variance()).sqrt() * params.granularity;
        for (j, got) in decoded.iter().enumerate() {
            let want: f64 = updates.iter().map(|u| f64::from(u[j])).sum();
            assert!(
                (got - want).abs() < 6.0 * sd + 3.0 * params.granularity,
                "coordinate {j}: {got} vs {want} (σ {sd})"
            );
        }
    }

    /// A small sampled-step round (logistic on 4 features, K = 4, B = 2, s = 1).
    fn sampled_round() -> (RoundStatement, CommittedData) {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let n_rows = 16;
        let features: Vec<f32> = (0..n_rows * 4).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let labels: Vec<f32> = (0..n_rows).map(|i| (i % 2) as f32).collect();
        let spec = ProofSpec {
            sampled_steps: Some(1),
            ..proof_spec(0.0, 4, 20, 2)
        };
        let data = CommittedData::new(&features, 4, &labels, &spec).unwrap();
        let model = ModelSpec::mlp(4, vec![]);
        let st = RoundStatement {
            round: 2,
            global: model.init_params(3),
            model,
            hyper: HyperParams {
                local_steps: 4,
                batch_size: 2,
                learning_rate: 0.5,
                clip_norm: 5.0,
            },
            round_seed: [5; 32],
            proof: spec,
        };
        (st, data)
    }

    #[test]
    fn a_sampled_round_proves_and_verifies_against_the_recorded_chain() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let (st, data) = sampled_round();
        let shape = shape(&st.model, &st.hyper, &st.proof).unwrap();
        let (pk, vk) = proof::setup(&shape, &mut rng).unwrap();
        let prover = Prover::new(&shape, pk).unwrap();
        let pvk = proof::prepare(&vk);
        let traj = commit_steps(&st, 1, &data).unwrap();
        let beacon = [42; 32];
        let proven = prove_sampled(&prover, &st, 1, &data, &traj, beacon, None, &mut rng).unwrap();
        // The update is the committed steps' own.
        let model = fixed::quantize_all(&st.global).unwrap();
        assert_eq!(proven.update, traj.update(&model).unwrap());
        let dataset = DatasetCommitment {
            root: data.root(),
            n_rows: data.committed as u64,
            signature: Signature(vec![]),
            noise_seed: None,
        };
        let mut input = proven.input.clone();
        // What the coordinator records: the chain it received and the beacon it told.
        input.steps = Some(StepChain {
            digests: chain_of(&traj),
            beacon,
        });
        assert_eq!(verify_input(&pvk, &st, 1, &dataset, &input), Ok(()));
        // Another beacon is another challenge (or, for the same one, the same statement):
        // whichever it is, a record that differs from what was proved does not verify
        // unless the challenge happens to coincide.
        let challenged = challenge_of(&shape, st.round, 1, input.steps.as_ref().unwrap()).unwrap();
        let mut other = input.clone();
        let mut b = 0u8;
        loop {
            other.steps.as_mut().unwrap().beacon = [b; 32];
            if challenge_of(&shape, st.round, 1, other.steps.as_ref().unwrap()).unwrap()
                != challenged
            {
                break;
            }
            b += 1;
        }
        assert!(verify_input(&pvk, &st, 1, &dataset, &other).is_err());
        // A changed digest, a missing chain and a short chain are refused.
        let mut changed = input.clone();
        // d_K: a public input whatever the challenge.
        changed.steps.as_mut().unwrap().digests[3][0] ^= 1;
        assert!(verify_input(&pvk, &st, 1, &dataset, &changed).is_err());
        let mut missing = input.clone();
        missing.steps = None;
        assert_eq!(
            verify_input(&pvk, &st, 1, &dataset, &missing),
            Err(ProofError::MissingChain)
        );
        let mut short = input.clone();
        short.steps.as_mut().unwrap().digests.pop();
        assert_eq!(
            verify_input(&pvk, &st, 1, &dataset, &short),
            Err(ProofError::ChainLength { got: 3, steps: 4 })
        );
    }

    #[test]
    fn a_one_step_deviation_is_caught_at_the_stated_rate() {
        // 400 rounds' beacons; the holder deviates in its last step (of K = 4, s = 1) and
        // commits to what it computed: caught exactly when step 3 is challenged, at rate
        // 1 − escape(4, 1, 1) = 1/4 (binomial: mean 100, σ ≈ 8.7; 4σ either way).
        let (st, data) = sampled_round();
        let mut traj = commit_steps(&st, 0, &data).unwrap();
        let last = traj.params.len() - 1;
        traj.params[last][0] += 1 << 30;
        traj.digests[last] = cairn_circuits::training::params_digest(&traj.params[last]);
        let n = 400u32;
        let caught = (0..n)
            .filter(|r| {
                let mut beacon = [0u8; 32];
                beacon[..4].copy_from_slice(&r.to_le_bytes());
                let w = sampled_witness(&st, 0, &data, &traj, beacon, pedersen::Scalar::from(3u64));
                match w {
                    Ok(_) => false,
                    Err(e) => {
                        assert!(
                            matches!(&e, ProofError::Witness(why) if why.contains("step 3")),
                            "{e}"
                        );
                        true
                    }
                }
            })
            .count() as f64;
        let p = 1.0 - crate::challenge::escape_probability(4, 1, 1);
        let (mean, sd) = (f64::from(n) * p, (f64::from(n) * p * (1.0 - p)).sqrt());
        assert!(
            (caught - mean).abs() <= 4.0 * sd,
            "caught {caught} of {n}, expected {mean} ± {sd}"
        );
    }
}

//! The one small test circuit, `Squares`, shared by the export unit tests
//! (`circuits/src/export/mod.rs` includes this file as `export::test_circuit`) and the
//! integration tests (`mod common;`): a few public inputs, so a test proves in milliseconds.

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, Proof, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable,
};
use ark_snark::SNARK;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Public `y_i`, private `w`: proves `w · w = y_i − i` for each `i < n`.
#[derive(Clone)]
pub struct Squares {
    /// The witness.
    pub w: Fr,
    /// How many public inputs.
    pub n: usize,
}

impl Squares {
    /// The public inputs `y_i = w · w + i`.
    pub fn inputs(&self) -> Vec<Fr> {
        (0..self.n)
            .map(|i| self.w * self.w + Fr::from(i as u64))
            .collect()
    }
}

impl ConstraintSynthesizer<Fr> for Squares {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let ys: Vec<Variable> = self
            .inputs()
            .into_iter()
            .map(|y| cs.new_input_variable(|| Ok(y)))
            .collect::<Result<_, _>>()?;
        let w = cs.new_witness_variable(|| Ok(self.w))?;
        for (i, y) in ys.into_iter().enumerate() {
            let rhs = LinearCombination::from(y) - (Fr::from(i as u64), Variable::One);
            cs.enforce_r1cs_constraint(|| w.into(), || w.into(), || rhs)?;
        }
        Ok(())
    }
}

/// Keys for `circuit` and an honest proof with its public inputs, all drawn from a
/// ChaCha20 stream seeded with `seed`; the proof is checked to verify.
pub fn keys_and_proof(
    circuit: Squares,
    seed: u64,
) -> (
    ProvingKey<Bn254>,
    VerifyingKey<Bn254>,
    Proof<Bn254>,
    Vec<Fr>,
) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (pk, vk) = Groth16::<Bn254>::circuit_specific_setup(circuit.clone(), &mut rng)
        .expect("the Squares circuit sets up");
    let proof = Groth16::<Bn254>::prove(&pk, circuit.clone(), &mut rng)
        .expect("an honest Squares witness proves");
    let inputs = circuit.inputs();
    assert!(Groth16::<Bn254>::verify(&vk, &inputs, &proof).expect("verification runs"));
    (pk, vk, proof, inputs)
}

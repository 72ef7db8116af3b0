//! The Poseidon gadget: circomlib's permutation in R1CS with the constants `light-poseidon`
//! carries. An x^5 S-box costs 3 constraints; the round-constant additions and MDS mixing
//! are linear and free, so `Poseidon(2)` costs 3·(8·3 + 57) minus the S-boxes of constants.

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_r1cs_std::{fields::fp::FpVar, fields::FieldVar};
use ark_relations::gr1cs::SynthesisError;
use light_poseidon::parameters::bn254_x5::get_poseidon_parameters;

use super::{CHUNK, MAX_INPUTS};

struct Params {
    ark: Vec<Fr>,
    mds: Vec<Vec<Fr>>,
    full_rounds: usize,
    partial_rounds: usize,
}

fn params(width: usize) -> Result<&'static Params, SynthesisError> {
    static PARAMS: OnceLock<Vec<Option<Params>>> = OnceLock::new();
    let all = PARAMS.get_or_init(|| {
        (0..=MAX_INPUTS + 1)
            .map(|t| {
                let p = get_poseidon_parameters::<Fr>(u8::try_from(t).ok()?).ok()?;
                Some(Params {
                    ark: p.ark,
                    mds: p.mds,
                    full_rounds: p.full_rounds,
                    partial_rounds: p.partial_rounds,
                })
            })
            .collect()
    });
    all.get(width)
        .and_then(Option::as_ref)
        .ok_or(SynthesisError::Unsatisfiable)
}

fn sbox(x: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    let x2 = x.square()?;
    let x4 = x2.square()?;
    Ok(x4 * x)
}

/// circomlib's `Poseidon(n)` of `inputs` in the circuit (1 ≤ n ≤ [`MAX_INPUTS`]).
pub fn hash(inputs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(SynthesisError::Unsatisfiable);
    }
    let width = inputs.len() + 1;
    let p = params(width)?;
    let mut state: Vec<FpVar<Fr>> = std::iter::once(FpVar::zero())
        .chain(inputs.iter().cloned())
        .collect();
    let half = p.full_rounds / 2;
    for round in 0..p.full_rounds + p.partial_rounds {
        for (i, s) in state.iter_mut().enumerate() {
            *s += p.ark[round * width + i];
        }
        if round < half || round >= half + p.partial_rounds {
            for s in state.iter_mut() {
                *s = sbox(s)?;
            }
        } else {
            state[0] = sbox(&state[0])?;
        }
        state = p
            .mds
            .iter()
            .map(|row| {
                state
                    .iter()
                    .zip(row)
                    .fold(FpVar::zero(), |acc, (s, m)| acc + s * *m)
            })
            .collect();
    }
    Ok(state.swap_remove(0))
}

/// [`super::hash_vec`] in the circuit.
pub fn hash_vec(xs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    let mut acc = FpVar::constant(Fr::from(xs.len() as u64));
    if xs.is_empty() {
        return hash(&[acc]);
    }
    for chunk in xs.chunks(CHUNK) {
        let input: Vec<FpVar<Fr>> = std::iter::once(acc).chain(chunk.iter().cloned()).collect();
        acc = hash(&input)?;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_r1cs_std::{alloc::AllocVar, GR1CSVar};
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn gadget_matches_native_with_pinned_costs() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        // (inputs, constraints): 3 per S-box, minus the 3 of the constant capacity element's
        // first S-box.
        for (n, cost) in [
            (2usize, 240usize),
            (4, 3 * (8 * 5 + 60) - 3),
            (12, 3 * (8 * 13 + 65) - 3),
        ] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let xs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let vars: Vec<FpVar<Fr>> = xs
                .iter()
                .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
                .collect();
            let h = hash(&vars).unwrap();
            assert_eq!(h.value().unwrap(), super::super::hash(&xs).unwrap());
            assert!(cs.is_satisfied().unwrap());
            assert_eq!(cs.num_constraints(), cost, "width {}", n + 1);
        }
    }

    #[test]
    fn hash_vec_matches_native_with_pinned_costs() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        // A width-t call costs 3·(8·t + partial rounds) less 3 per constant input (the
        // capacity, and the length that leads the first chunk): widths 3, 4 and 13 have 57,
        // 56 and 65 partial rounds. The empty vector hashes constants only.
        let first_13 = 3 * (8 * 13 + 65) - 6; // 11 elements after the length
        let next_13 = 3 * (8 * 13 + 65) - 3;
        for (n, cost) in [
            (0usize, 0usize),
            (1, 3 * (8 * 3 + 57) - 6),
            (11, first_13),
            (12, first_13 + 3 * (8 * 3 + 57) - 3),
            (46, first_13 + 3 * next_13 + 3 * (8 * 4 + 56) - 3),
        ] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let xs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let vars: Vec<FpVar<Fr>> = xs
                .iter()
                .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
                .collect();
            assert_eq!(
                hash_vec(&vars).unwrap().value().unwrap_or_default(),
                super::super::hash_vec(&xs)
            );
            assert!(cs.is_satisfied().unwrap());
            assert_eq!(cs.num_constraints(), cost, "{n} elements");
        }
    }
}

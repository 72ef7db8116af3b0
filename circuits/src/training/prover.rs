//! The Groth16 prover of the training circuit, split so that what is fixed per shape is
//! paid once.
//!
//! arkworks' `Groth16::prove` synthesises the circuit with its constraint matrices for
//! every proof (allocating and inlining every linear combination), then derives the
//! matrices again, and cairn checked satisfaction on top by walking every constraint a
//! third time. The matrices depend on the shape only. [`Prover`] builds them once, from the
//! same setup-mode synthesis the keys were made from, and each proof then:
//!
//! 1. synthesises the **witness only** (`construct_matrices: false`: gadgets compute
//!    values, no linear combination is stored);
//! 2. evaluates `A·z`, `B·z`, `C·z` on the cached matrices, which is both the
//!    **satisfaction check** (`(A·z)∘(B·z) = C·z` row by row) and the first step of the
//!    witness map, then the FFTs of libsnark's R1CS-to-QAP reduction (the one
//!    `ark_groth16::Groth16` uses, so the keys match);
//! 3. runs the multi-scalar multiplications of `ark_groth16`'s prover (its
//!    `create_proof_with_assignment`, restated here because it is private there; arkworks
//!    is MIT/Apache-2.0).
//!
//! Proofs run on the caller's rayon pool, or on the prover's own pool of the size a holder
//! gives it ([`Prover::with_threads`]).
//!
//! The key is checked before use ([`Prover::new`], [`super::proof::check_proving_key`]) and
//! every proof is verified under the key's own verifying key before it is returned
//! ([`Prover::prove`]): a crafted key yields an error, not a proof carrying witness values.

use std::time::{Duration, Instant};

use ark_bn254::{Bn254, Fr, G1Projective, G2Projective};
use ark_ec::{pairing::Pairing, CurveGroup, VariableBaseMSM};
use ark_ff::{FftField, Field, One, PrimeField, UniformRand, Zero};
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use ark_relations::gr1cs::{
    ConstraintSystem, ConstraintSystemRef, Matrix, OptimizationGoal, SynthesisError, SynthesisMode,
    R1CS_PREDICATE_LABEL,
};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use super::circuit::TrainingCircuit;
use super::proof::{check_proving_key, prepare, verify, Proof, ProofError, ProvingKey};
use super::{Shape, Witness};

/// The constraint matrices of one shape, in arkworks' sparse row format, as the setup
/// synthesised them.
#[derive(Clone, Debug)]
pub struct R1cs {
    /// `A`, `B`, `C`, one sparse row per constraint.
    pub matrices: [Matrix<Fr>; 3],
    /// Instance variables, the constant 1 included.
    pub num_instance: usize,
    /// Witness variables.
    pub num_witness: usize,
}

impl R1cs {
    /// Synthesises `shape`'s circuit in setup mode, as key generation does, and keeps its
    /// matrices.
    pub fn of(shape: &Shape) -> Result<Self, ProofError> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        TrainingCircuit::blank(shape).synthesize(&cs)?;
        cs.finalize();
        Self::from_cs(&cs)
    }

    pub(crate) fn from_cs(cs: &ConstraintSystemRef<Fr>) -> Result<Self, ProofError> {
        let mut all = cs.to_matrices()?;
        let r1cs = all
            .remove(R1CS_PREDICATE_LABEL)
            .ok_or(SynthesisError::MissingCS)?;
        let [a, b, c] = <[Matrix<Fr>; 3]>::try_from(r1cs).map_err(|m| ProofError::Malformed {
            what: "constraint system",
            reason: format!("{} R1CS matrices, want 3", m.len()),
        })?;
        Ok(Self {
            matrices: [a, b, c],
            num_instance: cs.num_instance_variables(),
            num_witness: cs.num_witness_variables(),
        })
    }

    /// Constraints.
    pub fn num_constraints(&self) -> usize {
        self.matrices[0].len()
    }

    /// Non-zero entries of `A`, `B` and `C` together (the circuit's density).
    pub fn non_zeros(&self) -> usize {
        self.matrices.iter().flatten().map(Vec::len).sum()
    }
}

/// Where one proof's time went.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProveTimings {
    /// Witness-only synthesis (the gadgets computing their values).
    pub synthesis: Duration,
    /// `A·z`, `B·z`, `C·z` and the satisfaction check.
    pub evaluate: Duration,
    /// The FFTs of the witness map (`h`).
    pub fft: Duration,
    /// The multi-scalar multiplications.
    pub msm: Duration,
    /// Verifying the proof under the key's own verifying key.
    pub verify: Duration,
}

/// A proving key with its shape's constraint matrices: what a holder keeps for a job and
/// proves every round with.
#[derive(Clone, Debug)]
pub struct Prover {
    shape: Shape,
    pk: ProvingKey,
    pvk: ark_groth16::PreparedVerifyingKey<Bn254>,
    r1cs: R1cs,
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
}

impl Prover {
    /// The prover of `shape` with key `pk` (made for that shape by [`super::proof::setup`]
    /// or loaded from a [`super::proof::KeyStore`]). Synthesises the shape once to keep its
    /// matrices: about as long as one witness synthesis with matrices, and the memory of
    /// the matrices (roughly the proving key's size).
    ///
    /// Refuses a key whose structure would let proofs carry witness values
    /// ([`check_proving_key`]: non-identity δ, α, β, γ, the same δ and B-query in both
    /// groups), or whose query lengths are not those of the shape's constraint
    /// system (variables, witness variables, inputs, the QAP domain).
    pub fn new(shape: &Shape, pk: ProvingKey) -> Result<Self, ProofError> {
        let r1cs = R1cs::of(shape)?;
        // The key must be the one of these matrices.
        let want_a = r1cs.num_instance + r1cs.num_witness;
        let want_h = GeneralEvaluationDomain::<Fr>::new(r1cs.num_constraints() + r1cs.num_instance)
            .ok_or(SynthesisError::PolynomialDegreeTooLarge)?
            .size()
            - 1;
        if pk.a_query.len() != want_a
            || pk.vk.gamma_abc_g1.len() != r1cs.num_instance
            || pk.l_query.len() != r1cs.num_witness
            || pk.h_query.len() != want_h
        {
            return Err(ProofError::Malformed {
                what: "proving key",
                reason: format!(
                    "{} A-query bases, {} L-query bases, {} H-query bases and {} inputs; the \
                     shape has {} variables, {} witness variables, {} H bases and {} inputs",
                    pk.a_query.len(),
                    pk.l_query.len(),
                    pk.h_query.len(),
                    pk.vk.gamma_abc_g1.len(),
                    want_a,
                    r1cs.num_witness,
                    want_h,
                    r1cs.num_instance
                ),
            });
        }
        check_proving_key(&pk)?;
        Ok(Self {
            shape: shape.clone(),
            pvk: prepare(&pk.vk),
            pk,
            r1cs,
            pool: None,
        })
    }

    /// The same prover on a pool of its own with `threads` threads (a holder sharing its
    /// machine gives the prover fewer than its cores); without it, proofs run on the
    /// caller's rayon pool.
    pub fn with_threads(mut self, threads: usize) -> Result<Self, ProofError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("cairn-prover-{i}"))
            .build()
            .map_err(|e| ProofError::Malformed {
                what: "prover thread pool",
                reason: e.to_string(),
            })?;
        self.pool = Some(std::sync::Arc::new(pool));
        Ok(self)
    }

    /// The shape's constraint matrices.
    pub fn r1cs(&self) -> &R1cs {
        &self.r1cs
    }

    /// Proves a witness, refusing with [`ProofError::Unsatisfied`] one that does not satisfy
    /// the circuit before any multi-scalar multiplication.
    ///
    /// The proof is verified under the key's own verifying key (`pk.vk`, the one
    /// [`super::proof::KeyStore::load`] holds equal to the job's `.vk` file) before it is
    /// returned, and withheld with [`ProofError::BadProvingKey`] if it does not verify: the
    /// C of a valid proof is fixed by A, B and the public inputs, and A and B are uniform
    /// ([`check_proving_key`]), so a crafted A-, H- or L-query can make no sendable proof
    /// carry witness values (nor can a G2 point off the subgroup in the B-query: B is
    /// checked to be in it). The check is one pairing product, 3–4 ms on the test shapes
    /// ([`ProveTimings::verify`]). The refusal itself is visible: a key that fails only for
    /// some witnesses tells who sees the holder fail one bit, so a holder should drop the
    /// key at the first [`ProofError::BadProvingKey`].
    pub fn prove<R: RngCore + CryptoRng>(
        &self,
        w: &Witness,
        rng: &mut R,
    ) -> Result<Proof, ProofError> {
        self.prove_timed(w, rng).map(|(p, _)| p)
    }

    /// [`Prover::prove`], reporting where the time went.
    pub fn prove_timed<R: RngCore + CryptoRng>(
        &self,
        w: &Witness,
        rng: &mut R,
    ) -> Result<(Proof, ProveTimings), ProofError> {
        self.run(w, true, rng)
    }

    /// What a cheating prover runs: the same prover on whatever assignment the witness
    /// gives, satisfied or not. Its proofs of false statements do not verify; it exists so
    /// that tests and benchmarks can play a dishonest holder end to end. Not verified under
    /// the key either (its proofs are meant not to verify): never for a real witness.
    pub fn prove_unchecked<R: RngCore + CryptoRng>(
        &self,
        w: &Witness,
        rng: &mut R,
    ) -> Result<Proof, ProofError> {
        self.run(w, false, rng).map(|(p, _)| p)
    }

    /// The full assignment `z = (1, inputs, witness)` of `w`, synthesised without matrices.
    pub fn assignment(&self, w: &Witness) -> Result<Vec<Fr>, ProofError> {
        assignment(&self.shape, &self.r1cs, w)
    }

    fn run<R: RngCore + CryptoRng>(
        &self,
        w: &Witness,
        check: bool,
        rng: &mut R,
    ) -> Result<(Proof, ProveTimings), ProofError> {
        // The blinding scalars are drawn here, so the work can move to the prover's pool
        // whatever the caller's generator.
        let (r, s) = (Fr::rand(rng), Fr::rand(rng));
        match &self.pool {
            Some(pool) => pool.install(|| self.run_here(w, check, r, s)),
            None => self.run_here(w, check, r, s),
        }
    }

    fn run_here(
        &self,
        w: &Witness,
        check: bool,
        r: Fr,
        s: Fr,
    ) -> Result<(Proof, ProveTimings), ProofError> {
        let mut t = ProveTimings::default();
        let clock = Instant::now();
        let z = self.assignment(w)?;
        t.synthesis = clock.elapsed();
        let h = witness_map(&self.r1cs, &z, check, &mut t)?;
        let clock = Instant::now();
        let proof = Proof(msms(
            &self.pk,
            r,
            s,
            &h,
            &z[1..],
            self.r1cs.num_instance - 1,
        ));
        t.msm = clock.elapsed();
        if check {
            let clock = Instant::now();
            // B is a sum of the key's G2 points: outside the prime-order subgroup (a key
            // not validated on load) its other component would carry Σ zᵢ·(that of b₂ᵢ).
            if !proof.0.b.is_in_correct_subgroup_assuming_on_curve() {
                return Err(ProofError::BadProvingKey(
                    "the proof's B is not in G2's prime-order subgroup".into(),
                ));
            }
            let ok = verify(&self.pvk, &w.public, &proof)?;
            t.verify = clock.elapsed();
            if !ok {
                return Err(ProofError::BadProvingKey(
                    "the proof does not verify under the key's own verifying key".into(),
                ));
            }
        }
        Ok((proof, t))
    }
}

/// The full assignment `z = (1, inputs, witness)` of `w` for `shape`, synthesised without
/// matrices and checked against the sizes of `r1cs`.
pub(crate) fn assignment(shape: &Shape, r1cs: &R1cs, w: &Witness) -> Result<Vec<Fr>, ProofError> {
    let circuit = TrainingCircuit {
        shape: shape.clone(),
        public: w.public.clone(),
        private: w.private.clone(),
    };
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: false,
        generate_lc_assignments: false,
    });
    circuit.synthesize(&cs)?;
    let mut z = cs.instance_assignment()?;
    let witness = cs.witness_assignment()?;
    if z.len() != r1cs.num_instance || witness.len() != r1cs.num_witness {
        return Err(ProofError::Malformed {
            what: "witness",
            reason: format!(
                "{} inputs and {} witness values for a circuit of {} and {}",
                z.len(),
                witness.len(),
                r1cs.num_instance,
                r1cs.num_witness
            ),
        });
    }
    z.extend(witness);
    Ok(z)
}

/// `w`'s circuit synthesised as arkworks' own `Groth16::prove` does for every proof:
/// constraints and linear combinations built and inlined. [`Prover`] never does this; it is
/// what its shortcuts are checked and measured against (tests, `benches/prover_throughput`).
pub fn synthesize_with_matrices(
    shape: &Shape,
    w: &Witness,
) -> Result<ConstraintSystemRef<Fr>, ProofError> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: true,
        generate_lc_assignments: false,
    });
    TrainingCircuit {
        shape: shape.clone(),
        public: w.public.clone(),
        private: w.private.clone(),
    }
    .synthesize(&cs)?;
    cs.finalize();
    Ok(cs)
}

fn eval_row(row: &[(Fr, usize)], z: &[Fr]) -> Fr {
    row.iter().fold(Fr::zero(), |acc, (c, i)| {
        if c.is_one() {
            acc + z[*i]
        } else {
            acc + z[*i] * c
        }
    })
}

/// libsnark's R1CS-to-QAP witness map (`ark_groth16::r1cs_to_qap::LibsnarkReduction`): the
/// coefficients of `h = (a·b − c) / Z` on the coset, with `A·z`, `B·z`, `C·z` evaluated once
/// and, when `check`, held to `(A·z)∘(B·z) = C·z` first.
fn witness_map(
    r1cs: &R1cs,
    z: &[Fr],
    check: bool,
    t: &mut ProveTimings,
) -> Result<Vec<Fr>, ProofError> {
    let clock = Instant::now();
    let n = r1cs.num_constraints();
    let domain = GeneralEvaluationDomain::<Fr>::new(n + r1cs.num_instance)
        .ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
    let size = domain.size();
    let [ma, mb, mc] = &r1cs.matrices;
    let mut a = vec![Fr::zero(); size];
    let mut b = vec![Fr::zero(); size];
    let mut c = vec![Fr::zero(); size];
    a[..n]
        .par_iter_mut()
        .zip(&mut b[..n])
        .zip(&mut c[..n])
        .zip(ma.par_iter().zip(mb).zip(mc))
        .for_each(|(((a, b), c), ((ra, rb), rc))| {
            *a = eval_row(ra, z);
            *b = eval_row(rb, z);
            *c = eval_row(rc, z);
        });
    if check
        && !a[..n]
            .par_iter()
            .zip(&b[..n])
            .zip(&c[..n])
            .all(|((a, b), c)| *a * b == *c)
    {
        return Err(ProofError::Unsatisfied);
    }
    a[n..n + r1cs.num_instance].clone_from_slice(&z[..r1cs.num_instance]);
    t.evaluate = clock.elapsed();

    let clock = Instant::now();
    let coset = domain
        .get_coset(Fr::GENERATOR)
        .ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
    let to_coset = |v: &mut Vec<Fr>| {
        domain.ifft_in_place(v);
        coset.fft_in_place(v);
    };
    let ((), ((), ())) = rayon::join(
        || to_coset(&mut a),
        || rayon::join(|| to_coset(&mut b), || to_coset(&mut c)),
    );
    let z_inv = domain
        .evaluate_vanishing_polynomial(Fr::GENERATOR)
        .inverse()
        .ok_or(SynthesisError::DivisionByZero)?;
    a.par_iter_mut()
        .zip(&b)
        .zip(&c)
        .for_each(|((a, b), c)| *a = (*a * b - c) * z_inv);
    drop((b, c));
    coset.ifft_in_place(&mut a);
    t.fft = clock.elapsed();
    Ok(a)
}

/// `ark_groth16`'s `create_proof_with_assignment`: A, B (in G1 and G2) and C from the
/// assignment (`z` without its constant 1: `inputs` public inputs, then the witness) and
/// `h`, blinded by `r` and `s`.
fn msms(
    pk: &ProvingKey,
    r: Fr,
    s: Fr,
    h: &[Fr],
    z: &[Fr],
    inputs: usize,
) -> ark_groth16::Proof<Bn254> {
    type G1A = <Bn254 as Pairing>::G1Affine;
    let h: Vec<_> = h.par_iter().map(|v| v.into_bigint()).collect();
    let assignment: Vec<_> = z.par_iter().map(|v| v.into_bigint()).collect();
    let aux = &assignment[inputs..];
    let coeff = |initial: G1Projective, query: &[G1A], vk_param: G1A| -> G1Projective {
        initial + query[0] + G1Projective::msm_bigint(&query[1..], &assignment) + vk_param
    };
    let ((h_acc, l_aux), (g_a, (g1_b, g2_b))) = rayon::join(
        || {
            rayon::join(
                || G1Projective::msm_bigint(&pk.h_query, &h),
                || G1Projective::msm_bigint(&pk.l_query, aux),
            )
        },
        || {
            rayon::join(
                || coeff(pk.delta_g1 * r, &pk.a_query, pk.vk.alpha_g1),
                || {
                    rayon::join(
                        || {
                            if r.is_zero() {
                                G1Projective::zero()
                            } else {
                                coeff(pk.delta_g1 * s, &pk.b_g1_query, pk.beta_g1)
                            }
                        },
                        || {
                            let q = &pk.b_g2_query;
                            pk.vk.delta_g2 * s
                                + q[0]
                                + G2Projective::msm_bigint(&q[1..], &assignment)
                                + pk.vk.beta_g2
                        },
                    )
                },
            )
        },
    );
    let g_c = g_a * s + g1_b * r - pk.delta_g1 * (r * s) + l_aux + h_acc;
    ark_groth16::Proof {
        a: g_a.into_affine(),
        b: g2_b.into_affine(),
        c: g_c.into_affine(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::tests::fixture;

    /// The prover's two shortcuts change nothing a proof depends on: the matrices kept from
    /// the setup-mode synthesis are those a full prove-mode synthesis builds, and the
    /// witness-only synthesis assigns the same values.
    #[test]
    fn cached_matrices_and_witness_only_synthesis_match_a_full_synthesis() {
        for (hidden, k) in [(vec![], 1), (vec![3], 2)] {
            let f = fixture(hidden, k, 0.01);
            let cs = synthesize_with_matrices(&f.shape, &f.witness).unwrap();
            assert!(cs.is_satisfied().unwrap());
            let full = R1cs::from_cs(&cs).unwrap();
            let cached = R1cs::of(&f.shape).unwrap();
            assert_eq!(full.matrices, cached.matrices);
            assert_eq!(
                (full.num_instance, full.num_witness),
                (cached.num_instance, cached.num_witness)
            );
            let mut z = cs.instance_assignment().unwrap();
            z.extend(cs.witness_assignment().unwrap());
            let mut rng = rand::thread_rng();
            let (pk, _) = super::super::proof::setup(&f.shape, &mut rng).unwrap();
            let prover = Prover::new(&f.shape, pk).unwrap();
            assert_eq!(prover.assignment(&f.witness).unwrap(), z);
        }
    }

    /// Item 6 of issue #11, on the assignment itself rather than on the inputs: changing any
    /// one witness value — a rescale's quotient or remainder bit, a sigmoid's segment or
    /// clamp bit, a ReLU gate, a row's range bit, a Pedersen window bit, an update
    /// coordinate, a Merkle sibling — breaks a constraint. The only values the constraints
    /// leave free are the inverses `is_zero` allocates for an input that is zero: they appear
    /// only multiplied by that zero, so no other value depends on them.
    #[test]
    fn changing_any_single_witness_value_breaks_a_constraint() {
        let f = fixture(vec![3], 2, 0.0);
        let r1cs = R1cs::of(&f.shape).unwrap();
        let z = assignment(&f.shape, &r1cs, &f.witness).unwrap();
        let [ma, mb, mc] = &r1cs.matrices;
        // Where each variable occurs: (row, in A, in B, in C).
        let mut occurs: Vec<Vec<usize>> = vec![Vec::new(); z.len()];
        for m in [ma, mb, mc] {
            for (r, row) in m.iter().enumerate() {
                for &(_, v) in row {
                    if occurs[v].last() != Some(&r) {
                        occurs[v].push(r);
                    }
                }
            }
        }
        let holds =
            |r: usize, z: &[Fr]| eval_row(&ma[r], z) * eval_row(&mb[r], z) == eval_row(&mc[r], z);
        assert!((0..r1cs.num_constraints()).all(|r| holds(r, &z)));
        let mut free = Vec::new();
        for v in r1cs.num_instance..z.len() {
            assert!(
                !occurs[v].is_empty(),
                "witness variable {v} is in no constraint"
            );
            let mut changed = z.clone();
            changed[v] += Fr::one();
            if occurs[v].iter().all(|&r| holds(r, &changed)) {
                free.push(v);
            }
        }
        let has = |row: &[(Fr, usize)], v: usize| row.iter().any(|&(_, u)| u == v);
        for &v in &free {
            for &r in &occurs[v] {
                let (a, b) = (has(&ma[r], v), has(&mb[r], v));
                assert!(!has(&mc[r], v), "free variable {v} in C of constraint {r}");
                let other = if a && !b {
                    eval_row(&mb[r], &z)
                } else if b && !a {
                    eval_row(&ma[r], &z)
                } else {
                    panic!("free variable {v} on both sides of constraint {r}")
                };
                assert!(
                    other.is_zero(),
                    "free variable {v} not multiplied by zero in {r}"
                );
            }
        }
        // K·B = 4 sigmoids, each with two `is_zero` checks on its clamp bits (an unclamped
        // value makes one of the two inputs zero): 4 free values of 11,067 here.
        assert!(free.len() <= 2 * 2 * 2, "{} free values", free.len());
        assert!(z.len() - r1cs.num_instance > 5_000);
    }

    #[test]
    fn a_prover_on_a_pool_of_its_own_proves_and_checks_the_same() {
        let f = fixture(vec![], 1, 0.01);
        let mut rng = rand::thread_rng();
        let (pk, vk) = super::super::proof::setup(&f.shape, &mut rng).unwrap();
        let prover = Prover::new(&f.shape, pk).unwrap().with_threads(1).unwrap();
        assert_eq!(
            prover.pool.as_ref().map(|p| p.current_num_threads()),
            Some(1)
        );
        let p = prover.prove(&f.witness, &mut rng).unwrap();
        let pvk = super::super::proof::prepare(&vk);
        assert!(super::super::proof::verify(&pvk, &f.witness.public, &p).unwrap());
        let mut bad = f.witness.clone();
        bad.private.update[0] += 1;
        assert!(matches!(
            prover.prove(&bad, &mut rng),
            Err(ProofError::Unsatisfied)
        ));
    }

    #[test]
    fn a_key_of_another_shape_is_refused() {
        let f = fixture(vec![], 1, 0.01);
        let g = fixture(vec![2], 1, 0.01);
        let (pk, _) = super::super::proof::setup(&g.shape, &mut rand::thread_rng()).unwrap();
        assert!(matches!(
            Prover::new(&f.shape, pk),
            Err(ProofError::Malformed {
                what: "proving key",
                ..
            })
        ));
    }
}

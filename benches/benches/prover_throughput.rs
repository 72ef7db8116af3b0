//! Prover throughput, side by side in one run (`cargo bench -p cairn-benches --bench
//! prover_throughput`; `CAIRN_PROVE=r1|r2|r3` picks the shapes, default `r1`,
//! `CAIRN_PROVE_REPS` the proofs per path, default 3).
//!
//! For each shape, constraints per CPU-second of:
//!
//! - **cairn** — `Prover::prove` (witness-only synthesis, the shape's matrices cached with
//!   the key, satisfaction checked on `A·z`, `B·z`, `C·z`);
//! - **cairn before** — what `prove` did until this bench was written: synthesis with
//!   matrices, a separate `is_satisfied` walk, `to_matrices`, then arkworks' prover on
//!   them;
//! - **bare arkworks** — `ark_groth16::Groth16::prove` of a synthetic R1CS circuit with the
//!   same number of constraints, witness variables and non-zero matrix entries, and the same
//!   share of one-bit witness values (the multi-scalar multiplications are cheap on bits),
//!   whose other values are 32-bit products as in fixed-point training.
//!
//! CPU time, not wall time: these are shared 2-core machines. The median of the reps.

use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::Groth16;
use ark_r1cs_std::{alloc::AllocVar, boolean::Boolean, fields::fp::FpVar, fields::FieldVar};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, OptimizationGoal, SynthesisError,
    R1CS_PREDICATE_LABEL,
};
use ark_snark::SNARK;
use ark_std::UniformRand;
use cairn_circuits::training::prover::{synthesize_with_matrices, Prover};
use cairn_circuits::training::{proof, Shape, Witness};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

mod common;
use common::{cpu_seconds, env_usize, median};

fn witness(shape: &Shape, rng: &mut ChaCha20Rng) -> Witness {
    common::synthetic_witness(shape, 4 * shape.rows_used(), rng).0
}

/// cairn's prover as it was: synthesis with matrices and inlining, `is_satisfied`,
/// `to_matrices`, arkworks' prover.
fn prove_before(pk: &proof::ProvingKey, shape: &Shape, w: &Witness, rng: &mut ChaCha20Rng) {
    let cs = synthesize_with_matrices(shape, w).expect("synthesis");
    assert!(cs.is_satisfied().expect("check"));
    let matrices = cs.to_matrices().expect("matrices");
    let mut full = cs.instance_assignment().expect("instance");
    full.extend(cs.witness_assignment().expect("witness"));
    Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
        pk,
        Fr::rand(rng),
        Fr::rand(rng),
        &matrices[R1CS_PREDICATE_LABEL],
        cs.num_instance_variables(),
        cs.num_constraints(),
        &full,
    )
    .expect("proof");
}

/// The statistics a synthetic circuit copies.
#[derive(Clone, Copy, Debug)]
struct Stats {
    constraints: usize,
    witnesses: usize,
    non_zeros: usize,
    /// Witness values of at most one bit (cheap in the MSMs).
    one_bit: usize,
    /// Witness values wider than 64 bits, negatives counted by their magnitude (the MSMs'
    /// expensive case: hash states, curve coordinates).
    wide: usize,
}

/// A satisfiable synthetic circuit: `bits` boolean witnesses (one booleanity constraint
/// each), then `products` constraints `(Σ_d 2^i·bit + s) · t = c` with `s` a 32-bit
/// witness (a random full-width one for the first `wide` products, so that `c` is wide
/// too), `t` a 32-bit witness and `c` a fresh product, with `d` chosen to match the
/// non-zero count.
#[derive(Clone)]
struct Synthetic {
    bits: usize,
    smalls: usize,
    products: usize,
    wide: usize,
    lc_terms: usize,
    seed: u64,
}

impl Synthetic {
    fn like(s: Stats) -> Self {
        let bits = s.one_bit.min(s.constraints);
        let products = s.constraints - bits;
        // Witnesses: bits + smalls + one product per product constraint.
        let smalls = s.witnesses.saturating_sub(bits + products).max(2);
        // Booleanity b·(1 − b) = 0 has 3 non-zeros (A: b; B: 1, b); a product has
        // (d + 1) + 1 + 1.
        let left = s.non_zeros.saturating_sub(3 * bits);
        let lc_terms = (left / products.max(1)).saturating_sub(3).max(1);
        Self {
            bits,
            smalls,
            products,
            wide: s.wide.min(products),
            lc_terms,
            seed: 5,
        }
    }
}

impl ConstraintSynthesizer<Fr> for Synthetic {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        // The structure and the values from separate streams: setup mode draws no values.
        let mut rng = ChaCha20Rng::seed_from_u64(self.seed);
        let mut values = ChaCha20Rng::seed_from_u64(self.seed + 1);
        let bits: Vec<Boolean<Fr>> = (0..self.bits)
            .map(|_| Boolean::new_witness(cs.clone(), || Ok(values.gen_bool(0.5))))
            .collect::<Result<_, _>>()?;
        let smalls: Vec<FpVar<Fr>> = (0..self.smalls)
            .map(|_| FpVar::new_witness(cs.clone(), || Ok(Fr::from(values.gen::<u32>()))))
            .collect::<Result<_, _>>()?;
        let wide = FpVar::new_witness(cs.clone(), || Ok(Fr::rand(&mut values)))?;
        for k in 0..self.products {
            let mut lc = if k < self.wide {
                wide.clone()
            } else {
                smalls[rng.gen_range(0..smalls.len())].clone()
            };
            for k in 0..self.lc_terms {
                if let Some(b) = bits.get(rng.gen_range(0..bits.len().max(1))) {
                    lc += FpVar::from(b.clone()) * Fr::from(1u64 << (k % 32));
                }
            }
            let t = &smalls[rng.gen_range(0..smalls.len())];
            let c = FpVar::new_witness(cs.clone(), || Ok(lc.value()? * t.value()?))?;
            lc.mul_equals(t, &c)?;
        }
        Ok(())
    }
}

use ark_r1cs_std::GR1CSVar;

fn one_bit_values(z: &[Fr]) -> usize {
    z.iter().filter(|v| v.into_bigint().num_bits() <= 1).count()
}

fn wide_values(z: &[Fr]) -> usize {
    z.iter()
        .filter(|v| v.into_bigint().num_bits() > 64 && (-**v).into_bigint().num_bits() > 64)
        .count()
}

fn cpu_median(reps: usize, mut f: impl FnMut()) -> f64 {
    let times: Vec<f64> = (0..reps)
        .map(|_| {
            let c = cpu_seconds();
            f();
            cpu_seconds() - c
        })
        .collect();
    median(&times)
}

fn run(name: &str, shape: &Shape, reps: usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let w = witness(shape, &mut rng);
    let (pk, vk) = proof::setup(shape, &mut rng).expect("setup");
    let t = Instant::now();
    let prover = Prover::new(shape, pk.clone()).expect("prover");
    let prepare_s = t.elapsed().as_secs_f64();
    let r1cs = prover.r1cs();
    let z = prover.assignment(&w).expect("assignment");
    let stats = Stats {
        constraints: r1cs.num_constraints(),
        witnesses: r1cs.num_witness,
        non_zeros: r1cs.non_zeros(),
        one_bit: one_bit_values(&z[r1cs.num_instance..]),
        wide: wide_values(&z[r1cs.num_instance..]),
    };

    let pvk = proof::prepare(&vk);
    let mut phases = Vec::new();
    let cairn = cpu_median(reps, || {
        let (p, t) = prover.prove_timed(&w, &mut rng).expect("prove");
        assert!(proof::verify(&pvk, &w.public, &p).expect("verify"));
        phases.push(t);
    });
    let before = cpu_median(reps, || prove_before(&pk, shape, &w, &mut rng));

    let synthetic = Synthetic::like(stats);
    let (spk, svk) =
        Groth16::<Bn254>::circuit_specific_setup(synthetic.clone(), &mut rng).expect("setup");
    let scs = ConstraintSystem::<Fr>::new_ref();
    scs.set_optimization_goal(OptimizationGoal::Constraints);
    synthetic
        .clone()
        .generate_constraints(scs.clone())
        .expect("synthetic");
    scs.finalize();
    assert!(
        scs.is_satisfied().expect("check"),
        "the synthetic circuit holds"
    );
    let s_nnz: usize = scs.to_matrices().expect("m")[R1CS_PREDICATE_LABEL]
        .iter()
        .flatten()
        .map(Vec::len)
        .sum();
    let s_stats = Stats {
        constraints: scs.num_constraints(),
        witnesses: scs.num_witness_variables(),
        non_zeros: s_nnz,
        one_bit: one_bit_values(&scs.witness_assignment().expect("w")),
        wide: wide_values(&scs.witness_assignment().expect("w")),
    };
    let spvk = Groth16::<Bn254>::process_vk(&svk).expect("vk");
    let bare = cpu_median(reps, || {
        let p = Groth16::<Bn254>::prove(&spk, synthetic.clone(), &mut rng).expect("prove");
        assert!(Groth16::<Bn254>::verify_with_processed_vk(&spvk, &[], &p).expect("verify"));
    });

    let rate = |cpu: f64, n: usize| n as f64 / cpu;
    println!("\n{}", common::shape_heading(name, shape));
    println!(
        "| circuit | constraints | witnesses | non-zeros | one-bit values | wider than 64 bits |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (what, s) in [("cairn", stats), ("synthetic", s_stats)] {
        let pct = |n: usize| 100.0 * n as f64 / s.witnesses as f64;
        println!(
            "| {what} | {} | {} | {} | {} ({:.0}%) | {} ({:.0}%) |",
            s.constraints,
            s.witnesses,
            s.non_zeros,
            s.one_bit,
            pct(s.one_bit),
            s.wide,
            pct(s.wide)
        );
    }
    println!("\n| prover | CPU-s per proof (median of {reps}) | constraints per CPU-s | vs bare |");
    println!("|---|---:|---:|---:|");
    let bare_rate = rate(bare, s_stats.constraints);
    for (what, cpu, n) in [
        ("cairn `Prover::prove`", cairn, stats.constraints),
        (
            "cairn before (synthesis with matrices)",
            before,
            stats.constraints,
        ),
        (
            "bare arkworks, synthetic circuit",
            bare,
            s_stats.constraints,
        ),
    ] {
        println!(
            "| {what} | {cpu:.2} | {:.0} | {:.2}× |",
            rate(cpu, n),
            rate(cpu, n) / bare_rate
        );
    }
    let mid = |f: fn(&cairn_circuits::training::prover::ProveTimings) -> f64| {
        median(&phases.iter().map(f).collect::<Vec<_>>())
    };
    println!(
        "\ncairn's phases (wall, median): synthesis {:.2} s, A·z/B·z/C·z + check {:.2} s, FFTs {:.2} s, MSMs {:.2} s; matrices built once in {prepare_s:.2} s",
        mid(|t| t.synthesis.as_secs_f64()),
        mid(|t| t.evaluate.as_secs_f64()),
        mid(|t| t.fft.as_secs_f64()),
        mid(|t| t.msm.as_secs_f64()),
    );
    println!(
        "target: cairn ≥ 0.8× the bare rate — {}",
        if rate(cairn, stats.constraints) >= 0.8 * bare_rate {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let which = std::env::var("CAIRN_PROVE").unwrap_or_else(|_| "r1".into());
    let reps = env_usize("CAIRN_PROVE_REPS", 3);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# Prover throughput ({threads} threads)");
    for name in ["R1", "R2", "R3"] {
        if which.to_lowercase().contains(&name.to_lowercase()) {
            run(name, &common::reference_shape(name), reps);
        }
    }
}

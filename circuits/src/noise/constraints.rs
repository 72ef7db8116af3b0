//! The noise PRG and sampler in R1CS: the same words and draws as [`super::uniforms`] and
//! [`super::sample`], with the costs of the module docs (pinned by the tests).
//!
//! Soundness, in short: a block's bits are its **canonical** decomposition (254 Booleans that
//! recompose to the block and, as an integer, are below p), so each word is a function of the
//! seed and the round; the draw's index i = B·a + b has one-hot digits (Boolean α and β, each
//! summing to 1), so each product α_a · M_a is M_a for the one row a named and 0 for the
//! others, each inner sum M_a = Σ_b β_b·(threshold of index B·a + b) is that of the one column
//! b named, and the thresholds read are L = T_{i−1} and H = T_i for the one index i the prover
//! names (the interval [2^64, 0) for a padding index i > 2K). U − L and H − 1 − U both
//! decompose into 64 bits, which in the field forces L ≤ U < H as integers (a negative
//! difference wraps to above p − 2^64; their sum H − L − 1 would have to be below 2^65, which
//! the padding's −2^64 − 1 is not). Together they pin i to `sample(U)`: the thresholds increase
//! strictly, so the intervals [T_{i−1}, T_i) are disjoint and cover [0, 2^64). This holds for
//! any field element U (the two checks alone bound it by 2^65), so [`sample`] takes U's value
//! only.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};
use ark_r1cs_std::{
    alloc::AllocVar, boolean::Boolean, eq::EqGadget, fields::fp::FpVar, fields::FieldVar, GR1CSVar,
};
use ark_relations::gr1cs::SynthesisError;

use super::{check_table, COMMIT_DOMAIN, PRG_DOMAIN, WORDS_PER_BLOCK, WORD_BITS};
use crate::fixed::constraints::unsigned_bits;
use crate::fixed::to_field;
use crate::poseidon::constraints as poseidon;

/// A uniform word in the circuit: its 64 Booleans (little-endian) and its value (their linear
/// combination, so known to be below 2^64).
#[derive(Clone, Debug)]
pub struct UniformVar {
    /// Bits 0..64 of the word, little-endian.
    pub bits: Vec<Boolean<Fr>>,
    /// Σ 2^t · `bits[t]`.
    pub value: FpVar<Fr>,
}

/// [`super::round_tag`] of a round variable (or constant): `PRG_DOMAIN · 2^32 + round`. The
/// caller binds `round` (a public input or a constant below 2^32). Free.
pub fn round_tag(round: &FpVar<Fr>) -> FpVar<Fr> {
    round + FpVar::constant(Fr::from(u128::from(PRG_DOMAIN) << 32))
}

/// [`super::seed_commitment`] in the circuit: Poseidon(`COMMIT_DOMAIN`, seed).
pub fn seed_commitment(seed: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon::hash(&[FpVar::constant(Fr::from(COMMIT_DOMAIN)), seed.clone()])
}

/// The canonical little-endian bits of `h`, as `h.to_bits_le()` gives them (254 Booleans, one
/// recomposition constraint, `Boolean::enforce_in_field_le`), except that the witness bits are
/// those of `claimed` when given: an honest prover passes `None` (h's own integer); a test
/// passes another integer to play a cheating prover.
fn canonical_bits(
    h: &FpVar<Fr>,
    claimed: Option<<Fr as PrimeField>::BigInt>,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    if h.is_constant() {
        return Ok(h
            .value()?
            .into_bigint()
            .to_bits_le()
            .into_iter()
            .take(Fr::MODULUS_BIT_SIZE as usize)
            .map(Boolean::constant)
            .collect());
    }
    let cs = h.cs();
    let int = claimed.or_else(|| h.value().ok().map(|v| v.into_bigint()));
    let bits: Vec<Boolean<Fr>> = (0..Fr::MODULUS_BIT_SIZE as usize)
        .map(|t| {
            Boolean::new_witness(cs.clone(), || {
                int.map(|i| i.get_bit(t))
                    .ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect::<Result<_, _>>()?;
    // Σ 2^t b_t wraps mod p, so the recomposition alone would admit h + p too: for 254 bits
    // `le_bits_to_fp` also enforces Σ 2^t b_t < p (`Boolean::enforce_in_field_le`).
    Boolean::le_bits_to_fp(&bits)?.enforce_equal(h)?;
    Ok(bits)
}

/// The three words of block `j` of the round, with the block's bits as `claimed` (see
/// [`canonical_bits`]).
pub(crate) fn block_words_claiming(
    seed: &FpVar<Fr>,
    round: &FpVar<Fr>,
    j: u64,
    claimed: Option<<Fr as PrimeField>::BigInt>,
) -> Result<Vec<UniformVar>, SynthesisError> {
    let h = poseidon::hash(&[seed.clone(), round_tag(round), FpVar::constant(Fr::from(j))])?;
    let bits = canonical_bits(&h, claimed)?;
    bits.chunks(WORD_BITS)
        .take(WORDS_PER_BLOCK)
        .map(|c| {
            Ok(UniformVar {
                bits: c.to_vec(),
                value: Boolean::le_bits_to_fp(c)?,
            })
        })
        .collect()
}

/// The three words of block `j` of round `round` for `seed` ([`super::block_words`] of
/// [`super::block`]). Costs [`super::BLOCK_CONSTRAINTS`] with a constant round, 3 more with a
/// variable one.
pub fn block_words(
    seed: &FpVar<Fr>,
    round: &FpVar<Fr>,
    j: u64,
) -> Result<Vec<UniformVar>, SynthesisError> {
    block_words_claiming(seed, round, j, None)
}

/// The first `count` uniform words of the round, as [`super::uniforms`]: ⌈count/3⌉ blocks.
pub fn uniforms(
    seed: &FpVar<Fr>,
    round: &FpVar<Fr>,
    count: usize,
) -> Result<Vec<UniformVar>, SynthesisError> {
    let mut words = Vec::with_capacity(count.next_multiple_of(WORDS_PER_BLOCK));
    for j in 0..count.div_ceil(WORDS_PER_BLOCK) as u64 {
        words.extend(block_words(seed, round, j)?);
    }
    words.truncate(count);
    Ok(words)
}

/// The draw [`super::sample`] of the word `u` from the public table (circuit constants), as a
/// field element (−x for negative x). Costs [`super::draw_constraints`]`(k)` (3A + B + 132 for
/// the levels (A, B) = [`super::draw_levels`]`(k)`, 2K + 132 for K ≤ 7). `Unsatisfiable` for a
/// table [`super::check_table`] rejects.
pub fn sample(thresholds: &[u64], k: i64, u: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    // A value that is no `u64` cannot be drawn from: any index leaves the circuit unsatisfied.
    let index = u
        .value()
        .ok()
        .map(|v| word_of(v).map_or(0, |u| (super::sample(thresholds, k, u) + k) as usize));
    sample_with_index(thresholds, k, u, index)
}

/// [`sample`] with the prover's claimed index i = X + K: the witness digits are a = ⌊i/B⌋ and
/// b = i mod B for the levels (A, B) = [`super::draw_levels`]`(k)`, and an index past A·B sets
/// no bit. The constraints hold only for the index [`super::sample`] gives. `None` in setup
/// (no values).
pub fn sample_with_index(
    thresholds: &[u64],
    k: i64,
    u: &FpVar<Fr>,
    index: Option<usize>,
) -> Result<FpVar<Fr>, SynthesisError> {
    let (outer, inner) = super::draw_levels(thresholds.len() / 2);
    let digits = index.map(|i| {
        let (a, b) = if i < outer * inner {
            (i / inner, i % inner)
        } else {
            (outer, inner)
        };
        (one_hot_of(outer, a), one_hot_of(inner, b))
    });
    sample_with_digits(
        thresholds,
        k,
        u,
        digits.as_ref().map(|d| &d.0[..]),
        digits.as_ref().map(|d| &d.1[..]),
    )
}

/// The vector of `len` Booleans with only entry `hot` set (none if `hot ≥ len`).
fn one_hot_of(len: usize, hot: usize) -> Vec<bool> {
    (0..len).map(|j| j == hot).collect()
}

/// [`sample`] with the prover's bits for the two levels as given (a missing entry is false):
/// `alpha` for the A rows (ignored where A = 1, a constant true), `beta` for the B columns. An
/// honest prover's are one-hot at the digits of `sample`'s index; a test passes others to play
/// a cheating prover.
pub(crate) fn sample_with_digits(
    thresholds: &[u64],
    k: i64,
    u: &FpVar<Fr>,
    alpha: Option<&[bool]>,
    beta: Option<&[bool]>,
) -> Result<FpVar<Fr>, SynthesisError> {
    check_table(thresholds, k).map_err(|_| SynthesisError::Unsatisfiable)?;
    if u.is_constant() {
        let x = word_of(u.value()?).ok_or(SynthesisError::Unsatisfiable)?;
        return Ok(FpVar::constant(to_field(
            super::sample(thresholds, k, x).into(),
        )));
    }
    let cs = u.cs();
    let slots = thresholds.len();
    let (outer, inner) = super::draw_levels(slots / 2);
    let bits = |len: usize, hot: Option<&[bool]>| -> Result<Vec<Boolean<Fr>>, SynthesisError> {
        (0..len)
            .map(|j| {
                Boolean::new_witness(cs.clone(), || {
                    hot.map(|h| h.get(j).copied().unwrap_or(false))
                        .ok_or(SynthesisError::AssignmentMissing)
                })
            })
            .collect()
    };
    // A single row needs no row digit: its one Boolean would be forced to 1.
    let alpha = if outer == 1 {
        vec![Boolean::TRUE]
    } else {
        bits(outer, alpha)?
    };
    let beta = bits(inner, beta)?;
    // The interval [T_{i−1}, T_i) of index i (T_{−K−1} = 0, T_K = 2^64), and the empty
    // [2^64, 0) for a padding index i > 2K.
    let two64 = to_field(1i128 << 64);
    let lower = |i: usize| match i {
        0 => Fr::from(0u64),
        i if i <= slots => Fr::from(thresholds[i - 1]),
        _ => two64,
    };
    let upper = |i: usize| match i {
        i if i < slots => Fr::from(thresholds[i]),
        i if i == slots => two64,
        _ => Fr::from(0u64),
    };
    let beta_f: Vec<FpVar<Fr>> = beta.iter().map(|b| FpVar::from(b.clone())).collect();
    let row_sum = |a: usize, at: &dyn Fn(usize) -> Fr| {
        beta_f
            .iter()
            .enumerate()
            .fold(FpVar::zero(), |acc, (b, v)| acc + v * at(inner * a + b))
    };
    // α_a · M_a in one constraint (also when M_a is a constant).
    let select = |alpha_a: &Boolean<Fr>, m: &FpVar<Fr>| -> Result<FpVar<Fr>, SynthesisError> {
        let p = FpVar::new_witness(cs.clone(), || {
            Ok(if alpha_a.value()? {
                m.value()?
            } else {
                Fr::from(0u64)
            })
        })?;
        FpVar::from(alpha_a.clone()).mul_equals(m, &p)?;
        Ok(p)
    };
    let mut lo = FpVar::zero();
    let mut hi = FpVar::zero();
    let mut row = FpVar::zero();
    for (a, alpha_a) in alpha.iter().enumerate() {
        let (m_lo, m_hi) = (row_sum(a, &lower), row_sum(a, &upper));
        if outer == 1 {
            (lo, hi) = (m_lo, m_hi);
        } else {
            lo += select(alpha_a, &m_lo)?;
            hi += select(alpha_a, &m_hi)?;
            row += FpVar::from(alpha_a.clone()) * Fr::from(a as u64);
        }
    }
    if outer > 1 {
        alpha
            .iter()
            .fold(FpVar::zero(), |acc, b| acc + FpVar::from(b.clone()))
            .enforce_equal(&FpVar::one())?;
    }
    beta_f
        .iter()
        .fold(FpVar::zero(), |acc, b| acc + b)
        .enforce_equal(&FpVar::one())?;
    unsigned_bits(&(u - &lo), WORD_BITS as u32)?;
    unsigned_bits(&(hi - FpVar::one() - u), WORD_BITS as u32)?;
    let column = beta_f
        .iter()
        .enumerate()
        .fold(FpVar::zero(), |acc, (b, v)| acc + v * Fr::from(b as u64));
    Ok(row * Fr::from(inner as u64) + column - FpVar::constant(to_field(k.into())))
}

/// The `u64` a field element is, if it is one.
fn word_of(f: Fr) -> Option<u64> {
    let limbs = f.into_bigint().0;
    (limbs[1] == 0 && limbs[2] == 0 && limbs[3] == 0).then_some(limbs[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::from_field;
    use crate::noise::{self, BLOCK_CONSTRAINTS};
    use ark_bn254::Bn254;
    use ark_groth16::Groth16;
    use ark_relations::gr1cs::{
        ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, SynthesisMode,
    };
    use ark_snark::SNARK;
    use ark_std::UniformRand;
    use cairn_privacy::SkellamTable;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn witness(cs: &ConstraintSystemRef<Fr>, v: Fr) -> FpVar<Fr> {
        FpVar::new_witness(cs.clone(), || Ok(v)).expect("witness")
    }

    fn signed(v: &FpVar<Fr>) -> i64 {
        i64::try_from(from_field(v.value().expect("value")).expect("small")).expect("an i64")
    }

    #[test]
    fn prg_matches_native_with_pinned_cost() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let seed = Fr::rand(&mut rng);
        // A constant round, then the round as a witness (a public input in a real circuit).
        for (round_var, per_block) in [(false, BLOCK_CONSTRAINTS), (true, BLOCK_CONSTRAINTS + 3)] {
            for count in [1usize, 3, 4, 8] {
                let cs = ConstraintSystem::<Fr>::new_ref();
                let s = witness(&cs, seed);
                let r = if round_var {
                    witness(&cs, Fr::from(5u64))
                } else {
                    FpVar::constant(Fr::from(5u64))
                };
                let before = cs.num_constraints();
                let words = uniforms(&s, &r, count).expect("test synthesis");
                let cost = cs.num_constraints() - before;
                let native = noise::uniforms(seed, 5, count);
                assert_eq!(words.len(), count);
                for (w, &u) in words.iter().zip(&native) {
                    assert_eq!(w.value.value().expect("test synthesis"), Fr::from(u));
                    let bits: Vec<bool> = w
                        .bits
                        .iter()
                        .map(|b| b.value().expect("test synthesis"))
                        .collect();
                    assert_eq!(bits, (0..64).map(|t| u >> t & 1 == 1).collect::<Vec<_>>());
                }
                assert!(cs.is_satisfied().expect("test synthesis"));
                println!("PRG: {count} words, round variable {round_var}: {cost} constraints");
                assert_eq!(cost, count.div_ceil(3) * per_block, "{count} words");
            }
        }
        // The block costs the Poseidon(3) call and arkworks' own canonical decomposition.
        let cs = ConstraintSystem::<Fr>::new_ref();
        let s = witness(&cs, seed);
        let h = poseidon::hash(&[
            s,
            round_tag(&FpVar::constant(Fr::from(5u64))),
            FpVar::constant(Fr::from(0u64)),
        ])
        .expect("test synthesis");
        assert_eq!(cs.num_constraints(), 255);
        ark_r1cs_std::convert::ToBitsGadget::to_bits_le(&h).expect("test synthesis");
        assert_eq!(cs.num_constraints(), BLOCK_CONSTRAINTS);
        // A constant seed needs no constraints, and gives the same words.
        let words = uniforms(&FpVar::constant(seed), &FpVar::constant(Fr::from(5u64)), 4)
            .expect("test synthesis");
        for (w, u) in words.iter().zip(noise::uniforms(seed, 5, 4)) {
            assert_eq!(w.value.value().expect("test synthesis"), Fr::from(u));
        }
        // The commitment gadget matches too.
        let cs = ConstraintSystem::<Fr>::new_ref();
        let c = seed_commitment(&witness(&cs, seed)).expect("test synthesis");
        assert_eq!(
            c.value().expect("test synthesis"),
            noise::seed_commitment(seed)
        );
        assert!(cs.is_satisfied().expect("test synthesis"));
    }

    #[test]
    fn block_bits_cannot_be_another_integer() {
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let round = FpVar::constant(Fr::from(2u64));
        // Find a seed whose block h has h + p < 2^254, so h + p is a second 254-bit
        // representative of the same field element (about 19% of blocks).
        let (seed, h) = loop {
            let seed = Fr::rand(&mut rng);
            let h = noise::block(seed, 2, 0);
            let mut alt = h.into_bigint();
            alt.add_with_carry(&Fr::MODULUS);
            if alt.num_bits() <= Fr::MODULUS_BIT_SIZE {
                break (seed, h);
            }
        };
        let mut non_canonical = h.into_bigint();
        non_canonical.add_with_carry(&Fr::MODULUS);
        let other_block = noise::block(seed + Fr::from(1u64), 2, 0).into_bigint();
        for (claimed, ok) in [
            (None, true),
            (Some(h.into_bigint()), true),
            (Some(non_canonical), false),
            (Some(other_block), false),
        ] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let s = witness(&cs, seed);
            let words = block_words_claiming(&s, &round, 0, claimed).expect("test synthesis");
            assert_eq!(
                cs.is_satisfied().expect("test synthesis"),
                ok,
                "{claimed:?}"
            );
            if !ok {
                // The cheating words really differ from the PRG's.
                let native = noise::block_words(h);
                let got: Vec<Fr> = words
                    .iter()
                    .map(|w| w.value.value().expect("test synthesis"))
                    .collect();
                assert_ne!(got, native.map(Fr::from).to_vec());
            }
        }
    }

    /// Tables: the Skellam tables of V = 8 (K = 32) and V = 1000 (K = 290), and hand-made tiny
    /// ones (single-level).
    fn tables() -> Vec<(Vec<u64>, i64)> {
        let t8 = SkellamTable::new(8.0).expect("V = 8 table");
        let t1000 = SkellamTable::new(1000.0).expect("V = 1000 table");
        vec![
            (t8.thresholds().to_vec(), t8.support().1),
            (t1000.thresholds().to_vec(), t1000.support().1),
            (vec![], 0),
            (vec![5, 9], 1),
            (vec![1, 2, 1 << 63, u64::MAX], 2),
            (vec![0, 1, 2, 3, 4, 5], 3),
        ]
    }

    fn probes(thresholds: &[u64], rng: &mut ChaCha20Rng, random: usize) -> Vec<u64> {
        let mut u = vec![0, 1, u64::MAX - 1, u64::MAX];
        for &t in thresholds {
            u.extend([t.saturating_sub(1), t, t.saturating_add(1)]);
        }
        u.extend((0..random).map(|_| rng.gen::<u64>()));
        u
    }

    /// An evenly spaced table of support [−k, k] (2k strictly increasing thresholds).
    fn even_table(k: usize) -> Vec<u64> {
        let step = u64::MAX / (2 * k as u64 + 1);
        (1..=2 * k as u64).map(|j| j * step).collect()
    }

    #[test]
    fn levels_and_their_cost() {
        // The pinned layouts and counts of the module docs' table, against the one-hot's.
        for (k, levels, cost) in [
            (0, (1, 1), 132),
            (5, (1, 11), 142),
            (7, (1, 15), 146),
            (8, (3, 6), 147),
            (32, (5, 13), 160),
            (290, (15, 39), 216),
            (2_895, (46, 126), 396),
            (9_155, (80, 229), 601),
        ] {
            assert_eq!(noise::draw_levels(k), levels, "K {k}");
            assert_eq!(noise::draw_constraints(k), cost, "K {k}");
            assert!(cost <= 2 * k + 132, "K {k}");
        }
        // The levels cover the 2K + 1 indices with fewer than B padding ones, and no B does
        // better (an exhaustive search against the bounded one).
        for k in 0..700usize {
            let n = 2 * k + 1;
            let (a, b) = noise::draw_levels(k);
            assert!(a * b >= n && a * b < n + b, "K {k}");
            let best = (2..n)
                .map(|b| n.div_ceil(b))
                .zip(2..n)
                .filter(|&(a, _)| a > 1)
                .map(|(a, b)| 3 * a + b + 132)
                .fold(n + 131, usize::min);
            assert_eq!(noise::draw_constraints(k), best, "K {k}");
        }
    }

    #[test]
    fn sampler_matches_native_with_pinned_cost() {
        let mut rng = ChaCha20Rng::seed_from_u64(23);
        for (t, k) in tables() {
            let mut seen = std::collections::BTreeSet::new();
            for u in probes(&t, &mut rng, 100) {
                let cs = ConstraintSystem::<Fr>::new_ref();
                let uv = witness(&cs, Fr::from(u));
                let before = cs.num_constraints();
                let x = sample(&t, k, &uv).expect("synthesis");
                let want = noise::sample(&t, k, u);
                assert_eq!(signed(&x), want, "K {k} u {u}");
                assert!(cs.is_satisfied().expect("satisfied"), "K {k} u {u}");
                let cost = cs.num_constraints() - before;
                assert_eq!(cost, noise::draw_constraints(k as usize), "K {k}");
                let cost_by_hand = match noise::draw_levels(k as usize) {
                    (1, b) => b + 131,
                    (a, b) => a + b + 2 + 2 * a + 2 * 65,
                };
                assert_eq!(cost, cost_by_hand, "K {k}");
                seen.insert(want);
            }
            // The probes reach every value of the support that has a slot (the last table
            // gives −3 none: T_{−3} = 0).
            let slots = t.len() + 1 - usize::from(t.first() == Some(&0));
            assert_eq!(seen.len(), slots, "K {k}");
            println!(
                "draw, K = {k}: levels {:?}, {} constraints (one-hot: {})",
                noise::draw_levels(k as usize),
                noise::draw_constraints(k as usize),
                2 * k + 132
            );
        }
        // A malformed table is refused at synthesis.
        let cs = ConstraintSystem::<Fr>::new_ref();
        let uv = witness(&cs, Fr::from(3u64));
        assert!(sample(&[2, 2], 1, &uv).is_err());
        assert!(sample(&[1, 2, 3], 1, &uv).is_err());
    }

    #[test]
    fn the_count_is_draw_constraints_for_many_k() {
        let mut rng = ChaCha20Rng::seed_from_u64(27);
        for k in [1usize, 6, 7, 8, 9, 13, 32, 100, 290, 2_895, 9_155] {
            let t = even_table(k);
            let ki = k as i64;
            for u in [0, t[0], t[k], u64::MAX, rng.gen()] {
                let cs = ConstraintSystem::<Fr>::new_ref();
                let uv = witness(&cs, Fr::from(u));
                let x = sample(&t, ki, &uv).expect("synthesis");
                assert_eq!(signed(&x), noise::sample(&t, ki, u), "K {k} u {u}");
                assert!(cs.is_satisfied().expect("satisfied"), "K {k} u {u}");
                assert_eq!(cs.num_constraints(), noise::draw_constraints(k), "K {k}");
            }
            // The same count without values (key generation).
            let cs = ConstraintSystem::<Fr>::new_ref();
            cs.set_mode(SynthesisMode::Setup);
            let uv = FpVar::new_witness(cs.clone(), || Ok(Fr::from(0u64))).expect("word");
            let _x = sample_with_index(&t, ki, &uv, None).expect("setup synthesis");
            assert_eq!(cs.num_constraints(), noise::draw_constraints(k), "K {k}");
        }
    }

    /// Whether the draw of `u` with the given level bits satisfies its constraints.
    fn draw_satisfied(t: &[u64], k: i64, u: u64, alpha: &[bool], beta: &[bool]) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let uv = witness(&cs, Fr::from(u));
        let _x = sample_with_digits(t, k, &uv, Some(alpha), Some(beta)).expect("synthesis");
        cs.is_satisfied().expect("satisfied")
    }

    #[test]
    fn a_wrong_index_is_unsatisfiable() {
        let mut rng = ChaCha20Rng::seed_from_u64(24);
        for (t, k) in tables() {
            let n = t.len() + 1;
            let (outer, inner) = noise::draw_levels(t.len() / 2);
            let mut us = probes(&t, &mut rng, 5);
            if n > 100 {
                // A sample of the big table's boundaries keeps the test short.
                us = us.into_iter().step_by(7).collect();
            }
            for u in us {
                let right = (noise::sample(&t, k, u) + k) as usize;
                // Every index of a tiny table; the neighbours, the ends, the same column in
                // the neighbouring rows and the same row in other columns of a big one; and
                // every padding index and the first past A·B (no bit set).
                let mut wrong: Vec<usize> = if n <= 8 {
                    (0..=n).collect()
                } else {
                    vec![
                        right.wrapping_sub(1),
                        right + 1,
                        0,
                        n - 1,
                        right.wrapping_sub(inner),
                        right + inner,
                        right - right % inner,
                        right - right % inner + inner - 1,
                    ]
                };
                wrong.extend(n..=outer * inner);
                wrong.retain(|&i| i != right && i <= outer * inner);
                for i in wrong {
                    let cs = ConstraintSystem::<Fr>::new_ref();
                    let uv = witness(&cs, Fr::from(u));
                    let _x = sample_with_index(&t, k, &uv, Some(i)).expect("synthesis");
                    assert!(
                        !cs.is_satisfied().expect("satisfied"),
                        "K {k} u {u} index {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn cheating_digits_are_unsatisfiable() {
        let mut rng = ChaCha20Rng::seed_from_u64(28);
        let one_hot = |len: usize, hot: &[usize]| -> Vec<bool> {
            (0..len).map(|j| hot.contains(&j)).collect()
        };
        for (t, k) in tables().into_iter().take(2) {
            let (outer, inner) = noise::draw_levels(t.len() / 2);
            assert!(outer > 1, "K {k}: two levels");
            let us = probes(&t, &mut rng, 20);
            for u in us.into_iter().step_by(5) {
                let right = (noise::sample(&t, k, u) + k) as usize;
                let (a, b) = (right / inner, right % inner);
                let (a2, b2) = ((a + 1) % outer, (b + 1) % inner);
                // The honest digits.
                assert!(draw_satisfied(
                    &t,
                    k,
                    u,
                    &one_hot(outer, &[a]),
                    &one_hot(inner, &[b])
                ));
                for (alpha, beta, what) in [
                    (vec![a2], vec![b], "wrong row"),
                    (vec![a], vec![b2], "wrong column"),
                    (vec![a, a2], vec![b], "two hot rows"),
                    (vec![a], vec![b, b2], "two hot columns"),
                    (vec![a, a2], vec![b, b2], "two hot in each"),
                    (vec![], vec![b], "no row"),
                    (vec![a], vec![], "no column"),
                    (vec![], vec![], "nothing"),
                ] {
                    assert!(
                        !draw_satisfied(&t, k, u, &one_hot(outer, &alpha), &one_hot(inner, &beta)),
                        "K {k} u {u}: {what}"
                    );
                }
                // The right index with the draw claimed one off: the output pins X.
                for off in [-1i64, 1] {
                    let cs = ConstraintSystem::<Fr>::new_ref();
                    let uv = witness(&cs, Fr::from(u));
                    let x = sample(&t, k, &uv).expect("synthesis");
                    let claimed = noise::sample(&t, k, u) + off;
                    x.enforce_equal(&FpVar::constant(to_field(claimed.into())))
                        .expect("equality");
                    assert!(
                        !cs.is_satisfied().expect("satisfied"),
                        "K {k} u {u} X {claimed}"
                    );
                }
            }
        }
        // Every padding index of the V = 1000 table (A·B = 585 > 581) reads an empty interval,
        // for every U, including the ends.
        let t = SkellamTable::new(1000.0).expect("V = 1000 table");
        let (k, th) = (t.support().1, t.thresholds());
        let (outer, inner) = noise::draw_levels(th.len() / 2);
        assert!(outer * inner > th.len() + 1);
        for i in th.len() + 1..outer * inner {
            for u in [0, 1, th[th.len() - 1], u64::MAX] {
                let alpha = one_hot(outer, &[i / inner]);
                let beta = one_hot(inner, &[i % inner]);
                assert!(!draw_satisfied(th, k, u, &alpha, &beta), "index {i} u {u}");
            }
        }
    }

    /// Draws `noise.len()` values from the committed seed in the round: public commitment,
    /// round and noise; private seed.
    #[derive(Clone)]
    struct NoiseCircuit {
        thresholds: Vec<u64>,
        k: i64,
        commitment: Fr,
        round: u32,
        noise: Vec<i64>,
        seed: Option<Fr>,
    }

    impl NoiseCircuit {
        fn inputs(&self) -> Vec<Fr> {
            let mut v = vec![self.commitment, Fr::from(self.round)];
            v.extend(self.noise.iter().map(|&x| to_field(x.into())));
            v
        }
    }

    impl ConstraintSynthesizer<Fr> for NoiseCircuit {
        fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
            let c = FpVar::new_input(cs.clone(), || Ok(self.commitment))?;
            let r = FpVar::new_input(cs.clone(), || Ok(Fr::from(self.round)))?;
            let xs: Vec<FpVar<Fr>> = self
                .noise
                .iter()
                .map(|&x| FpVar::new_input(cs.clone(), || Ok(to_field(x.into()))))
                .collect::<Result<_, _>>()?;
            let s = FpVar::new_witness(cs.clone(), || {
                self.seed.ok_or(SynthesisError::AssignmentMissing)
            })?;
            seed_commitment(&s)?.enforce_equal(&c)?;
            let us = uniforms(&s, &r, xs.len())?;
            for (u, x) in us.iter().zip(&xs) {
                sample(&self.thresholds, self.k, &u.value)?.enforce_equal(x)?;
            }
            Ok(())
        }
    }

    fn honest(seed: Fr, round: u32) -> NoiseCircuit {
        let table = SkellamTable::new(8.0).expect("test synthesis");
        let k = table.support().1;
        NoiseCircuit {
            thresholds: table.thresholds().to_vec(),
            k,
            commitment: noise::seed_commitment(seed),
            round,
            noise: noise::noise(seed, round, table.thresholds(), k, 3),
            seed: Some(seed),
        }
    }

    fn satisfied(c: NoiseCircuit) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        c.generate_constraints(cs.clone()).expect("test synthesis");
        cs.is_satisfied().expect("test synthesis")
    }

    #[test]
    fn the_noise_is_the_committed_seeds() {
        let mut rng = ChaCha20Rng::seed_from_u64(25);
        let seed = Fr::rand(&mut rng);
        let c = honest(seed, 4);
        assert!(satisfied(c.clone()));
        // The noise of another round or another seed, a seed other than the committed one,
        // or one noise value changed: each fails.
        let other_round = honest(seed, 5);
        assert_ne!(other_round.noise, c.noise);
        assert!(!satisfied(NoiseCircuit {
            noise: other_round.noise,
            ..c.clone()
        }));
        let other = Fr::rand(&mut rng);
        assert!(!satisfied(NoiseCircuit {
            noise: honest(other, 4).noise,
            ..c.clone()
        }));
        assert!(!satisfied(NoiseCircuit {
            seed: Some(other),
            ..c.clone()
        }));
        for i in 0..3 {
            let mut noise = c.noise.clone();
            noise[i] += 1;
            assert!(!satisfied(NoiseCircuit { noise, ..c.clone() }));
        }
        let cs = ConstraintSystem::<Fr>::new_ref();
        c.generate_constraints(cs.clone()).expect("test synthesis");
        // Cost: the commitment (Poseidon(2): 240 less the constant tag's first S-box), one
        // block with the round a variable, three draws, and the four equalities.
        let cost = 240 - 3 + BLOCK_CONSTRAINTS + 3 + 3 * noise::draw_constraints(32) + 4;
        println!(
            "3 draws from a committed seed: {} constraints",
            cs.num_constraints()
        );
        assert_eq!(cs.num_constraints(), cost);
    }

    #[test]
    fn groth16_proves_three_draws() {
        let mut rng = ChaCha20Rng::seed_from_u64(26);
        let seed = Fr::rand(&mut rng);
        let c = honest(seed, 9);
        let setup = NoiseCircuit {
            seed: None,
            ..c.clone()
        };
        let start = std::time::Instant::now();
        let (pk, vk) =
            Groth16::<Bn254>::circuit_specific_setup(setup, &mut rng).expect("test synthesis");
        let proof = Groth16::<Bn254>::prove(&pk, c.clone(), &mut rng).expect("test synthesis");
        println!("Groth16 setup + prove of 3 draws: {:?}", start.elapsed());
        let pvk = Groth16::<Bn254>::process_vk(&vk).expect("test synthesis");
        let inputs = c.inputs();
        assert!(
            Groth16::<Bn254>::verify_with_processed_vk(&pvk, &inputs, &proof)
                .expect("test synthesis")
        );
        // Other noise, another round or another commitment under the same proof: rejected.
        let mut wrong = inputs.clone();
        wrong[2] += Fr::from(1u64);
        assert!(
            !Groth16::<Bn254>::verify_with_processed_vk(&pvk, &wrong, &proof)
                .expect("test synthesis")
        );
        let mut wrong = inputs.clone();
        wrong[1] = Fr::from(10u64);
        assert!(
            !Groth16::<Bn254>::verify_with_processed_vk(&pvk, &wrong, &proof)
                .expect("test synthesis")
        );
        let mut wrong = inputs;
        wrong[0] = noise::seed_commitment(seed + Fr::from(1u64));
        assert!(
            !Groth16::<Bn254>::verify_with_processed_vk(&pvk, &wrong, &proof)
                .expect("test synthesis")
        );
        // The setup synthesises without values.
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(SynthesisMode::Setup);
        NoiseCircuit { seed: None, ..c }
            .generate_constraints(cs)
            .expect("test synthesis");
    }
}

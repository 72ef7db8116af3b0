//! Noise a holder cannot skip (#16 item 3): a PRG of 64-bit uniforms keyed by a committed seed,
//! and the inverse-CDF sampler of `cairn_privacy::skellam` over them, natively here and in R1CS
//! in [`constraints`]. The training circuit draws a distributed-DP update's noise with them
//! ([`crate::training::dp`]).
//!
//! # The PRG
//!
//! A holder draws a secret seed s ∈ 𝔽 (uniform) and publishes [`seed_commitment`]`(s)` =
//! Poseidon(`COMMIT_DOMAIN`, s) before round 1. In round r it derives blocks
//!
//! ```text
//! B_j = Poseidon(s, PRG_DOMAIN · 2^32 + r, j)        (circomlib Poseidon(3), j = 0, 1, …)
//! ```
//!
//! and cuts each block's canonical integer (in [0, p), 254 bits) into three 64-bit words: bits
//! 0..64, 64..128 and 128..192 (the top 62 bits are dropped). Word 3j + w of the round is the
//! w-th word of B_j; [`uniforms`] returns the first `count`.
//!
//! **Domain separation.** The second input carries the tag [`PRG_DOMAIN`] (the ASCII bytes
//! `cairnPRG` as a big-endian `u64`) above the 32-bit round, so (round, block index) pairs never
//! repeat an input and no other Poseidon(3) call of the crate (Merkle nodes are Poseidon(2);
//! [`crate::poseidon::hash_vec`] of two elements leads with the length 2, this leads with a
//! uniform seed) shares these inputs except with negligible probability. The commitment is a
//! Poseidon(2) call (another width, so another permutation) led by its own tag
//! [`COMMIT_DOMAIN`] (`cairnSDC`). The round must be bound by the verifier (a public input or a
//! constant); the gadget does not range-check it.
//!
//! **Uniformity.** Model Poseidon as a random function: a block is uniform on [0, p). Its low
//! 192 bits h mod 2^192 are then within total variation
//!
//! ```text
//! β = r (2^192 − r) / (p · 2^192) ≤ 2^192 / (4p),   r = p mod 2^192,
//! ```
//!
//! of uniform on [0, 2^192) (each residue below r has q + 1 preimages, the others q, with
//! q = ⌊p / 2^192⌋). For BN254, β = 5.78·10^-20 ≈ 2^-63.9 ([`BLOCK_TV_BOUND`] rounds it up):
//! the three words of a block are jointly within β of three independent uniform `u64`s, and n
//! words (⌈n/3⌉ blocks) within ⌈n/3⌉·β. Added to the sampler's own bound η
//! (`SkellamTable::total_variation_bound`, 7.2·10^-19 at V = 8), a proven draw is within
//! η + β/3 of the exact Skellam: the DP accounting takes `uses · (η + β/3)` in place of
//! `uses · η` (`SkellamTable::delta_penalty`).
//!
//! # The sampler
//!
//! [`sample`] is `SkellamTable::sample`: for the strictly increasing thresholds
//! T_{−K} < … < T_{K−1} (2K `u64`s; T_K = 2^64), X = −K + #{k : T_k ≤ U}, the smallest k with
//! U < T_k. In the circuit (see [`constraints`]) the prover names the index i = X + K ∈ [0, 2K]
//! in two levels, i = B·a + b with a ∈ [0, A) and b ∈ [0, B) ([`draw_levels`]: A = ⌈(2K + 1)/B⌉
//! and B ≈ √(3(2K + 1)), the B of fewest constraints), each digit by a one-hot vector α, β; a
//! product α_a · M_a per row a and looked-up threshold selects the row's inner sum, linear in
//! β (M_a = Σ_b β_b·T_{B·a+b−K−1} for the lower one, with T_{B·a+b−K} for the upper), and two
//! 64-bit range checks show T_{X−1} ≤ U < T_X. The A·B − (2K + 1) padding indices read the
//! empty interval [2^64, 0), which no U satisfies.
//!
//! # Cost
//!
//! Constraints (pinned by the tests in [`constraints`]):
//!
//! * a PRG block: [`BLOCK_CONSTRAINTS`] = 895 = 255 (Poseidon(3) with constant round and index:
//!   3·(8·4 + 56) less the 3 S-boxes of the constant capacity, tag and index in the first round)
//!   \+ 640 (the canonical 254-bit decomposition, as arkworks' `to_bits_le`: 254 Booleans,
//!   the recomposition and 385 for the "< p" check); 898 when the round is a variable (its
//!   first S-box);
//! * a draw: [`draw_constraints`]`(K)` = 3A + B + 132 = A + B one-hot Booleans + 2 (Σ α = 1,
//!   Σ β = 1) + 2A products (α_a times the row's inner sum, for T_{i−1} and for T_i) + 2 × 65
//!   (two 64-bit range checks); the inner sums and X = B·Σ_a a·α_a + Σ_b b·β_b − K are linear.
//!   For K ≤ 7 a single level costs no more (A = 1, B = 2K + 1: no α, no products):
//!   2K + 132, the one-hot of the 2K + 1 indices.
//!
//! Per coordinate (one word, a third of a block, and one draw): [`draw_constraints`]`(K)` +
//! 895/3 ≈ 2√(3(2K + 1)) + 430.
//!
//! | holder var. V_h | K     | (A, B)    | draw (one-hot: 2K + 132) | + PRG share | per coord. |
//! |-----------------|-------|-----------|--------------------------|-------------|------------|
//! | 8               | 32    | (5, 13)   | 160 (196)                | 298.3       | ≈ 458      |
//! | 1000            | 290   | (15, 39)  | 216 (712)                | 298.3       | ≈ 514      |
//! | 10^5            | 2,895 | (46, 126) | 396 (5,922)              | 298.3       | ≈ 694      |
//! | 10^6            | 9,155 | (80, 229) | 601 (18,442)             | 298.3       | ≈ 899      |
//!
//! The PRG share dominates up to about V = 10^4 (K ≈ 920), the draw beyond. (One product per
//! row would do for both thresholds packed as T_{X−1} + 2^65·T_X, about A fewer constraints,
//! but the unpacking is sound only for U known to be below 2^64, and this gadget takes any
//! field element.)

pub mod constraints;

use ark_bn254::Fr;
use ark_ff::PrimeField;

use crate::poseidon;

/// The PRG's domain tag: the ASCII bytes `cairnPRG`, big-endian. The tag input of a block is
/// `PRG_DOMAIN · 2^32 + round`.
pub const PRG_DOMAIN: u64 = u64::from_be_bytes(*b"cairnPRG");
/// The seed commitment's domain tag: the ASCII bytes `cairnSDC`, big-endian.
pub const COMMIT_DOMAIN: u64 = u64::from_be_bytes(*b"cairnSDC");
/// Bits of one uniform word.
pub const WORD_BITS: usize = 64;
/// 64-bit words cut from one Poseidon block (bits 0..192 of its 254).
pub const WORDS_PER_BLOCK: usize = 3;
/// β rounded up: the total-variation distance between a block's three words and three
/// independent uniform `u64`s, for a uniform block (module docs).
pub const BLOCK_TV_BOUND: f64 = 5.79e-20;
/// Constraints of one PRG block in the circuit with a constant round (one more S-box, 3
/// constraints, when the round is a variable).
pub const BLOCK_CONSTRAINTS: usize = 895;

/// The two levels (A, B) of a draw's index for support [−K, K] (module docs): i = B·a + b with
/// a ∈ [0, A) and b ∈ [0, B), A = ⌈(2K + 1)/B⌉, for the B of fewest constraints (the smallest
/// such B on a tie). A = 1 is the plain one-hot of the 2K + 1 indices (B = 2K + 1), kept where
/// two levels cost as much or more (K ≤ 7).
pub const fn draw_levels(k: usize) -> (usize, usize) {
    let n = 2 * k + 1;
    let mut best = (1, n);
    let mut cost = n + 131;
    // 3⌈n/B⌉ + B ≤ 2√(3n) + 4 at B = ⌈√(3n)⌉, so no B with (B − 4)² > 12n can do better.
    let mut b = 2;
    while b < n && b.saturating_sub(4) * b.saturating_sub(4) <= 12 * n {
        let a = n.div_ceil(b);
        if a > 1 && 3 * a + b + 132 < cost {
            best = (a, b);
            cost = 3 * a + b + 132;
        }
        b += 1;
    }
    best
}

/// Constraints of one draw from a table with support [−K, K] (module docs): 3A + B + 132 for
/// the levels (A, B) = [`draw_levels`]`(K)`, or 2K + 132 where A = 1 (K ≤ 7).
pub const fn draw_constraints(k: usize) -> usize {
    match draw_levels(k) {
        (1, b) => b + 131,
        (a, b) => 3 * a + b + 132,
    }
}

/// A threshold table the sampler cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The table must have 2K entries.
    #[error("a table for K = {k} has 2K entries, got {len}")]
    Length {
        /// K as given.
        k: i64,
        /// The number of thresholds.
        len: usize,
    },
    /// T_{at} ≥ T_{at+1} (0-based positions in the slice).
    #[error("thresholds not strictly increasing at position {at}")]
    NotIncreasing {
        /// The position of the first offending pair.
        at: usize,
    },
}

/// Checks `thresholds` is a sampler table for support [−k, k]: 2k strictly increasing `u64`s.
pub fn check_table(thresholds: &[u64], k: i64) -> Result<(), TableError> {
    let len = thresholds.len();
    if usize::try_from(k).ok().and_then(|k| k.checked_mul(2)) != Some(len) {
        return Err(TableError::Length { k, len });
    }
    match thresholds.windows(2).position(|w| w[0] >= w[1]) {
        Some(at) => Err(TableError::NotIncreasing { at }),
        None => Ok(()),
    }
}

/// The draw for the uniform `u` from the table T_{−k}, …, T_{k−1}: −k + #{j : T_j ≤ u}, the
/// smallest value x with u < T_x (T_k = 2^64). Equal to `SkellamTable::sample` for the table's
/// thresholds and K.
pub fn sample(thresholds: &[u64], k: i64, u: u64) -> i64 {
    -k + thresholds.partition_point(|&t| t <= u) as i64
}

/// The tag input of round `round`'s blocks: `PRG_DOMAIN · 2^32 + round`.
pub fn round_tag(round: u32) -> Fr {
    Fr::from((u128::from(PRG_DOMAIN) << 32) | u128::from(round))
}

/// Block `j` of round `round` for seed `seed`: Poseidon(seed, round tag, j).
pub fn block(seed: Fr, round: u32, j: u64) -> Fr {
    // Three inputs is always a valid width.
    poseidon::hash(&[seed, round_tag(round), Fr::from(j)]).unwrap_or_default()
}

/// The three 64-bit words of a block: bits 0..64, 64..128 and 128..192 of its canonical
/// integer.
pub fn block_words(block: Fr) -> [u64; WORDS_PER_BLOCK] {
    let limbs = block.into_bigint().0;
    [limbs[0], limbs[1], limbs[2]]
}

/// The first `count` uniform words of round `round` for seed `seed` (module docs).
pub fn uniforms(seed: Fr, round: u32, count: usize) -> Vec<u64> {
    (0..count.div_ceil(WORDS_PER_BLOCK) as u64)
        .flat_map(|j| block_words(block(seed, round, j)))
        .take(count)
        .collect()
}

/// The commitment a holder publishes to its noise seed: Poseidon(`COMMIT_DOMAIN`, seed).
/// Hiding because the seed is a uniform field element (Poseidon as a random function), binding
/// by Poseidon's collision resistance.
pub fn seed_commitment(seed: Fr) -> Fr {
    // Two inputs is always a valid width.
    poseidon::hash(&[Fr::from(COMMIT_DOMAIN), seed]).unwrap_or_default()
}

/// The noise of round `round` for seed `seed`: `count` draws from the table, one word each.
pub fn noise(seed: Fr, round: u32, thresholds: &[u64], k: i64, count: usize) -> Vec<i64> {
    uniforms(seed, round, count)
        .into_iter()
        .map(|u| sample(thresholds, k, u))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::BigInteger;
    use ark_std::UniformRand;
    use cairn_privacy::SkellamTable;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn uniforms_are_deterministic_and_separated() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let seed = Fr::rand(&mut rng);
        let other = Fr::rand(&mut rng);
        let a = uniforms(seed, 3, 10);
        assert_eq!(a.len(), 10);
        assert_eq!(a, uniforms(seed, 3, 10));
        // A longer stream extends a shorter one.
        assert_eq!(uniforms(seed, 3, 4), a[..4]);
        assert!(uniforms(seed, 3, 0).is_empty());
        // Seed, round and block index all change the words.
        assert_ne!(a, uniforms(other, 3, 10));
        assert_ne!(a, uniforms(seed, 4, 10));
        assert_ne!(uniforms(seed, 0, 3), uniforms(seed, 1 << 31, 3));
        let mut all = a.clone();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 10, "words within and across blocks differ");
        // Word 3j + w is word w of block j, the limbs of its canonical integer.
        for (i, u) in a.iter().enumerate() {
            let b = block(seed, 3, (i / 3) as u64);
            assert_eq!(*u, block_words(b)[i % 3]);
            let bits = b.into_bigint().to_bits_le();
            let w = i % 3;
            let from_bits = (0..64).fold(0u64, |acc, t| acc | (u64::from(bits[64 * w + t]) << t));
            assert_eq!(*u, from_bits);
        }
        // The tag is the domain above the round, and the commitment is not a block.
        assert_eq!(round_tag(7), Fr::from((u128::from(PRG_DOMAIN) << 32) + 7));
        assert_ne!(seed_commitment(seed), block(seed, 0, 0));
        assert_ne!(seed_commitment(seed), seed_commitment(other));
    }

    #[test]
    fn block_tv_bound_from_the_modulus() {
        // β = r (2^192 − r) / (p · 2^192), r = p mod 2^192, in f64 from the modulus' limbs.
        let limbs = Fr::MODULUS.0;
        let two64 = 18_446_744_073_709_551_616.0f64;
        let p = limbs
            .iter()
            .rev()
            .fold(0.0f64, |acc, &l| acc * two64 + l as f64);
        let r = limbs[..3]
            .iter()
            .rev()
            .fold(0.0f64, |acc, &l| acc * two64 + l as f64);
        let n = two64 * two64 * two64;
        let beta = r * (n - r) / (p * n);
        assert!(beta <= BLOCK_TV_BOUND, "{beta}");
        assert!(beta > 0.99 * BLOCK_TV_BOUND, "{beta}");
        assert!(beta < n / (4.0 * p));
    }

    /// Uniforms that hit every threshold and its neighbours, the ends, and random values.
    fn probes(thresholds: &[u64], rng: &mut ChaCha20Rng, random: usize) -> Vec<u64> {
        let mut u = vec![0, 1, u64::MAX - 1, u64::MAX];
        for &t in thresholds {
            u.extend([t.saturating_sub(1), t, t.saturating_add(1)]);
        }
        u.extend((0..random).map(|_| rng.gen::<u64>()));
        u
    }

    #[test]
    fn sample_is_skellam_table_sample() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        for v in [0.5, 8.0, 1000.0] {
            let table = SkellamTable::new(v).expect("table");
            let (lo, k) = table.support();
            assert_eq!(lo, -k);
            check_table(table.thresholds(), k).expect("valid table");
            for u in probes(table.thresholds(), &mut rng, 2000) {
                assert_eq!(
                    sample(table.thresholds(), k, u),
                    table.sample(u),
                    "V {v} u {u}"
                );
            }
            // The ends of the support are reached exactly at the first and last thresholds.
            let t = table.thresholds();
            assert_eq!(sample(t, k, 0), -k);
            assert_eq!(sample(t, k, t[0] - 1), -k);
            assert_eq!(sample(t, k, t[0]), -k + 1);
            assert_eq!(sample(t, k, t[t.len() - 1]), k);
            assert_eq!(sample(t, k, u64::MAX), k);
        }
    }

    #[test]
    fn sample_on_hand_made_tables() {
        // K = 0: every u gives 0.
        assert_eq!(sample(&[], 0, 0), 0);
        assert_eq!(sample(&[], 0, u64::MAX), 0);
        // K = 1: T_{-1} = 5, T_0 = 9.
        let t = [5u64, 9];
        for (u, x) in [(0, -1), (4, -1), (5, 0), (8, 0), (9, 1), (u64::MAX, 1)] {
            assert_eq!(sample(&t, 1, u), x, "u {u}");
        }
        // K = 2 with the first slot at 0 and the last at 2^64 − 1.
        let t = [1u64, 2, 1 << 63, u64::MAX];
        for (u, x) in [(0, -2), (1, -1), (2, 0), ((1 << 63) - 1, 0), (1 << 63, 1)] {
            assert_eq!(sample(&t, 2, u), x, "u {u}");
        }
        assert_eq!(sample(&t, 2, u64::MAX), 2);
    }

    #[test]
    fn tables_are_checked() {
        assert_eq!(check_table(&[], 0), Ok(()));
        assert_eq!(check_table(&[1, 2], 1), Ok(()));
        assert_eq!(
            check_table(&[1, 2, 3], 1),
            Err(TableError::Length { k: 1, len: 3 })
        );
        assert_eq!(
            check_table(&[], -1),
            Err(TableError::Length { k: -1, len: 0 })
        );
        assert_eq!(
            check_table(&[1, 3, 3, 4], 2),
            Err(TableError::NotIncreasing { at: 1 })
        );
    }

    #[test]
    fn noise_is_sample_of_uniforms() {
        let table = SkellamTable::new(8.0).expect("table");
        let (_, k) = table.support();
        let seed = Fr::from(42u64);
        let xs = noise(seed, 1, table.thresholds(), k, 7);
        let us = uniforms(seed, 1, 7);
        assert_eq!(xs, us.iter().map(|&u| table.sample(u)).collect::<Vec<_>>());
    }
}

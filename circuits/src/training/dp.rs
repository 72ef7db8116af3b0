//! Distributed DP in the proven update (#16 item 3): noise a holder cannot skip.
//!
//! # The statement
//!
//! For a shape with [`NoiseShape`] `{ grid: G, norm_sq_bound: B, k: K, thresholds: T }`, let
//! n be the parameter count and d = n rounded up to a power of two ([`padded_dim`]). Beside
//! what [`super`] proves of the update x (n fixed-point values at 2^16, within τ of the
//! training, `‖x‖² ≤ clip²`), the circuit proves, for the public seed commitment c, round r
//! and signs hash h ([`NoisePublic`]), that the prover knows a seed s, d signs
//! `s_i ∈ {0, 1}` and vectors y, z ∈ ℤ^d such that:
//!
//! 1. **signs**: `h =` [`signs_hash`]`(s_0 … s_{d−1})` (the round's public signs; `1` = −1);
//! 2. **rotation**: `u = H·D·x'` with x' = x padded with zeros to d, `D = diag(1 − 2 s_i)`
//!    and H the unnormalised d×d Walsh–Hadamard matrix, `H_jk = (−1)^popcount(j & k)`
//!    ([`rotate_fixed`]; `u/√d` is `cairn_privacy::Rotation::rotate(x)`);
//! 3. **rounding**: `|G·y_j − u_j| ≤ G − 1` for every j (y is one of the two grid points
//!    around `u/G`, or `u_j/G` itself when G divides it) and `‖y‖² ≤ B`;
//! 4. **noise**: `c =` [`noise::seed_commitment`]`(s)` and `e_j =`
//!    [`noise::sample`]`(T, K, U_j)` for the PRG words `U_0 … U_{d−1}` of seed s in round r
//!    ([`noise::uniforms`]);
//! 5. **commitment**: `z = y + e`, each `z_j` a signed [`UPDATE_BITS`]-bit integer, and the
//!    public commitment is `C = commit(Generators::new(d), z, ρ)` — the commitment is to z,
//!    not to x, and z is what the holder masks ([`Witness::committed`]).
//!
//! The rounding is free to the holder within the grid (an honest holder rounds with
//! [`round_to_grid`], conditionally on the norm bound), which costs nothing in privacy: the
//! mechanism's sensitivity is B whatever y in the grid is chosen. The noise is not: it is a
//! function of the seed committed before round 1 and the public round, so it cannot be
//! skipped, chosen or reused across rounds.
//!
//! Soundness of the arithmetic: z is range-checked to 24 bits and e lies in [−K, K], so
//! y = z − e is a small integer (no field wrap in `G·y`, `‖y‖²` or the two one-sided checks,
//! each of [`grid_bits`]`(G)` bits, enough for 2G − 2; their sum is 2G − 2, which pins
//! `G·y − u` to [−(G − 1), G − 1]); u is an integer of at most 24 + log2 d bits because x is.
//! [`Shape::validate`](super::Shape::validate) requires `⌊√B⌋ + K < 2^23` (an honest z fits),
//! `1 ≤ G < 2^40`, `B ≥ 1` and a valid table.
//!
//! # Cost
//!
//! [`noise_constraints`], pinned by the tests (`Breakdown::noise`; the commitment over d
//! values instead of n stays in `Breakdown::commitment`), with g = [`grid_bits`]`(G)` and
//! b = bits of B:
//!
//! ```text
//! noise = d·(D_K + 2g + 28) + n + ⌈d/3⌉·898 + (b + 1) + 238 + 238
//! ```
//!
//! per coordinate: 1 sign Boolean, 24 for z's range, 2(g + 1) for the grid checks, 1 for
//! y_j², D_K = [`noise::draw_constraints`]`(K)` for the draw (the two-level lookup: 160 at
//! K = 32, 216 at K = 290, 396 at K = 2,895, about 2√(6K) + 132); n products s_i·x_i (the
//! padding is constant zero; H is linear, no constraints); a PRG block of 898 per three coordinates
//! (the round a variable); the norm slack; the seed commitment (Poseidon(2), 237, and its
//! equality) and the signs hash (one Poseidon(2) for d ≤ 248, and its equality; wider
//! vectors hash ⌈d/248⌉ packed elements, [`noise_constraints`] bounds them). Per
//! coordinate about D_K + 2g + 326: D_K + 358 for G ≤ 2^15 (g ≤ 16), i.e. ≈ 518 at V = 8
//! (K = 32), ≈ 574 at V = 1000 (K = 290), ≈ 754 at V = 10^5 (K = 2,895).
//!
//! Measured (`dp_tests::noise_constraint_counts`): logistic regression on 4 features
//! (n = 5, d = 8), one local step of 2 rows, V = 8 (K = 32), G = 1024 (g = 11),
//! B = 820,108 (b = 20): noise = 8·210 + 5 + 3·898 + 21 + 476 = 4,876, and the commitment
//! over 8 values 1,805 instead of 1,553 over 5: 9,600 constraints in all against 4,472
//! without noise. Per coordinate that is 609.5: D_K + 2g + 326 = 508 grows with d; the n
//! products, the third PRG block's spare word, the norm slack and the seed commitment and
//! signs hash (476) add about 100 here, and fade as d grows.

use ark_bn254::Fr;
use ark_ff::AdditiveGroup;
use ark_r1cs_std::{
    alloc::AllocVar, boolean::Boolean, eq::EqGadget, fields::fp::FpVar, fields::FieldVar,
};
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

use super::witness::Witness;
use super::{NoiseShape, Shape, TrainingError, UPDATE_BITS};
use crate::fixed;
use crate::fixed::constraints::{dot, signed_witness, unsigned_bits, SignedVar};
use crate::noise;
use crate::pedersen::{self, Generators};
use crate::poseidon;

/// Signs packed into one field element for [`signs_hash`] (little-endian, below 2^248 < p).
pub const SIGNS_PER_ELEMENT: usize = 248;
/// Conditional rounding draws the whole vector again at most this many times.
pub const MAX_ROUNDING_TRIES: u32 = 1000;

/// The public inputs a noise shape adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoisePublic {
    /// [`crate::noise::seed_commitment`] of the holder's noise seed.
    pub seed_commitment: Fr,
    /// The round (the PRG's input).
    pub round: u32,
    /// [`signs_hash`] of the round's rotation signs.
    pub signs_hash: Fr,
}

/// The witness a noise shape adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoisePrivate {
    /// The noise seed.
    pub seed: Fr,
    /// The rotation's signs (`true`: −1), d_pad of them.
    pub negative: Vec<bool>,
    /// y: the rotated update rounded to the grid, d_pad values.
    pub rounded: Vec<i64>,
    /// z = y + e: what is committed and masked, d_pad values.
    pub noisy: Vec<i64>,
}

impl NoisePrivate {
    /// An all-zero witness of `shape`'s sizes (key generation).
    pub fn dummy(shape: &super::Shape) -> Self {
        let d = padded_dim(shape);
        Self {
            seed: Fr::from(0u64),
            negative: vec![false; d],
            rounded: vec![0; d],
            noisy: vec![0; d],
        }
    }
}

/// What a holder brings to noise its witness: its seed, the round and the round's signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseInput {
    /// The secret noise seed (its commitment was published before round 1).
    pub seed: Fr,
    /// The round.
    pub round: u32,
    /// The round's rotation signs (`true`: −1), d_pad of them.
    pub negative: Vec<bool>,
}

/// d_pad: the shape's parameter count rounded up to a power of two (the rotated length).
pub fn padded_dim(shape: &Shape) -> usize {
    shape.model.param_count().max(1).next_power_of_two()
}

/// The public hash of the rotation signs: [`poseidon::hash_vec`] of the signs packed
/// little-endian, [`SIGNS_PER_ELEMENT`] per field element (bit `i` of element `c` is sign
/// `248c + i`, set for −1).
pub fn signs_hash(negative: &[bool]) -> Fr {
    let packed: Vec<Fr> = negative
        .chunks(SIGNS_PER_ELEMENT)
        .map(|c| {
            c.iter()
                .rev()
                .fold(Fr::ZERO, |acc, &b| acc.double() + Fr::from(b))
        })
        .collect();
    poseidon::hash_vec(&packed)
}

/// u = H·D·x in integers: `x` padded with zeros to `negative.len()`, its signs flipped where
/// `negative` is set, then the unnormalised Walsh–Hadamard transform
/// (`H_jk = (−1)^popcount(j & k)`, the fast butterfly). `negative.len()` should be a power of
/// two at least `x.len()`; otherwise the length is rounded up to one and the missing signs
/// are +1. `u / √d` is `cairn_privacy::Rotation::rotate` of `x` for the same signs.
pub fn rotate_fixed(x: &[i64], negative: &[bool]) -> Vec<i128> {
    let d = negative.len().max(x.len()).max(1).next_power_of_two();
    let mut u: Vec<i128> = (0..d)
        .map(|i| {
            let v = i128::from(x.get(i).copied().unwrap_or(0));
            if negative.get(i).copied().unwrap_or(false) {
                -v
            } else {
                v
            }
        })
        .collect();
    butterfly(&mut u, |a, b| (a + b, a - b));
    u
}

/// The in-place fast Walsh–Hadamard butterfly over any values with `pair(a, b) = (a + b,
/// a − b)` (`v.len()` a power of two).
fn butterfly<T: Clone>(v: &mut [T], pair: impl Fn(&T, &T) -> (T, T)) {
    let n = v.len();
    let mut h = 1;
    while h < n {
        for block in v.chunks_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                let (s, t) = pair(a, b);
                *a = s;
                *b = t;
            }
        }
        h *= 2;
    }
}

/// Conditional stochastic rounding of `u` to the grid: `y_j = ⌊u_j / G⌋ + 1` with probability
/// `(u_j mod G) / G` (exactly: `rng.gen_range(0..G) < u_j mod G`), else `⌊u_j / G⌋`; the whole
/// vector is drawn again until `‖y‖² ≤ B`, at most [`MAX_ROUNDING_TRIES`] times
/// ([`TrainingError::Rounding`] after that).
pub fn round_to_grid<R: rand::Rng + ?Sized>(
    u: &[i128],
    noise: &NoiseShape,
    rng: &mut R,
) -> Result<Vec<i64>, TrainingError> {
    if noise.grid == 0 {
        return Err(TrainingError::Shape("grid step G = 0".into()));
    }
    let g = i128::from(noise.grid);
    let bound = i128::from(noise.norm_sq_bound);
    for _ in 0..MAX_ROUNDING_TRIES {
        let mut norm_sq: i128 = 0;
        let mut y = Vec::with_capacity(u.len());
        for &v in u {
            let (q, r) = (v.div_euclid(g), v.rem_euclid(g));
            // 0 ≤ r < G ≤ u64::MAX.
            let up = u64::try_from(r).is_ok_and(|r| rng.gen_range(0..noise.grid) < r);
            let q = q + i128::from(up);
            norm_sq = norm_sq.saturating_add(q.saturating_mul(q));
            y.push(i64::try_from(q).map_err(|_| {
                TrainingError::Shape(format!("rounded coordinate {q} does not fit 64 bits"))
            })?);
        }
        if norm_sq <= bound {
            return Ok(y);
        }
    }
    Err(TrainingError::Rounding {
        tries: MAX_ROUNDING_TRIES,
    })
}

/// Bits of the two one-sided grid checks: enough for `2G − 2`.
pub fn grid_bits(grid: u64) -> u32 {
    (128 - (2 * u128::from(grid)).saturating_sub(2).leading_zeros()).max(1)
}

/// Bits of the norm slack `B − ‖y‖²`: enough for B.
pub fn norm_bits(bound: u64) -> u32 {
    (64 - bound.leading_zeros()).max(1)
}

/// Constraints of the noise part ([`super::circuit::Breakdown::noise`]) of a shape with `n`
/// parameters padded to `d` (module docs): exact for `d ≤ 248` (the signs pack into one
/// field element), an upper estimate beyond (600 per Poseidon call of the signs hash).
pub fn noise_constraints(noise: &NoiseShape, n: usize, d: usize) -> usize {
    let g = grid_bits(noise.grid) as usize;
    let b = norm_bits(noise.norm_sq_bound) as usize;
    let k = usize::try_from(noise.k).unwrap_or(0);
    let per_coordinate = 1 + UPDATE_BITS as usize + 2 * (g + 1) + 1 + noise::draw_constraints(k);
    let elements = d.div_ceil(SIGNS_PER_ELEMENT);
    let signs = if elements <= 1 {
        POSEIDON2_CONSTANT_FIRST
    } else {
        600 * elements.div_ceil(poseidon::CHUNK)
    };
    d * per_coordinate
        + n
        + d.div_ceil(noise::WORDS_PER_BLOCK) * (noise::BLOCK_CONSTRAINTS + 3)
        + (b + 1)
        + (POSEIDON2_CONSTANT_FIRST + 1)
        + (signs + 1)
}

/// Poseidon(2) with a constant first input: 3·(8·3 + 57) = 243 less the first-round S-boxes
/// of the constant capacity and of the constant input.
const POSEIDON2_CONSTANT_FIRST: usize = 240 - 3;

/// The noise part of the statement's public inputs, as circuit variables.
pub(super) struct NoiseInputs {
    /// The seed commitment.
    pub seed_commitment: FpVar<Fr>,
    /// The round.
    pub round: FpVar<Fr>,
    /// The signs hash.
    pub signs_hash: FpVar<Fr>,
}

/// The noise part of the circuit: from the range-checked update `x` (n values), the signs,
/// the seed, `y` and `z` of `w`, enforces the statement of the module docs and returns z as
/// range-checked [`UPDATE_BITS`]-bit values (d of them), what the commitment is to. The
/// circuit reads y as z − e: `w.rounded` is not read (it is what the holder computed).
pub(super) fn enforce(
    cs: &ConstraintSystemRef<Fr>,
    shape: &NoiseShape,
    x: &[SignedVar],
    w: &NoisePrivate,
    public: &NoiseInputs,
) -> Result<Vec<SignedVar>, SynthesisError> {
    let d = w.negative.len();
    if !d.is_power_of_two() || d < x.len() || w.noisy.len() != d || w.rounded.len() != d {
        return Err(SynthesisError::Unsatisfiable);
    }
    // 1. Signs: d Booleans, packed 248 to an element (linear), hashed to the public input.
    let signs: Vec<Boolean<Fr>> = w
        .negative
        .iter()
        .map(|&s| Boolean::new_witness(cs.clone(), || Ok(s)))
        .collect::<Result<_, _>>()?;
    let packed: Vec<FpVar<Fr>> = signs
        .chunks(SIGNS_PER_ELEMENT)
        .map(Boolean::le_bits_to_fp)
        .collect::<Result<_, _>>()?;
    poseidon::constraints::hash_vec(&packed)?.enforce_equal(&public.signs_hash)?;

    // 2. Rotation: D·x (one product per update coordinate; the padding is constant zero),
    // then H as linear combinations.
    let mut u: Vec<FpVar<Fr>> = (0..d)
        .map(|i| match x.get(i) {
            Some(v) => &v.value - (FpVar::from(signs[i].clone()) * &v.value) * Fr::from(2u64),
            None => FpVar::zero(),
        })
        .collect();
    butterfly(&mut u, |a, b| (a + b, a - b));

    // 4. Noise: the committed seed's uniforms for the public round, one draw each.
    let seed = FpVar::new_witness(cs.clone(), || Ok(w.seed))?;
    noise::constraints::seed_commitment(&seed)?.enforce_equal(&public.seed_commitment)?;
    let words = noise::constraints::uniforms(&seed, &public.round, d)?;

    // 3 and 5. z is a signed UPDATE_BITS-bit witness, e its draw, y = z − e (so an integer of
    // at most UPDATE_BITS + 1 bits); |G·y − u| ≤ G − 1 by two one-sided checks; ‖y‖² ≤ B.
    let g = FpVar::constant(Fr::from(shape.grid));
    let slack = FpVar::constant(Fr::from(shape.grid - 1));
    let bits = grid_bits(shape.grid);
    let mut zs = Vec::with_capacity(d);
    let mut ys = Vec::with_capacity(d);
    for ((&z, word), u) in w.noisy.iter().zip(&words).zip(&u) {
        let z = signed_witness(cs, Some(z.into()), UPDATE_BITS)?;
        let e = noise::constraints::sample(&shape.thresholds, shape.k, &word.value)?;
        let y = &z.value - e;
        let gy = &y * &g;
        unsigned_bits(&(&gy - u + &slack), bits)?;
        unsigned_bits(&(u - &gy + &slack), bits)?;
        ys.push(y);
        zs.push(z);
    }
    let norm_sq = dot(&ys, &ys);
    let bound = FpVar::constant(Fr::from(shape.norm_sq_bound));
    unsigned_bits(&(bound - norm_sq), norm_bits(shape.norm_sq_bound))?;
    Ok(zs)
}

impl Witness {
    /// The noised witness of a distributed-DP shape: `self` is the witness
    /// [`Witness::new`] or [`Witness::sampled`] built for `shape` (committing to x); this
    /// rotates x with `input.negative` (d_pad signs), rounds it to the grid
    /// ([`round_to_grid`], drawing from `rng`), adds the noise of `input.seed` for
    /// `input.round`, and commits to z = y + e with the same blinding. Fails for a shape
    /// without noise, signs of the wrong count, a z outside [`UPDATE_BITS`] bits or a
    /// rounding that keeps exceeding the norm bound.
    pub fn noised<R: rand::Rng + ?Sized>(
        mut self,
        shape: &Shape,
        input: NoiseInput,
        rng: &mut R,
    ) -> Result<Witness, TrainingError> {
        let ns = shape
            .noise
            .as_ref()
            .ok_or_else(|| TrainingError::Shape("a shape without noise".into()))?;
        shape.validate()?;
        let d = padded_dim(shape);
        if input.negative.len() != d {
            return Err(TrainingError::Mismatch {
                what: "rotation signs",
                got: input.negative.len(),
                want: d,
            });
        }
        if self.private.update.len() != shape.model.param_count() {
            return Err(TrainingError::Mismatch {
                what: "update coordinates",
                got: self.private.update.len(),
                want: shape.model.param_count(),
            });
        }
        let u = rotate_fixed(&self.private.update, &input.negative);
        let rounded = round_to_grid(&u, ns, rng)?;
        let e = noise::noise(input.seed, input.round, &ns.thresholds, ns.k, d);
        let noisy: Vec<i64> = rounded.iter().zip(&e).map(|(y, e)| y + e).collect();
        for &z in &noisy {
            fixed::check_signed(z.into(), UPDATE_BITS)?;
        }
        let commitment =
            pedersen::commit(&Generators::new(d), &noisy, &self.private.rho).map_err(|e| {
                TrainingError::Mismatch {
                    what: "commitment values",
                    got: e.got,
                    want: e.want,
                }
            })?;
        self.public.commitment = commitment;
        self.public.noise = Some(NoisePublic {
            seed_commitment: noise::seed_commitment(input.seed),
            round: input.round,
            signs_hash: signs_hash(&input.negative),
        });
        self.private.noise = Some(NoisePrivate {
            seed: input.seed,
            negative: input.negative,
            rounded,
            noisy,
        });
        Ok(self)
    }

    /// The vector the commitment is to, what the holder masks: z when noised, else x.
    pub fn committed(&self) -> &[i64] {
        match &self.private.noise {
            Some(n) => &n.noisy,
            None => &self.private.update,
        }
    }
}

//! The Skellam noise sampler: integer noise of a given variance drawn by inverse CDF from a public
//! table of 64-bit thresholds, so that the same draw can be proven inside a circuit.
//!
//! # The sampler
//!
//! Each holder adds to each coordinate symmetric Skellam noise X = P₁ − P₂ with P₁, P₂ independent
//! Poisson(V/2), of variance V (the holder variance of [`crate::SkellamParams`]). A draw takes one
//! 64-bit uniform U (in a proven job, the output of an in-circuit PRG; this module takes the
//! `u64`s) and returns
//!
//! ```text
//! X = −K + #{k ∈ [−K, K) : U ≥ T_k}      (the smallest k with U < T_k, with T_K = 2^64)
//! ```
//!
//! for a public, strictly increasing table T_{−K} < … < T_{K−1} of `u64` thresholds with
//! T_k ≈ 2^64 · P(X ≤ k). Proving X from U is a one-hot lookup of T_{X−1} and T_X and two 64-bit
//! comparisons, T_{X−1} ≤ U < T_X (with T_{−K−1} = 0 and T_K = 2^64). The draw takes the value k
//! with probability exactly q_k = (T_k − T_{k−1}) / 2^64.
//!
//! # The table
//!
//! **The pmf.** For μ₁ = μ₂ = V/2 the Skellam pmf is p_k = e^{−V} I_k(V) (I_k the modified Bessel
//! function of the first kind; the argument is 2√(μ₁μ₂) = V). It is computed without evaluating
//! a single exponential, logarithm or Bessel function:
//!
//! 1. the ratios r_k = I_{k+1}(V) / I_k(V) by the backward recurrence
//!    r_k = V / (2(k+1) + V r_{k+1}), which follows from I_{k−1} − I_{k+1} = (2k/V) I_k, started
//!    at r_N = 0 far in the tail (N from Bernstein's bound P(X ≥ N) ≤ 2^-200, see below). The
//!    recurrence for the minimal solution is stable backwards: an error in r_{k+1} reaches r_k
//!    multiplied by r_k r_{k+1} < 1, so the starting error has shrunk by about (I_N/I_k)² by the
//!    time it reaches the table, and each step's rounding error is damped the same way;
//! 2. w_k = I_k / I_0 = r_0 r_1 ⋯ r_{k−1} (w_0 = 1), stopping where w_k < 2^-400;
//! 3. p_k = w_k / S with S = w_0 + 2 Σ_{k≥1} w_k, because Σ_{k∈ℤ} I_k(V) = e^V — the pmf
//!    normalises itself and p_{−k} = p_k;
//! 4. the tails P(X ≥ m) = Σ_{j≥m} p_j as sums of their (small) terms from the far end inwards,
//!    never as 1 − CDF.
//!
//! All of it is in double-double arithmetic (an unevaluated sum of two `f64`s, about 106 bits,
//! built from Knuth's two-sum and Dekker's split product: only IEEE-754 +, −, ×, ÷, each correctly
//! rounded, in a fixed order; no fused multiply-add, no platform intrinsic, no transcendental
//! function; `libm`'s `sqrt`, `floor` and `ceil` are exact or correctly rounded). Every machine with
//! IEEE-754 binary64 arithmetic (all Rust tier-1 targets) therefore builds the same table bit for
//! bit. Double precision alone would not do: T_k in the bulk is 2^64 · F(k) with F(k) ≈ 1/2,
//! whose `f64` has 53 bits, leaving the low 11 bits of the threshold to rounding noise; and
//! evaluating Poisson pmfs through `lgamma` loses about 10^-9 relative at V = 10^6 (logarithms of
//! size 10^7 cancel to a result of size 10). The error of the double-double pmf is at most a few
//! thousand double-double roundings (2^-104 each), about 10^-27 relative; the tests find every pmf
//! and tail value within one `f64` ulp of 50-digit mpmath values and the thresholds equal to the
//! exact rounding of mpmath's CDF. [`PMF_ERROR_BOUND`] bounds the total absolute error
//! Σ_k |p̂_k − p_k| with a wide margin.
//!
//! **The thresholds.** With L_m the quantised left tail, T_{−m} = L_m for m = 1..K and, by
//! symmetry, T_k = 2^64 − L_{k+1} for k = 0..K−1 (so that the right tail is also computed as a sum
//! of small terms: T_k = 2^64 − round(2^64 · P(X > k))). L_m = round(2^64 · P(X ≥ m)) (round half
//! up, from the double-double value), except that every value of the support must keep at least
//! one of the 2^64 slots for the table to be strictly increasing: going inwards from L_K ≥ 1,
//! L_m = max(round(2^64 P(X ≥ m)), L_{m+1} + 1). The forced "+1"s start where p_m < 2^-64 and
//! the drift d_m = L_m − round(…) they leave lasts until the rounded tail catches up: none at
//! V ≤ 8, 9 entries of each tail (at most 3 slots) at V = 1000, the outer 838 (at most 492 slots,
//! all where p_m ≤ 7 slots) at V = 10^6.
//!
//! **K** is the smallest integer with P(|X| > K) = 2 P(X ≥ K+1) < 2^-64: the two tails that the
//! table cuts off together carry less than 2^-64. The table has 2K entries; K ≈ 9.15 √V for large
//! V (K = 13 at V = 0.5, 32 at V = 8, 290 at V = 1000, 2,895 at V = 10^5, 9,155 at V = 10^6).
//!
//! # Distance to the exact Skellam
//!
//! [`SkellamTable::total_variation_bound`] returns η with TV(q, p) ≤ η, where q is the sampled
//! distribution and p the exact Skellam. Derivation:
//!
//! * TV(q, p) = ½ Σ_{k∈ℤ} |q_k − p_k| = ½ [P(|X| > K) + Σ_{|k|≤K} |q_k − p_k|], since q is 0
//!   outside [−K, K]. By symmetry (q_{−k} = q_k, p_{−k} = p_k) this is
//!   P(X > K) + ½ |q_0 − p_0| + Σ_{k=1}^{K} |q_k − p_k|.
//! * The table knows each q_k exactly (an integer over 2^64), and the computed p̂_k satisfies
//!   Σ_k |p̂_k − p_k| ≤ ρ = [`PMF_ERROR_BOUND`], so replacing p by p̂ in the sum above (and in the tail
//!   P(X > K), also a sum of p̂'s) changes it by at most 2ρ. The constructor evaluates
//!   η̂ = P̂(X > K) + ½|q_0 − p̂_0| + Σ |q_k − p̂_k| (each difference in double-double, the sum in
//!   `f64`) and returns η = (η̂ + 2ρ)(1 + 2^-40), the last factor covering the `f64` summation.
//! * A priori, without the table: writing e_k = T_k / 2^64 − F(k) for the error of a threshold
//!   (|e_k| ≤ (½ + d) 2^-64 + ρ, d the drift above, ρ covering the computed tail's error),
//!   e_{−K−1} = −P(X < −K) and e_K = P(X > K), Σ_{|k|≤K} |q_k − p_k| = Σ |e_k − e_{k−1}|
//!   ≤ P(|X| > K) + 2 Σ_{k=−K}^{K−1} |e_k|, hence
//!   TV ≤ P(|X| > K) + (K + 2 Σ_m d_m) 2^-64 + 2Kρ: the truncation costs less than 2^-64 and pure
//!   rounding at most K · 2^-64.
//!
//! η is 7.2·10^-19 at V = 8, 5.6·10^-18 at V = 1000, 6.1·10^-17 at V = 10^5 and 2.0·10^-16 at
//! V = 10^6 (the a-priori bound: 5.2·10^-18, 4.9·10^-17, 2.1·10^-15, 2.9·10^-14).
//!
//! **Consequence for differential privacy.** If a mechanism M is (ε, δ)-DP and M′ differs from it
//! only in that each of its `uses` noise draws comes from q instead of p, the joint output
//! distributions of M′ and M are within uses · η in total variation (couple the draws one by
//! one), so for adjacent D, D′ and any event S,
//! P[M′(D) ∈ S] ≤ P[M(D) ∈ S] + uses·η ≤ e^ε P[M(D′) ∈ S] + δ + uses·η
//! ≤ e^ε P[M′(D′) ∈ S] + δ + (1 + e^ε) uses·η. M′ is (ε, δ + (1 + e^ε) · uses · η)-DP:
//! [`SkellamTable::delta_penalty`] gives the added term for a whole job (ε its final epsilon,
//! `uses` every draw of every holder in every round: coordinates × holders × rounds).

use sha2::{Digest, Sha256};

/// The largest holder variance [`SkellamTable::new`] accepts (the table then has about 18,000
/// entries).
pub const MAX_HOLDER_VARIANCE: f64 = 1e6;

/// ρ: a bound on Σ_k |p̂_k − p_k|, the total absolute error of the computed pmf (2^-64). The
/// double-double computation's error is about 10^-27 relative at V = 10^6 (see the module docs).
pub const PMF_ERROR_BOUND: f64 = 1.0 / TWO64;

/// 2^64 as an `f64`.
const TWO64: f64 = 18_446_744_073_709_551_616.0;
/// 2^-64: the probability of one slot.
const SLOT: f64 = 1.0 / TWO64;
/// 2^-65: P(X ≥ K+1) must be below this, so that the two cut tails carry less than 2^-64.
const HALF_SLOT: f64 = 0.5 / TWO64;
/// 200 ln 2 (rounded up): the series is computed out to where Bernstein's bound puts
/// P(X ≥ N) ≤ 2^-200.
const LN_TAIL: f64 = 138.629_436_111_989_1;
/// w_k below 2^-400 (p_k below that over S) is dropped.
const W_CUTOFF: f64 = f64::from_bits((1023 - 400) << 52);

/// Errors of [`SkellamTable::new`] and [`SkellamPmf::new`]: the holder variance is out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SkellamError {
    /// NaN or infinite.
    #[error("holder_variance = {0}: must be a finite number")]
    NotFinite(f64),
    /// Zero or negative.
    #[error("holder_variance = {0}: must be positive")]
    NotPositive(f64),
    /// Above [`MAX_HOLDER_VARIANCE`].
    #[error("holder_variance = {value}: above the supported maximum {max}")]
    TooLarge {
        /// The variance given.
        value: f64,
        /// [`MAX_HOLDER_VARIANCE`].
        max: f64,
    },
    /// The computed table failed its own checks (support inside the computed range, strictly
    /// increasing thresholds): a bug.
    #[error("holder_variance = {value}: the computed table failed its check: {check}")]
    Internal {
        /// The variance given.
        value: f64,
        /// Which check.
        check: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------
// Double-double arithmetic (hi + lo with |lo| ≤ ulp(hi)/2), from IEEE-754 operations only.

#[derive(Debug, Clone, Copy, PartialEq)]
struct Dd {
    hi: f64,
    lo: f64,
}

impl Dd {
    const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };

    fn from_f64(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }

    /// An integer below 2^65, exactly.
    fn from_u128(n: u128) -> Dd {
        let high = (n >> 32) as f64 * 4_294_967_296.0;
        let low = (n & 0xffff_ffff) as f64;
        two_sum(high, low)
    }

    /// Multiplication by a power of two: exact.
    fn scale(self, p: f64) -> Dd {
        Dd {
            hi: self.hi * p,
            lo: self.lo * p,
        }
    }

    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }

    fn add(self, b: Dd) -> Dd {
        let s = two_sum(self.hi, b.hi);
        let t = two_sum(self.lo, b.lo);
        let s = quick_two_sum(s.hi, s.lo + t.hi);
        quick_two_sum(s.hi, s.lo + t.lo)
    }

    fn sub(self, b: Dd) -> Dd {
        self.add(b.neg())
    }

    fn mul(self, b: Dd) -> Dd {
        let p = two_prod(self.hi, b.hi);
        quick_two_sum(p.hi, p.lo + (self.hi * b.lo + self.lo * b.hi))
    }

    fn mul_f64(self, b: f64) -> Dd {
        let p = two_prod(self.hi, b);
        quick_two_sum(p.hi, p.lo + self.lo * b)
    }

    fn div(self, b: Dd) -> Dd {
        let q1 = self.hi / b.hi;
        let r = self.sub(b.mul_f64(q1));
        let q2 = r.hi / b.hi;
        let r = r.sub(b.mul_f64(q2));
        let q3 = r.hi / b.hi;
        quick_two_sum(q1, q2).add(Dd::from_f64(q3))
    }

    /// self < x for an `f64` x.
    fn lt(self, x: f64) -> bool {
        self.hi < x || (self.hi == x && self.lo < 0.0)
    }

    /// ⌊self⌋ as an `f64` (an integer when it fits).
    fn floor(self) -> f64 {
        let f = libm::floor(self.hi);
        if f == self.hi {
            f + libm::floor(self.lo)
        } else {
            f
        }
    }

    /// The nearest integer (halves up) of a non-negative value below 2^126.
    fn round_u128(self) -> u128 {
        let whole = libm::floor(self.hi);
        // hi − ⌊hi⌋ is exact (Sterbenz), so rest = self − ⌊hi⌋ + ½ is too, in double-double.
        let rest = two_sum(self.hi - whole, self.lo).add(Dd::from_f64(0.5));
        let n = whole as i128 + rest.floor() as i128;
        n.max(0) as u128
    }
}

fn two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    Dd { hi: s, lo: e }
}

/// Requires |a| ≥ |b| (or a = 0).
fn quick_two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    Dd {
        hi: s,
        lo: b - (s - a),
    }
}

/// Veltkamp's split: a = hi + lo with 26-bit halves (exact for |a| < 2^996).
fn split(a: f64) -> (f64, f64) {
    let t = 134_217_729.0 * a; // 2^27 + 1
    let hi = t - (t - a);
    (hi, a - hi)
}

/// Dekker's exact product a·b = p + e, without fused multiply-add.
fn two_prod(a: f64, b: f64) -> Dd {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    let e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    Dd { hi: p, lo: e }
}

// ---------------------------------------------------------------------------------------------

/// The pmf and tails of the symmetric Skellam distribution of one variance, in double-double
/// precision (see the module docs for the method), for |k| up to [`SkellamPmf::computed_range`];
/// beyond it the mass is below 2^-400 and is taken as 0.
#[derive(Debug, Clone)]
pub struct SkellamPmf {
    variance: f64,
    /// p_k for k = 0..=n.
    pmf: Vec<Dd>,
    /// P(X ≥ m) for m = 0..=n+1 (the last is 0).
    tail: Vec<Dd>,
}

fn check_variance(v: f64) -> Result<(), SkellamError> {
    if !v.is_finite() {
        return Err(SkellamError::NotFinite(v));
    }
    if v <= 0.0 {
        return Err(SkellamError::NotPositive(v));
    }
    if v > MAX_HOLDER_VARIANCE {
        return Err(SkellamError::TooLarge {
            value: v,
            max: MAX_HOLDER_VARIANCE,
        });
    }
    Ok(())
}

impl SkellamPmf {
    /// The Skellam distribution of variance `variance` (the difference of two Poisson(V/2)).
    pub fn new(variance: f64) -> Result<Self, SkellamError> {
        check_variance(variance)?;
        let x = variance;
        // Bernstein: P(X ≥ t) ≤ exp(−t² / (2(V + t/3))) ≤ 2^-200 for t ≥ L/3 + √(L²/9 + 2VL).
        let t = LN_TAIL / 3.0 + libm::sqrt(LN_TAIL * LN_TAIL / 9.0 + 2.0 * x * LN_TAIL);
        let big_n = libm::ceil(t) as usize + 2;

        // r_k = I_{k+1}(x) / I_k(x), backwards from r_N = 0.
        let mut ratios = vec![Dd::ZERO; big_n + 1];
        let xd = Dd::from_f64(x);
        for k in (0..big_n).rev() {
            let denom = Dd::from_f64(2.0 * (k as f64 + 1.0)).add(ratios[k + 1].mul_f64(x));
            ratios[k] = xd.div(denom);
        }

        // w_k = I_k / I_0.
        let mut w = Vec::with_capacity(big_n + 1);
        w.push(Dd::from_f64(1.0));
        for ratio in ratios.iter().take(big_n) {
            let Some(last) = w.last().copied() else { break };
            let next = last.mul(*ratio);
            if next.hi < W_CUTOFF {
                break;
            }
            w.push(next);
        }

        // S = w_0 + 2 Σ_{k≥1} w_k, small terms first.
        let mut s = Dd::ZERO;
        for wk in w.iter().skip(1).rev() {
            s = s.add(*wk);
        }
        let s = s.scale(2.0).add(Dd::from_f64(1.0));

        let pmf: Vec<Dd> = w.iter().map(|wk| wk.div(s)).collect();
        let mut tail = vec![Dd::ZERO; pmf.len() + 1];
        for m in (0..pmf.len()).rev() {
            tail[m] = tail[m + 1].add(pmf[m]);
        }
        Ok(SkellamPmf {
            variance,
            pmf,
            tail,
        })
    }

    /// The variance V.
    pub fn variance(&self) -> f64 {
        self.variance
    }

    /// The largest |k| computed; P(|X| > this) is below 2^-400.
    pub fn computed_range(&self) -> i64 {
        self.pmf.len() as i64 - 1
    }

    fn pmf_dd(&self, k: i64) -> Dd {
        self.pmf
            .get(k.unsigned_abs() as usize)
            .copied()
            .unwrap_or(Dd::ZERO)
    }

    /// P(X ≥ m) for m ≥ 0.
    fn upper_dd(&self, m: u64) -> Dd {
        self.tail.get(m as usize).copied().unwrap_or(Dd::ZERO)
    }

    /// P(X ≤ k).
    fn cdf_dd(&self, k: i64) -> Dd {
        if k < 0 {
            self.upper_dd(k.unsigned_abs())
        } else {
            Dd::from_f64(1.0).sub(self.upper_dd(k as u64 + 1))
        }
    }

    /// P(X = k).
    pub fn pmf(&self, k: i64) -> f64 {
        self.pmf_dd(k).hi
    }

    /// P(X ≤ k), as scipy's `cdf`.
    pub fn cdf(&self, k: i64) -> f64 {
        self.cdf_dd(k).hi
    }

    /// P(X > k), as scipy's `sf` (a sum of small terms, accurate in the far right tail).
    pub fn sf(&self, k: i64) -> f64 {
        // P(X > k) = P(X < −k) = P(X ≤ −k − 1).
        self.cdf_dd(-k - 1).hi
    }
}

/// The public threshold table of the Skellam sampler for one holder variance (see the module
/// docs): built from the variance alone, identically on every machine.
#[derive(Debug, Clone)]
pub struct SkellamTable {
    k: i64,
    thresholds: Vec<u64>,
    tv_bound: f64,
    pmf: SkellamPmf,
}

impl SkellamTable {
    /// The table for noise of variance `holder_variance` (in (0, [`MAX_HOLDER_VARIANCE`]]).
    pub fn new(holder_variance: f64) -> Result<Self, SkellamError> {
        let pmf = SkellamPmf::new(holder_variance)?;
        let internal = |check| SkellamError::Internal {
            value: holder_variance,
            check,
        };
        // K: the smallest with P(X ≥ K + 1) < 2^-65.
        let mut k: usize = 0;
        while !pmf.upper_dd(k as u64 + 1).lt(HALF_SLOT) {
            k += 1;
        }
        if k as i64 >= pmf.computed_range() {
            return Err(internal(
                "the support reaches the end of the computed range",
            ));
        }

        // L_m for m = 1..=K (index m), L_{K+1} = 0, going inwards with at least one slot each.
        let mut left = vec![0u128; k + 2];
        for m in (1..=k).rev() {
            let rounded = pmf.upper_dd(m as u64).scale(TWO64).round_u128();
            left[m] = rounded.max(left[m + 1] + 1);
        }
        let top: u128 = 1 << 64;
        if k > 0 && 2 * left[1] >= top {
            return Err(internal("the thresholds are not strictly increasing"));
        }
        let mut thresholds = Vec::with_capacity(2 * k);
        // T_{−K} … T_{−1} = L_K … L_1, then T_0 … T_{K−1} = 2^64 − L_1 … 2^64 − L_K.
        for l in left[1..=k].iter().rev() {
            thresholds.push(u64::try_from(*l).map_err(|_| internal("threshold range"))?);
        }
        for l in &left[1..=k] {
            thresholds.push(u64::try_from(top - l).map_err(|_| internal("threshold range"))?);
        }

        // η̂ = P(X > K) + ½|q_0 − p̂_0| + Σ_{k=1..K} |q_k − p̂_k|, in slots for the sum.
        let gap = |j: usize| -> u128 {
            if j == 0 {
                top - 2 * left[1]
            } else {
                left[j] - left[j + 1]
            }
        };
        let diff = |j: usize| -> f64 {
            Dd::from_u128(gap(j))
                .sub(pmf.pmf_dd(j as i64).scale(TWO64))
                .hi
                .abs()
        };
        let mut slots = 0.5 * diff(0);
        for j in 1..=k {
            slots += diff(j);
        }
        let estimate = pmf.upper_dd(k as u64 + 1).hi + slots * SLOT;
        let tv_bound = (estimate + 2.0 * PMF_ERROR_BOUND) * (1.0 + 1.0 / 1_099_511_627_776.0);

        Ok(SkellamTable {
            k: k as i64,
            thresholds,
            tv_bound,
            pmf,
        })
    }

    /// The table of `holder_variance`, built once per process and shared: a holder, the
    /// coordinator and a prover all need the job's table every round, and a large variance's
    /// takes a while to build. The last variance asked for is kept.
    pub fn shared(holder_variance: f64) -> Result<std::sync::Arc<Self>, SkellamError> {
        use std::sync::{Arc, Mutex, PoisonError};
        static CACHE: Mutex<Option<(u64, Arc<SkellamTable>)>> = Mutex::new(None);
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((bits, table)) = cache.as_ref() {
            if *bits == holder_variance.to_bits() {
                return Ok(Arc::clone(table));
            }
        }
        let table = Arc::new(SkellamTable::new(holder_variance)?);
        *cache = Some((holder_variance.to_bits(), Arc::clone(&table)));
        Ok(table)
    }

    /// The table for the holder variance of `params` ([`crate::SkellamParams::holder_variance`]).
    pub fn for_params(params: &crate::SkellamParams) -> Result<Self, SkellamError> {
        SkellamTable::new(params.holder_variance())
    }

    /// The holder variance V.
    pub fn variance(&self) -> f64 {
        self.pmf.variance
    }

    /// (−K, K): the values a draw can take.
    pub fn support(&self) -> (i64, i64) {
        (-self.k, self.k)
    }

    /// T_{−K}, …, T_{K−1} (2K values, strictly increasing; T_K = 2^64 is implicit).
    pub fn thresholds(&self) -> &[u64] {
        &self.thresholds
    }

    /// The draw for the uniform `u`: −K + #{k : u ≥ T_k}, by binary search.
    pub fn sample(&self, u: u64) -> i64 {
        -self.k + self.thresholds.partition_point(|&t| t <= u) as i64
    }

    /// q_k = (T_k − T_{k−1}) / 2^64, the exact probability that [`SkellamTable::sample`] returns k
    /// for a uniform `u` (0 outside the support).
    pub fn sampled_pmf(&self, k: i64) -> f64 {
        if k < -self.k || k > self.k {
            return 0.0;
        }
        let at = |j: i64| -> u128 {
            if j < -self.k {
                0
            } else if j >= self.k {
                1 << 64
            } else {
                u128::from(self.thresholds[(j + self.k) as usize])
            }
        };
        (at(k) - at(k - 1)) as f64 * SLOT
    }

    /// The exact distribution the table approximates.
    pub fn pmf(&self) -> &SkellamPmf {
        &self.pmf
    }

    /// η: a proven upper bound on the total-variation distance between the sampled distribution
    /// and the exact Skellam of this variance (derivation in the module docs).
    pub fn total_variation_bound(&self) -> f64 {
        self.tv_bound
    }

    /// (1 + e^ε) · uses · η: what to add to δ for a mechanism that is (ε, δ)-DP with exact Skellam
    /// noise and draws its noise `uses` times from this table (module docs). At most 1.
    pub fn delta_penalty(&self, eps: f64, uses: u64) -> f64 {
        ((1.0 + libm::exp(eps)) * uses as f64 * self.tv_bound).min(1.0)
    }

    /// SHA-256 of the domain tag `cairn-privacy/skellam-table/v1`, K as a little-endian `u64`, and
    /// the 2K thresholds as little-endian `u64`s: the name of the table a job and a verifying key
    /// can carry.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"cairn-privacy/skellam-table/v1");
        h.update((self.k as u64).to_le_bytes());
        for t in &self.thresholds {
            h.update(t.to_le_bytes());
        }
        h.finalize().into()
    }

    /// The a-priori bound P(|X| > K) + (K + 2 Σ drift) 2^-64 + 2Kρ (module docs), for the tests.
    #[cfg(test)]
    fn a_priori_bound(&self) -> f64 {
        let k = self.k as usize;
        let mut drift: u128 = 0;
        for m in 1..=k {
            let rounded = self.pmf.upper_dd(m as u64).scale(TWO64).round_u128();
            drift += u128::from(self.thresholds[k - m]) - rounded;
        }
        2.0 * self.pmf.upper_dd(k as u64 + 1).hi
            + (k as f64 + 2.0 * drift as f64) * SLOT
            + 2.0 * k as f64 * PMF_ERROR_BOUND
    }
}

/// One draw per uniform: the noise vector for `uniforms` (one `u64` per coordinate).
pub fn noise(table: &SkellamTable, uniforms: &[u64]) -> Vec<i64> {
    uniforms.iter().map(|&u| table.sample(u)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_double_is_exact_where_it_must_be() {
        let third = Dd::from_f64(1.0).div(Dd::from_f64(3.0));
        let back = third.mul_f64(3.0).sub(Dd::from_f64(1.0));
        assert!(back.hi.abs() < 1e-31, "{back:?}");
        let big = Dd::from_u128((1u128 << 64) - 1);
        assert_eq!(big.round_u128(), (1u128 << 64) - 1);
        assert_eq!(Dd::from_f64(2.5).round_u128(), 3);
        assert_eq!(
            Dd {
                hi: 2.5,
                lo: -1e-20
            }
            .round_u128(),
            2
        );
        let p = two_prod(1.0 + f64::EPSILON, 1.0 - f64::EPSILON);
        assert_eq!(p.hi, 1.0);
        assert_eq!(p.lo, -f64::EPSILON * f64::EPSILON);
    }

    #[test]
    fn computed_bound_is_below_the_a_priori_one() -> Result<(), SkellamError> {
        for v in [0.5, 8.0, 1000.0, 250_000.0] {
            let t = SkellamTable::new(v)?;
            assert!(
                t.total_variation_bound() <= t.a_priori_bound(),
                "V {v}: {} > {}",
                t.total_variation_bound(),
                t.a_priori_bound()
            );
        }
        Ok(())
    }
}

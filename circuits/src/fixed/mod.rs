//! Signed fixed-point numbers: the one number format shared by the proof circuit, the
//! native replay that produces its witness, and the quantiser of updates.
//!
//! # Format
//!
//! A real `r` is the integer `v = round(r · 2^FRAC_BITS)` ([`FRAC_BITS`] = 16, so the
//! resolution is 2^-16 ≈ 1.5e-5). Every value that is stored (features, labels, weights,
//! activations, deltas, updates) is a signed [`VALUE_BITS`]-bit integer (|r| < 2^15); in the
//! circuit it is the field element `v mod p`. Products are exact in the field (p ≈ 2^254)
//! and are brought back to scale by [`rescale`], which divides by a power of two rounding
//! toward −∞ (an arithmetic shift) and checks the quotient fits in [`VALUE_BITS`] bits.
//! A dot product is summed at the doubled scale and rescaled **once**.
//!
//! The sigmoid is a piecewise-linear interpolation of σ on 32 segments of width 1/2 over
//! [−8, 8), clamped outside; its maximum absolute error against the true σ is below
//! [`SIGMOID_MAX_ERROR`] (tested on a dense grid).

pub mod constraints;

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};

/// Fractional bits: a value `v` stands for `v / 2^FRAC_BITS`. The one place of the proven
/// scale: a proven job aggregates at exactly this scale (`cairn_proofs::spec::PROVEN_SCALE_BITS`
/// is this constant).
pub const FRAC_BITS: u32 = 16;
/// `2^FRAC_BITS`, the fixed-point one.
pub const SCALE: i64 = 1 << FRAC_BITS;
/// Signed width of every stored value (range-checked in the circuit after each rescale).
pub const VALUE_BITS: u32 = 32;
/// Bound on the sigmoid approximation's absolute error.
pub const SIGMOID_MAX_ERROR: f64 = 0.0035;

/// log2 of the sigmoid segment width in fixed point (width 1/2).
pub(crate) const SIG_SEG_SHIFT: u32 = FRAC_BITS - 1;
/// Number of segment-index bits (32 segments over [−8, 8)).
pub(crate) const SIG_SEG_BITS: u32 = 5;
/// The clamp bound 8 in fixed point: 2^19.
pub(crate) const SIG_BOUND: i64 = 8 * SCALE;
/// round(σ(−8 + k/2) · 2^16) for k = 0..=32: the knots of the interpolation. Written out
/// rather than computed so that every machine (setup, prover, verifier) agrees bit for bit.
pub(crate) const SIG_TABLE: [i64; 33] = [
    22, 36, 60, 98, 162, 267, 439, 720, 1179, 1921, 3108, 4971, 7812, 11955, 17625, 24743, 32768,
    40793, 47911, 53581, 57724, 60565, 62428, 63615, 64357, 64816, 65097, 65269, 65374, 65438,
    65476, 65500, 65514,
];

/// A value does not fit the format.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FixedError {
    /// An integer outside the signed range of `bits` bits.
    #[error("fixed-point value {value} does not fit in {bits} signed bits")]
    Overflow {
        /// The value.
        value: i128,
        /// The width it had to fit.
        bits: u32,
    },
    /// NaN or infinity cannot be quantised.
    #[error("cannot quantise non-finite value {0}")]
    NonFinite(f32),
}

/// Checks `v` is a signed `bits`-bit integer, i.e. in `[−2^(bits−1), 2^(bits−1))`.
pub fn check_signed(v: i128, bits: u32) -> Result<i64, FixedError> {
    let half = 1i128 << (bits - 1);
    if (-half..half).contains(&v) {
        // bits ≤ 64 everywhere we call this, so the cast is exact.
        Ok(v as i64)
    } else {
        Err(FixedError::Overflow { value: v, bits })
    }
}

/// Quantises a real to the fixed-point format (round to nearest, ties away from zero).
pub fn quantize(x: f32) -> Result<i64, FixedError> {
    if !x.is_finite() {
        return Err(FixedError::NonFinite(x));
    }
    let v = (f64::from(x) * SCALE as f64).round();
    if v.abs() >= (1u64 << (VALUE_BITS - 1)) as f64 {
        return Err(FixedError::Overflow {
            value: v as i128,
            bits: VALUE_BITS,
        });
    }
    Ok(v as i64)
}

/// Quantises a slice; fails on the first value out of range.
pub fn quantize_all(xs: &[f32]) -> Result<Vec<i64>, FixedError> {
    xs.iter().map(|&x| quantize(x)).collect()
}

/// A dataset row as the tree commits it: the quantised features, then the label.
pub fn quantize_row(features: &[f32], label: f32) -> Result<Vec<i64>, FixedError> {
    features
        .iter()
        .chain(std::iter::once(&label))
        .map(|&x| quantize(x))
        .collect()
}

/// The real a fixed-point value stands for.
pub fn dequantize(v: i64) -> f32 {
    (v as f64 / SCALE as f64) as f32
}

/// `floor(z / 2^shift)`, checked to fit in [`VALUE_BITS`] signed bits.
pub fn rescale(z: i128, shift: u32) -> Result<i64, FixedError> {
    check_signed(z >> shift, VALUE_BITS)
}

/// Exact dot product (at the product of the operands' scales; not rescaled).
pub fn dot(a: &[i64], b: &[i64]) -> i128 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i128::from(x) * i128::from(y))
        .sum()
}

/// Whether ReLU passes `v` (and its gradient is 1): `v ≥ 0`.
pub fn relu_active(v: i64) -> bool {
    v >= 0
}

/// ReLU.
pub fn relu(v: i64) -> i64 {
    v.max(0)
}

/// The fixed-point sigmoid (see the module docs).
pub fn sigmoid(z: i64) -> i64 {
    let zc = z.clamp(-SIG_BOUND, SIG_BOUND - 1);
    let t = zc + SIG_BOUND; // in [0, 2^20)
    let idx = (t >> SIG_SEG_SHIFT) as usize;
    let frac = t & ((1 << SIG_SEG_SHIFT) - 1);
    SIG_TABLE[idx] + (((SIG_TABLE[idx + 1] - SIG_TABLE[idx]) * frac) >> SIG_SEG_SHIFT)
}

/// A signed integer as a field element (`v mod p`).
pub fn to_field(v: i128) -> Fr {
    if v >= 0 {
        Fr::from(v as u128)
    } else {
        -Fr::from(v.unsigned_abs())
    }
}

/// The signed integer a field element stands for, when it is within `i128` (|v| < 2^126).
pub fn from_field(f: Fr) -> Option<i128> {
    let small = |x: Fr| -> Option<i128> {
        let limbs = x.into_bigint();
        let l = limbs.as_ref();
        if l[2] != 0 || l[3] != 0 || l[1] >> 62 != 0 {
            return None;
        }
        Some((i128::from(l[1]) << 64) | i128::from(l[0]))
    };
    small(f).or_else(|| small(-f).map(|v| -v))
}

/// Bits of a non-negative field element, little-endian, `n` of them.
pub(crate) fn field_bits(f: Fr, n: usize) -> Vec<bool> {
    let big = f.into_bigint();
    (0..n).map(|i| big.get_bit(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_round_trips_and_rejects() {
        assert_eq!(quantize(1.0), Ok(SCALE));
        assert_eq!(quantize(-0.5), Ok(-SCALE / 2));
        assert!((dequantize(quantize(0.123_456).unwrap_or(0)) - 0.123_456).abs() < 1e-5);
        assert!(matches!(
            quantize(40_000.0),
            Err(FixedError::Overflow { .. })
        ));
        assert!(matches!(quantize(f32::NAN), Err(FixedError::NonFinite(_))));
        assert_eq!(
            quantize_row(&[0.5, -2.0], 1.0),
            Ok(vec![SCALE / 2, -2 * SCALE, SCALE])
        );
    }

    #[test]
    fn rescale_floors_and_checks_range() {
        assert_eq!(rescale(3 * SCALE as i128 + 5, FRAC_BITS), Ok(3));
        assert_eq!(rescale(-1, FRAC_BITS), Ok(-1));
        assert!(rescale(1i128 << 60, FRAC_BITS).is_err());
    }

    #[test]
    fn field_round_trip() {
        for v in [0i128, 1, -1, 1 << 100, -(1 << 100)] {
            assert_eq!(from_field(to_field(v)), Some(v));
        }
    }

    #[test]
    fn sigmoid_error_is_bounded() {
        let mut worst = 0.0f64;
        for i in -(12 * SCALE)..(12 * SCALE) {
            if i % 7 != 0 {
                continue;
            }
            let z = i as f64 / SCALE as f64;
            let exact = 1.0 / (1.0 + (-z).exp());
            let approx = sigmoid(i) as f64 / SCALE as f64;
            worst = worst.max((exact - approx).abs());
        }
        assert!(worst < SIGMOID_MAX_ERROR, "worst error {worst}");
        assert!(worst > 1e-4, "error suspiciously small: {worst}");
    }

    #[test]
    fn sigmoid_is_monotone() {
        let vals: Vec<i64> = (-(9 * SCALE)..(9 * SCALE))
            .step_by(97)
            .map(sigmoid)
            .collect();
        assert!(vals.windows(2).all(|w| w[0] <= w[1]));
    }
}

//! Fixed-point quantisation of a clipped float update into the ring, and back.
//!
//! A coordinate x becomes q = round(clamp(x, −c, c) · 2^s) as a signed integer, stored
//! in the ring by two's complement. Sums of such vectors stay exact as long as the true
//! integer sum fits in the centred range [−2^(k−1), 2^(k−1)); [`check_ring_capacity`]
//! checks that for the most participants a job allows, and [`dequantise`] reads a sum
//! back through the centred lift. Rounding is either to nearest (deterministic) or
//! stochastic with a caller-seeded RNG (unbiased: E(q) = x · 2^s).

use rand_core::RngCore;

use crate::ring::{centred, from_signed, RingElem, RING_BITS};

/// Errors of quantisation and of the capacity check.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    /// A coordinate is NaN or infinite.
    #[error("coordinate {index} is not finite")]
    NotFinite {
        /// Its index.
        index: usize,
    },
    /// The clip bound or scale is unusable (non-positive, non-finite, or too large for the ring).
    #[error("invalid quantisation parameters: clip bound {clip}, scale 2^{scale_bits}")]
    BadParams {
        /// Clip bound.
        clip: f64,
        /// Fractional bits.
        scale_bits: u32,
    },
    /// The sum of `n_max` clipped, quantised updates could wrap around the ring.
    #[error(
        "ring Z_2^{ring_bits} too small: {n_max} updates of magnitude up to {max_abs} need {needed_bits} bits"
    )]
    RingTooSmall {
        /// Participants the check was for.
        n_max: u64,
        /// Largest quantised magnitude of one coordinate, ⌈c · 2^s⌉.
        max_abs: u128,
        /// Bits the ring needs (sign included).
        needed_bits: u32,
        /// Bits it has.
        ring_bits: u32,
    },
}

/// The fixed-point format of updates: clip bound c and fractional bits s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantParams {
    /// Every coordinate is clamped to [−clip, clip] (an L2 clip bound implies this one).
    pub clip: f64,
    /// Fractional bits s: the scale is 2^s.
    pub scale_bits: u32,
}

impl QuantParams {
    /// Checks the parameters against the ring for a single update.
    pub fn new(clip: f64, scale_bits: u32) -> Result<Self, QuantError> {
        let p = Self { clip, scale_bits };
        p.max_abs()?;
        check_ring_capacity(1, clip, scale_bits, RING_BITS)?;
        Ok(p)
    }

    /// ⌈c · 2^s⌉: the largest magnitude a quantised coordinate can take.
    pub fn max_abs(&self) -> Result<u128, QuantError> {
        max_abs(self.clip, self.scale_bits)
    }

    fn scale(&self) -> f64 {
        (self.scale_bits as f64).exp2()
    }
}

fn max_abs(clip: f64, scale_bits: u32) -> Result<u128, QuantError> {
    let bad = QuantError::BadParams { clip, scale_bits };
    if !(clip.is_finite() && clip > 0.0) || scale_bits > 62 {
        return Err(bad);
    }
    let m = (clip * (scale_bits as f64).exp2()).ceil();
    if m > 2f64.powi(100) {
        return Err(bad);
    }
    Ok(m as u128)
}

/// Checks that the sum of `n_max` updates, each coordinate clipped to `clip_bound` and
/// scaled by 2^`scale_bits`, fits in Z_2^`ring_bits` without wrapping: n_max · ⌈c · 2^s⌉
/// must not exceed 2^(ring_bits − 1) − 1, so that the centred lift reads the sum exactly.
pub fn check_ring_capacity(
    n_max: u64,
    clip_bound: f64,
    scale_bits: u32,
    ring_bits: u32,
) -> Result<(), QuantError> {
    let max_abs = max_abs(clip_bound, scale_bits)?;
    if ring_bits == 0 || ring_bits > 127 {
        return Err(QuantError::BadParams {
            clip: clip_bound,
            scale_bits,
        });
    }
    let total = (n_max as u128).saturating_mul(max_abs);
    let limit = (1u128 << (ring_bits - 1)) - 1;
    if total > limit {
        let needed_bits = 128 - total.leading_zeros() + 1;
        return Err(QuantError::RingTooSmall {
            n_max,
            max_abs,
            needed_bits,
            ring_bits,
        });
    }
    Ok(())
}

fn check_finite(x: &[f32]) -> Result<(), QuantError> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(QuantError::NotFinite { index }),
        None => Ok(()),
    }
}

/// Round half away from zero without a libm call (`f64::round` is one on baseline
/// x86-64): v − trunc(v) is exact for |v| < 2^52, which the parameters guarantee.
#[inline(always)]
fn round_half_away(v: f64) -> i64 {
    let t = v as i64;
    let frac = v - t as f64;
    t + (frac >= 0.5) as i64 - (frac <= -0.5) as i64
}

/// ⌊v⌋ without a libm call, exact for |v| < 2^52.
#[inline(always)]
fn floor(v: f64) -> i64 {
    let t = v as i64;
    t - ((t as f64) > v) as i64
}

/// Quantises with round-to-nearest (ties away from zero).
pub fn quantise(x: &[f32], p: &QuantParams) -> Result<Vec<RingElem>, QuantError> {
    check_finite(x)?;
    let (c, scale) = (p.clip, p.scale());
    Ok(x.iter()
        .map(|&v| from_signed(round_half_away((v as f64).clamp(-c, c) * scale)))
        .collect())
}

/// Quantises with stochastic rounding driven by `rng`: ⌊v⌋ + 1 with probability v − ⌊v⌋.
pub fn quantise_stochastic<R: RngCore>(
    x: &[f32],
    p: &QuantParams,
    rng: &mut R,
) -> Result<Vec<RingElem>, QuantError> {
    check_finite(x)?;
    let (c, scale) = (p.clip, p.scale());
    Ok(x.iter()
        .map(|&v| {
            let v = (v as f64).clamp(-c, c) * scale;
            let f = floor(v);
            let u = rng.next_u32() as f64 * (-32f64).exp2();
            from_signed(f + (u < v - f as f64) as i64)
        })
        .collect())
}

/// Reads a ring vector (one update, or the sum of several) back as floats through the
/// centred lift: exact whenever [`check_ring_capacity`] held for the number summed.
pub fn dequantise(sum: &[RingElem], scale_bits: u32) -> Vec<f64> {
    let inv = (-(scale_bits as f64)).exp2();
    sum.iter().map(|&q| centred(q) as f64 * inv).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring;
    use rand::SeedableRng;

    #[test]
    fn sum_of_signed_updates_dequantises_exactly() {
        let p = QuantParams::new(1.0, 16).expect("fits");
        let a = quantise(&[0.5, -0.25, -1.0, 3.0], &p).expect("finite");
        let b = quantise(&[-0.75, -0.5, -1.0, -7.0], &p).expect("finite");
        let s = ring::sum(&[&a, &b], 4);
        assert_eq!(dequantise(&s, 16), vec![-0.25, -0.75, -2.0, 0.0]);
    }

    #[test]
    fn stochastic_rounding_is_unbiased_and_seeded() {
        let p = QuantParams::new(1.0, 4).expect("fits");
        let x = vec![0.018_75f32; 20_000]; // 0.3 of a unit at scale 2^4
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let q = quantise_stochastic(&x, &p, &mut rng).expect("finite");
        let mean = dequantise(&q, 4).iter().sum::<f64>() / q.len() as f64;
        assert!((mean - x[0] as f64).abs() < 0.001, "mean {mean}");
        assert!(q.iter().all(|&v| v == 0 || v == 1));
        let mut rng2 = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        assert_eq!(q, quantise_stochastic(&x, &p, &mut rng2).expect("finite"));
    }

    #[test]
    fn fast_rounding_matches_std() {
        for v in [
            0.0,
            0.49,
            0.5,
            0.51,
            1.5,
            2.5,
            -0.49,
            -0.5,
            -0.51,
            -1.5,
            -2.5,
            65535.7,
            -65535.2,
            1e12 + 0.5,
        ] {
            assert_eq!(round_half_away(v), v.round() as i64, "{v}");
            assert_eq!(floor(v), v.floor() as i64, "{v}");
        }
    }

    #[test]
    fn non_finite_is_rejected() {
        let p = QuantParams::new(1.0, 8).expect("fits");
        assert_eq!(
            quantise(&[0.0, f32::NAN], &p),
            Err(QuantError::NotFinite { index: 1 })
        );
    }

    #[test]
    fn capacity_boundary() {
        // 2^31 − 1 = 2147483647; clip 1, s = 16 → 65536 per update → 32767 updates fit.
        assert_eq!(check_ring_capacity(32_767, 1.0, 16, 32), Ok(()));
        assert!(matches!(
            check_ring_capacity(32_768, 1.0, 16, 32),
            Err(QuantError::RingTooSmall {
                needed_bits: 33,
                ..
            })
        ));
        assert_eq!(check_ring_capacity(32_768, 1.0, 16, 64), Ok(()));
        assert!(QuantParams::new(f64::NAN, 16).is_err());
        assert!(QuantParams::new(1.0, 40).is_err());
    }
}

//! Conditional stochastic rounding of a scaled, rotated update to integers, and the
//! sensitivities of the result.
//!
//! Each coordinate x becomes ⌊x⌋ + 1 with probability x − ⌊x⌋ and ⌊x⌋ otherwise (unbiased), and
//! the whole vector is drawn again while its L2 norm exceeds a bound B (Kairouz, Liu, Steinke 2021,
//! "The Distributed Discrete Gaussian Mechanism for Federated Learning with Secure Aggregation",
//! Proposition 22 / Theorem 1; the Skellam paper, Agarwal, Kairouz, Liu 2021, uses the same step).
//! For a vector of norm at most c in d dimensions:
//!
//! * B₁ = c + √d always holds (every coordinate moves by less than 1), so it never rejects;
//! * B₂ = √(c² + d/4 + √(2 ln(1/β)) (c + √d/2)) is exceeded with probability at most β.
//!
//! [`rounded_l2_bound`] is min(B₁, B₂) (B₁ alone for β = 0), the same function as Google's
//! reference (`rounded_l2_norm_bound`). Because the rounded vector is *accepted only* when its norm
//! is at most B, B is its L2 sensitivity for the sum (add or remove one holder) deterministically;
//! and since its coordinates are integers, |v_i| ≤ v_i², so its L1 norm is at most
//! min(B², √d·B) ([`rounded_l1_bound`]).
//!
//! Conditioning biases the result slightly (by at most what the rejected mass of probability ≤ β
//! carried); with β = e^{−1/2} (the reference's default) rejections are rare in practice.

use rand::Rng;

/// Coordinates must be below this in magnitude, so that ⌊x⌋ is exact and fits an `i64`.
pub const MAX_ABS_COORDINATE: f64 = 4_503_599_627_370_496.0; // 2^52

/// Errors of rounding and of the sensitivity computation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoundingError {
    /// A coordinate is NaN or infinite.
    #[error("coordinate {index} is not finite")]
    NotFinite {
        /// Its index.
        index: usize,
    },
    /// A coordinate's magnitude is 2^52 or more: the granularity is far too fine.
    #[error("coordinate {index} = {value} is too large to round exactly (|x| must be below 2^52)")]
    TooLarge {
        /// Its index.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// Every try exceeded the norm bound.
    #[error("stochastic rounding exceeded the L2 bound {bound} in all {tries} tries")]
    Exhausted {
        /// Tries made.
        tries: u32,
        /// The bound.
        bound: f64,
    },
    /// A parameter is outside its domain.
    #[error("{name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        reason: &'static str,
    },
}

fn invalid(name: &'static str, value: f64, reason: &'static str) -> RoundingError {
    RoundingError::InvalidParameter {
        name,
        value,
        reason,
    }
}

/// The norm bound B = min(B₁, B₂) of conditional rounding for a vector of L2 norm at most `l2`
/// (already scaled to the integer grid) in `dim` dimensions, with rejection parameter
/// `beta` in [0, 1) (0: B₁ only, no rejection ever).
pub fn rounded_l2_bound(l2: f64, beta: f64, dim: usize) -> Result<f64, RoundingError> {
    if !l2.is_finite() || l2 < 0.0 {
        return Err(invalid("l2", l2, "must be finite and non-negative"));
    }
    if !(0.0..1.0).contains(&beta) {
        return Err(invalid("beta", beta, "must be in [0, 1)"));
    }
    if dim == 0 {
        return Err(invalid("dim", 0.0, "must be positive"));
    }
    let d = dim as f64;
    let bound1 = l2 + d.sqrt();
    if beta == 0.0 {
        return Ok(bound1);
    }
    let squared2 = l2 * l2 + 0.25 * d + (2.0 * (1.0 / beta).ln()).sqrt() * (l2 + 0.5 * d.sqrt());
    Ok(bound1.min(squared2.sqrt()))
}

/// The L1 norm bound of an integer vector of L2 norm at most `l2_bound` in `dim` dimensions:
/// `l2_bound · min(√dim, l2_bound)`.
pub fn rounded_l1_bound(l2_bound: f64, dim: usize) -> f64 {
    l2_bound * (dim as f64).sqrt().min(l2_bound)
}

/// The L1 and L2 sensitivities, in the integer domain, of one holder's contribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensitivity {
    /// L1 sensitivity Δ1.
    pub l1: f64,
    /// L2 sensitivity Δ2.
    pub l2: f64,
}

/// The sensitivities of an update clipped to L2 norm `clip`, rotated (norm-preserving) into `dim`
/// (padded) dimensions, divided by the granularity `granularity` and conditionally rounded with
/// parameter `beta`: Δ2 = [`rounded_l2_bound`]`(clip / granularity, beta, dim)`,
/// Δ1 = [`rounded_l1_bound`]`(Δ2, dim)`.
pub fn sensitivity(
    clip: f64,
    granularity: f64,
    beta: f64,
    dim: usize,
) -> Result<Sensitivity, RoundingError> {
    if !granularity.is_finite() || granularity <= 0.0 {
        return Err(invalid(
            "granularity",
            granularity,
            "must be finite and positive",
        ));
    }
    let l2 = rounded_l2_bound(clip / granularity, beta, dim)?;
    Ok(Sensitivity {
        l1: rounded_l1_bound(l2, dim),
        l2,
    })
}

/// Rounds `x` stochastically to integers, drawing again while the L2 norm exceeds `bound`, at
/// most `max_tries` times (then [`RoundingError::Exhausted`]).
///
/// `x` is the rotated update already divided by the granularity; `bound` is normally
/// [`rounded_l2_bound`] of its norm bound. The coins come from `rng` (one uniform draw per
/// coordinate per try).
pub fn conditional_round<R: Rng + ?Sized>(
    x: &[f64],
    bound: f64,
    max_tries: u32,
    rng: &mut R,
) -> Result<Vec<i64>, RoundingError> {
    if bound.is_nan() || bound < 0.0 {
        return Err(invalid("bound", bound, "must be non-negative"));
    }
    let mut floors = Vec::with_capacity(x.len());
    for (index, &v) in x.iter().enumerate() {
        if !v.is_finite() {
            return Err(RoundingError::NotFinite { index });
        }
        if v.abs() >= MAX_ABS_COORDINATE {
            return Err(RoundingError::TooLarge { index, value: v });
        }
        let f = v.floor();
        floors.push((f as i64, v - f));
    }
    let bound_sq = bound * bound;
    let mut out = vec![0i64; x.len()];
    for _ in 0..max_tries {
        let mut norm_sq: u128 = 0;
        for (o, &(f, frac)) in out.iter_mut().zip(&floors) {
            let up = rng.gen::<f64>() < frac;
            *o = f + i64::from(up);
            let a = u128::from(o.unsigned_abs());
            norm_sq = norm_sq.saturating_add(a * a);
        }
        if norm_sq as f64 <= bound_sq {
            return Ok(out);
        }
    }
    Err(RoundingError::Exhausted {
        tries: max_tries,
        bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn norm(v: &[i64]) -> f64 {
        v.iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn unbiased_on_average() -> Result<(), RoundingError> {
        let x: Vec<f64> = (0..16).map(|i| -4.0 + 0.537 * f64::from(i)).collect();
        let bound = rounded_l2_bound(10.0, 0.0, x.len())?;
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let trials = 20_000;
        let mut sums = vec![0i64; x.len()];
        for _ in 0..trials {
            for (s, v) in sums
                .iter_mut()
                .zip(conditional_round(&x, bound, 1, &mut rng)?)
            {
                *s += v;
            }
        }
        // Each coordinate is a Bernoulli offset: standard error ≤ 0.5/√trials ≈ 0.0035.
        for (s, v) in sums.iter().zip(&x) {
            let mean = *s as f64 / f64::from(trials);
            assert!((mean - v).abs() < 0.018, "mean {mean} vs {v}");
        }
        Ok(())
    }

    #[test]
    fn conditional_bound_always_holds_and_bias_is_small() -> Result<(), RoundingError> {
        let dim = 64;
        // Norm 8 exactly, every coordinate at fraction 0.5: the worst case for the variance.
        let x = vec![1.0; dim];
        let beta = (-0.5_f64).exp();
        let bound = rounded_l2_bound(8.0, beta, dim)?;
        assert!(bound < 8.0 + 8.0);
        let shifted: Vec<f64> = x.iter().map(|v| v - 0.5).collect();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut total = 0i64;
        let trials = 2000;
        for _ in 0..trials {
            let r = conditional_round(&shifted, bound, 100, &mut rng)?;
            assert!(norm(&r) <= bound, "{} > {bound}", norm(&r));
            total += r.iter().sum::<i64>();
        }
        let mean = total as f64 / f64::from(trials) / dim as f64;
        assert!((mean - 0.5).abs() < 0.05, "mean coordinate {mean}");
        Ok(())
    }

    #[test]
    fn exhausted_when_the_bound_is_unreachable() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let got = conditional_round(&[2.5, -2.5], 1.0, 5, &mut rng);
        assert_eq!(
            got,
            Err(RoundingError::Exhausted {
                tries: 5,
                bound: 1.0
            })
        );
    }

    #[test]
    fn bad_inputs() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert_eq!(
            conditional_round(&[0.0, f64::NAN], 10.0, 1, &mut rng),
            Err(RoundingError::NotFinite { index: 1 })
        );
        assert!(matches!(
            conditional_round(&[1e17], 1e18, 1, &mut rng),
            Err(RoundingError::TooLarge { index: 0, .. })
        ));
        assert!(rounded_l2_bound(1.0, 1.0, 4).is_err());
        assert!(sensitivity(1.0, 0.0, 0.5, 4).is_err());
    }

    #[test]
    fn bounds_match_the_reference_formula() -> Result<(), RoundingError> {
        // Google's rounded_l2_norm_bound(100, exp(-0.5), 1024) computed by hand:
        // min(100 + 32, sqrt(100² + 256 + 1 · (100 + 16))) = sqrt(10372).
        let b = rounded_l2_bound(100.0, (-0.5_f64).exp(), 1024)?;
        assert!((b - 10372.0_f64.sqrt()).abs() < 1e-12);
        let s = sensitivity(1.0, 0.01, (-0.5_f64).exp(), 1024)?;
        assert_eq!(s.l2, b);
        assert_eq!(s.l1, b * 32.0);
        assert_eq!(rounded_l2_bound(3.0, 0.0, 16)?, 7.0);
        assert_eq!(rounded_l1_bound(2.0, 16), 4.0);
        Ok(())
    }
}

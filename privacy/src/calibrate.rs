//! Calibration: the smallest noise that meets a target (ε, δ) over a number of rounds, and the
//! (ε, δ) a given noise spends.
//!
//! Noise is expressed as a **noise multiplier** z = σ / C: the standard deviation of the noise in
//! the released sum, in update units, over the L2 clip bound C. For the Gaussian that is the usual
//! DP-SGD noise multiplier. For Skellam on the grid of granularity γ the sum's noise variance in
//! the integer domain is V = (z C / γ)², and the accountant uses the sensitivities of the rotated,
//! scaled, *rounded* update ([`crate::rounding::sensitivity`]), so a Skellam z spends a little more
//! than a Gaussian z and converges to it as γ → 0 (as in Google's reference, where
//! `central_stddev = z · clip`).

use crate::rdp::{DeltaAt, EpsilonAt, Mechanism, RdpAccountant, RdpError};
use crate::rounding::Sensitivity;

/// Largest noise multiplier the search tries before declaring a target unreachable.
pub const MAX_NOISE_MULTIPLIER: f64 = 1e6;

/// Errors of calibration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrateError {
    /// The accountant refused a parameter.
    #[error(transparent)]
    Rdp(#[from] RdpError),
    /// The target is not a usable (ε, δ).
    #[error("target {name} = {value}: {reason}")]
    InvalidTarget {
        /// `epsilon` or `delta`.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        reason: &'static str,
    },
    /// Even [`MAX_NOISE_MULTIPLIER`] does not meet the target.
    #[error("no noise multiplier up to {max} reaches epsilon {epsilon} at delta {delta}")]
    Unreachable {
        /// Target ε.
        epsilon: f64,
        /// Target δ.
        delta: f64,
        /// The largest noise multiplier tried.
        max: f64,
    },
}

/// The mechanism family whose noise is calibrated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseModel {
    /// Continuous Gaussian noise of standard deviation z·C on a sum of sensitivity C.
    Gaussian,
    /// Distributed Skellam on the integer grid.
    Skellam {
        /// C / γ: the clip bound in grid units.
        scaled_clip: f64,
        /// Sensitivities of one holder's rounded contribution, in grid units.
        sensitivity: Sensitivity,
    },
}

impl NoiseModel {
    /// One round's mechanism for noise multiplier `z` and Poisson sampling rate `q`.
    pub fn mechanism(&self, z: f64, q: f64) -> Mechanism {
        match *self {
            NoiseModel::Gaussian => Mechanism::SubsampledGaussian {
                q,
                noise_multiplier: z,
            },
            NoiseModel::Skellam {
                scaled_clip,
                sensitivity,
            } => Mechanism::SubsampledSkellam {
                q,
                l1: sensitivity.l1,
                l2: sensitivity.l2,
                variance: (z * scaled_clip).powi(2),
            },
        }
    }
}

/// A privacy target: (ε, δ)-DP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// ε > 0.
    pub epsilon: f64,
    /// δ in (0, 1).
    pub delta: f64,
}

fn accountant_after(
    model: &NoiseModel,
    z: f64,
    q: f64,
    rounds: u64,
) -> Result<RdpAccountant, RdpError> {
    let mut acc = RdpAccountant::new();
    acc.compose(&model.mechanism(z, q), rounds)?;
    Ok(acc)
}

/// The ε spent after `rounds` rounds with noise multiplier `z` and sampling rate `q`, at `delta`.
pub fn epsilon_after(
    model: &NoiseModel,
    z: f64,
    q: f64,
    rounds: u64,
    delta: f64,
) -> Result<EpsilonAt, CalibrateError> {
    Ok(accountant_after(model, z, q, rounds)?.epsilon(delta)?)
}

/// The δ spent after `rounds` rounds with noise multiplier `z` and sampling rate `q`, at `epsilon`.
pub fn delta_after(
    model: &NoiseModel,
    z: f64,
    q: f64,
    rounds: u64,
    epsilon: f64,
) -> Result<DeltaAt, CalibrateError> {
    Ok(accountant_after(model, z, q, rounds)?.delta(epsilon)?)
}

/// The smallest noise multiplier z (to a relative precision of 1e-10, rounded up) whose
/// `rounds` rounds at sampling rate `q` stay within `target`.
///
/// Bisection on [`epsilon_after`], which is non-increasing in z (every order's RDP is). Zero rounds
/// or q = 0 spend nothing and need no noise (0 is returned).
pub fn noise_multiplier_for(
    model: &NoiseModel,
    target: Target,
    q: f64,
    rounds: u64,
) -> Result<f64, CalibrateError> {
    if !target.epsilon.is_finite() || target.epsilon <= 0.0 {
        return Err(CalibrateError::InvalidTarget {
            name: "epsilon",
            value: target.epsilon,
            reason: "must be finite and positive",
        });
    }
    if target.delta.is_nan() || target.delta <= 0.0 || target.delta >= 1.0 {
        return Err(CalibrateError::InvalidTarget {
            name: "delta",
            value: target.delta,
            reason: "must be in (0, 1)",
        });
    }
    model.mechanism(1.0, q).validate()?;
    if rounds == 0 || q == 0.0 {
        return Ok(0.0);
    }
    let meets = |z: f64| -> Result<bool, CalibrateError> {
        Ok(epsilon_after(model, z, q, rounds, target.delta)?.epsilon <= target.epsilon)
    };
    let mut hi = 1.0;
    while !meets(hi)? {
        hi *= 2.0;
        if hi > MAX_NOISE_MULTIPLIER {
            return Err(CalibrateError::Unreachable {
                epsilon: target.epsilon,
                delta: target.delta,
                max: MAX_NOISE_MULTIPLIER,
            });
        }
    }
    let mut lo = hi / 2.0;
    while meets(lo)? {
        hi = lo;
        lo /= 2.0;
        if lo < 1e-12 {
            return Ok(hi);
        }
    }
    // Invariant: lo fails, hi meets.
    while hi - lo > 1e-10 * hi {
        let mid = 0.5 * (lo + hi);
        if meets(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_targets() {
        let t = |epsilon, delta| Target { epsilon, delta };
        let m = NoiseModel::Gaussian;
        assert!(matches!(
            noise_multiplier_for(&m, t(0.0, 1e-5), 0.1, 10),
            Err(CalibrateError::InvalidTarget {
                name: "epsilon",
                ..
            })
        ));
        assert!(matches!(
            noise_multiplier_for(&m, t(1.0, 0.0), 0.1, 10),
            Err(CalibrateError::InvalidTarget { name: "delta", .. })
        ));
        assert!(matches!(
            noise_multiplier_for(&m, t(1.0, 1e-5), 2.0, 10),
            Err(CalibrateError::Rdp(_))
        ));
        assert_eq!(noise_multiplier_for(&m, t(1.0, 1e-5), 0.1, 0), Ok(0.0));
    }
}

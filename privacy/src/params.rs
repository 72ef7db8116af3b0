//! The parameters of the distributed Skellam mechanism, their checks, and what they imply: the
//! sensitivities, each holder's noise variance, and the ring width the sum needs.
//!
//! # Ring width
//!
//! cairn's secure aggregation adds masked vectors in Z_2^32 (`cairn_crypto::ring`: `RingElem` is
//! `u32`, addition wraps; the coordinator reads a sum through its centred lift in
//! [−2^31, 2^31)). [`SECAGG_RING_BITS`] mirrors that width. The Skellam sum is read correctly when
//! every coordinate of the true integer sum lies in [−2^(b−1), 2^(b−1)) for a ring of b bits. A wrap
//! is post-processing of the private sum, so it never weakens privacy; it only destroys utility.
//!
//! [`SkellamParams::modulus_bits`] gives the b that holds, for a sum of at most `n` holders, except
//! with probability `failure_probability` over the rotation's signs and the noise (a rigorous bound,
//! not the papers' k-standard-deviations heuristic). For one coordinate i of the padded dimension
//! n_pad, with c = C/γ:
//!
//! * the rotated sum of the clipped, scaled updates u = Σ_h x_h/γ (‖u‖ ≤ n c) has
//!   sub-Gaussian coordinates: P(|(HDu)_i| ≥ t) ≤ 2 exp(−t² n_pad / (2 n² c²)) (Hoeffding over the
//!   signs, which requires the rotation seed to be independent of the updates);
//! * the rounding moves each holder's coordinate by less than 1: at most n in all;
//! * the noise is symmetric Skellam of variance W = n · V / t_min, whose moment generating function
//!   exp(W (cosh s − 1)) gives Bernstein's bound P(|N_i| ≥ t) ≤ 2 exp(−t² / (2 (W + t/3))).
//!
//! With L = ln(4 n_pad / failure_probability) and a union bound over the coordinates (half of the
//! failure probability to each term), every |sum_i| ≤ T = n c √(2L/n_pad) + n + L/3 + √(L²/9 + 2WL),
//! and b = ⌈log2(T + 1)⌉ + 1 bits suffice. Google's reference (`skellam_params`) instead solves
//! 2^b = 2k √(c² n²/d + (1/4 + V/t_min) n) for k = 3 standard deviations; the same shape, without a
//! stated failure probability.

use crate::calibrate::NoiseModel;
use crate::rdp::Mechanism;
use crate::rotation::padded_len;
use crate::rounding::{sensitivity, RoundingError, Sensitivity};

/// The width in bits of cairn's secure-aggregation ring Z_2^32; must equal
/// `cairn_crypto::ring::RING_BITS` (this crate does not depend on cairn-crypto).
pub const SECAGG_RING_BITS: u32 = 32;

/// Errors of the parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    /// A field is outside its domain.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The sum does not fit the ring with the requested probability.
    #[error(
        "the sum of {holders} holders needs a {needed_bits}-bit ring (failure probability {failure_probability}), the ring has {ring_bits}"
    )]
    RingTooSmall {
        /// Holders summed.
        holders: u32,
        /// Bits needed.
        needed_bits: u32,
        /// Bits available.
        ring_bits: u32,
        /// The failure probability asked for.
        failure_probability: f64,
    },
}

impl From<RoundingError> for ParamsError {
    fn from(e: RoundingError) -> Self {
        ParamsError::Invalid {
            field: "sensitivity",
            reason: e.to_string(),
        }
    }
}

/// The distributed Skellam mechanism's parameters for one job.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SkellamParams {
    /// C: each holder's flattened update is clipped to this L2 norm.
    pub clip: f64,
    /// z = σ / C: the standard deviation of the noise in the released sum (update units) over C.
    pub noise_multiplier: f64,
    /// γ: the grid step; the rotated update is divided by γ before rounding.
    pub granularity: f64,
    /// β in [0, 1): conditional rounding's rejection parameter ([`crate::rounding`]).
    pub beta: f64,
    /// t_min: the fewest survivors whose sum the coordinator accepts; each holder adds 1/t_min of
    /// the noise variance.
    pub min_survivors: u32,
    /// d: the update's dimension (before padding to a power of two).
    pub dim: usize,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ParamsError {
    ParamsError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn positive(field: &'static str, x: f64) -> Result<(), ParamsError> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(invalid(field, format!("{x} must be finite and positive")))
    }
}

impl SkellamParams {
    /// Checks every field, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), ParamsError> {
        positive("clip", self.clip)?;
        positive("noise_multiplier", self.noise_multiplier)?;
        positive("granularity", self.granularity)?;
        if !(0.0..1.0).contains(&self.beta) {
            return Err(invalid("beta", format!("{} must be in [0, 1)", self.beta)));
        }
        if self.min_survivors == 0 {
            return Err(invalid("min_survivors", "must be at least 1"));
        }
        if self.dim == 0 {
            return Err(invalid("dim", "must be at least 1"));
        }
        let padded = padded_len(self.dim)
            .ok_or_else(|| invalid("dim", format!("{} has no power of two above it", self.dim)))?;
        let bound = self.sensitivity_unchecked(padded)?.l2;
        if bound >= crate::rounding::MAX_ABS_COORDINATE.sqrt() {
            return Err(invalid(
                "granularity",
                format!(
                    "clip / granularity = {} is too fine a grid",
                    self.scaled_clip()
                ),
            ));
        }
        if !self.central_variance().is_finite() {
            return Err(invalid("noise_multiplier", "the noise variance overflows"));
        }
        Ok(())
    }

    /// The rotated dimension: the next power of two from `dim`.
    pub fn padded_dim(&self) -> Result<usize, ParamsError> {
        self.validate()?;
        padded_len(self.dim).ok_or_else(|| invalid("dim", "too large"))
    }

    /// C / γ: the clip bound on the integer grid.
    pub fn scaled_clip(&self) -> f64 {
        self.clip / self.granularity
    }

    fn sensitivity_unchecked(&self, padded: usize) -> Result<Sensitivity, ParamsError> {
        Ok(sensitivity(self.clip, self.granularity, self.beta, padded)?)
    }

    /// Δ1, Δ2 of one holder's rounded contribution on the grid: the L2 bound that conditional
    /// rounding enforces, and the L1 bound it implies.
    pub fn sensitivity(&self) -> Result<Sensitivity, ParamsError> {
        let padded = self.padded_dim()?;
        self.sensitivity_unchecked(padded)
    }

    /// V = (z C / γ)²: the variance of the noise, on the grid, in the sum of any `min_survivors`
    /// holders (more survivors add more).
    pub fn central_variance(&self) -> f64 {
        (self.noise_multiplier * self.scaled_clip()).powi(2)
    }

    /// V / t_min: the variance of the Skellam noise each holder adds to each coordinate (the
    /// difference of two Poisson variables of mean V / (2 t_min)).
    pub fn holder_variance(&self) -> f64 {
        self.central_variance() / f64::from(self.min_survivors)
    }

    /// The model the calibration uses for these parameters (z is left free).
    pub fn noise_model(&self) -> Result<NoiseModel, ParamsError> {
        Ok(NoiseModel::Skellam {
            scaled_clip: self.scaled_clip(),
            sensitivity: self.sensitivity()?,
        })
    }

    /// One round's mechanism for the accountant, at Poisson sampling rate `q`.
    pub fn mechanism(&self, q: f64) -> Result<Mechanism, ParamsError> {
        let s = self.sensitivity()?;
        Ok(Mechanism::SubsampledSkellam {
            q,
            l1: s.l1,
            l2: s.l2,
            variance: self.central_variance(),
        })
    }

    /// The ring width in bits that holds the sum of up to `max_holders` holders' contributions
    /// except with probability `failure_probability` (see the module docs for the bound).
    pub fn modulus_bits(
        &self,
        max_holders: u32,
        failure_probability: f64,
    ) -> Result<u32, ParamsError> {
        let padded = self.padded_dim()?;
        if max_holders < self.min_survivors {
            return Err(invalid(
                "max_holders",
                format!(
                    "{max_holders} is below min_survivors {}",
                    self.min_survivors
                ),
            ));
        }
        if !(failure_probability > 0.0 && failure_probability < 1.0) {
            return Err(invalid(
                "failure_probability",
                format!("{failure_probability} must be in (0, 1)"),
            ));
        }
        let n = f64::from(max_holders);
        let np = padded as f64;
        let l = (4.0 * np / failure_probability).ln();
        let signal = n * self.scaled_clip() * (2.0 * l / np).sqrt();
        let w = n * self.holder_variance();
        let noise = l / 3.0 + (l * l / 9.0 + 2.0 * w * l).sqrt();
        let t = signal + n + noise;
        Ok((t + 1.0).log2().ceil() as u32 + 1)
    }

    /// [`SkellamParams::modulus_bits`], checked against a ring of `ring_bits` bits (cairn's is
    /// [`SECAGG_RING_BITS`]); returns the bits needed.
    pub fn check_ring(
        &self,
        max_holders: u32,
        failure_probability: f64,
        ring_bits: u32,
    ) -> Result<u32, ParamsError> {
        let needed_bits = self.modulus_bits(max_holders, failure_probability)?;
        if needed_bits > ring_bits {
            return Err(ParamsError::RingTooSmall {
                holders: max_holders,
                needed_bits,
                ring_bits,
                failure_probability,
            });
        }
        Ok(needed_bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SkellamParams {
        SkellamParams {
            clip: 1.0,
            noise_multiplier: 1.0,
            granularity: 1e-3,
            beta: (-0.5_f64).exp(),
            min_survivors: 4,
            dim: 1000,
        }
    }

    #[test]
    fn validate_names_the_field() {
        type Spoil = fn(&mut SkellamParams);
        let cases: [(&str, Spoil); 6] = [
            ("clip", |p| p.clip = 0.0),
            ("noise_multiplier", |p| p.noise_multiplier = f64::NAN),
            ("granularity", |p| p.granularity = -1.0),
            ("beta", |p| p.beta = 1.0),
            ("min_survivors", |p| p.min_survivors = 0),
            ("dim", |p| p.dim = 0),
        ];
        for (name, spoil) in cases {
            let mut p = params();
            spoil(&mut p);
            match p.validate() {
                Err(ParamsError::Invalid { field, .. }) => assert_eq!(field, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(params().validate(), Ok(()));
        let mut fine = params();
        fine.granularity = 1e-12;
        assert!(matches!(
            fine.validate(),
            Err(ParamsError::Invalid {
                field: "granularity",
                ..
            })
        ));
    }

    #[test]
    fn derived_quantities() -> Result<(), ParamsError> {
        let p = params();
        assert_eq!(p.padded_dim()?, 1024);
        assert!((p.central_variance() - 1e6).abs() < 1e-6);
        assert!((p.holder_variance() - 2.5e5).abs() < 1e-6);
        let s = p.sensitivity()?;
        // c = 1000, d = 1024: Δ2 = sqrt(1000² + 256 + (1000 + 16)), Δ1 = 32 Δ2.
        assert!((s.l2 - (1e6_f64 + 256.0 + 1016.0).sqrt()).abs() < 1e-9);
        assert!((s.l1 - 32.0 * s.l2).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn modulus_bits_grow_with_holders_and_fit_cairns_ring() -> Result<(), ParamsError> {
        let p = params();
        let b10 = p.modulus_bits(10, 1e-12)?;
        let b1000 = p.modulus_bits(1000, 1e-12)?;
        assert!(b10 < b1000, "{b10} {b1000}");
        assert_eq!(p.check_ring(10, 1e-12, SECAGG_RING_BITS)?, b10);
        // Hand check for n = 10: c = 1000, L = ln(4·1024/1e-12), W = 10 · 2.5e5.
        let l = (4096.0_f64 / 1e-12).ln();
        let t = 10.0 * 1000.0 * (2.0 * l / 1024.0).sqrt()
            + 10.0
            + l / 3.0
            + (l * l / 9.0 + 2.0 * 2.5e6 * l).sqrt();
        assert_eq!(b10, (t + 1.0).log2().ceil() as u32 + 1);
        let mut huge = p;
        huge.noise_multiplier = 1e6;
        assert!(matches!(
            huge.check_ring(10, 1e-12, SECAGG_RING_BITS),
            Err(ParamsError::RingTooSmall { .. })
        ));
        assert!(p.modulus_bits(3, 1e-9).is_err());
        Ok(())
    }
}

//! Distributed differential privacy inside a secure round: the distributed Skellam
//! mechanism of `cairn_privacy`, applied to what a holder masks and read back from what the
//! coordinator unmasks.
//!
//! A holder turns its clipped update into integers on the job's grid ([`encode`]): it
//! rotates the update with the round's randomized Walsh–Hadamard transform (the same for
//! every holder of the round: its seed comes from the round seed, [`rotation_seed`]),
//! divides by the granularity γ, rounds it with conditional stochastic rounding (so its
//! L2 norm stays within the sensitivity the accountant assumes) and adds its share of the
//! Skellam noise. The masked sum the coordinator learns is the sum of these vectors; it
//! reads the noisy sum of the updates back with [`decode`] (γ times the inverse rotation).
//! The coordinator never sees an update without the other holders' noise in it.
//!
//! In a proven job the holder's vector is made by its proof instead
//! (`cairn_proofs::rounds::with_noise`: the same rotation and rounding, exactly, on the
//! fixed-point update, and noise from the PRG of the seed it committed to), and the
//! coordinator decodes it with the same [`decode`].

use rand::Rng;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use cairn_privacy::calibrate::epsilon_after;
use cairn_privacy::skellam::{SkellamError, SkellamTable};
pub use cairn_privacy::SkellamParams;
use cairn_privacy::{conditional_round, Rotation};

/// Most a job's (ε, δ) may promise at the least: δ below 1 / (holders · 10), as usual, is
/// the caller's business; this only refuses what is meaningless.
const MAX_DELTA: f64 = 0.1;

/// A DP job's privacy: the distributed Skellam mechanism's parameters and what the job
/// reports and stops at. Every round uses every ready holder (sampling rate q = 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpSettings {
    /// The mechanism: `clip` is the job's clip norm, `dim` the model's parameter count,
    /// `min_survivors` the fewest holders whose noise the sum is guaranteed to carry.
    pub params: SkellamParams,
    /// δ of the (ε, δ) the job reports after each round.
    pub delta: f64,
    /// When set, the job stops before a round that would take its ε past this budget.
    pub budget: Option<f64>,
}

impl DpSettings {
    /// Checks the settings, naming the field; `clip` and `dim` must be the job's.
    pub fn validate(&self, clip: f64, dim: usize) -> Result<(), PrivacyError> {
        self.params.validate()?;
        let field = |field: &'static str, reason: String| PrivacyError::Field { field, reason };
        if self.params.clip != clip {
            return Err(field(
                "clip",
                format!(
                    "{} is not the job's clip norm {clip}: the noise is calibrated to the clip",
                    self.params.clip
                ),
            ));
        }
        if self.params.dim != dim {
            return Err(field(
                "dim",
                format!("{} is not the model's {dim} parameters", self.params.dim),
            ));
        }
        if !(self.delta > 0.0 && self.delta < MAX_DELTA) {
            return Err(field(
                "delta",
                format!("{} must be in (0, {MAX_DELTA})", self.delta),
            ));
        }
        if let Some(b) = self.budget {
            if !(b.is_finite() && b > 0.0) {
                return Err(field(
                    "epsilon",
                    format!("a budget of {b} must be finite and positive"),
                ));
            }
        }
        Ok(())
    }

    /// The ε of the job's (ε, δ) after `rounds` rounds released their sums.
    pub fn epsilon_after(&self, rounds: u32) -> Result<f64, PrivacyError> {
        if rounds == 0 {
            return Ok(0.0);
        }
        let model = self.params.noise_model()?;
        let at = epsilon_after(
            &model,
            self.params.noise_multiplier,
            1.0,
            u64::from(rounds),
            self.delta,
        )
        .map_err(|e| PrivacyError::Accountant(e.to_string()))?;
        Ok(at.epsilon)
    }
}

/// How many times conditional rounding may draw again before the holder gives up (each
/// draw passes with probability at least 1 − β; the job's β is at most 0.9).
pub const MAX_ROUNDING_TRIES: u32 = 1000;

/// Why an update cannot be encoded or a sum decoded.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The job's privacy parameters are unusable.
    #[error("privacy parameters: {0}")]
    Params(#[from] cairn_privacy::ParamsError),
    /// The rotation refused the vector.
    #[error("rotation: {0}")]
    Rotation(#[from] cairn_privacy::RotationError),
    /// The noise table cannot be built for these parameters.
    #[error("noise: {0}")]
    Noise(#[from] SkellamError),
    /// Conditional rounding failed (a non-finite value, or no draw within the bound).
    #[error("rounding: {0}")]
    Rounding(#[from] cairn_privacy::RoundingError),
    /// A setting is out of range.
    #[error("privacy.{field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The accountant could not bound the rounds' privacy loss.
    #[error("accountant: {0}")]
    Accountant(String),
    /// A vector of the wrong length.
    #[error("a vector of {got} values; the job's {what} has {want}")]
    Length {
        /// What it should be.
        what: &'static str,
        /// Values given.
        got: usize,
        /// Values expected.
        want: usize,
    },
}

/// The seed of round `round_seed`'s rotation (`cairn_privacy::rotation::round_rotation_seed`).
pub use cairn_privacy::rotation::round_rotation_seed as rotation_seed;

/// The rounded, rotated update of a holder on the job's grid, before noise: `delta` (the
/// clipped update, `params.dim` values, L2 norm at most `params.clip`) rotated with
/// `rotation_seed`'s rotation, divided by γ and conditionally rounded to the sensitivity
/// bound Δ2. `params.padded_dim()` integers.
pub fn encode<R: Rng + ?Sized>(
    params: &SkellamParams,
    delta: &[f32],
    rotation_seed: &[u8; 32],
    rng: &mut R,
) -> Result<Vec<i64>, PrivacyError> {
    if delta.len() != params.dim {
        return Err(PrivacyError::Length {
            what: "model",
            got: delta.len(),
            want: params.dim,
        });
    }
    let bound = params.sensitivity()?.l2;
    let rotation = Rotation::new(*rotation_seed, params.dim)?;
    let x: Vec<f64> = delta.iter().map(|&v| f64::from(v)).collect();
    // Clipping is the trainer's; a last clip here absorbs the f32 → f64 rounding so the
    // norm the rounding bound assumes holds exactly.
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let shrink = if norm > params.clip {
        params.clip / norm
    } else {
        1.0
    };
    let scaled: Vec<f64> = rotation
        .rotate(&x)?
        .into_iter()
        .map(|v| v * shrink / params.granularity)
        .collect();
    Ok(conditional_round(&scaled, bound, MAX_ROUNDING_TRIES, rng)?)
}

/// The noise table of `params`' holder share (built once per process for a job's
/// parameters: both a holder and the coordinator need it every round).
pub fn noise_table(params: &SkellamParams) -> Result<Arc<SkellamTable>, PrivacyError> {
    Ok(SkellamTable::shared(params.holder_variance())?)
}

/// What a holder masks: its [`encode`]d update plus its share of the noise, one Skellam
/// draw per coordinate from `table` (the job's [`noise_table`]) with `rng`'s uniforms.
pub fn noised<R: Rng + ?Sized>(
    params: &SkellamParams,
    table: &SkellamTable,
    delta: &[f32],
    rotation_seed: &[u8; 32],
    rng: &mut R,
) -> Result<Vec<i64>, PrivacyError> {
    let mut y = encode(params, delta, rotation_seed, rng)?;
    for v in &mut y {
        *v += table.sample(rng.next_u64());
    }
    Ok(y)
}

/// The largest absolute value a coordinate of the sum of `n` honest holders' vectors can
/// take: each rounded update's coordinate is within its L2 bound Δ2, each noise draw within
/// the table's support. A sum past it means some holder sent something else.
pub fn sum_bound(
    params: &SkellamParams,
    table: &SkellamTable,
    n: usize,
) -> Result<f64, PrivacyError> {
    let (_, k) = table.support();
    Ok(n as f64 * (params.sensitivity()?.l2.floor() + k as f64))
}

/// The sum of the holders' updates from the unmasked sum of their encoded, noised vectors
/// (`params.padded_dim()` signed integers): γ times the inverse rotation, the first
/// `params.dim` coordinates.
pub fn decode(
    params: &SkellamParams,
    sum: &[i64],
    rotation_seed: &[u8; 32],
) -> Result<Vec<f64>, PrivacyError> {
    let padded = params.padded_dim()?;
    if sum.len() != padded {
        return Err(PrivacyError::Length {
            what: "rotated update",
            got: sum.len(),
            want: padded,
        });
    }
    let rotation = Rotation::new(*rotation_seed, params.dim)?;
    let y: Vec<f64> = sum.iter().map(|&v| v as f64 * params.granularity).collect();
    let mut x = rotation.unrotate(&y)?;
    x.truncate(params.dim);
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn params(dim: usize) -> SkellamParams {
        SkellamParams {
            clip: 1.0,
            noise_multiplier: 1.0,
            granularity: 1.0 / 64.0,
            beta: (-0.5f64).exp(),
            min_survivors: 3,
            dim,
        }
    }

    fn update(seed: u64, dim: usize) -> Vec<f32> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        cairn_model::clip_l2(&mut v, 1.0);
        v
    }

    #[test]
    fn encoded_updates_stay_within_the_sensitivity_and_decode_to_their_sum() {
        let p = params(41);
        let seed = rotation_seed(&[9; 32]);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let bound = p.sensitivity().expect("sensitivity").l2;
        let updates: Vec<Vec<f32>> = (0..5).map(|i| update(i, 41)).collect();
        let mut sum = vec![0i64; 64];
        for u in &updates {
            let e = encode(&p, u, &seed, &mut rng).expect("encodes");
            assert_eq!(e.len(), 64);
            let norm = e.iter().map(|&v| (v * v) as f64).sum::<f64>().sqrt();
            assert!(norm <= bound, "‖y‖ = {norm} > Δ2 = {bound}");
            for (s, v) in sum.iter_mut().zip(e) {
                *s += v;
            }
        }
        let got = decode(&p, &sum, &seed).expect("decodes");
        assert_eq!(got.len(), 41);
        // Without noise the sum comes back up to the rounding: at most one grid step per
        // coordinate per holder in the rotated basis, √d·γ/2 in norm each on average.
        let mut err2 = 0.0;
        for (j, g) in got.iter().enumerate() {
            let want: f64 = updates.iter().map(|u| f64::from(u[j])).sum();
            err2 += (g - want).powi(2);
        }
        let err = err2.sqrt();
        assert!(err < 5.0 * 8.0 / 64.0, "‖sum error‖ = {err}");
    }

    #[test]
    fn rotations_differ_by_round_and_the_wrong_one_does_not_decode() {
        let p = params(16);
        let (a, b) = (rotation_seed(&[1; 32]), rotation_seed(&[2; 32]));
        assert_ne!(a, b);
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let u = update(7, 16);
        let e = encode(&p, &u, &a, &mut rng).expect("encodes");
        let right = decode(&p, &e, &a).expect("decodes");
        let wrong = decode(&p, &e, &b).expect("decodes");
        let dist = |x: &[f64]| {
            x.iter()
                .zip(&u)
                .map(|(g, w)| (g - f64::from(*w)).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        assert!(dist(&right) < 0.1, "{}", dist(&right));
        assert!(dist(&wrong) > 0.5, "{}", dist(&wrong));
    }

    #[test]
    fn the_decoded_sum_carries_the_noise_the_parameters_promise() {
        // 5 holders, d = 256: the error of the decoded sum is the holders' noise (variance
        // 5·V/t_min per rotated coordinate, γ² times that after decoding; the rotation is
        // orthonormal) plus their rounding (at most 1/4 per coordinate per holder).
        let p = SkellamParams {
            noise_multiplier: 0.5,
            ..params(256)
        };
        let table = noise_table(&p).expect("table");
        let seed = rotation_seed(&[4; 32]);
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let updates: Vec<Vec<f32>> = (0..5).map(|i| update(100 + i, 256)).collect();
        let mut sum = vec![0i64; 256];
        for u in &updates {
            let y = noised(&p, &table, u, &seed, &mut rng).expect("noised");
            for (s, v) in sum.iter_mut().zip(y) {
                *s += v;
            }
        }
        let got = decode(&p, &sum, &seed).expect("decodes");
        let mse = got
            .iter()
            .enumerate()
            .map(|(j, g)| {
                let want: f64 = updates.iter().map(|u| f64::from(u[j])).sum();
                (g - want).powi(2)
            })
            .sum::<f64>()
            / 256.0;
        let g2 = p.granularity * p.granularity;
        let noise = 5.0 * p.holder_variance() * g2;
        let rounding = 5.0 * 0.25 * g2;
        // 256 coordinates: the sample variance is within ±30% of its mean with
        // overwhelming probability (≈ 5σ for a χ² of 256 degrees of freedom).
        assert!(
            mse > 0.7 * noise && mse < 1.3 * (noise + rounding),
            "mse {mse}, noise {noise}, rounding up to {rounding}"
        );
        // Without the noise the error would be the rounding's alone.
        assert!(noise > 10.0 * rounding);
    }

    #[test]
    fn epsilon_grows_with_rounds_and_the_settings_are_checked() {
        let dp = DpSettings {
            params: SkellamParams {
                noise_multiplier: 2.0,
                ..params(4)
            },
            delta: 1e-5,
            budget: Some(3.0),
        };
        dp.validate(1.0, 4).expect("valid");
        let eps: Vec<f64> = (0..4).map(|r| dp.epsilon_after(r).expect("ε")).collect();
        assert_eq!(eps[0], 0.0);
        assert!(eps.windows(2).all(|w| w[1] > w[0]), "{eps:?}");
        assert!(matches!(
            dp.validate(0.5, 4),
            Err(PrivacyError::Field { field: "clip", .. })
        ));
        assert!(matches!(
            dp.validate(1.0, 5),
            Err(PrivacyError::Field { field: "dim", .. })
        ));
        let bad = DpSettings { delta: 0.5, ..dp };
        assert!(matches!(
            bad.validate(1.0, 4),
            Err(PrivacyError::Field { field: "delta", .. })
        ));
    }

    #[test]
    fn bad_lengths_are_typed_errors() {
        let p = params(16);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        assert!(matches!(
            encode(&p, &[0.0; 15], &[0; 32], &mut rng),
            Err(PrivacyError::Length {
                got: 15,
                want: 16,
                ..
            })
        ));
        assert!(matches!(
            decode(&p, &[0; 8], &[0; 32]),
            Err(PrivacyError::Length {
                got: 8,
                want: 16,
                ..
            })
        ));
    }
}

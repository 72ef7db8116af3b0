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

use rand::Rng;
use sha2::{Digest, Sha256};

use cairn_privacy::{conditional_round, Rotation, SkellamParams};

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
    /// Conditional rounding failed (a non-finite value, or no draw within the bound).
    #[error("rounding: {0}")]
    Rounding(#[from] cairn_privacy::RoundingError),
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

/// The seed of round `round_seed`'s rotation: every holder of the round rotates with it,
/// and the coordinator inverts it. It is fixed by the holders' commit-reveal randomness,
/// not chosen by the coordinator, and does not depend on any update.
pub fn rotation_seed(round_seed: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/dp/rotation/v1");
    h.update(round_seed);
    h.finalize().into()
}

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

//! The randomized Walsh–Hadamard rotation that flattens an update before rounding.
//!
//! A vector x of length d is padded with zeros to n = the next power of two, multiplied by a
//! diagonal of random signs D and then by the normalised Walsh–Hadamard matrix H/√n:
//! y = (1/√n) H D x. H is symmetric with H² = n I, so the rotation is orthogonal (norms are
//! preserved) and its inverse is x = D (1/√n) H y, truncated back to d coordinates.
//!
//! Every holder of a round must use the same rotation (the coordinator inverts it once, on the
//! sum), so the seed is public round randomness; the privacy guarantee does not depend on it
//! being secret. What it buys is flatness: for a fixed x, each coordinate of y is sub-Gaussian with
//! variance proxy ‖x‖²/n (Hoeffding over the Rademacher signs), which keeps the sum inside the
//! secure-aggregation ring with high probability (see [`crate::params`]) — provided the seed is
//! drawn independently of the updates (after they are fixed, or from fresh round randomness).
//!
//! The signs are the bits of the ChaCha20 keystream (`rand_chacha`'s `ChaCha20Rng` seeded with the
//! 32-byte seed): bit j (least significant first) of keystream byte k is the sign of coordinate
//! 8k + j, a set bit meaning −1.

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Errors of the rotation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RotationError {
    /// The dimension is zero or its padded length does not fit a `usize`.
    #[error("cannot rotate vectors of dimension {0}")]
    BadDimension(usize),
    /// A vector of the wrong length was given.
    #[error("expected a vector of length {expected}, got {got}")]
    WrongLength {
        /// The length the rotation was built for.
        expected: usize,
        /// The length given.
        got: usize,
    },
}

/// The length a vector of dimension `dim` is padded to: the next power of two (at least 1);
/// `None` if that overflows.
pub fn padded_len(dim: usize) -> Option<usize> {
    dim.max(1).checked_next_power_of_two()
}

/// The seed of the rotation of the round whose seed is `round_seed`: every holder of the round
/// rotates with it, and the coordinator inverts it. It is fixed by the holders' commit-reveal
/// round randomness, not chosen by the coordinator, and does not depend on any update.
pub fn round_rotation_seed(round_seed: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"cairn/dp/rotation/v1");
    h.update(round_seed);
    h.finalize().into()
}

/// A randomized Hadamard rotation for vectors of one dimension, from one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    dim: usize,
    /// `true` where the sign is −1; length `padded_len(dim)`.
    negative: Vec<bool>,
}

impl Rotation {
    /// The rotation of `dim`-dimensional vectors that `seed` determines.
    pub fn new(seed: [u8; 32], dim: usize) -> Result<Self, RotationError> {
        if dim == 0 {
            return Err(RotationError::BadDimension(dim));
        }
        let n = padded_len(dim).ok_or(RotationError::BadDimension(dim))?;
        let mut bytes = vec![0u8; n.div_ceil(8)];
        ChaCha20Rng::from_seed(seed).fill_bytes(&mut bytes);
        let negative = (0..n).map(|i| (bytes[i / 8] >> (i % 8)) & 1 == 1).collect();
        Ok(Self { dim, negative })
    }

    /// The dimension of the vectors it rotates.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The signs D: `true` where the sign is −1, [`Rotation::padded_dim`] of them.
    pub fn negative(&self) -> &[bool] {
        &self.negative
    }

    /// The length of rotated vectors: the next power of two from [`Rotation::dim`].
    pub fn padded_dim(&self) -> usize {
        self.negative.len()
    }

    /// y = (1/√n) H D (x padded with zeros): a vector of length [`Rotation::padded_dim`].
    pub fn rotate(&self, x: &[f64]) -> Result<Vec<f64>, RotationError> {
        if x.len() != self.dim {
            return Err(RotationError::WrongLength {
                expected: self.dim,
                got: x.len(),
            });
        }
        let mut y = vec![0.0; self.padded_dim()];
        for ((out, &v), &neg) in y.iter_mut().zip(x).zip(&self.negative) {
            *out = if neg { -v } else { v };
        }
        normalised_hadamard(&mut y);
        Ok(y)
    }

    /// The inverse: x = D (1/√n) H y, truncated to [`Rotation::dim`] coordinates. `y` has length
    /// [`Rotation::padded_dim`] (a rotated vector, or a sum of them).
    pub fn unrotate(&self, y: &[f64]) -> Result<Vec<f64>, RotationError> {
        if y.len() != self.padded_dim() {
            return Err(RotationError::WrongLength {
                expected: self.padded_dim(),
                got: y.len(),
            });
        }
        let mut x = y.to_vec();
        normalised_hadamard(&mut x);
        x.truncate(self.dim);
        for (v, &neg) in x.iter_mut().zip(&self.negative) {
            if neg {
                *v = -*v;
            }
        }
        Ok(x)
    }
}

/// In-place fast Walsh–Hadamard transform scaled by 1/√n (n a power of two): O(n log n).
fn normalised_hadamard(v: &mut [f64]) {
    let n = v.len();
    let mut h = 1;
    while h < n {
        for block in v.chunks_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                let (s, d) = (*a + *b, *a - *b);
                *a = s;
                *b = d;
            }
        }
        h *= 2;
    }
    let scale = 1.0 / (n as f64).sqrt();
    for x in v.iter_mut() {
        *x *= scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn norm(v: &[f64]) -> f64 {
        v.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    fn sample(dim: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..dim).map(|_| rng.gen_range(-3.0..3.0)).collect()
    }

    #[test]
    fn preserves_norm_and_inverts() -> Result<(), RotationError> {
        for dim in [1, 2, 3, 7, 64, 100, 1000, 4097] {
            let x = sample(dim, dim as u64);
            let r = Rotation::new([7; 32], dim)?;
            let y = r.rotate(&x)?;
            assert_eq!(y.len(), padded_len(dim).unwrap_or(0));
            let (nx, ny) = (norm(&x), norm(&y));
            assert!((nx - ny).abs() <= 1e-12 * nx, "dim {dim}: {nx} vs {ny}");
            let back = r.unrotate(&y)?;
            assert_eq!(back.len(), dim);
            for (a, b) in back.iter().zip(&x) {
                assert!((a - b).abs() <= 1e-12, "dim {dim}: {a} vs {b}");
            }
        }
        Ok(())
    }

    #[test]
    fn unrotating_a_sum_gives_the_sum() -> Result<(), RotationError> {
        let r = Rotation::new([1; 32], 50)?;
        let (a, b) = (sample(50, 1), sample(50, 2));
        let (ya, yb) = (r.rotate(&a)?, r.rotate(&b)?);
        let sum: Vec<f64> = ya.iter().zip(&yb).map(|(p, q)| p + q).collect();
        for ((s, p), q) in r.unrotate(&sum)?.iter().zip(&a).zip(&b) {
            assert!((s - (p + q)).abs() < 1e-12);
        }
        Ok(())
    }

    #[test]
    fn deterministic_per_seed() -> Result<(), RotationError> {
        let x = sample(300, 9);
        let a = Rotation::new([3; 32], 300)?;
        assert_eq!(a, Rotation::new([3; 32], 300)?);
        assert_eq!(a.rotate(&x)?, Rotation::new([3; 32], 300)?.rotate(&x)?);
        let b = Rotation::new([4; 32], 300)?;
        assert_ne!(a, b);
        // Roughly half of the signs are negative.
        let neg = a.negative.iter().filter(|&&s| s).count();
        assert!((200..=312).contains(&neg), "{neg} of 512");
        Ok(())
    }

    #[test]
    fn spreads_a_spike() -> Result<(), RotationError> {
        let mut x = vec![0.0; 256];
        x[17] = 16.0;
        let y = Rotation::new([5; 32], 256)?.rotate(&x)?;
        // A basis vector becomes ±‖x‖/√n in every coordinate.
        assert!(y.iter().all(|v| (v.abs() - 1.0).abs() < 1e-12));
        Ok(())
    }

    #[test]
    fn wrong_lengths_are_refused() -> Result<(), RotationError> {
        let r = Rotation::new([0; 32], 5)?;
        assert_eq!(
            r.rotate(&[0.0; 4]),
            Err(RotationError::WrongLength {
                expected: 5,
                got: 4
            })
        );
        assert!(r.unrotate(&[0.0; 5]).is_err());
        assert_eq!(
            Rotation::new([0; 32], 0),
            Err(RotationError::BadDimension(0))
        );
        Ok(())
    }
}

//! Byte encodings of the values that leave the circuit crate — dataset roots, commitments —
//! and the limb form of the commitment's blinding that travels inside the masked vector.
//!
//! One place for these formats: the participant encodes with them, the coordinator and the
//! auditor decode with them, and every decoder validates (canonical field elements, points
//! on the curve and in the prime-order subgroup).

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField, Zero};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};

use crate::pedersen::{Point, Scalar};

/// Bits per blinding limb: each limb is below 2^16, so the sum of n limbs stays exact in a
/// 32-bit ring for n < 2^16.
pub const BLINDING_LIMB_BITS: u32 = 16;
/// Limbs of a blinding scalar (16 × 16 = 256 bits ≥ the 251-bit Baby Jubjub scalar).
pub const BLINDING_LIMBS: usize = 16;

/// Why bytes do not decode.
#[derive(Debug, thiserror::Error)]
pub enum EncodingError {
    /// Not a canonical BN254 field element.
    #[error("not a canonical field element")]
    Field,
    /// Not a valid compressed Baby Jubjub point in the prime-order subgroup.
    #[error("not a valid commitment point: {0}")]
    Point(String),
    /// A wrong number of limbs.
    #[error("{got} blinding limbs, expected {BLINDING_LIMBS}")]
    Limbs {
        /// Limbs given.
        got: usize,
    },
}

/// A BN254 scalar as 32 little-endian bytes.
pub fn fr_to_bytes(f: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&f.into_bigint().to_bytes_le());
    out
}

/// The inverse of [`fr_to_bytes`]; refuses non-canonical encodings (≥ the modulus).
pub fn fr_from_bytes(bytes: &[u8; 32]) -> Result<Fr, EncodingError> {
    let f = Fr::from_le_bytes_mod_order(bytes);
    if fr_to_bytes(&f) == *bytes {
        Ok(f)
    } else {
        Err(EncodingError::Field)
    }
}

/// A commitment as 32 compressed bytes.
pub fn point_to_bytes(p: &Point) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    // Serialising an affine point into a Vec cannot fail.
    let _ = p.serialize_compressed(&mut out);
    out
}

/// The inverse of [`point_to_bytes`], with the on-curve and subgroup checks.
pub fn point_from_bytes(bytes: &[u8]) -> Result<Point, EncodingError> {
    Point::deserialize_compressed(bytes).map_err(|e| EncodingError::Point(e.to_string()))
}

/// The blinding ρ as [`BLINDING_LIMBS`] limbs of [`BLINDING_LIMB_BITS`] bits, least
/// significant first.
pub fn blinding_limbs(rho: &Scalar) -> Vec<u32> {
    let bytes = rho.into_bigint().to_bytes_le();
    (0..BLINDING_LIMBS)
        .map(|i| {
            let lo = bytes.get(2 * i).copied().unwrap_or(0);
            let hi = bytes.get(2 * i + 1).copied().unwrap_or(0);
            u32::from(u16::from_le_bytes([lo, hi]))
        })
        .collect()
}

/// R = Σ_i s_i · 2^(16 i) mod the scalar order, from the per-limb sums s_i of the
/// survivors' blindings: exactly Σ_u ρ_u.
pub fn blinding_from_limb_sums(sums: &[u64]) -> Result<Scalar, EncodingError> {
    if sums.len() != BLINDING_LIMBS {
        return Err(EncodingError::Limbs { got: sums.len() });
    }
    let base = Scalar::from(1u64 << BLINDING_LIMB_BITS);
    let mut acc = Scalar::zero();
    for &s in sums.iter().rev() {
        acc = acc * base + Scalar::from(s);
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pedersen::{commit, random_blinding, sum, Generators};
    use rand::SeedableRng;

    #[test]
    fn limb_sums_rebuild_the_sum_of_blindings_exactly() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let rhos: Vec<Scalar> = (0..7).map(|_| random_blinding(&mut rng)).collect();
        let mut sums = vec![0u64; BLINDING_LIMBS];
        for r in &rhos {
            let limbs = blinding_limbs(r);
            assert!(limbs.iter().all(|&l| l < 1 << BLINDING_LIMB_BITS));
            for (s, l) in sums.iter_mut().zip(limbs) {
                *s += u64::from(l);
            }
        }
        let total: Scalar = rhos.iter().sum();
        assert_eq!(blinding_from_limb_sums(&sums).expect("16 limbs"), total);
        assert!(blinding_from_limb_sums(&sums[1..]).is_err());
    }

    #[test]
    fn commitments_add_up_to_the_commitment_of_the_sums() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let gens = Generators::new(3);
        let xs = [vec![5i64, -7, 0], vec![-1, 2, 30000], vec![9, 9, -9]];
        let rhos: Vec<Scalar> = (0..3).map(|_| random_blinding(&mut rng)).collect();
        let cs: Vec<Point> = xs
            .iter()
            .zip(&rhos)
            .map(|(x, r)| commit(&gens, x, r).expect("length"))
            .collect();
        let s: Vec<i64> = (0..3).map(|j| xs.iter().map(|x| x[j]).sum()).collect();
        let mut limb_sums = vec![0u64; BLINDING_LIMBS];
        for r in &rhos {
            for (a, l) in limb_sums.iter_mut().zip(blinding_limbs(r)) {
                *a += u64::from(l);
            }
        }
        let r = blinding_from_limb_sums(&limb_sums).expect("limbs");
        assert_eq!(sum(&cs), commit(&gens, &s, &r).expect("length"));
        let mut wrong = s.clone();
        wrong[1] += 1;
        assert_ne!(sum(&cs), commit(&gens, &wrong, &r).expect("length"));
    }

    #[test]
    fn encodings_round_trip_and_refuse_garbage() {
        let f = Fr::from(123_456_789u64);
        assert_eq!(fr_from_bytes(&fr_to_bytes(&f)).expect("canonical"), f);
        assert!(fr_from_bytes(&[0xff; 32]).is_err(), "above the modulus");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let p = commit(&Generators::new(1), &[42], &random_blinding(&mut rng)).expect("len");
        let bytes = point_to_bytes(&p);
        assert_eq!(bytes.len(), 32);
        assert_eq!(point_from_bytes(&bytes).expect("valid"), p);
        assert!(point_from_bytes(&bytes[..31]).is_err());
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        // A flipped bit is either off the curve or another point: never the same one.
        assert!(point_from_bytes(&bad).map_or(true, |q| q != p));
    }
}

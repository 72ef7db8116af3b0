//! Pedersen vector commitments on Baby Jubjub (`ark-ed-on-bn254`, the twisted Edwards form
//! with a = 1), computed natively for the coordinator's homomorphic check and in the circuit
//! by [`constraints`].
//!
//! `C = Σ x_j·G_j + ρ·H` with `x_j` small signed integers (the quantised update) read as
//! scalars (a negative `x_j` is `r − |x_j|`), and `ρ` a full-size scalar. The generators are
//! derived by try-and-increment from a domain string: `y = SHA-256(domain ‖ j ‖ counter)`
//! reduced into the base field, the first counter for which `y` lies on the curve, the
//! point multiplied by the cofactor 8. Nobody knows a discrete-log relation between them,
//! so `C` binds `x`; and `C` is additively homomorphic: `Σ_u C_u = commit(Σ x_u, Σ ρ_u)`.

pub mod constraints;

use ark_ec::{twisted_edwards::TECurveConfig, AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ed_on_bn254::{EdwardsAffine, EdwardsConfig, EdwardsProjective, Fq};
use ark_ff::PrimeField;
use sha2::{Digest, Sha256};

/// A point of the prime-order subgroup of Baby Jubjub.
pub type Point = EdwardsAffine;
/// A Baby Jubjub scalar (the blinding ρ).
pub type Scalar = ark_ed_on_bn254::Fr;

/// Domain of the value generators `G_j`.
pub const DOMAIN_G: &[u8] = b"cairn/pedersen/v1/G";
/// Domain of the blinding generator `H`.
pub const DOMAIN_H: &[u8] = b"cairn/pedersen/v1/H";

/// A commitment over the wrong number of values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("commitment to {got} values with {want} generators")]
pub struct LengthError {
    /// Values given.
    pub got: usize,
    /// Generators available.
    pub want: usize,
}

/// The point `index` of `domain`, by try-and-increment (see the module docs).
pub fn hash_to_curve(domain: &[u8], index: u64) -> Point {
    let mut counter: u32 = 0;
    loop {
        let d = Sha256::new()
            .chain_update(domain)
            .chain_update(index.to_le_bytes())
            .chain_update(counter.to_le_bytes())
            .finalize();
        let y = Fq::from_le_bytes_mod_order(&d);
        if let Some(p) = EdwardsAffine::get_point_from_y_unchecked(y, d[31] & 1 == 1) {
            let q = p.clear_cofactor();
            if !q.is_zero() {
                return q;
            }
        }
        counter += 1;
    }
}

/// The generators of a commitment to `n` values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generators {
    /// `G_0 … G_{n−1}`.
    pub g: Vec<Point>,
    /// The blinding generator.
    pub h: Point,
}

impl Generators {
    /// Derives the generators for `n` values (deterministic; the same on every machine).
    pub fn new(n: usize) -> Self {
        Self {
            g: (0..n as u64).map(|j| hash_to_curve(DOMAIN_G, j)).collect(),
            h: hash_to_curve(DOMAIN_H, 0),
        }
    }
}

/// A uniformly random blinding scalar.
pub fn random_blinding<R: rand::RngCore + ?Sized>(rng: &mut R) -> Scalar {
    let mut bytes = [0u8; 64];
    rng.fill_bytes(&mut bytes);
    // 512 bits reduced mod r: statistically uniform.
    Scalar::from_le_bytes_mod_order(&bytes)
}

/// A signed integer as a scalar.
pub fn scalar(v: i64) -> Scalar {
    if v >= 0 {
        Scalar::from(v as u64)
    } else {
        -Scalar::from(v.unsigned_abs())
    }
}

/// `Σ x_j·G_j + ρ·H`.
pub fn commit(gens: &Generators, x: &[i64], rho: &Scalar) -> Result<Point, LengthError> {
    if x.len() != gens.g.len() {
        return Err(LengthError {
            got: x.len(),
            want: gens.g.len(),
        });
    }
    let scalars: Vec<Scalar> = x
        .iter()
        .map(|&v| scalar(v))
        .chain(std::iter::once(*rho))
        .collect();
    let bases: Vec<Point> = gens
        .g
        .iter()
        .copied()
        .chain(std::iter::once(gens.h))
        .collect();
    let c = EdwardsProjective::msm(&bases, &scalars).map_err(|_| LengthError {
        got: x.len(),
        want: gens.g.len(),
    })?;
    Ok(c.into_affine())
}

/// The sum of commitments (what the coordinator compares with `commit(Σx, Σρ)`).
pub fn sum(commitments: &[Point]) -> Point {
    commitments
        .iter()
        .fold(EdwardsProjective::default(), |acc, c| acc + c)
        .into_affine()
}

/// Checks a point is on the curve and in the prime-order subgroup (for points from peers).
pub fn is_valid(p: &Point) -> bool {
    p.is_on_curve() && p.is_in_correct_subgroup_assuming_on_curve()
}

/// The curve's `d` (and `a = 1`), for the gadget.
pub(crate) fn coeff_d() -> Fq {
    <EdwardsConfig as TECurveConfig>::COEFF_D
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_std::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn generators_are_deterministic_distinct_and_valid() {
        let a = Generators::new(8);
        assert_eq!(a, Generators::new(8));
        let mut all = a.g.clone();
        all.push(a.h);
        assert!(all.iter().all(is_valid));
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }

    #[test]
    fn blindings_are_random() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        assert_ne!(random_blinding(&mut rng), random_blinding(&mut rng));
    }

    #[test]
    fn commitments_add_up() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let gens = Generators::new(5);
        let xs: Vec<Vec<i64>> = (0..3)
            .map(|_| (0..5).map(|_| rng.gen_range(-1000..1000)).collect())
            .collect();
        let rhos: Vec<Scalar> = (0..3).map(|_| Scalar::rand(&mut rng)).collect();
        let cs: Vec<Point> = xs
            .iter()
            .zip(&rhos)
            .map(|(x, r)| commit(&gens, x, r).unwrap())
            .collect();
        let total: Vec<i64> = (0..5).map(|j| xs.iter().map(|x| x[j]).sum()).collect();
        let rho: Scalar = rhos.iter().sum();
        assert_eq!(sum(&cs), commit(&gens, &total, &rho).unwrap());
        let mut off = total.clone();
        off[0] += 1;
        assert_ne!(sum(&cs), commit(&gens, &off, &rho).unwrap());
        assert!(commit(&gens, &total[..4], &rho).is_err());
    }
}

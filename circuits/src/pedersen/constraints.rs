//! The Pedersen commitment in the circuit: fixed-base scalar multiplications with 2-bit
//! windows over precomputed tables `[O, P, 2P, 3P]` (`P = 4^w·G`). Choosing a table entry is
//! linear in the two bits and their product, so each window costs 7 constraints (1 for the
//! bit product, 3 for the products of the Edwards addition, 1 for `x1x2y1y2`, 2 for the
//! two divisions); the complete addition law of Baby Jubjub has no exceptional cases.
//!
//! A signed `x_j` enters through the bits of `x_j + 2^(n−1)` (as [`SignedVar`] carries
//! them): the circuit commits to the offset values and starts its accumulator at the
//! constant `−2^(n−1)·Σ G_j`, which gives exactly the native `Σ x_j·G_j`.

use ark_bn254::Fr;
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup};
use ark_ed_on_bn254::{EdwardsAffine, EdwardsProjective};
use ark_ff::{Field, One};
use ark_r1cs_std::{
    alloc::AllocVar, boolean::Boolean, eq::EqGadget, fields::fp::FpVar, fields::FieldVar, GR1CSVar,
};
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

use super::{coeff_d, Generators};
use crate::fixed::constraints::SignedVar;

/// A Baby Jubjub point in the circuit (its base field is BN254's scalar field).
#[derive(Clone, Debug)]
pub struct PointVar {
    /// x coordinate.
    pub x: FpVar<Fr>,
    /// y coordinate.
    pub y: FpVar<Fr>,
}

impl PointVar {
    /// A constant point.
    pub fn constant(p: &EdwardsAffine) -> Self {
        let (x, y) = p.xy().unwrap_or((Fr::from(0u64), Fr::one()));
        Self {
            x: FpVar::constant(x),
            y: FpVar::constant(y),
        }
    }

    /// Enforces equality with another point (2 constraints).
    pub fn enforce_equal(&self, other: &Self) -> Result<(), SynthesisError> {
        self.x.enforce_equal(&other.x)?;
        self.y.enforce_equal(&other.y)
    }
}

fn div(
    cs: &ConstraintSystemRef<Fr>,
    num: &FpVar<Fr>,
    den: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    let q = FpVar::new_witness(cs.clone(), || {
        let d = den
            .value()?
            .inverse()
            .ok_or(SynthesisError::DivisionByZero)?;
        Ok(num.value()? * d)
    })?;
    q.mul_equals(den, num)?;
    Ok(q)
}

/// `acc + table[b0 + 2·b1]`.
fn add_window(
    cs: &ConstraintSystemRef<Fr>,
    acc: &PointVar,
    b0: &Boolean<Fr>,
    b1: &Boolean<Fr>,
    table: &[EdwardsAffine; 4],
) -> Result<PointVar, SynthesisError> {
    let both = FpVar::from(b0 & b1);
    let (f0, f1) = (FpVar::from(b0.clone()), FpVar::from(b1.clone()));
    let coords: Vec<(Fr, Fr)> = table
        .iter()
        .map(|p| p.xy().unwrap_or((Fr::from(0u64), Fr::one())))
        .collect();
    let pick = |c: [Fr; 4]| -> FpVar<Fr> {
        &f0 * (c[1] - c[0])
            + &f1 * (c[2] - c[0])
            + &both * (c[3] - c[2] - c[1] + c[0])
            + FpVar::constant(c[0])
    };
    let x2 = pick([coords[0].0, coords[1].0, coords[2].0, coords[3].0]);
    let y2 = pick([coords[0].1, coords[1].1, coords[2].1, coords[3].1]);
    let a = &acc.x * &x2;
    let b = &acc.y * &y2;
    let c = (&acc.x + &acc.y) * (&x2 + &y2);
    let dt = (&a * &b) * coeff_d();
    let one = FpVar::one();
    // Edwards addition with a = 1.
    let x3 = div(cs, &(c - &a - &b), &(&one + &dt))?;
    let y3 = div(cs, &(b - a), &(one - dt))?;
    Ok(PointVar { x: x3, y: y3 })
}

fn window_tables(g: &EdwardsAffine, windows: usize) -> Vec<[EdwardsAffine; 4]> {
    let mut p: EdwardsProjective = (*g).into();
    let mut out = Vec::with_capacity(windows);
    for _ in 0..windows {
        let pts = EdwardsProjective::normalize_batch(&[
            EdwardsProjective::default(),
            p,
            p.double(),
            p.double() + p,
        ]);
        out.push([pts[0], pts[1], pts[2], pts[3]]);
        p = p.double().double();
    }
    out
}

/// `acc + Σ_i bits_i·2^i·G` with `bits` little-endian.
fn add_scalar_mul(
    cs: &ConstraintSystemRef<Fr>,
    mut acc: PointVar,
    g: &EdwardsAffine,
    bits: &[Boolean<Fr>],
) -> Result<PointVar, SynthesisError> {
    let windows = bits.len().div_ceil(2);
    for (w, table) in window_tables(g, windows).iter().enumerate() {
        let b0 = &bits[2 * w];
        let b1 = bits.get(2 * w + 1).cloned().unwrap_or(Boolean::FALSE);
        acc = add_window(cs, &acc, b0, &b1, table)?;
    }
    Ok(acc)
}

/// `Σ x_j·G_j + ρ·H` in the circuit, for range-checked signed `x` and the little-endian
/// bits of `ρ`. Costs 7 constraints per two bits (fewer while the accumulator is constant).
pub fn commit(
    cs: &ConstraintSystemRef<Fr>,
    gens: &Generators,
    x: &[SignedVar],
    rho_bits: &[Boolean<Fr>],
) -> Result<PointVar, SynthesisError> {
    if x.len() != gens.g.len() {
        return Err(SynthesisError::Unsatisfiable);
    }
    // Start from −Σ 2^(n_j − 1)·G_j to undo the offsets of the bit decompositions.
    let start: EdwardsProjective = gens
        .g
        .iter()
        .zip(x)
        .map(|(g, v)| -(g.mul_bigint([1u64 << (v.bits.len() - 1)])))
        .sum();
    let mut acc = PointVar::constant(&start.into_affine());
    for (g, v) in gens.g.iter().zip(x) {
        acc = add_scalar_mul(cs, acc, g, &v.bits)?;
    }
    add_scalar_mul(cs, acc, &gens.h, rho_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::constraints::signed_witness;
    use crate::pedersen::{commit as native_commit, Scalar};
    use ark_ff::{BigInteger, PrimeField};
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// Bits per committed value in these tests.
    const N: u32 = 16;

    fn run(x: &[i64], rho: &Scalar, claimed: EdwardsAffine) -> (bool, usize) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let gens = Generators::new(x.len());
        let xv: Vec<SignedVar> = x
            .iter()
            .map(|&v| signed_witness(&cs, Some(v.into()), N).unwrap())
            .collect();
        let bits = rho.into_bigint().to_bits_le();
        let rho_bits: Vec<Boolean<Fr>> = bits[..252]
            .iter()
            .map(|&b| Boolean::new_witness(cs.clone(), || Ok(b)).unwrap())
            .collect();
        let before = cs.num_constraints();
        let c = commit(&cs, &gens, &xv, &rho_bits).unwrap();
        let cost = cs.num_constraints() - before;
        let (cx, cy) = claimed.xy().unwrap();
        let pub_c = PointVar {
            x: FpVar::new_input(cs.clone(), || Ok(cx)).unwrap(),
            y: FpVar::new_input(cs.clone(), || Ok(cy)).unwrap(),
        };
        c.enforce_equal(&pub_c).unwrap();
        (cs.is_satisfied().unwrap(), cost)
    }

    #[test]
    fn gadget_matches_native_with_pinned_cost() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let half = 1i64 << (N - 1);
        // Seeded random vectors, then the extremes of the 16-bit range and zeros.
        let mut cases: Vec<Vec<i64>> = (0..4)
            .map(|_| (0..4).map(|_| rng.gen_range(-half..half)).collect())
            .collect();
        cases.push(vec![-half, half - 1, 0, -1]);
        cases.push(vec![0; 4]);
        for x in cases {
            let rho = Scalar::rand(&mut rng);
            let c = native_commit(&Generators::new(4), &x, &rho).unwrap();
            let (ok, cost) = run(&x, &rho, c);
            assert!(ok, "{x:?}");
            // 4·8 + 126 windows, 7 each, less the 3 products of the first window, whose
            // accumulator is a constant.
            assert_eq!(cost, 7 * (4 * 8 + 126) - 3);
        }
    }

    #[test]
    fn gadget_rejects_another_x_or_blinding() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let x: Vec<i64> = (0..3).map(|_| rng.gen_range(-100..100)).collect();
        let rho = Scalar::rand(&mut rng);
        let c = native_commit(&Generators::new(3), &x, &rho).unwrap();
        let mut y = x.clone();
        y[1] += 1;
        assert!(!run(&y, &rho, c).0);
        assert!(!run(&x, &(rho + Scalar::from(1u64)), c).0);
    }
}

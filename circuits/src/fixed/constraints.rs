//! In-circuit twins of [`crate::fixed`]: range checks, rescaling, dot products, ReLU and the
//! sigmoid, over BN254's scalar field. Each gadget computes exactly what its native twin
//! computes (tests pin both the values and the constraint counts).

use ark_bn254::Fr;
use ark_r1cs_std::{
    alloc::AllocVar, boolean::Boolean, eq::EqGadget, fields::fp::FpVar, fields::FieldVar,
    select::CondSelectGadget, GR1CSVar,
};
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

use super::{field_bits, from_field, to_field, SIG_BOUND, SIG_SEG_SHIFT, SIG_TABLE, VALUE_BITS};

/// A field variable known to be a signed `bits.len()`-bit integer, with the little-endian
/// bits of `value + 2^(n−1)` (so the top bit is set exactly when `value ≥ 0`).
#[derive(Clone, Debug)]
pub struct SignedVar {
    /// The value, as a linear combination of the bits.
    pub value: FpVar<Fr>,
    /// Bits of `value + 2^(n−1)`, little-endian.
    pub bits: Vec<Boolean<Fr>>,
}

impl SignedVar {
    /// Whether the value is non-negative (free: the top offset bit).
    pub fn is_non_negative(&self) -> Boolean<Fr> {
        self.bits.last().cloned().unwrap_or(Boolean::FALSE)
    }
}

fn alloc_bits(
    cs: &ConstraintSystemRef<Fr>,
    val: Option<Fr>,
    n: u32,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    let bits = val.map(|f| field_bits(f, n as usize));
    (0..n as usize)
        .map(|i| {
            Boolean::new_witness(cs.clone(), || {
                bits.as_ref()
                    .map(|b| b[i])
                    .ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect()
}

/// Enforces `0 ≤ v < 2^n` and returns the bits of `v`. Costs `n + 1` constraints.
pub fn unsigned_bits(v: &FpVar<Fr>, n: u32) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    let bits = alloc_bits(&v.cs(), v.value().ok(), n)?;
    Boolean::le_bits_to_fp(&bits)?.enforce_equal(v)?;
    Ok(bits)
}

/// Enforces `−2^(n−1) ≤ v < 2^(n−1)`. Costs `n + 1` constraints.
pub fn range_check_signed(v: &FpVar<Fr>, n: u32) -> Result<SignedVar, SynthesisError> {
    let offset = FpVar::constant(to_field(1i128 << (n - 1)));
    let bits = unsigned_bits(&(v + &offset), n)?;
    Ok(SignedVar {
        value: v.clone(),
        bits,
    })
}

/// A fresh witness that is a signed `n`-bit integer. Costs `n` constraints.
pub fn signed_witness(
    cs: &ConstraintSystemRef<Fr>,
    value: Option<i128>,
    n: u32,
) -> Result<SignedVar, SynthesisError> {
    let offset = 1i128 << (n - 1);
    let bits = alloc_bits(cs, value.map(|v| to_field(v + offset)), n)?;
    let value = Boolean::le_bits_to_fp(&bits)? - FpVar::constant(to_field(offset));
    Ok(SignedVar { value, bits })
}

/// `floor(z / 2^shift)` as a signed [`VALUE_BITS`]-bit value: the rescale after a product
/// or a dot product. Costs `shift + 1 + VALUE_BITS` constraints; unsatisfiable when the
/// quotient does not fit (as [`crate::fixed::rescale`] fails).
pub fn rescale(z: &FpVar<Fr>, shift: u32) -> Result<SignedVar, SynthesisError> {
    let q = z.value().ok().and_then(from_field).map(|z| z >> shift);
    let q = signed_witness(&z.cs(), q, VALUE_BITS)?;
    let r = z - &q.value * to_field(1i128 << shift);
    unsigned_bits(&r, shift)?;
    Ok(q)
}

/// `floor(z / 2^shift)` for `0 ≤ z < 2^(shift + q_bits)`. Costs `shift + q_bits + 1`.
pub fn floor_div_unsigned(
    z: &FpVar<Fr>,
    shift: u32,
    q_bits: u32,
) -> Result<FpVar<Fr>, SynthesisError> {
    let qv = z
        .value()
        .ok()
        .and_then(from_field)
        .map(|z| to_field(z >> shift));
    let q = Boolean::le_bits_to_fp(&alloc_bits(&z.cs(), qv, q_bits)?)?;
    unsigned_bits(&(z - &q * to_field(1i128 << shift)), shift)?;
    Ok(q)
}

/// Σ a_i·b_i, unrescaled. One constraint per product of two variables.
pub fn dot(a: &[FpVar<Fr>], b: &[FpVar<Fr>]) -> FpVar<Fr> {
    a.iter()
        .zip(b)
        .fold(FpVar::zero(), |acc, (x, y)| acc + x * y)
}

/// ReLU of a range-checked value, and whether it was active. One constraint.
pub fn relu(x: &SignedVar) -> Result<(FpVar<Fr>, Boolean<Fr>), SynthesisError> {
    let active = x.is_non_negative();
    Ok((&x.value * FpVar::from(active.clone()), active))
}

/// Selects `table[index]` where `index` is given by little-endian `bits`
/// (`table.len() == 2^bits.len()`). Costs `2^(k−1) − 1` constraints.
pub fn mux_const(bits: &[Boolean<Fr>], table: &[i64]) -> Result<FpVar<Fr>, SynthesisError> {
    let Some(b0) = bits.first() else {
        return Ok(FpVar::constant(to_field(
            table.first().copied().unwrap_or(0).into(),
        )));
    };
    let b0 = FpVar::from(b0.clone());
    let mut level: Vec<FpVar<Fr>> = table
        .chunks(2)
        .map(|c| {
            let (lo, hi) = (
                to_field(c[0].into()),
                to_field(c.get(1).copied().unwrap_or(c[0]).into()),
            );
            &b0 * (hi - lo) + FpVar::constant(lo)
        })
        .collect();
    for b in &bits[1..] {
        let b = FpVar::from(b.clone());
        level = level
            .chunks(2)
            .map(|c| &c[0] + (&c[1] - &c[0]) * &b)
            .collect();
    }
    Ok(level.swap_remove(0))
}

/// The fixed-point sigmoid of a [`VALUE_BITS`]-bit value, as [`crate::fixed::sigmoid`].
/// Costs 68 constraints: it reads the clamp and the segment off the value's bits.
pub fn sigmoid(z: &SignedVar) -> Result<FpVar<Fr>, SynthesisError> {
    let b = &z.bits;
    debug_assert_eq!(b.len(), VALUE_BITS as usize);
    let top = VALUE_BITS as usize - 1;
    let lo_bit = (SIG_SEG_SHIFT + 4) as usize; // 19: |z| < 2^19 is the unclamped range
    let mid = &b[lo_bit..top];
    let mid_sum = mid
        .iter()
        .fold(FpVar::zero(), |acc, x| acc + FpVar::from(x.clone()));
    let any_mid = !mid_sum.is_zero()?;
    let all_mid = (mid_sum - FpVar::constant(Fr::from(mid.len() as u64))).is_zero()?;
    let is_hi = &b[top] & &any_mid;
    let is_lo = &!&b[top] & &!all_mid;
    // Unclamped: t = z + 8 has bits b0..b18 then b31 as bit 19.
    let shift = SIG_SEG_SHIFT as usize;
    let idx: Vec<Boolean<Fr>> = b[shift..lo_bit]
        .iter()
        .cloned()
        .chain(std::iter::once(b[top].clone()))
        .collect();
    debug_assert_eq!(idx.len(), super::SIG_SEG_BITS as usize);
    let frac = Boolean::le_bits_to_fp(&b[..shift])?;
    let diffs: Vec<i64> = SIG_TABLE.windows(2).map(|w| w[1] - w[0]).collect();
    let base = mux_const(&idx, &SIG_TABLE[..32])?;
    let slope = mux_const(&idx, &diffs)?;
    let step = floor_div_unsigned(&(slope * frac), SIG_SEG_SHIFT, 13)?;
    let interp = base + step;
    let hi = FpVar::constant(to_field(super::sigmoid(SIG_BOUND - 1).into()));
    let lo = FpVar::constant(to_field(SIG_TABLE[0].into()));
    let clamped_hi = FpVar::conditionally_select(&is_hi, &hi, &interp)?;
    FpVar::conditionally_select(&is_lo, &lo, &clamped_hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{self, SCALE};
    use ark_relations::gr1cs::ConstraintSystem;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn value(v: &FpVar<Fr>) -> Option<i128> {
        v.value().ok().and_then(from_field)
    }

    #[test]
    fn rescale_matches_native_and_costs_49() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..20 {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let z: i128 = rng.gen_range(-(1i128 << 46)..(1i128 << 46));
            let zv = FpVar::new_witness(cs.clone(), || Ok(to_field(z))).unwrap();
            let q = rescale(&zv, 16).unwrap();
            assert_eq!(
                value(&q.value),
                Some(i128::from(fixed::rescale(z, 16).unwrap()))
            );
            assert!(cs.is_satisfied().unwrap());
            assert_eq!(cs.num_constraints(), 16 + 1 + 32);
        }
    }

    #[test]
    fn rescale_rejects_overflow() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let zv = FpVar::new_witness(cs.clone(), || Ok(to_field(1i128 << 50))).unwrap();
        rescale(&zv, 16).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }

    #[test]
    fn range_checks_accept_inside_reject_outside() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let edges = [(127i128, true), (-128, true), (128, false), (-129, false)];
        // Seeded values around the bounds: the gadget agrees with `fixed::check_signed`.
        let random = (0..40).map(|_| {
            let v = rng.gen_range(-300i128..300);
            (v, fixed::check_signed(v, 8).is_ok())
        });
        let mut seen = [false; 2];
        for (v, ok) in edges.into_iter().chain(random) {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let x = FpVar::new_witness(cs.clone(), || Ok(to_field(v))).unwrap();
            let sv = range_check_signed(&x, 8).unwrap();
            assert_eq!(cs.is_satisfied().unwrap(), ok, "{v}");
            assert_eq!(cs.num_constraints(), 9);
            if ok {
                assert_eq!(sv.is_non_negative().value().unwrap(), v >= 0, "{v}");
            }
            seen[usize::from(ok)] = true;
        }
        assert_eq!(seen, [true, true]);
    }

    #[test]
    fn unsigned_bits_and_floor_div_match_native() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        for _ in 0..30 {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let z: i128 = rng.gen_range(0..1i128 << 28);
            let zv = FpVar::new_witness(cs.clone(), || Ok(to_field(z))).unwrap();
            let q = floor_div_unsigned(&zv, 15, 13).unwrap();
            assert_eq!(value(&q), Some(z >> 15));
            assert!(cs.is_satisfied().unwrap());
            // 13 quotient bits + 15 remainder bits + 1 recomposition.
            assert_eq!(cs.num_constraints(), 13 + 15 + 1);
            let before = cs.num_constraints();
            let bits = unsigned_bits(&zv, 28).unwrap();
            let native = field_bits(to_field(z), 28);
            assert_eq!(
                bits.iter().map(|b| b.value().unwrap()).collect::<Vec<_>>(),
                native
            );
            assert_eq!(cs.num_constraints() - before, 28 + 1);
            assert!(cs.is_satisfied().unwrap());
        }
        // A quotient that does not fit its bits, or a negative z, is unsatisfiable.
        for z in [1i128 << 28, -1] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let zv = FpVar::new_witness(cs.clone(), || Ok(to_field(z))).unwrap();
            let _q = floor_div_unsigned(&zv, 15, 13).unwrap();
            assert!(!cs.is_satisfied().unwrap(), "{z}");
        }
    }

    #[test]
    fn dot_and_relu_match_native() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut branches = [false; 2];
        for _ in 0..20 {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let a: Vec<i64> = (0..8).map(|_| rng.gen_range(-SCALE..SCALE)).collect();
            let b: Vec<i64> = (0..8).map(|_| rng.gen_range(-SCALE..SCALE)).collect();
            let alloc = |xs: &[i64]| -> Vec<FpVar<Fr>> {
                xs.iter()
                    .map(|&x| FpVar::new_witness(cs.clone(), || Ok(to_field(x.into()))).unwrap())
                    .collect()
            };
            let (av, bv) = (alloc(&a), alloc(&b));
            let z = rescale(&dot(&av, &bv), 16).unwrap();
            let native = fixed::rescale(fixed::dot(&a, &b), 16).unwrap();
            assert_eq!(value(&z.value), Some(native.into()));
            let (r, active) = relu(&z).unwrap();
            assert_eq!(value(&r), Some(fixed::relu(native).into()));
            assert_eq!(active.value().unwrap(), fixed::relu_active(native));
            assert!(cs.is_satisfied().unwrap());
            // 8 products + one rescale (49) + relu (1)
            assert_eq!(cs.num_constraints(), 8 + 49 + 1);
            branches[usize::from(fixed::relu_active(native))] = true;
        }
        assert_eq!(branches, [true, true], "both ReLU branches exercised");
    }

    #[test]
    fn sigmoid_matches_native_and_costs_68() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let edge = [
            0,
            -1,
            SIG_BOUND,
            SIG_BOUND - 1,
            -SIG_BOUND,
            -SIG_BOUND - 1,
            20 * SCALE,
            -20 * SCALE,
        ];
        let random: Vec<i64> = (0..40)
            .map(|_| rng.gen_range(-10 * SCALE..10 * SCALE))
            .collect();
        for z in edge.into_iter().chain(random) {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let zv = signed_witness(&cs, Some(z.into()), VALUE_BITS).unwrap();
            let before = cs.num_constraints();
            let s = sigmoid(&zv).unwrap();
            assert_eq!(value(&s), Some(fixed::sigmoid(z).into()), "z = {z}");
            assert!(cs.is_satisfied().unwrap());
            assert_eq!(cs.num_constraints() - before, 68);
        }
    }

    #[test]
    fn mux_selects_each_entry() {
        let table: Vec<i64> = (0..8).map(|i| i * i - 5).collect();
        for idx in 0..8u32 {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let bits: Vec<Boolean<Fr>> = (0..3)
                .map(|i| Boolean::new_witness(cs.clone(), || Ok(idx >> i & 1 == 1)).unwrap())
                .collect();
            let v = mux_const(&bits, &table).unwrap();
            assert_eq!(value(&v), Some(table[idx as usize].into()));
            assert_eq!(cs.num_constraints(), 3 + 3);
        }
    }
}

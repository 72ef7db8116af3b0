//! How a holder's rows are committed and opened: the row format of a proven job.
//!
//! A holder fixes the order of its rows at enrolment and commits to them in **blocks** of
//! [`RowFormat::block_rows`] consecutive rows: a leaf of the Poseidon Merkle tree
//! ([`crate::merkle`]) is one block. A step's B rows are `B / block_rows` blocks that the
//! round seed picks (`cairn_protocol::sampling::block_indices`), so a step pays one Merkle
//! path per block instead of one per row.
//!
//! Every value is **range-checked where it is packed**: a feature is a signed
//! [`RowFormat::feature_bits`]-bit fixed-point value (the range the job publishes: with
//! the default 20 bits, `[−8, 8)`), stored as the bits of `v + 2^(feature_bits − 1)`; a label
//! is one bit (0 or 1, i.e. fixed-point 0 or 2^16). A block's bits, row by row (each row's
//! features in order, then its label), are packed [`PACK_BITS`] to a field element, and the
//! leaf is [`crate::poseidon::hash_vec`] of those elements. The bits a proof allocates to
//! check the range are the bits it packs: the range checks cost `feature_bits` constraints
//! per feature and one per label, and the packing nothing.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};

use crate::fixed::{self, SCALE};
use crate::poseidon;

/// Bits per packed field element: below BN254's 254-bit modulus, so packing is injective.
pub const PACK_BITS: usize = 253;
/// The default feature width: `[−8, 8)` at scale 2^16, the loader's default clamp.
pub const DEFAULT_FEATURE_BITS: u32 = 20;
/// The widest feature the format takes (the fixed-point value width).
pub const MAX_FEATURE_BITS: u32 = 32;
// A committed feature is a stored value: it must fit the circuit's value width.
const _: () = assert!(MAX_FEATURE_BITS <= fixed::VALUE_BITS);

/// A row that the format cannot hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// A feature outside the job's range.
    #[error(
        "row {row}, feature {column}: {value} (fixed point) is outside the job's feature range [{min}, {max}]"
    )]
    Feature {
        /// Row (in the block or the dataset, as the caller numbers them).
        row: usize,
        /// Feature index.
        column: usize,
        /// Its fixed-point value.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A label that is not 0 or 1.
    #[error("row {row}: label {value} (fixed point) is not 0 or 1")]
    Label {
        /// Row.
        row: usize,
        /// Its fixed-point value.
        value: i64,
    },
    /// A row of the wrong width, or a block of the wrong length.
    #[error("{what}: got {got}, the format needs {want}")]
    Shape {
        /// What was counted.
        what: &'static str,
        /// Count given.
        got: usize,
        /// Count needed.
        want: usize,
    },
}

/// The committed row format of a job: its features, their range, and the block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowFormat {
    /// Features per row (the label follows).
    pub n_features: usize,
    /// Signed bits of each fixed-point feature.
    pub feature_bits: u32,
    /// Rows per leaf.
    pub block_rows: u32,
}

/// The real range `[−limit, limit)` of features committed with `feature_bits` signed
/// bits (a value of exactly `limit` is committed as the largest one below it).
pub fn feature_limit(feature_bits: u32) -> f32 {
    (1i64 << (feature_bits.clamp(1, 62) - 1)) as f32 / SCALE as f32
}

/// Checks that features clamped to `±clamp` fit `feature_bits` signed bits; else says how
/// many bits they need (every holder's commitment would fail on its rows).
pub fn check_clamp(feature_bits: u32, clamp: f32) -> Result<(), String> {
    if clamp <= feature_limit(feature_bits) {
        return Ok(());
    }
    let need = (2..=MAX_FEATURE_BITS).find(|&b| clamp <= feature_limit(b));
    Err(match need {
        Some(b) => format!(
            "{feature_bits} bits hold features to ±{}, but the data is clamped to ±{clamp}: use at least {b}",
            feature_limit(feature_bits)
        ),
        None => format!(
            "no feature width up to {MAX_FEATURE_BITS} bits holds features clamped to ±{clamp}"
        ),
    })
}

impl RowFormat {
    /// Smallest and largest fixed-point feature value.
    pub fn feature_range(&self) -> (i64, i64) {
        let half = 1i64 << (self.feature_bits - 1);
        (-half, half - 1)
    }

    /// The range in real units, `[−limit, limit)`.
    pub fn feature_limit(&self) -> f32 {
        feature_limit(self.feature_bits)
    }

    /// Bits of one row.
    pub fn row_bits(&self) -> usize {
        self.n_features * self.feature_bits as usize + 1
    }

    /// Field elements of one block's leaf preimage.
    pub fn leaf_elements(&self) -> usize {
        (self.row_bits() * self.block_rows as usize).div_ceil(PACK_BITS)
    }

    /// Checks one row (features then label, fixed point); `index` names it in the error.
    pub fn check_row(&self, index: usize, row: &[i64]) -> Result<(), RowError> {
        if row.len() != self.n_features + 1 {
            return Err(RowError::Shape {
                what: "values per row",
                got: row.len(),
                want: self.n_features + 1,
            });
        }
        let (min, max) = self.feature_range();
        for (column, &value) in row[..self.n_features].iter().enumerate() {
            if !(min..=max).contains(&value) {
                return Err(RowError::Feature {
                    row: index,
                    column,
                    value,
                    min,
                    max,
                });
            }
        }
        let label = row[self.n_features];
        if label != 0 && label != SCALE {
            return Err(RowError::Label {
                row: index,
                value: label,
            });
        }
        Ok(())
    }

    /// The bits of one checked row, in packing order.
    fn push_bits(&self, row: &[i64], out: &mut Vec<bool>) {
        let offset = 1i64 << (self.feature_bits - 1);
        for &v in &row[..self.n_features] {
            let u = (v + offset) as u64;
            out.extend((0..self.feature_bits).map(|i| u >> i & 1 == 1));
        }
        out.push(row[self.n_features] == SCALE);
    }

    /// The leaf of one block of `block_rows` rows (checked first).
    pub fn leaf(&self, block: &[Vec<i64>]) -> Result<Fr, RowError> {
        self.leaf_at(0, block)
    }

    /// [`RowFormat::leaf`] of a block whose first row is row `first` (in the errors).
    fn leaf_at(&self, first: usize, block: &[Vec<i64>]) -> Result<Fr, RowError> {
        if block.len() != self.block_rows as usize {
            return Err(RowError::Shape {
                what: "rows per block",
                got: block.len(),
                want: self.block_rows as usize,
            });
        }
        let mut bits = Vec::with_capacity(self.row_bits() * block.len());
        for (i, row) in block.iter().enumerate() {
            self.check_row(first + i, row)?;
            self.push_bits(row, &mut bits);
        }
        Ok(poseidon::hash_vec(&pack(&bits)))
    }

    /// Full blocks in `n_rows` rows (the rows after the last full block are not committed).
    pub fn blocks_in(&self, n_rows: usize) -> usize {
        n_rows / self.block_rows.max(1) as usize
    }

    /// The leaves of `rows` (in the holder's committed order), one per full block; a
    /// committed row outside the format is named by its index in `rows` (the rows after the
    /// last full block are in no leaf and not checked).
    pub fn leaves(&self, rows: &[Vec<i64>]) -> Result<Vec<Fr>, RowError> {
        let b = self.block_rows as usize;
        rows[..self.blocks_in(rows.len()) * b]
            .chunks(b)
            .enumerate()
            .map(|(k, block)| self.leaf_at(k * b, block))
            .collect()
    }
}

/// Little-endian bits, [`PACK_BITS`] to a field element.
pub fn pack(bits: &[bool]) -> Vec<Fr> {
    bits.chunks(PACK_BITS)
        .map(|c| {
            // Below the modulus by construction (PACK_BITS < 254).
            Fr::from_bigint(<Fr as PrimeField>::BigInt::from_bits_le(c)).unwrap_or_default()
        })
        .collect()
}

/// In-circuit twin: a block's values opened from range-checked bits, and its leaf.
pub mod constraints {
    use ark_bn254::Fr;
    use ark_r1cs_std::{alloc::AllocVar, boolean::Boolean, fields::fp::FpVar, fields::FieldVar};
    use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

    use super::{RowFormat, PACK_BITS};
    use crate::fixed::{to_field, SCALE};
    use crate::poseidon::constraints::hash_vec;

    /// Allocates a block's rows as bits — `feature_bits` per feature, one per label — and
    /// returns each row's values (features, then the label at scale 2^16) and the block's
    /// leaf. Costs `feature_bits` constraints per feature, one per label, and the hash of
    /// [`RowFormat::leaf_elements`] packed elements.
    #[allow(clippy::type_complexity)]
    pub fn open_block(
        cs: &ConstraintSystemRef<Fr>,
        format: &RowFormat,
        block: &[Vec<i64>],
    ) -> Result<(Vec<Vec<FpVar<Fr>>>, FpVar<Fr>), SynthesisError> {
        let fb = format.feature_bits;
        let offset = FpVar::constant(to_field(1i128 << (fb - 1)));
        let mut all_bits: Vec<Boolean<Fr>> = Vec::with_capacity(format.row_bits() * block.len());
        let mut rows = Vec::with_capacity(block.len());
        for row in block {
            let mut values = Vec::with_capacity(row.len());
            for &v in &row[..format.n_features] {
                let u = (v + (1i64 << (fb - 1))) as u64;
                let bits: Vec<Boolean<Fr>> = (0..fb)
                    .map(|i| Boolean::new_witness(cs.clone(), || Ok(u >> i & 1 == 1)))
                    .collect::<Result<_, _>>()?;
                values.push(Boolean::le_bits_to_fp(&bits)? - &offset);
                all_bits.extend(bits);
            }
            let label = Boolean::new_witness(cs.clone(), || Ok(row[format.n_features] == SCALE))?;
            values.push(FpVar::from(label.clone()) * to_field(SCALE.into()));
            all_bits.push(label);
            rows.push(values);
        }
        let packed: Vec<FpVar<Fr>> = all_bits
            .chunks(PACK_BITS)
            .map(Boolean::le_bits_to_fp)
            .collect::<Result<_, _>>()?;
        Ok((rows, hash_vec(&packed)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clamp_must_fit_the_feature_width() {
        // 20 bits at 16 fraction bits: [−8, 8), and 8 itself is committed as the top value.
        assert_eq!(feature_limit(20), 8.0);
        assert!(check_clamp(20, 8.0).is_ok());
        let e = check_clamp(18, 8.0).expect_err("±2 cannot hold ±8");
        assert!(e.contains("±2") && e.contains("use at least 20"), "{e}");
        assert!(check_clamp(MAX_FEATURE_BITS, 1e30).is_err());
    }
    use ark_r1cs_std::GR1CSVar;
    use ark_relations::gr1cs::ConstraintSystem;

    fn format() -> RowFormat {
        RowFormat {
            n_features: 3,
            feature_bits: 8,
            block_rows: 2,
        }
    }

    #[test]
    fn native_and_circuit_leaves_agree_and_the_ranges_are_exact() {
        let f = format();
        let (min, max) = f.feature_range();
        assert_eq!((min, max), (-128, 127));
        let block = vec![vec![min, 0, max, SCALE], vec![5, -7, 1, 0]];
        let leaf = f.leaf(&block).unwrap();
        let cs = ConstraintSystem::<Fr>::new_ref();
        let (rows, l) = constraints::open_block(&cs, &f, &block).unwrap();
        assert!(cs.is_satisfied().unwrap());
        assert_eq!(l.value().unwrap(), leaf);
        for (r, want) in rows.iter().zip(&block) {
            let got: Vec<Fr> = r.iter().map(|v| v.value().unwrap()).collect();
            let want: Vec<Fr> = want.iter().map(|&v| fixed::to_field(v.into())).collect();
            assert_eq!(got, want);
        }
        // Out of range by one either way, or a label other than 0 and 1: refused.
        for (bad, want) in [
            (vec![min - 1, 0, 0, 0], "feature"),
            (vec![0, max + 1, 0, 0], "feature"),
            (vec![0, 0, 0, 2 * SCALE], "label"),
            (vec![0, 0, 0, -20 * SCALE], "label"),
            (vec![0, 0, 0, 1], "label"),
        ] {
            let e = f.leaf(&[bad.clone(), block[1].clone()]).unwrap_err();
            assert!(e.to_string().contains(want), "{bad:?}: {e}");
        }
        // Different blocks, different leaves (order matters).
        let swapped = vec![block[1].clone(), block[0].clone()];
        assert_ne!(f.leaf(&swapped).unwrap(), leaf);
    }

    #[test]
    fn the_bits_a_value_opens_from_cannot_encode_an_out_of_range_value() {
        // Whatever bits a prover assigns, the opened value lies in the range: the
        // extremes of the bit patterns are exactly the range's ends.
        let f = format();
        let cs = ConstraintSystem::<Fr>::new_ref();
        let (rows, _) = constraints::open_block(&cs, &f, &vec![vec![-128, 127, 0, 0]; 2]).unwrap();
        assert_eq!(rows[0][0].value().unwrap(), fixed::to_field(-128));
        assert_eq!(rows[0][1].value().unwrap(), fixed::to_field(127));
        assert!(cs.is_satisfied().unwrap());
        // 8 bits per feature, 1 per label, nothing for packing but the hash.
        let hash_only = {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let v: Vec<_> = (0..f.leaf_elements())
                .map(|_| {
                    <ark_r1cs_std::fields::fp::FpVar<Fr> as ark_r1cs_std::alloc::AllocVar<
                            Fr,
                            Fr,
                        >>::new_witness(cs.clone(), || Ok(Fr::from(1u64)))
                        .unwrap()
                })
                .collect();
            let _ = crate::poseidon::constraints::hash_vec(&v).unwrap();
            cs.num_constraints()
        };
        assert_eq!(cs.num_constraints(), 2 * (3 * 8 + 1) + hash_only);
    }

    #[test]
    fn packing_is_253_bits_per_element() {
        let bits: Vec<bool> = (0..600).map(|i| i % 3 == 0).collect();
        let p = pack(&bits);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].into_bigint().to_bits_le()[..253], bits[..253]);
    }
}

//! Poseidon over BN254 with circomlib's parameters (x^5, width t = inputs + 1, circomlib's
//! round constants and MDS matrices), computed natively by the `light-poseidon` crate; the
//! gadget in [`constraints`] reads the very same constants from it.
//!
//! [`hash_vec`] hashes a vector of any length by chaining: `acc = len`, then for each chunk
//! of up to [`CHUNK`] elements `acc = Poseidon(acc ‖ chunk)` (the length first makes vectors
//! of different lengths hash apart).

pub mod constraints;

use std::cell::RefCell;

use ark_bn254::Fr;
use light_poseidon::{Poseidon, PoseidonHasher};

/// Most inputs one Poseidon call takes (circomlib widths up to 13 in `light-poseidon`).
pub const MAX_INPUTS: usize = light_poseidon::MAX_X5_LEN - 1;
/// Elements absorbed per chained call of [`hash_vec`].
pub const CHUNK: usize = MAX_INPUTS - 1;

/// Too many or too few inputs for one Poseidon call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Poseidon takes 1 to {MAX_INPUTS} inputs, got {0}")]
pub struct WidthError(pub usize);

thread_local! {
    static HASHERS: RefCell<Vec<Option<Poseidon<Fr>>>> = RefCell::new((0..=MAX_INPUTS).map(|_| None).collect());
}

/// circomlib's `Poseidon(n)` of `inputs` (1 ≤ n ≤ [`MAX_INPUTS`]).
pub fn hash(inputs: &[Fr]) -> Result<Fr, WidthError> {
    let n = inputs.len();
    if n == 0 || n > MAX_INPUTS {
        return Err(WidthError(n));
    }
    HASHERS.with(|h| {
        let mut h = h.borrow_mut();
        let slot = &mut h[n];
        if slot.is_none() {
            *slot = Some(Poseidon::<Fr>::new_circom(n).map_err(|_| WidthError(n))?);
        }
        slot.as_mut()
            .ok_or(WidthError(n))?
            .hash(inputs)
            .map_err(|_| WidthError(n))
    })
}

/// Poseidon of two elements (Merkle nodes).
pub fn hash2(a: Fr, b: Fr) -> Fr {
    // Two inputs is always a valid width.
    hash(&[a, b]).unwrap_or_default()
}

/// Hash of a vector of any length (see the module docs).
pub fn hash_vec(xs: &[Fr]) -> Fr {
    let mut acc = Fr::from(xs.len() as u64);
    if xs.is_empty() {
        return hash(&[acc]).unwrap_or_default();
    }
    for chunk in xs.chunks(CHUNK) {
        let mut input = Vec::with_capacity(chunk.len() + 1);
        input.push(acc);
        input.extend_from_slice(chunk);
        // chunk.len() + 1 ≤ MAX_INPUTS by construction.
        acc = hash(&input).unwrap_or_default();
    }
    acc
}

/// [`hash_vec`] of signed integers (fixed-point values, indices, parameters).
pub fn hash_ints(xs: &[i64]) -> Fr {
    let v: Vec<Fr> = xs
        .iter()
        .map(|&x| crate::fixed::to_field(x.into()))
        .collect();
    hash_vec(&v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn circomlib_vectors() {
        // circomlib test/poseidon.js
        let h = hash(&[Fr::from(1u64), Fr::from(2u64)]).unwrap();
        let want = Fr::from_str(
            "7853200120776062878684798364095072458815029376092732009249414926327459813530",
        );
        assert_eq!(Ok(h), want);
        let h4 = hash(&[1u64, 2, 3, 4].map(Fr::from)).unwrap();
        let want4 = Fr::from_str(
            "18821383157269793795438455681495246036402687001665670618754263018637548127333",
        );
        assert_eq!(Ok(h4), want4);
    }

    #[test]
    fn widths_are_checked() {
        assert_eq!(hash(&[]), Err(WidthError(0)));
        assert_eq!(
            hash(&vec![Fr::from(1u64); MAX_INPUTS + 1]),
            Err(WidthError(MAX_INPUTS + 1))
        );
    }

    #[test]
    fn hash_vec_separates_lengths_and_contents() {
        let a = hash_ints(&[1, 2, 3]);
        assert_ne!(a, hash_ints(&[1, 2, 3, 0]));
        assert_ne!(a, hash_ints(&[1, 2, 4]));
        assert_ne!(hash_ints(&[]), hash_ints(&[0]));
        let long: Vec<i64> = (0..40).collect();
        assert_ne!(hash_ints(&long), hash_ints(&long[..39]));
    }
}

//! Shamir t-of-n secret sharing of 32-byte secrets over the prime field GF(2^61 − 1).
//!
//! The secret is cut into five 7-byte pieces, each below 2^56 < p, and each piece is
//! shared with its own random polynomial of degree t − 1 evaluated at the same
//! x-coordinates. Shamir's scheme is perfectly hiding in any field larger than the
//! number of shares, so fewer than t shares reveal nothing about any piece; the
//! Mersenne prime makes reduction two additions. Reconstruction interpolates from
//! the first t shares and then checks that every further share lies on the same
//! polynomials and that the pieces are in range, so an inconsistent share is
//! reported (with probability 1 − 2^−61 per piece) instead of yielding a wrong secret.

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The field modulus p = 2^61 − 1.
pub const P: u64 = (1 << 61) - 1;
/// Bytes of the secrets shared.
pub const SECRET_BYTES: usize = 32;
/// Bytes per piece (each piece < 2^56 < p).
const PIECE_BYTES: usize = 7;
/// Field elements per share: ⌈32 / 7⌉.
pub const PIECES: usize = SECRET_BYTES.div_ceil(PIECE_BYTES);
/// Encoded size of one share: x then the pieces, little-endian u64 each.
pub const SHARE_BYTES: usize = 8 * (1 + PIECES);

/// Errors of sharing and reconstruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// The threshold must be between 1 and the number of shares.
    #[error("threshold {threshold} invalid for {shares} shares")]
    BadThreshold {
        /// Requested threshold.
        threshold: usize,
        /// Number of shares.
        shares: usize,
    },
    /// Fewer shares than the threshold.
    #[error("{got} shares, {need} needed")]
    TooFewShares {
        /// Shares supplied.
        got: usize,
        /// Threshold.
        need: usize,
    },
    /// Two shares at the same x-coordinate.
    #[error("duplicate share x-coordinate {0}")]
    DuplicateX(u64),
    /// An x-coordinate that is zero or not below p (x = 0 would be the secret itself).
    #[error("invalid share x-coordinate {0}")]
    InvalidX(u64),
    /// A field element not below p, or an encoding of the wrong length.
    #[error("malformed share encoding")]
    Malformed,
    /// The shares do not all lie on one polynomial of degree < t with an in-range secret.
    #[error("shares are inconsistent")]
    Inconsistent,
}

/// One share: the x-coordinate and one field element per piece. Zeroized on drop;
/// `Debug` shows only x.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    x: u64,
    y: [u64; PIECES],
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share {{ x: {}, y: <redacted> }}", self.x)
    }
}

impl Share {
    /// The share's x-coordinate.
    pub fn x(&self) -> u64 {
        self.x
    }

    /// The fixed-size encoding (zeroized when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; SHARE_BYTES]> {
        let mut out = Zeroizing::new([0u8; SHARE_BYTES]);
        out[..8].copy_from_slice(&self.x.to_le_bytes());
        for (i, y) in self.y.iter().enumerate() {
            out[8 * (i + 1)..8 * (i + 2)].copy_from_slice(&y.to_le_bytes());
        }
        out
    }

    /// Decodes a share, checking the length and that every coordinate is a valid field element.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ShamirError> {
        if bytes.len() != SHARE_BYTES {
            return Err(ShamirError::Malformed);
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[8 * i..8 * (i + 1)]);
            u64::from_le_bytes(w)
        };
        let x = word(0);
        if x == 0 || x >= P {
            return Err(ShamirError::InvalidX(x));
        }
        let mut y = [0u64; PIECES];
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = word(i + 1);
            if *yi >= P {
                return Err(ShamirError::Malformed);
            }
        }
        Ok(Self { x, y })
    }
}

impl serde::Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes()[..])
    }
}

impl<'de> serde::Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = Zeroizing::new(<Vec<u8> as serde::Deserialize>::deserialize(d)?);
        Share::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[inline]
fn reduce(r: u64) -> u64 {
    let r = if r >= P { r - P } else { r };
    if r >= P {
        r - P
    } else {
        r
    }
}

#[inline]
fn add(a: u64, b: u64) -> u64 {
    reduce(a + b)
}

#[inline]
fn sub(a: u64, b: u64) -> u64 {
    reduce(a + P - b)
}

#[inline]
fn mul(a: u64, b: u64) -> u64 {
    let z = a as u128 * b as u128;
    reduce((z as u64 & P) + (z >> 61) as u64)
}

fn pow(mut base: u64, mut e: u64) -> u64 {
    let mut acc = 1;
    while e > 0 {
        if e & 1 == 1 {
            acc = mul(acc, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    acc
}

/// Inverse of a non-zero element (Fermat).
fn inv(a: u64) -> u64 {
    pow(a, P - 2)
}

fn random_element<R: RngCore + CryptoRng>(rng: &mut R) -> u64 {
    loop {
        let v = rng.next_u64() >> 3;
        if v < P {
            return v;
        }
    }
}

fn check_xs(xs: impl Iterator<Item = u64>) -> Result<(), ShamirError> {
    let mut seen = std::collections::BTreeSet::new();
    for x in xs {
        if x == 0 || x >= P {
            return Err(ShamirError::InvalidX(x));
        }
        if !seen.insert(x) {
            return Err(ShamirError::DuplicateX(x));
        }
    }
    Ok(())
}

/// Splits `secret` into one share per x-coordinate in `xs`; any `threshold` of them
/// reconstruct it, fewer reveal nothing.
pub fn split<R: RngCore + CryptoRng>(
    secret: &[u8; SECRET_BYTES],
    threshold: usize,
    xs: &[u64],
    rng: &mut R,
) -> Result<Vec<Share>, ShamirError> {
    if threshold == 0 || threshold > xs.len() {
        return Err(ShamirError::BadThreshold {
            threshold,
            shares: xs.len(),
        });
    }
    check_xs(xs.iter().copied())?;
    // coeffs[piece][j]: coefficient of x^j; coefficient 0 is the piece itself.
    let mut coeffs = Zeroizing::new(vec![[0u64; PIECES]; threshold]);
    for (piece, chunk) in secret.chunks(PIECE_BYTES).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        coeffs[0][piece] = u64::from_le_bytes(w);
        w.zeroize();
    }
    for row in coeffs.iter_mut().skip(1) {
        for c in row.iter_mut() {
            *c = random_element(rng);
        }
    }
    Ok(xs
        .iter()
        .map(|&x| {
            let mut y = [0u64; PIECES];
            for (piece, yp) in y.iter_mut().enumerate() {
                // Horner from the highest coefficient.
                *yp = coeffs
                    .iter()
                    .rev()
                    .fold(0, |acc, row| add(mul(acc, x), row[piece]));
            }
            Share { x, y }
        })
        .collect())
}

/// The inverses of non-zero elements, with a single field inversion (Montgomery's trick:
/// 3(len − 1) multiplications instead of one ~120-multiplication inversion each).
fn batch_inv(v: &[u64]) -> Vec<u64> {
    let mut prefix = Vec::with_capacity(v.len());
    let mut acc = 1;
    for &a in v {
        prefix.push(acc);
        acc = mul(acc, a);
    }
    let mut inv_acc = inv(acc);
    let mut out = vec![0; v.len()];
    for i in (0..v.len()).rev() {
        out[i] = mul(inv_acc, prefix[i]);
        inv_acc = mul(inv_acc, v[i]);
    }
    out
}

/// Lagrange weights of the nodes `xs` for evaluation at `at`, which must not be a node
/// (callers evaluate at 0 and at the x of further shares, all distinct from the nodes and
/// non-zero: see `check_xs`). Barycentric form, O(t) rather than O(t²):
/// w_i = ℓ(at) · inv_den_i / (at − x_i) with ℓ(at) = Π_j (at − x_j).
fn lagrange_weights(xs: &[u64], inv_den: &[u64], at: u64) -> Vec<u64> {
    let diffs: Vec<u64> = xs.iter().map(|&x| sub(at, x)).collect();
    let l = diffs.iter().fold(1, |acc, &d| mul(acc, d));
    batch_inv(&diffs)
        .into_iter()
        .zip(inv_den)
        .map(|(inv_diff, &den)| mul(mul(l, den), inv_diff))
        .collect()
}

fn evaluate(basis: &[&Share], weights: &[u64]) -> [u64; PIECES] {
    let mut out = [0u64; PIECES];
    for (share, &w) in basis.iter().zip(weights) {
        for (o, &y) in out.iter_mut().zip(&share.y) {
            *o = add(*o, mul(w, y));
        }
    }
    out
}

/// Reconstructs the secret from at least `threshold` shares, checking that the extra
/// shares are consistent with the first `threshold`.
pub fn reconstruct(
    shares: &[Share],
    threshold: usize,
) -> Result<Zeroizing<[u8; SECRET_BYTES]>, ShamirError> {
    if threshold == 0 {
        return Err(ShamirError::BadThreshold {
            threshold,
            shares: shares.len(),
        });
    }
    if shares.len() < threshold {
        return Err(ShamirError::TooFewShares {
            got: shares.len(),
            need: threshold,
        });
    }
    check_xs(shares.iter().map(|s| s.x))?;
    if shares.iter().any(|s| s.y.iter().any(|&y| y >= P)) {
        return Err(ShamirError::Malformed);
    }
    let basis: Vec<&Share> = shares[..threshold].iter().collect();
    let xs: Vec<u64> = basis.iter().map(|s| s.x).collect();
    let inv_den = inverse_denominators(&xs);
    for extra in &shares[threshold..] {
        if evaluate(&basis, &lagrange_weights(&xs, &inv_den, extra.x)) != extra.y {
            return Err(ShamirError::Inconsistent);
        }
    }
    let mut pieces = evaluate(&basis, &lagrange_weights(&xs, &inv_den, 0));
    let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
    for (piece, chunk) in secret.chunks_mut(PIECE_BYTES).enumerate() {
        let bytes = pieces[piece].to_le_bytes();
        if pieces[piece] >> (8 * chunk.len()) != 0 {
            pieces.zeroize();
            return Err(ShamirError::Inconsistent);
        }
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    pieces.zeroize();
    Ok(secret)
}

/// 1 / Π_{j≠i} (x_i − x_j) for each basis point x_i: the part of the Lagrange weights that
/// does not depend on where the polynomial is evaluated.
fn inverse_denominators(xs: &[u64]) -> Vec<u64> {
    let den: Vec<u64> = xs
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            xs.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(1, |acc, (_, &xj)| mul(acc, sub(xi, xj)))
        })
        .collect();
    batch_inv(&den)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic_matches_u128_reference() {
        let cases = [
            (0, 0),
            (1, P - 1),
            (P - 1, P - 1),
            (123_456_789_012, 987_654_321_098),
            (1 << 60, 1 << 60),
        ];
        for (a, b) in cases {
            assert_eq!(mul(a, b) as u128, (a as u128 * b as u128) % P as u128);
            assert_eq!(add(a, b) as u128, (a as u128 + b as u128) % P as u128);
        }
        assert_eq!(mul(inv(12345), 12345), 1);
        let v = [1, 2, 12345, P - 1, 1 << 60];
        assert!(batch_inv(&[]).is_empty());
        for (a, ia) in v.iter().zip(batch_inv(&v)) {
            assert_eq!(ia, inv(*a));
        }
        assert_eq!(sub(3, 5), P - 2);
    }

    /// The barycentric weights equal the textbook ones, Π_{j≠i} (at − x_j)/(x_i − x_j).
    #[test]
    fn lagrange_weights_match_the_direct_formula() {
        let xs: Vec<u64> = (0..40u64).map(|i| i * i * 7919 + 3 * i + 1).collect();
        // The textbook denominators, inverted one by one (the code under test batches them).
        let den: Vec<u64> = xs
            .iter()
            .enumerate()
            .map(|(i, &xi)| {
                xs.iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(1, |acc, (_, &xj)| mul(acc, sub(xi, xj)))
            })
            .collect();
        let inv_den = inverse_denominators(&xs);
        for at in [0, 2, 1 << 40, P - 1] {
            let direct: Vec<u64> = xs
                .iter()
                .enumerate()
                .map(|(i, _)| {
                    let num = xs
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .fold(1, |acc, (_, &xj)| mul(acc, sub(at, xj)));
                    mul(num, inv(den[i]))
                })
                .collect();
            assert_eq!(lagrange_weights(&xs, &inv_den, at), direct, "at {at}");
        }
    }
}

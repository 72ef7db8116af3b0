//! The ring Z_2^k in which masked updates live: the one definition of its width.
//!
//! Every masked vector, every PRG mask and every quantised update is a slice of
//! [`RingElem`]; addition wraps modulo 2^[`RING_BITS`]. Changing the ring width means
//! changing [`RingElem`] here and nothing else (the PRG, the quantiser and the
//! capacity check all derive from it).

/// One element of the ring Z_2^[`RING_BITS`], stored in its canonical representative.
pub type RingElem = u32;

/// The signed type of the same width, for the centred lift of a ring element.
pub type SignedRingElem = i32;

/// The ring's width k in bits: elements live in Z_2^k.
pub const RING_BITS: u32 = RingElem::BITS;

/// Bytes per ring element on the wire and in the PRG keystream.
pub const RING_BYTES: usize = std::mem::size_of::<RingElem>();

/// Decodes one ring element from its little-endian bytes (the PRG's keystream order).
#[inline(always)]
pub fn elem_from_le(bytes: [u8; RING_BYTES]) -> RingElem {
    RingElem::from_le_bytes(bytes)
}

/// The centred lift of `x`: the integer in [−2^(k−1), 2^(k−1)) congruent to `x`.
#[inline]
pub fn centred(x: RingElem) -> SignedRingElem {
    // Two's complement reinterpretation is exactly the centred lift.
    x as SignedRingElem
}

/// Maps a signed integer into the ring (reduction modulo 2^k).
#[inline]
pub fn from_signed(x: i64) -> RingElem {
    x as RingElem
}

/// `acc[i] += v[i]` in the ring, over the common length.
pub fn add_assign(acc: &mut [RingElem], v: &[RingElem]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a = a.wrapping_add(*b);
    }
}

/// `acc[i] -= v[i]` in the ring, over the common length.
pub fn sub_assign(acc: &mut [RingElem], v: &[RingElem]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a = a.wrapping_sub(*b);
    }
}

/// The element-wise sum of `vectors` in the ring; `len` is the common length.
///
/// Vectors of another length are the caller's error; they are summed over the common prefix.
pub fn sum(vectors: &[&[RingElem]], len: usize) -> Vec<RingElem> {
    let mut acc = vec![0 as RingElem; len];
    for v in vectors {
        add_assign(&mut acc, v);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_lift_is_twos_complement() {
        assert_eq!(centred(from_signed(-5)), -5);
        assert_eq!(centred(from_signed(7)), 7);
        assert_eq!(centred(RingElem::MAX), -1);
        assert_eq!(centred(1 << (RING_BITS - 1)) as i64, -(1i64 << (RING_BITS - 1)));
    }

    #[test]
    fn add_then_sub_is_identity_with_wraparound() {
        let mut acc = vec![RingElem::MAX, 3, 0];
        let v = vec![2, RingElem::MAX, 9];
        add_assign(&mut acc, &v);
        assert_eq!(acc, vec![1, 2, 9]);
        sub_assign(&mut acc, &v);
        assert_eq!(acc, vec![RingElem::MAX, 3, 0]);
    }
}

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

/// Serde for ring vectors as one byte string of little-endian elements: exactly
/// [`RING_BYTES`] per element on the wire, whatever integer encoding the format uses
/// (a varint encoding would spend 5 bytes on most uniformly random 32-bit masks).
/// Use with `#[serde(with = "cairn_crypto::ring::serde_elems")]`.
pub mod serde_elems {
    use super::{RingElem, RING_BYTES};
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serialises `v` as bytes.
    pub fn serialize<S: Serializer>(v: &[RingElem], s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(v.len() * RING_BYTES);
        for x in v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        s.serialize_bytes(&bytes)
    }

    struct ElemsVisitor;

    fn from_bytes<E: Error>(b: &[u8]) -> Result<Vec<RingElem>, E> {
        if !b.len().is_multiple_of(RING_BYTES) {
            return Err(E::custom(format!(
                "{} bytes is not a whole number of ring elements",
                b.len()
            )));
        }
        Ok(b.chunks_exact(RING_BYTES)
            .map(|w| {
                let mut a = [0u8; RING_BYTES];
                a.copy_from_slice(w);
                RingElem::from_le_bytes(a)
            })
            .collect())
    }

    impl<'de> Visitor<'de> for ElemsVisitor {
        type Value = Vec<RingElem>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string of little-endian ring elements")
        }

        fn visit_bytes<E: Error>(self, b: &[u8]) -> Result<Self::Value, E> {
            from_bytes(b)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut b = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 24));
            while let Some(x) = seq.next_element::<u8>()? {
                b.push(x);
            }
            from_bytes(&b)
        }
    }

    /// Deserialises bytes (or a sequence of byte values) into ring elements.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RingElem>, D::Error> {
        d.deserialize_byte_buf(ElemsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_lift_is_twos_complement() {
        assert_eq!(centred(from_signed(-5)), -5);
        assert_eq!(centred(from_signed(7)), 7);
        assert_eq!(centred(RingElem::MAX), -1);
        assert_eq!(
            centred(1 << (RING_BITS - 1)) as i64,
            -(1i64 << (RING_BITS - 1))
        );
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

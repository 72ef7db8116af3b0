//! The mask generator: AES-256 in counter mode expanding a full 256-bit seed into ring
//! elements.
//!
//! A mask is the AES-256-CTR keystream (NIST SP 800-38A; 128-bit big-endian counter
//! starting from the all-zero block) under the 32-byte seed as key, read as
//! little-endian [`RingElem`]s. AES-CTR is a PRF-based PRG: distinguishing a mask of q
//! blocks from uniform is as hard as breaking AES-256, up to the q²/2^129 birthday term
//! (2^−93 for a 10^6-element mask). Every seed is used for exactly one mask (self-mask
//! seeds are fresh per round, pairwise seeds come out of HKDF with the round and the
//! pair in the context), so a fixed starting counter never repeats a keystream.
//!
//! Why AES and not ChaCha20: with AES-NI (runtime-detected by the `aes` crate) AES-256-CTR
//! runs at ~7 GB/s on one core here, ChaCha20 (`chacha20` crate, AVX2) at ~1.7 GB/s, and
//! this PRG is the cost of SecAgg. Without AES-NI the crate falls back to a constant-time
//! bitsliced implementation (slower, still correct and identical in output).
//!
//! The keystream is generated in blocks of [`BLOCK_ELEMS`] elements into a small buffer
//! that stays in L1 and is folded into the accumulator at once, so masking costs one
//! keystream pass per seed.

use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ring::{elem_from_le, RingElem, RING_BYTES};

/// Ring elements generated per keystream call (16 KiB of keystream).
pub const BLOCK_ELEMS: usize = 4096;

/// Longest mask one seed may generate (16 GiB of keystream, 2^30 AES blocks: far below
/// the 2^64-block birthday bound of AES-CTR).
pub const MAX_MASK_ELEMS: usize = 1 << 32;

/// Bytes in a mask seed.
pub const SEED_BYTES: usize = 32;

/// A 256-bit PRG seed (a self-mask seed b or a pairwise seed s_uv). Zeroized on drop,
/// never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct MaskSeed([u8; SEED_BYTES]);

impl MaskSeed {
    /// Wraps 32 secret bytes.
    pub fn from_bytes(bytes: [u8; SEED_BYTES]) -> Self {
        Self(bytes)
    }

    /// A fresh uniformly random seed.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; SEED_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The secret bytes (to Shamir-share them).
    pub fn as_bytes(&self) -> &[u8; SEED_BYTES] {
        &self.0
    }
}

impl std::fmt::Debug for MaskSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaskSeed(<redacted>)")
    }
}

/// Whether a mask is added to or subtracted from the accumulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskSign {
    /// `acc += PRG(seed)`.
    Add,
    /// `acc -= PRG(seed)`.
    Sub,
}

/// A mask longer than [`MAX_MASK_ELEMS`] was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("mask of {len} ring elements exceeds the PRG limit of {limit}")]
pub struct MaskTooLong {
    /// Requested length.
    pub len: usize,
    /// The limit, [`MAX_MASK_ELEMS`].
    pub limit: usize,
}

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

fn cipher(seed: &MaskSeed) -> Aes256Ctr {
    Aes256Ctr::new(&seed.0.into(), &[0u8; 16].into())
}

/// The PRG's primitive, exposed for known-answer tests: XORs the AES-256-CTR keystream
/// under `key`, starting at counter block `counter`, into `data`.
pub fn aes256_ctr_xor(key: &[u8; 32], counter: &[u8; 16], data: &mut [u8]) {
    Aes256Ctr::new(key.into(), counter.into()).apply_keystream(data);
}

fn check_len(len: usize) -> Result<(), MaskTooLong> {
    if len as u64 > MAX_MASK_ELEMS as u64 {
        return Err(MaskTooLong {
            len,
            limit: MAX_MASK_ELEMS,
        });
    }
    Ok(())
}

/// Writes `PRG(seed)` into `out` (overwriting it).
pub fn expand_into(seed: &MaskSeed, out: &mut [RingElem]) -> Result<(), MaskTooLong> {
    out.fill(0);
    apply_mask(seed, MaskSign::Add, out)
}

/// `PRG(seed)` as a vector of `len` ring elements.
pub fn expand(seed: &MaskSeed, len: usize) -> Result<Vec<RingElem>, MaskTooLong> {
    check_len(len)?;
    let mut out = vec![0 as RingElem; len];
    expand_into(seed, &mut out)?;
    Ok(out)
}

/// `acc ±= PRG(seed)` element-wise in the ring, the mask as long as `acc`.
pub fn apply_mask(
    seed: &MaskSeed,
    sign: MaskSign,
    acc: &mut [RingElem],
) -> Result<(), MaskTooLong> {
    check_len(acc.len())?;
    let mut cipher = cipher(seed);
    let mut buf = [0u8; BLOCK_ELEMS * RING_BYTES];
    for chunk in acc.chunks_mut(BLOCK_ELEMS) {
        let bytes = &mut buf[..chunk.len() * RING_BYTES];
        bytes.fill(0);
        cipher.apply_keystream(bytes);
        fold(chunk, bytes, sign);
    }
    buf.zeroize();
    Ok(())
}

/// `acc ±= PRG(seed)` for every (seed, sign) in `masks`, in one pass over `acc`: each
/// block of the accumulator stays in L1 while every seed's keystream is folded into it.
pub fn apply_masks(
    masks: &[(&MaskSeed, MaskSign)],
    acc: &mut [RingElem],
) -> Result<(), MaskTooLong> {
    check_len(acc.len())?;
    apply_masks_at(masks, acc, 0);
    Ok(())
}

/// [`apply_masks`] with `acc` split into `threads` contiguous parts, each masked on its
/// own scoped thread from the matching keystream offset (CTR mode seeks in O(1)): the
/// result is identical. Call it from a blocking context, never an async executor thread.
pub fn apply_masks_parallel(
    masks: &[(&MaskSeed, MaskSign)],
    acc: &mut [RingElem],
    threads: usize,
) -> Result<(), MaskTooLong> {
    check_len(acc.len())?;
    let per = acc.len().div_ceil(threads.max(1)).max(BLOCK_ELEMS);
    if per >= acc.len() {
        apply_masks_at(masks, acc, 0);
        return Ok(());
    }
    std::thread::scope(|s| {
        for (i, part) in acc.chunks_mut(per).enumerate() {
            s.spawn(move || apply_masks_at(masks, part, i * per));
        }
    });
    Ok(())
}

/// Masks `acc`, which holds ring elements `start..start + acc.len()` of the masks.
fn apply_masks_at(masks: &[(&MaskSeed, MaskSign)], acc: &mut [RingElem], start: usize) {
    let mut ciphers: Vec<(Aes256Ctr, MaskSign)> = masks
        .iter()
        .map(|(seed, sign)| {
            let mut c = cipher(seed);
            c.seek((start * RING_BYTES) as u64);
            (c, *sign)
        })
        .collect();
    let mut buf = [0u8; BLOCK_ELEMS * RING_BYTES];
    for chunk in acc.chunks_mut(BLOCK_ELEMS) {
        let bytes = &mut buf[..chunk.len() * RING_BYTES];
        for (cipher, sign) in ciphers.iter_mut() {
            bytes.fill(0);
            cipher.apply_keystream(bytes);
            fold(chunk, bytes, *sign);
        }
    }
    buf.zeroize();
}

#[inline(always)]
fn fold(chunk: &mut [RingElem], keystream: &[u8], sign: MaskSign) {
    let words = keystream.chunks_exact(RING_BYTES);
    match sign {
        MaskSign::Add => {
            for (a, w) in chunk.iter_mut().zip(words) {
                *a = a.wrapping_add(elem_from_le(to_array(w)));
            }
        }
        MaskSign::Sub => {
            for (a, w) in chunk.iter_mut().zip(words) {
                *a = a.wrapping_sub(elem_from_le(to_array(w)));
            }
        }
    }
}

#[inline(always)]
fn to_array(w: &[u8]) -> [u8; RING_BYTES] {
    let mut a = [0u8; RING_BYTES];
    a.copy_from_slice(w);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_sub_cancels_across_block_boundaries() {
        let seed = MaskSeed::from_bytes([7; 32]);
        let original: Vec<RingElem> = (0..(BLOCK_ELEMS as u32 * 2 + 17)).collect();
        let mut v = original.clone();
        apply_mask(&seed, MaskSign::Add, &mut v).expect("length is small");
        assert_ne!(v, original);
        apply_mask(&seed, MaskSign::Sub, &mut v).expect("length is small");
        assert_eq!(v, original);
    }

    #[test]
    fn prefix_of_a_longer_mask_is_the_shorter_mask() {
        let seed = MaskSeed::from_bytes([9; 32]);
        let long = expand(&seed, BLOCK_ELEMS + 100).expect("small");
        let short = expand(&seed, 100).expect("small");
        assert_eq!(&long[..100], &short[..]);
        let other = expand(&MaskSeed::from_bytes([10; 32]), 100).expect("small");
        assert_ne!(short, other);
    }

    #[test]
    fn fused_masks_equal_sequential_masks() {
        let (a, b) = (MaskSeed::from_bytes([1; 32]), MaskSeed::from_bytes([2; 32]));
        let x: Vec<RingElem> = (0..(BLOCK_ELEMS as u32 + 5))
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let mut fused = x.clone();
        apply_masks(&[(&a, MaskSign::Add), (&b, MaskSign::Sub)], &mut fused).expect("small");
        let mut seq = x.clone();
        apply_mask(&a, MaskSign::Add, &mut seq).expect("small");
        apply_mask(&b, MaskSign::Sub, &mut seq).expect("small");
        assert_eq!(fused, seq);
        assert_ne!(fused, x);
    }

    #[test]
    fn parallel_masks_equal_sequential_masks() {
        let (a, b) = (MaskSeed::from_bytes([3; 32]), MaskSeed::from_bytes([4; 32]));
        let masks = [(&a, MaskSign::Add), (&b, MaskSign::Sub)];
        // Lengths that do and do not divide evenly, with odd offsets into AES blocks.
        for len in [5 * BLOCK_ELEMS + 3, 3 * BLOCK_ELEMS, 7] {
            let x: Vec<RingElem> = (0..len as u32).collect();
            let mut seq = x.clone();
            apply_masks(&masks, &mut seq).expect("small");
            for threads in [0, 1, 2, 3, 8] {
                let mut par = x.clone();
                apply_masks_parallel(&masks, &mut par, threads).expect("small");
                assert_eq!(par, seq, "len {len}, threads {threads}");
            }
        }
    }

    #[test]
    fn debug_is_redacted() {
        let seed = MaskSeed::from_bytes([0xAB; 32]);
        let s = format!("{seed:?}");
        assert!(s.contains("<redacted>"));
        assert!(!s.to_lowercase().contains("ab, ab") && !s.contains("171"));
    }
}

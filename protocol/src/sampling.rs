//! Which rows a participant trains on in a round: fixed by the round seed, so the
//! coordinator (and later the proof) can tell exactly which committed rows were used.
//!
//! Each of the K local steps draws a mini-batch of B distinct row indices (without
//! replacement within a batch; B is capped at the row count) from a ChaCha20 stream
//! keyed by the round seed and the participant's index. One function, used by every
//! trainer and by the witness generator.

use rand::{seq::index::sample, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The K mini-batches (row indices into the participant's rows) for one round.
///
/// Returns an empty list when `n_rows == 0`.
pub fn batch_indices(
    round_seed: [u8; 32],
    participant: u32,
    n_rows: usize,
    steps: u32,
    batch: u32,
) -> Vec<Vec<u32>> {
    if n_rows == 0 {
        return Vec::new();
    }
    let mut key = round_seed;
    // Domain-separate participants: XOR the index into the last 4 bytes of the key.
    for (k, p) in key[28..].iter_mut().zip(participant.to_le_bytes()) {
        *k ^= p;
    }
    let mut rng = ChaCha20Rng::from_seed(key);
    let b = (batch as usize).min(n_rows);
    (0..steps)
        .map(|_| {
            sample(&mut rng, n_rows, b)
                .into_iter()
                .map(|i| i as u32)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_distinct_and_in_range() {
        let a = batch_indices([7; 32], 3, 100, 5, 16);
        assert_eq!(a, batch_indices([7; 32], 3, 100, 5, 16));
        assert_eq!(a.len(), 5);
        for b in &a {
            assert_eq!(b.len(), 16);
            let mut s = b.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 16);
            assert!(b.iter().all(|&i| i < 100));
        }
        assert_ne!(a, batch_indices([7; 32], 4, 100, 5, 16));
        assert_ne!(a, batch_indices([8; 32], 3, 100, 5, 16));
    }

    #[test]
    fn small_tables_cap_the_batch() {
        let a = batch_indices([1; 32], 0, 3, 2, 16);
        assert!(a.iter().all(|b| b.len() == 3));
        assert!(batch_indices([1; 32], 0, 0, 2, 16).is_empty());
    }
}

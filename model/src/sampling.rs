//! Which rows a participant trains on in a round: fixed by the round seed, so the
//! coordinator (and later the proof) can tell exactly which committed rows were used.
//!
//! Each of the K local steps draws a mini-batch of B distinct row indices (without
//! replacement within a batch; B is capped at the row count) from a ChaCha20 stream
//! keyed by the round seed and the participant's index (its rank by identity key in the
//! job's randomness roster, `cairn_protocol::randomness::holder_index`, so the rows follow the
//! holder's key, not when it connected). In a proven job the draw is over
//! blocks of `block_rows` consecutive rows instead ([`block_indices`]: a leaf of the
//! holder's tree is a block), and a step trains on the rows of `B / block_rows` blocks.
//! [`round_rows`] is the one function every trainer's batches come from; the witness
//! generator and the verifier use [`block_indices`].

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

/// The blocks each of the K steps of a proven round opens: `B / block_rows` distinct block
/// indices among the holder's `n_rows / block_rows` full blocks, drawn exactly as
/// [`batch_indices`] draws rows (a block of one row is a row).
pub fn block_indices(
    round_seed: [u8; 32],
    participant: u32,
    n_rows: usize,
    steps: u32,
    batch: u32,
    block_rows: u32,
) -> Vec<Vec<u32>> {
    let b = block_rows.max(1);
    batch_indices(
        round_seed,
        participant,
        n_rows / b as usize,
        steps,
        batch / b,
    )
}

/// The rows of blocks of `block_rows` consecutive rows, step by step.
pub fn block_rows_of(blocks: &[Vec<u32>], block_rows: u32) -> Vec<Vec<u32>> {
    blocks
        .iter()
        .map(|step| {
            step.iter()
                .flat_map(|&k| k * block_rows..(k + 1) * block_rows)
                .collect()
        })
        .collect()
}

/// The rows a participant trains on in a round: [`batch_indices`] when the job does not
/// prove (`block_rows = None`), the rows of the [`block_indices`] blocks when it does. The
/// one function every trainer's batches come from.
pub fn round_rows(
    round_seed: [u8; 32],
    participant: u32,
    n_rows: usize,
    steps: u32,
    batch: u32,
    block_rows: Option<u32>,
) -> Vec<Vec<u32>> {
    match block_rows {
        None => batch_indices(round_seed, participant, n_rows, steps, batch),
        Some(b) => block_rows_of(
            &block_indices(round_seed, participant, n_rows, steps, batch, b),
            b.max(1),
        ),
    }
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
    fn blocks_of_one_row_are_rows_and_blocks_are_whole() {
        assert_eq!(
            round_rows([5; 32], 2, 100, 3, 8, Some(1)),
            batch_indices([5; 32], 2, 100, 3, 8)
        );
        assert_eq!(
            round_rows([5; 32], 2, 100, 3, 8, None),
            batch_indices([5; 32], 2, 100, 3, 8)
        );
        // 103 rows in blocks of 4: 25 full blocks (rows 100..103 never used); B = 8 is two
        // distinct blocks per step, each 4 consecutive rows.
        let blocks = block_indices([5; 32], 2, 103, 3, 8, 4);
        let rows = round_rows([5; 32], 2, 103, 3, 8, Some(4));
        assert_eq!(rows, block_rows_of(&blocks, 4));
        for (step, r) in blocks.iter().zip(&rows) {
            assert_eq!(step.len(), 2);
            assert_ne!(step[0], step[1]);
            assert!(step.iter().all(|&k| k < 25));
            assert_eq!(r.len(), 8);
            assert_eq!(
                r[..4],
                [
                    step[0] * 4,
                    step[0] * 4 + 1,
                    step[0] * 4 + 2,
                    step[0] * 4 + 3
                ]
            );
        }
    }

    #[test]
    fn small_tables_cap_the_batch() {
        let a = batch_indices([1; 32], 0, 3, 2, 16);
        assert!(a.iter().all(|b| b.len() == 3));
        assert!(batch_indices([1; 32], 0, 0, 2, 16).is_empty());
    }
}

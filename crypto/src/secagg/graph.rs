//! The SecAgg+ neighbour graph: a Harary graph (ring lattice) laid over a permutation
//! of the participants drawn from the round's public graph seed.
//!
//! Participants are sorted, shuffled with ChaCha20 keyed by SHA-256 of the seed
//! (Fisher–Yates with rejection sampling, so the permutation is fully specified here
//! and identical on every machine), placed on a cycle, and each is joined to the
//! `h = ⌈k/2⌉` nearest on either side: every node has degree exactly 2h. When
//! 2h ≥ n − 1 the graph is complete, which is the original SecAgg of Bonawitz et al.
//! Removing a set R of nodes disconnects the remaining ring lattice only if R covers
//! two disjoint runs of h consecutive positions, which is what [`super::params`] bounds.

use std::collections::{BTreeMap, BTreeSet};

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use sha2::{Digest, Sha256};

use crate::ParticipantId;

/// The neighbour graph of one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighbourGraph {
    neighbours: BTreeMap<ParticipantId, BTreeSet<ParticipantId>>,
    degree: usize,
}

/// A stream of uniform integers from ChaCha20 keyed by the graph seed.
struct SeededUniform(ChaCha20);

impl SeededUniform {
    fn new(seed: &[u8; 32]) -> Self {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"cairn/secagg/v1/graph")
            .chain_update(seed)
            .finalize()
            .into();
        Self(ChaCha20::new(&key.into(), &[0u8; 12].into()))
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.apply_keystream(&mut b);
        u64::from_le_bytes(b)
    }

    /// Uniform in `0..bound` (bound > 0), by rejection to avoid modulo bias.
    fn below(&mut self, bound: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % bound;
            }
        }
    }
}

impl NeighbourGraph {
    /// Builds the graph for `participants` (any order; duplicates are ignored) with
    /// requested degree `k`; the actual degree is `min(2⌈k/2⌉, n − 1)`.
    pub fn new(participants: &[ParticipantId], k: usize, seed: &[u8; 32]) -> Self {
        let mut order: Vec<ParticipantId> = participants
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let n = order.len();
        let mut rng = SeededUniform::new(seed);
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let half = k.div_ceil(2);
        let complete = n == 0 || 2 * half >= n - 1;
        let degree = if complete {
            n.saturating_sub(1)
        } else {
            2 * half
        };
        let mut neighbours: BTreeMap<ParticipantId, BTreeSet<ParticipantId>> = BTreeMap::new();
        for (pos, &id) in order.iter().enumerate() {
            let set = neighbours.entry(id).or_default();
            if complete {
                set.extend(order.iter().copied().filter(|&o| o != id));
            } else {
                for off in 1..=half {
                    set.insert(order[(pos + off) % n]);
                    set.insert(order[(pos + n - off) % n]);
                }
            }
        }
        Self { neighbours, degree }
    }

    /// Every node's degree (the same for all).
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.neighbours.len()
    }

    /// Whether the graph has no participants.
    pub fn is_empty(&self) -> bool {
        self.neighbours.is_empty()
    }

    /// Whether `id` is a participant.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.neighbours.contains_key(&id)
    }

    /// The neighbours of `id` (empty if `id` is not a participant).
    pub fn neighbours(&self, id: ParticipantId) -> impl Iterator<Item = ParticipantId> + '_ {
        self.neighbours.get(&id).into_iter().flatten().copied()
    }

    /// Whether `a` and `b` are neighbours.
    pub fn are_neighbours(&self, a: ParticipantId, b: ParticipantId) -> bool {
        self.neighbours.get(&a).is_some_and(|s| s.contains(&b))
    }

    /// All participants, sorted.
    pub fn participants(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.neighbours.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Vec<ParticipantId> {
        (0..n).map(ParticipantId).collect()
    }

    #[test]
    fn regular_symmetric_and_seed_dependent() {
        let g = NeighbourGraph::new(&ids(50), 8, &[1; 32]);
        assert_eq!(g.degree(), 8);
        for a in g.participants() {
            assert_eq!(g.neighbours(a).count(), 8);
            assert!(!g.are_neighbours(a, a));
            for b in g.neighbours(a) {
                assert!(g.are_neighbours(b, a));
            }
        }
        assert_eq!(g, NeighbourGraph::new(&ids(50), 8, &[1; 32]));
        assert_ne!(g, NeighbourGraph::new(&ids(50), 8, &[2; 32]));
    }

    #[test]
    fn odd_k_rounds_up_and_large_k_is_complete() {
        assert_eq!(NeighbourGraph::new(&ids(20), 5, &[0; 32]).degree(), 6);
        let full = NeighbourGraph::new(&ids(10), 9, &[0; 32]);
        assert_eq!(full.degree(), 9);
        assert!(full.participants().all(|a| full.neighbours(a).count() == 9));
        assert_eq!(NeighbourGraph::new(&ids(9), 8, &[0; 32]).degree(), 8);
    }
}

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
//!
//! Only the permutation is stored, with each participant's position on the cycle: O(n)
//! memory, built in O(n log n), and every query answered from positions (two nodes are
//! neighbours when their circular distance is at most h), so a round of n participants
//! never costs O(n·k) per graph, nor O(n²·k) when each of n holders builds its own.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use sha2::{Digest, Sha256};

use crate::ParticipantId;

/// The neighbour graph of one round.
///
/// Equality is that of the graphs (same participants, same edges), not of the stored
/// permutations: a rotated or mirrored cycle is the same graph.
#[derive(Clone, Debug)]
pub struct NeighbourGraph {
    /// The participants in cycle order (the seeded permutation of the sorted ids).
    order: Vec<ParticipantId>,
    /// The participants, sorted and distinct.
    sorted: Vec<ParticipantId>,
    /// `position[i]`: where `sorted[i]` sits in `order`.
    position: Vec<usize>,
    /// h = ⌈k/2⌉: how far on either side of a node its neighbours reach.
    half: usize,
    /// Whether every pair is joined (2h ≥ n − 1).
    complete: bool,
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
        let mut sorted = participants.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut order = sorted.clone();
        let n = order.len();
        let mut rng = SeededUniform::new(seed);
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let mut position = vec![0; n];
        for (pos, id) in order.iter().enumerate() {
            // Every id of `order` is in `sorted`: it is a permutation of it.
            if let Ok(i) = sorted.binary_search(id) {
                position[i] = pos;
            }
        }
        let half = k.div_ceil(2);
        let complete = n == 0 || 2 * half >= n - 1;
        let degree = if complete {
            n.saturating_sub(1)
        } else {
            2 * half
        };
        Self {
            order,
            sorted,
            position,
            half,
            complete,
            degree,
        }
    }

    /// Every node's degree (the same for all).
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether the graph has no participants.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Where `id` sits on the cycle, if it is a participant.
    fn position(&self, id: ParticipantId) -> Option<usize> {
        self.sorted
            .binary_search(&id)
            .ok()
            .map(|i| self.position[i])
    }

    /// Whether `id` is a participant.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.sorted.binary_search(&id).is_ok()
    }

    /// The neighbours of `id`, sorted (empty if `id` is not a participant). O(k log k)
    /// on a sparse graph; O(n) on a complete one, whose every node has n − 1 neighbours.
    pub fn neighbours(&self, id: ParticipantId) -> impl Iterator<Item = ParticipantId> + '_ {
        let pos = self.position(id);
        let ring: Vec<ParticipantId> = match pos {
            Some(p) if !self.complete => {
                let n = self.order.len();
                let mut v: Vec<ParticipantId> = (1..=self.half)
                    .flat_map(|off| [self.order[(p + off) % n], self.order[(p + n - off) % n]])
                    .collect();
                v.sort_unstable();
                v
            }
            _ => Vec::new(),
        };
        let all = if self.complete && pos.is_some() {
            self.sorted.as_slice()
        } else {
            &[]
        };
        ring.into_iter()
            .chain(all.iter().copied().filter(move |&o| o != id))
    }

    /// Whether `a` and `b` are neighbours: distinct participants whose positions on the
    /// cycle are at most h apart (any two, on a complete graph). O(log n).
    pub fn are_neighbours(&self, a: ParticipantId, b: ParticipantId) -> bool {
        if a == b {
            return false;
        }
        let (Some(pa), Some(pb)) = (self.position(a), self.position(b)) else {
            return false;
        };
        if self.complete {
            return true;
        }
        let d = pa.abs_diff(pb);
        d.min(self.order.len() - d) <= self.half
    }

    /// All participants, sorted.
    pub fn participants(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.sorted.iter().copied()
    }
}

impl PartialEq for NeighbourGraph {
    fn eq(&self, other: &Self) -> bool {
        self.degree == other.degree
            && self.sorted == other.sorted
            && (self.complete && other.complete
                || self
                    .participants()
                    .all(|id| self.neighbours(id).eq(other.neighbours(id))))
    }
}

impl Eq for NeighbourGraph {}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

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

    /// The construction this module used before it stored only the permutation: every
    /// node's neighbour set built explicitly, O(n·k). The graph must answer exactly as it.
    fn brute_force(
        participants: &[ParticipantId],
        k: usize,
        seed: &[u8; 32],
    ) -> (BTreeMap<ParticipantId, BTreeSet<ParticipantId>>, usize) {
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
        (neighbours, degree)
    }

    fn assert_same_as_brute_force(participants: &[ParticipantId], k: usize, seed: &[u8; 32]) {
        let g = NeighbourGraph::new(participants, k, seed);
        let (want, degree) = brute_force(participants, k, seed);
        let ctx = format!("n = {}, k = {k}, seed {}", participants.len(), seed[0]);
        assert_eq!(g.degree(), degree, "{ctx}");
        assert_eq!(g.len(), want.len(), "{ctx}");
        assert_eq!(g.is_empty(), want.is_empty(), "{ctx}");
        assert!(g.participants().eq(want.keys().copied()), "{ctx}");
        for (&a, set) in &want {
            assert!(g.contains(a), "{ctx}");
            // Same neighbours, in the same (sorted) order.
            assert!(g.neighbours(a).eq(set.iter().copied()), "{ctx}: {a}");
            for &b in want.keys() {
                assert_eq!(g.are_neighbours(a, b), set.contains(&b), "{ctx}: {a}, {b}");
            }
        }
        let outsider = ParticipantId(u32::MAX);
        assert!(!g.contains(outsider));
        assert_eq!(g.neighbours(outsider).count(), 0);
        assert!(want
            .keys()
            .all(|&a| !g.are_neighbours(a, outsider) && !g.are_neighbours(outsider, a)));
    }

    #[test]
    fn identical_to_the_explicit_construction() {
        for n in [0u32, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 17, 40, 101] {
            for k in [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 16, 39, 40, 200] {
                for seed in [[0u8; 32], [1; 32], [0xa7; 32]] {
                    assert_same_as_brute_force(&ids(n), k, &seed);
                }
            }
        }
        // Sparse, unordered ids with duplicates.
        let odd: Vec<ParticipantId> = (0..300u32)
            .map(|i| ParticipantId(i.wrapping_mul(2_654_435_761) % 10_007))
            .chain([ParticipantId(5), ParticipantId(5)])
            .collect();
        for k in [2, 8, 36, 126] {
            assert_same_as_brute_force(&odd, k, &[9; 32]);
        }
    }

    /// The permutation is part of the protocol (every holder must draw the same graph):
    /// pinned here so that a change to it cannot pass unnoticed.
    #[test]
    fn known_answer() {
        let g = NeighbourGraph::new(&ids(20), 4, &[7; 32]);
        let got: Vec<u32> = g.neighbours(ParticipantId(0)).map(|p| p.0).collect();
        assert_eq!(got, KNOWN_NEIGHBOURS_OF_0);
    }

    const KNOWN_NEIGHBOURS_OF_0: [u32; 4] = [3, 10, 13, 15];

    #[test]
    fn equality_is_of_the_graph() {
        let g = NeighbourGraph::new(&ids(30), 6, &[3; 32]);
        // The same edges laid over the mirrored cycle.
        let mut mirrored = g.clone();
        mirrored.order.reverse();
        for (i, id) in mirrored.sorted.iter().enumerate() {
            mirrored.position[i] = 29 - g.position[i];
            assert_eq!(mirrored.order[mirrored.position[i]], *id);
        }
        assert_eq!(g, mirrored);
        assert_ne!(g, NeighbourGraph::new(&ids(30), 8, &[3; 32]));
        assert_ne!(g, NeighbourGraph::new(&ids(31), 6, &[3; 32]));
        assert_eq!(
            NeighbourGraph::new(&ids(9), 8, &[1; 32]),
            NeighbourGraph::new(&ids(9), 8, &[2; 32])
        );
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

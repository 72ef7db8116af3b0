//! The Poseidon Merkle tree a data holder commits its rows with.
//!
//! A leaf is [`leaf_hash`] of one row's fixed-point values (features, then the label),
//! hashed with [`crate::poseidon::hash_vec`] so rows wider than one Poseidon call are
//! chunked. The tree is 4-ary: a node is circomlib's `Poseidon(c0, c1, c2, c3)` of its four
//! children (in the circuit a level costs 304 constraints and covers two index bits, where a
//! binary level costs 241 for one). `depth` counts index bits, so a tree holds `2^depth` rows
//! and has `depth / 2` levels; it must be even. Unused leaves are zero. The root is what the
//! holder publishes at enrolment.

pub mod constraints;

use ark_bn254::Fr;
use ark_ff::Zero;

use crate::poseidon;

/// Deepest tree accepted (2^32 leaves; row indices are `u32`): the one place of this limit
/// ([`crate::training::shape_problems`] holds a job's tree depth to it).
pub const MAX_DEPTH: u32 = 32;

/// Why a tree cannot be built or a path taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// More rows than `2^depth`.
    #[error("{rows} rows do not fit a tree of depth {depth}")]
    TooManyRows {
        /// Rows given.
        rows: usize,
        /// Depth of the tree.
        depth: u32,
    },
    /// A depth over [`MAX_DEPTH`].
    #[error("tree depth {0} exceeds {MAX_DEPTH}")]
    TooDeep(u32),
    /// An odd depth (the tree is 4-ary).
    #[error("tree depth {0} is odd; the 4-ary tree needs an even number of index bits")]
    OddDepth(u32),
    /// A leaf index past the end of the tree.
    #[error("leaf index {index} outside a tree of depth {depth}")]
    IndexOutOfRange {
        /// Index asked for.
        index: u64,
        /// Depth of the tree.
        depth: u32,
    },
}

/// The smallest even depth (at least 2) whose tree holds `n_rows` rows.
pub fn depth_for(n_rows: usize) -> u32 {
    let mut depth = 2;
    while depth < MAX_DEPTH && (1u64 << depth) < n_rows as u64 {
        depth += 2;
    }
    depth
}

/// The smallest tree depth that holds a holder's `n_rows` rows in leaves of `block_rows`
/// rows each: one leaf per full block (the rows after the last full block are in no leaf),
/// so [`depth_for`] of `n_rows / block_rows` leaves.
pub fn depth_for_rows(n_rows: u64, block_rows: u32) -> u32 {
    let leaves = n_rows / u64::from(block_rows.max(1));
    depth_for(usize::try_from(leaves).unwrap_or(usize::MAX))
}

/// The leaf of one row (its values in fixed point, label last).
pub fn leaf_hash(row: &[i64]) -> Fr {
    poseidon::hash_ints(row)
}

/// A full Poseidon Merkle tree (every level kept, for paths).
#[derive(Clone, Debug)]
pub struct MerkleTree {
    depth: u32,
    /// `levels[0]` are the leaves, `levels[depth]` is the root.
    levels: Vec<Vec<Fr>>,
}

/// Arity of the tree.
pub const ARITY: usize = 4;

/// The siblings from a leaf up to the root (bottom first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerklePath {
    /// Per level, the three other children of the node, in order.
    pub siblings: Vec<[Fr; 3]>,
}

fn node(c: &[Fr]) -> Fr {
    // Four inputs is always a valid width.
    poseidon::hash(c).unwrap_or_default()
}

/// The four children of a node whose child at `pos` is `cur`.
pub(crate) fn children(cur: Fr, pos: usize, sibs: &[Fr; 3]) -> [Fr; 4] {
    let mut out = [Fr::zero(); 4];
    let mut s = sibs.iter();
    for (k, slot) in out.iter_mut().enumerate() {
        *slot = if k == pos {
            cur
        } else {
            s.next().copied().unwrap_or_default()
        };
    }
    out
}

impl MerkleTree {
    /// Builds the tree over the leaves of `rows`, padded with zero leaves.
    pub fn from_rows<R: AsRef<[i64]>>(rows: &[R], depth: u32) -> Result<Self, MerkleError> {
        let leaves: Vec<Fr> = rows.iter().map(|r| leaf_hash(r.as_ref())).collect();
        Self::from_leaves(leaves, depth)
    }

    /// Builds the tree over given leaf hashes.
    pub fn from_leaves(mut leaves: Vec<Fr>, depth: u32) -> Result<Self, MerkleError> {
        if depth > MAX_DEPTH {
            return Err(MerkleError::TooDeep(depth));
        }
        if depth % 2 == 1 {
            return Err(MerkleError::OddDepth(depth));
        }
        if leaves.len() as u64 > 1u64 << depth {
            return Err(MerkleError::TooManyRows {
                rows: leaves.len(),
                depth,
            });
        }
        // Hash only the occupied part; an all-empty subtree has a precomputed root.
        let mut empty = Fr::zero();
        let n_levels = (depth / 2) as usize;
        let mut levels = Vec::with_capacity(n_levels + 1);
        for _ in 0..n_levels {
            while !leaves.len().is_multiple_of(ARITY) {
                leaves.push(empty);
            }
            let next: Vec<Fr> = leaves.chunks(ARITY).map(node).collect();
            levels.push(std::mem::replace(&mut leaves, next));
            empty = node(&[empty; ARITY]);
        }
        if leaves.is_empty() {
            leaves.push(empty);
        }
        levels.push(leaves);
        Ok(Self { depth, levels })
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.levels[self.levels.len() - 1][0]
    }

    /// Depth of the tree.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The path of leaf `index`.
    pub fn path(&self, index: u64) -> Result<MerklePath, MerkleError> {
        if index >= 1u64 << self.depth {
            return Err(MerkleError::IndexOutOfRange {
                index,
                depth: self.depth,
            });
        }
        let mut empty = Fr::zero();
        let mut siblings = Vec::with_capacity(self.levels.len() - 1);
        for (level, nodes) in self.levels[..self.levels.len() - 1].iter().enumerate() {
            let at = (index >> (2 * level)) as usize;
            let (first, pos) = (at - at % ARITY, at % ARITY);
            let mut sib = [empty; 3];
            let others = (0..ARITY)
                .filter(|&k| k != pos)
                .map(|k| nodes.get(first + k).copied().unwrap_or(empty));
            for (slot, v) in sib.iter_mut().zip(others) {
                *slot = v;
            }
            siblings.push(sib);
            empty = node(&[empty; ARITY]);
        }
        Ok(MerklePath { siblings })
    }
}

impl MerklePath {
    /// The root this path leads to from `leaf` at `index`.
    pub fn root_from(&self, leaf: Fr, index: u64) -> Fr {
        self.siblings
            .iter()
            .enumerate()
            .fold(leaf, |cur, (level, sib)| {
                let pos = ((index >> (2 * level)) & 3) as usize;
                node(&children(cur, pos, sib))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Vec<i64>> {
        (0..n).map(|i| vec![i as i64, -(i as i64), 7]).collect()
    }

    #[test]
    fn paths_lead_to_the_root() {
        let rows = rows(5);
        let tree = MerkleTree::from_rows(&rows, 4).unwrap();
        for (i, r) in rows.iter().enumerate() {
            let p = tree.path(i as u64).unwrap();
            assert_eq!(p.root_from(leaf_hash(r), i as u64), tree.root());
            assert_ne!(p.root_from(leaf_hash(r), (i as u64 + 1) % 16), tree.root());
        }
        // An empty slot's path proves the zero leaf.
        assert_eq!(
            tree.path(15).unwrap().root_from(Fr::zero(), 15),
            tree.root()
        );
    }

    #[test]
    fn padding_equals_explicit_zero_leaves() {
        let mut leaves: Vec<Fr> = rows(3).iter().map(|r| leaf_hash(r)).collect();
        let a = MerkleTree::from_leaves(leaves.clone(), 4).unwrap().root();
        leaves.resize(16, Fr::zero());
        assert_eq!(
            a,
            MerkleTree::from_leaves(leaves.clone(), 4).unwrap().root()
        );
        // Hand-computed two-level root.
        let l1: Vec<Fr> = leaves.chunks(4).map(node).collect();
        assert_eq!(a, node(&l1));
    }

    #[test]
    fn depth_for_fits_the_rows() {
        assert_eq!(depth_for(0), 2);
        assert_eq!(depth_for(4), 2);
        assert_eq!(depth_for(5), 4);
        assert_eq!(depth_for(10_000), 14);
        assert_eq!(depth_for(16_384), 14);
        assert_eq!(depth_for(16_385), 16);
        // Leaves are blocks: 2 400 rows in blocks of 8 are 300 leaves (depth 10, 1 024
        // leaves); 33 rows in blocks of 8 are 4 full blocks (depth 2).
        assert_eq!(depth_for_rows(2400, 8), 10);
        assert_eq!(depth_for_rows(2048, 8), 8);
        assert_eq!(depth_for_rows(2056, 8), 10);
        assert_eq!(depth_for_rows(33, 8), 2);
        assert_eq!(depth_for_rows(40, 8), 4);
        assert_eq!(depth_for_rows(40, 0), depth_for(40));
        for (rows, block) in [(2400u64, 8u32), (2056, 8), (1000, 2), (5, 1)] {
            let d = depth_for_rows(rows, block);
            let leaves = (rows / u64::from(block)) as usize;
            assert!(
                leaves as u64 <= 1 << d,
                "{rows}/{block}: depth {d} holds them"
            );
            assert!(
                d == 2 || leaves as u64 > 1 << (d - 2),
                "{rows}/{block}: depth {} would too",
                d - 2
            );
        }
    }

    #[test]
    fn rejects_overfull_and_bad_index() {
        assert!(matches!(
            MerkleTree::from_rows(&rows(17), 4),
            Err(MerkleError::TooManyRows { .. })
        ));
        let t = MerkleTree::from_rows(&rows(2), 4).unwrap();
        assert!(t.path(16).is_err());
        assert!(MerkleTree::from_rows(&rows(1), 40).is_err());
        assert_eq!(
            MerkleTree::from_rows(&rows(1), 3).err(),
            Some(MerkleError::OddDepth(3))
        );
    }
}

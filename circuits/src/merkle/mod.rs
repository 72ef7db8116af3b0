//! The Poseidon Merkle tree a data holder commits its rows with.
//!
//! A leaf is [`leaf_hash`] of one row's fixed-point values (features, then the label),
//! hashed with [`crate::poseidon::hash_vec`] so rows wider than one Poseidon call are
//! chunked. Unused leaves of the `2^depth` are zero; a node is `Poseidon(left, right)`.
//! The root is what the holder publishes at enrolment.

pub mod constraints;

use ark_bn254::Fr;
use ark_ff::Zero;

use crate::poseidon;

/// Deepest tree accepted (2^32 rows).
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
    /// A leaf index past the end of the tree.
    #[error("leaf index {index} outside a tree of depth {depth}")]
    IndexOutOfRange {
        /// Index asked for.
        index: u64,
        /// Depth of the tree.
        depth: u32,
    },
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

/// The siblings from a leaf up to the root (bottom first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerklePath {
    /// One sibling per level.
    pub siblings: Vec<Fr>,
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
        if leaves.len() as u64 > 1u64 << depth {
            return Err(MerkleError::TooManyRows { rows: leaves.len(), depth });
        }
        // Hash only the occupied part; an all-empty subtree has a precomputed root.
        let mut empty = Fr::zero();
        let mut levels = Vec::with_capacity(depth as usize + 1);
        for _ in 0..depth {
            if leaves.len() % 2 == 1 {
                leaves.push(empty);
            }
            let next: Vec<Fr> = leaves.chunks(2).map(|c| poseidon::hash2(c[0], c[1])).collect();
            levels.push(std::mem::replace(&mut leaves, next));
            empty = poseidon::hash2(empty, empty);
        }
        if leaves.is_empty() {
            leaves.push(empty);
        }
        levels.push(leaves);
        Ok(Self { depth, levels })
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.levels[self.depth as usize][0]
    }

    /// Depth of the tree.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The path of leaf `index`.
    pub fn path(&self, index: u64) -> Result<MerklePath, MerkleError> {
        if index >= 1u64 << self.depth {
            return Err(MerkleError::IndexOutOfRange { index, depth: self.depth });
        }
        let mut empty = Fr::zero();
        let mut siblings = Vec::with_capacity(self.depth as usize);
        for level in 0..self.depth as usize {
            let sib = ((index >> level) ^ 1) as usize;
            siblings.push(self.levels[level].get(sib).copied().unwrap_or(empty));
            empty = poseidon::hash2(empty, empty);
        }
        Ok(MerklePath { siblings })
    }
}

impl MerklePath {
    /// The root this path leads to from `leaf` at `index`.
    pub fn root_from(&self, leaf: Fr, index: u64) -> Fr {
        self.siblings.iter().enumerate().fold(leaf, |cur, (level, &sib)| {
            if (index >> level) & 1 == 1 {
                poseidon::hash2(sib, cur)
            } else {
                poseidon::hash2(cur, sib)
            }
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
        let tree = MerkleTree::from_rows(&rows, 3).unwrap();
        for (i, r) in rows.iter().enumerate() {
            let p = tree.path(i as u64).unwrap();
            assert_eq!(p.root_from(leaf_hash(r), i as u64), tree.root());
            assert_ne!(p.root_from(leaf_hash(r), (i as u64 + 1) % 8), tree.root());
        }
        // An empty slot's path proves the zero leaf.
        assert_eq!(tree.path(7).unwrap().root_from(Fr::zero(), 7), tree.root());
    }

    #[test]
    fn padding_equals_explicit_zero_leaves() {
        let mut leaves: Vec<Fr> = rows(3).iter().map(|r| leaf_hash(r)).collect();
        let a = MerkleTree::from_leaves(leaves.clone(), 4).unwrap().root();
        leaves.resize(16, Fr::zero());
        assert_eq!(a, MerkleTree::from_leaves(leaves, 4).unwrap().root());
    }

    #[test]
    fn rejects_overfull_and_bad_index() {
        assert!(matches!(MerkleTree::from_rows(&rows(9), 3), Err(MerkleError::TooManyRows { .. })));
        let t = MerkleTree::from_rows(&rows(2), 3).unwrap();
        assert!(t.path(8).is_err());
        assert!(MerkleTree::from_rows(&rows(1), 40).is_err());
    }
}

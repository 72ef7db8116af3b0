//! Merkle path verification in the circuit: from a leaf, its index bits and the siblings,
//! recompute the root. Each level costs one select and one `Poseidon(2)` (240).

use ark_bn254::Fr;
use ark_r1cs_std::{boolean::Boolean, fields::fp::FpVar, select::CondSelectGadget};
use ark_relations::gr1cs::SynthesisError;

use crate::poseidon::constraints::hash;

/// The root reached from `leaf` at the index whose little-endian bits are `index_bits`
/// (one per level) with `siblings` bottom first.
pub fn root_from_path(
    leaf: &FpVar<Fr>,
    index_bits: &[Boolean<Fr>],
    siblings: &[FpVar<Fr>],
) -> Result<FpVar<Fr>, SynthesisError> {
    if index_bits.len() != siblings.len() {
        return Err(SynthesisError::Unsatisfiable);
    }
    let mut cur = leaf.clone();
    for (bit, sib) in index_bits.iter().zip(siblings) {
        // bit = 1: we are the right child.
        let left = FpVar::conditionally_select(bit, sib, &cur)?;
        let right = &cur + sib - &left;
        cur = hash(&[left, right])?;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, MerkleTree};
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget};
    use ark_relations::gr1cs::ConstraintSystem;

    fn check(tree: &MerkleTree, leaf: Fr, index: u64, claimed: u64) -> (bool, usize) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let path = tree.path(index).unwrap();
        let leaf = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
        let bits: Vec<Boolean<Fr>> = (0..tree.depth())
            .map(|l| Boolean::new_witness(cs.clone(), || Ok(claimed >> l & 1 == 1)).unwrap())
            .collect();
        let sibs: Vec<FpVar<Fr>> =
            path.siblings.iter().map(|s| FpVar::new_witness(cs.clone(), || Ok(*s)).unwrap()).collect();
        let root = FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap();
        let got = root_from_path(&leaf, &bits, &sibs).unwrap();
        got.enforce_equal(&root).unwrap();
        (cs.is_satisfied().unwrap(), cs.num_constraints())
    }

    #[test]
    fn path_gadget_accepts_members_only() {
        let rows: Vec<Vec<i64>> = (0..6).map(|i| vec![i, 2 * i, -1]).collect();
        let tree = MerkleTree::from_rows(&rows, 3).unwrap();
        let (ok, n) = check(&tree, leaf_hash(&rows[4]), 4, 4);
        assert!(ok);
        // 3 index bits + 3·(1 select + 240) + 1 root equality
        assert_eq!(n, 3 + 3 * 241 + 1);
        assert!(!check(&tree, leaf_hash(&rows[4]), 4, 5).0, "wrong index");
        assert!(!check(&tree, leaf_hash(&[4, 8, 0]), 4, 4).0, "tampered row");
    }
}

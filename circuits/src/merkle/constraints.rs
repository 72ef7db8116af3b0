//! Merkle path verification in the circuit: from a leaf, its index bits and the siblings,
//! recompute the root of the 4-ary tree. A level places the current node among its three
//! siblings by the two index bits (7 constraints: the bits' product and six selections)
//! and hashes the four children with `Poseidon(4)` (297).

use ark_bn254::Fr;
use ark_r1cs_std::{boolean::Boolean, fields::fp::FpVar, fields::FieldVar};
use ark_relations::gr1cs::SynthesisError;

use crate::poseidon::constraints::hash;

/// The root reached from `leaf` at the index whose little-endian bits are `index_bits`
/// (two per level) with `siblings` (three per level, in order) bottom first.
pub fn root_from_path(
    leaf: &FpVar<Fr>,
    index_bits: &[Boolean<Fr>],
    siblings: &[[FpVar<Fr>; 3]],
) -> Result<FpVar<Fr>, SynthesisError> {
    if index_bits.len() != 2 * siblings.len() {
        return Err(SynthesisError::Unsatisfiable);
    }
    let mut cur = leaf.clone();
    for (bits, [s0, s1, s2]) in index_bits.chunks(2).zip(siblings) {
        let (b0, b1) = (FpVar::from(bits[0].clone()), FpVar::from(bits[1].clone()));
        // One-hot position indicators from the two bits.
        let e3 = FpVar::from(&bits[0] & &bits[1]);
        let e0 = FpVar::one() - &b0 - &b1 + &e3;
        let e1 = &b0 - &e3;
        let e2 = &b1 - &e3;
        let c0 = s0 + &e0 * (&cur - s0);
        let c1 = s1 + &e0 * (s0 - s1) + &e1 * (&cur - s1);
        let c2 = s1 + &e2 * (&cur - s1) + &e3 * (s2 - s1);
        let c3 = s2 + &e3 * (&cur - s2);
        cur = hash(&[c0, c1, c2, c3])?;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, MerkleTree};
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, GR1CSVar};
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn check(tree: &MerkleTree, leaf: Fr, index: u64, claimed: u64) -> (bool, usize) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let path = tree.path(index).unwrap();
        let leaf = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
        let bits: Vec<Boolean<Fr>> = (0..tree.depth())
            .map(|l| Boolean::new_witness(cs.clone(), || Ok(claimed >> l & 1 == 1)).unwrap())
            .collect();
        let sibs: Vec<[FpVar<Fr>; 3]> = path
            .siblings
            .iter()
            .map(|s| s.map(|v| FpVar::new_witness(cs.clone(), || Ok(v)).unwrap()))
            .collect();
        let root = FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap();
        let got = root_from_path(&leaf, &bits, &sibs).unwrap();
        got.enforce_equal(&root).unwrap();
        (cs.is_satisfied().unwrap(), cs.num_constraints())
    }

    #[test]
    fn path_gadget_accepts_members_only() {
        let rows: Vec<Vec<i64>> = (0..11).map(|i| vec![i, 2 * i, -1]).collect();
        let tree = MerkleTree::from_rows(&rows, 4).unwrap();
        for i in 0..16u64 {
            let leaf = rows
                .get(i as usize)
                .map_or(Fr::from(0u64), |r| leaf_hash(r));
            let (ok, n) = check(&tree, leaf, i, i);
            assert!(ok, "leaf {i}");
            // 4 index bits + 2 levels × (7 + Poseidon(4) 297) + 1 root equality
            assert_eq!(n, 4 + 2 * (7 + 297) + 1);
        }
        assert!(!check(&tree, leaf_hash(&rows[4]), 4, 5).0, "wrong index");
        assert!(
            !check(&tree, leaf_hash(&rows[4]), 4, 8).0,
            "wrong index, upper level"
        );
        assert!(!check(&tree, leaf_hash(&[4, 8, 0]), 4, 4).0, "tampered row");
    }

    #[test]
    fn gadget_root_equals_native_on_seeded_random_paths() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        // 50 random rows of 5 signed 32-bit values in a depth-6 tree (64 leaves, 14 empty).
        let rows: Vec<Vec<i64>> = (0..50)
            .map(|_| {
                (0..5)
                    .map(|_| rng.gen_range(-(1i64 << 31)..1i64 << 31))
                    .collect()
            })
            .collect();
        let tree = MerkleTree::from_rows(&rows, 6).unwrap();
        for _ in 0..8 {
            let index = rng.gen_range(0..64u64);
            let leaf = rows
                .get(index as usize)
                .map_or(Fr::from(0u64), |r| leaf_hash(r));
            let path = tree.path(index).unwrap();
            assert_eq!(path.root_from(leaf, index), tree.root());
            let cs = ConstraintSystem::<Fr>::new_ref();
            let leaf_v = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
            let bits: Vec<Boolean<Fr>> = (0..6)
                .map(|l| Boolean::new_witness(cs.clone(), || Ok(index >> l & 1 == 1)).unwrap())
                .collect();
            let sibs: Vec<[FpVar<Fr>; 3]> = path
                .siblings
                .iter()
                .map(|s| s.map(|v| FpVar::new_witness(cs.clone(), || Ok(v)).unwrap()))
                .collect();
            let before = cs.num_constraints();
            let root = root_from_path(&leaf_v, &bits, &sibs).unwrap();
            assert_eq!(root.value().unwrap(), tree.root(), "index {index}");
            assert!(cs.is_satisfied().unwrap());
            // 3 levels × (7 + Poseidon(4) 297); the 6 bits are booleans allocated above.
            assert_eq!(cs.num_constraints() - before, 3 * (7 + 297));
            // A random leaf at the same index reaches another root.
            let other = Fr::rand(&mut rng);
            assert_ne!(path.root_from(other, index), tree.root());
        }
        // Too few index bits for the path is refused at synthesis.
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf = FpVar::new_witness(cs.clone(), || Ok(Fr::from(1u64))).unwrap();
        let sibs = vec![[leaf.clone(), leaf.clone(), leaf.clone()]];
        assert!(root_from_path(&leaf, &[Boolean::TRUE], &sibs).is_err());
    }
}

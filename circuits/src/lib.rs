//! Groth16 circuits for cairn (BN254, arkworks 0.6).
//!
//! Each primitive has a native module and a `constraints` gadget beside it that computes the
//! same thing in R1CS (as `ark-crypto-primitives` does); tests pin native == in-circuit and
//! the constraint counts.
//!
//! - [`fixed`]: the signed fixed-point format, rescaling, dot products, ReLU, sigmoid.
//! - [`poseidon`]: circomlib-compatible Poseidon (native via `light-poseidon`, and the gadget).
//! - [`merkle`]: the Poseidon Merkle tree of a holder's rows, and the path gadget.
//! - [`pedersen`]: Pedersen vector commitments on Baby Jubjub, native and in-circuit.
//! - [`training`]: the proof of correct local training: statement, witness (native
//!   fixed-point replay), circuit, Groth16 keys and proofs.
//! - [`export`]: the verifying key and proofs for independent verifiers: snarkjs JSON and a
//!   Solidity verifier contract.
//!
//! # How the other crates use it
//!
//! - **Enrolment** (participant): `rounds::CommittedData::new(features, n_features, labels,
//!   &proof_spec)` quantises the rows, holds them to the job's row format ([`rows`]) and
//!   builds the tree of their blocks; publish `root()`.
//! - **Keys** (`cairn keygen`, per job shape): `training::proof::KeyStore::new(dir)
//!   .load_or_setup(&shape, &mut rng)`; publish `proof::vk_to_bytes(&shape, &vk)`.
//! - **Proving** (participant, on a blocking thread): `training::Witness::from_float_update(
//!   &shape, &tree, &rows, indices, model_fixed, FixedHyper::new(&hyper, tau)?, &update, rho)`
//!   with `indices = cairn_protocol::sampling::block_indices(..)` and
//!   `rho = pedersen::random_blinding(rng)`; then `prover.prove(&w, rng)` with a
//!   `training::prover::Prover` made once per job (`Prover::new(&shape, pk)`), and send
//!   `w.public.commitment` and `proof.to_bytes()` (128 bytes). `w.private.update` is the
//!   quantised x that gets masked. `rounds::prove_update` does all of it.
//! - **Verifying** (coordinator, auditor): `training::Public::new(&shape, root, &model_fixed,
//!   &indices, &hyper_fixed, commitment)`, then `training::proof::verify(&prepare(&vk), &public,
//!   &Proof::from_bytes(bytes)?)` on a blocking thread.
//! - **Aggregate check** (coordinator): `pedersen::sum(&commitments) ==
//!   pedersen::commit(&Generators::new(n), &sum_x, &sum_rho)?`.

// Tests unwrap freely: a panic there is a failing test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod encoding;
pub mod export;
pub mod fixed;
pub mod merkle;
pub mod pedersen;
pub mod poseidon;
pub mod rounds;
pub mod rows;
pub mod training;

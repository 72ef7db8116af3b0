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
//! - [`noise`]: noise a holder cannot skip: a Poseidon PRG of 64-bit uniforms from a committed
//!   seed and the Skellam inverse-CDF sampler, native and in-circuit (not wired in yet).
//! - [`training`]: the proof of correct local training: statement, witness (native
//!   fixed-point replay), circuit, Groth16 keys and proofs.
//! - [`export`]: the verifying key and proofs for independent verifiers: snarkjs JSON and a
//!   Solidity verifier contract.
//!
//! # How the other crates use it
//!
//! This crate knows no message, job or round type: `cairn-proofs` is the glue that turns a
//! round's public facts into a circuit shape and statement (and the proof, the checks and
//! the aggregate check the participant, the coordinator and the auditor run). Under it:
//!
//! - **Enrolment**: [`rows::RowFormat`] holds rows to the job's format and makes the leaves
//!   of [`merkle::MerkleTree`], whose root a holder publishes.
//! - **Keys** (`cairn keygen`, per job shape): `training::proof::KeyStore::new(dir)
//!   .load_or_setup(&shape, &mut rng)`; publish `proof::vk_to_bytes(&shape, &vk)`.
//! - **Proving** (on a blocking thread): `training::Witness::from_float_update(&shape,
//!   &tree, &rows, indices, model_fixed, FixedHyper::new(&hyper, tau)?, &update, rho)` with
//!   `indices = cairn_model::sampling::block_indices(..)` and
//!   `rho = pedersen::random_blinding(rng)`; then `prover.prove(&w, rng)` with a
//!   `training::prover::Prover` made once per job (`Prover::new(&shape, pk)`).
//!   `w.private.update` is the quantised x that gets masked.
//! - **Verifying**: `training::Public::new(..)`, then `training::proof::verify(&prepare(&vk),
//!   &public, &Proof::from_bytes(bytes)?)` on a blocking thread.
//! - **Aggregate check**: `pedersen::sum(&commitments) ==
//!   pedersen::commit(&Generators::new(n), &sum_x, &sum_rho)?`.

// Tests unwrap freely: a panic there is a failing test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod encoding;
pub mod export;
pub mod fixed;
pub mod merkle;
pub mod noise;
pub mod pedersen;
pub mod poseidon;
pub mod rows;
pub mod training;

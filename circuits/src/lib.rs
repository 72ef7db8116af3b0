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

// Tests unwrap freely: a panic there is a failing test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod fixed;
pub mod poseidon;
pub mod merkle;
pub mod pedersen;
pub mod training;

//! One description of SGD, two number systems: the training step in [`super::sgd`] is
//! written once against [`Arith`], and runs natively on integers (the replay that makes
//! the witness) and in the circuit on field variables. The twins cannot drift apart.

use ark_bn254::Fr;
use ark_r1cs_std::{boolean::Boolean, fields::fp::FpVar, fields::FieldVar};
use ark_relations::gr1cs::SynthesisError;

use crate::fixed::{self, constraints as fc, FixedError, SCALE};

/// The operations SGD needs on fixed-point numbers.
pub(crate) trait Arith {
    /// A value (unrescaled products included).
    type V: Clone;
    /// A rescaled, range-checked value.
    type S: Clone;
    /// A ReLU gate.
    type Bit: Clone;
    /// What a failed rescale reports.
    type Error;

    /// `a · b`.
    fn mul(&mut self, a: &Self::V, b: &Self::V) -> Self::V;
    /// `Σ a_i · b_i`.
    fn dot(&mut self, a: &[Self::V], b: &[Self::V]) -> Self::V;
    /// `a + b`.
    fn add(&self, a: &Self::V, b: &Self::V) -> Self::V;
    /// `a − b`.
    fn sub(&self, a: &Self::V, b: &Self::V) -> Self::V;
    /// `a · 2^FRAC_BITS`.
    fn upscale(&self, a: &Self::V) -> Self::V;
    /// The constant `c`.
    fn constant(&self, c: i128) -> Self::V;
    /// `floor(z / 2^shift)`, range-checked.
    fn rescale(&mut self, z: &Self::V, shift: u32) -> Result<Self::S, Self::Error>;
    /// The value of a rescaled number.
    fn value(&self, s: &Self::S) -> Self::V;
    /// Whether ReLU passes a rescaled number.
    fn active(&self, s: &Self::S) -> Self::Bit;
    /// `bit ? v : 0`.
    fn gate(&mut self, bit: &Self::Bit, v: &Self::V) -> Self::V;
    /// The fixed-point sigmoid.
    fn sigmoid(&mut self, s: &Self::S) -> Result<Self::V, Self::Error>;
}

/// Integers: the native replay.
pub(crate) struct Native;

impl Arith for Native {
    type V = i128;
    type S = i64;
    type Bit = bool;
    type Error = FixedError;

    fn mul(&mut self, a: &i128, b: &i128) -> i128 {
        a * b
    }
    fn dot(&mut self, a: &[i128], b: &[i128]) -> i128 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }
    fn add(&self, a: &i128, b: &i128) -> i128 {
        a + b
    }
    fn sub(&self, a: &i128, b: &i128) -> i128 {
        a - b
    }
    fn upscale(&self, a: &i128) -> i128 {
        a * i128::from(SCALE)
    }
    fn constant(&self, c: i128) -> i128 {
        c
    }
    fn rescale(&mut self, z: &i128, shift: u32) -> Result<i64, FixedError> {
        fixed::rescale(*z, shift)
    }
    fn value(&self, s: &i64) -> i128 {
        i128::from(*s)
    }
    fn active(&self, s: &i64) -> bool {
        fixed::relu_active(*s)
    }
    fn gate(&mut self, bit: &bool, v: &i128) -> i128 {
        if *bit {
            *v
        } else {
            0
        }
    }
    fn sigmoid(&mut self, s: &i64) -> Result<i128, FixedError> {
        Ok(fixed::sigmoid(*s).into())
    }
}

/// Field variables: the circuit.
pub(crate) struct InCircuit;

impl Arith for InCircuit {
    type V = FpVar<Fr>;
    type S = fc::SignedVar;
    type Bit = Boolean<Fr>;
    type Error = SynthesisError;

    fn mul(&mut self, a: &FpVar<Fr>, b: &FpVar<Fr>) -> FpVar<Fr> {
        a * b
    }
    fn dot(&mut self, a: &[FpVar<Fr>], b: &[FpVar<Fr>]) -> FpVar<Fr> {
        fc::dot(a, b)
    }
    fn add(&self, a: &FpVar<Fr>, b: &FpVar<Fr>) -> FpVar<Fr> {
        a + b
    }
    fn sub(&self, a: &FpVar<Fr>, b: &FpVar<Fr>) -> FpVar<Fr> {
        a - b
    }
    fn upscale(&self, a: &FpVar<Fr>) -> FpVar<Fr> {
        a * Fr::from(SCALE as u64)
    }
    fn constant(&self, c: i128) -> FpVar<Fr> {
        FpVar::constant(fixed::to_field(c))
    }
    fn rescale(&mut self, z: &FpVar<Fr>, shift: u32) -> Result<fc::SignedVar, SynthesisError> {
        fc::rescale(z, shift)
    }
    fn value(&self, s: &fc::SignedVar) -> FpVar<Fr> {
        s.value.clone()
    }
    fn active(&self, s: &fc::SignedVar) -> Boolean<Fr> {
        s.is_non_negative()
    }
    fn gate(&mut self, bit: &Boolean<Fr>, v: &FpVar<Fr>) -> FpVar<Fr> {
        match bit {
            Boolean::Constant(true) => v.clone(),
            Boolean::Constant(false) => FpVar::zero(),
            _ => v * FpVar::from(bit.clone()),
        }
    }
    fn sigmoid(&mut self, s: &fc::SignedVar) -> Result<FpVar<Fr>, SynthesisError> {
        fc::sigmoid(s)
    }
}

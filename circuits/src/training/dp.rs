//! Distributed DP in the proven update (#16 item 3): the holder's update x (fixed point
//! 2^16, n parameters, padded with zeros to d_pad = the next power of two) is rotated with
//! the round's public signs D and the unnormalised Walsh–Hadamard matrix H (u = H·D·x,
//! integers), rounded to the grid (`y_j` within one step of `u_j / G`, ‖y‖² ≤ ⌊Δ2²⌋), and
//! noised with one Skellam draw per coordinate from the holder's committed seed and the
//! round ([`crate::noise`]); the commitment C is to z = y + e, which is what the holder
//! masks.

use ark_bn254::Fr;

/// The public inputs a noise shape adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoisePublic {
    /// [`crate::noise::seed_commitment`] of the holder's noise seed.
    pub seed_commitment: Fr,
    /// The round (the PRG's input).
    pub round: u32,
    /// [`signs_hash`] of the round's rotation signs.
    pub signs_hash: Fr,
}

/// The witness a noise shape adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoisePrivate {
    /// The noise seed.
    pub seed: Fr,
    /// The rotation's signs (`true`: −1), d_pad of them.
    pub negative: Vec<bool>,
    /// y: the rotated update rounded to the grid, d_pad values.
    pub rounded: Vec<i64>,
    /// z = y + e: what is committed and masked, d_pad values.
    pub noisy: Vec<i64>,
}

impl NoisePrivate {
    /// An all-zero witness of `shape`'s sizes (key generation).
    pub fn dummy(shape: &super::Shape) -> Self {
        let d = shape.model.param_count().next_power_of_two();
        Self {
            seed: Fr::from(0u64),
            negative: vec![false; d],
            rounded: vec![0; d],
            noisy: vec![0; d],
        }
    }
}

/// What a holder brings to noise its witness: its seed, the round and the round's signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseInput {
    /// The secret noise seed (its commitment was published before round 1).
    pub seed: Fr,
    /// The round.
    pub round: u32,
    /// The round's rotation signs (`true`: −1), d_pad of them.
    pub negative: Vec<bool>,
}

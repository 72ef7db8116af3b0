//! Differential privacy for cairn: the pieces of the distributed Skellam mechanism and a Rényi-DP
//! accountant.
//!
//! # Design
//!
//! **Mechanism.** The distributed Skellam mechanism (Agarwal, Kairouz, Liu 2021, "The Skellam
//! Mechanism for Differentially Private Federated Learning", NeurIPS), at holder level. In a round
//! each sampled holder
//!
//! 1. clips its flattened model update to L2 norm C;
//! 2. rotates it with the round's randomized Walsh–Hadamard transform ([`rotation`]), padding the
//!    dimension d to a power of two — the rotation preserves the norm and flattens the vector so
//!    that the sum fits a small ring;
//! 3. divides by the granularity γ and rounds to integers with conditional stochastic rounding
//!    ([`rounding`]), which bounds the rounded vector's L2 norm by Δ2 (and its L1 norm by Δ1);
//! 4. adds integer Skellam noise of variance V / t_min to every coordinate, where
//!    V = (z C / γ)² for the noise multiplier z and t_min is the fewest survivors the round
//!    accepts ([`params`]);
//! 5. masks the result for secure aggregation in Z_2^32.
//!
//! Skellam is closed under summation, so the sum over any n ≥ t_min survivors carries Skellam noise
//! of variance n V / t_min ≥ V: dropouts never leave less noise than promised. The coordinator
//! unmasks the sum, lifts it to signed integers, multiplies by γ and inverts the rotation.
//! Rounds either use every holder (q = 1) or a Poisson sample of rate q.
//!
//! **Guarantee.** The released sums of all rounds are (ε, δ)-differentially private with respect to
//! adding or removing one holder's entire data (holder-level, "user-level" DP), provided that in
//! every round at least t_min holders that followed the protocol added their noise shares (a holder
//! that skips its share is covered only while t_min honest ones remain), and that the sampling is
//! done as accounted. Anything computed from the sums alone — the model, metrics — inherits it.
//!
//! **Accountant.** Rényi DP ([`rdp`]) over the default orders of Google's `dp_accounting`: the
//! multidimensional Skellam RDP bound of the paper, amplified by Poisson subsampling with
//! Zhu and Wang's general upper bound (2019, Theorem 6), composed additively over rounds and
//! converted to (ε, δ) with `dp_accounting`'s improved conversion (Canonne, Kamath, Steinke 2020;
//! Asoodeh et al. 2020). The subsampled Gaussian (Mironov, Talwar, Zhang 2019) is there too, as the
//! reference the tests pin against `dp_accounting`'s numbers, and the Skellam bound tends to it as
//! the noise grows. [`calibrate`] finds the smallest noise multiplier for a target (ε, δ).
//!
//! **Sampler.** [`skellam`] draws step 4's noise by inverse CDF from a public table of 64-bit
//! thresholds that every machine builds bit for bit from the holder variance (double-double
//! arithmetic, IEEE operations only): one 64-bit uniform per coordinate, so that a circuit can
//! prove the draw with one lookup and two comparisons. Its total-variation distance η to the exact
//! Skellam is bounded and adds (1 + e^ε) · draws · η to δ.

pub mod calibrate;
pub mod params;
pub mod rdp;
pub mod rotation;
pub mod rounding;
pub mod skellam;
mod special;

pub use calibrate::{noise_multiplier_for, CalibrateError, NoiseModel, Target};
pub use params::{ParamsError, SkellamParams, SECAGG_RING_BITS};
pub use rdp::{Mechanism, RdpAccountant, RdpError};
pub use rotation::{Rotation, RotationError};
pub use rounding::{conditional_round, RoundingError, Sensitivity};
pub use skellam::{noise, SkellamError, SkellamPmf, SkellamTable};

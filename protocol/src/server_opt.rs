//! Server optimisers: how the coordinator turns a round's mean update into the next global
//! model.
//!
//! The pseudo-gradient of a round is Δ = the (example-weighted) mean of the survivors'
//! deltas `w_k − w`. [`ServerOptimizer`] chooses the step, after Reddi et al., *Adaptive
//! Federated Optimization* (ICLR 2021), Algorithm 2:
//!
//! - **FedAvg** (with a server rate η): `x ← x + η·Δ`; η = 1 is plain FedAvg.
//! - **FedAdam**: `m ← β1·m + (1−β1)·Δ`, `v ← β2·v + (1−β2)·Δ²`, `x ← x + η·m / (√v + τ)`.
//! - **FedYogi**: as FedAdam but `v ← v − (1−β2)·Δ²·sign(v − Δ²)` (with sign(0) = 0), so
//!   `v` moves towards Δ² by an additive step and grows slowly.
//!
//! All operations are per coordinate. As in the paper, there is no bias correction, `m`
//! starts at 0 and `v` at τ² (the paper's `v₋₁ ≥ τ²`). The defaults are the paper's
//! recommended decay rates β1 = 0.9, β2 = 0.99 and adaptivity τ = 10⁻³, with η = 10⁻²
//! (the server rate most of its FedAdam/FedYogi tasks tuned to).
//!
//! [`ServerOptState`] holds the optimiser's moments between rounds. It is plain data
//! (serde), so a coordinator that persists it after each round and restores it after a
//! restart continues with bit-identical parameters.

use serde::{Deserialize, Serialize};

/// Default server learning rate η of the adaptive optimisers.
pub const DEFAULT_ADAPTIVE_LR: f32 = 1e-2;
/// Default first-moment decay β1.
pub const DEFAULT_BETA1: f32 = 0.9;
/// Default second-moment decay β2.
pub const DEFAULT_BETA2: f32 = 0.99;
/// Default adaptivity τ.
pub const DEFAULT_TAU: f32 = 1e-3;

/// The settings of FedAdam and FedYogi.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveParams {
    /// Server learning rate η (> 0).
    #[serde(default = "default_adaptive_lr")]
    pub lr: f32,
    /// First-moment decay β1 ∈ [0, 1).
    #[serde(default = "default_beta1")]
    pub beta1: f32,
    /// Second-moment decay β2 ∈ [0, 1).
    #[serde(default = "default_beta2")]
    pub beta2: f32,
    /// Adaptivity τ (> 0): added to √v, and the initial √v.
    #[serde(default = "default_tau")]
    pub tau: f32,
}

fn default_adaptive_lr() -> f32 {
    DEFAULT_ADAPTIVE_LR
}
fn default_beta1() -> f32 {
    DEFAULT_BETA1
}
fn default_beta2() -> f32 {
    DEFAULT_BETA2
}
fn default_tau() -> f32 {
    DEFAULT_TAU
}
fn default_fedavg_lr() -> f32 {
    1.0
}

impl Default for AdaptiveParams {
    fn default() -> Self {
        Self {
            lr: DEFAULT_ADAPTIVE_LR,
            beta1: DEFAULT_BETA1,
            beta2: DEFAULT_BETA2,
            tau: DEFAULT_TAU,
        }
    }
}

/// Which server optimiser a job uses, with its settings.
///
/// In a human-readable format (the job file's TOML `[server]` table, JSON) the variant is
/// the `optimizer` key and the settings sit beside it; absent settings take their
/// defaults, unknown keys are refused:
///
/// ```toml
/// optimizer = "fedyogi"
/// lr = 0.01
/// tau = 0.001
/// ```
///
/// In a compact binary format (bincode, as the coordinator's store uses) it is an
/// externally tagged enum, since such formats cannot read an internally tagged one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ServerOptimizer {
    /// `x ← x + lr·Δ`.
    FedAvg {
        /// Server learning rate (> 0); 1 is plain FedAvg.
        lr: f32,
    },
    /// FedAdam (Reddi et al. 2021).
    FedAdam(AdaptiveParams),
    /// FedYogi (Reddi et al. 2021).
    FedYogi(AdaptiveParams),
}

/// The human-readable form of [`ServerOptimizer`] (variant names as the public enum's).
#[allow(clippy::enum_variant_names)]
#[derive(Serialize, Deserialize)]
#[serde(tag = "optimizer", rename_all = "lowercase", deny_unknown_fields)]
enum Tagged {
    FedAvg {
        #[serde(default = "default_fedavg_lr")]
        lr: f32,
    },
    FedAdam(AdaptiveParams),
    FedYogi(AdaptiveParams),
}

/// The binary form of [`ServerOptimizer`] (variant names as the public enum's).
#[allow(clippy::enum_variant_names)]
#[derive(Serialize, Deserialize)]
enum Compact {
    FedAvg { lr: f32 },
    FedAdam(AdaptiveParams),
    FedYogi(AdaptiveParams),
}

impl Serialize for ServerOptimizer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            match *self {
                ServerOptimizer::FedAvg { lr } => Tagged::FedAvg { lr },
                ServerOptimizer::FedAdam(p) => Tagged::FedAdam(p),
                ServerOptimizer::FedYogi(p) => Tagged::FedYogi(p),
            }
            .serialize(s)
        } else {
            match *self {
                ServerOptimizer::FedAvg { lr } => Compact::FedAvg { lr },
                ServerOptimizer::FedAdam(p) => Compact::FedAdam(p),
                ServerOptimizer::FedYogi(p) => Compact::FedYogi(p),
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ServerOptimizer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(if d.is_human_readable() {
            match Tagged::deserialize(d)? {
                Tagged::FedAvg { lr } => ServerOptimizer::FedAvg { lr },
                Tagged::FedAdam(p) => ServerOptimizer::FedAdam(p),
                Tagged::FedYogi(p) => ServerOptimizer::FedYogi(p),
            }
        } else {
            match Compact::deserialize(d)? {
                Compact::FedAvg { lr } => ServerOptimizer::FedAvg { lr },
                Compact::FedAdam(p) => ServerOptimizer::FedAdam(p),
                Compact::FedYogi(p) => ServerOptimizer::FedYogi(p),
            }
        })
    }
}

impl Default for ServerOptimizer {
    /// Plain FedAvg (server rate 1).
    fn default() -> Self {
        ServerOptimizer::FedAvg { lr: 1.0 }
    }
}

/// Why a server optimiser cannot be used or a step cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServerOptError {
    /// A setting is out of range; `field` is its key (`lr`, `beta1`, `beta2`, `tau`).
    #[error("{field}: {reason}")]
    InvalidConfig {
        /// The setting's key.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The parameters, the update or the state have different lengths.
    #[error("length mismatch: {what} has {got} values, the optimiser state has {want}")]
    Length {
        /// Which input.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The state's dimension.
        want: usize,
    },
    /// The update has a NaN or infinite coordinate (nothing was applied).
    #[error("mean update has a non-finite value at coordinate {0}")]
    NonFinite(usize),
    /// A restored state is internally inconsistent (moments of the wrong length, or
    /// moments for FedAvg).
    #[error("corrupt optimiser state: {0}")]
    Corrupt(String),
}

fn check_positive(field: &'static str, x: f32) -> Result<(), ServerOptError> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(ServerOptError::InvalidConfig {
            field,
            reason: format!("must be positive, got {x}"),
        })
    }
}

fn check_decay(field: &'static str, x: f32) -> Result<(), ServerOptError> {
    if (0.0..1.0).contains(&x) {
        Ok(())
    } else {
        Err(ServerOptError::InvalidConfig {
            field,
            reason: format!("must be in [0, 1), got {x}"),
        })
    }
}

impl AdaptiveParams {
    /// Checks η > 0, β1, β2 ∈ [0, 1), τ > 0 (all finite).
    pub fn validate(&self) -> Result<(), ServerOptError> {
        check_positive("lr", self.lr)?;
        check_decay("beta1", self.beta1)?;
        check_decay("beta2", self.beta2)?;
        check_positive("tau", self.tau)
    }
}

impl ServerOptimizer {
    /// Checks every setting is in range; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ServerOptError> {
        match self {
            ServerOptimizer::FedAvg { lr } => check_positive("lr", *lr),
            ServerOptimizer::FedAdam(p) | ServerOptimizer::FedYogi(p) => p.validate(),
        }
    }

    /// The optimiser's name as the job file spells it.
    pub fn name(&self) -> &'static str {
        match self {
            ServerOptimizer::FedAvg { .. } => "fedavg",
            ServerOptimizer::FedAdam(_) => "fedadam",
            ServerOptimizer::FedYogi(_) => "fedyogi",
        }
    }

    /// The server learning rate η.
    pub fn lr(&self) -> f32 {
        match self {
            ServerOptimizer::FedAvg { lr } => *lr,
            ServerOptimizer::FedAdam(p) | ServerOptimizer::FedYogi(p) => p.lr,
        }
    }
}

/// Sign with sign(0) = 0 (unlike `f32::signum`, which gives ±1 for ±0).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// A server optimiser with its moments: what carries over from one round to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerOptState {
    optimizer: ServerOptimizer,
    dim: usize,
    steps: u64,
    /// First moment (empty for FedAvg).
    m: Vec<f32>,
    /// Second moment (empty for FedAvg).
    v: Vec<f32>,
}

impl ServerOptState {
    /// A fresh state for a model of `dim` parameters: m = 0, v = τ².
    pub fn new(optimizer: ServerOptimizer, dim: usize) -> Result<Self, ServerOptError> {
        optimizer.validate()?;
        let (m, v) = match optimizer {
            ServerOptimizer::FedAvg { .. } => (Vec::new(), Vec::new()),
            ServerOptimizer::FedAdam(p) | ServerOptimizer::FedYogi(p) => {
                (vec![0.0; dim], vec![p.tau * p.tau; dim])
            }
        };
        Ok(Self {
            optimizer,
            dim,
            steps: 0,
            m,
            v,
        })
    }

    /// The optimiser and its settings.
    pub fn optimizer(&self) -> &ServerOptimizer {
        &self.optimizer
    }

    /// The model dimension this state is for.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Steps applied so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The first moment m (empty for FedAvg).
    pub fn first_moment(&self) -> &[f32] {
        &self.m
    }

    /// The second moment v (empty for FedAvg).
    pub fn second_moment(&self) -> &[f32] {
        &self.v
    }

    /// Checks a (restored) state is consistent: valid settings, moments of the right
    /// length and finite, v ≥ 0.
    pub fn validate(&self) -> Result<(), ServerOptError> {
        self.optimizer.validate()?;
        let want = match self.optimizer {
            ServerOptimizer::FedAvg { .. } => 0,
            _ => self.dim,
        };
        if self.m.len() != want || self.v.len() != want {
            return Err(ServerOptError::Corrupt(format!(
                "{} moments of lengths {} and {} for dimension {}",
                self.optimizer.name(),
                self.m.len(),
                self.v.len(),
                self.dim
            )));
        }
        if let Some(i) = self.m.iter().position(|x| !x.is_finite()) {
            return Err(ServerOptError::Corrupt(format!(
                "first moment is not finite at {i}"
            )));
        }
        if let Some(i) = self.v.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(ServerOptError::Corrupt(format!(
                "second moment is negative or not finite at {i}"
            )));
        }
        Ok(())
    }

    /// Applies one round's mean update Δ to `params` in place and advances the moments.
    ///
    /// All-or-nothing: on any error (lengths, a non-finite Δ, a corrupt state) neither
    /// `params` nor the state has changed.
    pub fn apply(&mut self, params: &mut [f32], mean_delta: &[f32]) -> Result<(), ServerOptError> {
        if params.len() != self.dim {
            return Err(ServerOptError::Length {
                what: "parameters",
                got: params.len(),
                want: self.dim,
            });
        }
        if mean_delta.len() != self.dim {
            return Err(ServerOptError::Length {
                what: "mean update",
                got: mean_delta.len(),
                want: self.dim,
            });
        }
        if let Some(i) = mean_delta.iter().position(|d| !d.is_finite()) {
            return Err(ServerOptError::NonFinite(i));
        }
        self.validate()?;
        match self.optimizer {
            ServerOptimizer::FedAvg { lr } => {
                for (x, d) in params.iter_mut().zip(mean_delta) {
                    *x += lr * d;
                }
            }
            ServerOptimizer::FedAdam(p) => {
                let (b1, b2) = (p.beta1, p.beta2);
                for (((x, d), m), v) in params
                    .iter_mut()
                    .zip(mean_delta)
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                {
                    *m = b1 * *m + (1.0 - b1) * d;
                    *v = b2 * *v + (1.0 - b2) * d * d;
                    *x += p.lr * *m / (v.sqrt() + p.tau);
                }
            }
            ServerOptimizer::FedYogi(p) => {
                let (b1, b2) = (p.beta1, p.beta2);
                for (((x, d), m), v) in params
                    .iter_mut()
                    .zip(mean_delta)
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                {
                    let d2 = d * d;
                    *m = b1 * *m + (1.0 - b1) * d;
                    // v stays ≥ 0: when v < Δ², v grows; when v > Δ², v − (1−β2)Δ² > β2·v ≥ 0.
                    *v -= (1.0 - b2) * d2 * sign(*v - d2);
                    *x += p.lr * *m / (v.sqrt() + p.tau);
                }
            }
        }
        self.steps += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bincode_round_trip(s: &ServerOptState) -> ServerOptState {
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(s, cfg).expect("encode");
        let (back, used): (ServerOptState, usize) =
            bincode::serde::decode_from_slice(&bytes, cfg).expect("decode");
        assert_eq!(used, bytes.len());
        back
    }

    fn close(a: &[f32], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!(
                (f64::from(*x) - y).abs() <= 1e-6 * y.abs().max(1.0),
                "{a:?} vs {b:?}"
            );
        }
    }

    const X0: [f32; 3] = [1.0, -2.0, 0.5];
    const D: [f32; 3] = [0.1, -0.2, 0.0];

    #[test]
    fn fedavg_with_rate_one_adds_the_mean_update() {
        let mut s = ServerOptState::new(ServerOptimizer::default(), 3).expect("state");
        let mut x = X0;
        s.apply(&mut x, &D).expect("apply");
        let want: Vec<f32> = X0.iter().zip(&D).map(|(a, b)| a + b).collect();
        assert_eq!(x.to_vec(), want);
        // A server rate scales the step.
        let mut s = ServerOptState::new(ServerOptimizer::FedAvg { lr: 0.5 }, 3).expect("state");
        let mut x = X0;
        s.apply(&mut x, &D).expect("apply");
        close(&x, &[1.05, -2.1, 0.5]);
        assert_eq!(s.steps(), 1);
        assert!(s.first_moment().is_empty());
    }

    /// The paper's first step from m = 0, v = τ², computed by hand in f64.
    fn first_step_by_hand(p: AdaptiveParams, yogi: bool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (lr, b1, b2, tau) = (
            f64::from(p.lr),
            f64::from(p.beta1),
            f64::from(p.beta2),
            f64::from(p.tau),
        );
        let mut xs = Vec::new();
        let mut ms = Vec::new();
        let mut vs = Vec::new();
        for (x, d) in X0.iter().zip(&D) {
            let (x, d) = (f64::from(*x), f64::from(*d));
            let m = (1.0 - b1) * d;
            let v0 = tau * tau;
            let v = if yogi {
                let s = if v0 > d * d {
                    1.0
                } else if v0 < d * d {
                    -1.0
                } else {
                    0.0
                };
                v0 - (1.0 - b2) * d * d * s
            } else {
                b2 * v0 + (1.0 - b2) * d * d
            };
            xs.push(x + lr * m / (v.sqrt() + tau));
            ms.push(m);
            vs.push(v);
        }
        (xs, ms, vs)
    }

    #[test]
    fn fedadam_first_step_matches_the_formula() {
        let p = AdaptiveParams {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            tau: 0.01,
        };
        let mut s = ServerOptState::new(ServerOptimizer::FedAdam(p), 3).expect("state");
        let mut x = X0;
        s.apply(&mut x, &D).expect("apply");
        let (xs, ms, vs) = first_step_by_hand(p, false);
        close(&x, &xs);
        close(s.first_moment(), &ms);
        close(s.second_moment(), &vs);
        // Coordinate 0 by hand: m = 0.01, v = 0.99e-4 + 0.01·0.01 = 1.99e-4,
        // x = 1 + 0.1·0.01 / (√1.99e-4 + 0.01).
        let x0 = 1.0 + 0.1 * 0.01 / (1.99e-4f64.sqrt() + 0.01);
        assert!((f64::from(x[0]) - x0).abs() < 1e-6);
        // Δ = 0 leaves the coordinate (and m) at rest; v decays towards 0.
        assert_eq!(x[2], X0[2]);
        assert!((f64::from(s.second_moment()[2]) - 0.99e-4).abs() < 1e-9);
    }

    #[test]
    fn fedyogi_first_step_matches_the_formula() {
        let p = AdaptiveParams {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            tau: 0.01,
        };
        let mut s = ServerOptState::new(ServerOptimizer::FedYogi(p), 3).expect("state");
        let mut x = X0;
        s.apply(&mut x, &D).expect("apply");
        let (xs, ms, vs) = first_step_by_hand(p, true);
        close(&x, &xs);
        close(s.first_moment(), &ms);
        close(s.second_moment(), &vs);
        // Coordinate 0 by hand: v₀ = 1e-4 < Δ² = 1e-2, so v = 1e-4 + 0.01·1e-2 = 2e-4.
        assert!((f64::from(s.second_moment()[0]) - 2e-4).abs() < 1e-9);
        // Δ = 0: sign(v − 0) = +1 but the step (1−β2)·0 is zero: v unchanged (Adam would decay it).
        assert_eq!(s.second_moment()[2], 1e-4);
    }

    #[test]
    fn yogi_v_moves_towards_the_squared_update_by_an_additive_step() {
        let p = AdaptiveParams {
            tau: 1e-3,
            ..AdaptiveParams::default()
        };
        let mut s = ServerOptState::new(ServerOptimizer::FedYogi(p), 1).expect("state");
        let mut x = [0.0f32];
        // v = 1e-6 < Δ² = 1: v grows by (1−β2)·Δ² = 0.01.
        s.apply(&mut x, &[1.0]).expect("apply");
        let v1 = s.second_moment()[0];
        assert!((v1 - (1e-6 + 0.01)).abs() < 1e-7, "{v1}");
        // v ≈ 0.010001 > Δ² = 1e-4: v shrinks by (1−β2)·Δ² = 1e-6 (Adam would take 1% of v).
        s.apply(&mut x, &[0.01]).expect("apply");
        let v2 = s.second_moment()[0];
        assert!((v2 - (v1 - 1e-6)).abs() < 1e-9, "{v1} {v2}");
        let mut adam = ServerOptState::new(ServerOptimizer::FedAdam(p), 1).expect("state");
        let mut y = [0.0f32];
        adam.apply(&mut y, &[1.0]).expect("apply");
        let a1 = adam.second_moment()[0];
        adam.apply(&mut y, &[0.01]).expect("apply");
        assert!(
            adam.second_moment()[0] < a1 * 0.995,
            "Adam decays v multiplicatively"
        );
        // v = Δ² exactly: sign(0) = 0 and v stays put.
        let mut s = ServerOptState::new(ServerOptimizer::FedYogi(p), 1).expect("state");
        let mut x = [0.0f32];
        s.apply(&mut x, &[1e-3]).expect("apply");
        assert_eq!(s.second_moment()[0], 1e-3f32 * 1e-3f32);
        // A positive mean update moves the parameter up, a negative one down.
        assert!(x[0] > 0.0);
    }

    #[test]
    fn state_round_trips_and_continues_identically() {
        for opt in [
            ServerOptimizer::FedAvg { lr: 0.7 },
            ServerOptimizer::FedAdam(AdaptiveParams::default()),
            ServerOptimizer::FedYogi(AdaptiveParams::default()),
        ] {
            let deltas: Vec<Vec<f32>> = (0..6)
                .map(|r| {
                    (0..5)
                        .map(|i| ((r * 5 + i) as f32 * 0.37).sin() * 0.1)
                        .collect()
                })
                .collect();
            let mut a = ServerOptState::new(opt, 5).expect("state");
            let mut xa = vec![0.25f32; 5];
            for d in &deltas[..3] {
                a.apply(&mut xa, d).expect("apply");
            }
            // Persist and restore mid-way (bincode's serde path, as the store does).
            let mut b = bincode_round_trip(&a);
            assert_eq!(b, a);
            b.validate().expect("valid after restore");
            let mut xb = xa.clone();
            for d in &deltas[3..] {
                a.apply(&mut xa, d).expect("apply");
                b.apply(&mut xb, d).expect("apply");
            }
            assert_eq!(xa, xb, "{}", opt.name());
            assert_eq!(a, b);
            assert_eq!(b.steps(), 6);
        }
    }

    #[test]
    fn bad_settings_are_typed_errors_naming_the_field() {
        let bad = |opt: ServerOptimizer, field: &str| {
            let e = ServerOptState::new(opt, 3).expect_err("must be refused");
            assert!(
                matches!(&e, ServerOptError::InvalidConfig { field: f, .. } if *f == field),
                "{e:?}"
            );
            assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
        };
        let p = AdaptiveParams::default();
        bad(ServerOptimizer::FedAvg { lr: 0.0 }, "lr");
        bad(ServerOptimizer::FedAvg { lr: f32::NAN }, "lr");
        bad(
            ServerOptimizer::FedAdam(AdaptiveParams { lr: -1.0, ..p }),
            "lr",
        );
        bad(
            ServerOptimizer::FedAdam(AdaptiveParams { beta1: 1.0, ..p }),
            "beta1",
        );
        bad(
            ServerOptimizer::FedYogi(AdaptiveParams { beta1: -0.1, ..p }),
            "beta1",
        );
        bad(
            ServerOptimizer::FedYogi(AdaptiveParams { beta2: 1.5, ..p }),
            "beta2",
        );
        bad(
            ServerOptimizer::FedAdam(AdaptiveParams { tau: 0.0, ..p }),
            "tau",
        );
        let e = ServerOptimizer::FedAdam(AdaptiveParams { beta2: 1.0, ..p })
            .validate()
            .expect_err("β2 = 1");
        assert_eq!(e.to_string(), "beta2: must be in [0, 1), got 1");
        // β = 0 is allowed (no momentum).
        assert!(ServerOptimizer::FedAdam(AdaptiveParams { beta1: 0.0, ..p })
            .validate()
            .is_ok());
    }

    #[test]
    fn bad_inputs_change_nothing() {
        let mut s = ServerOptState::new(ServerOptimizer::FedAdam(AdaptiveParams::default()), 3)
            .expect("state");
        let before = s.clone();
        let mut x = X0;
        assert!(matches!(
            s.apply(&mut x, &[0.1, 0.2]),
            Err(ServerOptError::Length {
                what: "mean update",
                got: 2,
                want: 3
            })
        ));
        assert!(matches!(
            s.apply(&mut x[..2], &D[..2]),
            Err(ServerOptError::Length {
                what: "parameters",
                ..
            })
        ));
        assert_eq!(
            s.apply(&mut x, &[0.1, f32::INFINITY, 0.0]),
            Err(ServerOptError::NonFinite(1))
        );
        assert_eq!(x, X0);
        assert_eq!(s, before);
        // A restored state with moments of the wrong length is refused, not indexed.
        let mut corrupt = before.clone();
        corrupt.v.pop();
        assert!(matches!(
            corrupt.apply(&mut x, &D),
            Err(ServerOptError::Corrupt(_))
        ));
        assert_eq!(x, X0);
    }

    #[test]
    fn defaults_are_the_papers() {
        let p = AdaptiveParams::default();
        assert_eq!((p.lr, p.beta1, p.beta2, p.tau), (1e-2, 0.9, 0.99, 1e-3));
        assert_eq!(
            ServerOptimizer::default(),
            ServerOptimizer::FedAvg { lr: 1.0 }
        );
    }
}

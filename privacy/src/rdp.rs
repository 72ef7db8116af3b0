//! Rényi-DP accounting: the RDP of the mechanisms cairn uses, composition over rounds, and the
//! conversion to (ε, δ).
//!
//! # What is computed
//!
//! * **Poisson-subsampled Gaussian** ([`Mechanism::SubsampledGaussian`]): the exact RDP of Mironov,
//!   Talwar and Zhang 2019 ("Rényi Differential Privacy of the Sampled Gaussian Mechanism"), with the
//!   same log-space series as TensorFlow Privacy / Google's `dp_accounting` (`_compute_log_a_int`
//!   for integer orders, `_compute_log_a_frac` for fractional ones, including its termination rule:
//!   a fractional order whose series has not converged after 1000 terms gets RDP +∞ and so drops
//!   out of the minimum over orders, as there).
//! * **Skellam** ([`Mechanism::SubsampledSkellam`]): Agarwal, Kairouz and Liu 2021 ("The Skellam
//!   Mechanism for Differentially Private Federated Learning"), its multidimensional RDP bound, for an
//!   integer-valued query with L1 sensitivity Δ1 and L2 sensitivity Δ2 plus symmetric Skellam noise of
//!   **variance** V (each coordinate the difference of two Poisson(V/2) variables):
//!
//!   ε(α) ≤ α Δ2² / (2V) + min( ((2α − 1) Δ2² + 6 Δ1) / (4V²), 3 Δ1 / (2V) ).
//!
//!   The paper writes it for Sk(μ, μ), whose variance is 2μ: α Δ2²/(4μ) + min(((2α−1)Δ2² + 6Δ1)/(16μ²),
//!   3Δ1/(4μ)); the two are the same with V = 2μ. This is the form Google's reference implementation
//!   evaluates (google-research/federated, `distributed_dp/accounting_utils.py`, `_skellam_rdp`, in
//!   update units; in the integer domain its scale factor cancels to the line above). The bound is
//!   proved for integer orders; at a fractional order α this module uses the value at ⌈α⌉, a valid
//!   upper bound because Rényi divergence is non-decreasing in its order.
//! * **Poisson subsampling of a general mechanism** ([`poisson_subsampled_rdp`]): the general upper
//!   bound of Zhu and Wang 2019 ("Poisson Subsampled Rényi Differential Privacy", ICML, Theorem 6),
//!   valid for *any* mechanism with RDP ε(·) at integer orders α ≥ 2, with no further assumption:
//!
//!   ```text
//!   ε'(α) ≤ 1/(α−1) · ln[ (1−q)^{α−1}(αq − q + 1) + C(α,2) q² (1−q)^{α−2} e^{ε(2)}
//!                        + 3 Σ_{l=3..α} C(α,l) q^l (1−q)^{α−l} e^{(l−1) ε(l)} ].
//!   ```
//!
//!   It is the bound google-research/federated uses for Skellam (`_compute_rdp_subsampled` with
//!   `upper_bound=True`) and autodp's `general_upperbound`; the tighter formula without the factor 3
//!   holds only for mechanisms with an extra property (proved for the Gaussian) and is not used.
//!   As there, the RDP of a round is the minimum of this bound and the unsubsampled ε(α), both
//!   valid upper bounds.
//!
//! Composition adds RDP order by order. The conversion to (ε, δ) is `dp_accounting`'s
//! `compute_epsilon` / `compute_delta`: the improved bound of Canonne, Kamath and Steinke 2020 (The
//! Discrete Gaussian for Differential Privacy, Proposition 12 of arXiv:2004.00010v4) and Asoodeh et
//! al. 2020 (arXiv:2001.05990, Eq. 20), ε = r + ln(1 − 1/α) − ln(δα)/(α − 1) for α > 1.01, with the
//! KL-divergence bound δ ≤ √(1 − e^{−r}) where it gives ε = 0, minimised over the orders.
//!
//! Adjacency is add-or-remove-one holder (the sampled unit), as for `dp_accounting`'s default
//! `ADD_OR_REMOVE_ONE`.

use crate::special::{log_add, log_comb, log_erfc, log_sum_exp_weighted};

/// Errors of the accountant: a parameter out of its domain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RdpError {
    /// A mechanism parameter or a target is outside its domain.
    #[error("{name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        reason: &'static str,
    },
    /// An RDP order is not a finite number above 1.
    #[error("RDP order {0} must be finite and greater than 1")]
    InvalidOrder(f64),
    /// No orders were given.
    #[error("an accountant needs at least one RDP order")]
    NoOrders,
}

/// The orders of `dp_accounting`'s `RdpAccountant` by default: 1.1, 1.2, …, 10.9, then the
/// integers 11 to 63, then 128, 256, 512 and 1024 (156 orders).
pub fn default_orders() -> Vec<f64> {
    let mut orders: Vec<f64> = (1..100).map(|x| 1.0 + f64::from(x) / 10.0).collect();
    orders.extend((11..64).map(f64::from));
    orders.extend([128.0, 256.0, 512.0, 1024.0]);
    orders
}

/// One round's mechanism, whose RDP the accountant composes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mechanism {
    /// The Gaussian mechanism with noise standard deviation `noise_multiplier` × L2 sensitivity,
    /// applied to a Poisson sample of rate `q` (q = 1: everyone, no amplification).
    SubsampledGaussian {
        /// Poisson sampling rate in [0, 1].
        q: f64,
        /// σ / Δ2, non-negative (0 means no noise: RDP +∞).
        noise_multiplier: f64,
    },
    /// The Skellam mechanism on an integer-valued sum with sensitivities `l1`, `l2` (in the integer
    /// domain) and total noise variance `variance`, applied to a Poisson sample of rate `q`.
    SubsampledSkellam {
        /// Poisson sampling rate in [0, 1].
        q: f64,
        /// L1 sensitivity Δ1 of the integer sum.
        l1: f64,
        /// L2 sensitivity Δ2 of the integer sum.
        l2: f64,
        /// Variance V of the noise in the released sum (at least the promised minimum).
        variance: f64,
    },
}

fn check(name: &'static str, value: f64, ok: bool, reason: &'static str) -> Result<(), RdpError> {
    if ok {
        Ok(())
    } else {
        Err(RdpError::InvalidParameter {
            name,
            value,
            reason,
        })
    }
}

fn check_rate(q: f64) -> Result<(), RdpError> {
    check("q", q, (0.0..=1.0).contains(&q), "must be in [0, 1]")
}

fn check_order(order: f64) -> Result<(), RdpError> {
    if order.is_finite() && order > 1.0 {
        Ok(())
    } else {
        Err(RdpError::InvalidOrder(order))
    }
}

impl Mechanism {
    /// Checks the parameters' domains.
    pub fn validate(&self) -> Result<(), RdpError> {
        match *self {
            Mechanism::SubsampledGaussian {
                q,
                noise_multiplier,
            } => {
                check_rate(q)?;
                check(
                    "noise_multiplier",
                    noise_multiplier,
                    noise_multiplier >= 0.0 && noise_multiplier.is_finite(),
                    "must be finite and non-negative",
                )
            }
            Mechanism::SubsampledSkellam {
                q,
                l1,
                l2,
                variance,
            } => {
                check_rate(q)?;
                let ok = |x: f64| x >= 0.0 && x.is_finite();
                check("l1", l1, ok(l1), "must be finite and non-negative")?;
                check("l2", l2, ok(l2), "must be finite and non-negative")?;
                check(
                    "variance",
                    variance,
                    ok(variance),
                    "must be finite and non-negative",
                )
            }
        }
    }

    /// The RDP of one round at each of `orders` (each finite and > 1).
    pub fn rdp(&self, orders: &[f64]) -> Result<Vec<f64>, RdpError> {
        self.validate()?;
        for &a in orders {
            check_order(a)?;
        }
        Ok(match *self {
            Mechanism::SubsampledGaussian {
                q,
                noise_multiplier,
            } => orders
                .iter()
                .map(|&a| subsampled_gaussian_rdp_unchecked(q, noise_multiplier, a))
                .collect(),
            Mechanism::SubsampledSkellam {
                q,
                l1,
                l2,
                variance,
            } => {
                let eps = |l: u64| skellam_rdp(l as f64, l1, l2, variance);
                orders
                    .iter()
                    .map(|&a| {
                        let m = a.ceil() as u64;
                        if q == 0.0 {
                            0.0
                        } else if variance == 0.0 && l2 > 0.0 {
                            f64::INFINITY
                        } else {
                            poisson_subsampled_rdp(q, m, eps).min(eps(m))
                        }
                    })
                    .collect()
            }
        })
    }
}

/// The RDP at `order` of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019),
/// as `dp_accounting`'s `_compute_rdp_poisson_subsampled_gaussian`.
pub fn subsampled_gaussian_rdp(q: f64, noise_multiplier: f64, order: f64) -> Result<f64, RdpError> {
    Mechanism::SubsampledGaussian {
        q,
        noise_multiplier,
    }
    .validate()?;
    check_order(order)?;
    Ok(subsampled_gaussian_rdp_unchecked(
        q,
        noise_multiplier,
        order,
    ))
}

fn subsampled_gaussian_rdp_unchecked(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if sigma == 0.0 {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    let log_a = if alpha.fract() == 0.0 {
        log_a_int(q, sigma, alpha as u64)
    } else {
        log_a_frac(q, sigma, alpha)
    };
    log_a / (alpha - 1.0)
}

/// ln A_α for integer α and 0 < q < 1 (`_compute_log_a_int`).
fn log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    let log1mq = (-q).ln_1p();
    let a = alpha as f64;
    (0..=alpha).fold(f64::NEG_INFINITY, |acc, i| {
        let i = i as f64;
        let log_coef = log_comb(a, i) + i * q.ln() + (a - i) * log1mq;
        log_add(acc, log_coef + (i * i - i) / (2.0 * sigma * sigma))
    })
}

/// Terms the fractional-order series may take before it is declared divergent (as in
/// `dp_accounting`).
const MAX_STEPS_LOG_A_FRAC: u32 = 1000;

/// ln A_α for fractional α and 0 < q < 1 (`_compute_log_a_frac`, Sec. 3.3 of Mironov et al.):
/// the integrals over (−∞, z0] and [z0, ∞) as two series, stopped when both are decreasing and
/// 30 nats below the total; +∞ when that has not happened after 1000 terms.
fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let log1mq = (-q).ln_1p();
    let (mut last_s0, mut last_s1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let two_sigma2 = 2.0 * sigma * sigma;
    let sqrt2_sigma = std::f64::consts::SQRT_2 * sigma;
    for step in 0..MAX_STEPS_LOG_A_FRAC {
        let i = f64::from(step);
        let log_coef = log_comb(alpha, i);
        let j = alpha - i;
        let log_t0 = log_coef + i * q.ln() + j * log1mq;
        let log_t1 = log_coef + j * q.ln() + i * log1mq;
        let log_e0 = 0.5_f64.ln() + log_erfc((i - z0) / sqrt2_sigma);
        let log_e1 = 0.5_f64.ln() + log_erfc((z0 - j) / sqrt2_sigma);
        let log_s0 = log_t0 + (i * i - i) / two_sigma2 + log_e0;
        let log_s1 = log_t1 + (j * j - j) / two_sigma2 + log_e1;
        log_a0 = log_add(log_a0, log_s0);
        log_a1 = log_add(log_a1, log_s1);
        let total = log_add(log_a0, log_a1);
        if log_s0 < last_s0 && log_s1 < last_s1 && log_s0.max(log_s1) < total - 30.0 {
            return total;
        }
        last_s0 = log_s0;
        last_s1 = log_s1;
    }
    f64::INFINITY
}

/// The Skellam mechanism's RDP at `order` (Agarwal, Kairouz, Liu 2021) for an integer-valued
/// query with L1 / L2 sensitivities `l1`, `l2` and noise of variance `variance` (all in the
/// integer domain): α Δ2²/(2V) + min(((2α−1)Δ2² + 6Δ1)/(4V²), 3Δ1/(2V)).
///
/// Proved for integer orders; callers use ⌈α⌉ for fractional ones (as [`Mechanism::rdp`] does).
/// Zero sensitivity gives 0; zero variance with positive sensitivity gives +∞.
pub fn skellam_rdp(order: f64, l1: f64, l2: f64, variance: f64) -> f64 {
    if l1 == 0.0 && l2 == 0.0 {
        return 0.0;
    }
    if variance == 0.0 {
        return f64::INFINITY;
    }
    let (a, v) = (order, variance);
    let l2sq = l2 * l2;
    a * l2sq / (2.0 * v)
        + (((2.0 * a - 1.0) * l2sq + 6.0 * l1) / (4.0 * v * v)).min(3.0 * l1 / (2.0 * v))
}

/// Zhu and Wang's general upper bound (2019, Theorem 6) on the RDP at integer `order` ≥ 2 of
/// any mechanism with RDP `eps(l)` at integer orders l, applied to a Poisson sample of rate `q`.
///
/// This is the bound itself, not its minimum with `eps(order)`; q = 1 returns `eps(order)`,
/// q = 0 returns 0. `order` below 2 is treated as 2 (RDP is non-decreasing in the order).
pub fn poisson_subsampled_rdp(q: f64, order: u64, eps: impl Fn(u64) -> f64) -> f64 {
    let m = order.max(2);
    if q <= 0.0 {
        return 0.0;
    }
    if q >= 1.0 {
        return eps(m);
    }
    let mf = m as f64;
    let (ln_q, ln_1mq) = (q.ln(), (-q).ln_1p());
    let mut terms = Vec::with_capacity(m as usize);
    terms.push(((mf - 1.0) * ln_1mq + ((mf - 1.0) * q).ln_1p(), 1.0));
    terms.push((
        log_comb(mf, 2.0) + 2.0 * ln_q + (mf - 2.0) * ln_1mq + eps(2),
        1.0,
    ));
    for l in 3..=m {
        let lf = l as f64;
        let e = eps(l);
        terms.push((
            log_comb(mf, lf) + lf * ln_q + (mf - lf) * ln_1mq + (lf - 1.0) * e,
            3.0,
        ));
    }
    log_sum_exp_weighted(&terms) / (mf - 1.0)
}

/// An ε with the order that attained it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpsilonAt {
    /// The smallest ε over the orders (+∞ if no order gives a finite one).
    pub epsilon: f64,
    /// The order that gave it.
    pub order: f64,
}

/// A δ with the order that attained it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaAt {
    /// The smallest δ over the orders, at most 1.
    pub delta: f64,
    /// The order that gave it.
    pub order: f64,
}

/// ε for a target δ from RDP values at `orders` (`dp_accounting`'s `compute_epsilon`).
pub fn epsilon_from_rdp(orders: &[f64], rdp: &[f64], delta: f64) -> Result<EpsilonAt, RdpError> {
    check(
        "delta",
        delta,
        (0.0..1.0).contains(&delta),
        "must be in [0, 1)",
    )?;
    check_lengths(orders, rdp)?;
    if delta == 0.0 {
        let epsilon = if rdp.iter().all(|&r| r == 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
        return Ok(EpsilonAt {
            epsilon,
            order: orders[0],
        });
    }
    let mut best = EpsilonAt {
        epsilon: f64::INFINITY,
        order: orders[0],
    };
    for (&a, &r) in orders.iter().zip(rdp) {
        check_order(a)?;
        let eps = if r.is_nan() {
            f64::INFINITY
        } else if r < 0.0 || delta * delta + (-r).exp_m1() > 0.0 {
            0.0
        } else if a > 1.01 {
            r + (-1.0 / a).ln_1p() - (delta * a).ln() / (a - 1.0)
        } else {
            f64::INFINITY
        };
        if eps < best.epsilon {
            best = EpsilonAt {
                epsilon: eps,
                order: a,
            };
        }
    }
    best.epsilon = best.epsilon.max(0.0);
    Ok(best)
}

/// δ for a target ε from RDP values at `orders` (`dp_accounting`'s `compute_delta`).
pub fn delta_from_rdp(orders: &[f64], rdp: &[f64], epsilon: f64) -> Result<DeltaAt, RdpError> {
    check(
        "epsilon",
        epsilon,
        epsilon >= 0.0 && !epsilon.is_nan(),
        "must be non-negative",
    )?;
    check_lengths(orders, rdp)?;
    let mut best = DeltaAt {
        delta: 1.0,
        order: orders[0],
    };
    let mut best_log = f64::INFINITY;
    for (&a, &r) in orders.iter().zip(rdp) {
        check_order(a)?;
        let mut log_delta = if r <= 0.0 {
            f64::NEG_INFINITY
        } else {
            0.5 * (-(-r).exp()).ln_1p()
        };
        if a > 1.01 {
            let bound = (a - 1.0) * (r - epsilon + (-1.0 / a).ln_1p()) - a.ln();
            log_delta = log_delta.min(bound);
        }
        if log_delta < best_log {
            best_log = log_delta;
            best = DeltaAt {
                delta: log_delta.exp().min(1.0),
                order: a,
            };
        }
    }
    Ok(best)
}

fn check_lengths(orders: &[f64], rdp: &[f64]) -> Result<(), RdpError> {
    if orders.is_empty() {
        return Err(RdpError::NoOrders);
    }
    check(
        "rdp.len()",
        rdp.len() as f64,
        rdp.len() == orders.len(),
        "must equal the number of orders",
    )
}

/// Composes mechanisms over rounds: the RDP at each order is the sum over rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct RdpAccountant {
    orders: Vec<f64>,
    rdp: Vec<f64>,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        let orders = default_orders();
        let rdp = vec![0.0; orders.len()];
        Self { orders, rdp }
    }
}

impl RdpAccountant {
    /// An accountant over [`default_orders`] with nothing spent.
    pub fn new() -> Self {
        Self::default()
    }

    /// An accountant over the given orders (each finite and > 1) with nothing spent.
    pub fn with_orders(orders: Vec<f64>) -> Result<Self, RdpError> {
        if orders.is_empty() {
            return Err(RdpError::NoOrders);
        }
        for &a in &orders {
            check_order(a)?;
        }
        let rdp = vec![0.0; orders.len()];
        Ok(Self { orders, rdp })
    }

    /// Adds `rounds` rounds of `mechanism` (zero rounds spend nothing, even without noise).
    pub fn compose(&mut self, mechanism: &Mechanism, rounds: u64) -> Result<(), RdpError> {
        mechanism.validate()?;
        if rounds == 0 {
            return Ok(());
        }
        let one = mechanism.rdp(&self.orders)?;
        for (total, r) in self.rdp.iter_mut().zip(one) {
            *total += rounds as f64 * r;
        }
        Ok(())
    }

    /// The orders.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The RDP spent so far at each order.
    pub fn rdp(&self) -> &[f64] {
        &self.rdp
    }

    /// The ε spent so far for a target δ in [0, 1).
    pub fn epsilon(&self, delta: f64) -> Result<EpsilonAt, RdpError> {
        epsilon_from_rdp(&self.orders, &self.rdp, delta)
    }

    /// The δ spent so far for a target ε ≥ 0.
    pub fn delta(&self, epsilon: f64) -> Result<DeltaAt, RdpError> {
        delta_from_rdp(&self.orders, &self.rdp, epsilon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_orders_are_dp_accountings() {
        let o = default_orders();
        assert_eq!(o.len(), 156);
        assert_eq!(o[0], 1.1);
        assert_eq!(o[98], 10.9);
        assert_eq!(o[99], 11.0);
        assert_eq!(o[151], 63.0);
        assert_eq!(&o[152..], &[128.0, 256.0, 512.0, 1024.0]);
    }

    #[test]
    fn subsampling_bound_is_exact_at_order_two() {
        // At α = 2 the bound is ln(1 − q² + q² e^{ε(2)}), the exact value for any mechanism.
        let (q, e2) = (0.1, 0.7_f64);
        let got = poisson_subsampled_rdp(q, 2, |_| e2);
        let want = (1.0 - q * q + q * q * e2.exp()).ln();
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let bad = Mechanism::SubsampledGaussian {
            q: 1.5,
            noise_multiplier: 1.0,
        };
        assert!(matches!(
            bad.rdp(&[2.0]),
            Err(RdpError::InvalidParameter { name: "q", .. })
        ));
        assert_eq!(
            RdpAccountant::with_orders(vec![1.0]),
            Err(RdpError::InvalidOrder(1.0))
        );
        assert!(RdpAccountant::new().epsilon(1.0).is_err());
    }
}

//! Numerically stable helpers in log space: the same operations as dp_accounting's
//! `_log_add`, `_log_comb` and `_log_erfc`, so that the accountant reproduces its numbers.

/// `ln(e^x + e^y)` without overflow; `-inf` is the log of zero.
pub(crate) fn log_add(x: f64, y: f64) -> f64 {
    let (a, b) = if x < y { (x, y) } else { (y, x) };
    if a == f64::NEG_INFINITY {
        return b;
    }
    (a - b).exp().ln_1p() + b
}

/// `ln Σ b_i e^{a_i}` for non-negative weights `b_i` (terms of weight 0 are skipped).
pub(crate) fn log_sum_exp_weighted(terms: &[(f64, f64)]) -> f64 {
    let max = terms
        .iter()
        .filter(|(_, w)| *w > 0.0)
        .map(|(a, _)| *a)
        .fold(f64::NEG_INFINITY, f64::max);
    if max.is_infinite() {
        return max;
    }
    let sum: f64 = terms
        .iter()
        .filter(|(_, w)| *w > 0.0)
        .map(|(a, w)| w * (a - max).exp())
        .sum();
    max + sum.ln()
}

/// `ln |C(n, k)|` through the log-gamma function, for real `n` and `k` (as scipy's `gammaln`).
pub(crate) fn log_comb(n: f64, k: f64) -> f64 {
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
}

/// `ln erfc(x)`, accurate in the far tail where `erfc` underflows.
///
/// scipy computes it as `ln 2 + log_ndtr(−x√2)`; `log_ndtr(a)` switches to its asymptotic
/// series for `a < −20`, i.e. `x > 20/√2`. Below that `erfc` is far from underflow and its
/// logarithm is accurate to a few ulps; above, the asymptotic expansion
/// `erfc(x) = e^{−x²}/(x√π) · Σ_k (−1)^k (2k−1)!!/(2x²)^k` converges to double precision.
pub(crate) fn log_erfc(x: f64) -> f64 {
    if x <= 20.0 / std::f64::consts::SQRT_2 {
        return libm::erfc(x).ln();
    }
    let inv = 1.0 / (2.0 * x * x);
    let mut term: f64 = 1.0;
    let mut sum: f64 = 1.0;
    let mut k = 1.0;
    loop {
        let next = -term * (2.0 * k - 1.0) * inv;
        if next.abs() >= term.abs() || next.abs() < 1e-17 * sum.abs() {
            break;
        }
        sum += next;
        term = next;
        k += 1.0;
    }
    -x * x - (x * std::f64::consts::PI.sqrt()).ln() + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn log_add_matches_direct_sum() {
        assert!(close(
            log_add(1.0_f64.ln(), 2.0_f64.ln()),
            3.0_f64.ln(),
            1e-15
        ));
        assert_eq!(log_add(f64::NEG_INFINITY, 0.5), 0.5);
        assert!(close(log_add(1000.0, 1000.0), 1000.0 + 2.0_f64.ln(), 1e-15));
    }

    #[test]
    fn log_comb_of_integers() {
        assert!(close(log_comb(10.0, 3.0), 120.0_f64.ln(), 1e-13));
        assert!(close(
            log_comb(256.0, 128.0).exp().ln(),
            log_comb(256.0, 128.0),
            1e-15
        ));
    }

    #[test]
    fn log_erfc_is_continuous_across_the_switch() {
        let s = 20.0 / std::f64::consts::SQRT_2;
        let below = libm::erfc(s).ln();
        let above = log_erfc(s + 1e-12);
        assert!(close(above, below, 1e-12), "{above} vs {below}");
        // erfc(30) underflows to zero but its logarithm is finite: −900 − ln(30√π) + ln(1 − …).
        let far = log_erfc(30.0);
        assert!(
            far.is_finite()
                && close(
                    far,
                    -900.0 - (30.0 * std::f64::consts::PI.sqrt()).ln(),
                    1e-6
                )
        );
    }
}

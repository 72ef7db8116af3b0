"""Reference values pinned in privacy/tests/reference.rs.

Rerun: python3 -m venv /tmp/dpvenv && /tmp/dpvenv/bin/pip install dp-accounting==0.6.0 autodp==0.2.3.1
       /tmp/dpvenv/bin/python privacy/tests/reference.py

Gaussian: Google's dp_accounting RdpAccountant (default orders, add-or-remove-one adjacency).
Skellam: the closed form of Agarwal, Kairouz, Liu 2021 (Skellam with variance V = 2*lambda in the
integer domain), computed here with Python floats, subsampled by autodp's general_upperbound (Zhu &
Wang 2019, Theorem 6; autodp truncates its sum at l = 50, exact for orders <= 51).
"""
import math

import dp_accounting
from dp_accounting.rdp import rdp_privacy_accountant as rdp
from autodp import rdp_acct

ORDERS_SHOWN = [1.5, 2.0, 3.0, 10.5, 32.0, 256.0]

print("# Gaussian, Poisson-subsampled: (z, q, steps, delta) -> RDP at orders, epsilon, order")
for z, q, steps, delta in [(1.1, 0.01, 10000, 1e-5), (1.0, 1.0, 100, 1e-5), (0.8, 0.05, 1000, 1e-6),
                           (2.0, 0.001, 50000, 1e-5)]:
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), steps)
    eps, order = acc.get_epsilon_and_optimal_order(delta)
    one = rdp._compute_rdp_poisson_subsampled_gaussian(q, z, ORDERS_SHOWN)
    print(f"z={z} q={q} steps={steps} delta={delta}: eps={eps!r} order={order!r}")
    print("  rdp per step at", ORDERS_SHOWN, "=", [repr(float(x)) for x in one])
    print(f"  delta at eps=2.0: {acc.get_delta(2.0)!r}")


def skellam_rdp(alpha, l1, l2, var):
    return alpha * l2 ** 2 / (2 * var) + min(((2 * alpha - 1) * l2 ** 2 + 6 * l1) / (4 * var ** 2),
                                             3 * l1 / (2 * var))


print("# Skellam (integer domain): (l1, l2, V) -> RDP at integer orders, unsubsampled")
for l1, l2, var in [(100.0, 10.0, 400.0), (3000.0, 60.0, 1e4), (5.0, 2.5, 9.0)]:
    print(f"l1={l1} l2={l2} V={var}:", [repr(skellam_rdp(a, l1, l2, var)) for a in [2, 3, 10, 32, 256]])

print("# Calibration: dp_accounting.calibrate_dp_mechanism, Gaussian, smallest z for (eps, delta)")
for eps_t, delta, q, steps in [(1.0, 1e-5, 0.01, 1000), (3.0, 1e-5, 1.0, 50), (8.0, 1e-5, 0.1, 200)]:
    def make(z, q=q, steps=steps):
        return dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), steps)
    z = dp_accounting.calibrate_dp_mechanism(
        dp_accounting.rdp.RdpAccountant, make, eps_t, delta,
        dp_accounting.ExplicitBracketInterval(0.01, 100.0), tol=1e-9)
    print(f"eps={eps_t} delta={delta} q={q} steps={steps}: z={z!r}")

# Zhu-Wang Theorem 6 written out (no truncation), checked against autodp for orders <= 51.
from scipy import special


def zhu_wang(q, m, f):
    if q == 1.0:
        return f(m)
    a = [(m - 1) * math.log1p(-q) + math.log1p((m - 1) * q),
         rdp._log_comb(m, 2) + 2 * math.log(q) + (m - 2) * math.log1p(-q) + f(2)]
    b = [1.0, 1.0]
    for l in range(3, m + 1):
        a.append(math.log(3) + rdp._log_comb(m, l) + l * math.log(q) + (m - l) * math.log1p(-q)
                 + (l - 1) * f(l))
        b.append(1.0)
    return special.logsumexp(a) / (m - 1)


# autodp evaluates the same sum in a subtracted form that loses digits to cancellation at some
# orders (up to ~1e-4 relative at q = 0.01 around order 30-40); elsewhere they agree to ~1e-11.
worst = 0.0
for l1, l2, var, q in [(100.0, 10.0, 400.0, 0.01), (3000.0, 60.0, 1e4, 0.1), (5.0, 2.5, 9.0, 0.5)]:
    f = lambda a: skellam_rdp(a, l1, l2, var)
    for m in range(2, 52):
        ours, theirs = zhu_wang(q, m, f), rdp_acct.general_upperbound(f, m, q) / (m - 1)
        worst = max(worst, abs(ours - theirs) / theirs)
print(f"# max relative difference, Zhu-Wang here vs autodp general_upperbound, orders 2..51: {worst:.2e}")

print("# Skellam Poisson-subsampled per step: Zhu-Wang written out (and autodp's value)")
for l1, l2, var, q in [(100.0, 10.0, 400.0, 0.01), (3000.0, 60.0, 1e4, 0.1), (5.0, 2.5, 9.0, 0.5)]:
    f = lambda a: skellam_rdp(a, l1, l2, var)
    ms = [2, 3, 10, 32, 51]
    print(f"l1={l1} l2={l2} V={var} q={q}:", [repr(zhu_wang(q, m, f)) for m in ms])
    print("   autodp:", [repr(float(rdp_acct.general_upperbound(f, m, q) / (m - 1))) for m in ms])

print("# Skellam end to end: default orders (fractional -> ceil), min(Zhu-Wang, unsubsampled), "
      "composed, dp_accounting.rdp.compute_epsilon")
orders = rdp.DEFAULT_RDP_ORDERS
for l1, l2, var, q, steps, delta in [(100.0, 10.0, 400.0, 0.01, 1000, 1e-5),
                                     (3000.0, 60.0, 1e4, 0.1, 100, 1e-6),
                                     (5.0, 2.5, 9.0, 1.0, 3, 1e-5)]:
    f = lambda a: skellam_rdp(a, l1, l2, var)
    per = [min(zhu_wang(q, math.ceil(a), f), f(math.ceil(a))) for a in orders]
    eps, order = rdp.compute_epsilon(orders, [steps * r for r in per], delta)
    print(f"l1={l1} l2={l2} V={var} q={q} steps={steps} delta={delta}: eps={eps!r} order={order!r}")

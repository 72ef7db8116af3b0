"""Reference values pinned in privacy/tests/skellam.rs (the Skellam sampler's table).

Rerun: python3 -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install scipy==1.17.1 mpmath==1.4.1
       /tmp/skvenv/bin/python privacy/tests/skellam_reference.py
Its output is in skellam_reference_output.txt next to this file.

Symmetric Skellam of variance V: the difference of two Poisson(V/2), scipy.stats.skellam(mu1=V/2,
mu2=V/2). Two independent sources:
* scipy: skellam.pmf / .cdf / .sf (Boost's non-central chi-square underneath);
* mpmath at 50 digits: pmf(k) = exp(-V) I_k(V) by Miller's backward recurrence anchored at mpmath's
  besseli(0, V), checked against mpmath's besseli(k, V) where that converges; tails as sums of terms.
The thresholds are T_k = round(2^64 P(X <= k)) for k < 0 and 2^64 - round(2^64 P(X > k)) for k >= 0
(halves up), exactly, from the mpmath values; K is the smallest with P(|X| > K) < 2^-64.
The chi-square bins: every k with n p_k >= 5 (a contiguous [-B, B]) and the two tails beyond,
each merged into its neighbouring bin if its expectation is below 5.
"""
import math

import mpmath as mp
import scipy
from scipy.stats import chi2, skellam

mp.mp.dps = 50
TWO64 = mp.mpf(2) ** 64


_CACHE = {}


def _series(v):
    """p_0..p_N at 50 digits: the ratios I_{k+1}/I_k by the backward recurrence
    r_k = v / (2(k+1) + v r_{k+1}) from N far out (P(X >= N) < 2^-250 by Bernstein), anchored at
    p_0 = exp(-v) besseli(0, v) (mpmath's Bessel function, not the normalising sum that the Rust
    code uses). mpmath's besseli cannot evaluate far tails of large v in reasonable time, so it
    is compared with the recurrence where it can (check_direct below)."""
    if v not in _CACHE:
        big_l = 250 * math.log(2)
        n = int(big_l / 3 + math.sqrt(big_l**2 / 9 + 2 * v * big_l)) + 50
        r = [mp.mpf(0)] * (n + 1)
        for k in range(n - 1, -1, -1):
            r[k] = v / (2 * (k + 1) + v * r[k + 1])
        p = [mp.exp(-v) * mp.besseli(0, v)]
        for k in range(n):
            p.append(p[-1] * r[k])
        tails = [mp.mpf(0)] * (n + 2)
        for m in range(n, -1, -1):
            tails[m] = tails[m + 1] + p[m]
        _CACHE[v] = (p, tails)
    return _CACHE[v]


def pmf_mp(v, k):
    return _series(v)[0][abs(k)]


def upper_mp(v, m):
    """P(X >= m) for m >= 1, summed from the far end inwards."""
    return _series(v)[1][m]


def check_direct(v, k):
    direct = mp.exp(-v) * mp.besseli(abs(k), v)
    rel = abs(direct / pmf_mp(v, k) - 1)
    assert rel < mp.mpf(10) ** -40, (v, k, rel)


def cdf_mp(v, k):
    return upper_mp(v, -k) if k < 0 else 1 - upper_mp(v, k + 1)


def sf_mp(v, k):
    return cdf_mp(v, -k - 1)


def rnd(x):
    return int(mp.floor(x + mp.mpf(1) / 2))


def threshold_mp(v, k):
    if k < 0:
        return rnd(TWO64 * upper_mp(v, -k))
    return 2**64 - rnd(TWO64 * upper_mp(v, k + 1))


def support_mp(v):
    sd = math.sqrt(v)
    k = max(0, int(9.0 * sd) - 30)
    while upper_mp(v, k + 1) * 2 >= mp.mpf(2) ** -64:
        k += 1
    return k


print(f"# scipy {scipy.__version__}, mpmath {mp.__version__}")
print("# pmf: V, k, scipy, mpmath")
for v in [0.5, 8.0, 1000.0, 250000.0, 1e6]:
    mu = v / 2
    sd = math.sqrt(v)
    # the largest k with pmf > 1e-30
    far = int(sd)
    while pmf_mp(v, far + 1) > mp.mpf("1e-30"):
        far += 1
    ks = sorted({0, 1, -1, round(sd), -round(2 * sd), round(4 * sd), round(6 * sd), far, -far})
    for k in ks:
        if abs(k) <= 4 * sd + 2:
            check_direct(v, k)
    if v == 1e6:
        ks = [0, round(3 * sd), far]
    for k in ks:
        s = float(skellam.pmf(k, mu, mu))
        m = float(pmf_mp(v, k))
        print(f"    ({v!r}, {k}, {s!r}, {m!r}),")

print("# cdf (k < 0) and sf (k > 0): V, k, scipy, mpmath. scipy's sf loses the far right tail (it is")
print("# 1 - cdf there: 0.0 at V = 1000, k = 254); by symmetry sf(k) = cdf(-k - 1), which it keeps.")
for v in [0.5, 8.0, 1000.0, 250000.0]:
    mu = v / 2
    sd = math.sqrt(v)
    for k in sorted({round(3 * sd) + 1, round(6 * sd) + 1, round(8 * sd) + 1}):
        print(f"    ({v!r}, {-k}, {float(skellam.cdf(-k, mu, mu))!r}, {float(cdf_mp(v, -k))!r}),")
        print(f"    ({v!r}, {k}, {float(skellam.sf(k, mu, mu))!r}, {float(sf_mp(v, k))!r}),")

print("# K: V, K")
for v in [0.5, 8.0, 1000.0, 1e5, 250000.0, 1e6]:
    print(f"    ({v!r}, {support_mp(v)}),")

print("# exact thresholds: V, k, T_k")
for v, ks in [(8.0, [-32, -10, -1, 0, 5, 31]), (1000.0, [-250, -100, -1, 0, 50, 249]),
              (250000.0, [-3000, -1500, -1, 0, 2000])]:
    for k in ks:
        print(f"    ({v!r}, {k}, {threshold_mp(v, k)}),")

print("# chi-square bins for n = 200000: V, B, bins, df, critical value at p = 1e-6")
n = 200000
for v in [8.0, 1000.0]:
    mu = v / 2
    b = 0
    while n * skellam.pmf(b + 1, mu, mu) >= 5:
        b += 1
    bins = 2 * b + 1
    tail = n * skellam.cdf(-b - 1, mu, mu)
    if tail >= 5:
        bins += 2
    df = bins - 1
    print(f"    ({v!r}, {b}, {bins}, {df}, {float(chi2.isf(1e-6, df))!r}),  # tail expectation {tail:.3f}")

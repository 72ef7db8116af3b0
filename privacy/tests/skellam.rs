//! The Skellam sampler's table against reference values, and the sampler against its distribution.
//!
//! `skellam_reference.py` next to this file computes the reference values (scipy 1.17.1's
//! `scipy.stats.skellam` and 50-digit mpmath 1.4.1); `skellam_reference_output.txt` is what it
//! printed. The tests do not need Python.

use cairn_privacy::skellam::{noise, SkellamError, SkellamTable, MAX_HOLDER_VARIANCE};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

type Res = Result<(), Box<dyn std::error::Error>>;

/// 2^64 and 2^-64 (one slot of the table).
const TWO64: f64 = 18_446_744_073_709_551_616.0;
const SLOT: f64 = 1.0 / TWO64;

fn rel(got: f64, want: f64) -> f64 {
    ((got - want) / want).abs()
}

/// pmf: V, k, scipy's `skellam.pmf(k, V/2, V/2)`, mpmath's 50-digit value rounded to `f64`.
const PMF: [(f64, i64, f64, f64); 37] = [
    (0.5, -19, 1.8195976693947485e-29, 1.8195976693947482e-29),
    (0.5, -1, 0.1564208031848717, 0.1564208031848717),
    (0.5, 0, 0.6450352704491501, 0.6450352704491501),
    (0.5, 1, 0.1564208031848717, 0.1564208031848717),
    (0.5, 3, 0.0016043415075654604, 0.0016043415075654608),
    (0.5, 4, 9.995961887774938e-05, 9.995961887774942e-05),
    (0.5, 19, 1.8195976693947485e-29, 1.8195976693947482e-29),
    (8.0, -42, 6.689715416979876e-30, 6.689715416979874e-30),
    (8.0, -6, 0.01463276549980585, 0.014632765499805857),
    (8.0, -1, 0.13414249329269817, 0.13414249329269817),
    (8.0, 0, 0.1434317818568503, 0.14343178185685032),
    (8.0, 1, 0.13414249329269817, 0.13414249329269817),
    (8.0, 3, 0.07919441402586026, 0.07919441402586029),
    (8.0, 11, 0.0001258193620214005, 0.00012581936202140056),
    (8.0, 17, 3.864565607274886e-08, 3.864565607274888e-08),
    (8.0, 42, 6.689715416979876e-30, 6.689715416979874e-30),
    (1000.0, -361, 1.2155443906736816e-30, 1.2155443906736811e-30),
    (1000.0, -63, 0.001733648946675619, 0.001733648946675621),
    (1000.0, -1, 0.012610930256928632, 0.012610930256928629),
    (1000.0, 0, 0.012617240455891238, 0.012617240455891257),
    (1000.0, 1, 0.012610930256928632, 0.012610930256928629),
    (1000.0, 32, 0.007559852653173097, 0.0075598526531731065),
    (1000.0, 126, 4.53275405238103e-06, 4.532754052381035e-06),
    (1000.0, 190, 1.9117254275472797e-10, 1.911725427547281e-10),
    (1000.0, 361, 1.2155443906736816e-30, 1.2155443906736811e-30),
    (
        250000.0,
        -5565,
        1.008022017725881e-30,
        1.0080220177258853e-30,
    ),
    (
        250000.0,
        -1000,
        0.00010798184304177786,
        0.00010798184304177896,
    ),
    (250000.0, -1, 0.0007978833639745191, 0.0007978833639745281),
    (250000.0, 0, 0.0007978849597460335, 0.0007978849597460434),
    (250000.0, 1, 0.0007978833639745191, 0.0007978833639745281),
    (250000.0, 500, 0.00048394128772375036, 0.0004839412877237552),
    (
        250000.0,
        2000,
        2.6766772297029123e-07,
        2.676677229702923e-07,
    ),
    (250000.0, 3000, 1.215395920753379e-11, 1.215395920753384e-11),
    (
        250000.0,
        5565,
        1.008022017725881e-30,
        1.0080220177258853e-30,
    ),
    (1000000.0, 0, 0.00039894233026923823, 0.00039894233026924577),
    (
        1000000.0,
        3000,
        4.431853951745881e-06,
        4.431853951745946e-06,
    ),
    (
        1000000.0,
        11068,
        1.0011423751443275e-30,
        1.001142375144336e-30,
    ),
];

/// Tails: V, k, scipy's `cdf(k)` (k < 0) or `sf(k)` (k > 0), mpmath's value. scipy's `sf` is
/// 1 − cdf in the right tail and loses it (0.0 at V = 1000, k = 254), and its `cdf` is off by
/// 1.8e-11 at V = 250000, k = −4001: scipy's tails are checked to 1e-10 on the left only, and
/// ours against mpmath everywhere.
const TAILS: [(f64, i64, f64, f64); 24] = [
    (0.5, -3, 0.0017095038808899894, 0.0017095038808899892),
    (0.5, 3, 0.00010516237332458545, 0.00010516237332452842),
    (0.5, -5, 5.2027544467790066e-06, 5.202754446779005e-06),
    (0.5, 5, 2.151489253421346e-07, 2.1514892530884122e-07),
    (0.5, -7, 7.640476962702458e-09, 7.64047696270246e-09),
    (0.5, 7, 2.377159580291277e-10, 2.377157998686303e-10),
    (8.0, -9, 0.0016497865152718212, 0.001649786515271821),
    (8.0, 9, 0.0005631875864642311, 0.0005631875864641882),
    (8.0, -18, 1.0273463901465396e-08, 1.0273463901465381e-08),
    (8.0, 18, 2.055024594938004e-09, 2.055024503165167e-09),
    (8.0, -24, 3.3904442956767657e-13, 3.3904442956767743e-13),
    (8.0, 24, 5.262457136723242e-14, 5.2620365942080114e-14),
    (1000.0, -96, 0.001266664431616848, 0.0012666644316168517),
    (1000.0, 96, 0.0011406933046390622, 0.0011406933046405558),
    (1000.0, -191, 8.933028829088288e-10, 8.933028829088203e-10),
    (1000.0, 191, 7.351245168152332e-10, 7.351253259404251e-10),
    (1000.0, -254, 6.396121554418139e-16, 6.396121554418175e-16),
    (1000.0, 254, 0.0, 4.955332836686619e-16),
    (
        250000.0,
        -1501,
        0.0013454838884326414,
        0.0013454838884326603,
    ),
    (250000.0, 1501, 0.0013366731878993177, 0.0013366731879181934),
    (
        250000.0,
        -3001,
        9.807233357073792e-10,
        9.807233357073935e-10,
    ),
    (250000.0, 3001, 9.68698121717182e-10, 9.687143732612306e-10),
    (
        250000.0,
        -4001,
        6.174651616187434e-16,
        6.174651616301528e-16,
    ),
    (250000.0, 4001, 0.0, 6.075148604977836e-16),
];

/// K (the smallest with P(|X| > K) < 2^-64), from mpmath.
const SUPPORT: [(f64, i64); 6] = [
    (0.5, 13),
    (8.0, 32),
    (1000.0, 290),
    (100000.0, 2895),
    (250000.0, 4578),
    (1000000.0, 9155),
];

/// T_k = round(2^64 P(X ≤ k)) (k < 0) or 2^64 − round(2^64 P(X > k)) (k ≥ 0), exactly, from
/// 50-digit mpmath sums: the thresholds carry all 64 bits, in the bulk too.
const THRESHOLDS: [(f64, i64, u64); 17] = [
    (8.0, -32, 1),
    (8.0, -10, 10388977272995050),
    (8.0, -1, 7900447350880048480),
    (8.0, 0, 10546296722829503136),
    (8.0, 5, 17969773452368613329),
    (8.0, 31, 18446744073709551615),
    (1000.0, -250, 32439),
    (1000.0, -100, 15282502100390377),
    (1000.0, -1, 9106998534051635589),
    (1000.0, 0, 9339745539657916027),
    (1000.0, 50, 17429818300925310337),
    (1000.0, 249, 18446744073709519177),
    (250000.0, -3000, 18315353356),
    (250000.0, -1500, 24983304109604065),
    (250000.0, -1, 9216012847028427153),
    (250000.0, 0, 9230731226681124463),
    (250000.0, 2000, 18446162286528508602),
];

/// The chi-square bins for n = 200,000 draws: V, B (every k in [−B, B] has n p_k ≥ 5), bins, and
/// scipy's `chi2.isf(1e-6, bins − 1)`.
const CHI2: [(f64, i64, usize, f64); 2] = [
    (8.0, 12, 25, 72.22885382014432),
    (1000.0, 111, 225, 339.3620010787114),
];

/// The sizes the tests use.
const SIZES: [f64; 5] = [0.5, 8.0, 1000.0, 250_000.0, 1e6];

fn threshold(t: &SkellamTable, k: i64) -> u64 {
    let (lo, _) = t.support();
    t.thresholds()[(k - lo) as usize]
}

#[test]
fn pmf_matches_scipy_and_mpmath() -> Res {
    for (v, k, scipy, mpmath) in PMF {
        let t = SkellamTable::new(v)?;
        let got = t.pmf().pmf(k);
        assert!(
            rel(got, scipy) <= 1e-12,
            "V {v} k {k}: {got:e} vs scipy {scipy:e}"
        );
        // Double-double, then rounded once to f64: within one ulp of the 50-digit value.
        assert!(
            rel(got, mpmath) <= f64::EPSILON,
            "V {v} k {k}: {got:e} vs mpmath {mpmath:e}"
        );
        assert_eq!(got, t.pmf().pmf(-k), "symmetry at V {v} k {k}");
    }
    Ok(())
}

#[test]
fn tails_are_sums_of_small_terms() -> Res {
    for (v, k, scipy, mpmath) in TAILS {
        let t = SkellamTable::new(v)?;
        let p = t.pmf();
        let got = if k < 0 { p.cdf(k) } else { p.sf(k) };
        assert!(
            rel(got, mpmath) <= f64::EPSILON,
            "V {v} k {k}: {got:e} vs mpmath {mpmath:e}"
        );
        if k < 0 {
            assert!(
                rel(got, scipy) <= 1e-10,
                "V {v} k {k}: {got:e} vs scipy {scipy:e}"
            );
        }
        assert_eq!(p.sf(k), p.cdf(-k - 1), "V {v} k {k}");
    }
    Ok(())
}

#[test]
fn support_is_the_smallest_with_tails_below_2_to_the_minus_64() -> Res {
    for (v, k) in SUPPORT {
        let t = SkellamTable::new(v)?;
        assert_eq!(t.support(), (-k, k), "V {v}");
        assert_eq!(t.thresholds().len(), 2 * k as usize, "V {v}");
        let p = t.pmf();
        let beyond = p.cdf(-k - 1) + p.sf(k);
        assert!(beyond < SLOT, "V {v}: P(|X| > K) = {beyond:e}");
        let one_less = p.cdf(-k) + p.sf(k - 1);
        assert!(one_less >= SLOT, "V {v}: K − 1 would do ({one_less:e})");
    }
    Ok(())
}

#[test]
fn thresholds_equal_the_exact_rounding() -> Res {
    for (v, k, want) in THRESHOLDS {
        let t = SkellamTable::new(v)?;
        assert_eq!(threshold(&t, k), want, "V {v} k {k}");
    }
    Ok(())
}

#[test]
fn thresholds_are_strictly_increasing_and_symmetric() -> Res {
    for v in [
        1e-25, 1e-9, 0.5, 1.0, 8.0, 1000.0, 12_345.678, 250_000.0, 1e6,
    ] {
        let t = SkellamTable::new(v)?;
        let th = t.thresholds();
        let (lo, hi) = t.support();
        assert_eq!(th.len() as i64, hi - lo, "V {v}");
        if th.is_empty() {
            // Only for V so small that P(X ≠ 0) < 2^-64: every draw is 0.
            assert_eq!((lo, hi), (0, 0));
            assert_eq!(t.sample(u64::MAX), 0);
            continue;
        }
        assert!(th[0] >= 1, "V {v}: −K is never drawn");
        for w in th.windows(2) {
            assert!(w[0] < w[1], "V {v}: {} ≥ {}", w[0], w[1]);
        }
        // The top gap 2^64 − T_{K−1} equals the bottom gap T_{−K} − 0.
        let top_gap = (1u128 << 64) - u128::from(th[th.len() - 1]);
        assert_eq!(top_gap, u128::from(th[0]), "V {v}");
        // T_k + T_{−k−1} = 2^64.
        for i in 0..th.len() / 2 {
            let mirrored = u128::from(th[i]) + u128::from(th[th.len() - 1 - i]);
            assert_eq!(mirrored, 1u128 << 64, "V {v} index {i}");
        }
    }
    Ok(())
}

#[test]
fn sampled_pmf_is_the_pmf_up_to_quantisation() -> Res {
    for v in SIZES {
        let t = SkellamTable::new(v)?;
        let (lo, hi) = t.support();
        let mut total = 0.0;
        let mut second_moment = 0.0;
        for k in lo..=hi {
            let q = t.sampled_pmf(k);
            let p = t.pmf().pmf(k);
            total += q;
            second_moment += q * (k * k) as f64;
            assert!(q >= SLOT, "V {v} k {k}: empty slot range");
            // Each threshold is rounded to the nearest slot (error ≤ ½ slot each side) away
            // from the far tails (p ≥ 2^-44); below 2^-12 the f64 p resolves a slot.
            if (1.0 / 4_294_967_296.0 / 4096.0..1.0 / 4096.0).contains(&p) {
                assert!(
                    (q - p).abs() <= 1.25 * SLOT,
                    "V {v} k {k}: |q − p| = {:e} slots",
                    (q - p).abs() / SLOT
                );
            }
            // ... so the relative error is below 2^-40 where p ≥ 2^-24.
            if p >= 1.0 / 16_777_216.0 {
                assert!(rel(q, p) <= 1e-12, "V {v} k {k}: {q:e} vs {p:e}");
            }
            // In the far tails each value keeps at least one slot; the moved mass is small.
            assert!((q - p).abs() <= 32.0 * SLOT, "V {v} k {k}: {q:e} vs {p:e}");
        }
        assert!((total - 1.0).abs() < 1e-13, "V {v}: total {total}");
        assert!(
            rel(second_moment, v) <= 1e-12,
            "V {v}: variance {second_moment}"
        );
        assert_eq!(t.sampled_pmf(lo - 1), 0.0);
        assert_eq!(t.sampled_pmf(hi + 1), 0.0);
    }
    Ok(())
}

#[test]
fn total_variation_bound_is_small_and_at_least_the_cut_tails() -> Res {
    for v in SIZES {
        let t = SkellamTable::new(v)?;
        let eta = t.total_variation_bound();
        let (lo, hi) = t.support();
        let cut = t.pmf().cdf(lo - 1) + t.pmf().sf(hi);
        assert!(
            eta < 1.0 / 1_099_511_627_776.0,
            "V {v}: η = {eta:e} ≥ 2^-40"
        );
        // q puts no mass beyond K, so the distance is at least what lies there.
        assert!(eta >= cut, "V {v}: η = {eta:e} < {cut:e}");
        // and at least half the quantisation error seen where an f64 p resolves a slot.
        let seen: f64 = (lo..=hi)
            .filter(|&k| t.pmf().pmf(k) < 1.0 / 1_073_741_824.0)
            .map(|k| (t.sampled_pmf(k) - t.pmf().pmf(k)).abs())
            .sum::<f64>()
            / 2.0;
        assert!(eta >= seen, "V {v}: η = {eta:e} < {seen:e}");
        let uses = 1_000_000_000u64;
        let penalty = t.delta_penalty(1.0, uses);
        let want = (1.0 + 1.0_f64.exp()) * uses as f64 * eta;
        assert!(rel(penalty, want) < 1e-12, "V {v}: {penalty:e} vs {want:e}");
        assert!(penalty < 1e-3, "V {v}");
        assert_eq!(t.delta_penalty(1.0, 0), 0.0);
    }
    Ok(())
}

#[test]
fn sample_follows_the_thresholds() -> Res {
    let t = SkellamTable::new(8.0)?;
    let (lo, hi) = t.support();
    assert_eq!(t.sample(0), lo);
    assert_eq!(t.sample(u64::MAX), hi);
    for k in lo..hi {
        let tk = threshold(&t, k);
        assert_eq!(t.sample(tk - 1), k, "just below T_{k}");
        assert_eq!(t.sample(tk), k + 1, "at T_{k}");
    }
    let uniforms = [0, 1, u64::MAX / 2, u64::MAX / 2 + 1, u64::MAX];
    let want: Vec<i64> = uniforms.iter().map(|&u| t.sample(u)).collect();
    assert_eq!(noise(&t, &uniforms), want);
    // 2^63 − 1 and 2^63 both lie in T_{−1} ≤ u < T_0.
    // T_{−K} = 1 at V = 8: u = 1 is already −K + 1.
    assert_eq!(threshold(&t, lo), 1);
    assert_eq!(want[..], [lo, lo + 1, 0, 0, hi]);
    Ok(())
}

/// Pearson's statistic of `n` draws against the pmf, with the bins of `skellam_reference.py`:
/// (B, bins, statistic).
fn chi_square(t: &SkellamTable, n: usize, seed: u64) -> (i64, usize, f64) {
    let p = t.pmf();
    let nf = n as f64;
    let mut b = 0;
    while nf * p.pmf(b + 1) >= 5.0 {
        b += 1;
    }
    // cells: X ≤ −B−1, −B, …, B, X ≥ B+1.
    let mut observed = vec![0.0; (2 * b + 3) as usize];
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for _ in 0..n {
        let x = t.sample(rng.next_u64()).clamp(-b - 1, b + 1);
        observed[(x + b + 1) as usize] += 1.0;
    }
    let mut expected: Vec<f64> = (-b - 1..=b + 1).map(|k| nf * p.pmf(k)).collect();
    let last = expected.len() - 1;
    expected[0] = nf * p.cdf(-b - 1);
    expected[last] = nf * p.sf(b);
    if expected[0] < 5.0 {
        // Pool each tail into its neighbour.
        for (from, to) in [(0, 1), (last, last - 1)] {
            expected[to] += expected[from];
            observed[to] += observed[from];
            expected[from] = 0.0;
        }
    }
    let cells: Vec<(f64, f64)> = observed
        .into_iter()
        .zip(expected)
        .filter(|(_, e)| *e > 0.0)
        .collect();
    let stat = cells.iter().map(|(o, e)| (o - e) * (o - e) / e).sum();
    (b, cells.len(), stat)
}

#[test]
fn draws_pass_a_chi_square_test() -> Res {
    for (v, b_want, bins_want, critical) in CHI2 {
        let t = SkellamTable::new(v)?;
        let (b, bins, stat) = chi_square(&t, 200_000, 20_261_207);
        assert_eq!(
            (b, bins),
            (b_want, bins_want),
            "V {v}: the bins of the reference"
        );
        println!(
            "V {v}: chi-square {stat:.2} on {} degrees of freedom",
            bins - 1
        );
        assert!(stat < critical, "V {v}: {stat} ≥ {critical} (p < 1e-6)");
        // The test has teeth: the same draws against the pmf of a 5% larger variance fail it.
        let wrong = SkellamTable::new(v * 1.05)?;
        let mut rng = ChaCha20Rng::seed_from_u64(20_261_207);
        let mut observed = vec![0.0; (2 * b + 1) as usize];
        let mut outside = 0.0;
        for _ in 0..200_000 {
            let x = t.sample(rng.next_u64());
            if x.abs() <= b {
                observed[(x + b) as usize] += 1.0;
            } else {
                outside += 1.0;
            }
        }
        let mut stat_wrong = 0.0;
        for (i, o) in observed.iter().enumerate() {
            let e = 200_000.0 * wrong.pmf().pmf(i as i64 - b);
            stat_wrong += (o - e) * (o - e) / e;
        }
        let e_out = 200_000.0 * 2.0 * wrong.pmf().sf(b);
        stat_wrong += (outside - e_out) * (outside - e_out) / e_out;
        assert!(
            stat_wrong > critical,
            "V {v}: a 5% wrong variance passes ({stat_wrong})"
        );
    }
    Ok(())
}

#[test]
fn summed_noise_has_the_promised_mean_and_variance() -> Res {
    // n holders each add one draw; the sum's variance is n V (what t_min survivors promise).
    let (holders, trials) = (10usize, 20_000usize);
    for v in [8.0, 1000.0, 250_000.0] {
        let t = SkellamTable::new(v)?;
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let sums: Vec<f64> = (0..trials)
            .map(|_| {
                let u: Vec<u64> = (0..holders).map(|_| rng.next_u64()).collect();
                noise(&t, &u).iter().sum::<i64>() as f64
            })
            .collect();
        let nv = holders as f64 * v;
        let tr = trials as f64;
        let mean = sums.iter().sum::<f64>() / tr;
        let var = sums.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / (tr - 1.0);
        // Cumulants of a sum of Skellams: κ2 = κ4 = nV, so Var(s²) ≈ (nV + 2 (nV)²) / trials.
        let mean_sd = (nv / tr).sqrt();
        let var_sd = ((nv + 2.0 * nv * nv) / tr).sqrt();
        assert!(
            mean.abs() < 5.0 * mean_sd,
            "V {v}: mean {mean} (sd {mean_sd})"
        );
        assert!(
            (var - nv).abs() < 5.0 * var_sd,
            "V {v}: variance {var} vs {nv} (sd {var_sd})"
        );
    }
    Ok(())
}

/// SHA-256 of the table for V = 8 ([`SkellamTable::digest`]): a change to the maths changes it.
const DIGEST_V8: &str = "968956fb0f7254dfc350154cf47dbd7c9769a60d1f47f79adacc4f1e287dd41d";

#[test]
fn tables_are_reproducible_and_their_digest_is_pinned() -> Res {
    for v in [0.5, 8.0, 1000.0, 1e6] {
        let a = SkellamTable::new(v)?;
        let b = SkellamTable::new(v)?;
        assert_eq!(a.thresholds(), b.thresholds(), "V {v}");
        assert_eq!(a.digest(), b.digest(), "V {v}");
        assert_eq!(
            a.total_variation_bound().to_bits(),
            b.total_variation_bound().to_bits()
        );
    }
    let hex: String = SkellamTable::new(8.0)?
        .digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, DIGEST_V8);
    let other = SkellamTable::new(8.000_000_001)?;
    assert_ne!(other.digest(), SkellamTable::new(8.0)?.digest());
    Ok(())
}

#[test]
fn bad_variances_are_refused_by_name() {
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = SkellamTable::new(v).err();
        assert!(matches!(e, Some(SkellamError::NotFinite(_))), "{v}: {e:?}");
    }
    for v in [0.0, -0.0, -1.0, -f64::MIN_POSITIVE] {
        let e = SkellamTable::new(v).err();
        assert!(
            matches!(e, Some(SkellamError::NotPositive(_))),
            "{v}: {e:?}"
        );
    }
    for v in [MAX_HOLDER_VARIANCE * (1.0 + f64::EPSILON), f64::MAX] {
        let e = SkellamTable::new(v).err();
        assert!(
            matches!(e, Some(SkellamError::TooLarge { value, max }) if value == v && max == MAX_HOLDER_VARIANCE),
            "{v}: {e:?}"
        );
    }
    let message = SkellamTable::new(-2.0).err().map(|e| e.to_string());
    assert_eq!(
        message.as_deref(),
        Some("holder_variance = -2: must be positive")
    );
    assert!(SkellamTable::new(MAX_HOLDER_VARIANCE).is_ok());
}

#[test]
fn table_for_params_uses_the_holder_variance() -> Res {
    let params = cairn_privacy::SkellamParams {
        clip: 1.0,
        noise_multiplier: 1.0,
        granularity: 0.05,
        beta: 0.0,
        min_survivors: 4,
        dim: 16,
    };
    // (1 · 1 / 0.05)² / 4 = 100.
    let t = SkellamTable::for_params(&params)?;
    assert_eq!(t.variance(), params.holder_variance());
    assert_eq!(t.thresholds(), SkellamTable::new(100.0)?.thresholds());
    Ok(())
}

/// Not an assertion: the build time of the largest table (`cargo test -p cairn-privacy --test
/// skellam -- --nocapture build_time`).
#[test]
fn build_time() -> Res {
    for v in [8.0, 1000.0, 1e5, 1e6] {
        let start = std::time::Instant::now();
        let t = SkellamTable::new(v)?;
        let took = start.elapsed();
        println!(
            "V {v}: K {}, {} thresholds ({} KiB), η ≤ {:.3e}, built in {took:?}",
            t.support().1,
            t.thresholds().len(),
            t.thresholds().len() * 8 / 1024,
            t.total_variation_bound()
        );
    }
    Ok(())
}

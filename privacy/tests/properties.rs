//! Properties the accountant and the pipeline must have, whatever the reference numbers.

use cairn_privacy::calibrate::{epsilon_after, noise_multiplier_for, NoiseModel, Target};
use cairn_privacy::rdp::{
    default_orders, poisson_subsampled_rdp, skellam_rdp, subsampled_gaussian_rdp, Mechanism,
    RdpAccountant,
};
use cairn_privacy::rotation::Rotation;
use cairn_privacy::rounding::{conditional_round, rounded_l2_bound};
use cairn_privacy::SkellamParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

type Res = Result<(), Box<dyn std::error::Error>>;

#[test]
fn skellam_is_above_the_gaussian_and_converges_to_it() {
    let (l2, dim) = (100.0_f64, 1024.0_f64);
    let l1 = l2 * dim.sqrt().min(l2);
    for a in [2.0, 5.0, 32.0, 256.0] {
        let mut last_ratio = f64::INFINITY;
        for v in [1e2, 1e4, 1e6, 1e8, 1e10] {
            let gauss = a * l2 * l2 / (2.0 * v);
            let sk = skellam_rdp(a, l1, l2, v);
            assert!(sk >= gauss, "order {a} V {v}");
            let ratio = sk / gauss;
            assert!(
                ratio <= last_ratio,
                "ratio not decreasing at order {a} V {v}"
            );
            last_ratio = ratio;
        }
        assert!(last_ratio < 1.0 + 1e-6, "order {a}: ratio {last_ratio}");
    }
}

#[test]
fn subsampling_never_hurts_and_grows_with_q() -> Res {
    let orders = default_orders();
    let mech = |q| Mechanism::SubsampledSkellam {
        q,
        l1: 3200.0,
        l2: 100.0,
        variance: 2e4,
    };
    let full = mech(1.0).rdp(&orders)?;
    let mut previous = vec![0.0; orders.len()];
    for q in [0.001, 0.01, 0.1, 0.5, 0.9] {
        let r = mech(q).rdp(&orders)?;
        for i in 0..orders.len() {
            assert!(r[i] <= full[i], "q {q} order {}", orders[i]);
            assert!(r[i] >= previous[i], "q {q} order {}", orders[i]);
        }
        previous = r;
    }
    Ok(())
}

#[test]
fn general_bound_is_above_the_exact_subsampled_gaussian() -> Res {
    // Zhu-Wang's general bound applied to the Gaussian's RDP must not beat the exact value.
    for (q, sigma) in [(0.01, 1.0), (0.1, 2.0), (0.5, 0.7)] {
        for m in [2u64, 3, 8, 32, 128] {
            let general = poisson_subsampled_rdp(q, m, |l| l as f64 / (2.0 * sigma * sigma));
            let exact = subsampled_gaussian_rdp(q, sigma, m as f64)?;
            assert!(
                general >= exact * (1.0 - 1e-12),
                "q {q} σ {sigma} order {m}"
            );
        }
    }
    Ok(())
}

#[test]
fn epsilon_grows_with_rounds_and_falls_with_noise() -> Res {
    let model = NoiseModel::Skellam {
        scaled_clip: 500.0,
        sensitivity: cairn_privacy::Sensitivity {
            l1: 501.0 * 32.0,
            l2: 501.0,
        },
    };
    for m in [NoiseModel::Gaussian, model] {
        let mut last = 0.0;
        for rounds in [1, 2, 10, 100, 1000] {
            let e = epsilon_after(&m, 1.2, 0.05, rounds, 1e-5)?.epsilon;
            assert!(e > last, "{m:?}: {rounds} rounds");
            last = e;
        }
        let mut last = f64::INFINITY;
        for z in [0.5, 0.8, 1.0, 2.0, 5.0] {
            let e = epsilon_after(&m, z, 0.05, 100, 1e-5)?.epsilon;
            assert!(e < last, "{m:?}: z {z}");
            last = e;
        }
    }
    let mut acc = RdpAccountant::new();
    let zero = acc.epsilon(1e-5)?;
    assert_eq!(zero.epsilon, 0.0);
    acc.compose(
        &Mechanism::SubsampledGaussian {
            q: 0.1,
            noise_multiplier: 0.0,
        },
        0,
    )?;
    assert_eq!(acc.epsilon(1e-5)?.epsilon, 0.0);
    Ok(())
}

#[test]
fn params_calibrate_and_account() -> Res {
    let mut p = SkellamParams {
        clip: 0.5,
        noise_multiplier: 1.0,
        granularity: 1e-4,
        beta: (-0.5_f64).exp(),
        min_survivors: 3,
        dim: 5000,
    };
    let target = Target {
        epsilon: 3.0,
        delta: 1e-5,
    };
    p.noise_multiplier = noise_multiplier_for(&p.noise_model()?, target, 1.0, 30)?;
    p.validate()?;
    let mut acc = RdpAccountant::new();
    acc.compose(&p.mechanism(1.0)?, 30)?;
    let e = acc.epsilon(1e-5)?.epsilon;
    assert!(e <= 3.0 && e > 2.99, "{e}");
    // Five holders' sum fits cairn's 32-bit ring except with probability 2^-40.
    let bits = p.check_ring(5, 2f64.powi(-40), cairn_privacy::SECAGG_RING_BITS)?;
    assert!(bits <= 32, "{bits}");
    Ok(())
}

#[test]
fn rotate_round_sum_and_invert_recovers_the_sum() -> Res {
    let (dim, holders, gamma) = (300, 5, 1e-3);
    let clip = 1.0;
    let rotation = Rotation::new([9; 32], dim)?;
    let n = rotation.padded_dim();
    let bound = rounded_l2_bound(clip / gamma, (-0.5_f64).exp(), n)?;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut true_sum = vec![0.0; dim];
    let mut int_sum = vec![0i64; n];
    for _ in 0..holders {
        let mut x: Vec<f64> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        for v in &mut x {
            *v *= clip / norm.max(clip);
        }
        for (s, v) in true_sum.iter_mut().zip(&x) {
            *s += v;
        }
        let scaled: Vec<f64> = rotation.rotate(&x)?.iter().map(|v| v / gamma).collect();
        let rounded = conditional_round(&scaled, bound, 100, &mut rng)?;
        let norm_sq: i64 = rounded.iter().map(|v| v * v).sum();
        assert!((norm_sq as f64).sqrt() <= bound);
        for (s, v) in int_sum.iter_mut().zip(rounded) {
            *s += v;
        }
    }
    let decoded = rotation.unrotate(
        &int_sum
            .iter()
            .map(|&v| v as f64 * gamma)
            .collect::<Vec<_>>(),
    )?;
    // Each coordinate's rounding error is below γ per holder; after the rotation the error
    // vector's norm is at most γ √(n · holders) in the worst case — far less in practice.
    let err: f64 = decoded
        .iter()
        .zip(&true_sum)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    assert!(err <= gamma * ((n * holders) as f64).sqrt(), "error {err}");
    Ok(())
}

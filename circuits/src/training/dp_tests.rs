//! Distributed DP in the training proof ([`super::dp`]): the native rotation and rounding, an
//! honest noised witness, one cheating witness per part of the noise statement, a Groth16
//! round trip, and the constraint counts (with and without noise).

use ark_bn254::Fr;
use ark_std::UniformRand;
use cairn_model::ModelSpec;
use cairn_privacy::{Rotation, SkellamTable};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::circuit::TrainingCircuit;
use super::dp::{grid_bits, noise_constraints, MAX_ROUNDING_TRIES};
use super::tests::{check, fixture, Fixture};
use super::*;
use crate::noise;
use crate::pedersen::{self, Generators};

/// G: the grid step of the test shapes (fixed point 2^16 after the unnormalised transform).
const GRID: u64 = 1024;
/// The clip bound of the fixture (`HyperParams::clip_norm`).
const CLIP: f64 = 5.0;
/// n = 5 parameters (4 weights and a bias), padded to d = 8.
const D: usize = 8;

/// The sampler table of variance 8 (K = 32).
fn table() -> (Vec<u64>, i64) {
    let t = SkellamTable::new(8.0).expect("table of variance 8");
    (t.thresholds().to_vec(), t.support().1)
}

/// The noise constants for grid step `grid`: B from the clip bound on the grid
/// (`clip · 2^16 · √d / G`, conditional rounding with β = e^(−1/2)).
fn noise_shape(grid: u64) -> NoiseShape {
    let (thresholds, k) = table();
    let c = CLIP * 65536.0 * (D as f64).sqrt() / grid as f64;
    let b =
        cairn_privacy::rounding::rounded_l2_bound(c, (-0.5f64).exp(), D).expect("rounded bound");
    NoiseShape {
        grid,
        norm_sq_bound: (b * b).floor() as u64,
        k,
        thresholds,
    }
}

struct Dp {
    f: Fixture,
    shape: Shape,
    input: NoiseInput,
    witness: Witness,
}

/// The logistic regression fixture (K = 1) as a noise shape, and its honest noised witness.
fn dp_fixture(noise: NoiseShape) -> Dp {
    let f = fixture(vec![], 1, 0.01);
    let shape = Shape {
        noise: Some(noise),
        ..f.shape.clone()
    };
    let plain = Witness::new(
        &shape,
        &f.tree,
        &f.rows,
        f.indices.clone(),
        f.model.clone(),
        f.hyper,
        f.witness.private.update.clone(),
        f.witness.private.rho,
    )
    .expect("plain witness");
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let rotation = Rotation::new([5; 32], shape.model.param_count()).expect("rotation");
    let input = NoiseInput {
        seed: Fr::rand(&mut rng),
        round: 3,
        negative: rotation.negative().to_vec(),
    };
    let witness = plain
        .noised(&shape, input.clone(), &mut rng)
        .expect("noised witness");
    Dp {
        f,
        shape,
        input,
        witness,
    }
}

fn satisfied(shape: &Shape, w: &Witness) -> bool {
    check(shape, &w.public, &w.private).0
}

/// `w` with y and z replaced and the commitment recomputed natively: only the property under
/// test breaks.
fn with_vectors(w: &Witness, rounded: Vec<i64>, noisy: Vec<i64>) -> Witness {
    let mut w = w.clone();
    w.public.commitment =
        pedersen::commit(&Generators::new(noisy.len()), &noisy, &w.private.rho).expect("commit");
    let n = w.private.noise.as_mut().expect("noised");
    n.rounded = rounded;
    n.noisy = noisy;
    w
}

fn noise_of(w: &Witness) -> &NoisePrivate {
    w.private.noise.as_ref().expect("noised")
}

#[test]
fn rotate_fixed_is_the_float_rotation_times_sqrt_d() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (dim, seed) in [(5usize, 1u8), (8, 2), (13, 3), (1, 4)] {
        let rotation = Rotation::new([seed; 32], dim).expect("rotation");
        let neg = rotation.negative();
        let d = neg.len();
        let x: Vec<i64> = (0..dim)
            .map(|_| rng.gen_range(-(1 << 23)..1 << 23))
            .collect();
        let u = rotate_fixed(&x, neg);
        assert_eq!(u.len(), d);
        // The direct O(d²) evaluation of H·D·x.
        for (j, &uj) in u.iter().enumerate() {
            let direct: i128 = x
                .iter()
                .enumerate()
                .map(|(k, &v)| {
                    let h = if (j & k).count_ones() % 2 == 0 { 1 } else { -1 };
                    let s = if neg[k] { -1 } else { 1 };
                    h * s * i128::from(v)
                })
                .sum();
            assert_eq!(uj, direct, "dim {dim} j {j}");
        }
        // The normalised float rotation, times √d.
        let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let yf = rotation.rotate(&xf).expect("rotate");
        for (&uj, &yj) in u.iter().zip(&yf) {
            let want = yj * (d as f64).sqrt();
            assert!(
                (uj as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{uj} {want}"
            );
        }
    }
    // Missing signs are +1 and the length is a power of two.
    assert_eq!(rotate_fixed(&[1, 2, 3], &[]), vec![6, 2, 0, -4]);
    assert_eq!(rotate_fixed(&[1, 2, 3], &[false, true]), vec![2, 6, -4, 0]);
}

#[test]
fn round_to_grid_stays_on_the_grid_and_under_the_bound() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let ns = noise_shape(GRID);
    let g = i128::from(GRID);
    for _ in 0..50 {
        let u: Vec<i128> = (0..D).map(|_| rng.gen_range(-200_000..200_000)).collect();
        let y = round_to_grid(&u, &ns, &mut rng).expect("rounds");
        for (&yj, &uj) in y.iter().zip(&u) {
            assert!((g * i128::from(yj) - uj).abs() < g, "y {yj} u {uj}");
        }
        let norm: u64 = y.iter().map(|&v| (v * v) as u64).sum();
        assert!(norm <= ns.norm_sq_bound);
    }
    // Multiples of G round exactly, negatives floor towards −∞.
    let exact = round_to_grid(&[3 * g, -2 * g, 0], &ns, &mut rng).expect("rounds");
    assert_eq!(exact, vec![3, -2, 0]);
    let y = round_to_grid(&[-g / 2], &ns, &mut rng).expect("rounds");
    assert!(y == vec![-1] || y == vec![0]);
}

#[test]
fn conditional_rounding_is_unbiased() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let ns = noise_shape(GRID);
    let g = i128::from(GRID);
    let u = [3 * g + g / 4, -2 * g - 3 * g / 4, g / 2, 7];
    let draws = 4000;
    let mut sums = [0i64; 4];
    for _ in 0..draws {
        let y = round_to_grid(&u, &ns, &mut rng).expect("rounds");
        for (s, v) in sums.iter_mut().zip(y) {
            *s += v;
        }
    }
    for (&s, &uj) in sums.iter().zip(&u) {
        let mean = s as f64 / draws as f64;
        let want = uj as f64 / g as f64;
        // Standard deviation of a mean of 4000 Bernoullis: at most 0.5/√4000 ≈ 0.008.
        assert!((mean - want).abs() < 0.04, "mean {mean} want {want}");
    }
}

#[test]
fn rounding_gives_up_after_a_thousand_tries() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let ns = NoiseShape {
        norm_sq_bound: 1,
        ..noise_shape(GRID)
    };
    let g = i128::from(GRID);
    let got = round_to_grid(&[10 * g, 0], &ns, &mut rng);
    assert!(matches!(
        got,
        Err(TrainingError::Rounding { tries }) if tries == MAX_ROUNDING_TRIES
    ));
    assert_eq!(MAX_ROUNDING_TRIES, 1000);
    let zero = NoiseShape {
        grid: 0,
        ..noise_shape(GRID)
    };
    assert!(round_to_grid(&[1], &zero, &mut rng).is_err());
}

#[test]
fn noise_constants_are_validated_and_hashed() {
    let base = fixture(vec![], 1, 0.01).shape;
    let ok = noise_shape(GRID);
    let with = |n: NoiseShape| Shape {
        noise: Some(n),
        ..base.clone()
    };
    with(ok.clone()).validate().expect("valid");
    let (t, k) = table();
    let bad = [
        NoiseShape {
            k: k - 1,
            ..ok.clone()
        },
        NoiseShape {
            thresholds: t.iter().rev().copied().collect(),
            ..ok.clone()
        },
        NoiseShape {
            grid: 0,
            ..ok.clone()
        },
        NoiseShape {
            grid: 1 << 40,
            ..ok.clone()
        },
        NoiseShape {
            norm_sq_bound: 0,
            ..ok.clone()
        },
        // ⌊√B⌋ + K = 2^23 − 32 + 32 does not fit 24 signed bits.
        NoiseShape {
            norm_sq_bound: ((1u64 << 23) - 32).pow(2),
            ..ok.clone()
        },
    ];
    for n in bad {
        assert!(with(n.clone()).validate().is_err(), "{n:?}");
    }
    with(NoiseShape {
        norm_sq_bound: ((1u64 << 23) - 33).pow(2),
        grid: (1 << 40) - 1,
        ..ok.clone()
    })
    .validate()
    .expect("the largest valid constants");
    // Every constant names the keys.
    let h = with(ok.clone()).hash();
    assert_ne!(h, base.hash());
    for other in [
        NoiseShape {
            grid: GRID + 1,
            ..ok.clone()
        },
        NoiseShape {
            norm_sq_bound: ok.norm_sq_bound + 1,
            ..ok.clone()
        },
        NoiseShape {
            thresholds: {
                let mut t = t.clone();
                t[0] -= 1;
                t
            },
            ..ok.clone()
        },
        {
            let t = SkellamTable::new(9.0).expect("table");
            NoiseShape {
                k: t.support().1,
                thresholds: t.thresholds().to_vec(),
                ..ok.clone()
            }
        },
    ] {
        assert_ne!(with(other).hash(), h);
    }
}

#[test]
fn an_honest_noised_witness_satisfies() {
    let dp = dp_fixture(noise_shape(GRID));
    let w = &dp.witness;
    let n = noise_of(w);
    let ns = dp.shape.noise.as_ref().expect("noise shape");
    assert_eq!(n.rounded.len(), D);
    let e = noise::noise(dp.input.seed, dp.input.round, &ns.thresholds, ns.k, D);
    let sum: Vec<i64> = n.rounded.iter().zip(&e).map(|(y, e)| y + e).collect();
    assert_eq!(n.noisy, sum);
    assert_ne!(n.noisy, n.rounded, "noise present");
    assert_eq!(w.committed(), &n.noisy[..]);
    assert_eq!(dp.f.witness.committed(), &dp.f.witness.private.update[..]);
    // y is on the grid around u = H·D·x, under the bound; the public parts are the input's.
    let u = rotate_fixed(&w.private.update, &dp.input.negative);
    for (&y, &u) in n.rounded.iter().zip(&u) {
        assert!((i128::from(GRID) * i128::from(y) - u).abs() < i128::from(GRID));
    }
    let public = w.public.noise.as_ref().expect("noise public");
    assert_eq!(
        public.seed_commitment,
        noise::seed_commitment(dp.input.seed)
    );
    assert_eq!(public.round, 3);
    assert_eq!(public.signs_hash, signs_hash(&dp.input.negative));
    assert_eq!(
        w.public.commitment,
        pedersen::commit(&Generators::new(D), &n.noisy, &w.private.rho).expect("commit")
    );
    assert!(satisfied(&dp.shape, w));
    // The noised statement does not fit the plain shape, nor the plain one the noise shape.
    assert!(TrainingCircuit {
        shape: dp.f.shape.clone(),
        public: w.public.clone(),
        private: w.private.clone(),
    }
    .count()
    .is_err());
    assert!(TrainingCircuit {
        shape: dp.shape.clone(),
        public: dp.f.witness.public.clone(),
        private: dp.f.witness.private.clone(),
    }
    .count()
    .is_err());
    // Errors: a shape without noise, signs of the wrong count.
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    assert!(dp
        .f
        .witness
        .clone()
        .noised(&dp.f.shape, dp.input.clone(), &mut rng)
        .is_err());
    let short = NoiseInput {
        negative: vec![false; 5],
        ..dp.input.clone()
    };
    assert!(dp
        .f
        .witness
        .clone()
        .noised(&dp.shape, short, &mut rng)
        .is_err());
}

#[test]
fn skipped_or_foreign_noise_is_unsatisfied() {
    let dp = dp_fixture(noise_shape(GRID));
    let w = &dp.witness;
    let n = noise_of(w).clone();
    let ns = dp.shape.noise.as_ref().expect("noise shape");
    // No noise: z = y, committed.
    let skipped = with_vectors(w, n.rounded.clone(), n.rounded.clone());
    assert!(!satisfied(&dp.shape, &skipped));
    // Another seed's noise while claiming the committed seed.
    let other = dp.input.seed + Fr::from(1u64);
    let e = noise::noise(other, dp.input.round, &ns.thresholds, ns.k, D);
    let z: Vec<i64> = n.rounded.iter().zip(&e).map(|(y, e)| y + e).collect();
    assert_ne!(z, n.noisy);
    let foreign = with_vectors(w, n.rounded.clone(), z.clone());
    assert!(!satisfied(&dp.shape, &foreign));
    // ... and with that seed as the witness: its commitment is not the public one.
    let mut foreign_seed = foreign.clone();
    foreign_seed.private.noise.as_mut().expect("noised").seed = other;
    assert!(!satisfied(&dp.shape, &foreign_seed));
    // Another round's noise.
    let e = noise::noise(dp.input.seed, dp.input.round + 1, &ns.thresholds, ns.k, D);
    let z: Vec<i64> = n.rounded.iter().zip(&e).map(|(y, e)| y + e).collect();
    assert!(!satisfied(
        &dp.shape,
        &with_vectors(w, n.rounded.clone(), z)
    ));
    // One draw changed by one.
    let mut z = n.noisy.clone();
    z[2] += 1;
    assert!(!satisfied(
        &dp.shape,
        &with_vectors(w, n.rounded.clone(), z)
    ));
}

#[test]
fn off_grid_or_over_norm_rounding_is_unsatisfied() {
    let dp = dp_fixture(noise_shape(GRID));
    let w = &dp.witness;
    let n = noise_of(w).clone();
    // y two steps off the grid in one coordinate (z follows, recommitted).
    for j in [0, 5] {
        for step in [2i64, -2] {
            let (mut y, mut z) = (n.rounded.clone(), n.noisy.clone());
            y[j] += step;
            z[j] += step;
            assert!(!satisfied(&dp.shape, &with_vectors(w, y, z)), "{j} {step}");
        }
    }
    // The other grid point (one step): still on the grid, so satisfied (the rounding is
    // the holder's; its norm bound is what binds it).
    let u = rotate_fixed(&w.private.update, &dp.input.negative);
    let g = i128::from(GRID);
    let j = (0..D)
        .find(|&j| u[j].rem_euclid(g) != 0)
        .expect("a coordinate between grid points");
    let other = if i128::from(n.rounded[j]) * g > u[j] {
        -1
    } else {
        1
    };
    let (mut y, mut z) = (n.rounded.clone(), n.noisy.clone());
    y[j] += other;
    z[j] += other;
    assert!(satisfied(&dp.shape, &with_vectors(w, y, z)));

    // ‖y‖² over B: the shape whose bound is exactly the honest ‖y‖² (inclusive) admits y,
    // not the other grid point of a coordinate that lengthens it.
    let norm: i64 = n.rounded.iter().map(|v| v * v).sum();
    let tight = Shape {
        noise: Some(NoiseShape {
            norm_sq_bound: u64::try_from(norm).expect("norm"),
            ..dp.shape.noise.clone().expect("noise shape")
        }),
        ..dp.shape.clone()
    };
    assert!(satisfied(&tight, w));
    let j = (0..D)
        .find(|&j| {
            let r = u[j].rem_euclid(g);
            let y = i128::from(n.rounded[j]);
            // The other grid point is farther from 0.
            r != 0
                && (if y * g > u[j] {
                    (y - 1).abs()
                } else {
                    (y + 1).abs()
                }) > y.abs()
        })
        .expect("a coordinate whose other rounding is longer");
    let step = if i128::from(n.rounded[j]) * g > u[j] {
        -1
    } else {
        1
    };
    let (mut y, mut z) = (n.rounded.clone(), n.noisy.clone());
    y[j] += step;
    z[j] += step;
    let longer = with_vectors(w, y, z);
    assert!(
        satisfied(&dp.shape, &longer),
        "on the grid under the real B"
    );
    assert!(!satisfied(&tight, &longer), "over the tight B");
}

#[test]
fn wrong_signs_are_unsatisfied() {
    let dp = dp_fixture(noise_shape(GRID));
    let w = &dp.witness;
    let n = noise_of(w).clone();
    let ns = dp.shape.noise.as_ref().expect("noise shape");
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    // The witness rotates with other signs (y and z recomputed for them), the public hash is
    // the round's.
    let mut flipped = n.negative.clone();
    flipped[1] = !flipped[1];
    let u = rotate_fixed(&w.private.update, &flipped);
    let y = round_to_grid(&u, ns, &mut rng).expect("rounds");
    let e = noise::noise(dp.input.seed, dp.input.round, &ns.thresholds, ns.k, D);
    let z: Vec<i64> = y.iter().zip(&e).map(|(y, e)| y + e).collect();
    let mut cheat = with_vectors(w, y, z);
    cheat.private.noise.as_mut().expect("noised").negative = flipped.clone();
    assert!(!satisfied(&dp.shape, &cheat));
    // The same cheat with the hash of the signs it used is honest (for those signs).
    let mut relabelled = cheat.clone();
    relabelled.public.noise.as_mut().expect("noised").signs_hash = signs_hash(&flipped);
    assert!(satisfied(&dp.shape, &relabelled));
    // The honest vectors with the flipped signs as witness: neither hash fits.
    let mut swapped = w.clone();
    swapped.private.noise.as_mut().expect("noised").negative = flipped;
    assert!(!satisfied(&dp.shape, &swapped));
}

#[test]
fn a_noised_proof_verifies_and_binds_round_and_seed() {
    let dp = dp_fixture(noise_shape(GRID));
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (pk, vk) = proof::setup(&dp.shape, &mut rng).expect("setup");
    let prover = prover::Prover::new(&dp.shape, pk).expect("prover");
    let pvk = proof::prepare(&vk);
    let w = &dp.witness;
    let pi = prover.prove(w, &mut rng).expect("prove");
    assert!(proof::verify(&pvk, &w.public, &pi).expect("verify"));
    let public = w.public.noise.clone().expect("noise public");
    let mut other_round = w.public.clone();
    other_round.noise = Some(NoisePublic {
        round: public.round + 1,
        ..public.clone()
    });
    assert!(!proof::verify(&pvk, &other_round, &pi).expect("verify"));
    let mut other_seed = w.public.clone();
    other_seed.noise = Some(NoisePublic {
        seed_commitment: noise::seed_commitment(dp.input.seed + Fr::from(1u64)),
        ..public.clone()
    });
    assert!(!proof::verify(&pvk, &other_seed, &pi).expect("verify"));
    let mut other_signs = w.public.clone();
    other_signs.noise = Some(NoisePublic {
        signs_hash: signs_hash(&[true; D]),
        ..public
    });
    assert!(!proof::verify(&pvk, &other_signs, &pi).expect("verify"));
    // The commitment to x (the plain witness's) does not verify either.
    let mut to_x = w.public.clone();
    to_x.commitment = pedersen::commit(
        &Generators::new(D),
        &{
            let mut x = w.private.update.clone();
            x.resize(D, 0);
            x
        },
        &w.private.rho,
    )
    .expect("commit");
    assert!(!proof::verify(&pvk, &to_x, &pi).expect("verify"));
}

#[test]
fn shapes_without_noise_keep_their_hash_and_constraints() {
    // The logistic-regression fixture shape of `tests` (K = 2): its hash as of the commit
    // before noise entered the circuit (c245eff), and its pinned 5,825 constraints.
    let shape = Shape {
        model: ModelSpec::mlp(4, vec![]),
        local_steps: 2,
        batch_size: 2,
        tree_depth: 4,
        feature_bits: 20,
        block_rows: 2,
        sampled_steps: None,
        noise: None,
    };
    assert_eq!(
        shape.id(),
        "5e79dcc42083649a952b1bcb6dab54c9dd82d2aa38b37eb83312d5ee4fa72b28"
    );
    let bd = TrainingCircuit::shape_breakdown(&shape).expect("breakdown");
    assert_eq!(bd.total, 5825);
    assert_eq!(bd.noise, 0);
}

#[test]
fn noise_constraint_counts() {
    let dp = dp_fixture(noise_shape(GRID));
    let ns = dp.shape.noise.as_ref().expect("noise shape");
    let (ok, bd) = check(&dp.shape, &dp.witness.public, &dp.witness.private);
    assert!(ok);
    eprintln!(
        "noise shape (n = 5, d = {D}, K = {}, G = {GRID}, B = {}): {bd:?}",
        ns.k, ns.norm_sq_bound
    );
    assert_eq!(
        bd.total,
        bd.hashing
            + bd.ranges
            + bd.merkle
            + bd.training
            + bd.chain
            + bd.tolerance
            + bd.norm
            + bd.noise
            + bd.commitment
    );
    // The documented formula (module docs of `dp`), exact here.
    let k = ns.k as usize;
    let g = grid_bits(GRID) as usize;
    assert_eq!(g, 11);
    let b = 64 - ns.norm_sq_bound.leading_zeros() as usize;
    let draw = noise::draw_constraints(k);
    assert_eq!(draw, 160, "K = 32: levels (5, 13), 3·5 + 13 + 132");
    let formula = D * (draw + 2 * g + 28) + 5 + D.div_ceil(3) * 898 + (b + 1) + 238 + 238;
    assert_eq!(bd.noise, formula);
    assert_eq!(bd.noise, 4_876);
    assert_eq!(bd.noise, noise_constraints(ns, 5, D));
    // Within the rough per-coordinate figure of `noise` (d·(draw + 298), the PRG and the
    // draws) and that plus the grid, range and sign terms and the fixed costs (a partial
    // last PRG block, the norm slack, the seed commitment and the signs hash).
    assert!(bd.noise >= D * (draw + 298));
    assert!(bd.noise <= D * (draw + 2 * g + 328) + 5 + b + 1100);
    // Key generation synthesises the same constraints without values.
    assert_eq!(
        TrainingCircuit::shape_breakdown(&dp.shape).expect("setup"),
        bd
    );
    // The commitment over d = 8 values instead of n = 5: three more values of 24 bits.
    let (_, plain) = check(&dp.f.shape, &dp.f.witness.public, &dp.f.witness.private);
    eprintln!("the same shape without noise: {plain:?}");
    assert_eq!(plain.noise, 0);
    assert!(bd.commitment > plain.commitment);
    assert_eq!(
        bd.total - bd.noise - bd.commitment,
        plain.total - plain.commitment
    );
}

#[test]
fn a_sampled_step_proof_carries_noise_too() {
    // K = 3 steps, one challenged: the noise inputs sit between the six and the digests.
    let f = fixture(vec![], 3, 0.0);
    let shape = Shape {
        sampled_steps: Some(1),
        noise: Some(noise_shape(GRID)),
        ..f.shape.clone()
    };
    let traj = trajectory(&shape, &f.rows, &f.indices, &f.model, &f.hyper).expect("trajectory");
    let update = traj.update(&f.model).expect("update");
    let w = Witness::sampled(
        &shape,
        &f.tree,
        &f.rows,
        &f.indices,
        &traj,
        &[1],
        f.model.clone(),
        f.hyper,
        update,
        pedersen::Scalar::from(7u64),
    )
    .expect("sampled witness");
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let input = NoiseInput {
        seed: Fr::rand(&mut rng),
        round: 1,
        negative: Rotation::new([9; 32], 5)
            .expect("rotation")
            .negative()
            .to_vec(),
    };
    let w = w.noised(&shape, input, &mut rng).expect("noised");
    let inputs = w.public.to_inputs();
    assert_eq!(inputs.len(), 6 + 3 + 3);
    let (ok, bd) = check(&shape, &w.public, &w.private);
    assert!(ok);
    assert_eq!(
        bd.noise,
        noise_constraints(shape.noise.as_ref().expect("noise"), 5, D)
    );
    assert_eq!(TrainingCircuit::shape_breakdown(&shape).expect("setup"), bd);
    for i in 0..w.public.digests.len() {
        let mut other = w.clone();
        other.public.digests[i] += Fr::from(1u64);
        assert!(!satisfied(&shape, &other), "digest {i}");
    }
    let mut other = w.clone();
    if let Some(n) = other.public.noise.as_mut() {
        n.round += 1;
    }
    assert!(!satisfied(&shape, &other));
    // The size estimate of a noise shape bounds its count (the noise part is constant in
    // the steps and blocks).
    let est = TrainingCircuit::estimated_constraints(&shape, u64::MAX).expect("estimate");
    assert!(
        est >= bd.total as u64 && est <= bd.total as u64 * 105 / 100,
        "{est} {bd:?}"
    );
}

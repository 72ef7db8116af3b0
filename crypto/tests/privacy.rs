//! The coordinator's view of one masked input is indistinguishable from uniform in the
//! ring: a chi-square test on each byte lane of the masked vector accepts it, and the
//! same test rejects the unmasked quantised update it hides.

mod common;

use std::collections::BTreeSet;

use cairn_crypto::quant::{quantise, QuantParams};
use cairn_crypto::ring::{RingElem, RING_BYTES};
use common::Harness;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Chi-square statistic of the byte values in lane `lane` of each element (256 bins).
fn chi_square(v: &[RingElem], lane: usize) -> f64 {
    let mut bins = [0u64; 256];
    for x in v {
        bins[((x >> (8 * lane)) & 0xff) as usize] += 1;
    }
    let expected = v.len() as f64 / 256.0;
    bins.iter()
        .map(|&o| (o as f64 - expected).powi(2) / expected)
        .sum()
}

/// Upper 0.1% point of the chi-square distribution with 255 degrees of freedom.
const CRITICAL_255_P001: f64 = 330.52;

#[test]
fn masked_input_looks_uniform_and_plain_input_does_not() {
    const D: usize = 1 << 16;
    let mut h = Harness::new(8, 4, 3, D, 31);
    // A realistic update: small Gaussian coordinates, quantised.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(32);
    let normal = Normal::new(0.0f32, 0.01).expect("valid");
    let x: Vec<f32> = (0..D).map(|_| normal.sample(&mut rng)).collect();
    let q = quantise(&x, &QuantParams::new(1.0, 16).expect("fits")).expect("finite");

    let (clients, server) = h.advertise(&BTreeSet::new());
    let (mut shared, server) = h.share(clients, server);
    let (id, c) = shared.pop_first().expect("a client");
    let (_, masked) = c.mask(server.inbox(id), q.clone()).expect("honest");

    for lane in 0..RING_BYTES {
        let masked_stat = chi_square(&masked.y, lane);
        assert!(
            masked_stat < CRITICAL_255_P001,
            "masked lane {lane}: chi2 = {masked_stat}"
        );
    }
    // The plain update: its high bytes are 0x00 or 0xff (small magnitudes), which the
    // same test rejects overwhelmingly. (Its lowest byte is near-uniform at this scale,
    // which is why every lane of the masked vector is tested.)
    let plain_stat = chi_square(&q, RING_BYTES - 1);
    assert!(
        plain_stat > 100.0 * CRITICAL_255_P001,
        "plain top lane chi2 = {plain_stat}"
    );
    assert!(chi_square(&q, RING_BYTES - 2) > CRITICAL_255_P001);
}

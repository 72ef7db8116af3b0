//! Sampled-step proofs, the pure parts (issue #11, item 3): which of its K local steps a
//! holder must prove, how that challenge is drawn so the holder cannot know it when it
//! commits to its steps, and what sampling is worth against a cheating holder.
//!
//! The round this is for (the wire and circuit parts are not built yet): the coordinator
//! draws a fresh 32-byte **beacon** per round and publishes only its hash
//! ([`beacon_commitment`]) in the round spec; each holder trains its K steps and commits to
//! every intermediate model (a hash chain); once the coordinator holds a holder's chain
//! commitment it reveals the beacon, and the holder proves the steps
//! [`challenged_steps`]`(`[`challenge_seed`]`(…))` names. The seed binds the beacon (which the
//! holder cannot see before it commits) and the holder's own chain commitment (which the
//! coordinator cannot change, and which the holder cannot re-grind once the beacon is out),
//! so an auditor recomputes every challenge from the transcript. A coordinator that leaked
//! the beacon early to a holder would let that holder grind its chain; issue #12's
//! commit-reveal randomness with a share from every holder is the remedy for that.
//!
//! Soundness: a holder that deviates in `m` of its `K` steps escapes one round with
//! probability [`escape_probability`]`(K, m, s)` = C(K − m, s) / C(K, s), and R rounds with
//! that to the power R ([`escape_over_rounds`]).

use rand::{seq::index::sample, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

/// What the round spec publishes of the coordinator's beacon: its SHA-256 under a domain tag.
pub fn beacon_commitment(beacon: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/beacon/v1");
    h.update(beacon);
    h.finalize().into()
}

/// The seed of `participant`'s challenge in `round` of job `job_id`: SHA-256 of a domain
/// tag, the job, the round, the participant, its chain commitment and the revealed beacon.
pub fn challenge_seed(
    job_id: &str,
    round: u32,
    participant: u32,
    chain: &[u8; 32],
    beacon: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/challenge/v1");
    h.update((job_id.len() as u64).to_le_bytes());
    h.update(job_id.as_bytes());
    h.update(round.to_le_bytes());
    h.update(participant.to_le_bytes());
    h.update(chain);
    h.update(beacon);
    h.finalize().into()
}

/// The `s` distinct steps (0-based, ascending) out of `local_steps` that `seed` challenges;
/// every step when `s ≥ local_steps`.
pub fn challenged_steps(seed: [u8; 32], local_steps: u32, s: u32) -> Vec<u32> {
    if s >= local_steps {
        return (0..local_steps).collect();
    }
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut steps: Vec<u32> = sample(&mut rng, local_steps as usize, s as usize)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    steps.sort_unstable();
    steps
}

/// The probability that a holder deviating in `m` of `k` steps is not challenged on any of
/// them when `s` of the `k` are challenged uniformly: C(k − m, s) / C(k, s).
pub fn escape_probability(k: u32, m: u32, s: u32) -> f64 {
    let (s, m) = (s.min(k), m.min(k));
    if m == 0 || s == 0 {
        return 1.0;
    }
    if m > k - s {
        return 0.0;
    }
    // Π_{i<s} (k − m − i) / (k − i)
    (0..s).fold(1.0, |p, i| p * f64::from(k - m - i) / f64::from(k - i))
}

/// The probability of escaping `rounds` independent rounds.
pub fn escape_over_rounds(k: u32, m: u32, s: u32, rounds: u32) -> f64 {
    escape_probability(k, m, s).powi(rounds.min(i32::MAX as u32) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenged_steps_are_distinct_sorted_and_in_range() {
        for seed in 0..50u8 {
            let c = challenged_steps([seed; 32], 10, 3);
            assert_eq!(c.len(), 3);
            assert!(c.windows(2).all(|w| w[0] < w[1]), "{c:?}");
            assert!(c.iter().all(|&i| i < 10));
            assert_eq!(c, challenged_steps([seed; 32], 10, 3));
        }
        assert_eq!(challenged_steps([1; 32], 4, 4), vec![0, 1, 2, 3]);
        assert_eq!(challenged_steps([1; 32], 4, 9), vec![0, 1, 2, 3]);
        assert!(challenged_steps([1; 32], 4, 0).is_empty());
    }

    #[test]
    fn the_seed_binds_every_input() {
        let base = challenge_seed("job", 3, 1, &[7; 32], &[9; 32]);
        assert_ne!(base, challenge_seed("jo", 3, 1, &[7; 32], &[9; 32]));
        assert_ne!(base, challenge_seed("job", 4, 1, &[7; 32], &[9; 32]));
        assert_ne!(base, challenge_seed("job", 3, 2, &[7; 32], &[9; 32]));
        assert_ne!(base, challenge_seed("job", 3, 1, &[8; 32], &[9; 32]));
        assert_ne!(base, challenge_seed("job", 3, 1, &[7; 32], &[8; 32]));
        assert_ne!(beacon_commitment(&[9; 32]), beacon_commitment(&[8; 32]));
        assert_ne!(beacon_commitment(&[9; 32]), [9; 32]);
    }

    #[test]
    fn escape_probabilities_are_exact() {
        // K = 10, s = 2, one bad step: C(9, 2) / C(10, 2) = 36 / 45.
        assert!((escape_probability(10, 1, 2) - 0.8).abs() < 1e-12);
        // Two bad steps: C(8, 2) / C(10, 2) = 28 / 45.
        assert!((escape_probability(10, 2, 2) - 28.0 / 45.0).abs() < 1e-12);
        assert_eq!(escape_probability(10, 0, 2), 1.0);
        // Nothing challenged: nothing caught, however much is wrong.
        assert_eq!(escape_probability(10, 12, 0), 1.0);
        assert_eq!(escape_probability(10, 12, 1), 0.0);
        // More bad steps than unchallenged ones: always caught; so is proving every step.
        assert_eq!(escape_probability(10, 9, 2), 0.0);
        assert_eq!(escape_probability(10, 1, 10), 0.0);
        assert!((escape_over_rounds(10, 1, 2, 20) - 0.8f64.powi(20)).abs() < 1e-15);
    }

    #[test]
    fn a_one_step_deviation_is_caught_at_the_stated_rate() {
        // 4,000 seeded rounds of K = 10, s = 2, the holder cheating in step 6: caught when
        // step 6 is challenged, which must happen at rate 1 − 0.8 = 0.2 (binomial: mean
        // 800, σ ≈ 25.3; 4σ either way).
        let n = 4000u32;
        let caught = (0..n)
            .filter(|&r| {
                let seed = challenge_seed("rate", r, 0, &[1; 32], &[2; 32]);
                challenged_steps(seed, 10, 2).contains(&6)
            })
            .count() as f64;
        let p = 1.0 - escape_probability(10, 1, 2);
        let (mean, sd) = (f64::from(n) * p, (f64::from(n) * p * (1.0 - p)).sqrt());
        assert!(
            (caught - mean).abs() < 4.0 * sd,
            "caught {caught}, expected {mean} ± {sd}"
        );
    }
}

//! Sampled-step proofs, the pure parts (issue #11, item 3): which of its K local steps a
//! holder must prove, how that challenge is drawn so the holder cannot know it when it
//! commits to its steps, and what sampling is worth against a cheating holder.
//!
//! The round: the coordinator draws a fresh 32-byte **beacon** per round and publishes only
//! its hash ([`beacon_commitment`]) in the round spec; each holder trains its K steps and
//! sends the digests of its K intermediate models (`SecureUp::Chain`, once); only then does
//! the coordinator reveal that holder's beacon ([`holder_beacon`], derived from the round's,
//! so one holder's tells nothing of another's), and the holder proves the steps
//! [`challenged_steps`]`(`[`challenge_seed`]`(…))` names. The seed binds the beacon (which the
//! holder cannot see before it commits) and the holder's own chain commitment (which the
//! coordinator cannot change, and which the holder cannot re-grind once the beacon is out:
//! a second chain is refused). The transcript records each holder's chain and beacon and the
//! round's beacon, so an auditor recomputes every challenge. Why not Fiat–Shamir on the chain
//! alone: a holder deviating in one of K = 10 steps with s = 1 would need ~1.1 tries of
//! its chain to draw a challenge that misses the deviation — the randomness must come from
//! someone else, after the commitment. A coordinator that leaked the beacon early to a
//! holder would let that holder grind its chain; issue #12's commit-reveal randomness with a
//! share from every holder is the remedy for that.
//!
//! Soundness: a holder that deviates in `m` of its `K` steps escapes one round with
//! probability [`escape_probability`]`(K, m, s)` = C(K − m, s) / C(K, s), and R rounds with
//! that to the power R ([`escape_over_rounds`]).

use rand::{seq::index::sample, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the round spec publishes of the coordinator's beacon: its SHA-256 under a domain tag.
pub fn beacon_commitment(beacon: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/beacon/v1");
    h.update(beacon);
    h.finalize().into()
}

/// `participant`'s beacon in `round`, derived from the round's beacon: what the coordinator
/// reveals to that holder once it has its chain. Holders never see the round's beacon
/// itself, so a holder that has its beacon learns nothing of another's (a colluding holder
/// that committed first cannot pass the challenge on to one that has not).
pub fn holder_beacon(beacon: &[u8; 32], round: u32, participant: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/holder-beacon/v1");
    h.update(beacon);
    h.update(round.to_le_bytes());
    h.update(participant.to_le_bytes());
    h.finalize().into()
}

/// The commitment a holder's chain message makes: SHA-256 of its K digests, in order.
pub fn chain_commitment(digests: &[[u8; 32]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/chain/v1");
    h.update((digests.len() as u64).to_le_bytes());
    for d in digests {
        h.update(d);
    }
    h.finalize().into()
}

/// The seed of `participant`'s challenge in `round`: SHA-256 of a domain tag, the round,
/// the participant, its chain commitment and its revealed beacon ([`holder_beacon`]).
pub fn challenge_seed(
    round: u32,
    participant: u32,
    chain: &[u8; 32],
    beacon: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/challenge/v1");
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

/// How many of its K local steps each holder proves per round: `all` (the proof replays
/// every step) or a number `s` of challenged steps (written `steps = "all"` or `steps = 1`
/// in a job file, `--proved-steps all|1` on the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProvedSteps {
    /// `s` challenged steps.
    Sampled(u32),
    /// `"all"`.
    All(AllSteps),
}

/// The word `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllSteps {
    /// Every step.
    All,
}

impl ProvedSteps {
    /// Every step.
    pub const ALL: Self = ProvedSteps::All(AllSteps::All);

    /// The default for K local steps: one challenged step when K > 1, else the one step.
    ///
    /// Why one: a proof then costs one SGD step whatever K is, which is what lets a proven
    /// job train with K ≥ 10; the update's norm bound, its commitment and the link from the
    /// committed model to `w_K` hold in every proof whatever is sampled, so an unchallenged
    /// deviation still moves the model by at most the clip bound; and a holder that deviates
    /// round after round is caught with probability `1 − (1 − 1/K)^R` over R rounds (88 % for
    /// K = 10, R = 20), one that deviates in m steps of a round with probability m/K in that
    /// round. Jobs that need more per round raise s (cost: one SGD step and two model hashes
    /// per extra step) or prove all steps.
    pub fn default_for(local_steps: u32) -> Self {
        if local_steps > 1 {
            ProvedSteps::Sampled(1)
        } else {
            Self::ALL
        }
    }

    /// `Some(s)` for a sampled-step proof, `None` when every step is proved (also when `s`
    /// is at least K: that is all of them).
    pub fn sampled(self, local_steps: u32) -> Option<u32> {
        match self {
            ProvedSteps::Sampled(s) if s < local_steps => Some(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for ProvedSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProvedSteps::Sampled(s) => write!(f, "{s}"),
            ProvedSteps::All(_) => f.write_str("all"),
        }
    }
}

impl std::str::FromStr for ProvedSteps {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "all" => Ok(Self::ALL),
            n => match n.parse::<u32>() {
                Ok(0) | Err(_) => Err(format!(
                    "proved steps must be `all` or a positive number, got {s:?}"
                )),
                Ok(k) => Ok(ProvedSteps::Sampled(k)),
            },
        }
    }
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
        let base = challenge_seed(3, 1, &[7; 32], &[9; 32]);
        assert_ne!(base, challenge_seed(4, 1, &[7; 32], &[9; 32]));
        assert_ne!(base, challenge_seed(3, 2, &[7; 32], &[9; 32]));
        assert_ne!(base, challenge_seed(3, 1, &[8; 32], &[9; 32]));
        assert_ne!(base, challenge_seed(3, 1, &[7; 32], &[8; 32]));
        assert_ne!(holder_beacon(&[1; 32], 3, 1), holder_beacon(&[1; 32], 3, 2));
        assert_ne!(holder_beacon(&[1; 32], 3, 1), holder_beacon(&[1; 32], 4, 1));
        assert_ne!(holder_beacon(&[1; 32], 3, 1), holder_beacon(&[2; 32], 3, 1));
        assert_ne!(
            chain_commitment(&[[1; 32], [2; 32]]),
            chain_commitment(&[[2; 32], [1; 32]])
        );
        assert_ne!(
            chain_commitment(&[[1; 32]]),
            chain_commitment(&[[1; 32], [1; 32]])
        );
        assert_ne!(beacon_commitment(&[9; 32]), beacon_commitment(&[8; 32]));
        assert_ne!(beacon_commitment(&[9; 32]), [9; 32]);
    }

    #[test]
    fn proved_steps_parse_and_default() {
        assert_eq!("all".parse::<ProvedSteps>(), Ok(ProvedSteps::ALL));
        assert_eq!("2".parse::<ProvedSteps>(), Ok(ProvedSteps::Sampled(2)));
        assert!("0".parse::<ProvedSteps>().is_err());
        assert!("some".parse::<ProvedSteps>().is_err());
        assert_eq!(ProvedSteps::default_for(10).sampled(10), Some(1));
        assert_eq!(ProvedSteps::default_for(1).sampled(1), None);
        assert_eq!(ProvedSteps::Sampled(10).sampled(10), None);
        #[derive(serde::Deserialize)]
        struct T {
            steps: ProvedSteps,
        }
        let t: T = toml::from_str("steps = \"all\"").expect("all");
        assert_eq!(t.steps, ProvedSteps::ALL);
        let t: T = toml::from_str("steps = 3").expect("3");
        assert_eq!(t.steps, ProvedSteps::Sampled(3));
        assert!(toml::from_str::<T>("steps = \"some\"").is_err());
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
                let seed = challenge_seed(r, 0, &[1; 32], &[2; 32]);
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

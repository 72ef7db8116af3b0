//! The job's public randomness: drawn by commit-reveal among its holders once the roster
//! (and, in a proven job, every dataset) is fixed, so that nobody — holder, coordinator or
//! operator — knows any round's seed before it has committed to what the seed selects.
//!
//! 1. After its welcome each holder sends the commitment [`commit`]`(r)` to its
//!    contribution `r` ([`contribution`]: a hash of its Ed25519 signature on the job id,
//!    so it is secret until revealed and the same whenever the holder joins this job).
//! 2. When enrolment closes the coordinator shows every holder the roster of commitments,
//!    sorted by identity key; a holder that finds its own there reveals `r`.
//! 3. Once every holder of the roster has revealed, the coordinator sends them all the
//!    [`Contribution`]s; each holder checks them against the roster it was shown and
//!    derives the job's beacon ([`beacon`]) itself. It then refuses any round whose seeds
//!    are not [`round_seed`] and [`graph_seed`] of that beacon.
//!
//! A holder's rows are drawn by its **index**, its position in that roster
//! ([`holder_index`]): bound to its identity key, not to when it connected, so the same
//! job over the same holders and data gives the same model whatever the join order.
//! The contributions are recorded in the transcript, so an auditor recomputes the beacon
//! and every round seed. What remains: a holder that withholds its reveal stops the job
//! (the job fails, naming it) rather than being left out, because re-running the reveal
//! without it would let whoever knows the other reveals choose between two beacons.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use cairn_crypto::sign::{IdentityKey, IdentityPublic};

/// One holder's part of the job's randomness, as the transcript records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The holder's identity key.
    pub identity: IdentityPublic,
    /// Its commitment, sent before the roster was fixed.
    pub commitment: [u8; 32],
    /// Its revealed contribution.
    pub reveal: [u8; 32],
}

/// Why a roster or a set of contributions is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RandomnessError {
    /// The roster is not sorted by identity key, or names a key twice.
    #[error("the roster is not strictly sorted by identity key")]
    Unsorted,
    /// This holder is not in the roster with the commitment it sent.
    #[error("the roster does not hold this holder's commitment")]
    NotInRoster,
    /// Contributions that do not match the roster shown before the reveal.
    #[error("the contributions do not match the roster the holder revealed to ({0})")]
    Mismatch(String),
    /// A revealed contribution does not open its commitment.
    #[error("the contribution of {0} does not open its commitment")]
    BadReveal(String),
    /// An empty roster.
    #[error("an empty roster")]
    Empty,
}

/// `holder`'s secret contribution to the randomness of job `job_id`: the hash of its
/// (deterministic, RFC 8032) signature on the job id. Only the holder can compute it before
/// it is revealed, and it is the same each time the holder joins this job.
pub fn contribution(holder: &IdentityKey, job_id: &str) -> [u8; 32] {
    let mut msg = b"cairn/contribution/v1".to_vec();
    msg.extend_from_slice(&(job_id.len() as u64).to_le_bytes());
    msg.extend_from_slice(job_id.as_bytes());
    let sig = holder.sign(&msg);
    Sha256::new()
        .chain_update(b"cairn/contribution-secret/v1")
        .chain_update(&sig.0)
        .finalize()
        .into()
}

/// The commitment to a contribution.
pub fn commit(contribution: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"cairn/contribution-commitment/v1")
        .chain_update(contribution)
        .finalize()
        .into()
}

/// Checks a roster of (identity, commitment) pairs: non-empty and strictly sorted by
/// identity key.
pub fn check_roster(roster: &[(IdentityPublic, [u8; 32])]) -> Result<(), RandomnessError> {
    if roster.is_empty() {
        return Err(RandomnessError::Empty);
    }
    if roster.windows(2).any(|w| w[0].0 .0 >= w[1].0 .0) {
        return Err(RandomnessError::Unsorted);
    }
    Ok(())
}

/// Checks `contributions`: a valid roster ([`check_roster`]) whose every reveal opens its
/// commitment.
pub fn check(contributions: &[Contribution]) -> Result<(), RandomnessError> {
    let roster: Vec<_> = contributions
        .iter()
        .map(|c| (c.identity, c.commitment))
        .collect();
    check_roster(&roster)?;
    match contributions
        .iter()
        .find(|c| commit(&c.reveal) != c.commitment)
    {
        Some(c) => Err(RandomnessError::BadReveal(hex::encode(c.identity.0))),
        None => Ok(()),
    }
}

/// The job's beacon: the hash of its id and every contribution, in roster order. Call
/// [`check`] first.
pub fn beacon(job_id: &str, contributions: &[Contribution]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn/job-beacon/v1");
    h.update((job_id.len() as u64).to_le_bytes());
    h.update(job_id.as_bytes());
    h.update((contributions.len() as u64).to_le_bytes());
    for c in contributions {
        h.update(c.identity.0);
        h.update(c.reveal);
    }
    h.finalize().into()
}

fn derive(beacon: &[u8; 32], what: &[u8], round: u32) -> [u8; 32] {
    Sha256::new()
        .chain_update(what)
        .chain_update(beacon)
        .chain_update(round.to_le_bytes())
        .finalize()
        .into()
}

/// Round `round`'s seed, which fixes every holder's rows ([`crate::sampling`]).
pub fn round_seed(beacon: &[u8; 32], round: u32) -> [u8; 32] {
    derive(beacon, b"cairn/round-seed/v1", round)
}

/// Round `round`'s SecAgg+ graph seed.
pub fn graph_seed(beacon: &[u8; 32], round: u32) -> [u8; 32] {
    derive(beacon, b"cairn/graph-seed/v1", round)
}

/// `identity`'s index in the roster: the participant number its rows and its proof's
/// statement are drawn for.
pub fn holder_index(contributions: &[Contribution], identity: &IdentityPublic) -> Option<u32> {
    contributions
        .binary_search_by(|c| c.identity.0.cmp(&identity.0))
        .ok()
        .and_then(|i| u32::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn holders(n: usize, job: &str) -> Vec<(IdentityKey, Contribution)> {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut v: Vec<_> = (0..n)
            .map(|_| {
                let k = IdentityKey::random(&mut rng);
                let r = contribution(&k, job);
                let c = Contribution {
                    identity: k.public(),
                    commitment: commit(&r),
                    reveal: r,
                };
                (k, c)
            })
            .collect();
        v.sort_by_key(|(_, c)| c.identity.0);
        v
    }

    #[test]
    fn contributions_are_per_holder_and_job_and_repeatable() {
        let h = holders(3, "j");
        assert_eq!(contribution(&h[0].0, "j"), h[0].1.reveal);
        assert_ne!(contribution(&h[0].0, "k"), h[0].1.reveal);
        assert_ne!(h[0].1.reveal, h[1].1.reveal);
        assert_ne!(commit(&h[0].1.reveal), h[0].1.reveal);
    }

    #[test]
    fn check_refuses_bad_reveals_and_unsorted_rosters() {
        let h = holders(4, "j");
        let mut cs: Vec<_> = h.iter().map(|(_, c)| *c).collect();
        assert_eq!(check(&cs), Ok(()));
        assert_eq!(check(&[]), Err(RandomnessError::Empty));
        cs.swap(0, 1);
        assert_eq!(check(&cs), Err(RandomnessError::Unsorted));
        cs.swap(0, 1);
        let dup = vec![cs[0], cs[0]];
        assert_eq!(check(&dup), Err(RandomnessError::Unsorted));
        cs[2].reveal[0] ^= 1;
        assert!(matches!(check(&cs), Err(RandomnessError::BadReveal(_))));
    }

    #[test]
    fn every_contribution_moves_the_beacon_and_seeds_differ() {
        let h = holders(3, "j");
        let cs: Vec<_> = h.iter().map(|(_, c)| *c).collect();
        let b = beacon("j", &cs);
        for i in 0..cs.len() {
            let mut other = cs.clone();
            other[i].reveal[31] ^= 0x80;
            assert_ne!(beacon("j", &other), b);
        }
        assert_ne!(beacon("k", &cs), b);
        assert_ne!(beacon("j", &cs[..2]), b);
        assert_ne!(round_seed(&b, 1), round_seed(&b, 2));
        assert_ne!(round_seed(&b, 1), graph_seed(&b, 1));
        for (i, (k, _)) in h.iter().enumerate() {
            assert_eq!(holder_index(&cs, &k.public()), Some(i as u32));
        }
        let stranger = IdentityKey::random(&mut ChaCha20Rng::seed_from_u64(99));
        assert_eq!(holder_index(&cs, &stranger.public()), None);
    }
}

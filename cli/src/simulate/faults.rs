//! The failures `cairn simulate` injects, as a pure, seeded plan: which holders vanish at
//! which SecAgg+ phase of each round, which straggle and by how long, which are corrupt.
//!
//! Counts are exact, not Bernoulli: with 1000 holders and `masked=0.1`, exactly 100 holders
//! vanish instead of sending their masked input in each round, drawn afresh each round
//! from the fault seed (a holder's rank in a per-round permutation decides its fate), so
//! two runs with the same seed inject the same faults.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_participant::{FaultAction, FaultHook};
use cairn_protocol::wire::{SecureUp, ToCoordinator};

/// The messages a holder sends in a secure round, in order: where it can vanish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecPhase {
    /// Its signed agreement keys.
    Keys,
    /// Its encrypted shares.
    Shares,
    /// Its masked input.
    Masked,
    /// Its signature on the survivor list (it already sent its masked input).
    Consistency,
    /// Its unmask response.
    Unmask,
}

impl SecPhase {
    /// Every phase, in protocol order.
    pub const ALL: [SecPhase; 5] = [
        SecPhase::Keys,
        SecPhase::Shares,
        SecPhase::Masked,
        SecPhase::Consistency,
        SecPhase::Unmask,
    ];

    /// The flag's word for it.
    pub fn word(self) -> &'static str {
        match self {
            SecPhase::Keys => "keys",
            SecPhase::Shares => "shares",
            SecPhase::Masked => "masked",
            SecPhase::Consistency => "consistency",
            SecPhase::Unmask => "unmask",
        }
    }

    /// The phase of a message a holder sends, if it is one of a secure round's.
    pub fn of(msg: &ToCoordinator) -> Option<(u32, SecPhase)> {
        let ToCoordinator::Secure(up) = msg else {
            return None;
        };
        let phase = match up {
            SecureUp::Keys { .. } => SecPhase::Keys,
            SecureUp::Shares { .. } => SecPhase::Shares,
            SecureUp::Masked { .. } => SecPhase::Masked,
            SecureUp::Consistency { .. } => SecPhase::Consistency,
            SecureUp::Unmask { .. } => SecPhase::Unmask,
            SecureUp::Chain { .. } => return None,
        };
        Some((up.round(), phase))
    }
}

impl fmt::Display for SecPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// What is injected, before it is laid over a number of holders.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    /// Fraction of the holders that vanish at each phase of every round (the phases'
    /// fractions add up to at most 1: a holder vanishes at most once per round).
    pub drop: Vec<(SecPhase, f64)>,
    /// Fraction of holders whose masked input is late each round, and the mean of the
    /// exponential delay.
    pub stragglers: Option<(f64, Duration)>,
    /// How long a vanished holder stays away before it connects again (`None`: for good).
    pub rejoin_after: Option<Duration>,
    /// Fraction of holders that are corrupt for the whole job: they tamper with their
    /// advertised round keys after signing them, which the coordinator refuses, each round.
    pub corrupt: f64,
    /// Seed of every draw.
    pub seed: u64,
}

impl FaultSpec {
    /// Parses `keys=0.05,masked=0.1`.
    pub fn parse_drop(s: &str) -> Result<Vec<(SecPhase, f64)>> {
        let mut out: Vec<(SecPhase, f64)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, frac) = part
                .split_once('=')
                .with_context(|| format!("--drop: {part:?} is not PHASE=FRACTION"))?;
            let phase = SecPhase::ALL
                .into_iter()
                .find(|p| p.word() == name.trim())
                .with_context(|| {
                    format!(
                        "--drop: unknown phase {name:?} (phases: keys, shares, masked, consistency, unmask)"
                    )
                })?;
            let frac = parse_fraction(frac, "--drop")?;
            if out.iter().any(|(p, _)| *p == phase) {
                bail!("--drop names {phase} twice");
            }
            out.push((phase, frac));
        }
        let total: f64 = out.iter().map(|(_, f)| f).sum();
        if total > 1.0 {
            bail!("--drop: the fractions add up to {total}, more than every holder");
        }
        out.sort_by_key(|(p, _)| *p);
        Ok(out)
    }

    /// Parses `0.1:2` (a tenth of the holders, 2 s mean delay).
    pub fn parse_stragglers(s: &str) -> Result<(f64, Duration)> {
        let (frac, mean) = s
            .split_once(':')
            .context("--stragglers must be FRACTION:MEAN_SECONDS, e.g. 0.1:2")?;
        let frac = parse_fraction(frac, "--stragglers")?;
        let mean: f64 = mean
            .trim()
            .parse()
            .ok()
            .filter(|m: &f64| m.is_finite() && *m >= 0.0 && *m <= 3600.0)
            .with_context(|| {
                format!("--stragglers: mean delay {mean:?} is not a number of seconds in [0, 3600]")
            })?;
        Ok((frac, Duration::from_secs_f64(mean)))
    }

    /// Parses `5` (seconds) or `never`.
    pub fn parse_rejoin(s: &str) -> Result<Option<Duration>> {
        if s.trim() == "never" {
            return Ok(None);
        }
        let secs: f64 = s
            .trim()
            .parse()
            .ok()
            .filter(|m: &f64| m.is_finite() && *m >= 0.0 && *m <= 3600.0)
            .with_context(|| {
                format!("--rejoin-after: {s:?} is neither `never` nor seconds in [0, 3600]")
            })?;
        Ok(Some(Duration::from_secs_f64(secs)))
    }

    /// Whether anything is injected.
    pub fn is_empty(&self) -> bool {
        self.drop.iter().all(|(_, f)| *f == 0.0) && self.stragglers.is_none() && self.corrupt == 0.0
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "none".into();
        }
        let mut parts: Vec<String> = self
            .drop
            .iter()
            .filter(|(_, f)| *f > 0.0)
            .map(|(p, f)| format!("{:.0}% vanish at {p}", 100.0 * f))
            .collect();
        if let Some((f, mean)) = self.stragglers {
            parts.push(format!(
                "{:.0}% straggle (masked input late by Exp(mean {:.1} s))",
                100.0 * f,
                mean.as_secs_f64()
            ));
        }
        if self.corrupt > 0.0 {
            parts.push(format!(
                "{:.0}% corrupt (tampered round keys)",
                100.0 * self.corrupt
            ));
        }
        parts.push(match self.rejoin_after {
            Some(d) => format!("vanished holders return after {:.1} s", d.as_secs_f64()),
            None => "vanished holders stay away".into(),
        });
        parts.join("; ")
    }
}

fn parse_fraction(s: &str, flag: &str) -> Result<f64> {
    s.trim()
        .parse()
        .ok()
        .filter(|f: &f64| (0.0..=1.0).contains(f))
        .with_context(|| format!("{flag}: {s:?} is not a fraction in [0, 1]"))
}

/// A [`FaultSpec`] laid over `n` holders.
#[derive(Debug)]
pub struct FaultPlan {
    spec: FaultSpec,
    n: usize,
    corrupt: Vec<bool>,
    /// Per round: each holder's fate, drawn once.
    rounds: Mutex<HashMap<u32, Arc<Vec<Fate>>>>,
}

/// What happens to one holder in one round.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Fate {
    /// Where it vanishes.
    pub vanish: Option<SecPhase>,
    /// How late its masked input is.
    pub delay: Option<Duration>,
}

/// SplitMix64: the draws' mixer (deterministic on every machine).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn draw(seed: u64, what: u64, round: u32, holder: usize) -> u64 {
    mix(mix(mix(seed ^ what).wrapping_add(u64::from(round))).wrapping_add(holder as u64))
}

/// Uniform in [0, 1) from 53 bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The first `round(f · n)` holders of `order` (at least one when f > 0 and n > 0).
fn count(f: f64, n: usize) -> usize {
    if f <= 0.0 {
        return 0;
    }
    ((f * n as f64).round() as usize).clamp(1, n)
}

impl FaultPlan {
    /// Lays `spec` over `n` holders.
    pub fn new(spec: FaultSpec, n: usize) -> Self {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&h| draw(spec.seed, 1, 0, h));
        let mut corrupt = vec![false; n];
        for &h in order.iter().take(count(spec.corrupt, n)) {
            corrupt[h] = true;
        }
        Self {
            spec,
            n,
            corrupt,
            rounds: Mutex::new(HashMap::new()),
        }
    }

    /// The spec.
    pub fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// Whether holder `h` is corrupt.
    pub fn is_corrupt(&self, h: usize) -> bool {
        self.corrupt.get(h).copied().unwrap_or(false)
    }

    /// How many holders are corrupt.
    pub fn corrupt_count(&self) -> usize {
        self.corrupt.iter().filter(|c| **c).count()
    }

    /// Every holder's fate in `round`.
    pub fn round(&self, round: u32) -> Arc<Vec<Fate>> {
        let mut rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            rounds
                .entry(round)
                .or_insert_with(|| Arc::new(self.draw_round(round))),
        )
    }

    fn draw_round(&self, round: u32) -> Vec<Fate> {
        let n = self.n;
        let mut fates = vec![Fate::default(); n];
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&h| draw(self.spec.seed, 2, round, h));
        let mut next = order.into_iter();
        for &(phase, f) in &self.spec.drop {
            for h in next.by_ref().take(count(f, n)) {
                fates[h].vanish = Some(phase);
            }
        }
        if let Some((f, mean)) = self.spec.stragglers {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&h| draw(self.spec.seed, 3, round, h));
            for h in order.into_iter().take(count(f, n)) {
                // Exponential by inversion: −mean · ln(1 − u).
                let u = unit(draw(self.spec.seed, 4, round, h));
                fates[h].delay = Some(mean.mul_f64(-(1.0 - u).ln()));
            }
        }
        fates
    }

    /// The hook of holder `h`.
    pub fn hook(self: &Arc<Self>, h: usize) -> Arc<dyn FaultHook> {
        Arc::new(HolderFaults {
            plan: Arc::clone(self),
            holder: h,
        })
    }
}

/// One holder's view of the plan, consulted by its participant driver before each message.
#[derive(Debug)]
struct HolderFaults {
    plan: Arc<FaultPlan>,
    holder: usize,
}

impl FaultHook for HolderFaults {
    fn before_send(&self, msg: &mut ToCoordinator) -> FaultAction {
        let Some((round, phase)) = SecPhase::of(msg) else {
            return FaultAction::Send;
        };
        let fate = self
            .plan
            .round(round)
            .get(self.holder)
            .copied()
            .unwrap_or_default();
        if fate.vanish == Some(phase) {
            return FaultAction::Vanish(format!("at {phase} in round {round}"));
        }
        if phase == SecPhase::Keys && self.plan.is_corrupt(self.holder) {
            if let ToCoordinator::Secure(SecureUp::Keys { msg, .. }) = msg {
                msg.c_pk = msg.s_pk;
            }
        }
        match (phase, fate.delay) {
            (SecPhase::Masked, Some(d)) => FaultAction::Delay(d),
            _ => FaultAction::Send,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(drop: &str) -> FaultSpec {
        FaultSpec {
            drop: FaultSpec::parse_drop(drop).expect("valid"),
            seed: 3,
            ..FaultSpec::default()
        }
    }

    #[test]
    fn exact_disjoint_counts_per_phase_drawn_afresh_each_round() {
        let plan = FaultPlan::new(spec("keys=0.05,masked=0.1,unmask=0.02"), 1000);
        let r1 = plan.round(1);
        let at = |fates: &[Fate], p| fates.iter().filter(|f| f.vanish == Some(p)).count();
        assert_eq!(at(&r1, SecPhase::Keys), 50);
        assert_eq!(at(&r1, SecPhase::Masked), 100);
        assert_eq!(at(&r1, SecPhase::Unmask), 20);
        assert_eq!(at(&r1, SecPhase::Shares), 0);
        let r2 = plan.round(2);
        assert_ne!(r1, r2, "each round draws its own holders");
        assert_eq!(plan.round(1), r1, "a round's draw is fixed");
        let again = FaultPlan::new(spec("keys=0.05,masked=0.1,unmask=0.02"), 1000);
        assert_eq!(again.round(2), r2, "the same seed gives the same faults");
    }

    #[test]
    fn stragglers_and_corrupt_holders() {
        let mut s = spec("");
        s.stragglers = Some((0.2, Duration::from_secs(2)));
        s.corrupt = 0.1;
        let plan = FaultPlan::new(s, 500);
        let fates = plan.round(1);
        let delays: Vec<f64> = fates
            .iter()
            .filter_map(|f| f.delay.map(|d| d.as_secs_f64()))
            .collect();
        assert_eq!(delays.len(), 100);
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((1.0..3.0).contains(&mean), "mean delay {mean}");
        assert_eq!(plan.corrupt_count(), 50);
    }

    #[test]
    fn bad_specs_are_named() {
        assert!(FaultSpec::parse_drop("kees=0.1").is_err_and(|e| e.to_string().contains("kees")));
        assert!(FaultSpec::parse_drop("keys=2").is_err());
        assert!(FaultSpec::parse_drop("keys=0.6,masked=0.6").is_err());
        assert!(FaultSpec::parse_drop("keys=0.1,keys=0.1").is_err());
        assert!(FaultSpec::parse_stragglers("0.1").is_err());
        assert!(FaultSpec::parse_stragglers("0.1:x").is_err());
        assert_eq!(
            FaultSpec::parse_stragglers("0.1:2").ok(),
            Some((0.1, Duration::from_secs(2)))
        );
        assert_eq!(FaultSpec::parse_rejoin("never").ok(), Some(None));
        assert!(FaultSpec::parse_rejoin("-1").is_err());
    }
}

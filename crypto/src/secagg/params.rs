//! Choosing the neighbourhood size k and the Shamir threshold t from the number of
//! participants n, the tolerated dropout rate δ and corruption rate γ, after SecAgg+
//! (Bell, Bonawitz, Gascón, Lepoint, Raykova, CCS 2020).
//!
//! # The choice
//!
//! At most C = ⌊γn⌋ participants are corrupt (colluding with the coordinator), at most
//! D = ⌊δn⌋ drop out, and R = ⌊(γ+δ)n⌋ are removed in total; the graph seed is public
//! but drawn after these sets are fixed. In our Harary graph ([`super::graph`]) one
//! node's k neighbours are a uniformly random k-subset of the other n − 1 nodes, so
//! its count of corrupt (dropped) neighbours is hypergeometric, and a union bound over
//! the n nodes gives, for the smallest degree k (even, or n − 1 = complete) that works:
//!
//! - **c** = the least c with Pr(more than c corrupt neighbours) ≤ 2^−σ / n (and c ≤ C);
//! - **d** = the least d with Pr(more than d lost neighbours) ≤ 2^−η / n, where lost means
//!   dropped, or dropped or corrupt against a malicious coordinator (corrupt clients may
//!   withhold answers);
//! - **security**: t > c against a semi-honest coordinator (the corrupt neighbours alone
//!   cannot rebuild a secret); t > (k + c)/2 against a malicious one: an honest client
//!   answers one unmask request only and reveals b or s_sk of a peer, never both, so
//!   rebuilding both secrets of an honest v needs 2t shares from v's k neighbours, of
//!   which only the c corrupt ones count twice;
//! - **correctness**: t ≤ k − d, so every needed secret keeps t answering holders;
//! - **privacy of the pairwise masks**: the honest survivors' subgraph must stay
//!   connected, else the coordinator learns the sum of a strict subset. Removing nodes
//!   disconnects the ring lattice only if two disjoint runs of k/2 consecutive positions
//!   are removed, which happens with probability ≤ n² · Π_{i<k}(R − i)/(n − i); we require
//!   it ≤ 2^−σ.
//!
//! Within [t_min, k − d] we take t = max(t_min, ⌊k/2⌋ + 1) when it fits, for margin, and
//! never below [`MIN_THRESHOLD`] = 2. Examples (σ = 40, η = 30):
//!
//! | n | δ | γ | semi-honest (k, t) | malicious (k, t) |
//! |---|---|---|---|---|
//! | 20 | 0.1 | 0.05 | (4, 2) | (8, 5) |
//! | 100 | 0.1 | 0.05 | (16, 6) | (36, 21) |
//! | 1000 | 0.1 | 0.05 | (40, 19) | (126, 78) |
//! | 10000 | 0.1 | 0.05 | (46, 22) | (166, 103) |
//!
//! k grows like log n, as in the paper; the malicious bound costs about 3× more neighbours.
//!
//! **cairn runs the malicious choice** ([`ParamRequest::new`]); every participant
//! recomputes it from the round's n, δ and γ and refuses any other (k, t). The semi-honest
//! choice ([`ParamRequest::semi_honest`]) is not safe against a coordinator that deviates:
//! with t ≤ k/2 it can show the survivor list with a victim to half of the victim's
//! neighbours and without it to the other half, and rebuild both b and s_sk from the two
//! halves' answers (`crypto/tests/split_view.rs` runs that attack).
//!
//! **Statement.** With these (k, t), except with probability 2^−σ over the graph seed,
//! the coordinator together with the corrupt clients learns nothing about the honest
//! participants' inputs beyond the sum over the honest survivors; and except with
//! probability 2^−η the round completes whenever at most δn participants drop.

/// The least threshold ever chosen: even when the caller declares no corrupt clients, no
/// single neighbour's share reveals a secret.
pub const MIN_THRESHOLD: usize = 2;

/// Which coordinator the parameters must resist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreatModel {
    /// The coordinator follows the protocol but colludes with corrupt clients.
    SemiHonest,
    /// The coordinator may deviate (lie about dropouts, send inconsistent requests).
    Malicious,
}

/// What the parameters are chosen for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamRequest {
    /// Number of participants selected for the round.
    pub n: usize,
    /// Tolerated dropout rate δ ∈ [0, 1).
    pub dropout: f64,
    /// Tolerated corruption rate γ ∈ [0, 1).
    pub corruption: f64,
    /// Security parameter σ: failure of privacy with probability ≤ 2^−σ.
    pub sigma: u32,
    /// Correctness parameter η: failure to complete with probability ≤ 2^−η.
    pub eta: u32,
    /// The adversary.
    pub threat: ThreatModel,
}

impl ParamRequest {
    /// σ = 40, η = 30 (the paper's defaults), against a **malicious** coordinator: what
    /// cairn runs with, and what every participant recomputes and insists on. A
    /// coordinator that may deviate can show different survivor lists to different
    /// neighbours of a victim and collect shares of both its secrets unless t > (k + c)/2.
    pub fn new(n: usize, dropout: f64, corruption: f64) -> Self {
        Self {
            n,
            dropout,
            corruption,
            sigma: 40,
            eta: 30,
            threat: ThreatModel::Malicious,
        }
    }

    /// The same request against a coordinator trusted to follow the protocol (smaller
    /// neighbourhoods; for comparison and benchmarks, never what a participant accepts).
    pub fn semi_honest(self) -> Self {
        Self {
            threat: ThreatModel::SemiHonest,
            ..self
        }
    }
}

/// The chosen parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecAggParams {
    /// Neighbours per participant (n − 1 means the complete graph).
    pub k: usize,
    /// Shamir threshold.
    pub threshold: usize,
}

/// Why no parameters were found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    /// Rates outside [0, 1), a sum ≥ 1, fewer than 3 participants, or σ, η > 128.
    #[error("invalid parameter request: {0}")]
    Invalid(String),
    /// Even the complete graph cannot meet both the security and the correctness bounds.
    #[error("no (k, t) for n = {n}, dropout {dropout}, corruption {corruption}")]
    Infeasible {
        /// Participants.
        n: usize,
        /// δ.
        dropout: f64,
        /// γ.
        corruption: f64,
    },
}

/// ln(i!) for i ≤ n.
fn ln_factorials(n: usize) -> Vec<f64> {
    let mut t = Vec::with_capacity(n + 1);
    t.push(0.0);
    for i in 1..=n {
        t.push(t[i - 1] + (i as f64).ln());
    }
    t
}

fn ln_choose(lf: &[f64], a: usize, b: usize) -> f64 {
    lf[a] - lf[b] - lf[a - b]
}

/// Pr[X > c] for X ~ Hypergeometric(population `pop`, `bad` bad ones, `draws` draws).
fn hyper_tail(lf: &[f64], pop: usize, bad: usize, draws: usize, c: usize) -> f64 {
    let hi = bad.min(draws);
    let denom = ln_choose(lf, pop, draws);
    ((c + 1)..=hi)
        .filter(|&x| draws - x <= pop - bad)
        .map(|x| (ln_choose(lf, bad, x) + ln_choose(lf, pop - bad, draws - x) - denom).exp())
        .sum()
}

/// The least c ≤ min(bad, draws) with Pr[X > c] ≤ eps.
fn quantile(lf: &[f64], pop: usize, bad: usize, draws: usize, eps: f64) -> usize {
    (0..bad.min(draws))
        .find(|&c| hyper_tail(lf, pop, bad, draws, c) <= eps)
        .unwrap_or(bad.min(draws))
}

/// Chooses (k, t) as the module documentation describes: the smallest degree that meets
/// every bound.
pub fn choose_params(req: &ParamRequest) -> Result<SecAggParams, ParamsError> {
    let ParamRequest {
        n,
        dropout,
        corruption,
        sigma,
        eta,
        threat,
    } = *req;
    let rate_ok = |r: f64| (0.0..1.0).contains(&r);
    if n < 3
        || !rate_ok(dropout)
        || !rate_ok(corruption)
        || dropout + corruption >= 1.0
        || sigma > 128
        || eta > 128
    {
        return Err(ParamsError::Invalid(format!(
            "n = {n}, dropout {dropout}, corruption {corruption}, sigma {sigma}, eta {eta}"
        )));
    }
    let lf = ln_factorials(n);
    let nf = n as f64;
    let corrupt = (corruption * nf).floor() as usize;
    let removed = ((corruption + dropout) * nf).floor() as usize;
    let lost = match threat {
        ThreatModel::SemiHonest => (dropout * nf).floor() as usize,
        ThreatModel::Malicious => removed,
    };
    let sec_eps = (-(sigma as f64)).exp2() / nf;
    let cor_eps = (-(eta as f64)).exp2() / nf;
    let mut k = 2;
    loop {
        let complete = k >= n - 1;
        let k_eff = if complete { n - 1 } else { k };
        let c = quantile(&lf, n - 1, corrupt, k_eff, sec_eps);
        let d = quantile(&lf, n - 1, lost, k_eff, cor_eps);
        let t_min = match threat {
            ThreatModel::SemiHonest => c + 1,
            ThreatModel::Malicious => (k_eff + c) / 2 + 1,
        }
        .max(MIN_THRESHOLD);
        let t_max = k_eff.saturating_sub(d);
        let connected = complete || {
            let p_all_removed: f64 = (0..k_eff)
                .map(|i| (removed.saturating_sub(i)) as f64 / (n - i) as f64)
                .product();
            nf * nf * p_all_removed <= (-(sigma as f64)).exp2()
        };
        if connected && t_min <= t_max {
            let threshold = (t_min.max(k_eff / 2 + 1)).min(t_max);
            return Ok(SecAggParams {
                k: k_eff,
                threshold,
            });
        }
        if complete {
            return Err(ParamsError::Infeasible {
                n,
                dropout,
                corruption,
            });
        }
        k += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypergeometric_tail_matches_direct_count() {
        let lf = ln_factorials(10);
        // 10 items, 3 bad, draw 4: Pr[X > 1] = (C(3,2)C(7,2) + C(3,3)C(7,1)) / C(10,4) = (63 + 7)/210.
        assert!((hyper_tail(&lf, 10, 3, 4, 1) - 70.0 / 210.0).abs() < 1e-12);
        assert_eq!(hyper_tail(&lf, 10, 3, 4, 3), 0.0);
    }

    #[test]
    fn large_n_gets_logarithmic_neighbourhoods() {
        let p = choose_params(&ParamRequest::new(1000, 0.1, 0.05)).expect("feasible");
        assert!(p.k < 200, "k = {}", p.k);
        assert!(p.threshold > 1 && p.threshold <= p.k);
        let p10k = choose_params(&ParamRequest::new(10_000, 0.1, 0.05)).expect("feasible");
        assert!(
            p10k.k < 300 && p10k.k >= p.k / 2,
            "k = {} vs {}",
            p10k.k,
            p.k
        );
    }

    #[test]
    fn malicious_needs_higher_threshold() {
        let semi =
            choose_params(&ParamRequest::new(500, 0.05, 0.05).semi_honest()).expect("feasible");
        let mal = choose_params(&ParamRequest::new(500, 0.05, 0.05)).expect("feasible");
        assert!(2 * mal.threshold > mal.k);
        assert!(mal.k >= semi.k);
    }

    #[test]
    fn small_n_and_infeasible() {
        let p = choose_params(&ParamRequest::new(10, 0.2, 0.0)).expect("feasible");
        assert!(p.k <= 9 && p.threshold >= 2 && p.threshold <= p.k - 2);
        assert!(matches!(
            choose_params(&ParamRequest::new(10, 0.5, 0.45)),
            Err(ParamsError::Infeasible { .. })
        ));
        assert!(matches!(
            choose_params(&ParamRequest::new(10, 1.0, 0.0)),
            Err(ParamsError::Invalid(_))
        ));
    }
}

#[cfg(test)]
mod examples {
    use super::*;

    /// Prints the choice for a few job sizes (run with `--nocapture` to see the table the
    /// module documentation quotes) and checks each against its own bounds.
    #[test]
    fn example_table() {
        for n in [10, 20, 50, 100, 1000, 10_000] {
            for (d, g) in [(0.1, 0.0), (0.1, 0.05), (0.2, 0.1)] {
                for threat in [ThreatModel::SemiHonest, ThreatModel::Malicious] {
                    let req = ParamRequest {
                        threat,
                        ..ParamRequest::new(n, d, g)
                    };
                    match choose_params(&req) {
                        Ok(p) => {
                            assert!(p.threshold >= 1 && p.threshold <= p.k && p.k < n);
                            eprintln!("n={n} δ={d} γ={g} {threat:?}: k={} t={}", p.k, p.threshold);
                        }
                        Err(e) => eprintln!("n={n} δ={d} γ={g} {threat:?}: {e}"),
                    }
                }
            }
        }
    }
}

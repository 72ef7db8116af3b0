//! Splitting a training table among N data holders: IID, or non-IID by label with Dirichlet(α) proportions
//! drawn for each class (two for a binary label, K for K classes).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::labels::class_of;
use crate::table::Dataset;

/// How rows are dealt to holders.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Partition {
    /// Shuffle and deal round-robin: sizes differ by at most one, label rates close to the table's.
    Iid,
    /// For each class, holder shares drawn from Dirichlet(α, …, α): small α (0.1–0.5) gives holders with
    /// very different sizes and class mixes; large α approaches IID.
    Dirichlet {
        /// Concentration, > 0.
        alpha: f64,
    },
}

impl std::fmt::Display for Partition {
    /// `iid`, or `dirichlet α=0.5`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Partition::Iid => f.write_str("iid"),
            Partition::Dirichlet { alpha } => write!(f, "dirichlet α={alpha}"),
        }
    }
}

/// How many Dirichlet draws to try before repairing empty holders by moving rows.
const DIRICHLET_TRIES: usize = 100;

/// Partitions the rows of `train` among `n_holders`; every holder gets at least one row, every row goes to
/// exactly one holder, and the result depends only on the arguments. Each holder's rows come in a random
/// order (fixed by `seed`), not in table order: tables are often sorted (the fraud table lists every
/// legitimate account, then every fraudulent one), and a proven job trains on blocks of consecutive rows.
pub fn partition(
    train: &Dataset,
    n_holders: usize,
    scheme: &Partition,
    seed: u64,
) -> Result<Vec<Dataset>, DatasetError> {
    let idx = partition_indices(&train.labels, n_holders, scheme, seed)?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6361_6972_6e2f_6f72); // "cairn/or"
    Ok(idx
        .into_iter()
        .map(|mut rows| {
            rows.shuffle(&mut rng);
            train.subset(&rows)
        })
        .collect())
}

/// Like [`partition`], but returns the row indices of each holder (each list sorted ascending).
pub fn partition_indices(
    labels: &[f32],
    n_holders: usize,
    scheme: &Partition,
    seed: u64,
) -> Result<Vec<Vec<usize>>, DatasetError> {
    let n = labels.len();
    if n_holders == 0 || n < n_holders {
        return Err(DatasetError::Partition {
            rows: n,
            holders: n_holders,
        });
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut holders = match *scheme {
        Partition::Iid => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            let mut h = vec![Vec::with_capacity(n / n_holders + 1); n_holders];
            for (k, i) in order.into_iter().enumerate() {
                h[k % n_holders].push(i);
            }
            h
        }
        Partition::Dirichlet { alpha } => {
            if !(alpha.is_finite() && alpha > 0.0) {
                return Err(DatasetError::InvalidOption(format!(
                    "Dirichlet alpha must be > 0, got {alpha}"
                )));
            }
            dirichlet(labels, n_holders, alpha, &mut rng)?
        }
    };
    for h in &mut holders {
        h.sort_unstable();
    }
    Ok(holders)
}

fn dirichlet(
    labels: &[f32],
    k: usize,
    alpha: f64,
    rng: &mut ChaCha20Rng,
) -> Result<Vec<Vec<usize>>, DatasetError> {
    let gamma = Gamma::new(alpha, 1.0)
        .map_err(|e| DatasetError::InvalidOption(format!("alpha {alpha}: {e}")))?;
    // One group of rows per class index, class 0 first (a binary label's negatives, then its positives, as
    // before multi-class labels: the same seed deals 0/1 labels as it did).
    let n_classes = labels.iter().map(|&l| class_of(l) + 1).max().unwrap_or(0);
    let mut classes = vec![Vec::new(); n_classes.max(2)];
    for (i, &l) in labels.iter().enumerate() {
        classes[class_of(l)].push(i);
    }
    let mut best: Vec<Vec<usize>> = Vec::new();
    for _ in 0..DIRICHLET_TRIES {
        let mut h: Vec<Vec<usize>> = vec![Vec::new(); k];
        for class in &mut classes {
            class.shuffle(rng);
            let mut w: Vec<f64> = (0..k).map(|_| gamma.sample(rng)).collect();
            let total: f64 = w.iter().sum();
            if total > 0.0 && total.is_finite() {
                w.iter_mut().for_each(|x| *x /= total);
            } else {
                // Tiny α can underflow every draw to 0: the limit is one holder taking the whole class.
                w = vec![0.0; k];
                w[rng.gen_range(0..k)] = 1.0;
            }
            // Cut the shuffled class at the cumulative shares.
            let mut start = 0usize;
            let mut cum = 0.0;
            for (j, share) in w.iter().enumerate() {
                cum += share;
                let end = if j + 1 == k {
                    class.len()
                } else {
                    ((cum * class.len() as f64).round() as usize).min(class.len())
                };
                h[j].extend_from_slice(&class[start..end.max(start)]);
                start = end.max(start);
            }
        }
        let filled = h.iter().filter(|v| !v.is_empty()).count();
        if filled == k {
            return Ok(h);
        }
        if best.is_empty() || filled > best.iter().filter(|v| !v.is_empty()).count() {
            best = h;
        }
    }
    // Repair: give each empty holder one row from the currently largest holder.
    while let Some(empty) = best.iter().position(Vec::is_empty) {
        let largest = (0..k)
            .max_by_key(|&j| best[j].len())
            .ok_or(DatasetError::Partition {
                rows: labels.len(),
                holders: k,
            })?;
        if best[largest].len() < 2 {
            return Err(DatasetError::Partition {
                rows: labels.len(),
                holders: k,
            });
        }
        let row = best[largest].pop().ok_or(DatasetError::Partition {
            rows: labels.len(),
            holders: k,
        })?;
        best[empty].push(row);
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<f32> {
        (0..n).map(|i| f32::from(u8::from(i % 3 == 0))).collect()
    }

    fn assert_disjoint_cover(parts: &[Vec<usize>], n: usize) {
        let mut all: Vec<usize> = parts.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        assert!(parts.iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn errors_when_impossible() {
        assert!(matches!(
            partition_indices(&labels(3), 4, &Partition::Iid, 0),
            Err(DatasetError::Partition {
                rows: 3,
                holders: 4
            })
        ));
        assert!(partition_indices(&labels(3), 0, &Partition::Iid, 0).is_err());
        assert!(matches!(
            partition_indices(&labels(9), 2, &Partition::Dirichlet { alpha: 0.0 }, 0),
            Err(DatasetError::InvalidOption(_))
        ));
    }

    #[test]
    fn tiny_alpha_still_fills_every_holder() -> Result<(), DatasetError> {
        let l = labels(40);
        let p = partition_indices(&l, 10, &Partition::Dirichlet { alpha: 1e-3 }, 3)?;
        assert_disjoint_cover(&p, 40);
        // Exactly as many rows as holders: one each.
        let p = partition_indices(&l[..10], 10, &Partition::Dirichlet { alpha: 0.01 }, 5)?;
        assert_disjoint_cover(&p, 10);
        assert!(p.iter().all(|h| h.len() == 1));
        Ok(())
    }

    #[test]
    fn dirichlet_over_three_classes_skews_class_mixes() -> Result<(), DatasetError> {
        // 900 rows, 300 of each of three classes.
        let l: Vec<f32> = (0..900).map(|i| (i % 3) as f32).collect();
        let p = partition_indices(&l, 5, &Partition::Dirichlet { alpha: 0.3 }, 11)?;
        assert_disjoint_cover(&p, 900);
        assert_eq!(
            p,
            partition_indices(&l, 5, &Partition::Dirichlet { alpha: 0.3 }, 11)?
        );
        // Each class is dealt separately: every class's rows all go somewhere, and with α = 0.3 the
        // holders' mixes are far from a third each.
        let share = |h: &[usize], c: usize| {
            h.iter().filter(|&&i| l[i] as usize == c).count() as f64 / h.len() as f64
        };
        let spread: f64 = (0..3)
            .map(|c| {
                let s: Vec<f64> = p.iter().map(|h| share(h, c)).collect();
                s.iter().cloned().fold(f64::MIN, f64::max)
                    - s.iter().cloned().fold(f64::MAX, f64::min)
            })
            .fold(0.0, f64::max);
        assert!(spread > 0.3, "class shares barely differ: {spread}");
        for c in 0..3 {
            let dealt: usize = p
                .iter()
                .map(|h| h.iter().filter(|&&i| l[i] as usize == c).count())
                .sum();
            assert_eq!(dealt, 300);
        }
        // A large α gives near-IID mixes.
        let p = partition_indices(&l, 3, &Partition::Dirichlet { alpha: 1e4 }, 11)?;
        for h in &p {
            for c in 0..3 {
                assert!((share(h, c) - 1.0 / 3.0).abs() < 0.05, "{}", share(h, c));
            }
        }
        Ok(())
    }

    /// What the binary-only code (before multi-class labels) dealt for `labels(30)`, 3 holders, α = 0.5,
    /// seed 4.
    const PINNED_BINARY: [&[usize]; 3] = [
        &[
            0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28,
        ],
        &[3, 9, 21],
        &[16, 17, 29],
    ];

    #[test]
    fn binary_labels_are_dealt_as_before() -> Result<(), DatasetError> {
        // Pinned from the binary-only code (negatives then positives, two Dirichlet draws per try).
        let l = labels(30);
        let p = partition_indices(&l, 3, &Partition::Dirichlet { alpha: 0.5 }, 4)?;
        assert_eq!(
            p,
            PINNED_BINARY.iter().map(|h| h.to_vec()).collect::<Vec<_>>()
        );
        Ok(())
    }

    #[test]
    fn partitions_print_as_words() {
        assert_eq!(Partition::Iid.to_string(), "iid");
        assert_eq!(
            Partition::Dirichlet { alpha: 0.5 }.to_string(),
            "dirichlet α=0.5"
        );
    }
}

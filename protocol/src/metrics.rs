//! Evaluation metrics of a binary classifier: log loss, accuracy, ROC AUC and the ROC curve.
//!
//! Pure functions over probabilities and 0/1 labels, shared by the coordinator's per-round
//! evaluation, the centralised baseline and the plots.

use serde::{Deserialize, Serialize};

use crate::model::{predict_proba, ModelSpec};

/// A model's metrics on a labelled set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean binary cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly at threshold 0.5.
    pub accuracy: f64,
    /// Area under the ROC curve (0.5 when a class is absent).
    pub auc: f64,
}

/// Mean binary cross-entropy of probabilities `p` against labels `y` (clamped away from 0/1).
pub fn log_loss(p: &[f32], y: &[f32]) -> f64 {
    if p.is_empty() {
        return 0.0;
    }
    let eps = 1e-7f64;
    let s: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = f64::from(p).clamp(eps, 1.0 - eps);
            -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
        })
        .sum();
    s / p.len() as f64
}

/// Fraction of rows where `p >= 0.5` agrees with the label.
pub fn accuracy(p: &[f32], y: &[f32]) -> f64 {
    if p.is_empty() {
        return 0.0;
    }
    let ok = p
        .iter()
        .zip(y)
        .filter(|(&p, &y)| (p >= 0.5) == (y >= 0.5))
        .count();
    ok as f64 / p.len() as f64
}

/// ROC AUC by the rank-sum (Mann–Whitney U) formula, ties given average ranks.
pub fn auc(p: &[f32], y: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let n_pos = y.iter().filter(|&&v| v >= 0.5).count();
    let n_neg = y.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return 0.5;
    }
    let mut rank_sum_pos = 0.0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y[k] >= 0.5 {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    u / (n_pos as f64 * n_neg as f64)
}

/// Points (false-positive rate, true-positive rate) of the ROC curve, from (0,0) to (1,1).
pub fn roc_curve(p: &[f32], y: &[f32]) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let n_pos = y.iter().filter(|&&v| v >= 0.5).count().max(1) as f64;
    let n_neg = (y.iter().filter(|&&v| v < 0.5).count()).max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut out = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < idx.len() {
        let t = p[idx[i]];
        while i < idx.len() && p[idx[i]] == t {
            if y[idx[i]] >= 0.5 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        out.push((fp / n_neg, tp / n_pos));
    }
    out
}

/// Evaluates a model on row-major `features` with `labels`.
pub fn evaluate(spec: &ModelSpec, params: &[f32], features: &[f32], labels: &[f32]) -> Metrics {
    Metrics::of_scores(&predict_proba(spec, params, features), labels)
}

impl Metrics {
    /// The metrics of the positive class's probabilities `p` against the labels `y`.
    pub fn of_scores(p: &[f32], y: &[f32]) -> Metrics {
        Metrics {
            loss: log_loss(p, y),
            accuracy: accuracy(p, y),
            auc: auc(p, y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_inverted_scores() {
        let y = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &y), 1.0);
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &y), 0.0);
        assert_eq!(auc(&[0.5; 4], &y), 0.5);
        // one inversion among 4 pairs
        assert_eq!(auc(&[0.1, 0.85, 0.8, 0.9], &y), 0.75);
        assert_eq!(auc(&[0.1, 0.2], &[1.0, 1.0]), 0.5);
    }

    #[test]
    fn loss_and_accuracy() {
        let y = [1.0, 0.0];
        assert!((log_loss(&[0.5, 0.5], &y) - std::f64::consts::LN_2).abs() < 1e-9);
        assert_eq!(accuracy(&[0.7, 0.2], &y), 1.0);
        assert_eq!(accuracy(&[0.3, 0.2], &y), 0.5);
    }

    #[test]
    fn roc_ends_at_the_corners_and_is_monotone() {
        let y = [0.0, 1.0, 0.0, 1.0, 1.0];
        let r = roc_curve(&[0.1, 0.4, 0.35, 0.8, 0.8], &y);
        assert_eq!(r.first(), Some(&(0.0, 0.0)));
        assert_eq!(r.last(), Some(&(1.0, 1.0)));
        assert!(r.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
    }
}

//! Evaluation metrics of a binary classifier: log loss, ROC AUC, PR-AUC (average precision),
//! the ROC curve, and accuracy, precision, recall and F1 at a decision threshold.
//!
//! Pure functions over probabilities and 0/1 labels, shared by the coordinator's per-round
//! evaluation, the centralised baseline, `cairn predict` and the plots.

use serde::{Deserialize, Serialize};

use crate::model::{predict_proba, ModelSpec};

/// The decision threshold when none is chosen: a row is predicted positive when its
/// probability is at least 0.5.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// A model's metrics on a labelled set.
///
/// The fields after `auc` were added later: records written before them (JSON, or the
/// coordinator's store) read back with `threshold` 0.5 (what their accuracy used) and the
/// others `None`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean binary cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly at `threshold`.
    pub accuracy: f64,
    /// Area under the ROC curve (0.5 when a class is absent).
    pub auc: f64,
    /// Average precision, the area under the precision-recall curve as scikit-learn's
    /// `average_precision_score` computes it ([`average_precision`]); `None` in records
    /// written before it was computed.
    #[serde(default)]
    pub pr_auc: Option<f64>,
    /// The decision threshold of `accuracy`, `precision`, `recall` and `f1`: a row is
    /// predicted positive when its probability is at least this.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Of the rows predicted positive, the fraction that are (0 when none is predicted
    /// positive); `None` in older records.
    #[serde(default)]
    pub precision: Option<f64>,
    /// Of the positive rows, the fraction predicted positive (0 when there is none);
    /// `None` in older records.
    #[serde(default)]
    pub recall: Option<f64>,
    /// F1 score at `threshold`, 2·TP / (2·TP + FP + FN) (0 when that is 0/0); `None` in
    /// older records.
    #[serde(default)]
    pub f1: Option<f64>,
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            loss: 0.0,
            accuracy: 0.0,
            auc: 0.0,
            pr_auc: None,
            threshold: DEFAULT_THRESHOLD,
            precision: None,
            recall: None,
            f1: None,
        }
    }
}

/// Checks a decision threshold: a number strictly between 0 and 1 (at 0 or 1 every row, or
/// none but exact ones, would be called positive). The error says what was given.
pub fn check_threshold(t: f64) -> Result<f64, String> {
    if t.is_finite() && t > 0.0 && t < 1.0 {
        Ok(t)
    } else {
        Err(format!("must be strictly between 0 and 1, got {t}"))
    }
}

/// Parses and checks a decision threshold ([`check_threshold`]), e.g. from a command-line
/// flag.
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let t: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("threshold {s:?} is not a number"))?;
    check_threshold(t)
}

/// The confusion counts of probabilities `p` against labels `y` at a threshold: a row is
/// predicted positive when `p >= threshold`, and is positive when its label is `>= 0.5`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Positive rows predicted positive.
    pub tp: usize,
    /// Negative rows predicted positive.
    pub fp: usize,
    /// Negative rows predicted negative.
    pub tn: usize,
    /// Positive rows predicted negative.
    pub fn_: usize,
}

impl Confusion {
    /// Counts `p` against `y` at `threshold`.
    pub fn at(p: &[f32], y: &[f32], threshold: f64) -> Confusion {
        let mut c = Confusion::default();
        for (&p, &y) in p.iter().zip(y) {
            match (f64::from(p) >= threshold, y >= 0.5) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    /// Fraction classified correctly (0 for no rows).
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.fp + self.tn + self.fn_)
    }

    /// TP / (TP + FP), 0 when nothing is predicted positive (as scikit-learn's
    /// `zero_division` default gives).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// TP / (TP + FN), 0 when there is no positive row.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall; 0 when there
    /// is no positive row and none is predicted positive.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
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
    Confusion::at(p, y, DEFAULT_THRESHOLD).accuracy()
}

/// Average precision (PR-AUC) of probabilities `p` against labels `y`, as scikit-learn's
/// `average_precision_score` computes it: with the distinct scores as thresholds, from the
/// highest down (rows of equal score enter together, as one threshold),
/// `AP = Σₙ (Rₙ − Rₙ₋₁) · Pₙ`, where Pₙ and Rₙ are the precision and recall of calling
/// positive every row scoring at least the n-th threshold, and R₀ = 0. No interpolation
/// (unlike the trapezoidal area, which is optimistic). 0 when there is no positive row
/// (scikit-learn warns and returns 0 too); the positives' share when every score ties.
pub fn average_precision(p: &[f32], y: &[f32]) -> f64 {
    let n_pos = y.iter().filter(|&&v| v >= 0.5).count();
    if n_pos == 0 {
        return 0.0;
    }
    let mut idx: Vec<usize> = (0..p.len().min(y.len())).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut ap, mut prev_recall) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < idx.len() {
        let t = p[idx[i]];
        while i < idx.len() && p[idx[i]] == t {
            if y[idx[i]] >= 0.5 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let recall = tp as f64 / n_pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    ap
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

/// Evaluates a model on row-major `features` with `labels`, at the default threshold 0.5.
pub fn evaluate(spec: &ModelSpec, params: &[f32], features: &[f32], labels: &[f32]) -> Metrics {
    evaluate_at(spec, params, features, labels, DEFAULT_THRESHOLD)
}

/// Evaluates a model on row-major `features` with `labels`, the thresholded metrics
/// (accuracy, precision, recall, F1) at `threshold`.
pub fn evaluate_at(
    spec: &ModelSpec,
    params: &[f32],
    features: &[f32],
    labels: &[f32],
    threshold: f64,
) -> Metrics {
    Metrics::of_scores_at(&predict_proba(spec, params, features), labels, threshold)
}

impl Metrics {
    /// The metrics of the positive class's probabilities `p` against the labels `y`, at
    /// the default threshold 0.5.
    pub fn of_scores(p: &[f32], y: &[f32]) -> Metrics {
        Metrics::of_scores_at(p, y, DEFAULT_THRESHOLD)
    }

    /// The metrics of the positive class's probabilities `p` against the labels `y`, the
    /// thresholded ones at `threshold`.
    pub fn of_scores_at(p: &[f32], y: &[f32], threshold: f64) -> Metrics {
        let c = Confusion::at(p, y, threshold);
        Metrics {
            loss: log_loss(p, y),
            accuracy: c.accuracy(),
            auc: auc(p, y),
            pr_auc: Some(average_precision(p, y)),
            threshold,
            precision: Some(c.precision()),
            recall: Some(c.recall()),
            f1: Some(c.f1()),
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

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn average_precision_matches_scikit_learn_on_known_cases() {
        // scikit-learn's documented example: average_precision_score([0, 0, 1, 1],
        // [0.1, 0.4, 0.35, 0.8]) = 0.8333…. From the highest score down:
        //   0.8  → TP 1, FP 0: P = 1,   R = 1/2, (1/2 − 0)·1     = 1/2
        //   0.4  → TP 1, FP 1: P = 1/2, R = 1/2, (1/2 − 1/2)·1/2 = 0
        //   0.35 → TP 2, FP 1: P = 2/3, R = 1,   (1 − 1/2)·2/3   = 1/3
        //   0.1  → TP 2, FP 2: P = 1/2, R = 1,   0
        // AP = 1/2 + 1/3 = 5/6.
        let y = [0.0, 0.0, 1.0, 1.0];
        assert!(close(
            average_precision(&[0.1, 0.4, 0.35, 0.8], &y),
            5.0 / 6.0
        ));
        // Perfect ranking: AP = 1; fully inverted: the positives come last,
        //   0.9 → P 0, R 0; 0.8 → P 0, R 0; 0.2 → TP 1 of 3: P 1/3, R 1/2 → 1/6;
        //   0.1 → TP 2 of 4: P 1/2, R 1 → 1/4; AP = 1/6 + 1/4 = 5/12.
        assert!(close(average_precision(&[0.1, 0.2, 0.8, 0.9], &y), 1.0));
        assert!(close(
            average_precision(&[0.9, 0.8, 0.2, 0.1], &y),
            5.0 / 12.0
        ));
    }

    #[test]
    fn average_precision_takes_tied_scores_as_one_threshold() {
        // Every score equal: one threshold, P = 2/4, R = 1 → AP = 1/2 (the positives'
        // share), as scikit-learn gives; taking the rows one by one would depend on
        // their order (1 here, with the positives first).
        assert!(close(
            average_precision(&[0.5; 4], &[1.0, 1.0, 0.0, 0.0]),
            0.5
        ));
        // y = [1, 0, 1, 0, 1], p = [0.9, 0.7, 0.7, 0.2, 0.2]:
        //   0.9 → TP 1, FP 0: P 1,   R 1/3 → 1/3
        //   0.7 → TP 2, FP 1: P 2/3, R 2/3 → (1/3)·(2/3) = 2/9
        //   0.2 → TP 3, FP 2: P 3/5, R 1   → (1/3)·(3/5) = 1/5
        // AP = 1/3 + 2/9 + 1/5 = (15 + 10 + 9)/45 = 34/45 = 0.7555…
        let ap = average_precision(&[0.9, 0.7, 0.7, 0.2, 0.2], &[1.0, 0.0, 1.0, 0.0, 1.0]);
        assert!(close(ap, 34.0 / 45.0), "{ap}");
        // The order of tied rows does not matter.
        let swapped = average_precision(&[0.9, 0.7, 0.7, 0.2, 0.2], &[1.0, 1.0, 0.0, 1.0, 0.0]);
        assert!(close(swapped, 34.0 / 45.0), "{swapped}");
        // No positive row: 0 (scikit-learn warns and returns 0).
        assert_eq!(average_precision(&[0.3, 0.6], &[0.0, 0.0]), 0.0);
        // Only positives: every threshold has precision 1.
        assert!(close(average_precision(&[0.3, 0.6], &[1.0, 1.0]), 1.0));
    }

    #[test]
    fn thresholded_metrics_count_at_the_threshold() {
        // y = [0, 0, 1, 1, 1], p = [0.2, 0.6, 0.4, 0.7, 0.9]
        let y = [0.0, 0.0, 1.0, 1.0, 1.0];
        let p = [0.2, 0.6, 0.4, 0.7, 0.9];
        // At 0.5: predicted positive 0.6 (FP), 0.7, 0.9 (TP); 0.4 is a FN, 0.2 a TN.
        let c = Confusion::at(&p, &y, 0.5);
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 1,
                tn: 1,
                fn_: 1
            }
        );
        let m = Metrics::of_scores_at(&p, &y, 0.5);
        assert!(close(m.accuracy, 3.0 / 5.0));
        assert_eq!(m.precision, Some(2.0 / 3.0));
        assert_eq!(m.recall, Some(2.0 / 3.0));
        // F1 = 2·2 / (2·2 + 1 + 1) = 2/3
        assert!(close(m.f1.expect("f1"), 2.0 / 3.0));
        assert_eq!(m.threshold, 0.5);
        // At 0.35 every positive is caught: TP 3, FP 1, TN 1, FN 0.
        let m = Metrics::of_scores_at(&p, &y, 0.35);
        assert!(close(m.accuracy, 4.0 / 5.0));
        assert_eq!(m.precision, Some(3.0 / 4.0));
        assert_eq!(m.recall, Some(1.0));
        // F1 = 6 / (6 + 1 + 0) = 6/7
        assert!(close(m.f1.expect("f1"), 6.0 / 7.0));
        // The ranking metrics do not depend on the threshold.
        assert_eq!(m.auc, Metrics::of_scores(&p, &y).auc);
        assert_eq!(m.pr_auc, Metrics::of_scores(&p, &y).pr_auc);
        // A row exactly at the threshold is positive.
        assert_eq!(Confusion::at(&[0.5], &[1.0], 0.5).tp, 1);
        // Nothing predicted positive: precision and F1 are 0, not NaN.
        let none = Metrics::of_scores_at(&[0.1, 0.2], &[1.0, 0.0], 0.9);
        assert_eq!(
            (none.precision, none.recall, none.f1),
            (Some(0.0), Some(0.0), Some(0.0))
        );
    }

    #[test]
    fn thresholds_outside_the_open_unit_interval_are_refused() {
        assert_eq!(check_threshold(0.3), Ok(0.3));
        assert_eq!(parse_threshold(" 0.25 "), Ok(0.25));
        for bad in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            let e = check_threshold(bad).expect_err("out of (0, 1)");
            assert!(e.contains("strictly between 0 and 1"), "{e}");
        }
        let e = parse_threshold("half").expect_err("not a number");
        assert!(e.contains("\"half\" is not a number"), "{e}");
    }
}

//! Evaluation metrics of a classifier: log loss, ROC AUC, PR-AUC (average precision), the
//! ROC curve, and accuracy, precision, recall and F1 at a decision threshold; for K ≥ 3
//! classes their macro averages over the classes, one-vs-rest, and each class's own
//! ([`ClassMetrics`]).
//!
//! Pure functions over probabilities and class-index labels, shared by the coordinator's
//! per-round evaluation, the centralised baseline, `cairn predict` and the plots.

use serde::{Deserialize, Serialize};

use crate::model::{class_probabilities, predict_proba, ModelSpec};

/// The decision threshold when none is chosen: a row is predicted positive when its
/// probability is at least 0.5.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// A model's metrics on a labelled set.
///
/// For a model of K ≥ 3 classes ([`Metrics::of_class_probs`]): `loss` is the mean
/// cross-entropy, `accuracy` that of the most probable class, and `auc`, `pr_auc`,
/// `precision`, `recall` and `f1` are macro averages of each class against the rest
/// (scikit-learn's `average="macro"`, `multi_class="ovr"`); `threshold` is unused.
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
/// (accuracy, precision, recall, F1) at `threshold` for a binary model; a multi-class one
/// by [`Metrics::of_class_probs`] (no threshold).
pub fn evaluate_at(
    spec: &ModelSpec,
    params: &[f32],
    features: &[f32],
    labels: &[f32],
    threshold: f64,
) -> Metrics {
    if spec.is_binary() {
        Metrics::of_scores_at(&predict_proba(spec, params, features), labels, threshold)
    } else {
        let k = spec.classes();
        Metrics::of_class_probs(&class_probabilities(spec, params, features), labels, k)
    }
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

/// One class's metrics, that class against the rest: the per-class rows of a
/// multi-class report (and of a binary one, both classes).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Rows labelled with the class.
    pub support: usize,
    /// Rows predicted as the class.
    pub predicted: usize,
    /// Of the rows predicted as the class (most probable class), the fraction that are.
    pub precision: f64,
    /// Of the class's rows, the fraction predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// ROC AUC of the class's probability, the class against the rest (0.5 without
    /// rows of the class or without other rows).
    pub auc: f64,
    /// Average precision of the class's probability against the rest (0 without rows
    /// of the class).
    pub average_precision: f64,
}

/// The index of the largest of `probs` (the first on ties).
fn argmax(probs: &[f32]) -> usize {
    probs
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 {
                (i, p)
            } else {
                best
            }
        })
        .0
}

/// Each class's metrics from row-major class probabilities `probs` (`y.len() × k`)
/// against class-index labels `y`, one entry per class 0..k. A row's predicted class is
/// its most probable one.
pub fn per_class(probs: &[f32], y: &[f32], k: usize) -> Vec<ClassMetrics> {
    let rows: Vec<&[f32]> = probs.chunks_exact(k.max(1)).take(y.len()).collect();
    let predicted: Vec<usize> = rows.iter().map(|p| argmax(p)).collect();
    (0..k)
        .map(|c| {
            let is_c: Vec<f32> = y.iter().map(|&v| f32::from(v as usize == c)).collect();
            let score: Vec<f32> = rows.iter().map(|p| p[c]).collect();
            let mut conf = Confusion::default();
            for (&truth, &pred) in is_c.iter().zip(&predicted) {
                match (pred == c, truth > 0.5) {
                    (true, true) => conf.tp += 1,
                    (true, false) => conf.fp += 1,
                    (false, false) => conf.tn += 1,
                    (false, true) => conf.fn_ += 1,
                }
            }
            ClassMetrics {
                support: conf.tp + conf.fn_,
                predicted: conf.tp + conf.fp,
                precision: conf.precision(),
                recall: conf.recall(),
                f1: conf.f1(),
                auc: auc(&score, &is_c),
                average_precision: average_precision(&score, &is_c),
            }
        })
        .collect()
}

/// Mean cross-entropy of row-major class probabilities `probs` (`y.len() × k`) against
/// class-index labels `y` (each probability clamped away from 0).
pub fn cross_entropy(probs: &[f32], y: &[f32], k: usize) -> f64 {
    if y.is_empty() || k == 0 {
        return 0.0;
    }
    let s: f64 = probs
        .chunks_exact(k)
        .zip(y)
        .map(|(p, &c)| {
            let pc = p.get(c as usize).map_or(0.0, |&v| f64::from(v));
            -pc.clamp(1e-7, 1.0).ln()
        })
        .sum();
    s / y.len() as f64
}

impl Metrics {
    /// The metrics of a K-class model from row-major class probabilities `probs`
    /// (`y.len() × k`) against class-index labels `y`: cross-entropy, accuracy of the
    /// most probable class, and the macro averages of [`per_class`] (the ranking ones,
    /// AUC and average precision, over the classes that have rows, as scikit-learn
    /// refuses a class without; precision, recall and F1 over the classes that have rows
    /// or are predicted, as scikit-learn's `average="macro"`).
    pub fn of_class_probs(probs: &[f32], y: &[f32], k: usize) -> Metrics {
        let classes = per_class(probs, y, k);
        let correct = probs
            .chunks_exact(k.max(1))
            .zip(y)
            .filter(|(p, &c)| argmax(p) == c as usize)
            .count();
        // Which classes an average is over: those with rows (ranking metrics), or those
        // with rows or predicted at least once (scikit-learn's labels for the others).
        let mean = |f: &dyn Fn(&ClassMetrics) -> f64, only_present: bool| {
            let picked: Vec<f64> = classes
                .iter()
                .filter(|m| m.support > 0 || (!only_present && m.predicted > 0))
                .map(f)
                .collect();
            if picked.is_empty() {
                0.0
            } else {
                picked.iter().sum::<f64>() / picked.len() as f64
            }
        };
        Metrics {
            loss: cross_entropy(probs, y, k),
            accuracy: ratio(correct, y.len()),
            auc: mean(&|m| m.auc, true),
            pr_auc: Some(mean(&|m| m.average_precision, true)),
            threshold: DEFAULT_THRESHOLD,
            precision: Some(mean(&|m| m.precision, false)),
            recall: Some(mean(&|m| m.recall, false)),
            f1: Some(mean(&|m| m.f1, false)),
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

    /// Eight rows of three classes; the expected numbers are scikit-learn 1.x's on the
    /// same arrays (`roc_auc_score(y, P, multi_class="ovr", average="macro")`,
    /// `average_precision_score(y == c, P[:, c])`, `precision_recall_fscore_support(y,
    /// P.argmax(1), zero_division=0)`, `log_loss(y, P)`).
    #[test]
    fn multi_class_metrics_match_scikit_learn() {
        let y = [0.0, 1.0, 2.0, 2.0, 1.0, 0.0, 2.0, 1.0];
        let probs = [
            0.7, 0.2, 0.1, 0.2, 0.5, 0.3, 0.1, 0.3, 0.6, 0.3, 0.4, 0.3, //
            0.5, 0.4, 0.1, 0.6, 0.1, 0.3, 0.2, 0.2, 0.6, 0.1, 0.8, 0.1,
        ];
        let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let c = per_class(&probs, &y, 3);
        let want = [
            // support, predicted, precision, recall, f1, auc, average precision
            (2, 3, 2.0 / 3.0, 1.0, 0.8, 1.0, 1.0),
            (
                3,
                3,
                2.0 / 3.0,
                2.0 / 3.0,
                2.0 / 3.0,
                0.966_666_666_7,
                0.916_666_666_7,
            ),
            (3, 2, 1.0, 2.0 / 3.0, 0.8, 0.933_333_333_3, 0.866_666_666_7),
        ];
        for (i, (got, w)) in c.iter().zip(want).enumerate() {
            assert_eq!((got.support, got.predicted), (w.0, w.1), "class {i}");
            for (a, b) in [
                (got.precision, w.2),
                (got.recall, w.3),
                (got.f1, w.4),
                (got.auc, w.5),
                (got.average_precision, w.6),
            ] {
                assert!(near(a, b), "class {i}: {got:?}");
            }
        }
        let m = Metrics::of_class_probs(&probs, &y, 3);
        assert!(near(m.accuracy, 0.75), "{m:?}");
        assert!(near(m.auc, 0.966_666_666_7), "{m:?}");
        assert!(near(m.pr_auc.expect("pr"), 0.927_777_777_8), "{m:?}");
        assert!(near(m.precision.expect("p"), 0.777_777_777_8), "{m:?}");
        assert!(near(m.recall.expect("r"), 0.777_777_777_8), "{m:?}");
        assert!(near(m.f1.expect("f1"), 0.755_555_555_6), "{m:?}");
        assert!(near(m.loss, 0.615_713_238_7), "{m:?}");
    }

    #[test]
    fn a_class_without_rows_is_left_out_of_the_ranking_averages() {
        // Class 2 has no row and is never predicted: the averages are over classes 0, 1.
        let y = [0.0, 1.0, 0.0, 1.0];
        let probs = [0.8, 0.1, 0.1, 0.3, 0.6, 0.1, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1];
        let m = Metrics::of_class_probs(&probs, &y, 3);
        assert_eq!((m.accuracy, m.auc, m.f1), (1.0, 1.0, Some(1.0)));
        assert_eq!(per_class(&probs, &y, 3)[2].support, 0);
        // Binary class probabilities give each class's view of a binary model.
        let two = per_class(&[0.9, 0.1, 0.2, 0.8], &[0.0, 1.0], 2);
        assert_eq!((two[0].support, two[1].support), (1, 1));
        assert_eq!((two[0].recall, two[1].recall), (1.0, 1.0));
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

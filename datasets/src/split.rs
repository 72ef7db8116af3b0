//! De-duplication and the deterministic, optionally stratified, train/test split.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::labels::class_of;
use crate::table::Dataset;

/// Keeps the first occurrence of every (feature vector, label); returns the table and how many rows went.
pub fn dedupe(ds: &Dataset) -> (Dataset, usize) {
    let mut seen = HashSet::with_capacity(ds.n_rows());
    let keep: Vec<usize> = (0..ds.n_rows())
        .filter(|&i| seen.insert(ds.row_key(i)))
        .collect();
    let removed = ds.n_rows() - keep.len();
    (ds.subset(&keep), removed)
}

/// Splits row indices `0..labels.len()` into (train, test), both in shuffled order, reproducibly from `seed`.
///
/// With `stratify`, each class (labels are class indices) contributes `round(n_class · test_fraction)` rows to
/// the test split, but never all of its rows, so every class present in the data is present in training and
/// keeps its share in both splits. Without it the same rule applies to the table as a whole. (For 0/1 labels
/// the draws are those of the binary split this generalises: the same seed gives the same split.)
pub fn split_indices(
    labels: &[f32],
    test_fraction: f64,
    seed: u64,
    stratify: bool,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let groups: Vec<Vec<usize>> = if stratify {
        // Class 0 first, as the binary split took its negatives first.
        let k = labels.iter().map(|&l| class_of(l) + 1).max().unwrap_or(0);
        let mut groups = vec![Vec::new(); k.max(2)];
        for (i, &l) in labels.iter().enumerate() {
            groups[class_of(l)].push(i);
        }
        groups
    } else {
        vec![(0..labels.len()).collect()]
    };
    let mut train = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    for mut g in groups {
        g.shuffle(&mut rng);
        let n_test =
            ((g.len() as f64 * test_fraction).round() as usize).min(g.len().saturating_sub(1));
        test.extend_from_slice(&g[..n_test]);
        train.extend_from_slice(&g[n_test..]);
    }
    train.shuffle(&mut rng);
    test.shuffle(&mut rng);
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_first_and_respects_label() {
        let ds = Dataset {
            features: vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0],
            labels: vec![0.0, 0.0, 1.0, 0.0],
            n_features: 2,
            feature_names: vec!["a".into(), "b".into()],
        };
        let (d, removed) = dedupe(&ds);
        assert_eq!(removed, 1);
        assert_eq!(d.labels, vec![0.0, 1.0, 0.0]);
        assert_eq!(d.row(2), &[3.0, 4.0]);
    }

    #[test]
    fn split_is_a_stratified_deterministic_partition() {
        let labels: Vec<f32> = (0..1000).map(|i| f32::from(u8::from(i % 4 == 0))).collect();
        let (tr, te) = split_indices(&labels, 0.2, 7, true);
        assert_eq!((tr.len(), te.len()), (800, 200));
        let mut all: Vec<usize> = tr.iter().chain(&te).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(te.iter().filter(|&&i| labels[i] > 0.5).count(), 50);
        assert_eq!(
            split_indices(&labels, 0.2, 7, true),
            (tr.clone(), te.clone())
        );
        assert_ne!(split_indices(&labels, 0.2, 8, true).1, te);
        // A lone positive stays in training.
        let (tr, te) = split_indices(&[1.0, 0.0, 0.0, 0.0], 0.6, 1, true);
        assert!(tr.contains(&0) && !te.contains(&0));
        assert_eq!(split_indices(&labels, 0.0, 1, false).1.len(), 0);
    }

    #[test]
    fn a_stratified_split_keeps_every_class_s_share() {
        // 600 of class 0, 300 of class 1, 90 of class 2, 10 of class 3.
        let labels: Vec<f32> = (0..1000)
            .map(|i| match i % 100 {
                0..=59 => 0.0,
                60..=89 => 1.0,
                90..=98 => 2.0,
                _ => 3.0,
            })
            .collect();
        let (tr, te) = split_indices(&labels, 0.2, 3, true);
        let count = |idx: &[usize], c: f32| idx.iter().filter(|&&i| labels[i] == c).count();
        for (c, n) in [(0.0, 600), (1.0, 300), (2.0, 90), (3.0, 10)] {
            assert_eq!(count(&te, c), n / 5, "class {c} in test");
            assert_eq!(count(&tr, c), n - n / 5, "class {c} in train");
        }
        // A class of one row stays in training.
        let (tr, te) = split_indices(&[0.0, 0.0, 2.0, 1.0, 1.0], 0.5, 1, true);
        assert!(tr.contains(&2) && !te.contains(&2));
    }
}

//! [`Dataset`]: the numeric table every other part of cairn consumes (row-major `f32` features, class-index
//! labels: 0/1 for a binary label).

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;

/// A numeric table: row-major features, one class index per row as the label (0.0/1.0 for a binary label;
/// the class names live beside it, in [`crate::LoadReport::classes`] and [`crate::DataSpec::classes`]).
///
/// Invariant: `features.len() == labels.len() * n_features` and `feature_names.len() == n_features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Row-major feature values, `n_rows * n_features` of them.
    pub features: Vec<f32>,
    /// One label per row: a class index `0..K` (0.0 or 1.0 for a binary label).
    pub labels: Vec<f32>,
    /// Number of features (columns) per row.
    pub n_features: usize,
    /// Column names, in order.
    pub feature_names: Vec<String>,
}

impl Dataset {
    /// A table from its parts, checking the shape invariant and that every label is a class index: an
    /// integer from 0 to [`crate::MAX_CLASSES`] − 1 ([`DatasetError::NonBinaryLabel`] otherwise).
    pub fn new(
        features: Vec<f32>,
        labels: Vec<f32>,
        feature_names: Vec<String>,
    ) -> Result<Dataset, DatasetError> {
        let n_features = feature_names.len();
        if features.len() != labels.len() * n_features {
            return Err(DatasetError::RowLength {
                expected: labels.len() * n_features,
                found: features.len(),
            });
        }
        let is_index =
            |l: f32| l >= 0.0 && l.fract() == 0.0 && l < crate::labels::MAX_CLASSES as f32;
        if let Some(row) = labels.iter().position(|&l| !is_index(l)) {
            return Err(DatasetError::NonBinaryLabel {
                value: labels[row].to_string(),
                row,
            });
        }
        Ok(Dataset {
            features,
            labels,
            n_features,
            feature_names,
        })
    }

    /// An empty table with the given columns.
    pub fn empty(feature_names: Vec<String>) -> Dataset {
        Dataset {
            features: Vec::new(),
            labels: Vec::new(),
            n_features: feature_names.len(),
            feature_names,
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.labels.len()
    }

    /// The features of row `i`. Panics if `i >= n_rows()`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Appends one row. The caller guarantees `row.len() == n_features`.
    pub fn push_row(&mut self, row: &[f32], label: f32) {
        debug_assert_eq!(row.len(), self.n_features);
        self.features.extend_from_slice(row);
        self.labels.push(label);
    }

    /// A new table made of the rows `idx`, in that order (indices may repeat). Panics on an out-of-range index.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut out = Dataset::empty(self.feature_names.clone());
        out.features.reserve(idx.len() * self.n_features);
        out.labels.reserve(idx.len());
        for &i in idx {
            out.push_row(self.row(i), self.labels[i]);
        }
        out
    }

    /// Fraction of rows labelled 1 (0.0 for an empty table): the positive rate of a binary label (with more
    /// classes, the share of rows of any class but 0).
    pub fn positive_rate(&self) -> f64 {
        if self.labels.is_empty() {
            return 0.0;
        }
        self.labels.iter().filter(|&&l| l > 0.5).count() as f64 / self.labels.len() as f64
    }

    /// Number of rows labelled 1: the positives of a binary label (with more classes, the rows of any
    /// class but 0).
    pub fn n_positive(&self) -> usize {
        self.labels.iter().filter(|&&l| l > 0.5).count()
    }

    /// Rows of each class `0..k`, in index order. Labels that are no class below `k` (and `NaN`) are not
    /// counted.
    pub fn class_counts(&self, k: usize) -> Vec<usize> {
        crate::labels::count_classes(&self.labels, k)
    }

    /// The values of column `j`, top to bottom.
    pub fn column(&self, j: usize) -> impl Iterator<Item = f32> + '_ {
        self.features
            .iter()
            .skip(j)
            .step_by(self.n_features.max(1))
            .copied()
    }

    /// Index of the column named `name`, if any.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.feature_names.iter().position(|n| n == name)
    }

    /// The same rows with only the columns `names`, in that order (how a participant lines its own table up
    /// with a [`crate::Normalizer`] published by the coordinator).
    pub fn select_columns(&self, names: &[String]) -> Result<Dataset, DatasetError> {
        let idx: Vec<usize> = names
            .iter()
            .map(|n| self.column_index(n))
            .collect::<Option<_>>()
            .ok_or_else(|| DatasetError::SchemaMismatch {
                expected: names.to_vec(),
                found: self.feature_names.clone(),
            })?;
        let mut out = Dataset::empty(names.to_vec());
        out.features.reserve(self.n_rows() * idx.len());
        for i in 0..self.n_rows() {
            let row = self.row(i);
            out.features.extend(idx.iter().map(|&j| row[j]));
        }
        out.labels = self.labels.clone();
        Ok(out)
    }

    /// A bit-exact key for row `i` plus its label, for de-duplication (all NaNs compare equal).
    pub(crate) fn row_key(&self, i: usize) -> Vec<u32> {
        let mut key: Vec<u32> = self
            .row(i)
            .iter()
            .map(|v| {
                if v.is_nan() {
                    f32::NAN.to_bits()
                } else {
                    (v + 0.0).to_bits()
                }
            })
            .collect();
        key.push(self.labels[i].to_bits());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            features: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            labels: vec![0.0, 1.0, 1.0],
            n_features: 2,
            feature_names: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn rows_subset_and_rate() {
        let d = tiny();
        assert_eq!(d.n_rows(), 3);
        assert_eq!(d.row(1), &[3.0, 4.0]);
        let s = d.subset(&[2, 0]);
        assert_eq!(s.features, vec![5.0, 6.0, 1.0, 2.0]);
        assert_eq!(s.labels, vec![1.0, 0.0]);
        assert!((d.positive_rate() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.column(1).collect::<Vec<_>>(), vec![2.0, 4.0, 6.0]);
        assert_eq!(Dataset::empty(vec![]).positive_rate(), 0.0);
    }

    #[test]
    fn new_checks_shape_and_labels_and_columns_select() {
        let names = vec!["a".to_string(), "b".to_string()];
        assert!(Dataset::new(vec![1.0, 2.0], vec![1.0], names.clone()).is_ok());
        let short = Dataset::new(vec![1.0], vec![1.0], names.clone());
        assert!(matches!(
            short,
            Err(DatasetError::RowLength {
                expected: 2,
                found: 1
            })
        ));
        for bad in [0.5, -1.0, 64.0, f32::NAN, f32::INFINITY] {
            let label = Dataset::new(vec![1.0, 2.0, 3.0, 4.0], vec![2.0, bad], names.clone());
            assert!(
                matches!(label, Err(DatasetError::NonBinaryLabel { row: 1, .. })),
                "{bad}"
            );
        }
        let three = Dataset::new(vec![1.0, 2.0, 3.0, 4.0], vec![2.0, 63.0], names.clone())
            .expect("class indices");
        assert_eq!(three.class_counts(3), vec![0, 0, 1]);
        assert_eq!(tiny().class_counts(2), vec![1, 2]);

        let d = tiny().select_columns(&["b".to_string(), "a".to_string()]);
        assert_eq!(
            d.ok().map(|d| d.features),
            Some(vec![2.0, 1.0, 4.0, 3.0, 6.0, 5.0])
        );
        let missing = tiny().select_columns(&["c".to_string()]);
        assert!(matches!(missing, Err(DatasetError::SchemaMismatch { .. })));
    }

    #[test]
    fn row_key_treats_nan_and_signed_zero_alike() {
        let d = Dataset {
            features: vec![f32::NAN, -0.0, -f32::NAN, 0.0, 1.0, 0.0],
            labels: vec![1.0, 1.0, 1.0],
            n_features: 2,
            feature_names: vec!["a".into(), "b".into()],
        };
        assert_eq!(d.row_key(0), d.row_key(1));
        assert_ne!(d.row_key(0), d.row_key(2));
    }
}

//! [`Normalizer`]: fill missing values, tame heavy tails, standardise and clamp, with every statistic taken
//! from the training split only.
//!
//! The coordinator and every participant must turn raw rows into exactly the same numbers (the rows are
//! committed to and proven over in fixed point), so the fitted transform is a plain serialisable value that
//! travels with the job rather than something recomputed per holder.

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::options::{LoadOptions, MissingPolicy, TailPolicy};
use crate::table::Dataset;

/// `sign(x)·ln(1+|x|)`: monotone, odd, and compresses 1e12 to about 27.6.
pub fn signed_log(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

/// The fitted transform of one column: `clamp((f(fill_if_missing(x)) − mean) / sd)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnTransform {
    /// The column's name (checked when a table is transformed).
    pub name: String,
    /// Value used for a missing (`NaN`) cell, in raw units.
    pub fill: f64,
    /// Whether [`signed_log`] is applied before standardising.
    pub signed_log: bool,
    /// Training mean of the (filled, log-transformed) column.
    pub mean: f64,
    /// Training standard deviation; 1 when the column is constant on the training split.
    pub sd: f64,
}

/// Per-column transforms fitted on a training split, plus the clamp bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// One transform per input column, in order.
    pub columns: Vec<ColumnTransform>,
    /// Output values are clamped to `[-clamp, clamp]`.
    pub clamp: f32,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// Population mean, standard deviation and skewness.
fn moments(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let (m2, m3) = v.iter().fold((0.0, 0.0), |(a, b), &x| {
        let d = x - mean;
        (a + d * d, b + d * d * d)
    });
    let (m2, m3) = (m2 / n, m3 / n);
    let sd = m2.sqrt();
    let skew = if m2 > 0.0 { m3 / m2.powf(1.5) } else { 0.0 };
    (mean, sd, skew)
}

impl Normalizer {
    /// Fits the transform on `train` as `opts` says (missing fill, tail policy, clamp).
    pub fn fit(train: &Dataset, opts: &LoadOptions) -> Normalizer {
        let columns = (0..train.n_features)
            .map(|j| {
                let present: Vec<f64> = train
                    .column(j)
                    .filter(|v| !v.is_nan())
                    .map(f64::from)
                    .collect();
                let fill = match opts.missing {
                    MissingPolicy::Zero => 0.0,
                    MissingPolicy::TrainMedian => median(present.clone()),
                };
                let filled: Vec<f64> = train
                    .column(j)
                    .map(|v| if v.is_nan() { fill } else { f64::from(v) })
                    .collect();
                let log = match opts.tails {
                    TailPolicy::All => true,
                    TailPolicy::None => false,
                    TailPolicy::Auto { max_abs_skew } => moments(&filled).2.abs() > max_abs_skew,
                };
                let transformed: Vec<f64> = if log {
                    filled.iter().map(|&x| signed_log(x)).collect()
                } else {
                    filled
                };
                let (mean, sd, _) = moments(&transformed);
                let sd = if sd > 1e-12 { sd } else { 1.0 };
                ColumnTransform {
                    name: train.feature_names[j].clone(),
                    fill,
                    signed_log: log,
                    mean,
                    sd,
                }
            })
            .collect();
        Normalizer {
            columns,
            clamp: opts.clamp,
        }
    }

    /// Number of columns expected.
    pub fn n_features(&self) -> usize {
        self.columns.len()
    }

    /// Names of the columns expected, in order.
    pub fn feature_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Names of the columns that get the signed-log transform.
    pub fn log_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.signed_log)
            .map(|c| c.name.clone())
            .collect()
    }

    /// Transforms one value of column `j`; the flag says whether it was clamped.
    fn value(&self, j: usize, x: f32) -> (f32, bool) {
        let c = &self.columns[j];
        let x = if x.is_nan() { c.fill } else { f64::from(x) };
        let x = if c.signed_log { signed_log(x) } else { x };
        let z = ((x - c.mean) / c.sd) as f32;
        let clamped = z.clamp(-self.clamp, self.clamp);
        (clamped, clamped != z)
    }

    /// Transforms one raw row (same columns, same order as the table it was fitted on).
    pub fn transform_row(&self, row: &[f32]) -> Result<Vec<f32>, DatasetError> {
        if row.len() != self.columns.len() {
            return Err(DatasetError::RowLength {
                expected: self.columns.len(),
                found: row.len(),
            });
        }
        Ok(row
            .iter()
            .enumerate()
            .map(|(j, &x)| self.value(j, x).0)
            .collect())
    }

    /// Transforms a raw table with the same column names; also returns how many values were clamped.
    pub fn transform(&self, ds: &Dataset) -> Result<(Dataset, usize), DatasetError> {
        if ds.n_features != self.columns.len()
            || self
                .columns
                .iter()
                .zip(&ds.feature_names)
                .any(|(c, n)| c.name != *n)
        {
            return Err(DatasetError::SchemaMismatch {
                expected: self.feature_names(),
                found: ds.feature_names.clone(),
            });
        }
        Ok(self.apply(ds))
    }

    /// [`Normalizer::transform`] for a table already known to have this normaliser's columns.
    pub(crate) fn apply(&self, ds: &Dataset) -> (Dataset, usize) {
        let mut clamped = 0;
        let features = ds
            .features
            .iter()
            .enumerate()
            .map(|(k, &x)| {
                let (z, c) = self.value(k % self.columns.len().max(1), x);
                clamped += usize::from(c);
                z
            })
            .collect();
        let out = Dataset {
            features,
            labels: ds.labels.clone(),
            n_features: ds.n_features,
            feature_names: ds.feature_names.clone(),
        };
        (out, clamped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cols: &[Vec<f32>]) -> Dataset {
        let n = cols[0].len();
        let mut ds = Dataset::empty((0..cols.len()).map(|j| format!("c{j}")).collect());
        for i in 0..n {
            let row: Vec<f32> = cols.iter().map(|c| c[i]).collect();
            ds.push_row(&row, (i % 2) as f32);
        }
        ds
    }

    #[test]
    fn signed_log_is_odd_and_compresses() {
        assert_eq!(signed_log(0.0), 0.0);
        assert!((signed_log(-1e12) + signed_log(1e12)).abs() < 1e-12);
        assert!((signed_log(1e12) - 27.631).abs() < 1e-3);
    }

    #[test]
    fn fills_logs_standardises_and_clamps() -> Result<(), DatasetError> {
        // c0: heavy tail -> log; c1: symmetric -> no log; c2: constant with a missing cell.
        let c0 = vec![1.0, 2.0, 1.0, 3.0, 2.0, 1.0, 2.0, 1e9];
        let c1 = vec![-3.0, -1.0, 0.0, 1.0, 3.0, -2.0, 2.0, 0.0];
        let c2 = vec![5.0, 5.0, f32::NAN, 5.0, 5.0, 5.0, 5.0, 5.0];
        let ds = table(&[c0, c1, c2]);
        let opts = LoadOptions {
            missing: MissingPolicy::TrainMedian,
            clamp: 2.0,
            ..LoadOptions::default()
        };
        let n = Normalizer::fit(&ds, &opts);
        assert_eq!(n.log_columns(), vec!["c0"]);
        assert_eq!(n.columns[2].fill, 5.0);
        assert_eq!(n.columns[2].sd, 1.0);
        let (out, clamped) = n.transform(&ds)?;
        assert_eq!(
            clamped, 1,
            "only the 1e9 outlier exceeds 2 sd after the log"
        );
        assert!(out.features.iter().all(|v| v.abs() <= 2.0 && v.is_finite()));
        let col1: Vec<f32> = out.column(1).collect();
        let mean: f32 = col1.iter().sum::<f32>() / 8.0;
        let var: f32 = col1.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 8.0;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
            "{mean} {var}"
        );
        assert_eq!(out.column(2).collect::<Vec<_>>(), vec![0.0; 8]);
        assert_eq!(n.transform_row(ds.row(3))?, out.row(3).to_vec());
        Ok(())
    }

    #[test]
    fn rejects_other_schemas_and_roundtrips_serde() -> Result<(), Box<dyn std::error::Error>> {
        let ds = table(&[vec![1.0, 2.0, 4.0], vec![0.0, 1.0, 0.0]]);
        let n = Normalizer::fit(&ds, &LoadOptions::default());
        let mut other = ds.clone();
        other.feature_names[1] = "zz".into();
        assert!(matches!(
            n.transform(&other),
            Err(DatasetError::SchemaMismatch { .. })
        ));
        assert!(matches!(
            n.transform_row(&[1.0]),
            Err(DatasetError::RowLength {
                expected: 2,
                found: 1
            })
        ));
        let json = serde_json::to_string(&n)?;
        let back: Normalizer = serde_json::from_str(&json)?;
        assert_eq!(back, n);
        Ok(())
    }
}

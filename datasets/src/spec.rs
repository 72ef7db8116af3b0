//! [`DataSpec`]: what a job trains on, as every holder must prepare it — the label column, and
//! the model's input columns with the transform fitted on the coordinator's table.
//!
//! The coordinator fits a [`Normalizer`] on its own (evaluation) table and sends it with the
//! job; each holder reads its own file (named by the holder, never by the job), selects the
//! job's columns and applies that transform ([`prepare_for_job`]). The same spec goes out
//! with the trained model, so that new rows are scored exactly as the rows it was trained on
//! were prepared.

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::normalize::Normalizer;
use crate::options::LoadOptions;
use crate::pipeline::{finish_with, Prepared};
use crate::report::LoadReport;
use crate::table::Dataset;

/// Most input columns a spec may name.
pub const MAX_SPEC_COLUMNS: usize = 4096;
/// Longest column (or label) name a spec may carry, in bytes.
pub const MAX_COLUMN_NAME_BYTES: usize = 256;

/// The job's data: its label column and its input columns with their fitted transforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// The label column's (trimmed) name.
    pub label: String,
    /// The model's input columns, in order, each with its transform.
    pub normalizer: Normalizer,
}

/// Why a spec cannot be used (it came over the network: every field is checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data spec: {0}")]
pub struct SpecError(pub String);

impl DataSpec {
    /// The spec of a table the coordinator prepared.
    pub fn of(prepared: &Prepared) -> DataSpec {
        DataSpec {
            label: prepared.report.label.clone(),
            normalizer: prepared.normalizer.clone(),
        }
    }

    /// The input columns' names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.normalizer.feature_names()
    }

    /// Checks what a holder relies on: names that are present, short, printable and
    /// distinct; finite statistics; a positive standard deviation and clamp.
    pub fn validate(&self) -> Result<(), SpecError> {
        let name_ok = |n: &str| {
            !n.trim().is_empty()
                && n.len() <= MAX_COLUMN_NAME_BYTES
                && !n.chars().any(char::is_control)
        };
        if !name_ok(&self.label) {
            return Err(SpecError(format!(
                "the label name must be 1 to {MAX_COLUMN_NAME_BYTES} printable bytes"
            )));
        }
        let cols = &self.normalizer.columns;
        if cols.is_empty() || cols.len() > MAX_SPEC_COLUMNS {
            return Err(SpecError(format!(
                "{} input columns (want 1 to {MAX_SPEC_COLUMNS})",
                cols.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (j, c) in cols.iter().enumerate() {
            if !name_ok(&c.name) {
                return Err(SpecError(format!(
                    "column {} has no usable name (1 to {MAX_COLUMN_NAME_BYTES} printable bytes)",
                    j + 1
                )));
            }
            if c.name == self.label {
                return Err(SpecError(format!(
                    "the label {:?} is also an input column",
                    self.label
                )));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(SpecError(format!("column {:?} is listed twice", c.name)));
            }
            if !(c.fill.is_finite() && c.mean.is_finite() && c.sd.is_finite() && c.sd > 0.0) {
                return Err(SpecError(format!(
                    "column {:?} has unusable statistics (fill {}, mean {}, sd {})",
                    c.name, c.fill, c.mean, c.sd
                )));
            }
        }
        let clamp = self.normalizer.clamp;
        if !(clamp.is_finite() && clamp > 0.0) {
            return Err(SpecError(format!("clamp {clamp} is not positive")));
        }
        Ok(())
    }

    /// The job's columns of `table` (a holder's raw numeric table), transformed; the error
    /// names the columns the table lacks. Rows are kept as they are (no split).
    pub fn apply(&self, table: &Dataset) -> Result<(Dataset, usize), DatasetError> {
        self.select(table)
            .and_then(|t| self.normalizer.transform(&t))
    }

    /// The job's input columns that are not among `have`, in the spec's order.
    pub fn lacking<'a>(&'a self, have: &[String]) -> Vec<&'a str> {
        self.normalizer
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !have.iter().any(|h| h == n))
            .collect()
    }

    fn select(&self, table: &Dataset) -> Result<Dataset, DatasetError> {
        let want = self.columns();
        let missing = self.lacking(&table.feature_names);
        if !missing.is_empty() {
            const SHOWN: usize = 8;
            let more = missing.len().saturating_sub(SHOWN);
            let mut list = missing[..missing.len().min(SHOWN)].join(", ");
            if more > 0 {
                list.push_str(&format!(" and {more} more"));
            }
            return Err(DatasetError::InvalidOption(format!(
                "the table lacks {} of the job's {} input columns (or they are not numeric in it): {list}",
                missing.len(),
                want.len()
            )));
        }
        table.select_columns(&want)
    }
}

/// A holder's own raw numeric table (missing cells `NaN`, labels read from `spec.label`)
/// prepared for a job: the job's columns selected, then de-duplicated and split by the
/// holder's own options (`opts.test_fraction`, `opts.seed`: rows it keeps out of training),
/// and transformed with the job's normaliser instead of one fitted here. On a table with
/// the coordinator's columns and options this gives exactly the coordinator's preparation.
pub fn prepare_for_job(
    table: Dataset,
    mut report: LoadReport,
    spec: &DataSpec,
    opts: &LoadOptions,
) -> Result<Prepared, DatasetError> {
    opts.validate()?;
    spec.validate()
        .map_err(|e| DatasetError::InvalidOption(e.to_string()))?;
    if table.n_rows() == 0 {
        return Err(DatasetError::Empty("no data rows".to_string()));
    }
    if report.rows_read == 0 {
        report.rows_read = table.n_rows();
        report.positives_read = table.n_positive();
        report.columns_read = table.n_features + 1;
    }
    let table = spec.select(&table)?;
    report.label = spec.label.clone();
    Ok(finish_with(table, report, opts, Some(&spec.normalizer)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::prepare;
    use crate::synthetic::synthetic_table;

    fn coordinator() -> (Dataset, Prepared) {
        let raw = synthetic_table(600, 5, 3);
        let opts = LoadOptions::default();
        let report = LoadReport {
            label: "label".into(),
            ..LoadReport::default()
        };
        let prepared = prepare(raw.clone(), report, &opts).expect("prepare");
        (raw, prepared)
    }

    #[test]
    fn a_holder_with_the_coordinators_table_prepares_it_identically() {
        let (raw, prepared) = coordinator();
        let spec = DataSpec::of(&prepared);
        spec.validate().expect("valid");
        let mine = prepare_for_job(raw, LoadReport::default(), &spec, &LoadOptions::default())
            .expect("holder");
        assert_eq!(mine.train, prepared.train);
        assert_eq!(mine.test, prepared.test);
        assert_eq!(mine.normalizer, prepared.normalizer);
    }

    #[test]
    fn extra_and_reordered_columns_are_fine_missing_ones_are_named() {
        let (raw, prepared) = coordinator();
        let spec = DataSpec::of(&prepared);
        // The holder's file has the columns in reverse order and one more.
        let mut names = raw.feature_names.clone();
        names.reverse();
        let rev = raw.select_columns(&names).expect("reorder");
        let mut features = Vec::new();
        for i in 0..rev.n_rows() {
            features.extend_from_slice(rev.row(i));
            features.push(i as f32);
        }
        names.push("extra".into());
        let wider = Dataset::new(features, rev.labels.clone(), names).expect("table");
        let mine = prepare_for_job(wider, LoadReport::default(), &spec, &LoadOptions::default())
            .expect("holder");
        assert_eq!(mine.train, prepared.train);

        let first = spec.columns()[0].clone();
        let rest: Vec<String> = raw
            .feature_names
            .iter()
            .filter(|n| **n != first)
            .cloned()
            .collect();
        let fewer = raw.select_columns(&rest).expect("drop one");
        let err = prepare_for_job(fewer, LoadReport::default(), &spec, &LoadOptions::default())
            .expect_err("a missing column");
        let msg = err.to_string();
        assert!(msg.contains(&first) && msg.contains("lacks 1 of"), "{msg}");
    }

    #[test]
    fn a_spec_from_the_network_is_checked() {
        let (_, prepared) = coordinator();
        let good = DataSpec::of(&prepared);
        let mut bad = good.clone();
        bad.normalizer.columns[1].sd = 0.0;
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.normalizer.columns[2].name = good.normalizer.columns[0].name.clone();
        assert!(bad.validate().expect_err("twice").0.contains("twice"));
        let mut bad = good.clone();
        bad.label = good.normalizer.columns[0].name.clone();
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.normalizer.clamp = f32::NAN;
        assert!(bad.validate().is_err());
        let mut bad = good;
        bad.normalizer.columns[0].mean = f64::INFINITY;
        assert!(bad.validate().is_err());
    }
}

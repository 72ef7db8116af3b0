//! The full preparation pipeline: read, make numeric, prune, de-duplicate, split, fit and apply the
//! [`Normalizer`]. Every step appends what it did to the [`LoadReport`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::normalize::Normalizer;
use crate::options::{LoadOptions, MissingPolicy};
use crate::report::{DropReason, DroppedColumn, LoadReport};
use crate::split::{dedupe, split_indices};
use crate::table::Dataset;
use crate::{columns, prune, reader};

/// A prepared dataset: normalised train and test splits, the fitted transform, and what was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    /// The training split, normalised (values within `±clamp`).
    pub train: Dataset,
    /// The test split, normalised with the training statistics.
    pub test: Dataset,
    /// What the loader did and why.
    pub report: LoadReport,
    /// The transform fitted on the raw training split; apply it to any new raw row with the same columns.
    pub normalizer: Normalizer,
}

/// Loads a labelled table and runs the whole pipeline: a CSV (`.gz` decompressed, delimiter from
/// [`LoadOptions::delimiter_for`]) or, when the name ends in `.parquet`, a Parquet file.
pub fn load_csv(path: &Path, opts: &LoadOptions) -> Result<Prepared, DatasetError> {
    let (numeric, report) = load_raw(path, opts)?;
    prepare(numeric, report, opts)
}

/// Reads a labelled table (format by extension, as [`load_csv`]) into a numeric table without pruning,
/// de-duplicating, splitting or normalising: id, identifier and text columns are handled as in [`load_csv`],
/// missing cells are `NaN`. A participant uses this on its own file, then [`Dataset::select_columns`] and the
/// coordinator's [`Normalizer::transform`].
pub fn load_raw(path: &Path, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DatasetError> {
    load_numeric(path, opts, true)
}

/// [`load_raw`], the name it had before it read Parquet too.
pub fn load_raw_csv(
    path: &Path,
    opts: &LoadOptions,
) -> Result<(Dataset, LoadReport), DatasetError> {
    load_raw(path, opts)
}

/// [`load_raw`] for rows to score: the label column may be absent, and then every label is `NaN` (the table is
/// no training data: do not [`prepare`] it). When the column is present it is read and checked as usual.
pub fn load_unlabelled(
    path: &Path,
    opts: &LoadOptions,
) -> Result<(Dataset, LoadReport), DatasetError> {
    load_numeric(path, opts, false)
}

fn load_numeric(
    path: &Path,
    opts: &LoadOptions,
    label_required: bool,
) -> Result<(Dataset, LoadReport), DatasetError> {
    opts.validate()?;
    let raw = reader::read_table(path, opts, label_required)?;
    let mut report = LoadReport {
        source: path.display().to_string(),
        label: opts.label.trim().to_string(),
        rows_read: raw.n_rows(),
        positives_read: raw.labels.iter().filter(|&&l| l > 0.5).count(),
        columns_read: raw.names.len() + raw.unsupported.len() + usize::from(raw.has_label),
        renamed_columns: raw.renamed.clone(),
        ..LoadReport::default()
    };
    if !raw.has_label {
        report.notes.push(format!(
            "no label column {:?}: the rows are unlabelled (labels NaN), for scoring only",
            report.label
        ));
    }
    report.dropped_columns.extend(
        raw.unsupported
            .iter()
            .map(|(name, data_type)| DroppedColumn {
                name: name.clone(),
                reason: DropReason::UnsupportedType {
                    data_type: data_type.clone(),
                },
            }),
    );
    let numeric = columns::to_numeric(&raw, opts, &mut report, label_required);
    report.n_features = numeric.n_features;
    Ok((numeric, report))
}

/// Runs the pipeline from a numeric table onwards (`NaN` = missing). `report` may already describe earlier
/// steps (reading, feature extraction); its `rows_read`/`columns_read` are filled in if still zero.
pub fn prepare(
    table: Dataset,
    mut report: LoadReport,
    opts: &LoadOptions,
) -> Result<Prepared, DatasetError> {
    opts.validate()?;
    if table.n_rows() == 0 {
        return Err(DatasetError::Empty("no data rows".to_string()));
    }
    if report.rows_read == 0 {
        report.rows_read = table.n_rows();
        report.positives_read = table.n_positive();
        report.columns_read = table.n_features + 1;
    }
    let table = prune::prune(table, opts, &mut report);
    if table.n_features == 0 {
        return Err(DatasetError::Empty(format!(
            "no usable feature column left (dropped: {})",
            report
                .dropped_columns
                .iter()
                .map(|d| format!("{} [{}]", d.name, d.reason))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(finish(table, report, opts))
}

/// De-duplicates, splits, fits and applies the normaliser. Infallible for options that passed
/// [`LoadOptions::validate`]; a table without rows or columns just gives empty splits.
pub(crate) fn finish(table: Dataset, report: LoadReport, opts: &LoadOptions) -> Prepared {
    finish_with(table, report, opts, None)
}

/// [`finish`] with the normaliser given (a job's, fitted elsewhere on the same columns)
/// instead of fitted on this table's training split.
pub(crate) fn finish_with(
    table: Dataset,
    mut report: LoadReport,
    opts: &LoadOptions,
    given: Option<&Normalizer>,
) -> Prepared {
    report.missing_fill = match opts.missing {
        MissingPolicy::Zero => {
            "0 (deliberately: a missing aggregate means no activity of that kind)".to_string()
        }
        MissingPolicy::TrainMedian => "the training-split median of each column".to_string(),
    };
    let (table, removed) = if opts.dedupe {
        dedupe(&table)
    } else {
        (table, 0)
    };
    report.duplicates_removed = removed;
    report.rows_kept = table.n_rows();
    report.positive_rate = table.positive_rate();
    if !opts.dedupe {
        report.notes.push(
            "de-duplication disabled: repeated rows may sit on both sides of the split".to_string(),
        );
    }
    let n_pos = table.n_positive();
    if n_pos == 0 || n_pos == table.n_rows() {
        report.notes.push(format!(
            "every row has label {}: nothing to learn",
            u8::from(n_pos > 0)
        ));
    }

    let (train_idx, test_idx) =
        split_indices(&table.labels, opts.test_fraction, opts.seed, opts.stratify);
    let raw_train = table.subset(&train_idx);
    let raw_test = table.subset(&test_idx);
    let normalizer = match given {
        Some(n) => n.clone(),
        None => Normalizer::fit(&raw_train, opts),
    };
    let (train, clamped_train) = normalizer.apply(&raw_train);
    let (test, clamped_test) = normalizer.apply(&raw_test);

    report.train_rows = train.n_rows();
    report.test_rows = test.n_rows();
    report.train_positive_rate = train.positive_rate();
    report.test_positive_rate = test.positive_rate();
    report.n_features = train.n_features;
    report.log_transformed = normalizer.log_columns();
    report.clamp = normalizer.clamp;
    report.clamped_values = (clamped_train, clamped_test);
    Prepared {
        train,
        test,
        report,
        normalizer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_rejects_empty_and_featureless_tables() {
        let empty = Dataset::empty(vec!["a".into()]);
        assert!(matches!(
            prepare(empty, LoadReport::default(), &LoadOptions::default()),
            Err(DatasetError::Empty(_))
        ));
        let constant = Dataset {
            features: vec![1.0; 4],
            labels: vec![0.0, 1.0, 0.0, 1.0],
            n_features: 1,
            feature_names: vec!["a".into()],
        };
        let err = prepare(constant, LoadReport::default(), &LoadOptions::default());
        assert!(
            matches!(&err, Err(DatasetError::Empty(m)) if m.contains("zero variance")),
            "{err:?}"
        );
    }
}

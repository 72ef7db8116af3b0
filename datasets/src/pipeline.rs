//! The full preparation pipeline: read, make numeric, prune, de-duplicate, split, fit and apply the
//! [`Normalizer`]. Every step appends what it did to the [`LoadReport`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::labels::{class_name, class_of, count_classes, index_classes};
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
        class_rows_read: count_classes(&raw.labels, raw.classes.len()),
        classes: raw.classes.clone(),
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
/// steps (reading, feature extraction); its `rows_read`/`columns_read` are filled in if still zero, and its
/// `classes` if empty (the binary classes for 0/1 labels, else `"0"`, `"1"`, … up to the largest label).
/// A label that is no class of `report.classes` is an [`DatasetError::UnknownClass`].
pub fn prepare(
    table: Dataset,
    mut report: LoadReport,
    opts: &LoadOptions,
) -> Result<Prepared, DatasetError> {
    opts.validate()?;
    if table.n_rows() == 0 {
        return Err(DatasetError::Empty("no data rows".to_string()));
    }
    let label = match report.label.trim() {
        "" => opts.label.trim().to_string(),
        l => l.to_string(),
    };
    if report.classes.is_empty() {
        report.classes = index_classes(&table.labels);
    }
    check_labels(&table, &report.classes, &label)?;
    if report.rows_read == 0 {
        report.rows_read = table.n_rows();
        report.positives_read = table.n_positive();
        report.columns_read = table.n_features + 1;
    }
    if report.class_rows_read.is_empty() {
        report.class_rows_read = table.class_counts(report.classes.len());
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
    let prepared = finish(table, report, opts);
    require_classes(&prepared.train, &label, &prepared.report.classes)?;
    Ok(prepared)
}

/// Refuses labels that are no class of `classes`: `NaN` (a row to score) or an index at or past
/// `classes.len()` ([`DatasetError::UnknownClass`], naming the first such row).
pub(crate) fn check_labels(
    table: &Dataset,
    classes: &[String],
    label: &str,
) -> Result<(), DatasetError> {
    let k = classes.len() as f32;
    match table
        .labels
        .iter()
        .position(|&l| !(l >= 0.0 && l < k && l.fract() == 0.0))
    {
        Some(row) => Err(DatasetError::UnknownClass {
            label: label.to_string(),
            value: table.labels[row].to_string(),
            row,
            classes: classes.to_vec(),
        }),
        None => Ok(()),
    }
}

/// Refuses a training split whose rows all have one label ([`DatasetError::SingleClass`],
/// naming the `label` column and the value: `0` or `1`). [`prepare`] (and so [`load_csv`]) checks the
/// table a coordinator, `cairn demo` or a centralised baseline trains and evaluates on; a
/// data holder's own share ([`crate::prepare_for_job`]) is not checked, as a holder with
/// only one class (only benign addresses) is normal in federated learning. With class names at hand,
/// [`require_classes`] names the class.
pub fn require_both_classes(train: &Dataset, label: &str) -> Result<(), DatasetError> {
    require_classes(train, label, &[])
}

/// Refuses a training split whose rows are all of one class: training needs rows of at least two
/// ([`DatasetError::SingleClass`], naming the `label` column and the class by its name in `classes`, or by
/// its index when `classes` has no such entry). An empty split passes (emptiness is refused elsewhere).
pub fn require_classes(
    train: &Dataset,
    label: &str,
    classes: &[String],
) -> Result<(), DatasetError> {
    let Some(&first) = train.labels.first() else {
        return Ok(());
    };
    let only = class_of(first);
    if train.labels.iter().all(|&l| class_of(l) == only) {
        return Err(DatasetError::SingleClass {
            label: label.to_string(),
            value: class_name(classes, only),
            rows: train.n_rows(),
        });
    }
    Ok(())
}

/// De-duplicates, splits, fits and applies the normaliser. Infallible for options that passed
/// [`LoadOptions::validate`]; a table without rows or columns just gives empty splits, and a
/// one-class table a note (refusing it is the caller's choice: [`require_both_classes`]).
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
    if report.classes.is_empty() {
        report.classes = index_classes(&table.labels);
    }
    let k = report.classes.len();
    report.rows_kept = table.n_rows();
    report.positive_rate = table.positive_rate();
    if !opts.dedupe {
        report.notes.push(
            "de-duplication disabled: repeated rows may sit on both sides of the split".to_string(),
        );
    }
    let counts = table.class_counts(k);
    if counts.iter().filter(|&&n| n > 0).count() <= 1 {
        let only = counts.iter().position(|&n| n > 0).unwrap_or(0);
        report.notes.push(format!(
            "every row has label {}: nothing to learn",
            class_name(&report.classes, only)
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
    report.train_class_rows = train.class_counts(k);
    report.test_class_rows = test.class_counts(k);
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

    fn table(labels: &[f32]) -> Dataset {
        Dataset {
            features: (0..labels.len()).map(|i| i as f32 * 0.37).collect(),
            labels: labels.to_vec(),
            n_features: 1,
            feature_names: vec!["value".into()],
        }
    }

    #[test]
    fn a_one_class_training_split_is_refused_naming_the_label_and_its_value() {
        let opts = LoadOptions {
            label: "is_phish".into(),
            ..LoadOptions::default()
        };
        for (value, labels) in [(0u8, vec![0.0; 40]), (1, vec![1.0; 40])] {
            let err = prepare(table(&labels), LoadReport::default(), &opts).expect_err("one class");
            match &err {
                DatasetError::SingleClass {
                    label,
                    value: v,
                    rows,
                } => {
                    assert_eq!(
                        (label.as_str(), v.as_str()),
                        ("is_phish", value.to_string().as_str())
                    );
                    assert_eq!(*rows, 32, "40 rows less the 20 % test split");
                }
                other => panic!("expected SingleClass, got {other:?}"),
            }
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("is_phish = {value}")) && msg.contains("only one class"),
                "{msg}"
            );
        }
        // The report's label (what the reader found) is the one named.
        let report = LoadReport {
            label: "FLAG".into(),
            ..LoadReport::default()
        };
        let err = prepare(table(&[0.0; 40]), report, &opts).expect_err("one class");
        assert!(err.to_string().contains("FLAG = 0"), "{err}");
    }

    #[test]
    fn a_training_split_with_both_classes_passes_even_when_rare() {
        // One positive in 40 rows, kept in the training split by the stratified split.
        let mut labels = vec![0.0; 40];
        labels[7] = 1.0;
        labels[23] = 1.0;
        let p = prepare(
            table(&labels),
            LoadReport::default(),
            &LoadOptions::default(),
        )
        .expect("two classes");
        assert!(p.train.n_positive() > 0 && p.train.n_positive() < p.train.n_rows());
        assert!(require_both_classes(&p.train, "FLAG").is_ok());
        // An empty split is not "one class": emptiness is refused elsewhere.
        assert!(require_both_classes(&Dataset::empty(vec!["a".into()]), "FLAG").is_ok());
    }

    #[test]
    fn a_holder_s_one_class_share_is_prepared_for_a_job_but_not_trained_on_alone() {
        // The coordinator's table has both classes; a holder's has only benign rows.
        let raw = crate::synthetic::synthetic_table(600, 5, 3);
        let report = || LoadReport {
            label: "label".into(),
            ..LoadReport::default()
        };
        let opts = LoadOptions::default();
        let coordinator = prepare(raw.clone(), report(), &opts).expect("both classes");
        let spec = crate::DataSpec::of(&coordinator);
        let benign: Vec<usize> = (0..raw.n_rows()).filter(|&i| raw.labels[i] < 0.5).collect();
        assert!(benign.len() > 100 && benign.len() < raw.n_rows());
        let holder = raw.subset(&benign);
        let mine = crate::prepare_for_job(holder.clone(), LoadReport::default(), &spec, &opts)
            .expect("a one-class holder takes part");
        assert_eq!(mine.train.n_positive(), 0);
        assert!(mine.train.n_rows() > 0);
        assert!(
            mine.report
                .notes
                .iter()
                .any(|n| n.contains("every row has label 0")),
            "{:?}",
            mine.report.notes
        );
        // The same rows as a whole training table are refused, naming the label.
        let err = prepare(holder, report(), &opts).expect_err("one class");
        assert!(
            matches!(&err, DatasetError::SingleClass { label, value, .. } if label == "label" && value == "0"),
            "{err:?}"
        );
    }
}

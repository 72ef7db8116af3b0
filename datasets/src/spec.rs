//! [`DataSpec`]: what a job trains on, as every holder must prepare it — the label column and its
//! classes, and the model's input columns with the transform fitted on the coordinator's table.
//!
//! The coordinator fits a [`Normalizer`] on its own (evaluation) table and sends it with the
//! job; each holder reads its own file (named by the holder, never by the job), selects the
//! job's columns and applies that transform ([`prepare_for_job`]). The same spec goes out
//! with the trained model, so that new rows are scored exactly as the rows it was trained on
//! were prepared.

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::labels::{binary_classes, class_index, count_classes, validate_classes};
use crate::normalize::Normalizer;
use crate::options::LoadOptions;
use crate::pipeline::{finish_with, Prepared};
use crate::report::LoadReport;
use crate::table::Dataset;

/// Most input columns a spec may name.
pub const MAX_SPEC_COLUMNS: usize = 4096;
/// Longest column (or label) name a spec may carry, in bytes.
pub const MAX_COLUMN_NAME_BYTES: usize = 256;

/// The job's data: its label column and classes, and its input columns with their fitted transforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// The label column's (trimmed) name.
    pub label: String,
    /// The label's classes, in index order (a label cell of class `i` is the model's output `i`):
    /// `["0", "1"]` for a 0/1 label, and for a spec written before multi-class labels.
    #[serde(default = "binary_classes")]
    pub classes: Vec<String>,
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
        let classes = if prepared.report.classes.is_empty() {
            binary_classes()
        } else {
            prepared.report.classes.clone()
        };
        DataSpec {
            label: prepared.report.label.clone(),
            classes,
            normalizer: prepared.normalizer.clone(),
        }
    }

    /// Number of classes of the label (2 for a binary one).
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// Whether the label has two classes (0/1, or two named ones whose second is the positive class).
    pub fn is_binary(&self) -> bool {
        self.n_classes() == 2
    }

    /// `opts` for reading a holder's own table for this job: this spec's label column, and its classes, so
    /// that every label cell maps to the job's class index (or is refused, naming the value and row).
    pub fn holder_options(&self, opts: &LoadOptions) -> LoadOptions {
        LoadOptions {
            label: self.label.clone(),
            classes: Some(self.classes.clone()),
            ..opts.clone()
        }
    }

    /// The input columns' names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.normalizer.feature_names()
    }

    /// Checks what a holder relies on: names that are present, short, printable and
    /// distinct; 2 to [`crate::MAX_CLASSES`] distinct, printable class names; finite statistics;
    /// a positive standard deviation and clamp.
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
        validate_classes(&self.classes).map_err(SpecError)?;
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
///
/// The labels end up as the job's class indices. Read with [`DataSpec::holder_options`] they
/// already are; read otherwise, `report.classes` (the classes the table's labels index) are
/// mapped onto `spec.classes` by name (or number, or binary spelling; [`crate::labels`]), so a
/// holder whose file lacks a class, or orders its classes differently, still labels each row
/// with the job's index. A class of the holder's that is none of the job's is an
/// [`DatasetError::UnknownClass`]; with `report.classes` empty the labels must already be
/// indices below the job's number of classes.
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
    let table = onto_job_classes(table, &mut report, spec)?;
    if report.rows_read == 0 {
        report.rows_read = table.n_rows();
        report.columns_read = table.n_features + 1;
    }
    let table = spec.select(&table)?;
    report.label = spec.label.clone();
    Ok(finish_with(table, report, opts, Some(&spec.normalizer)))
}

/// `table`'s labels as indices of `spec.classes` (see [`prepare_for_job`]); the report's classes,
/// counts and positives are then the job's.
fn onto_job_classes(
    mut table: Dataset,
    report: &mut LoadReport,
    spec: &DataSpec,
) -> Result<Dataset, DatasetError> {
    if !report.classes.is_empty() && report.classes != spec.classes {
        // Where each of the holder's classes goes among the job's (None: nowhere).
        let to: Vec<Option<usize>> = report
            .classes
            .iter()
            .map(|c| class_index(c, &spec.classes))
            .collect();
        for (row, l) in table.labels.iter_mut().enumerate() {
            if l.is_nan() {
                continue;
            }
            let mine = crate::labels::class_of(*l);
            match to.get(mine).copied().flatten() {
                Some(job) => *l = job as f32,
                None => {
                    return Err(DatasetError::UnknownClass {
                        label: spec.label.clone(),
                        value: crate::labels::class_name(&report.classes, mine),
                        row,
                        classes: spec.classes.clone(),
                    })
                }
            }
        }
        report.notes.push(format!(
            "labels mapped from this table's classes {} to the job's {}",
            crate::labels::show_classes(&report.classes),
            crate::labels::show_classes(&spec.classes)
        ));
    }
    crate::pipeline::check_labels(&table, &spec.classes, &spec.label)?;
    report.classes = spec.classes.clone();
    report.class_rows_read = count_classes(&table.labels, spec.n_classes());
    report.positives_read = table.n_positive();
    Ok(table)
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

    /// A spec read back from JSON (a model file's metadata, a coordinator's stored plan)
    /// is the spec written, to the bit: a resumed job compares them, and `cairn predict`
    /// must prepare rows exactly as training did.
    #[test]
    fn a_spec_survives_json_to_the_bit() {
        let mut spec = DataSpec::of(
            &prepare(
                synthetic_table(200, 3, 1),
                LoadReport {
                    label: "y".into(),
                    ..LoadReport::default()
                },
                &LoadOptions::default(),
            )
            .expect("prepare"),
        );
        let template = spec.normalizer.columns[0].clone();
        let mut s: u64 = 99;
        spec.normalizer.columns = (0..2000)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = f64::from_bits((s >> 2) | 0x3f00_0000_0000_0000) * 1e3;
                ColumnTransformLike::with(&template, format!("c{i}"), v, v.sqrt())
            })
            .collect();
        let text = serde_json::to_string(&spec).expect("json");
        let back: DataSpec = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, spec);
    }

    /// A column transform with another name, mean and sd.
    struct ColumnTransformLike;
    impl ColumnTransformLike {
        fn with(
            t: &crate::normalize::ColumnTransform,
            name: String,
            mean: f64,
            sd: f64,
        ) -> crate::normalize::ColumnTransform {
            crate::normalize::ColumnTransform {
                name,
                mean,
                sd,
                ..t.clone()
            }
        }
    }

    #[test]
    fn classes_are_checked_and_old_specs_read_as_binary() {
        let (_, prepared) = coordinator();
        let good = DataSpec::of(&prepared);
        assert_eq!(good.classes, binary_classes());
        assert!(good.is_binary() && good.n_classes() == 2);
        let named = |c: &[&str]| DataSpec {
            classes: c.iter().map(|s| s.to_string()).collect(),
            ..good.clone()
        };
        let three = named(&["benign", "fraud", "phish_hack"]);
        assert!(three.validate().is_ok() && !three.is_binary() && three.n_classes() == 3);
        for (bad, why) in [
            (named(&["benign", "fraud", "benign"]), "twice"),
            (named(&["benign", ""]), "no usable name"),
            (named(&["benign", "a\tb"]), "no usable name"),
            (named(&["benign"]), "1 classes"),
            (named(&[]), "0 classes"),
        ] {
            let err = bad.validate().expect_err(why);
            assert!(err.0.contains(why), "{err}");
        }
        let long = "x".repeat(MAX_COLUMN_NAME_BYTES + 1);
        assert!(named(&["a", &long]).validate().is_err());
        let many: Vec<String> = (0..=crate::MAX_CLASSES).map(|i| format!("c{i}")).collect();
        let too_many = DataSpec {
            classes: many,
            ..good.clone()
        };
        assert!(too_many
            .validate()
            .expect_err("65")
            .0
            .contains("65 classes"));

        // A spec written before classes existed (a model file's) reads as binary.
        let mut json = serde_json::to_value(&three).expect("serialise");
        json.as_object_mut().expect("object").remove("classes");
        let old: DataSpec = serde_json::from_value(json).expect("old JSON");
        assert_eq!(old.classes, binary_classes());
        assert_eq!(old.normalizer, good.normalizer);
        let back: DataSpec =
            serde_json::from_str(&serde_json::to_string(&three).expect("json")).expect("read");
        assert_eq!(back, three);
    }

    #[test]
    fn a_holder_s_labels_map_to_the_job_s_classes() {
        // The coordinator's table: three classes, named.
        let raw = synthetic_table(600, 4, 9);
        let kinds = ["benign", "fraud", "phish_hack"];
        let three: Vec<f32> = (0..raw.n_rows()).map(|i| (i % 3) as f32).collect();
        let coordinator_table = Dataset {
            labels: three.clone(),
            ..raw.clone()
        };
        let report = LoadReport {
            label: "kind".into(),
            classes: kinds.iter().map(|k| k.to_string()).collect(),
            ..LoadReport::default()
        };
        let opts = LoadOptions::default();
        let prepared = prepare(coordinator_table, report, &opts).expect("three classes");
        let spec = DataSpec::of(&prepared);
        assert_eq!(spec.classes, kinds);
        assert_eq!(prepared.report.train_class_rows.len(), 3);

        // A holder whose file has no "fraud" rows: read alone its classes are [benign, phish_hack],
        // indices 0 and 1; for the job, phish_hack is 2.
        let mine: Vec<usize> = (0..raw.n_rows()).filter(|i| i % 3 != 1).collect();
        let holder = Dataset {
            labels: three.clone(),
            ..raw.clone()
        }
        .subset(&mine);
        let as_read = Dataset {
            labels: holder
                .labels
                .iter()
                .map(|&l| if l == 2.0 { 1.0 } else { 0.0 })
                .collect(),
            ..holder.clone()
        };
        let holder_report = LoadReport {
            label: "kind".into(),
            classes: vec!["benign".into(), "phish_hack".into()],
            ..LoadReport::default()
        };
        let p = prepare_for_job(as_read.clone(), holder_report.clone(), &spec, &opts)
            .expect("a holder lacking a class");
        assert_eq!(p.report.classes, kinds);
        let all = p.train.class_counts(3);
        let test = p.test.class_counts(3);
        assert_eq!(all[1] + test[1], 0, "no fraud rows");
        assert_eq!(all[2] + test[2], 200, "every phish_hack row is class 2");
        assert_eq!(p.report.class_rows_read, vec![200, 0, 200]);
        assert!(
            p.report.notes.iter().any(|n| n.contains("mapped")),
            "{:?}",
            p.report.notes
        );
        // The same table read onto the job's classes (holder_options) needs no mapping and gives
        // the same rows.
        let direct = prepare_for_job(holder.clone(), LoadReport::default(), &spec, &opts)
            .expect("indices already the job's");
        assert_eq!((direct.train, direct.test), (p.train, p.test));
        assert_eq!(
            spec.holder_options(&opts).classes.as_deref(),
            Some(spec.classes.as_slice())
        );

        // A holder class that is none of the job's is refused, naming it.
        let wrong = LoadReport {
            classes: vec!["benign".into(), "scam".into()],
            ..holder_report
        };
        match prepare_for_job(as_read, wrong, &spec, &opts) {
            Err(DatasetError::UnknownClass { value, classes, .. }) => {
                assert_eq!((value.as_str(), classes), ("scam", spec.classes.clone()));
            }
            other => panic!("expected UnknownClass, got {other:?}"),
        }
        // Indices past the job's classes (no names to map) are refused too.
        let binary = DataSpec {
            classes: binary_classes(),
            ..spec.clone()
        };
        assert!(matches!(
            prepare_for_job(holder, LoadReport::default(), &binary, &opts),
            Err(DatasetError::UnknownClass { .. })
        ));
    }
}

//! [`LoadReport`]: what the loader did to the data and why, printable as a readable summary.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a column is not among the features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DropReason {
    /// A row number or index (empty header, `Index`, `id`, `Unnamed: 0`, or the values 0..n / 1..n).
    IdOrIndex,
    /// An identifier such as an address: text that is mostly `0x…` hex or distinct on (nearly) every row.
    Identifier {
        /// Number of distinct values.
        distinct: usize,
    },
    /// Free text that is not numeric, dropped by [`crate::TextPolicy::Drop`].
    NonNumeric {
        /// Number of distinct values.
        distinct: usize,
        /// A value that does not parse as a number.
        example: String,
    },
    /// Every present value is the same.
    ZeroVariance {
        /// That value (`None` when the column is entirely missing).
        value: Option<f32>,
    },
    /// Identical, cell for cell, to an earlier column.
    DuplicateOf(String),
    /// Named in [`crate::LoadOptions::drop_columns`].
    Requested,
    /// A column of a type without a cell form (a Parquet list, struct or map).
    UnsupportedType {
        /// The column's (Arrow) type.
        data_type: String,
    },
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::IdOrIndex => write!(f, "id/index column"),
            DropReason::Identifier { distinct } => {
                write!(f, "identifier ({distinct} distinct values)")
            }
            DropReason::NonNumeric { distinct, example } => {
                write!(
                    f,
                    "non-numeric ({distinct} distinct values, e.g. {example:?})"
                )
            }
            DropReason::ZeroVariance { value: Some(v) } => {
                write!(f, "zero variance (always {v} where present)")
            }
            DropReason::ZeroVariance { value: None } => write!(f, "zero variance (always missing)"),
            DropReason::DuplicateOf(other) => write!(f, "duplicate of column {other:?}"),
            DropReason::Requested => write!(f, "dropped on request"),
            DropReason::UnsupportedType { data_type } => {
                write!(
                    f,
                    "unsupported type {data_type} (nested values have no cell form)"
                )
            }
        }
    }
}

/// One dropped column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedColumn {
    /// The column's (trimmed) name.
    pub name: String,
    /// Why it was dropped.
    pub reason: DropReason,
}

/// A summary of everything the preparation pipeline did, for humans (via `Display`) and for tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Where the data came from (a path, or `synthetic`).
    pub source: String,
    /// The label column.
    pub label: String,
    /// The label's classes, in index order: `["0", "1"]` for a 0/1 label (and in reports written before
    /// multi-class labels), else the class names ([`crate::labels`]). Empty until known: [`crate::prepare`]
    /// fills it in from the labels when the caller left it empty.
    #[serde(default = "crate::labels::binary_classes")]
    pub classes: Vec<String>,
    /// Data rows read from the source.
    pub rows_read: usize,
    /// Rows read with label 1 (for a binary label the positives; with more classes, the rows of any class
    /// but 0).
    pub positives_read: usize,
    /// Labelled rows read of each class, in [`LoadReport::classes`] order.
    #[serde(default)]
    pub class_rows_read: Vec<usize>,
    /// Columns read, label included.
    pub columns_read: usize,
    /// Header names that repeated an earlier one, and what they were renamed to.
    pub renamed_columns: Vec<(String, String)>,
    /// Columns dropped, with the reason.
    pub dropped_columns: Vec<DroppedColumn>,
    /// Text columns one-hot encoded, with the number of columns each produced.
    pub encoded_columns: Vec<(String, usize)>,
    /// Numeric columns with missing cells and how many cells each was missing (before de-duplication).
    pub missing_cells: Vec<(String, usize)>,
    /// How missing cells were filled, in words.
    pub missing_fill: String,
    /// Missing-value indicator columns added.
    pub indicator_columns: Vec<String>,
    /// Label-leak warnings (missingness that predicts the label, placeholder rows, …).
    pub leak_warnings: Vec<String>,
    /// Rows removed as repeats of an earlier (feature vector, label).
    pub duplicates_removed: usize,
    /// Rows left after de-duplication.
    pub rows_kept: usize,
    /// Label rate after de-duplication.
    pub positive_rate: f64,
    /// Rows in the training split.
    pub train_rows: usize,
    /// Rows in the test split.
    pub test_rows: usize,
    /// Label rate of the training split.
    pub train_positive_rate: f64,
    /// Label rate of the test split.
    pub test_positive_rate: f64,
    /// Rows of each class in the training split (after de-duplication).
    #[serde(default)]
    pub train_class_rows: Vec<usize>,
    /// Rows of each class in the test split.
    #[serde(default)]
    pub test_class_rows: Vec<usize>,
    /// Number of output features.
    pub n_features: usize,
    /// Columns given the signed-log transform (decided on the training split).
    pub log_transformed: Vec<String>,
    /// The clamp bound applied after standardisation.
    pub clamp: f32,
    /// Values clamped, in train and in test.
    pub clamped_values: (usize, usize),
    /// Anything else worth knowing.
    pub notes: Vec<String>,
}

impl LoadReport {
    /// Names of the columns dropped for `pred`.
    pub fn dropped_where(&self, pred: impl Fn(&DropReason) -> bool) -> Vec<&str> {
        self.dropped_columns
            .iter()
            .filter(|d| pred(&d.reason))
            .map(|d| d.name.as_str())
            .collect()
    }

    /// Whether the label is named classes rather than 0/1 (more than two classes, or two named ones such
    /// as `benign`/`phish`): the summary then lists the classes instead of a positive rate alone.
    pub fn has_named_classes(&self) -> bool {
        !self.classes.is_empty() && !crate::labels::is_binary_classes(&self.classes)
    }
}

/// `name n (p%)` for each class, from `counts` (the classes' rows) out of their sum.
fn class_counts(classes: &[String], counts: &[usize]) -> String {
    let total: usize = counts.iter().sum();
    let parts: Vec<String> = classes
        .iter()
        .zip(counts)
        .map(|(c, n)| format!("{c} {n} ({:.1}%)", 100.0 * *n as f64 / total.max(1) as f64))
        .collect();
    list(&parts)
}

fn list(names: &[String]) -> String {
    const SHOW: usize = 12;
    let shown: Vec<&str> = names.iter().take(SHOW).map(String::as_str).collect();
    let more = names.len().saturating_sub(SHOW);
    if more > 0 {
        format!("{} … and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset {} (label {:?})", self.source, self.label)?;
        if self.has_named_classes() {
            writeln!(
                f,
                "  read {} rows x {} columns, {} classes: {}",
                self.rows_read,
                self.columns_read,
                self.classes.len(),
                class_counts(&self.classes, &self.class_rows_read)
            )?;
            if self.classes.len() == 2 {
                writeln!(
                    f,
                    "  binary label: the positive class (1) is {:?}, the negative (0) {:?}",
                    self.classes[1], self.classes[0]
                )?;
            }
        } else {
            writeln!(
                f,
                "  read {} rows x {} columns, {} labelled 1 ({:.1}%)",
                self.rows_read,
                self.columns_read,
                self.positives_read,
                100.0 * self.positives_read as f64 / self.rows_read.max(1) as f64
            )?;
        }
        for (from, to) in &self.renamed_columns {
            writeln!(f, "  renamed repeated header {from:?} -> {to:?}")?;
        }
        if !self.dropped_columns.is_empty() {
            writeln!(f, "  dropped {} columns:", self.dropped_columns.len())?;
            for d in &self.dropped_columns {
                writeln!(f, "    - {:?}: {}", d.name, d.reason)?;
            }
        }
        for (name, n) in &self.encoded_columns {
            writeln!(f, "  one-hot encoded {name:?} into {n} columns")?;
        }
        if self.missing_cells.is_empty() {
            writeln!(f, "  no missing numeric cells")?;
        } else {
            let total: usize = self.missing_cells.iter().map(|(_, n)| n).sum();
            writeln!(
                f,
                "  {total} missing cells in {} columns, filled with {}",
                self.missing_cells.len(),
                self.missing_fill
            )?;
            let names: Vec<String> = self
                .missing_cells
                .iter()
                .map(|(c, n)| format!("{c} ({n})"))
                .collect();
            writeln!(f, "    {}", list(&names))?;
        }
        if !self.indicator_columns.is_empty() {
            writeln!(
                f,
                "  missing-value indicators added: {}",
                list(&self.indicator_columns)
            )?;
        }
        for w in &self.leak_warnings {
            writeln!(f, "  WARNING label leak: {w}")?;
        }
        if self.classes.len() > 2 {
            writeln!(
                f,
                "  removed {} duplicate rows before splitting; {} rows kept",
                self.duplicates_removed, self.rows_kept
            )?;
            writeln!(
                f,
                "  split: train {} rows ({}), test {} rows ({})",
                self.train_rows,
                class_counts(&self.classes, &self.train_class_rows),
                self.test_rows,
                class_counts(&self.classes, &self.test_class_rows)
            )?;
        } else {
            writeln!(
                f,
                "  removed {} duplicate rows before splitting; {} rows kept, positive rate {:.1}%",
                self.duplicates_removed,
                self.rows_kept,
                100.0 * self.positive_rate
            )?;
            writeln!(
                f,
                "  split: train {} rows ({:.1}% positive), test {} rows ({:.1}% positive)",
                self.train_rows,
                100.0 * self.train_positive_rate,
                self.test_rows,
                100.0 * self.test_positive_rate
            )?;
        }
        writeln!(f, "  {} features", self.n_features)?;
        if !self.log_transformed.is_empty() {
            writeln!(
                f,
                "  signed log sign(x)*ln(1+|x|) on {} heavy-tailed columns: {}",
                self.log_transformed.len(),
                list(&self.log_transformed)
            )?;
        }
        writeln!(
            f,
            "  standardised with training-split mean/sd, clamped to +-{}: {} train and {} test values clamped",
            self.clamp, self.clamped_values.0, self.clamped_values.1
        )?;
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_report_reads_as_before_and_named_classes_are_listed() {
        let binary = LoadReport {
            classes: crate::labels::binary_classes(),
            rows_read: 10,
            positives_read: 4,
            class_rows_read: vec![6, 4],
            ..LoadReport::default()
        };
        let text = binary.to_string();
        assert!(text.contains("4 labelled 1 (40.0%)"), "{text}");
        assert!(!text.contains("classes"), "{text}");
        assert_eq!(
            text,
            LoadReport {
                classes: Vec::new(),
                ..binary
            }
            .to_string()
        );

        let named = LoadReport {
            classes: vec!["benign".into(), "phish".into()],
            rows_read: 10,
            class_rows_read: vec![7, 3],
            ..LoadReport::default()
        };
        let text = named.to_string();
        assert!(
            text.contains("2 classes: benign 7 (70.0%), phish 3 (30.0%)"),
            "{text}"
        );
        assert!(
            text.contains("the positive class (1) is \"phish\""),
            "{text}"
        );

        let three = LoadReport {
            classes: vec!["benign".into(), "fraud".into(), "phish_hack".into()],
            class_rows_read: vec![5, 3, 2],
            train_class_rows: vec![4, 2, 2],
            test_class_rows: vec![1, 1, 0],
            ..LoadReport::default()
        };
        let text = three.to_string();
        assert!(text.contains("3 classes: benign 5 (50.0%)"), "{text}");
        assert!(
            text.contains("train 0 rows (benign 4 (50.0%), fraud 2 (25.0%), phish_hack 2 (25.0%))"),
            "{text}"
        );
        assert!(!text.contains("positive"), "{text}");
    }

    #[test]
    fn reports_written_before_classes_read_as_binary() {
        let mut json = serde_json::to_value(LoadReport::default()).expect("serialise");
        let obj = json.as_object_mut().expect("an object");
        for field in [
            "classes",
            "class_rows_read",
            "train_class_rows",
            "test_class_rows",
        ] {
            assert!(obj.remove(field).is_some(), "{field}");
        }
        let back: LoadReport = serde_json::from_value(json).expect("old JSON reads");
        assert_eq!(back.classes, crate::labels::binary_classes());
        assert!(back.class_rows_read.is_empty());
    }
}

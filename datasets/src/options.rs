//! [`LoadOptions`]: every choice the loader makes on the caller's behalf, with defaults that suit the fraud table.

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;

/// What to do with columns whose values are not numbers (token names, free text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TextPolicy {
    /// Drop them (the default); the report lists each with its number of distinct values.
    Drop,
    /// One-hot encode the `max_categories` most frequent values (missing counts as a value), plus an
    /// `=(other)` column when more values exist. Identifier-like columns (addresses, all-distinct) are still
    /// dropped. The vocabulary is chosen on all rows but without looking at labels.
    OneHot {
        /// How many of the most frequent values get their own column.
        max_categories: usize,
    },
}

/// How a missing numeric cell (empty, `NA`, `NaN`, `null`, `None`) is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MissingPolicy {
    /// Fill with 0 (the default). In the fraud table a missing ERC20 block means "no ERC20 activity seen",
    /// and 0 is the value the upstream feature code uses for that; the report warns about the label leak.
    Zero,
    /// Fill with the median of the training split (so the test split cannot influence it).
    TrainMedian,
}

/// Which columns get the signed-log transform `sign(x)·ln(1+|x|)` before standardisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TailPolicy {
    /// Columns whose training-split skewness exceeds `max_abs_skew` in absolute value (default 2.0).
    Auto {
        /// Skewness threshold.
        max_abs_skew: f64,
    },
    /// Every column.
    All,
    /// No column.
    None,
}

/// Options of [`crate::load_csv`] and the rest of the preparation pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Name of the label column, compared after trimming whitespace (default `FLAG`).
    pub label: String,
    /// Fraction of (de-duplicated) rows held out as the test split, in `[0, 1)` (default 0.2).
    pub test_fraction: f64,
    /// Seed of the train/test split (default 0).
    pub seed: u64,
    /// Non-numeric columns: drop or encode (default drop).
    pub text: TextPolicy,
    /// Missing numeric cells: how to fill them (default 0).
    pub missing: MissingPolicy,
    /// Add a 0/1 `<column> missing` feature for every column with missing cells (columns missing together share
    /// one indicator). Off by default: in the fraud table it would hand the model the ERC20 label leak directly.
    pub missing_indicators: bool,
    /// Extra columns to drop by (trimmed) name, e.g. to test a model without a suspected leak.
    pub drop_columns: Vec<String>,
    /// Remove repeated (feature vector, label) rows before splitting (default true).
    pub dedupe: bool,
    /// Heavy-tail transform (default: automatic by skewness > 2).
    pub tails: TailPolicy,
    /// Standardised values are clamped to `±clamp` so that fixed-point consumers see bounded inputs (default 8).
    pub clamp: f32,
    /// Keep the label rate equal in train and test (default true).
    pub stratify: bool,
    /// Field delimiter of a CSV file, one ASCII byte. `None` (the default) chooses by the file's name: a tab
    /// for `.tsv` (and `.tsv.gz`), a comma otherwise. Parquet files ignore it.
    #[serde(default)]
    pub delimiter: Option<u8>,
    /// The label's classes, in index order, when they are given (a holder preparing for a job reads its
    /// file onto the job's classes, [`crate::DataSpec::holder_options`]): each label cell maps to one of
    /// them or is refused ([`DatasetError::UnknownClass`]). `None` (the default) infers them from the file
    /// (0/1 labels stay binary; see [`crate::labels`]).
    #[serde(default)]
    pub classes: Option<Vec<String>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            label: "FLAG".to_string(),
            test_fraction: 0.2,
            seed: 0,
            text: TextPolicy::Drop,
            missing: MissingPolicy::Zero,
            missing_indicators: false,
            drop_columns: Vec::new(),
            dedupe: true,
            tails: TailPolicy::Auto { max_abs_skew: 2.0 },
            clamp: 8.0,
            stratify: true,
            delimiter: None,
            classes: None,
        }
    }
}

impl LoadOptions {
    /// Default options with another label column.
    pub fn with_label(label: impl Into<String>) -> Self {
        LoadOptions {
            label: label.into(),
            ..LoadOptions::default()
        }
    }

    /// The CSV delimiter for `path`: [`LoadOptions::delimiter`] when set, else a tab for a `.tsv` or
    /// `.tsv.gz` file and a comma for anything else.
    pub fn delimiter_for(&self, path: &std::path::Path) -> u8 {
        self.delimiter.unwrap_or_else(|| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if name.ends_with(".tsv") || name.ends_with(".tsv.gz") {
                b'\t'
            } else {
                b','
            }
        })
    }

    /// Checks the numeric options are in range.
    pub fn validate(&self) -> Result<(), DatasetError> {
        if !(self.test_fraction.is_finite() && (0.0..1.0).contains(&self.test_fraction)) {
            return Err(DatasetError::InvalidOption(format!(
                "test_fraction must be in [0, 1), got {}",
                self.test_fraction
            )));
        }
        if !(self.clamp.is_finite() && self.clamp > 0.0) {
            return Err(DatasetError::InvalidOption(format!(
                "clamp must be positive and finite, got {}",
                self.clamp
            )));
        }
        if let TailPolicy::Auto { max_abs_skew } = self.tails {
            if !(max_abs_skew.is_finite() && max_abs_skew >= 0.0) {
                return Err(DatasetError::InvalidOption(format!(
                    "max_abs_skew must be >= 0, got {max_abs_skew}"
                )));
            }
        }
        if let Some(d) = self.delimiter {
            if !d.is_ascii() || matches!(d, b'"' | b'\n' | b'\r') {
                return Err(DatasetError::InvalidOption(format!(
                    "delimiter must be an ASCII byte other than a quote or a line break, got {:?}",
                    char::from(d)
                )));
            }
        }
        if let Some(classes) = &self.classes {
            crate::labels::validate_classes(classes)
                .map_err(|e| DatasetError::InvalidOption(format!("classes: {e}")))?;
        }
        if let TextPolicy::OneHot { max_categories: 0 } = self.text {
            return Err(DatasetError::InvalidOption(
                "OneHot needs max_categories >= 1".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let d = LoadOptions::default();
        assert_eq!(
            (d.label.as_str(), d.test_fraction, d.seed),
            ("FLAG", 0.2, 0)
        );
        assert!(d.validate().is_ok());
        for bad in [1.0, -0.1, f64::NAN] {
            let o = LoadOptions {
                test_fraction: bad,
                ..LoadOptions::default()
            };
            assert!(
                matches!(o.validate(), Err(DatasetError::InvalidOption(_))),
                "{bad}"
            );
        }
        let o = LoadOptions {
            clamp: 0.0,
            ..LoadOptions::default()
        };
        assert!(o.validate().is_err());
        let o = LoadOptions {
            text: TextPolicy::OneHot { max_categories: 0 },
            ..LoadOptions::default()
        };
        assert!(o.validate().is_err());
        for (classes, ok) in [
            (vec!["benign", "fraud", "phish"], true),
            (vec!["benign"], false),
            (vec!["a", "a"], false),
        ] {
            let o = LoadOptions {
                classes: Some(classes.iter().map(|c| c.to_string()).collect()),
                ..LoadOptions::default()
            };
            assert_eq!(o.validate().is_ok(), ok, "{classes:?}");
        }
        for bad in [b'"', b'\n', b'\r', 0xe9] {
            let o = LoadOptions {
                delimiter: Some(bad),
                ..LoadOptions::default()
            };
            assert!(
                matches!(o.validate(), Err(DatasetError::InvalidOption(m)) if m.contains("delimiter")),
                "{bad}"
            );
        }
    }

    #[test]
    fn delimiter_by_name_unless_set() {
        use std::path::Path;
        let d = LoadOptions::default();
        assert_eq!(d.delimiter_for(Path::new("a/t.csv")), b',');
        assert_eq!(d.delimiter_for(Path::new("a/t.TSV")), b'\t');
        assert_eq!(d.delimiter_for(Path::new("t.tsv.gz")), b'\t');
        assert_eq!(d.delimiter_for(Path::new("t.csv.gz")), b',');
        let semi = LoadOptions {
            delimiter: Some(b';'),
            ..LoadOptions::default()
        };
        assert_eq!(semi.delimiter_for(Path::new("t.tsv")), b';');
    }
}

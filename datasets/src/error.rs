//! The one error type of the crate: what went wrong with a file, a column or an option, with the offending value.

use std::path::PathBuf;

/// Everything that can go wrong while loading, preparing or partitioning a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The data file does not exist (or is not a regular file).
    #[error("dataset file not found: {path}")]
    MissingFile {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV parser rejected the file.
    #[error("CSV error in {path}: {source}")]
    Csv {
        /// The file being parsed.
        path: PathBuf,
        /// The underlying parser error.
        #[source]
        source: csv::Error,
    },
    /// The Parquet reader rejected the file (not Parquet, truncated, corrupt, or an encoding it cannot read).
    #[error("Parquet error in {path}: {source}")]
    Parquet {
        /// The file being read.
        path: PathBuf,
        /// The underlying reader error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A data row has a different number of fields than the header.
    #[error(
        "ragged CSV: data row {row} (line {line}) has {found} fields, the header has {expected}"
    )]
    Ragged {
        /// 0-based data row index.
        row: usize,
        /// 1-based line number in the file.
        line: u64,
        /// Number of header fields.
        expected: usize,
        /// Number of fields in this row.
        found: usize,
    },
    /// The label column is not in the header (names are compared after trimming whitespace).
    #[error("label column {label:?} not found; available columns: {available:?}")]
    MissingLabel {
        /// The requested label column.
        label: String,
        /// The (trimmed) header names present in the file.
        available: Vec<String>,
    },
    /// A label that is no class label: a missing label cell (empty, `NA`, …), a label text that cannot name
    /// a class (longer than [`crate::MAX_COLUMN_NAME_BYTES`], or with control characters), a label column
    /// of a type without a cell form, or in a [`crate::Dataset`] a label that is no class index (an integer
    /// from 0 to [`crate::MAX_CLASSES`] − 1). (The name is from when labels were 0/1 only.)
    #[error(
        "label value {value:?} in data row {row} is not a class label (a label is 0/1, true/false, a number or a class name; it may not be missing; as a class index it is an integer from 0 to {max})",
        max = crate::labels::MAX_CLASSES - 1
    )]
    NonBinaryLabel {
        /// The offending cell, verbatim (or the label value).
        value: String,
        /// 0-based data row index.
        row: usize,
    },
    /// The label column has more distinct values than a label may have classes: it is most likely not a
    /// class label (an amount, a score, an id).
    #[error(
        "the label column {label:?} has {found} distinct values, more than the {max} classes a label may have: is it a class label (not an amount, a score or an id)?",
        max = crate::labels::MAX_CLASSES
    )]
    TooManyClasses {
        /// The label column.
        label: String,
        /// Distinct (present) values found.
        found: usize,
    },
    /// A label cell is none of the classes it must be one of (a job's, given by the coordinator).
    #[error(
        "label value {value:?} of {label:?} in data row {row} is none of the classes {}",
        crate::labels::show_classes(classes)
    )]
    UnknownClass {
        /// The label column.
        label: String,
        /// The offending value (trimmed cell, or a class name of the table being mapped).
        value: String,
        /// 0-based data row index of its first occurrence.
        row: usize,
        /// The classes it had to be one of.
        classes: Vec<String>,
    },
    /// The table has no data rows (or none left after cleaning, or no usable feature column).
    #[error("empty table: {0}")]
    Empty(String),
    /// The training split has rows of one class only: no classifier can be trained on it.
    /// (A data holder's own share may be one-class; the table a model is trained and
    /// evaluated on as a whole may not.)
    #[error(
        "the training split has only one class: all {rows} of its rows have {label} = {value}; training needs rows of at least two classes (is {label:?} the label column, and does the table hold both?)"
    )]
    SingleClass {
        /// The label column.
        label: String,
        /// The name of the one class present (`0` or `1` for a binary label).
        value: String,
        /// Rows of the training split.
        rows: usize,
    },
    /// A load or partition option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The rows cannot be split into the requested number of non-empty holders.
    #[error("cannot partition {rows} rows into {holders} non-empty holders")]
    Partition {
        /// Rows available.
        rows: usize,
        /// Holders requested.
        holders: usize,
    },
    /// A table handed to a fitted [`crate::Normalizer`] does not have the columns it was fitted on.
    #[error("schema mismatch: normalizer expects columns {expected:?}, got {found:?}")]
    SchemaMismatch {
        /// Column names the normalizer was fitted on.
        expected: Vec<String>,
        /// Column names of the table given.
        found: Vec<String>,
    },
    /// A row has the wrong number of values.
    #[error("row has {found} values, expected {expected}")]
    RowLength {
        /// Expected number of values.
        expected: usize,
        /// Number of values given.
        found: usize,
    },
    /// A transaction export has a malformed field that the feature extraction needs.
    #[error("bad transaction record at line {line}: column {column:?} = {value:?}")]
    BadTransaction {
        /// 1-based line number in the (decompressed) file.
        line: u64,
        /// The column name.
        column: String,
        /// The offending cell.
        value: String,
    },
}

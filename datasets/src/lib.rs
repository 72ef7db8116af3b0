//! Datasets for cairn: labelled on-chain analytics tables turned into bounded numeric features, split
//! reproducibly, and dealt out to simulated data holders.
//!
//! The pipeline ([`load_csv`], or [`prepare`] for a table built another way):
//!
//! 1. **read** a CSV (optionally gzipped, any delimiter) or a Parquet file (by its `.parquet` extension, through
//!    the Arrow reader) into the same text table (header names trimmed, repeated names renamed; the label
//!    turned into class indices — 0/1 stays binary, other values become named classes, see [`labels`]) —
//!    `reader`; [`load_raw`] stops after step 2, [`load_unlabelled`] also reads rows to score;
//! 2. **make numeric**: drop id/index and identifier columns, drop or one-hot encode free text, mark missing
//!    cells — `columns`;
//! 3. **prune**: drop zero-variance and duplicate columns, count missing cells, warn when missingness predicts
//!    the label (the fraud table's ERC20 leak) — `prune`;
//! 4. **de-duplicate** (feature vector, label) rows *before* splitting, then a seeded train/test split,
//!    stratified by class — [`split`];
//! 5. **normalise** with a [`Normalizer`] fitted on the training split only: fill missing values, signed log
//!    on heavy-tailed columns, standardise, clamp to ±8 (a fixed-point circuit consumes these values).
//!
//! Every step records what it did in a [`LoadReport`]. [`partition`] deals the training rows to N holders
//! (IID or Dirichlet(α) per class), [`synthetic`] is the embedded default when no file is present, and
//! [`txfeatures`] turns raw per-account Etherscan transaction exports into the same kind of table.
//!
//! The real data lives outside the repository, in the directory [`shared_datasets_dir`] names.

mod columns;
mod error;
pub mod labels;
mod normalize;
mod options;
mod parquet_file;
mod partition;
mod paths;
mod pipeline;
mod prune;
mod reader;
mod report;
mod spec;
pub mod split;
mod synthetic;
mod table;
pub mod txfeatures;

pub use error::DatasetError;
pub use labels::{
    binary_classes, class_index, encode_labels, is_binary_classes, validate_classes, EncodedLabels,
    BINARY_CLASSES, MAX_CLASSES,
};
pub use normalize::{signed_log, ColumnTransform, Normalizer};
pub use options::{LoadOptions, MissingPolicy, TailPolicy, TextPolicy};
pub use partition::{partition, partition_indices, Partition};
pub use paths::{
    default_account_labels, default_account_txs, default_fraud_csv, shared_datasets_dir,
    shared_files, SHARED_DATASETS_ENV,
};
pub use pipeline::{
    load_csv, load_raw, load_raw_csv, load_unlabelled, prepare, require_both_classes,
    require_classes, Prepared,
};
pub use report::{DropReason, DroppedColumn, LoadReport};
pub use spec::{prepare_for_job, DataSpec, SpecError, MAX_COLUMN_NAME_BYTES, MAX_SPEC_COLUMNS};
pub use synthetic::{synthetic, synthetic_table, MIN_SYNTHETIC_ROWS};
pub use table::Dataset;
pub use txfeatures::{load_account_txs, ExtractOptions, Placeholders};

//! Raw per-account transaction exports (Etherscan `txlist` rows) turned into per-account feature tables.
//!
//! Input: a transaction CSV (optionally gzipped) whose rows each belong to the account in `AccountId`, with the
//! Etherscan columns plus upstream's `txn type` (`sent`/`received`); and a labels CSV (`address`, `FLAG`, or
//! another label column: 0/1 or class names, read by the rule of [`crate::labels`]).
//! Output: one row per labelled account with the [`FEATURE_NAMES`] aggregates, in the same [`Dataset`] type as
//! the CSV path, ready for [`crate::prepare`].
//!
//! Traps handled: `AccountId` is mixed-case in places (lower-cased before joining); `value` and `gasPrice` are
//! wei strings beyond 2^64 (parsed as `u128`); accounts with only a placeholder row (every field empty but
//! `AccountId`) are nearly all fraud in the shared export, so they are a label leak, dropped by default and
//! always reported.

mod account;
mod parse;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use account::Account;
pub use account::FEATURE_NAMES;
use parse::{field, parse_tx, Cols};

use crate::error::DatasetError;
use crate::labels::{class_name, count_classes, encode_labels, index_classes};
use crate::options::LoadOptions;
use crate::pipeline::{prepare, Prepared};
use crate::report::LoadReport;
use crate::table::Dataset;

/// What to do with accounts whose history is only a placeholder row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// Leave them out (the default): "no transactions found" is not a behaviour the model should learn from.
    Drop,
    /// Keep them as all-zero rows (and measure the leak).
    Keep,
}

/// Options of the feature extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Stop after this many accounts (the export is grouped by account, so this reads a prefix of the file).
    pub max_accounts: Option<usize>,
    /// Placeholder-only accounts: drop or keep.
    pub placeholders: Placeholders,
    /// The label column of the labels file (beside `address`), compared after trimming (default `FLAG`).
    pub label: String,
    /// The label's classes when given (a holder reading for a job: the job's classes); `None` (the default)
    /// infers them from the labels file ([`crate::labels`]).
    pub classes: Option<Vec<String>>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            max_accounts: None,
            placeholders: Placeholders::Drop,
            label: "FLAG".to_string(),
            classes: None,
        }
    }
}

/// A per-account feature table and what the extraction saw.
#[derive(Debug, Clone)]
pub struct AccountFeatures {
    /// One row per labelled account, [`FEATURE_NAMES`] columns.
    pub table: Dataset,
    /// The (lower-case) address of each row.
    pub addresses: Vec<String>,
    /// Transaction rows read (placeholder rows included).
    pub tx_rows: usize,
    /// Number of rows for each account, in `addresses` order.
    pub rows_per_account: Vec<usize>,
    /// Placeholder-only accounts found, and how many of them are labelled 1 (of a class other than 0).
    pub placeholder_accounts: (usize, usize),
    /// Accounts in the export with no label (skipped).
    pub unlabelled_accounts: usize,
    /// The report so far: source, counts, notes and the placeholder leak warning.
    pub report: LoadReport,
}

fn open(path: &Path) -> Result<Box<dyn Read>, DatasetError> {
    if !path.is_file() {
        return Err(DatasetError::MissingFile {
            path: path.to_path_buf(),
        });
    }
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(BufReader::with_capacity(
            1 << 16,
            file,
        )))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// Reads `labels.csv`: lower-case `address` → the class index of its `FLAG` (0/1 for a 0/1 column).
pub fn read_labels(input: impl Read, path: &Path) -> Result<HashMap<String, f32>, DatasetError> {
    read_labels_column(input, path, "FLAG")
}

/// Reads a labels CSV: lower-case `address` → the class index of its `label` column, the classes inferred
/// ([`read_label_file`] also gives their names).
pub fn read_labels_column(
    input: impl Read,
    path: &Path,
    label: &str,
) -> Result<HashMap<String, f32>, DatasetError> {
    Ok(read_label_file(input, path, label, None)?.labels)
}

/// A labels file read: each address's class index, and the classes' names.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelFile {
    /// Lower-case address → class index (an index into `classes`).
    pub labels: HashMap<String, f32>,
    /// The label's classes, in index order.
    pub classes: Vec<String>,
}

/// Reads a labels CSV (`address` and the `label` column): with `classes` given, each label maps onto them
/// (else [`DatasetError::UnknownClass`]); without, the classes are inferred ([`crate::labels`]).
pub fn read_label_file(
    input: impl Read,
    path: &Path,
    label: &str,
    classes: Option<&[String]>,
) -> Result<LabelFile, DatasetError> {
    let csv_err = |source| DatasetError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut rdr = csv::Reader::from_reader(input);
    let header = rdr.headers().map_err(csv_err)?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| DatasetError::MissingLabel {
                label: name.to_string(),
                available: header.iter().map(|h| h.trim().to_string()).collect(),
            })
    };
    let (a, f) = (col("address")?, col(label.trim())?);
    let (mut addresses, mut cells) = (Vec::new(), Vec::new());
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(csv_err)?;
        let (Some(addr), Some(flag)) = (rec.get(a), rec.get(f)) else {
            return Err(DatasetError::Ragged {
                row,
                line: row as u64 + 2,
                expected: header.len(),
                found: rec.len(),
            });
        };
        addresses.push(addr.trim().to_ascii_lowercase());
        cells.push(flag.to_string());
    }
    if addresses.is_empty() {
        return Err(DatasetError::Empty(format!(
            "{} has no labels",
            path.display()
        )));
    }
    let encoded = encode_labels(label, &cells, classes)?;
    Ok(LabelFile {
        labels: addresses.into_iter().zip(encoded.labels).collect(),
        classes: encoded.classes,
    })
}

/// Extracts per-account features from files (`.gz` is decompressed on the fly).
pub fn extract_account_features(
    txs: &Path,
    labels: &Path,
    opts: &ExtractOptions,
) -> Result<AccountFeatures, DatasetError> {
    let file = read_label_file(open(labels)?, labels, &opts.label, opts.classes.as_deref())?;
    let mut out = extract_labelled(open(txs)?, txs, &file, opts)?;
    out.report.source = format!("{} + {}", txs.display(), labels.display());
    Ok(out)
}

/// Extracts per-account features from a transaction CSV stream; `path` names it in errors and the report.
/// `labels` are class indices; their classes are taken to be the binary ones when every label is 0 or 1,
/// else `"0"`, `"1"`, … ([`extract_labelled`] takes them with their names).
pub fn extract_from_reader(
    input: impl Read,
    path: &Path,
    labels: &HashMap<String, f32>,
    opts: &ExtractOptions,
) -> Result<AccountFeatures, DatasetError> {
    let values: Vec<f32> = labels.values().copied().collect();
    extract(input, path, labels, &index_classes(&values), opts)
}

/// [`extract_from_reader`] with the labels of a [`LabelFile`], whose class names go into the report.
pub fn extract_labelled(
    input: impl Read,
    path: &Path,
    labels: &LabelFile,
    opts: &ExtractOptions,
) -> Result<AccountFeatures, DatasetError> {
    extract(input, path, &labels.labels, &labels.classes, opts)
}

/// Extracts per-account features, the labels being indices of `classes`.
fn extract(
    input: impl Read,
    path: &Path,
    labels: &HashMap<String, f32>,
    classes: &[String],
    opts: &ExtractOptions,
) -> Result<AccountFeatures, DatasetError> {
    let csv_err = |source| DatasetError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .buffer_capacity(1 << 16)
        .from_reader(input);
    let cols = Cols::find(rdr.byte_headers().map_err(csv_err)?)?;
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut accounts: Vec<(String, Account)> = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let mut tx_rows = 0usize;
    let mut current = String::new();
    let mut slot = 0usize;
    while rdr.read_byte_record(&mut rec).map_err(csv_err)? {
        let line = rec.position().map_or(0, |p| p.line());
        let id = field(&rec, cols.account, "AccountId", line)?;
        if id.is_empty() {
            return Err(DatasetError::BadTransaction {
                line,
                column: "AccountId".to_string(),
                value: String::new(),
            });
        }
        if !id.eq_ignore_ascii_case(&current) {
            current = id.to_ascii_lowercase();
            slot = match index.get(&current) {
                Some(&s) => s,
                None if opts.max_accounts.is_some_and(|m| accounts.len() >= m) => break,
                None => {
                    index.insert(current.clone(), accounts.len());
                    accounts.push((current.clone(), Account::default()));
                    accounts.len() - 1
                }
            };
        }
        tx_rows += 1;
        let placeholder = field(&rec, cols.hash, "hash", line)?.is_empty()
            && field(&rec, cols.time, "timeStamp", line)?.is_empty();
        let account = &mut accounts[slot].1;
        if placeholder {
            account.add_placeholder();
        } else {
            account.add(parse_tx(&rec, &cols, &current, line)?);
        }
    }
    if tx_rows == 0 {
        return Err(DatasetError::Empty(format!(
            "{} has no transaction rows",
            path.display()
        )));
    }
    build(accounts, tx_rows, labels, classes, opts, path)
}

/// Joins accounts to labels and assembles the table and the report.
fn build(
    accounts: Vec<(String, Account)>,
    tx_rows: usize,
    labels: &HashMap<String, f32>,
    classes: &[String],
    opts: &ExtractOptions,
    path: &Path,
) -> Result<AccountFeatures, DatasetError> {
    let n_accounts = accounts.len();
    let mut placeholder_labels = Vec::new();
    let mut table = Dataset::empty(FEATURE_NAMES.iter().map(|s| s.to_string()).collect());
    let (mut addresses, mut rows_per_account) = (Vec::new(), Vec::new());
    let (mut unlabelled, mut placeholders, mut placeholder_pos) = (0, 0, 0);
    for (address, account) in accounts {
        let Some(&label) = labels.get(&address) else {
            unlabelled += 1;
            continue;
        };
        if account.is_placeholder_only() {
            placeholders += 1;
            placeholder_pos += usize::from(label > 0.5);
            placeholder_labels.push(label);
            if opts.placeholders == Placeholders::Drop {
                continue;
            }
        }
        rows_per_account.push(account.rows);
        table.push_row(&account.features(), label);
        addresses.push(address);
    }
    if table.n_rows() == 0 {
        return Err(DatasetError::Empty(format!(
            "no labelled account with transactions in {}",
            path.display()
        )));
    }
    let mut report = LoadReport {
        source: path.display().to_string(),
        label: opts.label.trim().to_string(),
        classes: classes.to_vec(),
        class_rows_read: table.class_counts(classes.len()),
        rows_read: table.n_rows(),
        positives_read: table.n_positive(),
        columns_read: table.n_features + 1,
        ..LoadReport::default()
    };
    report.notes.push(format!(
        "per-account features from {tx_rows} transaction rows of {n_accounts} accounts; {unlabelled} accounts had \
         no label and were skipped; undefined averages (no sends, fewer than 2 transactions) are 0"
    ));
    if placeholders > 0 {
        let kept = match opts.placeholders {
            Placeholders::Drop => "dropped",
            Placeholders::Keep => {
                "kept as all-zero rows (de-duplication folds them into one row per label)"
            }
        };
        // Purity: the majority class's share of them.
        let counts = count_classes(&placeholder_labels, classes.len().max(2));
        let majority = (0..counts.len()).max_by_key(|&c| counts[c]).unwrap_or(0);
        let purity = counts[majority] as f64 / placeholders as f64;
        let which = if classes.len() > 2 {
            format!(
                "{} of them are of class {:?}",
                counts[majority],
                class_name(classes, majority)
            )
        } else {
            format!("{placeholder_pos} of them are labelled 1")
        };
        let text = format!(
            "{placeholders} accounts have only a placeholder row (upstream found no transactions) and \
             {which}: \"no history\" predicts the label; {kept}"
        );
        if purity >= 0.9 {
            report.leak_warnings.push(text);
        } else {
            report.notes.push(text);
        }
    }
    Ok(AccountFeatures {
        table,
        addresses,
        tx_rows,
        rows_per_account,
        placeholder_accounts: (placeholders, placeholder_pos),
        unlabelled_accounts: unlabelled,
        report,
    })
}

/// Extracts per-account features and runs the preparation pipeline on them.
pub fn load_account_txs(
    txs: &Path,
    labels: &Path,
    extract: &ExtractOptions,
    opts: &LoadOptions,
) -> Result<Prepared, DatasetError> {
    opts.validate()?;
    let features = extract_account_features(txs, labels, extract)?;
    prepare(features.table, features.report, opts)
}

#[cfg(test)]
mod tests;

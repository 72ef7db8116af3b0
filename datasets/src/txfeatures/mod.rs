//! Raw per-account transaction exports (Etherscan `txlist` rows) turned into per-account feature tables.
//!
//! Input: a transaction CSV (optionally gzipped) whose rows each belong to the account in `AccountId`, with the
//! Etherscan columns plus upstream's `txn type` (`sent`/`received`); and a labels CSV (`address`, `FLAG`).
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
use crate::options::LoadOptions;
use crate::pipeline::{prepare, Prepared};
use crate::reader::parse_label;
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
    /// The 0/1 column of the labels file (beside `address`), compared after trimming (default `FLAG`).
    pub label: String,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            max_accounts: None,
            placeholders: Placeholders::Drop,
            label: "FLAG".to_string(),
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
    /// Placeholder-only accounts found, and how many of them are labelled 1.
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

/// Reads `labels.csv`: lower-case `address` → 0/1 `FLAG`.
pub fn read_labels(input: impl Read, path: &Path) -> Result<HashMap<String, f32>, DatasetError> {
    read_labels_column(input, path, "FLAG")
}

/// Reads a labels CSV: lower-case `address` → its 0/1 `label` column.
pub fn read_labels_column(
    input: impl Read,
    path: &Path,
    label: &str,
) -> Result<HashMap<String, f32>, DatasetError> {
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
    let mut labels = HashMap::new();
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
        labels.insert(addr.trim().to_ascii_lowercase(), parse_label(flag, row)?);
    }
    if labels.is_empty() {
        return Err(DatasetError::Empty(format!(
            "{} has no labels",
            path.display()
        )));
    }
    Ok(labels)
}

/// Extracts per-account features from files (`.gz` is decompressed on the fly).
pub fn extract_account_features(
    txs: &Path,
    labels: &Path,
    opts: &ExtractOptions,
) -> Result<AccountFeatures, DatasetError> {
    let labels_map = read_labels_column(open(labels)?, labels, &opts.label)?;
    let mut out = extract_from_reader(open(txs)?, txs, &labels_map, opts)?;
    out.report.source = format!("{} + {}", txs.display(), labels.display());
    Ok(out)
}

/// Extracts per-account features from a transaction CSV stream; `path` names it in errors and the report.
pub fn extract_from_reader(
    input: impl Read,
    path: &Path,
    labels: &HashMap<String, f32>,
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
    build(accounts, tx_rows, labels, opts, path)
}

/// Joins accounts to labels and assembles the table and the report.
fn build(
    accounts: Vec<(String, Account)>,
    tx_rows: usize,
    labels: &HashMap<String, f32>,
    opts: &ExtractOptions,
    path: &Path,
) -> Result<AccountFeatures, DatasetError> {
    let n_accounts = accounts.len();
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
        let purity =
            placeholder_pos.max(placeholders - placeholder_pos) as f64 / placeholders as f64;
        let text = format!(
            "{placeholders} accounts have only a placeholder row (upstream found no transactions) and \
             {placeholder_pos} of them are labelled 1: \"no history\" predicts the label; {kept}"
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

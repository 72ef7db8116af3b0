//! Where the shared real datasets live: `$CAIRN_SHARED_DATASETS`, else `<workspace>/../shared/datasets`.

use std::path::PathBuf;

/// Environment variable overriding the shared datasets directory.
pub const SHARED_DATASETS_ENV: &str = "CAIRN_SHARED_DATASETS";

/// The shared datasets directory.
pub fn shared_datasets_dir() -> PathBuf {
    match std::env::var_os(SHARED_DATASETS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // This crate sits one level below the workspace root; the shared data sits beside the workspace.
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("..")
            .join("shared")
            .join("datasets"),
    }
}

/// The Ethereum fraud feature table (Kaggle, Farrugia et al. 2020): `eth-fraud-kaggle/transaction_dataset.csv`.
pub fn default_fraud_csv() -> PathBuf {
    shared_datasets_dir()
        .join("eth-fraud-kaggle")
        .join("transaction_dataset.csv")
}

/// The raw per-account transaction export: `eth-account-txs/normal_txns.csv.gz`.
pub fn default_account_txs() -> PathBuf {
    shared_datasets_dir()
        .join("eth-account-txs")
        .join("normal_txns.csv.gz")
}

/// The labels of the raw per-account export: `eth-account-txs/labels.csv`.
pub fn default_account_labels() -> PathBuf {
    shared_datasets_dir()
        .join("eth-account-txs")
        .join("labels.csv")
}

/// `paths` when every one is a file; otherwise `None`, after printing which one is absent as
/// a `SKIP:` line. Tests and benchmarks that need the shared data (absent from some
/// checkouts) skip through this, so they all say the same thing.
pub fn shared_files<const N: usize>(paths: [PathBuf; N]) -> Option<[PathBuf; N]> {
    if paths.iter().all(|p| p.is_file()) {
        return Some(paths);
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    println!(
        "SKIP: {} is absent (set {SHARED_DATASETS_ENV})",
        names.join(" or ")
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_files_are_given_back_only_when_all_exist() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let absent = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("no-such-file.csv");
        assert_eq!(shared_files([here.clone()]), Some([here.clone()]));
        assert_eq!(shared_files([here.clone(), absent.clone()]), None);
        assert_eq!(shared_files([absent, here]), None);
    }
}

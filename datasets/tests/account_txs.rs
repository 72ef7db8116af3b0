//! Per-account features from the real raw transaction export (../shared/datasets/eth-account-txs).

use std::collections::HashMap;

use cairn_datasets::txfeatures::{extract_account_features, AccountFeatures, FEATURE_NAMES};
use cairn_datasets::{
    default_account_labels, default_account_txs, prepare, shared_files, ExtractOptions,
    LoadOptions, Placeholders,
};

fn extract(opts: &ExtractOptions) -> Option<AccountFeatures> {
    let [txs, labels] = shared_files([default_account_txs(), default_account_labels()])?;
    Some(extract_account_features(&txs, &labels, opts).expect("the shared export extracts"))
}

/// `address -> n_rows` from labels.csv, the upstream count of each account's rows.
fn n_rows_by_address() -> HashMap<String, usize> {
    let mut rdr = csv::Reader::from_path(default_account_labels()).expect("labels.csv opens");
    rdr.records()
        .map(|r| {
            let r = r.expect("labels.csv parses");
            (r[0].to_string(), r[3].parse().expect("n_rows is a number"))
        })
        .collect()
}

#[test]
fn whole_export_matches_its_readme() {
    let keep = ExtractOptions {
        placeholders: Placeholders::Keep,
        ..ExtractOptions::default()
    };
    let Some(f) = extract(&keep) else { return };
    assert_eq!(f.tx_rows, 407_972);
    assert_eq!(f.table.n_rows(), 12_803);
    assert_eq!(f.table.n_positive(), 6_067, "47.4% fraud");
    assert_eq!(f.unlabelled_accounts, 0);
    assert_eq!(
        f.placeholder_accounts,
        (1_258, 1_254),
        "the placeholder label leak"
    );
    assert_eq!(f.table.n_features, FEATURE_NAMES.len());
    // Every account got exactly the rows labels.csv says it has: grouping and lower-casing are right.
    let expected = n_rows_by_address();
    for (address, rows) in f.addresses.iter().zip(&f.rows_per_account) {
        assert_eq!(Some(rows), expected.get(address), "{address}");
    }
    assert!(f.table.features.iter().all(|v| v.is_finite()));
    let sent = f.table.column_index("sent_tx").expect("column");
    let recv = f.table.column_index("received_tx").expect("column");
    let real_txs: f32 = (0..f.table.n_rows())
        .map(|i| f.table.row(i)[sent] + f.table.row(i)[recv])
        .sum();
    assert_eq!(real_txs as usize, 407_972 - 1_258);
}

#[test]
fn dropping_placeholders_and_preparing() {
    let Some(f) = extract(&ExtractOptions::default()) else {
        return;
    };
    assert_eq!(f.table.n_rows(), 12_803 - 1_258);
    assert_eq!(f.table.n_positive(), 6_067 - 1_254);
    let p = prepare(f.table, f.report, &LoadOptions::default()).expect("prepares");
    println!("{}", p.report);
    assert_eq!(p.report.leak_warnings.len(), 1);
    assert!(
        p.report.leak_warnings[0].contains("1258 accounts")
            && p.report.leak_warnings[0].contains("dropped")
    );
    assert_eq!(p.train.n_features, 24);
    assert!(p
        .train
        .features
        .iter()
        .chain(&p.test.features)
        .all(|v| v.is_finite() && v.abs() <= 8.0));
    assert!(
        (p.train.positive_rate() - 0.417).abs() < 0.01,
        "{}",
        p.train.positive_rate()
    );
}

#[test]
fn a_prefix_of_accounts() {
    let Some(f) = extract(&ExtractOptions {
        max_accounts: Some(500),
        placeholders: Placeholders::Keep,
        ..ExtractOptions::default()
    }) else {
        return;
    };
    assert_eq!(f.table.n_rows(), 500);
    let expected = n_rows_by_address();
    let total: usize = f.addresses.iter().map(|a| expected[a]).sum();
    assert_eq!(
        f.tx_rows, total,
        "reading stops exactly at the 501st account"
    );
    let mut sorted = f.addresses.clone();
    sorted.sort();
    assert_eq!(sorted, f.addresses, "the export is in address order");
}

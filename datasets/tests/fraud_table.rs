//! The real Ethereum fraud table (../shared/datasets/eth-fraud-kaggle): every trap its README lists.

use std::collections::HashSet;
use std::path::PathBuf;

use cairn_datasets::{
    default_fraud_csv, load_csv, shared_files, DropReason, LoadOptions, Prepared, TextPolicy,
};

/// The shared file, or `None` (with a message) when this checkout has no shared data.
fn fraud_csv() -> Option<PathBuf> {
    let [path] = shared_files([default_fraud_csv()])?;
    Some(path)
}

fn load(opts: &LoadOptions) -> Option<Prepared> {
    let path = fraud_csv()?;
    Some(load_csv(&path, opts).expect("the shared fraud table loads"))
}

#[test]
fn parses_the_fraud_table_and_reports_its_traps() {
    let Some(p) = load(&LoadOptions::default()) else {
        return;
    };
    let r = &p.report;
    println!("{r}");
    assert_eq!((r.rows_read, r.columns_read), (9841, 51));
    assert_eq!(r.positives_read, 2179, "22.1% of the rows read are fraud");
    // 45 numeric features, less the 7 that are zero wherever present.
    assert_eq!(r.n_features, 38);
    assert_eq!(p.train.n_features, 38);
    assert!(
        p.train.feature_names.iter().all(|n| n == n.trim()),
        "header names are trimmed"
    );
    assert!(p
        .train
        .feature_names
        .iter()
        .any(|n| n == "max value received"));
    assert!(
        p.train
            .feature_names
            .iter()
            .any(|n| n == "ERC20 uniq sent addr.1"),
        "the repeated column is kept"
    );

    let text = r.dropped_where(|d| matches!(d, DropReason::NonNumeric { .. }));
    assert_eq!(
        text,
        vec!["ERC20 most sent token type", "ERC20_most_rec_token_type"]
    );
    assert_eq!(
        r.dropped_where(|d| *d == DropReason::IdOrIndex),
        vec!["", "Index"]
    );
    assert_eq!(
        r.dropped_where(|d| matches!(d, DropReason::Identifier { .. })),
        vec!["Address"]
    );
    assert_eq!(
        r.dropped_where(|d| matches!(d, DropReason::ZeroVariance { .. }))
            .len(),
        7
    );

    // The ERC20 block: 829 rows missing all of it, all fraud, reported as a leak.
    assert!(
        r.missing_cells.iter().all(|(_, n)| *n == 829),
        "{:?}",
        r.missing_cells
    );
    assert_eq!(r.leak_warnings.len(), 1);
    assert!(r.leak_warnings[0].contains("829 rows") && r.leak_warnings[0].contains("label 1"));
    // Accounts with no ERC20 activity but present columns are all 0 there, and none of them is fraud.
    assert!(
        r.leak_warnings[0]
            .contains("the 4399 rows that are genuinely 0 in these columns (0.0% label 1)"),
        "{}",
        r.leak_warnings[0]
    );
    let shown = r.to_string();
    assert!(
        shown.contains("WARNING label leak")
            && shown.contains("non-numeric")
            && shown.contains("zero variance")
    );

    // Python's csv + float32 rounding finds 9287 distinct (features, label) rows; at f64 it is 9288 (one
    // pair differs only beyond f32 precision, so it is the same row to every consumer of this table).
    assert_eq!(r.rows_kept, 9287);
    assert_eq!(r.duplicates_removed, 9841 - 9287);
    assert_eq!(p.train.n_rows() + p.test.n_rows(), 9287);
    assert_eq!(p.test.n_rows(), (9287.0f64 * 0.2).round() as usize);
    // Fraud rows repeat more often than normal ones: the rate drops from 22.1% to about 17.8%.
    assert!(
        (p.train.positive_rate() - 0.178).abs() < 0.005,
        "{}",
        p.train.positive_rate()
    );
    assert!(
        (p.train.positive_rate() - p.test.positive_rate()).abs() < 0.002,
        "stratified split"
    );

    // Bounded, finite values, and no row on both sides of the split.
    for d in [&p.train, &p.test] {
        assert!(d.features.iter().all(|v| v.is_finite() && v.abs() <= 8.0));
    }
    let train_rows: HashSet<Vec<u32>> = (0..p.train.n_rows())
        .map(|i| p.train.row(i).iter().map(|v| v.to_bits()).collect())
        .collect();
    let crossing = (0..p.test.n_rows()).filter(|&i| {
        train_rows.contains(
            &p.test
                .row(i)
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
        )
    });
    assert_eq!(crossing.count(), 0);
}

#[test]
fn without_dedupe_duplicates_cross_the_split() {
    // The negative control for the test above: the check does detect leakage when it exists.
    let Some(p) = load(&LoadOptions {
        dedupe: false,
        ..LoadOptions::default()
    }) else {
        return;
    };
    assert_eq!(p.train.n_rows() + p.test.n_rows(), 9841);
    let train_rows: HashSet<Vec<u32>> = (0..p.train.n_rows())
        .map(|i| p.train.row(i).iter().map(|v| v.to_bits()).collect())
        .collect();
    let crossing = (0..p.test.n_rows())
        .filter(|&i| {
            train_rows.contains(
                &p.test
                    .row(i)
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>(),
            )
        })
        .count();
    assert!(
        crossing > 20,
        "only {crossing} test rows repeat a training row"
    );
}

#[test]
fn one_hot_and_indicator_options_on_the_real_table() {
    let opts = LoadOptions {
        text: TextPolicy::OneHot { max_categories: 4 },
        missing_indicators: true,
        ..LoadOptions::default()
    };
    let Some(p) = load(&opts) else { return };
    assert_eq!(p.report.encoded_columns.len(), 2);
    assert!(
        p.report.encoded_columns.iter().all(|(_, n)| *n == 5),
        "{:?}",
        p.report.encoded_columns
    );
    assert_eq!(
        p.report.indicator_columns.len(),
        1,
        "the 16 ERC20 columns share one missing pattern"
    );
    // Both token columns read "0" on exactly the same rows, so their "=0" columns coincide and one goes.
    let dup = p
        .report
        .dropped_where(|d| *d == DropReason::DuplicateOf("ERC20 most sent token type=0".into()));
    assert_eq!(dup, vec!["ERC20_most_rec_token_type=0"]);
    assert_eq!(p.train.n_features, 38 + 10 - 1 + 1);
}

#[test]
fn a_participant_reproduces_the_coordinators_rows_from_its_raw_file() {
    // The coordinator prepares and publishes its normaliser (as JSON); a participant reads the same raw file,
    // lines its columns up with the normaliser's and transforms: it must get bit-identical rows.
    let Some(p) = load(&LoadOptions::default()) else {
        return;
    };
    let json = serde_json::to_string(&p.normalizer).expect("serialises");
    let normalizer: cairn_datasets::Normalizer = serde_json::from_str(&json).expect("deserialises");
    let path = default_fraud_csv();
    let (raw, _) = cairn_datasets::load_raw_csv(&path, &LoadOptions::default()).expect("raw loads");
    assert_eq!(raw.n_rows(), 9841);
    assert!(
        raw.n_features > 38,
        "unpruned: the zero-variance columns are still there"
    );
    let mine = raw
        .select_columns(&normalizer.feature_names())
        .expect("same columns");
    let (mine, _) = normalizer.transform(&mine).expect("same schema");
    let bits = |d: &cairn_datasets::Dataset, i: usize| -> Vec<u32> {
        d.row(i)
            .iter()
            .map(|v| v.to_bits())
            .chain([d.labels[i].to_bits()])
            .collect()
    };
    let rows: HashSet<Vec<u32>> = (0..mine.n_rows()).map(|i| bits(&mine, i)).collect();
    assert!((0..p.train.n_rows()).all(|i| rows.contains(&bits(&p.train, i))));
    assert!((0..p.test.n_rows()).all(|i| rows.contains(&bits(&p.test, i))));
    // Without lining up, the schema check refuses.
    assert!(normalizer.transform(&raw).is_err());
}

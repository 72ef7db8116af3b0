//! The feature extraction on small hand-written exports: joins, placeholders, direction, bad cells.

use std::collections::HashMap;
use std::path::Path;

use super::*;

const HEADER: &str = "blockNumber,timeStamp,hash,nonce,transactionIndex,from,to,value,gas,gasPrice,isError,\
txreceipt_status,contractAddress,cumulativeGasUsed,gasUsed,methodId,functionName,eth value,txn type,AccountId\n";

/// A row of account `acc`: `sent` from it to `other`, or received from `other`.
fn row(acc: &str, sent: bool, other: &str, t: u64, wei: &str) -> String {
    let (from, to, kind) = if sent {
        (acc, other, "sent")
    } else {
        (other, acc, "received")
    };
    format!(
        "1,{t},0xh{t},0,0,{},{to},{wei},21000,1000000000,0,1,,0,21000,0x,\"f(a, b)\",0,{kind},{acc}\n",
        from.to_ascii_lowercase()
    )
}

fn placeholder(acc: &str) -> String {
    format!(",,,,,,,,,,,,,,,,,,,{acc}\n")
}

fn labels() -> HashMap<String, f32> {
    [("0xaa", 0.0), ("0xbb", 1.0), ("0xcc", 1.0)]
        .iter()
        .map(|(a, l)| (a.to_string(), *l))
        .collect()
}

fn extract(text: &str, opts: &ExtractOptions) -> Result<AccountFeatures, DatasetError> {
    extract_from_reader(text.as_bytes(), Path::new("mem.csv"), &labels(), opts)
}

fn export() -> String {
    let mut s = HEADER.to_string();
    s += &row("0xAa", false, "0x01", 100, "2000000000000000000");
    s += &row("0xaa", true, "0x02", 160, "500000000000000000000000000000"); // 5e11 ETH: beyond u64 wei
    s += &placeholder("0xbb");
    s += &row("0xcc", true, "0x03", 50, "0");
    s += &row("0xdd", false, "0x04", 70, "1"); // unlabelled
    s
}

#[test]
fn joins_case_insensitively_and_aggregates() -> Result<(), DatasetError> {
    let f = extract(&export(), &ExtractOptions::default())?;
    assert_eq!(
        f.addresses,
        vec!["0xaa", "0xcc"],
        "0xbb is placeholder-only and dropped"
    );
    assert_eq!(f.rows_per_account, vec![2, 1]);
    assert_eq!(
        (f.tx_rows, f.unlabelled_accounts, f.placeholder_accounts),
        (5, 1, (1, 1))
    );
    assert_eq!(f.table.labels, vec![0.0, 1.0]);
    let col = |name: &str| f.table.column_index(name).expect("known column");
    let a = f.table.row(0);
    assert_eq!((a[col("sent_tx")], a[col("received_tx")]), (1.0, 1.0));
    assert_eq!(a[col("eth_sent_total")], 5e11);
    assert_eq!(a[col("eth_received_total")], 2.0);
    assert_eq!(a[col("span_minutes")], 1.0);
    let c = f.table.row(1);
    assert_eq!((c[col("sent_tx")], c[col("zero_value_share")]), (1.0, 1.0));
    assert_eq!(
        f.report.leak_warnings.len(),
        1,
        "one placeholder account, all fraud: {:?}",
        f.report
    );
    Ok(())
}

#[test]
fn keeps_placeholders_on_request_and_stops_after_max_accounts() -> Result<(), DatasetError> {
    let keep = ExtractOptions {
        placeholders: Placeholders::Keep,
        ..ExtractOptions::default()
    };
    let f = extract(&export(), &keep)?;
    assert_eq!(f.addresses, vec!["0xaa", "0xbb", "0xcc"]);
    assert!(f.table.row(1).iter().all(|&v| v == 0.0));

    let two = ExtractOptions {
        max_accounts: Some(2),
        placeholders: Placeholders::Keep,
        ..ExtractOptions::default()
    };
    let f = extract(&export(), &two)?;
    assert_eq!(f.addresses, vec!["0xaa", "0xbb"]);
    assert_eq!(f.tx_rows, 3);
    Ok(())
}

#[test]
fn bad_cells_and_missing_columns_are_typed_errors() {
    let mut s = export();
    s += &row("0xcc", true, "0x03", 80, "12abc");
    match extract(&s, &ExtractOptions::default()) {
        Err(DatasetError::BadTransaction {
            line,
            column,
            value,
        }) => {
            assert_eq!(
                (line, column.as_str(), value.as_str()),
                (7, "value", "12abc")
            );
        }
        other => panic!("expected BadTransaction, got {other:?}"),
    }
    let no_kind = "timeStamp,hash,AccountId\n1,0x1,0xaa\n";
    assert!(matches!(
        extract(no_kind, &ExtractOptions::default()),
        Err(DatasetError::MissingLabel { .. })
    ));
    assert!(matches!(
        extract(HEADER, &ExtractOptions::default()),
        Err(DatasetError::Empty(_))
    ));
    let only_unlabelled = format!("{HEADER}{}", row("0xdd", true, "0x1", 1, "1"));
    assert!(matches!(
        extract(&only_unlabelled, &ExtractOptions::default()),
        Err(DatasetError::Empty(_))
    ));
}

#[test]
fn labels_file_parsing() {
    let text = "address,FLAG,label_source,n_rows\n0xAB,1,kaggle,3\n0xcd,0,kaggle,1\n";
    let l = read_labels(text.as_bytes(), Path::new("labels.csv")).expect("parses");
    assert_eq!((l.get("0xab"), l.get("0xcd")), (Some(&1.0), Some(&0.0)));
    let bad = "address,FLAG\n0xab,1\n0xcd,\n";
    assert!(matches!(
        read_labels(bad.as_bytes(), Path::new("l.csv")),
        Err(DatasetError::NonBinaryLabel { row: 1, .. })
    ));
    assert!(matches!(
        read_labels("a,b\n".as_bytes(), Path::new("l.csv")),
        Err(DatasetError::MissingLabel { .. })
    ));
}

#[test]
fn labels_from_another_column() {
    let text = "address,FLAG,is_phish\n0xab,0,1\n0xcd,1,0\n";
    let l =
        read_labels_column(text.as_bytes(), Path::new("labels.csv"), " is_phish ").expect("parses");
    assert_eq!((l.get("0xab"), l.get("0xcd")), (Some(&1.0), Some(&0.0)));
    assert!(matches!(
        read_labels_column(text.as_bytes(), Path::new("labels.csv"), "scam"),
        Err(DatasetError::MissingLabel { label, .. }) if label == "scam"
    ));
}

#[test]
fn a_labels_file_of_named_classes() -> Result<(), DatasetError> {
    let text = "address,kind\n0xaa,benign\n0xbb,scam\n0xcc,phish\n";
    let file = read_label_file(text.as_bytes(), Path::new("kinds.csv"), "kind", None)?;
    assert_eq!(file.classes, vec!["benign", "phish", "scam"]);
    assert_eq!(
        (
            file.labels.get("0xaa"),
            file.labels.get("0xbb"),
            file.labels.get("0xcc")
        ),
        (Some(&0.0), Some(&2.0), Some(&1.0))
    );
    let f = extract_labelled(
        export().as_bytes(),
        Path::new("mem.csv"),
        &file,
        &ExtractOptions {
            placeholders: Placeholders::Keep,
            ..ExtractOptions::default()
        },
    )?;
    assert_eq!(f.addresses, vec!["0xaa", "0xbb", "0xcc"]);
    assert_eq!(f.table.labels, vec![0.0, 2.0, 1.0]);
    assert_eq!(f.report.classes, file.classes);
    assert_eq!(f.report.class_rows_read, vec![1, 1, 1]);
    // Onto a job's classes: a value that is none of them is refused, naming it.
    let job: Vec<String> = ["benign", "phish"].iter().map(|c| c.to_string()).collect();
    match read_label_file(text.as_bytes(), Path::new("kinds.csv"), "kind", Some(&job)) {
        Err(DatasetError::UnknownClass { value, row, .. }) => {
            assert_eq!((value.as_str(), row), ("scam", 1))
        }
        other => panic!("expected UnknownClass, got {other:?}"),
    }
    // Binary labels keep the binary classes, and a bare map of them too.
    let f = extract(&export(), &ExtractOptions::default())?;
    assert_eq!(f.report.classes, crate::labels::binary_classes());
    Ok(())
}

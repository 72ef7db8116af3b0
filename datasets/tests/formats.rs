//! The file formats on-chain analytics uses: Parquet (the fraud table written as Parquet loads to the same
//! prepared table as its CSV), other CSV delimiters, infinite cells, unlabelled rows to score, and the errors a
//! bad file gives.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray,
    Float32Array, Float64Array, Int64Array, Int8Array, RecordBatch, StringArray,
    TimestampSecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use cairn_datasets::{
    default_fraud_csv, load_csv, load_raw, load_unlabelled, shared_files, DatasetError, DropReason,
    LoadOptions, Prepared,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// The shared fraud table, or `None` (with a message) when this checkout has no shared data.
fn fraud_csv() -> Option<PathBuf> {
    let [path] = shared_files([default_fraud_csv()])?;
    Some(path)
}

/// A CSV as its header and its records, cells verbatim (not trimmed).
fn read_cells(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::Reader::from_path(path).expect("the CSV opens");
    let header = rdr
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = rdr
        .records()
        .map(|r| {
            r.expect("record parses")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    (header, rows)
}

/// One CSV column as an Arrow array typed the way an exporter would type it: Int64 when every present cell is
/// an integer, Float64 when every present cell is a number, text otherwise; empty cells are nulls in number
/// columns. With `as_bool`, a 0/1 column becomes Boolean.
fn typed_column(cells: &[&str], as_bool: bool) -> (DataType, ArrayRef) {
    let present = || cells.iter().map(|c| c.trim()).filter(|c| !c.is_empty());
    if as_bool && present().all(|c| c == "0" || c == "1") {
        let v: Vec<Option<bool>> = cells
            .iter()
            .map(|c| match c.trim() {
                "" => None,
                t => Some(t == "1"),
            })
            .collect();
        return (DataType::Boolean, Arc::new(BooleanArray::from(v)));
    }
    if present().all(|c| c.parse::<i64>().is_ok()) {
        let v: Vec<Option<i64>> = cells.iter().map(|c| c.trim().parse().ok()).collect();
        return (DataType::Int64, Arc::new(Int64Array::from(v)));
    }
    if present().all(|c| c.parse::<f64>().is_ok()) {
        let v: Vec<Option<f64>> = cells.iter().map(|c| c.trim().parse().ok()).collect();
        return (DataType::Float64, Arc::new(Float64Array::from(v)));
    }
    let v: Vec<Option<&str>> = cells.iter().map(|c| Some(*c)).collect();
    (DataType::Utf8, Arc::new(StringArray::from(v)))
}

/// Writes `batch` to `path` with `compression`, in row groups of at most `group_rows` rows.
fn write_parquet(path: &Path, batch: &RecordBatch, compression: Compression, group_rows: usize) {
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let file = File::create(path).expect("create the parquet file");
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("parquet writer");
    writer.write(batch).expect("write the batch");
    writer.close().expect("close the parquet file");
}

/// The CSV at `csv` as a Parquet record batch (label `FLAG` as Boolean when `bool_label`).
fn csv_as_batch(csv: &Path, bool_label: bool) -> RecordBatch {
    let (header, rows) = read_cells(csv);
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (j, name) in header.iter().enumerate() {
        let cells: Vec<&str> = rows.iter().map(|r| r[j].as_str()).collect();
        let (dt, array) = typed_column(&cells, bool_label && name.trim() == "FLAG");
        fields.push(Field::new(name, dt, true));
        columns.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
}

/// Asserts two prepared tables are the same, bit for bit, and so are their reports but for the source.
fn assert_same_prepared(a: &Prepared, b: &Prepared, what: &str) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(a.train.feature_names, b.train.feature_names, "{what}");
    assert_eq!(
        bits(&a.train.features),
        bits(&b.train.features),
        "{what}: train"
    );
    assert_eq!(
        bits(&a.test.features),
        bits(&b.test.features),
        "{what}: test"
    );
    assert_eq!(a.train.labels, b.train.labels, "{what}");
    assert_eq!(a.test.labels, b.test.labels, "{what}");
    assert_eq!(a.normalizer, b.normalizer, "{what}");
    let mut ra = a.report.clone();
    ra.source = b.report.source.clone();
    assert_eq!(ra, b.report, "{what}: report");
}

#[test]
fn the_fraud_table_as_parquet_prepares_like_its_csv() {
    let Some(csv) = fraud_csv() else { return };
    let opts = LoadOptions::default();
    let from_csv = load_csv(&csv, &opts).expect("the CSV loads");
    let dir = tempfile::tempdir().expect("temp dir");
    let compressions = [
        ("uncompressed", Compression::UNCOMPRESSED),
        ("snappy", Compression::SNAPPY),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("lz4", Compression::LZ4_RAW),
    ];
    for (i, (name, compression)) in compressions.into_iter().enumerate() {
        let bool_label = i % 2 == 1;
        let path = dir.path().join(format!("fraud-{name}.parquet"));
        write_parquet(&path, &csv_as_batch(&csv, bool_label), compression, 4000);
        let from_parquet = load_csv(&path, &opts).expect("the Parquet copy loads");
        let r = &from_parquet.report;
        assert_eq!(
            (r.rows_read, r.columns_read, r.positives_read),
            (9841, 51, 2179)
        );
        assert_eq!(r.n_features, 38, "{name}");
        assert_eq!(r.source, path.display().to_string());
        assert_same_prepared(
            &from_parquet,
            &from_csv,
            &format!("{name}, boolean label {bool_label}"),
        );
    }
    println!("{}", from_csv.report);
}

#[test]
fn parquet_types_become_cells_and_nested_columns_are_reported() {
    let n = 40usize;
    let label: Vec<Option<&str>> = (0..n)
        .map(|i| Some(if i % 3 == 0 { "true" } else { "false" }))
        .collect();
    let small: Vec<Option<i8>> = (0..n).map(|i| Some((i % 7) as i8 - 3)).collect();
    let big: Vec<Option<u64>> = (0..n).map(|i| Some(u64::MAX - i as u64)).collect();
    let ratio: Vec<Option<f32>> = (0..n)
        .map(|i| match i {
            3 => Some(f32::INFINITY),
            4 => Some(f32::NAN),
            5 => None,
            _ => Some(i as f32 / 4.0),
        })
        .collect();
    let price = Decimal128Array::from((0..n).map(|i| Some(12_345 + i as i128)).collect::<Vec<_>>())
        .with_precision_and_scale(10, 2)
        .expect("decimal type");
    let flag: Vec<Option<bool>> = (0..n).map(|i| Some(i % 2 == 0)).collect();
    let token: Vec<Option<&str>> = (0..n)
        .map(|i| Some(["USDT", "DAI", "None"][i % 3]))
        .collect();
    let addresses: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 20]).collect();
    let address = BinaryArray::from_iter_values(addresses.iter());
    let when = TimestampSecondArray::from(
        (0..n)
            .map(|i| 1_600_000_000 + 60 * i as i64)
            .collect::<Vec<_>>(),
    );
    let day = Date32Array::from((0..n).map(|i| 18_000 + (i as i32 % 5)).collect::<Vec<_>>());
    let kind: DictionaryArray<Int32Type> = (0..n).map(|i| ["call", "transfer"][i % 2]).collect();
    let mut list = ListBuilder::new(Int32Builder::new());
    for i in 0..n {
        list.values().append_value(i as i32);
        list.append(true);
    }
    let list = list.finish();

    let columns: Vec<(&str, ArrayRef)> = vec![
        ("small", Arc::new(Int8Array::from(small))),
        ("big", Arc::new(UInt64Array::from(big))),
        ("ratio", Arc::new(Float32Array::from(ratio))),
        ("price", Arc::new(price)),
        ("is_even", Arc::new(BooleanArray::from(flag))),
        ("token", Arc::new(StringArray::from(token))),
        ("address", Arc::new(address)),
        ("FLAG", Arc::new(StringArray::from(label))),
        ("when", Arc::new(when)),
        ("day", Arc::new(day)),
        ("kind", Arc::new(kind)),
        ("logs", Arc::new(list)),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("types.parquet");
    write_parquet(&path, &batch, Compression::SNAPPY, 16);

    let (table, report) = load_raw(&path, &LoadOptions::default()).expect("loads");
    println!("{report:#?}");
    assert_eq!(
        table.feature_names,
        vec!["small", "big", "ratio", "price", "is_even", "when", "day"]
    );
    assert_eq!((report.rows_read, report.columns_read), (n, 12));
    assert_eq!(report.positives_read, n.div_ceil(3));
    let col = |name: &str| -> Vec<f32> {
        table
            .column(table.column_index(name).expect("column"))
            .collect()
    };
    assert_eq!(col("small")[0], -3.0);
    assert_eq!(col("big")[0], u64::MAX as f32);
    assert_eq!(col("price")[0], 123.45f32);
    assert_eq!(col("price")[7], 123.52f32);
    assert_eq!(col("is_even")[..3], [1.0, 0.0, 1.0]);
    assert_eq!(col("when")[1], 1_600_000_060.0);
    assert_eq!(col("day")[2], 18_002.0);
    let ratio = col("ratio");
    assert_eq!(ratio[2], 0.5);
    assert!(
        ratio[3].is_nan() && ratio[4].is_nan() && ratio[5].is_nan(),
        "inf, NaN and null are missing"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("ratio (1)")),
        "{:?}",
        report.notes
    );
    assert_eq!(
        table.labels[..4],
        [1.0, 0.0, 0.0, 1.0],
        "text labels true/false"
    );
    assert_eq!(
        report.dropped_where(|r| matches!(r, DropReason::Identifier { .. })),
        vec!["address"],
        "binary addresses are 0x hex, so identifiers"
    );
    assert_eq!(
        report.dropped_where(|r| matches!(r, DropReason::NonNumeric { distinct: 3, .. })),
        vec!["token"]
    );
    assert_eq!(
        report.dropped_where(|r| matches!(r, DropReason::NonNumeric { distinct: 2, .. })),
        vec!["kind"],
        "a dictionary column reads through its values"
    );
    assert_eq!(
        report.dropped_where(|r| matches!(r, DropReason::UnsupportedType { .. })),
        vec!["logs"]
    );
}

/// A small Parquet table with a numeric column `x` and the given label array.
fn tiny_parquet(path: &Path, label: Option<ArrayRef>) {
    let x: ArrayRef = Arc::new(Float64Array::from(vec![1.5, 2.5, 4.0, 8.0]));
    let mut fields = vec![Field::new("x", DataType::Float64, false)];
    let mut columns = vec![x];
    if let Some(l) = label {
        fields.push(Field::new("FLAG", l.data_type().clone(), true));
        columns.push(l);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
    write_parquet(path, &batch, Compression::SNAPPY, 1024);
}

#[test]
fn bad_parquet_files_give_errors_naming_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = LoadOptions::default();

    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"blockNumber,hash\n1,0xab\n").expect("write");
    let err = load_raw(&garbage, &opts).expect_err("CSV text is no Parquet");
    assert!(matches!(err, DatasetError::Parquet { ref path, .. } if path == &garbage));
    assert!(err.to_string().contains("garbage.parquet"), "{err}");

    // A real file cut in half: its footer is gone.
    let good = dir.path().join("good.parquet");
    tiny_parquet(&good, Some(Arc::new(Int64Array::from(vec![0, 1, 0, 1]))));
    assert!(load_raw(&good, &opts).is_ok(), "the uncut file loads");
    let bytes = std::fs::read(&good).expect("read");
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let err = load_raw(&cut, &opts).expect_err("a truncated file");
    assert!(
        matches!(err, DatasetError::Parquet { .. }) && err.to_string().contains("cut.parquet"),
        "{err}"
    );
    // The footer intact but a data page overwritten.
    let mut smashed = bytes.clone();
    for b in smashed.iter_mut().skip(4).take(bytes.len() / 3) {
        *b = 0xff;
    }
    let smashed_path = dir.path().join("smashed.parquet");
    std::fs::write(&smashed_path, &smashed).expect("write");
    let err = load_raw(&smashed_path, &opts).expect_err("a corrupt page");
    assert!(err.to_string().contains("smashed.parquet"), "{err}");

    let missing = dir.path().join("absent.parquet");
    assert!(matches!(
        load_raw(&missing, &opts),
        Err(DatasetError::MissingFile { .. })
    ));

    let no_label = dir.path().join("no-label.parquet");
    tiny_parquet(&no_label, None);
    assert!(matches!(
        load_raw(&no_label, &opts),
        Err(DatasetError::MissingLabel { ref available, .. }) if available == &["x"]
    ));

    let nulls = dir.path().join("null-label.parquet");
    tiny_parquet(
        &nulls,
        Some(Arc::new(Int64Array::from(vec![
            Some(0),
            None,
            Some(1),
            Some(0),
        ]))),
    );
    assert!(matches!(
        load_raw(&nulls, &opts),
        Err(DatasetError::NonBinaryLabel { row: 1, .. })
    ));

    // A third value is a third class, unless the classes are given (a job's binary ones).
    let three = dir.path().join("three.parquet");
    tiny_parquet(&three, Some(Arc::new(Int64Array::from(vec![0, 1, 2, 0]))));
    let (table, report) = load_raw(&three, &opts).expect("three classes");
    assert_eq!(
        (table.labels, report.classes),
        (
            vec![0.0, 1.0, 2.0, 0.0],
            vec!["0".to_string(), "1".into(), "2".into()]
        )
    );
    let binary = LoadOptions {
        classes: Some(cairn_datasets::binary_classes()),
        ..opts.clone()
    };
    assert!(matches!(
        load_raw(&three, &binary),
        Err(DatasetError::UnknownClass { row: 2, ref value, .. }) if value == "2"
    ));

    let empty = dir.path().join("empty.parquet");
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("FLAG", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Float64Array::from(Vec::<f64>::new())),
            Arc::new(Int64Array::from(Vec::<i64>::new())),
        ],
    )
    .expect("batch");
    write_parquet(&empty, &batch, Compression::UNCOMPRESSED, 1024);
    assert!(matches!(
        load_raw(&empty, &opts),
        Err(DatasetError::Empty(ref m)) if m.contains("empty.parquet")
    ));
}

#[test]
fn unlabelled_rows_load_for_scoring() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = LoadOptions::default();
    let no_label = dir.path().join("score.parquet");
    tiny_parquet(&no_label, None);
    let (table, report) = load_unlabelled(&no_label, &opts).expect("unlabelled rows load");
    assert_eq!(table.feature_names, vec!["x"]);
    assert_eq!(table.n_rows(), 4);
    assert!(table.labels.iter().all(|l| l.is_nan()));
    assert_eq!((report.positives_read, report.columns_read), (0, 1));
    assert!(report.notes.iter().any(|n| n.contains("unlabelled")));

    // A column that happens to count 0, 1, 2, … is a feature of rows to score, not an index.
    let csv = dir.path().join("score.csv");
    std::fs::write(&csv, "sent_tx,value\n0,1.5\n1,2\n2,0.25\n").expect("write");
    let (table, _) = load_unlabelled(&csv, &opts).expect("CSV rows load");
    assert_eq!(table.feature_names, vec!["sent_tx", "value"]);
    assert_eq!(table.row(2), &[2.0, 0.25]);
    // With the label column present it is read, and checked, as usual.
    let labelled = dir.path().join("labelled.csv");
    std::fs::write(&labelled, "v,FLAG\n1.5,1\n2,0\n").expect("write");
    let (table, _) = load_unlabelled(&labelled, &opts).expect("labelled rows load");
    assert_eq!(
        (table.feature_names.clone(), table.labels.clone()),
        (vec!["v".to_string()], vec![1.0, 0.0])
    );
    std::fs::write(&labelled, "v,FLAG\n1.5,1\n2,7\n").expect("write");
    let binary = LoadOptions {
        classes: Some(cairn_datasets::binary_classes()),
        ..opts.clone()
    };
    assert!(matches!(
        load_unlabelled(&labelled, &binary),
        Err(DatasetError::UnknownClass { row: 1, .. })
    ));
    // A label not known yet (an empty cell) is NaN when scoring, and refused for training.
    std::fs::write(&labelled, "v,FLAG\n1.5,1\n2,\n").expect("write");
    let (table, _) = load_unlabelled(&labelled, &opts).expect("a partly labelled table");
    assert_eq!(table.labels[0], 1.0);
    assert!(table.labels[1].is_nan());
    assert!(matches!(
        load_raw(&labelled, &opts),
        Err(DatasetError::NonBinaryLabel { row: 1, .. })
    ));

    // On the real table: the same features as its labelled load, without the label column.
    let Some(fraud) = fraud_csv() else { return };
    let (header, rows) = read_cells(&fraud);
    let flag = header
        .iter()
        .position(|h| h == "FLAG")
        .expect("FLAG column");
    let stripped = dir.path().join("fraud-unlabelled.csv");
    let mut w = csv::Writer::from_path(&stripped).expect("create");
    let keep = |r: &[String]| -> Vec<String> {
        r.iter()
            .enumerate()
            .filter(|(j, _)| *j != flag)
            .map(|(_, c)| c.clone())
            .collect()
    };
    w.write_record(keep(&header)).expect("write");
    for r in &rows {
        w.write_record(keep(r)).expect("write");
    }
    w.flush().expect("flush");
    drop(w);
    let (labelled, _) = load_raw(&fraud, &opts).expect("labelled load");
    let (unlabelled, report) = load_unlabelled(&stripped, &opts).expect("unlabelled load");
    assert_eq!(unlabelled.feature_names, labelled.feature_names);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&unlabelled.features), bits(&labelled.features));
    assert!(unlabelled.labels.iter().all(|l| l.is_nan()));
    assert_eq!(report.rows_read, 9841);
    assert!(matches!(
        load_raw(&stripped, &opts),
        Err(DatasetError::MissingLabel { .. })
    ));
}

#[test]
fn other_delimiters_load_the_same_table() {
    let Some(fraud) = fraud_csv() else { return };
    let opts = LoadOptions::default();
    let from_csv = load_csv(&fraud, &opts).expect("the CSV loads");
    let (header, rows) = read_cells(&fraud);
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, delimiter: u8| -> PathBuf {
        let path = dir.path().join(name);
        let mut w = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_path(&path)
            .expect("create");
        w.write_record(&header).expect("write");
        for r in &rows {
            w.write_record(r).expect("write");
        }
        w.flush().expect("flush");
        path
    };
    let tsv = write("fraud.tsv", b'\t');
    let p = load_csv(&tsv, &opts).expect("a .tsv is read with tabs by default");
    assert_same_prepared(&p, &from_csv, "tsv");

    let semi = write("fraud-semicolon.csv", b';');
    assert!(
        matches!(
            load_csv(&semi, &opts),
            Err(DatasetError::MissingLabel { .. })
        ),
        "read with commas, the ;-separated header is one name"
    );
    let with_semi = LoadOptions {
        delimiter: Some(b';'),
        ..LoadOptions::default()
    };
    let p = load_csv(&semi, &with_semi).expect("read with ;");
    assert_same_prepared(&p, &from_csv, "semicolon");

    let pipe = write("fraud-pipe.txt", b'|');
    let with_pipe = LoadOptions {
        delimiter: Some(b'|'),
        ..LoadOptions::default()
    };
    assert_same_prepared(
        &load_csv(&pipe, &with_pipe).expect("read with |"),
        &from_csv,
        "pipe",
    );
}

#[test]
fn infinite_cells_are_missing_not_text() {
    let Some(fraud) = fraud_csv() else { return };
    let (header, mut rows) = read_cells(&fraud);
    let name = "Avg min between sent tnx";
    let j = header
        .iter()
        .position(|h| h.trim() == name)
        .expect("the column");
    assert!(
        rows.iter().all(|r| !r[j].trim().is_empty()),
        "no cell of it is missing to start with"
    );
    // About 2 % of the cells, in every spelling.
    let spellings = [
        "inf",
        "-inf",
        "Infinity",
        "-INFINITY",
        "+inf",
        "INF",
        " -Inf ",
    ];
    let mut injected = 0;
    for (i, row) in rows.iter_mut().enumerate() {
        if i % 50 == 7 {
            row[j] = spellings[injected % spellings.len()].to_string();
            injected += 1;
        }
    }
    assert!((190..=200).contains(&injected), "{injected} cells: ~2 %");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("with-inf.csv");
    let mut w = csv::Writer::from_path(&path).expect("create");
    w.write_record(&header).expect("write");
    for r in &rows {
        w.write_record(r).expect("write");
    }
    w.flush().expect("flush");
    drop(w);

    let p = load_csv(&path, &LoadOptions::default()).expect("loads");
    println!("{}", p.report);
    assert!(
        p.train.feature_names.iter().any(|n| n == name),
        "the column is kept"
    );
    assert!(!p.report.dropped_columns.iter().any(|d| d.name == name));
    let missing = p
        .report
        .missing_cells
        .iter()
        .find(|(c, _)| c == name)
        .map(|(_, n)| *n);
    assert_eq!(
        missing,
        Some(injected),
        "every infinite cell counted as missing"
    );
    assert!(
        p.report
            .notes
            .iter()
            .any(|n| n.contains(&format!("{name} ({injected})"))),
        "{:?}",
        p.report.notes
    );
    assert!(p
        .train
        .features
        .iter()
        .chain(&p.test.features)
        .all(|v| v.is_finite() && v.abs() <= 8.0));
    let t = p
        .normalizer
        .columns
        .iter()
        .find(|c| c.name == name)
        .expect("a transform for the column");
    assert!(t.fill.is_finite() && t.mean.is_finite() && t.sd.is_finite() && t.sd > 0.0);

    // Only the spellings of infinity: a number past f32's range still makes its column text.
    rows[0][j] = "1e39".to_string();
    let path = dir.path().join("with-overflow.csv");
    let mut w = csv::Writer::from_path(&path).expect("create");
    w.write_record(&header).expect("write");
    for r in &rows {
        w.write_record(r).expect("write");
    }
    w.flush().expect("flush");
    drop(w);
    let p = load_csv(&path, &LoadOptions::default()).expect("loads");
    assert_eq!(
        p.report
            .dropped_where(|r| matches!(r, DropReason::NonNumeric { .. }))
            .iter()
            .filter(|n| **n == name)
            .count(),
        1
    );
}

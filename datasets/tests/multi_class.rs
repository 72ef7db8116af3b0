//! Multi-class labels through the public API: classes inferred from CSV and Parquet files, a holder's file
//! read onto a job's classes, the stratified split and the partition per class, and a three-class table
//! derived from the shared real data (kinds of flagged account: fraud vs phishing/hack vs benign).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use cairn_datasets::{
    binary_classes, default_account_labels, default_fraud_csv, load_csv, load_raw, partition,
    prepare_for_job, shared_files, DataSpec, DatasetError, LoadOptions, Partition, MAX_CLASSES,
};
use parquet::arrow::ArrowWriter;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write the test file");
    p
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A CSV of `n` rows with two informative numeric columns and the label column `kind` holding
/// `label(i)` for row `i`.
fn table_csv(n: usize, label: impl Fn(usize) -> String) -> String {
    let mut text = String::from("a,b,kind\n");
    for i in 0..n {
        let (a, b) = ((i * 37 % 101) as f64 * 0.5, (i * 13 % 29) as f64 - 3.0);
        text.push_str(&format!("{a},{b},{}\n", label(i)));
    }
    text
}

fn kind_opts() -> LoadOptions {
    LoadOptions::with_label("kind")
}

#[test]
fn binary_spellings_stay_binary_and_read_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spellings = ["0", "1", "true", "FALSE", "1.0", "0e0"];
    let path = write(
        dir.path(),
        "b.csv",
        &table_csv(60, |i| spellings[i % spellings.len()].to_string()),
    );
    let p = load_csv(&path, &kind_opts()).expect("binary");
    assert_eq!(p.report.classes, binary_classes());
    assert_eq!(p.report.class_rows_read, vec![30, 30]);
    assert_eq!(p.report.positives_read, 30);
    let text = p.report.to_string();
    assert!(text.contains("30 labelled 1 (50.0%)"), "{text}");
    assert!(!text.contains("classes"), "{text}");
    assert!(DataSpec::of(&p).is_binary());
}

#[test]
fn numeric_and_text_classes_are_inferred_and_sorted() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 2 and 2.0 are one class; numbers sort numerically (10 after 2).
    let spell = ["0", "2", "10", "2.0", "10.00", "0.0"];
    let path = write(
        dir.path(),
        "n.csv",
        &table_csv(60, |i| spell[i % spell.len()].to_string()),
    );
    let p = load_csv(&path, &kind_opts()).expect("numeric classes");
    assert_eq!(p.report.classes, names(&["0", "2", "10"]));
    assert_eq!(p.report.class_rows_read, vec![20, 20, 20]);
    assert_eq!(DataSpec::of(&p).n_classes(), 3);

    let kinds = ["scam", "benign", "phish", "benign"];
    let path = write(
        dir.path(),
        "t.csv",
        &table_csv(80, |i| kinds[i % kinds.len()].to_string()),
    );
    let (table, report) = load_raw(&path, &kind_opts()).expect("text classes");
    assert_eq!(report.classes, names(&["benign", "phish", "scam"]));
    assert_eq!(&table.labels[..4], &[2.0, 0.0, 1.0, 0.0]);
    assert_eq!(report.class_rows_read, vec![40, 20, 20]);
    let text = report.to_string();
    assert!(
        text.contains("3 classes: benign 40 (50.0%), phish 20 (25.0%), scam 20 (25.0%)"),
        "{text}"
    );
}

#[test]
fn two_text_classes_are_a_binary_job_with_the_positive_class_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "p.csv",
        &table_csv(50, |i| {
            if i % 5 == 0 { "phish" } else { "benign" }.to_string()
        }),
    );
    let p = load_csv(&path, &kind_opts()).expect("two classes");
    assert_eq!(p.report.classes, names(&["benign", "phish"]));
    assert_eq!(p.report.positives_read, 10, "phish is class 1");
    let spec = DataSpec::of(&p);
    assert!(spec.is_binary());
    let text = p.report.to_string();
    assert!(
        text.contains("the positive class (1) is \"phish\", the negative (0) \"benign\""),
        "{text}"
    );
    assert!(text.contains("positive"), "{text}");
}

#[test]
fn more_than_max_classes_is_not_a_class_label() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "amount.csv",
        &table_csv(200, |i| format!("{}.25", i % (MAX_CLASSES + 1))),
    );
    match load_csv(&path, &kind_opts()) {
        Err(e @ DatasetError::TooManyClasses { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("\"kind\"")
                    && msg.contains("65 distinct")
                    && msg.contains("class label"),
                "{msg}"
            );
        }
        other => panic!("expected TooManyClasses, got {other:?}"),
    }
    // Exactly MAX_CLASSES is fine.
    let path = write(
        dir.path(),
        "max.csv",
        &table_csv(200, |i| format!("k{:02}", i % MAX_CLASSES)),
    );
    let (_, report) = load_raw(&path, &kind_opts()).expect("64 classes");
    assert_eq!(report.classes.len(), MAX_CLASSES);
}

#[test]
fn a_holder_s_file_is_read_onto_the_job_s_classes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The coordinator: numeric classes 0, 1, 2.
    let coordinator = write(dir.path(), "c.csv", &table_csv(90, |i| (i % 3).to_string()));
    let job = load_csv(&coordinator, &kind_opts()).expect("coordinator");
    let spec = DataSpec::of(&job);
    assert_eq!(spec.classes, names(&["0", "1", "2"]));

    // The holder: other spellings, another row order, no class 1. Read alone it would be
    // classes ["0", "2"] (2 at index 1); onto the job's classes 2 is index 2.
    let rows = [
        ("5", "1", "2.0"),
        ("7", "3", "0.0"),
        ("1", "8", "2e0"),
        ("3", "2", "0"),
    ];
    let mut text = String::from("kind,b,a\n");
    for r in 0..40 {
        let (a, b, k) = rows[r % rows.len()];
        text.push_str(&format!(
            "{k},{b},{}\n",
            a.parse::<f64>().expect("a") + r as f64
        ));
    }
    let holder = write(dir.path(), "h.csv", &text);
    let opts = spec.holder_options(&LoadOptions::default());
    let (table, report) = load_raw(&holder, &opts).expect("holder reads onto the job's classes");
    assert_eq!(report.classes, spec.classes);
    assert_eq!(report.class_rows_read, vec![20, 0, 20]);
    let expect: Vec<f32> = (0..40)
        .map(|r| if r % 2 == 0 { 2.0 } else { 0.0 })
        .collect();
    assert_eq!(table.labels, expect);
    let mine = prepare_for_job(table, report, &spec, &opts).expect("prepared for the job");
    assert_eq!(mine.report.classes, spec.classes);
    let counts: Vec<usize> = (0..3)
        .map(|c| mine.train.class_counts(3)[c] + mine.test.class_counts(3)[c])
        .collect();
    assert_eq!(counts, vec![20, 0, 20]);

    // Read without the job's classes, prepare_for_job maps them by name all the same.
    let (alone, alone_report) =
        load_raw(&holder, &LoadOptions::with_label("kind")).expect("the holder's file alone");
    assert_eq!(
        alone_report.classes,
        names(&["0.0", "2.0"]),
        "named by first spellings"
    );
    let mapped = prepare_for_job(alone, alone_report, &spec, &opts).expect("mapped by number");
    assert_eq!((mapped.train, mapped.test), (mine.train, mine.test));

    // A value that is none of the job's classes: refused, naming the value and its row.
    let bad = write(
        dir.path(),
        "bad.csv",
        "kind,b,a\n0,1,2\n2,3,4\n3,5,6\n1,7,8\n",
    );
    match load_raw(&bad, &opts) {
        Err(e @ DatasetError::UnknownClass { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("\"3\"") && msg.contains("row 2"), "{msg}");
            assert!(msg.contains("\"0\", \"1\", \"2\""), "{msg}");
        }
        other => panic!("expected UnknownClass, got {other:?}"),
    }
}

/// Writes a Parquet file with a numeric column `x` and the label column `kind`.
fn parquet_with_label(path: &Path, label: ArrayRef) {
    let n = label.len();
    let x: ArrayRef = Arc::new(Float64Array::from(
        (0..n)
            .map(|i| (i * 7 % 11) as f64 + 0.5)
            .collect::<Vec<_>>(),
    ));
    let schema = Schema::new(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("kind", label.data_type().clone(), true),
    ]);
    let batch = RecordBatch::try_new(Arc::new(schema), vec![x, label]).expect("batch");
    let file = std::fs::File::create(path).expect("create");
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

#[test]
fn parquet_label_columns_of_strings_floats_and_booleans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let strings = dir.path().join("s.parquet");
    let kinds = ["scam", " benign", "phish", "benign "];
    parquet_with_label(
        &strings,
        Arc::new(StringArray::from(
            (0..40).map(|i| kinds[i % 4]).collect::<Vec<_>>(),
        )),
    );
    let (table, report) = load_raw(&strings, &kind_opts()).expect("string labels");
    assert_eq!(report.classes, names(&["benign", "phish", "scam"]));
    assert_eq!(&table.labels[..4], &[2.0, 0.0, 1.0, 0.0]);
    // Onto a job's classes, with an extra class the file lacks.
    let job = names(&["benign", "fraud", "phish", "scam"]);
    let (table, _) = load_raw(
        &strings,
        &LoadOptions {
            classes: Some(job),
            ..kind_opts()
        },
    )
    .expect("onto the job's classes");
    assert_eq!(&table.labels[..4], &[3.0, 0.0, 2.0, 0.0]);

    let floats = dir.path().join("f.parquet");
    parquet_with_label(
        &floats,
        Arc::new(Float64Array::from(
            (0..30).map(|i| (i % 3) as f64).collect::<Vec<_>>(),
        )),
    );
    let (_, report) = load_raw(&floats, &kind_opts()).expect("float labels");
    assert_eq!(report.classes, names(&["0", "1", "2"]));

    let bools = dir.path().join("b.parquet");
    parquet_with_label(
        &bools,
        Arc::new(BooleanArray::from(
            (0..30).map(|i| i % 3 == 0).collect::<Vec<_>>(),
        )),
    );
    let (table, report) = load_raw(&bools, &kind_opts()).expect("boolean labels");
    assert_eq!(report.classes, binary_classes());
    assert_eq!(table.n_positive(), 10);
}

#[test]
fn the_split_keeps_each_class_s_share() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 500 benign, 300 fraud, 150 phish, 50 scam.
    let kind = |i: usize| match i % 20 {
        0..=9 => "benign",
        10..=15 => "fraud",
        16..=18 => "phish",
        _ => "scam",
    };
    let path = write(
        dir.path(),
        "k.csv",
        &table_csv(1000, |i| kind(i).to_string()),
    );
    // Make every row distinct so de-duplication keeps all of them.
    let text: String = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},row_value\n")
            } else {
                let (rest, k) = l.rsplit_once(',').expect("a label");
                format!("{rest},{k},{}\n", i as f64 * 0.01)
            }
        })
        .collect();
    std::fs::write(&path, text).expect("write");
    let p = load_csv(&path, &kind_opts()).expect("four classes");
    assert_eq!(
        p.report.classes,
        names(&["benign", "fraud", "phish", "scam"])
    );
    assert_eq!(p.report.rows_kept, 1000);
    assert_eq!(p.report.test_class_rows, vec![100, 60, 30, 10]);
    assert_eq!(p.report.train_class_rows, vec![400, 240, 120, 40]);
    assert_eq!(p.test.class_counts(4), vec![100, 60, 30, 10]);
    let text = p.report.to_string();
    assert!(
        text.contains("test 200 rows (benign 100 (50.0%), fraud 60 (30.0%)"),
        "{text}"
    );
}

/// The three-class table derived from the shared data: the fraud table's rows with `FLAG` replaced by
/// `kind`: `benign` (FLAG 0), `phish_hack` (FLAG 1 and the address's `label_source` in the account-labels
/// file names `etherscan_phish_hack`), else `fraud`. Written to `dir`; `None` without the shared data.
fn derive_kinds(dir: &Path) -> Option<PathBuf> {
    let [fraud, labels] = shared_files([default_fraud_csv(), default_account_labels()])?;
    let mut sources: HashMap<String, String> = HashMap::new();
    let mut rdr = csv::Reader::from_path(&labels).expect("labels open");
    let header = rdr.headers().expect("header").clone();
    let col = |n: &str| header.iter().position(|h| h == n).expect("labels column");
    let (a, s) = (col("address"), col("label_source"));
    for r in rdr.records() {
        let r = r.expect("labels row");
        sources.insert(r[a].to_ascii_lowercase(), r[s].to_string());
    }
    let mut rdr = csv::Reader::from_path(&fraud).expect("fraud table opens");
    let header = rdr.headers().expect("header").clone();
    let flag = header.iter().position(|h| h == "FLAG").expect("FLAG");
    let address = header.iter().position(|h| h == "Address").expect("Address");
    let out = dir.join("kinds.csv");
    let mut w = csv::Writer::from_path(&out).expect("create");
    let renamed: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(j, h)| if j == flag { "kind" } else { h })
        .collect();
    w.write_record(&renamed).expect("header");
    for r in rdr.records() {
        let r = r.expect("fraud row");
        let kind = match &r[flag] {
            "0" => "benign",
            _ if sources
                .get(&r[address].to_ascii_lowercase())
                .is_some_and(|s| s.contains("etherscan_phish_hack")) =>
            {
                "phish_hack"
            }
            _ => "fraud",
        };
        let cells: Vec<&str> = r
            .iter()
            .enumerate()
            .map(|(j, c)| if j == flag { kind } else { c })
            .collect();
        w.write_record(&cells).expect("row");
    }
    w.flush().expect("flush");
    Some(out)
}

/// Rows of each kind counted straight from the two files' text (neither file has quoted cells), not
/// through the derivation: (benign, fraud, phish_hack).
fn count_kinds_independently() -> (usize, usize, usize) {
    let labels = std::fs::read_to_string(default_account_labels()).expect("labels");
    let phish: HashSet<&str> = labels
        .lines()
        .skip(1)
        .filter(|l| l.contains("etherscan_phish_hack"))
        .filter_map(|l| l.split(',').next())
        .collect();
    let fraud = std::fs::read_to_string(default_fraud_csv()).expect("fraud table");
    let mut lines = fraud.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let at = |n: &str| header.iter().position(|h| *h == n).expect("column");
    let (flag, address) = (at("FLAG"), at("Address"));
    let (mut benign, mut other, mut phishing) = (0, 0, 0);
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        if cells[flag] == "0" {
            benign += 1;
        } else if phish.contains(cells[address].to_ascii_lowercase().as_str()) {
            phishing += 1;
        } else {
            other += 1;
        }
    }
    (benign, other, phishing)
}

#[test]
fn three_kinds_of_account_from_the_real_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(path) = derive_kinds(dir.path()) else {
        return;
    };
    let (benign, fraud, phish) = count_kinds_independently();
    // The README: 7,662 rows of FLAG 0 and 2,179 of FLAG 1; some flagged rows are phishing/hacks.
    assert_eq!((benign, fraud + phish), (7662, 2179));
    assert!(phish > 100 && fraud > 1000, "{fraud} fraud, {phish} phish");

    let opts = kind_opts();
    let p = load_csv(&path, &opts).expect("the three-class table loads");
    assert_eq!(p.report.classes, names(&["benign", "fraud", "phish_hack"]));
    assert_eq!(p.report.class_rows_read, vec![benign, fraud, phish]);
    assert_eq!(p.report.rows_read, 9841);
    let text = p.report.to_string();
    assert!(text.contains("3 classes: benign 7662"), "{text}");
    // The ERC20 leak is still found: its 829 rows are of both flagged kinds, never benign.
    assert!(
        p.report
            .leak_warnings
            .iter()
            .any(|w| w.contains("missing in 829 rows")
                && w.contains("only 0.0% of those rows have class \"benign\"")),
        "{:?}",
        p.report.leak_warnings
    );

    // The stratified split keeps each class, at its share (after de-duplication).
    let (train, test) = (&p.report.train_class_rows, &p.report.test_class_rows);
    assert_eq!((train.len(), test.len()), (3, 3));
    let kept: Vec<usize> = train.iter().zip(test).map(|(a, b)| a + b).collect();
    assert_eq!(kept.iter().sum::<usize>(), p.report.rows_kept);
    for c in 0..3 {
        assert!(train[c] > 0 && test[c] > 0, "class {c}: {train:?} {test:?}");
        let want = (kept[c] as f64 * opts.test_fraction).round() as usize;
        assert_eq!(test[c], want, "class {c}");
        let share = |v: &[usize]| v[c] as f64 / v.iter().sum::<usize>() as f64;
        assert!((share(test) - share(&kept)).abs() < 0.005, "class {c}");
    }
    assert_eq!(p.train.class_counts(3), *train);

    // The spec carries the classes; holders get all three classes' rows dealt by Dirichlet.
    let spec = DataSpec::of(&p);
    assert_eq!(spec.classes, p.report.classes);
    let parts = partition(&p.train, 4, &Partition::Dirichlet { alpha: 0.5 }, 3).expect("dealt");
    let mut dealt = vec![0; 3];
    for h in &parts {
        for (c, n) in h.class_counts(3).into_iter().enumerate() {
            dealt[c] += n;
        }
    }
    assert_eq!(dealt, *train);

    // A holder whose file has no "fraud" rows, in reverse order, prepares onto the job's indices.
    let text = std::fs::read_to_string(&path).expect("derived table");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let kind_at = header.split(',').position(|h| h == "kind").expect("kind");
    let mut rows: Vec<&str> = lines
        .filter(|l| l.split(',').nth(kind_at) != Some("fraud"))
        .collect();
    rows.reverse();
    let holder = dir.path().join("holder.csv");
    std::fs::write(&holder, format!("{header}\n{}\n", rows.join("\n"))).expect("write");
    let hopts = spec.holder_options(&LoadOptions::default());
    let (table, report) = load_raw(&holder, &hopts).expect("the holder's file");
    assert_eq!(report.class_rows_read, vec![benign, 0, phish]);
    assert_eq!(
        table.labels[0], 2.0,
        "the last row of the table is a phish_hack (sorted by FLAG)"
    );
    let mine = prepare_for_job(table, report, &spec, &hopts).expect("prepared for the job");
    let counts = mine.train.class_counts(3);
    assert!(
        counts[0] > 0 && counts[1] == 0 && counts[2] > 0,
        "{counts:?}"
    );
}

//! Malformed inputs each give their own typed error; a CSV with another label name loads.

use std::fs;
use std::path::{Path, PathBuf};

use cairn_datasets::{load_csv, DatasetError, LoadOptions};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("temp dir is writable");
    path
}

fn opts(label: &str) -> LoadOptions {
    LoadOptions::with_label(label)
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.csv");
    match load_csv(&path, &LoadOptions::default()) {
        Err(DatasetError::MissingFile { path: p }) => assert_eq!(p, path),
        other => panic!("expected MissingFile, got {other:?}"),
    }
    // A directory is not a data file either.
    assert!(matches!(
        load_csv(dir.path(), &LoadOptions::default()),
        Err(DatasetError::MissingFile { .. })
    ));
}

#[test]
fn missing_label_lists_the_trimmed_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "t.csv", " a , b\n1,0\n2,1\n");
    match load_csv(&path, &opts("FLAG")) {
        Err(DatasetError::MissingLabel { label, available }) => {
            assert_eq!(label, "FLAG");
            assert_eq!(available, vec!["a", "b"]);
        }
        other => panic!("expected MissingLabel, got {other:?}"),
    }
}

#[test]
fn a_label_outside_the_given_classes_or_missing_names_value_and_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "t.csv", "x,FLAG\n1,0\n2,1\n3,2\n");
    let binary = LoadOptions {
        classes: Some(cairn_datasets::binary_classes()),
        ..LoadOptions::default()
    };
    match load_csv(&path, &binary) {
        Err(DatasetError::UnknownClass {
            value,
            row,
            label,
            classes,
        }) => {
            assert_eq!((value.as_str(), row, label.as_str()), ("2", 2, "FLAG"));
            assert_eq!(classes, cairn_datasets::binary_classes());
        }
        other => panic!("expected UnknownClass, got {other:?}"),
    }
    // Without given classes, a third value is a third class.
    let (table, report) =
        cairn_datasets::load_raw(&path, &LoadOptions::default()).expect("3 classes");
    assert_eq!(report.classes, vec!["0", "1", "2"]);
    assert_eq!(table.labels, vec![0.0, 1.0, 2.0]);
    let path = write(dir.path(), "u.csv", "x,FLAG\n1,0\n2,\n");
    assert!(matches!(
        load_csv(&path, &LoadOptions::default()),
        Err(DatasetError::NonBinaryLabel { row: 1, .. })
    ));
}

#[test]
fn empty_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [
        ("zero.csv", ""),
        ("header.csv", "x,FLAG\n"),
        ("blank.csv", "\n\n"),
    ] {
        let path = write(dir.path(), name, text);
        let got = load_csv(&path, &LoadOptions::default());
        assert!(
            matches!(got, Err(DatasetError::Empty(_))),
            "{name}: {got:?}"
        );
    }
    // Rows but no usable feature: every column is an id or constant.
    let path = write(
        dir.path(),
        "ids.csv",
        "Index,Address,c,FLAG\n1,0xa1,5,0\n2,0xb2,5,1\n3,0xc3,5,0\n",
    );
    let got = load_csv(&path, &LoadOptions::default());
    assert!(
        matches!(&got, Err(DatasetError::Empty(m)) if m.contains("Address")),
        "{got:?}"
    );
}

#[test]
fn ragged_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "short.csv", "x,y,FLAG\n1,2,0\n3,1\n");
    match load_csv(&path, &LoadOptions::default()) {
        Err(DatasetError::Ragged {
            row,
            line,
            expected,
            found,
        }) => assert_eq!((row, line, expected, found), (1, 3, 3, 2)),
        other => panic!("expected Ragged, got {other:?}"),
    }
    let path = write(dir.path(), "long.csv", "x,y,FLAG\n1,2,0\n3,1,1,9\n");
    assert!(matches!(
        load_csv(&path, &LoadOptions::default()),
        Err(DatasetError::Ragged { found: 4, .. })
    ));
}

#[test]
fn invalid_options_are_rejected_before_reading() {
    let o = LoadOptions {
        test_fraction: 1.5,
        ..LoadOptions::default()
    };
    assert!(matches!(
        load_csv(Path::new("/nonexistent.csv"), &o),
        Err(DatasetError::InvalidOption(_))
    ));
}

#[test]
fn another_label_name_quoting_and_gzip() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut text = String::from("id,amount,note,is_scam,count\n");
    for i in 0..60 {
        let note = if i % 2 == 0 {
            "\"hello, world\""
        } else {
            "plain"
        };
        text.push_str(&format!(
            "{i},{}.5,{note},{},{}\n",
            i * 3,
            u8::from(i % 4 == 0),
            i % 7
        ));
    }
    let path = write(dir.path(), "other.csv", &text);
    let p = load_csv(&path, &opts("is_scam"))?;
    assert_eq!(p.train.feature_names, vec!["amount", "count"]);
    assert_eq!(p.report.label, "is_scam");
    assert_eq!(p.train.n_rows() + p.test.n_rows(), 60);
    assert_eq!(p.test.n_rows(), 12);
    assert_eq!(p.report.positives_read, 15);

    // The same table gzipped loads to the same thing.
    let gz = dir.path().join("other.csv.gz");
    let mut enc =
        flate2::write::GzEncoder::new(fs::File::create(&gz)?, flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, text.as_bytes())?;
    enc.finish()?;
    let q = load_csv(&gz, &opts("is_scam"))?;
    assert_eq!((q.train, q.test), (p.train, p.test));
    Ok(())
}

#[test]
fn crlf_bom_and_non_utf8() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut lf = String::from("x, y ,FLAG\n");
    for i in 0..30 {
        lf.push_str(&format!("{},{},{}\n", i * i, 30 - i, u8::from(i % 3 == 0)));
    }
    let crlf = format!("\u{feff}{}", lf.replace('\n', "\r\n"));
    let a = load_csv(&write(dir.path(), "lf.csv", &lf), &LoadOptions::default())?;
    let b = load_csv(
        &write(dir.path(), "crlf.csv", &crlf),
        &LoadOptions::default(),
    )?;
    assert_eq!(a.train.feature_names, vec!["x", "y"]);
    assert_eq!((a.train, a.test), (b.train, b.test));

    let path = dir.path().join("latin1.csv");
    fs::write(&path, b"x,FLAG\n\xe9,0\n")?;
    assert!(matches!(
        load_csv(&path, &LoadOptions::default()),
        Err(DatasetError::Csv { .. })
    ));
    Ok(())
}

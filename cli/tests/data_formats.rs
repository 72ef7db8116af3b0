//! The data formats on the command line (#14 items 4 and 5): a raw transaction export with its
//! labels (`--data TXS --labels LABELS`) gives the per-account features the datasets crate
//! extracts, a `.tsv` is read with tabs and `--delimiter` picks another separator, a corrupt
//! Parquet file is refused naming it, and a bad `--hidden` or `--partition` (flag or config
//! key) fails before any data loads, naming the flag or the key.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use cairn_cli::options::{DataArgs, Delimiter};
use cairn_datasets::{load_account_txs, ExtractOptions, Prepared};

mod common;
use common::{account_txs, cairn, fraud_csv};

/// Runs `cairn ARGS` to the end, with how long it took.
fn run(args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let out = cairn().args(args).output().expect("cairn runs");
    (out, t.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the prepared tables agree bit for bit, and their reports but for the source.
fn assert_same(a: &Prepared, b: &Prepared, what: &str) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(a.train.feature_names, b.train.feature_names, "{what}");
    assert_eq!(bits(&a.train.features), bits(&b.train.features), "{what}");
    assert_eq!(bits(&a.test.features), bits(&b.test.features), "{what}");
    assert_eq!(
        (&a.train.labels, &a.test.labels),
        (&b.train.labels, &b.test.labels),
        "{what}"
    );
    let mut ra = a.report.clone();
    ra.source = b.report.source.clone();
    assert_eq!(ra, b.report, "{what}: report");
}

#[test]
fn bad_flag_values_fail_before_any_data_loads_naming_the_flag() {
    // `--data` names a file that is not there: had the table been read first, that would be
    // the error.
    let absent = "/nonexistent/cairn/table.csv";
    let cases: [(&[&str], &str); 6] = [
        (
            &["demo", "--data", absent, "--hidden", "16,x"],
            "invalid value '16,x' for '--hidden",
        ),
        (
            &["demo", "--data", absent, "--partition", "dirichlet:abc"],
            "invalid value 'dirichlet:abc' for '--partition",
        ),
        (
            &["demo", "--data", absent, "--delimiter", "::"],
            "invalid value '::' for '--delimiter",
        ),
        (
            &["simulate", "--data", absent, "--partition", "dirichlet:-2"],
            "invalid value 'dirichlet:-2' for '--partition",
        ),
        (
            &[
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--data",
                absent,
                "--hidden",
                "0,4",
            ],
            "invalid value '0,4' for '--hidden",
        ),
        (
            &[
                "participant",
                "--coordinator",
                "127.0.0.1:9",
                "--fingerprint",
                "00",
                "--data",
                absent,
                "--partition",
                "shards",
            ],
            "invalid value 'shards' for '--partition",
        ),
    ];
    for (args, want) in cases {
        let (out, took) = run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error\n{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("not found"), "{args:?} read the data: {err}");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {}",
            text(&out.stdout)
        );
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
    }
}

#[test]
fn bad_config_values_fail_before_any_data_loads_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "[data]\npartition = \"dirichlet:abc\"\n",
            "[data] partition",
        ),
        ("[train]\nhidden = \"16,x\"\n", "[train] hidden"),
        ("[data]\ndelimiter = \"::\"\n", "[data] delimiter"),
    ];
    for (i, (toml, key)) in cases.into_iter().enumerate() {
        let config = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&config, toml).expect("write the config");
        let config = config.display().to_string();
        for command in ["demo", "simulate"] {
            let (out, _) = run(&[
                command,
                "--config",
                &config,
                "--data",
                "/nonexistent/cairn/table.csv",
            ]);
            let err = text(&out.stderr);
            assert!(!out.status.success(), "{command} {toml:?}");
            assert!(err.contains(key), "{command} {toml:?}: {err}");
            assert!(err.contains(&config), "names the file: {err}");
            assert!(!err.contains("not found"), "read the data: {err}");
        }
    }
}

#[test]
fn a_transaction_export_with_labels_gives_per_account_features() {
    let Some((txs, labels)) = account_txs() else {
        return;
    };
    let args = DataArgs {
        data: Some(txs.clone()),
        labels: Some(labels.clone()),
        ..DataArgs::default()
    };
    let opts = args.load_options();
    let (table, report, source) = args.raw_table(&opts).expect("the raw table");
    assert_eq!(
        table.n_rows(),
        12_803 - 1_258,
        "placeholder-only accounts dropped"
    );
    assert_eq!(table.n_positive(), 6_067 - 1_254);
    assert_eq!(table.n_features, 24);
    assert!(source.contains("407972 transaction rows"), "{source}");
    assert_eq!(
        report.leak_warnings.len(),
        1,
        "the placeholder leak is reported"
    );

    let (prepared, _) = args.load().expect("prepares");
    let direct = load_account_txs(&txs, &labels, &ExtractOptions::default(), &opts)
        .expect("the datasets crate's own path");
    assert_same(&prepared, &direct, "DataArgs against load_account_txs");
    assert!(prepared
        .train
        .features
        .iter()
        .all(|v| v.is_finite() && v.abs() <= 8.0));

    // Another label column of the labels file, and one that is not there.
    let dir = tempfile::tempdir().expect("temp dir");
    let renamed = dir.path().join("labels.csv");
    let original = std::fs::read_to_string(&labels).expect("labels.csv");
    std::fs::write(&renamed, original.replacen("FLAG", "is_scam", 1)).expect("write");
    let with_label = DataArgs {
        data: Some(txs.clone()),
        labels: Some(renamed.clone()),
        label: Some("is_scam".into()),
        ..DataArgs::default()
    };
    let (other, _) = with_label.load().expect("the is_scam column labels");
    assert_eq!(other.train.labels, prepared.train.labels);
    let missing = DataArgs {
        label: None,
        ..with_label
    };
    let e = format!("{:#}", missing.load().expect_err("no FLAG column"));
    assert!(e.contains("labels.csv") && e.contains("\"FLAG\""), "{e}");
}

#[test]
fn cairn_simulate_trains_on_a_transaction_export() {
    let Some((txs, labels)) = account_txs() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().join("sim");
    let (out, took) = run(&[
        "simulate",
        "--data",
        &txs.display().to_string(),
        "--labels",
        &labels.display().to_string(),
        "--participants",
        "3",
        "--rounds",
        "1",
        "--out",
        &out_dir.display().to_string(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("data: per-account features of") && stdout.contains("labelled by"),
        "{stdout}"
    );
    assert!(stdout.contains("simulating 3 holders"), "{stdout}");
    println!("{stdout}\n(took {took:?})");
}

#[test]
fn tsv_is_read_with_tabs_and_the_delimiter_flag_picks_another() {
    let Some(fraud) = fraud_csv() else { return };
    // The fraud table needs no quoting and has no tab or `|` in it: its header and 3000 of
    // its rows (the first and last 1500: the file is sorted by label, and a one-class table
    // is refused) with their commas replaced are the same table under another delimiter.
    let original = std::fs::read_to_string(&fraud).expect("read the fraud table");
    assert!(!original.contains('\t') && !original.contains('|') && !original.contains('"'));
    let lines: Vec<&str> = original.lines().collect();
    let part: Vec<&str> = lines[..1501]
        .iter()
        .chain(&lines[lines.len() - 1500..])
        .copied()
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, delimiter: &str| -> PathBuf {
        let path = dir.path().join(name);
        let body: Vec<String> = part.iter().map(|l| l.replace(',', delimiter)).collect();
        std::fs::write(&path, body.join("\n") + "\n").expect("write");
        path
    };
    let csv_path = write("part.csv", ",");
    let tsv = write("part.tsv", "\t");
    let piped = write("part-pipe.csv", "|");

    let load = |path: &Path, delimiter: Option<Delimiter>| {
        DataArgs {
            data: Some(path.to_path_buf()),
            delimiter,
            ..DataArgs::default()
        }
        .load()
    };
    let (base, _) = load(&csv_path, None).expect("the CSV loads");
    assert_eq!(base.report.rows_read, 3000);
    let (from_tsv, _) = load(&tsv, None).expect("a .tsv loads with tabs");
    assert_same(&from_tsv, &base, "tsv");
    let e = format!("{:#}", load(&piped, None).expect_err("read with commas"));
    assert!(
        e.contains("part-pipe.csv") && e.contains("label column"),
        "{e}"
    );
    let (from_pipe, _) = load(&piped, Some(Delimiter(b'|'))).expect("read with |");
    assert_same(&from_pipe, &base, "pipe");
}

#[test]
fn a_corrupt_parquet_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("export.parquet");
    // A CSV saved under a Parquet name.
    std::fs::write(&bad, "Address,FLAG\n0xab,1\n").expect("write");
    let args = DataArgs {
        data: Some(bad.clone()),
        ..DataArgs::default()
    };
    let e = format!("{:#}", args.load().expect_err("not Parquet"));
    assert!(e.contains("export.parquet") && e.contains("Parquet"), "{e}");

    let (out, _) = run(&[
        "simulate",
        "--data",
        &bad.display().to_string(),
        "--participants",
        "2",
    ]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("export.parquet") && err.contains("Parquet error"),
        "{err}"
    );
}

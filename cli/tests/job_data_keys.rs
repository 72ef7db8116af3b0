//! The job file learns the data keys the command line has (#14 items 4, 5): `data.labels`
//! (a raw transaction export's labels) and `data.delimiter`. A coordinator run with
//! `--data TXS --labels LABELS` turns them into its job file and trains with holders that
//! use the same flags, on the real export in `../shared/datasets/eth-account-txs/`; a
//! serving coordinator runs a submitted job whose `;`-separated table needs
//! `delimiter = ";"`, and refuses one that leaves it out, names a bad one, or names a
//! labels file outside its data directory; beside `--job`, `--labels` and `--delimiter` are
//! refused like the other data flags.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_coordinator::export::read_model;
use cairn_datasets::{default_account_labels, default_account_txs};

mod common;
use common::{cairn, cairn_job, ok, refused, serving_coordinator, serving_holder, Proc};

const LIMIT: Duration = Duration::from_secs(120);

/// The shared transaction export and its labels (the test fails without them).
fn account_txs() -> (PathBuf, PathBuf) {
    let (txs, labels) = (default_account_txs(), default_account_labels());
    assert!(
        txs.is_file() && labels.is_file(),
        "{} and {} are needed (../shared/datasets, or CAIRN_SHARED_DATASETS)",
        txs.display(),
        labels.display()
    );
    (txs, labels)
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn a_coordinator_from_flags_trains_on_a_transaction_export_with_its_labels() {
    let (txs, labels) = account_txs();
    let t0 = Instant::now();
    let out = tempfile::tempdir().expect("tempdir");
    let data = ["--data", utf8(&txs), "--labels", utf8(&labels)];
    let mut c = cairn();
    c.args(["coordinator", "--listen", "127.0.0.1:0"])
        .args(data)
        .args(["--participants", "2", "--min", "2", "--rounds", "2"])
        .args(["--aggregation", "plain", "--hidden", "none"])
        .args(["--steps", "10", "--batch", "32", "--lr", "0.5"])
        .args(["--join-timeout", "60", "--round-timeout", "60", "--out"])
        .arg(out.path());
    let mut coord = Proc::spawn(c);
    let (addr, fp) = coord.address(LIMIT);
    let mut holders: Vec<Proc> = (0..2)
        .map(|i| {
            let mut c = cairn();
            c.args(["participant", "--coordinator", &addr, "--fingerprint", &fp])
                .args(["--device", "cpu"])
                .args(data)
                .args(["--holder", &i.to_string(), "--of", "2"]);
            Proc::spawn(c)
        })
        .collect();
    // Each holder turns the export into the job's 24 per-account columns, labelled FLAG.
    for h in &mut holders {
        let l = h.wait_for(LIMIT, |l| l.contains("rows of"));
        assert!(
            l.contains("per-account features of")
                && l.contains("label \"FLAG\"")
                && l.contains("24 input columns"),
            "{l}"
        );
    }
    let done = coord.wait_for(LIMIT, |l| l.starts_with("job complete"));
    assert!(done.starts_with("job complete: 2 rounds"), "{done}");
    assert!(coord.wait(LIMIT).success(), "{}", coord.seen.join("\n"));
    for h in &mut holders {
        assert!(h.wait(LIMIT).success(), "{}", h.seen.join("\n"));
    }

    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("metrics.json")).expect("metrics"))
            .expect("json");
    let rounds = metrics.as_array().expect("rounds");
    assert_eq!(rounds.len(), 2);
    assert!(rounds.iter().all(|r| r["contributors"] == 2), "{metrics}");
    // The coordinator evaluates on the same accounts' features: a model that learnt
    // something (the labels reached it) beats chance.
    let auc = rounds[1]["test"]["auc"].as_f64().expect("auc");
    assert!(auc > 0.6, "AUC {auc}: {metrics}");
    // The model carries the export's preprocessing: 24 per-account columns, label FLAG.
    let model = read_model(&std::fs::read(out.path().join("model.safetensors")).expect("model"))
        .expect("the model reads");
    let spec = model.data.expect("the model's data spec");
    assert_eq!(spec.label, "FLAG");
    assert_eq!(spec.columns().len(), 24);
    assert_eq!(model.model.n_features, 24);
    println!(
        "2 rounds on the transaction export: AUC {auc:.3} in {:?}",
        t0.elapsed()
    );
}

#[test]
fn labels_and_delimiter_beside_a_job_file_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "name = \"x\"\n").expect("job file");
    for (flag, value) in [("--labels", "labels.csv"), ("--delimiter", ";")] {
        let o = cairn()
            .args([
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--job",
                utf8(&job),
            ])
            .args([flag, value])
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .expect("cairn coordinator");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{flag}: {e}");
        assert!(
            e.contains("sets the whole job") && e.contains(&format!("drop {flag}")),
            "{flag}: {e}"
        );
        assert!(!dir.path().join("out").exists(), "{flag}: wrote its output");
    }
}

/// A learnable table with columns `id a b c y`, cells separated by `sep`: `y` is 1 when
/// `a − c` (plus noise) is large.
fn table(path: &Path, rows: usize, seed: u64, sep: &str) {
    let mut s = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64) / f64::from(1u32 << 31)
    };
    let mut text = ["id", "a", "b", "c", "y"].join(sep);
    text.push('\n');
    for i in 0..rows {
        let (a, b, c) = (next(), next() * 10.0, next());
        let y = u8::from(a - c + 0.3 * (next() - 0.5) > 0.0);
        let _ = writeln!(
            text,
            "{}",
            [
                format!("0x{:040x}", i as u64 * 7919 + seed),
                format!("{a:.5}"),
                format!("{b:.4}"),
                format!("{c:.5}"),
                y.to_string(),
            ]
            .join(sep)
        );
    }
    std::fs::write(path, text).expect("write the table");
}

#[test]
fn a_submitted_job_names_its_tables_delimiter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    std::fs::create_dir_all(&root).expect("data root");
    let eval = root.join("eval.csv");
    table(&eval, 800, 1, ";");
    // The holders' own files: one `;`-separated (read with --delimiter), one a .tsv.
    let semi = dir.path().join("exchange.csv");
    let tsv = dir.path().join("wallet.tsv");
    table(&semi, 700, 2, ";");
    table(&tsv, 700, 3, "\t");

    let out = dir.path().join("out");
    let (_coord, addr, fp) = serving_coordinator(&out, Some(&root), LIMIT);
    let holder =
        |name: &str, data: &Path, extra: &[&str]| serving_holder(&addr, &fp, name, data, extra);
    let mut holders = [
        holder("exchange", &semi, &["--delimiter", ";"]),
        holder("wallet", &tsv, &[]),
    ];

    let job = |name: &str, data: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "name = \"{name}\"\nrounds = 2\n[data]\npath = {:?}\nlabel = \"y\"\n{data}\
                 [model]\nhidden = []\n[participants]\nper_round = 2\nmin = 2\n\
                 [train]\nsteps = 10\nbatch = 16\nlr = 0.5\n[aggregation]\nmode = \"plain\"\n\
                 [deadlines]\nround_timeout_secs = 60\njoin_timeout_secs = 60\n",
                utf8(&eval)
            ),
        )
        .expect("job file");
        path
    };
    let submit = |path: &Path| cairn_job(&out, &["submit", utf8(path)]);

    // Read with commas, the `;` table is one text column: its label is not found.
    let e = refused(&submit(&job("commas", "")));
    assert!(e.contains("label column") && e.contains("eval.csv"), "{e}");
    // A delimiter the flag would refuse is refused naming the key.
    let e = refused(&submit(&job("colons", "delimiter = \"::\"\n")));
    assert!(
        e.contains("data.delimiter:") && e.contains("got \"::\""),
        "{e}"
    );
    // A labels file outside the data directory is refused naming data.labels (and a
    // labels file makes data.path a transaction export, which a delimiter does not fit).
    let outside = dir.path().join("labels.csv");
    std::fs::write(&outside, "address,y\n0x01,1\n").expect("labels");
    let e = refused(&submit(&job(
        "outside",
        &format!("labels = {:?}\n", utf8(&outside)),
    )));
    assert!(
        e.contains("data.labels:") && e.contains("outside the coordinator's data directory"),
        "{e}"
    );
    let list = ok(&cairn_job(&out, &["list"]));
    assert!(list.contains("no jobs"), "nothing queued: {list}");

    // With `delimiter = ";"` the job runs; the holders read their own files their own way.
    let s = ok(&submit(&job("semicolons", "delimiter = \";\"\n")));
    assert!(s.contains("submitted job 1"), "{s}");
    for h in &mut holders {
        let l = h.wait_for(LIMIT, |l| l.contains("rows of"));
        assert!(
            l.contains("label \"y\"") && l.contains("input columns"),
            "{l}"
        );
    }
    let w = ok(&cairn_job(&out, &["watch", "1", "--every", "0.2"]));
    assert!(w.contains("job 1 finished"), "{w}");
    let pulled = dir.path().join("pulled");
    ok(&cairn_job(&out, &["pull", "1", "--dest", utf8(&pulled)]));
    let stored = std::fs::read_to_string(pulled.join("job.toml")).expect("the stored job file");
    assert!(stored.contains("delimiter = \";\""), "{stored}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pulled.join("metrics.json")).expect("metrics"))
            .expect("json");
    let rounds = metrics.as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{metrics}");
    assert!(rounds.iter().all(|r| r["contributors"] == 2), "{metrics}");
    let auc = rounds[1]["test"]["auc"].as_f64().expect("auc");
    assert!(auc > 0.7, "AUC {auc}: {metrics}");
}

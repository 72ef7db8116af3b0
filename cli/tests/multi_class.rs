//! Multi-class labels end to end (#14 item 3): a job whose label has three text classes
//! trains a softmax model over secure aggregation, each holder mapping its own file's label
//! values onto the job's classes (a holder whose file holds a value that is none of them
//! declines, without telling the coordinator the value); the report, `cairn predict` and the
//! status page give each class's metrics and their macro averages; a proven job with such a
//! label is refused at submission, naming why. And on real on-chain data: `cairn demo`
//! tells benign accounts, phishing/hack accounts and other fraud apart.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;
use common::{
    account_txs, cairn_job, fraud_csv, ok, predict, refused, serving_coordinator, serving_holder,
    uniform, Proc,
};

const LIMIT: Duration = Duration::from_secs(240);
const KINDS: [&str; 3] = ["benign", "mev_bot", "phishing"];

/// A learnable three-class table: the class is the largest of three linear scores of `a`,
/// `b`, `c` (with noise). `columns` gives the file's column order (any of `id,a,b,c,kind`);
/// with `odd` every 50th row's class is `scam`, no class of the job's.
fn table(path: &Path, rows: usize, seed: u64, columns: &[&str], odd: bool) {
    let mut next = uniform(seed);
    let mut text = columns.join(",");
    text.push('\n');
    for i in 0..rows {
        let (a, b, c) = (next(), next(), next());
        let scores = [
            a - b + 0.2 * (next() - 0.5),
            b - c + 0.2 * (next() - 0.5),
            c - a + 0.2 * (next() - 0.5),
        ];
        let best = (0..3).fold(0, |m, k| if scores[k] > scores[m] { k } else { m });
        let kind = if odd && i % 50 == 7 {
            "scam"
        } else {
            KINDS[best]
        };
        let cell = |name: &str| match name {
            "id" => format!("0x{:040x}", i as u64 * 7919 + seed),
            "a" => format!("{a:.5}"),
            "b" => format!("{b:.5}"),
            "c" => format!("{c:.5}"),
            "kind" => kind.to_string(),
            other => panic!("no column {other}"),
        };
        let line: Vec<String> = columns.iter().map(|c| cell(c)).collect();
        let _ = writeln!(text, "{}", line.join(","));
    }
    std::fs::write(path, text).expect("write the table");
}

fn job_file(path: &Path, data: &Path, proofs: bool) {
    std::fs::write(
        path,
        format!(
            "name = \"kinds\"\nrounds = 8\nseed = 3\n[data]\npath = {:?}\nlabel = \"kind\"\n\
             [model]\nhidden = [8]\n[participants]\nper_round = 3\nmin = 3\n\
             [train]\nsteps = 10\nbatch = 16\nlr = 0.5\n[aggregation]\nmode = \"secure\"\n\
             [proofs]\nenabled = {proofs}\n\
             [deadlines]\nround_timeout_secs = 60\njoin_timeout_secs = 20\n",
            data.to_str().expect("utf-8")
        ),
    )
    .expect("job file");
}

/// The number after `key` in `text` (`"AUC 0.93"` → 0.93).
fn number_after(text: &str, key: &str) -> f64 {
    text.split(key)
        .nth(1)
        .and_then(|t| t.split(|c: char| c.is_whitespace() || c == ',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a number after {key:?} in {text}"))
}

#[test]
fn a_three_class_job_trains_over_secure_aggregation_and_reports_each_class() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    std::fs::create_dir_all(&root).expect("data root");
    let eval = root.join("eval.csv");
    table(&eval, 900, 1, &["id", "a", "b", "c", "kind"], false);
    // The holders' own files: another column order; the coordinator's; and one whose
    // label has a value that is none of the job's classes.
    let files = [
        (
            "exchange",
            dir.path().join("exchange.csv"),
            900,
            2,
            &["kind", "c", "b", "a"][..],
            false,
        ),
        (
            "wallet",
            dir.path().join("wallet.csv"),
            900,
            3,
            &["id", "a", "b", "c", "kind"][..],
            false,
        ),
        (
            "explorer",
            dir.path().join("explorer.csv"),
            900,
            4,
            &["a", "b", "c", "kind"][..],
            false,
        ),
        (
            "analytics",
            dir.path().join("analytics.csv"),
            900,
            5,
            &["id", "a", "b", "c", "kind"][..],
            true,
        ),
    ];
    for (_, path, rows, seed, columns, odd) in &files {
        table(path, *rows, *seed, columns, *odd);
    }

    let out = dir.path().join("out");
    let (mut coord, addr, fp) = serving_coordinator(&out, Some(&root), LIMIT);

    // A proven job is refused at once: the circuit proves binary classifiers.
    let proven = dir.path().join("proven.toml");
    job_file(&proven, &eval, true);
    let why = refused(&cairn_job(
        &out,
        &["submit", proven.to_str().expect("path")],
    ));
    assert!(
        why.contains("proofs") && why.contains("binary classifiers") && why.contains("3 classes"),
        "{why}"
    );

    let mut holders: Vec<Proc> = files
        .iter()
        .map(|(name, path, ..)| serving_holder(&addr, &fp, name, path, &[]))
        .collect();
    let job = dir.path().join("job.toml");
    job_file(&job, &eval, false);
    let s = ok(&cairn_job(&out, &["submit", job.to_str().expect("path")]));
    // The refused job took no id.
    assert!(s.contains("submitted job 1"), "{s}");

    // The holder with a `scam` row declines in the job's terms only.
    let why = holders[3].wait_for(LIMIT, |l| l.contains("cannot take part in job"));
    assert!(why.contains("none of the job's 3 classes"), "{why}");
    let shown = coord.wait_for(LIMIT, |l| l.contains("cannot prepare the job's data"));
    assert!(
        shown.contains("analytics") && !shown.contains("scam"),
        "the coordinator does not learn the holder's value: {shown}"
    );
    // The others prepare the job's classes from their own files.
    for h in &mut holders[..3] {
        let l = h.wait_for(LIMIT, |l| l.contains("rows of"));
        assert!(
            KINDS.iter().all(|k| l.contains(k)) && l.contains("label \"kind\""),
            "{l}"
        );
    }
    let w = ok(&cairn_job(&out, &["watch", "1", "--every", "0.2"]));
    assert!(w.contains("job 1 finished"), "{w}");

    let pulled = dir.path().join("pulled");
    ok(&cairn_job(
        &out,
        &["pull", "1", "--dest", pulled.to_str().expect("utf-8")],
    ));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(pulled.join("report.json")).expect("report.json"),
    )
    .expect("report JSON");
    let classes = report["classes"].as_array().expect("classes");
    let names: Vec<&str> = classes
        .iter()
        .map(|c| c["class"].as_str().expect("name"))
        .collect();
    assert_eq!(names, KINDS);
    let macro_auc = report["federated"]["auc"].as_f64().expect("auc");
    assert!(macro_auc > 0.85, "macro AUC {macro_auc}: {report}");
    for c in classes {
        let f1 = c["federated"]["f1"].as_f64().expect("f1");
        assert!(f1 > 0.5, "{c}");
        assert!(
            c["federated"]["support"].as_u64().expect("support") > 30,
            "{c}"
        );
    }
    assert!(
        report["roc"].as_array().is_some_and(Vec::is_empty),
        "no ROC for three classes"
    );

    // `job status` names the label's classes and the averaging.
    let status = ok(&cairn_job(&out, &["status", "1"]));
    assert!(
        status.contains("label kind: 3 classes (benign, mev_bot, phishing), softmax output")
            && status.contains("macro averages"),
        "{status}"
    );

    // `cairn predict`: the most probable class and each class's probability per row.
    let fresh = dir.path().join("fresh.csv");
    table(&fresh, 600, 9, &["c", "kind", "b", "a"], false);
    let p = predict(&pulled.join("model.safetensors"), &fresh, &[]);
    assert_eq!(
        p.header.join(","),
        "row,predicted,p_benign,p_mev_bot,p_phishing,label"
    );
    assert_eq!(p.rows.len(), 600);
    let cells = &p.rows[0];
    assert!(KINDS.contains(&cells[1].as_str()), "{cells:?}");
    let total: f64 = cells[2..5]
        .iter()
        .map(|c| c.parse::<f64>().expect("probability"))
        .sum();
    assert!((total - 1.0).abs() < 1e-4, "{cells:?}");
    let err = &p.stderr;
    assert!(err.contains("3 classes"), "{err}");
    assert!(
        number_after(err, "macro averages, each class against the rest: AUC ") > 0.85,
        "{err}"
    );
    for k in KINDS {
        assert!(err.contains(&format!("    {k}: ")), "{err}");
    }
}

/// Real on-chain data: the fraud table's accounts as benign, phishing/hack (confirmed by
/// Etherscan's `phish-hack` label, from `eth-account-txs/labels.csv`) or other fraud.
fn three_kinds_of_account(fraud: &Path, labels: &Path, dest: &Path) -> [usize; 3] {
    let fraud = std::fs::read_to_string(fraud).expect("the fraud table");
    let labels = std::fs::read_to_string(labels).expect("labels.csv");
    let phish: std::collections::HashSet<&str> = labels
        .lines()
        .skip(1)
        .filter(|l| {
            l.split(',')
                .nth(2)
                .is_some_and(|s| s.contains("etherscan_phish_hack"))
        })
        .filter_map(|l| l.split(',').next())
        .collect();
    let mut lines = fraud.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let (addr, flag) = (
        header
            .iter()
            .position(|h| h.trim() == "Address")
            .expect("Address"),
        header
            .iter()
            .position(|h| h.trim() == "FLAG")
            .expect("FLAG"),
    );
    let mut counts = [0usize; 3];
    let mut text = String::new();
    let mut head = header.clone();
    head[flag] = "kind";
    text.push_str(&head.join(","));
    text.push('\n');
    for l in lines {
        let mut cells: Vec<&str> = l.split(',').collect();
        let k = match (
            cells[flag].trim(),
            phish.contains(cells[addr].trim().to_lowercase().as_str()),
        ) {
            ("0", _) => 0,
            (_, true) => 1,
            _ => 2,
        };
        counts[k] += 1;
        cells[flag] = ["benign", "phish_hack", "fraud"][k];
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    std::fs::write(dest, text).expect("write");
    counts
}

#[test]
fn the_demo_tells_three_kinds_of_real_account_apart() {
    let (Some(fraud), Some((_, labels))) = (fraud_csv(), account_txs()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("kinds.csv");
    let counts = three_kinds_of_account(&fraud, &labels, &data);
    assert!(counts.iter().all(|&n| n > 100), "{counts:?}");
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "demo",
            "--proofs",
            "false",
            "--label",
            "kind",
            "--participants",
            "3",
        ])
        .args(["--rounds", "15", "--device", "cpu", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("cairn demo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    assert!(text.contains("macro averages over 3 classes"), "{text}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).expect("metrics.json"))
            .expect("JSON");
    let fed = metrics["federated"]["auc"].as_f64().expect("auc");
    let cen = metrics["centralised"]["auc"].as_f64().expect("auc");
    assert!(fed > 0.8, "federated macro AUC {fed}: {text}");
    assert!(
        fed > cen - 0.05,
        "federated {fed} against centralised {cen}: {text}"
    );
    let classes = metrics["classes"].as_array().expect("classes");
    assert_eq!(classes.len(), 3, "{metrics}");
    for c in classes {
        assert!(c["federated"]["auc"].as_f64().expect("auc") > 0.6, "{c}");
    }
    // The proven demo refuses the label before any trusted setup.
    let o = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["demo", "--label", "kind", "--device", "cpu", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("proven"))
        .output()
        .expect("cairn demo");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("binary classifiers"),
        "{err}"
    );
    assert!(!dir.path().join("proven").join("cairn-keys").exists());
}

//! A job's `[data]` reaches the holders (#14 items 1 and 2): a coordinator serving jobs
//! offers each job's label, columns and fitted transforms; serving holders prepare their
//! own files (each named by its holder, never by the job) for it, whatever their column
//! order or extra columns; a holder whose file lacks a column the job needs declines with
//! its reason, which the coordinator shows. The model is exported with that preprocessing,
//! and `cairn predict` scores a raw table with it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::{
    cairn, cairn_job, ok, predict, predict_output, serving_coordinator, serving_holder, uniform,
    Proc,
};

const LIMIT: Duration = Duration::from_secs(180);

/// A learnable table: `y` is 1 when `a + b/2 − c` is large (with label noise); `d` is
/// pure noise the job drops. `columns` gives the file's column order (any subset of
/// `id,a,b,c,d,e,y`; `e` is an extra column no job asks for).
fn table(path: &Path, rows: usize, seed: u64, columns: &[&str]) {
    let mut next = uniform(seed);
    let mut text = columns.join(",");
    text.push('\n');
    for i in 0..rows {
        let (a, b, c, d, e) = (next(), next() * 4.0, next(), next(), next());
        // Heavy-tailed `b` (the loader may log-transform it), a few missing `c` cells.
        let b = b.powi(4);
        let z = a + 0.1 * b.ln_1p() - c + 0.3 * (next() - 0.5);
        let y = u8::from(z > 0.45);
        let cell = |name: &str| match name {
            "id" => format!("0x{:040x}", i as u64 * 7919 + seed),
            "a" => format!("{a:.5}"),
            "b" => format!("{b:.5}"),
            "c" if i % 37 == 0 => String::new(),
            "c" => format!("{c:.5}"),
            "d" => format!("{d:.5}"),
            "e" => format!("{e:.5}"),
            "y" => y.to_string(),
            other => panic!("no column {other}"),
        };
        let line: Vec<String> = columns.iter().map(|c| cell(c)).collect();
        let _ = writeln!(text, "{}", line.join(","));
    }
    std::fs::write(path, text).expect("write the table");
}

#[test]
fn holders_prepare_their_own_tables_for_the_jobs_data_and_one_that_cannot_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    std::fs::create_dir_all(&root).expect("data root");
    table(
        &root.join("eval.csv"),
        800,
        1,
        &["id", "a", "b", "c", "d", "y"],
    );
    // The holders' own files: the same columns in another order with one more; the same
    // as the coordinator's; and one without `b`.
    let files: Vec<(&str, PathBuf)> = vec![
        ("exchange", dir.path().join("exchange.csv")),
        ("wallet", dir.path().join("wallet.csv")),
        ("analytics", dir.path().join("analytics.csv")),
    ];
    table(&files[0].1, 900, 2, &["y", "e", "d", "c", "b", "a", "id"]);
    table(&files[1].1, 900, 3, &["id", "a", "b", "c", "d", "y"]);
    table(&files[2].1, 900, 4, &["id", "a", "c", "d", "y"]);

    let out = dir.path().join("out");
    let (mut coord, addr, fp) = serving_coordinator(&out, Some(&root), LIMIT);
    let mut holders: Vec<Proc> = files
        .iter()
        .map(|(name, path)| serving_holder(&addr, &fp, name, path, &[]))
        .collect();

    // The job names its own label and drops `d`: neither is any holder's default. It
    // waits for three holders (then starts with two): the holder that cannot join has
    // time to be offered the job and answer it.
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"own-tables\"\nrounds = 6\n[data]\npath = {:?}\nlabel = \"y\"\n\
             drop_columns = [\"d\"]\n[model]\nhidden = []\n[participants]\nper_round = 3\nmin = 2\n\
             [train]\nsteps = 10\nbatch = 16\nlr = 0.5\n[aggregation]\nmode = \"plain\"\n\
             [deadlines]\nround_timeout_secs = 60\njoin_timeout_secs = 10\n",
            root.join("eval.csv").to_str().expect("utf-8")
        ),
    )
    .expect("job file");
    let s = ok(&cairn_job(&out, &["submit", job.to_str().expect("path")]));
    assert!(s.contains("submitted job 1"), "{s}");

    // The holder without `b` declines, naming it, and the coordinator shows why.
    let why = holders[2].wait_for(LIMIT, |l| l.contains("cannot take part in job"));
    assert!(
        why.contains("lacks 1 of the job's 3 input columns") && why.contains(": b"),
        "{why}"
    );
    let shown = coord.wait_for(LIMIT, |l| l.contains("cannot prepare the job's data"));
    assert!(
        shown.contains("analytics") && shown.contains("b"),
        "{shown}"
    );

    // The two others prepare the job's columns from their own files and train.
    for h in &mut holders[..2] {
        let l = h.wait_for(LIMIT, |l| l.contains("rows of"));
        assert!(
            l.contains("label \"y\"") && l.contains("3 input columns"),
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
    let status = std::fs::read_to_string(pulled.join("status.json")).expect("status.json");
    assert!(
        status.contains("\"declined\"") && status.contains("analytics"),
        "the declining holder is on the job's holder list: {status}"
    );

    // The model carries the job's preprocessing: `cairn predict` scores a raw table it
    // has never seen, with its columns in any order, and beats chance by far.
    let fresh = dir.path().join("fresh.csv");
    table(&fresh, 600, 9, &["e", "c", "y", "b", "a"]);
    let scores = dir.path().join("scores.csv");
    let p = predict(
        &pulled.join("model.safetensors"),
        &fresh,
        &["--out", scores.to_str().expect("utf-8")],
    );
    assert_eq!(p.header.join(","), "row,score,label");
    assert_eq!(p.rows.len(), 600, "a score per row");
    let err = &p.stderr;
    let auc: f64 = err
        .split("AUC ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("an AUC in {err}"));
    assert!(auc > 0.8, "AUC {auc}: {err}");

    // Rows whose label is not known yet (empty cells) are scored; the metrics leave them out.
    let text = std::fs::read_to_string(&fresh).expect("fresh");
    let partly: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut cells: Vec<&str> = l.split(',').collect();
            if i > 0 && i % 3 == 0 {
                cells[2] = "";
            }
            cells.join(",")
        })
        .collect();
    std::fs::write(&fresh, partly.join("\n") + "\n").expect("write");
    let p = predict(&pulled.join("model.safetensors"), &fresh, &[]);
    assert_eq!(
        p.rows
            .iter()
            .filter(|r| r.last().is_some_and(String::is_empty))
            .count(),
        200,
        "{:?}",
        p.rows
    );
    let err = &p.stderr;
    assert!(err.contains("200 rows have no label yet"), "{err}");

    // A table without one of the model's columns is refused, naming it.
    let o = predict_output(&pulled.join("model.safetensors"), &files[2].1, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(": b"), "{err}");
}

/// A coordinator between jobs completes the handshake before turning a holder away, so a
/// holder that pinned the wrong fingerprint is told so at once instead of retrying an
/// "unreachable" coordinator (#14 item 5); with the right one it is told no job runs.
#[test]
fn a_wrong_fingerprint_is_reported_as_such_while_the_coordinator_is_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let (_coord, addr, fp) = serving_coordinator(&out, None, LIMIT);
    let wrong: String = fp
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let o = cairn()
        .args([
            "participant",
            "--coordinator",
            &addr,
            "--fingerprint",
            &wrong,
        ])
        .args(["--synthetic", "--device", "cpu", "--reconnect", "30"])
        .output()
        .expect("participant");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains("does not match the pinned fingerprint"),
        "{text}"
    );
    // The right fingerprint: told that no job runs, and it keeps asking (until --reconnect).
    let mut right = cairn();
    right
        .args(["participant", "--coordinator", &addr, "--fingerprint", &fp])
        .args(["--synthetic", "--device", "cpu", "--reconnect", "30"]);
    let mut right = Proc::spawn(right);
    right.wait_for(LIMIT, |l| {
        l.contains("is not running a job now; trying again")
    });
}

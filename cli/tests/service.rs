//! A researcher's view: a coordinator started with `--serve` takes jobs from `cairn job`
//! (submit, list, status, watch, cancel, pull, plot) over its admin interface and runs them
//! one after another with the same three participant processes, each serving job after
//! job. Bad job files are refused field by field; the admin interface wants its token.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_coordinator::export::from_safetensors;
use cairn_protocol::model::ModelSpec;

mod common;
use common::{cairn, cairn_job, ok, refused, Proc};

const LIMIT: Duration = Duration::from_secs(120);

fn job(
    dir: &Path,
    name: &str,
    optimizer: &str,
    per_round: usize,
    rounds: u32,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nrounds = {rounds}\n[data]\nsynthetic = true\n[model]\nhidden = [4]\n\
             [participants]\nper_round = {per_round}\nmin = 2\n[train]\nsteps = 3\nbatch = 16\n\
             [server]\noptimizer = \"{optimizer}\"\n\
             [deadlines]\nround_timeout_secs = 60\njoin_timeout_secs = 300\n"
        ),
    )
    .expect("job file");
    path
}

#[test]
fn researchers_run_jobs_one_after_another_on_one_coordinator_and_pull_their_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let mut c = cairn();
    c.args(["coordinator", "--serve", "--listen", "127.0.0.1:0", "--out"])
        .arg(&out);
    let mut coord = Proc::spawn(c);
    let (addr, fp) = coord.address(LIMIT);
    coord.wait_for(LIMIT, |l| l.starts_with("waiting for jobs"));
    let holders: Vec<Proc> = (0..3)
        .map(|i| {
            let mut c = cairn();
            c.args(["participant", "--coordinator", &addr, "--fingerprint", &fp])
                .args(["--device", "cpu", "--synthetic", "--serve"])
                .args(["--holder", &i.to_string(), "--of", "3"]);
            Proc::spawn(c)
        })
        .collect();

    // A bad job file is refused with each bad field named; nothing is queued.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "rounds = 0\n[train]\nlr = -1\n[server]\noptimizer = \"fedadam\"\nbeta1 = 2\n",
    )
    .expect("write");
    let e = refused(&cairn_job(&out, &["submit", bad.to_str().expect("path")]));
    for field in ["rounds", "train.lr", "server.beta1"] {
        assert!(e.contains(&format!("{field}:")), "{field} in {e}");
    }
    // A job reading a table outside the coordinator's data directory (its working
    // directory here, the default --data-root) is refused naming data.path (#12 item 8).
    let table = dir.path().join("elsewhere.csv");
    std::fs::write(
        &table,
        "a,b,FLAG
1,2,0
3,4,1
",
    )
    .expect("write");
    let outside = dir.path().join("outside.toml");
    std::fs::write(
        &outside,
        format!(
            "[data]
path = {:?}
",
            table.to_str().expect("utf-8")
        ),
    )
    .expect("write");
    let e = refused(&cairn_job(
        &out,
        &["submit", outside.to_str().expect("path")],
    ));
    assert!(
        e.contains("data.path:") && e.contains("outside the coordinator's data directory"),
        "{e}"
    );
    let list = ok(&cairn_job(&out, &["list"]));
    assert!(list.contains("no jobs"), "{list}");

    // Two jobs, FedAdam then FedYogi: the second waits for the first.
    let a = job(dir.path(), "adam", "fedadam", 3, 3);
    let b = job(dir.path(), "yogi", "fedyogi", 3, 4);
    let s = ok(&cairn_job(&out, &["submit", a.to_str().expect("path")]));
    assert!(s.contains("submitted job 1 (adam)"), "{s}");
    let s = ok(&cairn_job(&out, &["submit", b.to_str().expect("path")]));
    assert!(s.contains("submitted job 2 (yogi)"), "{s}");
    let w = ok(&cairn_job(&out, &["watch", "2", "--every", "0.2"]));
    assert!(w.contains("job 2 finished"), "{w}");
    assert_eq!(
        w.lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .count(),
        4,
        "a line per round: {w}"
    );
    let list = ok(&cairn_job(&out, &["list"]));
    for (id, name) in [("1", "adam"), ("2", "yogi")] {
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()[..3] == [id, name, "finished"]),
            "{list}"
        );
    }
    let st = ok(&cairn_job(&out, &["status", "2"]));
    assert!(
        st.contains("fedyogi") && st.contains("rounds: 4 completed"),
        "{st}"
    );
    // `cairn job status 2 | head -0`: the reader is gone before the first line is written.
    let mut piped = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["job", "--dir"])
        .arg(&out)
        .args(["status", "2"])
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cairn job status");
    drop(piped.stdout.take());
    let closed = piped.wait_with_output().expect("status");
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(
        closed.status.success() && !stderr.contains("panicked"),
        "{:?}: {stderr}",
        closed.status
    );

    // A job no one can fill (4 per round, 3 holders) is cancelled while it waits; the
    // holders are told and stay for the next job, which runs with them.
    let c3 = job(dir.path(), "toobig", "fedavg", 4, 3);
    ok(&cairn_job(&out, &["submit", c3.to_str().expect("path")]));
    coord.wait_for(LIMIT, |l| l.starts_with("started job 3"));
    for _ in 0..3 {
        coord.wait_for(LIMIT, |l| l.contains("participant joined"));
    }
    let cancel = ok(&cairn_job(&out, &["cancel", "3"]));
    assert!(
        cancel.contains("cancelled job 3 (it was running)"),
        "{cancel}"
    );
    coord.wait_for(LIMIT, |l| l.starts_with("job 3 cancelled"));
    let e = refused(&cairn_job(&out, &["cancel", "3"]));
    assert!(e.contains("cannot cancel"), "{e}");
    let d = job(dir.path(), "again", "fedavg", 3, 2);
    ok(&cairn_job(&out, &["submit", d.to_str().expect("path")]));
    let w = ok(&cairn_job(&out, &["watch", "4", "--every", "0.2"]));
    assert!(w.contains("job 4 finished"), "{w}");
    let w = refused(&cairn_job(&out, &["watch", "3"]));
    assert!(w.contains("job 3 cancelled"), "{w}");

    // Pull: the job file, metrics (JSON and CSV), the final and per-round models, the
    // report; plot: the two PNGs.
    let dest = dir.path().join("pulled");
    ok(&cairn_job(
        &out,
        &["pull", "1", "--dest", dest.to_str().expect("path")],
    ));
    assert_eq!(
        std::fs::read_to_string(dest.join("job.toml")).expect("job.toml"),
        std::fs::read_to_string(&a).expect("a")
    );
    let csv = std::fs::read_to_string(dest.join("metrics.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 4, "header and three rounds: {csv}");
    for r in 1..=3 {
        let m =
            std::fs::read(dest.join(format!("models/round-{r:03}.safetensors"))).expect("model");
        assert!(m.len() > 8);
    }
    let spec = ModelSpec::mlp(12, vec![4]);
    let params = |f: &str| {
        from_safetensors(&spec, &std::fs::read(dest.join(f)).expect(f)).expect("a cairn model")
    };
    assert_eq!(
        params("model.safetensors"),
        params("models/round-003.safetensors"),
        "the final model is the last round's"
    );
    assert_ne!(
        params("models/round-001.safetensors"),
        params("model.safetensors")
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("report.json")).expect("report"))
            .expect("json");
    // The report evaluates the final model: the metrics round 3 recorded.
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("metrics.json")).expect("metrics"))
            .expect("json");
    let last = &metrics[2]["test"];
    for k in ["auc", "loss", "accuracy"] {
        assert_eq!(report["federated"][k], last[k], "{k}: {last}");
    }
    assert!(
        report["centralised"]["auc"].as_f64().is_some(),
        "{}",
        report["centralised"]
    );
    assert_eq!(report["test_rows"], 1200);
    assert!(report["roc"].as_array().is_some_and(|r| r.len() > 100));
    assert!(
        !dest.join("transcript.cairn").exists(),
        "proof-free jobs keep no transcript"
    );
    ok(&cairn_job(
        &out,
        &["plot", "1", "--dest", dest.to_str().expect("path")],
    ));
    for png in ["rounds.png", "roc.png"] {
        let bytes = std::fs::read(dest.join(png)).expect(png);
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }

    // The admin interface wants the token.
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "0".repeat(64)).expect("write");
    let e = refused(
        &Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["job", "--dir"])
            .arg(&out)
            .arg("--token-file")
            .arg(&wrong)
            .arg("list")
            .output()
            .expect("cairn job"),
    );
    assert!(e.contains("wrong admin token"), "{e}");

    // The same three holder processes served every job that ran.
    drop(coord);
    for mut h in holders {
        h.wait_for(LIMIT, |l| l.contains("job complete after 2 rounds"));
        let finished = h
            .seen
            .iter()
            .filter(|l| l.contains("job complete after"))
            .count();
        assert_eq!(finished, 3, "jobs 1, 2 and 4: {}", h.seen.join("\n"));
        assert!(
            h.seen.iter().any(|l| l.contains("cancelled")),
            "told of job 3's cancellation: {}",
            h.seen.join("\n")
        );
    }
}

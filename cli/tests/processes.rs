//! The `cairn` binary as separate processes on loopback: one coordinator and three
//! participants, each its own process, as on separate machines. Also the demo end to end,
//! and clear errors for bad input.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            t0.elapsed() < limit,
            "process did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn coordinator_and_participants_as_separate_processes() {
    let out = tempfile::tempdir().expect("tempdir");
    let mut coord = Guard(
        cairn()
            .args([
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--participants",
                "3",
                "--min",
                "2",
                "--rounds",
                "3",
            ])
            .args([
                "--synthetic",
                "--hidden",
                "none",
                "--join-timeout",
                "60",
                "--round-timeout",
                "60",
                "--out",
            ])
            .arg(out.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn coordinator"),
    );
    let stdout = coord.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut addr, mut fp) = (None, None);
    while addr.is_none() || fp.is_none() {
        let line = lines
            .next()
            .expect("coordinator printed its address")
            .expect("utf-8");
        if let Some(a) = line.strip_prefix("listening on ") {
            addr = Some(a.to_string());
        }
        if let Some(f) = line.strip_prefix("fingerprint ") {
            fp = Some(f.to_string());
        }
    }
    let (addr, fp) = (addr.expect("addr"), fp.expect("fp"));
    let parts: Vec<Guard> = (0..3)
        .map(|i| {
            Guard(
                cairn()
                    .args([
                        "participant",
                        "--coordinator",
                        &addr,
                        "--fingerprint",
                        &fp,
                        "--device",
                        "cpu",
                    ])
                    .args(["--synthetic", "--holder", &i.to_string(), "--of", "3"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn participant"),
            )
        })
        .collect();
    for mut p in parts {
        assert!(wait_with_timeout(&mut p.0, Duration::from_secs(120)).success());
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        wait_with_timeout(&mut coord.0, Duration::from_secs(60)).success(),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.starts_with("job complete: 3 rounds")),
        "{rest:?}"
    );
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("metrics.json")).expect("metrics"))
            .expect("json");
    let rounds = metrics.as_array().expect("rounds");
    assert_eq!(rounds.len(), 3);
    assert!(rounds.iter().all(|r| r["contributors"] == 3));
    assert!(out.path().join("model.safetensors").exists());
}

#[test]
fn the_demo_trains_and_writes_model_and_metrics() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = cairn()
        .args([
            "demo",
            "--participants",
            "3",
            "--rounds",
            "4",
            "--synthetic",
            "--device",
            "cpu",
            "--out",
        ])
        .arg(out.path())
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("centralised"), "{stdout}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("metrics.json")).expect("metrics"))
            .expect("json");
    assert_eq!(m["rounds"].as_array().map(Vec::len), Some(4));
    let fed = m["federated"]["auc"].as_f64().expect("auc");
    let cen = m["centralised"]["auc"].as_f64().expect("auc");
    assert!(
        fed > 0.7 && (fed - cen).abs() < 0.1,
        "federated {fed} centralised {cen}"
    );
}

#[test]
fn bad_input_gives_clear_errors() {
    let o = cairn()
        .args(["demo", "--data", "/nonexistent/table.csv"])
        .output()
        .expect("run");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/table.csv"), "{err}");

    let o = cairn()
        .args(["demo", "--synthetic", "--partition", "shards"])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("partition must be"));

    let o = cairn()
        .args([
            "participant",
            "--coordinator",
            "127.0.0.1:9",
            "--fingerprint",
            "xyz",
            "--synthetic",
        ])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("fingerprint must be 64 hex digits"));
}

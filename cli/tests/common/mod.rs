//! What the process tests share: the `cairn` binary, a guard that kills a child process
//! when a test fails, and waiting for a process with a deadline.

// Each test crate uses some of these helpers, not all.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use cairn_datasets::{
    default_account_labels, default_account_txs, default_fraud_csv, shared_files,
};
use std::time::{Duration, Instant};

/// The `cairn` binary under test.
pub fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

/// Kills the child when dropped, so a failing test leaves no process behind.
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit; fails the test after `limit`.
pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
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

/// A child process whose stdout and stderr lines arrive, merged, on a channel (so a test
/// can wait for a line with a deadline, and act on the process meanwhile).
pub struct Proc {
    /// The process (killed on drop).
    pub guard: Guard,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Proc {
    /// Spawns `cmd` with both outputs piped.
    pub fn spawn(mut cmd: Command) -> Self {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(l);
            }
        });
        Self {
            guard: Guard(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.guard.0.id()
    }

    /// Waits for a line satisfying `pred` (among lines not yet seen); fails the test after
    /// `limit` with everything the process printed.
    pub fn wait_for(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let left = limit.saturating_sub(t0.elapsed());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the process ended first; it printed:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
            assert!(
                t0.elapsed() < limit,
                "no such line within {limit:?}; the process printed:\n{}",
                self.seen.join("\n")
            );
        }
    }

    /// Waits for a coordinator's `listening on ADDR` and `fingerprint HEX` lines; returns
    /// the address and fingerprint.
    pub fn address(&mut self, limit: Duration) -> (String, String) {
        let addr = self.wait_for(limit, |l| l.starts_with("listening on "))
            ["listening on ".len()..]
            .to_string();
        let fp = self.wait_for(limit, |l| l.starts_with("fingerprint "))["fingerprint ".len()..]
            .to_string();
        (addr, fp)
    }

    /// Lines that have arrived so far, without waiting.
    pub fn drain(&mut self) -> &[String] {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        &self.seen
    }

    /// Waits for the process to exit (failing after `limit`), then reads the rest of its
    /// output.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let status = wait_with_timeout(&mut self.guard.0, limit);
        // The reader threads end with the pipes.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        status
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`…) with the system's `kill`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }
}

/// `cairn job --dir OUT ARGS…` (the researcher's admin client against a service's `OUT`).
pub fn cairn_job(out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["job", "--dir"])
        .arg(out)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("cairn job")
}

/// The standard output of a command that must have succeeded.
pub fn ok(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    text
}

/// The standard error of a command that must have failed.
pub fn refused(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The shared transaction export and its labels, or `None` (with a message) when absent.
pub fn account_txs() -> Option<(PathBuf, PathBuf)> {
    let [txs, labels] = shared_files([default_account_txs(), default_account_labels()])?;
    Some((txs, labels))
}

/// The shared fraud table, or `None` (with a message) when absent.
pub fn fraud_csv() -> Option<PathBuf> {
    let [path] = shared_files([default_fraud_csv()])?;
    Some(path)
}

/// A coordinator serving jobs from `out` (with `--data-root root` when given), once it
/// waits for jobs: the process, its address and its fingerprint.
pub fn serving_coordinator(
    out: &Path,
    root: Option<&Path>,
    limit: Duration,
) -> (Proc, String, String) {
    let mut c = cairn();
    c.args(["coordinator", "--serve", "--listen", "127.0.0.1:0", "--out"])
        .arg(out);
    if let Some(root) = root {
        c.arg("--data-root").arg(root);
    }
    let mut coord = Proc::spawn(c);
    let (addr, fp) = coord.address(limit);
    coord.wait_for(limit, |l| l.starts_with("waiting for jobs"));
    (coord, addr, fp)
}

/// A holder serving job after job on the CPU with its own `data` file (and `extra` flags).
pub fn serving_holder(addr: &str, fp: &str, name: &str, data: &Path, extra: &[&str]) -> Proc {
    let mut c = cairn();
    c.args(["participant", "--coordinator", addr, "--fingerprint", fp])
        .args(["--device", "cpu", "--serve", "--name", name])
        .arg("--data")
        .arg(data)
        .args(extra);
    Proc::spawn(c)
}

/// A seeded stream of uniform numbers in [0, 1) (a 64-bit LCG's high bits): the tests'
/// generated tables, the same on every run.
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64) / f64::from(1u32 << 31)
    }
}

/// `cairn predict --model MODEL --data DATA EXTRA…`, run to its end.
pub fn predict_output(model: &Path, data: &Path, extra: &[&str]) -> Output {
    cairn()
        .args(["predict", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("cairn predict")
}

/// What `cairn predict` wrote: its CSV (from standard output, or from the file `--out`
/// named) and its standard error (the metrics, when the rows have labels).
pub struct Predicted {
    /// The CSV's header cells: `row,score[,label]` or `row,predicted,p_…[,label]`.
    pub header: Vec<String>,
    /// Each row's cells.
    pub rows: Vec<Vec<String>>,
    /// Its standard error.
    pub stderr: String,
}

impl Predicted {
    /// The probabilities, row by row: class 1's for a binary model (`score`), every class's
    /// for a softmax one (`p_…`).
    pub fn probabilities(&self) -> Vec<f64> {
        let columns: Vec<usize> = (0..self.header.len())
            .filter(|&i| self.header[i] == "score" || self.header[i].starts_with("p_"))
            .collect();
        self.rows
            .iter()
            .flat_map(|cells| {
                columns
                    .iter()
                    .map(|&i| cells[i].parse::<f64>().expect("a probability"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// `cairn predict --model MODEL --data DATA EXTRA…`, which must succeed: its CSV, parsed.
pub fn predict(model: &Path, data: &Path, extra: &[&str]) -> Predicted {
    let o = predict_output(model, data, extra);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    let csv = match extra.iter().position(|a| *a == "--out") {
        Some(i) => std::fs::read_to_string(extra[i + 1]).expect("cairn predict's --out file"),
        None => String::from_utf8_lossy(&o.stdout).into_owned(),
    };
    let mut lines = csv
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect());
    let header = lines.next().expect("a header");
    Predicted {
        header,
        rows: lines.collect(),
        stderr,
    }
}

/// `cairn coordinator --job JOB --out OUT --listen LISTEN` (a single-job coordinator that
/// keeps its state in OUT and resumes it when started again), once it listens: the process,
/// its address and fingerprint.
pub fn job_coordinator(
    job: &Path,
    out: &Path,
    listen: &str,
    limit: Duration,
) -> (Proc, String, String) {
    let mut c = cairn();
    c.args(["coordinator", "--listen", listen, "--job"])
        .arg(job)
        .arg("--out")
        .arg(out);
    let mut p = Proc::spawn(c);
    let (addr, fp) = p.address(limit);
    (p, addr, fp)
}

/// Holder `i` of 3 on the synthetic table, reconnecting (for 60 s) to a restarted
/// coordinator.
pub fn reconnecting_holder(addr: &str, fp: &str, i: usize) -> Proc {
    let mut c = cairn();
    c.args(["participant", "--coordinator", addr, "--fingerprint", fp])
        .args(["--device", "cpu", "--synthetic", "--reconnect", "60"])
        .args(["--holder", &i.to_string(), "--of", "3"]);
    Proc::spawn(c)
}

/// The round number in a coordinator's `round started` / `round completed` log line.
pub fn round_of(line: &str) -> u32 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("round="))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no round in {line:?}"))
}

/// Once `coord` completed round `after`, stops `holder` (SIGSTOP), so the next round stays
/// in flight, and returns the last round the coordinator started (the one in flight).
pub fn stall_after_round(coord: &mut Proc, holder: &Proc, after: u32, limit: Duration) -> u32 {
    coord.wait_for(limit, |l| {
        l.contains("round completed") && round_of(l) == after
    });
    holder.signal("STOP");
    std::thread::sleep(Duration::from_secs(2));
    coord
        .drain()
        .iter()
        .filter(|l| l.contains("round started"))
        .map(|l| round_of(l))
        .max()
        .expect("a round started")
}

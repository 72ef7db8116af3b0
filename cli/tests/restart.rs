//! A coordinator process killed (SIGKILL) in each phase of a job restarts from its store and
//! finishes the job with the same participant processes: killed while the holders join,
//! with a round in flight, and just as a round is being recorded. Afterwards the store
//! holds every round number once — completed, or abandoned by the kill with nothing
//! applied — and the job's completed rounds are the ones the holders trained.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_coordinator::store::{JobState, RoundOutcome, Store};
use cairn_coordinator::RoundRecord;

mod common;
use common::{cairn, job_coordinator, reconnecting_holder, round_of, stall_after_round, Proc};

const LIMIT: Duration = Duration::from_secs(120);
/// Enough rounds (each takes milliseconds) that the test acts before the job ends.
const ROUNDS: u32 = 20;

fn job_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("job.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"restart\"\nrounds = {ROUNDS}\n[data]\nsynthetic = true\n[model]\nhidden = []\n\
             [participants]\nper_round = 3\nmin = 3\n[train]\nsteps = 2\nbatch = 8\n\
             [server]\noptimizer = \"fedadam\"\n\
             [deadlines]\nround_timeout_secs = 90\njoin_timeout_secs = 120\n"
        ),
    )
    .expect("job file");
    path
}

/// The restarted coordinator's report of where it resumed, with the seconds it took.
fn resumed(p: &mut Proc) -> (String, f64) {
    let line = p.wait_for(LIMIT, |l| l.starts_with("resumed job "));
    let secs = line
        .split(" s after")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    eprintln!("{line}");
    (line, secs)
}

/// What the store holds once the job has ended: each round's number and outcome.
fn recorded(out: &Path) -> Vec<(u32, RoundOutcome, Option<RoundRecord>)> {
    let store = Store::open(out.join("cairn.redb")).expect("store");
    let jobs = store.jobs().expect("jobs");
    assert_eq!(jobs.len(), 1, "one job, resumed, not submitted again");
    assert_eq!(jobs[0].state, JobState::Finished, "{:?}", jobs[0]);
    let rounds = store.rounds::<RoundRecord>(jobs[0].id).expect("rounds");
    for r in &rounds {
        if r.outcome == RoundOutcome::Completed {
            assert!(
                store.model(jobs[0].id, r.round).expect("model").is_some(),
                "round {} has its model",
                r.round
            );
        }
    }
    rounds
        .into_iter()
        .map(|r| (r.round, r.outcome, r.record))
        .collect()
}

/// Every round number recorded once, in order: ROUNDS completed ones (with all three
/// holders) and the abandoned ones, whose numbers the job made up for.
fn check_rounds(rounds: &[(u32, RoundOutcome, Option<RoundRecord>)], abandoned: &[u32]) {
    let numbers: Vec<u32> = rounds.iter().map(|r| r.0).collect();
    let last = ROUNDS + abandoned.len() as u32;
    assert_eq!(numbers, (1..=last).collect::<Vec<_>>(), "{rounds:?}");
    for (n, outcome, rec) in rounds {
        if abandoned.contains(n) {
            assert_eq!(*outcome, RoundOutcome::Abandoned, "round {n}");
            assert!(rec.is_none());
        } else {
            assert_eq!(*outcome, RoundOutcome::Completed, "round {n}");
            assert_eq!(rec.as_ref().map(|r| r.contributors), Some(3), "round {n}");
        }
    }
}

#[test]
fn a_coordinator_killed_while_holders_join_and_mid_round_resumes_and_finishes_the_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (job, out) = (job_file(dir.path()), dir.path().join("out"));
    let (mut coord, addr, fp) = job_coordinator(&job, &out, "127.0.0.1:0", LIMIT);

    // Phase 1: two of the three holders have joined; the job waits for the third.
    let mut p0 = reconnecting_holder(&addr, &fp, 0);
    let mut p1 = reconnecting_holder(&addr, &fp, 1);
    for _ in 0..2 {
        coord.wait_for(LIMIT, |l| l.contains("participant joined"));
    }
    coord.signal("KILL");
    coord.wait(LIMIT);
    let (mut coord, addr2, fp2) = job_coordinator(&job, &out, &addr, LIMIT);
    assert_eq!((&addr2, &fp2), (&addr, &fp), "same address, same identity");
    let (line, secs) = resumed(&mut coord);
    assert!(line.contains("at round 1 (0 completed)"), "{line}");
    assert!(secs < 30.0, "{line}");

    // Phase 2: the third holder joins; after round 2 it stops answering, so the next
    // round stays in flight; the coordinator is killed then.
    let p2 = reconnecting_holder(&addr, &fp, 2);
    let in_flight = stall_after_round(&mut coord, &p2, 2, LIMIT);
    assert!(
        !coord
            .seen
            .iter()
            .any(|l| l.contains("round completed") && round_of(l) == in_flight),
        "round {in_flight} cannot complete while a holder is stopped"
    );
    coord.signal("KILL");
    coord.wait(LIMIT);
    let (mut coord, _, _) = job_coordinator(&job, &out, &addr, LIMIT);
    let (line, _) = resumed(&mut coord);
    assert!(
        line.contains(&format!(
            "at round {} ({} completed; round {in_flight} was in flight and is abandoned)",
            in_flight + 1,
            in_flight - 1
        )),
        "{line}"
    );
    p2.signal("CONT");

    // The job finishes with the same three holder processes.
    let status = coord.wait(LIMIT);
    assert!(status.success(), "{}", coord.seen.join("\n"));
    for p in [&mut p0, &mut p1] {
        assert!(p.wait(LIMIT).success(), "{}", p.seen.join("\n"));
    }
    let rounds = recorded(&out);
    check_rounds(&rounds, &[in_flight]);
    assert!(coord
        .seen
        .iter()
        .any(|l| l.starts_with(&format!("job complete: {ROUNDS} rounds (job 1)"))));
    // The job's files were written by the coordinator that finished it.
    assert!(out.join("model.safetensors").exists());
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).expect("metrics"))
            .expect("json");
    assert_eq!(
        metrics.as_array().map(Vec::len),
        Some(ROUNDS as usize),
        "every recorded round's record, across both coordinators"
    );
}

#[test]
fn a_coordinator_killed_as_a_round_is_recorded_applies_no_round_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (job, out) = (job_file(dir.path()), dir.path().join("out"));
    let (mut coord, addr, fp) = job_coordinator(&job, &out, "127.0.0.1:0", LIMIT);
    let mut holders: Vec<Proc> = (0..3).map(|i| reconnecting_holder(&addr, &fp, i)).collect();
    // The log line comes just before the round's transaction: the kill lands before,
    // during or after the commit.
    coord.wait_for(LIMIT, |l| l.contains("round completed") && round_of(l) == 2);
    coord.signal("KILL");
    coord.wait(LIMIT);
    let (mut coord, _, _) = job_coordinator(&job, &out, &addr, LIMIT);
    let (line, _) = resumed(&mut coord);
    assert!(coord.wait(LIMIT).success(), "{}", coord.seen.join("\n"));
    for p in &mut holders {
        assert!(p.wait(LIMIT).success(), "{}", p.seen.join("\n"));
    }
    let rounds = recorded(&out);
    // Whatever the kill interrupted is either wholly recorded or abandoned: never twice,
    // never half. Rounds after it (and before round 2) completed.
    let abandoned: Vec<u32> = rounds
        .iter()
        .filter(|r| r.1 == RoundOutcome::Abandoned)
        .map(|r| r.0)
        .collect();
    assert!(abandoned.len() <= 1, "{rounds:?}");
    assert!(abandoned.iter().all(|&r| r >= 2), "{rounds:?}");
    check_rounds(&rounds, &abandoned);
    let resumed_at: u32 = line["resumed job 1 at round ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("round");
    assert!(resumed_at >= 3, "{line}");
}

#[test]
fn a_finished_job_is_not_resumed_and_its_restart_runs_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (job, out) = (job_file(dir.path()), dir.path().join("out"));
    let (mut coord, addr, fp) = job_coordinator(&job, &out, "127.0.0.1:0", LIMIT);
    let mut holders: Vec<Proc> = (0..3).map(|i| reconnecting_holder(&addr, &fp, i)).collect();
    assert!(coord.wait(LIMIT).success(), "{}", coord.seen.join("\n"));
    for p in &mut holders {
        assert!(p.wait(LIMIT).success());
    }
    check_rounds(&recorded(&out), &[]);
    // Started again with `--serve` and no job: nothing is resumed or run; the admin
    // interface answers for the finished job.
    let mut c = cairn();
    c.args(["coordinator", "--serve", "--listen", "127.0.0.1:0", "--out"])
        .arg(&out);
    let mut coord = Proc::spawn(c);
    coord.wait_for(LIMIT, |l| l.starts_with("waiting for jobs"));
    assert!(!coord.seen.iter().any(|l| l.starts_with("resumed")));
    let o = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["job", "--dir"])
        .arg(&out)
        .args(["status", "1"])
        .output()
        .expect("cairn job status");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("job 1 (restart): finished"), "{text}");
    assert!(
        text.contains(&format!("rounds: {ROUNDS} completed")),
        "{text}"
    );
}

/// A small learnable table (`y` is 1 when `a − b` is large), `scale` stretching `a`.
fn table(path: &Path, scale: f64) {
    let mut s: u64 = 17;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64) / f64::from(1u32 << 31)
    };
    let mut text = String::from("a,b,c,y\n");
    for _ in 0..600 {
        let (a, b, c) = (next(), next(), next());
        let y = u8::from(a - b + 0.2 * (c - 0.5) > 0.0);
        text.push_str(&format!("{:.5},{b:.5},{c:.5},{y}\n", a * scale));
    }
    std::fs::write(path, text).expect("write the table");
}

/// The job's spec was fitted on its data file when it started, and its holders prepared
/// their tables with it: a coordinator restarted on a data file that changed meanwhile
/// refuses to resume (failing the job, saying why) instead of offering the holders other
/// data, which they refuse, or training on it.
#[test]
fn a_job_whose_data_changed_while_its_coordinator_was_down_is_not_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, holder_data) = (dir.path().join("eval.csv"), dir.path().join("own.csv"));
    table(&data, 1.0);
    table(&holder_data, 1.0);
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"changed\"\nrounds = {ROUNDS}\n[data]\npath = {:?}\nlabel = \"y\"\n\
             [model]\nhidden = []\n[participants]\nper_round = 3\nmin = 3\n\
             [train]\nsteps = 2\nbatch = 8\n\
             [deadlines]\nround_timeout_secs = 90\njoin_timeout_secs = 120\n",
            data.to_str().expect("utf-8")
        ),
    )
    .expect("job file");
    let out = dir.path().join("out");
    let (mut coord, addr, fp) = job_coordinator(&job, &out, "127.0.0.1:0", LIMIT);
    let _holders: Vec<Proc> = (0..3)
        .map(|i| {
            let mut c = cairn();
            c.args(["participant", "--coordinator", &addr, "--fingerprint", &fp])
                .args(["--device", "cpu", "--reconnect", "60", "--data"])
                .arg(&holder_data)
                .args(["--holder", &i.to_string(), "--of", "3"]);
            Proc::spawn(c)
        })
        .collect();
    coord.wait_for(LIMIT, |l| l.contains("round completed") && round_of(l) == 2);
    coord.signal("KILL");
    coord.wait(LIMIT);
    // The coordinator's table changes: column `a` ten times wider (another mean and sd).
    table(&data, 10.0);
    let (mut coord, _, _) = job_coordinator(&job, &out, &addr, LIMIT);
    let why = coord.wait_for(LIMIT, |l| l.contains("cannot resume"));
    assert!(why.contains("data file changed"), "{why}");
    assert!(!coord.seen.iter().any(|l| l.starts_with("resumed job")));
    coord.signal("KILL");
    coord.wait(LIMIT);
    let store = Store::open(out.join("cairn.redb")).expect("store");
    let jobs = store.jobs().expect("jobs");
    assert!(
        matches!(&jobs[0].state, JobState::Failed(r) if r.contains("data file changed")),
        "{:?}",
        jobs[0].state
    );
}

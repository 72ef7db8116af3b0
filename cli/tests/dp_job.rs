//! A job with distributed differential privacy through the real CLI (#16 item 2): a
//! coordinator serving jobs and four holders, each a `cairn` process on loopback QUIC, run
//! a secure job with `[privacy] epsilon`; every round's record carries the job's ε after
//! it — the accountant's own number for the job file's settings — and `cairn job watch`,
//! `cairn job status`, the status page, `metrics.json` and the job's report show (ε, δ).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_coordinator::admin::{JobReport, JobStatus};
use cairn_coordinator::job_file::JobFile;
use cairn_coordinator::RoundRecord;
use cairn_protocol::privacy::DpSettings;

mod common;
use common::{
    cairn_job, job_coordinator, ok, reconnecting_holder, serving_coordinator, serving_holder,
    stall_after_round, uniform, Proc,
};

const LIMIT: Duration = Duration::from_secs(60);
const HOLDERS: usize = 4;

/// A learnable table: `y` is 1 when `a − b/2 + c/4` is large, with label noise.
fn table(path: &Path, rows: usize, seed: u64) {
    let mut next = uniform(seed);
    let mut text = String::from("a,b,c,y\n");
    for _ in 0..rows {
        let (a, b, c) = (next(), next(), next());
        let y = u8::from(a - 0.5 * b + 0.25 * c + 0.2 * (next() - 0.5) > 0.4);
        let _ = writeln!(text, "{a:.5},{b:.5},{c:.5},{y}");
    }
    std::fs::write(path, text).expect("write the table");
}

/// A secure job of `rounds` rounds over the four holders, with `privacy` as its
/// `[privacy]` section.
fn job_file(eval: &Path, name: &str, rounds: u32, privacy: &str) -> String {
    format!(
        "name = \"{name}\"\nrounds = {rounds}\n[data]\npath = {:?}\nlabel = \"y\"\n\
         [model]\nhidden = []\n[participants]\nper_round = {HOLDERS}\nmin = 3\n\
         [train]\nsteps = 5\nbatch = 16\nlr = 0.5\nclip = 1.0\n\
         [aggregation]\nmode = \"secure\"\n\
         [deadlines]\nround_timeout_secs = 30\njoin_timeout_secs = 30\n\
         [privacy]\n{privacy}\n",
        eval.to_str().expect("utf-8")
    )
}

/// The DP settings the coordinator derives from `text` for the job `status` ran (its id
/// and model as the plan records them), recomputed here from the job file.
fn settings_of(text: &str, status: &JobStatus) -> DpSettings {
    let plan = status.plan.as_ref().expect("the job's plan");
    let file = JobFile::from_toml(text).expect("the job file parses");
    let resolved = file
        .to_config(&plan.job_id, plan.model.n_features, plan.model.classes())
        .expect("the job file resolves");
    resolved.config.privacy.expect("a DP job")
}

/// The admin status page of the coordinator serving from `out` (its address and token
/// from the files it wrote there).
fn status_page(out: &Path) -> String {
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("coordinator.json")).expect("coordinator.json"),
    )
    .expect("json");
    let admin = info["admin"].as_str().expect("the admin address");
    let token_file = info["token_file"].as_str().expect("the token file");
    let token = std::fs::read_to_string(token_file).expect("the token");
    let mut resp = ureq::get(admin)
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .expect("the status page");
    resp.body_mut().read_to_string().expect("its text")
}

#[test]
fn a_dp_job_reports_epsilon_after_each_round_everywhere() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    std::fs::create_dir_all(&root).expect("data root");
    let eval = root.join("eval.csv");
    table(&eval, 400, 1);
    let out = dir.path().join("out");
    let (_coord, addr, fp) = serving_coordinator(&out, Some(&root), LIMIT);
    let _holders: Vec<Proc> = (0..HOLDERS)
        .map(|i| {
            let path = dir.path().join(format!("holder{i}.csv"));
            table(&path, 300, 10 + i as u64);
            serving_holder(&addr, &fp, &format!("holder{i}"), &path, &[])
        })
        .collect();

    let text = job_file(&eval, "dp", 3, "epsilon = 8.0\ndelta = 1e-5");
    let path = dir.path().join("dp.toml");
    std::fs::write(&path, &text).expect("job file");
    let s = ok(&cairn_job(&out, &["submit", path.to_str().expect("utf-8")]));
    assert!(s.contains("submitted job 1"), "{s}");

    // `cairn job watch`: the table has an ε column, and the job's (ε, δ) closes it.
    let w = ok(&cairn_job(&out, &["watch", "1", "--every", "0.2"]));
    assert!(w.contains("job 1 finished"), "{w}");
    let header = w
        .lines()
        .find(|l| l.starts_with("round "))
        .unwrap_or_else(|| panic!("a header: {w}"));
    assert!(header.ends_with("  epsilon"), "{w}");
    assert!(w.contains("privacy spent: (ε, δ) = ("), "{w}");
    assert!(
        !w.contains("NaN"),
        "an unreleased train loss is a dash: {w}"
    );

    // Each round's record: the accountant's ε for the job file's settings after that
    // many rounds, increasing, within the budget.
    let pulled = dir.path().join("pulled");
    ok(&cairn_job(
        &out,
        &["pull", "1", "--dest", pulled.to_str().expect("utf-8")],
    ));
    let status: JobStatus =
        serde_json::from_slice(&std::fs::read(pulled.join("status.json")).expect("status.json"))
            .expect("a job status");
    let dp = settings_of(&text, &status);
    assert_eq!(
        status
            .plan
            .as_ref()
            .and_then(|p| p.settings.as_ref())
            .and_then(|s| s.privacy.as_ref())
            .map(|p| p.dp),
        Some(dp),
        "the plan holds the job file's DP settings"
    );
    let records: Vec<&RoundRecord> = status
        .rounds
        .iter()
        .filter_map(|r| r.record.as_ref())
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    let mut last = 0.0;
    for r in &records {
        let want = dp.epsilon_after(r.round).expect("ε");
        let got = r.epsilon.expect("a DP round's ε");
        assert_eq!(got, want, "round {}", r.round);
        assert!(got > last && got <= 8.0, "ε {got} after {last}");
        assert!(r.train_loss.is_nan(), "a holder's loss is not released");
        last = got;
    }
    let spent = status.privacy_spent().expect("a DP job's (ε, δ)");
    assert_eq!((spent.epsilon, spent.delta, spent.rounds), (last, 1e-5, 3));

    // metrics.json (the service's, in OUT) keeps its keys and adds ε.
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).expect("metrics.json"))
            .expect("json");
    let rounds = metrics.as_array().expect("a list of rounds");
    assert_eq!(rounds.len(), 3);
    for (r, rec) in rounds.iter().zip(&records) {
        assert_eq!(r["epsilon"].as_f64(), rec.epsilon, "{r}");
        assert!(r["train_loss"].is_null(), "{r}");
        for key in ["round", "contributors", "test", "seconds", "failure"] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
    }

    // The report: the final model's (ε, δ).
    let report: JobReport =
        serde_json::from_slice(&std::fs::read(pulled.join("report.json")).expect("report.json"))
            .expect("a report");
    let p = report.privacy.expect("the report's (ε, δ)");
    assert_eq!(
        (p.epsilon, p.delta, p.rounds, p.budget),
        (last, 1e-5, 3, Some(8.0))
    );

    // `cairn job status` and the status page.
    let st = ok(&cairn_job(&out, &["status", "1"]));
    assert!(
        st.contains(&format!("(ε, δ) = ({last:.3}, 1e-5) after 3 rounds")),
        "{st}"
    );
    let page = status_page(&out);
    assert!(page.contains("privacy (ε, δ)"), "{page}");
    assert!(
        page.contains(&format!("({last:.3}, 1e-5) after 3 rounds")),
        "{page}"
    );
    assert!(
        page.contains(&format!("<td class=\"n\">{last:.3}</td>")),
        "{page}"
    );
    assert!(t0.elapsed() < LIMIT, "took {:?}", t0.elapsed());
}

/// The job file's budget is ε after all its rounds, so only rounds it did not plan for can
/// pass it: a round abandoned by a coordinator's restart is made up for, yet it may have
/// released its sum, so it counts. A 4-round job that lost a round to a restart stops
/// before its fifth round number, and says why.
#[test]
fn a_round_abandoned_by_a_restart_counts_and_the_budget_stops_the_job() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "name = \"dp-budget\"\nrounds = 4\n[data]\nsynthetic = true\n[model]\nhidden = []\n\
                [participants]\nper_round = 3\nmin = 3\n[train]\nsteps = 2\nbatch = 8\nclip = 1.0\n\
                [aggregation]\nmode = \"secure\"\n\
                [deadlines]\nround_timeout_secs = 90\njoin_timeout_secs = 60\n\
                [privacy]\nepsilon = 4.0\ndelta = 1e-5\n";
    let job = dir.path().join("job.toml");
    std::fs::write(&job, text).expect("job file");
    let out = dir.path().join("out");
    let (mut coord, addr, fp) = job_coordinator(&job, &out, "127.0.0.1:0", LIMIT);
    let _p0 = reconnecting_holder(&addr, &fp, 0);
    let _p1 = reconnecting_holder(&addr, &fp, 1);
    let p2 = reconnecting_holder(&addr, &fp, 2);

    // After round 2 one holder stops answering, so the next round stays in flight; the
    // coordinator is killed then, and its successor abandons that round.
    let in_flight = stall_after_round(&mut coord, &p2, 2, LIMIT);
    coord.signal("KILL");
    coord.wait(LIMIT);
    let (mut coord, _, _) = job_coordinator(&job, &out, &addr, LIMIT);
    coord.wait_for(LIMIT, |l| l.starts_with("resumed job "));
    p2.signal("CONT");

    // Rounds 1 to 4 are spent (one of them abandoned); the fifth would pass the budget.
    let stopped = coord.wait_for(LIMIT, |l| {
        l.contains("stopped after") && l.contains("privacy budget spent")
    });
    assert!(
        stopped.contains("stopped after 3 rounds") && stopped.contains("round 5 would take ε"),
        "{stopped}"
    );
    coord.wait(LIMIT);
    let spent = coord
        .seen
        .iter()
        .find(|l| l.contains("privacy spent: (ε, δ) = ("))
        .unwrap_or_else(|| panic!("the job's (ε, δ): {}", coord.seen.join("\n")))
        .clone();
    assert!(spent.contains("after 4 rounds (budget ε = 4)"), "{spent}");

    // The records: ε after each round number, the abandoned one counted.
    let store = cairn_coordinator::store::Store::open(out.join("cairn.redb")).expect("the store");
    let jobs = store.jobs().expect("jobs");
    let rounds = store
        .rounds::<RoundRecord>(jobs[0].id)
        .expect("the job's rounds");
    let numbers: Vec<u32> = rounds.iter().map(|r| r.round).collect();
    assert_eq!(numbers, [1, 2, 3, 4], "{rounds:?}");
    let plan: cairn_coordinator::admin::JobPlan = serde_json::from_slice(
        &store
            .artifact(jobs[0].id, cairn_coordinator::admin::PLAN)
            .expect("read")
            .expect("the job's plan"),
    )
    .expect("a plan");
    let dp = JobFile::from_toml(text)
        .expect("parses")
        .to_config(&plan.job_id, plan.model.n_features, plan.model.classes())
        .expect("resolves")
        .config
        .privacy
        .expect("a DP job");
    for r in &rounds {
        match &r.record {
            None => assert_eq!(r.round, in_flight, "only the round in flight is abandoned"),
            Some(rec) => {
                let want = dp.epsilon_after(r.round).expect("ε");
                assert_eq!(rec.epsilon, Some(want), "round {}", r.round);
                assert!(want <= 4.0);
            }
        }
    }
    assert!(t0.elapsed() < LIMIT, "took {:?}", t0.elapsed());
}

/// `examples/dp-job.toml` is a valid DP job whose rounds stay within its (ε, δ).
#[test]
fn the_example_dp_job_file_resolves_within_its_budget() {
    let text = include_str!("../../examples/dp-job.toml");
    let file = JobFile::from_toml(text).expect("examples/dp-job.toml parses");
    let job = file
        .to_config("example", 24, 2)
        .expect("examples/dp-job.toml resolves");
    let dp = job.config.privacy.expect("a DP job");
    assert_eq!((dp.delta, dp.budget), (1e-5, Some(8.0)));
    let eps = dp.epsilon_after(job.config.rounds).expect("ε");
    assert!(eps <= 8.0 && eps > 7.0, "ε {eps} after all rounds");
    assert_eq!(job.config.proof, None);
    // With its proofs switched on, the same job proves its noise: the proof settings carry
    // the job's mechanism, on a grid the circuit checks, and the circuit can be built.
    let proven = text.replace("enabled = false", "enabled = true");
    let job = JobFile::from_toml(&proven)
        .expect("parses")
        .to_config("example", 24, 2)
        .expect("the proven DP example resolves");
    let dp = job.config.privacy.expect("a DP job");
    let spec = job.config.proof.expect("proven");
    assert_eq!(spec.noise, Some(dp.params));
    let shape = cairn_proofs::rounds::shape(&job.config.model, &job.config.hyper, &spec)
        .expect("a circuit");
    assert!(shape.noise.is_some());
    let eps = dp.epsilon_after(job.config.rounds).expect("ε");
    assert!(eps <= 8.0 && eps > 7.0, "ε {eps} after all rounds");
}

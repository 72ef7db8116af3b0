//! The coordinator's service. In-process: [`serve`] on loopback with its store in a temporary
//! directory and three holders as tasks (the `cairn participant --serve` code), driven
//! through the admin interface with `cairn job`'s client: jobs queue and run one after
//! another with the same holders, bad job files are refused field by field, a job no one
//! can fill is cancelled while it waits, results and reports are pulled, and a stopped
//! service parks its job for the next to resume. Every wait ends on the service's own
//! events, within a bound. One test runs `cairn coordinator --serve` as a process: it
//! starts, answers, and stops cleanly on SIGTERM.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_cli::jobs::{self, Admin, JobArgs, JobCommand};
use cairn_cli::nodes::ParticipantArgs;
use cairn_cli::service::{self, serve, Event, JobEnd, Served, Settings, STORE_FILE};
use cairn_coordinator::admin::{Cancelled, JobStatus, Submitted};
use cairn_coordinator::export::from_safetensors;
use cairn_coordinator::store::{JobId, JobInfo, JobState, Store};
use cairn_coordinator::Progress;
use cairn_protocol::model::ModelSpec;
use cairn_protocol::transport::{server_endpoint, Enrolment, ServerIdentity};
use clap::Parser;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

mod common;
use common::{cairn, cairn_job, ok, refused, Proc};

const LIMIT: Duration = Duration::from_secs(120);

/// A job file on the synthetic table.
fn job(name: &str, optimizer: &str, per_round: usize, rounds: u32) -> String {
    format!(
        "name = \"{name}\"\nrounds = {rounds}\n[data]\nsynthetic = true\n[model]\nhidden = [4]\n\
         [participants]\nper_round = {per_round}\nmin = 2\n[train]\nsteps = 3\nbatch = 16\n\
         [server]\noptimizer = \"{optimizer}\"\n\
         [deadlines]\nround_timeout_secs = 60\njoin_timeout_secs = 300\n"
    )
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A service [`serve`]s in-process on loopback, with `cairn job`'s admin client and its
/// events.
struct Serving {
    rt: Handle,
    admin: Admin,
    admin_addr: SocketAddr,
    addr: SocketAddr,
    fingerprint: String,
    events: mpsc::UnboundedReceiver<Event>,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<anyhow::Result<Served>>,
}

impl Serving {
    /// Serves `store` with `identity` (its files in `out`, submitted data under
    /// `out/root`), until the queue is empty unless `wait_for_jobs`, or until stopped.
    fn start(
        rt: &Handle,
        out: &Path,
        store: Store,
        identity: ServerIdentity,
        wait_for_jobs: bool,
    ) -> Self {
        let _entered = rt.enter();
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let endpoint =
            server_endpoint(loopback, &identity, &Enrolment::Open).expect("a QUIC endpoint");
        let addr = endpoint.local_addr().expect("its address");
        let listener = rt
            .block_on(cairn_coordinator::admin::bind(loopback))
            .expect("an admin listener");
        let admin_addr = listener.local_addr().expect("its address");
        let token = service::load_or_create_token(out).expect("a token");
        let (tx, events) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let fingerprint = identity.fingerprint.clone();
        let settings = Settings {
            identity,
            token,
            out: out.to_path_buf(),
            keys: out.join("keys"),
            data_root: out.join("root"),
            wait_for_jobs,
            started: Instant::now(),
            events: Some(tx),
        };
        let served = rt.spawn(serve(endpoint, listener, store, settings, async move {
            let _ = stopped.await;
        }));
        let admin = admin_client(out, admin_addr, &out.join(service::TOKEN_FILE));
        Self {
            rt: rt.clone(),
            admin,
            admin_addr,
            addr,
            fingerprint,
            events,
            stop: Some(stop),
            served,
        }
    }

    /// The first event (from now) that `pick` takes; fails the test after [`LIMIT`].
    fn until<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let events = &mut self.events;
        let next = async {
            loop {
                match events.recv().await {
                    Some(e) => {
                        if let Some(t) = pick(&e) {
                            return t;
                        }
                    }
                    None => panic!("the service stopped before {what}"),
                }
            }
        };
        // The timer is made inside the runtime.
        self.rt
            .block_on(async { tokio::time::timeout(LIMIT, next).await })
            .unwrap_or_else(|_| panic!("no {what} within {LIMIT:?}"))
    }

    /// The next job whose run ends, and how.
    fn next_end(&mut self) -> (JobId, JobEnd) {
        self.until("job's end", |e| match e {
            Event::Ended { job, end } => Some((*job, end.clone())),
            _ => None,
        })
    }

    /// Submits a job file; its id.
    fn submit(&self, text: &str) -> Submitted {
        let answer = self.admin.post("/api/jobs", text).expect("submitted");
        serde_json::from_slice(&answer).expect("a submission")
    }

    /// The admin interface's refusal of a job file.
    fn refused(&self, text: &str) -> String {
        match self.admin.post("/api/jobs", text) {
            Ok(b) => panic!("accepted: {}", String::from_utf8_lossy(&b)),
            Err(e) => format!("{e:#}"),
        }
    }

    fn status(&self, id: JobId) -> JobStatus {
        self.admin
            .get_json(&format!("/api/jobs/{id}"))
            .expect("a status")
    }

    /// Resolves its shutdown; how it returned.
    fn stop(mut self) -> Served {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.finished()
    }

    /// How it returned by itself (the queue ran empty), within [`LIMIT`].
    fn finished(self) -> Served {
        let served = self.served;
        self.rt
            .block_on(async { tokio::time::timeout(LIMIT, served).await })
            .expect("the service returns in time")
            .expect("the service task")
            .expect("the service")
    }
}

/// `cairn job`'s client for the admin interface at `addr`, with the token in `token_file`.
fn admin_client(dir: &Path, addr: SocketAddr, token_file: &Path) -> Admin {
    Admin::connect(&JobArgs {
        dir: dir.to_path_buf(),
        admin: Some(addr),
        token_file: Some(token_file.to_path_buf()),
        command: JobCommand::List,
    })
    .expect("an admin client")
}

#[derive(Parser)]
struct HolderCommand {
    #[command(flatten)]
    args: ParticipantArgs,
}

/// `n` holders of the synthetic table serving job after job (`cairn participant --serve`'s
/// code, as tasks).
fn holders(s: &Serving, n: usize) -> Vec<JoinHandle<anyhow::Result<()>>> {
    (0..n)
        .map(|i| {
            let (addr, i, n) = (s.addr.to_string(), i.to_string(), n.to_string());
            let HolderCommand { args } = HolderCommand::try_parse_from([
                "holder",
                "--coordinator",
                &addr,
                "--fingerprint",
                &s.fingerprint,
                "--device",
                "cpu",
                "--synthetic",
                "--serve",
                "--holder",
                &i,
                "--of",
                &n,
            ])
            .expect("holder arguments");
            s.rt.spawn(cairn_cli::nodes::participant(args))
        })
        .collect()
}

/// A directory with the store of a new service, its data root and its identity.
fn service_dir(dir: &Path) -> (PathBuf, Store, ServerIdentity) {
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("root")).expect("out");
    let store = Store::open(out.join(STORE_FILE)).expect("a store");
    (out, store, ServerIdentity::generate().expect("an identity"))
}

/// The identity keys of the holders a job's status lists.
fn holder_keys(st: &JobStatus) -> BTreeSet<String> {
    st.live
        .iter()
        .flat_map(|l| &l.holders)
        .filter_map(|h| h.identity.clone())
        .collect()
}

#[test]
fn jobs_queue_run_in_turn_with_the_same_holders_and_a_cancelled_one_leaves_them_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, store, identity) = service_dir(dir.path());
    let rt = runtime();
    let mut s = Serving::start(rt.handle(), &out, store, identity, true);
    s.until("wait for jobs", |e| {
        matches!(e, Event::Waiting).then_some(())
    });
    let holders = holders(&s, 3);

    // A bad job file is refused with each bad field named; nothing is queued.
    let e =
        s.refused("rounds = 0\n[train]\nlr = -1\n[server]\noptimizer = \"fedadam\"\nbeta1 = 2\n");
    for field in ["rounds", "train.lr", "server.beta1"] {
        assert!(e.contains(&format!("{field}:")), "{field} in {e}");
    }
    // So is one reading a table outside the service's data directory (#12 item 8).
    let table = dir.path().join("elsewhere.csv");
    std::fs::write(&table, "a,b,FLAG\n1,2,0\n3,4,1\n").expect("write");
    let e = s.refused(&format!(
        "[data]\npath = {:?}\n",
        table.to_str().expect("utf-8")
    ));
    assert!(
        e.contains("data.path:") && e.contains("outside the coordinator's data directory"),
        "{e}"
    );
    let list: Vec<JobInfo> = s.admin.get_json("/api/jobs").expect("a list");
    assert!(list.is_empty(), "{list:?}");

    // Two jobs, FedAdam then FedYogi: the second waits for the first.
    let adam = job("adam", "fedadam", 3, 3);
    let sub = s.submit(&adam);
    assert_eq!((sub.id, sub.name.as_str()), (1, "adam"));
    let sub = s.submit(&job("yogi", "fedyogi", 3, 4));
    assert_eq!((sub.id, sub.name.as_str(), sub.ahead), (2, "yogi", 1));
    assert_eq!(s.next_end(), (1, JobEnd::Finished));
    assert_eq!(s.next_end(), (2, JobEnd::Finished));
    let st = s.status(2);
    assert_eq!(st.info.state, JobState::Finished);
    assert_eq!((st.info.rounds_completed, st.rounds.len()), (4, 4));
    assert_eq!(st.plan.as_ref().map(|p| p.server.as_str()), Some("fedyogi"));

    // A job no one can fill (4 per round, 3 holders) is cancelled while it waits; the
    // holders are told and stay for the next job, which runs with them.
    let sub = s.submit(&job("toobig", "fedavg", 4, 3));
    assert_eq!(sub.id, 3);
    s.until("job 3's start", |e| {
        matches!(
            e,
            Event::Started {
                job: 3,
                resumed_at: None
            }
        )
        .then_some(())
    });
    for _ in 0..3 {
        s.until("a holder joining job 3", |e| {
            matches!(
                e,
                Event::Progress {
                    job: 3,
                    progress: Progress::Joined { .. }
                }
            )
            .then_some(())
        });
    }
    let c: Cancelled =
        serde_json::from_slice(&s.admin.post("/api/jobs/3/cancel", "").expect("cancelled"))
            .expect("json");
    assert_eq!(c.was, "running");
    assert_eq!(s.next_end(), (3, JobEnd::Cancelled));
    let e = s.admin.post("/api/jobs/3/cancel", "").expect_err("refused");
    assert!(format!("{e:#}").contains("cannot cancel"), "{e:#}");
    assert_eq!(s.submit(&job("again", "fedavg", 3, 2)).id, 4);
    assert_eq!(s.next_end(), (4, JobEnd::Finished));
    assert_eq!(s.status(3).info.state, JobState::Cancelled);

    // The same three holders served every job that ran.
    let keys = holder_keys(&s.status(1));
    assert_eq!(keys.len(), 3, "{keys:?}");
    for id in [2, 4] {
        assert_eq!(holder_keys(&s.status(id)), keys, "job {id}");
    }

    // Pull: the job file, metrics (JSON and CSV), the final and per-round models, the
    // report; plot: the two PNGs.
    let dest = dir.path().join("pulled");
    jobs::pull(&s.admin, 1, &dest).expect("pull");
    assert_eq!(
        std::fs::read_to_string(dest.join("job.toml")).expect("job.toml"),
        adam
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
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dest.join(f)).expect(f)).expect("json")
    };
    // The report evaluates the final model: the metrics round 3 recorded.
    let (report, metrics) = (json("report.json"), json("metrics.json"));
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
    jobs::plot(&s.admin, 1, &dest).expect("plot");
    for png in ["rounds.png", "roc.png"] {
        let bytes = std::fs::read(dest.join(png)).expect(png);
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }
    // The last job's files are in the service's directory.
    assert!(out.join("model.safetensors").is_file());

    // The admin interface wants the token.
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "0".repeat(64)).expect("write");
    let e = admin_client(&out, s.admin_addr, &wrong)
        .get("/api/jobs")
        .expect_err("refused");
    assert!(format!("{e:#}").contains("wrong admin token"), "{e:#}");

    let served = s.stop();
    assert!(served.shut_down);
    assert_eq!(
        served.ended,
        [
            (1, JobEnd::Finished),
            (2, JobEnd::Finished),
            (3, JobEnd::Cancelled),
            (4, JobEnd::Finished)
        ]
    );
    for h in holders {
        h.abort();
    }
    rt.shutdown_timeout(Duration::from_secs(5));
}

#[test]
fn a_stopped_service_parks_its_job_and_the_next_resumes_it_from_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, store, identity) = service_dir(dir.path());
    let same = identity.to_text();
    // Queued before the service starts, as `cairn coordinator --job` queues its job.
    let id = store
        .submit("resume", job("resume", "fedavg", 3, 6).as_bytes())
        .expect("queued");
    let rt = runtime();
    let mut s = Serving::start(rt.handle(), &out, store, identity, false);
    let first = holders(&s, 3);
    s.until("round 1", |e| match e {
        Event::Progress {
            job,
            progress: Progress::Round(r),
        } if *job == id && r.round == 1 => Some(()),
        _ => None,
    });
    let served = s.stop();
    assert!(served.shut_down);
    assert_eq!(served.ended, [(id, JobEnd::Parked)]);
    for h in first {
        h.abort();
    }

    // The job is still running in the store, which a new service opens and resumes.
    let store = Store::open(out.join(STORE_FILE)).expect("the store again");
    let info = store.job(id).expect("the job");
    assert_eq!(info.state, JobState::Running);
    let completed = info.rounds_completed;
    assert!((1..6).contains(&completed), "{info:?}");
    let identity = ServerIdentity::from_text(&same).expect("the same identity");
    let mut s = Serving::start(rt.handle(), &out, store, identity, false);
    let _second = holders(&s, 3);
    let at = s.until("the job resuming", |e| match e {
        Event::Started { job, resumed_at } if *job == id => Some(*resumed_at),
        _ => None,
    });
    assert!(
        at.is_some_and(|r| r > completed),
        "resumed at {at:?} after {completed} completed rounds"
    );
    // Without `wait_for_jobs` it returns once the queue is empty.
    let served = s.finished();
    assert!(!served.shut_down);
    assert_eq!(served.ended, [(id, JobEnd::Finished)]);
    let store = Store::open_read_only(out.join(STORE_FILE)).expect("the store");
    let info = store.job(id).expect("the job");
    assert_eq!((info.state, info.rounds_completed), (JobState::Finished, 6));
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).expect("metrics"))
            .expect("json");
    assert_eq!(metrics.as_array().map(Vec::len), Some(6), "{metrics}");
    rt.shutdown_timeout(Duration::from_secs(5));
}

/// `cairn coordinator --serve` as a process: it writes `coordinator.json`, answers `cairn
/// job`, and on SIGTERM stops cleanly, its running job parked in the store.
#[test]
fn cairn_coordinator_serve_answers_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let mut c = cairn();
    c.args(["coordinator", "--serve", "--listen", "127.0.0.1:0", "--out"])
        .arg(&out);
    let mut coord = Proc::spawn(c);
    let (addr, fp) = coord.address(LIMIT);
    coord.wait_for(LIMIT, |l| l.starts_with("waiting for jobs"));
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("coordinator.json")).expect("coordinator.json"),
    )
    .expect("json");
    assert_eq!(
        (info["address"].as_str(), info["fingerprint"].as_str()),
        (Some(addr.as_str()), Some(fp.as_str()))
    );

    let list = ok(&cairn_job(&out, &["list"]));
    assert!(list.contains("no jobs"), "{list}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "rounds = 0\n[train]\nlr = -1\n").expect("write");
    let e = refused(&cairn_job(&out, &["submit", bad.to_str().expect("path")]));
    for field in ["rounds", "train.lr"] {
        assert!(e.contains(&format!("  {field}:")), "{field} in {e}");
    }
    // No holder comes: the job starts and waits for them.
    let file = dir.path().join("adam.toml");
    std::fs::write(&file, job("adam", "fedadam", 3, 3)).expect("write");
    let s = ok(&cairn_job(&out, &["submit", file.to_str().expect("path")]));
    assert!(s.contains("submitted job 1 (adam)"), "{s}");
    coord.wait_for(LIMIT, |l| l.starts_with("started job 1"));

    // `cairn job status 1 | head -0`: the reader is gone before the first line is written.
    let mut piped = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["job", "--dir"])
        .arg(&out)
        .args(["status", "1"])
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

    coord.signal("TERM");
    let status = coord.wait(LIMIT);
    assert!(status.success(), "{status:?}: {}", coord.seen.join("\n"));
    for said in [
        "stopping with job 1 at 0 completed rounds",
        "stopped; an unfinished job resumes",
    ] {
        assert!(
            coord.seen.iter().any(|l| l.starts_with(said)),
            "{said}: {}",
            coord.seen.join("\n")
        );
    }
    let store = Store::open_read_only(out.join(STORE_FILE)).expect("the store");
    assert_eq!(store.job(1).expect("job 1").state, JobState::Running);
}

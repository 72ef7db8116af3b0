//! The coordinator as a durable service: it runs the jobs of its store one after another
//! (a queue), resumes a job a previous coordinator left running, and serves the admin
//! interface (job commands, status page) beside the QUIC endpoint the holders join.
//!
//! [`serve`] is the service itself, as a library function: a bound QUIC endpoint, a bound
//! admin listener, the store and a `shutdown` future in, and it returns when the queue is
//! empty or `shutdown` resolves (tests run it in-process on loopback). [`run`] is `cairn
//! coordinator`'s process around it: the files in `OUT/`, binding, and Ctrl-C / SIGTERM.
//!
//! Everything that outlives the process is in `OUT/`:
//!
//! | file | what |
//! |---|---|
//! | `cairn.redb` | the store: jobs, rounds, models, optimiser states, transcripts, reports |
//! | `coordinator.identity` | the TLS identity: a restarted coordinator keeps its fingerprint |
//! | `admin.token` | the admin interface's bearer token |
//! | `coordinator.json` | addresses, fingerprint and token file, for holders and scripts |
//!
//! A coordinator killed at any point restarts, finds the running job, records the round in
//! flight as abandoned (nothing of it applied) and goes on from the last completed round
//! with the holders that reconnect. When a job ends the service stores its report (final
//! metrics, the centralised baseline on the coordinator's training split, ROC points) and,
//! for a proven job, the audit of its transcript, and writes `model.safetensors`,
//! `metrics.json` and `transcript.cairn` to `OUT/`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use cairn_coordinator::admin::{self, AdminState, AuditSummary, JobPlan, JobReport, Refusal};
use cairn_coordinator::audit::audit;
use cairn_coordinator::export::write_safetensors;
use cairn_coordinator::job_file::{JobFile, JobFileError};
use cairn_coordinator::persist::Persist;
use cairn_coordinator::store::{JobId, JobState, Store, StoreError};
use cairn_coordinator::{
    run_job_with, CoordinatorError, JobSummary, Progress, RoundRecord, RunOptions, Stop,
};
use cairn_datasets::{DataSpec, Prepared};
use cairn_participant::trainer::{DeviceChoice, TchTrainer};
use cairn_proofs::rounds;
use cairn_proofs::verify::Verifier;
use cairn_protocol::job::{Job, JobConfig};
use cairn_protocol::transport::{self, server_config, server_endpoint, Enrolment, ServerIdentity};
use rand::RngCore;
use tokio::sync::{mpsc, watch};

use crate::evaluation::job_report;
use crate::federate::Proving;
use crate::options::DataArgs;
use crate::ui;

/// The coordinator's job store, in its output directory.
pub const STORE_FILE: &str = "cairn.redb";
/// The coordinator's TLS identity, in its output directory.
pub const IDENTITY_FILE: &str = "coordinator.identity";
/// The admin interface's token, in its output directory.
pub const TOKEN_FILE: &str = "admin.token";

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// QUIC address the holders join.
    pub listen: SocketAddr,
    /// Admin interface address (loopback only).
    pub admin: SocketAddr,
    /// Output directory (store, identity, token, the last job's files).
    pub out: PathBuf,
    /// Proof keys directory (set up there when absent).
    pub keys: PathBuf,
    /// Keep running when the queue is empty (for `cairn job submit`); otherwise stop once
    /// no job is queued or running.
    pub serve: bool,
    /// A job file to queue at start (unless an unfinished job with the same text is
    /// already in the store, which then simply goes on).
    pub submit: Option<Submission>,
    /// Where jobs submitted through the admin interface may read their `data.path`
    /// (the job given at start is the operator's own and is not held to it).
    pub data_root: PathBuf,
}

/// A job file given on the command line.
#[derive(Clone, Debug)]
pub struct Submission {
    /// Where it came from, for messages.
    pub source: String,
    /// Its text.
    pub text: String,
}

/// A job file resolved against the coordinator's data.
pub struct Plan {
    /// The file.
    pub file: JobFile,
    /// What `Job` runs.
    pub cfg: JobConfig,
    /// Who may join.
    pub enrolment: Enrolment,
    /// The coordinator's table, split.
    pub prepared: Prepared,
    /// Where the table came from.
    pub source: String,
}

fn refusal(e: JobFileError) -> Refusal {
    if e.fields().is_empty() {
        Refusal::Other(e.to_string())
    } else {
        Refusal::Fields(e.fields().to_vec())
    }
}

/// Handshakes completed at once while no job runs, at most; further callers are refused
/// before any handshake state is kept.
const IDLE_HANDSHAKES: usize = 32;

/// Turns away a holder calling while no job runs: the handshake completes (so a holder
/// that pinned a wrong fingerprint is told so by its TLS, not left retrying an
/// "unreachable" coordinator), then the connection closes with
/// [`transport::CLOSE_NO_JOB`]. Beyond [`IDLE_HANDSHAKES`] at once, callers are refused
/// outright.
fn turn_away(
    incoming: quinn::Incoming,
    open: &Arc<quinn::ServerConfig>,
    in_flight: &Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    if in_flight.fetch_add(1, Ordering::AcqRel) >= IDLE_HANDSHAKES {
        in_flight.fetch_sub(1, Ordering::AcqRel);
        incoming.refuse();
        return;
    }
    let in_flight = Arc::clone(in_flight);
    // Any identity key: the last job's allow-list says nothing about the next job's.
    let open = Arc::clone(open);
    tokio::spawn(async move {
        if let Ok(connecting) = incoming.accept_with(open) {
            if let Ok(Ok(conn)) =
                tokio::time::timeout(cairn_coordinator::server::OPEN_TIMEOUT, connecting).await
            {
                conn.close(transport::CLOSE_NO_JOB.into(), b"no job is running");
            }
        }
        in_flight.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Resolves a job file's text: parses and checks it (with `data_root`, that its `data.path`
/// lies under it: jobs submitted through the admin interface), loads its `[data]` table and
/// checks the table against its schema. `job_id` is the id the job runs under.
pub fn plan_job(text: &str, job_id: &str, data_root: Option<&Path>) -> Result<Plan, Refusal> {
    let file = JobFile::from_toml(text).map_err(refusal)?;
    if let Some(root) = data_root {
        file.check_data_root(root).map_err(refusal)?;
    }
    let data = DataArgs {
        data: file.data.path.clone(),
        labels: file.data.labels.clone(),
        delimiter: file.data.delimiter_byte().map(crate::options::Delimiter),
        synthetic: file.data.synthetic,
        ..DataArgs::default()
    };
    let (prepared, source) = data
        .load_with(&file.load_options())
        .map_err(|e| Refusal::Other(format!("data: {e:#}")))?;
    file.check_schema(&prepared.train.feature_names)
        .map_err(refusal)?;
    // What every holder will check of the spec, checked here first: a job whose holders
    // would all decline it is refused now.
    let spec = DataSpec::of(&prepared);
    spec.validate()
        .map_err(|e| Refusal::Other(format!("data: {e}")))?;
    // Before the trusted setup a proven job's keys need: a tree too small for a holder's
    // rows would only show once the holders commit, after it.
    file.check_tree_depth(prepared.train.n_rows())
        .map_err(refusal)?;
    let resolved = file
        .to_config(job_id, prepared.train.n_features, spec.n_classes())
        .map_err(refusal)?;
    Ok(Plan {
        file,
        cfg: JobConfig {
            // What each holder prepares its own table with (and what the model is
            // exported with).
            data: Some(spec),
            ..resolved.config
        },
        enrolment: resolved.enrolment,
        prepared,
        source,
    })
}

/// The id a stored job runs under: its name and store id (dataset commitments are signed
/// over it, so they cannot be replayed into another job).
pub fn job_id(name: &str, id: JobId) -> String {
    format!("{name}-{id}")
}

/// Reads the saved identity in `out`, or makes and saves one.
pub fn load_or_create_identity(out: &Path) -> Result<(ServerIdentity, bool)> {
    match read_identity(out)? {
        Some(id) => Ok((id, false)),
        None => {
            let id = ServerIdentity::generate()?;
            save_identity(out, &id)?;
            Ok((id, true))
        }
    }
}

/// The identity saved in `out`, if there is one.
fn read_identity(out: &Path) -> Result<Option<ServerIdentity>> {
    let path = out.join(IDENTITY_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let id =
        ServerIdentity::from_text(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(id))
}

/// Saves a new identity in `out` (owner-only; an existing file is never replaced).
fn save_identity(out: &Path, id: &ServerIdentity) -> Result<()> {
    write_private(&out.join(IDENTITY_FILE), id.to_text().as_bytes())
}

/// Parses the admin interface's address as `--admin` gives it (the coordinator's and `cairn
/// job`'s): `127.0.0.1:PORT`, `[::1]:PORT`, `localhost:PORT` (as 127.0.0.1), each also as
/// an `http://` URL (what `coordinator.json` holds). The interface listens on loopback only
/// and its bearer token travels in clear HTTP, so any other host is refused, naming it.
pub fn admin_address(s: &str) -> Result<SocketAddr, String> {
    let given = s.trim();
    let bare = given.strip_prefix("http://").unwrap_or(given);
    let bare = bare.strip_suffix('/').unwrap_or(bare);
    let usage = "expected 127.0.0.1:PORT, [::1]:PORT or localhost:PORT (optionally as http://…)";
    if bare.contains('/') || bare.contains("://") {
        return Err(format!("{given:?} is not an admin address: {usage}"));
    }
    let (host, port) = match bare.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() => (h, p),
        _ => return Err(format!("{given:?} has no port: {usage}")),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{given:?}: port {port:?} is not a number in 0..=65535"))?;
    let ip: std::net::IpAddr = if host.eq_ignore_ascii_case("localhost") {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        let inner = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match inner.parse() {
            Ok(ip) => ip,
            Err(_) => {
                return Err(format!(
                    "{given:?}: the admin interface listens on loopback only, so its host must be 127.0.0.1 (or another 127.x address), [::1] or localhost, not {host:?}"
                ))
            }
        }
    };
    if !ip.is_loopback() {
        return Err(format!(
            "{given:?}: the admin interface listens on loopback only (127.0.0.0/8, [::1] or localhost), not {ip}; its token must not cross the network in clear HTTP (reach a remote coordinator through an SSH tunnel to its loopback port)"
        ));
    }
    Ok(SocketAddr::new(ip, port))
}

/// Reads the admin token in `out`, or makes and saves one (32 random bytes, hex).
pub fn load_or_create_token(out: &Path) -> Result<String> {
    let path = out.join(TOKEN_FILE);
    if path.exists() {
        let t = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let t = t.trim().to_string();
        if t.len() < 16 {
            bail!("{}: the admin token is too short", path.display());
        }
        return Ok(t);
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let t = hex::encode(bytes);
    write_private(&path, t.as_bytes())?;
    Ok(t)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// How a job's run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEnd {
    /// It ran to its end: its files, report (and a proven job's audit) are stored.
    Finished,
    /// It failed, or could not run (or resume) on this coordinator: why.
    Failed(String),
    /// A researcher cancelled it.
    Cancelled,
    /// The service stopped (its `shutdown` resolved) while the job ran: the job stays running
    /// in the store, and resumes from its last completed round when the store is served again.
    Parked,
}

/// What the service reports as it goes, beside the lines it prints (for a program or a test
/// that embeds it: [`Settings::events`]).
// A few events a round, matched by pattern in the tests: a box would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Event {
    /// No job is queued or running: the service waits for a submission.
    Waiting,
    /// A job started (`resumed_at: None`), or resumed at a round after a stop.
    Started {
        /// The job.
        job: JobId,
        /// The round it resumed at.
        resumed_at: Option<u32>,
    },
    /// The running job's progress, as its driver reports it (holders joining, rounds).
    Progress {
        /// The job.
        job: JobId,
        /// What happened.
        progress: Progress,
    },
    /// A job's run ended.
    Ended {
        /// The job.
        job: JobId,
        /// How.
        end: JobEnd,
    },
}

/// What [`serve`] needs beside its endpoint, admin listener and store.
pub struct Settings {
    /// The TLS identity the QUIC endpoint was made with: each job's enrolment is a server
    /// configuration with it, and it seals the job's transcript.
    pub identity: ServerIdentity,
    /// The admin interface's bearer token.
    pub token: String,
    /// Where a job that ends writes `model.safetensors`, `metrics.json` and
    /// `transcript.cairn` (an existing directory).
    pub out: PathBuf,
    /// Proof keys directory (set up there when absent).
    pub keys: PathBuf,
    /// Where jobs submitted through the admin interface may read their `data.path`.
    pub data_root: PathBuf,
    /// Keep serving when the queue is empty (until `shutdown`); otherwise return once no
    /// job is queued or running.
    pub wait_for_jobs: bool,
    /// When the process started, for the restart time a resumed job reports.
    pub started: Instant,
    /// Where to send [`Event`]s, if anywhere.
    pub events: Option<mpsc::UnboundedSender<Event>>,
}

/// How [`serve`] returned.
#[derive(Debug)]
pub struct Served {
    /// Its `shutdown` resolved (rather than the queue running empty): a job it was running is
    /// [`JobEnd::Parked`].
    pub shut_down: bool,
    /// The jobs whose run ended while it served, in order, and how each ended.
    pub ended: Vec<(JobId, JobEnd)>,
}

struct Service {
    settings: Settings,
    store: Arc<Store>,
    endpoint: quinn::Endpoint,
    changed: watch::Receiver<u64>,
    quit: watch::Receiver<bool>,
    /// The holders the status page shows.
    holders: admin::HolderBoard,
}

/// Runs the service until the queue is empty (or, with `serve`, until Ctrl-C / SIGTERM).
/// `started` is when the process started, for the restart time it reports.
///
/// The process's part: it checks the job file given, binds the admin interface and the QUIC
/// endpoint, makes (or reads) `OUT`'s identity, store and token, writes `coordinator.json`,
/// queues the job file, then hands over to [`serve`] until a signal.
pub async fn run(opts: ServiceOptions, started: Instant) -> Result<()> {
    // A job file that cannot run is refused before any state is made.
    if let Some(sub) = &opts.submit {
        plan_job(&sub.text, "validation", None)
            .map_err(|r| anyhow!("job file {}: {}", sub.source, r))?;
    }
    // So are an admin address off loopback (or taken) and a QUIC address that cannot be
    // bound: nothing is written, not even OUT itself, until both are bound.
    let listener = admin::bind(opts.admin).await?;
    let admin_addr = listener.local_addr()?;
    let (identity, fresh) = match read_identity(&opts.out)? {
        Some(id) => (id, false),
        None => (ServerIdentity::generate()?, true),
    };
    let endpoint = server_endpoint(opts.listen, &identity, &Enrolment::Open)
        .with_context(|| format!("listening on {}", opts.listen))?;
    let addr = endpoint.local_addr()?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let db = opts.out.join(STORE_FILE);
    let store =
        Store::open(&db).with_context(|| format!("opening the job store {}", db.display()))?;
    if fresh {
        save_identity(&opts.out, &identity)?;
    }
    let token = load_or_create_token(&opts.out)?;
    let info = serde_json::json!({
        "address": addr.to_string(),
        "fingerprint": identity.fingerprint,
        "admin": format!("http://{admin_addr}"),
        "token_file": opts.out.join(TOKEN_FILE),
    });
    std::fs::write(
        opts.out.join("coordinator.json"),
        serde_json::to_vec_pretty(&info)?,
    )?;
    println!("listening on {addr}");
    println!("fingerprint {}", identity.fingerprint);
    println!(
        "admin interface http://{admin_addr} (token in {}); status page: http://{admin_addr}/?token=…",
        opts.out.join(TOKEN_FILE).display()
    );
    println!("jobs recorded in {}", db.display());

    let target = match &opts.submit {
        Some(sub) => Some(queue_submission(&store, sub)?),
        None => None,
    };
    let settings = Settings {
        identity,
        token,
        out: opts.out,
        keys: opts.keys,
        data_root: opts.data_root,
        wait_for_jobs: opts.serve,
        started,
        events: None,
    };
    let served = serve(endpoint, listener, store, settings, wait_for_signal()).await?;
    if served.shut_down {
        println!("stopped; an unfinished job resumes when the coordinator starts again with the same --out");
        return Ok(());
    }
    let outcome = target.and_then(|t| served.ended.iter().rev().find(|(id, _)| *id == t));
    match outcome {
        Some((id, JobEnd::Failed(e))) => bail!("job {id} failed: {e}"),
        Some((id, JobEnd::Cancelled)) => bail!("job {id} was cancelled"),
        _ => Ok(()),
    }
}

/// Serves `store`'s jobs one after another (resuming the one a previous service left
/// running first) to the holders that join on `endpoint`, and the admin interface on
/// `admin_listener`, until the queue is empty (unless [`Settings::wait_for_jobs`]) or
/// `shutdown` resolves: a job running then is [`JobEnd::Parked`], left running in the store.
///
/// `endpoint` is a server endpoint made with [`Settings::identity`]; between jobs it turns
/// callers away. Nothing is read or written outside the store but each ended job's files in
/// [`Settings::out`] and a proven job's keys in [`Settings::keys`]; no signal is handled.
pub async fn serve(
    endpoint: quinn::Endpoint,
    admin_listener: tokio::net::TcpListener,
    store: Store,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Served> {
    let store = Arc::new(store);
    let (changed_tx, changed) = watch::channel(0u64);
    let (quit_tx, quit) = watch::channel(false);
    let state = Arc::new(AdminState {
        store: Arc::clone(&store),
        token: settings.token.clone(),
        validate: {
            let root = settings.data_root.clone();
            Arc::new(move |text: &str| {
                plan_job(text, "validation", Some(&root)).map(|p| p.file.name)
            })
        },
        changed: changed_tx,
        holders: admin::HolderBoard::default(),
    });
    let holders = state.holders.clone();
    let mut admin_quit = quit.clone();
    let admin_task = tokio::spawn(admin::serve(admin_listener, state, async move {
        let _ = admin_quit.wait_for(|q| *q).await;
    }));
    let shutdown_task = tokio::spawn(async move {
        shutdown.await;
        let _ = quit_tx.send(true);
    });

    let mut svc = Service {
        settings,
        store,
        endpoint,
        changed,
        quit,
        holders,
    };
    let mut ended = Vec::new();
    let result = loop {
        if *svc.quit.borrow() {
            break Ok(());
        }
        let next = match next_job(&svc.store) {
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        match next {
            Some((id, resume)) => match svc.run_one(id, resume).await {
                Ok(end) => {
                    svc.tell(Event::Ended {
                        job: id,
                        end: end.clone(),
                    });
                    let parked = end == JobEnd::Parked;
                    ended.push((id, end));
                    if parked {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e.context(format!("job {id}"))),
            },
            None if svc.settings.wait_for_jobs => {
                println!("waiting for jobs (cairn job submit FILE)");
                svc.tell(Event::Waiting);
                if let Err(e) = svc.idle().await {
                    break Err(e);
                }
            }
            None => break Ok(()),
        }
    };
    svc.endpoint.close(0u32.into(), b"coordinator stopping");
    // Awaited once aborted, so that nothing of the service holds the store when it returns.
    admin_task.abort();
    let _ = admin_task.await;
    shutdown_task.abort();
    let shut_down = *svc.quit.borrow();
    result?;
    Ok(Served { shut_down, ended })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Queues a command-line job file, unless an unfinished job with the same text exists (a
/// restart with the same command line goes on with it). Returns the job's id.
fn queue_submission(store: &Store, sub: &Submission) -> Result<JobId> {
    for j in store.jobs()? {
        if !j.state.is_terminal() && store.config(j.id)? == sub.text.as_bytes() {
            println!(
                "job {} ({}) from {} is already {}: going on with it",
                j.id,
                j.name,
                sub.source,
                j.state.name()
            );
            return Ok(j.id);
        }
    }
    let name = JobFile::from_toml(&sub.text)
        .map(|f| f.name)
        .map_err(|e| anyhow!("job file {}: {e}", sub.source))?;
    let id = store.submit(&name, sub.text.as_bytes())?;
    println!("queued job {id} ({name}) from {}", sub.source);
    Ok(id)
}

/// Says what job `id` (`name`) runs: its rounds, model, data, aggregation, enrolment and
/// proofs (keys in `keys`).
fn announce(id: JobId, name: &str, plan: &Plan, keys: &Path) {
    let (cfg, prepared) = (&plan.cfg, &plan.prepared);
    println!(
        "job {id} ({name}): {} rounds, {} participants, {}, {}{}; data {}: {} train rows, {} test rows",
        cfg.rounds,
        cfg.participants,
        cfg.model.describe(),
        cfg.server.name(),
        if cfg.proof.is_some() { ", proven rounds" } else { "" },
        plan.source,
        prepared.train.n_rows(),
        prepared.test.n_rows(),
    );
    println!("aggregation: {}", cfg.aggregation);
    println!("enrolment: {}", plan.enrolment.describe());
    if let Some(spec) = cfg.proof {
        println!(
            "proofs: Groth16 (BN254) of each update, τ = {}, trees of depth {}; keys in {}",
            spec.tolerance,
            spec.tree_depth,
            keys.display()
        );
    }
}

/// Why a job planned again (`cfg`) cannot resume what the store holds of it: its model's
/// shape or its data spec (label, classes, columns, fitted transforms) differ from the plan
/// it started with. `None` when they match or the store has no plan (stored before plans).
fn changed_since_start(store: &Store, id: JobId, cfg: &JobConfig) -> Result<Option<String>> {
    let Some(bytes) = store.artifact(id, admin::PLAN)? else {
        return Ok(None);
    };
    let started: JobPlan = serde_json::from_slice(&bytes).context("the job's stored plan")?;
    let why = if started.model != cfg.model {
        format!(
            "cannot resume: its data now gives a model {}, the job started with {} (the data file changed since)",
            cfg.model.describe(),
            started.model.describe()
        )
    } else if started.data.is_some() && started.data != cfg.data {
        "cannot resume: its data file changed since the job started (the label's classes, the columns or their fitted transforms differ), and its holders prepared their tables with the old ones".to_string()
    } else {
        return Ok(None);
    };
    Ok(Some(why))
}

/// The job to run next: the running one (to resume), else the oldest queued one.
fn next_job(store: &Store) -> Result<Option<(JobId, bool)>> {
    if let Some(&id) = store.running()?.first() {
        return Ok(Some((id, true)));
    }
    Ok(store.next_queued()?.map(|id| (id, false)))
}

impl Service {
    /// Sends `event` to [`Settings::events`], if anyone listens.
    fn tell(&self, event: Event) {
        if let Some(events) = &self.settings.events {
            let _ = events.send(event);
        }
    }

    /// The running job's progress as `progress` brings it, also sent to
    /// [`Settings::events`] when someone listens.
    fn tee(
        &self,
        job: JobId,
        mut progress: mpsc::UnboundedReceiver<Progress>,
    ) -> mpsc::UnboundedReceiver<Progress> {
        let Some(events) = self.settings.events.clone() else {
            return progress;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(p) = progress.recv().await {
                let _ = events.send(Event::Progress {
                    job,
                    progress: p.clone(),
                });
                let _ = tx.send(p);
            }
        });
        rx
    }

    /// Waits while no job is queued: until one is submitted (or cancelled), or the service
    /// stops. Holders that call meanwhile are turned away (they retry), rather than left to
    /// pile up unanswered until the next job.
    async fn idle(&mut self) -> Result<()> {
        let idle_handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let open = Arc::new(server_config(&self.settings.identity, &Enrolment::Open)?);
        let mut quit = self.quit.clone();
        loop {
            tokio::select! {
                _ = self.changed.changed() => break,
                _ = quit.wait_for(|q| *q) => break,
                incoming = self.endpoint.accept() => match incoming {
                    Some(i) => turn_away(i, &open, &idle_handshakes),
                    None => break,
                },
            }
        }
        Ok(())
    }

    /// Runs job `id` (resuming it after a restart): planned, its keys loaded or set up,
    /// started or resumed in the store, its plan recorded, its rounds run, its end
    /// recorded. Each step is a method below.
    async fn run_one(&mut self, id: JobId, resume: bool) -> Result<JobEnd> {
        let plan = match self.plan(id, resume)? {
            Ok(plan) => plan,
            Err(ended) => return Ok(ended),
        };
        let Plan {
            file,
            cfg,
            enrolment,
            prepared,
            ..
        } = plan;
        let threshold = file.metrics.threshold;
        let verifier = self.verifier(&cfg).await?;
        // This job's enrolment for every connection it accepts (also those that arrived
        // between jobs), and for the endpoint's new ones.
        let tls = Arc::new(server_config(&self.settings.identity, &enrolment)?);
        self.endpoint.set_server_config(Some((*tls).clone()));
        let Some((job, persist)) = self.start(id, resume, &cfg)? else {
            return Ok(JobEnd::Cancelled);
        };
        self.record_plan(id, &cfg, &prepared)?;
        let holders = self.holders.job(id);
        let (ptx, prx) = mpsc::unbounded_channel();
        let prx = self.tee(id, prx);
        let renderer = tokio::spawn(ui::render(prx, cfg.rounds, true));
        let stop = stop_signal(
            Arc::clone(&self.store),
            id,
            self.changed.clone(),
            self.quit.clone(),
        );
        let opts = RunOptions {
            verifier,
            persist: Some(persist),
            server_config: Some(tls),
            seal_key: Some(self.settings.identity.seal_key()),
            cpu: None,
            holders: Some(holders.clone()),
            threshold: Some(threshold),
        };
        let result =
            run_job_with(self.endpoint.clone(), job, &prepared.test, ptx, stop, opts).await;
        holders.ended("the job stopped");
        renderer.await.ok();
        self.ended(id, result, &cfg, &prepared, threshold).await
    }

    /// The job's plan from its stored job file, announced; `Err(ended)` (the job failed,
    /// and is recorded so) when it cannot run here, or cannot resume what it started.
    fn plan(&self, id: JobId, resume: bool) -> Result<std::result::Result<Plan, JobEnd>> {
        let store = &self.store;
        let info = store.job(id)?;
        let text = String::from_utf8(store.config(id)?).unwrap_or_default();
        let why = match plan_job(&text, &job_id(&info.name, id), None) {
            Err(r) => format!("cannot run on this coordinator: {r}"),
            // A resumed job's holders prepared their tables with the spec it started
            // with, and its stored model has the shape it started with: planned again from
            // a data file that changed since, it would offer them other data (which they
            // refuse) or train another model. Refused here, saying what changed.
            Ok(plan) => match resume
                .then(|| changed_since_start(store, id, &plan.cfg))
                .transpose()?
                .flatten()
            {
                Some(why) => why,
                None => {
                    announce(id, &info.name, &plan, &self.settings.keys);
                    return Ok(Ok(plan));
                }
            },
        };
        // Recorded before it is said: whoever reads the line finds the job failed.
        store.fail(id, &why)?;
        eprintln!("job {id}: {why}");
        Ok(Err(JobEnd::Failed(why)))
    }

    /// A proven job's verifier, from its keys (set up when missing, off the executor).
    async fn verifier(&self, cfg: &JobConfig) -> Result<Option<Arc<Verifier>>> {
        let Some(spec) = cfg.proof else {
            return Ok(None);
        };
        let (c, keys) = (cfg.clone(), self.settings.keys.clone());
        let (p, _) =
            tokio::task::spawn_blocking(move || Proving::load_or_setup(&c, &keys)).await??;
        Ok(Some(Verifier::new(
            &p.vk,
            &rounds::shape(&cfg.model, &cfg.hyper, &spec)?,
        )))
    }

    /// Starts the queued job, or resumes the running one from its last completed round;
    /// `None` when a researcher cancelled it meanwhile (a key setup can take minutes: the
    /// store then refuses to start or resume it).
    fn start(&self, id: JobId, resume: bool, cfg: &JobConfig) -> Result<Option<(Job, Persist)>> {
        let store = Arc::clone(&self.store);
        let now = Instant::now();
        let cancelled_now = |e: &StoreError| matches!(e, StoreError::WrongState { .. });
        if resume {
            let (persist, r) = match Persist::resume(store, id, cfg.proof.is_some()) {
                Err(e) if cancelled_now(&e) => {
                    println!("job {id} cancelled before it resumed");
                    return Ok(None);
                }
                other => other?,
            };
            self.tell(Event::Started {
                job: id,
                resumed_at: Some(r.point.next_round),
            });
            println!(
                "resumed job {id} at round {} ({} completed{}) {:.2} s after the coordinator started",
                r.point.next_round,
                r.point.completed,
                r.abandoned
                    .map(|a| format!("; round {a} was in flight and is abandoned"))
                    .unwrap_or_default(),
                self.settings.started.elapsed().as_secs_f64()
            );
            return Ok(Some((Job::resume(cfg.clone(), r.point, now), persist)));
        }
        let initial = cfg.model.init_params(cfg.seed);
        let persist = match Persist::start_queued(store, id, &initial, cfg.server) {
            Err(e) if cancelled_now(&e) => {
                println!("job {id} cancelled before it started");
                return Ok(None);
            }
            other => other?,
        };
        println!("started job {id}");
        self.tell(Event::Started {
            job: id,
            resumed_at: None,
        });
        Ok(Some((Job::new(cfg.clone(), initial, now), persist)))
    }

    /// Stores what the job runs (the status page's settings; a resume compares its data).
    fn record_plan(&self, id: JobId, cfg: &JobConfig, prepared: &Prepared) -> Result<()> {
        let plan = JobPlan {
            job_id: cfg.job_id.clone(),
            model: cfg.model.clone(),
            rounds: cfg.rounds,
            participants: cfg.participants,
            min_participants: cfg.min_participants,
            server: cfg.server.name().into(),
            aggregation: cfg.aggregation.to_string(),
            proofs: cfg.proof.is_some(),
            test_rows: prepared.test.n_rows(),
            settings: Some(admin::JobSettings::of(cfg)),
            data: cfg.data.clone(),
        };
        self.store
            .put_artifact(id, admin::PLAN, &serde_json::to_vec(&plan)?)?;
        Ok(())
    }

    /// How the job's run ended, recorded: finished (its files, report and audit), failed,
    /// cancelled, or left running because the coordinator stops.
    async fn ended(
        &self,
        id: JobId,
        result: std::result::Result<JobSummary, CoordinatorError>,
        cfg: &JobConfig,
        prepared: &Prepared,
        threshold: f64,
    ) -> Result<JobEnd> {
        let store = &self.store;
        let cancelled = || matches!(store.job(id).map(|j| j.state), Ok(JobState::Cancelled));
        match result {
            Ok(summary) => {
                self.finish(id, cfg, prepared, &summary, threshold).await?;
                if let Some(p) = &summary.privacy {
                    println!("job {id} privacy spent: {}", p.describe());
                }
                Ok(match summary.error {
                    Some(e) => {
                        println!(
                            "job {id} stopped after {} rounds: {e}",
                            summary.rounds_completed
                        );
                        JobEnd::Failed(e)
                    }
                    None => {
                        println!(
                            "job complete: {} rounds (job {id}); model and metrics in {}",
                            summary.rounds_completed,
                            self.settings.out.display()
                        );
                        JobEnd::Finished
                    }
                })
            }
            Err(_) if cancelled() => {
                println!("job {id} cancelled");
                Ok(JobEnd::Cancelled)
            }
            Err(CoordinatorError::Shutdown { rounds }) => {
                println!("stopping with job {id} at {rounds} completed rounds");
                Ok(JobEnd::Parked)
            }
            Err(e @ CoordinatorError::Store(_)) => Err(e.into()),
            Err(e) => {
                let why = e.to_string();
                match store.fail(id, &why) {
                    Ok(_) | Err(StoreError::WrongState { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(JobEnd::Failed(why))
            }
        }
    }

    /// A job's end: its files in OUT, its report and audit in the store.
    async fn finish(
        &self,
        id: JobId,
        cfg: &JobConfig,
        prepared: &Prepared,
        summary: &JobSummary,
        threshold: f64,
    ) -> Result<()> {
        let out = &self.settings.out;
        let rounds: Vec<RoundRecord> = self
            .store
            .rounds::<RoundRecord>(id)?
            .into_iter()
            .filter_map(|r| r.record)
            .collect();
        std::fs::write(
            out.join("metrics.json"),
            serde_json::to_vec_pretty(&rounds)?,
        )?;
        if summary.rounds_completed > 0 {
            write_safetensors(
                &out.join("model.safetensors"),
                &cfg.model,
                cfg.data.as_ref(),
                &summary.model,
            )?;
        }
        if let Some(t) = &summary.transcript {
            let path = out.join("transcript.cairn");
            std::fs::write(&path, t.to_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            let report = audit(t);
            let summary = AuditSummary {
                passed: report.passed(),
                proofs: report.rounds.iter().map(|r| r.survivors).sum(),
                problems: report.problems.iter().map(ToString::to_string).collect(),
            };
            println!(
                "transcript in {}: audit {} ({} proofs); check it with: cairn audit {}",
                path.display(),
                if summary.passed { "passed" } else { "FAILED" },
                summary.proofs,
                path.display()
            );
            self.store
                .put_artifact(id, admin::AUDIT, &serde_json::to_vec(&summary)?)?;
        }
        if summary.rounds_completed > 0 {
            let (c, train, test, model) = (
                cfg.clone(),
                prepared.train.clone(),
                prepared.test.clone(),
                summary.model.clone(),
            );
            let mut report =
                tokio::task::spawn_blocking(move || report(&c, &train, &test, &model, threshold))
                    .await??;
            report.privacy = summary.privacy;
            self.store
                .put_artifact(id, admin::REPORT, &serde_json::to_vec(&report)?)?;
        }
        Ok(())
    }
}

/// The final model's metrics on the test split, beside a centralised model trained on the
/// coordinator's training split with the same budget ([`job_report`]).
fn report(
    cfg: &JobConfig,
    train: &cairn_datasets::Dataset,
    test: &cairn_datasets::Dataset,
    model: &[f32],
    threshold: f64,
) -> Result<JobReport> {
    let mut trainer = TchTrainer::new(DeviceChoice::Cpu)?;
    job_report(cfg, train, test, model, threshold, &mut trainer)
}

/// Resolves when the job must stop: quietly when the coordinator quits (the job stays
/// running in the store and resumes later), for good when a researcher cancels it.
async fn stop_signal(
    store: Arc<Store>,
    id: JobId,
    mut changed: watch::Receiver<u64>,
    mut quit: watch::Receiver<bool>,
) -> Stop {
    let cancelled = async {
        loop {
            if changed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            let s = Arc::clone(&store);
            let state = tokio::task::spawn_blocking(move || s.job(id).map(|j| j.state)).await;
            if matches!(state, Ok(Ok(JobState::Cancelled))) {
                return;
            }
        }
    };
    tokio::select! {
        _ = quit.wait_for(|q| *q) => Stop::Quietly,
        () = cancelled => Stop::End("cancelled by a researcher".into()),
    }
}

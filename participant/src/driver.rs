//! The participant's QUIC driver: a thin loop around the sans-IO [`Client`].
//!
//! Connects to the coordinator (its certificate pinned by fingerprint) with mutual TLS,
//! presenting a certificate for the holder's identity key (the key the operator
//! allow-lists, the same that signs its Hello's secure-aggregation keys and its dataset
//! commitment), sends the Hello, then acts on the client's events. In a job that proves
//! its rounds, a holder without ready proving material loads the proving key of the
//! welcome's circuit shape from its key directory and commits to its rows with the
//! welcome's tree depth before the first round. A reader task turns the stream into frames, so the
//! loop keeps answering the coordinator (secure aggregation's key and share phases) while
//! local training runs on a blocking thread — libtorch work never blocks the async
//! executor. The trained update goes back through the state machine, which clips it and
//! either sends it (plain FedAvg) or quantises and masks it (secure aggregation).
//! Returns when the job ends for it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_circuits::training::proof::KeyStore;
use cairn_circuits::training::prover::Prover as Groth16Prover;
use cairn_crypto::sign::IdentityKey;
use cairn_datasets::Dataset;
use cairn_proofs::noise::NoiseSeed;
use cairn_proofs::rounds::{self, prove_update, CommittedData, ProvenUpdate};
use cairn_protocol::client::{Client, ClientError, ClientEvent};
use cairn_protocol::job::RoundStatement;
use cairn_protocol::model::{clip_l2, ModelSpec};
use cairn_protocol::transport::{self, read_frame, write_frame, ClientIdentity, TransportError};
use cairn_protocol::wire::{
    self, Offer, RoundSpec, ToCoordinator, ToParticipant, Welcome, MAX_FRAME_BYTES,
};
use rand::rngs::OsRng;
use rand::RngCore;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::data::HolderData;
use crate::trainer::{LocalUpdate, TrainError, TrainInput, Trainer};

/// Where to connect and as whom.
#[derive(Clone, Debug)]
pub struct ParticipantConfig {
    /// The coordinator's QUIC address.
    pub coordinator: SocketAddr,
    /// Hex SHA-256 fingerprint of the coordinator's certificate.
    pub fingerprint: String,
    /// Display name.
    pub name: String,
    /// The holder's Ed25519 identity key (the one its operator allow-listed): presented
    /// in its TLS certificate and named in its Hello. `None` draws a fresh key for this
    /// run, which only a coordinator with open enrolment admits.
    pub identity: Option<IdentityKey>,
    /// What it needs to prove its updates, for jobs that prove their rounds (the honest
    /// [`Prover`]; tests plug in adversaries).
    pub prover: Option<Arc<dyn UpdateProver>>,
    /// Where the job's Groth16 keys are (`training-<shape>.pk`/`.vk`), for a proving job
    /// when `prover` is `None`: the key of the welcome's shape is loaded from here (never
    /// generated) and the rows are committed with the welcome's tree depth.
    pub keys: Option<PathBuf>,
    /// Threads the prover may use (its own pool); `None` shares the process's default
    /// pool (one thread per core).
    pub prove_threads: Option<usize>,
    /// The least corrupt fraction γ it accepts in a secure job
    /// (`cairn_protocol::client::DEFAULT_MIN_CORRUPTION` unless its operator says otherwise).
    pub min_corruption: f64,
    /// The least DP noise multiplier it accepts (0: any, and rounds without DP); above 0
    /// it takes part only in DP rounds with at least that much noise.
    pub min_noise: f64,
    /// Sees every message before it is sent (simulations and fault tests: delays, drops,
    /// tampering); `None` for a real holder.
    pub faults: Option<Arc<dyn FaultHook>>,
    /// Permits for CPU-heavy work (training, masking, share encryption, signature checks),
    /// shared by many holders of one process (`cairn simulate`): at most that many run at
    /// once, each off the async workers, so the QUIC endpoints (and an in-process
    /// coordinator) keep answering. `None` for a real holder: its work runs at once. (Not
    /// for proven rounds with sampled steps: a prover holds its permit while it waits for
    /// the challenge that another permit's frame handling delivers.)
    pub compute: Option<Arc<tokio::sync::Semaphore>>,
}

/// Runs `f`, CPU-heavy protocol work (masking, share encryption, signature checks), under
/// a permit of `compute` when there is one, and off the async workers (`block_in_place`)
/// on a multi-threaded runtime, so the connection's I/O and timers go on meanwhile.
async fn heavy<R>(compute: Option<&Arc<tokio::sync::Semaphore>>, f: impl FnOnce() -> R) -> R {
    // A closed semaphore only means no limit.
    let _permit = match compute {
        Some(permits) => permits.acquire().await.ok(),
        None => None,
    };
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread
    {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// What a [`FaultHook`] does with a message about to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Send it (possibly changed by the hook).
    Send,
    /// Wait, then send it: a straggler.
    Delay(Duration),
    /// Do not send it; close the connection and end the run with
    /// [`ParticipantError::Vanished`]: a holder that crashes at this point.
    Vanish(String),
}

/// Injects faults into a participant's run (`cairn simulate`, fault tests). Called for each
/// message the holder is about to send, in order.
pub trait FaultHook: Send + Sync + std::fmt::Debug {
    /// Decides what happens to `msg`, which the hook may also alter.
    fn before_send(&self, msg: &mut ToCoordinator) -> FaultAction;
}

/// How a participant turns its clipped float update into what a proven round sends: x in
/// fixed point, the blinding limbs, and C and π. [`Prover`] is the honest one; the trait
/// lets tests and benchmarks run misbehaving holders through the real driver.
pub trait UpdateProver: Send + Sync + std::fmt::Debug {
    /// The dataset root the holder commits to at enrolment.
    fn root(&self) -> [u8; 32];
    /// Rows of the holder's table the proofs are made over (the committed ones are the
    /// whole blocks among them).
    fn rows(&self) -> usize;
    /// Proves the round's update `delta` (already clipped) for `participant`; in a DP
    /// round with the holder's `noise_seed`.
    fn prove(
        &self,
        st: &RoundStatement,
        participant: u32,
        delta: &[f32],
        noise_seed: Option<NoiseSeed>,
    ) -> Result<ProvenUpdate, String>;
    /// A sampled-step round: computes the K steps, commits to them through `challenge`
    /// (which sends the digests and returns the beacon the coordinator answers with), then
    /// proves the challenged steps. The update sent is the committed steps' own.
    fn prove_sampled(
        &self,
        st: &RoundStatement,
        participant: u32,
        noise_seed: Option<NoiseSeed>,
        challenge: &mut dyn FnMut(Vec<[u8; 32]>) -> Result<[u8; 32], String>,
    ) -> Result<ProvenUpdate, String> {
        let _ = (st, participant, noise_seed, challenge);
        Err("this prover does not do sampled-step proofs".into())
    }
}

impl UpdateProver for Prover {
    fn root(&self) -> [u8; 32] {
        self.data.root()
    }

    fn rows(&self) -> usize {
        self.data.rows.len()
    }

    fn prove(
        &self,
        st: &RoundStatement,
        participant: u32,
        delta: &[f32],
        noise_seed: Option<NoiseSeed>,
    ) -> Result<ProvenUpdate, String> {
        prove_update(
            &self.key,
            st,
            participant,
            &self.data,
            delta,
            noise_seed,
            &mut OsRng,
        )
        .map_err(|e| e.to_string())
    }

    fn prove_sampled(
        &self,
        st: &RoundStatement,
        participant: u32,
        noise_seed: Option<NoiseSeed>,
        challenge: &mut dyn FnMut(Vec<[u8; 32]>) -> Result<[u8; 32], String>,
    ) -> Result<ProvenUpdate, String> {
        let traj = rounds::commit_steps(st, participant, &self.data).map_err(|e| e.to_string())?;
        let beacon = challenge(rounds::chain_of(&traj))?;
        rounds::prove_sampled(
            &self.key,
            st,
            participant,
            &self.data,
            &traj,
            beacon,
            noise_seed,
            &mut OsRng,
        )
        .map_err(|e| e.to_string())
    }
}

/// A holder's proving material: the job shape's proving key and its committed rows.
pub struct Prover {
    /// The Groth16 prover of the job's circuit shape: its proving key and constraint
    /// matrices (shared by the holders of one process).
    pub key: Arc<Groth16Prover>,
    /// The holder's rows in fixed point and their Merkle tree.
    pub data: CommittedData,
}

impl std::fmt::Debug for Prover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prover")
            .field("rows", &self.data.rows.len())
            .field("tree_depth", &self.data.tree.depth())
            .finish_non_exhaustive()
    }
}

/// How long a connection attempt waits for the coordinator's handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a connected holder waits for the job's offer.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest offer a holder reads: room for a spec of [`cairn_datasets::MAX_SPEC_COLUMNS`]
/// columns, each a name of [`cairn_datasets::MAX_COLUMN_NAME_BYTES`] and its statistics.
pub const MAX_OFFER_BYTES: usize =
    1024 + cairn_datasets::MAX_SPEC_COLUMNS * (cairn_datasets::MAX_COLUMN_NAME_BYTES + 64);

impl ParticipantError {
    /// True when the coordinator went away or could not be reached (it may be restarting):
    /// trying again later may succeed, unlike a refusal or a local failure.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            ParticipantError::Closed
            | ParticipantError::Unreachable(_)
            | ParticipantError::NoJob(_) => true,
            // The connection broke, not our settings (a bad fingerprint, a refused
            // certificate or a TLS set-up error stays wrong on every attempt).
            ParticipantError::Transport(e) => matches!(
                e,
                TransportError::Connection(_)
                    | TransportError::Read(_)
                    | TransportError::Write(_)
                    | TransportError::Io(_)
            ),
            _ => false,
        }
    }
}

/// Errors that end a participant's run.
#[derive(Debug, thiserror::Error)]
pub enum ParticipantError {
    /// The connection failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The coordinator sent something the protocol refuses.
    #[error("protocol: {0}")]
    Protocol(#[from] ClientError),
    /// Encoding a message failed.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// Local training failed.
    #[error("local training: {0}")]
    Train(#[from] TrainError),
    /// The coordinator refused us or dropped us.
    #[error("rejected by the coordinator: {0}")]
    Rejected(String),
    /// The coordinator did not answer the connection attempt (not running, or restarting).
    #[error("coordinator unreachable: {0}")]
    Unreachable(String),
    /// The coordinator answered but runs no job now (between jobs): a serving holder asks
    /// again, less often the longer it stays idle.
    #[error("{0}")]
    NoJob(String),
    /// The coordinator closed the connection before the job finished.
    #[error("the coordinator closed the connection before the job finished")]
    Closed,
    /// The job proves its rounds and this participant cannot.
    #[error("proving: {0}")]
    Proving(String),
    /// The blocking training task panicked.
    #[error("training task failed: {0}")]
    Join(String),
    /// The holder cannot prepare its table for the job offered (it told the coordinator).
    #[error("cannot take part in job {job}: {reason}")]
    CannotJoin {
        /// The job offered.
        job: String,
        /// Why.
        reason: String,
    },
    /// A fault hook made the holder vanish (simulations).
    #[error("vanished (simulated): {0}")]
    Vanished(String),
}

/// What a participant reports about each round it trained in.
#[derive(Clone, Debug)]
pub struct TrainedRound {
    /// Round number.
    pub round: u32,
    /// Mean local training loss.
    pub loss: f32,
    /// Seconds of local training.
    pub train_seconds: f64,
    /// Seconds of witness replay and proving (proven jobs).
    pub prove_seconds: Option<f64>,
}

/// The end of a participant's job.
#[derive(Clone, Debug)]
pub struct ParticipantSummary {
    /// Rounds it trained in.
    pub rounds_trained: u32,
    /// Whether the job ran all its rounds (false: it stopped early or was cancelled).
    pub completed: bool,
    /// The coordinator's closing message.
    pub message: String,
}

/// A finished local step: the trainer back, the round, when training began, and the
/// clipped update (with its proof in a proven job, and the seconds proving took).
struct Trained {
    engine: Box<dyn Trainer>,
    round: u32,
    t0: Instant,
    outcome: Result<(LocalUpdate, Option<(ProvenUpdate, f64)>), ParticipantError>,
}

type Training = JoinHandle<Trained>;

struct Job {
    model: ModelSpec,
    /// A proven DP job: this holder's secret noise seed (its enrolled commitment's opening).
    noise_seed: Option<NoiseSeed>,
}

/// A sampled-step round's chain on its way to the coordinator: the round, the digests, and
/// where the beacon that answers it goes.
type ChainOut = (u32, Vec<[u8; 32]>, std::sync::mpsc::Sender<[u8; 32]>);

/// A round waiting for the trainer: its spec, this holder's index in the job's roster (what
/// its rows and statement are drawn for) and its mini-batches.
type Queued = (RoundSpec, u32, Vec<Vec<u32>>);

fn start_training(
    mut engine: Box<dyn Trainer>,
    job: &Job,
    data: Arc<Dataset>,
    prover: Option<Arc<dyn UpdateProver>>,
    (spec, participant, batches): Queued,
    chains: mpsc::UnboundedSender<ChainOut>,
    compute: Option<Arc<tokio::sync::Semaphore>>,
) -> Training {
    let (model, noise_seed) = (job.model.clone(), job.noise_seed);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // Waits for its turn among the process's holders, if they share permits.
        let _permit = compute.map(|c| runtime.block_on(c.acquire_owned()));
        let t0 = Instant::now();
        let input = TrainInput {
            spec: &model,
            global: &spec.global,
            features: &data.features,
            labels: &data.labels,
            hyper: &spec.hyper,
            batches: &batches,
        };
        let outcome = engine
            .train(&input)
            .map_err(ParticipantError::from)
            .and_then(|mut update| {
                clip_l2(&mut update.delta, spec.hyper.clip_norm);
                let proven =
                    match (spec.proof, prover) {
                        (None, _) => None,
                        (Some(_), None) => return Err(ParticipantError::Proving(
                            "the round asks for a proof and this participant has no proving key"
                                .into(),
                        )),
                        (Some(proof), Some(prover)) => {
                            let t1 = Instant::now();
                            let st = RoundStatement {
                                round: spec.round,
                                model: model.clone(),
                                global: spec.global.clone(),
                                hyper: spec.hyper.clone(),
                                round_seed: spec.round_seed,
                                proof,
                            };
                            let p = if proof.sampled_steps.is_some() {
                                let wait = Duration::from_millis(spec.deadline_ms);
                                let mut challenge = |digests: Vec<[u8; 32]>| {
                                    let (tx, rx) = std::sync::mpsc::channel();
                                    chains
                                        .send((spec.round, digests, tx))
                                        .map_err(|_| "the connection is gone".to_string())?;
                                    rx.recv_timeout(wait).map_err(|_| {
                                        format!("no challenge within the round's {wait:?}")
                                    })
                                };
                                prover.prove_sampled(&st, participant, noise_seed, &mut challenge)
                            } else {
                                prover.prove(&st, participant, &update.delta, noise_seed)
                            }
                            .map_err(ParticipantError::Proving)?;
                            Some((p, t1.elapsed().as_secs_f64()))
                        }
                    };
                Ok((update, proven))
            });
        Trained {
            engine,
            round: spec.round,
            t0,
            outcome,
        }
    })
}

/// A proving job's material for a holder that was not given it: the proving key of the
/// welcome's circuit shape from `dir` and the holder's rows committed at the welcome's
/// tree depth. Refuses (rather than running a setup) when the key is not there.
fn load_prover(
    dir: &std::path::Path,
    w: &Welcome,
    data: &Dataset,
    threads: Option<usize>,
) -> Result<Prover, ParticipantError> {
    let Some(spec) = w.proof else {
        return Err(ParticipantError::Proving(
            "the job does not prove its rounds".into(),
        ));
    };
    let shape = rounds::shape(&w.model, &w.hyper, &spec)
        .map_err(|e| ParticipantError::Proving(format!("the job's circuit: {e}")))?;
    let store = KeyStore::new(dir);
    let (pk_path, _) = store.paths(&shape);
    let key = match store.load(&shape) {
        Ok(Some((pk, _))) => pk,
        Ok(None) => {
            return Err(ParticipantError::Proving(format!(
                "no proving key for this job's circuit shape {} in {} (expected {}): get the job's key files from its operator",
                shape.id(),
                dir.display(),
                pk_path.display()
            )))
        }
        Err(e) => {
            return Err(ParticipantError::Proving(format!(
                "reading the proving key in {}: {e}",
                dir.display()
            )))
        }
    };
    let committed = CommittedData::new(&data.features, data.n_features, &data.labels, &spec)
        .map_err(|e| ParticipantError::Proving(format!("committing to the rows: {e}")))?;
    let mut key = Groth16Prover::new(&shape, key).map_err(|e| {
        ParticipantError::Proving(format!("preparing the prover of shape {}: {e}", shape.id()))
    })?;
    if let Some(n) = threads {
        key = key
            .with_threads(n)
            .map_err(|e| ParticipantError::Proving(format!("the prover's {n} threads: {e}")))?;
    }
    Ok(Prover {
        key: Arc::new(key),
        data: committed,
    })
}

/// Joins the job at `cfg.coordinator` with `data` (prepared for the job its offer names)
/// and trains with `trainer` until the job ends. Each trained round is also sent to
/// `rounds` (a closed receiver is fine). The participant authenticates with
/// `cfg.identity` (a fresh key when `None`).
///
/// The run in three parts, each its own type: `Link` (the QUIC connection: made,
/// read, closed once whatever happens), the offer (the job's data, prepared or declined),
/// and `Session` (the round loop: one method per thing that can wake it).
pub async fn run(
    cfg: &ParticipantConfig,
    data: Arc<dyn HolderData>,
    trainer: Box<dyn Trainer>,
    rounds: mpsc::UnboundedSender<TrainedRound>,
) -> Result<ParticipantSummary, ParticipantError> {
    let identity = match &cfg.identity {
        Some(k) => k.clone(),
        None => IdentityKey::random(&mut OsRng),
    };
    let mut link = Link::connect(cfg, &identity).await?;
    let result = take_part(cfg, &mut link, identity, data, trainer, rounds).await;
    link.close().await;
    result
}

/// Reads the job's offer, prepares the holder's table for it (or declines, saying why)
/// and runs the job's rounds.
async fn take_part(
    cfg: &ParticipantConfig,
    link: &mut Link,
    identity: IdentityKey,
    data: Arc<dyn HolderData>,
    trainer: Box<dyn Trainer>,
    rounds: mpsc::UnboundedSender<TrainedRound>,
) -> Result<ParticipantSummary, ParticipantError> {
    // The coordinator speaks first: the job and the data it trains on. The holder prepares
    // its own table for it (off the executor: it may read a file), or says why it cannot.
    let offer = link.offer(cfg).await?;
    let prepared = {
        let offer = offer.clone();
        tokio::task::spawn_blocking(move || data.for_job(&offer))
            .await
            .map_err(|e| ParticipantError::Join(e.to_string()))?
    };
    let data = match prepared {
        Ok(rows) => rows,
        Err(reason) => {
            warn!(name = %cfg.name, job = %offer.job_id, %reason, "cannot prepare the job's data");
            link.decline(cfg, &reason).await?;
            return Err(ParticipantError::CannotJoin {
                job: offer.job_id,
                reason,
            });
        }
    };

    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let mut client = Client::new(&cfg.name, data.n_rows(), data.n_features, identity, seed)
        .with_min_corruption(cfg.min_corruption)
        .with_min_noise(cfg.min_noise);
    if let Some(p) = &cfg.prover {
        if p.rows() != data.n_rows() {
            return Err(ParticipantError::Proving(format!(
                "the committed data has {} rows, the training data {}",
                p.rows(),
                data.n_rows()
            )));
        }
        client = client.with_dataset_root(p.root());
    }
    let (chain_tx, chain_rx) = mpsc::unbounded_channel::<ChainOut>();
    Session {
        cfg,
        job_offered: offer.job_id,
        client,
        data,
        prover: cfg.prover.clone(),
        engine: Some(trainer),
        training: None,
        queued: None,
        job: None,
        trained: 0,
        chain_tx,
        chain_rx,
        beacon_to: None,
        rounds,
    }
    .run(link)
    .await
}

/// The holder's end of the connection: the stream it writes, the frames a reader task
/// hands over, and what closing it needs. Made by [`Link::connect`], closed once by
/// [`Link::close`] however the run ends.
struct Link {
    send: quinn::SendStream,
    frames: mpsc::Receiver<Result<Vec<u8>, TransportError>>,
    conn: quinn::Connection,
    endpoint: quinn::Endpoint,
    reader: JoinHandle<()>,
}

impl Link {
    /// Connects to `cfg.coordinator` as `identity` and takes the one stream the
    /// coordinator opens; a coordinator between jobs is [`ParticipantError::NoJob`].
    async fn connect(
        cfg: &ParticipantConfig,
        identity: &IdentityKey,
    ) -> Result<Link, ParticipantError> {
        let tls = ClientIdentity::new(identity)?;
        let endpoint = transport::client_endpoint(&cfg.fingerprint, Some(&tls))?;
        let connecting = endpoint
            .connect(cfg.coordinator, transport::SERVER_NAME)
            .map_err(TransportError::from)?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| {
                ParticipantError::Unreachable(format!(
                    "no answer from {} within {CONNECT_TIMEOUT:?}",
                    cfg.coordinator
                ))
            })?
            .map_err(|e| match &e {
                // A coordinator between jobs turns callers away.
                quinn::ConnectionError::ConnectionClosed(c)
                    if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
                {
                    ParticipantError::NoJob(format!("{} is not running a job now", cfg.coordinator))
                }
                _ => TransportError::from(e).into(),
            })?;
        // The coordinator opens the one stream and speaks first, with the job's offer.
        let (send, mut recv) = match tokio::time::timeout(OFFER_TIMEOUT, conn.accept_bi()).await {
            // A coordinator between jobs completes the handshake and closes: try again later.
            Ok(Err(quinn::ConnectionError::ApplicationClosed(c)))
                if c.error_code == quinn::VarInt::from_u32(transport::CLOSE_NO_JOB) =>
            {
                return Err(ParticipantError::NoJob(format!(
                    "{} is not running a job now",
                    cfg.coordinator
                )))
            }
            Ok(streams) => streams.map_err(TransportError::from)?,
            Err(_) => {
                return Err(ParticipantError::Unreachable(format!(
                    "{} sent no job offer within {OFFER_TIMEOUT:?}",
                    cfg.coordinator
                )))
            }
        };
        let (frame_tx, frames) = mpsc::channel::<Result<Vec<u8>, TransportError>>(64);
        let reader = tokio::spawn(async move {
            // The first frame is the offer, whose spec is small (`DataSpec::validate`
            // allows MAX_SPEC_COLUMNS names of MAX_COLUMN_NAME_BYTES): a coordinator cannot
            // make the holder decode an update-sized one before checking it.
            let mut limit = MAX_OFFER_BYTES;
            loop {
                let next = read_frame(&mut recv, limit).await;
                limit = MAX_FRAME_BYTES;
                let stop = !matches!(next, Ok(Some(_)));
                let item = match next {
                    Ok(Some(body)) => Ok(body),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                if frame_tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        Ok(Link {
            send,
            frames,
            conn,
            endpoint,
            reader,
        })
    }

    /// The coordinator's first frame: the job's offer (or its refusal).
    async fn offer(&mut self, cfg: &ParticipantConfig) -> Result<Offer, ParticipantError> {
        match tokio::time::timeout(OFFER_TIMEOUT, self.frames.recv()).await {
            Ok(Some(Ok(body))) => match wire::decode_body::<ToParticipant>(&body) {
                Ok(ToParticipant::Offer(o)) => Ok(o),
                Ok(ToParticipant::Rejected { reason }) => Err(ParticipantError::Rejected(reason)),
                Ok(_) => Err(ParticipantError::Protocol(ClientError::Unexpected {
                    what: "message before the job's offer",
                    state: "connecting",
                })),
                Err(e) => Err(ParticipantError::Protocol(ClientError::Wire(e))),
            },
            Ok(Some(Err(e))) => Err(e.into()),
            Ok(None) => Err(ParticipantError::Closed),
            Err(_) => Err(ParticipantError::Unreachable(format!(
                "{} sent no job offer within {OFFER_TIMEOUT:?}",
                cfg.coordinator
            ))),
        }
    }

    /// Tells the coordinator why this holder cannot take part, and waits (briefly) until
    /// it has read it: closing at once could lose the frame in flight.
    async fn decline(
        &mut self,
        cfg: &ParticipantConfig,
        reason: &str,
    ) -> Result<(), ParticipantError> {
        let msg = ToCoordinator::CannotJoin {
            name: wire::printable(&cfg.name, wire::MAX_NAME_BYTES),
            reason: wire::printable(reason, wire::MAX_REASON_BYTES),
        };
        let sent = write_frame(&mut self.send, &wire::encode(&msg)?).await;
        let _ = self.send.finish();
        let _ = tokio::time::timeout(CLOSE_WAIT, self.send.stopped()).await;
        Ok(sent?)
    }

    /// Sends what `client` queued, each message through `faults` when there is a hook.
    async fn flush(
        &mut self,
        client: &mut Client,
        faults: Option<&dyn FaultHook>,
    ) -> Result<(), ParticipantError> {
        while let Some(mut msg) = client.poll_transmit() {
            match faults.map_or(FaultAction::Send, |f| f.before_send(&mut msg)) {
                FaultAction::Send => {}
                FaultAction::Delay(d) => tokio::time::sleep(d).await,
                FaultAction::Vanish(why) => return Err(ParticipantError::Vanished(why)),
            }
            write_frame(&mut self.send, &wire::encode(&msg)?).await?;
        }
        Ok(())
    }

    /// Finishes the stream and closes the connection.
    async fn close(mut self) {
        let _ = self.send.finish();
        self.conn.close(0u32.into(), b"bye");
        self.reader.abort();
        // The close is sent; draining lasts three probe timeouts, which grow with the RTT
        // a loaded machine measures: not worth waiting long for.
        let _ = tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await;
    }
}

/// What wakes the round loop.
enum Wake {
    /// A sampled-step round's chain of digests is ready to send.
    Chain(ChainOut),
    /// A frame from the coordinator (`None`: the stream ended).
    Frame(Option<Result<Vec<u8>, TransportError>>),
    /// Local training (and proving) of a round ended.
    Trained(Result<Trained, tokio::task::JoinError>),
}

/// A holder in a job: the protocol client, the trainer (idle, or training on a blocking
/// thread) and what waits for it. One method per thing that can wake the loop.
struct Session<'a> {
    cfg: &'a ParticipantConfig,
    /// The job the offer named (the welcome must name it too).
    job_offered: String,
    client: Client,
    data: Arc<Dataset>,
    prover: Option<Arc<dyn UpdateProver>>,
    /// The trainer while no round trains.
    engine: Option<Box<dyn Trainer>>,
    training: Option<Training>,
    /// A round waiting for the trainer (a newer one replaces it).
    queued: Option<Queued>,
    /// The model, once welcomed.
    job: Option<Job>,
    trained: u32,
    chain_tx: mpsc::UnboundedSender<ChainOut>,
    chain_rx: mpsc::UnboundedReceiver<ChainOut>,
    /// The sampled-step round waiting for its beacon, and where it goes.
    beacon_to: Option<(u32, std::sync::mpsc::Sender<[u8; 32]>)>,
    rounds: mpsc::UnboundedSender<TrainedRound>,
}

impl Session<'_> {
    /// The round loop: send what is queued, act on the client's events, start a queued
    /// round when the trainer is free, then wait for whatever comes next.
    async fn run(mut self, link: &mut Link) -> Result<ParticipantSummary, ParticipantError> {
        loop {
            self.flush(link).await?;
            while let Some(event) = self.client.poll_event() {
                if let Some(end) = self.on_event(event, link).await? {
                    return Ok(end);
                }
            }
            // What the events queued (a dataset commitment after the welcome) goes out
            // before waiting: the coordinator sends nothing more until it has it.
            self.flush(link).await?;
            self.start_queued_round()?;
            let wake = tokio::select! {
                Some(chain) = self.chain_rx.recv() => Wake::Chain(chain),
                frame = link.frames.recv() => Wake::Frame(frame),
                done = async { self.training.as_mut().expect("guarded").await }, if self.training.is_some() => Wake::Trained(done),
            };
            match wake {
                Wake::Chain(chain) => self.on_chain(chain),
                Wake::Frame(frame) => self.on_frame(frame).await?,
                Wake::Trained(done) => self.on_trained(done, link).await?,
            }
        }
    }

    async fn flush(&mut self, link: &mut Link) -> Result<(), ParticipantError> {
        link.flush(&mut self.client, self.cfg.faults.as_deref())
            .await
    }

    /// Leaves the job saying why (best effort), and ends the run with `e`.
    async fn leave(&mut self, link: &mut Link, e: ParticipantError) -> ParticipantError {
        self.client.leave(e.to_string());
        if let Err(sent) = self.flush(link).await {
            warn!(name = %self.cfg.name, error = %sent, "could not say why we leave");
        }
        e
    }

    /// One event of the protocol client; `Some` when the job ended well.
    async fn on_event(
        &mut self,
        event: ClientEvent,
        link: &mut Link,
    ) -> Result<Option<ParticipantSummary>, ParticipantError> {
        let cfg = self.cfg;
        match event {
            ClientEvent::Joined(w) if w.job_id != self.job_offered => {
                return Err(ParticipantError::Rejected(format!(
                    "welcomed to job {} after being offered job {}",
                    w.job_id, self.job_offered
                )));
            }
            ClientEvent::Joined(w) => {
                info!(name = %cfg.name, participant = w.participant, job = %w.job_id, model = %w.model.describe(), "joined");
                if w.proof.is_some() && self.prover.is_none() {
                    match self.load_prover(&w).await {
                        Ok(p) => {
                            self.client.commit_dataset(p.data.root())?;
                            info!(name = %cfg.name, rows = p.data.rows.len(), "committed to the dataset");
                            self.prover = Some(Arc::new(p));
                        }
                        Err(e) => {
                            warn!(name = %cfg.name, error = %e, "cannot prove; leaving the job");
                            return Err(self.leave(link, e).await);
                        }
                    }
                }
                self.job = Some(Job {
                    model: w.model,
                    noise_seed: self.client.noise_seed(),
                });
            }
            // A newer round replaces one still waiting for the trainer.
            ClientEvent::Train {
                spec,
                index,
                batches,
            } => self.queued = Some((*spec, index, batches)),
            ClientEvent::Challenge { round, beacon } => match self.beacon_to.take() {
                Some((r, tx)) if r == round => {
                    let _ = tx.send(beacon);
                }
                other => {
                    self.beacon_to = other;
                    warn!(name = %cfg.name, round, "a challenge nobody waits for");
                }
            },
            ClientEvent::Finished {
                message, completed, ..
            } => {
                return Ok(Some(ParticipantSummary {
                    rounds_trained: self.trained,
                    completed,
                    message,
                }))
            }
            ClientEvent::Rejected { reason } => return Err(ParticipantError::Rejected(reason)),
        }
        Ok(None)
    }

    /// Loads the proving key of the welcome's shape and builds the dataset tree, off the
    /// executor (the coordinator sends nothing before the commitment arrives).
    /// (`&mut self`: a shared borrow held across the await would need the trainer `Sync`.)
    async fn load_prover(&mut self, w: &Welcome) -> Result<Prover, ParticipantError> {
        let Some(dir) = self.cfg.keys.clone() else {
            return Err(ParticipantError::Proving(
                "the job proves its rounds and this participant has no proving key (give it the job's key directory)".into(),
            ));
        };
        let (w, data, threads) = (w.clone(), Arc::clone(&self.data), self.cfg.prove_threads);
        tokio::task::spawn_blocking(move || load_prover(&dir, &w, &data, threads))
            .await
            .map_err(|e| ParticipantError::Join(e.to_string()))?
    }

    /// Starts the queued round when the trainer is free and the model known.
    fn start_queued_round(&mut self) -> Result<(), ParticipantError> {
        if self.training.is_some() {
            return Ok(());
        }
        if let (Some(next), Some(j)) = (self.queued.take(), self.job.as_ref()) {
            let engine = self
                .engine
                .take()
                .ok_or_else(|| ParticipantError::Join("trainer lost".into()))?;
            self.training = Some(start_training(
                engine,
                j,
                Arc::clone(&self.data),
                self.prover.clone(),
                next,
                self.chain_tx.clone(),
                self.cfg.compute.clone(),
            ));
        }
        Ok(())
    }

    /// A sampled-step round's chain: sent, and its beacon awaited.
    fn on_chain(&mut self, (round, digests, tx): ChainOut) {
        match self.client.send_chain(round, digests) {
            Ok(()) => self.beacon_to = Some((round, tx)),
            // Dropping `tx` tells the prover there will be no challenge.
            Err(e) => warn!(name = %self.cfg.name, error = %e, "step chain not sent"),
        }
    }

    /// A frame from the coordinator.
    async fn on_frame(
        &mut self,
        frame: Option<Result<Vec<u8>, TransportError>>,
    ) -> Result<(), ParticipantError> {
        let body = match frame {
            Some(Ok(body)) => body,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(ParticipantError::Closed),
        };
        let client = &mut self.client;
        match heavy(self.cfg.compute.as_ref(), || client.handle_frame(&body)).await {
            Ok(()) => Ok(()),
            // A refused step costs this round, not the job; a refused round spec was
            // declined with its reason: the holder stays in the job.
            Err(
                e @ (ClientError::Secure { .. }
                | ClientError::Unexpected { .. }
                | ClientError::Replayed { .. }
                | ClientError::TruncatedSeal { .. }
                | ClientError::BadRound { .. }
                | ClientError::WrongModel { .. }),
            ) => {
                warn!(name = %self.cfg.name, error = %e, "coordinator message refused");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A round's training (and proof) ended: its update goes out, or the holder leaves.
    async fn on_trained(
        &mut self,
        done: Result<Trained, tokio::task::JoinError>,
        link: &mut Link,
    ) -> Result<(), ParticipantError> {
        self.training = None;
        let Trained {
            engine,
            round,
            t0,
            outcome,
        } = done.map_err(|e| ParticipantError::Join(e.to_string()))?;
        self.engine = Some(engine);
        let (update, proven) = match outcome {
            Ok(done) => done,
            Err(e) => {
                warn!(error = %e, "local training failed; leaving the job");
                return Err(self.leave(link, e).await);
            }
        };
        let loss = update.mean_loss;
        let total = t0.elapsed().as_secs_f64();
        let prove_seconds = proven.as_ref().map(|(_, s)| *s);
        let client = &mut self.client;
        let sent = heavy(self.cfg.compute.as_ref(), || match proven {
            Some((p, _)) => {
                client.submit_proven(round, &p.update, &p.blinding_limbs, loss, p.input)
            }
            None => client.submit_update(round, update.delta, loss),
        })
        .await;
        match sent {
            Ok(()) => {
                self.trained += 1;
                let train_seconds = total - prove_seconds.unwrap_or(0.0);
                let _ = self.rounds.send(TrainedRound {
                    round,
                    loss,
                    train_seconds,
                    prove_seconds,
                });
            }
            // The round moved on while we trained: nothing to send.
            Err(ClientError::StaleRound { .. }) => {}
            Err(e) => warn!(name = %self.cfg.name, error = %e, "update not sent"),
        }
        Ok(())
    }
}

/// How long a participant waits for its closed connection to drain before it returns.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

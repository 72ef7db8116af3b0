//! The participant's QUIC driver: a thin loop around the sans-IO [`Client`].
//!
//! Connects to the coordinator (its certificate pinned by fingerprint), sends the Hello,
//! then acts on the client's events. A reader task turns the stream into frames, so the
//! loop keeps answering the coordinator (secure aggregation's key and share phases) while
//! local training runs on a blocking thread — libtorch work never blocks the async
//! executor. The trained update goes back through the state machine, which clips it and
//! either sends it (plain FedAvg) or quantises and masks it (secure aggregation).
//! Returns when the job ends for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use cairn_crypto::sign::IdentityKey;
use cairn_datasets::Dataset;
use cairn_protocol::client::{Client, ClientError, ClientEvent};
use cairn_protocol::model::ModelSpec;
use cairn_protocol::transport::{self, read_frame, write_frame, TransportError};
use cairn_protocol::wire::{self, RoundSpec, MAX_FRAME_BYTES};
use rand::rngs::OsRng;
use rand::RngCore;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

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
    /// The coordinator closed the connection before the job finished.
    #[error("the coordinator closed the connection before the job finished")]
    Closed,
    /// The blocking training task panicked.
    #[error("training task failed: {0}")]
    Join(String),
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
}

/// The end of a participant's job.
#[derive(Clone, Debug)]
pub struct ParticipantSummary {
    /// Rounds it trained in.
    pub rounds_trained: u32,
    /// The coordinator's closing message.
    pub message: String,
}

type Training = JoinHandle<(
    Box<dyn Trainer>,
    u32,
    Instant,
    Result<LocalUpdate, TrainError>,
)>;

fn start_training(
    mut engine: Box<dyn Trainer>,
    model: ModelSpec,
    data: Arc<Dataset>,
    spec: RoundSpec,
    batches: Vec<Vec<u32>>,
) -> Training {
    tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let input = TrainInput {
            spec: &model,
            global: &spec.global,
            features: &data.features,
            labels: &data.labels,
            hyper: &spec.hyper,
            batches: &batches,
        };
        let out = engine.train(&input);
        (engine, spec.round, t0, out)
    })
}

/// Joins the job at `cfg.coordinator` with `data` and trains with `trainer` until the job
/// ends. Each trained round is also sent to `rounds` (a closed receiver is fine). The
/// participant's identity key is fresh for this run (allow-listed identities come with
/// enrolment).
pub async fn run(
    cfg: &ParticipantConfig,
    data: Arc<Dataset>,
    trainer: Box<dyn Trainer>,
    rounds: mpsc::UnboundedSender<TrainedRound>,
) -> Result<ParticipantSummary, ParticipantError> {
    let endpoint = transport::client_endpoint(&cfg.fingerprint)?;
    let conn = endpoint
        .connect(cfg.coordinator, transport::SERVER_NAME)
        .map_err(TransportError::from)?
        .await
        .map_err(TransportError::from)?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(TransportError::from)?;
    let (frame_tx, mut frames) = mpsc::channel::<Result<Vec<u8>, TransportError>>(64);
    let reader = tokio::spawn(async move {
        loop {
            let next = read_frame(&mut recv, MAX_FRAME_BYTES).await;
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

    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let identity = IdentityKey::random(&mut OsRng);
    let mut client = Client::new(&cfg.name, data.n_rows(), data.n_features, identity, seed);
    let mut idle: Option<Box<dyn Trainer>> = Some(trainer);
    let mut training: Option<Training> = None;
    let mut queued: Option<(RoundSpec, Vec<Vec<u32>>)> = None;
    let mut model: Option<ModelSpec> = None;
    let mut trained = 0;
    let result = loop {
        while let Some(msg) = client.poll_transmit() {
            write_frame(&mut send, &wire::encode(&msg)?).await?;
        }
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::Joined(w) => {
                    info!(name = %cfg.name, participant = w.participant, job = %w.job_id, model = %w.model.describe(), "joined");
                    model = Some(w.model);
                }
                // A newer round replaces one still waiting for the trainer.
                ClientEvent::Train { spec, batches } => queued = Some((spec, batches)),
                ClientEvent::Finished { message, .. } => {
                    client_close(send, conn, endpoint, reader).await;
                    return Ok(ParticipantSummary {
                        rounds_trained: trained,
                        message,
                    });
                }
                ClientEvent::Rejected { reason } => {
                    client_close(send, conn, endpoint, reader).await;
                    return Err(ParticipantError::Rejected(reason));
                }
            }
        }
        if training.is_none() {
            if let (Some((spec, batches)), Some(m)) = (queued.take(), model.clone()) {
                let engine = idle
                    .take()
                    .ok_or_else(|| ParticipantError::Join("trainer lost".into()))?;
                training = Some(start_training(engine, m, Arc::clone(&data), spec, batches));
            }
        }
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(Ok(body)) => match client.handle_frame(&body) {
                    Ok(()) => {}
                    // A refused step costs this round, not the job.
                    Err(e @ (ClientError::Secure { .. } | ClientError::Unexpected { .. })) => {
                        warn!(name = %cfg.name, error = %e, "coordinator message refused");
                    }
                    Err(e) => break Err(e.into()),
                },
                Some(Err(e)) => break Err(e.into()),
                None => break Err(ParticipantError::Closed),
            },
            done = async { training.as_mut().expect("guarded").await }, if training.is_some() => {
                training = None;
                let (engine, round, t0, outcome) = done.map_err(|e| ParticipantError::Join(e.to_string()))?;
                idle = Some(engine);
                match outcome {
                    Ok(update) => {
                        let loss = update.mean_loss;
                        match client.submit_update(round, update.delta, loss) {
                            Ok(()) => {
                                trained += 1;
                                let secs = t0.elapsed().as_secs_f64();
                                let _ = rounds.send(TrainedRound { round, loss, train_seconds: secs });
                            }
                            // The round moved on while we trained: nothing to send.
                            Err(ClientError::StaleRound { .. }) => {}
                            Err(e) => warn!(name = %cfg.name, error = %e, "update not sent"),
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "local training failed; leaving the job");
                        client.leave(e.to_string());
                        while let Some(msg) = client.poll_transmit() {
                            write_frame(&mut send, &wire::encode(&msg)?).await?;
                        }
                        break Err(e.into());
                    }
                }
            }
        }
    };
    client_close(send, conn, endpoint, reader).await;
    result
}

async fn client_close(
    mut send: quinn::SendStream,
    conn: quinn::Connection,
    endpoint: quinn::Endpoint,
    reader: JoinHandle<()>,
) {
    let _ = send.finish();
    conn.close(0u32.into(), b"bye");
    reader.abort();
    endpoint.wait_idle().await;
}

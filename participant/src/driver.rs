//! The participant's QUIC driver: a thin loop around the sans-IO [`Client`].
//!
//! Connects to the coordinator (its certificate pinned by fingerprint), sends the Hello,
//! then reads frames and acts on the client's events: local training runs on a blocking
//! thread (libtorch work never blocks the async executor), and its update goes back
//! through the state machine, which clips it. Returns when the job ends for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use cairn_datasets::Dataset;
use cairn_protocol::client::{Client, ClientError, ClientEvent};
use cairn_protocol::transport::{self, read_frame, write_frame, TransportError};
use cairn_protocol::wire::{self, MAX_FRAME_BYTES};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::trainer::{TrainError, TrainInput, Trainer};

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

/// Joins the job at `cfg.coordinator` with `data` and trains with `trainer` until the job
/// ends. Each trained round is also sent to `rounds` (a closed receiver is fine).
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
    let mut client = Client::new(&cfg.name, data.n_rows(), data.n_features);
    let mut trainer = Some(trainer);
    let mut model = None;
    let mut trained = 0;
    let result = loop {
        while let Some(msg) = client.poll_transmit() {
            write_frame(&mut send, &wire::encode(&msg)?).await?;
        }
        let Some(event) = client.poll_event() else {
            if client.is_done() {
                break Err(ParticipantError::Closed);
            }
            match read_frame(&mut recv, MAX_FRAME_BYTES).await {
                Ok(Some(body)) => client.handle_frame(&body)?,
                Ok(None) => break Err(ParticipantError::Closed),
                Err(e) => break Err(e.into()),
            }
            continue;
        };
        match event {
            ClientEvent::Joined(w) => {
                info!(name = %cfg.name, participant = w.participant, job = %w.job_id, model = %w.model.describe(), "joined");
                model = Some(w.model);
            }
            ClientEvent::Train { spec, batches } => {
                let t0 = Instant::now();
                let Some(mut engine) = trainer.take() else { break Err(ParticipantError::Join("no trainer".into())) };
                let data = Arc::clone(&data);
                // The client machine only emits Train after Welcome, so the model is known.
                let Some(model) = model.clone() else { break Err(ParticipantError::Closed) };
                let global = spec.global.clone();
                let hyper = spec.hyper.clone();
                let (engine, outcome) = tokio::task::spawn_blocking(move || {
                    let input = TrainInput {
                        spec: &model,
                        global: &global,
                        features: &data.features,
                        labels: &data.labels,
                        hyper: &hyper,
                        batches: &batches,
                    };
                    let out = engine.train(&input);
                    (engine, out)
                })
                .await
                .map_err(|e| ParticipantError::Join(e.to_string()))?;
                trainer = Some(engine);
                match outcome {
                    Ok(update) => {
                        let secs = t0.elapsed().as_secs_f64();
                        client.submit_update(spec.round, update.delta, update.mean_loss)?;
                        trained += 1;
                        let _ = rounds.send(TrainedRound { round: spec.round, loss: update.mean_loss, train_seconds: secs });
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
            ClientEvent::Finished { message, .. } => {
                break Ok(ParticipantSummary { rounds_trained: trained, message });
            }
            ClientEvent::Rejected { reason } => break Err(ParticipantError::Rejected(reason)),
        }
    };
    let _ = send.finish();
    conn.close(0u32.into(), b"bye");
    endpoint.wait_idle().await;
    result
}

//! The coordinator's QUIC driver: a thin loop around the sans-IO [`Job`].
//!
//! Each accepted connection gets a reader task (frames in, size-checked before
//! allocation) and a writer task (frames out); both talk to one central loop that owns
//! the job, so the state machine is never shared or locked. The loop feeds the job
//! frames, disconnects and timeouts, sends what it asks, evaluates each new global model
//! on the test split, and reports [`Progress`]. `run_job` returns when the job ends or
//! when `shutdown` resolves (mini-redis style).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_crypto::sign::IdentityPublic;
use cairn_datasets::Dataset;
use cairn_protocol::job::{Job, JobEvent};
use cairn_protocol::metrics::{evaluate_at, DEFAULT_THRESHOLD};
use cairn_protocol::model::ModelSpec;
use cairn_protocol::round::DropReason;
use cairn_protocol::round::ParticipantId;
use cairn_protocol::secure_round::PhaseClosed;
use cairn_protocol::server_opt::ServerOptState;
use cairn_protocol::transport::{peer_identity, read_frame, TransportError};
use cairn_protocol::wire::{self, ToParticipant, MAX_FRAME_BYTES};
use cairn_protocol::work::{unmask_threads, Done};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::persist::Persist;
use crate::progress::{JobSummary, PhaseRecord, PrivacySpent, Progress, RoundRecord};
use crate::transcript::Recorder;
use cairn_proofs::verify::{SumChecker, Verifier};

/// Errors that stop the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A message could not be encoded.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// The test split does not fit the job's model.
    #[error("test split has {got} features, the model expects {want}")]
    TestShape {
        /// Test features.
        got: usize,
        /// Model features.
        want: usize,
    },
    /// A job that proves its rounds was started without a verifying key.
    #[error("the job proves its rounds but no verifying key was given")]
    NoVerifier,
    /// Shut down before the job finished.
    #[error("shut down before the job finished ({rounds} rounds completed)")]
    Shutdown {
        /// Rounds completed before the shutdown.
        rounds: u32,
    },
    /// Recording the job in the store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

enum Inbound {
    /// A connection completed its handshake as the identity key of its certificate.
    Connected(
        ParticipantId,
        mpsc::UnboundedSender<Outbound>,
        SocketAddr,
        IdentityPublic,
    ),
    /// A handshake was refused (not allow-listed, no certificate, wrong key type…).
    Refused(ParticipantId, String),
    Frame(ParticipantId, Vec<u8>),
    Closed(ParticipantId, Option<String>),
}

/// A piece of the job's heavy work, run on a blocking thread: its answer and how long it
/// took.
struct Finished {
    done: Done,
    seconds: f64,
}

enum Outbound {
    /// A frame, then (when `close`) an orderly close once the peer has read it. Shared:
    /// a message sent to every holder (a round's spec, with the global model) is encoded
    /// once and held once, however many connections it is queued on.
    Frame { frame: Bytes, close: bool },
    /// Close the connection now, mid-job (the coordinator is stopping; the holder may
    /// reconnect to the job when it resumes).
    Abort,
}

/// Runs `job` on `endpoint` until it finishes or `shutdown` resolves; evaluates each new
/// model on `test` and sends [`Progress`] to `progress` (a closed receiver is fine).
/// A job that proves its rounds needs `verifier`: each proof is checked on a blocking
/// thread as it arrives, while the loop goes on receiving.
pub async fn run_job(
    endpoint: quinn::Endpoint,
    job: Job,
    test: &Dataset,
    progress: mpsc::UnboundedSender<Progress>,
    shutdown: impl Future<Output = ()>,
    verifier: Option<Arc<Verifier>>,
) -> Result<JobSummary, CoordinatorError> {
    let stop = async {
        shutdown.await;
        Stop::Quietly
    };
    let opts = RunOptions {
        verifier,
        ..RunOptions::default()
    };
    let summary = run_job_with(endpoint.clone(), job, test, progress, stop, opts).await;
    if summary.is_err() {
        endpoint.close(0u32.into(), b"shutdown");
    }
    summary
}

/// How a job is stopped before it ends ([`run_job_with`]'s `shutdown`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The coordinator is going away: the job's connections are closed as if it had
    /// crashed, and holders that reconnect find it again when a coordinator resumes it.
    Quietly,
    /// The job ends for good (e.g. cancelled): each holder is told why.
    End(String),
}

/// What [`run_job_with`] takes beside the job: all optional.
#[derive(Default)]
pub struct RunOptions {
    /// Checks each proof of a proven job (required for one).
    pub verifier: Option<Arc<Verifier>>,
    /// Records the job in a store as it goes (see [`Persist`]): each round in flight, then
    /// its record, model and transcript records in one transaction. A `Persist` from
    /// [`Persist::resume`] goes on with the job's stored transcript.
    pub persist: Option<Persist>,
    /// The TLS configuration (this job's enrolment) every connection is accepted with:
    /// also those that arrived before the job began, which would otherwise keep the
    /// configuration the endpoint had then.
    pub server_config: Option<Arc<quinn::ServerConfig>>,
    /// Signs a proven job's transcript head when it ends: the coordinator's long-lived
    /// key ([`cairn_protocol::transport::ServerIdentity::seal_key`]), so that a resumed
    /// job seals under the key its header names. A fresh key when not given.
    pub seal_key: Option<cairn_crypto::sign::IdentityKey>,
    /// CPU seconds the coordinator has used so far (e.g. of the threads of the runtime it
    /// runs on), sampled when each secure-round phase closes ([`PhaseRecord::cpu_seconds`]).
    pub cpu: Option<CpuMeter>,
    /// Where the job's holders' states are reported as it runs (the admin interface's
    /// status page shows them).
    pub holders: Option<crate::admin::JobHolders>,
    /// The decision threshold of each round's test accuracy, precision, recall and F1
    /// (the job file's `[metrics] threshold`); 0.5 when not given.
    pub threshold: Option<f64>,
}

/// Reads the coordinator's CPU seconds so far (see [`RunOptions::cpu`]).
pub type CpuMeter = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

/// Where the coordinator's loop is in a phase: when it began, and the loop's counters then.
#[derive(Clone, Copy)]
struct PhaseMark {
    at: Instant,
    idle: Duration,
    bytes_in: u64,
    bytes_out: u64,
    cpu: Option<f64>,
}

/// The loop's running counters, for per-phase records.
struct LoopCounters {
    idle: Duration,
    bytes_in: u64,
    bytes_out: u64,
    cpu: Option<CpuMeter>,
}

impl LoopCounters {
    fn mark(&self) -> PhaseMark {
        PhaseMark {
            at: Instant::now(),
            idle: self.idle,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            cpu: self.cpu.as_ref().and_then(|f| f()),
        }
    }
}

/// What woke the loop.
enum Woke<S> {
    Inbound(Option<Inbound>),
    Done(Finished),
    Timeout,
    Stop(S),
}

/// [`run_job`] with [`RunOptions`]. The endpoint stays open when the job ends or is
/// stopped, for the coordinator's next job.
pub async fn run_job_with(
    endpoint: quinn::Endpoint,
    job: Job,
    test: &Dataset,
    progress: mpsc::UnboundedSender<Progress>,
    shutdown: impl Future<Output = Stop>,
    opts: RunOptions,
) -> Result<JobSummary, CoordinatorError> {
    let RunOptions {
        verifier,
        mut persist,
        server_config,
        seal_key,
        cpu,
        holders,
        threshold,
    } = opts;
    let seal_key =
        seal_key.unwrap_or_else(|| cairn_crypto::sign::IdentityKey::random(&mut rand::rngs::OsRng));
    if job.config().proof.is_some() && verifier.is_none() {
        return Err(CoordinatorError::NoVerifier);
    }
    let model = job.config().model.clone();
    if test.n_features != model.n_features {
        return Err(CoordinatorError::TestShape {
            got: test.n_features,
            want: model.n_features,
        });
    }
    let limit = wire::update_limit(model.param_count()).min(MAX_FRAME_BYTES);
    // Bounded: when the job falls behind, connection readers wait (and QUIC's flow
    // control holds their peers back) instead of the coordinator buffering without limit.
    let (in_tx, mut in_rx) = mpsc::channel::<Inbound>(INBOUND_QUEUE);
    let limits = ConnectionLimits {
        frame: limit,
        connections: job.config().participants.saturating_mul(2) + SPARE_CONNECTIONS,
    };
    let (done_tx, mut dones) = mpsc::unbounded_channel::<Finished>();
    // A resumed job goes on with its stored transcript; a new one starts its own.
    let recorder = match persist.as_mut().and_then(Persist::take_recorder) {
        Some(mut r) => {
            r.set_seal_key(seal_key);
            Some(r)
        }
        None => verifier.as_ref().and_then(|v| {
            let mut r =
                Recorder::new(job.config(), v.key_bytes().to_vec(), job.global(), seal_key)?;
            r.abandoned_before(job.next_round());
            Some(r)
        }),
    };
    let counters = LoopCounters {
        idle: Duration::ZERO,
        bytes_in: 0,
        bytes_out: 0,
        cpu,
    };
    let mut d = Driver {
        job,
        model,
        test,
        threshold: threshold.unwrap_or(DEFAULT_THRESHOLD),
        progress,
        verifier,
        sums: Arc::new(SumChecker::new()),
        done_tx,
        persist,
        recorder,
        holders,
        // However the run ends (an error included), its accept loop stops and the
        // connections still open are closed: nothing of this job lingers into the next.
        conns: Connections {
            acceptor: tokio::spawn(accept_loop(endpoint.clone(), in_tx, limits, server_config)),
            open: HashMap::new(),
        },
        phase_mark: counters.mark(),
        counters,
        last_frame: None,
        spec_bytes: 0,
        records: Vec::new(),
        round_started: HashMap::new(),
        finished_error: None,
        proof_times: HashMap::new(),
        names: HashMap::new(),
    };
    tokio::pin!(shutdown);
    loop {
        d.spawn_work();
        d.flush()?;
        let mut more_to_send = false;
        while let Some(event) = d.job.poll_event() {
            more_to_send |= d.on_event(event).await?;
        }
        if d.job.is_finished() {
            break;
        }
        if more_to_send {
            continue;
        }
        let wake = d.job.poll_timeout();
        let waiting = Instant::now();
        let woke = tokio::select! {
            msg = in_rx.recv() => Woke::Inbound(msg),
            Some(f) = dones.recv() => Woke::Done(f),
            () = sleep_until(wake) => Woke::Timeout,
            stop = &mut shutdown => Woke::Stop(stop),
        };
        d.counters.idle += waiting.elapsed();
        match woke {
            Woke::Inbound(Some(msg)) => d.on_inbound(msg),
            Woke::Inbound(None) => break,
            Woke::Done(f) => d.on_done(f),
            Woke::Timeout => d.job.handle_timeout(Instant::now()),
            Woke::Stop(stop) => return Err(d.stop(&endpoint, stop).await?),
        }
    }
    d.finish(&endpoint).await
}

/// One job's run on the coordinator: the job's state machine and what its driver keeps
/// beside it (connections, the transcript recorder, the store, per-round timings), with one
/// method per thing that happens: an inbound message, a finished piece of work, a job
/// event, a stop.
struct Driver<'a> {
    job: Job,
    model: ModelSpec,
    test: &'a Dataset,
    threshold: f64,
    progress: mpsc::UnboundedSender<Progress>,
    verifier: Option<Arc<Verifier>>,
    /// The aggregate check's Pedersen generators, made once for the job.
    sums: Arc<SumChecker>,
    done_tx: mpsc::UnboundedSender<Finished>,
    persist: Option<Persist>,
    recorder: Option<Recorder>,
    holders: Option<crate::admin::JobHolders>,
    conns: Connections,
    counters: LoopCounters,
    phase_mark: PhaseMark,
    /// The last frame encoded: consecutive transmits of one message (a broadcast) share it.
    last_frame: Option<(ToParticipant, Bytes)>,
    /// Bytes of the round spec about to open a round (counted in that round).
    spec_bytes: u64,
    records: Vec<RoundRecord>,
    round_started: HashMap<u32, (Instant, usize)>,
    finished_error: Option<String>,
    proof_times: HashMap<u32, Vec<f64>>,
    /// Holders' names (control characters already filtered), to name them in drop reasons.
    names: HashMap<ParticipantId, String>,
}

impl Driver<'_> {
    /// Proof checks, mask removal and the aggregate check run on blocking threads, while
    /// the loop goes on receiving.
    fn spawn_work(&mut self) {
        while let Some(work) = self.job.poll_work() {
            let (v, sums, tx) = (
                self.verifier.clone(),
                Arc::clone(&self.sums),
                self.done_tx.clone(),
            );
            tokio::task::spawn_blocking(move || {
                let t0 = Instant::now();
                let done = work.run(v.as_deref(), &sums, unmask_threads());
                let _ = tx.send(Finished {
                    done,
                    seconds: t0.elapsed().as_secs_f64(),
                });
            });
        }
    }

    /// Sends what the job asks to send.
    fn flush(&mut self) -> Result<(), CoordinatorError> {
        while let Some(t) = self.job.poll_transmit() {
            let is_spec = matches!(t.msg, ToParticipant::Round(_));
            let frame = match &self.last_frame {
                Some((msg, frame)) if *msg == t.msg => frame.clone(),
                _ => {
                    let frame = Bytes::from(wire::encode(&t.msg)?);
                    self.last_frame = Some((t.msg, frame.clone()));
                    frame
                }
            };
            // A round's spec is counted in the round it opens (it goes out just before the
            // round's start is reported).
            if is_spec {
                self.spec_bytes += frame.len() as u64;
            } else {
                self.counters.bytes_out += frame.len() as u64;
            }
            if let Some(tx) = self.conns.open.get(&t.to) {
                let _ = tx.send(Outbound::Frame {
                    frame,
                    close: t.close,
                });
            }
            if t.close {
                self.conns.open.remove(&t.to);
            }
        }
        Ok(())
    }

    fn on_inbound(&mut self, msg: Inbound) {
        match msg {
            Inbound::Connected(p, tx, addr, identity) => {
                debug!(participant = p, %addr, identity = %hex::encode(identity.0), "connection");
                self.conns.open.insert(p, tx);
                if let Some(h) = &self.holders {
                    h.connected(p, &identity.0);
                }
                self.job.handle_connected(p, identity);
            }
            Inbound::Refused(p, reason) => {
                warn!(participant = p, %reason, "handshake refused");
                let _ = self.progress.send(Progress::Refused {
                    participant: p,
                    reason,
                });
            }
            Inbound::Frame(p, body) => {
                self.counters.bytes_in += body.len() as u64;
                if let Err(e) = self.job.handle_frame(p, &body, Instant::now()) {
                    warn!(participant = p, error = %e, "message refused");
                }
            }
            Inbound::Closed(p, why) => {
                if let Some(h) = &self.holders {
                    h.left(p, why.as_deref());
                }
                if let Some(why) = why {
                    warn!(participant = p, %why, "connection lost");
                }
                self.conns.open.remove(&p);
                self.job.handle_disconnect(p, Instant::now());
            }
        }
    }

    fn on_done(&mut self, f: Finished) {
        match &f.done {
            Done::Verdict {
                round,
                participant,
                result,
            } => {
                if let Err(reason) = result {
                    warn!(round, participant, %reason, "proof rejected");
                }
                self.proof_times.entry(*round).or_default().push(f.seconds);
            }
            Done::Unmasked(u) => debug!(round = u.round(), seconds = f.seconds, "unmasked"),
            Done::SumChecked { round, result } => {
                if let Err(reason) = result {
                    warn!(round, %reason, "aggregate commitment check failed");
                }
            }
        }
        self.job.handle_done(f.done, Instant::now());
    }

    /// Records and reports one job event; true when the job has new messages to send
    /// before the loop waits again (its seal).
    async fn on_event(&mut self, event: JobEvent) -> Result<bool, CoordinatorError> {
        if let Some(r) = &mut self.recorder {
            r.on_event(&event);
        }
        match event {
            JobEvent::Joined {
                participant,
                name,
                n_rows,
            } => {
                info!(participant, %name, n_rows, "participant joined");
                if let Some(h) = &self.holders {
                    h.joined(participant, &name, n_rows);
                }
                self.names.insert(participant, name.clone());
                let _ = self.progress.send(Progress::Joined {
                    participant,
                    name,
                    n_rows,
                });
            }
            JobEvent::Declined {
                participant,
                identity,
                name,
                reason,
            } => {
                warn!(participant, %name, %reason, "holder cannot prepare the job's data");
                if let Some(h) = &self.holders {
                    h.declined(participant, identity.map(|k| k.0), &name, &reason);
                }
                let _ = self.progress.send(Progress::Declined {
                    participant,
                    name,
                    reason,
                });
            }
            JobEvent::Refused {
                participant,
                reason,
            } => {
                warn!(participant, %reason, "participant refused");
                let _ = self.progress.send(Progress::Refused {
                    participant,
                    reason,
                });
            }
            JobEvent::Enrolled {
                participant,
                dataset,
                ..
            } => {
                info!(participant, n_rows = dataset.n_rows, root = %hex::encode(dataset.root), "dataset committed");
            }
            JobEvent::Randomness { contributions } => {
                info!(
                    holders = contributions.len(),
                    "the job's randomness is drawn from every holder's revealed contribution"
                );
            }
            JobEvent::RoundStarted {
                round,
                participants,
                ..
            } => self.on_round_started(round, &participants).await?,
            JobEvent::PhaseClosed(p) => self.on_phase_closed(&p),
            JobEvent::RoundCompleted {
                round,
                aggregate,
                dropped,
                model: params,
                opt_state,
            } => {
                let _ = self.progress.send(Progress::Aggregated {
                    round,
                    participants: aggregate.contributors.clone(),
                });
                let metrics = evaluate_at(
                    &self.model,
                    &params,
                    &self.test.features,
                    &self.test.labels,
                    self.threshold,
                );
                info!(
                    round,
                    contributors = aggregate.contributors.len(),
                    auc = metrics.auc,
                    "round completed"
                );
                let ended = RoundEnd {
                    round,
                    contributors: &aggregate.contributors,
                    dropped: &dropped,
                    train_loss: aggregate.mean_train_loss,
                    test: Some(metrics),
                    failure: None,
                };
                self.on_round_ended(ended, Some((&params, &opt_state)))
                    .await?;
            }
            JobEvent::RoundFailed {
                round,
                reason,
                dropped,
            } => {
                warn!(round, %reason, "round failed");
                let ended = RoundEnd {
                    round,
                    contributors: &[],
                    dropped: &dropped,
                    train_loss: f64::NAN,
                    test: None,
                    failure: Some(reason),
                };
                self.on_round_ended(ended, None).await?;
            }
            JobEvent::Sealing {
                last_round,
                rounds_completed,
            } => {
                // The transcript is complete but for its seal: the holders countersign
                // its head.
                let head = self
                    .recorder
                    .as_ref()
                    .map_or([0; 32], |r| r.transcript().head());
                info!(last_round, rounds_completed, head = %hex::encode(head), "sealing the transcript");
                self.job.seal(head, Instant::now());
                return Ok(true);
            }
            JobEvent::Finished {
                rounds_completed,
                error,
                countersignatures,
                ..
            } => {
                debug!(
                    rounds_completed,
                    ?error,
                    countersigned = countersignatures.len(),
                    "job finished"
                );
                self.finished_error = error;
            }
        }
        Ok(false)
    }

    async fn on_round_started(
        &mut self,
        round: u32,
        participants: &[ParticipantId],
    ) -> Result<(), CoordinatorError> {
        self.round_started
            .insert(round, (Instant::now(), participants.len()));
        if let Some(h) = &self.holders {
            h.round_started(round, participants);
        }
        self.phase_mark = self.counters.mark();
        self.counters.bytes_out += std::mem::take(&mut self.spec_bytes);
        if let Some(p) = &self.persist {
            p.begin_round(round).await?;
        }
        // Logged once the round is durably in flight: a coordinator killed after this line
        // abandons the round when it restarts.
        info!(round, participants = participants.len(), "round started");
        let _ = self.progress.send(Progress::RoundStarted {
            round,
            participants: participants.len(),
        });
        Ok(())
    }

    fn on_phase_closed(&mut self, p: &PhaseClosed) {
        let now = self.counters.mark();
        let mark = self.phase_mark;
        let seconds = now.at.duration_since(mark.at);
        let record = PhaseRecord {
            round: p.round,
            phase: p.phase.to_string(),
            answered: p.answered,
            dropped: p.dropped,
            seconds: seconds.as_secs_f64(),
            busy_seconds: seconds
                .saturating_sub(now.idle.saturating_sub(mark.idle))
                .as_secs_f64(),
            cpu_seconds: now.cpu.zip(mark.cpu).map(|(b, a)| (b - a).max(0.0)),
            bytes_in: now.bytes_in - mark.bytes_in,
            bytes_out: now.bytes_out - mark.bytes_out,
        };
        debug!(
            round = p.round,
            phase = p.phase,
            answered = p.answered,
            seconds = record.seconds,
            "phase closed"
        );
        self.phase_mark = now;
        if let Some(h) = &self.holders {
            h.phase(record.round, &record.phase, record.seconds);
        }
        let _ = self.progress.send(Progress::Phase(record));
    }

    /// A round ended (applied or failed): its record is stored with the new model and the
    /// transcript so far in one transaction, then reported.
    async fn on_round_ended(
        &mut self,
        end: RoundEnd<'_>,
        model: Option<(&[f32], &ServerOptState)>,
    ) -> Result<(), CoordinatorError> {
        let round = end.round;
        if let Some(h) = &self.holders {
            let why: Vec<_> = end
                .dropped
                .iter()
                .map(|(p, r)| (*p, r.to_string()))
                .collect();
            h.round_ended(round, end.contributors, &why);
        }
        let (t0, selected) = self
            .round_started
            .remove(&round)
            .unwrap_or((Instant::now(), 0));
        let rec = RoundRecord {
            round,
            selected,
            contributors: end.contributors.len(),
            dropped: end
                .dropped
                .iter()
                .map(|(p, r)| self.named(*p, r.to_string()))
                .collect(),
            train_loss: end.train_loss,
            test: end.test,
            seconds: t0.elapsed().as_secs_f64(),
            failure: end.failure,
            verify_seconds: self.proof_times.remove(&round),
            rss_bytes: rss_now(),
            // Round numbers count every round started (abandoned ones included), as the
            // job's budget does.
            epsilon: self.privacy_after(round).map(|p| p.epsilon),
        };
        if let Some(p) = &mut self.persist {
            let t = self.recorder.as_ref().map(Recorder::transcript);
            p.end_round(&rec, model, t).await?;
        }
        self.records.push(rec.clone());
        let _ = self.progress.send(Progress::Round(rec));
        Ok(())
    }

    /// A DP job's (ε, δ) after `rounds` rounds started; `None` without DP (or, logged, when
    /// the accountant cannot bound it: the job's own budget check then stops it).
    fn privacy_after(&self, rounds: u32) -> Option<PrivacySpent> {
        let dp = self.job.config().privacy?;
        match dp.epsilon_after(rounds) {
            Ok(epsilon) => Some(PrivacySpent {
                epsilon,
                delta: dp.delta,
                rounds,
                budget: dp.budget,
            }),
            Err(e) => {
                warn!(rounds, error = %e, "the privacy accountant failed");
                None
            }
        }
    }

    /// `why` with the holder's name when it gave one.
    fn named(&self, p: ParticipantId, why: String) -> (ParticipantId, String) {
        match self.names.get(&p) {
            Some(n) => (p, format!("{n}: {why}")),
            None => (p, why),
        }
    }

    /// The run is stopped before the job ends: each holder is told why
    /// ([`Stop::End`]), or every connection just closes ([`Stop::Quietly`]).
    async fn stop(
        self,
        endpoint: &quinn::Endpoint,
        stop: Stop,
    ) -> Result<CoordinatorError, CoordinatorError> {
        let mut conns = self.conns;
        if let Stop::End(reason) = stop {
            let bye = Bytes::from(wire::encode(&ToParticipant::Finished {
                rounds: self.job.rounds_completed(),
                completed: false,
                message: format!("job stopped: {reason}"),
            })?);
            for (_, tx) in conns.open.drain() {
                let _ = tx.send(Outbound::Frame {
                    frame: bye.clone(),
                    close: true,
                });
            }
        }
        // Dropping the connections closes every one still open at once.
        drop(conns);
        tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle())
            .await
            .ok();
        Ok(CoordinatorError::Shutdown {
            rounds: self.job.rounds_completed(),
        })
    }

    /// The job ended: its end is stored, the connections close, the summary is returned.
    async fn finish(self, endpoint: &quinn::Endpoint) -> Result<JobSummary, CoordinatorError> {
        // Every round started counts: the one that stopped the job early included.
        let privacy = self.privacy_after(self.job.next_round().saturating_sub(1));
        if let Some(p) = &self.persist {
            p.finish(
                self.finished_error.clone(),
                self.recorder.as_ref().map(Recorder::transcript),
            )
            .await?;
        }
        // The members were sent Finished (and leave the map); any other connection is
        // closed.
        drop(self.conns);
        tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle())
            .await
            .ok();
        Ok(JobSummary {
            privacy,
            rounds_completed: self.job.rounds_completed(),
            rounds: self.records,
            model: self.job.global().to_vec(),
            error: self.finished_error,
            transcript: self.recorder.map(Recorder::into_transcript),
        })
    }
}

/// How a round ended, as [`Driver::on_round_ended`] records it.
struct RoundEnd<'a> {
    round: u32,
    contributors: &'a [ParticipantId],
    dropped: &'a [(ParticipantId, DropReason)],
    train_loss: f64,
    test: Option<cairn_protocol::metrics::Metrics>,
    failure: Option<String>,
}

/// A run's accept loop and open connections, ended when the run ends, however it ends.
struct Connections {
    acceptor: tokio::task::JoinHandle<()>,
    open: HashMap<ParticipantId, mpsc::UnboundedSender<Outbound>>,
}

impl Drop for Connections {
    fn drop(&mut self) {
        self.acceptor.abort();
        for tx in self.open.values() {
            let _ = tx.send(Outbound::Abort);
        }
    }
}

fn rss_now() -> Option<u64> {
    crate::rss::sample().ok().map(|m| m.rss_bytes)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Messages from the connections waiting for the job, at most.
pub const INBOUND_QUEUE: usize = 1024;
/// Connections a job accepts beyond two per participant (reconnections, refused ones
/// being told why); further handshakes are refused until some close.
pub const SPARE_CONNECTIONS: usize = 16;
/// How long a connection may take to finish its handshake (and the coordinator to open
/// its stream).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connected holder has to answer the job's offer: it prepares its table for
/// the job first (a holder that takes longer keeps what it prepared and calls again, so
/// a silent peer need not hold a connection slot any longer than this).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What one run accepts.
#[derive(Clone, Copy, Debug)]
struct ConnectionLimits {
    /// Largest frame once admitted (the first, the Hello, is held to
    /// [`wire::MAX_HELLO_FRAME_BYTES`]).
    frame: usize,
    /// Connections open at once.
    connections: usize,
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    tx: mpsc::Sender<Inbound>,
    limits: ConnectionLimits,
    config: Option<Arc<quinn::ServerConfig>>,
) {
    let mut next_id: ParticipantId = 0;
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    while let Some(incoming) = endpoint.accept().await {
        use std::sync::atomic::Ordering;
        if open.load(Ordering::Acquire) >= limits.connections {
            // Refused before any handshake state is kept.
            incoming.refuse();
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        let id = next_id;
        next_id = next_id.wrapping_add(1);
        let (tx, config, open) = (tx.clone(), config.clone(), Arc::clone(&open));
        tokio::spawn(async move {
            let connecting = match config {
                Some(c) => incoming.accept_with(c),
                None => incoming.accept(),
            };
            let why = match serve_connection(id, connecting, &tx, limits.frame).await {
                Ok(()) => None,
                Err(Handshake(e)) => {
                    open.fetch_sub(1, Ordering::AcqRel);
                    let _ = tx.send(Inbound::Refused(id, e.to_string())).await;
                    return;
                }
                Err(Session(e)) => Some(e.to_string()),
            };
            open.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(Inbound::Closed(id, why)).await;
        });
    }
}

/// How a connection ended badly: before the job heard of it, or after.
enum ConnectionFailure {
    /// The handshake failed or the certificate carried no identity key.
    Handshake(TransportError),
    /// The session failed after the connection was handed to the job.
    Session(TransportError),
}
use ConnectionFailure::{Handshake, Session};

async fn serve_connection(
    id: ParticipantId,
    incoming: Result<quinn::Connecting, quinn::ConnectionError>,
    tx: &mpsc::Sender<Inbound>,
    limit: usize,
) -> Result<(), ConnectionFailure> {
    let slow = || {
        Handshake(TransportError::Timeout(format!(
            "no handshake and stream within {OPEN_TIMEOUT:?}"
        )))
    };
    let conn = tokio::time::timeout(OPEN_TIMEOUT, incoming.map_err(|e| Handshake(e.into()))?)
        .await
        .map_err(|_| slow())?
        .map_err(|e| Handshake(e.into()))?;
    // The transport admitted the certificate's key; the job binds it to the Hello.
    let identity = match peer_identity(&conn) {
        Ok(k) => k,
        Err(e) => {
            conn.close(2u32.into(), b"no identity key");
            return Err(Handshake(e));
        }
    };
    // The coordinator opens the connection's one stream and speaks first (the job's
    // offer, sent when the job learns of the connection).
    let (mut send, mut recv) = match tokio::time::timeout(OPEN_TIMEOUT, conn.open_bi()).await {
        Ok(Ok(streams)) => streams,
        Ok(Err(e)) => return Err(Handshake(e.into())),
        Err(_) => {
            conn.close(4u32.into(), b"no stream opened");
            return Err(slow());
        }
    };
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outbound>();
    let _ = tx
        .send(Inbound::Connected(
            id,
            out_tx,
            conn.remote_address(),
            identity,
        ))
        .await;
    let writer_conn = conn.clone();
    let writer = tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            let (frame, close) = match out {
                Outbound::Frame { frame, close } => (frame, close),
                Outbound::Abort => {
                    writer_conn.close(3u32.into(), b"coordinator stopping");
                    break;
                }
            };
            // The shared bytes go to QUIC as they are: no copy per connection.
            if send.write_chunk(frame).await.is_err() {
                break;
            }
            if close {
                let _ = send.finish();
                // Wait until the peer has read everything, then close.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(5), send.stopped()).await;
                writer_conn.close(0u32.into(), b"done");
                break;
            }
        }
    });
    // The first frame is the Hello, which is small: a peer not yet admitted cannot make
    // the coordinator hold an update-sized frame.
    let mut frame_limit = wire::MAX_HELLO_FRAME_BYTES.min(limit);
    let mut first = true;
    let result = loop {
        // The Hello (or the holder's reason it cannot join) must arrive within
        // HELLO_TIMEOUT: a silent peer does not keep a connection slot (keep-alives would
        // hold it open for ever).
        let read = if first {
            first = false;
            match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut recv, frame_limit)).await {
                Ok(r) => r,
                Err(_) => {
                    conn.close(4u32.into(), b"no hello");
                    break Err(Session(TransportError::Timeout(format!(
                        "no Hello within {HELLO_TIMEOUT:?}"
                    ))));
                }
            }
        } else {
            read_frame(&mut recv, frame_limit).await
        };
        match read {
            Ok(Some(body)) => {
                frame_limit = limit;
                if tx.send(Inbound::Frame(id, body)).await.is_err() {
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Err(TransportError::Connection(quinn::ConnectionError::LocallyClosed)) => break Ok(()),
            Err(TransportError::Read(quinn::ReadExactError::ReadError(
                quinn::ReadError::ConnectionLost(
                    quinn::ConnectionError::LocallyClosed
                    | quinn::ConnectionError::ApplicationClosed(_),
                ),
            ))) => break Ok(()),
            Err(e) => {
                conn.close(1u32.into(), b"protocol error");
                break Err(Session(e));
            }
        }
    };
    writer.abort();
    result
}

//! The in-memory harness: a coordinator `Job` and several `Client`s exchange real wire
//! frames through queues, with time advanced by hand. No sockets, no sleeps.
#![allow(dead_code, missing_docs)]

use std::time::{Duration, Instant};

use cairn_crypto::sign::IdentityKey;
use cairn_proofs::verify::SumChecker;
use cairn_protocol::client::{Client, ClientEvent};
use cairn_protocol::job::{Job, JobConfig, JobEvent};
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::round::Aggregation;
use cairn_protocol::wire::{self, HEADER_BYTES};

pub const N_FEATURES: usize = 3;

pub fn cfg(participants: usize, min: usize, rounds: u32) -> JobConfig {
    JobConfig {
        privacy: None,
        job_id: "test".into(),
        model: ModelSpec::logistic(N_FEATURES),
        rounds,
        participants,
        min_participants: min,
        hyper: HyperParams {
            local_steps: 2,
            batch_size: 4,
            learning_rate: 0.1,
            clip_norm: 1.0,
        },
        server: cairn_protocol::server_opt::ServerOptimizer::FedAvg { lr: 1.0 },
        round_timeout: Duration::from_secs(10),
        join_timeout: Duration::from_secs(30),
        seed: 42,
        aggregation: Aggregation::Plain,
        proof: None,
        data: None,
    }
}

/// How a simulated participant behaves when asked to train.
#[derive(Clone, Copy, PartialEq)]
pub enum Behaviour {
    Honest,
    Silent,
    /// Honest, but its messages stop reaching the coordinator after it has sent this many
    /// (Hello counts as one): a participant that drops mid-round.
    CutAfter(usize),
    /// Honest until it has sent this many messages, then its connection closes (a crash
    /// the coordinator sees at once).
    DisconnectAfter(usize),
    /// Submits its delta times this factor (a holder that skips the clip bound when the
    /// round spec it got is tampered with to allow it).
    Scaled(f32),
    /// Trains on the rows its batches name: its rows are a function of its key seed
    /// ([`row_value`]), so its update depends on which rows the round seed picked for it.
    FromRows,
}

/// Row `r` of the holder whose identity key seed is `[seed; 32]`.
pub fn row_value(seed: u8, r: u32) -> f32 {
    ((u32::from(seed) * 31 + r * 17) % 97) as f32 / 97.0 - 0.5
}

/// The delta of a [`Behaviour::FromRows`] holder with key seed `seed` on `batches`.
pub fn delta_from_rows(seed: u8, batches: &[Vec<u32>]) -> Vec<f32> {
    let rows: Vec<f32> = batches
        .iter()
        .flatten()
        .map(|&r| row_value(seed, r))
        .collect();
    let mean = rows.iter().sum::<f32>() / rows.len().max(1) as f32;
    (0..N_FEATURES + 1)
        .map(|j| 0.1 * mean * (j as f32 - 1.5) + 0.01 * rows.first().copied().unwrap_or(0.0))
        .collect()
}

/// A hook rewriting coordinator messages before delivery.
pub type Tamper = Box<dyn FnMut(usize, &mut cairn_protocol::wire::ToParticipant)>;

pub struct Sim {
    pub job: Job,
    pub clients: Vec<(Client, Behaviour, u64)>,
    /// Each client's identity key seed (its key is `IdentityKey::from_seed(&[seed; 32])`).
    pub seeds: Vec<u8>,
    pub now: Instant,
    pub events: Vec<JobEvent>,
    pub closed: Vec<bool>,
    pub sent: Vec<usize>,
    /// Errors clients returned on coordinator messages.
    pub client_errors: Vec<(usize, String)>,
    /// Rewrites a coordinator message before delivery (a malicious coordinator).
    pub tamper: Option<Tamper>,
    /// Leaves the job's heavy work ([`Job::poll_work`]) for the test to run.
    pub hold_work: bool,
}

pub fn body(frame: &[u8]) -> &[u8] {
    &frame[HEADER_BYTES..]
}

/// The delta participant `i` "trains": deterministic and distinct per participant and round.
pub fn delta_of(i: u32, round: u32) -> Vec<f32> {
    (0..N_FEATURES + 1)
        .map(|j| 0.01 * (i as f32 + 1.0) * (j as f32 - 1.5) + 0.001 * round as f32)
        .collect()
}

impl Sim {
    pub fn new(cfg: JobConfig, behaviours: &[(Behaviour, u64)]) -> Sim {
        let now = Instant::now();
        let init = cfg.model.init_params(1);
        Self::with_job(Job::new(cfg, init, now), now, behaviours)
    }

    /// A simulation of `job` (e.g. one resumed after a stop) with fresh clients.
    pub fn with_job(job: Job, now: Instant, behaviours: &[(Behaviour, u64)]) -> Sim {
        let seeds: Vec<u8> = (0..behaviours.len()).map(|i| i as u8 + 1).collect();
        Self::with_seeds(job, now, behaviours, &seeds)
    }

    /// [`Sim::with_job`] with client `i`'s identity key from `[seeds[i]; 32]`: connection
    /// `i` is the `i`-th to join.
    pub fn with_seeds(
        job: Job,
        now: Instant,
        behaviours: &[(Behaviour, u64)],
        seeds: &[u8],
    ) -> Sim {
        Sim {
            job,
            seeds: seeds.to_vec(),
            clients: behaviours
                .iter()
                .zip(seeds)
                .map(|(&(b, rows), &seed)| {
                    let identity = IdentityKey::from_seed(&[seed; 32]);
                    (
                        Client::new(
                            "p",
                            rows as usize,
                            N_FEATURES,
                            identity,
                            // The holder's own randomness (stochastic rounding, masks):
                            // its own, whenever it joins.
                            [seed.wrapping_add(99); 32],
                        ),
                        b,
                        rows,
                    )
                })
                .collect(),
            now,
            events: Vec::new(),
            closed: vec![false; behaviours.len()],
            sent: vec![0; behaviours.len()],
            client_errors: Vec::new(),
            tamper: None,
            hold_work: false,
        }
    }

    /// A new connection of an honest holder with identity key seed `seed` (a holder joining
    /// again, or a stranger): returns its participant id.
    pub fn connect(&mut self, seed: u8, rows: u64) -> u32 {
        let identity = IdentityKey::from_seed(&[seed; 32]);
        let client = Client::new(
            "p",
            rows as usize,
            N_FEATURES,
            identity,
            [seed.wrapping_add(99); 32],
        );
        self.clients.push((client, Behaviour::Honest, rows));
        self.seeds.push(seed);
        self.closed.push(false);
        self.sent.push(0);
        (self.clients.len() - 1) as u32
    }

    /// Moves messages both ways (through real frames) and runs honest training until quiet.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for (i, (c, behaviour, _)) in self.clients.iter_mut().enumerate() {
                // A silent participant's events are left for the test to inspect.
                if *behaviour != Behaviour::Silent {
                    while let Some(ev) = c.poll_event() {
                        if let ClientEvent::Train { spec, batches, .. } = ev {
                            let mut delta = match behaviour {
                                Behaviour::FromRows => delta_from_rows(self.seeds[i], &batches),
                                _ => delta_of(i as u32, spec.round),
                            };
                            if let Behaviour::Scaled(f) = behaviour {
                                delta.iter_mut().for_each(|v| *v *= *f);
                            }
                            if let Err(e) = c.submit_update(spec.round, delta, 0.5) {
                                self.client_errors.push((i, e.to_string()));
                            }
                        }
                    }
                }
                while let Some(msg) = c.poll_transmit() {
                    if self.closed[i] {
                        continue;
                    }
                    if let Behaviour::CutAfter(n) = behaviour {
                        if self.sent[i] >= *n {
                            continue;
                        }
                    }
                    self.sent[i] += 1;
                    let frame = wire::encode(&msg).expect("encode");
                    let _ = self.job.handle_frame(i as u32, body(&frame), self.now);
                    progressed = true;
                    if *behaviour == Behaviour::DisconnectAfter(self.sent[i]) {
                        self.closed[i] = true;
                        self.job.handle_disconnect(i as u32, self.now);
                    }
                }
            }
            // The driver's heavy work (these jobs prove nothing: only mask removal).
            while let Some(work) = (!self.hold_work).then(|| self.job.poll_work()).flatten() {
                let done = work.run(None, &SumChecker::new(), 2);
                self.job.handle_done(done, self.now);
                progressed = true;
            }
            while let Some(mut t) = self.job.poll_transmit() {
                let i = t.to as usize;
                if i < self.clients.len() && !self.closed[i] {
                    if let Some(f) = &mut self.tamper {
                        f(i, &mut t.msg);
                    }
                    let frame = wire::encode(&t.msg).expect("encode");
                    if let Err(e) = self.clients[i].0.handle_frame(body(&frame)) {
                        self.client_errors.push((i, e.to_string()));
                    }
                    self.closed[i] |= t.close;
                }
                progressed = true;
            }
            while let Some(e) = self.job.poll_event() {
                self.events.push(e);
            }
            if !progressed {
                break;
            }
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.job.handle_timeout(self.now);
        self.pump();
    }

    pub fn completed(&self) -> Vec<&JobEvent> {
        self.events
            .iter()
            .filter(|e| matches!(e, JobEvent::RoundCompleted { .. }))
            .collect()
    }
}

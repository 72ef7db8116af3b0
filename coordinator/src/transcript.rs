//! Recording a proven job's transcript from its events, as the driver sees them.

use std::collections::HashMap;

use cairn_crypto::sign::IdentityKey;
use cairn_protocol::job::{JobConfig, JobEvent};
use cairn_protocol::round::{Aggregation, ParticipantId, ProvenSum};
use cairn_protocol::transcript::{model_hash, seal_payload, Entry, Transcript};

/// A round in flight: its seed, its participants and the hash of the model it started from.
type Started = ([u8; 32], Vec<ParticipantId>, [u8; 32]);

/// Builds the transcript of a proven job from its [`JobEvent`]s.
#[derive(Debug)]
pub struct Recorder {
    transcript: Transcript,
    model: Vec<f32>,
    started: HashMap<u32, Started>,
    /// A resume marker not yet appended: it goes in before the next entry, so a resumed
    /// job that records nothing more (it had no rounds left) adds nothing.
    pending: Option<Entry>,
    /// The job's id (the seal is signed over it).
    job_id: String,
    /// Signs the transcript's head when the job ends (its public key is in the header).
    seal_key: IdentityKey,
}

impl Recorder {
    /// Starts the transcript with the job's settings, verifying key and initial model;
    /// `None` for a job that does not prove its rounds.
    /// `seal_key` signs the head at the end ([`Entry::Finished`]); the coordinator keeps it
    /// across restarts (derived from its TLS identity), or a resumed job's seal will not
    /// verify under the header's key.
    pub fn new(
        cfg: &JobConfig,
        verifying_key: Vec<u8>,
        initial: &[f32],
        seal_key: IdentityKey,
    ) -> Option<Self> {
        let proof = cfg.proof?;
        let Aggregation::Secure(s) = &cfg.aggregation else {
            return None;
        };
        let mut transcript = Transcript::default();
        transcript.append(Entry::Job {
            job_id: cfg.job_id.clone(),
            model: cfg.model.clone(),
            hyper: cfg.hyper.clone(),
            server: cfg.server,
            scale_bits: s.scale_bits,
            proof,
            verifying_key,
            initial_model: initial.to_vec(),
            min_participants: u32::try_from(cfg.min_participants).unwrap_or(u32::MAX),
            dropout: s.dropout,
            corruption: s.corruption,
            coordinator: seal_key.public(),
            privacy: cfg.privacy,
        });
        Some(Self {
            transcript,
            model: initial.to_vec(),
            started: HashMap::new(),
            pending: None,
            job_id: cfg.job_id.clone(),
            seal_key,
        })
    }

    /// Continues the transcript of a job resumed after a stop: `so_far` as the store held
    /// it, `model` the model the job resumes from, with the [`Entry::Resumed`] marker (the
    /// round in flight, if any, abandoned; enrolments open again). With a round abandoned
    /// the marker is appended now (it is stored with the abandoned round); otherwise it goes
    /// in with the next entry.
    pub fn resume(
        so_far: Transcript,
        model: &[f32],
        next_round: u32,
        abandoned: Option<u32>,
    ) -> Self {
        let marker = Entry::Resumed {
            next_round,
            abandoned,
        };
        let job_id = match so_far.records.first().map(|r| &r.entry) {
            Some(Entry::Job { job_id, .. }) => job_id.clone(),
            _ => String::new(),
        };
        let mut r = Self {
            transcript: so_far,
            model: model.to_vec(),
            started: HashMap::new(),
            pending: Some(marker),
            job_id,
            // Replaced by the coordinator's own key (`set_seal_key`) when it runs the job.
            seal_key: IdentityKey::random(&mut rand::rngs::OsRng),
        };
        if abandoned.is_some() {
            r.flush_marker();
        }
        r
    }

    fn flush_marker(&mut self) {
        if let Some(m) = self.pending.take() {
            self.transcript.append(m);
        }
    }

    /// A resumed job whose transcript was never stored (every round it began before the
    /// restart was abandoned before one was recorded): the abandonment of rounds
    /// 1..`next_round` goes on record, so the auditor sees why its rounds start later.
    pub fn abandoned_before(&mut self, next_round: u32) {
        for a in 1..next_round {
            self.transcript.append(Entry::Resumed {
                next_round: a + 1,
                abandoned: Some(a),
            });
        }
    }

    /// The key that signs the head when the job ends.
    pub fn set_seal_key(&mut self, key: IdentityKey) {
        self.seal_key = key;
    }

    /// Appends what `event` adds to the transcript.
    pub fn on_event(&mut self, event: &JobEvent) {
        if matches!(
            event,
            JobEvent::Enrolled { .. }
                | JobEvent::Randomness { .. }
                | JobEvent::RoundCompleted { .. }
                | JobEvent::RoundFailed { .. }
                | JobEvent::Sealing { .. }
                | JobEvent::Finished { .. }
        ) {
            self.flush_marker();
        }
        match event {
            JobEvent::Enrolled {
                participant,
                identity,
                dataset,
            } => {
                self.transcript.append(Entry::Enrolled {
                    participant: *participant,
                    identity: *identity,
                    dataset: dataset.clone(),
                });
            }
            JobEvent::Randomness { contributions } => {
                self.transcript.append(Entry::Randomness {
                    contributions: contributions.clone(),
                });
            }
            JobEvent::RoundStarted {
                round,
                participants,
                round_seed,
            } => {
                self.started.insert(
                    *round,
                    (*round_seed, participants.clone(), model_hash(&self.model)),
                );
            }
            JobEvent::RoundCompleted {
                round,
                aggregate,
                dropped,
                model,
                ..
            } => {
                let (round_seed, participants, global_hash) =
                    self.started.remove(round).unwrap_or_default();
                let proven = aggregate.proven.clone().unwrap_or(ProvenSum {
                    update_sum: Vec::new(),
                    blinding_limb_sums: Vec::new(),
                    inputs: Vec::new(),
                    threshold: 0,
                    survivor_signatures: Vec::new(),
                    beacon: None,
                });
                self.transcript.append(Entry::Round {
                    round: *round,
                    round_seed,
                    global_hash,
                    participants,
                    inputs: proven.inputs,
                    dropped: dropped.iter().map(|(p, r)| (*p, r.to_string())).collect(),
                    threshold: proven.threshold,
                    survivor_signatures: proven.survivor_signatures,
                    update_sum: proven.update_sum,
                    blinding_limb_sums: proven.blinding_limb_sums,
                    new_model_hash: model_hash(model),
                    beacon: proven.beacon,
                });
                self.model.clone_from(model);
            }
            JobEvent::RoundFailed {
                round,
                reason,
                dropped,
            } => {
                self.started.remove(round);
                self.transcript.append(Entry::RoundFailed {
                    round: *round,
                    reason: reason.clone(),
                    dropped: dropped.iter().map(|(p, r)| (*p, r.to_string())).collect(),
                });
            }
            JobEvent::Finished {
                rounds_completed,
                last_round,
                error,
                countersignatures,
            } => {
                let final_model_hash = model_hash(&self.model);
                let payload = seal_payload(
                    &self.job_id,
                    &self.transcript.head(),
                    *last_round,
                    *rounds_completed,
                    &final_model_hash,
                );
                self.transcript.append(Entry::Finished {
                    last_round: *last_round,
                    rounds_completed: *rounds_completed,
                    final_model_hash,
                    error: error.clone(),
                    coordinator_signature: self.seal_key.sign(&payload),
                    countersignatures: countersignatures.clone(),
                });
            }
            JobEvent::Joined { .. }
            | JobEvent::Declined { .. }
            | JobEvent::Refused { .. }
            | JobEvent::Sealing { .. }
            | JobEvent::PhaseClosed(_) => {}
        }
    }

    /// The transcript so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The finished transcript.
    pub fn into_transcript(self) -> Transcript {
        self.transcript
    }
}

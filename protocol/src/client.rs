//! The participant's side of a job, as a sans-IO state machine.
//!
//! It checks everything the coordinator sends (a round spec for the wrong model, a
//! non-finite global model, absurd hyper-parameters are refused with a typed error), asks
//! its driver to train through [`ClientEvent::Train`], and turns the trained update into
//! what the round asks for: a clipped plain [`Update`], or — with secure aggregation —
//! the SecAgg+ phases of [`crate::secure_client`]. Training itself happens outside (the
//! `Trainer` of the participant crate), so this machine never links libtorch. Randomness
//! (for the secure-aggregation keys and seeds) comes from a seed given at construction.

use std::collections::VecDeque;

use cairn_crypto::sign::IdentityKey;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::model::{clip_l2, ModelSpec};
use crate::randomness::{self, Contribution, RandomnessError};
use crate::sampling::round_rows;
use crate::secure_client::SecureClient;
use crate::wire::{
    self, DatasetCommitment, Hello, ProofSpec, ProvenInput, RoundSpec, SecureDown, SecureUp,
    ToCoordinator, ToParticipant, Update, Welcome, WireError, PROTOCOL_VERSION,
};

/// The limits a round spec's hyper-parameters are held to ([`HyperParams::problems`]).
///
/// [`HyperParams::problems`]: crate::model::HyperParams::problems
pub use crate::model::{MAX_BATCH, MAX_LOCAL_STEPS};

/// The least corrupt fraction γ a holder lets a secure job plan for unless told otherwise:
/// the default γ of a job ([`crate::round::SecureSettings`]). The job's (k, t) follow from
/// its γ, so a coordinator that sets γ lower weakens every holder's threshold; a holder
/// refuses such a round.
pub const DEFAULT_MIN_CORRUPTION: f64 = 0.1;

/// Why a coordinator message was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The bytes were not a valid message.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A message that makes no sense in the current state.
    #[error("unexpected {what} while {state}")]
    Unexpected {
        /// Message kind.
        what: &'static str,
        /// Our state.
        state: &'static str,
    },
    /// The round spec's model does not fit the job's model.
    #[error("round {round}: global model has {got} values, the job's model has {want}")]
    WrongModel {
        /// Round.
        round: u32,
        /// Received length.
        got: usize,
        /// Expected length.
        want: usize,
    },
    /// Hyper-parameters out of range or a non-finite model.
    #[error("round {round}: {what}")]
    BadRound {
        /// Round.
        round: u32,
        /// What is wrong.
        what: String,
    },
    /// The welcome's model is not usable.
    #[error("job model rejected: {0}")]
    BadModel(#[from] crate::model::ModelError),
    /// An update was submitted for a round that is not the current one.
    #[error("update for round {got}, but the current round is {current:?}")]
    StaleRound {
        /// Round of the submitted update.
        got: u32,
        /// Round in progress.
        current: Option<u32>,
    },
    /// A round spec with the model and round seed of an earlier round of this job: the
    /// holder would train the same update again, and a coordinator running it with another
    /// survivor set could subtract one sum from the other to learn it. Refused.
    #[error("round {round}: the model and round seed of round {earlier} again (a replayed round); refused")]
    Replayed {
        /// The round asked for.
        round: u32,
        /// The earlier round with the same model and seed.
        earlier: u32,
    },
    /// Local training produced non-finite values: nothing was sent but a
    /// [`ToCoordinator::Decline`] saying so.
    #[error("round {round}: training gave {values} non-finite update value(s) and loss {loss}; declined the round")]
    NonFinite {
        /// The round.
        round: u32,
        /// Non-finite coordinates of the update.
        values: usize,
        /// The training loss.
        loss: f32,
    },
    /// The coordinator asked to countersign a transcript head that ends before a round
    /// this holder took part in (a transcript cut short): refused.
    #[error("the coordinator seals the job at round {last_round}, but this holder was in round {took_part}; not countersigned")]
    TruncatedSeal {
        /// The last round the seal names.
        last_round: u32,
        /// The last round this holder was sent.
        took_part: u32,
    },
    /// The coordinator's roster or randomness was refused.
    #[error("the job's randomness: {0}")]
    Randomness(#[from] RandomnessError),
    /// A secure-aggregation step was refused (e.g. an unmask request asking for both
    /// secrets of a peer); the participant sends nothing more for that round.
    #[error("round {round}: secure aggregation: {error}")]
    Secure {
        /// Round.
        round: u32,
        /// What was refused.
        error: String,
    },
}

/// What the driver must act on.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// Admitted to a job.
    Joined(Welcome),
    /// Train for this round: K batches of row indices are given.
    Train {
        /// The round spec (boxed: it carries the global model's header and the secure
        /// round's parameters, larger than every other event).
        spec: Box<RoundSpec>,
        /// This holder's index in the job's roster: what its rows and its proof's
        /// statement are drawn for ([`randomness::holder_index`]).
        index: u32,
        /// The mini-batches to train on (indices into the local rows).
        batches: Vec<Vec<u32>>,
    },
    /// Sampled-step rounds: the coordinator's answer to this holder's chain, the beacon its
    /// challenge is drawn from.
    Challenge {
        /// The round.
        round: u32,
        /// The beacon.
        beacon: [u8; 32],
    },
    /// The job ended.
    Finished {
        /// Rounds completed.
        rounds: u32,
        /// Whether the job ran all its rounds (false: it stopped early).
        completed: bool,
        /// Outcome.
        message: String,
    },
    /// Refused or dropped by the coordinator.
    Rejected {
        /// Why.
        reason: String,
    },
}

#[derive(Debug)]
enum State {
    Joining,
    Member {
        welcome: Box<Welcome>,
        current: Option<u32>,
        /// The roster of randomness commitments this holder revealed to.
        roster: Option<Vec<(cairn_crypto::sign::IdentityPublic, [u8; 32])>>,
        /// The job's beacon and this holder's index, once the randomness is fixed.
        randomness: Option<([u8; 32], u32)>,
    },
    Done,
}

/// A participant in one job.
pub struct Client {
    n_rows: usize,
    state: State,
    identity: IdentityKey,
    rng: ChaCha20Rng,
    secure: Option<SecureClient>,
    transmits: VecDeque<ToCoordinator>,
    events: VecDeque<ClientEvent>,
    clip: f32,
    /// The Merkle root of this holder's fixed-point rows, committed when a job proves.
    dataset_root: Option<[u8; 32]>,
    /// The round this holder last sent a step chain for.
    chain_sent: Option<u32>,
    /// SHA-256 of (global model, round seed) of every round spec accepted in this job,
    /// with its round number: a repeat is refused ([`ClientError::Replayed`]).
    seen: std::collections::HashMap<[u8; 32], u32>,
    /// The least γ this holder accepts in a secure round ([`DEFAULT_MIN_CORRUPTION`]).
    min_corruption: f64,
    /// The least noise multiplier this holder accepts; above 0 it also refuses rounds
    /// without DP ([`Client::with_min_noise`]).
    min_noise: f64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state)
            .field("n_rows", &self.n_rows)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A participant named `name` with `n_rows` rows of `n_features` features, signing
    /// with `identity`, drawing its secret randomness from `rng_seed` (the driver passes
    /// OS entropy); its Hello is queued for `poll_transmit`.
    pub fn new(
        name: &str,
        n_rows: usize,
        n_features: usize,
        identity: IdentityKey,
        rng_seed: [u8; 32],
    ) -> Self {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            name: name.chars().take(wire::MAX_NAME_BYTES / 4).collect(),
            n_rows: n_rows as u64,
            n_features: n_features.try_into().unwrap_or(u32::MAX),
            identity: identity.public(),
        };
        Client {
            n_rows,
            state: State::Joining,
            identity,
            rng: ChaCha20Rng::from_seed(rng_seed),
            secure: None,
            transmits: VecDeque::from([ToCoordinator::Hello(hello)]),
            events: VecDeque::new(),
            clip: 0.0,
            dataset_root: None,
            chain_sent: None,
            seen: std::collections::HashMap::new(),
            min_corruption: DEFAULT_MIN_CORRUPTION,
            min_noise: 0.0,
        }
    }

    /// Sets the least noise multiplier z this holder accepts (default 0: any, and rounds
    /// without DP too). Above 0 the holder takes part only in DP rounds whose noise is at
    /// least that: a coordinator cannot quietly lower the noise the job promised it.
    pub fn with_min_noise(mut self, z: f64) -> Self {
        self.min_noise = z;
        self
    }

    /// Sets the least corrupt fraction γ this holder accepts in a secure round (default
    /// [`DEFAULT_MIN_CORRUPTION`]): a round spec planning for fewer corrupt holders is
    /// refused before any key is sent.
    pub fn with_min_corruption(mut self, gamma: f64) -> Self {
        self.min_corruption = gamma;
        self
    }

    /// Sets the Merkle root of this holder's rows (over its `n_rows` rows), which it
    /// commits to, signed, when a job that proves its rounds welcomes it. Without it, the
    /// driver commits after the welcome with [`Client::commit_dataset`].
    pub fn with_dataset_root(mut self, root: [u8; 32]) -> Self {
        self.dataset_root = Some(root);
        self
    }

    /// Commits, signed, to the Merkle root of this holder's rows in a job that proves its
    /// rounds, after its welcome (when the tree is built for the welcome's depth). Only
    /// once, and only when the holder was not given its root up front.
    pub fn commit_dataset(&mut self, root: [u8; 32]) -> Result<(), ClientError> {
        let (job_id, spec) = match &self.state {
            State::Member { welcome, .. } => match welcome.proof {
                Some(spec) => (welcome.job_id.clone(), spec),
                None => {
                    return Err(ClientError::Unexpected {
                        what: "dataset commitment",
                        state: "in a job that does not prove its rounds",
                    })
                }
            },
            _ => {
                return Err(ClientError::Unexpected {
                    what: "dataset commitment",
                    state: "not a member of a job",
                })
            }
        };
        if self.dataset_root.is_some() {
            return Err(ClientError::Unexpected {
                what: "dataset commitment",
                state: "already committed",
            });
        }
        self.dataset_root = Some(root);
        self.push_commitment(&job_id, root, &spec);
        Ok(())
    }

    fn push_commitment(&mut self, job_id: &str, root: [u8; 32], spec: &ProofSpec) {
        // The tree holds whole blocks: rows after the last full one are not committed (and
        // `round_rows` never picks them).
        let block = spec.block_rows.max(1) as usize;
        let committed = self.n_rows / block * block;
        // A proven DP job: the commitment to this holder's noise seed goes with it.
        let noise = spec.noise.map(|_| {
            cairn_proofs::noise::seed_commitment(cairn_proofs::noise::noise_seed(
                &self.identity,
                job_id,
            ))
        });
        let d = DatasetCommitment::sign_with_noise(
            job_id,
            root,
            committed as u64,
            noise,
            &self.identity,
        );
        self.transmits.push_back(ToCoordinator::Dataset(d));
    }

    /// This holder's secret noise seed in a proven DP job (the one its enrolled commitment
    /// opens to, [`cairn_proofs::noise::noise_seed`]); `None` in any other job or before
    /// the welcome.
    pub fn noise_seed(&self) -> Option<cairn_proofs::noise::NoiseSeed> {
        match &self.state {
            State::Member { welcome, .. } if welcome.proof.is_some_and(|p| p.noise.is_some()) => {
                Some(cairn_proofs::noise::noise_seed(
                    &self.identity,
                    &welcome.job_id,
                ))
            }
            _ => None,
        }
    }

    /// Feeds a frame body from the coordinator.
    pub fn handle_frame(&mut self, body: &[u8]) -> Result<(), ClientError> {
        let msg = wire::decode_body::<ToParticipant>(body)?;
        self.handle_message(msg)
    }

    /// Feeds a decoded message from the coordinator. A round spec this holder refuses is
    /// answered with [`ToCoordinator::Decline`] naming the reason (the coordinator drops
    /// it from that round at once); the error is also returned to the driver.
    pub fn handle_message(&mut self, msg: ToParticipant) -> Result<(), ClientError> {
        let round = match (&msg, &self.state) {
            (ToParticipant::Round(spec), State::Member { .. }) => Some(spec.round),
            _ => None,
        };
        let out = self.on_message(msg);
        if let (Some(round), Err(e)) = (round, &out) {
            self.transmits.push_back(ToCoordinator::Decline {
                round,
                reason: e.to_string(),
            });
        }
        out
    }

    fn on_message(&mut self, msg: ToParticipant) -> Result<(), ClientError> {
        match (msg, &mut self.state) {
            (ToParticipant::Welcome(w), State::Joining) => {
                w.model.validate()?;
                // A holder that knows its root commits at once; one that builds its tree
                // for the welcome's depth commits later ([`Client::commit_dataset`]).
                if let (Some(p), Some(root)) = (w.proof, self.dataset_root) {
                    self.push_commitment(&w.job_id, root, &p);
                }
                let mine = randomness::contribution(&self.identity, &w.job_id);
                self.transmits.push_back(ToCoordinator::Commit {
                    commitment: randomness::commit(&mine),
                });
                self.events.push_back(ClientEvent::Joined(w.clone()));
                self.state = State::Member {
                    welcome: Box::new(w),
                    current: None,
                    roster: None,
                    randomness: None,
                };
                Ok(())
            }
            (
                ToParticipant::Reveal { roster: shown },
                State::Member {
                    welcome,
                    roster,
                    randomness: None,
                    ..
                },
            ) if roster.is_none() => {
                randomness::check_roster(&shown)?;
                let mine = randomness::contribution(&self.identity, &welcome.job_id);
                let me = (self.identity.public(), randomness::commit(&mine));
                if !shown.contains(&me) {
                    return Err(RandomnessError::NotInRoster.into());
                }
                *roster = Some(shown);
                self.transmits
                    .push_back(ToCoordinator::Reveal { contribution: mine });
                Ok(())
            }
            (
                ToParticipant::Randomness { contributions },
                State::Member {
                    welcome,
                    roster,
                    randomness: fixed @ None,
                    ..
                },
            ) => {
                let mine = randomness::contribution(&self.identity, &welcome.job_id);
                *fixed = Some(check_randomness(
                    &welcome.job_id,
                    &contributions,
                    roster.as_deref(),
                    &self.identity.public(),
                    &mine,
                )?);
                Ok(())
            }
            (
                ToParticipant::Round(spec),
                State::Member {
                    welcome,
                    current,
                    randomness,
                    ..
                },
            ) => {
                check_round(&spec, &welcome.model)?;
                let Some((beacon, index)) = *randomness else {
                    return Err(ClientError::BadRound {
                        round: spec.round,
                        what: "a round before the job's randomness was fixed".into(),
                    });
                };
                check_seeds(&spec, &beacon)?;
                let key = round_key(&spec);
                if let Some(&earlier) = self.seen.get(&key) {
                    return Err(ClientError::Replayed {
                        round: spec.round,
                        earlier,
                    });
                }
                self.seen.insert(key, spec.round);
                if let Some(s) = &spec.secure {
                    // NaN fails too.
                    if s.corruption.is_nan() || s.corruption < self.min_corruption {
                        return Err(ClientError::Secure {
                            round: spec.round,
                            error: format!(
                                "the job plans for a corrupt fraction of {}, below this holder's floor of {} (its threshold would be weaker than this holder accepts)",
                                s.corruption, self.min_corruption
                            ),
                        });
                    }
                }
                if let Some(why) = refuse_noise(self.min_noise, &spec) {
                    return Err(ClientError::Secure {
                        round: spec.round,
                        error: why,
                    });
                }
                self.secure = match &spec.secure {
                    Some(s) => {
                        let (client, keys) = SecureClient::start(
                            &welcome.job_id,
                            &spec,
                            s,
                            welcome.participant,
                            welcome.model.param_count(),
                            &self.identity,
                            &mut self.rng,
                        )?;
                        self.transmits.push_back(ToCoordinator::Secure(keys));
                        Some(client)
                    }
                    None => None,
                };
                *current = Some(spec.round);
                self.clip = spec.hyper.clip_norm;
                let batches = round_rows(
                    spec.round_seed,
                    index,
                    self.n_rows,
                    spec.hyper.local_steps,
                    spec.hyper.batch_size,
                    spec.proof.map(|p| p.block_rows),
                );
                self.events.push_back(ClientEvent::Train {
                    spec: Box::new(spec),
                    index,
                    batches,
                });
                Ok(())
            }
            (
                ToParticipant::Secure(SecureDown::Challenge { round, beacon }),
                State::Member { current, .. },
            ) => {
                if *current != Some(round) || self.chain_sent != Some(round) {
                    return Err(ClientError::Unexpected {
                        what: "challenge",
                        state: "no chain sent for that round",
                    });
                }
                self.events
                    .push_back(ClientEvent::Challenge { round, beacon });
                Ok(())
            }
            (ToParticipant::Secure(down), State::Member { .. }) => {
                let Some(secure) = &mut self.secure else {
                    return Err(ClientError::Unexpected {
                        what: "secure-aggregation message",
                        state: "not in a secure round",
                    });
                };
                let out = secure.handle(down, &self.identity, &mut self.rng);
                self.flush_secure();
                out
            }
            (
                ToParticipant::Seal {
                    head,
                    last_round,
                    rounds_completed,
                    final_model_hash,
                },
                State::Member { welcome, .. },
            ) => {
                // A holder vouches only for a head that covers every round it was in: the
                // coordinator cannot drop the last rounds from the transcript and keep
                // the countersignatures.
                let took_part = self.seen.values().copied().max().unwrap_or(0);
                if last_round < took_part {
                    return Err(ClientError::TruncatedSeal {
                        last_round,
                        took_part,
                    });
                }
                let payload = crate::transcript::seal_payload(
                    &welcome.job_id,
                    &head,
                    last_round,
                    rounds_completed,
                    &final_model_hash,
                );
                self.transmits.push_back(ToCoordinator::Countersign {
                    signature: self.identity.sign(&payload),
                });
                Ok(())
            }
            (
                ToParticipant::Finished {
                    rounds,
                    completed,
                    message,
                },
                _,
            ) => {
                self.state = State::Done;
                self.events.push_back(ClientEvent::Finished {
                    rounds,
                    completed,
                    message,
                });
                Ok(())
            }
            (ToParticipant::Rejected { reason }, _) => {
                self.state = State::Done;
                self.events.push_back(ClientEvent::Rejected { reason });
                Ok(())
            }
            (msg, state) => Err(ClientError::Unexpected {
                what: match msg {
                    ToParticipant::Welcome(_) => "welcome",
                    ToParticipant::Round(_) => "round spec",
                    ToParticipant::Reveal { .. } => "second roster",
                    ToParticipant::Randomness { .. } => "second randomness",
                    _ => "message",
                },
                state: match state {
                    State::Joining => "waiting for admission",
                    State::Member { .. } => "a member",
                    State::Done => "finished",
                },
            }),
        }
    }

    /// `round` is the round in progress, or why not.
    fn check_current(&self, round: u32) -> Result<(), ClientError> {
        let current = match &self.state {
            State::Member { current, .. } => *current,
            _ => None,
        };
        if current == Some(round) {
            Ok(())
        } else {
            Err(ClientError::StaleRound {
                got: round,
                current,
            })
        }
    }

    /// Hands in the trained delta for `round`: it is clipped to the round's bound and
    /// queued (plain), or quantised and masked as soon as the shares have arrived (secure).
    pub fn submit_update(
        &mut self,
        round: u32,
        mut delta: Vec<f32>,
        train_loss: f32,
    ) -> Result<(), ClientError> {
        self.check_current(round)?;
        if !(train_loss.is_finite() && delta.iter().all(|v| v.is_finite())) {
            // Nothing to aggregate: the holder says so rather than leaving the round to
            // wait out its deadline.
            let bad = delta.iter().filter(|v| !v.is_finite()).count();
            let err = ClientError::NonFinite {
                round,
                values: bad,
                loss: train_loss,
            };
            self.transmits.push_back(ToCoordinator::Decline {
                round,
                reason: err.to_string(),
            });
            if let State::Member { current, .. } = &mut self.state {
                *current = None;
            }
            return Err(err);
        }
        clip_l2(&mut delta, self.clip);
        match &mut self.secure {
            Some(secure) => {
                let out = secure.submit(delta, train_loss.clamp(0.0, self.clip), &mut self.rng);
                self.flush_secure();
                out?;
            }
            None => self.transmits.push_back(ToCoordinator::Update(Update {
                round,
                n_examples: self.n_rows as u64,
                delta,
                train_loss,
            })),
        }
        if let State::Member { current, .. } = &mut self.state {
            *current = None;
        }
        Ok(())
    }

    /// Sampled-step rounds: commits to the digests of this holder's K intermediate models
    /// for `round` (once; the coordinator answers with [`ClientEvent::Challenge`]).
    pub fn send_chain(&mut self, round: u32, digests: Vec<[u8; 32]>) -> Result<(), ClientError> {
        self.check_current(round)?;
        if self.chain_sent == Some(round) {
            return Err(ClientError::Unexpected {
                what: "second chain",
                state: "chain already sent this round",
            });
        }
        self.chain_sent = Some(round);
        self.transmits
            .push_back(ToCoordinator::Secure(SecureUp::Chain { round, digests }));
        Ok(())
    }

    /// The proven update of round `round` in a job that proves: the fixed-point update
    /// the proof speaks of, the blinding's limbs, the loss, and the commitment and proof.
    pub fn submit_proven(
        &mut self,
        round: u32,
        update: &[i64],
        blinding_limbs: &[u32],
        train_loss: f32,
        input: ProvenInput,
    ) -> Result<(), ClientError> {
        self.check_current(round)?;
        let Some(secure) = &mut self.secure else {
            return Err(ClientError::Unexpected {
                what: "proven update",
                state: "not in a secure round",
            });
        };
        let loss = train_loss.clamp(0.0, self.clip);
        let out = secure.submit_proven(update, blinding_limbs, loss, input, &mut self.rng);
        self.flush_secure();
        out?;
        if let State::Member { current, .. } = &mut self.state {
            *current = None;
        }
        Ok(())
    }

    fn flush_secure(&mut self) {
        if let Some(secure) = &mut self.secure {
            while let Some(up) = secure.poll_transmit() {
                self.transmits.push_back(ToCoordinator::Secure(up));
            }
        }
    }

    /// Leaves the job (e.g. local training failed for good).
    pub fn leave(&mut self, reason: String) {
        self.transmits.push_back(ToCoordinator::Leave { reason });
        self.state = State::Done;
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<ToCoordinator> {
        self.transmits.pop_front()
    }

    /// The next event to act on.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// True once the job is over for this participant.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// What makes a round's training the same as another's: its global model (every bit) and
/// its round seed.
fn round_key(spec: &RoundSpec) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"cairn/round-key/v1");
    h.update((spec.global.len() as u64).to_le_bytes());
    for v in &spec.global {
        h.update(v.to_bits().to_le_bytes());
    }
    h.update(spec.round_seed);
    h.finalize().into()
}

/// The job's randomness as the coordinator sent it, checked: every reveal opens its
/// commitment, the roster is the one this holder revealed to (or, in a job resumed after
/// the reveal, holds this holder with its own contribution); gives the beacon and this
/// holder's index.
fn check_randomness(
    job_id: &str,
    contributions: &[Contribution],
    shown: Option<&[(cairn_crypto::sign::IdentityPublic, [u8; 32])]>,
    me: &cairn_crypto::sign::IdentityPublic,
    mine: &[u8; 32],
) -> Result<([u8; 32], u32), ClientError> {
    randomness::check(contributions)?;
    if let Some(shown) = shown {
        let same = shown.len() == contributions.len()
            && shown
                .iter()
                .zip(contributions)
                .all(|(s, c)| s.0 == c.identity && s.1 == c.commitment);
        if !same {
            return Err(RandomnessError::Mismatch(format!(
                "{} contributions for a roster of {}",
                contributions.len(),
                shown.len()
            ))
            .into());
        }
    }
    let index = randomness::holder_index(contributions, me).ok_or(RandomnessError::NotInRoster)?;
    if contributions[index as usize].reveal != *mine {
        return Err(
            RandomnessError::Mismatch("this holder's contribution is not its own".into()).into(),
        );
    }
    Ok((randomness::beacon(job_id, contributions), index))
}

/// The round's seeds must be the job's randomness for that round.
fn check_seeds(spec: &RoundSpec, beacon: &[u8; 32]) -> Result<(), ClientError> {
    let what = if spec.round_seed != randomness::round_seed(beacon, spec.round) {
        "the round seed is not the job's randomness for this round"
    } else if spec
        .secure
        .as_ref()
        .is_some_and(|s| s.graph_seed != randomness::graph_seed(beacon, spec.round))
    {
        "the secure-aggregation graph seed is not the job's randomness for this round"
    } else {
        return Ok(());
    };
    Err(ClientError::BadRound {
        round: spec.round,
        what: what.into(),
    })
}

fn check_round(spec: &RoundSpec, model: &ModelSpec) -> Result<(), ClientError> {
    let want = model.param_count();
    if spec.global.len() != want {
        return Err(ClientError::WrongModel {
            round: spec.round,
            got: spec.global.len(),
            want,
        });
    }
    let bad = |what: String| {
        Err(ClientError::BadRound {
            round: spec.round,
            what,
        })
    };
    if spec.global.iter().any(|v| !v.is_finite()) {
        return bad("global model has non-finite values".into());
    }
    if let Some((field, why)) = spec.hyper.problems().into_iter().next() {
        return bad(format!("{field}: {why}"));
    }
    Ok(())
}

/// Why a holder with noise floor `min_noise` will not take part in `spec`'s round for its privacy, or `None`.
fn refuse_noise(min_noise: f64, spec: &RoundSpec) -> Option<String> {
    let params = spec.secure.as_ref().and_then(|s| s.privacy.as_ref());
    match params {
        None if min_noise > 0.0 => Some(format!(
            "the round adds no DP noise; this holder takes part only with a noise multiplier of at least {}",
            min_noise
        )),
        // NaN fails too.
        Some(p) if p.noise_multiplier.is_nan() || p.noise_multiplier < min_noise => Some(format!(
            "the round's noise multiplier {} is below this holder's floor of {}",
            p.noise_multiplier, min_noise
        )),
        _ => None,
    }
}

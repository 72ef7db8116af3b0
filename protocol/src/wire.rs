//! The wire format: every message either side sends, versioned, with explicit size limits.
//!
//! A frame is `version: u16 BE ‖ length: u32 BE ‖ body`, the body a bincode (v2, standard
//! config) encoding of [`ToCoordinator`] or [`ToParticipant`]. The header is checked before
//! any allocation: an unknown version or a length over the direction's limit is refused
//! with a typed error, so a peer cannot make the other side allocate more than
//! [`MAX_FRAME_BYTES`].

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use cairn_crypto::secagg::{
    AdvertiseKeys, ConsistencySignature, EncryptedShare, MaskedInput, ShareKeys, UnmaskRequest,
    UnmaskResponse,
};
use cairn_crypto::sign::{IdentityPublic, Signature};
use cairn_crypto::ParticipantId as CryptoId;

pub use cairn_datasets::DataSpec;

use crate::model::{HyperParams, ModelSpec, MAX_PARAMS};

pub use cairn_proofs::spec::{
    DatasetCommitment, DatasetFacts, ProofSpec, ProvenInput, StepChain, MAX_BLINDING_LIMBS,
    MAX_CHAIN_STEPS, MAX_FEATURE_BITS, MAX_TREE_DEPTH, PROVEN_SCALE_BITS,
};

/// The wire protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 12;
/// Bytes of the frame header (version and length).
pub const HEADER_BYTES: usize = 6;
/// Largest frame body either side accepts: a full model of [`MAX_PARAMS`] f32 values plus
/// room for the fixed fields.
pub const MAX_FRAME_BYTES: usize = MAX_PARAMS * 4 + 64 * 1024;
/// Largest first frame of a connection (its [`Hello`]): a peer not yet admitted is held
/// to this, not to an update's size.
pub const MAX_HELLO_FRAME_BYTES: usize = 4096;
/// Longest reason a participant gives ([`ToCoordinator::Decline`], `Leave`) that is kept.
pub const MAX_REASON_BYTES: usize = 512;

/// `text` as it may reach a terminal or a log: control characters (escape sequences,
/// carriage returns, newlines that would forge log lines) become `?`, and at most
/// `max_bytes` bytes are kept (on a character boundary). Applied to whatever a peer
/// names itself or gives as a reason.
pub fn printable(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes));
    for c in text.chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out
}

/// Longest participant name accepted in a [`Hello`].
pub const MAX_NAME_BYTES: usize = 64;
/// ALPN protocol id of cairn's QUIC connections: the wire version, so that peers of
/// different versions fail the handshake with a clear TLS error instead of waiting on
/// each other (this version's coordinator opens the stream; earlier ones did not).
pub const ALPN: &[u8] = b"cairn/12";

/// Why bytes could not be turned into a message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than a header or than the header's length promises.
    #[error("truncated frame: have {have} bytes, need {need}")]
    Truncated {
        /// Bytes available.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The frame's version is not ours.
    #[error("unsupported protocol version {got} (this build speaks {PROTOCOL_VERSION})")]
    Version {
        /// Version in the header.
        got: u16,
    },
    /// The header announces more than the limit.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Limit in force.
        limit: usize,
    },
    /// The body is not a valid encoding of the expected message type.
    #[error("malformed message body: {0}")]
    Malformed(String),
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// A message could not be encoded (too large).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// Messages a participant sends to the coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToCoordinator {
    /// First message on a connection, in answer to the [`ToParticipant::Offer`]: who is
    /// asking to join the job.
    Hello(Hello),
    /// First message on a connection instead of the Hello: the holder cannot prepare its
    /// table for the job offered (a column it lacks, a label it does not have…), and says
    /// why; the coordinator shows the reason and closes the connection.
    CannotJoin {
        /// Its display name, at most [`MAX_NAME_BYTES`] bytes.
        name: String,
        /// Why, at most [`MAX_REASON_BYTES`] bytes.
        reason: String,
    },
    /// Its dataset commitment, sent once after the welcome when the job proves its rounds.
    Dataset(DatasetCommitment),
    /// The participant's local update for a round.
    Update(Update),
    /// A secure-aggregation phase message.
    Secure(SecureUp),
    /// The participant gives up on the job (it is left out of rounds from now on).
    Leave {
        /// Why, for the coordinator's log.
        reason: String,
    },
    /// It cannot take part in `round` (it refuses the round spec, or its training gave
    /// non-finite values), and says why: the coordinator drops it from that round at once
    /// and names the reason; it stays in the job.
    Decline {
        /// The round.
        round: u32,
        /// Why (at most [`MAX_REASON_BYTES`] bytes are kept).
        reason: String,
    },
    /// Its countersignature on the transcript's head ([`ToParticipant::Seal`]), over
    /// [`crate::transcript::seal_payload`].
    Countersign {
        /// Ed25519 signature by its identity key.
        signature: Signature,
    },
    /// After its welcome: the commitment to its contribution to the job's randomness
    /// ([`crate::randomness::commit`]).
    Commit {
        /// The commitment.
        commitment: [u8; 32],
    },
    /// In answer to [`ToParticipant::Reveal`]: its contribution.
    Reveal {
        /// The contribution ([`crate::randomness::contribution`]).
        contribution: [u8; 32],
    },
}

/// Messages the coordinator sends to a participant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToParticipant {
    /// First message on every connection, before the holder's Hello: the job running and
    /// the data it trains on, so the holder can prepare its own table for it (or answer
    /// [`ToCoordinator::CannotJoin`]).
    Offer(Offer),
    /// Admission to the job.
    Welcome(Welcome),
    /// A round to train in.
    Round(RoundSpec),
    /// A secure-aggregation phase message.
    Secure(SecureDown),
    /// The job ended; the connection will close.
    Finished {
        /// Rounds completed.
        rounds: u32,
        /// True when the job ran all its rounds; false when it stopped early (too many
        /// failed rounds, too few holders, cancelled).
        completed: bool,
        /// Human-readable outcome.
        message: String,
    },
    /// A proven job is over: countersign its transcript's head (answered with
    /// [`ToCoordinator::Countersign`]); [`ToParticipant::Finished`] follows.
    Seal {
        /// Hash of the transcript's last record.
        head: [u8; 32],
        /// The last round begun.
        last_round: u32,
        /// Rounds completed.
        rounds_completed: u32,
        /// Hash of the final model.
        final_model_hash: [u8; 32],
    },
    /// Admission refused or the participant was dropped from the job.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Enrolment closed: the roster of the job's holders and their randomness commitments,
    /// sorted by identity key. A holder that finds its own there answers with
    /// [`ToCoordinator::Reveal`].
    Reveal {
        /// (identity key, commitment), strictly sorted by key.
        roster: Vec<(IdentityPublic, [u8; 32])>,
    },
    /// Every holder's revealed contribution, in roster order: the job's randomness
    /// ([`crate::randomness::beacon`]), which every round's seeds must derive from.
    Randomness {
        /// The contributions.
        contributions: Vec<crate::randomness::Contribution>,
    },
}

/// A participant's request to join.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The participant's protocol version (must equal [`PROTOCOL_VERSION`]).
    pub version: u16,
    /// Display name, at most [`MAX_NAME_BYTES`] bytes.
    pub name: String,
    /// Rows the participant holds (FedAvg weight).
    pub n_rows: u64,
    /// Number of features of its rows (must match the job's model).
    pub n_features: u32,
    /// Its Ed25519 identity key: signs its secure-aggregation keys and the survivor list.
    pub identity: IdentityPublic,
}

/// The job a connection is offered ([`ToParticipant::Offer`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// The job's id.
    pub job_id: String,
    /// The label, input columns and fitted transforms each holder applies to its own table;
    /// `None` when the job names none (holders then train on rows prepared beforehand,
    /// as in tests and in-process simulations).
    pub data: Option<DataSpec>,
}

/// The coordinator's admission of a participant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The participant's index in the job (stable for the job).
    pub participant: u32,
    /// The job's id.
    pub job_id: String,
    /// The job's model.
    pub model: ModelSpec,
    /// Rounds the job will run.
    pub rounds: u32,
    /// The job's local training hyper-parameters (each round spec repeats them). With
    /// the model and the proof settings they fix the circuit shape, so a proving
    /// participant can load its proving key before the first round.
    pub hyper: HyperParams,
    /// The proof settings when the job proves its rounds: the participant then commits
    /// to its dataset (a tree of this depth) before the first round.
    pub proof: Option<ProofSpec>,
}

/// One round's specification, as every selected participant receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundSpec {
    /// Round number, from 1.
    pub round: u32,
    /// The global model's flat parameters.
    pub global: Vec<f32>,
    /// Local training hyper-parameters.
    pub hyper: HyperParams,
    /// Seed fixing which rows each participant trains on ([`crate::sampling`]).
    pub round_seed: [u8; 32],
    /// Milliseconds the participant has to answer.
    pub deadline_ms: u64,
    /// Secure aggregation's public parameters; `None` for plain FedAvg.
    pub secure: Option<SecureSpec>,
    /// What the round's proofs must show; `None` when the job does not prove.
    pub proof: Option<ProofSpec>,
    /// Sampled-step rounds: the hash of the round's beacon
    /// ([`crate::challenge::beacon_commitment`]), published before any holder commits.
    pub beacon_commitment: Option<[u8; 32]>,
}

/// The public parameters of a round's secure aggregation (SecAgg+), as every selected
/// participant receives them in the round spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecureSpec {
    /// The selected participants and their identity keys.
    pub roster: Vec<(CryptoId, IdentityPublic)>,
    /// Neighbours per participant in the masking graph.
    pub k: u32,
    /// Shamir threshold t.
    pub threshold: u32,
    /// Seed of the neighbour graph, drawn after the roster was fixed.
    pub graph_seed: [u8; 32],
    /// Fixed-point scale of the quantised update (2^scale_bits).
    pub scale_bits: u32,
    /// The job's tolerated dropout rate δ: with γ and the roster's size, what fixes
    /// (k, t); each participant recomputes them and refuses any other.
    pub dropout: f64,
    /// The job's tolerated corruption rate γ.
    pub corruption: f64,
    /// Distributed DP: the mechanism's parameters. Each holder then masks its rotated,
    /// rounded update plus its share of the noise ([`crate::privacy::noised`]) instead of
    /// its quantised update, and sends no loss.
    pub privacy: Option<cairn_privacy::SkellamParams>,
}

/// Secure-aggregation messages from a participant, each tagged with its round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SecureUp {
    /// Phase 0: its signed agreement keys.
    Keys {
        /// Round.
        round: u32,
        /// The keys.
        msg: AdvertiseKeys,
    },
    /// Phase 1: encrypted shares for its neighbours.
    Shares {
        /// Round.
        round: u32,
        /// The shares.
        msg: ShareKeys,
    },
    /// Sampled-step rounds, any time before its masked input: the digests of its K
    /// intermediate models (once per round; the coordinator answers with its beacon).
    Chain {
        /// Round.
        round: u32,
        /// `d_1..d_K`.
        digests: Vec<[u8; 32]>,
    },
    /// Phase 2: its masked input (the quantised update and loss, masked).
    Masked {
        /// Round.
        round: u32,
        /// The masked vector.
        msg: MaskedInput,
        /// Commitment and proof, when the job proves its rounds.
        proof: Option<ProvenInput>,
    },
    /// Phase 3: its signature on the survivor list.
    Consistency {
        /// Round.
        round: u32,
        /// The signature.
        msg: ConsistencySignature,
    },
    /// Phase 4: the shares the coordinator asked for.
    Unmask {
        /// Round.
        round: u32,
        /// The shares.
        msg: UnmaskResponse,
    },
}

impl SecureUp {
    /// The round the message belongs to.
    pub fn round(&self) -> u32 {
        match self {
            SecureUp::Keys { round, .. }
            | SecureUp::Shares { round, .. }
            | SecureUp::Chain { round, .. }
            | SecureUp::Masked { round, .. }
            | SecureUp::Consistency { round, .. }
            | SecureUp::Unmask { round, .. } => *round,
        }
    }
}

/// Secure-aggregation messages from the coordinator, each tagged with its round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SecureDown {
    /// After phase 0: the signed keys of the recipient's neighbours (and its own): O(k), not O(n).
    Roster {
        /// Round.
        round: u32,
        /// The keys.
        keys: Vec<AdvertiseKeys>,
    },
    /// After phase 1: the shares addressed to this participant.
    Inbox {
        /// Round.
        round: u32,
        /// The shares.
        shares: Vec<EncryptedShare>,
    },
    /// Sampled-step rounds, in answer to the holder's chain: the beacon its challenge is
    /// drawn from.
    Challenge {
        /// Round.
        round: u32,
        /// The holder's beacon.
        beacon: [u8; 32],
    },
    /// After phase 2: the survivors, to sign.
    Survivors {
        /// Round.
        round: u32,
        /// Who sent a masked input.
        survivors: Vec<CryptoId>,
    },
    /// After phase 3: which shares to reveal.
    Unmask {
        /// Round.
        round: u32,
        /// The request.
        request: UnmaskRequest,
    },
}

/// A participant's clipped local update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The round it answers.
    pub round: u32,
    /// FedAvg weight: the participant's number of local rows.
    pub n_examples: u64,
    /// w_K − w, clipped to the round's clip norm.
    pub delta: Vec<f32>,
    /// Mean training loss over the local steps (reported, not trusted).
    pub train_loss: f32,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

/// Encodes `msg` as one frame (header and body).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0u8; HEADER_BYTES];
    bincode::serde::encode_into_std_write(msg, &mut out, config())
        .map_err(|e| WireError::Encode(e.to_string()))?;
    let len = out.len() - HEADER_BYTES;
    if len > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge {
            len,
            limit: MAX_FRAME_BYTES,
        });
    }
    out[..2].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out[2..6].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Parses a frame header, returning the body length it announces after checking the
/// version and the limit (`limit` at most [`MAX_FRAME_BYTES`]).
pub fn parse_header(header: &[u8; HEADER_BYTES], limit: usize) -> Result<usize, WireError> {
    let version = u16::from_be_bytes([header[0], header[1]]);
    if version != PROTOCOL_VERSION {
        return Err(WireError::Version { got: version });
    }
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    let limit = limit.min(MAX_FRAME_BYTES);
    if len > limit {
        return Err(WireError::TooLarge { len, limit });
    }
    Ok(len)
}

/// Decodes a message body (the bytes after the header); the whole body must be used.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let (msg, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(WireError::Trailing(body.len() - used));
    }
    Ok(msg)
}

/// Decodes one whole frame (header and body), as a test or an in-memory transport has it.
pub fn decode<T: DeserializeOwned>(frame: &[u8], limit: usize) -> Result<T, WireError> {
    let header: &[u8; HEADER_BYTES] = frame
        .get(..HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or(WireError::Truncated {
            have: frame.len(),
            need: HEADER_BYTES,
        })?;
    let len = parse_header(header, limit)?;
    let body = &frame[HEADER_BYTES..];
    if body.len() < len {
        return Err(WireError::Truncated {
            have: frame.len(),
            need: HEADER_BYTES + len,
        });
    }
    if body.len() > len {
        return Err(WireError::Trailing(body.len() - len));
    }
    decode_body(body)
}

/// The largest frame body a coordinator expects from a participant of a model with
/// `n_params` parameters: the update vector plus fixed fields.
pub fn update_limit(n_params: usize) -> usize {
    // The update (4 bytes a value, plain or masked) plus room for the key, share and
    // unmask messages of secure aggregation, which are O(k) small records.
    (n_params * 4 + 256 * 1024).min(MAX_FRAME_BYTES)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_proven_job_takes_whole_blocks_of_at_least_one_batch_within_the_tree() {
        let spec = ProofSpec {
            tolerance: 1e-3,
            tree_depth: 2,
            blinding_limbs: 16,
            feature_bits: 20,
            block_rows: 4,
            sampled_steps: None,
            noise: None,
        };
        assert_eq!(spec.capacity(), 16);
        assert_eq!(spec.refuse_rows(8, 8), None);
        assert_eq!(spec.refuse_rows(16, 8), None);
        assert!(spec
            .refuse_rows(10, 8)
            .is_some_and(|r| r.contains("whole blocks")));
        assert!(spec
            .refuse_rows(4, 8)
            .is_some_and(|r| r.contains("one batch")));
        assert!(spec
            .refuse_rows(0, 8)
            .is_some_and(|r| r.contains("one batch")));
        assert!(spec
            .refuse_rows(20, 8)
            .is_some_and(|r| r.contains("hold up to 16")));
        // Row indices are u32: never more than 2^32 rows, however deep the tree.
        let deep = ProofSpec {
            tree_depth: 32,
            block_rows: 8,
            sampled_steps: None,
            ..spec
        };
        assert_eq!(deep.capacity(), 1 << 32);
    }

    use super::*;

    fn update() -> ToCoordinator {
        ToCoordinator::Update(Update {
            round: 3,
            n_examples: 10,
            delta: vec![0.5, -1.25, 3.0],
            train_loss: 0.7,
        })
    }

    #[test]
    fn round_trip() {
        let f = encode(&update()).expect("encode");
        assert_eq!(
            decode::<ToCoordinator>(&f, MAX_FRAME_BYTES).expect("decode"),
            update()
        );
        let w = ToParticipant::Welcome(Welcome {
            participant: 2,
            job_id: "j".into(),
            model: ModelSpec::mlp(4, vec![3]),
            rounds: 5,
            hyper: HyperParams::default(),
            proof: None,
        });
        assert_eq!(
            decode::<ToParticipant>(&encode(&w).expect("encode"), MAX_FRAME_BYTES).expect("decode"),
            w
        );
    }

    #[test]
    fn rejects_other_versions_oversize_truncation_and_garbage() {
        let mut f = encode(&update()).expect("encode");
        let good = f.clone();
        f[1] ^= 0xff;
        assert!(matches!(
            decode::<ToCoordinator>(&f, MAX_FRAME_BYTES),
            Err(WireError::Version { .. })
        ));
        assert!(matches!(
            decode::<ToCoordinator>(&good, 8),
            Err(WireError::TooLarge { limit: 8, .. })
        ));
        assert!(matches!(
            decode::<ToCoordinator>(&good[..good.len() - 1], MAX_FRAME_BYTES),
            Err(WireError::Truncated { .. })
        ));
        let mut g = good.clone();
        g.push(0);
        assert!(matches!(
            decode::<ToCoordinator>(&g, MAX_FRAME_BYTES),
            Err(WireError::Trailing(1))
        ));
        let mut garbage = good[..HEADER_BYTES].to_vec();
        garbage.extend(std::iter::repeat_n(0xff, good.len() - HEADER_BYTES));
        assert!(matches!(
            decode::<ToCoordinator>(&garbage, MAX_FRAME_BYTES),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn a_vector_length_claim_beyond_the_limit_does_not_allocate() {
        // Body claims an update of u64::MAX floats: must fail on the limit, not allocate.
        let mut body = vec![1u8]; // variant Update
        body.extend([3u8, 10u8]); // round 3, n_examples 10 (varint)
        body.push(253); // varint tag for u64
        body.extend(u64::MAX.to_le_bytes());
        assert!(decode_body::<ToCoordinator>(&body).is_err());
    }
}

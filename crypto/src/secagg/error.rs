//! The typed errors of the SecAgg+ protocol, for both sides.

use crate::keys::KeyError;
use crate::prg::MaskTooLong;
use crate::shamir::ShamirError;
use crate::ParticipantId;

/// A protocol phase, to say where something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Advertising the two agreement public keys.
    AdvertiseKeys,
    /// Sending encrypted Shamir shares to neighbours.
    ShareKeys,
    /// Sending the masked input.
    MaskedInput,
    /// Signing the survivor list.
    Consistency,
    /// Revealing shares so the coordinator can remove the masks.
    Unmask,
}

/// Everything that can go wrong in a SecAgg+ round. On the coordinator, an error from a
/// `receive` rejects that one message (its sender counts as dropped); an error from a
/// `close`/`finish` aborts the round. On a client, every error aborts its round.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SecAggError {
    /// The round configuration is unusable.
    #[error("invalid round configuration: {0}")]
    BadConfig(String),
    /// A message from (or about) someone who is not a participant of this round.
    #[error("{0} is not a participant of this round")]
    NotInRound(ParticipantId),
    /// A participant that was not expected in this phase (dropped earlier).
    #[error("{id} is not expected in phase {phase:?}")]
    NotExpected {
        /// Who.
        id: ParticipantId,
        /// Phase.
        phase: Phase,
    },
    /// A second message from the same sender in one phase.
    #[error("duplicate message from {id} in phase {phase:?}")]
    Duplicate {
        /// Who.
        id: ParticipantId,
        /// Phase.
        phase: Phase,
    },
    /// A signature that does not verify under the sender's identity key.
    #[error("bad signature from {0}")]
    BadSignature(ParticipantId),
    /// An agreement key of low order, or one reused for both roles.
    #[error("weak or reused agreement key from {0}")]
    WeakKey(ParticipantId),
    /// A vector, ciphertext or list of the wrong size.
    #[error("wrong size from {from}: {what} is {got}, expected {expected}")]
    WrongSize {
        /// Who sent it.
        from: ParticipantId,
        /// What was mis-sized.
        what: &'static str,
        /// Its size.
        got: usize,
        /// The size required.
        expected: usize,
    },
    /// Shares addressed to someone who is not the sender's live neighbour (or missing one).
    #[error("{from} addressed shares wrongly: {detail}")]
    WrongRecipients {
        /// Sender.
        from: ParticipantId,
        /// What was wrong.
        detail: String,
    },
    /// An encrypted share that fails authentication.
    #[error("share from {0} failed to decrypt")]
    Decryption(ParticipantId),
    /// A decrypted or revealed share that is malformed.
    #[error("malformed share from {from}: {source}")]
    BadShare {
        /// Who sent it.
        from: ParticipantId,
        /// Why.
        source: ShamirError,
    },
    /// Too few participants remain for the round to go on.
    #[error("too few participants in phase {phase:?}: {have} < threshold {need}")]
    TooFewParticipants {
        /// Phase.
        phase: Phase,
        /// Participants left.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Too few live neighbours for this client to mask safely.
    #[error("too few live neighbours: {have} < threshold {need}")]
    TooFewNeighbours {
        /// Neighbours left.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// An unmask request names a peer that is not a neighbour holding a share with us.
    #[error("unmask request names {0}, not a neighbour that shared with us")]
    NotNeighbour(ParticipantId),
    /// An unmask request asks for both the self-mask share and the mask-key share of one peer.
    #[error("unmask request asks for both secrets of {0}")]
    BothSecretsRequested(ParticipantId),
    /// The survivor list is malformed (unsorted, duplicated), excludes us, or contradicts
    /// what we saw.
    #[error("inconsistent survivor list: {0}")]
    InconsistentSurvivors(String),
    /// Too few valid survivor-list signatures.
    #[error("too few survivor signatures: {have} < {need}")]
    TooFewSignatures {
        /// Valid signatures.
        have: usize,
        /// Needed.
        need: usize,
    },
    /// Too few shares to rebuild one participant's secret.
    #[error("too few shares to rebuild the secret of {owner}: {have} < {need}")]
    TooFewShares {
        /// Whose secret.
        owner: ParticipantId,
        /// Shares received.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// The revealed shares of one participant's secret are inconsistent.
    #[error("inconsistent shares for the secret of {owner}")]
    InconsistentShares {
        /// Whose secret.
        owner: ParticipantId,
    },
    /// Key agreement failed.
    #[error("key agreement with {peer}: {source}")]
    Key {
        /// The peer.
        peer: ParticipantId,
        /// Why.
        source: KeyError,
    },
    /// The vector is too long for the PRG.
    #[error(transparent)]
    Mask(#[from] MaskTooLong),
}

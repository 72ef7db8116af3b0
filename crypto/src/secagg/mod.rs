//! The SecAgg+ protocol core (Bell et al. 2020; Bonawitz et al. 2017 when the graph is
//! complete), pure and sans-IO: the client as a typestate (one type per phase, each
//! transition consuming the previous state) and the coordinator as one collector per
//! phase (`receive` each message, `close` when the phase's deadline passes).
//!
//! ```text
//!  client                         coordinator
//!  ClientAdvertised::new ──AdvertiseKeys──▶ KeyCollection ─close─▶ ShareRouting
//!  .share_keys(roster)   ──ShareKeys─────▶ ShareRouting    ─close─▶ MaskedCollection
//!  .mask(inbox, x)       ──MaskedInput───▶ MaskedCollection ─close─▶ ConsistencyCollection
//!  .consistency(list)    ──ConsistencySig▶ ConsistencyCollection ─close─▶ Unmasking
//!  .unmask(request)      ──UnmaskResponse▶ Unmasking ─finish─▶ Σ x over survivors
//! ```
//!
//! Between phases the coordinator sends: each participant its neighbours' keys
//! ([`ShareRouting::roster_for`]) after phase 0, each participant's inbox
//! ([`MaskedCollection::inbox`]) after phase 1, the survivor list
//! ([`ConsistencyCollection::survivors`]) after phase 2, and each survivor's
//! [`UnmaskRequest`] ([`Unmasking::request_for`]: the list, its neighbourhood's signatures
//! on it) after phase 3. Apart from the survivor list (4 bytes a survivor: each survivor
//! signs it whole), what a participant receives and checks is O(k), and so is the
//! coordinator's work per participant besides the masks (O(k log n)): nothing scans all
//! participants once per participant, so a round holds up at n = 1000 and beyond
//! (`crypto/tests/scale.rs`). Heavy calls
//! ([`ClientShared::mask`], [`Unmasking::finish`]/[`Unmasking::finish_parallel`]) belong on
//! a blocking thread, not an async executor.
//!
//! The coordinator adds each masked input into a running sum on arrival and never keeps
//! an individual one. A client answers exactly one unmask request (the typestate consumes
//! it) and refuses one that asks for both secrets of a peer, so no peer's input is ever
//! exposed; see [`params`] for the choice of k and t and the security statement.

pub mod client;
pub mod client_unmask;
pub mod error;
pub mod graph;
pub mod messages;
pub mod params;
pub mod server;
pub mod unmask;

use std::collections::BTreeMap;

pub use client::{ClientAdvertised, ClientConsistent, ClientMasked, ClientShared};
pub use error::{Phase, SecAggError};
pub use graph::NeighbourGraph;
pub use messages::*;
pub use params::{choose_params, ParamRequest, ParamsError, SecAggParams, ThreatModel};
pub use server::{ConsistencyCollection, KeyCollection, MaskedCollection, ShareRouting, Unmasking};

use crate::prg::MAX_MASK_ELEMS;
use crate::sign::IdentityPublic;
use crate::{ParticipantId, RoundId};

/// Everything both sides must agree on before a round starts (the coordinator publishes
/// it in the round spec): who takes part, with which identity keys, the graph, the
/// threshold and the vector length.
#[derive(Clone, Debug)]
pub struct RoundConfig {
    round: RoundId,
    threshold: usize,
    vector_len: usize,
    identities: BTreeMap<ParticipantId, IdentityPublic>,
    graph: NeighbourGraph,
}

impl RoundConfig {
    /// Builds and checks a configuration: at least 2 participants, 1 ≤ t ≤ degree,
    /// 0 < vector_len ≤ the PRG's limit. `k` and `threshold` normally come from
    /// [`choose_params`]; `graph_seed` must be drawn by the coordinator at random *after*
    /// the participant list is fixed (the security statement in [`params`] assumes
    /// corruptions and dropouts cannot depend on the graph).
    pub fn new(
        round: RoundId,
        graph_seed: [u8; 32],
        k: usize,
        threshold: usize,
        vector_len: usize,
        identities: BTreeMap<ParticipantId, IdentityPublic>,
    ) -> Result<Self, SecAggError> {
        let ids: Vec<ParticipantId> = identities.keys().copied().collect();
        if ids.len() < 2 {
            return Err(SecAggError::BadConfig(format!(
                "{} participants; at least 2 needed",
                ids.len()
            )));
        }
        let graph = NeighbourGraph::new(&ids, k, &graph_seed);
        if threshold == 0 || threshold > graph.degree() {
            return Err(SecAggError::BadConfig(format!(
                "threshold {threshold} outside 1..={} (the graph degree)",
                graph.degree()
            )));
        }
        if vector_len == 0 || vector_len > MAX_MASK_ELEMS {
            return Err(SecAggError::BadConfig(format!(
                "vector length {vector_len}"
            )));
        }
        Ok(Self {
            round,
            threshold,
            vector_len,
            identities,
            graph,
        })
    }

    /// The round.
    pub fn round(&self) -> &RoundId {
        &self.round
    }

    /// Shamir threshold t.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Ring elements per masked vector.
    pub fn vector_len(&self) -> usize {
        self.vector_len
    }

    /// The neighbour graph.
    pub fn graph(&self) -> &NeighbourGraph {
        &self.graph
    }

    /// The identity key of a participant.
    pub fn identity(&self, id: ParticipantId) -> Result<&IdentityPublic, SecAggError> {
        self.identities.get(&id).ok_or(SecAggError::NotInRound(id))
    }

    /// Shamir x-coordinate of the share held by `id`: never 0 (which is the secret).
    pub fn share_x(id: ParticipantId) -> u64 {
        id.0 as u64 + 1
    }
}

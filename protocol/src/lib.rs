//! Wire messages and sans-IO round state machines shared by the cairn coordinator and
//! its participants.
//!
//! Nothing here touches a socket, a clock or an OS random source: time comes in as
//! `Instant` arguments and randomness as seeds, so the whole round can be driven in
//! memory by tests (as `quinn-proto` is).

pub mod metrics;
pub mod model;
pub mod sampling;
pub mod wire;

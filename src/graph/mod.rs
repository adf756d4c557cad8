//! The social graph stage: the multiplex graph of consented people, its degree-capped
//! projection, network metrics, Leiden communities and weekly network exposure.
//!
//! [`network`] holds the compressed graph, [`cap`] the projection that privacy needs,
//! [`metrics`] the per-person and per-graph measures, [`community`] the detector trait and its
//! Leiden implementation, [`compare`] partition agreement, [`exposure`] the exposure table on
//! either path, and [`stage`] reads a snapshot and stores the artifacts beside it. Everything
//! here is internal: nothing computed in this stage is released without going through the
//! privacy core.

pub mod cap;
pub mod community;
pub mod compare;
pub mod exposure;
pub mod leiden;
pub mod metrics;
pub mod network;
pub mod stage;

#[cfg(test)]
mod tests;

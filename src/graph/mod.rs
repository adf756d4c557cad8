//! The social graph stage: the multiplex graph of consented people, its degree-capped
//! projection, network metrics, Leiden communities and weekly network exposure.
//!
//! [`network`] holds the compressed graph, [`cap`] the projection that privacy needs,
//! [`metrics`] the per-person and per-graph measures, [`community`] the detector trait and
//! [`leiden`] kith's implementation, [`compare`] partition agreement, [`exposure`] the
//! exposure table on either path, `snapshot` reads a vault snapshot, [`stage`] runs the
//! stage and stores the artifacts beside it, and [`visit`] lends the graph petgraph's
//! traits. Everything here is internal: nothing computed in this stage is released without
//! going through the privacy core.

pub mod cap;
pub mod community;
pub mod compare;
pub mod exposure;
pub mod leiden;
pub mod metrics;
pub mod network;
mod snapshot;
pub mod stage;
pub mod visit;

#[cfg(test)]
mod tests;

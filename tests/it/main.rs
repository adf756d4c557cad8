//! kith's integration tests: one binary, one module per area.

mod access;
mod cli;
mod graph;
mod intake_cases;
mod intake_crash;
mod intake_privacy;
mod intake_props;
mod privacy_audit;
mod release;
mod release_audit;
mod support;
mod synth;

//! kith's integration tests: one binary, one module per area.

mod access;
mod cli;
mod support;
mod synth;

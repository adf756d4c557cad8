//! kith turns consented wellness-program exports into a social graph, learns what shapes
//! everyday health decisions, and publishes only differentially private community insights.
//!
//! Modules in pipeline order:
//!
//! - [`workspace`]: the steward's folder — policy, secret key, one folder per stage.
//! - [`audit`]: roles, the permission table and the hash-chained audit log.
//! - [`synth`]: synthetic exports with planted truth, for tests, benchmarks and demos.
//! - [`intake`]: the input data contract, validation, pseudonymisation, consent and the
//!   vault's snapshots.
//! - [`error`], [`logging`], [`progress`]: the error type, diagnostics and progress bars every
//!   stage shares.
//! - [`cli`]: the `kith` command line.
//!
//! The graph, model, privacy, release, report and query stages are specified in
//! `docs/architecture.md` and land in that order; until then the CLI does not offer them.

pub mod audit;
pub mod cli;
pub mod error;
pub mod fault;
pub mod graph;
pub mod intake;
pub mod logging;
pub mod privacy;
pub mod progress;
pub mod synth;
pub mod workspace;

pub use error::{Error, ExitStatus, Result};

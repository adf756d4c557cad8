//! Intake: the input data contract, and (as it grows) validation, pseudonymisation, consent
//! and snapshot writing.
//!
//! Today this stage holds the contract itself — the tables, their columns, the vocabularies
//! and the quarantine reasons — so that the synthetic generator writes exactly what intake
//! will accept, and tests can check an export against it. `kith ingest` is not built yet; the
//! CLI says so instead of pretending.

pub mod check;
pub mod contract;

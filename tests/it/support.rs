//! Helpers shared by the integration tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kith::progress::Progress;
use kith::synth::{SynthConfig, SynthSummary, generate};

/// Generates an export into a fresh temporary folder.
pub(crate) fn synth(people: usize, seed: u64, dirty: f64) -> (tempfile::TempDir, SynthSummary) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut config = SynthConfig::new(people, seed);
    config.dirty_rate = dirty;
    let summary = generate(&config, dir.path(), &Progress::hidden()).expect("synth succeeds");
    (dir, summary)
}

/// Reads a CSV table into rows of named fields.
pub(crate) fn read_table(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path).expect("readable");
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|record| {
            let record = record.expect("record");
            headers.iter().zip(record.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

/// Parses CSV text into rows of named fields.
pub(crate) fn read_table_text(text: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|record| {
            let record = record.expect("record");
            headers.iter().zip(record.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

/// Reads `truth.json`.
pub(crate) fn truth(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("truth.json")).expect("truth.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// A `kith` command with logs quietened.
pub(crate) fn kith() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kith"));
    command
        .env_remove("KITH_WORKSPACE")
        .env_remove("SUDO_UID")
        .env_remove("SUDO_USER")
        .env("RUST_LOG", "error");
    command
}

/// The files an export folder holds, in a fixed order.
pub(crate) fn export_files(dir: &Path) -> Vec<PathBuf> {
    kith::synth::output_files(dir)
}

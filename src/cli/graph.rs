//! `kith graph`: the steward's graph stage and its internal diagnostics.

use super::output::Output;
use crate::audit::Done;
use crate::error::Result;
use crate::graph::community::{Detector, Settings};
use crate::graph::stage;
use crate::progress::Progress;
use crate::workspace::Workspace;

/// Builds (or reuses) the graph artifacts; with `summary`, prints the diagnostics.
pub(super) fn run(
    workspace: &Workspace,
    detector: Detector,
    settings: &Settings,
    summary: bool,
    progress: Progress,
    out: &mut Output,
) -> Result<Done> {
    let report = stage::run(workspace, detector, settings, progress)?;
    let record = &report.record;
    let verb = if report.reused { "reused" } else { "stored" };
    out.line(format!(
        "graph of {} {verb} in {} ({} communities, modularity {:.4}, {} capped nominations, \
         {} exposure rows)",
        record.snapshot,
        report.dir.display(),
        record.communities,
        record.modularity,
        record.capped_nominations,
        record.exposure_rows
    ))?;
    if summary {
        let text = serde_json::to_string_pretty(&record.summary)
            .map_err(|e| crate::Error::internal(e.to_string()))?;
        for line in text.lines() {
            out.line(line)?;
        }
        for (step, seconds) in &record.seconds {
            out.line(format!("{step:<12} {seconds:>8.2} s"))?;
        }
    }
    let outputs = if report.reused { Vec::new() } else { vec![report.dir.join("graph.json")] };
    Ok(Done { outputs, snapshot: Some(record.snapshot.clone()), ..Done::ok() })
}

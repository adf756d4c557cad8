//! `kith ingest DIR` and `kith rotate-key`: the steward's intake commands.

use super::output::Output;
use crate::audit::Done;
use crate::error::{ExitStatus, Result};
use crate::intake::{self, IngestOptions, IngestReport};
use crate::progress::Progress;
use crate::workspace::Workspace;

/// Ingests an export and prints its accounting; exit 1 when rows were quarantined.
pub(super) fn run(
    workspace: &Workspace,
    options: &IngestOptions,
    progress: Progress,
    out: &mut Output,
) -> Result<Done> {
    let report = intake::ingest(workspace, options, progress)?;
    print_report(&report, out)?;
    let status =
        if report.manifest.quarantined() > 0 { ExitStatus::Partial } else { ExitStatus::Success };
    let outputs = if report.created {
        vec![
            report.snapshot_dir.join(intake::vault::MANIFEST_FILE),
            workspace.root().join(&report.manifest.quarantine.path),
        ]
    } else {
        Vec::new()
    };
    Ok(Done { status, outputs, snapshot: Some(report.snapshot), ..Done::ok() })
}

/// Prints the intake summary: one line per table, read = stored + quarantined + excluded.
pub(super) fn print_report(report: &IngestReport, out: &mut Output) -> Result<()> {
    let manifest = &report.manifest;
    if report.created {
        out.line(format!(
            "snapshot {} written (consent as of {}, {}; {} new people)",
            report.snapshot, manifest.as_of, manifest.as_of_from, manifest.people_new
        ))?;
    } else {
        out.line(format!(
            "the export is identical to snapshot {}; nothing new was written",
            report.snapshot
        ))?;
    }
    out.line(format!(
        "{:<10} {:>12} {:>12} {:>12} {:>12}",
        "table", "read", "stored", "quarantined", "excluded"
    ))?;
    for entry in &manifest.accounting {
        let count = &entry.count;
        out.line(format!(
            "{:<10} {:>12} {:>12} {:>12} {:>12}",
            entry.table, count.read, count.stored, count.quarantined, count.excluded_by_consent
        ))?;
        for (reason, rows) in &count.reasons {
            out.line(format!("{:<12}{reason}: {rows}", ""))?;
        }
    }
    if manifest.quarantine.rows > 0 {
        out.line(format!(
            "quarantine: {} rows in {}",
            manifest.quarantine.rows, manifest.quarantine.path
        ))?;
    }
    Ok(())
}

/// Rotates the workspace key and re-indexes the identity map.
pub(super) fn rotate(workspace: &Workspace, out: &mut Output) -> Result<Done> {
    let (generations, people) = intake::rotate_key(workspace)?;
    out.line(format!(
        "new key generation {generations} in use; identity map re-indexed ({people} people, \
         every person ID kept)"
    ))?;
    let map = workspace.folder("identity").join(intake::IDENTITY_MAP);
    let outputs = if map.exists() { vec![map] } else { Vec::new() };
    Ok(Done { outputs, ..Done::ok() })
}

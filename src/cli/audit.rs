//! `kith audit verify` and `kith audit show`.

use super::output::Output;
use crate::audit::{AuditLog, Done, Entry};
use crate::error::Result;
use crate::workspace::Workspace;

/// Filters of `audit show`.
#[derive(Debug, Clone, Default)]
pub(super) struct ShowFilter {
    pub(super) user: Option<String>,
    pub(super) command: Option<String>,
    pub(super) since: Option<chrono::NaiveDate>,
}

impl ShowFilter {
    fn keeps(&self, entry: &Entry) -> bool {
        self.user.as_ref().is_none_or(|u| *u == entry.user)
            && self.command.as_ref().is_none_or(|c| *c == entry.command)
            && self.since.is_none_or(|since| entry.time.as_str() >= since.to_string().as_str())
    }
}

pub(super) fn verify(workspace: &Workspace, out: &mut Output) -> Result<Done> {
    let verified = AuditLog::at(&workspace.folder("audit")).verify()?;
    out.line(format!("audit log verified: {} lines, chain and MACs intact", verified.lines))?;
    out.line(format!("last line sha256: {}", verified.last))?;
    if verified.uncommitted > 0 {
        out.line(format!(
            "{} line(s) written by kith after an interrupted append; the next command commits them",
            verified.uncommitted
        ))?;
    }
    Ok(Done::ok())
}

pub(super) fn show(workspace: &Workspace, filter: &ShowFilter, out: &mut Output) -> Result<Done> {
    let entries = AuditLog::at(&workspace.folder("audit")).entries()?;
    out.line(format!(
        "{:>5}  {:<20}  {:<12} {:<18} {:<14} {:<8} {:>4} {:>8}",
        "seq", "time", "user", "roles", "command", "outcome", "exit", "epsilon"
    ))?;
    for entry in entries.iter().filter(|e| filter.keeps(e)) {
        out.line(format!(
            "{:>5}  {:<20}  {:<12} {:<18} {:<14} {:<8} {:>4} {:>8}",
            entry.seq,
            entry.time,
            entry.user,
            entry.roles.join(","),
            entry.command,
            entry.outcome,
            entry.exit_code,
            entry.epsilon_spent
        ))?;
    }
    Ok(Done::ok())
}

//! `kith check DIR`: the contract report of an export.

use std::path::Path;

use super::output::Output;
use crate::error::{ExitStatus, Result};
use crate::intake::check::{TableCheck, check_export};

/// Problem rows listed per table; the counts cover all of them.
pub(super) const SHOWN_PROBLEMS: usize = 10;

/// Checks the export and prints one block per table; exit 1 when any row breaks the contract.
pub(super) fn run(dir: &Path, out: &mut Output) -> Result<ExitStatus> {
    let checks = check_export(dir, SHOWN_PROBLEMS)?;
    print_checks(&checks, out)?;
    let problems: u64 = checks.iter().map(TableCheck::problem_rows).sum();
    Ok(if problems == 0 { ExitStatus::Success } else { ExitStatus::Partial })
}

/// Prints the per-table report shared by `check` and `demo`.
pub(super) fn print_checks(checks: &[TableCheck], out: &mut Output) -> Result<()> {
    for check in checks {
        out.line(format!(
            "{:<10} {:>10} rows  {:>8} breaking the contract  ({})",
            check.table,
            check.rows,
            check.problem_rows(),
            check.file.display()
        ))?;
        for (reason, count) in &check.reasons {
            out.line(format!("{:<12}{reason}: {count}", ""))?;
        }
        for problem in &check.problems {
            let column = problem.column.map(|c| format!(", column `{c}`")).unwrap_or_default();
            out.line(format!(
                "{:<12}line {}{column}: {}",
                "",
                problem.line,
                problem.reason.as_str()
            ))?;
        }
    }
    Ok(())
}

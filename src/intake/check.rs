//! Checking an export against the contract, one table and one row at a time, storing nothing.
//!
//! This is the first half of intake: the header rules (unknown and identifier-like columns
//! refuse the export) and every check that one row can answer alone. What needs the whole
//! export — duplicate people, shared identity pairs, dangling tie ends, duplicate ties,
//! consent — is left to `kith ingest`. CSV is read with the `csv` crate in flexible mode so a
//! row with the wrong number of fields is reported, not fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::contract::{ColumnKind, Reason, TABLES, Table, looks_like_identifier, parse_date};
use crate::error::{Error, Result};

/// One row that breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// Physical line where the row starts; the header is line 1.
    pub line: u64,
    /// The offending column, when one is to blame.
    pub column: Option<&'static str>,
    /// Why the row would be quarantined.
    pub reason: Reason,
}

/// The outcome of checking one table.
#[derive(Debug, Clone)]
pub struct TableCheck {
    /// The contract table.
    pub table: &'static str,
    /// The file that was read.
    pub file: PathBuf,
    /// Data rows read.
    pub rows: u64,
    /// Rows that break the contract, by reason code.
    pub reasons: BTreeMap<&'static str, u64>,
    /// The first few problem rows, in file order.
    pub problems: Vec<RowProblem>,
}

impl TableCheck {
    /// Rows that break the contract.
    pub fn problem_rows(&self) -> u64 {
        self.reasons.values().sum()
    }
}

/// Checks every table of the export in `dir`, keeping the first `keep` problem rows of each
/// table for display (the counts always cover all of them).
///
/// # Errors
///
/// An input error, naming the file and column, when a table is missing, its header has an
/// unknown, duplicated or identifier-like column, or a required column is absent.
pub fn check_export(dir: &Path, keep: usize) -> Result<Vec<TableCheck>> {
    TABLES.iter().map(|table| check_table(&table_file(dir, table)?, table, keep)).collect()
}

/// Finds the file of a table in an export folder.
pub fn table_file(dir: &Path, table: &Table) -> Result<PathBuf> {
    let csv = dir.join(format!("{}.csv", table.name));
    if csv.is_file() {
        return Ok(csv);
    }
    for other in ["csv.gz", "parquet"] {
        let path = dir.join(format!("{}.{other}", table.name));
        if path.is_file() {
            return Err(Error::NotSupported {
                message: format!(
                    "`{}`: checking .{other} files arrives with `kith ingest`; \
                     decompress or convert to CSV for `kith check`",
                    path.display()
                ),
            });
        }
    }
    Err(Error::Input {
        file: csv,
        line: None,
        column: None,
        problem: format!("the export has no `{}` table", table.name),
    })
}

/// Checks one table file, keeping the first `keep` problem rows.
pub fn check_table(path: &Path, table: &Table, keep: usize) -> Result<TableCheck> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_path(path)
        .map_err(|error| csv_error(path, &error))?;
    let header = reader.byte_headers().map_err(|error| csv_error(path, &error))?.clone();
    let kinds = header_kinds(path, table, &header)?;

    let mut check = TableCheck {
        table: table.name,
        file: path.to_owned(),
        rows: 0,
        reasons: BTreeMap::new(),
        problems: Vec::new(),
    };
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => return Err(csv_error(path, &error)),
        }
        check.rows += 1;
        let line = record.position().map_or(0, csv::Position::line);
        if let Some((reason, column)) = check_row(table, &kinds, &record) {
            *check.reasons.entry(reason.as_str()).or_default() += 1;
            if check.problems.len() < keep {
                check.problems.push(RowProblem { line, column, reason });
            }
        }
    }
    Ok(check)
}

/// Maps each header position to its contract column, refusing bad headers.
fn header_kinds(
    path: &Path,
    table: &Table,
    header: &csv::ByteRecord,
) -> Result<Vec<(&'static str, ColumnKind, bool)>> {
    let refuse = |column: Option<&'static str>, problem: String| Error::Input {
        file: path.to_owned(),
        line: Some(1),
        column,
        problem,
    };
    let mut kinds = Vec::with_capacity(header.len());
    for (position, raw) in header.iter().enumerate() {
        let raw =
            if position == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
        let name = String::from_utf8_lossy(raw).trim().to_owned();
        if looks_like_identifier(&name) {
            return Err(refuse(
                None,
                format!(
                    "column `{name}` looks like a direct identifier; kith never stores one, \
                     so the export is refused whole — remove the column and export again"
                ),
            ));
        }
        let Some(column) = table.column(&name) else {
            return Err(refuse(
                None,
                format!(
                    "column `{name}` is not in the `{}` contract (expected: {})",
                    table.name,
                    table.header().replace(',', ", ")
                ),
            ));
        };
        if kinds.iter().any(|(seen, _, _)| *seen == column.name) {
            return Err(refuse(Some(column.name), "the column appears twice".into()));
        }
        kinds.push((column.name, column.kind, column.required));
    }
    if let Some(missing) =
        table.columns.iter().find(|c| c.required && !kinds.iter().any(|(n, _, _)| *n == c.name))
    {
        return Err(refuse(Some(missing.name), "a required column is missing".into()));
    }
    Ok(kinds)
}

/// The first contract problem of a row, in column order, then the row-level rules.
fn check_row(
    table: &Table,
    kinds: &[(&'static str, ColumnKind, bool)],
    record: &csv::ByteRecord,
) -> Option<(Reason, Option<&'static str>)> {
    if record.len() != kinds.len() {
        return Some((Reason::FieldCount, None));
    }
    for ((name, kind, required), field) in kinds.iter().zip(record.iter()) {
        let Ok(text) = std::str::from_utf8(field) else {
            return Some((Reason::BadValue, Some(*name)));
        };
        if text.is_empty() {
            if *required {
                return Some((Reason::MissingValue, Some(*name)));
            }
            continue;
        }
        if let Err(reason) = kind.check(text) {
            return Some((reason, Some(*name)));
        }
    }

    let field =
        |name: &str| kinds.iter().position(|(n, _, _)| *n == name).and_then(|i| record.get(i));
    match table.name {
        "ties" if field("from_id") == field("to_id") => Some((Reason::SelfTie, Some("to_id"))),
        "consents" => {
            let date =
                |name| field(name).and_then(|f| std::str::from_utf8(f).ok()).and_then(parse_date);
            match (date("granted"), date("revoked")) {
                (Some(granted), Some(revoked)) if revoked < granted => {
                    Some((Reason::RevokedBeforeGranted, Some("revoked")))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn csv_error(path: &Path, error: &csv::Error) -> Error {
    let line = error.position().map(csv::Position::line);
    Error::Input {
        file: path.to_owned(),
        line,
        column: None,
        problem: format!("unreadable CSV: {error}"),
    }
}

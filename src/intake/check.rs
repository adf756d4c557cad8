//! Checking an export against the contract, one table and one row at a time, storing nothing.
//!
//! This is the first half of intake: the header rules (unknown and identifier-like columns
//! refuse the export) and every check that one row can answer alone, through the same readers
//! and decoders as `kith ingest`. What needs the whole export — duplicate people, shared
//! identity pairs, dangling tie ends, duplicate ties, consent, a birth date after the export
//! date — is `kith ingest`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::contract::{Reason, TABLES, Table};
use super::rows;
use super::source::{self, Format, Piece, RawRowDyn, TableSource};
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
    TABLES
        .iter()
        .map(|table| {
            let (path, format) = source::locate(dir, table)?;
            check_table(&path, format, table, keep)
        })
        .collect()
}

/// Checks one table file, keeping the first `keep` problem rows.
pub fn check_table(
    path: &Path,
    format: Format,
    table: &'static Table,
    keep: usize,
) -> Result<TableCheck> {
    let bytes = std::fs::metadata(path).map_err(|e| Error::io("reading", path, e))?.len();
    let whole = Piece { start: 0, end: bytes, lines_before: 0 };
    let source = TableSource {
        table,
        path: path.to_owned(),
        format,
        bytes,
        sha256: String::new(),
        pieces: vec![whole],
    };
    let layout = source.layout()?;

    let mut check = TableCheck {
        table: table.name,
        file: path.to_owned(),
        rows: 0,
        reasons: BTreeMap::new(),
        problems: Vec::new(),
    };
    let visit = |line: u64, row: &dyn RawRowDyn| {
        check.rows += 1;
        if let Err((reason, column)) = rows::verdict(&layout, &row) {
            *check.reasons.entry(reason.as_str()).or_default() += 1;
            if check.problems.len() < keep {
                check.problems.push(RowProblem { line, column, reason });
            }
        }
    };
    source.for_each_row(&whole, visit, &|_| {})?;
    Ok(check)
}

/// Checks CSV bytes of one table, storing nothing: the row validation on its own, for the
/// fuzz target (`fuzz/fuzz_targets/row_validation.rs`) and for callers without files.
pub fn check_csv_bytes(table: &'static Table, bytes: &[u8], keep: usize) -> Result<TableCheck> {
    let path = Path::new("<bytes>");
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.byte_headers().map_err(|error| csv_error(path, &error))?.clone();
    let layout = rows::Layout::from_header(path, table, header.iter(), Some(1))?;
    let mut check = TableCheck {
        table: table.name,
        file: path.to_owned(),
        rows: 0,
        reasons: BTreeMap::new(),
        problems: Vec::new(),
    };
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(|error| csv_error(path, &error))? {
        check.rows += 1;
        if let Err((reason, column)) = rows::verdict(&layout, &record) {
            *check.reasons.entry(reason.as_str()).or_default() += 1;
            if check.problems.len() < keep {
                let line = record.position().map_or(0, csv::Position::line);
                check.problems.push(RowProblem { line, column, reason });
            }
        }
    }
    Ok(check)
}

fn csv_error(path: &Path, error: &csv::Error) -> Error {
    Error::Input {
        file: path.to_owned(),
        line: error.position().map(csv::Position::line),
        column: None,
        problem: format!("unreadable CSV: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::contract::TIES;

    #[test]
    fn bytes_are_checked_like_files() {
        let bytes = b"from_id,to_id,kind,weight,since\nA,B,friend,,\nA,A,friend,,\nA,B,pal,,\n";
        let check = check_csv_bytes(&TIES, bytes, 10).unwrap();
        assert_eq!(check.rows, 3);
        let found: Vec<_> = check.problems.iter().map(|p| (p.line, p.reason.as_str())).collect();
        assert_eq!(found, [(3, "self_tie"), (4, "unknown_kind")]);
    }
}

//! Writing the export: fast CSV rows, ordered chunk output, and line accounting for defects.
//!
//! Rows are formatted straight into byte buffers (dates from a precomputed table, integers
//! through `itoa`), because a million-person export is about 1.7 GB of text and a formatter
//! per field would dominate the run. Blocks are formatted in parallel and written in block
//! order, so output bytes do not depend on scheduling. Each [`TableWriter`] counts physical
//! lines, which is how an injected defect learns the line number intake will report.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::error::{IoContext, Result};
use crate::intake::contract::{Reason, Table};

/// Formatted dates for every day the generator can emit, indexed from `first`.
pub(crate) struct DateTable {
    first: NaiveDate,
    text: Vec<[u8; 10]>,
}

impl DateTable {
    pub(crate) fn new(first: NaiveDate, last: NaiveDate) -> DateTable {
        let days = (last - first).num_days().max(0) as usize + 1;
        let text = (0..days)
            .map(|d| {
                let date = first + Duration::days(d as i64);
                let mut out = [0u8; 10];
                out.copy_from_slice(date.format("%Y-%m-%d").to_string().as_bytes());
                out
            })
            .collect();
        DateTable { first, text }
    }

    /// The text of `date`; dates outside the table are a bug in the generator.
    pub(crate) fn get(&self, date: NaiveDate) -> &[u8] {
        let offset = (date - self.first).num_days();
        &self.text[usize::try_from(offset).expect("date table covers every generated date")]
    }
}

/// Appends one CSV row field by field.
pub(crate) struct Row<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Row<'a> {
    pub(crate) fn start(buf: &'a mut Vec<u8>) -> Row<'a> {
        Row { buf, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    /// A field that never needs quoting.
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(bytes);
        self
    }

    /// A text field, quoted when it holds a comma, a quote or a line break (RFC 4180).
    pub(crate) fn text(&mut self, text: &str) -> &mut Self {
        self.sep();
        if text.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
            self.buf.push(b'"');
            for b in text.bytes() {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(text.as_bytes());
        }
        self
    }

    pub(crate) fn int(&mut self, value: u64) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// An amount of hundredths written with two decimals (`1234` becomes `12.34`).
    pub(crate) fn hundredths(&mut self, value: u64) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(itoa::Buffer::new().format(value / 100).as_bytes());
        let cents = (value % 100) as u8;
        self.buf.extend_from_slice(&[b'.', b'0' + cents / 10, b'0' + cents % 10]);
        self
    }

    pub(crate) fn flag(&mut self, value: bool) -> &mut Self {
        self.raw(if value { b"1" } else { b"0" })
    }

    pub(crate) fn empty(&mut self) -> &mut Self {
        self.raw(b"")
    }

    pub(crate) fn end(&mut self) {
        self.buf.push(b'\n');
    }
}

/// One defect planted in a chunk, located by its row within the chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlantedDefect {
    pub(crate) row: u64,
    pub(crate) reason: Reason,
    pub(crate) column: Option<&'static str>,
}

/// Rows formatted by one block of work.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) bytes: Vec<u8>,
    pub(crate) rows: u64,
    pub(crate) defects: Vec<PlantedDefect>,
}

impl Chunk {
    /// Appends a finished row (without its line break).
    pub(crate) fn push_row(&mut self, row: &[u8]) {
        self.bytes.extend_from_slice(row);
        self.bytes.push(b'\n');
        self.rows += 1;
    }

    /// Appends a clean row that intake must quarantine because it names a quarantined person.
    pub(crate) fn push_quarantined(&mut self, row: &[u8]) {
        self.defect(Reason::PersonQuarantined, None);
        self.push_row(row);
    }

    /// Records that the row about to be written carries `reason`.
    pub(crate) fn defect(&mut self, reason: Reason, column: Option<&'static str>) {
        self.defects.push(PlantedDefect { row: self.rows, reason, column });
    }
}

/// A defect as recorded in `truth.json`: where intake must find it and what it must say.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ExpectedQuarantine {
    pub(crate) table: &'static str,
    /// Physical line, counting the header as line 1.
    pub(crate) line: u64,
    pub(crate) reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) column: Option<&'static str>,
}

/// Streams one table's CSV file and keeps its line count.
pub(crate) struct TableWriter {
    table: Table,
    path: PathBuf,
    out: BufWriter<File>,
    lines: u64,
    pub(crate) defects: Vec<ExpectedQuarantine>,
}

impl TableWriter {
    pub(crate) fn create(dir: &Path, table: Table) -> Result<TableWriter> {
        let path = dir.join(format!("{}.csv", table.name));
        let file = File::create(&path).at("creating", &path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        writeln!(out, "{}", table.header()).at("writing", &path)?;
        Ok(TableWriter { table, path, out, lines: 1, defects: Vec::new() })
    }

    pub(crate) fn append(&mut self, chunk: Chunk) -> Result<()> {
        for defect in chunk.defects {
            self.defects.push(ExpectedQuarantine {
                table: self.table.name,
                line: self.lines + defect.row + 1,
                reason: defect.reason.as_str(),
                column: defect.column,
            });
        }
        self.out.write_all(&chunk.bytes).at("writing", &self.path)?;
        self.lines += chunk.rows;
        Ok(())
    }

    /// Data rows written so far.
    pub(crate) fn rows(&self) -> u64 {
        self.lines - 1
    }

    pub(crate) fn finish(mut self) -> Result<(u64, Vec<ExpectedQuarantine>)> {
        self.out.flush().at("writing", &self.path)?;
        self.out.get_ref().sync_all().at("flushing", &self.path)?;
        Ok((self.lines - 1, self.defects))
    }
}

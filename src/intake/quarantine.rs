//! The quarantine file: every row intake set aside, with where it was and why.
//!
//! One CSV per snapshot, `quarantine/snapshot-NNNNNN.csv`, with the columns `table`, `file`,
//! `line`, `source_id`, `column` and `reason`. `line` is the physical line where the row
//! starts (the header is line 1) or, for Parquet, the 1-based row number. `source_id` is the
//! export's own identifier of the row's person (`from_id` for ties), when it was readable, so
//! the steward can fix the row at the source; dates of birth and SSN digits never appear.
//! `reason` is one of the stable codes in `contract::Reason`.

use super::parse::Quarantined;
use crate::error::{Error, Result};

/// The header of a quarantine file.
pub const HEADER: [&str; 6] = ["table", "file", "line", "source_id", "column", "reason"];

/// Renders the quarantine file: `(table, file name, rows in file order)` for each table.
pub fn render(tables: &[(&str, &str, &[Quarantined])]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |error: csv::Error| Error::internal(format!("writing the quarantine: {error}"));
    writer.write_record(HEADER).map_err(failed)?;
    let mut line = itoa::Buffer::new();
    for (table, file, rows) in tables {
        for row in *rows {
            writer
                .write_record([
                    *table,
                    *file,
                    line.format(row.line),
                    row.source_id.as_deref().unwrap_or_default(),
                    row.column.unwrap_or_default(),
                    row.reason.as_str(),
                ])
                .map_err(failed)?;
        }
    }
    writer.into_inner().map_err(|error| Error::internal(format!("writing the quarantine: {error}")))
}

//! One row of an export, whatever the file format: the header layout, field access and the
//! decoders that turn a row into typed values or a quarantine reason.
//!
//! `kith check` and `kith ingest` both decode through here, so a row is judged the same way
//! by both. A row's problem is the first one found in contract column order, then the rules
//! that need two fields of the same row (a self-tie, a revocation before the grant). Rules
//! that need other rows or the export date live in `resolve`.

use std::path::Path;

use super::contract::{
    ColumnKind, Domain, MAX_FIELD_BYTES, Reason, Scope, Sex, Table, TieKind, looks_like_identifier,
};
use crate::error::{Error, Result};

/// A row's problem: the reason and the column to blame, if one is.
pub type Defect = (Reason, Option<&'static str>);

/// A row of raw fields, from a CSV record or a Parquet batch.
pub trait RawRow {
    /// Number of fields in the row.
    fn width(&self) -> usize;

    /// The field at a file position; `None` past the end. A Parquet null reads as empty.
    fn field(&self, position: usize) -> Option<&[u8]>;
}

impl RawRow for csv::ByteRecord {
    fn width(&self) -> usize {
        self.len()
    }

    fn field(&self, position: usize) -> Option<&[u8]> {
        self.get(position)
    }
}

/// Where each contract column sits in a file.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The contract table.
    pub table: &'static Table,
    /// For each contract column, its position in the file (absent optional columns: `None`).
    positions: Vec<Option<usize>>,
    /// Number of columns in the file's header.
    width: usize,
}

impl Layout {
    /// Maps a header to the contract, refusing unknown, duplicated and identifier-like columns
    /// and missing required ones. Errors name the file and the column, never a value.
    pub fn from_header<'h>(
        path: &Path,
        table: &'static Table,
        header: impl IntoIterator<Item = &'h [u8]>,
        line: Option<u64>,
    ) -> Result<Layout> {
        let refuse = |column: Option<&'static str>, problem: String| Error::Input {
            file: path.to_owned(),
            line,
            column,
            problem,
        };
        let mut positions = vec![None; table.columns.len()];
        let mut width = 0;
        for (position, raw) in header.into_iter().enumerate() {
            width += 1;
            let raw =
                if position == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
            let name = String::from_utf8_lossy(raw).trim().to_owned();
            if looks_like_identifier(&name) {
                return Err(refuse(
                    None,
                    format!(
                        "{} looks like a direct identifier; kith never stores one, so the \
                         export is refused whole — remove the column and export again",
                        header_name(position, &name)
                    ),
                ));
            }
            let Some(index) = table.columns.iter().position(|c| c.name == name) else {
                let expected = table.header().replace(',', ", ");
                let problem = if holds_digits(&name) {
                    // No contract column but `ssn_last4` has a digit, so this is most likely a
                    // file without a header whose first data row was read as one; quoting it
                    // could print a date of birth or SSN digits.
                    format!(
                        "{} is not in the `{}` contract and holds digits, so it looks like data, \
                         not a column name (it is not quoted, as it may be personal data); the \
                         first line of the file must be the header: {expected}",
                        header_name(position, &name),
                        table.name,
                    )
                } else {
                    format!(
                        "{} is not in the `{}` contract (expected: {expected})",
                        header_name(position, &name),
                        table.name,
                    )
                };
                return Err(refuse(None, problem));
            };
            if positions[index].is_some() {
                return Err(refuse(
                    Some(table.columns[index].name),
                    "the column appears twice".into(),
                ));
            }
            positions[index] = Some(position);
        }
        if let Some(missing) =
            table.columns.iter().zip(&positions).find(|(c, p)| c.required && p.is_none())
        {
            return Err(refuse(Some(missing.0.name), "a required column is missing".into()));
        }
        Ok(Layout { table, positions, width })
    }

    /// Number of columns the header declared.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The file position of a contract column, if the file has it.
    pub fn position(&self, column: usize) -> Option<usize> {
        self.positions[column]
    }

    /// The `source_id`-like first column of a row, if it is readable, for quarantine records.
    /// Ties report `from_id`.
    pub fn readable_source_id<'r>(&self, row: &'r impl RawRow) -> Option<&'r str> {
        let field = row.field(self.positions[0]?)?;
        let text = std::str::from_utf8(field).ok()?;
        (!text.is_empty() && text.len() <= MAX_FIELD_BYTES).then_some(text)
    }

    /// The identity pair of a people row that failed its checks, when its `dob` and
    /// `ssn_last4` are well formed on their own: a defective row still claims that identity,
    /// so it counts in the shared-identity rule.
    pub fn readable_identity(&self, row: &impl RawRow) -> Option<(i32, [u8; 4])> {
        let dob = super::contract::parse_date(self.text(row, 1).ok()?)?;
        let ssn: [u8; 4] = self.text(row, 2).ok()?.as_bytes().try_into().ok()?;
        ssn.iter().all(u8::is_ascii_digit).then(|| (super::contract::epoch_days(dob), ssn))
    }

    /// Checks a row's width and every field's kind, returning the first defect, or each
    /// column's value as [`ColumnKind::value`] gives it (`NaN` for an empty optional cell).
    pub fn check_fields(&self, row: &impl RawRow) -> std::result::Result<Values, Defect> {
        if row.width() != self.width {
            return Err((Reason::FieldCount, None));
        }
        let mut values = [f64::NAN; MAX_COLUMNS];
        for (index, column) in self.table.columns.iter().enumerate() {
            let text = self.text(row, index)?;
            if text.is_empty() {
                if column.required {
                    return Err((Reason::MissingValue, Some(column.name)));
                }
                continue;
            }
            values[index] =
                column.kind.value(text).map_err(|reason| (reason, Some(column.name)))?;
        }
        Ok(values)
    }

    /// A field as text: empty when the column is absent, a defect when it is not UTF-8 or is
    /// too long.
    fn text<'r>(
        &self,
        row: &'r impl RawRow,
        column: usize,
    ) -> std::result::Result<&'r str, Defect> {
        let Some(position) = self.positions[column] else { return Ok("") };
        let name = self.table.columns[column].name;
        let field = row.field(position).unwrap_or_default();
        if field.len() > MAX_FIELD_BYTES {
            return Err((Reason::FieldTooLong, Some(name)));
        }
        std::str::from_utf8(field).map_err(|_| (Reason::BadValue, Some(name)))
    }

    /// A field that [`Self::check_fields`] accepted, as text.
    fn checked<'r>(&self, row: &'r impl RawRow, column: usize) -> &'r str {
        self.text(row, column).unwrap_or_default()
    }

    /// A checked optional field: `None` when empty.
    fn optional<'r>(&self, row: &'r impl RawRow, column: usize) -> Option<&'r str> {
        Some(self.checked(row, column)).filter(|text| !text.is_empty())
    }
}

/// Whether a header name holds an ASCII digit.
fn holds_digits(name: &str) -> bool {
    name.bytes().any(|b| b.is_ascii_digit())
}

/// How an error names a refused header cell: by name, unless the name holds digits and so may
/// be a value (a date of birth, SSN digits) from a data row read as the header; then only by
/// its position.
fn header_name(position: usize, name: &str) -> String {
    if holds_digits(name) {
        format!("column {} of the header", position + 1)
    } else {
        format!("column `{name}`")
    }
}

/// The most columns a contract table has.
const MAX_COLUMNS: usize = 12;

/// Each contract column's checked value, by contract column index.
pub type Values = [f64; MAX_COLUMNS];

/// A checked date value as days since 1970-01-01.
fn days(value: f64) -> i32 {
    value as i32
}

/// A checked optional value.
fn present(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

/// A people row that passed the row checks.
#[derive(Debug, Clone, Copy)]
pub struct PersonRow<'r> {
    /// The export's identifier.
    pub source_id: &'r str,
    /// Date of birth, days since 1970-01-01. Used only for the identity index and age band.
    pub dob: i32,
    /// The four digits of the identity pair. Used only for the identity index.
    pub ssn_last4: [u8; 4],
    /// Declared community.
    pub community: &'r str,
    /// Declared workplace.
    pub workplace: Option<&'r str>,
    /// Declared household.
    pub household: Option<&'r str>,
    /// Declared sex.
    pub sex: Option<Sex>,
}

/// Decodes a people row.
pub fn person<'r>(
    layout: &Layout,
    row: &'r impl RawRow,
) -> std::result::Result<PersonRow<'r>, Defect> {
    let values = layout.check_fields(row)?;
    let ssn = layout.checked(row, 2).as_bytes();
    Ok(PersonRow {
        source_id: layout.checked(row, 0),
        dob: days(values[1]),
        ssn_last4: [ssn[0], ssn[1], ssn[2], ssn[3]],
        community: layout.checked(row, 3),
        workplace: layout.optional(row, 4),
        household: layout.optional(row, 5),
        sex: layout.optional(row, 6).and_then(Sex::parse),
    })
}

/// A ties row that passed the row checks.
#[derive(Debug, Clone, Copy)]
pub struct TieRow<'r> {
    /// Who named.
    pub from: &'r str,
    /// Who was named.
    pub to: &'r str,
    /// Kind of tie.
    pub kind: TieKind,
    /// Weight in (0, 1]; 1 when the cell is empty.
    pub weight: f64,
    /// Start of the tie, days since 1970-01-01.
    pub since: Option<i32>,
}

/// Decodes a ties row.
pub fn tie<'r>(layout: &Layout, row: &'r impl RawRow) -> std::result::Result<TieRow<'r>, Defect> {
    let values = layout.check_fields(row)?;
    let (from, to) = (layout.checked(row, 0), layout.checked(row, 1));
    if from == to {
        return Err((Reason::SelfTie, Some("to_id")));
    }
    Ok(TieRow {
        from,
        to,
        kind: TieKind::parse(layout.checked(row, 2)).expect("checked"),
        weight: present(values[3]).unwrap_or(1.0),
        since: present(values[4]).map(days),
    })
}

/// A consents row that passed the row checks.
#[derive(Debug, Clone, Copy)]
pub struct ConsentRow<'r> {
    /// Who consented.
    pub source_id: &'r str,
    /// To what.
    pub scope: Scope,
    /// From when, days since 1970-01-01.
    pub granted: i32,
    /// Until when (exclusive), days since 1970-01-01.
    pub revoked: Option<i32>,
}

/// Decodes a consents row.
pub fn consent<'r>(
    layout: &Layout,
    row: &'r impl RawRow,
) -> std::result::Result<ConsentRow<'r>, Defect> {
    let values = layout.check_fields(row)?;
    let granted = days(values[2]);
    let revoked = present(values[3]).map(days);
    if revoked.is_some_and(|revoked| revoked < granted) {
        return Err((Reason::RevokedBeforeGranted, Some("revoked")));
    }
    Ok(ConsentRow {
        source_id: layout.checked(row, 0),
        scope: Scope::parse(layout.checked(row, 1)).expect("checked"),
        granted,
        revoked,
    })
}

/// The seven 0/1 columns of a decision, in the bit order of [`DecisionRow::flags`].
pub const DECISION_FLAGS: [&str; 7] = [
    "healthy",
    "schedule_conflict",
    "planned_ahead",
    "disrupted_environment",
    "with_others",
    "decided_by_other",
    "pre_decided",
];

/// The contract column index of each flag in [`DECISION_FLAGS`].
const DECISION_FLAG_COLUMNS: [usize; 7] = [3, 4, 5, 6, 7, 8, 11];

/// A decisions row that passed the row checks.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRow<'r> {
    /// Who decided.
    pub source_id: &'r str,
    /// When, days since 1970-01-01.
    pub date: i32,
    /// In which domain.
    pub domain: Domain,
    /// Bit `i` holds the flag [`DECISION_FLAGS`]`[i]`.
    pub flags: u8,
    /// Money spent.
    pub cost: f64,
    /// Minutes spent.
    pub minutes: f64,
}

/// Decodes a decisions row.
pub fn decision<'r>(
    layout: &Layout,
    row: &'r impl RawRow,
) -> std::result::Result<DecisionRow<'r>, Defect> {
    let values = layout.check_fields(row)?;
    let flags = DECISION_FLAG_COLUMNS
        .iter()
        .enumerate()
        .fold(0u8, |flags, (bit, &column)| flags | (u8::from(values[column] > 0.5) << bit));
    Ok(DecisionRow {
        source_id: layout.checked(row, 0),
        date: days(values[1]),
        domain: Domain::parse(layout.checked(row, 2)).expect("checked"),
        flags,
        cost: values[9],
        minutes: values[10],
    })
}

/// Runs the decoder of `layout`'s table, keeping only the verdict (for `kith check`).
pub fn verdict(layout: &Layout, row: &impl RawRow) -> std::result::Result<(), Defect> {
    match layout.table.name {
        "people" => person(layout, row).map(|_| ()),
        "ties" => tie(layout, row).map(|_| ()),
        "consents" => consent(layout, row).map(|_| ()),
        _ => decision(layout, row).map(|_| ()),
    }
}

/// Whether a column kind is free text (used by the Parquet reader to pick accepted types).
pub fn is_textual(kind: ColumnKind) -> bool {
    !matches!(
        kind,
        ColumnKind::Date | ColumnKind::Flag | ColumnKind::Weight | ColumnKind::NonNegative
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::contract::{DECISIONS, TABLES};

    #[test]
    fn flag_columns_match_their_names() {
        for (name, column) in DECISION_FLAGS.iter().zip(DECISION_FLAG_COLUMNS) {
            assert_eq!(DECISIONS.columns[column].name, *name);
            assert_eq!(DECISIONS.columns[column].kind, ColumnKind::Flag);
        }
        assert!(TABLES.iter().all(|table| table.columns.len() <= MAX_COLUMNS));
    }

    fn record(fields: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(fields.to_vec())
    }

    #[test]
    fn decoders_read_values_and_name_defects() {
        let header = DECISIONS.header();
        let layout = Layout::from_header(
            Path::new("decisions.csv"),
            &DECISIONS,
            header.split(',').map(str::as_bytes),
            Some(1),
        )
        .unwrap();
        let row =
            record(&["E1", "2026-01-05", "sleep", "1", "0", "1", "0", "0", "0", "2.5", "30", "1"]);
        let decoded = decision(&layout, &row).unwrap();
        assert_eq!(decoded.flags, 0b100_0101);
        assert_eq!((decoded.cost, decoded.minutes), (2.5, 30.0));
        assert_eq!(decoded.domain, Domain::Sleep);

        let bad =
            record(&["E1", "2026-01-05", "sleep", "1", "0", "1", "0", "0", "0", "-1", "30", "1"]);
        assert_eq!(decision(&layout, &bad).unwrap_err(), (Reason::OutOfRange, Some("cost")));
        let short = record(&["E1", "2026-01-05"]);
        assert_eq!(decision(&layout, &short).unwrap_err(), (Reason::FieldCount, None));
    }
}

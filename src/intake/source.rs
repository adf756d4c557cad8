//! Reading the files of an export: finding each table's file, hashing it, splitting large CSV
//! files into line-aligned pieces that parse in parallel, and handing rows to a visitor.
//!
//! CSV is parsed by the `csv` crate, Parquet by the `parquet` crate's Arrow reader in batches,
//! `.csv.gz` through `flate2`. Arrow's own CSV reader is not used: it stops a whole batch at a
//! row with the wrong number of fields and does not report where a row starts, while the
//! contract needs every bad row set aside with its physical line.
//!
//! A piece boundary is only safe outside quoted fields, and only a full parse can tell where
//! quotes open and close. So a file is split only when it holds no `"` at all (the common case
//! for the large tables, whose fields are codes and numbers); a file with quotes is parsed in
//! one piece. The hashing pass learns this before any parsing starts.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::contract::{ColumnKind, Table, from_epoch_days};
use super::rows::{Layout, RawRow, is_textual};
use crate::error::{Error, IoContext, Result};

/// Size of one parallel piece of a CSV file.
pub const PIECE_BYTES: u64 = 64 << 20;

/// Rows per Parquet batch.
const PARQUET_BATCH_ROWS: usize = 64 * 1024;

/// How a table's file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain CSV with a header row.
    Csv,
    /// Gzip-compressed CSV.
    CsvGz,
    /// Parquet with the contract's column names.
    Parquet,
}

/// A line-aligned byte range of a CSV file.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Line breaks before `start`, so a row's line in the file is this plus its line in the
    /// piece.
    pub lines_before: u64,
}

/// One table's file, hashed and planned.
#[derive(Debug, Clone)]
pub struct TableSource {
    /// The contract table.
    pub table: &'static Table,
    /// The file.
    pub path: PathBuf,
    /// Its encoding.
    pub format: Format,
    /// Its size on disk.
    pub bytes: u64,
    /// SHA-256 of the file (over the pieces' SHA-256s when it has several), hex.
    pub sha256: String,
    /// How it will be parsed: one piece unless it is plain CSV without quotes.
    pub pieces: Vec<Piece>,
}

/// Finds the file of `table` in an export folder: exactly one of `NAME.csv`, `NAME.csv.gz`
/// and `NAME.parquet`.
pub fn locate(dir: &Path, table: &'static Table) -> Result<(PathBuf, Format)> {
    let candidates = [
        (format!("{}.csv", table.name), Format::Csv),
        (format!("{}.csv.gz", table.name), Format::CsvGz),
        (format!("{}.parquet", table.name), Format::Parquet),
    ];
    let found: Vec<(PathBuf, Format)> = candidates
        .into_iter()
        .map(|(name, format)| (dir.join(name), format))
        .filter(|(path, _)| path.is_file())
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Input {
            file: dir.join(format!("{}.csv", table.name)),
            line: None,
            column: None,
            problem: format!(
                "the export has no `{}` table (looked for .csv, .csv.gz and .parquet)",
                table.name
            ),
        }),
        [first, ..] => Err(Error::Input {
            file: first.0.clone(),
            line: None,
            column: None,
            problem: format!(
                "the export holds the `{}` table more than once; keep one file",
                table.name
            ),
        }),
    }
}

/// Hashes a table's file and plans its pieces, reading pieces in parallel.
pub fn scan(
    table: &'static Table,
    path: PathBuf,
    format: Format,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<TableSource> {
    let bytes = std::fs::metadata(&path).at("reading", &path)?.len();
    let bounds = if format == Format::Csv { piece_bounds(&path, bytes)? } else { vec![0, bytes] };
    let ranges: Vec<(u64, u64)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    let hashed: Vec<PieceHash> = ranges
        .par_iter()
        .map(|&(start, end)| hash_range(&path, start, end, on_bytes))
        .collect::<Result<_>>()?;

    let sha256 = if hashed.len() == 1 {
        hex(&hashed[0].sha256)
    } else {
        let mut tree = Sha256::new();
        for piece in &hashed {
            tree.update(piece.sha256);
        }
        hex(&tree.finalize())
    };
    let has_quotes = hashed.iter().any(|piece| piece.quotes);
    let pieces = if has_quotes || format != Format::Csv {
        vec![Piece { start: 0, end: bytes, lines_before: 0 }]
    } else {
        let mut lines_before = 0;
        ranges
            .iter()
            .zip(&hashed)
            .map(|(&(start, end), piece)| {
                let planned = Piece { start, end, lines_before };
                lines_before += piece.line_breaks;
                planned
            })
            .collect()
    };
    Ok(TableSource { table, path, format, bytes, sha256, pieces })
}

/// Offsets that split a file into pieces of about [`PIECE_BYTES`], each just after a line break.
fn piece_bounds(path: &Path, bytes: u64) -> Result<Vec<u64>> {
    let mut bounds = vec![0];
    let mut file = File::open(path).at("opening", path)?;
    let mut window = vec![0u8; 64 * 1024];
    let mut target = PIECE_BYTES;
    while target < bytes {
        file.seek(SeekFrom::Start(target)).at("reading", path)?;
        let mut offset = target;
        let next = loop {
            let read = file.read(&mut window).at("reading", path)?;
            if read == 0 {
                break None;
            }
            if let Some(at) = memchr::memchr(b'\n', &window[..read]) {
                break Some(offset + at as u64 + 1);
            }
            offset += read as u64;
        };
        match next {
            Some(bound) if bound < bytes => {
                bounds.push(bound);
                target = bound + PIECE_BYTES;
            }
            _ => break,
        }
    }
    bounds.push(bytes);
    Ok(bounds)
}

struct PieceHash {
    sha256: [u8; 32],
    quotes: bool,
    line_breaks: u64,
}

fn hash_range(path: &Path, start: u64, end: u64, on_bytes: &dyn Fn(u64)) -> Result<PieceHash> {
    let mut file = File::open(path).at("opening", path)?;
    file.seek(SeekFrom::Start(start)).at("reading", path)?;
    let mut reader = file.take(end - start);
    let mut buffer = vec![0u8; 1 << 20];
    let mut hasher = Sha256::new();
    let (mut quotes, mut line_breaks) = (false, 0u64);
    loop {
        let read = reader.read(&mut buffer).at("reading", path)?;
        if read == 0 {
            break;
        }
        let block = &buffer[..read];
        hasher.update(block);
        quotes = quotes || memchr::memchr(b'"', block).is_some();
        line_breaks += memchr::memchr_iter(b'\n', block).count() as u64;
        on_bytes(read as u64);
    }
    Ok(PieceHash { sha256: hasher.finalize().into(), quotes, line_breaks })
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;

    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

impl TableSource {
    /// Reads the header and maps it to the contract.
    pub fn layout(&self) -> Result<Layout> {
        match self.format {
            Format::Csv | Format::CsvGz => {
                let mut reader = self.csv_reader(0, u64::MAX, true)?;
                let header =
                    reader.byte_headers().map_err(|e| csv_error(&self.path, &e, 0))?.clone();
                Layout::from_header(&self.path, self.table, header.iter(), Some(1))
            }
            Format::Parquet => {
                let builder = self.parquet_builder()?;
                let schema = Arc::clone(builder.schema());
                let layout = Layout::from_header(
                    &self.path,
                    self.table,
                    schema.fields().iter().map(|f| f.name().as_bytes()),
                    None,
                )?;
                // The layout matched trimmed names without a byte-order mark, so each field is
                // found through its position, never by its raw name (`dob ` is `dob`).
                for (index, column) in self.table.columns.iter().enumerate() {
                    if let Some(field) =
                        layout.position(index).and_then(|at| schema.fields().get(at))
                    {
                        check_parquet_type(
                            &self.path,
                            column.name,
                            column.kind,
                            field.data_type(),
                        )?;
                    }
                }
                Ok(layout)
            }
        }
    }

    /// Calls `visit(line, row)` for every data row of one piece, in file order. For Parquet
    /// the "line" is the 1-based row number.
    pub fn for_each_row(
        &self,
        piece: &Piece,
        mut visit: impl FnMut(u64, &dyn RawRowDyn),
        on_bytes: &dyn Fn(u64),
    ) -> Result<()> {
        if self.format == Format::Parquet {
            return self.parquet_rows(&mut visit, on_bytes);
        }
        let first = piece.start == 0;
        let mut reader = self.csv_reader(piece.start, piece.end, first)?;
        if first {
            reader.byte_headers().map_err(|e| csv_error(&self.path, &e, 0))?;
        }
        let mut record = csv::ByteRecord::new();
        let mut reported = 0;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => return Err(csv_error(&self.path, &error, piece.lines_before)),
            }
            let line = record.position().map_or(0, csv::Position::line) + piece.lines_before;
            visit(line, &record);
            let at = record.position().map_or(0, csv::Position::byte);
            if self.format == Format::Csv && at - reported > 4 << 20 {
                on_bytes(at - reported);
                reported = at;
            }
        }
        let total = if self.format == Format::Csv { piece.end - piece.start } else { self.bytes };
        on_bytes(total.saturating_sub(reported));
        Ok(())
    }

    fn csv_reader(
        &self,
        start: u64,
        end: u64,
        has_headers: bool,
    ) -> Result<csv::Reader<Box<dyn Read + Send>>> {
        let mut file = File::open(&self.path).at("opening", &self.path)?;
        let input: Box<dyn Read + Send> = if self.format == Format::CsvGz {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        } else {
            file.seek(SeekFrom::Start(start)).at("reading", &self.path)?;
            Box::new(file.take(end.saturating_sub(start)))
        };
        Ok(csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(has_headers)
            .buffer_capacity(1 << 20)
            .from_reader(input))
    }

    fn parquet_builder(&self) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = File::open(&self.path).at("opening", &self.path)?;
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|error| Error::Input {
            file: self.path.clone(),
            line: None,
            column: None,
            problem: format!("unreadable Parquet: {error}"),
        })
    }

    fn parquet_rows(
        &self,
        visit: &mut impl FnMut(u64, &dyn RawRowDyn),
        on_bytes: &dyn Fn(u64),
    ) -> Result<()> {
        let reader = self.parquet_builder()?.with_batch_size(PARQUET_BATCH_ROWS).build().map_err(
            |error| Error::Input {
                file: self.path.clone(),
                line: None,
                column: None,
                problem: format!("unreadable Parquet: {error}"),
            },
        )?;
        let mut row_number = 0u64;
        for batch in reader {
            let batch = batch.map_err(|error| Error::Input {
                file: self.path.clone(),
                line: Some(row_number + 1),
                column: None,
                problem: format!("unreadable Parquet batch: {error}"),
            })?;
            let schema = batch.schema();
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(column, field)| {
                    as_text(column).map_err(|problem| Error::Input {
                        file: self.path.clone(),
                        line: Some(row_number + 1),
                        column: self.table.column(field.name().trim()).map(|c| c.name),
                        problem: format!(
                            "the Parquet column of type {} cannot be read as text ({problem}); \
                             write it as text and export again",
                            field.data_type()
                        ),
                    })
                })
                .collect::<Result<Vec<StringArray>>>()?;
            for index in 0..batch.num_rows() {
                row_number += 1;
                visit(row_number, &ParquetRow { columns: &columns, index });
            }
        }
        on_bytes(self.bytes);
        Ok(())
    }
}

/// [`RawRow`] as a trait object, so one visitor serves both formats.
pub trait RawRowDyn {
    /// See [`RawRow::width`].
    fn width_dyn(&self) -> usize;
    /// See [`RawRow::field`].
    fn field_dyn(&self, position: usize) -> Option<&[u8]>;
}

impl<T: RawRow> RawRowDyn for T {
    fn width_dyn(&self) -> usize {
        self.width()
    }

    fn field_dyn(&self, position: usize) -> Option<&[u8]> {
        self.field(position)
    }
}

impl RawRow for &dyn RawRowDyn {
    // Dereference to the trait object: `self.width_dyn()` would resolve to the blanket impl
    // for this very type and recurse forever.
    fn width(&self) -> usize {
        (**self).width_dyn()
    }

    fn field(&self, position: usize) -> Option<&[u8]> {
        (**self).field_dyn(position)
    }
}

/// One row of a Parquet batch whose columns were cast to text.
struct ParquetRow<'b> {
    columns: &'b [StringArray],
    index: usize,
}

impl RawRow for ParquetRow<'_> {
    fn width(&self) -> usize {
        self.columns.len()
    }

    fn field(&self, position: usize) -> Option<&[u8]> {
        let column = self.columns.get(position)?;
        Some(if column.is_null(self.index) { b"" } else { column.value(self.index).as_bytes() })
    }
}

/// Casts a Parquet column to text; booleans become `0`/`1` so they read as flags, and dates
/// and timestamps (pandas' dates) become their calendar day.
///
/// The error names what failed but never a value: Arrow's own messages quote the value.
fn as_text(column: &ArrayRef) -> std::result::Result<StringArray, &'static str> {
    use arrow::compute::cast;

    if let Some(days) = dates_as_text(column)? {
        return Ok(days);
    }
    let column = match column.data_type() {
        DataType::Boolean => cast(column, &DataType::UInt8).map_err(|_| "a boolean cast failed")?,
        _ => Arc::clone(column),
    };
    let text = cast(&column, &DataType::Utf8).map_err(|_| "the cast to text failed")?;
    Ok(text.as_any().downcast_ref::<StringArray>().expect("cast to Utf8").clone())
}

/// Written for a date value that is no calendar day kith can name; it fails every date check,
/// so the row is quarantined as `bad_date` instead of the whole batch failing, as Arrow's
/// casts do (with an error that quotes the value).
const NOT_A_DAY: &str = "not a day";

/// One value of a date or timestamp column.
enum Day {
    /// The cell is empty.
    Missing,
    /// The value lies outside the calendar chrono can name.
    Outside,
    /// A calendar day.
    On(NaiveDate),
}

impl Day {
    /// The day of a cell: `to_day` names the calendar day of a value, if it has one.
    fn of<V>(value: Option<V>, to_day: impl FnOnce(V) -> Option<NaiveDate>) -> Day {
        match value.map(to_day) {
            None => Day::Missing,
            Some(None) => Day::Outside,
            Some(Some(day)) => Day::On(day),
        }
    }
}

/// Turns a date or timestamp column into `YYYY-MM-DD` text, one value at a time; `None` for
/// other types. A timestamp with a time zone gives its calendar day in that zone, as Arrow's
/// cast to `Date32` does; one without gives its UTC day.
fn dates_as_text(column: &ArrayRef) -> std::result::Result<Option<StringArray>, &'static str> {
    use arrow::array::timezone::Tz;
    use arrow::datatypes::{
        Date64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType,
    };

    let days: Vec<Day> = match column.data_type() {
        DataType::Date32 => column
            .as_primitive::<arrow::datatypes::Date32Type>()
            .iter()
            .map(|value| Day::of(value, from_epoch_days))
            .collect(),
        DataType::Date64 => day_of::<Date64Type>(column, None),
        DataType::Timestamp(unit, zone) => {
            let zone = match zone {
                Some(zone) => {
                    Some(zone.parse::<Tz>().map_err(|_| "its time zone is not one kith knows")?)
                }
                None => None,
            };
            match unit {
                TimeUnit::Second => day_of::<TimestampSecondType>(column, zone),
                TimeUnit::Millisecond => day_of::<TimestampMillisecondType>(column, zone),
                TimeUnit::Microsecond => day_of::<TimestampMicrosecondType>(column, zone),
                TimeUnit::Nanosecond => day_of::<TimestampNanosecondType>(column, zone),
            }
        }
        _ => return Ok(None),
    };
    let mut text = StringBuilder::with_capacity(days.len(), days.len() * 10);
    for day in days {
        match day {
            Day::Missing => text.append_null(),
            // A year outside 0..=9999 prints with a sign and fails the date check, as it should.
            Day::On(day) => text.append_value(day.to_string()),
            Day::Outside => text.append_value(NOT_A_DAY),
        }
    }
    Ok(Some(text.finish()))
}

/// The calendar day of each value of a 64-bit temporal column.
fn day_of<T>(column: &ArrayRef, zone: Option<arrow::array::timezone::Tz>) -> Vec<Day>
where
    T: arrow::datatypes::ArrowPrimitiveType<Native = i64>,
{
    use arrow::array::temporal_conversions::{as_datetime, as_datetime_with_timezone};

    column
        .as_primitive::<T>()
        .iter()
        .map(|value| {
            Day::of(value, |value| match zone {
                Some(zone) => as_datetime_with_timezone::<T>(value, zone).map(|d| d.date_naive()),
                None => as_datetime::<T>(value).map(|d| d.date()),
            })
        })
        .collect()
}

/// Refuses a Parquet column whose type cannot carry the contract's values faithfully (an
/// integer `ssn_last4` has already lost its leading zeros).
fn check_parquet_type(
    path: &Path,
    column: &'static str,
    kind: ColumnKind,
    found: &DataType,
) -> Result<()> {
    let is_text = |data_type: &DataType| {
        matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
    };
    // Dictionary-encoded text is what pandas writes for categoricals; an all-null column has
    // the Null type.
    let text = is_text(found)
        || matches!(found, DataType::Dictionary(_, values) if is_text(values))
        || found == &DataType::Null;
    let accepted = text
        || match kind {
            ColumnKind::Date => {
                matches!(found, DataType::Date32 | DataType::Date64 | DataType::Timestamp(..))
            }
            ColumnKind::Flag => found.is_integer() || found == &DataType::Boolean,
            ColumnKind::Weight | ColumnKind::NonNegative => {
                found.is_integer() || found.is_floating()
            }
            _ => false,
        };
    if accepted {
        return Ok(());
    }
    let wanted = if is_textual(kind) { "text" } else { "text or a matching Arrow type" };
    Err(Error::Input {
        file: path.to_owned(),
        line: None,
        column: Some(column),
        problem: format!("the column has Parquet type {found}; the contract needs {wanted}"),
    })
}

fn csv_error(path: &Path, error: &csv::Error, lines_before: u64) -> Error {
    Error::Input {
        file: path.to_owned(),
        line: error.position().map(|p| p.line() + lines_before),
        column: None,
        problem: format!("unreadable CSV: {error}"),
    }
}

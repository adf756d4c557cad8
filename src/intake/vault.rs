//! The vault on disk: numbered snapshots of Parquet tables, each with a manifest, written so
//! that a crash at any moment leaves the previous snapshot whole and no partial one visible.
//!
//! A snapshot is written into `vault/.staging-PID`, every file and the folder are flushed, and
//! only then is the folder renamed to `vault/snapshot-NNNNNN`: the rename is the commit, and
//! the newest complete snapshot is simply the highest number. Leftover staging folders from a
//! crash are removed under the vault lock by the next ingest. Each table is a folder of Parquet
//! parts (one per piece of the input, written in parallel), which `DataFusion` reads as one
//! table. A person appears only as the random ID from the identity map.
//!
//! Fault points (see `fault`): `staging`, `parts`, `manifest`, `quarantine`, `identity`,
//! `commit`, in the order they happen.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float64Array, Int64Array, StringArray,
    UInt8Array, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, UInt8Type, UInt32Type};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::contract::{Domain, Scope, Sex, TieKind};
use super::parse::{ConsentPiece, DecisionPiece, NO_DATE, NO_SEX, NO_TEXT, People, TiePiece};
use super::resolve::{AGE_BANDS, Count, Resolved, age_band};
use super::rows::DECISION_FLAGS;
use super::source::hex;
use crate::error::{Error, IoContext, Result};
use crate::fault;

/// Prefix of committed snapshot folders.
const SNAPSHOT_PREFIX: &str = "snapshot-";
/// Prefix of snapshots being written.
const STAGING_PREFIX: &str = ".staging-";
/// Name of the manifest inside a snapshot.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One file of the export as it was read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportFile {
    /// Contract table.
    pub table: String,
    /// File name in the export folder.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 (over 64 MiB pieces' SHA-256s for larger plain CSV files), hex.
    pub sha256: String,
}

/// One Parquet part of a stored table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredFile {
    /// Path inside the snapshot.
    pub path: String,
    /// Rows in the part.
    pub rows: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// One stored table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredTable {
    /// Table name.
    pub table: String,
    /// Rows stored.
    pub rows: u64,
    /// Its parts.
    pub files: Vec<StoredFile>,
}

/// The quarantine file of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuarantineFile {
    /// Path relative to the workspace.
    pub path: String,
    /// Rows listed.
    pub rows: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// One table's accounting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableCount {
    /// Table name.
    pub table: String,
    /// Its rows by outcome.
    #[serde(flatten)]
    pub count: Count,
}

/// `manifest.json`: what a snapshot holds and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// Snapshot name.
    pub snapshot: String,
    /// kith version that wrote it.
    pub kith_version: String,
    /// When it was written (UTC, RFC 3339).
    pub created: String,
    /// The day consent was judged on.
    pub as_of: String,
    /// Where that day came from.
    pub as_of_from: String,
    /// Digest of the export files and the ingest options; equal keys mean an identical ingest.
    pub ingest_key: String,
    /// Digest of the export files alone.
    pub export_digest: String,
    /// The export's files.
    pub export: Vec<ExportFile>,
    /// Stored tables.
    pub tables: Vec<StoredTable>,
    /// Per table: read, stored, quarantined, excluded by consent.
    pub accounting: Vec<TableCount>,
    /// The quarantine file.
    pub quarantine: QuarantineFile,
    /// People the identity map saw for the first time.
    pub people_new: u64,
}

impl Manifest {
    /// Rows quarantined over all tables.
    pub fn quarantined(&self) -> u64 {
        self.accounting.iter().map(|entry| entry.count.quarantined).sum()
    }
}

/// The Parquet parts of one table folder of a snapshot, in name order (the order intake wrote
/// them); every reader of the vault lists parts through this.
pub fn table_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .at("listing", dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    Ok(files)
}

/// The committed snapshots, oldest first.
pub fn snapshots(vault: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(vault).at("listing", vault)? {
        let name = entry.at("listing", vault)?.file_name().to_string_lossy().into_owned();
        let numbered = name
            .strip_prefix(SNAPSHOT_PREFIX)
            .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()));
        if numbered {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Reads a snapshot's manifest.
pub fn read_manifest(snapshot: &Path) -> Result<Manifest> {
    let path = snapshot.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).at("reading", &path)?;
    serde_json::from_str(&text).map_err(|error| Error::Integrity {
        file: path.clone(),
        line: Some(error.line() as u64),
        problem: format!("the manifest does not parse: {error}"),
    })
}

/// The name the next snapshot gets.
pub fn next_name(vault: &Path) -> Result<String> {
    let last = snapshots(vault)?
        .last()
        .and_then(|name| name[SNAPSHOT_PREFIX.len()..].parse::<u32>().ok())
        .unwrap_or(0);
    Ok(format!("{SNAPSHOT_PREFIX}{:06}", last + 1))
}

/// An exclusive lock on the vault, held while a snapshot or the identity map changes.
#[derive(Debug)]
pub struct VaultLock {
    _held: File,
}

impl VaultLock {
    /// Waits for the lock, then removes staging folders a crashed writer left.
    pub fn acquire(vault: &Path) -> Result<VaultLock> {
        let path = vault.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .at("opening the vault lock", &path)?;
        file.lock().at("locking", &path)?;
        for entry in std::fs::read_dir(vault).at("listing", vault)? {
            let entry = entry.at("listing", vault)?;
            if entry.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
                std::fs::remove_dir_all(entry.path())
                    .at("removing a stale staging folder", vault)?;
            }
        }
        Ok(VaultLock { _held: file })
    }
}

/// Creates a private folder.
fn private_dir(path: &Path) -> Result<()> {
    DirBuilder::new().mode(0o700).create(path).at("creating folder", path)
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path).and_then(|dir| dir.sync_all()).at("flushing folder", path)
}

/// A snapshot being written.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Creates the staging folder with one subfolder per table.
    pub fn create(vault: &Path) -> Result<Staging> {
        fault::point("staging")?;
        let dir = vault.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        private_dir(&dir)?;
        for table in ["people", "ties", "consents", "decisions"] {
            private_dir(&dir.join(table))?;
        }
        Ok(Staging { dir })
    }

    /// Writes one Parquet part, flushed, returning its manifest entry.
    pub fn write_part(&self, table: &str, part: usize, batch: &RecordBatch) -> Result<StoredFile> {
        let relative = format!("{table}/part-{part:05}.parquet");
        let path = self.dir.join(&relative);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .at("creating", &path)?;
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let hashing = Hashing { file, hasher: Sha256::new() };
        let parquet_error = |error: parquet::errors::ParquetError| {
            Error::internal(format!("writing Parquet: {error}"))
        };
        let mut writer =
            ArrowWriter::try_new(hashing, batch.schema(), Some(props)).map_err(parquet_error)?;
        writer.write(batch).map_err(parquet_error)?;
        let hashing = writer.into_inner().map_err(parquet_error)?;
        hashing.file.sync_all().at("flushing", &path)?;
        Ok(StoredFile {
            path: relative,
            rows: batch.num_rows() as u64,
            sha256: hex(&hashing.hasher.finalize()),
        })
    }

    /// Writes the manifest and flushes every folder of the snapshot.
    pub fn finish(&self, manifest: &Manifest) -> Result<()> {
        fault::point("manifest")?;
        let path = self.dir.join(MANIFEST_FILE);
        let mut text = serde_json::to_string_pretty(manifest)
            .map_err(|error| Error::internal(format!("encoding the manifest: {error}")))?;
        text.push('\n');
        crate::workspace::write_private_file(&path, text.as_bytes())?;
        for table in ["people", "ties", "consents", "decisions"] {
            sync_dir(&self.dir.join(table))?;
        }
        sync_dir(&self.dir)
    }

    /// Makes the snapshot visible under `name`: one rename, then a flush of the vault folder.
    pub fn commit(self, vault: &Path, name: &str) -> Result<PathBuf> {
        fault::point("commit")?;
        let target = vault.join(name);
        std::fs::rename(&self.dir, &target).at("committing the snapshot", &target)?;
        sync_dir(vault)?;
        Ok(target)
    }
}

/// A writer that hashes what passes through it.
struct Hashing {
    file: File,
    hasher: Sha256,
}

impl Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn dictionary_u8(keys: Vec<Option<u8>>, values: &[&str]) -> ArrayRef {
    let keys = UInt8Array::from(keys);
    let values = Arc::new(StringArray::from(values.to_vec()));
    Arc::new(DictionaryArray::<UInt8Type>::try_new(keys, values).expect("keys index the values"))
}

fn dictionary_u32(keys: Vec<Option<u32>>, values: &[Box<str>]) -> ArrayRef {
    let keys = UInt32Array::from(keys);
    let values = Arc::new(StringArray::from_iter_values(values.iter().map(AsRef::as_ref)));
    Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).expect("keys index the values"))
}

fn text_dictionary(key: DataType) -> DataType {
    DataType::Dictionary(Box::new(key), Box::new(DataType::Utf8))
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|value| name(*value)).collect()
}

fn optional_date(day: i32) -> Option<i32> {
    (day != NO_DATE).then_some(day)
}

fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("columns match the schema")
}

/// The stored people: random ID, declared groups, age band and active scopes.
pub fn people_batch(people: &People, resolved: &Resolved) -> RecordBatch {
    let rows: Vec<usize> = (0..people.len()).filter(|&row| resolved.people.keep[0][row]).collect();
    let interned = |column: &[u32]| -> Vec<Option<u32>> {
        rows.iter().map(|&row| Some(column[row]).filter(|&v| v != NO_TEXT)).collect()
    };
    let scope = |scope: Scope| -> ArrayRef {
        let bit = 1 << scope.index();
        Arc::new(
            rows.iter().map(|&row| Some(resolved.scopes[row] & bit != 0)).collect::<BooleanArray>(),
        )
    };
    let bands: Vec<Option<u8>> = rows
        .iter()
        .map(|&row| {
            let band = age_band(people.dob[row], resolved.as_of);
            AGE_BANDS.iter().position(|b| *b == band).map(|at| at as u8)
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|&row| resolved.ids[row]))),
        dictionary_u32(interned(&people.community), &people.communities.texts),
        dictionary_u32(interned(&people.workplace), &people.workplaces.texts),
        Arc::new(
            rows.iter()
                .map(|&row| {
                    let household = people.household[row];
                    (household != NO_TEXT).then(|| resolved.household_codes[household as usize])
                })
                .collect::<Int64Array>(),
        ),
        dictionary_u8(
            rows.iter().map(|&row| Some(people.sex[row]).filter(|&s| s != NO_SEX)).collect(),
            &names(Sex::ALL, Sex::as_str),
        ),
        dictionary_u8(bands, &AGE_BANDS),
        scope(Scope::Network),
        scope(Scope::Reports),
        scope(Scope::Research),
    ];
    let fields = vec![
        Field::new("person", DataType::Int64, false),
        Field::new("community", text_dictionary(DataType::UInt32), false),
        Field::new("workplace", text_dictionary(DataType::UInt32), true),
        Field::new("household", DataType::Int64, true),
        Field::new("sex", text_dictionary(DataType::UInt8), true),
        Field::new("age_band", text_dictionary(DataType::UInt8), false),
        Field::new("network", DataType::Boolean, false),
        Field::new("reports", DataType::Boolean, false),
        Field::new("research", DataType::Boolean, false),
    ];
    batch(fields, columns)
}

/// One piece of stored ties: nominator, person named, kind, weight, start.
pub fn ties_batch(piece: &TiePiece, keep: &[bool], ids: &[i64]) -> RecordBatch {
    let rows: Vec<usize> = (0..keep.len()).filter(|&row| keep[row]).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|&r| ids[piece.from[r] as usize]))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|&r| ids[piece.to[r] as usize]))),
        dictionary_u8(
            rows.iter().map(|&r| Some(piece.kind[r])).collect(),
            &names(TieKind::ALL, TieKind::as_str),
        ),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|&r| piece.weight[r]))),
        Arc::new(rows.iter().map(|&r| optional_date(piece.since[r])).collect::<Date32Array>()),
    ];
    let fields = vec![
        Field::new("from_person", DataType::Int64, false),
        Field::new("to_person", DataType::Int64, false),
        Field::new("kind", text_dictionary(DataType::UInt8), false),
        Field::new("weight", DataType::Float64, false),
        Field::new("since", DataType::Date32, true),
    ];
    batch(fields, columns)
}

/// One piece of stored consents.
pub fn consents_batch(piece: &ConsentPiece, keep: &[bool], ids: &[i64]) -> RecordBatch {
    let rows: Vec<usize> = (0..keep.len()).filter(|&row| keep[row]).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|&r| ids[piece.person[r] as usize]))),
        dictionary_u8(
            rows.iter().map(|&r| Some(piece.scope[r])).collect(),
            &names(Scope::ALL, Scope::as_str),
        ),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|&r| piece.granted[r]))),
        Arc::new(rows.iter().map(|&r| optional_date(piece.revoked[r])).collect::<Date32Array>()),
    ];
    let fields = vec![
        Field::new("person", DataType::Int64, false),
        Field::new("scope", text_dictionary(DataType::UInt8), false),
        Field::new("granted", DataType::Date32, false),
        Field::new("revoked", DataType::Date32, true),
    ];
    batch(fields, columns)
}

/// One piece of stored decisions, columns in contract order.
pub fn decisions_batch(piece: &DecisionPiece, keep: &[bool], ids: &[i64]) -> RecordBatch {
    let rows: Vec<usize> = (0..keep.len()).filter(|&row| keep[row]).collect();
    let flag = |name: &str| -> ArrayRef {
        let bit = 1u8 << DECISION_FLAGS.iter().position(|f| *f == name).expect("a flag");
        Arc::new(rows.iter().map(|&r| Some(piece.flags[r] & bit != 0)).collect::<BooleanArray>())
    };
    let mut fields = vec![
        Field::new("person", DataType::Int64, false),
        Field::new("date", DataType::Date32, false),
        Field::new("domain", text_dictionary(DataType::UInt8), false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|&r| ids[piece.person[r] as usize]))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|&r| piece.date[r]))),
        dictionary_u8(
            rows.iter().map(|&r| Some(piece.domain[r])).collect(),
            &names(Domain::ALL, Domain::as_str),
        ),
    ];
    for column in &super::contract::DECISIONS.columns[3..] {
        fields.push(match column.name {
            "cost" | "minutes" => Field::new(column.name, DataType::Float64, false),
            _ => Field::new(column.name, DataType::Boolean, false),
        });
        columns.push(match column.name {
            "cost" => Arc::new(Float64Array::from_iter_values(rows.iter().map(|&r| piece.cost[r]))),
            "minutes" => {
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|&r| piece.minutes[r])))
            }
            name => flag(name),
        });
    }
    batch(fields, columns)
}

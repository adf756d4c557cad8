//! Intake: from a program's export to a pseudonymous, consent-filtered vault snapshot.
//!
//! The steps, each in its own module: [`contract`] says what an export may hold; [`source`]
//! finds, hashes and splits the files; [`rows`] decodes one row; [`parse`] decodes whole
//! tables in parallel; [`resolve`] applies the rules that need the whole export (identity,
//! duplicates, consent on the export date); [`identity`] turns identity pairs into random
//! person IDs; [`vault`] writes the snapshot atomically and [`quarantine`] the rows set aside.
//! [`check`] is the storage-free row check behind `kith check`.

pub mod check;
pub mod contract;
pub mod identity;
pub mod parse;
pub mod quarantine;
pub mod resolve;
pub mod rows;
pub mod source;
pub mod vault;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fault;
use crate::progress::Progress;
use crate::workspace::Workspace;
use contract::{TABLES, epoch_days, from_epoch_days};
use identity::{IdentityMap, Indexer};
use parse::{ConsentPiece, DecisionPiece, TiePiece};
use source::{TableSource, hex};
use vault::{Manifest, Staging, VaultLock};

/// Name of the identity map inside the workspace's `identity` folder.
pub const IDENTITY_MAP: &str = "map.bin";

/// What `kith ingest` was asked to do.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The export folder.
    pub export: PathBuf,
    /// The day consent is judged on; `None` takes the newest date in the export.
    pub as_of: Option<NaiveDate>,
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct IngestReport {
    /// The snapshot now newest.
    pub snapshot: String,
    /// Its folder.
    pub snapshot_dir: PathBuf,
    /// False when the export was identical to the newest snapshot's and nothing was written.
    pub created: bool,
    /// The snapshot's manifest.
    pub manifest: Manifest,
}

/// Ingests an export into a new vault snapshot (see the module docs for the steps).
///
/// # Errors
///
/// An input error when the export is refused as a whole (a missing table, an unknown or
/// identifier-like column, unreadable files); nothing is written then. Workspace and I/O
/// errors leave the previous snapshot as it was.
pub fn ingest(
    workspace: &Workspace,
    options: &IngestOptions,
    progress: Progress,
) -> Result<IngestReport> {
    let vault_dir = workspace.folder("vault");
    let _lock = VaultLock::acquire(&vault_dir)?;

    let sources = scan_export(&options.export, progress)?;
    let export_digest = export_digest(&sources);
    let ingest_key = ingest_key(&export_digest, options.as_of);
    if let Some(report) = unchanged(&vault_dir, &ingest_key)? {
        tracing::info!(snapshot = %report.snapshot, "export identical to the newest snapshot");
        return Ok(report);
    }

    let ring = workspace.key_ring()?;
    let map_path = workspace.folder("identity").join(IDENTITY_MAP);
    let mut map = IdentityMap::load(&map_path, &ring)?;
    if map.generations() < ring.generations().len() {
        tracing::warn!("a key rotation was interrupted; run `kith rotate-key` to finish it");
    }
    let indexer = Indexer::new(&ring, map.generations());
    drop(ring);

    let total: u64 = sources.iter().map(|(source, _)| source.bytes).sum();
    let bar = progress.bytes("reading", total);
    let read = AtomicU64::new(0);
    let on_bytes = |bytes: u64| {
        read.fetch_add(bytes, Ordering::Relaxed);
        bar.inc(bytes);
    };
    let [people_source, ties_source, consents_source, decisions_source] = &sources;
    let people = parse::read_people(&people_source.0, &people_source.1, &on_bytes)?;
    let index = parse::PeopleIndex::new(&people);
    let ties: Vec<TiePiece> = parse::read_table(&ties_source.0, &ties_source.1, &index, &on_bytes)?;
    let consents: Vec<ConsentPiece> =
        parse::read_table(&consents_source.0, &consents_source.1, &index, &on_bytes)?;
    let decisions: Vec<DecisionPiece> =
        parse::read_table(&decisions_source.0, &decisions_source.1, &index, &on_bytes)?;
    bar.finish_and_clear();

    let (as_of, as_of_from) = match options.as_of {
        Some(day) => (epoch_days(day), "--as-of"),
        None => match resolve::newest_date(&ties, &consents, &decisions) {
            Some(day) => (day, "the newest date in the export"),
            None => (epoch_days(chrono::Utc::now().date_naive()), "today: the export has no dates"),
        },
    };
    let (resolved, (ties, consents, decisions)) =
        resolve::resolve(&people, &index, (ties, consents, decisions), as_of, &mut map, &indexer)?;
    for (table, outcome) in table_outcomes(&resolved) {
        if !outcome.count.balances() {
            return Err(Error::internal(format!(
                "the `{table}` rows do not add up: {:?}",
                outcome.count
            )));
        }
    }

    let name = vault::next_name(&vault_dir)?;
    let staging = Staging::create(&vault_dir)?;
    let tables =
        write_tables(&staging, &people, &resolved, (&ties, &consents, &decisions), progress)?;

    fault::point("quarantine")?;
    let quarantine_path = workspace.folder("quarantine").join(format!("{name}.csv"));
    let quarantine = write_quarantine(&quarantine_path, &sources, &resolved)?;

    let manifest = Manifest {
        format: 1,
        snapshot: name.clone(),
        kith_version: env!("CARGO_PKG_VERSION").to_owned(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        as_of: from_epoch_days(as_of).map(|d| d.to_string()).unwrap_or_default(),
        as_of_from: as_of_from.to_owned(),
        ingest_key,
        export_digest,
        export: sources.iter().map(|(source, _)| export_file(source)).collect(),
        tables,
        accounting: table_outcomes(&resolved)
            .into_iter()
            .map(|(table, outcome)| vault::TableCount {
                table: table.to_owned(),
                count: outcome.count.clone(),
            })
            .collect(),
        quarantine: vault::QuarantineFile {
            path: format!("quarantine/{name}.csv"),
            rows: quarantine.0,
            sha256: quarantine.1,
        },
        people_new: resolved.new_people as u64,
    };
    staging.finish(&manifest)?;

    // The map goes before the commit: a crash between them leaves IDs that the next ingest
    // reuses, never a snapshot whose IDs the map forgot.
    fault::point("identity")?;
    map.save(&map_path)?;
    let snapshot_dir = staging.commit(&vault_dir, &name)?;
    tracing::info!(snapshot = %name, new_people = resolved.new_people, "snapshot committed");
    Ok(IngestReport { snapshot: name, snapshot_dir, created: true, manifest })
}

/// Locates, maps and hashes each table of the export. Headers are checked before anything is
/// hashed, so a refused export costs little.
fn scan_export(dir: &Path, progress: Progress) -> Result<[(TableSource, rows::Layout); 4]> {
    if !dir.is_dir() {
        return Err(Error::Input {
            file: dir.to_owned(),
            line: None,
            column: None,
            problem: "the export folder does not exist".into(),
        });
    }
    let located: Vec<(PathBuf, source::Format)> =
        TABLES.iter().map(|table| source::locate(dir, table)).collect::<Result<_>>()?;
    let mut layouts = Vec::with_capacity(4);
    for (table, (path, format)) in TABLES.iter().zip(&located) {
        let unscanned = TableSource {
            table,
            path: path.clone(),
            format: *format,
            bytes: 0,
            sha256: String::new(),
            pieces: Vec::new(),
        };
        layouts.push(unscanned.layout()?);
    }

    let total =
        located.iter().map(|(path, _)| std::fs::metadata(path).map_or(0, |m| m.len())).sum();
    let bar = progress.bytes("hashing", total);
    let on_bytes = |bytes: u64| bar.inc(bytes);
    let mut scanned = Vec::with_capacity(4);
    for ((table, (path, format)), layout) in TABLES.iter().zip(located).zip(layouts) {
        scanned.push((source::scan(table, path, format, &on_bytes)?, layout));
    }
    bar.finish_and_clear();
    Ok(scanned.try_into().expect("four tables"))
}

fn export_digest(sources: &[(TableSource, rows::Layout)]) -> String {
    let mut digest = Sha256::new();
    for (source, _) in sources {
        digest.update(source.table.name.as_bytes());
        digest.update([0]);
        digest.update(source.sha256.as_bytes());
    }
    hex(&digest.finalize())
}

/// Equal keys mean the same files ingested with the same options, so the same snapshot.
fn ingest_key(export_digest: &str, as_of: Option<NaiveDate>) -> String {
    let mut digest = Sha256::new();
    digest.update(b"kith/ingest/v1\0");
    digest.update(export_digest.as_bytes());
    digest.update(as_of.map(|d| d.to_string()).unwrap_or_default().as_bytes());
    hex(&digest.finalize())
}

/// The newest snapshot, if it came from the identical ingest.
fn unchanged(vault_dir: &Path, ingest_key: &str) -> Result<Option<IngestReport>> {
    let Some(newest) = vault::snapshots(vault_dir)?.pop() else { return Ok(None) };
    let snapshot_dir = vault_dir.join(&newest);
    let manifest = vault::read_manifest(&snapshot_dir)?;
    if manifest.ingest_key != ingest_key {
        return Ok(None);
    }
    Ok(Some(IngestReport { snapshot: newest, snapshot_dir, created: false, manifest }))
}

fn table_outcomes(resolved: &resolve::Resolved) -> [(&'static str, &resolve::Outcome); 4] {
    [
        ("people", &resolved.people),
        ("ties", &resolved.ties),
        ("consents", &resolved.consents),
        ("decisions", &resolved.decisions),
    ]
}

fn export_file(source: &TableSource) -> vault::ExportFile {
    vault::ExportFile {
        table: source.table.name.to_owned(),
        file: file_name(&source.path),
        bytes: source.bytes,
        sha256: source.sha256.clone(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One Parquet part to write.
enum Part<'a> {
    People,
    Ties(&'a TiePiece, &'a [bool]),
    Consents(&'a ConsentPiece, &'a [bool]),
    Decisions(&'a DecisionPiece, &'a [bool]),
}

/// Writes every part in parallel and returns each table's manifest entry.
fn write_tables(
    staging: &Staging,
    people: &parse::People,
    resolved: &resolve::Resolved,
    (ties, consents, decisions): (&[TiePiece], &[ConsentPiece], &[DecisionPiece]),
    progress: Progress,
) -> Result<Vec<vault::StoredTable>> {
    fault::point("parts")?;
    let mut parts: Vec<(&str, usize, Part<'_>)> = vec![("people", 0, Part::People)];
    for (number, (piece, keep)) in ties.iter().zip(&resolved.ties.keep).enumerate() {
        parts.push(("ties", number, Part::Ties(piece, keep)));
    }
    for (number, (piece, keep)) in consents.iter().zip(&resolved.consents.keep).enumerate() {
        parts.push(("consents", number, Part::Consents(piece, keep)));
    }
    for (number, (piece, keep)) in decisions.iter().zip(&resolved.decisions.keep).enumerate() {
        parts.push(("decisions", number, Part::Decisions(piece, keep)));
    }

    let bar = progress.bar("writing", parts.len() as u64);
    let ids = &resolved.ids;
    let written: Vec<(&str, vault::StoredFile)> = parts
        .par_iter()
        .map(|(table, number, part)| {
            let batch = match part {
                Part::People => vault::people_batch(people, resolved),
                Part::Ties(piece, keep) => vault::ties_batch(piece, keep, ids),
                Part::Consents(piece, keep) => vault::consents_batch(piece, keep, ids),
                Part::Decisions(piece, keep) => vault::decisions_batch(piece, keep, ids),
            };
            let file = staging.write_part(table, *number, &batch)?;
            bar.inc(1);
            Ok((*table, file))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();

    Ok(TABLES
        .iter()
        .map(|table| {
            let files: Vec<vault::StoredFile> = written
                .iter()
                .filter(|(name, _)| *name == table.name)
                .map(|(_, file)| file.clone())
                .collect();
            vault::StoredTable {
                table: table.name.to_owned(),
                rows: files.iter().map(|file| file.rows).sum(),
                files,
            }
        })
        .collect())
}

/// Writes the quarantine file atomically; returns its row count and SHA-256.
fn write_quarantine(
    path: &Path,
    sources: &[(TableSource, rows::Layout)],
    resolved: &resolve::Resolved,
) -> Result<(u64, String)> {
    let names: Vec<String> = sources.iter().map(|(source, _)| file_name(&source.path)).collect();
    let tables: Vec<(&str, &str, &[parse::Quarantined])> = table_outcomes(resolved)
        .iter()
        .zip(&names)
        .map(|((table, outcome), file)| (*table, file.as_str(), outcome.quarantined.as_slice()))
        .collect();
    let rows = tables.iter().map(|(_, _, rows)| rows.len() as u64).sum();
    let bytes = quarantine::render(&tables)?;
    crate::workspace::replace_private_file(path, &bytes)?;
    Ok((rows, hex(&Sha256::digest(&bytes))))
}

/// Rotates the workspace key: appends a new key generation and wraps every identity-map index
/// under it, keeping every person ID. Finishes an interrupted rotation first. Returns the
/// number of key generations and of people in the map.
///
/// Fault points: `rotate-key` (after the new key is written), `rotate-map` (before the map is).
pub fn rotate_key(workspace: &Workspace) -> Result<(usize, usize)> {
    let vault_dir = workspace.folder("vault");
    let _lock = VaultLock::acquire(&vault_dir)?;
    let map_path = workspace.folder("identity").join(IDENTITY_MAP);

    let mut ring = workspace.key_ring()?;
    let mut map = IdentityMap::load(&map_path, &ring)?;
    if map.generations() == ring.generations().len() {
        ring = ring.rotate(&workspace.key_path())?;
        fault::point("rotate-key")?;
    }
    while map.generations() < ring.generations().len() {
        map.wrap_next(&ring);
    }
    fault::point("rotate-map")?;
    if map.is_empty() && !map_path.exists() {
        return Ok((ring.generations().len(), 0));
    }
    map.save(&map_path)?;
    Ok((map.generations(), map.len()))
}

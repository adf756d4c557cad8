//! Reading a vault snapshot into the graph stage's in-memory form: the consented people in
//! snapshot order, their stored ties as arcs, and weekly decision counts per person.
//!
//! It owns the checks on what it reads, not the stage's artifacts ([`super::stage`] writes
//! those). Intake wrote these files, so anything unexpected in them (a column of the wrong
//! type, a null, a tie kind or domain outside the contract, a tie to someone without network
//! consent) means the vault was altered or damaged: it is an `Integrity` error naming the
//! file, never a panic and never a silently skipped row.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Float64Type, Int64Type, UInt8Type, UInt32Type};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use rayon::prelude::*;

use super::exposure::{self, Activity};
use super::network::Arc;
use crate::error::{Error, IoContext, Result};
use crate::intake::contract::{Domain, TieKind};
use crate::intake::vault::table_parts;

/// An `Integrity` error about one vault file.
fn damaged(path: &Path, problem: impl Into<String>) -> Error {
    Error::Integrity { file: path.to_owned(), line: None, problem: problem.into() }
}

/// A reader of `columns` of one vault part.
fn reader(path: &Path, columns: &[&str]) -> Result<ParquetRecordBatchReader> {
    let unreadable = |e: parquet::errors::ParquetError| {
        damaged(path, format!("the vault file does not read: {e}"))
    };
    let file = File::open(path).at("opening", path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(unreadable)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    builder.with_projection(mask).build().map_err(unreadable)
}

/// Every batch of one vault table, each with the file it came from.
fn batches(dir: &Path, columns: &[&str]) -> Result<Vec<(PathBuf, RecordBatch)>> {
    let mut out = Vec::new();
    for path in table_parts(dir)? {
        for batch in reader(&path, columns)? {
            let batch = batch.map_err(|e| damaged(&path, format!("a batch does not read: {e}")))?;
            out.push((path.clone(), batch));
        }
    }
    Ok(out)
}

/// The column `name` of a vault batch, as the type intake writes, with no nulls (intake
/// declares every column the graph reads non-nullable).
fn column<'a, T: Array + 'a>(
    batch: &'a RecordBatch,
    path: &Path,
    name: &str,
    cast: impl FnOnce(&'a dyn Array) -> Option<&'a T>,
) -> Result<&'a T> {
    let found = batch
        .column_by_name(name)
        .and_then(|c| cast(c.as_ref()))
        .ok_or_else(|| damaged(path, format!("column `{name}` is missing or of the wrong type")))?;
    if found.null_count() > 0 {
        return Err(damaged(path, format!("column `{name}` holds nulls")));
    }
    Ok(found)
}

/// People with network consent: their IDs (node order) and declared community numbers.
pub(super) struct Nodes {
    /// Person ID of each node.
    pub(super) ids: Vec<i64>,
    /// Declared community number of each node, numbered in order of first appearance.
    pub(super) community: Vec<u32>,
    /// Number of declared communities among them.
    pub(super) communities: usize,
    /// Node number of each person ID.
    index: HashMap<i64, u32>,
}

/// Reads the people with active network consent, in snapshot order.
pub(super) fn read_nodes(snapshot: &Path) -> Result<Nodes> {
    let mut nodes =
        Nodes { ids: Vec::new(), community: Vec::new(), communities: 0, index: HashMap::new() };
    let mut names: HashMap<String, u32> = HashMap::new();
    for (path, batch) in batches(&snapshot.join("people"), &["person", "community", "network"])? {
        let person = column(&batch, &path, "person", |c| c.as_primitive_opt::<Int64Type>())?;
        let community =
            column(&batch, &path, "community", |c| c.as_dictionary_opt::<UInt32Type>())?;
        let values = community
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| damaged(&path, "column `community` does not hold text"))?;
        let network = column(&batch, &path, "network", |c| c.as_boolean_opt())?;
        for row in 0..batch.num_rows() {
            if !network.value(row) {
                continue;
            }
            let name = values.value(community.keys().value(row) as usize);
            let next = names.len() as u32;
            let number = *names.entry(name.to_owned()).or_insert(next);
            if nodes.index.insert(person.value(row), nodes.ids.len() as u32).is_some() {
                return Err(damaged(&path, "a person ID appears twice"));
            }
            nodes.ids.push(person.value(row));
            nodes.community.push(number);
        }
    }
    nodes.communities = names.len();
    Ok(nodes)
}

/// Reads every stored tie as an arc between node numbers.
pub(super) fn read_arcs(snapshot: &Path, nodes: &Nodes) -> Result<Vec<Arc>> {
    let mut arcs = Vec::new();
    let columns = ["from_person", "to_person", "kind", "weight"];
    for (path, batch) in batches(&snapshot.join("ties"), &columns)? {
        let from = column(&batch, &path, "from_person", |c| c.as_primitive_opt::<Int64Type>())?;
        let to = column(&batch, &path, "to_person", |c| c.as_primitive_opt::<Int64Type>())?;
        let kind = column(&batch, &path, "kind", |c| c.as_dictionary_opt::<UInt8Type>())?;
        let weight = column(&batch, &path, "weight", |c| c.as_primitive_opt::<Float64Type>())?;
        let kind_names = kind
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| damaged(&path, "column `kind` does not hold text"))?;
        // Checked once per dictionary entry, so an unknown kind is refused even if no row used
        // it; the metrics index arrays by kind and would otherwise read past their end.
        let kinds: Vec<u8> = (0..kind_names.len())
            .map(|i| {
                let name = kind_names.value(i);
                TieKind::parse(name).map(|k| k.index() as u8).ok_or_else(|| {
                    damaged(&path, format!("a stored tie has kind `{name}`, outside the contract"))
                })
            })
            .collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            let (Some(&a), Some(&b)) =
                (nodes.index.get(&from.value(row)), nodes.index.get(&to.value(row)))
            else {
                return Err(damaged(&path, "a stored tie names someone without network consent"));
            };
            let w = weight.value(row);
            if !(w > 0.0 && w <= 1.0) {
                return Err(damaged(&path, format!("a stored tie has weight {w}, outside (0, 1]")));
            }
            let kind = kinds[usize::from(kind.keys().value(row))];
            arcs.push(Arc { from: a, to: b, kind, weight: w as f32 });
        }
    }
    Ok(arcs)
}

/// Offset that makes week numbers non-negative inside the 22-bit packed field.
const WEEK_OFFSET: i64 = 1 << 21;

/// The packed keys (node, domain, week, healthy) of one decisions part; decisions of people
/// without network consent are left out, since exposure only reads the graph's people.
fn activity_keys(path: &Path, nodes: &Nodes) -> Result<Vec<u64>> {
    let mut keys = Vec::new();
    for batch in reader(path, &["person", "date", "domain", "healthy"])? {
        let batch = batch.map_err(|e| damaged(path, format!("a batch does not read: {e}")))?;
        let person = column(&batch, path, "person", |c| c.as_primitive_opt::<Int64Type>())?;
        let date = column(&batch, path, "date", |c| c.as_primitive_opt::<Date32Type>())?;
        let domain = column(&batch, path, "domain", |c| c.as_dictionary_opt::<UInt8Type>())?;
        let healthy = column(&batch, path, "healthy", |c| c.as_boolean_opt())?;
        let names = domain
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| damaged(path, "column `domain` does not hold text"))?;
        let domains: Vec<u64> = (0..names.len())
            .map(|i| Domain::parse(names.value(i)).map(|d| d.index() as u64))
            .collect::<Option<_>>()
            .ok_or_else(|| damaged(path, "a stored decision has a domain outside the contract"))?;
        for row in 0..batch.num_rows() {
            let Some(&node) = nodes.index.get(&person.value(row)) else { continue };
            let week = (i64::from(exposure::week(date.value(row))) + WEEK_OFFSET) as u64;
            let domain = domains[usize::from(domain.keys().value(row))];
            keys.push(
                (u64::from(node) << 26)
                    | (domain << 23)
                    | ((week & 0x3f_ffff) << 1)
                    | u64::from(healthy.value(row)),
            );
        }
    }
    Ok(keys)
}

/// Weekly decision and healthy counts per person and domain. Each decisions part is decoded
/// on its own thread into packed keys (person, domain, week, healthy), which one parallel sort
/// groups: cheaper than a hash map over tens of millions of rows.
pub(super) fn read_activity(snapshot: &Path, nodes: &Nodes) -> Result<Vec<Activity>> {
    let files = table_parts(&snapshot.join("decisions"))?;
    let keys: Vec<Vec<u64>> =
        files.par_iter().map(|path| activity_keys(path, nodes)).collect::<Result<_>>()?;
    let mut keys = keys.concat();
    keys.par_sort_unstable();

    let pack = |a: &Activity| {
        (u64::from(a.node) << 25)
            | (u64::from(a.domain) << 22)
            | ((i64::from(a.week) + WEEK_OFFSET) as u64 & 0x3f_ffff)
    };
    let mut activity: Vec<Activity> = Vec::new();
    for key in keys {
        let cell = key >> 1;
        let healthy = f64::from((key & 1) as u8);
        match activity.last_mut() {
            Some(last) if pack(last) == cell => {
                last.decisions += 1.0;
                last.healthy += healthy;
            }
            _ => activity.push(Activity {
                node: (cell >> 25) as u32,
                domain: ((cell >> 22) & 7) as u8,
                week: ((cell & 0x3f_ffff) as i64 - WEEK_OFFSET) as i32,
                decisions: 1.0,
                healthy,
            }),
        }
    }
    Ok(activity)
}

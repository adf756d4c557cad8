//! `kith graph`: reads the newest snapshot, builds everything this stage computes, and stores
//! it inside the snapshot so later stages and reruns reuse it.
//!
//! Artifacts go to `vault/snapshot-N/graph-KEY/`, where KEY digests the settings (degree cap,
//! quality function, resolution, seed, iterations); they are written into a staging folder
//! and renamed into place, so a folder that exists is whole. Asking again with the same
//! settings reuses it. Files: `people.parquet` (per-person metrics and community),
//! `ties_capped.parquet` (the capped graph), `exposure.parquet`, and `graph.json` (settings,
//! the summary, timings).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc as Shared;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, UInt8Array, UInt32Array,
};
use arrow::datatypes::{Date32Type, Field, Float64Type, Int64Type, Schema, UInt8Type, UInt32Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cap::degree_cap;
use super::community::{Detector, Settings};
use super::exposure::{self, Activity};
use super::metrics::{self, GraphSummary};
use super::network::{Arc, Network};
use crate::error::{Error, IoContext, Result};
use crate::intake::contract::{Domain, TieKind};
use crate::intake::source::hex;
use crate::progress::Progress;
use crate::workspace::Workspace;

/// What `graph.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphRecord {
    /// The snapshot.
    pub snapshot: String,
    /// Degree cap D.
    pub degree_cap: usize,
    /// Community detection settings.
    pub settings: serde_json::Value,
    /// The steward's diagnostics.
    pub summary: serde_json::Value,
    /// Communities found.
    pub communities: usize,
    /// Quality of the partition (kith's own modularity at resolution 1 for comparability).
    pub modularity: f64,
    /// Nominations left after the cap.
    pub capped_nominations: usize,
    /// Rows of the exposure table.
    pub exposure_rows: usize,
    /// Seconds per step.
    pub seconds: Vec<(String, f64)>,
}

/// A finished (or reused) graph stage.
#[derive(Debug)]
pub struct GraphReport {
    /// Artifact folder.
    pub dir: PathBuf,
    /// Whether it was reused.
    pub reused: bool,
    /// Its record.
    pub record: GraphRecord,
}

fn vault_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |error| Error::Integrity {
        file: path.to_owned(),
        line: None,
        problem: format!("the vault file does not read: {error}"),
    }
}

fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .at("listing", dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    Ok(files)
}

fn batches(dir: &Path, columns: &[&str]) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for path in parquet_files(dir)? {
        let file = File::open(&path).at("opening", &path)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(vault_error(&path))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        for batch in builder.with_projection(mask).build().map_err(vault_error(&path))? {
            out.push(
                batch.map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))?,
            );
        }
    }
    Ok(out)
}

/// People with network consent: their IDs (node order) and declared community numbers.
struct Nodes {
    ids: Vec<i64>,
    community: Vec<u32>,
    communities: usize,
    index: HashMap<i64, u32>,
}

fn read_nodes(snapshot: &Path) -> Result<Nodes> {
    let mut nodes =
        Nodes { ids: Vec::new(), community: Vec::new(), communities: 0, index: HashMap::new() };
    let mut names: HashMap<String, u32> = HashMap::new();
    for batch in batches(&snapshot.join("people"), &["person", "community", "network"])? {
        let person = batch.column(0).as_primitive::<Int64Type>();
        let community = batch.column(1).as_dictionary::<UInt32Type>();
        let values = community.values().as_string::<i32>();
        let network = batch.column(2).as_boolean();
        for row in 0..batch.num_rows() {
            if !network.value(row) {
                continue;
            }
            let name = values.value(community.keys().value(row) as usize);
            let next = names.len() as u32;
            let number = *names.entry(name.to_owned()).or_insert(next);
            nodes.index.insert(person.value(row), nodes.ids.len() as u32);
            nodes.ids.push(person.value(row));
            nodes.community.push(number);
        }
    }
    nodes.communities = names.len();
    Ok(nodes)
}

fn read_arcs(snapshot: &Path, nodes: &Nodes) -> Result<Vec<Arc>> {
    let mut arcs = Vec::new();
    for batch in batches(&snapshot.join("ties"), &["from_person", "to_person", "kind", "weight"])? {
        let from = batch.column(0).as_primitive::<Int64Type>();
        let to = batch.column(1).as_primitive::<Int64Type>();
        let kind = batch.column(2).as_dictionary::<UInt8Type>();
        let kind_names = kind.values().as_string::<i32>();
        let kinds: Vec<u8> = (0..kind_names.len())
            .map(|i| TieKind::parse(kind_names.value(i)).map_or(u8::MAX, |k| k.index() as u8))
            .collect();
        let weight = batch.column(3).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            let (Some(&a), Some(&b)) =
                (nodes.index.get(&from.value(row)), nodes.index.get(&to.value(row)))
            else {
                return Err(Error::internal("a stored tie names someone without network consent"));
            };
            let kind = kinds[usize::from(kind.keys().value(row))];
            arcs.push(Arc { from: a, to: b, kind, weight: weight.value(row) as f32 });
        }
    }
    Ok(arcs)
}

/// Weekly decision and healthy counts per person and domain. Each decisions part is decoded
/// on its own thread into packed keys (person, domain, week, healthy), which one parallel sort
/// groups: cheaper than a hash map over tens of millions of rows.
fn read_activity(snapshot: &Path, nodes: &Nodes) -> Result<Vec<Activity>> {
    use rayon::prelude::*;

    const WEEK_OFFSET: i64 = 1 << 21;
    let files = parquet_files(&snapshot.join("decisions"))?;
    let keys: Vec<Vec<u64>> = files
        .par_iter()
        .map(|path| {
            let file = File::open(path).at("opening", path)?;
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(file).map_err(vault_error(path))?;
            let mask = ProjectionMask::columns(
                builder.parquet_schema(),
                ["person", "date", "domain", "healthy"],
            );
            let mut keys = Vec::new();
            for batch in builder.with_projection(mask).build().map_err(vault_error(path))? {
                let batch =
                    batch.map_err(|e| Error::internal(format!("reading decisions: {e}")))?;
                let person = batch.column(0).as_primitive::<Int64Type>();
                let date = batch.column(1).as_primitive::<Date32Type>();
                let domain = batch.column(2).as_dictionary::<UInt8Type>();
                let names = domain.values().as_string::<i32>();
                let domains: Vec<u64> = (0..names.len())
                    .map(|i| Domain::parse(names.value(i)).map(|d| d.index() as u64))
                    .collect::<Option<_>>()
                    .ok_or_else(|| Error::Integrity {
                        file: path.clone(),
                        line: None,
                        problem: "a stored decision has a domain outside the contract".into(),
                    })?;
                let healthy = batch.column(3).as_boolean();
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
        })
        .collect::<Result<_>>()?;
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

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) -> Result<()> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(
        Shared::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .map_err(|e| Error::internal(format!("building {}: {e}", path.display())))?;
    let file = File::create(path).at("creating", path)?;
    let failed = |e: parquet::errors::ParquetError| {
        Error::internal(format!("writing {}: {e}", path.display()))
    };
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).map_err(failed)?;
    writer.write(&batch).map_err(failed)?;
    writer.into_inner().map_err(failed)?.sync_all().at("flushing", path)
}

/// The per-person columns of `people.parquet` besides the degrees.
struct PerPerson<'a> {
    ids: &'a [i64],
    community: &'a [u32],
    component: Vec<u32>,
    cores: Vec<u32>,
    clustering: Vec<f64>,
}

/// Writes `people.parquet`: ID, community found, component, core, clustering, and the
/// out/in/mutual degree of every tie kind.
fn write_people(path: &Path, person: PerPerson<'_>, degrees: &metrics::Degrees) -> Result<()> {
    let mut people: Vec<(&str, ArrayRef)> = vec![
        ("person", Shared::new(Int64Array::from(person.ids.to_vec()))),
        ("community", Shared::new(UInt32Array::from(person.community.to_vec()))),
        ("component", Shared::new(UInt32Array::from(person.component))),
        ("core", Shared::new(UInt32Array::from(person.cores))),
        ("clustering", Shared::new(Float64Array::from(person.clustering))),
    ];
    let names: Vec<String> = TieKind::ALL
        .iter()
        .flat_map(|k| ["out", "in", "mutual"].map(|d| format!("{d}_{}", k.as_str())))
        .collect();
    for (position, kind) in TieKind::ALL.iter().enumerate() {
        for (offset, counts) in
            [&degrees.out, &degrees.incoming, &degrees.mutual].into_iter().enumerate()
        {
            let name = names[position * 3 + offset].as_str();
            people.push((name, Shared::new(UInt32Array::from(counts[kind.index()].clone()))));
        }
    }
    write_parquet(path, people)
}

/// Computes exposure in parallel chunks of people, each written to its own Parquet part in
/// `dir`, so computing and writing both use every core. Returns the rows written.
fn write_exposure(
    dir: &Path,
    capped: &Network,
    activity: &[Activity],
    ids: &[i64],
) -> Result<usize> {
    use rayon::prelude::*;

    std::fs::create_dir(dir).at("creating folder", dir)?;
    let prepared = exposure::prepare(capped.nodes, activity);
    let chunk = 1 << 15;
    let parts = capped.nodes.div_ceil(chunk);
    let rows: Vec<usize> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let range = part * chunk..((part + 1) * chunk).min(capped.nodes);
            let table = exposure::compute_range(capped, &prepared, range);
            let rows = table.len();
            let path = dir.join(format!("part-{part:05}.parquet"));
            write_parquet(
                &path,
                vec![
                    (
                        "person",
                        Shared::new(
                            table.node.iter().map(|&u| ids[u as usize]).collect::<Int64Array>(),
                        ),
                    ),
                    ("domain", Shared::new(UInt8Array::from(table.domain))),
                    ("week", Shared::new(Int32Array::from(table.week))),
                    ("kind", Shared::new(UInt8Array::from(table.kind))),
                    ("exposure", Shared::new(Float64Array::from(table.exposure))),
                    ("weight", Shared::new(Float64Array::from(table.weight))),
                ],
            )?;
            Ok(rows)
        })
        .collect::<Result<_>>()?;
    Ok(rows.iter().sum())
}

/// The record of artifacts already stored with these settings, if any.
fn existing(dir: &Path) -> Result<Option<GraphRecord>> {
    let path = dir.join("graph.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).at("reading", &path)?;
    serde_json::from_str(&text).map(Some).map_err(|e| Error::Integrity {
        file: path.clone(),
        line: None,
        problem: e.to_string(),
    })
}

/// Runs the graph stage on the newest snapshot.
pub fn run(
    workspace: &Workspace,
    detector: Detector,
    settings: &Settings,
    progress: Progress,
) -> Result<GraphReport> {
    let (snapshot, snapshot_dir, _) = crate::privacy::release::newest_snapshot(workspace)?;
    let cap = workspace.policy().privacy.degree_cap as usize;
    let settings_json =
        serde_json::to_value(settings).map_err(|e| Error::internal(e.to_string()))?;
    let key = hex(&Sha256::digest(format!("{cap}/{detector:?}/{settings_json}").as_bytes()));
    let dir = snapshot_dir.join(format!("graph-{}", &key[..12]));
    if let Some(record) = existing(&dir)? {
        return Ok(GraphReport { dir, reused: true, record });
    }

    let bar = progress.bar("graph", 7);
    let mut seconds = Vec::new();
    let mut step = |name: &str, started: Instant| {
        seconds.push((name.to_owned(), started.elapsed().as_secs_f64()));
        bar.inc(1);
    };

    let started = Instant::now();
    let nodes = read_nodes(&snapshot_dir)?;
    let network = Network::new(nodes.ids.len(), read_arcs(&snapshot_dir, &nodes)?);
    step("build", started);

    let started = Instant::now();
    let undirected = network.undirected();
    let degrees = metrics::degrees(&network);
    let clustering = metrics::clustering(&undirected);
    let cores = metrics::core_numbers(&undirected);
    let (component, sizes) = metrics::components(&undirected);
    let summary: GraphSummary = metrics::summarize(
        &network,
        &undirected,
        &clustering,
        &cores,
        &sizes,
        &nodes.community,
        nodes.communities,
    );
    step("metrics", started);

    let started = Instant::now();
    let capped = degree_cap(&network, cap, &nodes.ids);
    step("cap", started);

    let started = Instant::now();
    let partition = detector.detect(&undirected, settings)?;
    let modularity = super::community::modularity(&undirected, &partition.membership, 1.0);
    step("communities", started);

    let staging = snapshot_dir.join(format!(".graph-staging-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).at("removing", &staging)?;
    }
    std::fs::create_dir(&staging).at("creating folder", &staging)?;
    let ids = &nodes.ids;

    let started = Instant::now();
    let activity = read_activity(&snapshot_dir, &nodes)?;
    step("activity", started);
    let started = Instant::now();
    let exposure_rows = write_exposure(&staging.join("exposure"), &capped, &activity, ids)?;
    step("exposure", started);

    let started = Instant::now();
    let per_person =
        PerPerson { ids, community: &partition.membership, component, cores, clustering };
    write_people(&staging.join("people.parquet"), per_person, &degrees)?;

    let arcs = capped.arc_list();
    write_parquet(
        &staging.join("ties_capped.parquet"),
        vec![
            (
                "from_person",
                Shared::new(arcs.iter().map(|a| ids[a.from as usize]).collect::<Int64Array>()),
            ),
            (
                "to_person",
                Shared::new(arcs.iter().map(|a| ids[a.to as usize]).collect::<Int64Array>()),
            ),
            ("kind", Shared::new(arcs.iter().map(|a| a.kind).collect::<UInt8Array>())),
            ("weight", Shared::new(arcs.iter().map(|a| a.weight).collect::<Float32Array>())),
            (
                "mutual",
                Shared::new(capped.mutual.iter().map(|m| Some(*m)).collect::<BooleanArray>()),
            ),
        ],
    )?;
    step("write", started);
    bar.finish_and_clear();

    let record = GraphRecord {
        snapshot,
        degree_cap: cap,
        settings: settings_json,
        summary: serde_json::to_value(&summary).map_err(|e| Error::internal(e.to_string()))?,
        communities: partition.communities(),
        modularity,
        capped_nominations: capped.arcs(),
        exposure_rows,
        seconds,
    };
    let text = serde_json::to_string_pretty(&record).map_err(|e| Error::internal(e.to_string()))?;
    crate::workspace::write_private_file(&staging.join("graph.json"), text.as_bytes())?;
    File::open(&staging).and_then(|d| d.sync_all()).at("flushing folder", &staging)?;
    std::fs::rename(&staging, &dir).at("storing the graph artifacts", &dir)?;
    tracing::info!(communities = record.communities, "graph artifacts stored");
    Ok(GraphReport { dir, reused: false, record })
}

/// The arrays kept for a column, for readers of `people.parquet`.
pub fn column_names() -> Vec<String> {
    let mut names = vec!["person", "community", "component", "core", "clustering"]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for kind in TieKind::ALL {
        for direction in ["out", "in", "mutual"] {
            names.push(format!("{direction}_{}", kind.as_str()));
        }
    }
    names
}

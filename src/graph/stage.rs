//! `kith graph`: reads the newest snapshot, builds everything this stage computes, and stores
//! it inside the snapshot so later stages and reruns reuse it.
//!
//! Artifacts go to `vault/snapshot-N/graph-KEY/`, where KEY digests the settings (degree cap,
//! quality function, resolution, seed, iterations); they are written into a staging folder
//! and renamed into place, so a folder that exists is whole. Asking again with the same
//! settings reuses it. Files: `people.parquet` (per-person metrics and community),
//! `ties_capped.parquet` (the capped graph), the `exposure/` folder of `part-NNNNN.parquet`
//! files (one per chunk of people, written in parallel), and `graph.json` (settings, the
//! summary, timings). Reading the snapshot lives in [`super::snapshot`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc as Shared;
use std::time::Instant;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    UInt8Array, UInt32Array,
};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cap::degree_cap;
use super::community::{Detector, Settings};
use super::exposure::{self, Activity};
use super::metrics::{self, GraphSummary};
use super::network::Network;
use super::snapshot::{read_activity, read_arcs, read_nodes};
use crate::error::{Error, IoContext, Result};
use crate::intake::contract::TieKind;
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

//! kith's Leiden on a `kith synth` export, for the side-by-side run against igraph
//! (`benches/leiden_vs_igraph.sh`). Not a criterion benchmark: it times one run, as the
//! igraph side does, and prints one JSON line.
//!
//! Usage: `cargo bench --bench leiden -- EXPORT_DIR OUT_DIR`. Builds the undirected graph of
//! every nomination in the export (weights summed per pair), writes `edges.tsv` and
//! `truth.txt` to `OUT_DIR` for igraph, runs kith's Leiden with modularity (γ = 1, two
//! iterations, igraph's defaults for `community_leiden` with that objective), and reports
//! time, modularity and recovery of the hidden clusters. `KITH_BENCH_SHUFFLE=1` numbers
//! people in random order instead of the export's.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use kith::graph::community::{CommunityDetector, Quality, Settings, modularity};
use kith::graph::compare::{ari, nmi};
use kith::graph::leiden::KithLeiden;
use kith::graph::network::{Arc, Network};
use kith::intake::contract::TieKind;

fn column(header: &csv::StringRecord, name: &str) -> usize {
    header.iter().position(|h| h == name).expect("a contract column")
}

fn main() {
    let paths: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let (export, out) = (Path::new(&paths[1]), Path::new(&paths[2]));

    let mut people = csv::Reader::from_path(export.join("people.csv")).expect("people.csv");
    let header = people.headers().expect("header").clone();
    let id_at = column(&header, "source_id");
    let mut order: Vec<String> = Vec::new();
    for row in people.records() {
        order.push(row.expect("row")[id_at].to_owned());
    }
    // With KITH_BENCH_SHUFFLE=1 people are numbered in an order unrelated to the export's
    // (by a digest of their source_id): both tools then see a graph with no locality to use.
    if std::env::var("KITH_BENCH_SHUFFLE").is_ok_and(|v| v == "1") {
        use sha2::{Digest, Sha256};
        order.sort_by_cached_key(|id| Sha256::digest(id.as_bytes()));
    }
    let mut index: HashMap<String, u32> = HashMap::new();
    for id in order {
        let next = index.len() as u32;
        index.entry(id).or_insert(next);
    }
    let mut truth = vec![0u32; index.len()];
    let mut clusters = csv::Reader::from_path(export.join("truth_people.csv")).expect("truth");
    for row in clusters.records() {
        let row = row.expect("row");
        if let Some(&u) = index.get(&row[0]) {
            truth[u as usize] = row[1].parse().expect("a cluster number");
        }
    }
    let mut ties = csv::Reader::from_path(export.join("ties.csv")).expect("ties.csv");
    let header = ties.headers().expect("header").clone();
    let (from_at, to_at, kind_at) =
        (column(&header, "from_id"), column(&header, "to_id"), column(&header, "kind"));
    let mut nominations = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for row in ties.records() {
        let row = row.expect("row");
        let (Some(&a), Some(&b)) = (index.get(&row[from_at]), index.get(&row[to_at])) else {
            continue;
        };
        let kind = TieKind::parse(&row[kind_at]).map_or(5, |k| k.index() as u8);
        if a != b && seen.insert((a, b, kind)) {
            nominations.push(Arc { from: a, to: b, kind, weight: 1.0 });
        }
    }
    let graph = Network::new(index.len(), nominations).undirected();

    std::fs::create_dir_all(out).expect("output folder");
    let mut edges = std::io::BufWriter::new(std::fs::File::create(out.join("edges.tsv")).unwrap());
    for u in 0..index.len() {
        for i in graph.range(u) {
            let v = graph.others[i] as usize;
            if u < v {
                writeln!(edges, "{u}\t{v}\t{}", graph.weights[i]).unwrap();
            }
        }
    }
    let mut labels = std::io::BufWriter::new(std::fs::File::create(out.join("truth.txt")).unwrap());
    for c in &truth {
        writeln!(labels, "{c}").unwrap();
    }
    drop((edges, labels));

    let settings =
        Settings { quality: Quality::Modularity, resolution: 1.0, seed: 1, iterations: 2 };
    let started = Instant::now();
    let partition = KithLeiden.detect(&graph, &settings).expect("Leiden runs");
    let seconds = started.elapsed().as_secs_f64();
    let found = &partition.membership;
    let line = serde_json::json!({
        "tool": "kith",
        "people": index.len(),
        "seconds": seconds,
        "modularity": modularity(&graph, found, 1.0),
        "communities": partition.communities(),
        "nmi": nmi(&truth, found),
        "ari": ari(&truth, found),
    });
    std::io::stdout().write_all(format!("{line}\n").as_bytes()).unwrap();
}

//! Community detection behind a small trait, so the algorithm can be swapped.
//!
//! The implementation is the `leiden-rs` crate's Leiden (Traag, Waltman and van Eck 2019),
//! with modularity or the Constant Potts Model, a resolution, edge weights and a seed. Leiden's
//! refinement step keeps communities connected; kith checks that on every result anyway and
//! splits a community that is not, so the guarantee does not rest on one crate's version.
//! Communities are internal: they feed the model and diagnostics, never a release key.

use leiden_rs::GraphDataBuilder;
use leiden_rs::leiden::{Leiden, LeidenConfig, QualityType};
use serde::Serialize;

use super::network::Adjacency;
use crate::error::{Error, Result};

/// The default CPM resolution. Chosen by recovery of the planted clusters of `kith synth`
/// populations (docs/graph.md has the sweep): at 10,000 and 200,000 people it gave the best
/// adjusted Rand index of the settings tried, where modularity's resolution limit starts to
/// merge clusters at the larger size.
pub const DEFAULT_CPM_RESOLUTION: f64 = 0.01;

/// Which quality function to optimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Quality {
    /// Newman-Girvan modularity; merges groups smaller than about √(2m) (resolution limit).
    Modularity,
    /// The Constant Potts Model: a community must be denser than the resolution.
    Cpm,
}

/// Which implementation of Leiden runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Detector {
    /// kith's own Leiden (`graph::leiden`).
    Kith,
    /// The `leiden-rs` crate.
    LeidenRs,
}

impl Detector {
    /// Runs the chosen implementation.
    pub fn detect(self, graph: &Adjacency, settings: &Settings) -> Result<Partition> {
        match self {
            Detector::Kith => super::leiden::KithLeiden.detect(graph, settings),
            Detector::LeidenRs => LeidenRs.detect(graph, settings),
        }
    }
}

/// Settings of a community detection run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Settings {
    /// Quality function.
    pub quality: Quality,
    /// Resolution γ.
    pub resolution: f64,
    /// Seed of the random choices.
    pub seed: u64,
    /// Leiden iterations (local moving, refinement, aggregation).
    pub iterations: usize,
}

/// A partition of the graph's nodes.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Community number of each node, from 0.
    pub membership: Vec<u32>,
    /// Value of the quality function.
    pub quality: f64,
}

impl Partition {
    /// Number of communities.
    pub fn communities(&self) -> usize {
        self.membership.iter().copied().max().map_or(0, |m| m as usize + 1)
    }
}

/// Something that partitions an undirected weighted graph.
pub trait CommunityDetector {
    /// Partitions `graph` (each edge in both rows, weights summed).
    fn detect(&self, graph: &Adjacency, settings: &Settings) -> Result<Partition>;
}

/// The `leiden-rs` implementation.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeidenRs;

impl CommunityDetector for LeidenRs {
    fn detect(&self, graph: &Adjacency, settings: &Settings) -> Result<Partition> {
        let nodes = graph.offsets.len() - 1;
        let failed = |error: leiden_rs::LeidenError| Error::internal(format!("Leiden: {error}"));
        let mut builder = GraphDataBuilder::new(nodes);
        for u in 0..nodes {
            for i in graph.range(u) {
                let v = graph.others[i] as usize;
                if u < v {
                    builder.add_edge(u, v, f64::from(graph.weights[i])).map_err(failed)?;
                }
            }
        }
        let data = builder.build().map_err(failed)?;
        let config = LeidenConfig {
            resolution: settings.resolution,
            seed: Some(settings.seed),
            quality: match settings.quality {
                Quality::Modularity => QualityType::Modularity,
                Quality::Cpm => QualityType::CPM,
            },
            max_iterations: settings.iterations,
            ..LeidenConfig::default()
        };
        let output = Leiden::new(config).run(&data).map_err(failed)?;
        let membership: Vec<u32> =
            (0..nodes).map(|u| output.partition.community_of(u) as u32).collect();
        Ok(Partition { membership: connected(graph, &membership), quality: output.quality })
    }
}

/// Splits every community into its connected parts and renumbers communities from 0 in order
/// of their first node.
pub fn connected(graph: &Adjacency, membership: &[u32]) -> Vec<u32> {
    let nodes = membership.len();
    let mut label = vec![u32::MAX; nodes];
    let mut next = 0u32;
    let mut stack = Vec::new();
    for start in 0..nodes {
        if label[start] != u32::MAX {
            continue;
        }
        label[start] = next;
        stack.push(start);
        while let Some(u) = stack.pop() {
            for &v in graph.neighbours(u) {
                let v = v as usize;
                if label[v] == u32::MAX && membership[v] == membership[u] {
                    label[v] = next;
                    stack.push(v);
                }
            }
        }
        next += 1;
    }
    label
}

/// Newman-Girvan modularity of a partition at resolution γ, computed by kith itself so that
/// results of any detector can be compared on one scale.
pub fn modularity(graph: &Adjacency, membership: &[u32], resolution: f64) -> f64 {
    let nodes = membership.len();
    let strength: Vec<f64> =
        (0..nodes).map(|u| graph.range(u).map(|i| f64::from(graph.weights[i])).sum()).collect();
    let two_m: f64 = strength.iter().sum();
    if two_m == 0.0 {
        return 0.0;
    }
    let communities = membership.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut inside = vec![0f64; communities];
    let mut total = vec![0f64; communities];
    for u in 0..nodes {
        let c = membership[u] as usize;
        total[c] += strength[u];
        for i in graph.range(u) {
            if membership[graph.others[i] as usize] as usize == c {
                inside[c] += f64::from(graph.weights[i]);
            }
        }
    }
    inside.iter().zip(&total).map(|(&e, &a)| e / two_m - resolution * (a / two_m).powi(2)).sum()
}

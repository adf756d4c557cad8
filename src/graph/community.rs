//! Community detection behind a small trait, so the algorithm can be swapped.
//!
//! Two implementations of Leiden (Traag, Waltman and van Eck 2019) sit behind
//! [`CommunityDetector`]: kith's own ([`super::leiden`], the default, written for speed at a
//! million people) and the `leiden-rs` crate's ([`LeidenRs`], kept for comparison). Both take
//! modularity or the Constant Potts Model, a resolution, edge weights and a seed. Leiden's
//! refinement step keeps communities connected; kith checks that on every result anyway and
//! splits a community that is not, so the guarantee does not rest on one implementation.
//! Communities are internal: they feed the model and diagnostics, never a release key.

use leiden_rs::GraphDataBuilder;
use leiden_rs::leiden::{Leiden, LeidenConfig, QualityType};
use serde::Serialize;

use super::network::Adjacency;
use crate::error::{Error, Result};

/// The default CPM resolution. Chosen by recovery of the planted clusters of `kith synth`
/// populations (docs/graph.md has the sweep): of the settings tried it is the only one that
/// kept NMI above 0.95 and ARI above 0.85 at both 10,000 and 200,000 people. CPM γ = 0.02
/// scores a slightly higher ARI at 10,000 (0.890 against 0.878) but falls to 0.816 at
/// 200,000; modularity's resolution limit merges clusters at the larger size at every γ tried.
pub const DEFAULT_CPM_RESOLUTION: f64 = 0.01;

/// The default modularity resolution: γ = 1, Newman and Girvan's original definition.
pub const DEFAULT_MODULARITY_RESOLUTION: f64 = 1.0;

/// Which quality function to optimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Quality {
    /// Newman-Girvan modularity; merges groups smaller than about √(2m) (resolution limit).
    Modularity,
    /// The Constant Potts Model: a community must be denser than the resolution.
    Cpm,
}

impl Quality {
    /// The resolution used when none is given: [`DEFAULT_MODULARITY_RESOLUTION`] or
    /// [`DEFAULT_CPM_RESOLUTION`]. The two scales differ by orders of magnitude (γ multiplies
    /// a share of the total weight in one, a count of pairs in the other), so one default
    /// cannot serve both.
    pub fn default_resolution(self) -> f64 {
        match self {
            Quality::Modularity => DEFAULT_MODULARITY_RESOLUTION,
            Quality::Cpm => DEFAULT_CPM_RESOLUTION,
        }
    }
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
    /// Partitions `graph` (each edge in both rows, weights summed) into connected
    /// communities, returning the membership and the settings' quality of that membership.
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
        // The crate's own score describes its partition before the split into connected
        // parts, so the quality is recomputed on the partition actually returned.
        let membership = connected(graph, &membership);
        let quality = quality(graph, &membership, settings);
        Ok(Partition { membership, quality })
    }
}

/// Splits every community into its connected parts and renumbers communities from 0 in order
/// of their first node.
///
/// # Complexity
///
/// O(n + m) for n nodes and m edges: one depth-first search restricted to each community.
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

/// The value of the settings' quality function (at their resolution) for a partition.
///
/// # Complexity
///
/// O(n + m) for n nodes and m edges.
pub fn quality(graph: &Adjacency, membership: &[u32], settings: &Settings) -> f64 {
    match settings.quality {
        Quality::Modularity => modularity(graph, membership, settings.resolution),
        Quality::Cpm => cpm(graph, membership, settings.resolution),
    }
}

/// The Constant Potts Model value: weight inside communities minus γ per pair of members.
///
/// # Complexity
///
/// O(n + m) for n nodes and m edges.
pub fn cpm(graph: &Adjacency, membership: &[u32], resolution: f64) -> f64 {
    let communities = membership.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut inside = 0f64;
    let mut sizes = vec![0f64; communities];
    for u in 0..membership.len() {
        sizes[membership[u] as usize] += 1.0;
        for i in graph.range(u) {
            if membership[graph.others[i] as usize] == membership[u] {
                inside += f64::from(graph.weights[i]);
            }
        }
    }
    inside / 2.0 - resolution * sizes.iter().map(|n| n * (n - 1.0) / 2.0).sum::<f64>()
}

/// Newman-Girvan modularity of a partition at resolution γ, computed by kith itself so that
/// results of any detector can be compared on one scale.
///
/// # Complexity
///
/// O(n + m) for n nodes and m edges.
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

//! Network metrics per person and per graph: degrees by kind and direction, local clustering,
//! k-core numbers, connected components, reciprocity, assortativity and cohesion by declared
//! community.
//!
//! Written here rather than taken from petgraph: petgraph has no k-cores, clustering
//! coefficient or assortativity. Its algorithms do run on kith's adjacency through the traits
//! in [`super::visit`] (the tests check these components against petgraph's `tarjan_scc`),
//! but kith's components are one flat pass that also returns the sizes. Each function is
//! short and checked against a brute-force reference in the tests.

use rayon::prelude::*;
use serde::Serialize;

use super::network::{Adjacency, Network};
use crate::intake::contract::TieKind;

/// Per-person degree counts by kind.
#[derive(Debug, Clone, Default)]
pub struct Degrees {
    /// `out[kind][u]`: nominations `u` made of that kind.
    pub out: Vec<Vec<u32>>,
    /// `incoming[kind][u]`: nominations `u` received of that kind.
    pub incoming: Vec<Vec<u32>>,
    /// `mutual[kind][u]`: nominations `u` made of that kind that were returned (any kind).
    pub mutual: Vec<Vec<u32>>,
}

/// Degrees by kind, in, out and mutual.
pub fn degrees(network: &Network) -> Degrees {
    let kinds = TieKind::ALL.len();
    let mut degrees = Degrees {
        out: vec![vec![0; network.nodes]; kinds],
        incoming: vec![vec![0; network.nodes]; kinds],
        mutual: vec![vec![0; network.nodes]; kinds],
    };
    for u in 0..network.nodes {
        for i in network.out.range(u) {
            let kind = usize::from(network.out.kinds[i]);
            degrees.out[kind][u] += 1;
            degrees.incoming[kind][network.out.others[i] as usize] += 1;
            if network.mutual[i] {
                degrees.mutual[kind][u] += 1;
            }
        }
    }
    degrees
}

/// Local clustering coefficient of every node of an undirected simple graph: the share of
/// pairs of neighbours that are themselves neighbours (0 below degree 2).
pub fn clustering(graph: &Adjacency) -> Vec<f64> {
    let nodes = graph.offsets.len() - 1;
    (0..nodes)
        .into_par_iter()
        .map(|u| {
            let neighbours = graph.neighbours(u);
            let d = neighbours.len();
            if d < 2 {
                return 0.0;
            }
            let mut links = 0u64;
            for (position, &v) in neighbours.iter().enumerate() {
                links += sorted_overlap(&neighbours[position + 1..], graph.neighbours(v as usize));
            }
            links as f64 / (d * (d - 1) / 2) as f64
        })
        .collect()
}

/// Size of the intersection of two sorted lists.
fn sorted_overlap(a: &[u32], b: &[u32]) -> u64 {
    let (mut i, mut j, mut count) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                count += 1;
                i += 1;
                j += 1;
            }
        }
    }
    count
}

/// k-core number of every node (Batagelj and Zaveršnik's bucket algorithm, O(edges)).
pub fn core_numbers(graph: &Adjacency) -> Vec<u32> {
    let nodes = graph.offsets.len() - 1;
    let mut degree: Vec<usize> = (0..nodes).map(|u| graph.degree(u)).collect();
    let max = degree.iter().copied().max().unwrap_or(0);
    let mut bins = vec![0usize; max + 2];
    for &d in &degree {
        bins[d] += 1;
    }
    let mut start = 0;
    for bin in &mut bins {
        let count = *bin;
        *bin = start;
        start += count;
    }
    let mut order = vec![0usize; nodes];
    let mut position = vec![0usize; nodes];
    for u in 0..nodes {
        position[u] = bins[degree[u]];
        order[position[u]] = u;
        bins[degree[u]] += 1;
    }
    for d in (1..bins.len()).rev() {
        bins[d] = bins[d - 1];
    }
    bins[0] = 0;
    for i in 0..nodes {
        let u = order[i];
        for &v in graph.neighbours(u) {
            let v = v as usize;
            if degree[v] > degree[u] {
                let (dv, pv) = (degree[v], position[v]);
                let (pw, w) = (bins[dv], order[bins[dv]]);
                if u != w && v != w {
                    order.swap(pv, pw);
                    position[v] = pw;
                    position[w] = pv;
                }
                bins[dv] += 1;
                degree[v] -= 1;
            }
        }
    }
    degree.into_iter().map(|d| d as u32).collect()
}

/// Weakly connected components: a component number per node (numbered by smallest member)
/// and each component's size.
pub fn components(graph: &Adjacency) -> (Vec<u32>, Vec<u32>) {
    let nodes = graph.offsets.len() - 1;
    let mut label = vec![u32::MAX; nodes];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..nodes {
        if label[start] != u32::MAX {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0u32;
        label[start] = id;
        stack.push(start);
        while let Some(u) = stack.pop() {
            size += 1;
            for &v in graph.neighbours(u) {
                if label[v as usize] == u32::MAX {
                    label[v as usize] = id;
                    stack.push(v as usize);
                }
            }
        }
        sizes.push(size);
    }
    (label, sizes)
}

/// Whole-graph figures for the steward's summary.
#[derive(Debug, Clone, Serialize)]
pub struct GraphSummary {
    /// People in the graph.
    pub people: usize,
    /// Nominations.
    pub nominations: usize,
    /// Share of nominations returned.
    pub reciprocity: f64,
    /// Connected components.
    pub components: usize,
    /// The largest components' sizes, largest first (at most ten).
    pub largest_components: Vec<u32>,
    /// People with no tie at all.
    pub isolated: usize,
    /// Count of people by undirected degree, in bins 0, 1, 2-4, 5-9, 10-19, 20-49, 50+.
    pub degree_distribution: Vec<(String, usize)>,
    /// Newman's assortativity coefficient by declared community over nominations.
    pub community_assortativity: f64,
    /// Share of nominations inside the nominator's declared community.
    pub cohesion: f64,
    /// Mean local clustering coefficient.
    pub mean_clustering: f64,
    /// Largest k-core number.
    pub max_core: u32,
}

/// Newman's categorical assortativity and the within-group share of arcs.
pub fn assortativity(network: &Network, group: &[u32], groups: usize) -> (f64, f64) {
    let mut within = 0u64;
    let mut from_share = vec![0f64; groups];
    let mut to_share = vec![0f64; groups];
    let total = network.arcs() as f64;
    if total == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    for u in 0..network.nodes {
        for &v in network.out.neighbours(u) {
            let (a, b) = (group[u] as usize, group[v as usize] as usize);
            within += u64::from(a == b);
            from_share[a] += 1.0;
            to_share[b] += 1.0;
        }
    }
    let expected: f64 =
        from_share.iter().zip(&to_share).map(|(a, b)| a * b / (total * total)).sum();
    let observed = within as f64 / total;
    let r = if (1.0 - expected).abs() < f64::EPSILON {
        f64::NAN
    } else {
        (observed - expected) / (1.0 - expected)
    };
    (r, observed)
}

/// Builds the summary from the computed parts.
pub fn summarize(
    network: &Network,
    undirected: &Adjacency,
    clustering: &[f64],
    cores: &[u32],
    sizes: &[u32],
    group: &[u32],
    groups: usize,
) -> GraphSummary {
    let returned = network.mutual.iter().filter(|m| **m).count();
    let mut largest = sizes.to_vec();
    largest.sort_unstable_by(|a, b| b.cmp(a));
    largest.truncate(10);
    let bins: [(usize, usize, &str); 7] = [
        (0, 0, "0"),
        (1, 1, "1"),
        (2, 4, "2-4"),
        (5, 9, "5-9"),
        (10, 19, "10-19"),
        (20, 49, "20-49"),
        (50, usize::MAX, "50+"),
    ];
    let degree_distribution = bins
        .iter()
        .map(|&(low, high, label)| {
            let count = (0..network.nodes)
                .filter(|&u| (low..=high).contains(&undirected.degree(u)))
                .count();
            (label.to_owned(), count)
        })
        .collect();
    let (community_assortativity, cohesion) = assortativity(network, group, groups);
    GraphSummary {
        people: network.nodes,
        nominations: network.arcs(),
        reciprocity: if network.arcs() == 0 {
            0.0
        } else {
            returned as f64 / network.arcs() as f64
        },
        components: sizes.len(),
        largest_components: largest,
        isolated: (0..network.nodes).filter(|&u| undirected.degree(u) == 0).count(),
        degree_distribution,
        community_assortativity,
        cohesion,
        mean_clustering: if clustering.is_empty() {
            0.0
        } else {
            clustering.iter().sum::<f64>() / clustering.len() as f64
        },
        max_core: cores.iter().copied().max().unwrap_or(0),
    }
}

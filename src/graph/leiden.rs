//! kith's own Leiden (Traag, Waltman and van Eck 2019) on compressed rows, behind the same
//! `CommunityDetector` trait as the crate implementation.
//!
//! Written here because the `leiden-rs` crate takes over 80 s on a million-person graph on
//! two cores, and the stage's budget is a fraction of that. Each level runs the fast local
//! moving phase (a queue of nodes to revisit), then refines every community from singletons,
//! merging a node only into a well-connected sub-community it has ties to (which is what
//! keeps communities connected), then aggregates the refined communities into nodes whose
//! starting community is the unrefined one. Scratch arrays indexed by community replace hash
//! maps. Refinement merges greedily (the θ → 0 limit of the paper's randomised choice).
//!
//! Both quality functions are written as `Δ = k(v, C) − λ·a(v)·A(C)`: for CPM the node mass
//! `a` is its size and λ = γ; for modularity `a` is its strength and λ = γ / 2m.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::community::{CommunityDetector, Partition, Quality, Settings, connected};
use super::network::Adjacency;
use crate::error::Result;

/// Levels with fewer nodes than this are visited in random order; larger ones in node order.
const SHUFFLE_BELOW: usize = 1 << 16;

/// kith's Leiden.
#[derive(Debug, Clone, Copy, Default)]
pub struct KithLeiden;

/// A weighted undirected graph level: rows of (neighbour, weight), self-loops allowed.
struct Level {
    offsets: Vec<usize>,
    others: Vec<u32>,
    weights: Vec<f64>,
    mass: Vec<f64>,
}

impl Level {
    fn nodes(&self) -> usize {
        self.mass.len()
    }

    fn row(&self, u: usize) -> std::ops::Range<usize> {
        self.offsets[u]..self.offsets[u + 1]
    }
}

/// Per-community totals and a scratch row for the weights from one node to each community.
struct Scratch {
    weight_to: Vec<f64>,
    touched: Vec<u32>,
}

impl Scratch {
    fn new(size: usize) -> Scratch {
        Scratch { weight_to: vec![0.0; size], touched: Vec::new() }
    }

    /// Fills `weight_to` with v's tie weight to each neighbouring community (self-loops out).
    fn gather(
        &mut self,
        level: &Level,
        v: usize,
        community: &[u32],
        include: impl Fn(usize) -> bool,
    ) {
        for i in level.row(v) {
            let w = level.others[i] as usize;
            if w == v || !include(w) {
                continue;
            }
            let c = community[w] as usize;
            if self.weight_to[c] == 0.0 {
                self.touched.push(c as u32);
            }
            self.weight_to[c] += level.weights[i];
        }
    }

    fn clear(&mut self) {
        for &c in &self.touched {
            self.weight_to[c as usize] = 0.0;
        }
        self.touched.clear();
    }
}

/// The fast local moving phase: moves nodes to the community of best gain until none gains.
/// Returns whether any node moved.
fn move_nodes(level: &Level, community: &mut [u32], lambda: f64, rng: &mut ChaCha8Rng) -> bool {
    let n = level.nodes();
    let mut total = vec![0f64; n];
    let mut size = vec![0u32; n];
    for v in 0..n {
        total[community[v] as usize] += level.mass[v];
        size[community[v] as usize] += 1;
    }
    let mut empty: Vec<u32> = (0..n as u32).filter(|&c| size[c as usize] == 0).collect();
    // A large level is visited in node order: people arrive grouped the way their program
    // lists them (by site, team, household), so neighbours sit near each other in memory and
    // the first pass, which dominates the run, stays in cache. Small levels are shuffled, as
    // the paper does everywhere.
    let mut queue: std::collections::VecDeque<u32> = {
        let mut order: Vec<u32> = (0..n as u32).collect();
        if n < SHUFFLE_BELOW {
            order.shuffle(rng);
        }
        order.into()
    };
    let mut queued = vec![true; n];
    let mut scratch = Scratch::new(n);
    let mut moved = false;

    while let Some(v) = queue.pop_front() {
        let v = v as usize;
        queued[v] = false;
        let current = community[v] as usize;
        total[current] -= level.mass[v];
        size[current] -= 1;
        if size[current] == 0 {
            empty.push(current as u32);
        }

        scratch.gather(level, v, community, |_| true);
        let mut best = current;
        let mut best_gain = scratch.weight_to[current] - lambda * level.mass[v] * total[current];
        for &c in &scratch.touched {
            let c = c as usize;
            let gain = scratch.weight_to[c] - lambda * level.mass[v] * total[c];
            if gain > best_gain {
                best = c;
                best_gain = gain;
            }
        }
        if best_gain < 0.0
            && let Some(&alone) = empty.last()
        {
            best = alone as usize;
        }
        scratch.clear();

        if size[best] == 0 {
            // An empty best is either the node's own, just emptied community or the spare
            // taken from `empty`; both were the last entry pushed.
            debug_assert_eq!(empty.last().map(|&c| c as usize), Some(best));
            empty.pop();
        }
        total[best] += level.mass[v];
        size[best] += 1;
        community[v] = best as u32;
        if best != current {
            moved = true;
            for i in level.row(v) {
                let w = level.others[i] as usize;
                if !queued[w] && community[w] as usize != best {
                    queued[w] = true;
                    queue.push_back(w as u32);
                }
            }
        }
    }
    moved
}

/// Refines each community from singletons, merging only well-connected nodes into
/// well-connected sub-communities they have ties to. Returns the refined labels.
fn refine(level: &Level, community: &[u32], lambda: f64, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let n = level.nodes();
    let mut refined: Vec<u32> = (0..n as u32).collect();
    let mut total: Vec<f64> = level.mass.clone();
    let mut community_total = vec![0f64; n];
    for v in 0..n {
        community_total[community[v] as usize] += level.mass[v];
    }
    // Weight from each node (and so from each singleton sub-community) to the rest of its
    // community, kept up to date as sub-communities grow.
    let mut external: Vec<f64> = (0..n)
        .map(|v| {
            level
                .row(v)
                .filter(|&i| {
                    let w = level.others[i] as usize;
                    w != v && community[w] == community[v]
                })
                .map(|i| level.weights[i])
                .sum()
        })
        .collect();
    let mut singleton = vec![true; n];
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(rng);
    let mut scratch = Scratch::new(n);

    for &v in &order {
        let v = v as usize;
        if !singleton[v] {
            continue;
        }
        let c = community[v] as usize;
        let rest = community_total[c] - level.mass[v];
        if external[v] < lambda * level.mass[v] * rest {
            continue;
        }
        scratch.gather(level, v, &refined, |w| community[w] as usize == c);
        let mut best = refined[v] as usize;
        let mut best_gain = 0.0;
        for &r in &scratch.touched {
            let r = r as usize;
            if r == refined[v] as usize {
                continue;
            }
            let well_connected = external[r] >= lambda * total[r] * (community_total[c] - total[r]);
            let gain = scratch.weight_to[r] - lambda * level.mass[v] * total[r];
            if well_connected && gain >= best_gain {
                best = r;
                best_gain = gain;
            }
        }
        let own = refined[v] as usize;
        if best != own {
            let to_best = scratch.weight_to[best];
            total[best] += level.mass[v];
            total[own] -= level.mass[v];
            // The merged sub-community's ties to the rest: both sides' ties, minus the ties
            // between them, which are now inside.
            external[best] = external[best] + external[own] - 2.0 * to_best;
            refined[v] = best as u32;
            singleton[v] = false;
            singleton[best] = false;
        }
        scratch.clear();
    }
    refined
}

/// Renumbers labels to 0..k in order of first appearance.
fn renumber(labels: &mut [u32]) -> usize {
    let mut map = vec![u32::MAX; labels.len()];
    let mut next = 0u32;
    for label in labels.iter_mut() {
        let slot = &mut map[*label as usize];
        if *slot == u32::MAX {
            *slot = next;
            next += 1;
        }
        *label = *slot;
    }
    next as usize
}

/// Collapses each group of `labels` (renumbered 0..groups) into one node.
fn aggregate(level: &Level, labels: &[u32], groups: usize) -> Level {
    let mut mass = vec![0f64; groups];
    let mut starts = vec![0usize; groups + 1];
    for v in 0..level.nodes() {
        mass[labels[v] as usize] += level.mass[v];
        starts[labels[v] as usize + 1] += 1;
    }
    for g in 0..groups {
        starts[g + 1] += starts[g];
    }
    let mut members = vec![0u32; level.nodes()];
    let mut fill = starts.clone();
    for (v, &label) in labels.iter().enumerate() {
        let g = label as usize;
        members[fill[g]] = v as u32;
        fill[g] += 1;
    }
    let mut offsets = Vec::with_capacity(groups + 1);
    let mut others = Vec::new();
    let mut weights = Vec::new();
    let mut scratch = vec![0f64; groups];
    let mut touched: Vec<u32> = Vec::new();
    offsets.push(0);
    for g in 0..groups {
        for &v in &members[starts[g]..starts[g + 1]] {
            for i in level.row(v as usize) {
                let g = labels[level.others[i] as usize] as usize;
                if scratch[g] == 0.0 {
                    touched.push(g as u32);
                }
                scratch[g] += level.weights[i];
            }
        }
        touched.sort_unstable();
        for &g in &touched {
            others.push(g);
            weights.push(scratch[g as usize]);
            scratch[g as usize] = 0.0;
        }
        touched.clear();
        offsets.push(others.len());
    }
    Level { offsets, others, weights, mass }
}

impl CommunityDetector for KithLeiden {
    fn detect(&self, graph: &Adjacency, settings: &Settings) -> Result<Partition> {
        let nodes = graph.offsets.len() - 1;
        let weights: Vec<f64> = graph.weights.iter().map(|&w| f64::from(w)).collect();
        let strength: Vec<f64> =
            (0..nodes).map(|u| graph.range(u).map(|i| weights[i]).sum()).collect();
        let two_m: f64 = strength.iter().sum();
        let (mass, lambda) = match settings.quality {
            Quality::Cpm => (vec![1.0; nodes], settings.resolution),
            Quality::Modularity => {
                (strength, if two_m > 0.0 { settings.resolution / two_m } else { 0.0 })
            }
        };
        let base = Level {
            offsets: graph.offsets.iter().map(|&o| o as usize).collect(),
            others: graph.others.clone(),
            weights,
            mass,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let mut membership: Vec<u32> = (0..nodes as u32).collect();

        for _ in 0..settings.iterations.max(1) {
            let mut level_of_node: Vec<u32> = (0..nodes as u32).collect();
            let mut level = None::<Level>;
            let mut community = membership.clone();
            loop {
                let current = level.as_ref().unwrap_or(&base);
                move_nodes(current, &mut community, lambda, &mut rng);
                let groups = renumber(&mut community);
                if groups == current.nodes() {
                    break;
                }
                let mut refined = refine(current, &community, lambda, &mut rng);
                let refined_groups = renumber(&mut refined);
                let mut next_community = vec![0u32; refined_groups];
                for v in 0..current.nodes() {
                    next_community[refined[v] as usize] = community[v];
                }
                for slot in &mut level_of_node {
                    *slot = refined[*slot as usize];
                }
                level = Some(aggregate(current, &refined, refined_groups));
                community = next_community;
            }
            membership = level_of_node.iter().map(|&a| community[a as usize]).collect();
            renumber(&mut membership);
        }

        let membership = connected(graph, &membership);
        let quality = super::community::quality(graph, &membership, settings);
        Ok(Partition { membership, quality })
    }
}

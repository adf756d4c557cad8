//! The graph stage against brute-force references on random graphs, and Leiden on Zachary's
//! karate club.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;

use super::cap::degree_cap;
use super::community::{CommunityDetector, LeidenRs, Quality, Settings, modularity};
use super::compare::{ari, nmi};
use super::exposure::{ALL_KINDS, Activity, in_memory, relational};
use super::metrics::{clustering, components, core_numbers, degrees};
use super::network::{Arc, Network};

mod cap;

/// Zachary's karate club (1977), 34 members and 78 friendships, numbered from 0 as in
/// `NetworkX`'s `karate_club_graph`.
const KARATE: [(u32, u32); 78] = [
    (0, 1),
    (0, 2),
    (0, 3),
    (0, 4),
    (0, 5),
    (0, 6),
    (0, 7),
    (0, 8),
    (0, 10),
    (0, 11),
    (0, 12),
    (0, 13),
    (0, 17),
    (0, 19),
    (0, 21),
    (0, 31),
    (1, 2),
    (1, 3),
    (1, 7),
    (1, 13),
    (1, 17),
    (1, 19),
    (1, 21),
    (1, 30),
    (2, 3),
    (2, 7),
    (2, 8),
    (2, 9),
    (2, 13),
    (2, 27),
    (2, 28),
    (2, 32),
    (3, 7),
    (3, 12),
    (3, 13),
    (4, 6),
    (4, 10),
    (5, 6),
    (5, 10),
    (5, 16),
    (6, 16),
    (8, 30),
    (8, 32),
    (8, 33),
    (9, 33),
    (13, 33),
    (14, 32),
    (14, 33),
    (15, 32),
    (15, 33),
    (18, 32),
    (18, 33),
    (19, 33),
    (20, 32),
    (20, 33),
    (22, 32),
    (22, 33),
    (23, 25),
    (23, 27),
    (23, 29),
    (23, 32),
    (23, 33),
    (24, 25),
    (24, 27),
    (24, 31),
    (25, 31),
    (26, 29),
    (26, 33),
    (27, 33),
    (28, 31),
    (28, 33),
    (29, 32),
    (29, 33),
    (30, 32),
    (30, 33),
    (31, 32),
    (31, 33),
    (32, 33),
];

fn karate() -> Network {
    let arcs = KARATE.iter().map(|&(a, b)| Arc { from: a, to: b, kind: 0, weight: 1.0 }).collect();
    Network::new(34, arcs)
}

#[test]
fn leiden_finds_the_karate_club_communities() {
    let graph = karate().undirected();
    for seed in 0..5 {
        let settings =
            Settings { quality: Quality::Modularity, resolution: 1.0, seed, iterations: 10 };
        let partition = LeidenRs.detect(&graph, &settings).unwrap();
        let q = modularity(&graph, &partition.membership, 1.0);
        assert!(q >= 0.41, "seed {seed}: modularity {q}");
        assert!((q - partition.quality).abs() < 1e-9, "kith and the crate agree on the score");
        assert_connected(&graph, &partition.membership);
    }
}

fn assert_connected(graph: &super::network::Adjacency, membership: &[u32]) {
    let communities = membership.iter().copied().max().unwrap() as usize + 1;
    for c in 0..communities as u32 {
        let members: Vec<usize> = (0..membership.len()).filter(|&u| membership[u] == c).collect();
        let mut seen = HashSet::from([members[0]]);
        let mut stack = vec![members[0]];
        while let Some(u) = stack.pop() {
            for &v in graph.neighbours(u) {
                if membership[v as usize] == c && seen.insert(v as usize) {
                    stack.push(v as usize);
                }
            }
        }
        assert_eq!(seen.len(), members.len(), "community {c} is connected");
    }
}

#[test]
fn kiths_own_leiden_finds_the_karate_club_communities() {
    let graph = karate().undirected();
    for seed in 0..10 {
        let settings =
            Settings { quality: Quality::Modularity, resolution: 1.0, seed, iterations: 2 };
        let partition = super::leiden::KithLeiden.detect(&graph, &settings).unwrap();
        let q = modularity(&graph, &partition.membership, 1.0);
        assert!(q >= 0.41, "seed {seed}: modularity {q}");
        assert_connected(&graph, &partition.membership);
    }
}

#[test]
fn partition_agreement_scores_behave() {
    let a = [0, 0, 1, 1, 2, 2];
    assert!((nmi(&a, &[5, 5, 7, 7, 9, 9]) - 1.0).abs() < 1e-12);
    assert!((ari(&a, &[5, 5, 7, 7, 9, 9]) - 1.0).abs() < 1e-12);
    assert!(ari(&a, &[0, 1, 0, 1, 0, 1]) < 0.0);
    assert!(nmi(&a, &[0, 0, 0, 0, 0, 0]).abs() < 1e-12);
}

/// A random directed multiplex graph on up to 24 people.
fn random_network() -> impl Strategy<Value = Network> {
    (2usize..24).prop_flat_map(|nodes| {
        let arc = (0..nodes as u32, 0..nodes as u32, 0u8..6, 1u32..=10);
        prop::collection::vec(arc, 0..120).prop_map(move |raw| {
            let mut seen = HashSet::new();
            let arcs = raw
                .into_iter()
                .filter(|&(a, b, k, _)| a != b && seen.insert((a, b, k)))
                .map(|(from, to, kind, w)| Arc { from, to, kind, weight: w as f32 / 10.0 })
                .collect();
            Network::new(nodes, arcs)
        })
    })
}

fn neighbour_sets(network: &Network) -> Vec<BTreeSet<usize>> {
    let mut sets = vec![BTreeSet::new(); network.nodes];
    for arc in network.arc_list() {
        sets[arc.from as usize].insert(arc.to as usize);
        sets[arc.to as usize].insert(arc.from as usize);
    }
    sets
}

fn brute_cores(sets: &[BTreeSet<usize>]) -> Vec<u32> {
    let n = sets.len();
    let mut core = vec![0u32; n];
    for k in 1..=n {
        let mut alive = vec![true; n];
        loop {
            let drop: Vec<usize> = (0..n)
                .filter(|&u| alive[u] && sets[u].iter().filter(|&&v| alive[v]).count() < k)
                .collect();
            if drop.is_empty() {
                break;
            }
            for u in drop {
                alive[u] = false;
            }
        }
        (0..n).filter(|&u| alive[u]).for_each(|u| core[u] = k as u32);
    }
    core
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn metrics_match_brute_force(network in random_network()) {
        let arcs = network.arc_list();
        let degrees = degrees(&network);
        for u in 0..network.nodes {
            for kind in 0..6u8 {
                let out = arcs.iter().filter(|a| a.from as usize == u && a.kind == kind).count();
                let inn = arcs.iter().filter(|a| a.to as usize == u && a.kind == kind).count();
                let mutual = arcs
                    .iter()
                    .filter(|a| a.from as usize == u && a.kind == kind)
                    .filter(|a| arcs.iter().any(|b| b.from == a.to && b.to == a.from))
                    .count();
                prop_assert_eq!(degrees.out[kind as usize][u] as usize, out);
                prop_assert_eq!(degrees.incoming[kind as usize][u] as usize, inn);
                prop_assert_eq!(degrees.mutual[kind as usize][u] as usize, mutual);
            }
        }

        let undirected = network.undirected();
        let sets = neighbour_sets(&network);
        let local = clustering(&undirected);
        for u in 0..network.nodes {
            let around: Vec<usize> = sets[u].iter().copied().collect();
            let d = around.len();
            let links = around.iter().enumerate()
                .flat_map(|(i, &v)| around[i + 1..].iter().map(move |&w| (v, w)))
                .filter(|&(v, w)| sets[v].contains(&w))
                .count();
            let expected = if d < 2 { 0.0 } else { links as f64 / (d * (d - 1) / 2) as f64 };
            prop_assert!((local[u] - expected).abs() < 1e-12);
        }
        prop_assert_eq!(core_numbers(&undirected), brute_cores(&sets));

        let (label, sizes) = components(&undirected);
        for u in 0..network.nodes {
            for &v in &sets[u] {
                prop_assert_eq!(label[u], label[v]);
            }
        }
        prop_assert_eq!(sizes.iter().sum::<u32>() as usize, network.nodes);
        let distinct: HashSet<u32> = label.iter().copied().collect();
        prop_assert_eq!(distinct.len(), sizes.len());

        // petgraph's strongly connected components on the symmetric projection, run through
        // the `visit` traits, are the components.
        let petgraph_components = petgraph::algo::tarjan_scc(&undirected);
        prop_assert_eq!(petgraph_components.len(), sizes.len());
        for component in petgraph_components {
            let first = label[component[0] as usize];
            prop_assert!(component.iter().all(|&u| label[u as usize] == first));
            prop_assert_eq!(component.len(), sizes[first as usize] as usize);
        }
    }

    #[test]
    fn the_cap_bounds_both_degrees_and_keeps_only_real_ties(
        network in random_network(),
        cap in 1usize..5,
    ) {
        let ids: Vec<i64> = (0..network.nodes as i64).map(|i| i * 7919 % 104_729).collect();
        let capped = degree_cap(&network, cap, &ids);
        let all: HashSet<(u32, u32, u8)> =
            network.arc_list().iter().map(|a| (a.from, a.to, a.kind)).collect();
        for arc in capped.arc_list() {
            prop_assert!(all.contains(&(arc.from, arc.to, arc.kind)));
        }
        for u in 0..network.nodes {
            prop_assert!(capped.out.degree(u) <= cap);
            prop_assert!(capped.incoming.degree(u) <= cap);
        }
        prop_assert_eq!(degree_cap(&network, cap, &ids).arc_list(), capped.arc_list());
        let roomy = degree_cap(&network, 1000, &ids);
        prop_assert_eq!(roomy.arc_list(), network.arc_list());
    }

    #[test]
    fn both_exposure_paths_agree(
        network in random_network(),
        raw in prop::collection::vec((0u32..24, 0u8..8, 0i32..3, 1u32..4, 0u32..4), 0..60),
    ) {
        let mut seen = HashSet::new();
        let activity: Vec<Activity> = raw
            .into_iter()
            .filter(|&(node, ..)| (node as usize) < network.nodes)
            .filter(|&(node, domain, week, ..)| seen.insert((node, domain, week)))
            .map(|(node, domain, week, n, h)| Activity {
                node, domain, week, decisions: f64::from(n), healthy: f64::from(h.min(n)),
            })
            .collect();
        let memory = in_memory(&network, &activity);
        let plan = relational(&network, &activity).unwrap();
        let reference = brute_exposure(&network, &activity);
        for table in [&memory, &plan] {
            prop_assert_eq!(table.node.len(), reference.len());
            for (i, (&(node, domain, week, kind), &(share, weight))) in
                reference.iter().enumerate()
            {
                prop_assert_eq!(
                    (table.node[i], table.domain[i], table.week[i], table.kind[i]),
                    (node, domain, week, kind)
                );
                prop_assert!((table.exposure[i] - share).abs() < 1e-12);
                prop_assert!((table.weight[i] - weight).abs() < 1e-9);
            }
        }
        for (i, &share) in memory.exposure.iter().enumerate() {
            prop_assert!((0.0..=1.0).contains(&share));
            prop_assert!(memory.kind[i] == ALL_KINDS || memory.kind[i] < 6);
        }
    }
}

/// Exposure straight from its definition: per (person, domain, week, kind), and for all kinds
/// together, Σ w·healthy over Σ w·decisions of the people named, where the sum is positive.
fn brute_exposure(
    network: &Network,
    activity: &[Activity],
) -> std::collections::BTreeMap<(u32, u8, i32, u8), (f64, f64)> {
    let mut sums = std::collections::BTreeMap::<(u32, u8, i32, u8), (f64, f64)>::new();
    for arc in network.arc_list() {
        for a in activity.iter().filter(|a| a.node == arc.to) {
            for kind in [arc.kind, ALL_KINDS] {
                let cell = sums.entry((arc.from, a.domain, a.week, kind)).or_default();
                cell.0 += f64::from(arc.weight) * a.healthy;
                cell.1 += f64::from(arc.weight) * a.decisions;
            }
        }
    }
    sums.into_iter()
        .filter(|(_, (_, weight))| *weight > 0.0)
        .map(|(key, (healthy, weight))| (key, (healthy / weight, weight)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_detector_returns_connected_communities_and_their_quality(
        network in random_network(),
        seed in 0u64..100,
        cpm in any::<bool>(),
    ) {
        let graph = network.undirected();
        let settings = if cpm {
            Settings { quality: Quality::Cpm, resolution: 0.05, seed, iterations: 2 }
        } else {
            Settings { quality: Quality::Modularity, resolution: 1.0, seed, iterations: 2 }
        };
        let detectors: [&dyn CommunityDetector; 2] = [&LeidenRs, &super::leiden::KithLeiden];
        for detector in detectors {
            let partition = detector.detect(&graph, &settings).unwrap();
            prop_assert_eq!(partition.membership.len(), network.nodes);
            assert_connected(&graph, &partition.membership);
            let score = super::community::quality(&graph, &partition.membership, &settings);
            prop_assert!((score - partition.quality).abs() < 1e-9);
        }
    }
}

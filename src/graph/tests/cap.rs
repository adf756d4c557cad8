//! The degree cap against its rule as the module docs state it, computed naively, and how far
//! the removal of one person reaches through the cap.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use proptest::prelude::*;

use super::random_network;
use crate::graph::cap::degree_cap;
use crate::graph::network::{Arc, Network};

/// `TieKind` indices from the closest kind to the least close: spouse, family, friend,
/// coworker, neighbor, other.
const CLOSEST_FIRST: [u8; 6] = [1, 2, 0, 3, 4, 5];

/// A tie as a set member: (from, to, kind).
type Tie = (u32, u32, u8);

/// The rule's ranking key, smaller first: returned, heavier, closer kind, lower ID of the
/// other end. Positive `f32` bit patterns sort as their values do.
fn rank(mutual: bool, arc: &Arc, other_id: i64) -> (bool, Reverse<u32>, usize, i64) {
    let closeness = CLOSEST_FIRST.iter().position(|&k| k == arc.kind).expect("a tie kind");
    (!mutual, Reverse(arc.weight.to_bits()), closeness, other_id)
}

/// Step one of the rule: every person's `cap` strongest nominations made, with whether each
/// is returned.
fn first_step(arcs: &[Arc], cap: usize, ids: &[i64]) -> Vec<(Arc, bool)> {
    let named: HashSet<(u32, u32)> = arcs.iter().map(|a| (a.from, a.to)).collect();
    let mut made: BTreeMap<u32, Vec<(Arc, bool)>> = BTreeMap::new();
    for arc in arcs {
        made.entry(arc.from).or_default().push((*arc, named.contains(&(arc.to, arc.from))));
    }
    let mut survivors = Vec::new();
    for (_, mut row) in made {
        row.sort_by_key(|(arc, mutual)| rank(*mutual, arc, ids[arc.to as usize]));
        survivors.extend(row.into_iter().take(cap));
    }
    survivors
}

/// Both steps of the rule: of the survivors of step one, every person's `cap` strongest
/// nominations received.
fn reference_cap(arcs: &[Arc], cap: usize, ids: &[i64]) -> BTreeSet<Tie> {
    let mut received: BTreeMap<u32, Vec<(Arc, bool)>> = BTreeMap::new();
    for (arc, mutual) in first_step(arcs, cap, ids) {
        received.entry(arc.to).or_default().push((arc, mutual));
    }
    let mut kept = BTreeSet::new();
    for (_, mut column) in received {
        column.sort_by_key(|(arc, mutual)| rank(*mutual, arc, ids[arc.from as usize]));
        kept.extend(column.into_iter().take(cap).map(|(a, _)| (a.from, a.to, a.kind)));
    }
    kept
}

fn ties(network: &Network) -> BTreeSet<Tie> {
    network.arc_list().iter().map(|a| (a.from, a.to, a.kind)).collect()
}

fn ties_of(ties: &BTreeSet<Tie>, person: u32) -> BTreeSet<Tie> {
    ties.iter().copied().filter(|&(a, b, _)| a == person || b == person).collect()
}

/// What removing `person` does to everyone else's capped ties.
struct Reach {
    /// People other than `person` whose capped ties differ.
    people: usize,
    /// Capped ties between other people that appear.
    added: usize,
    /// Capped ties between other people that disappear.
    removed: usize,
    /// a(p): step-one survivors that name `person`.
    named_by: usize,
}

fn reach(network: &Network, cap: usize, ids: &[i64], person: u32) -> Reach {
    let arcs = network.arc_list();
    let rest: Vec<Arc> =
        arcs.iter().copied().filter(|a| a.from != person && a.to != person).collect();
    let before = ties(&degree_cap(network, cap, ids));
    let after = ties(&degree_cap(&Network::new(network.nodes, rest), cap, ids));

    let people = (0..network.nodes as u32)
        .filter(|&q| q != person && ties_of(&before, q) != ties_of(&after, q))
        .count();
    let among_others = |t: &&Tie| t.0 != person && t.1 != person;
    Reach {
        people,
        added: after.difference(&before).filter(among_others).count(),
        removed: before.difference(&after).filter(among_others).count(),
        named_by: first_step(&arcs, cap, ids).iter().filter(|(a, _)| a.to == person).count(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_cap_keeps_exactly_what_its_rule_names(
        network in random_network(),
        cap in 1usize..5,
        seed in 0i64..1000,
    ) {
        let ids: Vec<i64> =
            (0..network.nodes as i64).map(|i| (i * 7919 + seed) % 104_729).collect();
        let capped = ties(&degree_cap(&network, cap, &ids));
        prop_assert_eq!(capped, reference_cap(&network.arc_list(), cap, &ids));
    }

    #[test]
    fn one_removal_reaches_at_most_2d_plus_3a_people(
        network in random_network(),
        cap in 1usize..4,
        pick in 0u32..24,
    ) {
        let ids: Vec<i64> = (0..network.nodes as i64).map(|i| i * 7919 % 104_729).collect();
        let person = pick % network.nodes as u32;
        let reach = reach(&network, cap, &ids, person);
        prop_assert!(reach.people <= 2 * cap + 3 * reach.named_by, "{} people", reach.people);
        prop_assert!(reach.added <= cap + reach.named_by, "{} added", reach.added);
        prop_assert!(reach.removed <= reach.named_by, "{} removed", reach.removed);
    }
}

#[test]
fn each_ranking_rule_decides_before_the_next() {
    // Person 0 names 1..=5 with D = 1; each pair differs from the next in one rule only.
    let ids = [50, 40, 30, 20, 10, 60];
    let nominate = |to: u32, kind: u8, weight: f32| Arc { from: 0, to, kind, weight };
    let keep = |arcs: Vec<Arc>| {
        let capped = degree_cap(&Network::new(6, arcs), 1, &ids);
        capped.arc_list().iter().find(|a| a.from == 0).map(|a| a.to)
    };
    let returned = Arc { from: 1, to: 0, kind: 0, weight: 0.1 };

    // Returned beats heavier.
    assert_eq!(keep(vec![nominate(1, 5, 0.1), nominate(2, 1, 1.0), returned]), Some(1));
    // Heavier beats closer kind.
    assert_eq!(keep(vec![nominate(2, 5, 0.9), nominate(3, 1, 0.8)]), Some(2));
    // Closer kind beats lower ID: spouse (1) before family (2) before friend (0).
    assert_eq!(keep(vec![nominate(4, 0, 0.5), nominate(3, 2, 0.5)]), Some(3));
    assert_eq!(keep(vec![nominate(4, 2, 0.5), nominate(3, 1, 0.5), nominate(5, 0, 0.5)]), Some(3));
    // Equal in all else, the lower person ID wins (4 has ID 10, 3 has ID 20).
    assert_eq!(keep(vec![nominate(3, 3, 0.5), nominate(4, 3, 0.5)]), Some(4));
}

#[test]
fn one_person_can_reach_far_beyond_2d() {
    // At D = 1, each of 300 people u names p first and w second; w is otherwise named only by
    // x, more weakly. With p, every w keeps x; without p, every u's second nomination survives
    // step one and pushes x out at w, so u, w and x all change.
    let spokes = 300u32;
    let mut arcs = Vec::new();
    for i in 0..spokes {
        let (u, w, x) = (1 + 3 * i, 2 + 3 * i, 3 + 3 * i);
        arcs.push(Arc { from: u, to: 0, kind: 0, weight: 1.0 });
        arcs.push(Arc { from: u, to: w, kind: 0, weight: 0.5 });
        arcs.push(Arc { from: x, to: w, kind: 0, weight: 0.2 });
    }
    let nodes = 1 + 3 * spokes as usize;
    let ids: Vec<i64> = (0..nodes as i64).collect();
    let network = Network::new(nodes, arcs);

    let reach = reach(&network, 1, &ids, 0);
    assert_eq!(reach.named_by, spokes as usize);
    assert_eq!(reach.people, 3 * spokes as usize);
    assert!(reach.people > 2 * 300, "far beyond 2D");
    assert!(reach.people <= 2 + 3 * reach.named_by);
}

//! The degree cap: the projection of the graph to at most D nominations made and D received
//! per person, which every released contact statistic is computed on.
//!
//! The rule, deterministic and documented in `docs/graph.md`: rank a person's ties by
//! (1) returned before one-sided, (2) heavier weight first, (3) closer kind first (spouse,
//! family, friend, coworker, neighbor, other), (4) the other person's random ID as the final
//! tie-break. Keep each person's D best nominations made; then, among the survivors, keep each
//! person's D best nominations received by the same ranking. Both degrees end at most D, so
//! one person's presence changes the capped graph at no more than 2D other people.

use super::network::{Arc, Network};

/// Closeness rank of a `TieKind` index (lower is closer).
fn closeness(kind: u8) -> u8 {
    // TieKind order is friend, spouse, family, coworker, neighbor, other.
    match kind {
        1 => 0,
        2 => 1,
        0 => 2,
        3 => 3,
        4 => 4,
        _ => 5,
    }
}

/// The ranking key of an arc (smaller is stronger) as seen from one end; `other_id` is the
/// person ID of the other end.
fn strength(mutual: bool, weight: f32, kind: u8, other_id: i64) -> (bool, u32, u8, i64) {
    let heavier_first = u32::MAX - (weight.clamp(0.0, 1.0) * 1_000_000.0) as u32;
    (!mutual, heavier_first, closeness(kind), other_id)
}

/// Projects `network` to at most `cap` nominations made and received per person.
pub fn degree_cap(network: &Network, cap: usize, ids: &[i64]) -> Network {
    let mut survivors: Vec<(Arc, bool)> = Vec::with_capacity(network.arcs());
    for u in 0..network.nodes {
        let mut arcs: Vec<usize> = network.out.range(u).collect();
        arcs.sort_by_key(|&i| {
            let v = network.out.others[i] as usize;
            strength(network.mutual[i], network.out.weights[i], network.out.kinds[i], ids[v])
        });
        for &i in arcs.iter().take(cap) {
            let arc = Arc {
                from: u as u32,
                to: network.out.others[i],
                kind: network.out.kinds[i],
                weight: network.out.weights[i],
            };
            survivors.push((arc, network.mutual[i]));
        }
    }

    survivors.sort_by_key(|(arc, mutual)| {
        (arc.to, strength(*mutual, arc.weight, arc.kind, ids[arc.from as usize]))
    });
    let mut kept = Vec::with_capacity(survivors.len());
    let mut received = 0;
    for (position, (arc, _)) in survivors.iter().enumerate() {
        if position == 0 || survivors[position - 1].0.to != arc.to {
            received = 0;
        }
        if received < cap {
            kept.push(*arc);
            received += 1;
        }
    }
    Network::new(network.nodes, kept)
}

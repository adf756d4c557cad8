//! The degree cap: the projection of the graph to at most D nominations made and D received
//! per person, which every released contact statistic is computed on.
//!
//! The rule, deterministic and documented in `docs/graph.md`: rank a person's ties by
//! (1) returned before one-sided, (2) heavier weight first, (3) closer kind first (spouse,
//! family, friend, coworker, neighbor, other), (4) the other person's random ID as the final
//! tie-break. Keep each person's D best nominations made; then, among the survivors, keep each
//! person's D best nominations received by the same ranking. Both degrees end at most D.
//!
//! Both degrees being at most D does **not** bound how far one person reaches. Call a
//! nomination a first-step survivor when it is among its nominator's D best, and let a(p) be
//! the number of first-step survivors that name p (at most p's raw in-degree, which no policy
//! limits). Removing p changes the capped ties of other people in three ways:
//!
//! 1. p's capped neighbours lose their ties with p (at most D made by p, D received);
//! 2. each capped tie p made frees a slot at its target, which may re-admit the next-ranked
//!    nominator there: at most D ties added;
//! 3. each first-step survivor naming p leaves a free slot at its nominator, whose next
//!    nomination survives the first step; if its target keeps it, it may displace the
//!    target's lowest kept nominator: at most a(p) ties added and a(p) removed.
//!
//! So at most D + a(p) ties are added and a(p) removed among other people, and at most
//! 2D + 3·a(p) other people see their capped ties change: p's D capped targets, the D
//! re-admitted nominators, and per promoted tie its nominator (one of the a(p), which also
//! covers p's capped nominators), its target and one displaced nominator. One person can
//! change by more than one tie: a nominator next in line at two of p's targets regains both.
//! The tests in `src/graph/tests/cap.rs` check the rule against a naive reading of it, these
//! bounds on random multiplex graphs, and a case where 900 people change at D = 1.

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

/// Projects `network` to at most `cap` nominations made and received per person, by the rule
/// in the module docs; `ids` are the person IDs in node order (the last tie-break).
///
/// # Complexity
///
/// O(m log m) time for m nominations (one sort per nominator's row, one sort of the
/// survivors by target) and O(m) extra memory.
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

//! The synthetic social network: who names whom, and as what.
//!
//! Nominations come from the places ties form in life — households (spouse, family),
//! relatives nearby, workplaces, friendship circles with a few long-range friends, neighbours
//! — then a triadic-closure pass (friends of friends become friends) and a reciprocation pass
//! (some nominations are returned). Ties are packed into one `u64` each, sorted and
//! de-duplicated in parallel, and kept as compressed adjacency lists for the decision
//! simulation.

use rand::Rng;
use rand_distr::{Distribution, Poisson};
use rayon::prelude::*;

use super::params::{KINDS, Params};
use super::population::{NO_WORKPLACE, Population};
use super::rng::{BLOCK, Stream, block_rng, keyed, unit};
use crate::intake::contract::TieKind;

/// Most people the packed tie layout can address (26 bits per end).
pub const MAX_PEOPLE: usize = 1 << 26;

const FROM_SHIFT: u32 = 37;
const TO_SHIFT: u32 = 11;
const KIND_SHIFT: u32 = 8;
const END_MASK: u64 = (1 << 26) - 1;

/// One directed nomination packed so that sorting orders by (from, to, kind).
fn pack(from: u32, to: u32, kind: TieKind, weight_quarters: u8) -> u64 {
    (u64::from(from) << FROM_SHIFT)
        | (u64::from(to) << TO_SHIFT)
        | ((kind.index() as u64) << KIND_SHIFT)
        | u64::from(weight_quarters)
}

fn unpack_from(tie: u64) -> u32 {
    (tie >> FROM_SHIFT) as u32
}

fn unpack_to(tie: u64) -> u32 {
    ((tie >> TO_SHIFT) & END_MASK) as u32
}

fn unpack_kind(tie: u64) -> usize {
    ((tie >> KIND_SHIFT) & 0b111) as usize
}

/// Directed nominations as compressed adjacency lists, grouped by the person who named.
#[derive(Debug, Default)]
pub(crate) struct Network {
    /// `offsets[p]..offsets[p + 1]` are person `p`'s nominations.
    pub(crate) offsets: Vec<usize>,
    pub(crate) targets: Vec<u32>,
    /// Index into [`TieKind::ALL`].
    pub(crate) kinds: Vec<u8>,
    /// Tie weight in quarters: 1..=4 stands for 0.25..=1.0.
    pub(crate) weights: Vec<u8>,
}

impl Network {
    pub(crate) fn len(&self) -> usize {
        self.targets.len()
    }

    pub(crate) fn range(&self, person: usize) -> std::ops::Range<usize> {
        self.offsets[person]..self.offsets[person + 1]
    }

    fn from_sorted(people: usize, ties: &[u64]) -> Network {
        let mut offsets = vec![0usize; people + 1];
        for &tie in ties {
            offsets[unpack_from(tie) as usize + 1] += 1;
        }
        for p in 0..people {
            offsets[p + 1] += offsets[p];
        }
        Network {
            offsets,
            targets: ties.par_iter().map(|&t| unpack_to(t)).collect(),
            kinds: ties.par_iter().map(|&t| unpack_kind(t) as u8).collect(),
            weights: ties.par_iter().map(|&t| (t & 0xff) as u8).collect(),
        }
    }

    /// Whether `to` also named `from` with a tie of the same kind.
    pub(crate) fn is_mutual(&self, from: usize, slot: usize) -> bool {
        let to = self.targets[slot] as usize;
        let kind = self.kinds[slot];
        self.range(to).any(|s| self.targets[s] as usize == from && self.kinds[s] == kind)
    }
}

/// Generates the whole network.
pub(crate) fn build(params: &Params, seed: u64, population: &Population) -> Network {
    let n = population.len();
    let blocks = n.div_ceil(BLOCK);

    let mut ties: Vec<u64> = (0..blocks)
        .into_par_iter()
        .flat_map_iter(|block| first_nominations(params, seed, population, block))
        .collect();
    settle(&mut ties);
    let first = Network::from_sorted(n, &ties);

    let closure: Vec<u64> = (0..blocks)
        .into_par_iter()
        .flat_map_iter(|block| closure_nominations(params, seed, population, &first, block))
        .collect();
    ties.extend(closure);
    settle(&mut ties);

    let returned: Vec<u64> = ties
        .par_iter()
        .filter_map(|&tie| {
            let (from, to, kind) = (unpack_from(tie), unpack_to(tie), unpack_kind(tie));
            let coin = unit(keyed(seed, Stream::Closure, u64::from(from), u64::from(to)));
            (coin < params.reciprocation[kind])
                .then(|| pack(to, from, TieKind::ALL[kind], (tie & 0xff) as u8))
        })
        .collect();
    ties.extend(returned);
    settle(&mut ties);

    Network::from_sorted(n, &ties)
}

/// Sorts by (from, to, kind), keeps one tie per triple and drops self-nominations.
fn settle(ties: &mut Vec<u64>) {
    ties.par_sort_unstable();
    ties.dedup_by_key(|tie| *tie >> KIND_SHIFT);
    ties.retain(|&tie| unpack_from(tie) != unpack_to(tie));
}

fn poisson(rng: &mut impl Rng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |d| d.sample(rng) as u32)
}

fn pick(rng: &mut impl Rng, range: &std::ops::Range<u32>) -> u32 {
    rng.random_range(range.clone())
}

/// Household, relative, workplace, friendship, neighbour and other nominations of one block.
fn first_nominations(
    params: &Params,
    seed: u64,
    population: &Population,
    block: usize,
) -> Vec<u64> {
    let mut rng = block_rng(seed, Stream::Ties, 0, block);
    let start = block * BLOCK;
    let end = (start + BLOCK).min(population.len());
    let mut out = Vec::with_capacity((end - start) * 12);
    let everyone = 0..population.len() as u32;

    for index in start..end {
        let me = index as u32;
        let person = &population.people[index];
        let cluster = population.cluster_of(me);
        let community = population.community_of(me);

        let household = &population.households[person.household as usize];
        let couple = household.len() >= 2
            && unit(keyed(seed, Stream::Ties, u64::from(person.household), 1))
                < params.couple_share;
        for other in household.clone().filter(|&o| o != me) {
            if !rng.random_bool(params.household_nomination_rate) {
                continue;
            }
            let spouses = couple && me < household.start + 2 && other < household.start + 2;
            let (kind, weight) = if spouses {
                (TieKind::Spouse, 4)
            } else {
                (TieKind::Family, rng.random_range(3..=4))
            };
            out.push(pack(me, other, kind, weight));
        }

        for _ in 0..poisson(&mut rng, params.relatives_mean) {
            out.push(pack(me, pick(&mut rng, community), TieKind::Family, rng.random_range(2..=3)));
        }

        if person.workplace != NO_WORKPLACE {
            let members = population.workplace(person.workplace);
            let mean = params.coworkers_mean * f64::from(person.activity).sqrt();
            for _ in 0..poisson(&mut rng, mean) {
                let other = members[rng.random_range(0..members.len())];
                out.push(pack(me, other, TieKind::Coworker, rng.random_range(1..=3)));
            }
        }

        for _ in 0..poisson(&mut rng, params.friends_mean * f64::from(person.activity)) {
            let u: f64 = rng.random();
            let scope = if u < params.friends_in_cluster {
                cluster
            } else if u < params.friends_in_cluster + params.friends_in_community {
                community
            } else {
                &everyone
            };
            out.push(pack(me, pick(&mut rng, scope), TieKind::Friend, rng.random_range(1..=4)));
        }

        for _ in 0..poisson(&mut rng, params.neighbors_mean) {
            let scope =
                if rng.random_bool(params.neighbors_in_cluster) { cluster } else { community };
            out.push(pack(me, pick(&mut rng, scope), TieKind::Neighbor, rng.random_range(1..=2)));
        }

        for _ in 0..poisson(&mut rng, params.other_mean) {
            out.push(pack(me, pick(&mut rng, community), TieKind::Other, rng.random_range(1..=2)));
        }
    }
    out
}

/// Friends of friends: each person names a few people their friends named as friends.
fn closure_nominations(
    params: &Params,
    seed: u64,
    population: &Population,
    first: &Network,
    block: usize,
) -> Vec<u64> {
    let friend = TieKind::Friend.index() as u8;
    let mut rng = block_rng(seed, Stream::Closure, 0, block);
    let start = block * BLOCK;
    let end = (start + BLOCK).min(population.len());
    let mut out = Vec::new();
    let mut friends = Vec::new();
    let mut friends_of_friend = Vec::new();

    for me in start..end {
        let wanted =
            poisson(&mut rng, params.closure_mean * f64::from(population.people[me].activity));
        if wanted == 0 {
            continue;
        }
        friends.clear();
        friends.extend(
            first.range(me).filter(|&s| first.kinds[s] == friend).map(|s| first.targets[s]),
        );
        if friends.is_empty() {
            continue;
        }
        for _ in 0..wanted {
            let via = friends[rng.random_range(0..friends.len())] as usize;
            friends_of_friend.clear();
            friends_of_friend.extend(
                first.range(via).filter(|&s| first.kinds[s] == friend).map(|s| first.targets[s]),
            );
            if let Some(&other) =
                friends_of_friend.get(rng.random_range(0..friends_of_friend.len().max(1)))
            {
                out.push(pack(me as u32, other, TieKind::Friend, rng.random_range(1..=4)));
            }
        }
    }
    out
}

/// Measured shape of a generated network, recorded in `truth.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct NetworkShape {
    pub(crate) nominations: usize,
    pub(crate) mean_out_degree: f64,
    pub(crate) max_out_degree: usize,
    pub(crate) by_kind: super::params::Named<usize>,
    /// Share of nominations returned with the same kind.
    pub(crate) mutual_share: f64,
    /// Share of nominations that leave the namer's hidden cluster (the planted mixing level).
    pub(crate) mixing: f64,
    /// Share of nominations that stay inside the namer's declared community.
    pub(crate) within_community_share: f64,
}

pub(crate) fn shape(network: &Network, population: &Population) -> NetworkShape {
    let n = population.len();
    let (by_kind, mutual, crossing, local, max_out) = (0..n)
        .into_par_iter()
        .map(|from| {
            let mut kinds = [0usize; KINDS];
            let (mut mutual, mut crossing, mut local) = (0usize, 0usize, 0usize);
            let me = &population.people[from];
            for slot in network.range(from) {
                let other = &population.people[network.targets[slot] as usize];
                kinds[network.kinds[slot] as usize] += 1;
                mutual += usize::from(network.is_mutual(from, slot));
                crossing += usize::from(other.cluster != me.cluster);
                local += usize::from(other.community == me.community);
            }
            (kinds, mutual, crossing, local, network.range(from).len())
        })
        .reduce(
            || ([0; KINDS], 0, 0, 0, 0),
            |a, b| {
                let mut kinds = a.0;
                for (k, v) in kinds.iter_mut().zip(b.0) {
                    *k += v;
                }
                (kinds, a.1 + b.1, a.2 + b.2, a.3 + b.3, a.4.max(b.4))
            },
        );

    let total = network.len().max(1) as f64;
    NetworkShape {
        nominations: network.len(),
        mean_out_degree: network.len() as f64 / n.max(1) as f64,
        max_out_degree: max_out,
        by_kind: TieKind::ALL.iter().map(|k| (k.as_str(), by_kind[k.index()])).collect(),
        mutual_share: mutual as f64 / total,
        mixing: crossing as f64 / total,
        within_community_share: local as f64 / total,
    }
}

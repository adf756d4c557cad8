//! The people of a synthetic program and the groups they belong to.
//!
//! People are laid out in index order by declared community, then by hidden cluster, then by
//! household, so every group is a contiguous index range and needs no member lists. Hidden
//! clusters are the friendship circles that the graph stage should rediscover; each carries a
//! shared shift of health orientation, which is what makes friends alike without influencing
//! each other (homophily). Workplaces cut across clusters and, for a minority, across
//! communities.

use std::ops::Range;

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use rayon::prelude::*;

use super::params::Params;
use super::rng::{BLOCK, Stream, block_rng};

/// Marks a person without a workplace.
pub(crate) const NO_WORKPLACE: u32 = u32::MAX;

/// A declared community: a public name and the people living there.
#[derive(Debug, Clone)]
pub(crate) struct Community {
    pub(crate) name: String,
    pub(crate) people: Range<u32>,
    /// Global indices of the workplaces sited here.
    pub(crate) workplaces: Range<u32>,
}

/// Per-person attributes drawn once and reused by every later pass.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Person {
    pub(crate) community: u32,
    pub(crate) cluster: u32,
    pub(crate) household: u32,
    pub(crate) workplace: u32,
    /// Latent health orientation, in probability units, shared in part with the cluster.
    pub(crate) orientation: f32,
    /// Sociability: scales how many people this person names (mean 1, long right tail).
    pub(crate) activity: f32,
    /// Engagement: scales how many decisions this person logs (mean 1).
    pub(crate) engagement: f32,
    pub(crate) shift_worker: bool,
    /// 0..4: F, M, X, U, or 4 for left blank.
    pub(crate) sex: u8,
}

/// The whole synthetic population.
#[derive(Debug)]
pub(crate) struct Population {
    pub(crate) people: Vec<Person>,
    pub(crate) communities: Vec<Community>,
    pub(crate) clusters: Vec<Range<u32>>,
    pub(crate) households: Vec<Range<u32>>,
    /// Members of each workplace, flattened; `workplace_offsets[w]..[w + 1]` indexes it.
    pub(crate) workplace_members: Vec<u32>,
    pub(crate) workplace_offsets: Vec<u32>,
}

impl Population {
    pub(crate) fn len(&self) -> usize {
        self.people.len()
    }

    pub(crate) fn workplace(&self, workplace: u32) -> &[u32] {
        let w = workplace as usize;
        let range = self.workplace_offsets[w] as usize..self.workplace_offsets[w + 1] as usize;
        &self.workplace_members[range]
    }

    pub(crate) fn cluster_of(&self, person: u32) -> &Range<u32> {
        &self.clusters[self.people[person as usize].cluster as usize]
    }

    pub(crate) fn community_of(&self, person: u32) -> &Range<u32> {
        &self.communities[self.people[person as usize].community as usize].people
    }
}

/// Builds the population: group structure first (one thread, cheap), then per-person draws in
/// parallel blocks.
pub(crate) fn build(params: &Params, seed: u64, n: usize) -> Population {
    let mut rng = block_rng(seed, Stream::Structure, 0, 0);

    let community_sizes = community_sizes(n, &mut rng);
    let mut communities = Vec::with_capacity(community_sizes.len());
    let mut clusters = Vec::new();
    let mut cluster_community = Vec::new();
    let mut households = Vec::new();
    let mut workplace_count = 0u32;
    let mut start = 0u32;
    for (c, &size) in community_sizes.iter().enumerate() {
        let people = start..start + size;
        for cluster in split(people.clone(), &mut rng, |rng| cluster_size(params, rng)) {
            households.extend(split(cluster.clone(), &mut rng, household_size));
            clusters.push(cluster);
            cluster_community.push(c as u32);
        }
        let employed = (f64::from(size) * params.employment_rate).ceil() as u32;
        let sites = employed.div_ceil(params.workplace_mean_size).max(1);
        communities.push(Community {
            name: community_name(c),
            people,
            workplaces: workplace_count..workplace_count + sites,
        });
        workplace_count += sites;
        start += size;
    }

    let cluster_shift = cluster_shifts(params, &mut rng, clusters.len());
    let home_workplace = home_workplaces(&communities, &cluster_community, &mut rng);

    let mut people = vec![Person::default(); n];
    for (index, cluster) in clusters.iter().enumerate() {
        for person in cluster.clone() {
            let slot = &mut people[person as usize];
            slot.cluster = index as u32;
            slot.community = cluster_community[index];
        }
    }
    for (index, household) in households.iter().enumerate() {
        for person in household.clone() {
            people[person as usize].household = index as u32;
        }
    }

    let draws = PersonDraws::new(params);
    people.par_chunks_mut(BLOCK).enumerate().for_each(|(block, chunk)| {
        let mut rng = block_rng(seed, Stream::Person, 0, block);
        for person in chunk {
            draws.fill(
                person,
                &mut rng,
                cluster_shift[person.cluster as usize],
                &communities,
                home_workplace[person.cluster as usize],
                workplace_count,
            );
        }
    });

    let (workplace_offsets, workplace_members) = workplace_members(&people, workplace_count);
    Population { people, communities, clusters, households, workplace_members, workplace_offsets }
}

/// Community sizes: a log-normal spread, so a few large sites sit beside many small ones, as
/// in real programs. About one community per `3 * sqrt(n)` people keeps the 2,000-person
/// sample at 15 communities and a million people at about 330.
fn community_sizes(n: usize, rng: &mut impl Rng) -> Vec<u32> {
    let count = ((n as f64).sqrt() / 3.0).round().max(4.0) as usize;
    let count = count.min(n.max(1));
    let spread = LogNormal::new(0.0, 0.9).expect("constant parameters are valid");
    let weights: Vec<f64> = (0..count).map(|_| spread.sample(rng)).collect();
    let total: f64 = weights.iter().sum();

    let mut sizes: Vec<u32> =
        weights.iter().map(|w| ((w / total) * n as f64).floor().max(1.0) as u32).collect();
    // Floors lose a few people and `max(1)` may add some; settle the difference on the
    // largest community so the total is exact.
    let assigned: i64 = sizes.iter().map(|&s| i64::from(s)).sum();
    let largest = (0..count).max_by_key(|&i| sizes[i]).unwrap_or(0);
    sizes[largest] = (i64::from(sizes[largest]) + n as i64 - assigned).max(1) as u32;
    sizes
}

/// Cuts a range into consecutive pieces of drawn sizes; a short tail joins the last piece.
fn split<R: Rng>(
    range: Range<u32>,
    rng: &mut R,
    mut size: impl FnMut(&mut R) -> u32,
) -> Vec<Range<u32>> {
    let mut pieces: Vec<Range<u32>> = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = (start + size(rng).max(1)).min(range.end);
        pieces.push(start..end);
        start = end;
    }
    if pieces.len() > 1 {
        let last = pieces.pop().expect("two pieces exist");
        let previous = pieces.last_mut().expect("one piece remains");
        if last.len() * 3 < previous.len() {
            previous.end = last.end;
        } else {
            pieces.push(last);
        }
    }
    pieces
}

fn cluster_size(params: &Params, rng: &mut impl Rng) -> u32 {
    let sigma = params.cluster_size_sigma;
    let mu = f64::from(params.cluster_mean_size).ln() - sigma * sigma / 2.0;
    let size = LogNormal::new(mu, sigma).expect("valid parameters").sample(rng);
    size.clamp(f64::from(params.cluster_min_size), f64::from(params.cluster_max_size)) as u32
}

/// Household sizes after the shape of OECD household statistics: about 28% live alone,
/// a third in couples, the rest in families of three to five.
fn household_size(rng: &mut impl Rng) -> u32 {
    const CUMULATIVE: [(f64, u32); 5] = [(0.28, 1), (0.62, 2), (0.78, 3), (0.92, 4), (1.0, 5)];
    let u: f64 = rng.random();
    CUMULATIVE.iter().find(|(p, _)| u < *p).map_or(5, |(_, size)| *size)
}

fn cluster_shifts(params: &Params, rng: &mut impl Rng, count: usize) -> Vec<f32> {
    let normal = Normal::new(0.0, params.orientation_sd_cluster).expect("valid parameters");
    (0..count).map(|_| normal.sample(rng) as f32).collect()
}

/// Each cluster has a home workplace in its community where many of its members work; that
/// is what makes coworker ties partly follow friendship circles.
fn home_workplaces(
    communities: &[Community],
    cluster_community: &[u32],
    rng: &mut impl Rng,
) -> Vec<u32> {
    cluster_community
        .iter()
        .map(|&c| {
            let sites = &communities[c as usize].workplaces;
            rng.random_range(sites.clone())
        })
        .collect()
}

/// The distributions of per-person draws, built once.
struct PersonDraws {
    orientation: Normal<f64>,
    activity: LogNormal<f64>,
    engagement: LogNormal<f64>,
    params: Params,
}

impl PersonDraws {
    fn new(params: &Params) -> PersonDraws {
        // Log-normal with mu = -sigma^2 / 2 has mean 1, so the multipliers keep the planted
        // means while giving the long right tail seen in real nomination counts.
        let mean_one = |sigma: f64| LogNormal::new(-sigma * sigma / 2.0, sigma).expect("valid");
        PersonDraws {
            orientation: Normal::new(0.0, params.orientation_sd_person).expect("valid"),
            activity: mean_one(params.activity_sigma),
            engagement: mean_one(params.engagement_sigma),
            params: params.clone(),
        }
    }

    fn fill(
        &self,
        person: &mut Person,
        rng: &mut impl Rng,
        cluster_shift: f32,
        communities: &[Community],
        home_workplace: u32,
        workplace_count: u32,
    ) {
        // Cumulative shares of F, M, X, U and a blank cell.
        const SEX: [(f64, u8); 5] = [(0.49, 0), (0.96, 1), (0.97, 2), (0.98, 3), (1.0, 4)];
        let p = &self.params;
        person.orientation = cluster_shift + self.orientation.sample(rng) as f32;
        person.activity = self.activity.sample(rng) as f32;
        person.engagement = self.engagement.sample(rng) as f32;

        person.workplace = if rng.random_bool(p.employment_rate) {
            let u: f64 = rng.random();
            if u < p.home_workplace_share {
                home_workplace
            } else if u < 1.0 - p.commuter_share {
                rng.random_range(communities[person.community as usize].workplaces.clone())
            } else {
                rng.random_range(0..workplace_count)
            }
        } else {
            NO_WORKPLACE
        };
        person.shift_worker = person.workplace != NO_WORKPLACE && rng.random_bool(0.2);

        let u: f64 = rng.random();
        person.sex = SEX.iter().find(|(q, _)| u < *q).map_or(4, |(_, s)| *s);
    }
}

/// Groups people by workplace with a counting sort.
fn workplace_members(people: &[Person], workplace_count: u32) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; workplace_count as usize + 1];
    for person in people.iter().filter(|p| p.workplace != NO_WORKPLACE) {
        offsets[person.workplace as usize + 1] += 1;
    }
    for w in 0..workplace_count as usize {
        offsets[w + 1] += offsets[w];
    }
    let mut cursor = offsets.clone();
    let mut members = vec![0u32; offsets[workplace_count as usize] as usize];
    for (index, person) in people.iter().enumerate() {
        if person.workplace != NO_WORKPLACE {
            let slot = &mut cursor[person.workplace as usize];
            members[*slot as usize] = index as u32;
            *slot += 1;
        }
    }
    (offsets, members)
}

/// Neighbourhood-style names; one in eight carries a quarter after a comma, so exports hold
/// quoted fields the way real ones do.
pub(crate) fn community_name(index: usize) -> String {
    const STEMS: [&str; 24] = [
        "Ash", "Bay", "Cedar", "Elm", "Fair", "Glen", "Hazel", "Lake", "Maple", "Mill", "North",
        "Oak", "Pine", "River", "Rose", "Stone", "West", "Wood", "Brook", "Spring", "Clear",
        "Green", "High", "Kings",
    ];
    const ENDINGS: [&str; 16] = [
        "field", "ford", "haven", "side", "view", "wood", "dale", "gate", "mont", "port", "ridge",
        "ton", "vale", "well", "brook", "crest",
    ];
    const QUARTERS: [&str; 4] = ["East", "West", "Upper", "Lower"];

    let stem = STEMS[index % STEMS.len()];
    let ending = ENDINGS[(index / STEMS.len() + index) % ENDINGS.len()];
    let round = index / (STEMS.len() * ENDINGS.len());
    let mut name = format!("{stem}{ending}");
    if round > 0 {
        name = format!("{name} {}", round + 1);
    }
    if index % 8 == 5 {
        name = format!("{name}, {}", QUARTERS[(index / 8) % QUARTERS.len()]);
    }
    name
}

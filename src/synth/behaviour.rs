//! Everyday health decisions, simulated week by week with planted effects.
//!
//! A decision is healthy with probability
//! `base[d] + orientation + Σ factor effects + Σ_k peer[k] · (exposure_k − centre)`, clamped
//! to [0.02, 0.98]: a linear probability model whose coefficients are the planted truth.
//! Exposure through kind `k` is the weight-averaged share of healthy decisions, in the same
//! domain and the previous week, among the people this person named with ties of kind `k`;
//! kinds with no such decisions contribute nothing. Because orientation is shared within
//! hidden clusters, friends decide alike even without influence, so a between-person
//! estimate overstates `peer` — the trap the model stage must avoid. Influence runs over the
//! true network, consented or not, as it does in life.

use chrono::Duration;
use rand::Rng;
use rand_distr::{Distribution, LogNormal, Poisson};
use rayon::prelude::*;

use super::dirty::TableTag;
use super::network::Network;
use super::output::{Chunk, Row, TableWriter};
use super::params::{DOMAINS, KINDS, Params};
use super::rng::{BLOCK, Stream, block_rng};
use super::tables::TableContext;
use crate::error::Result;
use crate::intake::contract::{DECISIONS, Domain};

/// Last week's decisions of one person in one domain: healthy and total, saturating.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    healthy: u8,
    total: u8,
}

/// Per-domain value distributions, built once.
struct Draws {
    minutes: [LogNormal<f64>; DOMAINS],
    cost: [(f64, LogNormal<f64>); DOMAINS],
    domain_cumulative: [f64; DOMAINS],
}

impl Draws {
    fn new(params: &Params) -> Draws {
        const MINUTES: [f64; DOMAINS] = [20.0, 45.0, 30.0, 15.0, 60.0, 10.0, 30.0, 40.0];
        // (share of decisions that cost nothing, mean cost when they do), per domain.
        const COST: [(f64, f64); DOMAINS] = [
            (0.05, 11.0),
            (0.4, 8.0),
            (0.8, 6.0),
            (0.7, 6.0),
            (0.3, 15.0),
            (0.1, 25.0),
            (0.7, 6.0),
            (0.6, 10.0),
        ];
        // A log-normal with this mu has the given mean; sigma sets the spread.
        let with_mean = |mean: f64, sigma: f64| {
            LogNormal::new(mean.ln() - sigma * sigma / 2.0, sigma).expect("valid parameters")
        };
        let mut cumulative = [0.0; DOMAINS];
        let total: f64 = params.domain_weights.iter().sum();
        let mut running = 0.0;
        for (slot, weight) in cumulative.iter_mut().zip(params.domain_weights) {
            running += weight / total;
            *slot = running;
        }
        Draws {
            minutes: MINUTES.map(|m| with_mean(m, 0.5)),
            cost: COST.map(|(free, mean)| (free, with_mean(mean, 0.6))),
            domain_cumulative: cumulative,
        }
    }

    fn domain(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.domain_cumulative.iter().position(|&c| u < c).unwrap_or(DOMAINS - 1)
    }
}

/// Counts gathered while simulating, for `truth.json`.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct DecisionShape {
    pub(crate) decisions: u64,
    pub(crate) healthy_share: f64,
    pub(crate) per_domain: super::params::Named<u64>,
    pub(crate) max_per_person: u32,
}

/// Simulates a burn-in week and then `ctx.weeks` written weeks, streaming rows to `writer`.
pub(crate) fn simulate(
    ctx: &TableContext<'_>,
    network: &Network,
    writer: &mut TableWriter,
    mut on_week: impl FnMut(u32),
) -> Result<DecisionShape> {
    let n = ctx.population.len();
    let draws = Draws::new(ctx.params);
    let mut last = vec![Tally::default(); n * DOMAINS];
    let mut this = vec![Tally::default(); n * DOMAINS];
    let mut per_person = vec![0u32; n];
    let mut healthy = 0u64;
    let mut per_domain = [0u64; DOMAINS];

    // Week 0 is a burn-in that gives the first written week an exposure to react to.
    for week in 0..=ctx.weeks {
        let written = week > 0;
        let chunks: Vec<(Chunk, u64, [u64; DOMAINS])> = this
            .par_chunks_mut(BLOCK * DOMAINS)
            .zip(per_person.par_chunks_mut(BLOCK))
            .enumerate()
            .map(|(block, (tallies, counts))| {
                simulate_block(ctx, network, &draws, &last, week, written, block, tallies, counts)
            })
            .collect();
        if written {
            for (chunk, block_healthy, block_domains) in chunks {
                healthy += block_healthy;
                for (total, count) in per_domain.iter_mut().zip(block_domains) {
                    *total += count;
                }
                writer.append(chunk)?;
            }
            on_week(week);
        }
        std::mem::swap(&mut last, &mut this);
    }

    let decisions = writer.rows();
    Ok(DecisionShape {
        decisions,
        healthy_share: healthy as f64 / per_domain.iter().sum::<u64>().max(1) as f64,
        per_domain: Domain::ALL.iter().map(|d| (d.as_str(), per_domain[d.index()])).collect(),
        max_per_person: per_person.iter().copied().max().unwrap_or(0),
    })
}

#[allow(clippy::too_many_arguments, reason = "one block's share of a week's shared state")]
fn simulate_block(
    ctx: &TableContext<'_>,
    network: &Network,
    draws: &Draws,
    last: &[Tally],
    week: u32,
    written: bool,
    block: usize,
    tallies: &mut [Tally],
    counts: &mut [u32],
) -> (Chunk, u64, [u64; DOMAINS]) {
    let params = ctx.params;
    let mut rng = block_rng(ctx.seed, Stream::Decisions, u64::from(week), block);
    let mut chunk = Chunk::default();
    let mut healthy_count = 0u64;
    let mut per_domain = [0u64; DOMAINS];
    let mut row = Vec::with_capacity(96);
    let columns = column_names();
    let week_start = ctx.start + Duration::days(i64::from(week.saturating_sub(1)) * 7);
    tallies.fill(Tally::default());

    for (offset, tally) in tallies.chunks_mut(DOMAINS).enumerate() {
        let index = block * BLOCK + offset;
        let person = &ctx.population.people[index];
        let mean = params.decisions_per_week * f64::from(person.engagement);
        let count = Poisson::new(mean).map_or(0, |d| d.sample(&mut rng) as u32);
        if count == 0 {
            continue;
        }
        let exposure = exposure(network, last, index);

        for j in 0..count {
            let d = draws.domain(&mut rng);
            let decision = draw_decision(params, draws, &mut rng, d, person.shift_worker);
            let mut p = params.base_rate[d] + f64::from(person.orientation) + decision.effect;
            for (k, share) in exposure[d].iter().enumerate() {
                if let Some(share) = share {
                    p += params.peer_effect[k] / 100.0 * (share - params.exposure_centre);
                }
            }
            let healthy = rng.random::<f64>() < p.clamp(0.02, 0.98);

            let slot = &mut tally[d];
            slot.total = slot.total.saturating_add(1);
            slot.healthy = slot.healthy.saturating_add(u8::from(healthy));
            if !written {
                continue;
            }

            counts[offset] += 1;
            per_domain[d] += 1;
            healthy_count += u64::from(healthy);
            let date = week_start + Duration::days(rng.random_range(0..7));
            row.clear();
            Row::start(&mut row)
                .raw(&ctx.ids[index])
                .raw(ctx.dates.get(date))
                .raw(Domain::ALL[d].as_str().as_bytes())
                .flag(healthy)
                .flag(decision.schedule_conflict)
                .flag(decision.planned_ahead)
                .flag(decision.disrupted)
                .flag(decision.with_others)
                .flag(decision.decided_by_other)
                .hundredths(decision.cost_hundredths)
                .int(decision.minutes)
                .flag(decision.pre_decided);
            if ctx.quarantined[index] {
                chunk.push_quarantined(&row);
            } else {
                let key = (u64::from(week) << 40) | ((index as u64) << 8) | u64::from(j.min(255));
                ctx.dirt.write_row(TableTag::Decisions, key, &columns, &row, &mut chunk);
            }
        }
    }
    (chunk, healthy_count, per_domain)
}

fn column_names() -> [&'static str; 12] {
    let mut names = [""; 12];
    for (slot, column) in names.iter_mut().zip(DECISIONS.columns) {
        *slot = column.name;
    }
    names
}

/// Last week's exposure of one person, per domain and tie kind.
fn exposure(network: &Network, last: &[Tally], person: usize) -> [[Option<f64>; KINDS]; DOMAINS] {
    let mut numerator = [[0.0f64; KINDS]; DOMAINS];
    let mut denominator = [[0.0f64; KINDS]; DOMAINS];
    for slot in network.range(person) {
        let alter = network.targets[slot] as usize;
        let kind = network.kinds[slot] as usize;
        let weight = f64::from(network.weights[slot]);
        for (d, tally) in last[alter * DOMAINS..(alter + 1) * DOMAINS].iter().enumerate() {
            if tally.total > 0 {
                numerator[d][kind] += weight * f64::from(tally.healthy) / f64::from(tally.total);
                denominator[d][kind] += weight;
            }
        }
    }
    let mut shares = [[None; KINDS]; DOMAINS];
    for d in 0..DOMAINS {
        for k in 0..KINDS {
            if denominator[d][k] > 0.0 {
                shares[d][k] = Some(numerator[d][k] / denominator[d][k]);
            }
        }
    }
    shares
}

/// The circumstances of one decision and their summed effect on the healthy chance.
#[expect(clippy::struct_excessive_bools, reason = "mirrors the contract's 0/1 columns")]
struct Decision {
    schedule_conflict: bool,
    planned_ahead: bool,
    disrupted: bool,
    with_others: bool,
    decided_by_other: bool,
    cost_hundredths: u64,
    minutes: u64,
    pre_decided: bool,
    effect: f64,
}

fn draw_decision(
    params: &Params,
    draws: &Draws,
    rng: &mut impl Rng,
    d: usize,
    shift_worker: bool,
) -> Decision {
    let schedule_conflict = rng.random_bool(if shift_worker { 0.38 } else { 0.18 });
    let planned_ahead = rng.random_bool(if schedule_conflict { 0.2 } else { 0.35 });
    let disrupted = rng.random_bool(0.12);
    let with_others = rng.random_bool(if d == Domain::Social.index() { 0.8 } else { 0.35 });
    let decided_by_other = rng.random_bool(if with_others { 0.25 } else { 0.03 });
    let (free_share, cost) = &draws.cost[d];
    let cost_hundredths =
        if rng.random_bool(*free_share) { 0 } else { (cost.sample(rng) * 100.0).round() as u64 };
    let minutes = draws.minutes[d].sample(rng).round().max(1.0) as u64;
    let pre_decided = rng.random_bool(if planned_ahead { 0.18 } else { 0.06 });

    let f = &params.factors;
    let flag = |on: bool, effect: &[f64; DOMAINS]| if on { effect[d] } else { 0.0 };
    let points = flag(schedule_conflict, &f.schedule_conflict)
        + flag(planned_ahead, &f.planned_ahead)
        + flag(disrupted, &f.disrupted_environment)
        + flag(with_others, &f.with_others)
        + flag(decided_by_other, &f.decided_by_other)
        + f.cost_per_10[d] * cost_hundredths as f64 / 1000.0
        + f.minutes_per_30[d] * minutes as f64 / 30.0
        + flag(pre_decided, &f.pre_decided);

    Decision {
        schedule_conflict,
        planned_ahead,
        disrupted,
        with_others,
        decided_by_other,
        cost_hundredths,
        minutes,
        pre_decided,
        effect: points / 100.0,
    }
}

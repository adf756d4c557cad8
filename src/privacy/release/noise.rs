//! The noisy side of a community release: its three calibrated OpenDP measurements and the
//! post-processing that turns their outputs into the published rows.
//!
//! Budget split of the release's ρ: a fifth for the people counts and partition selection, two
//! fifths each for the per-domain decision counts and healthy sums. One person is in one
//! community, counts once there, and moves the stacked per-domain vectors of that community
//! only, by at most the L2 norm of their bounded counts (`docs/privacy.md`).

use std::collections::HashMap;

use super::aggregate::Aggregates;
use super::{CommunityRow, DomainRow, Estimate, PrivacyStatement, Release, Request};
use crate::error::Result;
use crate::intake::contract::Domain;
use crate::privacy::bounding;
use crate::privacy::mechanism::{self, Cost, Noisy, PartitionSelection, VectorGaussian};
use crate::workspace::PrivacyPolicy;

/// The calibrated measurements of one community release, reusable over many invocations.
pub struct ReleaseNoise {
    people: PartitionSelection,
    decisions: VectorGaussian,
    healthy: VectorGaussian,
    /// The three costs composed once, at calibration.
    cost: Cost,
}

impl ReleaseNoise {
    /// Calibrates every measurement of a release spending `rho` (and `selection_delta` for
    /// the communities it may reveal) when a person keeps at most `per_person` decisions in
    /// all and `per_domain` per domain.
    pub fn calibrate(
        rho: f64,
        selection_delta: f64,
        per_person: u32,
        per_domain: u32,
    ) -> Result<ReleaseNoise> {
        let l2 = bounding::l2_contribution(per_person, per_domain, Domain::ALL.len() as u32);
        let people = PartitionSelection::calibrate(1, 1.0, rho / 5.0, selection_delta)?;
        let decisions = VectorGaussian::calibrate(l2, rho * 0.4)?;
        let healthy = VectorGaussian::calibrate(l2, rho * 0.4)?;
        let cost = Cost::composed(&[people.cost, decisions.cost, healthy.cost])?;
        Ok(ReleaseNoise { people, decisions, healthy, cost })
    }

    /// What one release through these measurements costs, by OpenDP's composition rule.
    /// The whole cost is charged even when no community clears the threshold and the two
    /// vectors are never drawn: the budget was reserved for them before anything was seen.
    pub fn cost(&self) -> Cost {
        self.cost
    }
}

/// One noisy release of `aggregates`. A community whose noisy head count misses the selection
/// threshold or the policy's minimum cell is left out with all its numbers; how many were
/// left out is not said, since that count is exact. Within a shown community, a domain whose
/// noisy decision count is under the minimum cell is withheld, and so is a healthy-choice
/// rate whose noisy healthy or unhealthy count is (otherwise rate × count would give the
/// small count back). The community's decision total sums the shown domains only, so no
/// withheld count can be recovered by subtraction. All of this is post-processing.
pub fn noisy_release(
    aggregates: &Aggregates,
    noise: &ReleaseNoise,
    request: &Request,
    policy: &PrivacyPolicy,
    snapshot: String,
) -> Result<Release> {
    let communities = noisy_communities(aggregates, noise, policy.min_cell_size)?;
    let cost = noise.cost();
    Ok(Release {
        release: "community-health",
        format: 2,
        kith_version: env!("CARGO_PKG_VERSION"),
        snapshot,
        request: request.clone(),
        privacy: PrivacyStatement {
            unit: "person",
            rho: cost.rho,
            epsilon: mechanism::epsilon(cost.rho, policy.delta)?,
            delta: policy.delta + cost.delta,
            decisions_per_person: aggregates.per_person,
            decisions_per_person_domain: aggregates.per_domain,
            min_cell_size: policy.min_cell_size,
        },
        communities,
    })
}

/// The published rows of [`noisy_release`]: every noisy value the release holds, drawn once,
/// with the small-cell rules applied to them.
pub fn noisy_communities(
    aggregates: &Aggregates,
    noise: &ReleaseNoise,
    min_cell_size: u32,
) -> Result<Vec<CommunityRow>> {
    let min_cell = f64::from(min_cell_size);
    let counts: HashMap<String, f64> = aggregates
        .names
        .iter()
        .zip(&aggregates.people)
        .map(|(name, count)| (name.clone(), *count as f64))
        .collect();
    let selected = noise.people.release(&counts)?;
    let mut shown: Vec<usize> = (0..aggregates.names.len())
        .filter(|&i| selected.get(&aggregates.names[i]).is_some_and(|v| *v >= min_cell))
        .collect();
    shown.sort_by(|&a, &b| aggregates.names[a].cmp(&aggregates.names[b]));

    let mut communities = Vec::with_capacity(shown.len());
    if !shown.is_empty() {
        let stack = |rows: &[[f64; 8]]| shown.iter().flat_map(|&i| rows[i]).collect::<Vec<f64>>();
        let decisions = noise.decisions.release(&stack(&aggregates.decisions))?;
        let healthy = noise.healthy.release(&stack(&aggregates.healthy))?;

        for (position, &index) in shown.iter().enumerate() {
            let at = |domain: Domain| position * 8 + domain.index();
            let measured = |values: &[f64], std_error, domain| Noisy {
                value: values[at(domain)],
                std_error,
                cost: Cost::default(),
            };
            let mut domains = Vec::with_capacity(8);
            let (mut total, mut shown_domains) = (0.0, 0u32);
            for &domain in Domain::ALL {
                let count = measured(&decisions.values, decisions.std_error, domain);
                let sum = measured(&healthy.values, healthy.std_error, domain);
                let visible = count.value >= min_cell;
                let rate_visible =
                    visible && sum.value >= min_cell && count.value - sum.value >= min_cell;
                if visible {
                    total += count.value;
                    shown_domains += 1;
                }
                let rate = rate_visible
                    .then(|| mechanism::ratio(&sum, &count))
                    .map(|(v, e)| Estimate::new(v, e));
                domains.push(DomainRow {
                    domain: domain.as_str(),
                    decisions: visible.then(|| Estimate::new(count.value, count.std_error)),
                    healthy_rate: rate,
                });
            }
            let total_error = decisions.std_error * f64::from(shown_domains).sqrt();
            communities.push(CommunityRow {
                community: aggregates.names[index].clone(),
                people: Estimate::new(selected[&aggregates.names[index]], noise.people.scale),
                decisions: Estimate::new(total, total_error),
                domains,
            });
        }
    }

    Ok(communities)
}

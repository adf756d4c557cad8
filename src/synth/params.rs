//! The planted parameters of a synthetic population, all in one place.
//!
//! Everything the generator plants — group sizes, nomination rates, consent rates, factor and
//! peer effects — lives in [`Params`], and `truth.json` records it whole so that every later
//! stage can be tested for recovering it. Effects are in percentage points of the chance of a
//! healthy choice (a linear probability model), the scale program staff reason in.

use serde::Serialize;

use crate::intake::contract::{Domain, TieKind};

/// Number of decision domains, and so the length of every per-domain array.
pub(crate) const DOMAINS: usize = 8;
/// Number of tie kinds.
pub(crate) const KINDS: usize = 6;

/// How each decision factor moves the chance of a healthy choice, per domain, in percentage
/// points. `cost` is per 10 currency units and `minutes` per 30 minutes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FactorEffects {
    pub(crate) schedule_conflict: [f64; DOMAINS],
    pub(crate) planned_ahead: [f64; DOMAINS],
    pub(crate) disrupted_environment: [f64; DOMAINS],
    pub(crate) with_others: [f64; DOMAINS],
    pub(crate) decided_by_other: [f64; DOMAINS],
    pub(crate) cost_per_10: [f64; DOMAINS],
    pub(crate) minutes_per_30: [f64; DOMAINS],
    pub(crate) pre_decided: [f64; DOMAINS],
}

/// Every planted parameter.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Params {
    // Groups.
    pub(crate) cluster_mean_size: u32,
    pub(crate) cluster_min_size: u32,
    pub(crate) cluster_max_size: u32,
    pub(crate) cluster_size_sigma: f64,
    pub(crate) employment_rate: f64,
    pub(crate) workplace_mean_size: u32,
    pub(crate) home_workplace_share: f64,
    pub(crate) commuter_share: f64,

    // Nominations: mean count per person by source, before reciprocation and de-duplication.
    pub(crate) household_nomination_rate: f64,
    pub(crate) couple_share: f64,
    pub(crate) relatives_mean: f64,
    pub(crate) coworkers_mean: f64,
    pub(crate) friends_mean: f64,
    pub(crate) friends_in_cluster: f64,
    pub(crate) friends_in_community: f64,
    pub(crate) closure_mean: f64,
    pub(crate) neighbors_mean: f64,
    pub(crate) neighbors_in_cluster: f64,
    pub(crate) other_mean: f64,
    pub(crate) reciprocation: [f64; KINDS],
    pub(crate) activity_sigma: f64,

    // Consent.
    pub(crate) no_consent_share: f64,
    pub(crate) scope_rates: [f64; 3],
    pub(crate) revocation_rate: f64,

    // Decisions.
    pub(crate) decisions_per_week: f64,
    pub(crate) engagement_sigma: f64,
    pub(crate) domain_weights: [f64; DOMAINS],
    pub(crate) base_rate: [f64; DOMAINS],
    pub(crate) orientation_sd_cluster: f64,
    pub(crate) orientation_sd_person: f64,
    pub(crate) factors: FactorEffects,
    /// Percentage points per unit of last week's exposure through ties of each kind, with
    /// exposure centred at `exposure_centre`.
    pub(crate) peer_effect: [f64; KINDS],
    pub(crate) exposure_centre: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            cluster_mean_size: 90,
            cluster_min_size: 20,
            cluster_max_size: 400,
            cluster_size_sigma: 0.5,
            employment_rate: 0.68,
            workplace_mean_size: 35,
            home_workplace_share: 0.55,
            commuter_share: 0.10,

            household_nomination_rate: 0.92,
            couple_share: 0.7,
            relatives_mean: 0.4,
            coworkers_mean: 2.2,
            friends_mean: 3.2,
            friends_in_cluster: 0.82,
            friends_in_community: 0.10,
            closure_mean: 0.8,
            neighbors_mean: 0.9,
            neighbors_in_cluster: 0.5,
            other_mean: 0.2,
            // friend, spouse, family, coworker, neighbor, other
            reciprocation: [0.35, 0.0, 0.0, 0.3, 0.3, 0.1],
            activity_sigma: 0.55,

            no_consent_share: 0.03,
            // network, reports, research
            scope_rates: [0.85, 0.92, 0.6],
            revocation_rate: 0.06,

            decisions_per_week: 3.0,
            engagement_sigma: 0.5,
            domain_weights: [0.26, 0.20, 0.12, 0.08, 0.10, 0.09, 0.08, 0.07],
            base_rate: [0.45, 0.40, 0.55, 0.35, 0.60, 0.50, 0.55, 0.50],
            orientation_sd_cluster: 0.09,
            orientation_sd_person: 0.06,
            factors: FactorEffects {
                schedule_conflict: [-10.0, -12.0, -8.0, -6.0, -5.0, -3.0, -7.0, -4.0],
                planned_ahead: [12.0, 10.0, 8.0, 6.0, 4.0, 9.0, 6.0, 5.0],
                disrupted_environment: [-8.0, -9.0, -10.0, -7.0, -3.0, -4.0, -6.0, -5.0],
                with_others: [4.0, 6.0, 0.0, 2.0, 8.0, -2.0, 3.0, 2.0],
                decided_by_other: [-3.0, 2.0, -1.0, 0.0, 3.0, -4.0, -2.0, 0.0],
                cost_per_10: [-2.0, -3.0, -1.0, -1.0, -1.5, -4.0, -1.0, -1.0],
                minutes_per_30: [-3.0, -2.0, -1.0, -2.0, -0.5, -1.0, -2.0, -1.5],
                pre_decided: [15.0, 12.0, 10.0, 8.0, 6.0, 14.0, 8.0, 6.0],
            },
            // friend, spouse, family, coworker, neighbor, other
            peer_effect: [8.0, 10.0, 5.0, 4.0, 2.0, 1.0],
            exposure_centre: 0.5,
        }
    }
}

impl Params {
    /// Factor effects keyed by name and domain, for `truth.json`.
    pub(crate) fn factor_table(&self) -> Vec<(&'static str, &[f64; DOMAINS])> {
        let f = &self.factors;
        vec![
            ("schedule_conflict", &f.schedule_conflict),
            ("planned_ahead", &f.planned_ahead),
            ("disrupted_environment", &f.disrupted_environment),
            ("with_others", &f.with_others),
            ("decided_by_other", &f.decided_by_other),
            ("cost_per_10", &f.cost_per_10),
            ("minutes_per_30", &f.minutes_per_30),
            ("pre_decided", &f.pre_decided),
        ]
    }
}

/// Name-value pairs serialised as a JSON object in their given order (the contract's order
/// for domains and kinds), which a `BTreeMap` would lose.
#[derive(Debug, Clone, Default)]
pub(crate) struct Named<T>(pub(crate) Vec<(&'static str, T)>);

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

impl<T> FromIterator<(&'static str, T)> for Named<T> {
    fn from_iter<I: IntoIterator<Item = (&'static str, T)>>(iter: I) -> Self {
        Named(iter.into_iter().collect())
    }
}

/// Per-domain array keyed by domain name.
pub(crate) fn by_domain(values: &[f64; DOMAINS]) -> Named<f64> {
    Domain::ALL.iter().map(|d| (d.as_str(), values[d.index()])).collect()
}

/// Per-kind array keyed by tie kind.
pub(crate) fn by_kind(values: &[f64; KINDS]) -> Named<f64> {
    TieKind::ALL.iter().map(|k| (k.as_str(), values[k.index()])).collect()
}

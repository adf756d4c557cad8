//! The community health release: per declared community, how many people take part, how many
//! decisions they logged, and the healthy-choice rate per domain, each with its interval.
//!
//! The path every release takes: a cache lookup, a check of the budget caps (so that a
//! refused release reads nothing), exact aggregates from the newest snapshot (people with
//! `reports` consent; their decisions in the period, bounded per person by `bounding`), a
//! ledger reservation, noise from `mechanism`, then an atomic write.
//! Communities come from the data, so they go through thresholded partition selection; a
//! community whose noisy head count is under the policy's minimum cell is withheld with all of
//! its numbers, and so is a domain whose noisy decision count is (post-processing).
//!
//! [`aggregate`] owns the exact side (what is read, how a person is bounded) and [`noise`]
//! the noisy side (the budget split and the measurements); this module ties them to the cache,
//! the ledger and the file. See `docs/privacy.md` for each sensitivity.

pub mod aggregate;
pub mod noise;

use std::fs::File;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};

use self::aggregate::Aggregates;
use self::noise::{ReleaseNoise, noisy_release};
use super::ledger::{Caps, Ledger, Spend};
use super::mechanism::{self, Cost};
use crate::error::{Error, IoContext, Result};
use crate::intake::source::hex;
use crate::intake::vault::{self, Manifest};
use crate::workspace::{Workspace, replace_private_file};

/// The share of the policy's δ one release spends on revealing which communities exist
/// (partition selection). The ledger lets a month's and a rolling year's releases add at most
/// the policy's δ between them, so this allows a hundred releases in either; the threshold
/// grows only with the logarithm of 1/δ, so a small share costs little.
const SELECTION_DELTA_SHARE: f64 = 0.01;

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// What a release covers and costs.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    /// First day, inclusive.
    #[serde(with = "super::ledger::iso_date")]
    pub from: NaiveDate,
    /// Last day, inclusive.
    #[serde(with = "super::ledger::iso_date")]
    pub to: NaiveDate,
    /// Privacy loss to spend, as ε at the policy's δ.
    pub epsilon: f64,
}

/// A released number with its 95% interval from the noise.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// The value.
    pub value: f64,
    /// Standard deviation of the noise in it.
    pub std_error: f64,
    /// 95% interval from the noise alone.
    pub interval: [f64; 2],
}

impl Estimate {
    pub(crate) fn new(value: f64, std_error: f64) -> Estimate {
        Estimate { value, std_error, interval: [value - Z95 * std_error, value + Z95 * std_error] }
    }
}

/// One domain of one community.
#[derive(Debug, Clone, Serialize)]
pub struct DomainRow {
    /// The domain.
    pub domain: &'static str,
    /// Noisy number of (bounded) decisions.
    pub decisions: Option<Estimate>,
    /// Share of them that took the healthy option; `None` when withheld (the count is, or
    /// the noisy healthy or unhealthy count is under the minimum cell).
    pub healthy_rate: Option<Estimate>,
}

/// One community.
#[derive(Debug, Clone, Serialize)]
pub struct CommunityRow {
    /// Declared community name.
    pub community: String,
    /// Noisy number of people with `reports` consent.
    pub people: Estimate,
    /// Noisy number of decisions in the domains shown (the sum of their noisy counts; a
    /// withheld domain is left out so that its count cannot be recovered by subtraction).
    pub decisions: Estimate,
    /// Per domain.
    pub domains: Vec<DomainRow>,
}

/// The whole release as written to JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    /// Always `community-health`.
    pub release: &'static str,
    /// Schema version.
    pub format: u32,
    /// kith version.
    pub kith_version: &'static str,
    /// Snapshot the numbers come from.
    pub snapshot: String,
    /// The request.
    pub request: Request,
    /// Privacy accounting.
    pub privacy: PrivacyStatement,
    /// Released communities, by name.
    pub communities: Vec<CommunityRow>,
}

/// What a release cost and under which rules.
#[derive(Debug, Clone, Serialize)]
pub struct PrivacyStatement {
    /// Privacy unit.
    pub unit: &'static str,
    /// zCDP ρ actually spent.
    pub rho: f64,
    /// ε at `delta`.
    pub epsilon: f64,
    /// δ: the policy's, plus partition selection's.
    pub delta: f64,
    /// Decisions per person used, in all.
    pub decisions_per_person: u32,
    /// Decisions per person per domain used.
    pub decisions_per_person_domain: u32,
    /// Smallest cell shown.
    pub min_cell_size: u32,
}

/// A finished release request.
#[derive(Debug)]
pub struct Published {
    /// Where the JSON is.
    pub path: PathBuf,
    /// Whether it came from the cache (nothing spent).
    pub cached: bool,
    /// ρ and δ charged now (zero when cached).
    pub spent: Cost,
    /// ε charged now at the policy δ.
    pub epsilon_spent: f64,
    /// The snapshot.
    pub snapshot: String,
}

/// The newest snapshot, or a hint to ingest first.
pub fn newest_snapshot(workspace: &Workspace) -> Result<(String, PathBuf, Manifest)> {
    let vault_dir = workspace.folder("vault");
    let Some(name) = vault::snapshots(&vault_dir)?.pop() else {
        return Err(Error::Workspace {
            path: vault_dir,
            problem: "the vault holds no snapshot yet".into(),
            hint: Some("run `kith ingest EXPORT` first".into()),
        });
    };
    let dir = vault_dir.join(&name);
    let manifest = vault::read_manifest(&dir)?;
    Ok((name, dir, manifest))
}

/// Publishes the community health release for `request`, or returns the cached one.
pub fn publish(workspace: &Workspace, user: &str, request: &Request) -> Result<Published> {
    if request.from > request.to {
        return Err(Error::usage(format!("--from {} is after --to {}", request.from, request.to)));
    }
    if !(request.epsilon.is_finite() && request.epsilon > 0.0) {
        return Err(Error::usage("--epsilon must be a positive number"));
    }
    let policy = &workspace.policy().privacy;
    let (snapshot, snapshot_dir, _) = newest_snapshot(workspace)?;
    let definition = serde_json::json!({
        "statistic": "community-health",
        "version": 2,
        "snapshot": snapshot,
        "request": request,
        "k": policy.decisions_per_person,
        "k_d": policy.decisions_per_person_domain,
        "min_cell_size": policy.min_cell_size,
        "delta": policy.delta,
    });
    let key = hex(&Sha256::digest(definition.to_string().as_bytes()));
    let releases = workspace.folder("releases");
    let path = releases.join(format!(
        "community-health_{}_{}_{}.json",
        request.from,
        request.to,
        &key[..12]
    ));

    // One release at a time: two identical requests must not both miss the cache and publish
    // two independent noisy answers.
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(releases.join(".lock"))
        .at("opening the release lock", &releases)?;
    lock.lock().at("locking releases", &releases)?;
    if path.exists() {
        return Ok(Published {
            path,
            cached: true,
            spent: Cost::default(),
            epsilon_spent: 0.0,
            snapshot,
        });
    }

    let rho = mechanism::rho_for_epsilon(request.epsilon, policy.delta)?;
    let selection_delta = policy.delta * SELECTION_DELTA_SHARE;
    let (per_person, per_domain) =
        (policy.decisions_per_person, policy.decisions_per_person_domain);
    let noise = ReleaseNoise::calibrate(rho, selection_delta, per_person, per_domain)?;
    let planned = noise.cost();
    if planned.rho > rho * (1.0 + 1e-9) || planned.delta > selection_delta * (1.0 + 1e-9) {
        return Err(Error::internal("a release's measurements cost more than it reserves"));
    }
    let reserve = Spend {
        seq: 0,
        time: String::new(),
        user: user.to_owned(),
        purpose: "release".into(),
        researcher: false,
        snapshot: snapshot.clone(),
        definition: key.clone(),
        from: request.from,
        to: request.to,
        // Composition can land a rounding step above the target; charging the larger of the
        // two keeps the ledger at or above what the release states it cost.
        cost: Cost { rho: rho.max(planned.rho), delta: selection_delta.max(planned.delta) },
        check: String::new(),
    };
    let caps = Caps::from_policy(workspace.policy())?;
    let ledger = Ledger::at(&workspace.folder("ledger"));
    ledger.check(&reserve, &caps)?;

    crate::fault::point("release-read")?;
    let inputs = aggregate::read(&snapshot_dir, request.from, request.to)?;
    let key_ring = workspace.key_ring()?;
    let aggregates = Aggregates::bound(&inputs, per_person, per_domain, key_ring.current());
    let reserved = ledger.reserve(reserve, &caps)?;

    let release = noisy_release(&aggregates, &noise, request, policy, snapshot.clone())?;
    let mut bytes = serde_json::to_vec_pretty(&release)
        .map_err(|error| Error::internal(format!("encoding the release: {error}")))?;
    bytes.push(b'\n');
    crate::fault::point("release-write")?;
    replace_private_file(&path, &bytes)?;
    Ok(Published {
        path,
        cached: false,
        spent: reserved.cost,
        epsilon_spent: mechanism::epsilon(reserved.cost.rho, policy.delta)?,
        snapshot,
    })
}

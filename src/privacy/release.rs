//! The community health release: per declared community, how many people take part, how many
//! decisions they logged, and the healthy-choice rate per domain, each with its interval.
//!
//! The path every release takes: exact aggregates from the newest snapshot (people with
//! `reports` consent; their decisions in the period, bounded per person by `bounding`), then a
//! cache lookup, then a ledger reservation, then noise from `mechanism`, then an atomic write.
//! Communities come from the data, so they go through thresholded partition selection; a
//! community whose noisy head count is under the policy's minimum cell is withheld with all of
//! its numbers, and so is a domain whose noisy decision count is (post-processing).
//!
//! Budget split of the requested ε (as ρ): a fifth for the people counts and partition
//! selection, two fifths each for the per-domain decision counts and healthy sums. See
//! `docs/privacy.md` for each sensitivity.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Int64Type, UInt8Type, UInt32Type};
use chrono::NaiveDate;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::bounding::{self, Contribution};
use super::ledger::{Caps, Ledger, Spend};
use super::mechanism::{self, Cost, Noisy};
use crate::error::{Error, IoContext, Result};
use crate::intake::contract::{Domain, epoch_days};
use crate::intake::source::hex;
use crate::intake::vault::{self, Manifest};
use crate::workspace::{Workspace, replace_private_file};

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
    fn new(value: f64, std_error: f64) -> Estimate {
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
    /// Share of them that took the healthy option; `None` when withheld.
    pub healthy_rate: Option<Estimate>,
}

/// One community.
#[derive(Debug, Clone, Serialize)]
pub struct CommunityRow {
    /// Declared community name.
    pub community: String,
    /// Noisy number of people with `reports` consent.
    pub people: Estimate,
    /// Noisy number of decisions (sum of the domains' noisy counts).
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
    /// Communities withheld for being under the minimum cell (their names are not given).
    pub withheld_communities: usize,
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
        "version": 1,
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

    let aggregates = aggregate(workspace, &snapshot_dir, request)?;
    let rho = mechanism::rho_for_epsilon(request.epsilon, policy.delta)?;
    let selection_delta = policy.delta / 10.0;
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
        cost: Cost { rho, delta: selection_delta },
        check: String::new(),
    };
    let caps = Caps::from_policy(policy)?;
    Ledger::at(&workspace.folder("ledger")).reserve(reserve, &caps)?;

    let release = add_noise(&aggregates, request, rho, selection_delta, policy, snapshot.clone())?;
    let mut bytes = serde_json::to_vec_pretty(&release)
        .map_err(|error| Error::internal(format!("encoding the release: {error}")))?;
    bytes.push(b'\n');
    crate::fault::point("release-write")?;
    replace_private_file(&path, &bytes)?;
    Ok(Published {
        path,
        cached: false,
        spent: Cost { rho: release.privacy.rho, delta: release.privacy.delta - policy.delta },
        epsilon_spent: release.privacy.epsilon,
        snapshot,
    })
}

/// Exact, bounded aggregates per community.
struct Aggregates {
    names: Vec<String>,
    people: Vec<u64>,
    decisions: Vec<[f64; 8]>,
    healthy: Vec<[f64; 8]>,
    per_person: u32,
    per_domain: u32,
}

fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .at("listing", dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    Ok(files)
}

fn reader(
    path: &Path,
    columns: &[&str],
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let failed = |error: parquet::errors::ParquetError| Error::Integrity {
        file: path.to_owned(),
        line: None,
        problem: format!("the vault file does not read: {error}"),
    };
    let file = File::open(path).at("opening", path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(failed)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    builder.with_projection(mask).build().map_err(failed)
}

fn aggregate(workspace: &Workspace, snapshot: &Path, request: &Request) -> Result<Aggregates> {
    let policy = &workspace.policy().privacy;

    let mut names: Vec<String> = Vec::new();
    let mut community_of: HashMap<i64, u32> = HashMap::new();
    for path in parquet_files(&snapshot.join("people"))? {
        for batch in reader(&path, &["person", "community", "reports"])? {
            let batch = batch.map_err(|e| Error::internal(format!("reading people: {e}")))?;
            let person = batch.column(0).as_primitive::<Int64Type>();
            let community = batch.column(1).as_dictionary::<UInt32Type>();
            let values = community.values().as_string::<i32>();
            let reports = batch.column(2).as_boolean();
            for row in 0..batch.num_rows() {
                if !reports.value(row) {
                    continue;
                }
                let name = values.value(community.keys().value(row) as usize);
                let index = names.iter().position(|n| n == name).unwrap_or_else(|| {
                    names.push(name.to_owned());
                    names.len() - 1
                });
                community_of.insert(person.value(row), index as u32);
            }
        }
    }

    let (from, to) = (epoch_days(request.from), epoch_days(request.to));
    let mut rows: Vec<(Contribution, bool)> = Vec::new();
    for path in parquet_files(&snapshot.join("decisions"))? {
        for batch in reader(&path, &["person", "date", "domain", "healthy"])? {
            let batch = batch.map_err(|e| Error::internal(format!("reading decisions: {e}")))?;
            let person = batch.column(0).as_primitive::<Int64Type>();
            let date = batch.column(1).as_primitive::<Date32Type>();
            let domain = batch.column(2).as_dictionary::<UInt8Type>();
            let domain_names = domain.values().as_string::<i32>();
            let domain_index: Vec<u8> = (0..domain_names.len())
                .map(|i| Domain::parse(domain_names.value(i)).map_or(u8::MAX, |d| d.index() as u8))
                .collect();
            let healthy = batch.column(3).as_boolean();
            for row in 0..batch.num_rows() {
                let day = date.value(row);
                let id = person.value(row);
                if day < from || day > to || !community_of.contains_key(&id) {
                    continue;
                }
                let domain = domain_index[usize::from(domain.keys().value(row))];
                if domain == u8::MAX {
                    return Err(Error::internal("a vault decision has an unknown domain"));
                }
                rows.push((Contribution { person: id, date: day, domain }, healthy.value(row)));
            }
        }
    }
    rows.sort_by_key(|(c, _)| (c.person, c.date, c.domain));
    let contributions: Vec<Contribution> = rows.iter().map(|(c, _)| *c).collect();
    let key = workspace.key_ring()?;
    let keep = bounding::select(
        &contributions,
        policy.decisions_per_person,
        policy.decisions_per_person_domain,
        key.current(),
    );

    let mut aggregates = Aggregates {
        people: vec![0; names.len()],
        decisions: vec![[0.0; 8]; names.len()],
        healthy: vec![[0.0; 8]; names.len()],
        names,
        per_person: policy.decisions_per_person,
        per_domain: policy.decisions_per_person_domain,
    };
    for community in community_of.values() {
        aggregates.people[*community as usize] += 1;
    }
    for ((contribution, healthy), kept) in rows.iter().zip(keep) {
        if kept {
            let community = community_of[&contribution.person] as usize;
            let domain = usize::from(contribution.domain);
            aggregates.decisions[community][domain] += 1.0;
            if *healthy {
                aggregates.healthy[community][domain] += 1.0;
            }
        }
    }
    Ok(aggregates)
}

fn add_noise(
    aggregates: &Aggregates,
    request: &Request,
    rho: f64,
    selection_delta: f64,
    policy: &crate::workspace::PrivacyPolicy,
    snapshot: String,
) -> Result<Release> {
    let min_cell = f64::from(policy.min_cell_size);

    // People: each person is in one community and counts once there.
    let counts: HashMap<String, f64> = aggregates
        .names
        .iter()
        .zip(&aggregates.people)
        .map(|(name, count)| (name.clone(), *count as f64))
        .collect();
    let (selected, people_scale, people_cost) =
        mechanism::select_partitions(&counts, 1, 1.0, rho / 5.0, selection_delta)?;

    let mut shown: Vec<usize> = (0..aggregates.names.len())
        .filter(|&i| selected.get(&aggregates.names[i]).is_some_and(|v| *v >= min_cell))
        .collect();
    shown.sort_by(|&a, &b| aggregates.names[a].cmp(&aggregates.names[b]));
    let withheld = aggregates.names.len() - shown.len();

    // One person moves the stacked per-domain vectors of their own community only.
    let l2 = bounding::l2_contribution(aggregates.per_person, aggregates.per_domain, 8);
    let mut cost = people_cost;
    let mut communities = Vec::with_capacity(shown.len());
    if !shown.is_empty() {
        let stack = |rows: &[[f64; 8]]| shown.iter().flat_map(|&i| rows[i]).collect::<Vec<f64>>();
        let decisions = mechanism::gaussian_vector(&stack(&aggregates.decisions), l2, rho * 0.4)?;
        let healthy = mechanism::gaussian_vector(&stack(&aggregates.healthy), l2, rho * 0.4)?;
        cost = cost.plus(decisions.cost).plus(healthy.cost);

        for (position, &index) in shown.iter().enumerate() {
            let mut domains = Vec::with_capacity(8);
            let mut total = 0.0;
            for domain in Domain::ALL {
                let at = position * 8 + domain.index();
                let count = Noisy {
                    value: decisions.values[at],
                    std_error: decisions.std_error,
                    cost: Cost::default(),
                };
                let sum = Noisy {
                    value: healthy.values[at],
                    std_error: healthy.std_error,
                    cost: Cost::default(),
                };
                total += count.value;
                let visible = count.value >= min_cell;
                let rate = visible
                    .then(|| mechanism::ratio(&sum, &count))
                    .map(|(v, e)| Estimate::new(v, e));
                domains.push(DomainRow {
                    domain: domain.as_str(),
                    decisions: visible.then(|| Estimate::new(count.value, count.std_error)),
                    healthy_rate: rate,
                });
            }
            communities.push(CommunityRow {
                community: aggregates.names[index].clone(),
                people: Estimate::new(selected[&aggregates.names[index]], people_scale),
                decisions: Estimate::new(total, decisions.std_error * 8f64.sqrt()),
                domains,
            });
        }
    }

    Ok(Release {
        release: "community-health",
        format: 1,
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
        withheld_communities: withheld,
    })
}

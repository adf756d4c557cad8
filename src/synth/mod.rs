//! `kith synth`: a synthetic program export with planted, recorded truth.
//!
//! The population is built to look like a real wellness program — households, workplaces,
//! declared communities of uneven size, friendship circles with homophily, triadic closure,
//! long-range ties, a consent mix with revocations — and its weekly decisions carry planted
//! factor and peer effects. The export follows the input data contract exactly; `truth.json`
//! records every planted parameter and measured shape, `truth_people.csv` each person's hidden
//! cluster and orientation, so later stages can be tested for recovering them.
//!
//! The generator is the one place in kith that draws random numbers itself: it simulates
//! people, it releases nothing. Output is byte-identical for a seed whatever the thread count.

mod behaviour;
mod dirty;
mod network;
mod output;
mod params;
mod population;
mod rng;
mod tables;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::intake::contract::{CONSENTS, DECISIONS, PEOPLE, Scope, TIES};
use crate::progress::Progress;
use behaviour::DecisionShape;
use network::NetworkShape;
use output::{DateTable, ExpectedQuarantine, TableWriter};
use params::{Named, Params, by_domain, by_kind};
use tables::{Identities, TableContext};

pub use network::MAX_PEOPLE;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Number of enrolled people.
    pub people: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Share of rows, per table, to corrupt with one defect each (0 for a clean export).
    pub dirty_rate: f64,
    /// First day of the decision period; eight weeks follow by default.
    pub start: NaiveDate,
    /// Number of weeks of decisions.
    pub weeks: u32,
}

/// Monday 2026-01-05, the default first day of the decision period.
pub const DEFAULT_START: NaiveDate = match NaiveDate::from_ymd_opt(2026, 1, 5) {
    Some(date) => date,
    None => panic!("2026-01-05 is a valid date"),
};

impl SynthConfig {
    /// The default period starts on Monday 2026-01-05 and lasts eight weeks.
    pub fn new(people: usize, seed: u64) -> SynthConfig {
        SynthConfig { people, seed, dirty_rate: 0.0, start: DEFAULT_START, weeks: 8 }
    }

    fn check(&self) -> Result<()> {
        if self.people < 10 || self.people > MAX_PEOPLE {
            return Err(Error::usage(format!(
                "`--people` must lie between 10 and {MAX_PEOPLE}, got {}",
                self.people
            )));
        }
        if !(0.0..=0.5).contains(&self.dirty_rate) {
            return Err(Error::usage(format!(
                "`--dirty` is a share of rows between 0 and 0.5, got {}",
                self.dirty_rate
            )));
        }
        if self.weeks == 0 || self.weeks > 104 {
            return Err(Error::usage(format!(
                "`--weeks` must lie between 1 and 104, got {}",
                self.weeks
            )));
        }
        Ok(())
    }
}

/// Row counts of the written export.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SynthSummary {
    /// Data rows (without the header) of each table.
    pub people: u64,
    /// Nomination rows.
    pub ties: u64,
    /// Consent rows.
    pub consents: u64,
    /// Decision rows.
    pub decisions: u64,
    /// Rows carrying a planted defect (including rows of quarantined people).
    pub defects: u64,
}

/// Everything `truth.json` holds.
#[derive(Serialize)]
struct Truth<'a> {
    kith_version: &'static str,
    seed: u64,
    people: usize,
    period: Period,
    rows: &'a SynthSummary,
    dirty_rate: f64,
    communities: Vec<CommunityTruth<'a>>,
    clusters: ClusterTruth,
    network: NetworkShape,
    consent: ConsentTruth,
    decisions: DecisionShape,
    effects: EffectTruth,
    planted: &'a Params,
    expected_quarantine: Vec<ExpectedQuarantine>,
}

#[derive(Serialize)]
struct Period {
    start: String,
    end: String,
    weeks: u32,
}

#[derive(Serialize)]
struct CommunityTruth<'a> {
    name: &'a str,
    people: u32,
}

#[derive(Serialize)]
struct ClusterTruth {
    count: usize,
    mean_size: f64,
    file: &'static str,
}

#[derive(Serialize)]
struct ConsentTruth {
    /// People with each scope granted and not revoked by the end of the period, among people
    /// whose rows are clean.
    active: Named<u64>,
    rates: Named<f64>,
    revocation_rate: f64,
    no_consent_share: f64,
}

#[derive(Serialize)]
struct EffectTruth {
    model: &'static str,
    base_rate: Named<f64>,
    factors_pp: Named<Named<f64>>,
    peer_pp_per_unit_exposure: Named<f64>,
    exposure_centre: f64,
    orientation_sd_cluster: f64,
    orientation_sd_person: f64,
}

/// Generates an export into `out` (created if missing): `people.csv`, `ties.csv`,
/// `consents.csv`, `decisions.csv`, `truth.json` and `truth_people.csv`.
///
/// # Errors
///
/// A usage error for impossible settings; an I/O error naming the file if writing fails.
pub fn generate(config: &SynthConfig, out: &Path, progress: &Progress) -> Result<SynthSummary> {
    config.check()?;
    std::fs::create_dir_all(out).at("creating folder", out)?;
    let started = Instant::now();
    let params = Params::default();
    let seed = config.seed;
    let n = config.people;

    let population = population::build(&params, seed, n);
    let network = network::build(&params, seed, &population);
    tracing::info!(
        people = n,
        nominations = network.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "population and network built"
    );

    let identities = Identities::new(seed, config.start);
    let ids: Vec<[u8; 9]> =
        (0..n as u64).into_par_iter().map(|i| identities.source_id(i)).collect();
    let dirt = dirty::Dirt::new(seed, config.dirty_rate);
    let quarantined: Vec<bool> =
        (0..n as u32).into_par_iter().map(|p| dirt.person(p).is_some()).collect();
    let end = config.start + Duration::days(i64::from(config.weeks) * 7 - 1);
    let dates = DateTable::new(identities.first_dob, config.start + Duration::days(800));

    let ctx = TableContext {
        params: &params,
        seed,
        population: &population,
        identities: &identities,
        ids: &ids,
        quarantined: &quarantined,
        dirt,
        dates: &dates,
        start: config.start,
        weeks: config.weeks,
    };
    let written = write_tables(&ctx, &network, out, *progress)?;
    let summary = written.summary;

    write_truth_people(out, &population, &ids)?;
    let truth = Truth {
        kith_version: env!("CARGO_PKG_VERSION"),
        seed,
        people: n,
        period: Period {
            start: config.start.to_string(),
            end: end.to_string(),
            weeks: config.weeks,
        },
        rows: &summary,
        dirty_rate: config.dirty_rate,
        communities: population
            .communities
            .iter()
            .map(|c| CommunityTruth { name: &c.name, people: c.people.len() as u32 })
            .collect(),
        clusters: ClusterTruth {
            count: population.clusters.len(),
            mean_size: n as f64 / population.clusters.len().max(1) as f64,
            file: "truth_people.csv",
        },
        network: network::shape(&network, &population),
        consent: ConsentTruth {
            active: Scope::ALL.iter().map(|s| (s.as_str(), written.active[s.index()])).collect(),
            rates: Scope::ALL.iter().map(|s| (s.as_str(), params.scope_rates[s.index()])).collect(),
            revocation_rate: params.revocation_rate,
            no_consent_share: params.no_consent_share,
        },
        decisions: written.decisions,
        effects: EffectTruth {
            model: "linear probability: P(healthy) = base[domain] + orientation + factor effects \
                    + sum over tie kinds of peer[kind] * (last week's same-domain exposure - \
                    centre), clamped to [0.02, 0.98]; effects in percentage points",
            base_rate: by_domain(&params.base_rate),
            factors_pp: params.factor_table().into_iter().map(|(f, v)| (f, by_domain(v))).collect(),
            peer_pp_per_unit_exposure: by_kind(&params.peer_effect),
            exposure_centre: params.exposure_centre,
            orientation_sd_cluster: params.orientation_sd_cluster,
            orientation_sd_person: params.orientation_sd_person,
        },
        planted: &params,
        expected_quarantine: written.expected,
    };
    write_json(&out.join("truth.json"), &truth)?;

    tracing::info!(
        people = summary.people,
        ties = summary.ties,
        consents = summary.consents,
        decisions = summary.decisions,
        defects = summary.defects,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "synthetic export written"
    );
    Ok(summary)
}

/// What writing the four tables produced.
struct Written {
    summary: SynthSummary,
    active: [u64; 3],
    decisions: DecisionShape,
    expected: Vec<ExpectedQuarantine>,
}

/// Streams the four tables, people first, and gathers their counts and planted defects.
fn write_tables(
    ctx: &TableContext<'_>,
    network: &network::Network,
    out: &Path,
    progress: Progress,
) -> Result<Written> {
    let bar = progress.bar("synth", u64::from(ctx.weeks) + 3);

    let mut people = TableWriter::create(out, PEOPLE)?;
    tables::write_people(ctx, &mut people)?;
    bar.inc(1);
    let mut ties = TableWriter::create(out, TIES)?;
    tables::write_ties(ctx, network, &mut ties)?;
    bar.inc(1);
    let mut consents = TableWriter::create(out, CONSENTS)?;
    let active = tables::write_consents(ctx, &mut consents)?;
    bar.inc(1);

    let mut decisions = TableWriter::create(out, DECISIONS)?;
    let decision_shape = behaviour::simulate(ctx, network, &mut decisions, |_| bar.inc(1))?;
    bar.finish_and_clear();

    let mut summary = SynthSummary::default();
    let mut expected = Vec::new();
    for (writer, count) in [
        (people, &mut summary.people),
        (ties, &mut summary.ties),
        (consents, &mut summary.consents),
        (decisions, &mut summary.decisions),
    ] {
        let (rows, defects) = writer.finish()?;
        *count = rows;
        expected.extend(defects);
    }
    summary.defects = expected.len() as u64;

    Ok(Written { summary, active, decisions: decision_shape, expected })
}

/// The files `generate` writes, for callers that list or clean them.
pub fn output_files(out: &Path) -> Vec<PathBuf> {
    ["people.csv", "ties.csv", "consents.csv", "decisions.csv", "truth.json", "truth_people.csv"]
        .iter()
        .map(|name| out.join(name))
        .collect()
}

fn write_truth_people(
    out: &Path,
    population: &population::Population,
    ids: &[[u8; 9]],
) -> Result<()> {
    let path = out.join("truth_people.csv");
    let file = std::fs::File::create(&path).at("creating", &path)?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(writer, "source_id,cluster,community,orientation").at("writing", &path)?;
    for (person, id) in population.people.iter().zip(ids) {
        writer.write_all(id).at("writing", &path)?;
        writeln!(writer, ",{},{},{:.4}", person.cluster, person.community, person.orientation)
            .at("writing", &path)?;
    }
    writer.flush().at("writing", &path)
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let file = std::fs::File::create(path).at("creating", path)?;
    let mut writer = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut writer, value)
        .map_err(|error| Error::internal(format!("serialising {}: {error}", path.display())))?;
    writer.write_all(b"\n").at("writing", path)?;
    writer.flush().at("writing", path)
}

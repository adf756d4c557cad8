//! The budget ledger: an append-only record of every privacy spend, written and flushed before
//! any noisy value exists.
//!
//! `ledger/spend.jsonl` holds one JSON object per spend. A spend is *reserved*: under an
//! exclusive lock, the ledger is read, the caps are checked, and the line is appended and
//! fsynced; only then does the caller add noise. A crash after the reservation leaves a spend
//! with no release, which over-counts; nothing can under-count. A crash while the line is being
//! written leaves a torn last line (no line break yet) with no noise behind it, which readers
//! skip and the next writer cuts off. Any other unreadable line, or one whose checksum does not
//! match, stops kith with an integrity error.
//!
//! Caps come from the policy in ε at the policy's δ and are turned into zCDP ρ by OpenDP's
//! conversion (`mechanism::rho_for_epsilon`); spends add up in ρ. Three caps apply:
//! per calendar month of the data released (a release charges every month its date range
//! touches), over the 365 days before each spend (by ledger time), and per researcher per
//! month for researcher queries.
//!
//! Fault points: `ledger-append` (before the line is written), `ledger-flushed` (after the
//! flush, before the caller may add noise).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::mechanism::{Cost, epsilon, rho_for_epsilon};
use crate::error::{Error, IoContext, Result};
use crate::fault;
use crate::workspace::Policy;

/// Name of the ledger file in the workspace's `ledger` folder.
pub const LEDGER_FILE: &str = "spend.jsonl";

/// One spend, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spend {
    /// Position in the ledger, from 1.
    pub seq: u64,
    /// When it was reserved (UTC, RFC 3339).
    pub time: String,
    /// Operating-system user who spent it.
    pub user: String,
    /// `release` or `query`.
    pub purpose: String,
    /// Whether it counts against the user's researcher quota.
    pub researcher: bool,
    /// The snapshot the statistic was computed on.
    pub snapshot: String,
    /// Digest of the statistic's definition and parameters (the release cache key).
    pub definition: String,
    /// First day of the data released.
    #[serde(with = "iso_date")]
    pub from: NaiveDate,
    /// Last day of the data released.
    #[serde(with = "iso_date")]
    pub to: NaiveDate,
    /// What it cost.
    pub cost: Cost,
    /// SHA-256 (hex, first 16 digits) of the line with this field empty: catches a line
    /// damaged after it was written.
    pub check: String,
}

impl Spend {
    /// The line's checksum, over its JSON text with the `check` field empty. Computed on the
    /// text, not on re-encoded values, because a float need not re-encode to the same digits.
    fn checksum(body: &[u8]) -> String {
        crate::intake::source::hex(&sha2::Sha256::digest(body))[..16].to_owned()
    }

    /// The line's text with its checksum blanked, if it has one where kith writes it (last).
    fn blanked(line: &[u8]) -> Option<(Vec<u8>, &str)> {
        const FIELD: &[u8] = b"\"check\":\"";
        let at = line.windows(FIELD.len()).rposition(|w| w == FIELD)? + FIELD.len();
        let rest = std::str::from_utf8(&line[at..]).ok()?;
        let sum = rest.strip_suffix("\"}")?;
        let mut body = line[..at].to_vec();
        body.extend_from_slice(b"\"}");
        Some((body, sum))
    }

    /// The calendar months (`YYYY-MM`) its data range touches.
    pub fn months(&self) -> Vec<String> {
        months_between(self.from, self.to)
    }

    fn reserved_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.time).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// Dates as ISO text in JSON (chrono's own serde support would rebuild the DataFusion stack
/// with a different feature set, so the two functions are written here).
pub mod iso_date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(date)
    }

    /// Reads `YYYY-MM-DD`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::intake::contract::parse_date(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a YYYY-MM-DD date")))
    }
}

/// The months from `from` to `to`, inclusive, as `YYYY-MM`.
pub fn months_between(from: NaiveDate, to: NaiveDate) -> Vec<String> {
    let mut months = Vec::new();
    let (mut year, mut month) = (from.year(), from.month());
    while (year, month) <= (to.year(), to.month()) {
        months.push(format!("{year:04}-{month:02}"));
        (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    }
    months
}

/// The caps in ρ, converted once from the policy's ε caps.
///
/// The δ that partition selection spends is capped too: the spends of one month, and of any
/// rolling year, may add at most the policy's δ between them. So all releases of a month are
/// together (ε per period, 2δ)-DP: δ from converting their composed ρ, plus at most δ more
/// from the keys they revealed.
#[derive(Debug, Clone)]
pub struct Caps {
    /// Per calendar month of data.
    pub period: f64,
    /// Over any 365 days of spending.
    pub year: f64,
    /// Per researcher per month, unless `researcher_quota` names the researcher.
    pub researcher: f64,
    /// Per-researcher overrides of `researcher`, in ρ.
    pub researcher_quota: BTreeMap<String, f64>,
    /// The δ the ε figures are stated at, and the cap on added δ per month and per year.
    pub delta: f64,
}

impl Caps {
    /// Converts the policy's caps, with each researcher's own quota where it sets one.
    pub fn from_policy(policy: &Policy) -> Result<Caps> {
        let privacy = &policy.privacy;
        let mut researcher_quota = BTreeMap::new();
        for (user, epsilon) in &policy.roles.researcher_quota {
            researcher_quota.insert(user.clone(), rho_for_epsilon(*epsilon, privacy.delta)?);
        }
        Ok(Caps {
            period: rho_for_epsilon(privacy.epsilon_per_period, privacy.delta)?,
            year: rho_for_epsilon(privacy.epsilon_per_year, privacy.delta)?,
            researcher: rho_for_epsilon(privacy.researcher_epsilon_per_period, privacy.delta)?,
            researcher_quota,
            delta: privacy.delta,
        })
    }

    /// The monthly ρ quota of researcher `user`.
    pub fn researcher_cap(&self, user: &str) -> f64 {
        self.researcher_quota.get(user).copied().unwrap_or(self.researcher)
    }
}

/// What has been spent against one cap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    /// What the cap covers: `2026-02`, `last 365 days`, `2026-02 researcher ana`.
    pub scope: String,
    /// ρ spent.
    pub rho_spent: f64,
    /// ρ cap.
    pub rho_cap: f64,
    /// ε spent at the policy's δ.
    pub epsilon_spent: f64,
    /// ε left at the policy's δ.
    pub epsilon_left: f64,
}

/// The ledger of a workspace.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
}

impl Ledger {
    /// The ledger in a workspace's `ledger` folder.
    pub fn at(dir: &Path) -> Ledger {
        Ledger { dir: dir.to_owned() }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(LEDGER_FILE)
    }

    /// Every spend, oldest first. A torn last line (a crash mid-write) is skipped.
    pub fn spends(&self) -> Result<Vec<Spend>> {
        Ok(self.read()?.0)
    }

    /// Reads the spends and the byte length of the complete lines.
    fn read(&self) -> Result<(Vec<Spend>, u64)> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
            Err(error) => return Err(Error::io("reading the ledger", path, error)),
        };
        let mut spends = Vec::new();
        let mut complete = 0u64;
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        for (index, line) in lines.iter().enumerate() {
            // Only a last line without its line break can be a write cut short by a crash; the
            // break is the final byte written, so a complete but unreadable line is damage.
            let torn = index + 1 == lines.len() && !line.ends_with(b"\n");
            let parsed = line
                .strip_suffix(b"\n")
                .filter(|body| {
                    Spend::blanked(body).is_some_and(|(blank, sum)| Spend::checksum(&blank) == sum)
                })
                .and_then(|body| serde_json::from_slice::<Spend>(body).ok());
            match parsed {
                Some(spend) => {
                    complete += line.len() as u64;
                    spends.push(spend);
                }
                None if torn => {
                    tracing::warn!("the ledger ends in a torn line from a crash; it is ignored");
                }
                None => {
                    return Err(Error::Integrity {
                        file: path,
                        line: Some(index as u64 + 1),
                        problem: "the ledger line does not parse; restore the ledger".into(),
                    });
                }
            }
        }
        Ok((spends, complete))
    }

    /// Refuses `spend` now if it would pass a cap, so that a release can be turned away before
    /// it reads any data. Reserving checks again under the lock, since another process may
    /// spend in between.
    pub fn check(&self, spend: &Spend, caps: &Caps) -> Result<()> {
        let _lock = self.lock()?;
        let (spends, _) = self.read()?;
        check_caps(&spends, spend, caps, Utc::now())
    }

    /// Reserves `spend` if it fits every cap: appends and flushes it, and returns it with its
    /// sequence number. The caller may add noise only after this returns.
    pub fn reserve(&self, mut spend: Spend, caps: &Caps) -> Result<Spend> {
        let lock = self.lock()?;
        let (spends, complete) = self.read()?;
        let now = Utc::now();
        check_caps(&spends, &spend, caps, now)?;

        spend.seq = spends.last().map_or(1, |last| last.seq + 1);
        spend.time = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        spend.check = String::new();
        let blank = serde_json::to_vec(&spend)
            .map_err(|error| Error::internal(format!("encoding a spend: {error}")))?;
        spend.check = Spend::checksum(&blank);
        let mut line = serde_json::to_vec(&spend)
            .map_err(|error| Error::internal(format!("encoding a spend: {error}")))?;
        line.push(b'\n');

        fault::point("ledger-append")?;
        let path = self.path();
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .at("opening the ledger", &path)?;
        // Cut off a torn line left by a crash, then append after the last complete line.
        file.set_len(complete).at("repairing the ledger", &path)?;
        file.seek(SeekFrom::Start(complete)).at("appending to the ledger", &path)?;
        file.write_all(&line).at("appending to the ledger", &path)?;
        file.sync_all().at("flushing the ledger", &path)?;
        if created {
            // A new file's name lives in the folder: flush it too, or a crash could lose the
            // whole ledger with its first spend.
            File::open(&self.dir).and_then(|dir| dir.sync_all()).at("flushing", &self.dir)?;
        }
        fault::point("ledger-flushed")?;
        drop(lock);
        Ok(spend)
    }

    fn lock(&self) -> Result<File> {
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .at("opening the ledger lock", &path)?;
        file.lock().at("locking the ledger", &path)?;
        Ok(file)
    }

    /// Spent and left against each cap that `user`'s spends or any spend touches, for
    /// `kith budget`; `months` adds months with nothing spent yet.
    pub fn standings(&self, caps: &Caps, months: &[String]) -> Result<Vec<Standing>> {
        let spends = self.spends()?;
        let mut scopes: Vec<String> = months.to_vec();
        for spend in &spends {
            scopes.extend(spend.months());
        }
        scopes.sort();
        scopes.dedup();

        let mut standings = Vec::new();
        for month in &scopes {
            let spent = month_spent(&spends, month, None)?;
            standings.push(standing(month.clone(), spent, caps.period, caps.delta)?);
        }
        let year = year_spent(&spends, Utc::now())?;
        standings.push(standing("last 365 days".into(), year, caps.year, caps.delta)?);

        let mut researchers: Vec<(&str, String)> = spends
            .iter()
            .filter(|s| s.researcher)
            .flat_map(|s| s.months().into_iter().map(move |m| (s.user.as_str(), m)))
            .collect();
        researchers.sort();
        researchers.dedup();
        for (user, month) in researchers {
            let spent = month_spent(&spends, &month, Some(user))?;
            let scope = format!("{month} researcher {user}");
            standings.push(standing(scope, spent, caps.researcher_cap(user), caps.delta)?);
        }
        Ok(standings)
    }
}

fn standing(scope: String, spent: Cost, cap: f64, delta: f64) -> Result<Standing> {
    Ok(Standing {
        scope,
        rho_spent: spent.rho,
        rho_cap: cap,
        epsilon_spent: epsilon(spent.rho, delta)?,
        epsilon_left: epsilon_left(spent.rho, cap, delta)?,
    })
}

/// The largest ε one more spend may still have: the ε of the ρ left under the cap. (The
/// difference of the two ε figures would understate it, since ε grows slower than ρ.)
fn epsilon_left(spent: f64, cap: f64, delta: f64) -> Result<f64> {
    epsilon((cap - spent).max(0.0), delta)
}

/// The composed cost of the spends that pass `keep`, by OpenDP's composition rule.
fn composed(spends: &[Spend], keep: impl Fn(&Spend) -> bool) -> Result<Cost> {
    let costs: Vec<Cost> = spends.iter().filter(|s| keep(s)).map(|s| s.cost).collect();
    Cost::composed(&costs)
}

fn month_spent(spends: &[Spend], month: &str, researcher: Option<&str>) -> Result<Cost> {
    composed(spends, |s| {
        researcher.is_none_or(|user| s.researcher && s.user == user)
            && s.months().iter().any(|m| m == month)
    })
}

fn year_spent(spends: &[Spend], now: DateTime<Utc>) -> Result<Cost> {
    let start = now - chrono::Duration::days(365);
    composed(spends, |s| s.reserved_at().is_none_or(|t| t > start))
}

/// Refuses a spend that would pass a cap, naming the cap and what is left.
fn check_caps(spends: &[Spend], asked: &Spend, caps: &Caps, now: DateTime<Utc>) -> Result<()> {
    let refuse = |scope: String, spent: Cost, cap: f64| -> Result<()> {
        let left = epsilon_left(spent.rho, cap, caps.delta)?;
        Err(Error::Policy {
            message: format!(
                "this release would spend ε {:.4} but only ε {left:.4} of the {scope} budget \
                 (ε {:.4} at δ {}) remains; nothing was computed",
                epsilon(asked.cost.rho, caps.delta)?,
                epsilon(cap, caps.delta)?,
                caps.delta
            ),
        })
    };
    let refuse_delta = |scope: String, spent: Cost| -> Result<()> {
        Err(Error::Policy {
            message: format!(
                "this release would add δ {:e} for the keys it reveals, but the {scope} has \
                 only δ {:e} of its {:e} left; nothing was computed",
                asked.cost.delta,
                (caps.delta - spent.delta).max(0.0),
                caps.delta
            ),
        })
    };
    for month in asked.months() {
        let spent = month_spent(spends, &month, None)?;
        if spent.rho + asked.cost.rho > caps.period {
            return refuse(format!("{month} period"), spent, caps.period);
        }
        if spent.delta + asked.cost.delta > caps.delta {
            return refuse_delta(format!("{month} period"), spent);
        }
        if asked.researcher {
            let spent = month_spent(spends, &month, Some(&asked.user))?;
            let cap = caps.researcher_cap(&asked.user);
            if spent.rho + asked.cost.rho > cap {
                return refuse(format!("{month} researcher quota of {}", asked.user), spent, cap);
            }
        }
    }
    let year = year_spent(spends, now)?;
    if year.rho + asked.cost.rho > caps.year {
        return refuse("rolling-year".into(), year, caps.year);
    }
    if year.delta + asked.cost.delta > caps.delta {
        return refuse_delta("rolling year".into(), year);
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "sums of a few exact binary fractions")]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn spend(rho: f64, from: &str, to: &str) -> Spend {
        Spend {
            seq: 0,
            time: String::new(),
            user: "ana".into(),
            purpose: "release".into(),
            researcher: false,
            snapshot: "snapshot-000001".into(),
            definition: "test".into(),
            from: date(from),
            to: date(to),
            cost: Cost { rho, delta: 0.0 },
            check: String::new(),
        }
    }

    fn caps() -> Caps {
        let researcher_quota = BTreeMap::from([("bo".to_owned(), 0.3)]);
        Caps { period: 1.0, year: 2.5, researcher: 0.1, researcher_quota, delta: 1e-7 }
    }

    #[test]
    fn added_delta_is_capped_per_month_and_a_researcher_quota_overrides_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path());
        let mut selecting = spend(0.01, "2026-01-01", "2026-01-31");
        selecting.cost.delta = 4e-8;
        ledger.reserve(selecting.clone(), &caps()).unwrap();
        ledger.reserve(selecting.clone(), &caps()).unwrap();
        let error = ledger.reserve(selecting.clone(), &caps()).unwrap_err();
        assert!(error.to_string().contains("δ"), "{error}");
        assert!(ledger.check(&selecting, &caps()).is_err(), "check refuses what reserve would");
        assert_eq!(ledger.spends().unwrap().len(), 2);

        let mut research = spend(0.2, "2026-02-01", "2026-02-28");
        research.researcher = true;
        research.user = "bo".into();
        ledger.reserve(research.clone(), &caps()).unwrap();
        let error = ledger.reserve(research, &caps()).unwrap_err();
        assert!(error.to_string().contains("researcher quota of bo"), "{error}");
    }

    #[test]
    fn epsilon_left_is_what_one_more_spend_may_have() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path());
        ledger.reserve(spend(0.25, "2026-01-01", "2026-01-31"), &caps()).unwrap();
        let standings = ledger.standings(&caps(), &[]).unwrap();
        let january = standings.iter().find(|s| s.scope == "2026-01").unwrap();
        let left = january.epsilon_left;
        let rho_left = rho_for_epsilon(left, 1e-7).unwrap();
        assert!((rho_left - 0.75).abs() < 1e-6, "ε left {left} is ρ {rho_left}, not 0.75");
        // The difference of the ε figures understates it.
        let difference = epsilon(1.0, 1e-7).unwrap() - january.epsilon_spent;
        assert!(left > difference, "{left} <= {difference}");
        ledger.reserve(spend(0.75 * (1.0 - 1e-6), "2026-01-01", "2026-01-31"), &caps()).unwrap();
    }

    #[test]
    fn months_cover_the_range() {
        assert_eq!(
            months_between(date("2025-11-20"), date("2026-02-01")),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
    }

    #[test]
    fn spends_are_refused_past_each_cap_with_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path());
        ledger.reserve(spend(0.6, "2026-01-01", "2026-01-31"), &caps()).unwrap();
        let error = ledger.reserve(spend(0.6, "2026-01-15", "2026-02-10"), &caps()).unwrap_err();
        assert_eq!(error.exit_status().code(), 4);
        assert!(error.to_string().contains("2026-01 period"), "{error}");
        assert!(error.to_string().contains("remains"), "{error}");

        ledger.reserve(spend(0.9, "2026-02-01", "2026-02-28"), &caps()).unwrap();
        ledger.reserve(spend(0.9, "2026-03-01", "2026-03-31"), &caps()).unwrap();
        let error = ledger.reserve(spend(0.5, "2026-04-01", "2026-04-30"), &caps()).unwrap_err();
        assert!(error.to_string().contains("rolling-year"), "{error}");

        let mut research = spend(0.2, "2026-05-01", "2026-05-31");
        research.researcher = true;
        let error = ledger.reserve(research, &caps()).unwrap_err();
        assert!(error.to_string().contains("researcher quota of ana"), "{error}");

        let spends = ledger.spends().unwrap();
        assert_eq!(spends.iter().map(|s| s.seq).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path());
        ledger.reserve(spend(0.1, "2026-01-01", "2026-01-31"), &caps()).unwrap();
        let path = dir.path().join(LEDGER_FILE);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":2,\"ti").unwrap();
        assert_eq!(ledger.spends().unwrap().len(), 1);

        ledger.reserve(spend(0.1, "2026-01-01", "2026-01-31"), &caps()).unwrap();
        let spends = ledger.spends().unwrap();
        assert_eq!(spends.len(), 2);
        assert_eq!(spends[1].seq, 2);

        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(4).position(|w| w == b"0.1,").unwrap();
        bytes[at + 2] = b'0';
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(ledger.spends().unwrap_err().exit_status().code(), 6);
    }

    #[test]
    fn standings_show_spent_and_left() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::at(dir.path());
        ledger.reserve(spend(0.25, "2026-01-01", "2026-01-31"), &caps()).unwrap();
        let standings = ledger.standings(&caps(), &["2026-02".to_owned()]).unwrap();
        let january = standings.iter().find(|s| s.scope == "2026-01").unwrap();
        assert_eq!(january.rho_spent, 0.25);
        assert!(january.epsilon_left > 0.0 && january.epsilon_spent > 0.0);
        let february = standings.iter().find(|s| s.scope == "2026-02").unwrap();
        assert_eq!(february.rho_spent, 0.0);
        assert!(standings.iter().any(|s| s.scope == "last 365 days"));
    }
}

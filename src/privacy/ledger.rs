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
use crate::workspace::PrivacyPolicy;

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
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Per calendar month of data.
    pub period: f64,
    /// Over any 365 days of spending.
    pub year: f64,
    /// Per researcher per month.
    pub researcher: f64,
    /// The δ the ε figures are stated at.
    pub delta: f64,
}

impl Caps {
    /// Converts the policy's caps.
    pub fn from_policy(policy: &PrivacyPolicy) -> Result<Caps> {
        Ok(Caps {
            period: rho_for_epsilon(policy.epsilon_per_period, policy.delta)?,
            year: rho_for_epsilon(policy.epsilon_per_year, policy.delta)?,
            researcher: rho_for_epsilon(policy.researcher_epsilon_per_period, policy.delta)?,
            delta: policy.delta,
        })
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
            let spent = month_spent(&spends, month, None);
            standings.push(standing(month.clone(), spent, caps.period, caps.delta)?);
        }
        let year = year_spent(&spends, Utc::now());
        standings.push(standing("last 365 days".into(), year, caps.year, caps.delta)?);

        let mut researchers: Vec<(&str, String)> = spends
            .iter()
            .filter(|s| s.researcher)
            .flat_map(|s| s.months().into_iter().map(move |m| (s.user.as_str(), m)))
            .collect();
        researchers.sort();
        researchers.dedup();
        for (user, month) in researchers {
            let spent = month_spent(&spends, &month, Some(user));
            let scope = format!("{month} researcher {user}");
            standings.push(standing(scope, spent, caps.researcher, caps.delta)?);
        }
        Ok(standings)
    }
}

fn standing(scope: String, spent: f64, cap: f64, delta: f64) -> Result<Standing> {
    let epsilon_cap = epsilon(cap, delta)?;
    let epsilon_spent = epsilon(spent, delta)?;
    Ok(Standing {
        scope,
        rho_spent: spent,
        rho_cap: cap,
        epsilon_spent,
        epsilon_left: (epsilon_cap - epsilon_spent).max(0.0),
    })
}

fn month_spent(spends: &[Spend], month: &str, researcher: Option<&str>) -> f64 {
    spends
        .iter()
        .filter(|s| researcher.is_none_or(|user| s.researcher && s.user == user))
        .filter(|s| s.months().iter().any(|m| m == month))
        .map(|s| s.cost.rho)
        .fold(0.0, |total, rho| total + rho)
}

fn year_spent(spends: &[Spend], now: DateTime<Utc>) -> f64 {
    let start = now - chrono::Duration::days(365);
    spends
        .iter()
        .filter(|s| s.reserved_at().is_none_or(|t| t > start))
        .fold(0.0, |total, s| total + s.cost.rho)
}

/// Refuses a spend that would pass a cap, naming the cap and what is left.
fn check_caps(spends: &[Spend], asked: &Spend, caps: &Caps, now: DateTime<Utc>) -> Result<()> {
    let refuse = |scope: String, spent: f64, cap: f64| -> Result<()> {
        let left = (epsilon(cap, caps.delta)? - epsilon(spent, caps.delta)?).max(0.0);
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
    for month in asked.months() {
        let spent = month_spent(spends, &month, None);
        if spent + asked.cost.rho > caps.period {
            return refuse(format!("{month} period"), spent, caps.period);
        }
        if asked.researcher {
            let spent = month_spent(spends, &month, Some(&asked.user));
            if spent + asked.cost.rho > caps.researcher {
                return refuse(
                    format!("{month} researcher quota of {}", asked.user),
                    spent,
                    caps.researcher,
                );
            }
        }
    }
    let year = year_spent(spends, now);
    if year + asked.cost.rho > caps.year {
        return refuse("rolling-year".into(), year, caps.year);
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
        Caps { period: 1.0, year: 2.5, researcher: 0.1, delta: 1e-7 }
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

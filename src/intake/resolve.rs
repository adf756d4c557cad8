//! The rules that need the whole export: the export date, people who cannot be told apart,
//! rows that name a quarantined person, duplicate ties, and consent as of the export date.
//!
//! Identity is never guessed. When a `source_id` is on several people rows, or several rows
//! share one identity pair, every one of those rows is set aside, and so is every tie, consent
//! and decision that names them. A row's reason is the first that applies, in this order: its
//! own checks (found while decoding), an unknown person, a quarantined person, a duplicate tie.
//! Rows that pass every rule but lack the consent their table needs are excluded, and counted.
//!
//! Consent is judged on one day, the export date: a scope is active when it was granted on or
//! before that day and not revoked on or before it. Ties need active `network` consent at both
//! ends; decisions need `reports` or `research`; a person with no active scope is not stored.

use std::collections::{BTreeMap, HashMap};

use chrono::Datelike;
use foldhash::fast::RandomState;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::contract::{Reason, Scope, from_epoch_days};
use super::identity::{IdentityMap, Index, Indexer};
use super::parse::{
    ConsentPiece, DecisionPiece, NO_DATE, People, PeopleIndex, Quarantined, TiePiece,
};
use crate::error::Result;

/// Rows of one table by outcome. `read = stored + quarantined + excluded` always holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Count {
    /// Data rows in the file.
    pub read: u64,
    /// Rows written to the vault.
    pub stored: u64,
    /// Rows set aside in the quarantine file.
    pub quarantined: u64,
    /// Rows that broke no rule but lack the consent their use needs.
    pub excluded_by_consent: u64,
    /// Quarantined rows by reason code.
    pub reasons: BTreeMap<String, u64>,
}

impl Count {
    fn quarantine(&mut self, reason: Reason) {
        self.quarantined += 1;
        *self.reasons.entry(reason.as_str().to_owned()).or_default() += 1;
    }

    /// Whether every row read is accounted for.
    pub fn balances(&self) -> bool {
        self.read == self.stored + self.quarantined + self.excluded_by_consent
    }
}

/// What became of each people row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Set aside; everything naming the person is too.
    Quarantined,
    /// Valid, but with no active consent scope.
    Excluded,
    /// Written to the vault.
    Stored,
}

/// A table's rows to keep (one mask per piece) and its quarantine records.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Per piece, per decoded row: whether it is stored.
    pub keep: Vec<Vec<bool>>,
    /// Rows set aside, in file order.
    pub quarantined: Vec<Quarantined>,
    /// The accounting.
    pub count: Count,
}

/// The resolved export: who is stored under which ID, and each table's outcome.
#[derive(Debug)]
pub struct Resolved {
    /// The day consent was judged on (days since 1970).
    pub as_of: i32,
    /// Per people row.
    pub status: Vec<Status>,
    /// Person ID per people row (0 for quarantined rows).
    pub ids: Vec<i64>,
    /// Active scopes per people row, bit `Scope::index`.
    pub scopes: Vec<u8>,
    /// Keyed household code per interned household.
    pub household_codes: Vec<i64>,
    /// People first quarantine records and accounting.
    pub people: Outcome,
    /// Ties.
    pub ties: Outcome,
    /// Consents.
    pub consents: Outcome,
    /// Decisions.
    pub decisions: Outcome,
    /// People seen for the first time.
    pub new_people: usize,
}

/// The newest date any decoded row carries, the default export date.
pub fn newest_date(
    ties: &[TiePiece],
    consents: &[ConsentPiece],
    decisions: &[DecisionPiece],
) -> Option<i32> {
    let commons = ties
        .iter()
        .map(|p| &p.common)
        .chain(consents.iter().map(|p| &p.common))
        .chain(decisions.iter().map(|p| &p.common));
    commons.filter_map(|common| common.newest).max()
}

/// Household labels are coded under this label so a code never equals an identity index.
const HOUSEHOLD_LABEL: &[u8] = b"kith/household/v1\0";

/// The decoded non-people tables, handed through `resolve` unchanged.
pub type Decoded = (Vec<TiePiece>, Vec<ConsentPiece>, Vec<DecisionPiece>);

/// Applies every whole-export rule, assigning person IDs through `map`.
pub fn resolve(
    people: &People,
    index: &PeopleIndex<'_>,
    tables: Decoded,
    as_of: i32,
    map: &mut IdentityMap,
    indexer: &Indexer,
) -> Result<(Resolved, Decoded)> {
    let (ties, consents, decisions) = tables;
    let (mut status, mut people_outcome) = people_rules(people, index, as_of);

    let valid: Vec<usize> =
        (0..people.len()).filter(|&row| status[row] != Status::Quarantined).collect();
    let pair_indexes: Vec<Index> =
        valid.par_iter().map(|&row| indexer.pair(people.dob[row], people.ssn_last4[row])).collect();
    let (assigned, new_people) = map.assign(&pair_indexes)?;
    let mut ids = vec![0i64; people.len()];
    valid.iter().zip(assigned).for_each(|(&row, id)| ids[row] = id);

    let scopes = active_scopes(people.len(), &consents, as_of);
    for row in valid {
        status[row] = if scopes[row] == 0 { Status::Excluded } else { Status::Stored };
    }
    for row_status in &status {
        match row_status {
            Status::Stored => people_outcome.count.stored += 1,
            Status::Excluded => people_outcome.count.excluded_by_consent += 1,
            Status::Quarantined => {}
        }
    }
    people_outcome.keep = vec![status.iter().map(|s| *s == Status::Stored).collect()];

    let household_codes = people
        .households
        .texts
        .par_iter()
        .map(|label| indexer.code(HOUSEHOLD_LABEL, label.as_bytes()))
        .collect();

    let judge = Judge { people, status: &status, scopes: &scopes };
    let resolved = Resolved {
        as_of,
        ties: judge.ties(&ties),
        consents: judge.consents(&consents),
        decisions: judge.decisions(&decisions),
        status,
        ids,
        scopes,
        household_codes,
        people: people_outcome,
        new_people,
    };
    Ok((resolved, (ties, consents, decisions)))
}

/// Sets aside people rows by their own defects, birth after the export date, shared
/// `source_id`s and shared identity pairs.
fn people_rules(people: &People, index: &PeopleIndex<'_>, as_of: i32) -> (Vec<Status>, Outcome) {
    let mut reasons: Vec<Option<(Reason, Option<&'static str>)>> = people.defects.clone();
    for (row, reason) in reasons.iter_mut().enumerate() {
        if reason.is_none() && people.dob[row] > as_of {
            *reason = Some((Reason::DobInFuture, Some("dob")));
        }
    }
    // Every row whose identity pair reads counts as a claim on it, whatever else is wrong
    // with the row: two rows claiming one identity leave it unknown which one it is.
    let claims: Vec<bool> = (0..people.len()).map(|row| people.dob[row] != NO_DATE).collect();

    for (row, reason) in reasons.iter_mut().enumerate() {
        let shared = people.source_id(row).is_some_and(|id| index.count(id) > 1);
        if reason.is_none() && shared {
            *reason = Some((Reason::DuplicateSourceId, Some("source_id")));
        }
    }

    let mut pairs: HashMap<(i32, [u8; 4]), u32, RandomState> = HashMap::default();
    for row in (0..people.len()).filter(|&row| claims[row]) {
        *pairs.entry((people.dob[row], people.ssn_last4[row])).or_default() += 1;
    }
    for row in (0..people.len()).filter(|&row| claims[row]) {
        if reasons[row].is_none() && pairs[&(people.dob[row], people.ssn_last4[row])] > 1 {
            reasons[row] = Some((Reason::SharedIdentity, None));
        }
    }

    let mut outcome =
        Outcome { count: Count { read: people.read, ..Count::default() }, ..Outcome::default() };
    let mut status = Vec::with_capacity(people.len());
    for (row, reason) in reasons.into_iter().enumerate() {
        match reason {
            Some((reason, column)) => {
                outcome.count.quarantine(reason);
                outcome.quarantined.push(Quarantined {
                    line: people.lines[row],
                    source_id: people.source_id(row).map(Into::into),
                    column,
                    reason,
                });
                status.push(Status::Quarantined);
            }
            None => status.push(Status::Stored),
        }
    }
    (status, outcome)
}

/// Active consent scopes per people row on the export date.
fn active_scopes(people: usize, consents: &[ConsentPiece], as_of: i32) -> Vec<u8> {
    let mut scopes = vec![0u8; people];
    for piece in consents {
        for row in 0..piece.person.len() {
            let revoked = piece.revoked[row];
            let active = piece.granted[row] <= as_of && (revoked == NO_DATE || revoked > as_of);
            if active {
                scopes[piece.person[row] as usize] |= 1 << piece.scope[row];
            }
        }
    }
    scopes
}

struct Judge<'a> {
    people: &'a People,
    status: &'a [Status],
    scopes: &'a [u8],
}

impl Judge<'_> {
    fn has(&self, person: u32, scope: Scope) -> bool {
        self.status[person as usize] == Status::Stored
            && self.scopes[person as usize] & (1 << scope.index()) != 0
    }

    fn quarantined(&self, person: u32) -> bool {
        self.status[person as usize] == Status::Quarantined
    }

    /// Starts a table's outcome from its decode-time quarantine.
    fn start(commons: impl Iterator<Item = (u64, Vec<Quarantined>)>) -> Outcome {
        let mut outcome = Outcome::default();
        for (read, quarantined) in commons {
            outcome.count.read += read;
            for row in quarantined {
                outcome.count.quarantine(row.reason);
                outcome.quarantined.push(row);
            }
        }
        outcome
    }

    /// Sets a row aside for naming a quarantined person. No column is blamed: the row itself
    /// is sound, and a tie may name the person at either end.
    fn set_aside(&self, outcome: &mut Outcome, line: u32, person: u32) {
        outcome.count.quarantine(Reason::PersonQuarantined);
        outcome.quarantined.push(Quarantined {
            line: u64::from(line),
            source_id: self.people.source_id(person as usize).map(Into::into),
            column: None,
            reason: Reason::PersonQuarantined,
        });
    }

    /// Keeps a row or counts it as excluded.
    fn decide(outcome: &mut Outcome, mask: &mut Vec<bool>, allowed: bool) {
        mask.push(allowed);
        if allowed {
            outcome.count.stored += 1;
        } else {
            outcome.count.excluded_by_consent += 1;
        }
    }

    fn consents(&self, pieces: &[ConsentPiece]) -> Outcome {
        let mut outcome =
            Self::start(pieces.iter().map(|p| (p.common.read, p.common.quarantined.clone())));
        for piece in pieces {
            let mut mask = Vec::with_capacity(piece.person.len());
            for (row, &person) in piece.person.iter().enumerate() {
                if self.quarantined(person) {
                    let line = piece.common.lines[row];
                    self.set_aside(&mut outcome, line, person);
                    mask.push(false);
                } else {
                    let stored = self.status[person as usize] == Status::Stored;
                    Self::decide(&mut outcome, &mut mask, stored);
                }
            }
            outcome.keep.push(mask);
        }
        finish(outcome)
    }

    fn decisions(&self, pieces: &[DecisionPiece]) -> Outcome {
        let mut outcome =
            Self::start(pieces.iter().map(|p| (p.common.read, p.common.quarantined.clone())));
        for piece in pieces {
            let mut mask = Vec::with_capacity(piece.person.len());
            for (row, &person) in piece.person.iter().enumerate() {
                if self.quarantined(person) {
                    let line = piece.common.lines[row];
                    self.set_aside(&mut outcome, line, person);
                    mask.push(false);
                } else {
                    let allowed =
                        self.has(person, Scope::Reports) || self.has(person, Scope::Research);
                    Self::decide(&mut outcome, &mut mask, allowed);
                }
            }
            outcome.keep.push(mask);
        }
        finish(outcome)
    }

    fn ties(&self, pieces: &[TiePiece]) -> Outcome {
        let mut outcome =
            Self::start(pieces.iter().map(|p| (p.common.read, p.common.quarantined.clone())));
        let duplicates = duplicate_ties(pieces, |person| self.quarantined(person));
        for (number, piece) in pieces.iter().enumerate() {
            let mut mask = Vec::with_capacity(piece.from.len());
            for row in 0..piece.from.len() {
                let (from, to, line) = (piece.from[row], piece.to[row], piece.common.lines[row]);
                if self.quarantined(from) || self.quarantined(to) {
                    self.set_aside(&mut outcome, line, from);
                    mask.push(false);
                } else if duplicates.contains(&(number as u32, row as u32)) {
                    outcome.count.quarantine(Reason::DuplicateTie);
                    outcome.quarantined.push(Quarantined {
                        line: u64::from(line),
                        source_id: self.people.source_id(from as usize).map(Into::into),
                        column: None,
                        reason: Reason::DuplicateTie,
                    });
                    mask.push(false);
                } else {
                    let allowed = self.has(from, Scope::Network) && self.has(to, Scope::Network);
                    Self::decide(&mut outcome, &mut mask, allowed);
                }
            }
            outcome.keep.push(mask);
        }
        finish(outcome)
    }
}

/// Puts quarantine records in file order.
fn finish(mut outcome: Outcome) -> Outcome {
    outcome.quarantined.par_sort_by_key(|row| row.line);
    outcome
}

/// Every repeat of a (from, to, kind) nomination after its first, as (piece, row); ties that
/// touch a quarantined person take no part. Sorting packed keys beats hashing ten million of
/// them, and keeps memory at 16 bytes a tie.
fn duplicate_ties(
    pieces: &[TiePiece],
    quarantined: impl Fn(u32) -> bool + Sync,
) -> std::collections::HashSet<(u32, u32), RandomState> {
    let mut keys: Vec<(u64, u64)> = pieces
        .par_iter()
        .enumerate()
        .flat_map_iter(|(number, piece)| {
            let quarantined = &quarantined;
            (0..piece.from.len()).filter_map(move |row| {
                let (from, to) = (piece.from[row], piece.to[row]);
                if quarantined(from) || quarantined(to) {
                    return None;
                }
                let pair = (u64::from(from) << 32) | u64::from(to);
                let position =
                    ((number as u64) << 40) | ((u64::from(piece.kind[row])) << 32) | row as u64;
                Some((pair, position))
            })
        })
        .collect();
    keys.par_sort_unstable_by_key(|&(pair, position)| (pair, (position >> 32) & 0xff, position));
    keys.windows(2)
        .filter(|w| w[0].0 == w[1].0 && (w[0].1 >> 32) & 0xff == (w[1].1 >> 32) & 0xff)
        .map(|w| ((w[1].1 >> 40) as u32, (w[1].1 & 0xffff_ffff) as u32))
        .collect()
}

/// The age band of a date of birth on the export date; bands are wide enough that they say
/// little about anyone and are the only trace of the birth date kept.
pub fn age_band(dob: i32, as_of: i32) -> &'static str {
    let (Some(born), Some(today)) = (from_epoch_days(dob), from_epoch_days(as_of)) else {
        return "unknown";
    };
    let mut age = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    match age {
        ..18 => "under 18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        55..=64 => "55-64",
        65..=74 => "65-74",
        _ => "75+",
    }
}

/// The age bands, in order, for dictionary columns.
pub const AGE_BANDS: [&str; 9] =
    ["under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75+", "unknown"];

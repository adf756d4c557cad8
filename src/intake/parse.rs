//! Decoding every row of an export into compact columns, in parallel, before any cross-row
//! rule is applied.
//!
//! People are read first and kept whole (they are few); their `source_id`s become an index
//! that the other tables' pieces look up while they are decoded on rayon's threads. Each piece
//! keeps plain vectors (people as positions into the people table, dates as days, vocabularies
//! as small integers) so the large tables cost a few dozen bytes a row and no allocation per
//! row. Rows that fail their own checks are set aside here with their line; rules that need
//! the whole export are `resolve`'s.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use rayon::prelude::*;

use super::contract::Reason;
use super::rows::{self, Defect, Layout, RawRow};
use super::source::{Piece, RawRowDyn, TableSource};
use crate::error::{Error, Result};

/// Marks an absent optional date.
pub const NO_DATE: i32 = i32::MIN;
/// Marks an absent optional interned text.
pub const NO_TEXT: u32 = u32::MAX;
/// Marks an absent declared sex.
pub const NO_SEX: u8 = u8::MAX;

/// A row set aside, before it is written to the quarantine file.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// Line in the file (row number for Parquet).
    pub line: u64,
    /// The row's `source_id` (`from_id` for ties), when readable.
    pub source_id: Option<Box<str>>,
    /// The column to blame.
    pub column: Option<&'static str>,
    /// Why.
    pub reason: Reason,
}

impl Quarantined {
    fn new(line: u64, source_id: Option<&str>, (reason, column): Defect) -> Quarantined {
        Quarantined { line, source_id: source_id.map(Into::into), column, reason }
    }
}

/// Distinct texts, numbered in order of first sight.
#[derive(Debug, Default)]
pub struct Interner {
    numbers: HashMap<Box<str>, u32, RandomState>,
    /// The texts, by number.
    pub texts: Vec<Box<str>>,
}

impl Interner {
    fn number(&mut self, text: &str) -> u32 {
        if let Some(&number) = self.numbers.get(text) {
            return number;
        }
        let number = self.texts.len() as u32;
        self.texts.push(text.into());
        self.numbers.insert(text.into(), number);
        number
    }
}

/// Every people row, whether it passed or not, in file order.
#[derive(Debug, Default)]
pub struct People {
    /// Rows read.
    pub read: u64,
    /// Line of each row.
    pub lines: Vec<u64>,
    /// `source_id` of each row, empty when unreadable.
    source_ids: Vec<u8>,
    source_id_ends: Vec<u32>,
    /// The row's own defect, if it failed its checks.
    pub defects: Vec<Option<Defect>>,
    /// Date of birth in days; meaningful only for rows without a defect.
    pub dob: Vec<i32>,
    /// The four digits of the identity pair.
    pub ssn_last4: Vec<[u8; 4]>,
    /// Interned community.
    pub community: Vec<u32>,
    /// Interned workplace or [`NO_TEXT`].
    pub workplace: Vec<u32>,
    /// Interned household or [`NO_TEXT`].
    pub household: Vec<u32>,
    /// Index into `Sex::ALL` or [`NO_SEX`].
    pub sex: Vec<u8>,
    /// Community names.
    pub communities: Interner,
    /// Workplace names.
    pub workplaces: Interner,
    /// Household labels.
    pub households: Interner,
}

impl People {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The `source_id` of row `row`, if it was readable.
    pub fn source_id(&self, row: usize) -> Option<&str> {
        let start = if row == 0 { 0 } else { self.source_id_ends[row - 1] as usize };
        let bytes = &self.source_ids[start..self.source_id_ends[row] as usize];
        std::str::from_utf8(bytes).ok().filter(|text| !text.is_empty())
    }

    fn push(&mut self, line: u64, layout: &Layout, row: &impl RawRow) {
        self.read += 1;
        self.lines.push(line);
        let decoded = rows::person(layout, row);
        let source_id = match &decoded {
            Ok(person) => Some(person.source_id),
            Err(_) => layout.readable_source_id(row),
        };
        self.source_ids.extend_from_slice(source_id.unwrap_or_default().as_bytes());
        self.source_id_ends.push(self.source_ids.len() as u32);
        match decoded {
            Ok(person) => {
                self.defects.push(None);
                self.dob.push(person.dob);
                self.ssn_last4.push(person.ssn_last4);
                self.community.push(self.communities.number(person.community));
                self.workplace
                    .push(person.workplace.map_or(NO_TEXT, |w| self.workplaces.number(w)));
                self.household
                    .push(person.household.map_or(NO_TEXT, |h| self.households.number(h)));
                self.sex.push(person.sex.map_or(NO_SEX, |sex| sex.index() as u8));
            }
            Err(defect) => {
                // The pair is kept (in memory only) so that a defective row still counts as a
                // claim on its identity; nothing of a defective row is stored.
                let (dob, ssn) = layout.readable_identity(row).unwrap_or((NO_DATE, [0; 4]));
                self.defects.push(Some(defect));
                self.dob.push(dob);
                self.ssn_last4.push(ssn);
                self.community.push(NO_TEXT);
                self.workplace.push(NO_TEXT);
                self.household.push(NO_TEXT);
                self.sex.push(NO_SEX);
            }
        }
    }
}

/// Reads the people table, one piece after another.
pub fn read_people(
    source: &TableSource,
    layout: &Layout,
    on_bytes: &dyn Fn(u64),
) -> Result<People> {
    let mut people = People::default();
    for piece in &source.pieces {
        source.for_each_row(piece, |line, row| people.push(line, layout, &row), on_bytes)?;
    }
    if people.source_ids.len() > u32::MAX as usize {
        return Err(Error::NotSupported {
            message: "a people table with more than 4 GiB of identifiers".into(),
        });
    }
    Ok(people)
}

/// From `source_id` to the first people row that carries it, and how many rows carry it.
#[derive(Debug)]
pub struct PeopleIndex<'p> {
    rows: HashMap<&'p str, (u32, u32), RandomState>,
}

impl<'p> PeopleIndex<'p> {
    /// Indexes every people row with a readable `source_id`.
    pub fn new(people: &'p People) -> PeopleIndex<'p> {
        let mut rows: HashMap<&str, (u32, u32), RandomState> =
            HashMap::with_capacity_and_hasher(people.len(), RandomState::default());
        for row in 0..people.len() {
            if let Some(source_id) = people.source_id(row) {
                rows.entry(source_id)
                    .and_modify(|(_, count)| *count += 1)
                    .or_insert((row as u32, 1));
            }
        }
        PeopleIndex { rows }
    }

    /// The first people row with this `source_id`.
    pub fn row(&self, source_id: &str) -> Option<u32> {
        self.rows.get(source_id).map(|(row, _)| *row)
    }

    /// How many people rows carry this `source_id`.
    pub fn count(&self, source_id: &str) -> u32 {
        self.rows.get(source_id).map_or(0, |(_, count)| *count)
    }
}

/// What every piece of a non-people table keeps besides its columns.
#[derive(Debug, Default)]
pub struct PieceCommon {
    /// Rows read.
    pub read: u64,
    /// Rows set aside by their own checks or an unknown person.
    pub quarantined: Vec<Quarantined>,
    /// Line of each decoded row.
    pub lines: Vec<u32>,
    /// Newest date among decoded rows.
    pub newest: Option<i32>,
}

impl PieceCommon {
    fn start_row(&mut self) {
        self.read += 1;
    }

    fn keep(&mut self, line: u64) {
        // Lines past u32 would need a 4-billion-row table; the caller refuses those first.
        self.lines.push(line as u32);
    }

    fn saw(&mut self, date: i32) {
        self.newest = Some(self.newest.map_or(date, |newest| newest.max(date)));
    }

    fn reject(&mut self, line: u64, source_id: Option<&str>, defect: Defect) {
        self.quarantined.push(Quarantined::new(line, source_id, defect));
    }
}

/// Decoded ties of one piece.
#[derive(Debug, Default)]
pub struct TiePiece {
    /// Rows read, set aside, and lines.
    pub common: PieceCommon,
    /// People row of the nominator.
    pub from: Vec<u32>,
    /// People row of the person named.
    pub to: Vec<u32>,
    /// `TieKind` index.
    pub kind: Vec<u8>,
    /// Weight in (0, 1].
    pub weight: Vec<f64>,
    /// Start day or [`NO_DATE`].
    pub since: Vec<i32>,
}

/// Decoded consents of one piece.
#[derive(Debug, Default)]
pub struct ConsentPiece {
    /// Rows read, set aside, and lines.
    pub common: PieceCommon,
    /// People row.
    pub person: Vec<u32>,
    /// `Scope` index.
    pub scope: Vec<u8>,
    /// Day granted.
    pub granted: Vec<i32>,
    /// Day revoked or [`NO_DATE`].
    pub revoked: Vec<i32>,
}

/// Decoded decisions of one piece.
#[derive(Debug, Default)]
pub struct DecisionPiece {
    /// Rows read, set aside, and lines.
    pub common: PieceCommon,
    /// People row.
    pub person: Vec<u32>,
    /// Day of the decision.
    pub date: Vec<i32>,
    /// `Domain` index.
    pub domain: Vec<u8>,
    /// Flag bits, see `rows::DECISION_FLAGS`.
    pub flags: Vec<u8>,
    /// Money spent.
    pub cost: Vec<f64>,
    /// Minutes spent.
    pub minutes: Vec<f64>,
}

/// A piece type that a table's rows decode into.
pub trait TablePiece: Default + Send {
    /// Decodes one row, looking people up in `index`.
    fn push(&mut self, line: u64, layout: &Layout, row: &impl RawRow, index: &PeopleIndex<'_>);
}

fn unknown(
    index: &PeopleIndex<'_>,
    source_id: &str,
    column: &'static str,
    reason: Reason,
) -> Result<u32, Defect> {
    index.row(source_id).ok_or((reason, Some(column)))
}

impl TablePiece for TiePiece {
    fn push(&mut self, line: u64, layout: &Layout, row: &impl RawRow, index: &PeopleIndex<'_>) {
        self.common.start_row();
        let decoded = rows::tie(layout, row).and_then(|tie| {
            let from = unknown(index, tie.from, "from_id", Reason::UnknownTieEnd)?;
            let to = unknown(index, tie.to, "to_id", Reason::UnknownTieEnd)?;
            Ok((tie, from, to))
        });
        match decoded {
            Ok((tie, from, to)) => {
                self.common.keep(line);
                if let Some(since) = tie.since {
                    self.common.saw(since);
                }
                self.from.push(from);
                self.to.push(to);
                self.kind.push(tie.kind.index() as u8);
                self.weight.push(tie.weight);
                self.since.push(tie.since.unwrap_or(NO_DATE));
            }
            Err(defect) => self.common.reject(line, layout.readable_source_id(row), defect),
        }
    }
}

impl TablePiece for ConsentPiece {
    fn push(&mut self, line: u64, layout: &Layout, row: &impl RawRow, index: &PeopleIndex<'_>) {
        self.common.start_row();
        let decoded = rows::consent(layout, row).and_then(|consent| {
            let person = unknown(index, consent.source_id, "source_id", Reason::UnknownPerson)?;
            Ok((consent, person))
        });
        match decoded {
            Ok((consent, person)) => {
                self.common.keep(line);
                self.common.saw(consent.granted);
                if let Some(revoked) = consent.revoked {
                    self.common.saw(revoked);
                }
                self.person.push(person);
                self.scope.push(consent.scope.index() as u8);
                self.granted.push(consent.granted);
                self.revoked.push(consent.revoked.unwrap_or(NO_DATE));
            }
            Err(defect) => self.common.reject(line, layout.readable_source_id(row), defect),
        }
    }
}

impl TablePiece for DecisionPiece {
    fn push(&mut self, line: u64, layout: &Layout, row: &impl RawRow, index: &PeopleIndex<'_>) {
        self.common.start_row();
        let decoded = rows::decision(layout, row).and_then(|decision| {
            let person = unknown(index, decision.source_id, "source_id", Reason::UnknownPerson)?;
            Ok((decision, person))
        });
        match decoded {
            Ok((decision, person)) => {
                self.common.keep(line);
                self.common.saw(decision.date);
                self.person.push(person);
                self.date.push(decision.date);
                self.domain.push(decision.domain.index() as u8);
                self.flags.push(decision.flags);
                self.cost.push(decision.cost);
                self.minutes.push(decision.minutes);
            }
            Err(defect) => self.common.reject(line, layout.readable_source_id(row), defect),
        }
    }
}

/// Decodes every piece of a table in parallel, keeping file order.
pub fn read_table<P: TablePiece>(
    source: &TableSource,
    layout: &Layout,
    index: &PeopleIndex<'_>,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Vec<P>> {
    if source.bytes > u64::from(u32::MAX) * 8 {
        return Err(Error::NotSupported {
            message: format!(
                "`{}` is over 32 GiB; split the export by period and ingest each part",
                source.path.display()
            ),
        });
    }
    source
        .pieces
        .par_iter()
        .map(|piece: &Piece| {
            let mut decoded = P::default();
            source.for_each_row(
                piece,
                |line, row: &dyn RawRowDyn| decoded.push(line, layout, &row, index),
                on_bytes,
            )?;
            Ok(decoded)
        })
        .collect()
}

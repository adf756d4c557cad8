//! Malformed rows for `--dirty RATE`: which rows break, how, and what intake must say.
//!
//! Each row is corrupted with probability `RATE`, decided by a keyed hash of the row (never by
//! a shared stream, so parallel blocks agree), with one defect at a time so the expected
//! reason is unambiguous. A broken people row quarantines its person, and with them every tie,
//! consent and decision that names them (`person_quarantined`); rows that touch such a person
//! are left otherwise clean. Identity defects add a second people row: the same `source_id`
//! with another identity pair, or another `source_id` with the same pair.

use super::output::Chunk;
use super::rng::{Stream, keyed, unit};
use crate::intake::contract::Reason;

/// What happens to a field when a row is corrupted.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// Replace the column's value.
    Set(&'static str),
    /// Replace the column with an identifier no person has.
    UnknownId,
    /// Replace the column with the value of another column.
    CopyFrom(&'static str),
    /// Replace the column with a field longer than the contract allows.
    Long,
    /// Remove the last field.
    DropLast,
    /// Add a field at the end.
    AddField,
    /// Write the row twice; the second copy is the defect.
    Duplicate,
}

type Defect = (Reason, Option<&'static str>, Mutation);

const TIE_DEFECTS: &[Defect] = &[
    (Reason::UnknownTieEnd, Some("to_id"), Mutation::UnknownId),
    (Reason::SelfTie, Some("to_id"), Mutation::CopyFrom("from_id")),
    (Reason::DuplicateTie, None, Mutation::Duplicate),
    (Reason::UnknownKind, Some("kind"), Mutation::Set("acquaintance")),
    (Reason::OutOfRange, Some("weight"), Mutation::Set("1.5")),
    (Reason::BadValue, Some("weight"), Mutation::Set("strong")),
    (Reason::BadDate, Some("since"), Mutation::Set("2024-02-30")),
    (Reason::FieldCount, None, Mutation::DropLast),
    (Reason::MissingValue, Some("kind"), Mutation::Set("")),
    (Reason::FieldTooLong, Some("to_id"), Mutation::Long),
];

const CONSENT_DEFECTS: &[Defect] = &[
    (Reason::UnknownScope, Some("scope"), Mutation::Set("marketing")),
    (Reason::BadDate, Some("granted"), Mutation::Set("2025-13-01")),
    (Reason::UnknownPerson, Some("source_id"), Mutation::UnknownId),
    (Reason::RevokedBeforeGranted, Some("revoked"), Mutation::Set("2000-01-01")),
    (Reason::FieldCount, None, Mutation::AddField),
    (Reason::MissingValue, Some("granted"), Mutation::Set("")),
];

const DECISION_DEFECTS: &[Defect] = &[
    (Reason::UnknownPerson, Some("source_id"), Mutation::UnknownId),
    (Reason::BadDate, Some("date"), Mutation::Set("03/02/2026")),
    (Reason::UnknownDomain, Some("domain"), Mutation::Set("diet")),
    (Reason::OutOfRange, Some("healthy"), Mutation::Set("2")),
    (Reason::OutOfRange, Some("cost"), Mutation::Set("-4.50")),
    (Reason::BadValue, Some("minutes"), Mutation::Set("ten")),
    (Reason::FieldCount, None, Mutation::DropLast),
    (Reason::MissingValue, Some("healthy"), Mutation::Set("")),
    (Reason::FieldTooLong, Some("domain"), Mutation::Long),
];

/// The ways a people row can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersonDefect {
    BadDob,
    DobInFuture,
    BadSsnLast4,
    BadSex,
    ExtraField,
    LongHousehold,
    MissingDob,
    DuplicateSourceId,
    SharedIdentity,
}

impl PersonDefect {
    const ALL: [PersonDefect; 9] = [
        PersonDefect::BadDob,
        PersonDefect::DobInFuture,
        PersonDefect::BadSsnLast4,
        PersonDefect::BadSex,
        PersonDefect::ExtraField,
        PersonDefect::LongHousehold,
        PersonDefect::MissingDob,
        PersonDefect::DuplicateSourceId,
        PersonDefect::SharedIdentity,
    ];

    pub(crate) fn reason(self) -> (Reason, Option<&'static str>) {
        match self {
            PersonDefect::BadDob => (Reason::BadDate, Some("dob")),
            PersonDefect::DobInFuture => (Reason::DobInFuture, Some("dob")),
            PersonDefect::BadSsnLast4 => (Reason::BadSsnLast4, Some("ssn_last4")),
            PersonDefect::BadSex => (Reason::BadValue, Some("sex")),
            PersonDefect::ExtraField => (Reason::FieldCount, None),
            PersonDefect::LongHousehold => (Reason::FieldTooLong, Some("household")),
            PersonDefect::MissingDob => (Reason::MissingValue, Some("dob")),
            PersonDefect::DuplicateSourceId => (Reason::DuplicateSourceId, Some("source_id")),
            PersonDefect::SharedIdentity => (Reason::SharedIdentity, None),
        }
    }
}

/// Table tags that keep the row hashes of different tables independent.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TableTag {
    People = 1,
    Ties = 2,
    Consents = 3,
    Decisions = 4,
}

/// The corruption plan: a seed and a rate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dirt {
    seed: u64,
    rate: f64,
}

impl Dirt {
    pub(crate) fn new(seed: u64, rate: f64) -> Dirt {
        Dirt { seed, rate }
    }

    /// A hash for the row if it is to be corrupted.
    fn roll(&self, table: TableTag, key: u64) -> Option<u64> {
        if self.rate <= 0.0 {
            return None;
        }
        let hash = keyed(self.seed, Stream::Dirty, table as u64, key);
        (unit(hash) < self.rate).then(|| keyed(self.seed, Stream::Dirty, hash, 0))
    }

    /// The defect planted on a person's row, if any.
    pub(crate) fn person(&self, person: u32) -> Option<PersonDefect> {
        let hash = self.roll(TableTag::People, u64::from(person))?;
        Some(PersonDefect::ALL[(hash % PersonDefect::ALL.len() as u64) as usize])
    }

    /// Writes one row of a non-people table, corrupting it if its roll says so. `row` is the
    /// clean row without its line break, `columns` the table's header names.
    pub(crate) fn write_row(
        &self,
        table: TableTag,
        key: u64,
        columns: &[&'static str],
        row: &[u8],
        chunk: &mut Chunk,
    ) {
        let Some(hash) = self.roll(table, key) else {
            chunk.push_row(row);
            return;
        };
        let defects = match table {
            TableTag::Ties => TIE_DEFECTS,
            TableTag::Consents => CONSENT_DEFECTS,
            TableTag::Decisions => DECISION_DEFECTS,
            TableTag::People => unreachable!("people rows are corrupted by the people writer"),
        };
        let (reason, column, mutation) = defects[(hash % defects.len() as u64) as usize];

        let mut fields: Vec<Vec<u8>> = row.split(|&b| b == b',').map(<[u8]>::to_vec).collect();
        let position = |name: &str| columns.iter().position(|c| *c == name);
        let target = column.and_then(position);
        match mutation {
            Mutation::Set(value) => fields[target.expect("column exists")] = value.into(),
            Mutation::UnknownId => fields[target.expect("column exists")] = unknown_id(hash),
            Mutation::CopyFrom(source) => {
                let value = fields[position(source).expect("column exists")].clone();
                fields[target.expect("column exists")] = value;
            }
            Mutation::Long => fields[target.expect("column exists")] = long_field(),
            Mutation::DropLast => {
                fields.pop();
            }
            Mutation::AddField => fields.push(b"x".to_vec()),
            Mutation::Duplicate => chunk.push_row(row),
        }
        chunk.defect(reason, column);
        chunk.push_row(&fields.join(&b','));
    }
}

/// An identifier in a form no generated person has (`Z` instead of `E`).
pub(crate) fn unknown_id(hash: u64) -> Vec<u8> {
    format!("Z{:08}", hash % 100_000_000).into_bytes()
}

/// A field just over the contract's length limit.
pub(crate) fn long_field() -> Vec<u8> {
    vec![b'9'; crate::intake::contract::MAX_FIELD_BYTES + 40]
}

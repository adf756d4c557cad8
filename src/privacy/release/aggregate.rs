//! The exact side of a release: what it reads from a snapshot, and the bounded aggregates per
//! community that noise is then added to.
//!
//! Reading and bounding are separate steps so that the privacy audit can run the very code a
//! release runs on two neighbouring snapshots and see exactly how far one person moves the
//! aggregates.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Int64Type, UInt8Type, UInt32Type};
use chrono::NaiveDate;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, IoContext, Result};
use crate::intake::contract::{Domain, epoch_days};
use crate::intake::vault::table_parts;
use crate::privacy::bounding::{self, Contribution};
use crate::workspace::SecretKey;

/// What a community release reads from a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Declared community names, in first-seen order.
    pub names: Vec<String>,
    /// The community (index into `names`) of every person with `reports` consent.
    pub community_of: HashMap<i64, u32>,
    /// Those people's decisions in the period with whether each was healthy, sorted by person,
    /// date and domain.
    pub decisions: Vec<(Contribution, bool)>,
}

/// Exact, bounded aggregates per community (indexed like [`Inputs::names`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregates {
    /// Community names.
    pub names: Vec<String>,
    /// People with `reports` consent per community.
    pub people: Vec<u64>,
    /// Kept decisions per community and domain.
    pub decisions: Vec<[f64; 8]>,
    /// Kept healthy decisions per community and domain.
    pub healthy: Vec<[f64; 8]>,
    /// The cap on one person's decisions in all (k).
    pub per_person: u32,
    /// The cap on one person's decisions per domain (`k_d`).
    pub per_domain: u32,
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

/// Reads the people with `reports` consent and their decisions from `from` to `to`
/// (inclusive) out of the snapshot in `snapshot`.
pub fn read(snapshot: &Path, from: NaiveDate, to: NaiveDate) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for path in table_parts(&snapshot.join("people"))? {
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
                let index = inputs.names.iter().position(|n| n == name).unwrap_or_else(|| {
                    inputs.names.push(name.to_owned());
                    inputs.names.len() - 1
                });
                inputs.community_of.insert(person.value(row), index as u32);
            }
        }
    }

    let (from, to) = (epoch_days(from), epoch_days(to));
    for path in table_parts(&snapshot.join("decisions"))? {
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
                if day < from || day > to || !inputs.community_of.contains_key(&id) {
                    continue;
                }
                let domain = domain_index[usize::from(domain.keys().value(row))];
                if domain == u8::MAX {
                    return Err(Error::internal("a vault decision has an unknown domain"));
                }
                let contribution = Contribution { person: id, date: day, domain };
                inputs.decisions.push((contribution, healthy.value(row)));
            }
        }
    }
    inputs.decisions.sort_by_key(|(c, _)| (c.person, c.date, c.domain));
    Ok(inputs)
}

impl Aggregates {
    /// Counts people and decisions per community after bounding each person to `per_person`
    /// decisions in all and `per_domain` per domain, chosen by the keyed hash under `key`.
    pub fn bound(inputs: &Inputs, per_person: u32, per_domain: u32, key: &SecretKey) -> Self {
        let contributions: Vec<Contribution> = inputs.decisions.iter().map(|(c, _)| *c).collect();
        let keep = bounding::select(&contributions, per_person, per_domain, key);

        let communities = inputs.names.len();
        let mut aggregates = Aggregates {
            names: inputs.names.clone(),
            people: vec![0; communities],
            decisions: vec![[0.0; 8]; communities],
            healthy: vec![[0.0; 8]; communities],
            per_person,
            per_domain,
        };
        for community in inputs.community_of.values() {
            aggregates.people[*community as usize] += 1;
        }
        for ((contribution, healthy), kept) in inputs.decisions.iter().zip(keep) {
            if kept {
                let community = inputs.community_of[&contribution.person] as usize;
                let domain = usize::from(contribution.domain);
                aggregates.decisions[community][domain] += 1.0;
                if *healthy {
                    aggregates.healthy[community][domain] += 1.0;
                }
            }
        }
        aggregates
    }
}

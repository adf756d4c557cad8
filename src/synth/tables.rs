//! Rows of the people, ties and consents tables.
//!
//! Identity pairs and `source_id`s come from bijections of the person index ([`Scramble`]), so
//! they are unique by construction — drawing them at random would give a million people
//! thousands of shared (`dob`, `ssn_last4`) pairs, which intake rightly quarantines — and need no
//! lookup table. Extra rows for identity defects take indices past the population, which the
//! same bijections keep distinct from every real person.

use chrono::{Duration, NaiveDate};
use rand::Rng;
use rayon::prelude::*;

use super::dirty::{Dirt, PersonDefect, TableTag, long_field};
use super::network::Network;
use super::output::{Chunk, DateTable, Row, TableWriter};
use super::params::Params;
use super::population::{NO_WORKPLACE, Population};
use super::rng::{BLOCK, Scramble, Stream, block_rng, keyed, unit};
use crate::error::Result;
use crate::intake::contract::{CONSENTS, Scope, Sex, TIES, TieKind};

/// Days in the span of birth dates: ages 18 to 75 at the start of the period.
pub(crate) const DOB_SPAN_DAYS: u64 = 57 * 365;
/// A prime larger than any modulus used, so it is coprime with each.
const MULTIPLIER: u64 = 2_654_435_761;
/// Rows of work formatted per parallel batch before being written, bounding memory.
const BLOCKS_PER_BATCH: usize = 32;

/// The identity pair and `source_id` of every index, real or extra.
pub(crate) struct Identities {
    pair: Scramble,
    id: Scramble,
    pub(crate) first_dob: NaiveDate,
}

impl Identities {
    pub(crate) fn new(seed: u64, start: NaiveDate) -> Identities {
        Identities {
            pair: Scramble::new(DOB_SPAN_DAYS * 10_000, MULTIPLIER, seed ^ 0x5eed_0001),
            id: Scramble::new(100_000_000, MULTIPLIER, seed ^ 0x5eed_0002),
            first_dob: start - Duration::days(75 * 365),
        }
    }

    /// The `source_id` of an index: `E` and eight digits.
    pub(crate) fn source_id(&self, index: u64) -> [u8; 9] {
        let mut out = *b"E00000000";
        let mut value = self.id.apply(index);
        for slot in out[1..].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        out
    }

    /// Date of birth and last four SSN digits of an index.
    pub(crate) fn pair(&self, index: u64) -> (NaiveDate, [u8; 4]) {
        let pair = self.pair.apply(index);
        let dob = self.first_dob + Duration::days((pair / 10_000) as i64);
        let mut digits = [b'0'; 4];
        let mut value = pair % 10_000;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        (dob, digits)
    }
}

/// Shared inputs of the table writers.
pub(crate) struct TableContext<'a> {
    pub(crate) params: &'a Params,
    pub(crate) seed: u64,
    pub(crate) population: &'a Population,
    pub(crate) identities: &'a Identities,
    pub(crate) ids: &'a [[u8; 9]],
    pub(crate) quarantined: &'a [bool],
    pub(crate) dirt: Dirt,
    pub(crate) dates: &'a DateTable,
    pub(crate) start: NaiveDate,
    pub(crate) weeks: u32,
}

/// Formats blocks in parallel, a batch at a time, and appends them in order.
fn write_blocks(
    writer: &mut TableWriter,
    blocks: usize,
    format: impl Fn(usize) -> Chunk + Sync,
) -> Result<()> {
    for batch in (0..blocks).step_by(BLOCKS_PER_BATCH) {
        let end = (batch + BLOCKS_PER_BATCH).min(blocks);
        let chunks: Vec<Chunk> = (batch..end).into_par_iter().map(&format).collect();
        for chunk in chunks {
            writer.append(chunk)?;
        }
    }
    Ok(())
}

pub(crate) fn write_people(ctx: &TableContext<'_>, writer: &mut TableWriter) -> Result<()> {
    let n = ctx.population.len();
    write_blocks(writer, n.div_ceil(BLOCK), |block| {
        let mut chunk = Chunk::default();
        for index in block * BLOCK..((block + 1) * BLOCK).min(n) {
            person_row(ctx, index as u64, index as u64, ctx.dirt.person(index as u32), &mut chunk);
        }
        chunk
    })?;

    // The second rows of identity defects, after everyone else, as a merged export would
    // have them.
    let mut extra = Chunk::default();
    let mut next_index = n as u64;
    for index in 0..n as u32 {
        let defect = ctx.dirt.person(index);
        if matches!(defect, Some(PersonDefect::DuplicateSourceId | PersonDefect::SharedIdentity)) {
            person_row(ctx, u64::from(index), next_index, defect, &mut extra);
            next_index += 1;
        }
    }
    writer.append(extra)
}

/// Writes the people row of `person`. For an extra identity-defect row, `identity` is the
/// fresh index whose identity pair or `source_id` the row takes.
fn person_row(
    ctx: &TableContext<'_>,
    person: u64,
    identity: u64,
    defect: Option<PersonDefect>,
    chunk: &mut Chunk,
) {
    let attributes = &ctx.population.people[person as usize];
    let extra_row = identity != person;
    let source_id = match defect {
        Some(PersonDefect::SharedIdentity) if extra_row => ctx.identities.source_id(identity),
        _ => ctx.ids[person as usize],
    };
    let (dob, ssn) = match defect {
        Some(PersonDefect::DuplicateSourceId) if extra_row => ctx.identities.pair(identity),
        _ => ctx.identities.pair(person),
    };

    let mut dob_text = ctx.dates.get(dob).to_vec();
    let mut ssn_text = ssn.to_vec();
    let mut sex: &[u8] = match attributes.sex {
        4 => b"",
        code => Sex::ALL[code as usize].as_str().as_bytes(),
    };
    let mut household = if unit(keyed(ctx.seed, Stream::Person, person, 7)) < 0.03 {
        Vec::new()
    } else {
        format!("H{:07}", attributes.household).into_bytes()
    };
    let mut extra_field = false;
    match defect {
        Some(PersonDefect::BadDob) => {
            dob_text =
                [&b"1985-02-30"[..], b"31/12/1980", b"19800101"][(person % 3) as usize].into();
        }
        Some(PersonDefect::DobInFuture) => {
            dob_text = ctx.dates.get(ctx.start + Duration::days(400)).to_vec();
        }
        Some(PersonDefect::BadSsnLast4) => {
            ssn_text = [&b"123"[..], b"12a4", b"12345"][(person % 3) as usize].into();
        }
        Some(PersonDefect::BadSex) => sex = b"female",
        Some(PersonDefect::ExtraField) => extra_field = true,
        Some(PersonDefect::LongHousehold) => household = long_field(),
        Some(PersonDefect::MissingDob) => dob_text.clear(),
        _ => {}
    }
    if let Some(defect) = defect {
        let (reason, column) = defect.reason();
        chunk.defect(reason, column);
    }

    let community = &ctx.population.communities[attributes.community as usize].name;
    let workplace = match attributes.workplace {
        NO_WORKPLACE => String::new(),
        w => format!("W{w:06}"),
    };
    let mut row = Row::start(&mut chunk.bytes);
    row.raw(&source_id)
        .raw(&dob_text)
        .raw(&ssn_text)
        .text(community)
        .raw(workplace.as_bytes())
        .raw(&household)
        .raw(sex);
    if extra_field {
        row.raw(b"extra");
    }
    row.end();
    chunk.rows += 1;
}

pub(crate) fn write_ties(
    ctx: &TableContext<'_>,
    network: &Network,
    writer: &mut TableWriter,
) -> Result<()> {
    let n = ctx.population.len();
    let columns: Vec<&str> = TIES.columns.iter().map(|c| c.name).collect();
    let oldest_tie = ctx.start - Duration::days(3650);
    write_blocks(writer, n.div_ceil(BLOCK), |block| {
        let mut chunk = Chunk::default();
        let mut row = Vec::with_capacity(64);
        for from in block * BLOCK..((block + 1) * BLOCK).min(n) {
            for slot in network.range(from) {
                let to = network.targets[slot] as usize;
                let hash = keyed(ctx.seed, Stream::Ties, slot as u64, 9);
                let weight = network.weights[slot];

                row.clear();
                let mut fields = Row::start(&mut row);
                fields.raw(&ctx.ids[from]).raw(&ctx.ids[to]);
                fields.raw(TieKind::ALL[network.kinds[slot] as usize].as_str().as_bytes());
                // Full-weight ties often leave the column blank, which means 1.
                match weight {
                    4 if unit(hash) < 0.4 => fields.empty(),
                    4 => fields.raw(b"1"),
                    w => fields.raw([&b"0.25"[..], b"0.5", b"0.75"][w as usize - 1]),
                };
                if unit(hash.rotate_left(17)) < 0.6 {
                    let age = (hash >> 40) % 3620;
                    fields.raw(ctx.dates.get(oldest_tie + Duration::days(age as i64)));
                } else {
                    fields.empty();
                }

                if ctx.quarantined[from] || ctx.quarantined[to] {
                    chunk.push_quarantined(&row);
                } else {
                    ctx.dirt.write_row(TableTag::Ties, slot as u64, &columns, &row, &mut chunk);
                }
            }
        }
        chunk
    })
}

/// Consent rows; returns how many people had each scope active at the end of the period.
pub(crate) fn write_consents(ctx: &TableContext<'_>, writer: &mut TableWriter) -> Result<[u64; 3]> {
    let n = ctx.population.len();
    let columns: Vec<&str> = CONSENTS.columns.iter().map(|c| c.name).collect();
    let period_days = i64::from(ctx.weeks) * 7;
    let active = std::sync::Mutex::new([0u64; 3]);
    write_blocks(writer, n.div_ceil(BLOCK), |block| {
        let mut rng = block_rng(ctx.seed, Stream::Consent, 0, block);
        let mut chunk = Chunk::default();
        let mut row = Vec::with_capacity(48);
        let mut block_active = [0u64; 3];
        for person in block * BLOCK..((block + 1) * BLOCK).min(n) {
            if rng.random_bool(ctx.params.no_consent_share) {
                continue;
            }
            for scope in Scope::ALL {
                if !rng.random_bool(ctx.params.scope_rates[scope.index()]) {
                    continue;
                }
                let granted = ctx.start - Duration::days(rng.random_range(1..=730));
                let revoked = rng
                    .random_bool(ctx.params.revocation_rate)
                    .then(|| ctx.start + Duration::days(rng.random_range(0..period_days)));
                if revoked.is_none() && !ctx.quarantined[person] {
                    block_active[scope.index()] += 1;
                }

                row.clear();
                let mut fields = Row::start(&mut row);
                fields.raw(&ctx.ids[person]).raw(scope.as_str().as_bytes());
                fields.raw(ctx.dates.get(granted));
                match revoked {
                    Some(date) => fields.raw(ctx.dates.get(date)),
                    None => fields.empty(),
                };
                if ctx.quarantined[person] {
                    chunk.push_quarantined(&row);
                } else {
                    let key = person as u64 * 4 + scope.index() as u64;
                    ctx.dirt.write_row(TableTag::Consents, key, &columns, &row, &mut chunk);
                }
            }
        }
        let mut total = active.lock().expect("no panics while holding the tally");
        for (t, b) in total.iter_mut().zip(block_active) {
            *t += b;
        }
        chunk
    })?;
    Ok(active.into_inner().expect("no panics while holding the tally"))
}

//! Network exposure: for each person, domain and week, the weighted share of their capped
//! contacts' decisions that week that took the healthy option, by tie kind and over all kinds.
//!
//! exposure(u, d, t, k) = Σ w(u→v)·healthy(v, d, t) / Σ w(u→v)·decisions(v, d, t) over the
//! people v that u named with a tie of kind k (or any kind), in the degree-capped graph. A row
//! exists only where the denominator is positive. Weeks start on Monday and are numbered from
//! the week of 1970-01-05.
//!
//! The "all kinds" row sums over ties, not over contacts: a contact named under two kinds
//! counts once per kind, with both weights. That keeps the all-kinds numerator and
//! denominator equal to the sums of the per-kind rows', so a model can split exposure by kind
//! without a second definition, and it counts a contact who is both coworker and friend as a
//! closer one, which is what the weights mean.
//!
//! Two paths compute the same table: an in-memory one (rayon over people, the default on one
//! machine) and a relational plan on DataFusion (a join of arcs with weekly activity and a
//! grouped sum), which can run on a cluster later. A test checks that they agree.

use std::sync::Arc as Shared;

use arrow::array::{
    Array, AsArray, Float64Array, Int32Array, RecordBatch, UInt8Array, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Schema, UInt8Type, UInt32Type};
use rayon::prelude::*;

use super::network::Network;
use crate::error::{Error, Result};

/// The kind value that stands for "every kind".
pub const ALL_KINDS: u8 = u8::MAX;

/// One person's decisions in one domain and week.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activity {
    /// Node number.
    pub node: u32,
    /// Domain index.
    pub domain: u8,
    /// Week number.
    pub week: i32,
    /// Decisions.
    pub decisions: f64,
    /// Healthy decisions.
    pub healthy: f64,
}

/// Week number of a day (days since 1970-01-01): weeks start on Monday 1970-01-05.
pub fn week(day: i32) -> i32 {
    (day - 4).div_euclid(7)
}

/// The exposure table, one row per (node, domain, week, kind).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposure {
    /// Node number.
    pub node: Vec<u32>,
    /// Domain index.
    pub domain: Vec<u8>,
    /// Week number.
    pub week: Vec<i32>,
    /// Tie kind index, or [`ALL_KINDS`].
    pub kind: Vec<u8>,
    /// The weighted healthy share.
    pub exposure: Vec<f64>,
    /// Σ w·decisions: how much the share rests on.
    pub weight: Vec<f64>,
}

/// Activity sorted by node, with row ranges per node.
fn by_node(activity: &[Activity], nodes: usize) -> (Vec<Activity>, Vec<usize>) {
    let mut sorted = activity.to_vec();
    sorted.par_sort_unstable_by_key(|a| (a.node, a.domain, a.week));
    let mut offsets = vec![0usize; nodes + 1];
    for a in &sorted {
        offsets[a.node as usize + 1] += 1;
    }
    for u in 0..nodes {
        offsets[u + 1] += offsets[u];
    }
    (sorted, offsets)
}

/// Computes exposure in memory, in parallel over people, returning the whole table.
///
/// # Complexity
///
/// O(Σ over capped arcs u→v of v's activity rows) time, plus a sort of the activity; the
/// table is held whole, so use [`for_each_chunk`] at scale.
pub fn in_memory(capped: &Network, activity: &[Activity]) -> Exposure {
    let mut table = Exposure::default();
    for_each_chunk(capped, activity, usize::MAX, |chunk| table.extend(chunk));
    table
}

impl Exposure {
    fn extend(&mut self, other: Exposure) {
        self.node.extend(other.node);
        self.domain.extend(other.domain);
        self.week.extend(other.week);
        self.kind.extend(other.kind);
        self.exposure.extend(other.exposure);
        self.weight.extend(other.weight);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.node.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.node.is_empty()
    }
}

/// Kinds in a cell: the six tie kinds and "all".
const KIND_SLOTS: usize = 7;

/// Activity sorted by person with each person's row range, and the period's weeks.
pub struct Prepared {
    sorted: Vec<Activity>,
    offsets: Vec<usize>,
    first_week: i32,
    weeks: usize,
}

/// Sorts activity by person for [`compute_range`].
pub fn prepare(nodes: usize, activity: &[Activity]) -> Prepared {
    let (sorted, offsets) = by_node(activity, nodes);
    let (first, last) = sorted
        .iter()
        .fold((i32::MAX, i32::MIN), |(low, high), a| (low.min(a.week), high.max(a.week)));
    let weeks = if sorted.is_empty() { 0 } else { (last - first + 1) as usize };
    Prepared { sorted, offsets, first_week: first, weeks }
}

/// Exposure rows of the people in `range`, computed on the calling thread with a dense
/// accumulator over (domain, week, kind) that is cleared only where it was touched, so no
/// hashing happens per contribution.
///
/// # Complexity
///
/// O(Σ over the range's capped arcs u→v of v's activity rows) time and
/// O(8 · weeks · 7) scratch memory.
pub fn compute_range(
    capped: &Network,
    prepared: &Prepared,
    range: std::ops::Range<usize>,
) -> Exposure {
    let mut out = Exposure::default();
    if prepared.weeks == 0 {
        return out;
    }
    let weeks = prepared.weeks;
    let cells = 8 * weeks * KIND_SLOTS;
    let cell = |domain: u8, week: i32, kind: usize| {
        (usize::from(domain) * weeks + (week - prepared.first_week) as usize) * KIND_SLOTS + kind
    };
    let (mut num, mut den) = (vec![0f64; cells], vec![0f64; cells]);
    // A cell is marked when first reached rather than when its denominator first turns
    // positive: a zero-weight tie leaves the denominator at 0, and testing it would list the
    // cell once per contribution.
    let mut marked = vec![false; cells];
    let mut touched: Vec<usize> = Vec::new();
    for u in range {
        for i in capped.out.range(u) {
            let v = capped.out.others[i] as usize;
            let kind = usize::from(capped.out.kinds[i]);
            let w = f64::from(capped.out.weights[i]);
            for a in &prepared.sorted[prepared.offsets[v]..prepared.offsets[v + 1]] {
                for slot in [kind, KIND_SLOTS - 1] {
                    let c = cell(a.domain, a.week, slot);
                    if !marked[c] {
                        marked[c] = true;
                        touched.push(c);
                    }
                    num[c] += w * a.healthy;
                    den[c] += w * a.decisions;
                }
            }
        }
        touched.sort_unstable();
        for &c in &touched {
            let (numerator, denominator) = (num[c], den[c]);
            num[c] = 0.0;
            den[c] = 0.0;
            marked[c] = false;
            // The share is undefined where nothing weighs in (only zero-weight ties reached
            // the cell): no row, as in the relational plan.
            if denominator <= 0.0 {
                continue;
            }
            let slot = c % KIND_SLOTS;
            let rest = c / KIND_SLOTS;
            out.node.push(u as u32);
            out.domain.push((rest / weeks) as u8);
            out.week.push(prepared.first_week + (rest % weeks) as i32);
            out.kind.push(if slot == KIND_SLOTS - 1 { ALL_KINDS } else { slot as u8 });
            out.exposure.push(numerator / denominator);
            out.weight.push(denominator);
        }
        touched.clear();
    }
    out
}

/// Computes exposure for `chunk_nodes` people at a time, each chunk in parallel, and hands
/// the chunks in person order to `sink`.
///
/// # Complexity
///
/// As [`in_memory`], with memory bounded by one chunk's rows. Pieces of 1,024 people run on
/// rayon's pool and are joined in person order, so the output does not depend on scheduling;
/// a panic in a piece propagates to the caller.
pub fn for_each_chunk(
    capped: &Network,
    activity: &[Activity],
    chunk_nodes: usize,
    mut sink: impl FnMut(Exposure),
) {
    let prepared = prepare(capped.nodes, activity);
    let step = chunk_nodes.clamp(1, capped.nodes.max(1));
    for start in (0..capped.nodes).step_by(step) {
        let end = (start + step).min(capped.nodes);
        let pieces = (end - start).div_ceil(1024);
        let parts: Vec<Exposure> = (0..pieces)
            .into_par_iter()
            .map(|p| {
                compute_range(
                    capped,
                    &prepared,
                    start + p * 1024..(start + (p + 1) * 1024).min(end),
                )
            })
            .collect();
        let mut chunk = Exposure::default();
        for part in parts {
            chunk.extend(part);
        }
        sink(chunk);
    }
}

/// Computes exposure as a relational plan on DataFusion: arcs ⋈ activity, grouped.
///
/// # Complexity
///
/// A hash join of the capped arcs with the activity and two grouped sums: the same work as
/// [`in_memory`] plus hashing, in DataFusion's memory.
pub fn relational(capped: &Network, activity: &[Activity]) -> Result<Exposure> {
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    let failed = |error: datafusion::error::DataFusionError| {
        Error::internal(format!("the exposure plan failed: {error}"))
    };
    let arcs = capped.arc_list();
    let arc_schema = Shared::new(Schema::new(vec![
        Field::new("src", DataType::UInt32, false),
        Field::new("dst", DataType::UInt32, false),
        Field::new("kind", DataType::UInt8, false),
        Field::new("w", DataType::Float64, false),
    ]));
    let arc_batch = RecordBatch::try_new(
        Shared::clone(&arc_schema),
        vec![
            Shared::new(arcs.iter().map(|a| a.from).collect::<UInt32Array>()),
            Shared::new(arcs.iter().map(|a| a.to).collect::<UInt32Array>()),
            Shared::new(arcs.iter().map(|a| a.kind).collect::<UInt8Array>()),
            Shared::new(arcs.iter().map(|a| f64::from(a.weight)).collect::<Float64Array>()),
        ],
    )
    .map_err(|e| Error::internal(format!("arc batch: {e}")))?;
    let activity_schema = Shared::new(Schema::new(vec![
        Field::new("node", DataType::UInt32, false),
        Field::new("domain", DataType::UInt8, false),
        Field::new("week", DataType::Int32, false),
        Field::new("n", DataType::Float64, false),
        Field::new("healthy", DataType::Float64, false),
    ]));
    let activity_batch = RecordBatch::try_new(
        Shared::clone(&activity_schema),
        vec![
            Shared::new(activity.iter().map(|a| a.node).collect::<UInt32Array>()),
            Shared::new(activity.iter().map(|a| a.domain).collect::<UInt8Array>()),
            Shared::new(activity.iter().map(|a| a.week).collect::<Int32Array>()),
            Shared::new(activity.iter().map(|a| a.decisions).collect::<Float64Array>()),
            Shared::new(activity.iter().map(|a| a.healthy).collect::<Float64Array>()),
        ],
    )
    .map_err(|e| Error::internal(format!("activity batch: {e}")))?;

    let sql = format!(
        "SELECT src, domain, week, kind, SUM(w * healthy) / SUM(w * n) AS share, \
                SUM(w * n) AS weight
           FROM arcs JOIN activity ON dst = node
          GROUP BY src, domain, week, kind
         UNION ALL
         SELECT src, domain, week, CAST({ALL_KINDS} AS TINYINT UNSIGNED) AS kind,
                SUM(w * healthy) / SUM(w * n) AS share, SUM(w * n) AS weight
           FROM arcs JOIN activity ON dst = node
          GROUP BY src, domain, week"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::internal(format!("starting the query runtime: {e}")))?;
    let batches = runtime.block_on(async {
        let context = SessionContext::new();
        let arcs = MemTable::try_new(arc_schema, vec![vec![arc_batch]]).map_err(failed)?;
        let activity =
            MemTable::try_new(activity_schema, vec![vec![activity_batch]]).map_err(failed)?;
        context.register_table("arcs", Shared::new(arcs)).map_err(failed)?;
        context.register_table("activity", Shared::new(activity)).map_err(failed)?;
        context.sql(&sql).await.map_err(failed)?.collect().await.map_err(failed)
    })?;

    let mut rows: Vec<(u32, u8, i32, u8, f64, f64)> = Vec::new();
    for batch in &batches {
        let src = batch.column(0).as_primitive::<UInt32Type>();
        let domain = batch.column(1).as_primitive::<UInt8Type>();
        let week = batch.column(2).as_primitive::<Int32Type>();
        let kind = batch.column(3).as_primitive::<UInt8Type>();
        let share = batch.column(4).as_primitive::<Float64Type>();
        let weight = batch.column(5).as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            if weight.value(i) > 0.0 && share.is_valid(i) {
                rows.push((
                    src.value(i),
                    domain.value(i),
                    week.value(i),
                    kind.value(i),
                    share.value(i),
                    weight.value(i),
                ));
            }
        }
    }
    rows.sort_by_key(|row| (row.0, row.1, row.2, row.3));
    let mut exposure = Exposure::default();
    for (node, domain, week, kind, share, weight) in rows {
        exposure.node.push(node);
        exposure.domain.push(domain);
        exposure.week.push(week);
        exposure.kind.push(kind);
        exposure.exposure.push(share);
        exposure.weight.push(weight);
    }
    Ok(exposure)
}

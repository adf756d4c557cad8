//! Network exposure: for each person, domain and week, the weighted share of their capped
//! contacts' decisions that week that took the healthy option, by tie kind and over all kinds.
//!
//! exposure(u, d, t, k) = Σ w(u→v)·healthy(v, d, t) / Σ w(u→v)·decisions(v, d, t) over the
//! people v that u named with a tie of kind k (or any kind), in the degree-capped graph. A row
//! exists only where the denominator is positive. Weeks start on Monday and are numbered from
//! the week of 1970-01-05.
//!
//! Two paths compute the same table: an in-memory one (rayon over people, the default on one
//! machine) and a relational plan on DataFusion (a join of arcs with weekly activity and a
//! grouped sum), which can run on a cluster later. A test checks that they agree.

use std::collections::HashMap;
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

/// Computes exposure in memory, in parallel over people.
pub fn in_memory(capped: &Network, activity: &[Activity]) -> Exposure {
    let (sorted, offsets) = by_node(activity, capped.nodes);
    let rows: Vec<Vec<(u32, u8, i32, u8, f64, f64)>> = (0..capped.nodes)
        .into_par_iter()
        .map(|u| {
            let mut sums: HashMap<(u8, i32, u8), (f64, f64)> = HashMap::new();
            for i in capped.out.range(u) {
                let v = capped.out.others[i] as usize;
                let (kind, w) = (capped.out.kinds[i], f64::from(capped.out.weights[i]));
                for a in &sorted[offsets[v]..offsets[v + 1]] {
                    for k in [kind, ALL_KINDS] {
                        let entry = sums.entry((a.domain, a.week, k)).or_insert((0.0, 0.0));
                        entry.0 += w * a.healthy;
                        entry.1 += w * a.decisions;
                    }
                }
            }
            let mut rows: Vec<_> = sums
                .into_iter()
                .filter(|(_, (_, den))| *den > 0.0)
                .map(|((d, t, k), (num, den))| (u as u32, d, t, k, num / den, den))
                .collect();
            rows.sort_by_key(|r| (r.1, r.2, r.3));
            rows
        })
        .collect();
    let mut exposure = Exposure::default();
    for (node, domain, week, kind, share, weight) in rows.into_iter().flatten() {
        exposure.node.push(node);
        exposure.domain.push(domain);
        exposure.week.push(week);
        exposure.kind.push(kind);
        exposure.exposure.push(share);
        exposure.weight.push(weight);
    }
    exposure
}

/// Computes exposure as a relational plan on DataFusion: arcs ⋈ activity, grouped.
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
    rows.sort_by(|a, b| (a.0, a.1, a.2, a.3).cmp(&(b.0, b.1, b.2, b.3)));
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

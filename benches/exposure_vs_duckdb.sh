#!/usr/bin/env bash
# Side by side: the network exposure table computed by kith's graph stage and by DuckDB.
# Usage: bash benches/exposure_vs_duckdb.sh [PEOPLE]   (default 1000000)
#
# Sets up a Python venv with duckdb (pip), generates and ingests a `kith synth` export, runs
# `kith graph`, then has DuckDB compute the same table from the same inputs: the capped ties
# kith stored and the vault's decisions. DuckDB runs the whole relational plan (weekly
# activity, the join, the grouped sums by kind and over all kinds) and writes Parquet, as
# kith does. Prints both times (kith's from the stage's own step timings: activity plus
# exposure, written), the row counts, and whether the two tables agree.
set -euo pipefail
cd "$(dirname "$0")/.."
people="${1:-1000000}"
work="${KITH_BENCH_DIR:-$(mktemp -d)}"
venv="${KITH_BENCH_VENV:-$HOME/.cache/kith/duckdb-venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet duckdb
fi
# The same target set as `cargo test`, so the dependencies built for the tests are reused.
cargo build --release --quiet --locked --all-targets
kith="${CARGO_TARGET_DIR:-target}/release/kith"
"$kith" -q init "$work/ws"
"$kith" -q synth --people "$people" --seed 1 --out "$work/export"
"$kith" -q --workspace "$work/ws" ingest "$work/export" || [ $? -eq 1 ]
"$kith" -q --workspace "$work/ws" graph

snapshot=$(ls -d "$work"/ws/vault/snapshot-* | tail -1)
graph=$(ls -d "$snapshot"/graph-* | tail -1)

"$venv/bin/python" - "$snapshot" "$graph" "$work/duckdb_exposure.parquet" <<'PY'
import json, sys, time
import duckdb

snapshot, graph, out = sys.argv[1:4]
record = json.load(open(f"{graph}/graph.json"))
steps = dict(record["seconds"])
kith_seconds = steps["activity"] + steps["exposure"]

con = duckdb.connect()
plan = f"""
COPY (
  WITH activity AS (
    SELECT person, domain::VARCHAR AS domain,
           (date - DATE '1970-01-05') // 7 AS week,
           count(*)::DOUBLE AS decisions, sum(healthy::INT)::DOUBLE AS healthy
    FROM read_parquet('{snapshot}/decisions/*.parquet')
    GROUP BY ALL
  ),
  joined AS (
    SELECT t.from_person AS person, a.domain, a.week, t.kind,
           t.weight * a.healthy AS healthy, t.weight * a.decisions AS decisions
    FROM read_parquet('{graph}/ties_capped.parquet') t
    JOIN activity a ON a.person = t.to_person
  )
  SELECT person, domain, week, coalesce(kind, 255) AS kind,
         sum(healthy) / sum(decisions) AS exposure, sum(decisions) AS weight
  FROM joined
  GROUP BY GROUPING SETS ((person, domain, week, kind), (person, domain, week))
) TO '{out}' (FORMAT parquet)
"""
start = time.perf_counter()
con.execute(plan)
duck_seconds = time.perf_counter() - start

kith_rows = con.execute(
    f"SELECT count(*), sum(exposure) FROM read_parquet('{graph}/exposure/*.parquet')"
).fetchone()
duck_rows = con.execute(f"SELECT count(*), sum(exposure) FROM read_parquet('{out}')").fetchone()
# Rows that differ: a key on one side only, or share or weight apart by more than rounding.
names = ["nutrition", "exercise", "sleep", "mindfulness", "social", "financial",
         "occupational", "intellectual"]
domain_case = " ".join(f"WHEN {i} THEN '{n}'" for i, n in enumerate(names))
mismatched = con.execute(f"""
  SELECT count(*) FROM read_parquet('{graph}/exposure/*.parquet') k
  FULL JOIN read_parquet('{out}') d
    ON k.person = d.person AND (CASE k.domain {domain_case} END) = d.domain
   AND k.week = d.week AND k.kind = d.kind
  WHERE d.person IS NULL OR k.person IS NULL OR abs(k.exposure - d.exposure) > 1e-9
     OR abs(k.weight - d.weight) > 1e-9 * greatest(1.0, d.weight)
""").fetchone()[0]

print(json.dumps({"tool": "duckdb " + duckdb.__version__, "seconds": duck_seconds,
                  "rows": duck_rows[0]}))
print(json.dumps({"tool": "kith", "seconds": kith_seconds, "rows": kith_rows[0]}))
print(f"speed: kith is {duck_seconds / kith_seconds:.1f}x DuckDB "
      f"({kith_seconds:.1f} s vs {duck_seconds:.1f} s)")
print(f"agreement: {mismatched} rows differ (key, share or weight) of {kith_rows[0]}")
PY

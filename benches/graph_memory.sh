#!/usr/bin/env bash
# Wall time, peak memory and per-step seconds of `kith graph` on synthetic populations, via
# GNU time; the step seconds come from the stage's own `graph.json`.
# Usage: bash benches/graph_memory.sh [SIZES...]   (default: 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
# The same target set as `cargo test`, so the dependencies built for the tests are reused.
cargo build --release --quiet --locked --all-targets
kith="${CARGO_TARGET_DIR:-target}/release/kith"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in ${@:-100000 1000000}; do
  rm -rf "$work/export" "$work/ws"
  "$kith" -q synth --people "$n" --seed 1 --out "$work/export"
  "$kith" -q init "$work/ws" > /dev/null
  "$kith" -q --workspace "$work/ws" ingest "$work/export" > /dev/null || [ $? -eq 1 ]
  /usr/bin/time -v "$kith" -q --workspace "$work/ws" graph > /dev/null 2> "$work/time.txt"
  wall=$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$work/time.txt" | awk '{print $NF}')
  record=$(ls -d "$work"/ws/vault/snapshot-*/graph-*/graph.json | tail -1)
  steps=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join(f"{name}={seconds:.1f}s" for name, seconds in r["seconds"]))' "$record")
  printf 'people=%-8s wall=%-8s peak_rss=%6.0f MiB  %s\n' \
    "$n" "$wall" "$(echo "$rss / 1024" | bc -l)" "$steps"
done

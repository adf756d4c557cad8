#!/usr/bin/env bash
# Wall time and peak memory of `kith ingest` on synthetic exports, via GNU time; also the
# time of re-ingesting the identical export (which hashes the files and writes nothing).
# Usage: bash benches/ingest_memory.sh [SIZES...]   (default: 100000 1000000)
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
  size=$(du -sh "$work/export" | cut -f1)
  /usr/bin/time -v "$kith" -q --workspace "$work/ws" ingest "$work/export" \
    > /dev/null 2> "$work/time.txt"
  wall=$(grep 'Elapsed (wall clock)' "$work/time.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$work/time.txt" | awk '{print $NF}')
  /usr/bin/time -f '%e' "$kith" -q --workspace "$work/ws" ingest "$work/export" \
    > /dev/null 2> "$work/again.txt"
  printf 'people=%-8s export=%-6s wall=%-8s peak_rss=%6.0f MiB  identical_again=%ss\n' \
    "$n" "$size" "$wall" "$(echo "$rss / 1024" | bc -l)" "$(tail -1 "$work/again.txt")"
done

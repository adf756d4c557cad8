#!/usr/bin/env bash
# Wall time and peak memory of `kith synth` at 100,000 and 1,000,000 people, via GNU time.
# Usage: bash benches/synth_memory.sh [SIZES...]   (default: 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
# The same target set as `cargo test`, so the dependencies built for the tests are reused.
cargo build --release --quiet --locked --all-targets
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for people in "${@:-100000 1000000}"; do
  for n in $people; do
    /usr/bin/time -v "${CARGO_TARGET_DIR:-target}/release/kith" -q synth --people "$n" --seed 1 --out "$out" \
      2> "$out/time.txt"
    wall=$(grep 'Elapsed (wall clock)' "$out/time.txt" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$out/time.txt" | awk '{print $NF}')
    size=$(du -sh --exclude=time.txt "$out" | cut -f1)
    printf 'people=%-8s wall=%-8s peak_rss=%6.0f MiB  export=%s\n' "$n" "$wall" \
      "$(echo "$rss / 1024" | bc -l)" "$size"
  done
done

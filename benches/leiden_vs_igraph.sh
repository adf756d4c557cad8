#!/usr/bin/env bash
# Side by side: igraph's Leiden, leidenalg and kith's Leiden on the same synthetic graph.
# Usage: bash benches/leiden_vs_igraph.sh [PEOPLE]   (default 1000000)
# Sets up a Python venv with python-igraph and leidenalg (pip), generates a `kith synth`
# export, and runs all three with modularity, γ = 1, two iterations, on the undirected graph of
# every nomination. Prints each tool's time, modularity (computed the same way by each
# library), number of communities, recovery of the hidden clusters (NMI, ARI), and ratios.
# KITH_BENCH_SHUFFLE=1 numbers people in random order (no locality from the export);
# KITH_BENCH_LEIDENALG=0 leaves out leidenalg, which takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
people="${1:-1000000}"
work="${KITH_BENCH_DIR:-$(mktemp -d)}"
venv="${KITH_BENCH_VENV:-$HOME/.cache/kith/igraph-venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet python-igraph leidenalg
fi
# The same target set as `cargo test`, so the dependencies built for the tests are reused.
cargo build --release --quiet --locked --all-targets
"${CARGO_TARGET_DIR:-target}/release/kith" -q synth --people "$people" --seed 1 --out "$work/export"
kith_line=$(cargo bench --quiet --bench leiden -- "$work/export" "$work/graph")

peer_lines=$("$venv/bin/python" - "$work/graph" <<'PY'
import json, sys, time
import igraph as ig
folder = sys.argv[1]
edges, weights = [], []
with open(f"{folder}/edges.tsv") as f:
    for line in f:
        u, v, w = line.split()
        edges.append((int(u), int(v)))
        weights.append(float(w))
truth = [int(x) for x in open(f"{folder}/truth.txt")]
g = ig.Graph(n=len(truth), edges=edges)
g.es["weight"] = weights
def scored(tool, seconds, membership):
    return {
        "tool": tool,
        "people": len(truth),
        "seconds": seconds,
        "modularity": g.modularity(membership, weights="weight"),
        "communities": len(set(membership)),
        "nmi": ig.compare_communities(truth, membership, method="nmi"),
        "ari": ig.compare_communities(truth, membership, method="adjusted_rand"),
    }

start = time.perf_counter()
found = g.community_leiden(objective_function="modularity", weights="weight",
                           resolution=1.0, n_iterations=2)
runs = [scored("igraph " + ig.__version__, time.perf_counter() - start, found.membership)]

# leidenalg, the reference implementation by Leiden's authors, on the same igraph graph
# (about four minutes at a million people; KITH_BENCH_LEIDENALG=0 skips it).
import os
if os.environ.get("KITH_BENCH_LEIDENALG", "1") != "0":
    import leidenalg as la
    start = time.perf_counter()
    found = la.find_partition(g, la.ModularityVertexPartition, weights="weight",
                              n_iterations=2, seed=1)
    runs.append(scored("leidenalg " + la.__version__, time.perf_counter() - start,
                       found.membership))
print(json.dumps(runs))
PY
)

echo "$peer_lines"
echo "$kith_line"
python3 - "$peer_lines" "$kith_line" <<'PY'
import json, sys
peers, kith = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for peer in peers:
    name = peer["tool"].split()[0]
    print(f"speed: kith is {peer['seconds'] / kith['seconds']:.1f}x {name} "
          f"({kith['seconds']:.1f} s vs {peer['seconds']:.1f} s)")
    for key in ("modularity", "nmi", "ari"):
        print(f"  {key}: kith {kith[key]:.4f}, {name} {peer[key]:.4f}, "
              f"ratio {kith[key] / peer[key]:.3f}")
PY

#!/usr/bin/env bash
# Peak memory and step time of all-layer LoReFT training on SmolLM2-135M (CPU, f32), with and
# without per-layer recomputation (`recompute`), one process per configuration
# (crates/reft-core/examples/step_memory.rs). Needs `npm run fetch-model`.
#   bash benches/step-memory.sh                 # the grid below
#   GRID="2x512:false 2x512:true" bash benches/step-memory.sh
# Configurations whose plain run would exceed this machine's memory are only run with
# recomputation (8 x 512 without it was OOM-killed at 23 GiB).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p reft-core --example step_memory >&2
BIN=target/release/examples/step_memory
GRID=${GRID:-"2x512:false 2x512:true 8x512:true"}
for g in $GRID; do
  shape=${g%%:*}; recompute=${g##*:}
  "$BIN" "${shape%%x*}" "${shape##*x}" all f3+l3 4 "$recompute" "${STEPS:-2}"
done

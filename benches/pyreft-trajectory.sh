#!/usr/bin/env bash
# Same start, same batches: does reft take pyreft's training steps? One LoReFT r4 adapter on all
# 30 layers of SmolLM2-135M (f3+l3 tied, math_1k rows up to 512 tokens), pyreft's initialisation
# loaded into reft, a few AdamW steps on the same micro-batches in both libraries. Run twice on
# pyreft's side: with torch's own rotation base (a random completion) and with reft's Householder
# completion. docs/EXPERIMENTS.md ("Same basis, same trajectory") has the result.
#   PY=python3 bash benches/pyreft-trajectory.sh     # python3 with torch, transformers, gguf, pyreft
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/trajectory}
PY=${PY:-python3}
STEPS=${STEPS:-3}
GGUF=$(npx tsx scripts/fetch-model.ts | tail -1)
npx tsx benches/export-recipe.ts export --train math_1k --train-limit 400 --train-shuffle 42 --positions f3+l3 \
  --max-length 512 --out "$OUT"
echo "== pyreft, torch's rotation base"
$PY benches/pyreft_trajectory.py --gguf "$GGUF" --out "$OUT" --steps "$STEPS" 2>/dev/null | tee "$OUT/pyreft-torch-base.jsonl"
echo "== pyreft, reft's (Householder) rotation base"
$PY benches/pyreft_trajectory.py --gguf "$GGUF" --out "$OUT" --steps "$STEPS" --householder-base 2>/dev/null | tee "$OUT/pyreft-householder-base.jsonl"
echo "== reft"
npx tsx benches/trajectory-steps.ts --out "$OUT" --steps "$STEPS" | tee "$OUT/reft.jsonl"

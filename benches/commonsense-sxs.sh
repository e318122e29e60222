#!/usr/bin/env bash
# pyreft and reft on the same commonsense recipe (docs/EXPERIMENTS.md: LoReFT r4, all 30 layers,
# f3+l3 tied, 1 epoch over the first 1,000 ARC-Easy training examples, lr 3e-3, batch 8, warmup
# 0.1) and the same tokens, back to back; both scored by reft's scorer on ARC-Easy (first 200).
#   PY=python3 bash benches/commonsense-sxs.sh      # python3 with torch, transformers, gguf, pyreft
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/sxs-arc}
PY=${PY:-python3}
GGUF=$(npx tsx scripts/fetch-model.ts | tail -1)
npx tsx benches/export-recipe.ts export --train ARC-Easy --train-limit 1000 --positions f3+l3 --max-length 256 \
  --eval ARC-Easy --eval-limit 200 --out "$OUT"
$PY benches/pyreft_commonsense.py --gguf "$GGUF" --out "$OUT" --kind loreft --rank 4 --epochs 1 --lr 3e-3 \
  --batch-size 8 --warmup-ratio 0.1
npx tsx benches/export-recipe.ts score --out "$OUT"
npx tsx scripts/experiment.ts --train ARC-Easy --train-limit 1000 --kind loreft --layers all --positions f3+l3 \
  --rank 4 --epochs 1 --lr 3e-3 --warmup-ratio 0.1 --batch-size 8 --max-length 256 \
  --eval ARC-Easy --eval-limit 200 --out "$OUT/reft"

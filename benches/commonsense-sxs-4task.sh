#!/usr/bin/env bash
# pyreft on the four-task commonsense recipe of docs/EXPERIMENTS.md (row cs-loreft of
# benches/experiments.sh: one LoReFT r4 adapter, all 30 layers, f3+l3 tied, 1 epoch over the first
# 1,000 of the BoolQ + ARC-e + ARC-c + OBQA train splits shuffled with seed 42, lr 3e-3, batch 8,
# warmup 0.1, max length 256), on exactly reft's tokens; scored by reft's scorer on the first 200
# test examples of each task.
#   PY=python3 bash benches/commonsense-sxs-4task.sh          # python3 with torch, transformers, gguf, pyreft
# REFT picks what runs on reft's side (default none: its row is runs/cs-loreft/result.json):
#   REFT=eval   evaluate the saved adapter runs/cs-loreft/adapter again (prediction tallies; no training)
#   REFT=train  run the cs-loreft row again into OUT/reft (train and evaluate, ~15 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/sxs-4task}
PY=${PY:-python3}
REFT=${REFT:-none}
TASKS=boolq,ARC-Easy,ARC-Challenge,openbookqa
GGUF=$(npx tsx scripts/fetch-model.ts | tail -1)
npx tsx benches/export-recipe.ts export --train commonsense --train-limit 1000 --train-shuffle 42 --positions f3+l3 \
  --max-length 256 --eval "$TASKS" --eval-limit 200 --out "$OUT"
$PY benches/pyreft_commonsense.py --gguf "$GGUF" --out "$OUT" --kind loreft --rank 4 --epochs 1 --lr 3e-3 \
  --batch-size 8 --warmup-ratio 0.1
case "$REFT" in
  none) npx tsx benches/export-recipe.ts score --out "$OUT" ;;
  eval)
    npx tsx src/cli.ts eval --adapter runs/cs-loreft/adapter --tasks "$TASKS" --limit 200 --batch-size 8 --output "$OUT/reft-eval"
    npx tsx benches/export-recipe.ts score --out "$OUT" --reft "$OUT/reft-eval/generations.jsonl" ;;
  train)
    npx tsx benches/export-recipe.ts score --out "$OUT"
    npx tsx scripts/experiment.ts --train commonsense --train-limit 1000 --train-shuffle 42 --kind loreft --layers all \
      --positions f3+l3 --rank 4 --epochs 1 --lr 3e-3 --warmup-ratio 0.1 --batch-size 8 --max-length 256 \
      --eval "$TASKS" --eval-limit 200 --out "$OUT/reft" ;;
  *) echo "REFT must be none, eval or train (got $REFT)" >&2; exit 2 ;;
esac

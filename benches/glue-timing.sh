#!/usr/bin/env bash
# Wall-clock of one GLUE recipe, reft then pyreft back to back on the same rows and settings
# (LoReFT r1 on all 6 MiniLM layers, p3, 500 seeded train examples, 3 epochs, batch 32, lr 1e-2).
#   PY=python3 TASK=rte bash benches/glue-timing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${TASK:-rte}; PY=${PY:-python3}; OUT=${OUT:-runs/glue-timing}
MODEL=$(npx tsx scripts/fetch-model.ts minilm | tail -1)
declare -A DROP=([rte]=0.05 [mrpc]=0.05 [cola]=0.2 [stsb]=0.05 [sst2]=0.1)
declare -A WARM=([rte]=0 [mrpc]=0 [cola]=0.005 [stsb]=0.03 [sst2]=0.1)
rm -rf "$OUT/$TASK-reft"
npx tsx benches/glue-indices.ts "$TASK" --train-limit 500 --seed 42 --out "$OUT/$TASK-idx"
npx tsx src/cli.ts glue train "$TASK" --recipe loreft --train-limit 500 --epochs 3 --lr 1e-2 --seed 42 --output "$OUT/$TASK-reft"
$PY benches/pyreft_glue.py --model "$MODEL" --task "$TASK" --method loreft --train-indices "$OUT/$TASK-idx/train_idx.json" \
  --test-indices "$OUT/$TASK-idx/test_idx.json" --epochs 3 --lr 1e-2 --rank 1 --first 3 --dropout "${DROP[$TASK]}" \
  --warmup-ratio "${WARM[$TASK]}" --batch-size 32 --max-length 256 --seed 42 --out "$OUT/$TASK-pyreft.json"

#!/usr/bin/env bash
# The GLUE rows of docs/EXPERIMENTS.md: MiniLM-L6 (all-MiniLM-L6-v2) with LoReFT, DiReFT and the
# head alone on RTE, MRPC, CoLA, STS-B and SST-2, with the paper's RoBERTa-base recipe per task
# (rank 1, all layers, prefix positions, dropout, warmup) scaled to a 2-core CPU: a seeded
# 500-example train subset, 3 epochs, lr 1e-2. pyreft runs the same LoReFT recipe on the same
# rows right after ours for SIDE_BY_SIDE tasks (default rte sst2), for accuracy and wall-clock.
#   bash benches/glue-experiments.sh            # needs: npm run fetch-model -- minilm; python3 with
#                                               # torch, transformers and the pyreft/pyvene wheels
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/glue}
PY=${PY:-python3}
TASKS=${TASKS:-"rte mrpc cola stsb sst2"}
SIDE_BY_SIDE=${SIDE_BY_SIDE:-"rte sst2"}
LIMIT=${LIMIT:-500}; EPOCHS=${EPOCHS:-3}; LR=${LR:-1e-2}; SEED=${SEED:-42}
MODEL=$(npx tsx scripts/fetch-model.ts minilm | tail -1)
declare -A FIRST=([rte]=3 [mrpc]=3 [cola]=3 [stsb]=3 [sst2]=3)
declare -A DROP=([rte]=0.05 [mrpc]=0.05 [cola]=0.2 [stsb]=0.05 [sst2]=0.1)
declare -A WARM=([rte]=0 [mrpc]=0 [cola]=0.005 [stsb]=0.03 [sst2]=0.1)
for task in $TASKS; do
  for recipe in loreft direft head-only; do
    dir=$OUT/$task-$recipe
    [ -f "$dir/report.json" ] && { echo "skip $dir"; continue; }
    npx tsx src/cli.ts glue train "$task" --recipe "$recipe" --train-limit "$LIMIT" --epochs "$EPOCHS" \
      --lr "$LR" --seed "$SEED" --output "$dir"
  done
  if [[ " $SIDE_BY_SIDE " == *" $task "* ]] && [ ! -f "$OUT/$task-pyreft-loreft.json" ]; then
    npx tsx benches/glue-indices.ts "$task" --train-limit "$LIMIT" --seed "$SEED" --out "$OUT/$task-idx"
    $PY benches/pyreft_glue.py --model "$MODEL" --task "$task" --method loreft --train-indices "$OUT/$task-idx/train_idx.json" \
      --test-indices "$OUT/$task-idx/test_idx.json" --epochs "$EPOCHS" --lr "$LR" --rank 1 --first "${FIRST[$task]}" \
      --dropout "${DROP[$task]}" --warmup-ratio "${WARM[$task]}" --batch-size 32 --max-length 256 --seed "$SEED" \
      --out "$OUT/$task-pyreft-loreft.json"
  fi
done

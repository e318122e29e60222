#!/usr/bin/env bash
# pyreft on the math recipe of docs/EXPERIMENTS.md (row math-loreft of benches/experiments.sh: one
# LoReFT r4 adapter, all 30 layers, f3+l3 tied, 1 epoch over 400 of math_1k's examples shuffled
# with seed 42, lr 3e-3, micro-batches of 2 with 4 accumulated, grouped by length, warmup 0.1, max
# length 512), on exactly reft's tokens; greedy answers of up to 256 new tokens on the first 50
# test examples of GSM8K, SVAMP, MAWPS and AQuA, scored by reft's scorer.
#   PY=python3 bash benches/math-sxs.sh     # python3 with torch, transformers, gguf, pyreft
# KIND=direft runs the DiReFT row instead. REFT picks what runs on reft's side:
#   REFT=row    (default) score reft's row's own generations (runs/math-KIND/generations-*.jsonl,
#               written by benches/experiments.sh) side by side with pyreft's
#   REFT=eval   evaluate the saved adapter runs/math-KIND/adapter again and score that
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${KIND:-loreft}
OUT=${OUT:-runs/sxs-math-$KIND}
PY=${PY:-python3}
REFT=${REFT:-row}
TASKS=gsm8k,SVAMP,mawps,AQuA
GGUF=$(npx tsx scripts/fetch-model.ts | tail -1)
npx tsx benches/export-recipe.ts export --train math_1k --train-limit 400 --train-shuffle 42 --positions f3+l3 \
  --max-length 512 --eval "$TASKS" --eval-limit 50 --out "$OUT"
$PY benches/pyreft_commonsense.py --gguf "$GGUF" --out "$OUT" --kind "$KIND" --rank 4 --epochs 1 --lr 3e-3 \
  --batch-size 2 --grad-accum 4 --group-by-length --warmup-ratio 0.1 --max-new-tokens 256
case "$REFT" in
  row)
    # The row's per-task generation files, as one file with a task field (export-recipe's --reft format).
    node -e 'const fs=require("fs");const [dir,out,tasks]=process.argv.slice(1);fs.writeFileSync(out,tasks.split(",").flatMap(t=>fs.readFileSync(`${dir}/generations-${t}.jsonl`,"utf8").split("\n").filter(Boolean).map(l=>JSON.stringify({task:t,...JSON.parse(l)}))).join("\n")+"\n")' \
      "runs/math-$KIND" "$OUT/reft-row-generations.jsonl" "$TASKS"
    npx tsx benches/export-recipe.ts score --out "$OUT" --reft "$OUT/reft-row-generations.jsonl" ;;
  eval)
    npx tsx src/cli.ts eval --adapter "runs/math-$KIND/adapter" --tasks "$TASKS" --limit 50 --batch-size 8 --output "$OUT/reft-eval"
    npx tsx benches/export-recipe.ts score --out "$OUT" --reft "$OUT/reft-eval/generations.jsonl" ;;
  *) echo "REFT must be row or eval (got $REFT)" >&2; exit 2 ;;
esac

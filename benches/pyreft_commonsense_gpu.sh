#!/usr/bin/env bash
# Second of two device calls (the 98 MB GGUF exceeds one call's 64 MiB transfer): the first call
# copied .device/sxs1/part1 to /root/sxs; this one joins it with .device/sxs2/part2, checks the
# sha256, installs the pyreft/pyvene/gguf wheels and runs benches/pyreft_commonsense.py on CUDA
# with the exported recipe (.device/sxs2/{train,eval}.jsonl from benches/export-recipe.ts).
set -euo pipefail
G=/root/sxs/SmolLM2-135M-Instruct.Q4_1.gguf
cat /root/sxs/part1 .device/sxs2/part2 > "$G"
echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  $G" | sha256sum -c
pip install -q --no-deps --target /root/pylib .device/sxs2/*.whl
export PYTHONPATH=/root/pylib
mkdir -p "$OUT/sxs" && cp .device/sxs2/train.jsonl .device/sxs2/eval.jsonl "$OUT/sxs/"
nvidia-smi -L
for kind in ${KINDS:-loreft}; do
  mkdir -p "$OUT/$kind" && cp "$OUT"/sxs/*.jsonl "$OUT/$kind/"
  python3 benches/pyreft_commonsense.py --gguf "$G" --out "$OUT/$kind" --device cuda --kind "$kind" --rank 4 \
    --epochs 1 --lr 3e-3 --batch-size 8 --warmup-ratio 0.1 2>&1 | grep -v "it/s\]" | tail -8
  rm "$OUT/$kind/train.jsonl" "$OUT/$kind/eval.jsonl"
done
rm -r "$OUT/sxs"

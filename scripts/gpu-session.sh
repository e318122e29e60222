#!/usr/bin/env bash
# One lent-GPU session for issue 6, in priority order, inside one device call (timeout_s=600):
#   1. cuda_gradcheck: each custom op's and each intervention parameter's gradient on CUDA against
#      the CPU (~20 s);
#   2. cuda_smoke: CUDA f32 against the CPU, and CUDA bf16 against the CPU's bf16 error, with the
#      fused kernels (reft-kernels) off and on (~1 min);
#   3. profile: where a step's time goes at three sizes, and at one of them without the three
#      fixes aimed at the slowdown found on 2026-11-27 (anchor.rs --methods profile, 220 s at most);
#   4. the Node addon's CUDA build against its CPU build (.device/cuda-node, when carried);
#   5. unless the profile found the 1.1B step at 16 x 256 still slow (then it stops, exit 3),
#      the anchor benchmark (benches/anchor.sh): reft and pyreft on the 1.1B and 7B shapes, reft
#      with the fused kernels when cuda_smoke passed them (FUSED_OK), and the first case's reft
#      step also without them (FUSED_AB) and with the rotation on the host (ROTATION_AB); it gets
#      what is left of DEADLINE (default 560 s after the start).
# Prepare here (no GPU needed):
#   SKIP_TESTS=1 scripts/build-cuda.sh && bash benches/anchor.sh prepare
#   (optional) npm run build:native && scripts/build-cuda.sh --node && scripts/prepare-cuda-node-check.sh
# Then, with the device tool:
#   run(command="bash scripts/gpu-session.sh", carry=[".device/cuda", ".device/wheels", ".device/anchor_bench.py", ".device/cuda-node"], timeout_s=600)
# CASES (default 7b_all,1b,7b_l15,gen: the headline first) picks the anchor cases; results land in $OUT.
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-/tmp/gpu-session}"; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
B=.device/cuda/bin
for n in example-cuda_gradcheck example-cuda_smoke example-anchor; do
  [ -x "$B/$n" ] || { python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]+".xz"), open(sys.argv[1],"wb"))' "$B/$n" && chmod +x "$B/$n"; }
done
cat .device/cuda/BUILD_INFO
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader; uname -r
echo "== cuda_gradcheck"
timeout 60 "$B/example-cuda_gradcheck" > "$OUT/cuda_gradcheck.log" 2>&1; echo "rc=$?"; tail -40 "$OUT/cuda_gradcheck.log"
echo "== cuda_smoke"
timeout 120 "$B/example-cuda_smoke" 2>&1 | tee "$OUT/cuda_smoke.log" | tail -12
if grep -q FUSED_OK "$OUT/cuda_smoke.log"; then export REFT_CUDA_FUSED=1; else export REFT_CUDA_FUSED=0; fi
# Where a step's time goes, around the size at which the 2026-11-27 run found a reft step on the
# 1.1B shape 30× slower than below it (batch 16 × 256 and 4 × 512 slow, 12 × 256 fast).
echo "== profile"
# Three fixes aimed at it are on by default: one CUDA stream shared by all threads instead of
# candle's per-thread streams (src/cuda_device.rs: the gradient thread's work was not ordered
# with the caller's), the memory pool keeps freed memory (same file), and attention runs in batch
# chunks of at most 2^24 scores (src/ops/attend.rs). The later runs at 16 x 256 turn all three
# off (the 2026-11-27 setup), then each one alone, to tell which mattered.
# Fields: shape batch seq timeout [VAR=value ...].
OLD="REFT_CUDA_STREAM=per-thread REFT_CUDA_POOL_KEEP=0 REFT_ATTN_CHUNK=0"
for sz in "1b 12 256 40" "1b 16 256 40" "7b 8 512 40" "1b 16 256 25 $OLD" "1b 16 256 25 REFT_CUDA_STREAM=per-thread" \
          "1b 16 256 25 REFT_ATTN_CHUNK=0" "1b 16 256 25 REFT_CUDA_POOL_KEEP=0"; do
  set -- $sz
  echo "-- $sz" >> "$OUT/profile.log"
  env "${@:5}" timeout "$4" "$B/example-anchor" --shape "$1" --batch "$2" --seq "$3" \
    --layers all --pos f7+l7 --rank 8 --methods profile --device cuda --dtype bf16 >> "$OUT/profile.log" 2>&1
  echo "rc=$?" >> "$OUT/profile.log"
done
grep -v '^profile:' "$OUT/profile.log" | cut -c1-160
if [ -x .device/cuda-node/run.sh ]; then
  echo "== Node addon (CUDA against CPU)"
  mkdir -p /tmp/cuda-node-out; OUT=/tmp/cuda-node-out timeout 90 bash .device/cuda-node/run.sh > "$OUT/cuda-node.log" 2>&1; echo "rc=$?"; tail -30 "$OUT/cuda-node.log"
fi
# With the fixes on, is a 1.1B step at 16 x 256 (the anchor's 1b case) still slow? Then the anchor
# benchmark would only time out: stop here and leave the device time to a follow-up call.
STEP=$(python3 - "$OUT/profile.log" <<'PY'
import json, sys
section, best = None, None
for line in open(sys.argv[1]):
    if line.startswith("-- "):
        section = line[3:].split()
    elif line.startswith("{") and section == ["1b", "16", "256", "40"]:
        r = json.loads(line)
        if r.get("profile") == "loss_graph+backward" and "s" in r:
            best = r["s"]
print(best if best is not None else "none")
PY
)
echo "1.1B 16x256 forward+backward with the fixes: $STEP s"
if [ "$STEP" = none ] || python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 2 else 1)" "$STEP"; then
  echo "SLOW: the step is still slow at 16 x 256; skipping the anchor benchmark"; ls "$OUT"; exit 3
fi
LEFT=$(( ${DEADLINE:-560} - SECONDS )); [ "$LEFT" -gt 30 ] || LEFT=30
echo "== anchor (REFT_CUDA_FUSED=$REFT_CUDA_FUSED, ${LEFT}s left)"
# anchor.sh's scratch files stay out of $OUT (at most 8 files come back); its JSON lines are copied.
OUT=/tmp/anchor-out FUSED_AB=1b ROTATION_AB=1b timeout "$LEFT" bash benches/anchor.sh "${CASES:-7b_all,1b,7b_l15,gen}" 2>&1 | tee "$OUT/anchor.log" | tail -40
cp /tmp/anchor-out/anchor.jsonl "$OUT/" 2>/dev/null; ls "$OUT"

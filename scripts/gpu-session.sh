#!/usr/bin/env bash
# One lent-GPU session for issue 6, in priority order, inside one device call (timeout_s=390):
#   1. cuda_gradcheck: each custom op's and each intervention parameter's gradient on CUDA against
#      the CPU (~20 s);
#   2. cuda_smoke: CUDA f32 against the CPU, and CUDA bf16 against the CPU's bf16 error, with the
#      fused kernels (reft-kernels) off and on (~1 min);
#   3. gemm: candle's cuBLAS call, cuBLASLt (REFT_GEMM_LT) and PyTorch on the anchor models'
#      GEMM shapes, with the two reft paths' agreement (~20 s);
#   4. the anchor benchmark (benches/anchor.sh): reft and pyreft on the 7B and 1.1B shapes, reft
#      with the fused kernels when cuda_smoke passed them (FUSED_OK), and the reft runs that AB
#      names again with those settings, until CENSUS_RESERVE (100) seconds before DEADLINE
#      (default 360 s after the start); a 7B all-layer run over 24 GiB whose
#      REFT_RECOMPUTE_MLP=up run fits is run again with up's recomputation on just enough top
#      layers (benches/anchor.sh, MEM_FIT);
#   5. the profile of a 7B step (PROFILE_ARGS): forward and backward with the GEMMs, attention
#      and fused ops timed one by one;
#   6. with what is left: Nsight Compute's kernel census of one 1.1B step and forward
#      (CENSUS_ARGS picks another configuration, e.g. "--shape 7b --batch 8 --seq 512 --layers 15
#      --pos l1 --rank 4"), and the Node addon's CUDA build against its CPU build
#      (.device/cuda-node, when carried).
# Prepare here (no GPU needed):
#   SKIP_TESTS=1 scripts/build-cuda.sh && bash benches/anchor.sh prepare
#   (optional) npm run build:native && scripts/build-cuda.sh --node && scripts/prepare-cuda-node-check.sh
# Then, with the device tool:
#   run(command="bash scripts/gpu-session.sh", carry=[".device/cuda", ".device/wheels", ".device/anchor_bench.py"], timeout_s=390)
# CASES (default 7b_all,1b,7b_l15,gen,7b_l15p: the headline first; none: no anchor run) picks the anchor
# cases; results land in $OUT. Fifteen device minutes hold one call of at most ~590 s and, if
# the machine is still warm, a short second one with SKIP_CHECKS=1 (docs/CUDA.md, next steps).
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-/tmp/gpu-session}"; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
B=.device/cuda/bin
for n in example-cuda_gradcheck example-cuda_smoke example-anchor example-gemm_bench; do
  [ -x "$B/$n" ] || { python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]+".xz"), open(sys.argv[1],"wb"))' "$B/$n" && chmod +x "$B/$n"; }
done
cat .device/cuda/BUILD_INFO
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader; uname -r
# SKIP_CHECKS=1 (a second call on a warm machine): no gradcheck, smoke or GEMM comparison;
# the fused kernels on, as the first call's smoke decided.
DEADLINE=${DEADLINE:-360}
if [ -z "${SKIP_CHECKS:-}" ]; then
echo "== cuda_gradcheck"
timeout 60 "$B/example-cuda_gradcheck" > "$OUT/cuda_gradcheck.log" 2>&1; echo "rc=$?"; tail -40 "$OUT/cuda_gradcheck.log"
echo "== cuda_smoke"
timeout 120 "$B/example-cuda_smoke" 2>&1 | tee "$OUT/cuda_smoke.log" | tail -12
SMOKE="$OUT/cuda_smoke.log"
if grep -q FUSED_OK "$SMOKE"; then export REFT_CUDA_FUSED=1; else
  export REFT_CUDA_FUSED=0
  # The newest fused paths, not yet run on a GPU when this was written, go first: the static
  # decoding step (a fault there poisons the process's CUDA context, failing what follows),
  # then the packed projections (CUDA's default since 2026-11-27). Measure without what the
  # smoke passes without.
  echo "== cuda_smoke again without the static decoding step (REFT_STATIC_DECODE=0)"
  REFT_STATIC_DECODE=0 timeout 120 "$B/example-cuda_smoke" 2>&1 | tee "$OUT/cuda_smoke_nostatic.log" | tail -4
  if grep -q FUSED_OK "$OUT/cuda_smoke_nostatic.log"; then
    export REFT_CUDA_FUSED=1 REFT_STATIC_DECODE=0; SMOKE="$OUT/cuda_smoke_nostatic.log"
  else
    echo "== cuda_smoke again without packed projections (REFT_PACK_PROJ=0)"
    REFT_PACK_PROJ=0 REFT_STATIC_DECODE=0 timeout 120 "$B/example-cuda_smoke" 2>&1 | tee "$OUT/cuda_smoke_unpacked.log" | tail -4
    if grep -q FUSED_OK "$OUT/cuda_smoke_unpacked.log"; then
      export REFT_CUDA_FUSED=1 REFT_PACK_PROJ=0 REFT_STATIC_DECODE=0; SMOKE="$OUT/cuda_smoke_unpacked.log"
    fi
  fi
fi
# Generation through the static decoding step (on by default) only where the smoke's greedy
# tokens through it equal the CPU's; else through candle's ops, and no A/B of it.
if ! grep -q STATIC_OK "$SMOKE"; then
  export REFT_STATIC_DECODE=0
  AB="$(echo "${AB:-}" | tr ' ' '\n' | grep -v REFT_STATIC_DECODE | tr '\n' ' ')"
fi
# An A/B run with the decoding step's CUDA graph (REFT_DECODE_GRAPH=1) only where it gave the
# CPU's tokens.
grep -q GRAPH_OK "$SMOKE" || AB="$(echo "${AB:-}" | tr ' ' '\n' | grep -v REFT_DECODE_GRAPH | tr '\n' ' ')"
# An A/B run with REFT_GEMM_LT=1 only where the smoke passed it.
grep -q LT_OK "$SMOKE" || AB="$(echo "${AB:-}" | tr ' ' '\n' | grep -v REFT_GEMM_LT | tr '\n' ' ')"
# Frozen-weight GEMMs on the anchor shapes: candle's cuBLAS path, cuBLASLt (REFT_GEMM_LT) and
# PyTorch, same GPU, same minute (examples/gemm_bench.rs, benches/gemm_bench.py; ~20 s). The
# 7B forward took 0.152 s against HF's 0.121 s, most of it GEMMs: is candle's call the gap?
echo "== gemm"
timeout 60 "$B/example-gemm_bench" --reps 20 > "$OUT/gemm.jsonl" 2> "$OUT/gemm.err"; echo "rc=$?"
timeout 60 python3 benches/gemm_bench.py --reps 20 > "$OUT/gemm_torch.jsonl" 2>> "$OUT/gemm.err"; echo "rc=$?"
python3 - "$OUT/gemm.jsonl" "$OUT/gemm_torch.jsonl" <<'PY'
import json, sys
rows = {}
for path in sys.argv[1:]:
    for line in open(path):
        if line.startswith("{"):
            r = json.loads(line); rows.setdefault((r["shape"], r["dir"]), {}).update(r)
for (shape, d), r in rows.items():
    print(f"{shape:20} {d:8} candle {r.get('candle_tflops', '-'):>6} lt {r.get('lt_tflops', '-'):>6} torch {r.get('torch_tflops', '-'):>6} TFLOP/s  lt diff {r.get('rel_diff', '-')}")
PY
else export REFT_CUDA_FUSED=${REFT_CUDA_FUSED:-1}; fi
# anchor.sh's scratch files stay out of $OUT (at most 8 files come back); its JSON lines are copied.
# CENSUS_RESERVE seconds before DEADLINE stay for the kernel census (0: no census).
RESERVE=${CENSUS_RESERVE:-100}
LEFT=$(( DEADLINE - RESERVE - SECONDS )); [ "$LEFT" -gt 30 ] || LEFT=30
if [ "${CASES:-}" != none ]; then
  echo "== anchor (REFT_CUDA_FUSED=$REFT_CUDA_FUSED, ${LEFT}s)"
  OUT=/tmp/anchor-out PROC_TIMEOUT=${PROC_TIMEOUT:-80} AB="${AB:-}" timeout "$LEFT" bash benches/anchor.sh "${CASES:-7b_all,1b,7b_l15,gen,7b_l15p}" 2>&1 | tee "$OUT/anchor.log" | tail -40
fi
cp /tmp/anchor-out/anchor.jsonl "$OUT/" 2>/dev/null
# Where the 7B step's time goes: its forward and backward with the GEMMs, the attention and the
# fused ops timed one by one (anchor.rs --methods profile, REFT_TRACE; ~40 s).
if [ $(( DEADLINE - SECONDS )) -gt 100 ]; then
  echo "== profile ${PROFILE_ARGS:-7b 8 x 512}"
  timeout 90 "$B/example-anchor" ${PROFILE_ARGS:---shape 7b --batch 8 --seq 512} --layers all --pos f7+l7 --rank 8 \
    --methods profile --device cuda --dtype bf16 > "$OUT/profile.log" 2>&1; echo "rc=$?"
  grep '^{' "$OUT/profile.log" | cut -c1-150
fi
# With what is left: Nsight Compute's census of one 1.1B step and forward (scripts/gpu-census.sh).
if [ "$RESERVE" -gt 0 ] && [ $(( DEADLINE - SECONDS )) -gt 60 ]; then
  echo "== census"
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
  timeout $(( DEADLINE - SECONDS - 10 )) "$NCU" --csv --clock-control none --cache-control none --metrics gpu__time_duration.sum \
    "$B/example-anchor" ${CENSUS_ARGS:---shape 1b --batch 16 --seq 256 --layers all --pos f7+l7 --rank 8} --methods census \
    --device cuda --dtype bf16 > "$OUT/census.csv" 2> "$OUT/census.err"
  echo "rc=$?"
  python3 scripts/census-summary.py "$OUT/census.csv" 30 | tee "$OUT/census-summary.txt" | head -60
  xz -9 "$OUT/census.csv" 2>/dev/null || gzip -9 "$OUT/census.csv"
fi
if [ -x .device/cuda-node/run.sh ] && [ $(( DEADLINE - SECONDS )) -gt 60 ]; then
  echo "== Node addon (CUDA against CPU)"
  mkdir -p /tmp/cuda-node-out; OUT=/tmp/cuda-node-out timeout 60 bash .device/cuda-node/run.sh > "$OUT/cuda-node.log" 2>&1; echo "rc=$?"; tail -30 "$OUT/cuda-node.log"
fi
# The portable build (scripts/build-cuda.sh --portable: compute_80 PTX, which the driver compiles
# for this GPU on first load), when its smoke binary was carried
# (.device/cuda-sm80/bin/example-cuda_smoke.xz): the same checks as the first smoke.
P=.device/cuda-sm80/bin/example-cuda_smoke
if [ -e "$P.xz" ] && [ $(( DEADLINE - SECONDS )) -gt 60 ]; then
  echo "== cuda_smoke, portable build (sm_80 PTX)"
  [ -x "$P" ] || { python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]+".xz"), open(sys.argv[1],"wb"))' "$P" && chmod +x "$P"; }
  timeout $(( DEADLINE - SECONDS - 10 )) "$P" > "$OUT/cuda_smoke_sm80.log" 2>&1; echo "rc=$?"
  grep -E "_OK|_FAIL|_OFF" "$OUT/cuda_smoke_sm80.log" | tail -8
fi
# The device tool brings back at most 8 files from $OUT: everything goes into one archive, and
# the most telling files stay beside it.
if (cd "$OUT" && tar cJf /tmp/gpu-session-all.tar.xz .); then
  keep=" anchor.jsonl gemm.jsonl cuda_smoke.log profile.log census-summary.txt cuda-node.log cuda_gradcheck.log "
  for f in "$OUT"/* "$OUT"/.[!.]*; do
    [ -e "$f" ] || continue
    case "$keep" in *" $(basename "$f") "*) ;; *) rm -rf "$f" ;; esac
  done
  mv /tmp/gpu-session-all.tar.xz "$OUT/all-logs.tar.xz"
fi
ls "$OUT"

#!/usr/bin/env bash
# One lent-GPU session for issue 6, in priority order, inside about 12 minutes of device time:
#   1. cuda_smoke: CUDA f32 against the CPU, and CUDA bf16 against the CPU's bf16 error, with the
#      fused kernels (reft-kernels) off and on (~1 min);
#   2. the anchor benchmark (benches/anchor.sh): reft and pyreft on the 1.1B and 7B shapes, reft
#      with the fused kernels when cuda_smoke passed them (FUSED_OK), and the first case's reft
#      step also without them (FUSED_AB) and with the rotation on the host (ROTATION_AB).
# Prepare here (no GPU needed):
#   scripts/build-cuda.sh && bash benches/anchor.sh prepare
# Then, with the device tool:
#   run(command="bash scripts/gpu-session.sh", carry=[".device/cuda", ".device/wheels", ".device/anchor_bench.py"], timeout_s=600)
# CASES (default 1b,7b_all,7b_l15,gen) picks the anchor cases; results land in $OUT.
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-/tmp/gpu-session}"; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
B=.device/cuda/bin
for n in example-cuda_smoke example-anchor; do
  [ -x "$B/$n" ] || { python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]+".xz"), open(sys.argv[1],"wb"))' "$B/$n" && chmod +x "$B/$n"; }
done
cat .device/cuda/BUILD_INFO
echo "== cuda_smoke"
timeout 120 "$B/example-cuda_smoke" 2>&1 | tee "$OUT/cuda_smoke.log" | tail -12
if grep -q FUSED_OK "$OUT/cuda_smoke.log"; then export REFT_CUDA_FUSED=1; else export REFT_CUDA_FUSED=0; fi
echo "== anchor (REFT_CUDA_FUSED=$REFT_CUDA_FUSED)"
FUSED_AB=1b ROTATION_AB=1b timeout 450 bash benches/anchor.sh "${CASES:-1b,7b_all,7b_l15,gen}" 2>&1 | tee "$OUT/anchor.log" | tail -40

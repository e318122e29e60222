#!/usr/bin/env bash
# Where a reft step's time goes on the GPU, once the anchor benchmark runs (issue 6): one short
# device call, timeout_s=300.
#   1. anchor --methods profile at the 1.1B shape 16 x 256 and 2 x 64 and the 7B shape 8 x 512:
#      each phase's seconds and its host_s (how long the host took to launch it: close to the
#      seconds when launching, not the device, sets the pace), the backward alone, and a training
#      step with and without recomputation;
#   2. the kernel census: Nsight Compute (ncu) times every kernel of one 1.1B training step and
#      one forward at 16 x 256 (anchor --methods census; f64 marker kernels split the two), and
#      scripts/census-summary.py sums them by kernel name.
# Prepare here: SKIP_TESTS=1 scripts/build-cuda.sh. Then, with the device tool:
#   run(command="bash scripts/gpu-census.sh", carry=[".device/cuda"], timeout_s=300)
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-/tmp/gpu-census}"; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
B=.device/cuda/bin
[ -x "$B/example-anchor" ] || { python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]+".xz"), open(sys.argv[1],"wb"))' "$B/example-anchor" && chmod +x "$B/example-anchor"; }
cat .device/cuda/BUILD_INFO
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
run() { # shape batch seq method timeout
  timeout "$5" "$B/example-anchor" --shape "$1" --batch "$2" --seq "$3" --layers all --pos f7+l7 --rank 8 \
    --methods "$4" --device cuda --dtype bf16
}
echo "== profile"
for sz in "1b 16 256" "1b 2 64" "7b 8 512"; do
  set -- $sz
  echo "-- $sz" >> "$OUT/profile.log"
  run "$1" "$2" "$3" profile 45 >> "$OUT/profile.log" 2>&1; echo "rc=$?" >> "$OUT/profile.log"
done
grep -v '^profile:' "$OUT/profile.log" | grep -v '"profile":"gemm' | sed 's/"batch":\([0-9]*\),"seq":\([0-9]*\),"dtype":"BF16",//' | cut -c1-150
echo "== census"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: ${NCU:-none}"
if [ -n "$NCU" ]; then
  timeout "${CENSUS_TIMEOUT:-170}" "$NCU" --csv --clock-control none --cache-control none --metrics gpu__time_duration.sum \
    "$B/example-anchor" --shape 1b --batch 16 --seq 256 --layers all --pos f7+l7 --rank 8 --methods census \
    --device cuda --dtype bf16 > "$OUT/census.csv" 2> "$OUT/census.err"
  echo "rc=$?"; tail -3 "$OUT/census.err"
  python3 scripts/census-summary.py "$OUT/census.csv" | tee "$OUT/census-summary.txt"
  xz -9 "$OUT/census.csv" 2>/dev/null || gzip -9 "$OUT/census.csv"
fi
ls -la "$OUT"

#!/usr/bin/env bash
# reft against pyreft on one GPU, in one run: the configurations of ANCHORS.md (issue 6).
#
# Here (a machine with cargo, no GPU), once:
#   scripts/build-cuda.sh            # CUDA binaries into .device/cuda (example-anchor among them)
#   bash benches/anchor.sh prepare   # copies ../shared/bench/anchor_bench.py into .device/ and
#                                    # downloads the pyreft/pyvene wheels (PyPI) into .device/wheels
# On the lent GPU (torch, transformers, no cargo or node), with .device carried:
#   bash benches/anchor.sh [CASES]   # CASES: comma list of 1b,7b_all,7b_l15,7b_l15p,gen (default: 1b,7b_all,7b_l15,gen)
#
# For each case it runs reft's side (`crates/reft-core/examples/anchor.rs`, bf16) and then the
# reference (`anchor_bench.py`: pyreft 0.1.0 / pyvene 0.1.8 from .device/wheels, bf16), with the
# same shape, batch, layers, positions and rank, and samples `nvidia-smi` every 100 ms during
# each process for its peak device memory (the same measure for both sides; PyTorch's own
# max_memory_allocated is in the reference's line as peak_gib). JSON lines go to stdout and to
# $OUT/anchor.jsonl; a Markdown table with pyreft/reft ratios ends the output.
# M7B_ALL (default reft,reft_recompute,forward) picks the 7b_all case's reft methods.
# STEPS (default 5) timed steps after 3 warm-ups, on both sides; PROC_TIMEOUT (default 150 s)
# bounds each process. reft uses its fused CUDA kernels unless REFT_CUDA_FUSED=0; a reft run that
# fails with them is retried without them (the table marks fused runs "+fused"); AB="case:VAR=value ..." runs a case's first
# reft method (reft, or generate) again with each setting (marked "+VAR=value"), e.g. AB="1b:REFT_CUDA_FUSED=0".
# MEM_FIT (default 7b_all:24:31, the issue's memory target; none: off) then fits the memory:
# see fit_layers.
set -u
cd "$(dirname "$0")/.."
D=.device
if [ "${1:-}" = "prepare" ]; then
  set -e
  cp ../shared/bench/anchor_bench.py "$D/anchor_bench.py"
  ls "$D/wheels/"pyreft-*.whl "$D/wheels/"pyvene-*.whl >/dev/null 2>&1 \
    || python3 -m pip download -q --no-deps --only-binary=:all: -d "$D/wheels" pyreft==0.1.0 pyvene==0.1.8
  ls "$D/cuda/bin/example-anchor.xz" "$D/wheels/"pyreft-*.whl "$D/wheels/"pyvene-*.whl
  echo "ready: carry .device (anchor_bench.py, cuda/bin/example-anchor.xz, wheels)"
  exit 0
fi
CASES="${1:-1b,7b_all,7b_l15,gen}"
STEPS="${STEPS:-5}"
PROC_TIMEOUT="${PROC_TIMEOUT:-150}"  # seconds per process (a 7B step is well under 2 s)
OUTDIR="${OUT:-/tmp/anchor-out}"; mkdir -p "$OUTDIR"
LOG="$OUTDIR/anchor.jsonl"; : > "$LOG"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
BIN="${ANCHOR_BIN:-$D/cuda/bin/example-anchor}"
REF="${ANCHOR_PY:-$D/anchor_bench.py}"
DEV="${ANCHOR_DEVICE:-cuda}"  # cpu: a dry run of reft's side (with a stand-in reference)
if [ ! -x "$BIN" ]; then
  python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]+".xz"), open(sys.argv[1],"wb"))' "$BIN" && chmod +x "$BIN"
fi
SITE=${ANCHOR_SITE:-/tmp/pyreft-site}
[ -d "$SITE/pyreft" ] || python3 -m pip install -q --no-deps --no-index --target "$SITE" "$D"/wheels/*.whl 2>&1 | tail -2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUTDIR/gpu.txt"

# Runs "$@" with nvidia-smi sampling device memory; prints its JSON lines with "smi_peak_gib"
# (peak used minus the idle level before it started) added.
measured() {
  local side="$1"; shift
  local base; base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUTDIR/smi.txt" 2>/dev/null &
  local smi=$!
  "$@" > "$OUTDIR/out.txt" 2> "$OUTDIR/err.txt"; local rc=$?; LAST_RC=$rc
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  local peak; peak=$(sort -n "$OUTDIR/smi.txt" | tail -1)
  grep -E '^\{' "$OUTDIR/out.txt" | python3 -c '
import json, sys
side, base, peak, rc, variant = sys.argv[1], float(sys.argv[2]), float(sys.argv[3] or 0), sys.argv[4], sys.argv[5]
for line in sys.stdin:
    r = json.loads(line); r["side"] = side; r["smi_peak_gib"] = round((peak - base) / 1024, 2); r["rc"] = int(rc)
    if variant: r["variant"] = variant
    print(json.dumps(r))' "$side" "$base" "${peak:-0}" "$rc" "${VARIANT:-}" | tee -a "$LOG"
  [ "$rc" -eq 0 ] || { echo "[$side rc=$rc] $(tail -3 "$OUTDIR/err.txt")"; }
}

# The top-layer count for REFT_RECOMPUTE_MLP=up:N that MEM_FIT asks for case $1, from the peaks
# in $LOG after its first $2 lines (the case's own); nothing when MEM_FIT names another case, a peak is missing, the plain run fits,
# or even every layer's recomputation does not.
fit_layers() {
  python3 - "$LOG" "$1" "$2" "${MEM_FIT:-}" <<'PY'
import json, math, sys
log, case, skip, spec = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
parts = spec.split(":")
if len(parts) != 3 or parts[0] != case:
    sys.exit(0)
target, layers = float(parts[1]), int(parts[2])
rows = [json.loads(l) for l in open(log)][skip:]
peak = lambda v: [r["smi_peak_gib"] for r in rows if r.get("side") == "reft" and r.get("method") == "reft" and r.get("variant") == v and "step_s_median" in r]
base, up = peak(None), peak("REFT_RECOMPUTE_MLP=up")
if not base or not up or base[-1] <= target or up[-1] > target:
    sys.exit(0)
per_layer = (base[-1] - up[-1]) / layers
if per_layer > 0:
    print(min(layers, math.ceil((base[-1] - target + 0.25) / per_layer)))
PY
}

run_case() { # name shape batch seq layers pos rank reft-methods ref-methods
  local name="$1" shape="$2" b="$3" t="$4" layers="$5" pos="$6" rank="$7" rm="$8" pm="$9"
  echo "== $name: $shape batch $b x $t, layers $layers, $pos, rank $rank"
  local case_start; case_start=$(wc -l < "$LOG")
  for m in ${rm//,/ }; do
    local before; before=$(wc -l < "$LOG")
    measured reft timeout "$PROC_TIMEOUT" "$BIN" --shape "$shape" --batch "$b" --seq "$t" --layers "$layers" --pos "$pos" \
      --rank "$rank" --steps "$STEPS" --methods "$m" --device "$DEV" --dtype bf16
    # A run that failed with the fused kernels is retried without them, so the case still has a
    # number (not one that ran out of time: that costs another PROC_TIMEOUT).
    if [ "${REFT_CUDA_FUSED:-1}" != 0 ] && [ "$LAST_RC" != 124 ] && { [ "$(wc -l < "$LOG")" = "$before" ] || tail -1 "$LOG" | grep -q '"error"\|"rc": [1-9]'; }; then
      echo "[reft $m failed with the fused kernels: again without them]"
      measured reft env REFT_CUDA_FUSED=0 timeout "$PROC_TIMEOUT" "$BIN" --shape "$shape" --batch "$b" --seq "$t" --layers "$layers" \
        --pos "$pos" --rank "$rank" --steps "$STEPS" --methods "$m" --device "$DEV" --dtype bf16
    fi
    # A reft run that ran out of time would only do so again with the case's other methods.
    [ "$LAST_RC" = 124 ] && { echo "[reft $m ran out of time: skipping the case's other reft methods]"; break; }
    # AB="case:VAR=value ..." runs the case's first reft method (reft, or generate) once more
    # with each setting (marked with it in the table), e.g. AB="1b:REFT_BLOCK_OPS=0
    # gen:REFT_PACK_PROJ=0".
    if [ "$m" = "${rm%%,*}" ]; then
      for ab in ${AB:-}; do
        [ "${ab%%:*}" = "$name" ] || continue
        VARIANT="${ab#*:}" measured reft env "${ab#*:}" timeout "$PROC_TIMEOUT" "$BIN" --shape "$shape" --batch "$b" --seq "$t" \
          --layers "$layers" --pos "$pos" --rank "$rank" --steps "$STEPS" --methods "$m" --device "$DEV" --dtype bf16
      done
      # With MEM_FIT="case:GiB:layers" (layers: how many keep a graph), a case whose reft run
      # peaked above GiB and whose REFT_RECOMPUTE_MLP=up run did not runs once more with up's
      # projection recomputed on as few top layers as the two peaks say fit (0.25 GiB margin).
      local fit; fit=$(MEM_FIT="${MEM_FIT-7b_all:24:31}" fit_layers "$name" "$case_start")
      if [ -n "$fit" ]; then
        VARIANT="REFT_RECOMPUTE_MLP=up:$fit" measured reft env "REFT_RECOMPUTE_MLP=up:$fit" timeout "$PROC_TIMEOUT" "$BIN" --shape "$shape" \
          --batch "$b" --seq "$t" --layers "$layers" --pos "$pos" --rank "$rank" --steps "$STEPS" --methods "$m" --device "$DEV" --dtype bf16
      fi
    fi
  done
  # A position spec with `p` (the prompt's last positions) runs the reference through
  # benches/anchor_bench_ext.py, which adds that spec to it.
  local ref=("$REF")
  case "$pos" in *p*) ref=(benches/anchor_bench_ext.py) ;; esac
  measured pyreft env PYTHONPATH="$SITE" ANCHOR_BENCH="$REF" timeout "$PROC_TIMEOUT" python3 "${ref[@]}" --shape "$shape" --batch "$b" \
    --seq "$t" --layers "$layers" --pos "$pos" --rank "$rank" --steps "$STEPS" --methods "$pm"
}

for c in ${CASES//,/ }; do
  case "$c" in
    1b) run_case 1b 1b 16 256 all f7+l7 8 reft,forward pyreft,forward ;;
    7b_all) run_case 7b_all 7b 8 512 all f7+l7 8 "${M7B_ALL:-reft,reft_recompute,forward}" pyreft,forward ;;
    7b_l15) run_case 7b_l15 7b 8 512 15 l1 4 reft,reft_cached pyreft ;;
    # The same at pyreft's quickstart position, the prompt's last token (l1 is the row's last
    # token, whose gradient is zero: benches/anchor_bench_ext.py).
    7b_l15p) run_case 7b_l15p 7b 8 512 15 p1 4 reft,reft_cached pyreft ;;
    gen) run_case gen 1b 8 256 all l1 8 generate generate ;;
    *) echo "unknown case $c" ;;
  esac
done

python3 - "$LOG" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda r: (r["shape"], r["batch"], r["seq"], r["layers"], r["pos"], r["rank"])
print("\n| config | method | s/step | tokens/s | peak GiB (smi) | pyreft/reft |")
print("|---|---|---|---|---|---|")
for r in rows:
    cfg = "%s %dx%d layers %s %s r%d" % key(r)
    if r.get("method") == "generate" or "new_tokens_per_s_reft" in r:
        if "error" in r:
            print(f"| {cfg} | {r['side']} generate | error: {r['error']} | | | |")
            continue
        if r["side"] == "reft":
            ref = [p for p in rows if p["side"] == "pyreft" and "new_tokens_per_s_plain" in p and key(p) == key(r)]
            vs = " (HF generate: %.2fx)" % (r["new_tokens_per_s_reft"] / ref[0]["new_tokens_per_s_plain"]) if ref else ""
            print(f"| {cfg} | reft generate{'+fused' if r.get('fused') else ''} | {r['reft_s']} s | {r['new_tokens_per_s_reft']} new tokens/s | {r['smi_peak_gib']} |{vs} |")
        else:
            print(f"| {cfg} | pyreft generate | {r['pyreft_s']} s | {r['new_tokens_per_s_pyreft']} new tokens/s (HF generate {r['new_tokens_per_s_plain']}) | {r['smi_peak_gib']} | |")
        continue
    if "step_s_median" not in r:
        print(f"| {cfg} | {r['side']} {r['method']} | error: {r.get('error', 'rc=%s' % r.get('rc'))} | | | |")
        continue
    ratio = ""
    if r["side"] == "reft":
        want = "forward" if r["method"] == "forward" else "pyreft"
        ref = [p for p in rows if p["side"] == "pyreft" and p.get("method") == want and key(p) == key(r) and "step_s_median" in p]
        if ref:
            ratio = "%.2fx" % (ref[0]["step_s_median"] / r["step_s_median"])
    label = r["method"] + ("+fused" if r.get("fused") else "") + ("+" + r["variant"] if r.get("variant") else "")
    print(f"| {cfg} | {r['side']} {label} | {r['step_s_median']:.4f} | {r['tokens_per_s']} | {r['smi_peak_gib']} | {ratio} |")
PY

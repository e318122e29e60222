#!/usr/bin/env bash
# Same-run comparison of reft and pyreft on this machine's CPU: one LoReFT training step and a
# no-grad forward on SmolLM2-135M-Instruct (batch 4 × 64 tokens), plus reft's decoding speed.
# Needs: `npm run fetch-model`; for the pyreft side a Python with torch, transformers, gguf and
# pyreft/pyvene importable (PYTHON=/path/to/python). Prints JSON lines, then a ratio table.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
GGUF="${REFT_BENCH_MODEL:-$(node -e 'console.log(require("./native/binding.cjs").defaultModelPath())')}"
out=$(mktemp)
cargo bench -q -p reft-core --bench train_step 2>/dev/null | tee -a "$out"
"$PY" benches/pyreft_step.py "$GGUF" 2>/dev/null | tee -a "$out"
"$PY" - "$out" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
get = lambda impl, case, what: next((r for r in rows if r["impl"] == impl and r["case"] == case and r["what"] == what), None)
print("\n| case | measure | reft | pyreft | pyreft / reft |\n|---|---|---|---|---|")
for case in sorted({r["case"] for r in rows if r["impl"] == "pyreft"}):
    for what, key in [("train_step", "s_per_step"), ("forward_loss_no_grad", "s")]:
        a, b = get("reft", case, what), get("pyreft", case, what)
        if a and b:
            print(f"| {case} | {what} (s) | {a[key]:.3f} | {b[key]:.3f} | {b[key] / a[key]:.2f}× |")
    for what, label in [("train_step_window_off", "frozen window off"), ("train_step_no_cache", "no caches (first epoch)")]:
        off, b = get("reft", case, what), get("pyreft", case, "train_step")
        if off and b:
            print(f"| {case} | train_step, {label} (s) | {off['s_per_step']:.3f} | {b['s_per_step']:.3f} | {b['s_per_step'] / off['s_per_step']:.2f}× |")
for case in ("decode_b1_p32_n64", "decode_b8_p128_n32"):
    r = get("reft", case, "generate") or get("reft", case, "generate_cache_true")
    hf, py = get("hf", case, "generate"), get("pyreft", case, "generate")
    if r and hf and py:
        print(f"| {case} | generate, new tokens/s | {r['tokens_per_s']:.1f} | {py['tokens_per_s']:.1f} (HF {hf['tokens_per_s']:.1f}) | {r['tokens_per_s'] / py['tokens_per_s']:.2f}× (vs HF {r['tokens_per_s'] / hf['tokens_per_s']:.2f}×) |")
PYEOF

#!/usr/bin/env bash
# One command for the (offline) GPU machine, run from the repository root:
#
#     bash scripts/run_fixtures_on_device.sh
#
# with the device `run` tool's carry set to [".device"] (.device/ is git-ignored, so it only
# travels when carried). It
#   1. installs the pyreft + pyvene wheels from .device/wheels with
#      `pip install --no-deps --no-index --target` into a private folder that is put first on
#      PYTHONPATH (torch / transformers / safetensors come from the machine's image; nothing is
#      downloaded; if pip is unusable the wheels are unzipped instead),
#   2. prints the versions in use,
#   3. runs scripts/make_fixtures.py into $OUT/fixtures (CPU, float32, deterministic),
#   4. runs scripts/check_fixtures.py on the result (independent torch-only re-check).
# Takes well under a minute. The wheels are fetched beforehand on a networked machine with
#     pip download --no-deps pyreft pyvene -d .device/wheels
# Env: OUT (default ./fixtures-out), PYTHON (default python3), FIXTURE_DEVICE (default cpu).
set -euo pipefail

PY="${PYTHON:-python3}"
OUT="${OUT:-$PWD/fixtures-out}"
DEV="${FIXTURE_DEVICE:-cpu}"
WHEELS="$PWD/.device/wheels"
SITE="${TMPDIR:-/tmp}/reft-fixture-site"

ls "$WHEELS"/pyreft-*.whl "$WHEELS"/pyvene-*.whl >/dev/null || {
  echo "missing wheels in $WHEELS (carry .device)"; exit 2; }

rm -rf "$SITE" && mkdir -p "$SITE"
if ! "$PY" -m pip install --quiet --no-deps --no-index --no-compile --target "$SITE" \
    "$WHEELS"/pyreft-*.whl "$WHEELS"/pyvene-*.whl; then
  echo "pip unusable; unzipping the wheels into $SITE"
  for w in "$WHEELS"/pyreft-*.whl "$WHEELS"/pyvene-*.whl; do "$PY" -m zipfile -e "$w" "$SITE"; done
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== versions"
"$PY" - <<'EOF'
import platform, importlib.metadata as md
import torch, transformers, safetensors
print("python", platform.python_version(), platform.platform())
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
print("transformers", transformers.__version__, "safetensors", safetensors.__version__)
for d in ("pyreft", "pyvene", "peft", "numpy", "datasets", "matplotlib"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        print(d, "not installed")
EOF

mkdir -p "$OUT"
echo "== make_fixtures -> $OUT/fixtures (device $DEV)"
time "$PY" scripts/make_fixtures.py --out "$OUT/fixtures" --device "$DEV"
echo "== check_fixtures"
"$PY" scripts/check_fixtures.py "$OUT/fixtures" 2>&1 | grep -v "Loading weights" | tee "$OUT/check.log"
du -sh "$OUT/fixtures"

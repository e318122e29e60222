#!/usr/bin/env bash
# Build CUDA-enabled reft-core test/bench/example executables on a machine WITHOUT a GPU or a CUDA
# toolkit, for running later on the lent H100 (Ubuntu 24.04, driver 580, CUDA 13.0 at /usr/local/cuda).
#
#   scripts/build-cuda.sh            # everything: SDK wheels, link stubs, cargo builds, .device/cuda bundle
#   scripts/build-cuda.sh --node     # only the Node addon's CUDA build: native/reft.linux-x64-gnu.cuda.node
#                                    # (what loadModel(..., { device: 'cuda' }) loads; the CPU addon is separate)
#   scripts/build-cuda.sh --portable [--node]
#                                    # the same for any GPU from sm_80 on (A100, L4, RTX 30xx/40xx, H100):
#                                    # CUDA_COMPUTE_CAP=80, kernels as compute_80 PTX that the driver compiles
#                                    # for the GPU it finds; its own target dir, bundle .device/cuda-sm80 and
#                                    # addon native/reft.linux-x64-gnu.cuda-sm80.node
#
# How (see docs CANDLE.md §3):
#   * nvcc 13.0.88 + headers + libcudart.so.13 come from PyPI wheels pinned to CUDA 13.0.x, installed with
#     `pip --target` under $CUDA_SDK (default /work/cuda-sdk); nothing system-wide.
#   * candle forces cudarc `dynamic-linking` => `-lcuda -lnvrtc -lcurand -lcublas -lcublasLt` at link time.
#     We build tiny link stubs with the real SONAMEs (libcuda.so.1, libcublas.so.13, libcublasLt.so.13,
#     libcurand.so.10, libnvrtc.so.13) defining every symbol cudarc's sys modules load, and put them on the
#     linker's path through LIBRARY_PATH. At run time the device's real libraries satisfy DT_NEEDED.
#   * candle-kernels (cudaforge) compiles PTX + libmoe.a for CUDA_COMPUTE_CAP=90 (=> sm_90a, H100/H200 only).
#
# SKIP_TESTS=1 skips the test executables (bench + examples only: what scripts/gpu-session.sh runs).
# Env overrides: CUDA_SDK, CARGO_TARGET_DIR (default /work/cuda-target), CUDA_COMPUTE_CAP (default 90),
#                OUT_BUNDLE (default <repo>/.device/cuda), NICE (default "nice -n 19").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE=0; SUFFIX=""
for a in "$@"; do
  case "$a" in
    --node) NODE=1 ;;
    # compute_80 PTX runs on every later GPU (the driver compiles it on first load and caches
    # the result); the default sm_90a build runs on H100/H200 only.
    --portable) export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"; SUFFIX="-sm80" ;;
    *) echo "unknown argument $a (--node, --portable)" >&2; exit 2 ;;
  esac
done
CUDA_SDK="${CUDA_SDK:-/work/cuda-sdk}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cuda-target$SUFFIX}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
OUT_BUNDLE="${OUT_BUNDLE:-$ROOT/.device/cuda$SUFFIX}"
NICE="${NICE:-nice -n 19}"

PY="$CUDA_SDK/py"
CU="$PY/nvidia/cu13"
STUBS="$CUDA_SDK/stubs"

# ---------------------------------------------------------------- 1. nvcc + headers + cudart from PyPI
if [ ! -x "$CU/bin/nvcc" ]; then
  echo "== installing CUDA 13.0 wheels into $PY"
  $NICE python3 -m pip install --no-deps --target "$PY" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
fi
export CUDA_HOME="$CU"
export PATH="$CU/bin:$PATH"
nvcc --version | grep -q 'release 13.0' || { echo "nvcc is not 13.0" >&2; exit 1; }

# ---------------------------------------------------------------- 2. link stubs
(cd "$ROOT" && cargo fetch -q)
CUDARC_VER="$(sed -n '/^name = "candle-core"/,/^$/p' "$ROOT/Cargo.lock" | grep -o '"cudarc[ 0-9.]*"' | tr -d '"' | awk '{print $2}')"
[ -n "$CUDARC_VER" ] || CUDARC_VER="$(awk '/^name = "cudarc"/{getline; gsub(/"/,"",$3); print $3}' "$ROOT/Cargo.lock" | sort -V | tail -1)"
CUDARC_SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$CUDARC_VER" | head -1)"
echo "== link stubs from $CUDARC_SRC"
mkdir -p "$STUBS"
mkstub() { # lib-dir soname linkname
  local dir="$1" soname="$2" link="$3" c="$STUBS/$3.c"
  { echo "/* generated link stub: no implementations, never loaded at run time */"
    grep -oh 'load::<_F>("[A-Za-z0-9_]*")' "$CUDARC_SRC/src/$dir/sys/mod.rs" \
      | sed 's/load::<_F>("\(.*\)")/\1/' | sort -u | sed 's/.*/void &(void) {}/'
  } > "$c"
  gcc -shared -fPIC -O0 -Wl,-soname,"$soname" -o "$STUBS/$link.so" "$c"
}
mkstub driver   libcuda.so.1      libcuda
mkstub nvrtc    libnvrtc.so.13    libnvrtc
mkstub curand   libcurand.so.10   libcurand
mkstub cublas   libcublas.so.13   libcublas
mkstub cublaslt libcublasLt.so.13 libcublasLt
ln -sf "$CU/lib/libcudart.so.13" "$STUBS/libcudart.so"   # real cudart (SONAME libcudart.so.13)
export LIBRARY_PATH="$STUBS${LIBRARY_PATH:+:$LIBRARY_PATH}"

# ---------------------------------------------------------------- 3. cargo builds
cd "$ROOT"
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}"
if [ "$NODE" = 1 ]; then
  # The napi addon as a cdylib; napi's CLI only renames it and writes the JS loader, which the
  # CUDA variant does not use (src/native.ts requires the .node file directly).
  echo "== cargo build -p reft-node --features cuda (target $CARGO_TARGET_DIR)"
  $NICE cargo build --release -p reft-node --features cuda
  dest="$ROOT/native/reft.linux-x64-gnu.cuda$SUFFIX.node"
  cp "$CARGO_TARGET_DIR/release/libreft_node.so" "$dest.tmp" && strip "$dest.tmp" && mv "$dest.tmp" "$dest"
  echo "== wrote $dest ($(du -h "$dest" | cut -f1)); NEEDED: $(objdump -p "$dest" | awk '/NEEDED/{printf "%s ", $2}')"
  exit 0
fi
if [ "${SKIP_TESTS:-0}" = 1 ]; then
  : > "$CARGO_TARGET_DIR.tests.json"   # only the bench and examples (what scripts/gpu-session.sh runs)
else
  echo "== cargo test --no-run (target $CARGO_TARGET_DIR)"
  $NICE cargo test --release -p reft-core --features cuda --no-run --message-format=json-render-diagnostics \
    > "$CARGO_TARGET_DIR.tests.json"
fi
echo "== cargo build bench/examples"
$NICE cargo build --release -p reft-core --features cuda --bench train_step --examples \
  --message-format=json-render-diagnostics > "$CARGO_TARGET_DIR.bins.json"

# ---------------------------------------------------------------- 4. bundle
rm -rf "$OUT_BUNDLE"; mkdir -p "$OUT_BUNDLE/bin"
python3 - "$CARGO_TARGET_DIR.tests.json" "$CARGO_TARGET_DIR.bins.json" "$OUT_BUNDLE/bin" <<'EOF'
import json, shutil, sys, os
out = sys.argv[3]
for f in sys.argv[1:3]:
    for line in open(f):
        m = json.loads(line)
        if m.get("reason") != "compiler-artifact" or not m.get("executable"):
            continue
        t = m["target"]; kind = t["kind"][0]
        if not m["package_id"].split("#")[0].endswith("reft-core") and "reft-core" not in m["package_id"]:
            continue
        name = {"test": "test-", "bench": "bench-", "example": "example-", "lib": "unit-"}.get(kind, kind + "-") + t["name"]
        if kind == "lib" and m["profile"].get("test"): name = "unit-" + t["name"]
        shutil.copy2(m["executable"], os.path.join(out, name))
        print(name, "<-", m["executable"])
EOF
strip "$OUT_BUNDLE"/bin/*
echo "== NEEDED libs"
for b in "$OUT_BUNDLE"/bin/*; do echo "$(basename "$b"): $(objdump -p "$b" | awk '/NEEDED/{printf "%s ", $2}')"; done
# ~15 MB each (mostly embedded PTX); xz brings each to ~1.6 MB. run.sh unpacks them on the device.
$NICE xz -6 -T1 -f "$OUT_BUNDLE"/bin/*
# test fixtures the integration tests read relative to CARGO_MANIFEST_DIR are not copied here.
cat > "$OUT_BUNDLE/run.sh" <<'EOF'
#!/usr/bin/env bash
# Run on the GPU machine from the repository root or anywhere:  bash .device/cuda/run.sh [filter args]
# Device selection: candle's Device::new_cuda(0) uses ordinal 0; pick the GPU with CUDA_VISIBLE_DEVICES.
# Keep /usr/local/cuda/compat OFF LD_LIBRARY_PATH (older than the 580 driver).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"
OUT="${OUT:-$HERE/out}"; mkdir -p "$OUT"
# Integration tests find fixtures via the build-time CARGO_MANIFEST_DIR (__MANIFEST_DIR__).
REPO="$(cd "$HERE/../.." && pwd)"
if [ ! -d "__MANIFEST_DIR__/tests/fixtures" ] && [ -d "$REPO/crates/reft-core/tests/fixtures" ]; then
  mkdir -p "$(dirname "__BUILD_ROOT__")" && ln -sfn "$REPO" "__BUILD_ROOT__" \
    || echo "warning: cannot link __BUILD_ROOT__ -> $REPO; fixture tests will fail"
fi
for z in "$HERE"/bin/*.xz; do  # unpack once (xz, else python3's lzma)
  [ -e "$z" ] || continue; b="${z%.xz}"; [ -x "$b" ] && [ "$b" -nt "$z" ] && continue
  if command -v xz >/dev/null; then xz -dkc "$z" > "$b"; else python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$z" "$b"; fi
  chmod +x "$b"
done
echo "== ldd check"; for b in "$HERE"/bin/*; do case "$b" in *.xz) continue;; esac; ldd "$b" | grep -q 'not found' && { echo "MISSING in $b:"; ldd "$b" | grep 'not found'; }; done
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv || true
rc=0
if [ -x "$HERE/bin/example-cuda_smoke" ]; then
  echo "== example-cuda_smoke"; "$HERE/bin/example-cuda_smoke" 2>&1 | tee "$OUT/cuda_smoke.log"; r=${PIPESTATUS[0]}; [ $r -ne 0 ] && rc=$r
fi
for b in "$HERE"/bin/unit-* "$HERE"/bin/test-*; do
  case "$b" in *.xz) continue;; esac; [ -x "$b" ] || continue
  n=$(basename "$b"); echo "== $n"
  "$b" "$@" 2>&1 | tee "$OUT/$n.log" | tail -5; r=${PIPESTATUS[0]}; echo "rc=$r"; [ $r -ne 0 ] && rc=$r
done
exit $rc
EOF
sed -i "s#__MANIFEST_DIR__#$ROOT/crates/reft-core#g; s#__BUILD_ROOT__#$ROOT#g" "$OUT_BUNDLE/run.sh"
chmod +x "$OUT_BUNDLE/run.sh"
{ echo "commit $(git -C "$ROOT" rev-parse HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates || echo ' +uncommitted changes in crates/')"
  echo "built $(date -u +%FT%TZ) on $(uname -n); $(nvcc --version | grep release)"
  case "$CUDA_COMPUTE_CAP" in
    90) echo "CUDA_COMPUTE_CAP=90 (PTX + libmoe for sm_90a: H100/H200 only) CUDARC_CUDA_VERSION=$CUDARC_CUDA_VERSION" ;;
    *) echo "CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP (compute_$CUDA_COMPUTE_CAP PTX: GPUs from sm_$CUDA_COMPUTE_CAP on) CUDARC_CUDA_VERSION=$CUDARC_CUDA_VERSION" ;;
  esac
} > "$OUT_BUNDLE/BUILD_INFO"
cat "$OUT_BUNDLE/BUILD_INFO"
du -sh "$OUT_BUNDLE"; ls -la "$OUT_BUNDLE/bin"

#!/usr/bin/env bash
# Packs what the GPU machine needs to check the Node addon's CUDA build (it has no Node and no
# npm install): this machine's node binary, the CPU and CUDA builds of the addon (xz), and
# benches/cuda-node-check.cjs, into .device/cuda-node/ (git-ignored; about 25 MB, under the
# device tool's 64 MiB carry limit). Then, on the GPU machine:
#   run(command="bash .device/cuda-node/run.sh", carry=[".device/cuda-node"])
# Build the CUDA addon first: scripts/build-cuda.sh --node.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.device/cuda-node
CPU=native/reft.linux-x64-gnu.node
CUDA=native/reft.linux-x64-gnu.cuda.node
for f in "$CPU" "$CUDA"; do [ -f "$f" ] || { echo "missing $f (npm run build:native; scripts/build-cuda.sh --node)" >&2; exit 1; }; done
rm -rf "$OUT"; mkdir -p "$OUT"
xz -6 -T2 -c "$(readlink -f "$(command -v node)")" > "$OUT/node.xz"
xz -6 -T2 -c "$CPU" > "$OUT/cpu.node.xz"
xz -6 -T2 -c "$CUDA" > "$OUT/cuda.node.xz"
cp benches/cuda-node-check.cjs "$OUT/"
cat > "$OUT/run.sh" <<'RUN'
#!/usr/bin/env bash
# On the GPU machine: unpack (xz, else python3's lzma), then compare the CUDA addon with the CPU one.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for z in node cpu.node cuda.node; do
  [ -f "$HERE/$z" ] && continue
  if command -v xz >/dev/null; then xz -dc "$HERE/$z.xz" > "$HERE/$z"; else python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$HERE/$z.xz" "$HERE/$z"; fi
done
chmod +x "$HERE/node"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version --format=csv || true
ldd "$HERE/cuda.node" | grep -E 'not found|cuda|cublas|curand' || true
CPU_ADDON="$HERE/cpu.node" CUDA_ADDON="$HERE/cuda.node" "$HERE/node" "$HERE/cuda-node-check.cjs" | tee "${OUT:-$HERE}/cuda-node-check.json"
RUN
chmod +x "$OUT/run.sh"
du -sh "$OUT"; ls -la "$OUT"

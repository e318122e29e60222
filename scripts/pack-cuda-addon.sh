#!/usr/bin/env bash
# Packs the CUDA build of the Node addon as the optional package @reft/binding-linux-x64-gnu-cuda
# (npm/linux-x64-gnu-cuda), a tarball in dist-packages/ to install next to reft with
# `npm install <tarball>`; src/native.ts finds it there for `device: 'cuda'`.
#   scripts/pack-cuda-addon.sh                 # builds the addon first if native/ lacks it (no GPU needed)
#   ADDON=path/to/x.cuda.node scripts/pack-cuda-addon.sh   # packs that binary instead
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PKG="$ROOT/npm/linux-x64-gnu-cuda"
ADDON="${ADDON:-$ROOT/native/reft.linux-x64-gnu.cuda.node}"
if [ ! -f "$ADDON" ]; then
  echo "== building the CUDA addon (scripts/build-cuda.sh --node)"
  bash "$ROOT/scripts/build-cuda.sh" --node
fi
[ -f "$ADDON" ] || { echo "no CUDA addon at $ADDON" >&2; exit 1; }
mkdir -p "$ROOT/dist-packages"
cp "$ADDON" "$PKG/reft.linux-x64-gnu.cuda.node"
trap 'rm -f "$PKG/reft.linux-x64-gnu.cuda.node"' EXIT
(cd "$PKG" && npm pack --silent --pack-destination "$ROOT/dist-packages")
echo "packed: $(ls "$ROOT"/dist-packages/reft-binding-linux-x64-gnu-cuda-*.tgz)"
echo "install next to reft: npm install <that tarball>"

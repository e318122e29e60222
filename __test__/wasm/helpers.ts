/**
 * Shared fixtures of the WebAssembly suites: both backends behind the same `NativeModule`
 * contract (the native addon and `loadWasmBackend()`), a tiny model on disk, hand-made batches
 * and a max-abs-difference helper. Suites skip, with a message, when `wasm/node/` is missing (and fail with `REFT_REQUIRE_WASM=1`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { native } from '../../src/native.js'
import type { NativeBatch, NativeModule } from '../../src/native-api.js'
import { loadWasmBackend, wasmBindingsPath, wasmBuildExists, type WasmBackend } from '../../src/wasm/index.js'

/**
 * Whether the WebAssembly build exists; prints why the suite is skipped when it does not. With
 * `REFT_REQUIRE_WASM=1` (CI builds the module) a missing build fails instead of skipping.
 */
export function wasmBuilt(): boolean {
  const built = wasmBuildExists()
  if (!built && process.env.REFT_REQUIRE_WASM === '1') throw new Error(`REFT_REQUIRE_WASM=1 but there is no WebAssembly build at ${wasmBindingsPath()}`)
  if (!built) console.warn(`[wasm] skipping: no WebAssembly build at ${wasmBindingsPath()} (run scripts/build-wasm.sh)`)
  return built
}

export interface Backends {
  native: NativeModule
  wasm: WasmBackend
}

export async function backends(): Promise<Backends> {
  return { native: native(), wasm: await loadWasmBackend() }
}

/** A fresh temp directory; `cleanup` removes it. */
export function tempRoot(): { root: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'reft-wasm-'))
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) }
}

/**
 * Two right-padded rows over the tiny vocabulary, labels on the second half, one intervention
 * position per row (`numInterventions` copies of the layout).
 */
export function tinyBatch(numInterventions = 1): NativeBatch {
  const rows = [
    [256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100],
    [256, 97, 98, 99, 32, 100, 101, 102],
  ]
  const seqLen = Math.max(...rows.map((r) => r.length))
  const ids: number[] = []
  const mask: number[] = []
  const labels: number[] = []
  for (const r of rows) {
    for (let i = 0; i < seqLen; i++) {
      const real = i < r.length
      ids.push(real ? r[i]! : 258)
      mask.push(real ? 1 : 0)
      labels.push(real && i >= r.length / 2 ? r[i]! : -100)
    }
  }
  const positions = Array.from({ length: numInterventions }, () => rows.map((r) => Math.floor(r.length / 2) - 1)).flat()
  return {
    inputIds: new Uint32Array(ids),
    batchSize: rows.length,
    seqLen,
    attentionMask: new Uint8Array(mask),
    positions: new Int32Array(positions),
    numPositions: 1,
    labels: new Int32Array(labels),
  }
}

/** Largest |a[i] − b[i]| (Infinity when the lengths differ). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

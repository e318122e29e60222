/**
 * The WebAssembly backend: the {@link NativeModule} contract of src/native-api.ts implemented
 * over crates/reft-wasm, so code written against the native addon runs on it unchanged, plus
 * in-memory entry points for hosts without a file system ({@link WasmBackend}).
 *
 * Differences from the native addon (docs/WASM.md):
 * - every call runs synchronously on the calling thread (wasm32 has no threads here); the
 *   promise-returning methods resolve once the work is done, and `abort()` only takes effect when
 *   called from `generate`'s `onToken`;
 * - CPU only (`device: 'cuda'` is ERR_INVALID_CONFIG); models load from bytes (this module reads
 *   the files in Node), so a model occupies WebAssembly memory (at most 4 GiB) instead of being
 *   memory-mapped;
 * - reft checkpoints are byte-compatible both ways, and pyreft adapter directories load here
 *   too (read into memory, through the core's in-memory pyreft loader);
 * - a Rust panic aborts the instance (a `RuntimeError`, reported as ERR_BACKEND); the backend
 *   then refuses further calls.
 */
import { join } from 'node:path'
import type { NativeModel, NativeModule } from '../native-api.js'
import { wasmBindings } from './bindings.js'
import { createCoreBackend, type WasmCoreBackend } from './core.js'
import { cacheDir, readCheckpointFiles, readModelFiles, writeCheckpoint, writeFiles } from './node-files.js'
import type { WasmReftHandle } from './handles.js'

export type { WasmReftHandle } from './handles.js'

/** The WebAssembly backend in Node: the native contract plus in-memory loading and saving. */
export interface WasmBackend extends Omit<NativeModule, 'createReft' | 'loadReft'>, WasmCoreBackend {
  readonly kind: 'wasm'
  loadReft(model: NativeModel, dir: string, withOptimizer: boolean): Promise<WasmReftHandle>
}

function createBackend(): WasmBackend {
  const core = createCoreBackend(wasmBindings(), writeCheckpoint)
  return {
    ...core,
    async loadModel(path, options) {
      return core.loadModelFromFiles(await readModelFiles(path), options)
    },
    async loadReft(model, dir, withOptimizer) {
      return core.loadReftFromFiles(model, await readCheckpointFiles(dir, withOptimizer), withOptimizer)
    },
    defaultModelPath: () => join(cacheDir(), 'SmolLM2-135M-Instruct.Q4_1.gguf'),
    minilmPath: () => join(cacheDir(), 'all-MiniLM-L6-v2'),
    createTinyModel(dir, seed) {
      writeFiles(dir, core.tinyModelFiles(seed))
    },
    createTinyEncoder(dir, seed, numLabels) {
      writeFiles(dir, core.tinyEncoderFiles(seed, numLabels))
    },
  }
}

let backend: WasmBackend | undefined

/**
 * The WebAssembly backend (Node): loads `wasm/node/` built by `scripts/build-wasm.sh` on first
 * use. Rejects with ERR_BACKEND when the build is missing.
 */
export async function loadWasmBackend(): Promise<WasmBackend> {
  return wasmBackend()
}

/** {@link loadWasmBackend}, synchronously (throws ERR_BACKEND when the build is missing). */
export function wasmBackend(): WasmBackend {
  backend ??= createBackend()
  return backend
}

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
 * - pyreft adapter directories are not read (ERR_UNSUPPORTED_MODEL); reft checkpoints are, and
 *   are byte-compatible both ways;
 * - a Rust panic aborts the instance (a `RuntimeError`, reported as ERR_BACKEND); the backend
 *   then refuses further calls.
 */
import { join } from 'node:path'
import type { NativeHeadSpec, NativeInterventionSpec, NativeLoadOptions, NativeModel, NativeModule } from '../native-api.js'
import { wasmBindings, type WasmBindings } from './bindings.js'
import { fromRaw, guard, rawModel, toRaw, using, WasmModel, WasmReft, type WasmReftHandle } from './handles.js'
import { cacheDir, readCheckpointFiles, readModelFiles, writeFiles, type FileRecord } from './node-files.js'

export type { WasmReftHandle } from './handles.js'

/** The WebAssembly backend: the native contract plus in-memory loading and saving. */
export interface WasmBackend extends NativeModule {
  readonly kind: 'wasm'
  createReft(model: NativeModel, specs: NativeInterventionSpec[], seed: number, head?: NativeHeadSpec | null): WasmReftHandle
  loadReft(model: NativeModel, dir: string, withOptimizer: boolean): Promise<WasmReftHandle>
  /** A model from in-memory files: an HF directory's (by file name) or one `*.gguf`. */
  loadModelFromFiles(files: FileRecord, options?: NativeLoadOptions): NativeModel
  /** An adapter from a checkpoint's in-memory files (see {@link WasmReftHandle.saveFiles}). */
  loadReftFromFiles(model: NativeModel, files: FileRecord, withOptimizer: boolean): WasmReftHandle
  /** The files `createTinyModel` writes. */
  tinyModelFiles(seed: number): FileRecord
  /** The files `createTinyEncoder` writes. */
  tinyEncoderFiles(seed: number, numLabels?: number | null): FileRecord
}

function createBackend(b: WasmBindings): WasmBackend {
  const loadModelFromFiles = (files: FileRecord, options?: NativeLoadOptions): NativeModel =>
    new WasmModel(guard(() => b.loadModel(toRaw(b, files), options === undefined ? undefined : JSON.stringify(options))))
  const loadReftFromFiles = (model: NativeModel, files: FileRecord, withOptimizer: boolean): WasmReftHandle =>
    new WasmReft(b, guard(() => using(toRaw(b, files), (raw) => b.loadReft(rawModel(model), raw, withOptimizer))))
  const tinyModelFiles = (seed: number): FileRecord => fromRaw(guard(() => b.tinyModelFiles(seed)))
  const tinyEncoderFiles = (seed: number, numLabels?: number | null): FileRecord => fromRaw(guard(() => b.tinyEncoderFiles(seed, numLabels ?? undefined)))
  return {
    kind: 'wasm',
    loadModelFromFiles,
    loadReftFromFiles,
    tinyModelFiles,
    tinyEncoderFiles,
    async loadModel(path, options) {
      return loadModelFromFiles(await readModelFiles(path), options)
    },
    createReft(model, specs, seed, head) {
      const headJson = head === undefined || head === null ? undefined : JSON.stringify(head)
      return new WasmReft(b, guard(() => b.createReft(rawModel(model), JSON.stringify(specs), seed, headJson)))
    },
    async loadReft(model, dir, withOptimizer) {
      return loadReftFromFiles(model, await readCheckpointFiles(dir, withOptimizer), withOptimizer)
    },
    defaultModelPath: () => join(cacheDir(), 'SmolLM2-135M-Instruct.Q4_1.gguf'),
    minilmPath: () => join(cacheDir(), 'all-MiniLM-L6-v2'),
    createTinyModel(dir, seed) {
      writeFiles(dir, tinyModelFiles(seed))
    },
    createTinyEncoder(dir, seed, numLabels) {
      writeFiles(dir, tinyEncoderFiles(seed, numLabels))
    },
  }
}

let backend: WasmBackend | undefined

/**
 * The WebAssembly backend (Node): loads `wasm/node/` built by `scripts/build-wasm.sh` on first
 * use. Rejects with ERR_BACKEND when the build is missing.
 */
export async function loadWasmBackend(): Promise<WasmBackend> {
  backend ??= createBackend(wasmBindings())
  return backend
}

/**
 * The WebAssembly backend's in-memory half, shared by Node (`backend.ts`) and the browser entry
 * (`src/browser/`): models and adapters from file bytes, new adapters, the tiny test models as
 * bytes. It needs no file system; the Node half adds paths on top.
 */
import type { Backend, NativeHeadSpec, NativeInterventionSpec, NativeLoadOptions, NativeModel } from '../native-api.js'
import { fromRaw, guard, rawModel, toRaw, using, WasmModel, WasmReft, type CheckpointWriter, type WasmReftHandle } from './handles.js'
import type { FileRecord, WasmBindings } from './raw.js'

/** The in-memory surface of the WebAssembly backend. */
export interface WasmCoreBackend extends Backend {
  readonly kind: 'wasm'
  createReft(model: NativeModel, specs: NativeInterventionSpec[], seed: number, head?: NativeHeadSpec | null): WasmReftHandle
  /** A model from in-memory files: an HF directory's (by file name) or one `*.gguf`. */
  loadModelFromFiles(files: FileRecord, options?: NativeLoadOptions): NativeModel
  /** An adapter from a checkpoint's in-memory files (see {@link WasmReftHandle.saveFiles}). */
  loadReftFromFiles(model: NativeModel, files: FileRecord, withOptimizer: boolean): WasmReftHandle
  /** The files `createTinyModel` writes. */
  tinyModelFiles(seed: number): FileRecord
  /** The files `createTinyEncoder` writes. */
  tinyEncoderFiles(seed: number, numLabels?: number | null): FileRecord
}

/** The in-memory backend over loaded bindings; `write` saves checkpoints to directories (Node). */
export function createCoreBackend(b: WasmBindings, write?: CheckpointWriter): WasmCoreBackend {
  return {
    kind: 'wasm',
    loadModelFromFiles: (files, options) =>
      new WasmModel(guard(() => b.loadModel(toRaw(b, files), options === undefined ? undefined : JSON.stringify(options)))),
    loadReftFromFiles: (model, files, withOptimizer) =>
      new WasmReft(b, guard(() => using(toRaw(b, files), (raw) => b.loadReft(rawModel(model), raw, withOptimizer))), write),
    tinyModelFiles: (seed) => fromRaw(guard(() => b.tinyModelFiles(seed))),
    tinyEncoderFiles: (seed, numLabels) => fromRaw(guard(() => b.tinyEncoderFiles(seed, numLabels ?? undefined))),
    createReft(model, specs, seed, head) {
      const headJson = head === undefined || head === null ? undefined : JSON.stringify(head)
      return new WasmReft(b, guard(() => b.createReft(rawModel(model), JSON.stringify(specs), seed, headJson)), write)
    },
  }
}

/**
 * reft in the browser (and any host without the native addon or a file system): the same API
 * names as the Node entry over the WebAssembly build of the core. Models and adapters come from
 * files, bytes or URLs instead of paths; adapters save to in-memory files. Differences from Node
 * are listed in the README ("In the browser"). Nothing here imports a Node module.
 */
import { callAsync, call } from '../call.js'
import { ReftError } from '../errors.js'
import type { LoadReftOptions } from '../load-reft.js'
import { reftFromHandle } from '../load-reft.js'
import { Model } from '../model.js'
import type { ReftModel } from '../reft-model.js'
import type { CollatableItem } from '../datasets/collate.js'
import { runTraining } from '../train-loop.js'
import type { Trainable, TrainHistory, TrainOptions } from '../trainer-options.js'
import type { FileRecord } from '../wasm/raw.js'
import { initWasm } from './module.js'
import { readAdapterSource, readModelSource, type FileSource } from './sources.js'

export { initWasm, type InitWasmOptions, type WasmInput } from './module.js'
export type { FileSource, FileListLike } from './sources.js'
export type { FileRecord } from '../wasm/raw.js'
export * from '../common-exports.js'
export { planEpoch } from '../train-loop.js'

/** Options of the browser {@link loadModel}. */
export interface BrowserLoadModelOptions {
  /** Compute dtype (CPU only here). @defaultValue `'f32'` */
  dtype?: 'f32' | 'bf16' | 'f16'
}

/**
 * Loads a base model from a `.gguf` (a `File`/`Blob`, bytes, or its URL) or an HF directory's
 * files (`config.json`, `tokenizer.json`, safetensors: picked files, a `{ name: bytes }` record, or
 * the directory's URL). Initializes the WebAssembly module on first use.
 */
export async function loadModel(source: FileSource, options: BrowserLoadModelOptions = {}): Promise<Model> {
  const backend = await initWasm()
  const { files, where } = await readModelSource(source)
  const handle = call(() => backend.loadModelFromFiles(files, options.dtype === undefined ? undefined : { dtype: options.dtype }))
  return new Model(handle, where, backend)
}

/**
 * Loads a reft checkpoint (`reft_config.json`, `interventions.safetensors`; `optimizer.safetensors`
 * with `withOptimizer`) onto `model`: picked files, a `{ name: bytes }` record (what
 * `ReftModel.saveFiles()` returns), or the checkpoint directory's URL. A pyreft adapter
 * (`config.json` and its `intkey_*.bin` files, as `ReftModel.save` writes them in Python) loads
 * the same way; pyreft records no positions, so pass `positions` (default `'l1'`).
 */
export async function loadReft(source: FileSource, model: Model, options: LoadReftOptions = {}): Promise<ReftModel> {
  const backend = model.backend
  if (backend.loadReftFromFiles === undefined) throw new ReftError('ERR_BACKEND', 'this model was not loaded by the WebAssembly backend')
  const load = backend.loadReftFromFiles.bind(backend)
  const withOptimizer = options.withOptimizer ?? false
  const { files, where } = await readAdapterSource(source, withOptimizer)
  const handle = await callAsync(async () => load(model.handle, files, withOptimizer))
  return reftFromHandle(model, handle, options, where)
}

/**
 * Trains `reft` on `dataset` with the Node entry's loop and options, except that checkpoints
 * (`outputDir`, `resumeFrom`) are refused: save with `reft.saveFiles()` instead. Every step runs
 * synchronously on this thread, so train in a Web Worker to keep a page responsive.
 */
export function train(reft: Trainable, dataset: readonly CollatableItem[], options: TrainOptions = {}): Promise<TrainHistory> {
  return runTraining(reft, dataset, options, undefined)
}

/** The files of a tiny random Llama (HF layout, byte-level tokenizer): for tests and examples. */
export async function createTinyModelFiles(seed = 0): Promise<FileRecord> {
  const backend = await initWasm()
  return call(() => backend.tinyModelFiles(seed))
}

/** The files of a tiny random BERT (with `numLabels`, a stored classifier): for tests and examples. */
export async function createTinyEncoderFiles(seed = 0, numLabels?: number): Promise<FileRecord> {
  const backend = await initWasm()
  return call(() => backend.tinyEncoderFiles(seed, numLabels ?? null))
}

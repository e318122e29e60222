/**
 * reft — Representation Finetuning (ReFT) for Node.js. The public surface: load a model, add
 * interventions, build datasets, train, generate, save and load adapters, evaluate on the paper's tasks,
 * search hyperparameters.
 */
export * from './common-exports.js'
export { loadModel, type LoadModelOptions } from './load-model.js'
export { selectBackend, type BackendChoice } from './backend.js'
export { loadReft } from './load-reft.js'
export * from './evaluation/index.js'
export * from './search/index.js'
export * from './glue/index.js'
export { train } from './trainer.js'
export { createProgressReporter, type ProgressReporter } from './progress.js'
export { lossCurveSvg, writeLossCurve } from './plot.js'
export { ensureDefaultModel, defaultModelPath, defaultModelPackage, ensureMiniLM, minilmPath, minilmPackage, fetchModel, type FetchableModel } from './fetch-model.js'
export { downloadFromHub, type HubOptions } from './hub.js'
export { loadWasmBackend, wasmBuildExists, type WasmBackend, type WasmReftHandle, type FileRecord } from './wasm/index.js'

import { selectBackend } from './backend.js'

/** Writes a tiny random Llama (HF layout, byte-level tokenizer) to `dir`: for tests and examples. */
export function createTinyModel(dir: string, seed = 0): void {
  selectBackend().createTinyModel(dir, seed)
}

/**
 * Writes a tiny random BERT (HF layout, hidden 32, 2 layers, character WordPiece tokenizer) to
 * `dir`; with `numLabels`, a stored classifier too: for tests and examples.
 */
export function createTinyEncoder(dir: string, seed = 0, numLabels?: number): void {
  selectBackend().createTinyEncoder(dir, seed, numLabels ?? null)
}

/**
 * reft — Representation Finetuning (ReFT) for Node.js. The public surface: load a model, add
 * interventions, build datasets, train, generate, save and load adapters, evaluate on the paper's tasks,
 * search hyperparameters.
 */
export { Model, type ModelInfo, type WithInterventionsOptions } from './model.js'
export { loadModel, type LoadModelOptions } from './load-model.js'
export { selectBackend, type BackendChoice } from './backend.js'
export {
  encoderMaxLength,
  labelFromLogits,
  type ClassifyInput,
  type ClassifyOptions,
  type ClassifyResult,
  type HeadConfig,
  type HeadInfo,
} from './classifier.js'
export { ReftModel, type DatasetOptions, type GenerateOptions, type GenerateResult, type TrainableParameters } from './reft-model.js'
export { loadReft, type LoadReftOptions } from './load-reft.js'
export type { ForwardInput } from './forward-input.js'
export {
  parsePositions,
  resolveConfig,
  expandConfig,
  defaults,
  interventionKinds,
  components,
  activations,
  type InterventionConfig,
  type InterventionKind,
  type Component,
  type Activation,
  type Positions,
  type ResolvedInterventionConfig,
} from './config.js'
export { ReftError, toReftError, type ReftErrorCode } from './errors.js'
export { getInterventionLocations, flattenPositions, type PadMode } from './positions.js'
export * from './schedules/index.js'
export * from './datasets/index.js'
export * from './evaluation/index.js'
export * from './search/index.js'
export * from './glue/index.js'
export { train, evaluate } from './trainer.js'
export type { TrainOptions, TrainHistory, TrainProgressEvent, TrainEpochEndEvent, Trainable, EarlyStoppingOptions } from './trainer-options.js'
export { createProgressReporter, type ProgressReporter } from './progress.js'
export { lossCurveSvg, writeLossCurve } from './plot.js'
export { ensureDefaultModel, defaultModelPath, defaultModelPackage, ensureMiniLM, minilmPath, minilmPackage, fetchModel, type FetchableModel } from './fetch-model.js'
export { downloadFromHub, type HubOptions } from './hub.js'
export type { NativeBatch, NativeForwardOutput, NativeStepStats } from './native-api.js'
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

/**
 * The exports that the Node entry (index.ts) and the browser entry (browser/index.ts) share: the
 * model and adapter classes, configs, datasets, schedules, positions and errors. Only modules
 * without Node imports belong here; each entry adds its own `loadModel`, `loadReft` and `train`.
 */
export { Model, type ModelInfo, type WithInterventionsOptions } from './model.js'
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
export type { LoadReftOptions } from './load-reft.js'
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
export { evaluate } from './train-loop.js'
export type { TrainOptions, TrainHistory, TrainProgressEvent, TrainEpochEndEvent, Trainable, EarlyStoppingOptions } from './trainer-options.js'
export type { NativeBatch, NativeForwardOutput, NativeStepStats } from './native-api.js'

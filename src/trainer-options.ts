/**
 * Types of the training loop (the `Trainable` contract, options, progress events, history) and
 * option validation. Kept apart from trainer.ts so progress and plot code can import the types
 * without importing the loop.
 */
import type { CollatableItem } from './datasets/collate.js'
import { invalidConfig } from './errors.js'
import type { NativeBatch, NativeForwardOutput, NativeStepOptions, NativeStepStats } from './native-api.js'
import { linearSchedule } from './schedules/linear.js'
import type { Schedule } from './schedules/warmup.js'
import { checkBoolean, checkInteger, checkNumber } from './validate.js'

/**
 * What the trainer drives. `NativeReft` satisfies it, and so can a test fake.
 *
 * - `trainStep` runs forward + backward on every micro-batch, averages, clips and applies one
 *   AdamW step with `opts.lr`, and resolves with the step's stats. It must not mutate the batches.
 * - `forward` with labels resolves with the mean loss over labelled tokens and `numTokens`.
 * - `setTraining(true)` enables dropout; the trainer calls it at the start, turns it off around
 *   evaluation, and always calls `setTraining(false)` at the end, also on error or abort.
 * - `save(dir, true)` writes weights and optimizer state into `dir`, which already exists.
 * - `padTokenId`, when present, pads batches unless the options give `padId` (encoders such as
 *   RoBERTa derive position ids from it, so padding must use the model's pad token).
 *
 * Items may be language-model rows (token `labels`) or classification rows (`classLabel`,
 * `tokenTypeIds`; see `ReftModel.classificationDataset`): `collateTraining` builds either batch.
 */
export interface Trainable {
  trainStep(microBatches: NativeBatch[], opts: NativeStepOptions): Promise<NativeStepStats>
  forward(batch: NativeBatch, wantLogits: boolean): Promise<NativeForwardOutput>
  setTraining(training: boolean): void
  save(dir: string, withOptimizer: boolean): Promise<void>
  readonly padTokenId?: number | undefined
  /**
   * True for a causal LM trained on token labels (a decoder without a head): `train` then refuses
   * a dataset whose labelled tokens all precede their items' interventions (nothing would train).
   */
  readonly causalLm?: boolean
}

/** Passed to `onEpochEnd` after the last step of an epoch. */
export interface TrainEpochEndEvent {
  /** 0-based epoch that just finished. */
  epoch: number
  /** Optimizer steps done so far. */
  step: number
  /** The history so far (do not mutate). */
  history: TrainHistory
}

/** One optimizer step in the history; `step` counts from 1. */
export interface TrainStepRecord {
  step: number
  loss: number
  gradNorm: number
  lr: number
}

/** One evaluation in the history, taken after optimizer step `step`. */
export interface TrainEvalRecord {
  step: number
  loss: number
}

/** What `train` returns. On resume it includes the steps recorded before the checkpoint. */
export interface TrainHistory {
  steps: TrainStepRecord[]
  evals: TrainEvalRecord[]
  stoppedEarly: boolean
}

/** Reported after every optimizer step. */
export interface TrainProgressEvent {
  /** Optimizer steps done (1-based). */
  step: number
  totalSteps: number
  /** 0-based epoch of this step. */
  epoch: number
  loss: number
  gradNorm: number
  /** Learning rate used by this step. */
  lr: number
  /** Non-padding input tokens per second, averaged since this call of `train` began. */
  tokensPerSecond: number
  /** Milliseconds since this call of `train` began. */
  elapsedMs: number
  /** Estimated milliseconds until `totalSteps`. */
  etaMs: number
  /** Mean eval loss, when an evaluation ran after this step. */
  evalLoss?: number
}

/** Stop when the eval loss has not improved by more than `minDelta` for `patience` evaluations. */
export interface EarlyStoppingOptions {
  /** Evaluations without improvement before stopping (integer >= 1). */
  patience: number
  /**
   * Minimum decrease that counts as an improvement.
   * @defaultValue `0`
   */
  minDelta?: number
}

/** Options of `train`. */
export interface TrainOptions {
  /** @defaultValue `1` */
  epochs?: number
  /** Examples per micro-batch. @defaultValue `4` */
  batchSize?: number
  /** Micro-batches per optimizer step. @defaultValue `1` */
  gradientAccumulation?: number
  /** Peak learning rate for the default schedule. @defaultValue `4e-3` */
  lr?: number
  /** Warmup steps of the default linear schedule. @defaultValue `0` */
  warmupSteps?: number
  /** Warmup ratio of the default linear schedule (instead of `warmupSteps`). */
  warmupRatio?: number
  /** `(step) => lr`, `step` = optimizer steps already taken. @defaultValue `linearSchedule({lr, totalSteps, …})` */
  schedule?: Schedule
  /** Decoupled weight decay. @defaultValue `0` */
  weightDecay?: number
  /** Gradient-norm clip; <= 0 disables. @defaultValue `1` */
  maxGradNorm?: number
  /** Seed of the per-epoch shuffle (epoch e uses `seed + e`). @defaultValue `42` */
  seed?: number
  /**
   * Group micro-batches by length to cut padding (HF Trainer's `group_by_length`; see
   * length-groups.ts). Off by default, as in pyreft's recipes. @defaultValue `false`
   */
  groupByLength?: boolean
  /**
   * Recompute each layer's activations in the backward instead of keeping them (gradient
   * checkpointing, decoders only): memory drops to one layer's activations, at the cost of one
   * more forward over the intervened layers. The gradients are the same; with dropout the masks
   * are drawn per layer, so they differ from a run without it. @defaultValue `false`
   */
  recompute?: boolean
  /** Token id used for padding when collating. @defaultValue `reft.padTokenId`, else `0` */
  padId?: number
  /** Items evaluated every `evalEvery` steps. */
  evalDataset?: readonly CollatableItem[]
  /** Evaluate after every this many steps (requires `evalDataset`). */
  evalEvery?: number
  /** Eval micro-batch size. @defaultValue `batchSize` */
  evalBatchSize?: number
  /** Write `outputDir/checkpoint-<step>/` every this many steps. */
  checkpointEvery?: number
  /** Where checkpoints go (required with `checkpointEvery`). */
  outputDir?: string
  /**
   * A `checkpoint-<step>` directory to continue from, at the same step and batch order. The caller
   * must already have loaded the intervention weights and optimizer state from that directory
   * into `reft` (e.g. `loadReft(model, dir, true)`); `train` only restores the loop state.
   */
  resumeFrom?: string
  /** Early stopping on the eval loss (requires `evalDataset` and `evalEvery`). */
  earlyStopping?: EarlyStoppingOptions
  /** Checked before every step; abort ends training with ERR_ABORTED. */
  signal?: AbortSignal
  /** Called after every optimizer step. */
  onProgress?: (event: TrainProgressEvent) => void
  /**
   * Awaited after the last step of every epoch (not after an early stop or abort), with dropout
   * off: evaluate, keep the best epoch's adapter, etc. A rejection ends training with that error.
   */
  onEpochEnd?: (event: TrainEpochEndEvent) => void | Promise<void>
}

/** Defaults of {@link TrainOptions}. */
export const trainDefaults = {
  epochs: 1,
  batchSize: 4,
  gradientAccumulation: 1,
  lr: 4e-3,
  weightDecay: 0,
  maxGradNorm: 1,
  seed: 42,
  padId: 0,
} as const

/** Options after validation, with the step plan and schedule resolved. */
export interface ResolvedTrainOptions {
  epochs: number
  batchSize: number
  gradientAccumulation: number
  schedule: Schedule
  weightDecay: number
  maxGradNorm: number
  seed: number
  groupByLength: boolean
  recompute: boolean
  padId: number
  evalEvery: number | undefined
  evalBatchSize: number
  checkpointEvery: number | undefined
  patience: number | undefined
  minDelta: number
  stepsPerEpoch: number
  totalSteps: number
}

/** Validate `options` for a dataset of `datasetSize` items (ERR_INVALID_CONFIG / ERR_OUT_OF_RANGE naming the field). */
export function resolveTrainOptions(options: TrainOptions, datasetSize: number): ResolvedTrainOptions {
  const d = trainDefaults
  if (datasetSize === 0) throw invalidConfig('dataset', 'must contain at least one item')
  const epochs = checkInteger('epochs', options.epochs ?? d.epochs, { min: 1 })
  const batchSize = checkInteger('batchSize', options.batchSize ?? d.batchSize, { min: 1 })
  const gradientAccumulation = checkInteger('gradientAccumulation', options.gradientAccumulation ?? d.gradientAccumulation, { min: 1 })
  const stepsPerEpoch = Math.ceil(Math.ceil(datasetSize / batchSize) / gradientAccumulation)
  const totalSteps = epochs * stepsPerEpoch
  let schedule = options.schedule
  if (schedule === undefined) {
    const warm = options.warmupRatio !== undefined ? { warmupRatio: options.warmupRatio } : {}
    schedule = linearSchedule({ lr: options.lr ?? d.lr, totalSteps, warmupSteps: options.warmupSteps, ...warm })
  } else if (typeof schedule !== 'function') {
    throw invalidConfig('schedule', 'expected a function (step) => lr')
  }
  const hasEval = options.evalDataset !== undefined && options.evalDataset.length > 0
  const evalEvery = options.evalEvery === undefined ? undefined : checkInteger('evalEvery', options.evalEvery, { min: 1 })
  if (evalEvery !== undefined && !hasEval) throw invalidConfig('evalDataset', 'evalEvery needs a non-empty evalDataset')
  if (hasEval && evalEvery === undefined) throw invalidConfig('evalEvery', 'evalDataset needs evalEvery')
  const checkpointEvery =
    options.checkpointEvery === undefined ? undefined : checkInteger('checkpointEvery', options.checkpointEvery, { min: 1 })
  if (checkpointEvery !== undefined && (typeof options.outputDir !== 'string' || options.outputDir === '')) {
    throw invalidConfig('outputDir', 'checkpointEvery needs an outputDir')
  }
  const es = options.earlyStopping
  if (es !== undefined && evalEvery === undefined) throw invalidConfig('earlyStopping', 'needs evalDataset and evalEvery')
  return {
    epochs,
    batchSize,
    gradientAccumulation,
    schedule,
    weightDecay: checkNumber('weightDecay', options.weightDecay ?? d.weightDecay, { min: 0 }),
    maxGradNorm: checkNumber('maxGradNorm', options.maxGradNorm ?? d.maxGradNorm),
    seed: checkInteger('seed', options.seed ?? d.seed),
    groupByLength: checkBoolean('groupByLength', options.groupByLength ?? false),
    recompute: checkBoolean('recompute', options.recompute ?? false),
    padId: checkInteger('padId', options.padId ?? d.padId, { min: 0 }),
    evalEvery,
    evalBatchSize: checkInteger('evalBatchSize', options.evalBatchSize ?? batchSize, { min: 1 }),
    checkpointEvery,
    patience: es === undefined ? undefined : checkInteger('earlyStopping.patience', es.patience, { min: 1 }),
    minDelta: es === undefined ? 0 : checkNumber('earlyStopping.minDelta', es.minDelta ?? 0, { min: 0 }),
    stepsPerEpoch,
    totalSteps,
  }
}

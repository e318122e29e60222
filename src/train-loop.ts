/**
 * The training loop (no Node imports; trainer.ts binds it to the file system): seeded batches → lr(step) → one native optimizer step at a time, with
 * evaluation, early stopping, atomic checkpoints, exact resume, abort and progress reporting.
 *
 * Batch plan: each epoch shuffles the item indices with `mulberry32(seed + epoch)`, cuts them into
 * micro-batches of `batchSize` (the last may be smaller) and groups `gradientAccumulation`
 * micro-batches per optimizer step (the last step of an epoch may have fewer). The plan depends
 * only on (seed, epoch, sizes), which is what makes `resumeFrom` reproduce an uninterrupted run.
 *
 * Checkpoints go through a {@link CheckpointStore}: trainer.ts passes the file-system one (Node);
 * the browser entry passes none, and then `outputDir`/`resumeFrom` are refused.
 */
import { collateTraining, type CollatableItem } from './datasets/collate.js'
import { requireReachableLabels } from './datasets/label-reach.js'
import { ReftError, invalidConfig, toReftError } from './errors.js'
import type { NativeBatch } from './native-api.js'
import { lengthGroupedBatches } from './length-groups.js'
import { shuffledIndices } from './random.js'
import {
  type ResolvedTrainOptions,
  type Trainable,
  type TrainHistory,
  type TrainOptions,
  resolveTrainOptions,
} from './trainer-options.js'
import { type TrainerState, trainerStateVersion } from './trainer-state-format.js'

/**
 * Item indices per optimizer step of one epoch: `[step][microBatch][row]`. With `lengths` (one per
 * item), micro-batches are grouped by length (see length-groups.ts).
 */
export function planEpoch(datasetSize: number, batchSize: number, gradientAccumulation: number, seed: number, lengths?: readonly number[]): number[][][] {
  const order = shuffledIndices(datasetSize, seed)
  let micro: number[][] = []
  if (lengths !== undefined) micro = lengthGroupedBatches(order, lengths, batchSize, seed)
  else for (let i = 0; i < order.length; i += batchSize) micro.push(order.slice(i, i + batchSize))
  const steps: number[][][] = []
  for (let i = 0; i < micro.length; i += gradientAccumulation) steps.push(micro.slice(i, i + gradientAccumulation))
  return steps
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** @defaultValue `4` */
  batchSize?: number
  /** @defaultValue `0` */
  padId?: number
}

/**
 * Mean loss over all labelled tokens of `items` (each batch's loss weighted by its `numTokens`),
 * via `forward` with labels. Does not change the training flag; the trainer switches it.
 */
export async function evaluate(reft: Pick<Trainable, 'forward'>, items: readonly CollatableItem[], options: EvaluateOptions = {}): Promise<number> {
  const batchSize = options.batchSize ?? 4
  let sum = 0
  let tokens = 0
  for (let i = 0; i < items.length; i += batchSize) {
    const batch = collateTraining(items.slice(i, i + batchSize), { padId: options.padId ?? 0 })
    const out = await reft.forward(batch, false).catch((e: unknown) => Promise.reject(toReftError(e)))
    if (out.loss === undefined || out.numTokens === 0) continue
    sum += out.loss * out.numTokens
    tokens += out.numTokens
  }
  if (tokens === 0) throw new ReftError('ERR_SHAPE', 'evaluation data has no labelled tokens')
  return sum / tokens
}

function initialState(o: ResolvedTrainOptions, datasetSize: number): TrainerState {
  return {
    formatVersion: trainerStateVersion,
    step: 0,
    epoch: 0,
    stepInEpoch: 0,
    totalSteps: o.totalSteps,
    seed: o.seed,
    datasetSize,
    batchSize: o.batchSize,
    gradientAccumulation: o.gradientAccumulation,
    groupByLength: o.groupByLength,
    history: { steps: [], evals: [], stoppedEarly: false },
    bestEvalLoss: null,
    evalsWithoutImprovement: 0,
  }
}

/** Where checkpoints are written and read back. */
export interface CheckpointStore {
  /** Reads and checks a checkpoint's trainer state. */
  read(dir: string): Promise<TrainerState>
  /** Writes `outputDir/checkpoint-<step>/` atomically: `save` fills it with the adapter. */
  write(outputDir: string, state: TrainerState, save: (dir: string) => Promise<void>): Promise<unknown>
}

async function resumeState(store: CheckpointStore, dir: string, fresh: TrainerState): Promise<TrainerState> {
  const s = await store.read(dir)
  // States written before `groupByLength` existed were ungrouped.
  const saved = { ...s, groupByLength: s.groupByLength ?? false }
  for (const k of ['seed', 'datasetSize', 'batchSize', 'gradientAccumulation', 'totalSteps', 'groupByLength'] as const) {
    if (saved[k] !== fresh[k]) throw invalidConfig('resumeFrom', `checkpoint has ${k} = ${saved[k]}, this run has ${fresh[k]}`)
  }
  return { ...s, history: { ...s.history, stoppedEarly: false } }
}

// A macrotask in Node and in browsers (which have no setImmediate; typed structurally so a
// browser-only typecheck without Node's types accepts it).
const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate
const yieldToEventLoop = (): Promise<void> =>
  new Promise((resolve) => (immediate !== undefined ? immediate(() => resolve()) : setTimeout(resolve, 0)))

function countTokens(batches: readonly NativeBatch[]): number {
  let n = 0
  for (const b of batches) {
    if (b.attentionMask === undefined) n += b.inputIds.length
    else for (const m of b.attentionMask) n += m
  }
  return n
}

function abortError(step: number): ReftError {
  return new ReftError('ERR_ABORTED', `training aborted after step ${step}`)
}

/** Update early-stopping bookkeeping with a new eval loss; true when training should stop. */
function shouldStop(state: TrainerState, loss: number, o: ResolvedTrainOptions): boolean {
  if (state.bestEvalLoss === null || loss < state.bestEvalLoss - o.minDelta) {
    state.bestEvalLoss = loss
    state.evalsWithoutImprovement = 0
    return false
  }
  state.evalsWithoutImprovement++
  return o.patience !== undefined && state.evalsWithoutImprovement >= o.patience
}

/** Mutable state of one call of `train`. */
interface Run {
  reft: Trainable
  dataset: readonly CollatableItem[]
  options: TrainOptions
  store: CheckpointStore | undefined
  o: ResolvedTrainOptions
  state: TrainerState
  started: number
  tokens: number
  steps: number
}

/** Step `s` of `epoch`: collate, one optimizer step, bookkeeping, eval, checkpoint, progress. */
async function runStep(run: Run, epoch: number, s: number, plan: number[][][]): Promise<void> {
  const { reft, o, state, options } = run
  const micro = plan[s]!.map((rows) => collateTraining(rows.map((i) => run.dataset[i]!), { padId: o.padId }))
  const lr = o.schedule(state.step)
  const stats = await reft
    .trainStep(micro, { lr, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm, recompute: o.recompute })
    .catch((e: unknown) => Promise.reject(toReftError(e)))
  const step = state.step + 1
  if (!Number.isFinite(stats.loss) || !Number.isFinite(stats.gradNorm)) {
    const what = Number.isFinite(stats.loss) ? `grad norm ${stats.gradNorm}` : `loss ${stats.loss}`
    throw new ReftError('ERR_NON_FINITE', `step ${step}: ${what}`)
  }
  // Aborted while the step ran: the step is done, but nothing more is evaluated or saved.
  if (options.signal?.aborted) throw abortError(step)
  const last = s + 1 === plan.length
  state.step = step
  state.epoch = last ? epoch + 1 : epoch
  state.stepInEpoch = last ? 0 : s + 1
  state.history.steps.push({ step, loss: stats.loss, gradNorm: stats.gradNorm, lr })
  run.tokens += countTokens(micro)
  run.steps++

  let evalLoss: number | undefined
  if (o.evalEvery !== undefined && step % o.evalEvery === 0) {
    reft.setTraining(false)
    evalLoss = await evaluate(reft, options.evalDataset!, { batchSize: o.evalBatchSize, padId: o.padId })
    reft.setTraining(true)
    state.history.evals.push({ step, loss: evalLoss })
    if (shouldStop(state, evalLoss, o)) state.history.stoppedEarly = true
  }
  if (o.checkpointEvery !== undefined && step % o.checkpointEvery === 0) {
    await run.store!.write(options.outputDir!, structuredClone(state), (dir) => reft.save(dir, true))
  }
  if (options.onProgress !== undefined) {
    const elapsedMs = performance.now() - run.started
    options.onProgress({
      step,
      totalSteps: o.totalSteps,
      epoch,
      loss: stats.loss,
      gradNorm: stats.gradNorm,
      lr,
      tokensPerSecond: elapsedMs > 0 ? (run.tokens * 1000) / elapsedMs : 0,
      elapsedMs,
      etaMs: (elapsedMs / run.steps) * (o.totalSteps - step),
      ...(evalLoss === undefined ? {} : { evalLoss }),
    })
  }
}

/**
 * Train `reft` on `dataset`, checkpointing through `store`. See {@link TrainOptions};
 * {@link Trainable} documents what `reft` must do. Throws ReftError ERR_ABORTED on abort,
 * ERR_NON_FINITE on a NaN/Inf loss or grad norm, ERR_INVALID_CONFIG for checkpoint options
 * without a store.
 */
export async function runTraining(
  reft: Trainable,
  dataset: readonly CollatableItem[],
  options: TrainOptions,
  store: CheckpointStore | undefined,
): Promise<TrainHistory> {
  const o = resolveTrainOptions({ ...options, padId: options.padId ?? reft.padTokenId }, dataset.length)
  if (reft.causalLm === true) requireReachableLabels(dataset)
  if (store === undefined) {
    for (const k of ['outputDir', 'resumeFrom'] as const) {
      if (options[k] !== undefined) throw invalidConfig(k, 'checkpoints need a file system, which this host does not have')
    }
  }
  const fresh = initialState(o, dataset.length)
  const state = options.resumeFrom === undefined ? fresh : await resumeState(store!, options.resumeFrom, fresh)
  const run: Run = { reft, dataset, options, o, state, store, started: performance.now(), tokens: 0, steps: 0 }
  const lengths = o.groupByLength ? dataset.map((item) => item.inputIds.length) : undefined

  reft.setTraining(true)
  try {
    for (let epoch = state.epoch; epoch < o.epochs && !state.history.stoppedEarly; epoch++) {
      const plan = planEpoch(dataset.length, o.batchSize, o.gradientAccumulation, o.seed + epoch, lengths)
      for (let s = epoch === state.epoch ? state.stepInEpoch : 0; s < plan.length; s++) {
        if (options.signal?.aborted) throw abortError(state.step)
        await runStep(run, epoch, s, plan)
        if (state.history.stoppedEarly) break
        // A step that resolves without a macrotask (a fake, a cached result) must not starve timers.
        await yieldToEventLoop()
      }
      if (options.onEpochEnd !== undefined && !state.history.stoppedEarly) {
        reft.setTraining(false)
        await options.onEpochEnd({ epoch, step: state.step, history: state.history })
        reft.setTraining(true)
      }
    }
  } finally {
    reft.setTraining(false)
  }
  return state.history
}

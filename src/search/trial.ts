/**
 * One trial run on the model: fresh interventions (seeded), `steps` optimizer steps with a linear
 * schedule over exactly those steps, then the dev loss and, for the accuracy metric, greedy
 * generation on the dev slice scored with pyreft's rules (`evaluateTask`).
 *
 * A budget below one full run is cut by steps, not by epochs: the trainer gets
 * `ceil(steps / stepsPerEpoch)` epochs and is stopped after step `steps` (the batch order is the
 * trainer's seeded plan, so a cut run sees the same first batches a full run would).
 */
import type { Component, InterventionConfig } from '../config.js'
import { ReftError, toReftError } from '../errors.js'
import { evaluateTask } from '../evaluation/evaluate.js'
import type { CommonsenseScoring } from '../evaluation/extract.js'
import type { Model } from '../model.js'
import { linearSchedule } from '../schedules/linear.js'
import type { CollatableItem } from '../datasets/collate.js'
import { evaluate, train } from '../trainer.js'
import type { Trainable, TrainStepRecord } from '../trainer-options.js'
import type { SearchSplit } from './data.js'
import type { DevMetric, SearchProgressEvent } from './events.js'
import { budgetSteps, stepsPerEpoch } from './halving.js'
import { resolveLayerSet, type TrialConfig } from './space.js'
import type { TrialMeasurement } from './trials-file.js'

/** Settings shared by every trial (not searched). */
export interface TrialSettings {
  batchSize: number
  gradientAccumulation: number
  warmupRatio: number
  weightDecay: number
  maxGradNorm: number
  maxLength: number | undefined
  component: Component
  tied: boolean
  /** Initialisation and shuffle seed (the same for every trial, so trials differ only in their config). */
  seed: number
  evalBatchSize: number
  /** Generation budget for dev / test scoring (`undefined`: the task family's default). */
  maxNewTokens: number | undefined
  scoring: CommonsenseScoring
}

/** The settings {@link trainForSteps} and {@link fullSteps} read (shared by generation and GLUE trials). */
export type StepSettings = Pick<TrialSettings, 'batchSize' | 'gradientAccumulation' | 'warmupRatio' | 'weightDecay' | 'maxGradNorm' | 'seed'>

/** What a trial needs besides its config. */
export interface TrialContext {
  model: Model
  split: SearchSplit
  devMetric: DevMetric
  settings: TrialSettings
  signal?: AbortSignal
  onProgress?: (event: SearchProgressEvent) => void
}

/** The intervention config of a trial on a model with `numLayers` layers. */
export function interventionFor(config: TrialConfig, numLayers: number, s: Pick<TrialSettings, 'component' | 'tied'>): InterventionConfig {
  return {
    kind: config.kind,
    layers: resolveLayerSet(config.layers, numLayers),
    positions: config.positions,
    rank: config.rank,
    component: s.component,
    tied: s.tied,
  } as InterventionConfig
}

/**
 * Trains `reft` for exactly `steps` optimizer steps: enough epochs for `steps`, a linear schedule
 * ending at `steps`, and an internal abort after step `steps` (the trainer checks its signal
 * before each step; the weights of the finished steps stay in `reft`).
 */
/**
 * {@link trainForSteps} for a trial: a non-finite loss is returned as the failure text (the trial
 * then ranks last) instead of ending the search; every other error propagates.
 */
export async function trainTrial(
  ...args: Parameters<typeof trainForSteps>
): Promise<{ history: TrainStepRecord[]; failed?: undefined } | { history?: undefined; failed: string }> {
  try {
    return { history: await trainForSteps(...args) }
  } catch (e) {
    const err = toReftError(e)
    if (err.code !== 'ERR_NON_FINITE') throw err
    return { failed: `${err.code}: ${err.message}` }
  }
}

/** The fields a finished measurement ends with: the first and last training loss, time, adapter. */
export function finishedFields(history: TrainStepRecord[], started: number, saveDir?: { rel: string }) {
  const first = history[0]
  const last = history.at(-1)
  return {
    trainLoss: first === undefined || last === undefined ? null : { first: first.loss, last: last.loss },
    seconds: elapsed(started),
    ...(saveDir === undefined ? {} : { adapter: saveDir.rel }),
  }
}

export async function trainForSteps(
  reft: Trainable,
  items: readonly CollatableItem[],
  steps: number,
  lr: number,
  ctx: Pick<TrialContext, 'signal' | 'onProgress'> & { settings: StepSettings; padId: number },
): Promise<TrainStepRecord[]> {
  const s = ctx.settings
  const perEpoch = stepsPerEpoch(items.length, s.batchSize, s.gradientAccumulation)
  const stop = new AbortController()
  const signal = ctx.signal === undefined ? stop.signal : AbortSignal.any([ctx.signal, stop.signal])
  const history: TrainStepRecord[] = []
  try {
    await train(reft, items, {
      epochs: Math.ceil(steps / perEpoch),
      batchSize: s.batchSize,
      gradientAccumulation: s.gradientAccumulation,
      schedule: linearSchedule({ lr, totalSteps: steps, warmupRatio: s.warmupRatio }),
      weightDecay: s.weightDecay,
      maxGradNorm: s.maxGradNorm,
      seed: s.seed,
      padId: ctx.padId,
      signal,
      onProgress: (e) => {
        history.push({ step: e.step, loss: e.loss, gradNorm: e.gradNorm, lr: e.lr })
        ctx.onProgress?.({ type: 'train', event: { ...e, totalSteps: steps, etaMs: (e.elapsedMs / e.step) * (steps - e.step) } })
        if (e.step >= steps) stop.abort()
      },
    })
  } catch (e) {
    const err = toReftError(e)
    if (!(err.code === 'ERR_ABORTED' && stop.signal.aborted && ctx.signal?.aborted !== true)) throw err
  }
  return history
}

/** Seconds since `started` (a `performance.now()`), to the millisecond. */
export const elapsed = (started: number): number => Math.round(performance.now() - started) / 1000

/** Steps of a full run of `config` on `trainSize` examples. */
export function fullSteps(config: TrialConfig, trainSize: number, s: Pick<TrialSettings, 'batchSize' | 'gradientAccumulation'>): number {
  return config.epochs * stepsPerEpoch(trainSize, s.batchSize, s.gradientAccumulation)
}

/**
 * Runs one trial at `budget` and measures it. `saveDir` (absolute) receives the adapter. A run
 * whose loss or gradient becomes non-finite is returned as failed (it ranks last) rather than
 * ending the search; every other error propagates.
 */
export async function measureTrial(ctx: TrialContext, config: TrialConfig, budget: number, saveDir?: { abs: string; rel: string }): Promise<TrialMeasurement> {
  const started = performance.now()
  const { model, split, settings: s } = ctx
  const padId = model.info().padTokenId ?? 0
  const reft = model.withInterventions(interventionFor(config, model.info().numLayers, s), { seed: s.seed })
  const steps = budgetSteps(budget, fullSteps(config, split.train.length, s))
  const base = { config, budget, steps, params: 0 }
  try {
    base.params = reft.trainableParameters().interventionParams
    const items = reft.dataset(split.train, { maxLength: s.maxLength })
    const { history, failed } = await trainTrial(reft, items, steps, config.lr, { ...ctx, padId })
    if (failed !== undefined) return { ...base, score: null, devLoss: null, trainLoss: null, seconds: elapsed(started), failed }
    const devItems = reft.dataset(split.dev, { maxLength: s.maxLength })
    const devLoss = await evaluate(reft, devItems, { batchSize: s.evalBatchSize, padId })
    let accuracy: { score: number; devCorrect: number; devN: number } | undefined
    if (ctx.devMetric === 'accuracy') {
      if (split.task === undefined) throw new ReftError('ERR_INVALID_CONFIG', `devMetric accuracy needs a commonsense or math training set; ${split.name} has no gold answers`)
      const r = await evaluateTask(reft, split.task, {
        examples: split.devEval,
        batchSize: s.evalBatchSize,
        maxNewTokens: s.maxNewTokens,
        scoring: s.scoring,
        signal: ctx.signal,
        onProgress: (event) => ctx.onProgress?.({ type: 'eval', event }),
      })
      ctx.onProgress?.({ type: 'eval-end' })
      accuracy = { score: r.accuracy, devCorrect: r.correct, devN: r.n }
    }
    if (saveDir !== undefined) await reft.save(saveDir.abs)
    return {
      ...base,
      score: accuracy?.score ?? devLoss,
      devLoss,
      ...(accuracy === undefined ? {} : { devCorrect: accuracy.devCorrect, devN: accuracy.devN }),
      ...finishedFields(history, started, saveDir),
    }
  } finally {
    reft.dispose()
  }
}

/**
 * One GLUE trial on an encoder: fresh interventions and a classification head (seeded), `steps`
 * optimizer steps with a linear schedule over exactly those steps (`trainForSteps`, as for
 * generation trials), then the dev rows scored with the task's metrics (`evaluateGlue`) and the
 * head's mean loss on them. This is `reft glue train`'s training with two differences that a
 * search needs: a run can be cut short (a budget below 1), and the weights scored are the last
 * step's (no best-epoch pick: the dev rows rank whole configurations, epochs included).
 */
import type { Component, InterventionConfig } from '../config.js'
import { evaluateGlue } from '../glue/evaluate.js'
import type { GlueMetrics } from '../glue/metrics.js'
import type { Model } from '../model.js'
import { evaluate } from '../trainer.js'
import type { DevMetric, SearchProgressEvent } from './events.js'
import type { GlueSearchSplit } from './glue-data.js'
import { budgetSteps } from './halving.js'
import type { TrialConfig } from './space.js'
import { elapsed, finishedFields, fullSteps, interventionFor, trainTrial, type StepSettings } from './trial.js'
import type { TrialMeasurement } from './trials-file.js'

/** Settings shared by every GLUE trial (not searched). */
export interface GlueTrialSettings extends StepSettings {
  /** Longest tokenised input (the recipe's 256, or the model's limit when lower). */
  maxLength: number
  component: Component
  tied: boolean
  /** Intervention dropout (the task recipe's). */
  dropout: number
  /** Examples per forward pass on the dev slice and the test half. */
  evalBatchSize: number
}

/** What a GLUE trial needs besides its config. */
export interface GlueTrialContext {
  model: Model
  split: GlueSearchSplit
  devMetric: DevMetric
  settings: GlueTrialSettings
  signal?: AbortSignal
  onProgress?: (event: SearchProgressEvent) => void
}

/** The intervention config of a GLUE trial: {@link interventionFor} plus the recipe's dropout. */
export function glueInterventionFor(config: TrialConfig, numLayers: number, s: Pick<GlueTrialSettings, 'component' | 'tied' | 'dropout'>): InterventionConfig {
  return { ...interventionFor(config, numLayers, s), dropout: s.dropout }
}

/** A GLUE dev measurement: the usual fields plus every metric of the task. */
export interface GlueTrialMeasurement extends TrialMeasurement {
  /** The task's metrics on the dev slice (absent when the run failed). */
  devMetrics?: GlueMetrics
}


/**
 * Runs one GLUE trial at `budget`. `saveDir` (absolute) receives the adapter and its head. A run
 * whose loss becomes non-finite is returned as failed (it ranks last); other errors propagate.
 */
export async function measureGlueTrial(ctx: GlueTrialContext, config: TrialConfig, budget: number, saveDir?: { abs: string; rel: string }): Promise<GlueTrialMeasurement> {
  const started = performance.now()
  const { model, split, settings: s } = ctx
  const padId = model.info().padTokenId ?? 0
  const reft = model.withInterventions(glueInterventionFor(config, model.info().numLayers, s), { seed: s.seed, head: { numLabels: split.task.numLabels } })
  const steps = budgetSteps(budget, fullSteps(config, split.train.length, s))
  const base = { config, budget, steps, params: 0 }
  try {
    base.params = reft.trainableParameters().interventionParams
    const items = reft.classificationDataset(split.train, { maxLength: s.maxLength })
    const { history, failed } = await trainTrial(reft, items, steps, config.lr, { ...ctx, padId })
    if (failed !== undefined) return { ...base, score: null, devLoss: null, trainLoss: null, seconds: elapsed(started), failed }
    const dev = await evaluateGlue(reft, split.task, split.dev, { batchSize: s.evalBatchSize, maxLength: s.maxLength, signal: ctx.signal })
    const devLoss = await evaluate(reft, reft.classificationDataset(split.dev, { maxLength: s.maxLength }), { batchSize: s.evalBatchSize, padId })
    // A correlation of constant predictions is NaN; stored as null, it ranks last.
    const primary = Number.isNaN(dev.primary) ? null : dev.primary
    const counts =
      split.task.primaryMetric === 'accuracy' ? { devCorrect: dev.predictions.filter((p) => p.prediction === p.label).length, devN: dev.n } : {}
    if (saveDir !== undefined) await reft.save(saveDir.abs)
    return {
      ...base,
      score: ctx.devMetric === 'loss' ? devLoss : primary,
      devLoss,
      ...counts,
      devMetrics: dev.metrics,
      ...finishedFields(history, started, saveDir),
    }
  } finally {
    reft.dispose()
  }
}

/** Progress events of `search`, in the order they occur; `createSearchProgressReporter` renders them. */
import type { EvalProgressEvent } from '../evaluation/evaluate.js'
import type { TrainProgressEvent } from '../trainer-options.js'
import type { Rung } from './halving.js'
import type { TrialConfig } from './space.js'
import type { DefaultRecord, SearchTestRecord, TrialRecord } from './trials-file.js'

/**
 * The metric that ranks trials on the dev slice: `'accuracy'` (generation, or a GLUE
 * classification task), `'loss'`, or a GLUE task's primary metric (CoLA's Matthews correlation,
 * STS-B's Pearson correlation).
 */
export type DevMetric = 'accuracy' | 'loss' | 'matthews_correlation' | 'pearson'

/** Whether a higher value of `metric` is better (every metric but the loss). */
export function higherIsBetter(metric: DevMetric): boolean {
  return metric !== 'loss'
}

/** Reported by `search` through `onProgress`. */
export type SearchProgressEvent =
  /** Once, before any training: the trial count, rungs and data split. */
  | { type: 'plan'; trials: number; rungs: readonly Rung[]; trainSize: number; devSize: number; devMetric: DevMetric; resumed: number }
  | { type: 'rung-start'; rung: Rung; ids: readonly number[] }
  /** A run starts; `id` is `'default'` for the default configuration; `index` counts 1…`count` within the rung. */
  | { type: 'trial-start'; id: number | 'default'; rung: number; budget: number; config: TrialConfig; index: number; count: number }
  /** A run was found in the trials file and is not repeated. */
  | { type: 'trial-skip'; record: TrialRecord | DefaultRecord }
  | { type: 'trial-end'; record: TrialRecord | DefaultRecord }
  /** A training step of the current run. */
  | { type: 'train'; event: TrainProgressEvent }
  /** Progress of accuracy scoring (dev slice or test split). */
  | { type: 'eval'; event: EvalProgressEvent }
  | { type: 'eval-end' }
  /** `promoted` are the ids that go on to the next rung (none after the last). */
  | { type: 'rung-end'; rung: Rung; ranked: readonly TrialRecord[]; promoted: readonly number[] }
  | { type: 'test-start'; which: 'selected' | 'default'; task: string }
  | { type: 'test-end'; record: SearchTestRecord; resumed: boolean }

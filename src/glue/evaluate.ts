/**
 * Scores a classification adapter on GLUE examples as pyreft's GLUE `compute_metrics` does: the
 * head's outputs become predictions with {@link glueLabelsFromLogits} (argmax, or the value for
 * STS-B) and HF `evaluate`'s metrics are computed against the labels.
 */
import type { ClassifyOptions, ClassifyResult } from '../classifier.js'
import type { ClassificationExample, ClassificationItem } from '../datasets/classification.js'
import { invalidConfig } from '../errors.js'
import { computeGlueMetrics, glueLabelsFromLogits, type GlueMetrics } from './metrics.js'
import { resolveGlueTask, type GlueExample, type GlueMetricName, type GlueTaskName, type GlueTaskSpec } from './tasks.js'

/** The adapter surface GLUE scoring needs (`ReftModel` provides it). */
export interface GlueClassifier {
  head(): { numLabels: number } | null
  classificationDataset(examples: readonly ClassificationExample[], options?: Pick<ClassifyOptions, 'maxLength'>): ClassificationItem[]
  predict(items: readonly ClassificationItem[], options?: ClassifyOptions): Promise<ClassifyResult>
}

/** Options of {@link evaluateGlue}. */
export type EvaluateGlueOptions = ClassifyOptions

/** One GLUE evaluation. */
export interface GlueEvaluation {
  task: GlueTaskName
  /** Every metric HF `evaluate` reports for the task. */
  metrics: GlueMetrics
  /** The metric the paper reports (and pyreft selects epochs on). */
  primaryMetric: GlueMetricName
  /** Its value. */
  primary: number
  /** Examples scored. */
  n: number
  /** Per example, in input order: its `idx`, the prediction and the reference label. */
  predictions: { idx: number; prediction: number; label: number }[]
  /** Wall-clock milliseconds of the forward passes. */
  elapsedMs: number
}

/**
 * Scores `reft` (an adapter with a head of the task's `numLabels`) on labelled GLUE `examples`.
 * A head of the wrong size, or no head, is ERR_INVALID_CONFIG.
 */
export async function evaluateGlue(reft: GlueClassifier, task: string | GlueTaskSpec, examples: readonly GlueExample[], options: EvaluateGlueOptions = {}): Promise<GlueEvaluation> {
  const spec = resolveGlueTask(task)
  const head = reft.head()
  if (head === null || head.numLabels !== spec.numLabels) {
    throw invalidConfig('head', `${spec.name} needs a head with ${spec.numLabels} output${spec.numLabels === 1 ? '' : 's'}, this adapter has ${head === null ? 'none' : head.numLabels}`)
  }
  if (examples.length === 0) throw invalidConfig('examples', `no ${spec.name} examples to evaluate`)
  const started = performance.now()
  const items = reft.classificationDataset(examples, options)
  const { logits } = await reft.predict(items, options)
  const preds = glueLabelsFromLogits(spec, logits)
  const refs = examples.map((e) => e.label)
  const metrics = computeGlueMetrics(spec, preds, refs)
  return {
    task: spec.name,
    metrics,
    primaryMetric: spec.primaryMetric,
    primary: metrics[spec.primaryMetric]!,
    n: examples.length,
    predictions: examples.map((e, i) => ({ idx: e.idx, prediction: preds[i]!, label: e.label })),
    elapsedMs: performance.now() - started,
  }
}

/**
 * HF's `load_best_model_at_end` comparison (greater is better) with one fix: a finite value
 * beats NaN, which HF's `np.greater` never lets happen once a NaN is the best.
 */
export function isBetterGlueScore(candidate: number, best: number | undefined): boolean {
  if (best === undefined) return true
  if (Number.isNaN(best)) return !Number.isNaN(candidate)
  return candidate > best
}

/**
 * The test side of a GLUE search: score an adapter on the task's test half (pyreft's protocol,
 * the rows `reft glue train` reports on), with a 95% interval (Wilson for accuracy, a percentile
 * bootstrap for MCC / Pearson), and compare the selected configuration with the default one on
 * the same rows with a paired bootstrap of the difference.
 */
import { wilsonInterval } from '../evaluation/stats.js'
import { bootstrapInterval, pairedBootstrap } from '../glue/bootstrap.js'
import { evaluateGlue } from '../glue/evaluate.js'
import type { GlueTaskSpec } from '../glue/tasks.js'
import { loadReft } from '../load-reft.js'
import type { GlueTrialContext } from './glue-trial.js'
import type { TrialConfig } from './space.js'
import { canonicalJson, type GlueTestRecord, type SearchTestRecord, type TrialsFile } from './trials-file.js'

/** Selected minus default on one task's test rows. */
export interface TestComparison {
  task: string
  /** The metric compared (the task's primary metric). */
  metric: string
  selected: number
  default: number
  /** `selected − default`. */
  difference: number
  /** Paired bootstrap 95% interval of the difference (`null` when the metric is mostly undefined). */
  ci95: [number, number] | null
  /** Share of bootstrap resamples on which the selected configuration scored higher. */
  selectedBetter: number
  resamples: number
}

/**
 * Scores the adapter in `adapterDir` on the split's test half, or returns the trials file's
 * matching record (same which, task, limit and config) without scoring again.
 */
export async function runGlueTest(
  ctx: GlueTrialContext,
  file: TrialsFile,
  which: 'selected' | 'default',
  config: TrialConfig,
  adapterDir: string,
  limit: number | null,
): Promise<GlueTestRecord> {
  const spec = ctx.split.task
  const same = (r: GlueTestRecord): boolean => r.which === which && r.task === spec.name && r.limit === limit && canonicalJson(r.config) === canonicalJson(config)
  const stored = file.records.find((r): r is GlueTestRecord => r.type === 'glue-test' && same(r))
  if (stored !== undefined) {
    ctx.onProgress?.({ type: 'test-end', record: stored, resumed: true })
    return stored
  }
  ctx.onProgress?.({ type: 'test-start', which, task: spec.name })
  const started = performance.now()
  const s = ctx.settings
  using reft = await loadReft(adapterDir, ctx.model)
  const r = await evaluateGlue(reft, spec, ctx.split.test, { batchSize: s.evalBatchSize, maxLength: s.maxLength, signal: ctx.signal })
  const predictions = r.predictions.map((p) => p.prediction)
  const labels = ctx.split.test.map((e) => e.label)
  const primary = Number.isNaN(r.primary) ? null : r.primary
  const correct = spec.primaryMetric === 'accuracy' ? r.predictions.filter((p) => p.prediction === p.label).length : undefined
  const ci95 =
    primary === null ? null : correct !== undefined ? wilsonInterval(correct, r.n) : bootstrapInterval(spec, predictions, labels, { seed: s.seed })
  const record: GlueTestRecord = {
    type: 'glue-test', which, config, task: spec.name, limit, n: r.n, metrics: r.metrics, primaryMetric: spec.primaryMetric, primary,
    ...(correct === undefined ? {} : { correct }), ci95, predictions, seconds: Math.round(performance.now() - started) / 1000,
  }
  file.append(record)
  ctx.onProgress?.({ type: 'test-end', record, resumed: false })
  return record
}

/** Paired comparison of the selected and default test records of `spec` (none unless both exist). */
export function compareGlueTests(spec: GlueTaskSpec, test: readonly SearchTestRecord[], labels: readonly number[], seed: number): TestComparison[] {
  const find = (which: 'selected' | 'default') => test.find((r): r is GlueTestRecord => r.type === 'glue-test' && r.which === which && r.task === spec.name)
  const sel = find('selected')
  const def = find('default')
  if (sel === undefined || def === undefined || sel.primary === null || def.primary === null) return []
  const p = pairedBootstrap(spec, sel.predictions, def.predictions, labels.slice(0, sel.n), { seed })
  return [{
    task: spec.name, metric: spec.primaryMetric, selected: sel.primary, default: def.primary, difference: p.difference, ci95: p.ci95,
    selectedBetter: p.aBetter, resamples: p.resamples,
  }]
}

/**
 * Bootstrap intervals for GLUE metrics on a fixed set of examples: a percentile interval for one
 * model's metric, and a paired one for the difference between two models scored on the same
 * examples (each resample draws the same rows for both, so what the two share cancels out).
 *
 * Resampling is seeded (`mulberry32`), so a given seed always gives the same interval. Resamples
 * on which the metric is undefined (NaN: e.g. Pearson of a constant resample) are skipped; when
 * fewer than half are defined the interval is `null`.
 */
import { ReftError } from '../errors.js'
import { mulberry32 } from '../random.js'
import { checkInteger } from '../validate.js'
import { computeGlueMetrics } from './metrics.js'
import { resolveGlueTask, type GlueTaskSpec } from './tasks.js'

/** Options of the bootstrap functions. */
export interface BootstrapOptions {
  /** Resamples drawn. @defaultValue `2000` */
  resamples?: number
  /** Seed of the draws. @defaultValue `42` */
  seed?: number
}

/** A paired comparison of two models on the same examples. */
export interface PairedDifference {
  /** Metric of `a` minus metric of `b` on all examples (NaN when either is undefined). */
  difference: number
  /** 95% percentile bootstrap interval of the difference, or `null`. */
  ci95: [number, number] | null
  /** Share of resamples on which `a` scored strictly higher than `b`. */
  aBetter: number
  resamples: number
}

/** The `q`-quantile (linear interpolation between order statistics) of sorted values. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = q * (sorted.length - 1)
  const lo = Math.floor(pos)
  const hi = Math.min(lo + 1, sorted.length - 1)
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!)
}

function interval(values: number[], drawn: number): [number, number] | null {
  const defined = values.filter((v) => !Number.isNaN(v)).sort((x, y) => x - y)
  if (defined.length * 2 < drawn) return null
  return [quantile(defined, 0.025), quantile(defined, 0.975)]
}

function primary(spec: GlueTaskSpec, preds: readonly number[], refs: readonly number[]): number {
  return computeGlueMetrics(spec, preds, refs)[spec.primaryMetric] ?? NaN
}

/** Draws `resamples` index vectors of length `n` (with replacement) and calls `each` with the picked rows. */
function resample(n: number, o: BootstrapOptions, each: (rows: number[]) => void): number {
  const resamples = checkInteger('resamples', o.resamples ?? 2000, { min: 1 })
  const rand = mulberry32(checkInteger('seed', o.seed ?? 42))
  const rows = new Array<number>(n)
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < n; i++) rows[i] = Math.floor(rand() * n)
    each(rows)
  }
  return resamples
}

function checkLengths(what: string, refs: readonly number[], ...preds: (readonly number[])[]): void {
  if (refs.length === 0) throw new ReftError('ERR_SHAPE', `${what}: no examples`)
  for (const p of preds) if (p.length !== refs.length) throw new ReftError('ERR_SHAPE', `${what}: ${p.length} predictions but ${refs.length} references`)
}

/** 95% percentile bootstrap interval of the task's primary metric. */
export function bootstrapInterval(task: string | GlueTaskSpec, predictions: readonly number[], references: readonly number[], options: BootstrapOptions = {}): [number, number] | null {
  const spec = resolveGlueTask(task)
  checkLengths('bootstrapInterval', references, predictions)
  const values: number[] = []
  const drawn = resample(references.length, options, (rows) => {
    values.push(primary(spec, rows.map((i) => predictions[i]!), rows.map((i) => references[i]!)))
  })
  return interval(values, drawn)
}

/** Paired bootstrap of `metric(a) − metric(b)` over the same examples. */
export function pairedBootstrap(
  task: string | GlueTaskSpec,
  a: readonly number[],
  b: readonly number[],
  references: readonly number[],
  options: BootstrapOptions = {},
): PairedDifference {
  const spec = resolveGlueTask(task)
  checkLengths('pairedBootstrap', references, a, b)
  const diffs: number[] = []
  let wins = 0
  const drawn = resample(references.length, options, (rows) => {
    const refs = rows.map((i) => references[i]!)
    const d = primary(spec, rows.map((i) => a[i]!), refs) - primary(spec, rows.map((i) => b[i]!), refs)
    diffs.push(d)
    if (d > 0) wins++
  })
  return { difference: primary(spec, a, references) - primary(spec, b, references), ci95: interval(diffs, drawn), aBetter: wins / drawn, resamples: drawn }
}

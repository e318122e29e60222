/**
 * GLUE's metrics as HF `evaluate.load("glue", task)` computes them: accuracy, binary F1
 * (sklearn `f1_score`, positive class 1), Matthews correlation (sklearn `matthews_corrcoef`),
 * Pearson (scipy `pearsonr`) and Spearman (scipy `spearmanr`, average ranks for ties).
 *
 * Each follows the reference's formula and order of operations, so results agree with it to a
 * few ulps (summation order differs from numpy's pairwise sums). Arguments are
 * `(predictions, references)` as in `evaluate`; every metric here is symmetric in the two.
 * Degenerate cases follow the reference where it returns a value, and give NaN where it raises
 * or warns: MCC is 0 when either side has a single class (sklearn); F1 is 0 when there are no
 * positives on either side (sklearn's `zero_division="warn"`); Pearson and Spearman are NaN for a
 * constant input (scipy's ConstantInputWarning), for fewer than 2 points (scipy raises) and when
 * an input holds NaN. Mismatched lengths are ERR_SHAPE.
 */
import { ReftError } from '../errors.js'
import { resolveGlueTask, type GlueMetricName, type GlueTaskSpec } from './tasks.js'

/** Metric values by name, as `evaluate` returns them. */
export type GlueMetrics = Partial<Record<GlueMetricName, number>>

function checkPair(what: string, a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length) throw new ReftError('ERR_SHAPE', `${what}: ${a.length} predictions but ${b.length} references`)
}

/** Fraction of exact matches; NaN for empty input (numpy's mean of nothing). */
export function accuracy(predictions: readonly number[], references: readonly number[]): number {
  checkPair('accuracy', predictions, references)
  let hits = 0
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === references[i]) hits++
  return hits / predictions.length
}

/**
 * F1 of class 1, `2·tp / (2·tp + fp + fn)`; 0 when neither side has a positive. Labels must be 0
 * or 1 (sklearn rejects other values for binary F1): anything else is ERR_OUT_OF_RANGE.
 */
export function binaryF1(predictions: readonly number[], references: readonly number[]): number {
  checkPair('f1', predictions, references)
  let tp = 0
  let fp = 0
  let fn = 0
  for (let i = 0; i < predictions.length; i++) {
    const p = predictions[i]!
    const r = references[i]!
    if ((p !== 0 && p !== 1) || (r !== 0 && r !== 1)) {
      throw new ReftError('ERR_OUT_OF_RANGE', `f1: labels must be 0 or 1, got prediction ${p} and reference ${r} at ${i}`)
    }
    if (p === 1 && r === 1) tp++
    else if (p === 1) fp++
    else if (r === 1) fn++
  }
  const denom = 2 * tp + fp + fn
  return denom === 0 ? 0 : (2 * tp) / denom
}

/**
 * Matthews correlation for any number of classes, sklearn's confusion-matrix form:
 * `(c·s − Σ pₖtₖ) / sqrt((s² − Σ pₖ²)(s² − Σ tₖ²))` with c correct, s samples, tₖ/pₖ the true and
 * predicted counts of class k. Returns 0 when the denominator is 0 (a single class on either side).
 */
export function matthewsCorrelation(predictions: readonly number[], references: readonly number[]): number {
  checkPair('matthews_correlation', predictions, references)
  const t = new Map<number, number>()
  const p = new Map<number, number>()
  let correct = 0
  for (let i = 0; i < predictions.length; i++) {
    const pi = predictions[i]!
    const ri = references[i]!
    t.set(ri, (t.get(ri) ?? 0) + 1)
    p.set(pi, (p.get(pi) ?? 0) + 1)
    if (pi === ri) correct++
  }
  const s = predictions.length
  let tp = 0
  let pp = 0
  let tt = 0
  for (const [k, tk] of t) {
    tp += tk * (p.get(k) ?? 0)
    tt += tk * tk
  }
  for (const pk of p.values()) pp += pk * pk
  const covYtYp = correct * s - tp
  const covYpYp = s * s - pp
  const covYtYt = s * s - tt
  if (covYpYp * covYtYt === 0) return 0
  return covYtYp / Math.sqrt(covYtYt * covYpYp)
}

/** The mean, with Neumaier-compensated summation (numpy's pairwise sum is also near-exact). */
function mean(xs: readonly number[]): number {
  let sum = 0
  let c = 0
  for (const x of xs) {
    const t = sum + x
    c += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum
    sum = t
  }
  return (sum + c) / xs.length
}

function degenerate(x: readonly number[], y: readonly number[]): boolean {
  if (x.length < 2) return true
  if (x.some(Number.isNaN) || y.some(Number.isNaN)) return true
  return x.every((v) => v === x[0]) || y.every((v) => v === y[0])
}

/**
 * Pearson's r following scipy's `pearsonr`: centre, scale each side by its largest magnitude,
 * normalise, dot, clip to [−1, 1]; exactly ±1 for two points. NaN when degenerate (see the header).
 */
export function pearson(x: readonly number[], y: readonly number[]): number {
  checkPair('pearson', x, y)
  if (degenerate(x, y)) return NaN
  const xm = centred(x)
  const ym = centred(y)
  let dot = 0
  for (let i = 0; i < xm.length; i++) dot += xm[i]! * ym[i]!
  const r = Math.min(1, Math.max(-1, dot))
  // scipy rounds the n = 2 case to exactly ±1 (the only values it can take).
  return x.length === 2 ? Math.round(r) : r
}

/** `x − mean(x)` scaled to unit norm, via scipy's max-abs prescaling to avoid overflow. */
function centred(x: readonly number[]): number[] {
  const m = mean(x)
  const xm = x.map((v) => v - m)
  let max = 0
  for (const v of xm) max = Math.max(max, Math.abs(v))
  let sq = 0
  for (const v of xm) sq += (v / max) * (v / max)
  const norm = max * Math.sqrt(sq)
  return xm.map((v) => v / norm)
}

/**
 * 1-based ranks with ties given their average rank (scipy `rankdata(method="average")`):
 * `[10, 20, 20, 30]` → `[1, 2.5, 2.5, 4]`. NaN anywhere makes every rank NaN, as scipy's default.
 */
export function averageRanks(values: readonly number[]): number[] {
  if (values.some(Number.isNaN)) return values.map(() => NaN)
  const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]! || a - b)
  const ranks = new Array<number>(values.length)
  for (let i = 0; i < order.length; ) {
    let j = i
    while (j + 1 < order.length && values[order[j + 1]!] === values[order[i]!]) j++
    // Positions i … j (0-based) share the mean of ranks i+1 … j+1.
    const rank = (i + j) / 2 + 1
    for (let k = i; k <= j; k++) ranks[order[k]!] = rank
    i = j + 1
  }
  return ranks
}

/**
 * Spearman's ρ as scipy's `spearmanr`: the correlation (`np.corrcoef`) of the average ranks.
 * NaN when degenerate (see the header).
 */
export function spearman(x: readonly number[], y: readonly number[]): number {
  checkPair('spearmanr', x, y)
  if (degenerate(x, y)) return NaN
  const rx = averageRanks(x)
  const ry = averageRanks(y)
  const mx = mean(rx)
  const my = mean(ry)
  let sxy = 0
  let sxx = 0
  let syy = 0
  for (let i = 0; i < rx.length; i++) {
    const a = rx[i]! - mx
    const b = ry[i]! - my
    sxy += a * b
    sxx += a * a
    syy += b * b
  }
  // corrcoef divides the covariance by each standard deviation in turn; the 1/(n−1) factors cancel.
  const f = 1 / (rx.length - 1)
  return Math.min(1, Math.max(-1, (sxy * f) / Math.sqrt(sxx * f) / Math.sqrt(syy * f)))
}

/**
 * The metrics HF `evaluate.load("glue", task).compute(predictions, references)` returns for
 * `task`: class ids for classification tasks, scores for STS-B (see {@link glueLabelsFromLogits}).
 */
export function computeGlueMetrics(task: string | GlueTaskSpec, predictions: readonly number[], references: readonly number[]): GlueMetrics {
  const spec = resolveGlueTask(task)
  const out: GlueMetrics = {}
  for (const m of spec.metrics) out[m] = glueMetricFunctions[m](predictions, references)
  return out
}

/** Each metric by its `evaluate` name. */
export const glueMetricFunctions: Readonly<Record<GlueMetricName, (predictions: readonly number[], references: readonly number[]) => number>> = {
  accuracy,
  f1: binaryF1,
  matthews_correlation: matthewsCorrelation,
  pearson,
  spearmanr: spearman,
}

/**
 * Classifier-head outputs to predictions as pyreft's GLUE `compute_metrics` does: argmax over the
 * classes (first maximum wins, as `np.argmax`), or the single output for STS-B regression.
 * A row with the wrong number of outputs is ERR_SHAPE.
 */
export function glueLabelsFromLogits(task: string | GlueTaskSpec, logits: readonly (readonly number[])[]): number[] {
  const spec = resolveGlueTask(task)
  return logits.map((row, i) => {
    if (row.length !== spec.numLabels) throw new ReftError('ERR_SHAPE', `${spec.name}: logits row ${i} has ${row.length} values, expected ${spec.numLabels}`)
    if (spec.isRegression) return row[0]!
    let best = 0
    for (let k = 1; k < row.length; k++) if (row[k]! > row[best]!) best = k
    return best
  })
}

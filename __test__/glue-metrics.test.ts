/**
 * GLUE metrics against hand-computed values and against sklearn 1.9.1 / scipy 1.17.1 (the values
 * in the "reference" cases were printed by `sklearn.metrics.matthews_corrcoef`, `f1_score`,
 * `scipy.stats.pearsonr` and `spearmanr` on the same inputs), including ties and degenerate cases.
 */
import { describe, expect, it } from 'vitest'
import {
  accuracy,
  averageRanks,
  binaryF1,
  computeGlueMetrics,
  glueLabelsFromLogits,
  matthewsCorrelation,
  pearson,
  spearman,
} from '../src/glue/index.js'
import { mulberry32 } from '../src/random.js'
import { code } from './helpers/error-code.js'

describe('classification metrics', () => {
  // preds [1,1,0,0,1] vs refs [1,0,0,1,1]: tp 2, tn 1, fp 1, fn 1.
  const preds = [1, 1, 0, 0, 1]
  const refs = [1, 0, 0, 1, 1]
  it('accuracy is the fraction of matches; empty is NaN', () => {
    expect(accuracy(preds, refs)).toBe(3 / 5)
    expect(accuracy([], [])).toBeNaN()
  })
  it('binary F1 = 2tp / (2tp + fp + fn), symmetric in its arguments', () => {
    expect(binaryF1(preds, refs)).toBe(4 / 6)
    expect(binaryF1(refs, preds)).toBe(4 / 6)
    expect(binaryF1([1, 1], [1, 1])).toBe(1)
  })
  it('binary F1 is 0 with no positives anywhere (sklearn zero_division) and rejects non-binary labels', () => {
    expect(binaryF1([0, 0], [0, 0])).toBe(0)
    expect(binaryF1([1, 1], [0, 0])).toBe(0)
    expect(code(() => binaryF1([2, 0], [1, 0]))).toBe('ERR_OUT_OF_RANGE')
  })
  it('MCC: binary (tp·tn − fp·fn)/sqrt(...) = 1/6, and multiclass 11/42', () => {
    expect(matthewsCorrelation(preds, refs)).toBeCloseTo(1 / 6, 15)
    // true counts 2/3/3, predicted 3/3/2, 4 of 8 correct: (4·8 − 21) / sqrt(42·42).
    expect(matthewsCorrelation([0, 2, 1, 0, 0, 1, 2, 1], [0, 1, 2, 0, 1, 2, 2, 1])).toBeCloseTo(11 / 42, 15)
    expect(matthewsCorrelation([1, 0, 1, 0], [1, 0, 1, 0])).toBe(1)
    expect(matthewsCorrelation([0, 1, 0, 1], [1, 0, 1, 0])).toBe(-1)
  })
  it('MCC is 0 when the denominator is 0 (one class on either side), as sklearn', () => {
    expect(matthewsCorrelation([0, 1, 0], [1, 1, 1])).toBe(0)
    expect(matthewsCorrelation([1, 1, 1], [1, 0, 1])).toBe(0)
    expect(matthewsCorrelation([1, 1], [1, 1])).toBe(0)
    expect(matthewsCorrelation([], [])).toBe(0)
  })
  it('length mismatch is ERR_SHAPE', () => {
    expect(code(() => accuracy([1], [1, 0]))).toBe('ERR_SHAPE')
    expect(code(() => matthewsCorrelation([1], []))).toBe('ERR_SHAPE')
    expect(code(() => pearson([1, 2, 3], [1, 2]))).toBe('ERR_SHAPE')
  })
})

describe('correlations', () => {
  it('Pearson by hand: Σxy / sqrt(Σx² Σy²) on centred data = 3.5 / sqrt(23.75)', () => {
    expect(pearson([1, 2, 3, 4], [2, 4, 5, 4])).toBeCloseTo(3.5 / Math.sqrt(23.75), 15)
    expect(pearson([1, 2, 3, 4], [2, 4, 6, 8])).toBeCloseTo(1, 15)
    expect(pearson([1, 2, 3, 4], [8, 6, 4, 2])).toBeCloseTo(-1, 15)
  })
  it('Pearson of two points is exactly ±1 (scipy)', () => {
    expect(pearson([1, 2], [5, 3])).toBe(-1)
    expect(pearson([1, 2], [3, 5])).toBe(1)
  })
  it('Pearson and Spearman are NaN for constant input, fewer than 2 points, or NaN values', () => {
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNaN()
    expect(pearson([1, 2, 3], [4, 4, 4])).toBeNaN()
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNaN()
    expect(pearson([1], [2])).toBeNaN()
    expect(spearman([], [])).toBeNaN()
    expect(pearson([1, NaN, 3], [1, 2, 3])).toBeNaN()
    expect(spearman([1, 2, 3], [1, NaN, 3])).toBeNaN()
  })
  it('average ranks share tied positions (scipy rankdata "average")', () => {
    expect(averageRanks([10, 20, 20, 30])).toEqual([1, 2.5, 2.5, 4])
    expect(averageRanks([3, 1, 4, 1, 5, 9, 2, 6])).toEqual([4, 1.5, 5, 1.5, 6, 8, 3, 7])
    expect(averageRanks([7, 7, 7])).toEqual([2, 2, 2])
    expect(averageRanks([])).toEqual([])
  })
  it('Spearman with ties by hand: ranks [1,2.5,2.5,4] vs [1,3,2,4] give 4.5 / sqrt(22.5)', () => {
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(4.5 / Math.sqrt(22.5), 15)
    // Monotone but non-linear: Spearman 1, Pearson below 1.
    expect(spearman([1, 2, 3, 4], [1, 4, 9, 100])).toBe(1)
    expect(pearson([1, 2, 3, 4], [1, 4, 9, 100])).toBeLessThan(1)
  })
  it('matches scipy on small cases with ties on both sides', () => {
    expect(spearman([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8])).toBeCloseTo(0.19885368120992467, 14)
    expect(pearson([0.1, 2.5, 3.3, 4.8, 1.2], [0.3, 2.0, 3.9, 4.1, 1.0])).toBeCloseTo(0.9578006277260791, 14)
  })
})

describe('reference values from sklearn / scipy on 300 generated rows', () => {
  // The same generator fed the Python side (rows printed as JSON, then scored there).
  const r = mulberry32(7)
  const n = 300
  const refs = Array.from({ length: n }, () => Math.round(r() * 50) / 10)
  const preds = refs.map((v) => Math.round((v + (r() - 0.5) * 3) * 100) / 100)
  const yt = Array.from({ length: n }, () => (r() < 0.6 ? 1 : 0))
  const yp = yt.map((v) => (r() < 0.8 ? v : 1 - v))
  it('STS-B style scores (many ties): pearson and spearmanr', () => {
    expect(pearson(preds, refs)).toBeCloseTo(0.863923519442283, 13)
    expect(spearman(preds, refs)).toBeCloseTo(0.8687758799263088, 13)
  })
  it('binary labels: MCC, F1, accuracy', () => {
    expect(matthewsCorrelation(yp, yt)).toBeCloseTo(0.698116674059418, 14)
    expect(binaryF1(yp, yt)).toBeCloseTo(0.8688046647230321, 15)
    expect(accuracy(yp, yt)).toBe(0.85)
  })
})

describe('per-task GLUE metrics', () => {
  it('returns the metric names HF evaluate returns for each task', () => {
    expect(Object.keys(computeGlueMetrics('mrpc', [1, 0, 1], [1, 1, 1]))).toEqual(['accuracy', 'f1'])
    expect(computeGlueMetrics('cola', [1, 1, 0, 0, 1], [1, 0, 0, 1, 1])).toEqual({ matthews_correlation: matthewsCorrelation([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) })
    expect(Object.keys(computeGlueMetrics('stsb', [1, 2, 3], [1, 3, 2]))).toEqual(['pearson', 'spearmanr'])
    expect(computeGlueMetrics('rte', [0, 1], [0, 0])).toEqual({ accuracy: 0.5 })
  })
  it('logits → predictions: argmax (first max wins) or the regression output', () => {
    expect(glueLabelsFromLogits('sst2', [[0.1, 0.9], [2, -1], [0.5, 0.5]])).toEqual([1, 0, 0])
    expect(glueLabelsFromLogits('stsb', [[3.25], [0.5]])).toEqual([3.25, 0.5])
    expect(code(() => glueLabelsFromLogits('stsb', [[1, 2]]))).toBe('ERR_SHAPE')
  })
})

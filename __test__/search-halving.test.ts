/**
 * Successive-halving arithmetic: rung sizes and budgets for several (n, eta, minBudget), the
 * budget → steps rounding, and the deterministic ranking used for promotion.
 */
import { describe, expect, it } from 'vitest'
import { budgetSteps, formatBudget, halvingRungs, rankTrials, stepsPerEpoch } from '../src/search/index.js'
import { floorLog } from '../src/search/halving.js'

const shape = (n: number, o?: Parameters<typeof halvingRungs>[1]) => halvingRungs(n, o).map((r) => [r.trials, r.budget])

describe('halvingRungs', () => {
  it('default minimum budget eta^-floor(log_eta n) ends at exactly the full budget', () => {
    expect(shape(9)).toEqual([[9, 1 / 9], [3, 1 / 3], [1, 1]])
    expect(shape(27)).toEqual([[27, 1 / 27], [9, 1 / 9], [3, 1 / 3], [1, 1]])
    expect(shape(10)).toEqual([[10, 1 / 9], [3, 1 / 3], [1, 1]])
    expect(shape(8)).toEqual([[8, 1 / 3], [2, 1]])
    expect(shape(3)).toEqual([[3, 1 / 3], [1, 1]])
    expect(shape(2)).toEqual([[2, 1]])
    expect(shape(1)).toEqual([[1, 1]])
    expect(shape(8, { eta: 2 })).toEqual([[8, 1 / 8], [4, 1 / 4], [2, 1 / 2], [1, 1]])
    expect(shape(6, { eta: 2 })).toEqual([[6, 1 / 4], [3, 1 / 2], [1, 1]])
    expect(halvingRungs(9).map((r) => r.index)).toEqual([0, 1, 2])
  })

  it('a given minimum budget stops at the full budget with several trials left', () => {
    expect(shape(27, { minBudget: 1 / 3 })).toEqual([[27, 1 / 3], [9, 1]])
    expect(shape(9, { minBudget: 0.5, eta: 2 })).toEqual([[9, 0.5], [4, 1]])
  })

  it('when one trial is left before the budget is full, it runs at the full budget', () => {
    expect(shape(3, { minBudget: 1 / 27 })).toEqual([[3, 1 / 27], [1, 1]])
    expect(shape(4, { eta: 3, minBudget: 0.01 })).toEqual([[4, 0.01], [1, 1]])
  })

  it('false turns halving off: every trial at the full budget', () => {
    expect(shape(9, false)).toEqual([[9, 1]])
  })

  it('validates n, eta and minBudget', () => {
    expect(() => halvingRungs(0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => halvingRungs(9, { eta: 1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', field: 'eta' }))
    expect(() => halvingRungs(9, { eta: 2.5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'eta' }))
    expect(() => halvingRungs(9, { minBudget: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', field: 'minBudget' }))
    expect(() => halvingRungs(9, { minBudget: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', field: 'minBudget' }))
  })

  it('floorLog is exact at powers', () => {
    expect([1, 2, 3, 8, 9, 26, 27, 28].map((n) => floorLog(n, 3))).toEqual([0, 0, 1, 1, 2, 2, 3, 3])
  })
})

describe('budgets in steps', () => {
  it('stepsPerEpoch follows the trainer plan (micro-batches, then accumulation)', () => {
    expect(stepsPerEpoch(10, 4)).toBe(3)
    expect(stepsPerEpoch(10, 3, 2)).toBe(2)
    expect(stepsPerEpoch(8, 4)).toBe(2)
  })

  it('rounds the budget share of a full run, at least one step', () => {
    expect(budgetSteps(1, 16)).toBe(16)
    expect(budgetSteps(1 / 3, 16)).toBe(5)
    expect(budgetSteps(1 / 3, 8)).toBe(3)
    expect(budgetSteps(1 / 9, 4)).toBe(1)
    expect(budgetSteps(1 / 27, 3)).toBe(1)
  })

  it('formats budgets as 1/k where possible', () => {
    expect([1 / 9, 1 / 3, 1, 0.25, 0.4].map(formatBudget)).toEqual(['1/9', '1/3', '1', '1/4', '40.0%'])
  })
})

describe('rankTrials', () => {
  const t = (id: number, score: number, devLoss: number) => ({ id, score, devLoss })

  it('accuracy: higher first; ties by lower dev loss, then lower id', () => {
    const ranked = rankTrials([t(0, 0.5, 2), t(1, 0.7, 3), t(2, 0.5, 1), t(3, 0.5, 1)], true)
    expect(ranked.map((r) => r.id)).toEqual([1, 2, 3, 0])
  })

  it('loss: lower first; failed runs (±Infinity) last', () => {
    const ranked = rankTrials([t(0, 2, 2), t(1, Infinity, Infinity), t(2, 1, 1)], false)
    expect(ranked.map((r) => r.id)).toEqual([2, 0, 1])
    const acc = rankTrials([t(0, -Infinity, Infinity), t(1, 0, 5)], true)
    expect(acc.map((r) => r.id)).toEqual([1, 0])
  })
})

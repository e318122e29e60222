/**
 * pyreft's GLUE validation split: the eval part's size rule (1,000 above 5,000 rows, else half),
 * determinism in the seed, disjoint parts that cover every row, and the sizes for each task.
 */
import { describe, expect, it } from 'vitest'
import { glueEvalSize, glueTasks, splitGlueValidation } from '../src/glue/index.js'
import { code } from './helpers/error-code.js'

describe('glueEvalSize', () => {
  it('is ⌊n/2⌋ up to 5,000 rows and 1,000 above', () => {
    expect(glueEvalSize(0)).toBe(0)
    expect(glueEvalSize(1)).toBe(0)
    expect(glueEvalSize(277)).toBe(138)
    expect(glueEvalSize(408)).toBe(204)
    expect(glueEvalSize(5000)).toBe(2500)
    expect(glueEvalSize(5001)).toBe(1000)
    expect(glueEvalSize(5463)).toBe(1000)
    expect(code(() => glueEvalSize(-1))).toBe('ERR_OUT_OF_RANGE')
    expect(code(() => glueEvalSize(2.5))).toBe('ERR_INVALID_CONFIG')
  })
  it('gives pyreft\'s printed sizes for each task\'s validation split', () => {
    const sizes = Object.fromEntries(glueTasks.map((t) => [t.name, [glueEvalSize(t.rows.validation), t.rows.validation - glueEvalSize(t.rows.validation)]]))
    expect(sizes).toEqual({ sst2: [436, 436], mrpc: [204, 204], cola: [521, 522], qnli: [1000, 4463], rte: [138, 139], stsb: [750, 750] })
  })
})

describe('splitGlueValidation', () => {
  const rows = Array.from({ length: 277 }, (_, i) => ({ idx: i }))
  it('is deterministic in the seed and differs across seeds', () => {
    const a = splitGlueValidation(rows, 42)
    expect(splitGlueValidation(rows, 42)).toEqual(a)
    expect(splitGlueValidation(rows, 43).eval).not.toEqual(a.eval)
  })
  it('splits into disjoint eval (⌊n/2⌋) and test (rest) parts covering every row once', () => {
    const { eval: ev, test } = splitGlueValidation(rows, 44)
    expect(ev).toHaveLength(138)
    expect(test).toHaveLength(139)
    const all = [...ev, ...test].map((r) => r.idx).sort((a, b) => a - b)
    expect(all).toEqual(rows.map((r) => r.idx))
  })
  it('is a random cut, not a prefix/suffix of the input', () => {
    const { eval: ev } = splitGlueValidation(rows, 45)
    const idx = ev.map((r) => r.idx)
    expect(idx.some((i) => i < 138)).toBe(true)
    expect(idx.some((i) => i >= 139)).toBe(true)
  })
  it('caps the eval part at 1,000 for large splits (QNLI)', () => {
    const big = Array.from({ length: 5463 }, (_, i) => i)
    const s = splitGlueValidation(big, 46)
    expect(s.eval).toHaveLength(1000)
    expect(s.test).toHaveLength(4463)
    expect(new Set([...s.eval, ...s.test]).size).toBe(5463)
  })
  it('handles empty and single-row input and rejects a non-integer seed', () => {
    expect(splitGlueValidation([], 42)).toEqual({ eval: [], test: [] })
    expect(splitGlueValidation(['x'], 42)).toEqual({ eval: [], test: ['x'] })
    expect(code(() => splitGlueValidation(rows, 0.5))).toBe('ERR_INVALID_CONFIG')
  })
})

/**
 * The search space and sampling: validation and defaults, layer-set parsing, the mixed-radix grid
 * order, and that random sampling is deterministic, without replacement and prefix-stable.
 */
import { describe, expect, it } from 'vitest'
import {
  configAt,
  defaultSearchSpace,
  gridSize,
  parseLayerSet,
  resolveLayerSet,
  resolveSearchSpace,
  sampleIndices,
  sampleTrials,
} from '../src/search/index.js'

const code = (f: () => unknown): string | undefined => {
  try {
    f()
  } catch (e) {
    return (e as { code?: string }).code
  }
  return undefined
}

describe('search space', () => {
  it('fills in the documented defaults and canonicalises positions', () => {
    expect(resolveSearchSpace()).toEqual(defaultSearchSpace)
    expect(gridSize(resolveSearchSpace())).toBe(108)
    const s = resolveSearchSpace({ positions: ['f3+l3', 'f0+l2', 'f1+l0'], rank: [8] })
    expect(s.positions).toEqual(['f3+l3', 'l2', 'f1'])
    expect(s.rank).toEqual([8])
    expect(s.lr).toEqual(defaultSearchSpace.lr)
  })

  it('parses layer sets from strings, numbers and arrays', () => {
    expect(parseLayerSet('all')).toBe('all')
    expect(parseLayerSet('middle')).toBe('middle')
    expect(parseLayerSet('0;2;4')).toEqual([0, 2, 4])
    expect(parseLayerSet(' 7 ')).toEqual([7])
    expect(parseLayerSet(3)).toEqual([3])
    expect(parseLayerSet([1, 5])).toEqual([1, 5])
    expect(resolveSearchSpace({ layers: ['all', '0;2;4', 15] }).layers).toEqual(['all', [0, 2, 4], [15]])
    expect(resolveLayerSet('middle', 30)).toEqual([15])
    expect(resolveLayerSet('middle', 2)).toEqual([1])
    expect(resolveLayerSet('all', 30)).toBe('all')
    for (const bad of ['0,2', 'first', '', [], [-1], 1.5]) expect(code(() => parseLayerSet(bad)), String(bad)).toMatch(/^ERR_(INVALID_CONFIG|OUT_OF_RANGE)$/)
  })

  it('rejects unknown keys, bad values, empty lists and duplicates, naming the field', () => {
    expect(code(() => resolveSearchSpace({ ranks: [4] } as never))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => resolveSearchSpace({ kind: ['loraft'] as never }))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => resolveSearchSpace({ rank: [] }))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => resolveSearchSpace({ rank: [0] }))).toBe('ERR_OUT_OF_RANGE')
    expect(code(() => resolveSearchSpace({ lr: [0] }))).toBe('ERR_OUT_OF_RANGE')
    expect(code(() => resolveSearchSpace({ epochs: [1.5] }))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => resolveSearchSpace({ positions: ['x3'] }))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => resolveSearchSpace({ positions: ['f0+l0'] }))).toBe('ERR_INVALID_CONFIG')
    try {
      resolveSearchSpace({ layers: ['0;1', [0, 1]] })
      expect.unreachable()
    } catch (e) {
      expect(e).toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'space.layers[1]' })
    }
    expect(code(() => resolveSearchSpace({ positions: ['l1', 'f0+l1'] }))).toBe('ERR_INVALID_CONFIG')
  })

  it('enumerates the grid in mixed-radix order, epochs fastest', () => {
    const s = resolveSearchSpace({ kind: ['loreft', 'direft'], layers: ['all'], positions: ['l1', 'f1+l1'], rank: [4], lr: [1e-3, 2e-3, 3e-3], epochs: [1, 2] })
    expect(gridSize(s)).toBe(24)
    expect(configAt(s, 0)).toEqual({ kind: 'loreft', layers: 'all', positions: 'l1', rank: 4, lr: 1e-3, epochs: 1 })
    expect(configAt(s, 1)).toEqual({ kind: 'loreft', layers: 'all', positions: 'l1', rank: 4, lr: 1e-3, epochs: 2 })
    expect(configAt(s, 2)).toMatchObject({ lr: 2e-3, epochs: 1 })
    expect(configAt(s, 6)).toMatchObject({ positions: 'f1+l1', lr: 1e-3, epochs: 1, kind: 'loreft' })
    expect(configAt(s, 23)).toEqual({ kind: 'direft', layers: 'all', positions: 'f1+l1', rank: 4, lr: 3e-3, epochs: 2 })
    const all = Array.from({ length: 24 }, (_, i) => JSON.stringify(configAt(s, i)))
    expect(new Set(all).size).toBe(24)
    expect(code(() => configAt(s, 24))).toBe('ERR_OUT_OF_RANGE')
  })
})

describe('sampling', () => {
  const space = resolveSearchSpace()

  it('random: the same seed gives the same trials, another seed others; no repeats', () => {
    const a = sampleTrials(space, { trials: 20, seed: 7 })
    expect(sampleTrials(space, { trials: 20, seed: 7 })).toEqual(a)
    expect(sampleTrials(space, { trials: 20, seed: 8 })).not.toEqual(a)
    expect(new Set(a.map((c) => JSON.stringify(c))).size).toBe(20)
    // A smaller draw is a prefix of a larger one with the same seed.
    expect(sampleTrials(space, { trials: 5, seed: 7 })).toEqual(a.slice(0, 5))
  })

  it('random: drawing the whole grid gives a permutation of it', () => {
    const idx = sampleIndices(108, 108, 3)
    expect([...idx].sort((x, y) => x - y)).toEqual(Array.from({ length: 108 }, (_, i) => i))
    expect(idx).not.toEqual(Array.from({ length: 108 }, (_, i) => i))
  })

  it('random defaults to min(9, grid size) trials with seed 42', () => {
    expect(sampleTrials(space)).toEqual(sampleTrials(space, { trials: 9, seed: 42 }))
    const small = resolveSearchSpace({ layers: ['all'], positions: ['l1'], rank: [4], lr: [1e-3, 2e-3], epochs: [1] })
    expect(sampleTrials(small)).toHaveLength(2)
    expect(code(() => sampleTrials(small, { trials: 3 }))).toBe('ERR_OUT_OF_RANGE')
  })

  it('grid: every point in grid order; a trial count is refused', () => {
    const small = resolveSearchSpace({ layers: ['all', 'middle'], positions: ['l1'], rank: [4], lr: [1e-3], epochs: [1, 2] })
    const g = sampleTrials(small, { sampling: 'grid' })
    expect(g.map((c) => [c.layers, c.epochs])).toEqual([['all', 1], ['all', 2], ['middle', 1], ['middle', 2]])
    expect(code(() => sampleTrials(small, { sampling: 'grid', trials: 2 }))).toBe('ERR_INVALID_CONFIG')
  })
})

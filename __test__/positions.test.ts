import { describe, expect, it } from 'vitest'
import { parsePositions } from '../src/config.js'
import {
  flattenPositions,
  getInterventionLocations,
  shiftForLeftPadding,
  shiftForSink,
  toBatchLayout,
} from '../src/positions.js'

const rep = <T>(x: T, n: number): T[] => Array.from({ length: n }, () => x)

// Every row of REFERENCE.md §3.6 ("any" pad mode rows are checked with both modes).
const table: [number, string, boolean, number, ('first' | 'last')[], number[][]][] = [
  [20, 'f3+l3', true, 2, ['first', 'last'], rep([0, 1, 2, 17, 18, 19], 2)],
  [20, 'f3+l3', false, 4, ['first', 'last'], [[0, 1, 2], [0, 1, 2], [17, 18, 19], [17, 18, 19]]],
  [5, 'f3+l3', false, 2, ['first'], [[0, 1, -1], [3, 4, -1]]],
  [5, 'f3+l3', false, 2, ['last'], [[0, 1, 5], [3, 4, 5]]],
  [5, 'f3+l3', true, 1, ['first'], [[0, 1, 3, 4, -1, -1]]],
  [20, 'f2', false, 3, ['first', 'last'], rep([0, 1], 3)],
  [20, 'l1', false, 1, ['first', 'last'], [[19]]],
]

describe('getInterventionLocations (pyreft table)', () => {
  for (const [L, pos, share, n, modes, expected] of table) {
    for (const padMode of modes) {
      it(`L=${L} ${pos} share=${share} n=${n} ${padMode}`, () => {
        const { first, last } = parsePositions(pos)
        const got = getInterventionLocations({ lastPosition: L, first, last, numInterventions: n, shareWeights: share, padMode })
        expect(got).toEqual(expected)
      })
    }
  }

  it('pads with lastPosition in last mode on the shared branch', () => {
    expect(getInterventionLocations({ lastPosition: 5, first: 3, last: 3, numInterventions: 1, shareWeights: true, padMode: 'last' })).toEqual([
      [0, 1, 3, 4, 5, 5],
    ])
  })

  it('uses the capped counts to pick the shared branch (L=1: everything is padding)', () => {
    expect(getInterventionLocations({ lastPosition: 1, first: 1, last: 1, numInterventions: 2 })).toEqual([
      [-1, -1],
      [-1, -1],
    ])
  })

  it('right-pads the shorter untied list', () => {
    expect(getInterventionLocations({ lastPosition: 20, first: 1, last: 3, numInterventions: 2, padMode: 'first' })).toEqual([
      [0, -1, -1],
      [17, 18, 19],
    ])
  })

  it('returns independent lists', () => {
    const locs = getInterventionLocations({ lastPosition: 20, first: 2, last: 0, numInterventions: 2 })
    locs[0]![0] = 99
    expect(locs[1]![0]).toBe(0)
  })

  it('rejects an odd count in the untied split and bad inputs', () => {
    expect(() => getInterventionLocations({ lastPosition: 20, first: 3, last: 3, numInterventions: 3 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }),
    )
    expect(() => getInterventionLocations({ lastPosition: -1, first: 1, last: 0, numInterventions: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    )
    expect(() => getInterventionLocations({ lastPosition: 4, first: 1.5, last: 0, numInterventions: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }),
    )
  })
})

describe('flattenPositions', () => {
  it('lays out [intervention][example][position] and pads ragged lists with their last element', () => {
    const { data, numPositions } = flattenPositions([
      [[1, 2, 3], [4]],
      [[5, 6], [7, 8, 9]],
    ])
    expect(numPositions).toBe(3)
    expect(Array.from(data)).toEqual([1, 2, 3, 4, 4, 4, 5, 6, 6, 7, 8, 9])
  })

  it('rejects empty lists and mismatched batch sizes', () => {
    expect(() => flattenPositions([[[1], []]])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
    expect(() => flattenPositions([[[1]], [[1], [2]]])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
    expect(() => flattenPositions([])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
  })
})

describe('shifts and layout', () => {
  it('shifts for the sink so -1 pads land on index 0', () => {
    expect(shiftForSink([[0, 1, -1], [3, 4, -1]])).toEqual([[1, 2, 0], [4, 5, 0]])
  })

  it('shifts each row by its left-pad count', () => {
    expect(shiftForLeftPadding([[[1], [2, 3]], [[4], [5]]], [3, 0])).toEqual([[[4], [2, 3]], [[7], [5]]])
    expect(() => shiftForLeftPadding([[[1]]], [1, 2])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
  })

  it('transposes [example][intervention] to [intervention][example]', () => {
    expect(toBatchLayout([[[1], [2]], [[3], [4]]])).toEqual([[[1], [3]], [[2], [4]]])
    expect(() => toBatchLayout([[[1], [2]], [[3]]])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
  })
})

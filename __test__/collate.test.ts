import { describe, expect, it } from 'vitest'
import { collatePrompts, collateTraining } from '../src/datasets/collate.js'
import { buildPromptItems } from '../src/datasets/prompt-items.js'
import { buildSinkItems } from '../src/datasets/supervised.js'
import { BOS, charTokenizer as tok, ids } from './helpers/fake-tokenizer.js'

const M = -100

describe('collateTraining (right padding)', () => {
  const items = buildSinkItems(
    tok,
    [
      { prompt: 'abcd', output: 'x' },
      { prompt: 'ab', output: 'xy' },
    ],
    { nonstop: true, positions: 'f1+l1', numInterventions: 2, padId: 0 },
  )

  it('pads ids with padId, labels with -100, attention with 0; positions unchanged', () => {
    const b = collateTraining(items, { padId: 9 })
    expect(b.batchSize).toBe(2)
    expect(b.seqLen).toBe(7)
    expect(Array.from(b.inputIds)).toEqual([0, BOS, ...ids('abcdx'), 0, BOS, ...ids('abxy'), 9])
    expect(Array.from(b.attentionMask!)).toEqual([0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0])
    expect(Array.from(b.labels!)).toEqual([M, M, M, M, M, M, ...ids('x'), M, M, M, M, ...ids('xy'), M])
    // [intervention][example][position]: prefix [1] / suffix [5] for row 0, [1] / [3] for row 1
    expect(b.numPositions).toBe(1)
    expect(Array.from(b.positions!)).toEqual([1, 1, 5, 3])
  })

  it('rounds up to padToMultipleOf', () => {
    expect(collateTraining(items, { padToMultipleOf: 8 }).seqLen).toBe(8)
  })

  it('defaults the mask to ones and labels to -100 when absent', () => {
    const b = collateTraining([{ inputIds: Uint32Array.of(5, 6), locations: [[1]] }, { inputIds: Uint32Array.of(7), locations: [[0]] }])
    expect(Array.from(b.attentionMask!)).toEqual([1, 1, 1, 0])
    expect(Array.from(b.labels!)).toEqual([M, M, M, M])
  })

  it('rejects positions outside the row, mismatched intervention counts and empty batches', () => {
    expect(() => collateTraining([{ inputIds: Uint32Array.of(5, 6), locations: [[2]] }])).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    )
    expect(() => collateTraining([{ inputIds: Uint32Array.of(5, 6), locations: [[-1]] }])).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    )
    expect(() =>
      collateTraining([
        { inputIds: Uint32Array.of(5), locations: [[0]] },
        { inputIds: Uint32Array.of(5), locations: [[0], [0]] },
      ]),
    ).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
    expect(() => collateTraining([])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
    expect(() => collateTraining([{ inputIds: Uint32Array.of(5), labels: Int32Array.of(1, 2), locations: [[0]] }])).toThrow(
      expect.objectContaining({ code: 'ERR_SHAPE' }),
    )
  })
})

describe('collatePrompts (left padding)', () => {
  it('left-pads and shifts each row by its pad count', () => {
    const items = buildPromptItems(tok, ['abcd', 'a'], { mode: 'sink', positions: 'f1+l1', numInterventions: 2, padId: 0 })
    // row 0: [sink, BOS, a b c d] (6) locs [[1],[5]]; row 1: [sink, BOS, a] (3): promptLen 2 → f=s=1 → [[1],[2]]
    const b = collatePrompts(items, { padId: 7 })
    expect(b.seqLen).toBe(6)
    expect(b.padCounts).toEqual([0, 3])
    expect(Array.from(b.inputIds).slice(6)).toEqual([7, 7, 7, 0, BOS, ...ids('a')])
    expect(Array.from(b.attentionMask!).slice(6)).toEqual([0, 0, 0, 0, 1, 1])
    expect(Array.from(b.positions!)).toEqual([1, 1 + 3, 5, 2 + 3])
    expect(b.labels).toBeUndefined()
  })

  it('the shifted positions still address the same tokens', () => {
    const items = buildPromptItems(tok, ['abcdef', 'xy', 'pqrs'], { mode: 'last_position' })
    const b = collatePrompts(items)
    items.forEach((it, row) => {
      const want = it.inputIds[it.locations[0]![0]!]
      expect(b.inputIds[row * b.seqLen + b.positions![row]!]).toBe(want)
    })
  })
})

import { describe, expect, it } from 'vitest'
import {
  buildLastPositionItems,
  buildMultiplePositionItems,
  buildSinkItems,
  ignoreIndex,
} from '../src/datasets/supervised.js'
import { alpacaPrompt } from '../src/datasets/instruction.js'
import { BOS, charTokenizer as tok, ids } from './helpers/fake-tokenizer.js'

const code = (c: string, field?: string) => expect.objectContaining(field ? { code: c, field } : { code: c })
const ex = { prompt: 'abcdef', output: 'xy' }
const M = -100

describe('buildLastPositionItems (pyreft make_last_position_supervised_data_module)', () => {
  it('masks the prompt, appends EOS text and points every intervention at the last prompt token', () => {
    const [it0] = buildLastPositionItems(tok, [ex], { eosText: '#', numInterventions: 3 })
    expect(Array.from(it0!.inputIds)).toEqual([BOS, ...ids('abcdefxy#')])
    expect(Array.from(it0!.labels)).toEqual([M, M, M, M, M, M, M, ...ids('xy#')])
    expect(Array.from(it0!.attentionMask)).toEqual(new Array(10).fill(1))
    expect(it0!.locations).toEqual([[6], [6], [6]])
    expect(it0!.promptLength).toBe(7)
    expect(ignoreIndex).toBe(-100)
  })

  it('nonstop drops the EOS; eosId appends an id', () => {
    const [a] = buildLastPositionItems(tok, [ex], { nonstop: true })
    expect(Array.from(a!.inputIds)).toEqual([BOS, ...ids('abcdefxy')])
    const [b] = buildLastPositionItems(tok, [ex], { eosId: 2 })
    expect(Array.from(b!.inputIds).at(-1)).toBe(2)
    expect(Array.from(b!.labels).at(-1)).toBe(2)
  })

  it('formats the prompt and tokenises prompt and full text separately', () => {
    tok.calls.length = 0
    buildLastPositionItems(tok, [{ prompt: 'Q', output: 'A' }], { eosText: '#', format: { kind: 'alpaca' }, addSpecialTokens: false })
    expect(tok.calls).toEqual([
      [alpacaPrompt('Q'), false],
      [alpacaPrompt('Q') + 'A#', false],
    ])
  })

  it('requires an EOS unless nonstop and rejects empty targets', () => {
    expect(() => buildLastPositionItems(tok, [ex], {})).toThrow(code('ERR_INVALID_CONFIG', 'eosText'))
    expect(() => buildLastPositionItems(tok, [ex], { eosText: '#', eosId: 2 })).toThrow(code('ERR_INVALID_CONFIG', 'eosId'))
    expect(() => buildLastPositionItems(tok, [{ prompt: 'p', output: '' }], { nonstop: true })).toThrow(code('ERR_SHAPE'))
  })
})

describe('buildMultiplePositionItems (pad mode last, no sink)', () => {
  it('uses getInterventionLocations(lastPosition = promptLen, padMode last)', () => {
    // promptLen 7 (BOS + 6) → floor(7/2)=3 ≥ 2: prefix 0,1 / suffix 5,6
    const [a] = buildMultiplePositionItems(tok, [ex], { eosText: '#', positions: 'f2+l2', numInterventions: 2 })
    expect(a!.locations).toEqual([[0, 1], [5, 6]])
    expect(Array.from(a!.inputIds)[0]).toBe(BOS)
  })

  it('pads point at the first response token for short prompts (pyreft behaviour)', () => {
    const [a] = buildMultiplePositionItems(tok, [{ prompt: 'ab', output: 'z' }], { nonstop: true, positions: 'f3+l3', numInterventions: 2 })
    // promptLen 3 → f = s = 1; pads = promptLen = 3
    expect(a!.locations).toEqual([[0, 3, 3], [2, 3, 3]])
    expect(Array.from(a!.labels)).toEqual([M, M, M, ...ids('z')])
  })
})

describe('buildSinkItems (ReftDataset, pad mode first)', () => {
  it('prepends the sink: pad id, label -100, attention 0, locations +1', () => {
    const [a] = buildSinkItems(tok, [{ prompt: 'abcd', output: 'xy' }], {
      eosText: '#',
      positions: 'f3+l3',
      numInterventions: 2,
      padId: 0,
    })
    // promptLen 5 → f = s = 2, pads −1 → after +1: sink index 0
    expect(Array.from(a!.inputIds)).toEqual([0, BOS, ...ids('abcdxy#')])
    expect(Array.from(a!.attentionMask)).toEqual([0, 1, 1, 1, 1, 1, 1, 1, 1])
    expect(Array.from(a!.labels)).toEqual([M, M, M, M, M, M, ...ids('xy#')])
    expect(a!.locations).toEqual([[1, 2, 0], [4, 5, 0]])
    expect(a!.promptLength).toBe(6)
  })

  it('tied: one shared list per intervention', () => {
    const [a] = buildSinkItems(tok, [{ prompt: 'abcdefghi', output: 'x' }], {
      nonstop: true,
      positions: { first: 1, last: 1 },
      numInterventions: 2,
      shareWeights: true,
      padId: 5,
    })
    expect(a!.locations).toEqual([[1, 10], [1, 10]])
  })
})

describe('truncation (maxLength counts the sink)', () => {
  const long = { prompt: 'abc', output: 'uvwxyz' } // BOS+3 prompt, 6 output + '#' → 11 tokens

  it("'truncate' cuts the response tail and keeps the prompt", () => {
    const [a] = buildSinkItems(tok, [long], { eosText: '#', positions: 'l1', padId: 0, maxLength: 7 })
    expect(a!.inputIds).toHaveLength(7)
    expect(Array.from(a!.inputIds)).toEqual([0, BOS, ...ids('abcuv')])
    expect(Array.from(a!.labels)).toEqual([M, M, M, M, M, ...ids('uv')])
    expect(a!.locations).toEqual([[4]])
  })

  it("'truncate' refuses to cut into the prompt", () => {
    expect(() => buildLastPositionItems(tok, [long], { eosText: '#', maxLength: 4 })).toThrow(code('ERR_OUT_OF_RANGE', 'maxLength'))
    expect(buildLastPositionItems(tok, [long], { eosText: '#', maxLength: 5 })[0]!.inputIds).toHaveLength(5)
  })

  it("'drop' skips and reports; 'error' throws", () => {
    const dropped: number[] = []
    const items = buildLastPositionItems(tok, [ex, long, ex], { eosText: '#', maxLength: 10, overflow: 'drop', onDrop: (i) => dropped.push(i) })
    expect(items).toHaveLength(2)
    expect(dropped).toEqual([1])
    expect(() => buildLastPositionItems(tok, [ex, long], { eosText: '#', maxLength: 10, overflow: 'error' })).toThrow(
      code('ERR_OUT_OF_RANGE', 'maxLength'),
    )
  })

  it('leaves short examples untouched', () => {
    const [a] = buildLastPositionItems(tok, [ex], { eosText: '#', maxLength: 100 })
    expect(a!.inputIds).toHaveLength(10)
  })
})

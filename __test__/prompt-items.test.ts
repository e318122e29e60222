import { describe, expect, it } from 'vitest'
import { buildPromptItems } from '../src/datasets/prompt-items.js'
import { buildSinkItems } from '../src/datasets/supervised.js'
import { BOS, charTokenizer as tok, ids } from './helpers/fake-tokenizer.js'

describe('buildPromptItems', () => {
  it('last_position: the last prompt token for every intervention', () => {
    const [a] = buildPromptItems(tok, ['abc'], { mode: 'last_position', numInterventions: 2 })
    expect(Array.from(a!.inputIds)).toEqual([BOS, ...ids('abc')])
    expect(a!.locations).toEqual([[3], [3]])
  })

  it('sink: same ids and locations as the training items, minus the target', () => {
    const opts = { positions: 'f2+l2', numInterventions: 2, padId: 0 } as const
    const [train] = buildSinkItems(tok, [{ prompt: 'abcdefg', output: 'z' }], { ...opts, nonstop: true })
    const [gen] = buildPromptItems(tok, [{ prompt: 'abcdefg' }], { ...opts, mode: 'sink' })
    expect(gen!.locations).toEqual(train!.locations)
    expect(Array.from(gen!.inputIds)).toEqual(Array.from(train!.inputIds).slice(0, -1))
    expect(Array.from(gen!.attentionMask)).toEqual(Array.from(train!.attentionMask).slice(0, -1))
  })

  it('multiple_position: drops pads that point past the prompt, errors when nothing is left', () => {
    const [a] = buildPromptItems(tok, ['ab'], { mode: 'multiple_position', positions: 'f3+l3', numInterventions: 2 })
    expect(a!.locations).toEqual([[0], [2]])
    expect(() => buildPromptItems(tok, [''], { mode: 'multiple_position', positions: 'f1', addSpecialTokens: true })).toThrow(
      expect.objectContaining({ code: 'ERR_SHAPE' }),
    )
  })

  it('validates mode-specific options', () => {
    expect(() => buildPromptItems(tok, ['ab'], { mode: 'sink', positions: 'l1' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'padId' }),
    )
    expect(() => buildPromptItems(tok, ['ab'], { mode: 'multiple_position' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'positions' }),
    )
    expect(() => buildPromptItems(tok, ['ab'], { mode: 'x' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'mode' }))
  })
})

/**
 * Generation on the tiny model: greedy determinism, string and token-id prompts, batching with
 * left padding, streaming equal to the full text, abort with ERR_ABORTED, and the bare model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel, type Model, type ReftModel } from '../../src/index.js'
import { errorCode, tinyWorkspace } from './helpers.js'

const ws = tinyWorkspace()
let model: Model
let reft: ReftModel
beforeAll(async () => {
  model = await loadModel(ws.modelDir)
  reft = model.withInterventions({ kind: 'loreft', layers: [1], positions: 'l1', rank: 4 }, { seed: 7 })
})
afterAll(() => {
  reft.dispose()
  model.dispose()
  ws.cleanup()
})

const ids = (r: { tokens: Uint32Array[] }): number[][] => r.tokens.map((t) => [...t])

describe('ReftModel.generate', () => {
  it('greedy decoding is deterministic, and the sampling seed does not change it', async () => {
    const a = await reft.generate(['hi', 'The quick brown fox'], { maxNewTokens: 12 })
    const b = await reft.generate(['hi', 'The quick brown fox'], { maxNewTokens: 12, seed: 123 })
    expect(a.tokens).toHaveLength(2)
    expect(a.tokens[0]!.length).toBeGreaterThan(0)
    expect(a.tokens[0]!.length).toBeLessThanOrEqual(12)
    expect(ids(b)).toEqual(ids(a))
    expect(b.texts).toEqual(a.texts)
    expect(a.texts[0]).toBe(model.decode(a.tokens[0]!))
  })

  it('a string prompt equals the same prompt as a one-element list and as token ids', async () => {
    const single = await reft.generate('hi', { maxNewTokens: 10 })
    const list = await reft.generate(['hi'], { maxNewTokens: 10 })
    const tokens = await reft.generate([model.encode('hi')], { maxNewTokens: 10 })
    expect(ids(single)).toEqual(ids(list))
    expect(ids(tokens)).toEqual(ids(list))
  })

  it('a left-padded batch gives each row what it gives alone', async () => {
    const both = await reft.generate(['hi', 'The quick brown fox'], { maxNewTokens: 16 })
    const first = await reft.generate(['hi'], { maxNewTokens: 16 })
    const second = await reft.generate(['The quick brown fox'], { maxNewTokens: 16 })
    expect(ids(both)).toEqual([...ids(first), ...ids(second)])
  })

  it('sampling is reproducible with a seed', async () => {
    const opts = { maxNewTokens: 16, greedy: false, temperature: 1.5, seed: 3 }
    const a = await reft.generate(['hi'], opts)
    const b = await reft.generate(['hi'], opts)
    expect(ids(b)).toEqual(ids(a))
  })

  it('the interventions change the output of the bare model', async () => {
    const bare = await model.generate(['The quick brown fox'], { maxNewTokens: 16 })
    const edited = await reft.generate(['The quick brown fox'], { maxNewTokens: 16 })
    expect(ids(edited)).not.toEqual(ids(bare))
  })
})

describe('generateStream', () => {
  it('pieces concatenate to the text of generate', async () => {
    for (const prompt of ['hi', 'The quick brown fox', 'zzz']) {
      const full = await reft.generate([prompt], { maxNewTokens: 24 })
      const pieces: string[] = []
      for await (const piece of reft.generateStream(prompt, { maxNewTokens: 24 })) pieces.push(piece)
      expect(pieces.length).toBeGreaterThan(0)
      expect(pieces.join('')).toBe(full.texts[0])
    }
  })

  it('the bare model streams too, and leaving the loop early stops generation', async () => {
    const full = await model.generate(['hi'], { maxNewTokens: 20 })
    let text = ''
    for await (const piece of model.generateStream('hi', { maxNewTokens: 20 })) text += piece
    expect(text).toBe(full.texts[0])
    const started = performance.now()
    for await (const piece of reft.generateStream('hi', { maxNewTokens: 200 })) {
      expect(piece.length).toBeGreaterThan(0)
      break
    }
    expect(performance.now() - started).toBeLessThan(5_000)
    // The handle is usable afterwards (the abort flag does not leak into the next call).
    expect((await reft.generate(['hi'], { maxNewTokens: 4 })).tokens[0]!.length).toBeGreaterThan(0)
  })
})

describe('abort', () => {
  it('an AbortSignal aborts a running generate with ERR_ABORTED', async () => {
    // Precondition: a prompt that, without abort, runs the full 200 tokens (no EOS on the way).
    let prompt: string | undefined
    for (const p of ['hi', 'Hello', 'The quick brown fox', 'a', 'zzz', 'abc']) {
      if ((await reft.generate([p], { maxNewTokens: 200 })).tokens[0]!.length === 200) {
        prompt = p
        break
      }
    }
    expect(prompt).toBeDefined()
    const controller = new AbortController()
    let seen = 0
    const run = reft.generate([prompt!], { maxNewTokens: 200, signal: controller.signal }, () => {
      if (++seen === 1) controller.abort()
    })
    expect(await errorCode(() => run)).toBe('ERR_ABORTED')
    expect(seen).toBeLessThan(200)
  })

  it('an already aborted signal rejects at once', async () => {
    expect(await errorCode(() => reft.generate(['hi'], { signal: AbortSignal.abort() }))).toBe('ERR_ABORTED')
    expect(await errorCode(() => model.generate(['hi'], { signal: AbortSignal.abort() }))).toBe('ERR_ABORTED')
  })
})

describe('Model.generate (bare)', () => {
  it('generates deterministically without interventions', async () => {
    const a = await model.generate(['hi', 'abc'], { maxNewTokens: 8 })
    const b = await model.generate(['hi', 'abc'], { maxNewTokens: 8 })
    expect(a.tokens).toHaveLength(2)
    expect(a.tokens.every((t) => t.length > 0 && t.length <= 8)).toBe(true)
    expect(ids(b)).toEqual(ids(a))
    expect(a.texts).toEqual(a.tokens.map((t) => model.decode(t)))
  })

  it('rejects an empty prompt list with ERR_SHAPE', async () => {
    expect(await errorCode(() => model.generate([]))).toBe('ERR_SHAPE')
  })
})

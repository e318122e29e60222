/**
 * The WebAssembly build against the native addon on the tiny random Llama: the same files, model
 * facts and tokens; logits equal to 1e-5 for every intervention kind; the same losses over a few
 * AdamW steps; the same greedy generation (streamed); matching error codes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { interventionKinds, toReftError } from '../../src/index.js'
import type { NativeInterventionSpec, NativeModel } from '../../src/native-api.js'
import { backends, maxAbsDiff, tempRoot, tinyBatch, wasmBuilt, type Backends } from './helpers.js'

describe.skipIf(!wasmBuilt())('wasm vs native (tiny Llama)', () => {
  const tmp = tempRoot()
  const modelDir = join(tmp.root, 'model')
  let b: Backends
  let nat: NativeModel
  let wasm: NativeModel

  beforeAll(async () => {
    b = await backends()
    b.native.createTinyModel(modelDir, 0)
    nat = await b.native.loadModel(modelDir)
    wasm = await b.wasm.loadModel(modelDir)
  })
  afterAll(() => {
    nat?.dispose()
    wasm?.dispose()
    tmp.cleanup()
  })

  it('createTinyModel writes byte-identical files', () => {
    const dir = join(tmp.root, 'tiny-wasm')
    b.wasm.createTinyModel(dir, 0)
    const names = readdirSync(modelDir).sort()
    expect(readdirSync(dir).sort()).toEqual(names)
    for (const n of names) expect(readFileSync(join(dir, n)).equals(readFileSync(join(modelDir, n))), n).toBe(true)
  })

  it('reports the same model facts and tokens', () => {
    expect(wasm.info()).toEqual(nat.info())
    for (const text of ['hello world', 'a, b. c!', 'ünïcødé ✓', '<s>x</s><pad>']) {
      const ids = nat.encode(text, true)
      expect([...wasm.encode(text, true)], text).toEqual([...ids])
      expect(wasm.decode(ids, false)).toBe(nat.decode(ids, false))
    }
    expect(wasm.tokenToId('</s>')).toBe(nat.tokenToId('</s>'))
    expect(wasm.tokenToId('no such token')).toBeNull()
  })

  it.each(interventionKinds)('%s: forward logits and loss match to 1e-5', async (kind) => {
    const specs: NativeInterventionSpec[] = [
      { kind, layer: 0, component: 'block_output', rank: 4 },
      { kind, layer: 1, component: 'mlp_output', rank: 2 },
    ]
    const rn = b.native.createReft(nat, specs, 11)
    const rw = b.wasm.createReft(wasm, specs, 11)
    const batch = tinyBatch(specs.length)
    const [on, ow] = [await rn.forward(batch, true), await rw.forward(batch, true)]
    expect(ow.dims).toEqual(on.dims)
    expect(ow.numTokens).toBe(on.numTokens)
    expect(maxAbsDiff(ow.logits, on.logits)).toBeLessThan(1e-5)
    expect(Math.abs(ow.loss! - on.loss!)).toBeLessThan(1e-5)
    expect(rw.trainableParameters()).toEqual(rn.trainableParameters())
    expect(rw.specs()).toEqual(rn.specs())
    rn.dispose()
    rw.dispose()
  })

  it('AdamW steps give the same losses and gradient norms', async () => {
    const specs: NativeInterventionSpec[] = [{ kind: 'loreft', layer: 1, component: 'block_output', rank: 4, dropout: 0.1 }]
    const rn = b.native.createReft(nat, specs, 5)
    const rw = b.wasm.createReft(wasm, specs, 5)
    rn.setTraining(true)
    rw.setTraining(true)
    const batch = tinyBatch()
    const halves = [{ ...batch, batchSize: 1, inputIds: batch.inputIds.slice(0, batch.seqLen), attentionMask: batch.attentionMask!.slice(0, batch.seqLen), labels: batch.labels!.slice(0, batch.seqLen), positions: batch.positions!.slice(0, 1) }, batch]
    for (let step = 1; step <= 6; step++) {
      const micro = step % 2 === 0 ? halves : [batch]
      const opts = { lr: 2e-2, weightDecay: 0.01 }
      const [sn, sw] = [await rn.trainStep(micro, opts), await rw.trainStep(micro, opts)]
      expect(sw.step).toBe(step)
      expect(sw.numTokens).toBe(sn.numTokens)
      expect(Math.abs(sw.loss - sn.loss), `step ${step}: ${sw.loss} vs ${sn.loss}`).toBeLessThan(1e-5)
      expect(Math.abs(sw.gradNorm - sn.gradNorm) / sn.gradNorm, `step ${step}`).toBeLessThan(1e-4)
    }
    rn.setTraining(false)
    rw.setTraining(false)
    const [on, ow] = [await rn.forward(batch, true), await rw.forward(batch, true)]
    expect(maxAbsDiff(ow.logits, on.logits)).toBeLessThan(1e-4)
    rn.dispose()
    rw.dispose()
  })

  it('greedy generation streams the same tokens; abort from onToken rejects with ERR_ABORTED', async () => {
    const specs: NativeInterventionSpec[] = [{ kind: 'loreft', layer: 1, component: 'block_output', rank: 4 }]
    const rn = b.native.createReft(nat, specs, 2)
    const rw = b.wasm.createReft(wasm, specs, 2)
    const prompt = nat.encode('abc', true)
    const prompts = { inputIds: new Uint32Array([258, ...prompt]), batchSize: 1, seqLen: prompt.length + 1, attentionMask: new Uint8Array([0, ...prompt.map(() => 1)]), positions: new Int32Array([prompt.length]), numPositions: 1 }
    const opts = { maxNewTokens: 8 }
    const streamed: number[][] = []
    const [gn, gw] = [await rn.generate(prompts, opts), await rw.generate(prompts, opts, (t) => streamed.push(t))]
    expect([...gw[0]!]).toEqual([...gn[0]!])
    expect(streamed.flat()).toEqual([...gn[0]!])
    const sampled = { maxNewTokens: 6, greedy: false, temperature: 0.8, topK: 20, seed: 9 }
    expect([...(await rw.generate(prompts, sampled))[0]!]).toEqual([...(await rn.generate(prompts, sampled))[0]!])
    let calls = 0
    await expect(rw.generate(prompts, opts, () => (++calls === 2 ? rw.abort() : undefined))).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(calls).toBe(2)
    rn.dispose()
    rw.dispose()
  })

  it('raises the same error codes (as ReftError codes)', async () => {
    const bad = async (f: () => unknown): Promise<string> => {
      try {
        await f()
      } catch (e) {
        return toReftError(e).code
      }
      return 'no error'
    }
    for (const be of [{ api: b.native, m: nat }, { api: b.wasm, m: wasm }]) {
      expect(await bad(() => be.api.createReft(be.m, [{ kind: 'loreft', layer: 7, component: 'block_output', rank: 4 }], 0))).toBe('ERR_OUT_OF_RANGE')
      expect(await bad(() => be.api.createReft(be.m, [{ kind: 'nope', layer: 0, component: 'block_output', rank: 4 }], 0))).toBe('ERR_INVALID_CONFIG')
      expect(await bad(() => be.api.loadModel(join(tmp.root, 'missing')))).toBe('ERR_IO')
      expect(await bad(() => be.api.loadReft(be.m, tmp.root, false))).toBe('ERR_IO')
      const r = be.api.createReft(be.m, [{ kind: 'loreft', layer: 0, component: 'block_output', rank: 4 }], 0)
      r.dispose()
      expect(await bad(() => r.forward(tinyBatch(), false))).toBe('ERR_DISPOSED')
    }
    expect(await bad(() => b.wasm.loadModel(modelDir, { device: 'cuda' }))).toBe('ERR_INVALID_CONFIG')
    expect(await bad(() => b.wasm.createReft(nat, [{ kind: 'loreft', layer: 0, component: 'block_output', rank: 4 }], 0))).toBe('ERR_INVALID_CONFIG')
  })
})

/**
 * The tiny random BERT through the WebAssembly build: WordPiece pair encoding equal to the native
 * tokenizer, classification logits and training losses equal to the native addon, and a head
 * that survives the in-memory checkpoint round trip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NativeBatch, NativeModel } from '../../src/native-api.js'
import { backends, maxAbsDiff, tempRoot, wasmBuilt, type Backends } from './helpers.js'
import { join } from 'node:path'

describe.skipIf(!wasmBuilt())('wasm vs native (tiny BERT with a head)', () => {
  const tmp = tempRoot()
  let b: Backends
  let nat: NativeModel
  let wasm: NativeModel

  beforeAll(async () => {
    b = await backends()
    const dir = join(tmp.root, 'bert')
    b.native.createTinyEncoder(dir, 3, 3)
    nat = await b.native.loadModel(dir)
    wasm = await b.wasm.loadModel(dir)
  })
  afterAll(() => {
    nat?.dispose()
    wasm?.dispose()
    tmp.cleanup()
  })

  /** Two text pairs, right padded, class labels 2 and 0, intervening on [CLS]. */
  function pairBatch(m: NativeModel): NativeBatch {
    const rows = [m.encodePair('the cat sat.', 'on a mat!', true, 24), m.encodePair("it's 42", null, true, 24)]
    const seqLen = Math.max(...rows.map((r) => r.ids.length))
    const pad = (xs: Uint32Array): number[] => [...xs, ...Array<number>(seqLen - xs.length).fill(0)]
    return {
      inputIds: new Uint32Array(rows.flatMap((r) => pad(r.ids))),
      tokenTypeIds: new Uint32Array(rows.flatMap((r) => pad(r.typeIds))),
      attentionMask: new Uint8Array(rows.flatMap((r) => pad(r.ids.map(() => 1)))),
      batchSize: 2,
      seqLen,
      positions: new Int32Array([0, 0]),
      numPositions: 1,
      classLabels: new Float32Array([2, 0]),
    }
  }

  it('encodes pairs and reports facts as the native build does', () => {
    expect(wasm.info()).toEqual(nat.info())
    for (const [t, p] of [['Hello, World!', 'second part'], ['a b c', null]] as const) {
      const [en, ew] = [nat.encodePair(t, p, true, 6), wasm.encodePair(t, p, true, 6)]
      expect([...ew.ids]).toEqual([...en.ids])
      expect([...ew.typeIds]).toEqual([...en.typeIds])
    }
  })

  it('classification logits, losses and the saved head match', async () => {
    const specs = [{ kind: 'loreft', layer: 1, component: 'block_output', rank: 2 }]
    const rn = b.native.createReft(nat, specs, 6, { numLabels: 3 })
    const rw = b.wasm.createReft(wasm, specs, 6, { numLabels: 3 })
    expect(rw.head()).toEqual(rn.head())
    const batch = pairBatch(nat)
    const [on, ow] = [await rn.forward(batch, true), await rw.forward(batch, true)]
    expect(ow.dims).toEqual([2, 3])
    expect(maxAbsDiff(ow.logits, on.logits)).toBeLessThan(1e-5)
    for (let i = 0; i < 4; i++) {
      const [sn, sw] = [await rn.trainStep([batch], { lr: 1e-2 }), await rw.trainStep([batch], { lr: 1e-2 })]
      expect(Math.abs(sw.loss - sn.loss)).toBeLessThan(1e-5)
    }
    const loaded = b.wasm.loadReftFromFiles(wasm, rw.saveFiles(false), false)
    expect(loaded.head()).toEqual(rw.head())
    expect((await loaded.forward(batch, true)).logits).toEqual((await rw.forward(batch, true)).logits)
    for (const r of [rn, rw, loaded]) r.dispose()
  })
})

/**
 * Adapter checkpoints through the WebAssembly build: an in-memory round trip (saveFiles →
 * loadReftFromFiles) restores the same outputs and, with the optimizer, the same next step;
 * directories written by either backend load in the other with the same logits; saving into an
 * existing directory replaces only our files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { NativeInterventionSpec, NativeModel } from '../../src/native-api.js'
import { backends, maxAbsDiff, tempRoot, tinyBatch, wasmBuilt, type Backends } from './helpers.js'

describe.skipIf(!wasmBuilt())('wasm adapter checkpoints', () => {
  const tmp = tempRoot()
  let b: Backends
  let nat: NativeModel
  let wasm: NativeModel
  const specs: NativeInterventionSpec[] = [
    { kind: 'loreft', layer: 0, component: 'block_output', rank: 4 },
    { kind: 'direft', layer: 1, component: 'block_output', rank: 2, addBias: true },
  ]
  const batch = tinyBatch(specs.length)

  beforeAll(async () => {
    b = await backends()
    const modelDir = join(tmp.root, 'model')
    b.native.createTinyModel(modelDir, 1)
    nat = await b.native.loadModel(modelDir)
    wasm = b.wasm.loadModelFromFiles(b.wasm.tinyModelFiles(1))
  })
  afterAll(() => {
    nat?.dispose()
    wasm?.dispose()
    tmp.cleanup()
  })

  it('saveFiles → loadReftFromFiles restores outputs, metadata and the optimizer', async () => {
    const r = b.wasm.createReft(wasm, specs, 4)
    for (let i = 0; i < 2; i++) await r.trainStep([batch], { lr: 1e-2 })
    r.setMetadata(JSON.stringify({ note: 'wasm' }))
    const files = r.saveFiles(true)
    expect(Object.keys(files).sort()).toEqual(['interventions.safetensors', 'optimizer.safetensors', 'reft_config.json'])
    const loaded = b.wasm.loadReftFromFiles(wasm, files, true)
    expect(loaded.metadata()).toBe(r.metadata())
    const [o1, o2] = [await r.forward(batch, true), await loaded.forward(batch, true)]
    expect(o2.logits).toEqual(o1.logits)
    const [s1, s2] = [await r.trainStep([batch], { lr: 1e-2 }), await loaded.trainStep([batch], { lr: 1e-2 })]
    expect(s2).toEqual(s1)
    expect(Object.keys(b.wasm.loadReftFromFiles(wasm, files, false).saveFiles(true))).not.toContain('optimizer.safetensors')
    r.dispose()
    loaded.dispose()
  })

  it('a checkpoint saved by wasm loads natively, and one saved natively loads in wasm', async () => {
    const rw = b.wasm.createReft(wasm, specs, 8)
    await rw.trainStep([batch], { lr: 5e-2 })
    const wasmDir = join(tmp.root, 'from-wasm')
    await rw.save(wasmDir, true)
    const rn = await b.native.loadReft(nat, wasmDir, true)
    expect(maxAbsDiff((await rn.forward(batch, true)).logits, (await rw.forward(batch, true)).logits)).toBeLessThan(1e-5)
    const [sn, sw] = [await rn.trainStep([batch], { lr: 5e-2 }), await rw.trainStep([batch], { lr: 5e-2 })]
    expect(sn.step).toBe(2)
    expect(Math.abs(sn.loss - sw.loss)).toBeLessThan(1e-5)

    const nativeDir = join(tmp.root, 'from-native')
    await rn.save(nativeDir, false)
    const back = await b.wasm.loadReft(wasm, nativeDir, false)
    expect(maxAbsDiff((await back.forward(batch, true)).logits, (await rn.forward(batch, true)).logits)).toBeLessThan(1e-5)
    for (const r of [rw, rn, back]) r.dispose()
  })

  it('saving into an existing directory keeps other files and drops a stale optimizer state', async () => {
    const dir = join(tmp.root, 'existing')
    mkdirSync(join(dir, 'checkpoint-1'), { recursive: true })
    writeFileSync(join(dir, 'notes.txt'), 'keep me')
    const r = b.wasm.createReft(wasm, specs, 1)
    await r.trainStep([batch], { lr: 1e-2 })
    await r.save(dir, true)
    expect(existsSync(join(dir, 'optimizer.safetensors'))).toBe(true)
    await r.save(dir, false)
    expect(readdirSync(dir).sort()).toEqual(['checkpoint-1', 'interventions.safetensors', 'notes.txt', 'reft_config.json'])
    r.dispose()
  })
})

/**
 * Backend selection in Node: `loadModel(..., { backend })` and `REFT_BACKEND` pick the native addon
 * or the WebAssembly build; the rest of the API (adapters, `loadReft` from a directory, training,
 * generation) works the same on either; bad choices are coded errors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { createTinyModel, loadModel, loadReft, selectBackend, train } from '../../src/index.js'
import { code } from '../helpers/error-code.js'
import { tempRoot, wasmBuilt } from './helpers.js'

describe('backend choice validation', () => {
  afterEach(() => {
    delete process.env.REFT_BACKEND
  })
  it('rejects unknown choices with ERR_INVALID_CONFIG', () => {
    expect(code(() => selectBackend('gpu' as never))).toBe('ERR_INVALID_CONFIG')
    process.env.REFT_BACKEND = 'fast'
    expect(code(() => selectBackend())).toBe('ERR_INVALID_CONFIG')
  })
  it('defaults to the native addon', () => {
    expect(selectBackend().kind).toBe('native')
    expect(selectBackend('native').kind).toBe('native')
  })
})

describe.skipIf(!wasmBuilt())('loadModel on the WebAssembly backend', () => {
  const tmp = tempRoot()
  const modelDir = join(tmp.root, 'model')
  beforeAll(() => createTinyModel(modelDir, 3))
  afterAll(() => tmp.cleanup())
  afterEach(() => {
    delete process.env.REFT_BACKEND
  })

  it('REFT_BACKEND=wasm selects it for the whole process', () => {
    process.env.REFT_BACKEND = 'wasm'
    expect(selectBackend().kind).toBe('wasm')
  })

  it('trains, saves and reloads an adapter across backends with the same tokens', async () => {
    const wasm = await loadModel(modelDir, { backend: 'wasm' })
    const nat = await loadModel(modelDir, { backend: 'native' })
    expect([wasm.backendKind, nat.backendKind]).toEqual(['wasm', 'native'])
    const reft = wasm.withInterventions({ kind: 'direft', layers: [0], positions: 'l1', rank: 2 }, { seed: 5 })
    try {
      const items = reft.dataset([{ prompt: 'ab', output: 'cd' }])
      const history = await train(reft, items, { epochs: 3, lr: 0.05, batchSize: 1 })
      expect(history.steps).toHaveLength(3)
      const dir = join(tmp.root, 'adapter')
      await reft.save(dir)
      const onNative = await loadReft(dir, nat)
      const onWasm = await loadReft(dir, wasm)
      const a = await onNative.generate(['ab'], { maxNewTokens: 6 })
      const b = await onWasm.generate(['ab'], { maxNewTokens: 6 })
      const c = await reft.generate(['ab'], { maxNewTokens: 6 })
      expect(Array.from(b.tokens[0]!)).toEqual(Array.from(a.tokens[0]!))
      expect(Array.from(c.tokens[0]!)).toEqual(Array.from(a.tokens[0]!))
      onNative.dispose()
      onWasm.dispose()
    } finally {
      reft.dispose()
      wasm.dispose()
      nat.dispose()
    }
  })

  it('an adapter cannot cross backends in memory', async () => {
    const wasm = await loadModel(modelDir, { backend: 'wasm' })
    const nat = await loadModel(modelDir, { backend: 'native' })
    try {
      expect(code(() => wasm.backend.createReft(nat.handle, [], 0))).toBe('ERR_INVALID_CONFIG')
    } finally {
      wasm.dispose()
      nat.dispose()
    }
  })
})

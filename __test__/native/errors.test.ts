/**
 * Stable error codes from the real addon (asserted on `code`, never on messages): shapes, configs,
 * ranges, missing and corrupt files, and disposed handles.
 */
import { describe, expect, it } from 'vitest'
import { cpSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadModel, loadReft, type InterventionConfig, type Model, type NativeBatch } from '../../src/index.js'
import { call, native } from '../../src/native.js'
import { errorCode, tinyWorkspace, loadForSuite } from './helpers.js'

const ws = tinyWorkspace()
let model: Model
loadForSuite(ws, (m) => (model = m))

const lastToken = (): InterventionConfig => ({ kind: 'loreft', layers: [1], positions: 'l1', rank: 4 })
const batch = (over: Partial<NativeBatch> = {}): NativeBatch => ({
  inputIds: new Uint32Array([10, 11, 12, 13, 14, 15]),
  batchSize: 2,
  seqLen: 3,
  positions: new Int32Array([2, 2]),
  numPositions: 1,
  ...over,
})
const spec = (over: Record<string, unknown> = {}) => ({ kind: 'loreft', layer: 0, component: 'block_output', rank: 4, ...over })
/** A copy of the tiny model directory, to corrupt. */
const copyModel = (name: string): string => {
  const dir = join(ws.root, name)
  cpSync(ws.modelDir, dir, { recursive: true })
  return dir
}

describe('ERR_SHAPE', () => {
  it('input ids that do not fill batchSize × seqLen', async () => {
    using reft = model.withInterventions(lastToken())
    expect((await reft.forward(batch())).dims).toEqual([2, 3, 259])
    expect(await errorCode(() => reft.forward(batch({ inputIds: new Uint32Array(5) })))).toBe('ERR_SHAPE')
  })
  it('positions that do not match [interventions][batch][numPositions]', async () => {
    using reft = model.withInterventions(lastToken())
    expect(await errorCode(() => reft.forward(batch({ positions: new Int32Array(3) })))).toBe('ERR_SHAPE')
  })
  it('labels of the wrong length', async () => {
    using reft = model.withInterventions(lastToken())
    expect(await errorCode(() => reft.forward(batch({ labels: new Int32Array(4) })))).toBe('ERR_SHAPE')
  })
})

describe('ERR_INVALID_CONFIG', () => {
  it('an unknown kind, in TS and in the native layer', async () => {
    const cfg = { ...lastToken(), kind: 'bogus' } as unknown as InterventionConfig
    expect(await errorCode(() => model.withInterventions(cfg))).toBe('ERR_INVALID_CONFIG')
    expect(await errorCode(() => call(() => native().createReft(model.handle, [spec({ kind: 'bogus' })], 0)))).toBe('ERR_INVALID_CONFIG')
  })
})

describe('ERR_OUT_OF_RANGE', () => {
  it('a layer beyond the model, in TS and in the native layer', async () => {
    expect(await errorCode(() => model.withInterventions({ ...lastToken(), layers: [2] }))).toBe('ERR_OUT_OF_RANGE')
    expect(await errorCode(() => call(() => native().createReft(model.handle, [spec({ layer: 2 })], 0)))).toBe('ERR_OUT_OF_RANGE')
  })
  it('a position beyond the sequence or negative', async () => {
    using reft = model.withInterventions(lastToken())
    expect(await errorCode(() => reft.forward(batch({ positions: new Int32Array([2, 3]) })))).toBe('ERR_OUT_OF_RANGE')
    expect(await errorCode(() => reft.forward(batch({ positions: new Int32Array([-1, 0]) })))).toBe('ERR_OUT_OF_RANGE')
  })
  it('a token id beyond the vocabulary', async () => {
    using reft = model.withInterventions(lastToken())
    expect(await errorCode(() => reft.forward(batch({ inputIds: new Uint32Array([1, 2, 3, 4, 5, 259]) })))).toBe('ERR_OUT_OF_RANGE')
  })
})

describe('ERR_IO', () => {
  it('a missing model path', async () => {
    expect(await errorCode(() => loadModel(join(ws.root, 'no-such-model')))).toBe('ERR_IO')
  })
  it('a missing adapter directory', async () => {
    expect(await errorCode(() => loadReft(join(ws.root, 'no-such-adapter'), model))).toBe('ERR_IO')
  })
})

describe('ERR_FORMAT', () => {
  it('a truncated model.safetensors (header or tail)', async () => {
    const head = copyModel('trunc-head')
    truncateSync(join(head, 'model.safetensors'), 100)
    expect(await errorCode(() => loadModel(head))).toBe('ERR_FORMAT')
    const tail = copyModel('trunc-tail')
    const file = join(tail, 'model.safetensors')
    truncateSync(file, statSync(file).size - 64)
    expect(await errorCode(() => loadModel(tail))).toBe('ERR_FORMAT')
  })
  it('a garbage or incomplete config.json', async () => {
    const garbage = copyModel('garbage-config')
    writeFileSync(join(garbage, 'config.json'), '{not json')
    expect(await errorCode(() => loadModel(garbage))).toBe('ERR_FORMAT')
    const partial = copyModel('partial-config')
    writeFileSync(join(partial, 'config.json'), '{"model_type": "llama"}')
    expect(await errorCode(() => loadModel(partial))).toBe('ERR_FORMAT')
  })
  it('a corrupt adapter', async () => {
    using reft = model.withInterventions(lastToken())
    const dir = join(ws.root, 'corrupt-adapter')
    await reft.save(dir)
    const intact = await loadReft(dir, model)
    intact.dispose()
    writeFileSync(join(dir, 'interventions.safetensors'), 'not safetensors')
    expect(await errorCode(() => loadReft(dir, model))).toBe('ERR_FORMAT')
    writeFileSync(join(dir, 'reft_config.json'), '{')
    expect(await errorCode(() => loadReft(dir, model))).toBe('ERR_FORMAT')
  })
})

describe('ERR_DISPOSED', () => {
  it('a disposed ReftModel', async () => {
    const reft = model.withInterventions(lastToken())
    reft.dispose()
    expect(await errorCode(() => reft.forward(batch()))).toBe('ERR_DISPOSED')
    expect(await errorCode(() => reft.trainStep([batch()], { lr: 1e-3 }))).toBe('ERR_DISPOSED')
    expect(await errorCode(() => reft.generate('hi'))).toBe('ERR_DISPOSED')
    expect(await errorCode(() => reft.save(join(ws.root, 'never')))).toBe('ERR_DISPOSED')
    expect(await errorCode(() => reft.trainableParameters())).toBe('ERR_DISPOSED')
    reft.dispose() // idempotent
  })
  it('a disposed Model, while an adapter made from it keeps the weights alive', async () => {
    const own = await loadModel(ws.modelDir)
    using reft = own.withInterventions(lastToken())
    own.dispose()
    expect(await errorCode(() => own.info())).toBe('ERR_DISPOSED')
    expect(await errorCode(() => own.encode('hi'))).toBe('ERR_DISPOSED')
    expect(await errorCode(() => own.withInterventions(lastToken()))).toBe('ERR_DISPOSED')
    expect(await errorCode(() => own.generate('hi'))).toBe('ERR_DISPOSED')
    expect((await reft.forward(batch())).dims).toEqual([2, 3, 259])
  })
})

/**
 * `loadModel(path, { dtype })` through the addon: a bf16 or f16 model trains like the f32 one
 * (the same loss curve within the format's rounding), and an unknown dtype is refused with
 * ERR_INVALID_CONFIG. The Rust suite `tests/half.rs` checks the logits and gradients in detail.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { loadModel, train, type Model, type TrainOptions } from '../../src/index.js'
import { errorCode, tinyExamples, tinyPad, tinyWorkspace } from './helpers.js'

const ws = tinyWorkspace(3)
const models: Record<string, Model> = {}
beforeAll(async () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) models[dtype] = await loadModel(ws.modelDir, { dtype })
})
afterAll(() => {
  for (const m of Object.values(models)) m.dispose()
  ws.cleanup()
})

const options: TrainOptions = { epochs: 4, batchSize: 4, lr: 2e-2, seed: 1, padId: tinyPad }

async function losses(model: Model): Promise<number[]> {
  using reft = model.withInterventions({ kind: 'loreft', layers: [0, 1], positions: 'f1+l1', rank: 4 }, { seed: 7 })
  const history = await train(reft, reft.dataset(tinyExamples), options)
  return history.steps.map((s) => s.loss)
}

it('bf16 and f16 models follow the f32 loss curve within their rounding', async () => {
  const full = await losses(models.f32!)
  expect(full.at(-1)!).toBeLessThan(full[0]!)
  for (const [dtype, tol] of [['bf16', 1e-2], ['f16', 1e-3]] as const) {
    const half = await losses(models[dtype]!)
    expect(half).toHaveLength(full.length)
    const worst = Math.max(...half.map((l, i) => Math.abs(l - full[i]!) / full[i]!))
    expect(worst, `${dtype} ${half} vs f32 ${full}`).toBeLessThan(tol)
    // Not the f32 numbers again: the model really ran in the narrower format.
    expect(worst, dtype).toBeGreaterThan(0)
  }
})

it('refuses an unknown dtype', async () => {
  expect(await errorCode(() => loadModel(ws.modelDir, { dtype: 'f8' as 'f32' }))).toBe('ERR_INVALID_CONFIG')
})

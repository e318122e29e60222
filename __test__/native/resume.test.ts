/**
 * Exact resume: a run of 6 steps with a checkpoint every 3, resumed from checkpoint-3 with its
 * optimizer state, reproduces the losses of steps 4–6 of the uninterrupted run.
 */
import { beforeAll, expect, it } from 'vitest'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadReft, train, type Model, type SupervisedItem, type TrainOptions } from '../../src/index.js'
import { tinyPad, tinyWorkspace, loadForSuite } from './helpers.js'

const ws = tinyWorkspace()
let model: Model
loadForSuite(ws, (m) => (model = m))

const examples = ['hi', 'abc', 'one', 'red', 'sun', 'sea'].map((prompt, i) => ({ prompt, output: `answer ${i}` }))
const outputDir = join(ws.root, 'run')
// 6 examples, batch 2 → 3 steps per epoch, 2 epochs → 6 steps. No dropout: its RNG state is not
// part of a checkpoint, so a resume with dropout > 0 is not exact.
const options: TrainOptions = { epochs: 2, batchSize: 2, lr: 2e-2, warmupSteps: 1, weightDecay: 0.01, seed: 5, padId: tinyPad }

let items: SupervisedItem[]
let full: number[]
beforeAll(async () => {
  using reft = model.withInterventions({ kind: 'loreft', layers: [0, 1], positions: 'f1+l1', tied: false, rank: 4 }, { seed: 11 })
  items = reft.dataset(examples)
  const history = await train(reft, items, { ...options, checkpointEvery: 3, outputDir })
  full = history.steps.map((s) => s.loss)
})

it('writes checkpoint-3 and checkpoint-6', () => {
  expect(full).toHaveLength(6)
  expect(readdirSync(outputDir).sort()).toEqual(['checkpoint-3', 'checkpoint-6'])
})

it('resuming from checkpoint-3 reproduces the losses of steps 4–6', async () => {
  const dir = join(outputDir, 'checkpoint-3')
  using resumed = await loadReft(dir, model, { withOptimizer: true })
  const history = await train(resumed, items, { ...options, resumeFrom: dir })
  const losses = history.steps.map((s) => s.loss)
  expect(history.steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6])
  for (let i = 0; i < 6; i++) expect(Math.abs(losses[i]! - full[i]!), `step ${i + 1}`).toBeLessThanOrEqual(1e-6)
})

it('without the optimizer state the later losses differ (the comparison can fail)', async () => {
  const dir = join(outputDir, 'checkpoint-3')
  using resumed = await loadReft(dir, model, { withOptimizer: false })
  const history = await train(resumed, items, { ...options, resumeFrom: dir })
  const losses = history.steps.map((s) => s.loss)
  // Step 4's loss is computed before the first resumed update, so it matches either way.
  expect(Math.abs(losses[3]! - full[3]!)).toBeLessThanOrEqual(1e-6)
  expect(Math.abs(losses[5]! - full[5]!)).toBeGreaterThan(1e-6)
})

it('a resume with a different shape is rejected', async () => {
  const dir = join(outputDir, 'checkpoint-3')
  using resumed = await loadReft(dir, model, { withOptimizer: true })
  await expect(train(resumed, items, { ...options, batchSize: 3, resumeFrom: dir })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
})

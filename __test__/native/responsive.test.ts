/**
 * Native work runs off the JS thread: timers keep firing while a single heavy `trainStep` is in
 * flight and while `train` runs for a few hundred milliseconds.
 */
import { expect, it } from 'vitest'
import { ReftModel, train, type Model } from '../../src/index.js'
import { tinyPad, tinyWorkspace, loadForSuite } from './helpers.js'

const ws = tinyWorkspace()
let model: Model
loadForSuite(ws, (m) => (model = m))

/** Long examples so that one step takes tens of milliseconds even on the tiny model; `train` runs
 * enough epochs to stay well above 100 ms as the core gets faster (3 epochs fell to 64 ms). */
const longExamples = Array.from({ length: 16 }, (_, i) => ({ prompt: `prompt number ${i}: `, output: 'the answer is '.repeat(12) }))

/** Runs `work` while a 5 ms interval ticks; returns the tick count, the largest gap and the duration. */
async function whileTicking(work: () => Promise<unknown>): Promise<{ ticks: number; maxGap: number; ms: number }> {
  let ticks = 0
  let last = performance.now()
  let maxGap = 0
  const timer = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
    ticks++
  }, 5)
  const started = performance.now()
  try {
    await work()
  } finally {
    clearInterval(timer)
  }
  const ms = performance.now() - started
  maxGap = Math.max(maxGap, performance.now() - last)
  return { ticks, maxGap, ms }
}

it('timers fire during one heavy trainStep', async () => {
  using reft = model.withInterventions({ kind: 'loreft', layers: 'all', positions: 'f3+l3', rank: 4 }, { seed: 1 })
  // Four copies of the examples in one batch, well above the 30 ms floor below as the core gets
  // faster (16 examples took ~60 ms here, 64 take ~340 ms).
  const batch = ReftModel.collate(reft.dataset([...longExamples, ...longExamples, ...longExamples, ...longExamples]), tinyPad)
  await reft.trainStep([batch], { lr: 1e-3 }) // warm up allocations
  const { ticks, ms } = await whileTicking(() => reft.trainStep([batch], { lr: 1e-3 }))
  // A blocking step would allow no tick at all until it returned.
  expect(ms).toBeGreaterThan(30)
  expect(ticks).toBeGreaterThanOrEqual(Math.floor(ms / 5 / 4))
  expect(ticks).toBeGreaterThanOrEqual(3)
})

it('the event loop stays responsive during train', async () => {
  using reft = model.withInterventions({ kind: 'loreft', layers: 'all', positions: 'l1', rank: 4 }, { seed: 1 })
  const items = reft.dataset(longExamples)
  const { ticks, maxGap, ms } = await whileTicking(() => train(reft, items, { epochs: 10, batchSize: 4, lr: 1e-3, padId: tinyPad }))
  expect(ms).toBeGreaterThan(100)
  expect(ticks).toBeGreaterThanOrEqual(Math.floor(ms / 5 / 4))
  expect(maxGap).toBeLessThan(Math.max(100, ms / 4))
})

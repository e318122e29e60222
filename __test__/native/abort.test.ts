/**
 * An AbortSignal stops a running `train` promptly with ERR_ABORTED and leaves only complete
 * `checkpoint-*` directories (no partial or temporary ones).
 */
import { expect, it } from 'vitest'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadReft, train, type Model, type SupervisedItem, type TrainProgressEvent } from '../../src/index.js'
import { errorCode, tinyExamples, tinyPad, tinyWorkspace, loadForSuite } from './helpers.js'

const ws = tinyWorkspace()
let model: Model
loadForSuite(ws, (m) => (model = m))

const checkpointFiles = ['reft_config.json', 'interventions.safetensors', 'trainer_state.json']

/** Asserts every entry of `dir` is a complete checkpoint; returns their step numbers. */
function completeCheckpoints(dir: string): number[] {
  const entries = readdirSync(dir)
  expect(entries.filter((e) => !/^checkpoint-\d+$/.test(e))).toEqual([])
  for (const e of entries) for (const f of checkpointFiles) expect(existsSync(join(dir, e, f)), `${e}/${f}`).toBe(true)
  return entries.map((e) => Number(e.slice('checkpoint-'.length))).sort((a, b) => a - b)
}

function setup(name: string): { items: SupervisedItem[]; outputDir: string; reft: ReturnType<Model['withInterventions']> } {
  const reft = model.withInterventions({ kind: 'loreft', layers: [1], positions: 'l1', rank: 4 }, { seed: 3 })
  const items = reft.dataset([...tinyExamples, ...tinyExamples])
  return { items, outputDir: join(ws.root, name), reft }
}

it('aborting after the 2nd step stops before the 3rd and keeps checkpoints 1 and 2 whole', async () => {
  const { items, outputDir, reft } = setup('abort-between')
  const controller = new AbortController()
  const events: TrainProgressEvent[] = []
  const code = await errorCode(() =>
    train(reft, items, {
      epochs: 5, batchSize: 1, lr: 1e-2, padId: tinyPad, checkpointEvery: 1, outputDir, signal: controller.signal,
      onProgress: (e) => {
        events.push(e)
        if (e.step === 2) controller.abort()
      },
    }),
  )
  expect(code).toBe('ERR_ABORTED')
  expect(events.map((e) => e.step)).toEqual([1, 2])
  expect(completeCheckpoints(outputDir)).toEqual([1, 2])
  // The checkpoint is usable: it loads with its optimizer state.
  const loaded = await loadReft(join(outputDir, 'checkpoint-2'), model, { withOptimizer: true })
  loaded.dispose()
  reft.dispose()
})

it('aborting while a step runs saves nothing for that step and stops promptly', async () => {
  const { items, outputDir, reft } = setup('abort-inflight')
  const controller = new AbortController()
  let steps = 0
  const started = performance.now()
  const run = train(reft, items, {
    epochs: 50, batchSize: 1, lr: 1e-2, padId: tinyPad, checkpointEvery: 1, outputDir, signal: controller.signal,
    onProgress: (e) => {
      steps = e.step
      // Abort from a macrotask, while the next step is already in flight on the native side.
      if (e.step === 2) setImmediate(() => controller.abort())
    },
  })
  expect(await errorCode(() => run)).toBe('ERR_ABORTED')
  const totalSteps = 50 * items.length
  expect(steps).toBeLessThan(5)
  expect(performance.now() - started).toBeLessThan(5_000)
  const saved = completeCheckpoints(outputDir)
  expect(saved.length).toBeGreaterThanOrEqual(2)
  expect(saved.at(-1)!).toBeLessThanOrEqual(steps)
  expect(saved.at(-1)!).toBeLessThan(totalSteps)
  reft.dispose()
})

it('an already aborted signal trains nothing', async () => {
  const { items, outputDir, reft } = setup('abort-before')
  const controller = new AbortController()
  controller.abort()
  const steps: number[] = []
  const code = await errorCode(() =>
    train(reft, items, { padId: tinyPad, checkpointEvery: 1, outputDir, signal: controller.signal, onProgress: (e) => steps.push(e.step) }),
  )
  expect(code).toBe('ERR_ABORTED')
  expect(steps).toEqual([])
  expect(existsSync(outputDir) ? readdirSync(outputDir) : []).toEqual([])
  reft.dispose()
})

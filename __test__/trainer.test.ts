import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { constantSchedule } from '../src/schedules/index.js'
import { planEpoch, train } from '../src/trainer.js'
import { paddingTokens, windowBatches } from '../src/length-groups.js'
import { mulberry32 } from '../src/random.js'
import type { TrainProgressEvent } from '../src/trainer-options.js'
import { FakeReft, makeItems } from './helpers/fake-reft.js'

const code = (c: string, field?: string) => expect.objectContaining(field ? { code: c, field } : { code: c })
let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reft-trainer-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const items = makeItems(10)
const sig = (k: number): number => 1000 + k

describe('batch plan', () => {
  it('covers every item once per epoch, in micro-batches grouped per step', () => {
    const plan = planEpoch(10, 3, 2, 42)
    expect(plan.map((s) => s.map((m) => m.length))).toEqual([[3, 3], [3, 1]])
    expect(plan.flat(2).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(planEpoch(10, 3, 2, 42)).toEqual(plan)
    expect(planEpoch(10, 3, 2, 43)).not.toEqual(plan)
  })

  it('groupByLength: same coverage and step shape, reproducible, less padding', () => {
    const rng = mulberry32(3)
    const n = 1003
    const lengths = Array.from({ length: n }, () => 8 + Math.floor(rng() * 200))
    const plain = planEpoch(n, 8, 2, 11)
    const grouped = planEpoch(n, 8, 2, 11, lengths)
    expect(grouped.map((s) => s.map((m) => m.length))).toEqual(plain.map((s) => s.map((m) => m.length)))
    expect(grouped.flat(2).sort((a, b) => a - b)).toEqual([...Array(n).keys()])
    expect(planEpoch(n, 8, 2, 11, lengths)).toEqual(grouped)
    expect(planEpoch(n, 8, 2, 12, lengths)).not.toEqual(grouped)
    const pad = (p: number[][][]) => paddingTokens(p.flat(1), lengths)
    expect(pad(grouped)).toBeLessThan(pad(plain) / 5)
    // Micro-batch order is shuffled, not sorted by length across the epoch.
    const maxLen = grouped.flat(1).slice(0, -1).map((m) => Math.max(...m.map((i) => lengths[i]!)))
    expect(maxLen.some((l, i) => i > 0 && l > maxLen[i - 1]!)).toBe(true)
    expect(windowBatches).toBe(50)
  })
})

describe('train', () => {
  it('runs the planned steps with the default linear schedule and toggles training', async () => {
    const reft = new FakeReft()
    const h = await train(reft, items, { epochs: 2, batchSize: 3, gradientAccumulation: 2, lr: 0.1, weightDecay: 0.01, maxGradNorm: 0.5 })
    expect(h.steps.map((s) => s.step)).toEqual([1, 2, 3, 4])
    h.steps.forEach((s, i) => expect(s.lr).toBeCloseTo([0.1, 0.075, 0.05, 0.025][i]!, 12))
    expect(reft.calls[0]).toMatchObject({ weightDecay: 0.01, maxGradNorm: 0.5 })
    expect(reft.calls.map((c) => c.rows.length)).toEqual([2, 2, 2, 2])
    for (const epoch of [0, 1]) {
      const seen = reft.calls.slice(epoch * 2, epoch * 2 + 2).flatMap((c) => c.rows.flat())
      expect(seen.sort((a, b) => a - b)).toEqual(items.map((_, k) => sig(k)))
    }
    expect(reft.trainingLog[0]).toBe(true)
    expect(reft.trainingLog.at(-1)).toBe(false)
    expect(h.stoppedEarly).toBe(false)
  })

  it('reports progress with ETA and throughput', async () => {
    const events: TrainProgressEvent[] = []
    await train(new FakeReft(), items, { batchSize: 5, epochs: 2, onProgress: (e) => events.push(e) })
    expect(events.map((e) => [e.step, e.epoch, e.totalSteps])).toEqual([[1, 0, 4], [2, 0, 4], [3, 1, 4], [4, 1, 4]])
    expect(events.at(-1)!.etaMs).toBe(0)
    expect(events.every((e) => e.tokensPerSecond > 0 && e.elapsedMs >= 0)).toBe(true)
  })

  for (const [at, groupByLength] of [[1, false], [2, false], [3, false], [2, true]] as const) {
    it(`resuming from checkpoint-${at} reproduces the uninterrupted run${groupByLength ? ' (grouped by length)' : ''}`, async () => {
      const opts = { epochs: 3, batchSize: 3, gradientAccumulation: 2, seed: 7, lr: 0.05, warmupSteps: 1, groupByLength }
      const full = new FakeReft()
      const expected = await train(full, items, opts)

      const ctl = new AbortController()
      const first = new FakeReft()
      await expect(
        train(first, items, { ...opts, checkpointEvery: 1, outputDir: dir, signal: ctl.signal, onProgress: (e) => e.step === at && ctl.abort() }),
      ).rejects.toThrow(code('ERR_ABORTED'))
      const state = JSON.parse(await readFile(join(dir, `checkpoint-${at}`, 'trainer_state.json'), 'utf8'))
      expect(state.step).toBe(at)

      const resumed = new FakeReft()
      const h = await train(resumed, items, { ...opts, resumeFrom: join(dir, `checkpoint-${at}`) })
      expect(h).toEqual(expected)
      expect(resumed.calls).toEqual(full.calls.slice(at))
    })
  }

  it('rejects a resume with a different run shape, and a missing checkpoint', async () => {
    await train(new FakeReft(), items, { batchSize: 4, checkpointEvery: 1, outputDir: dir })
    await expect(train(new FakeReft(), items, { batchSize: 2, resumeFrom: join(dir, 'checkpoint-1') })).rejects.toThrow(
      code('ERR_INVALID_CONFIG', 'resumeFrom'),
    )
    await expect(train(new FakeReft(), items, { batchSize: 4, groupByLength: true, resumeFrom: join(dir, 'checkpoint-1') })).rejects.toThrow(
      code('ERR_INVALID_CONFIG', 'resumeFrom'),
    )
    await expect(train(new FakeReft(), items, { resumeFrom: join(dir, 'nope') })).rejects.toThrow(code('ERR_IO'))
  })

  it('records the batch cursor and rejects a malformed trainer_state.json', async () => {
    await train(new FakeReft(), items, { batchSize: 3, gradientAccumulation: 2, epochs: 2, seed: 5, checkpointEvery: 1, outputDir: dir })
    const read = async (n: number) => JSON.parse(await readFile(join(dir, `checkpoint-${n}`, 'trainer_state.json'), 'utf8'))
    expect(await read(1)).toMatchObject({ step: 1, epoch: 0, stepInEpoch: 1, seed: 5, totalSteps: 4, batchSize: 3, gradientAccumulation: 2 })
    expect(await read(2)).toMatchObject({ step: 2, epoch: 1, stepInEpoch: 0 })
    expect((await read(3)).history.steps).toHaveLength(3)
    await writeFile(join(dir, 'checkpoint-1', 'trainer_state.json'), '{"formatVersion": 99}')
    await expect(train(new FakeReft(), items, { resumeFrom: join(dir, 'checkpoint-1') })).rejects.toThrow(code('ERR_FORMAT'))
    await writeFile(join(dir, 'checkpoint-1', 'trainer_state.json'), 'not json')
    await expect(train(new FakeReft(), items, { resumeFrom: join(dir, 'checkpoint-1') })).rejects.toThrow(code('ERR_FORMAT'))
  })

  it('abort stops after the in-flight step and leaves only complete checkpoints', async () => {
    const reft = new FakeReft({ delayMs: 15 })
    const ctl = new AbortController()
    setTimeout(() => ctl.abort(), 40)
    const t0 = Date.now()
    await expect(
      train(reft, makeItems(200), { batchSize: 1, checkpointEvery: 1, outputDir: dir, signal: ctl.signal }),
    ).rejects.toThrow(code('ERR_ABORTED'))
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(reft.step).toBeGreaterThan(0)
    expect(reft.step).toBeLessThan(10)
    const entries = await readdir(dir)
    expect(entries.every((e) => /^checkpoint-\d+$/.test(e))).toBe(true)
    expect(entries.length).toBeLessThanOrEqual(reft.step)
    for (const e of entries) {
      expect((await readdir(join(dir, e))).sort()).toEqual(['trainer_state.json', 'weights.json'])
    }
    expect(reft.training).toBe(false)
  })

  it('does not start when the signal is already aborted', async () => {
    const reft = new FakeReft()
    await expect(train(reft, items, { signal: AbortSignal.abort() })).rejects.toThrow(code('ERR_ABORTED'))
    expect(reft.step).toBe(0)
    expect(reft.trainingLog).toEqual([true, false])
  })

  it('a failing save leaves no partial checkpoint directory', async () => {
    const reft = new FakeReft({ failSaveAt: 2 })
    await expect(train(reft, items, { batchSize: 2, checkpointEvery: 1, outputDir: dir })).rejects.toThrow(code('ERR_IO'))
    expect(await readdir(dir)).toEqual(['checkpoint-1'])
    expect(reft.training).toBe(false)
  })

  it('keeps the event loop responsive even when steps resolve without a macrotask', async () => {
    // A macrotask queued at step 1 must run within a couple of steps, even though the fake never
    // yields (a loop of already-resolved promises would starve it until training ends).
    let fired = false
    const firedAtStep: boolean[] = []
    await train(new FakeReft({ delayMs: 0 }), makeItems(60), {
      batchSize: 1,
      onProgress: (e) => {
        if (e.step === 1) setImmediate(() => (fired = true))
        firedAtStep.push(fired)
      },
    })
    expect(firedAtStep[0]).toBe(false)
    expect(firedAtStep[2]).toBe(true)
  })

  it('lets a setInterval keep firing while steps await native work', async () => {
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    const ticksAtStep: number[] = []
    try {
      await train(new FakeReft({ delayMs: 3 }), makeItems(20), { batchSize: 1, onProgress: () => ticksAtStep.push(ticks) })
    } finally {
      clearInterval(timer)
    }
    expect(ticksAtStep.at(-1)!).toBeGreaterThanOrEqual(10)
  })

  it('stops early when the eval loss stops improving by minDelta', async () => {
    const reft = new FakeReft({ evalLosses: [1.0, 0.9, 0.95, 0.92, 0.5, 0.4] })
    const evalDataset = makeItems(3)
    const h = await train(reft, items, {
      batchSize: 1,
      evalDataset,
      evalEvery: 1,
      evalBatchSize: 2,
      earlyStopping: { patience: 2 },
    })
    expect(h.stoppedEarly).toBe(true)
    h.evals.forEach((e, i) => expect(e.loss).toBeCloseTo([1.0, 0.9, 0.95, 0.92][i]!, 12))
    expect(h.evals).toHaveLength(4)
    expect(h.steps).toHaveLength(4)
    expect(reft.forwardTraining.every((t) => t === false)).toBe(true)
    expect(reft.trainingLog.at(-1)).toBe(false)

    const strict = await train(new FakeReft({ evalLosses: [1.0, 0.9, 0.88, 0.86] }), items, {
      batchSize: 1,
      evalDataset,
      evalEvery: 1,
      earlyStopping: { patience: 2, minDelta: 0.15 },
    })
    expect(strict.evals).toHaveLength(3)
    expect(strict.stoppedEarly).toBe(true)
  })

  it('computes the token-weighted mean eval loss every evalEvery steps', async () => {
    const h = await train(new FakeReft({ evalLosses: [2, 3] }), items, { batchSize: 5, epochs: 2, evalDataset: makeItems(4), evalEvery: 2 })
    expect(h.evals.map((e) => e.step)).toEqual([2, 4])
    h.evals.forEach((e, i) => expect(e.loss).toBeCloseTo([2, 3][i]!, 12))
  })

  it('throws ERR_NON_FINITE naming the step on a NaN or infinite loss', async () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const reft = new FakeReft({ lossAt: (s) => (s === 3 ? bad : undefined) })
      const err = await train(reft, items, { batchSize: 1 }).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'ERR_NON_FINITE' })
      expect((err as Error).message).toContain('step 3')
      expect(reft.training).toBe(false)
    }
  })

  it('converts native errors from trainStep into ReftError', async () => {
    const reft = new FakeReft()
    reft.trainStep = () => Promise.reject(Object.assign(new Error('shape mismatch'), { code: 'ERR_SHAPE' }))
    await expect(train(reft, items)).rejects.toThrow(code('ERR_SHAPE'))
    expect(reft.training).toBe(false)
  })

  it('uses a custom schedule and validates options', async () => {
    const reft = new FakeReft()
    const h = await train(reft, items, { batchSize: 5, schedule: constantSchedule({ lr: 0.3, warmupSteps: 1 }) })
    expect(h.steps.map((s) => s.lr)).toEqual([0, 0.3])
    await expect(train(reft, items, { evalEvery: 2 })).rejects.toThrow(code('ERR_INVALID_CONFIG', 'evalDataset'))
    await expect(train(reft, items, { checkpointEvery: 2 })).rejects.toThrow(code('ERR_INVALID_CONFIG', 'outputDir'))
    await expect(train(reft, items, { batchSize: 0 })).rejects.toThrow(code('ERR_OUT_OF_RANGE', 'batchSize'))
    await expect(train(reft, [], {})).rejects.toThrow(code('ERR_INVALID_CONFIG', 'dataset'))
    await expect(train(reft, items, { earlyStopping: { patience: 1 } })).rejects.toThrow(code('ERR_INVALID_CONFIG', 'earlyStopping'))
  })
})

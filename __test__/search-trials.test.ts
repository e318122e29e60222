/**
 * The resumable part of a search, without a model: the trials file (header, refusal of other
 * settings, torn lines), the rung loop with a fake trial runner (promotion, resume skipping
 * finished runs, failed runs ranking last, abort), and `trainForSteps` stopping a trainer run
 * after exactly the budgeted steps.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  halvingRungs,
  openTrialsFile,
  resolveSearchSpace,
  runRungs,
  sampleTrials,
  type SearchProgressEvent,
  type TrialMeasurement,
  type TrialRun,
} from '../src/search/index.js'
import { trainForSteps, type TrialSettings } from '../src/search/trial.js'
import { FakeReft, makeItems } from './helpers/fake-reft.js'

let dir: string
let path: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'reft-search-'))
  path = join(dir, 'trials.jsonl')
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const settings = { seed: 42, space: { rank: [2, 4] }, nested: { a: 1, b: [1, 2] } }

describe('trials file', () => {
  it('creates the file with a header; reopening with equal settings (any key order) returns the records', () => {
    const f = openTrialsFile(path, settings)
    expect(f.records).toEqual([])
    const lines = readFileSync(path, 'utf8').trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toEqual({ type: 'search', version: 1, settings })
    f.append({ type: 'test', which: 'selected', config: {} as never, task: 'boolq', limit: 4, maxNewTokens: 8, scoring: 'pyreft', n: 4, correct: 1, accuracy: 0.25, ci95: [0, 1], seconds: 1 })
    const again = openTrialsFile(path, { nested: { b: [1, 2], a: 1 }, space: { rank: [2, 4] }, seed: 42 })
    expect(again.records).toHaveLength(1)
    expect(again.records[0]).toMatchObject({ type: 'test', task: 'boolq' })
  })

  it('refuses other settings with ERR_INVALID_CONFIG naming the first differing setting', () => {
    openTrialsFile(path, settings)
    const before = readFileSync(path, 'utf8')
    expect(() => openTrialsFile(path, { ...settings, seed: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'seed' }))
    expect(() => openTrialsFile(path, { ...settings, space: { rank: [2, 8] } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'space' }))
    expect(() => openTrialsFile(path, { ...settings, extra: true })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'extra' }))
    expect(readFileSync(path, 'utf8')).toBe(before)
  })

  it('a file that is not a trials file is ERR_FORMAT; a torn last line is dropped', () => {
    writeFileSync(path, '{"hello": 1}\n')
    expect(() => openTrialsFile(path, settings)).toThrow(expect.objectContaining({ code: 'ERR_FORMAT' }))
    rmSync(path)
    const f = openTrialsFile(path, settings)
    f.append({ type: 'test', which: 'default', config: {} as never, task: 'x', limit: null, maxNewTokens: 1, scoring: 'pyreft', n: 1, correct: 0, accuracy: 0, ci95: [0, 1], seconds: 0 })
    appendFileSync(path, '{"type":"trial","id":')
    const g = openTrialsFile(path, settings)
    expect(g.records).toHaveLength(1)
    g.append({ type: 'test', which: 'default', config: {} as never, task: 'y', limit: null, maxNewTokens: 1, scoring: 'pyreft', n: 1, correct: 0, accuracy: 0, ci95: [0, 1], seconds: 0 })
    expect(openTrialsFile(path, settings).records.map((r) => (r as { task: string }).task)).toEqual(['x', 'y'])
  })
})

describe('runRungs with a fake runner', () => {
  const space = resolveSearchSpace({ layers: ['all'], positions: ['l1'], rank: [1, 2, 3], lr: [1e-3, 2e-3, 3e-3], epochs: [1] })
  const configs = sampleTrials(space, { sampling: 'grid' })
  const rungs = halvingRungs(configs.length) // 9 @ 1/9, 3 @ 1/3, 1 @ 1
  // Grid id = 3·(rank−1) + lr index; the fake accuracy rises with the id and the budget; id 8 fails.
  const fake = (calls: TrialRun[]) => async (t: TrialRun): Promise<TrialMeasurement> => {
    calls.push(t)
    const base = { config: t.config, budget: t.budget, steps: Math.round(9 * t.budget), params: t.config.rank, seconds: 0 }
    if (t.config.rank === 3 && t.config.lr === 3e-3) return { ...base, score: null, devLoss: null, trainLoss: null, failed: 'ERR_NON_FINITE: loss NaN' }
    const score = (10 * t.config.rank + 1e3 * t.config.lr) / 100 + t.budget / 1000
    return { ...base, score, devLoss: 1 - score, trainLoss: { first: 2, last: 1 } }
  }

  it('promotes the top 1/eta of each rung and ranks failed runs last', async () => {
    const calls: TrialRun[] = []
    const events: SearchProgressEvent[] = []
    const out = await runRungs({ configs, rungs, devMetric: 'accuracy', file: openTrialsFile(path, settings), run: fake(calls), onProgress: (e) => events.push(e) })
    expect(calls.map((c) => [c.rung, c.budget])).toEqual([...Array(9).fill([0, 1 / 9]), ...Array(3).fill([1, 1 / 3]), [2, 1]])
    expect(out[0]!.ranked.map((r) => r.id)).toEqual([7, 6, 5, 4, 3, 2, 1, 0, 8])
    expect(out[0]!.ranked.at(-1)!.failed).toMatch(/NON_FINITE/)
    expect(out[0]!.promoted).toEqual([7, 6, 5])
    expect(out[1]!.promoted).toEqual([7])
    expect(out[2]!.ranked.map((r) => r.id)).toEqual([7])
    expect(events.filter((e) => e.type === 'trial-start')).toHaveLength(13)
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(14)
  })

  it('a rerun skips every finished run; a partial file runs only what is missing', async () => {
    const first: TrialRun[] = []
    await runRungs({ configs, rungs, devMetric: 'accuracy', file: openTrialsFile(path, settings), run: fake(first) })
    const full = readFileSync(path, 'utf8')

    const second: TrialRun[] = []
    const events: SearchProgressEvent[] = []
    const again = await runRungs({ configs, rungs, devMetric: 'accuracy', file: openTrialsFile(path, settings), run: fake(second), onProgress: (e) => events.push(e) })
    expect(second).toEqual([])
    expect(events.filter((e) => e.type === 'trial-skip')).toHaveLength(13)
    expect(again[2]!.ranked[0]!.id).toBe(7)
    expect(readFileSync(path, 'utf8')).toBe(full)

    // Keep the header and the first 10 runs (rung 0 and one of rung 1).
    writeFileSync(path, full.split('\n').slice(0, 11).join('\n') + '\n')
    const third: TrialRun[] = []
    await runRungs({ configs, rungs, devMetric: 'accuracy', file: openTrialsFile(path, settings), run: fake(third) })
    expect(third.map((c) => [c.id, c.rung])).toEqual([[6, 1], [5, 1], [7, 2]])
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(14)
  })

  it('a stored run with another config is refused', async () => {
    await runRungs({ configs, rungs, devMetric: 'accuracy', file: openTrialsFile(path, settings), run: fake([]) })
    const swapped = [...configs].reverse()
    await expect(runRungs({ configs: swapped, rungs, devMetric: 'accuracy', file: openTrialsFile(path, settings), run: fake([]) })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
  })

  it('loss metric: lower is better', async () => {
    const out = await runRungs({ configs, rungs, devMetric: 'loss', file: openTrialsFile(path, settings), run: fake([]) })
    expect(out[0]!.promoted).toEqual([0, 1, 2])
    expect(out[2]!.ranked[0]!.id).toBe(0)
  })

  it('abort stops before the next run; finished runs stay in the file and are resumed', async () => {
    const controller = new AbortController()
    const calls: TrialRun[] = []
    const run = fake(calls)
    const p = runRungs({
      configs, rungs, devMetric: 'accuracy', file: openTrialsFile(path, settings), signal: controller.signal,
      run: async (t) => {
        const m = await run(t)
        if (calls.length === 4) controller.abort()
        return m
      },
    })
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(5)
    const rest: TrialRun[] = []
    await runRungs({ configs, rungs, devMetric: 'accuracy', file: openTrialsFile(path, settings), run: fake(rest) })
    expect(rest).toHaveLength(9)
  })
})

describe('trainForSteps', () => {
  const s: TrialSettings = {
    batchSize: 2, gradientAccumulation: 1, warmupRatio: 0, weightDecay: 0, maxGradNorm: 1, maxLength: undefined,
    component: 'block_output', tied: true, seed: 42, evalBatchSize: 4, maxNewTokens: undefined, scoring: 'pyreft',
  }

  it('runs exactly the budgeted steps with a linear schedule over them, across epochs', async () => {
    const reft = new FakeReft()
    const events: SearchProgressEvent[] = []
    const history = await trainForSteps(reft, makeItems(6), 5, 0.01, { settings: s, padId: 0, onProgress: (e) => events.push(e) })
    expect(reft.step).toBe(5) // 3 steps per epoch: all of epoch 0, 2 of epoch 1
    expect(history.map((h) => h.step)).toEqual([1, 2, 3, 4, 5])
    expect(reft.calls.map((c) => c.lr)).toEqual([0.01, 0.008, 0.006, 0.004, 0.002].map((x) => expect.closeTo(x, 12)))
    expect(events.every((e) => e.type === 'train' && e.event.totalSteps === 5)).toBe(true)
    expect(reft.training).toBe(false)
  })

  it('a budget that fills whole epochs ends without an abort; the caller’s abort still rejects', async () => {
    const reft = new FakeReft()
    expect(await trainForSteps(reft, makeItems(6), 6, 0.01, { settings: s, padId: 0 })).toHaveLength(6)
    const controller = new AbortController()
    const slow = new FakeReft({ delayMs: 5 })
    const p = trainForSteps(slow, makeItems(6), 6, 0.01, {
      settings: s, padId: 0, signal: controller.signal,
      onProgress: (e) => (e.type === 'train' && e.event.step === 2 ? controller.abort() : undefined),
    })
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(slow.step).toBe(2)
  })
})

/**
 * `search` and `reft search` end to end on the tiny random model, with a small BoolQ-shaped data
 * directory written by the test: 3 trials with successive halving (3 @ 1/3, 1 @ 1), dev accuracy
 * on a held-out slice of the train split, the default configuration, test-split evaluation,
 * the trials file, the reports, resume (nothing reruns; a truncated file reruns only what is
 * missing), refusal of other settings, and abort. The tiny model answers garbage, so these check
 * the plumbing and bookkeeping, not which configuration wins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  budgetSteps,
  loadModel,
  loadReft,
  search,
  stepsPerEpoch,
  type Model,
  type SearchOptions,
  type SearchProgressEvent,
  type TrialRecord,
} from '../../src/index.js'
import { tinyWorkspace } from './helpers.js'

const repo = resolve(import.meta.dirname, '../..')
const ws = tinyWorkspace()
const dataDir = join(ws.root, 'data')
let model: Model
beforeAll(async () => {
  const rows = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => ({ instruction: `is ${from + i} even?`, output: `the correct answer is ${(from + i) % 2 === 0}`, answer: String((from + i) % 2 === 0) }))
  mkdirSync(join(dataDir, 'commonsense/boolq'), { recursive: true })
  writeFileSync(join(dataDir, 'commonsense/boolq/train.json'), JSON.stringify(rows(14, 0)))
  writeFileSync(join(dataDir, 'commonsense/boolq/test.json'), JSON.stringify(rows(4, 100)))
  model = await loadModel(ws.modelDir)
})
afterAll(() => {
  model.dispose()
  ws.cleanup()
})

const base = (outputDir: string): SearchOptions => ({
  model,
  data: { trainingSet: 'boolq' },
  dataDir,
  outputDir,
  space: { layers: ['middle', 'all'], positions: ['l1', 'f1+l1'], rank: [2], lr: [0.01, 0.03], epochs: [2] },
  trials: 3,
  devSize: 4,
  train: { batchSize: 4 },
  eval: { maxNewTokens: 3 },
})
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
const count = (events: SearchProgressEvent[], type: SearchProgressEvent['type']) => events.filter((e) => e.type === type).length

describe('search on the tiny model', () => {
  const out = join(ws.root, 'search')
  const full = { testTasks: ['boolq'], testLimit: 4, compareDefault: true }

  it('runs the rungs, writes trials.jsonl, search.json, search.md and the selected adapter', async () => {
    const events: SearchProgressEvent[] = []
    const r = await search({ ...base(out), ...full, onProgress: (e) => events.push(e) })
    // 10 training examples, batch 4 → 3 steps per epoch; epochs 2 → a full run is 6 steps.
    const fullSteps = 2 * stepsPerEpoch(10, 4)
    expect(r.rungs.map((o) => [o.rung.trials, o.rung.budget, o.ranked.length])).toEqual([[3, 1 / 3, 3], [1, 1, 1]])
    for (const o of r.rungs) for (const t of o.ranked) expect(t.steps).toBe(budgetSteps(o.rung.budget, fullSteps))
    expect(r.rungs[1]!.ranked[0]!.id).toBe(r.rungs[0]!.promoted[0])
    expect(r.selected.id).toBe(r.rungs[0]!.ranked[0]!.id)
    expect(r.devMetric).toBe('accuracy')
    for (const t of r.rungs.flatMap((o) => o.ranked)) {
      expect(t).toMatchObject({ devN: 4 })
      expect(t.score).toBe(t.devCorrect! / 4)
      expect(Number.isFinite(t.devLoss)).toBe(true)
      // LoReFT rank 2 on hidden 32: 2·32·2 + 2 = 130 parameters per layer.
      expect(t.params).toBe(t.config.layers === 'all' ? 260 : 130)
    }
    expect(count(events, 'trial-start')).toBe(5) // 3 + 1 trials + the default configuration
    expect(count(events, 'train')).toBe(3 * 2 + 6 + 3) // 2 steps each at 1/3, 6 at the full budget; default: 1 epoch = 3
    expect(events.find((e) => e.type === 'plan')).toMatchObject({ trials: 3, trainSize: 10, devSize: 4, resumed: 0 })

    const records = lines(r.trialsFile)
    expect(records.map((l) => l.type)).toEqual(['search', 'trial', 'trial', 'trial', 'trial', 'default', 'test', 'test'])
    expect(records.filter((l) => l.type === 'test').map((l) => [l.which, l.task, l.n])).toEqual([['selected', 'boolq', 4], ['default', 'boolq', 4]])
    expect(r.default).toMatchObject({ config: { kind: 'loreft', layers: 'middle', positions: 'l1', rank: 4, lr: 0.004, epochs: 1 }, steps: 3, devN: 4 })

    const json = JSON.parse(readFileSync(r.report.json, 'utf8')) as { trials: TrialRecord[]; selected: { id: number; adapter: string }; test: unknown[]; default: unknown }
    expect(json.trials).toHaveLength(4)
    expect(json.selected).toMatchObject({ id: r.selected.id, adapter: 'adapter' })
    expect(json.test).toHaveLength(2)
    expect(json.default).not.toBeNull()
    const md = readFileSync(r.report.markdown, 'utf8')
    expect(md.match(/^\| 0 \| 1\/3 \| 2 \| \d \| loreft \|/gm)).toHaveLength(3)
    expect(md).toMatch(/^\| 1 \| 1 \| 6 \| \d \| loreft \| .* \| \*\*selected\*\* \|$/m)
    expect(md).toMatch(/^\| selected: loreft .* \| boolq \| 4 \| \d+\.\d \| /m)
    expect(md).toMatch(/^\| default: loreft layers=middle pos=l1 rank=4 lr=0.004 epochs=1 \| boolq \| 4 \| /m)
    expect(md).toContain('dev slice = the last 4 of the train split (file order)')

    // The selected adapter is the full-budget run of the selected trial.
    expect(existsSync(join(out, 'trials', `trial-${r.selected.id}`))).toBe(true)
    using adapter = await loadReft(r.adapterDir, model)
    const c = r.selected.config
    expect(adapter.config).toMatchObject({ kind: 'loreft', rank: 2, layers: c.layers === 'all' ? [0, 1] : [1], positions: c.positions === 'l1' ? { first: 0, last: 1 } : { first: 1, last: 1 } })
  })

  it('a rerun resumes everything from the trials file; a truncated file reruns only what is missing', async () => {
    const file = join(out, 'trials.jsonl')
    const before = readFileSync(file, 'utf8')
    const events: SearchProgressEvent[] = []
    const again = await search({ ...base(out), ...full, onProgress: (e) => events.push(e) })
    expect(count(events, 'trial-start')).toBe(0)
    expect(count(events, 'train')).toBe(0)
    expect(count(events, 'trial-skip')).toBe(5)
    expect(events.filter((e) => e.type === 'test-end').map((e) => (e as { resumed: boolean }).resumed)).toEqual([true, true])
    expect(readFileSync(file, 'utf8')).toBe(before)

    // Keep the header and rung 0: only the last rung runs again, with the same result.
    writeFileSync(file, before.split('\n').slice(0, 4).join('\n') + '\n')
    const partial: SearchProgressEvent[] = []
    const third = await search({ ...base(out), onProgress: (e) => partial.push(e) })
    expect(partial.filter((e) => e.type === 'trial-start').map((e) => (e as { rung: number }).rung)).toEqual([1])
    expect(third.selected.id).toBe(again.selected.id)
    expect(third.selected.devLoss).toBeCloseTo(again.selected.devLoss!, 4)
    expect(lines(file).map((l) => l.type)).toEqual(['search', 'trial', 'trial', 'trial', 'trial'])
  })

  it('refuses to resume with other settings (ERR_INVALID_CONFIG) and leaves the file alone', async () => {
    const file = join(out, 'trials.jsonl')
    const before = readFileSync(file, 'utf8')
    await expect(search({ ...base(out), seed: 7 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'seed' })
    await expect(search({ ...base(out), devSize: 3 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'data' })
    await expect(search({ ...base(out), space: { ...base(out).space, rank: [4] } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'space' })
    expect(readFileSync(file, 'utf8')).toBe(before)
    // Missing test data fails before anything is trained or written.
    const fresh = join(ws.root, 'no-test-data')
    await expect(search({ ...base(fresh), testTasks: ['piqa'] })).rejects.toMatchObject({ code: 'ERR_IO' })
    expect(existsSync(fresh)).toBe(false)
  })

  it('abort stops the search with ERR_ABORTED; finished trials stay for the resume', async () => {
    const dir = join(ws.root, 'aborted')
    const controller = new AbortController()
    const run = search({ ...base(dir), signal: controller.signal, onProgress: (e) => (e.type === 'trial-end' ? controller.abort() : undefined) })
    await expect(run).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(lines(join(dir, 'trials.jsonl')).map((l) => l.type)).toEqual(['search', 'trial'])
    const events: SearchProgressEvent[] = []
    await search({ ...base(dir), onProgress: (e) => events.push(e) })
    expect([count(events, 'trial-skip'), count(events, 'trial-start')]).toEqual([1, 3])
  })
})

describe('reft search', () => {
  const reft = (...args: string[]) => spawnSync('npx', ['tsx', 'src/cli.ts', 'search', ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000 })
  const out = join(ws.root, 'cli-search')
  const args = ['--model', ws.modelDir, '--data-dir', dataDir, '--train', 'boolq', '--dev-size', '4', '--trials', '3', '--layers', 'middle,all',
    '--positions', 'l1,f1+l1', '--rank', '2', '--lr', '0.01,0.03', '--epochs', '2', '--max-new-tokens', '3', '--output', out]

  it('prints the selection and writes the reports; a rerun resumes; other flags are refused', () => {
    const r = reft(...args, '--eval-test', '--test-limit', '2')
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^search: 3 trials, rungs 3 @ 1\/3 → 1 @ 1; 10 train \/ 4 dev examples; dev metric accuracy$/m)
    expect(r.stderr).toMatch(/^rung 0 done: best trial \d, dev acc /m)
    expect(r.stdout).toMatch(/^selected: loreft layers=(all|middle) pos=(l1|f1\+l1) rank=2 lr=0.0[13] epochs=2 \(trial \d; dev acc \d+\.\d% \(\d\/4\), loss \d+\.\d{4}\)$/m)
    expect(r.stdout).toMatch(/^\| selected: .* \| boolq \| 2 \| /m)
    for (const f of ['trials.jsonl', 'search.json', 'search.md', 'adapter/reft_config.json']) expect(existsSync(join(out, f)), f).toBe(true)

    const again = reft(...args, '--eval-test', '--test-limit', '2')
    expect(again.status, again.stderr).toBe(0)
    expect(again.stderr).toMatch(/4 finished runs found in the trials file/)
    expect(again.stderr).not.toMatch(/^step /m)
    expect(again.stdout).toBe(r.stdout)

    const other = reft(...args, '--seed', '3')
    expect(other.status).toBe(1)
    expect(other.stderr).toMatch(/^error \[ERR_INVALID_CONFIG\]: .*trials\.jsonl belongs to a different search \(seed: 42 there, 3 now\)/m)
  })
})

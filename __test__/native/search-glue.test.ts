/**
 * `search` and `reft search --glue` end to end on the tiny random encoder (`createTinyEncoder`:
 * BERT, 2 layers, hidden 32) with a small SST-2-shaped data directory written by the test: the
 * rungs on a dev slice cut from the train split, dev scoring with the task's metric, the default
 * configuration (checked to be exactly `reft glue train`'s training on the same rows), the test
 * half, the paired comparison, the trials file and reports, resume, refusals, and STS-B's
 * Pearson path. The tiny model is random, so these check plumbing, not which configuration wins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  budgetSteps,
  createTinyEncoder,
  createTinyModel,
  evaluate,
  evaluateGlue,
  glueRecipe,
  glueRecipeIntervention,
  loadGlueSplits,
  loadModel,
  search,
  stepsPerEpoch,
  train,
  wilsonInterval,
  type GlueTestRecord,
  type Model,
  type SearchOptions,
  type SearchProgressEvent,
} from '../../src/index.js'
import { glueWords, writeTinySst2 } from './helpers.js'

const repo = resolve(import.meta.dirname, '../..')
const root = mkdtempSync(join(tmpdir(), 'reft-search-glue-'))
const encDir = join(root, 'encoder')
const decDir = join(root, 'decoder')
const dataDir = join(root, 'data')
let model: Model

const words = glueWords
beforeAll(async () => {
  createTinyEncoder(encDir, 3)
  createTinyModel(decDir, 0)
  writeTinySst2(dataDir)
  const sts = (n: number) => Array.from({ length: n }, (_, i) => `${i}\tg\tx\tx\tx\tx\tx\ta ${words[i % 8]}\tthe ${words[(i * 3) % 8]}\t${((i * 7) % 11) / 2}`)
  mkdirSync(join(dataDir, 'glue', 'STS-B'), { recursive: true })
  const stsHeader = 'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore'
  writeFileSync(join(dataDir, 'glue', 'STS-B', 'train.tsv'), [stsHeader, ...sts(20)].join('\n') + '\n')
  writeFileSync(join(dataDir, 'glue', 'STS-B', 'dev.tsv'), [stsHeader, ...sts(10)].join('\n') + '\n')
  model = await loadModel(encDir)
})
afterAll(() => {
  model?.dispose()
  rmSync(root, { recursive: true, force: true })
})

const base = (outputDir: string): SearchOptions => ({
  model,
  data: { glue: 'sst2', limit: 30 },
  dataDir,
  outputDir,
  space: { layers: ['all', 'middle'], positions: ['f1', 'f3'], rank: [1], lr: [0.01, 0.05], epochs: [2] },
  trials: 3,
  devSize: 6,
  train: { batchSize: 4 },
})
const full = { evalTest: true, compareDefault: true }
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
const count = (events: SearchProgressEvent[], type: SearchProgressEvent['type']) => events.filter((e) => e.type === type).length

describe('GLUE search on the tiny encoder', () => {
  const out = join(root, 'search-sst2')

  it('runs the rungs on the dev slice with the task metric, trains the default and scores both on the test half', async () => {
    const events: SearchProgressEvent[] = []
    const r = await search({ ...base(out), ...full, onProgress: (e) => events.push(e) })
    // limit 30, dev 6 → 24 training rows; batch 4 → 6 steps per epoch; epochs 2 → a full run is 12 steps.
    expect(events.find((e) => e.type === 'plan')).toMatchObject({ trials: 3, trainSize: 24, devSize: 6, devMetric: 'accuracy', resumed: 0 })
    const fullSteps = 2 * stepsPerEpoch(24, 4)
    expect(r.rungs.map((o) => [o.rung.trials, o.rung.budget, o.ranked.length])).toEqual([[3, 1 / 3, 3], [1, 1, 1]])
    for (const o of r.rungs) for (const t of o.ranked) expect(t.steps).toBe(budgetSteps(o.rung.budget, fullSteps))
    expect(r.selected.id).toBe(r.rungs[0]!.promoted[0])
    for (const t of r.rungs.flatMap((o) => o.ranked)) {
      expect(t).toMatchObject({ devN: 6 })
      expect(t.score).toBe(t.devCorrect! / 6)
      expect((t as { devMetrics?: { accuracy: number } }).devMetrics?.accuracy).toBe(t.score)
      expect(Number.isFinite(t.devLoss)).toBe(true)
      // LoReFT rank 1 on hidden 32 (2·32 + 1 = 65 values), one untied prefix intervention per layer.
      expect(t.params).toBe(t.config.layers === 'all' ? 130 : 65)
    }
    // The default: the SST-2 LoReFT recipe (rank 1, every layer, p3 = f3) at lr 1e-2 and 3 epochs.
    expect(r.default).toMatchObject({ config: { kind: 'loreft', layers: 'all', positions: 'f3', rank: 1, lr: 0.01, epochs: 3 }, steps: 18, devN: 6, params: 130 })
    expect(count(events, 'train')).toBe(3 * 4 + 12 + 18)

    expect(lines(r.trialsFile).map((l) => l.type)).toEqual(['search', 'trial', 'trial', 'trial', 'trial', 'default', 'glue-test', 'glue-test'])
    const header = lines(r.trialsFile)[0] as { settings: { data: unknown; train: unknown } }
    expect(header.settings.data).toMatchObject({ glue: 'sst2', limit: 30, train: 24, dev: 6 })
    // The default dev source is not written: searches from before --dev-source keep their fingerprint.
    expect(Object.keys(header.settings.data as object).sort()).toEqual(['dev', 'devShuffle', 'digest', 'glue', 'limit', 'train'])
    // Recipe settings: SST-2 warmup 0.1, dropout 0.1, untied; the tiny encoder takes 127 tokens.
    expect(header.settings.train).toMatchObject({ batchSize: 4, warmupRatio: 0.1, weightDecay: 0, dropout: 0.1, tied: false, maxLength: 127 })

    // The test half: 6 of the 12 validation rows, as reft glue train splits them.
    const splits = loadGlueSplits('sst2', { dataDir, seed: 42, trainLimit: 24 })
    const tests = r.test as GlueTestRecord[]
    expect(tests.map((t) => [t.type, t.which, t.task, t.n, t.predictions.length])).toEqual([['glue-test', 'selected', 'sst2', 6, 6], ['glue-test', 'default', 'sst2', 6, 6]])
    for (const t of tests) {
      const correct = t.predictions.filter((p, i) => p === splits.test[i]!.label).length
      expect([t.correct, t.primary, t.metrics.accuracy]).toEqual([correct, correct / 6, correct / 6])
      expect(t.ci95).toEqual(wilsonInterval(correct, 6))
    }
    expect(r.comparison).toHaveLength(1)
    expect(r.comparison[0]).toMatchObject({ task: 'sst2', metric: 'accuracy', selected: tests[0]!.primary, default: tests[1]!.primary, resamples: 2000 })
    expect(r.comparison[0]!.difference).toBeCloseTo(tests[0]!.primary! - tests[1]!.primary!, 12)

    // The default run is `reft glue train`'s training on the same 24 rows (its last epoch): same predictions.
    const recipe = glueRecipe('sst2')
    using reft = model.withInterventions(glueRecipeIntervention(recipe), { seed: 42, head: { numLabels: 2 } })
    await train(reft, reft.classificationDataset(splits.train, { maxLength: 127 }), { epochs: 3, batchSize: 4, lr: 0.01, warmupRatio: recipe.warmupRatio, weightDecay: 0, seed: 42 })
    const direct = await evaluateGlue(reft, 'sst2', splits.test, { maxLength: 127 })
    expect(tests[1]!.predictions).toEqual(direct.predictions.map((p) => p.prediction))
    // The dev loss is continuous, so it pins the weights down more tightly than 6 predictions.
    const devRows = loadGlueSplits('sst2', { dataDir, seed: 42, trainLimit: 30 }).train.slice(24)
    const devLoss = await evaluate(reft, reft.classificationDataset(devRows, { maxLength: 127 }), { batchSize: 32 })
    expect(r.default!.devLoss).toBeCloseTo(devLoss, 10)

    const md = readFileSync(r.report.markdown, 'utf8')
    expect(md).toContain('GLUE sst2, a seeded subset of 30 train rows')
    expect(md).toContain('dev slice = the last 6 (subset order, seed 42), never trained on; test = the validation split\'s test half (6 rows)')
    expect(md.match(/^\| 0 \| 1\/3 \| 4 \| \d \| loreft \|/gm)).toHaveLength(3)
    expect(md).toMatch(/^\| default: loreft layers=all pos=f3 rank=1 lr=0.01 epochs=3 \| sst2 \| 6 \| \d+\.\d \(\d\/6\) \| \d+\.\d–\d+\.\d \| — \|$/m)
    expect(md).toMatch(/^Selected vs default: sst2 accuracy: selected \d+\.\d − default \d+\.\d = [+-]\d+\.\d \(paired bootstrap 95% CI /m)
    const json = JSON.parse(readFileSync(r.report.json, 'utf8')) as { glue: unknown; comparison: unknown[] }
    expect(json.glue).toEqual({ task: 'sst2', limit: 30, primaryMetric: 'accuracy', testSize: 6, devSource: 'train' })
    expect(json.comparison).toHaveLength(1)
    expect(existsSync(join(out, 'adapter', 'reft_config.json'))).toBe(true)
  })

  it('a rerun resumes everything; a truncated file reruns only what is missing', async () => {
    const file = join(out, 'trials.jsonl')
    const before = readFileSync(file, 'utf8')
    const events: SearchProgressEvent[] = []
    const again = await search({ ...base(out), ...full, onProgress: (e) => events.push(e) })
    expect([count(events, 'trial-start'), count(events, 'train'), count(events, 'trial-skip'), count(events, 'test-start')]).toEqual([0, 0, 5, 0])
    expect(events.filter((e) => e.type === 'test-end').map((e) => (e as { resumed: boolean }).resumed)).toEqual([true, true])
    expect(readFileSync(file, 'utf8')).toBe(before)

    // Keep the header and rung 0: only the last rung runs again, with the same result.
    writeFileSync(file, before.split('\n').slice(0, 4).join('\n') + '\n')
    const partial: SearchProgressEvent[] = []
    const third = await search({ ...base(out), onProgress: (e) => partial.push(e) })
    expect(partial.filter((e) => e.type === 'trial-start').map((e) => (e as { rung: number }).rung)).toEqual([1])
    expect(third.selected.id).toBe(again.selected.id)
    expect(third.selected.score).toBe(again.selected.score)
    expect(third.selected.devLoss).toBeCloseTo(again.selected.devLoss!, 5)
    expect(lines(file).map((l) => l.type)).toEqual(['search', 'trial', 'trial', 'trial', 'trial'])
  })

  it('refuses other settings, wrong models and options that do not apply, before writing anything', async () => {
    const file = join(out, 'trials.jsonl')
    const before = readFileSync(file, 'utf8')
    // The seed also draws the train subset, so the data is the first setting that differs.
    await expect(search({ ...base(out), seed: 7 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'data' })
    await expect(search({ ...base(out), halving: { eta: 2 } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'rungs' })
    await expect(search({ ...base(out), train: { batchSize: 4, dropout: 0 } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'train' })
    await expect(search({ ...base(out), data: { glue: 'sst2', limit: 31 } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'data' })
    expect(readFileSync(file, 'utf8')).toBe(before)

    const fresh = join(root, 'never')
    using decoder = await loadModel(decDir)
    await expect(search({ ...base(fresh), model: decoder })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_MODEL' })
    await expect(search({ ...base(fresh), data: { trainingSet: 'boolq' } })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_MODEL' })
    await expect(search({ ...base(fresh), data: { glue: 'mnli' } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'task' })
    await expect(search({ ...base(fresh), testTasks: ['boolq'] })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'testTasks' })
    await expect(search({ ...base(fresh), devMetric: 'pearson' })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'devMetric' })
    await expect(search({ ...base(fresh), eval: { maxNewTokens: 8 } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'eval.maxNewTokens' })
    await expect(search({ ...base(fresh), devSize: 30 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', field: 'devSize' })
    // QNLI's train split is not in this data directory.
    await expect(search({ ...base(fresh), data: { glue: 'qnli' } })).rejects.toMatchObject({ code: 'ERR_IO' })
    expect(existsSync(fresh)).toBe(false)
  })

  it('STS-B ranks by Pearson and gives the test score a bootstrap interval', async () => {
    const r = await search({
      model, data: { glue: 'stsb' }, dataDir, outputDir: join(root, 'search-stsb'), devSize: 5, halving: false, trials: 2,
      space: { layers: ['all'], positions: ['f1'], rank: [1], lr: [0.01, 0.03], epochs: [1] }, train: { batchSize: 5 }, evalTest: true,
    })
    expect(r.devMetric).toBe('pearson')
    for (const t of r.rungs[0]!.ranked) {
      const m = (t as { devMetrics?: { pearson: number; spearmanr: number } }).devMetrics!
      expect(t.score === null ? Number.isNaN(m.pearson) : t.score === m.pearson).toBe(true)
      expect(t.devN).toBeUndefined()
    }
    const [test] = r.test as GlueTestRecord[]
    expect(test).toMatchObject({ task: 'stsb', primaryMetric: 'pearson', n: 5, limit: null })
    expect(test!.correct).toBeUndefined()
    expect(test!.predictions.every((p) => typeof p === 'number' && !Number.isInteger(p))).toBe(true)
    if (test!.primary !== null) {
      expect(test!.ci95).not.toBeNull()
      expect(test!.ci95![0]).toBeLessThanOrEqual(test!.ci95![1])
    }
    expect(r.comparison).toEqual([])
  })
})

describe('reft search --glue (CLI)', () => {
  function reft(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('npx', ['tsx', 'src/cli.ts', 'search', ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...process.env, REFT_DATA_DIR: dataDir } })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }

  it('runs a search and prints the selection, the test table and the comparison', () => {
    const out = join(root, 'cli-search')
    const r = reft('--glue', 'sst2', '--model', encDir, '--limit', '20', '--dev-size', '4', '--trials', '2', '--no-halving', '--layers', 'all',
      '--positions', 'f1,f3', '--rank', '1', '--lr', '0.01', '--epochs', '1', '--batch-size', '8', '--eval-test', '--compare-default', '--output', out)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^selected: loreft layers=all pos=f[13] rank=1 lr=0.01 epochs=1 \(trial [01]; dev acc \d+\.\d% \(\d\/4\), loss /m)
    expect(r.stdout).toMatch(/^default: {2}loreft layers=all pos=f3 rank=1 lr=0.01 epochs=3 /m)
    expect(r.stdout).toMatch(/^\| selected: .* \| sst2 \| 6 \| /m)
    expect(r.stdout).toMatch(/^selected vs default: sst2 accuracy: /m)
    expect(lines(join(out, 'trials.jsonl')).filter((l) => l.type === 'glue-test')).toHaveLength(2)
  })

  it('usage errors name the problem', () => {
    const both = reft('--glue', 'sst2', '--train', 'boolq')
    expect(both.status).toBe(1)
    expect(both.stderr).toMatch(/ERR_INVALID_CONFIG.*--glue.*one of --train SET, --data FILE or --glue TASK/)
    expect(reft('--glue', 'mnli', '--model', encDir).stderr).toMatch(/ERR_INVALID_CONFIG.*unknown GLUE task "mnli"/)
    expect(reft('--glue', 'sst2', '--scoring', 'pyreft').stderr).toMatch(/ERR_INVALID_CONFIG.*--scoring/)
    expect(reft('--glue', 'sst2', '--dev-source', 'eval-half', '--dev-size', '4').stderr).toMatch(/ERR_INVALID_CONFIG.*--dev-size.*not with --dev-source eval-half/)
    const decoder = reft('--glue', 'sst2', '--model', decDir, '--output', join(root, 'never-cli'))
    expect(decoder.status).toBe(1)
    expect(decoder.stderr).toMatch(/ERR_UNSUPPORTED_MODEL.*reft search --glue needs an encoder/)
    expect(existsSync(join(root, 'never-cli'))).toBe(false)
    expect(reft('--help').stdout).toMatch(/--glue TASK/)
  })
})

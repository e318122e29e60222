/**
 * GLUE searches ranked on the validation split's eval half (`devSource: 'eval-half'`, CLI
 * `--dev-source eval-half`) on the tiny random encoder (`createTinyEncoder`) with a small
 * SST-2-shaped data directory: trials train on every row of `reft glue train --train-limit`'s
 * subset, the dev numbers are the eval half's (checked against a direct `reft glue train`-style
 * run), the test half stays disjoint and is used only for the final scores; resume, the
 * fingerprint, and refusals. The model is random, so these check plumbing, not which config wins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
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
  type GlueTestRecord,
  type Model,
  type SearchOptions,
  type SearchProgressEvent,
} from '../../src/index.js'
import { glueWords, writeTinySst2 } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'reft-search-eval-half-'))
const encDir = join(root, 'encoder')
const decDir = join(root, 'decoder')
const dataDir = join(root, 'data')
let model: Model

const words = glueWords
beforeAll(async () => {
  createTinyEncoder(encDir, 3)
  createTinyModel(decDir, 0)
  writeTinySst2(dataDir)
  model = await loadModel(encDir)
})
afterAll(() => {
  model?.dispose()
  rmSync(root, { recursive: true, force: true })
})

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
const count = (events: SearchProgressEvent[], type: SearchProgressEvent['type']) => events.filter((e) => e.type === type).length

describe('GLUE search ranked on the eval half (devSource eval-half)', () => {
  const out = join(root, 'search-eval-half')
  // 40 train rows (subset of 30) and 12 validation rows (6 eval, 6 test); no halving, 2 trials.
  const opts = (dir = out): SearchOptions => ({
    model, data: { glue: 'sst2', limit: 30 }, dataDir, outputDir: dir, devSource: 'eval-half', halving: false, trials: 2,
    space: { layers: ['all', 'middle'], positions: ['f1', 'f3'], rank: [1], lr: [0.01, 0.05], epochs: [2] }, train: { batchSize: 4 },
    evalTest: true, compareDefault: true,
  })

  it("trains on reft glue train --train-limit 30's rows, ranks on the eval half and tests on the disjoint test half", async () => {
    const events: SearchProgressEvent[] = []
    const r = await search({ ...opts(), onProgress: (e) => events.push(e) })
    // All 30 subset rows train; the 12 validation rows split 6 eval / 6 test.
    expect(events.find((e) => e.type === 'plan')).toMatchObject({ trials: 2, trainSize: 30, devSize: 6, devMetric: 'accuracy' })
    const splits = loadGlueSplits('sst2', { dataDir, seed: 42, trainLimit: 30 })
    expect(splits.eval.map((e) => e.idx).filter((i) => splits.test.some((t) => t.idx === i))).toEqual([])
    const trials = r.rungs[0]!.ranked
    expect(trials).toHaveLength(2)
    for (const t of trials) expect(t).toMatchObject({ devN: 6, budget: 1, steps: 2 * stepsPerEpoch(30, 4) })
    expect(r.selected.score).toBe(Math.max(...trials.map((t) => t.score!)))
    const header = lines(r.trialsFile)[0] as { settings: { data: Record<string, unknown> } }
    expect(header.settings.data).toMatchObject({ glue: 'sst2', limit: 30, train: 30, dev: 6, devSource: 'eval-half' })

    // The default run is reft glue train --train-limit 30 on the same rows; its dev numbers are the eval half's.
    const recipe = glueRecipe('sst2')
    using reft = model.withInterventions(glueRecipeIntervention(recipe), { seed: 42, head: { numLabels: 2 } })
    await train(reft, reft.classificationDataset(splits.train, { maxLength: 127 }), { epochs: 3, batchSize: 4, lr: 0.01, warmupRatio: recipe.warmupRatio, weightDecay: 0, seed: 42 })
    const onEval = await evaluateGlue(reft, 'sst2', splits.eval, { maxLength: 127 })
    expect(r.default!.devCorrect).toBe(onEval.predictions.filter((p) => p.prediction === p.label).length)
    const evalLoss = await evaluate(reft, reft.classificationDataset(splits.eval, { maxLength: 127 }), { batchSize: 32 })
    const testLoss = await evaluate(reft, reft.classificationDataset(splits.test, { maxLength: 127 }), { batchSize: 32 })
    expect(r.default!.devLoss).toBeCloseTo(evalLoss, 10)
    expect(Math.abs(r.default!.devLoss! - testLoss)).toBeGreaterThan(1e-6)
    // The test records are scored on the test half.
    const tests = r.test as GlueTestRecord[]
    expect(tests.map((t) => [t.which, t.n])).toEqual([['selected', 6], ['default', 6]])
    const onTest = await evaluateGlue(reft, 'sst2', splits.test, { maxLength: 127 })
    expect(tests[1]!.predictions).toEqual(onTest.predictions.map((p) => p.prediction))

    const md = readFileSync(r.report.markdown, 'utf8')
    expect(md).toContain("30 to train on; dev = the validation split's eval half (6 rows, pyreft's model-selection half); test = the validation split's test half (6 rows)")
    expect((JSON.parse(readFileSync(r.report.json, 'utf8')) as { glue: unknown }).glue).toMatchObject({ devSource: 'eval-half', testSize: 6 })
  })

  it('resumes with the same source and refuses another one', async () => {
    const file = join(out, 'trials.jsonl')
    const before = readFileSync(file, 'utf8')
    const events: SearchProgressEvent[] = []
    await search({ ...opts(), onProgress: (e) => events.push(e) })
    expect([count(events, 'trial-start'), count(events, 'train'), count(events, 'trial-skip'), count(events, 'test-start')]).toEqual([0, 0, 3, 0])
    expect(readFileSync(file, 'utf8')).toBe(before)
    // The train source (explicit or by default) is another search.
    await expect(search({ ...opts(), devSource: 'train', devSize: 6 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'data' })
    await expect(search({ ...opts(), devSource: undefined, devSize: 6 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'data' })
    expect(readFileSync(file, 'utf8')).toBe(before)
  })

  it('refuses devSize / devShuffle with the eval half, and devSource on a generation search, before writing anything', async () => {
    const fresh = join(root, 'never-eval-half')
    await expect(search({ ...opts(fresh), devSize: 6 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'devSize' })
    await expect(search({ ...opts(fresh), devShuffle: true })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'devShuffle' })
    await expect(search({ ...opts(fresh), devSource: 'test-half' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'devSource' })
    using decoder = await loadModel(decDir)
    const examples = Array.from({ length: 8 }, (_, i) => ({ prompt: `q${i}`, output: `a${i}` }))
    await expect(search({ model: decoder, data: { examples }, devSize: 2, devSource: 'eval-half', outputDir: fresh })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'devSource' })
    expect(existsSync(fresh)).toBe(false)
  })
})

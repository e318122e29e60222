/**
 * GLUE searches without a model: the data split (a seeded subset of the train split whose first
 * rows are `reft glue train --train-limit`'s, a dev slice never in the training part, the
 * validation split's test half), the default configuration per task, bootstrap intervals, the
 * report's GLUE rows, and `reft search --glue` flag parsing and refusals.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseFlags } from '../src/cli/common.js'
import { searchFlags, searchHelp, searchOptionsFromFlags } from '../src/cli/search.js'
import { bootstrapInterval, loadGlueSplits, pairedBootstrap } from '../src/glue/index.js'
import { describeScore } from '../src/search/report.js'
import {
  formatComparison,
  formatTestTable,
  glueDefaultTrialConfig,
  splitGlueSearchData,
  type GlueTestRecord,
  type TrialRecord,
} from '../src/search/index.js'

let dataDir: string
beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'reft-search-glue-data-'))
  mkdirSync(join(dataDir, 'glue', 'SST-2'), { recursive: true })
  const rows = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag} ${i}\t${i % 3 === 0 ? 1 : 0}`)
  writeFileSync(join(dataDir, 'glue', 'SST-2', 'train.tsv'), ['sentence\tlabel', ...rows(50, 'train')].join('\n') + '\n')
  writeFileSync(join(dataDir, 'glue', 'SST-2', 'dev.tsv'), ['sentence\tlabel', ...rows(20, 'dev')].join('\n') + '\n')
})
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

describe('splitGlueSearchData', () => {
  it('trains on the rows of reft glue train --train-limit (limit - devSize); the dev slice is the rest of the subset', () => {
    const s = splitGlueSearchData({ glue: 'SST-2', limit: 30, dataDir }, { devSize: 10 })
    expect(s.name).toBe('sst2')
    expect(s.task.name).toBe('sst2')
    const glueTrain = loadGlueSplits('sst2', { dataDir, seed: 42, trainLimit: 20 })
    expect(s.train).toEqual(glueTrain.train)
    // A seeded subset, not the file's first rows.
    expect(s.train.map((e) => e.idx)).not.toEqual(Array.from({ length: 20 }, (_, i) => i))
    expect(s.dev).toHaveLength(10)
    const trained = new Set(s.train.map((e) => e.idx))
    expect(s.dev.some((e) => trained.has(e.idx))).toBe(false)
    expect(s.dev).toEqual(loadGlueSplits('sst2', { dataDir, seed: 42, trainLimit: 30 }).train.slice(20))
    // The test half is the one reft glue train reports on (10 of 20 validation rows).
    expect(s.test).toEqual(glueTrain.test)
    expect(s.test).toHaveLength(10)
    expect(s.test[0]!.text).toMatch(/^dev /)
  })

  it('without a limit takes the file order; testLimit keeps the first rows of the test half; seeds change the subset', () => {
    const s = splitGlueSearchData({ glue: 'sst2', dataDir }, { devSize: 5, testLimit: 3 })
    expect(s.train.map((e) => e.idx)).toEqual(Array.from({ length: 45 }, (_, i) => i))
    expect(s.dev.map((e) => e.idx)).toEqual([45, 46, 47, 48, 49])
    expect(s.test).toEqual(loadGlueSplits('sst2', { dataDir, seed: 42, skipTrain: true }).test.slice(0, 3))
    const plain = splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSize: 10 })
    expect(splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSize: 10, seed: 7 }).train).not.toEqual(plain.train)
    // devShuffle reshuffles the same 30 rows before cutting.
    const shuffled = splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSize: 10, devShuffle: true })
    const ids = (x: typeof plain) => [...x.train, ...x.dev].map((e) => e.idx).sort((a, b) => a - b)
    expect(ids(shuffled)).toEqual(ids(plain))
    expect(shuffled.dev).not.toEqual(plain.dev)
  })

  it("eval-half: trains on all of reft glue train --train-limit's rows and ranks on the validation eval half, never the test half", () => {
    const s = splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSource: 'eval-half' })
    const glue = loadGlueSplits('sst2', { dataDir, seed: 42, trainLimit: 30 })
    expect(s.devSource).toBe('eval-half')
    // No train row is held out: the 30 rows reft glue train --train-limit 30 trains on.
    expect(s.train).toEqual(glue.train)
    expect(s.train).toHaveLength(30)
    // Dev = the eval half (10 of the 20 validation rows), disjoint from the test half; together they are the whole split.
    expect(s.dev).toEqual(glue.eval)
    expect(s.dev).toHaveLength(10)
    expect(s.dev.every((e) => e.text.startsWith('dev '))).toBe(true)
    expect(s.test).toEqual(glue.test)
    const testIds = new Set(s.test.map((e) => e.idx))
    expect(s.dev.some((e) => testIds.has(e.idx))).toBe(false)
    expect([...s.dev, ...s.test].map((e) => e.idx).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i))
    // The default source ranks on train rows instead, and its split says so.
    const fromTrain = splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSize: 10 })
    expect(fromTrain.devSource).toBe('train')
    expect(fromTrain.dev.every((e) => e.text.startsWith('train '))).toBe(true)
    // Another seed cuts another eval half; testLimit trims the test half only.
    expect(splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSource: 'eval-half', seed: 7 }).dev).not.toEqual(s.dev)
    const trimmed = splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSource: 'eval-half', testLimit: 4 })
    expect([trimmed.dev, trimmed.test]).toEqual([glue.eval, glue.test.slice(0, 4)])
  })

  it('eval-half refuses devSize and devShuffle; unknown sources are refused', () => {
    expect(() => splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSource: 'eval-half', devSize: 10 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'devSize' }),
    )
    expect(() => splitGlueSearchData({ glue: 'sst2', limit: 30, dataDir }, { devSource: 'eval-half', devShuffle: true })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'devShuffle' }),
    )
    expect(() => splitGlueSearchData({ glue: 'sst2', dataDir }, { devSource: 'test-half' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'devSource' }),
    )
  })

  it('refuses a dev slice that leaves nothing, unknown tasks and missing files', () => {
    expect(() => splitGlueSearchData({ glue: 'sst2', limit: 10, dataDir }, { devSize: 10 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', field: 'devSize' }))
    expect(() => splitGlueSearchData({ glue: 'mnli', dataDir })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }))
    expect(() => splitGlueSearchData({ glue: 'rte', dataDir })).toThrow(expect.objectContaining({ code: 'ERR_IO' }))
    expect(() => splitGlueSearchData({ glue: 'sst2', limit: 0, dataDir })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', field: 'limit' }))
  })
})

describe('GLUE defaults', () => {
  it("the default configuration is each task's LoReFT recipe (rank 1, every layer, its prefix positions) at lr 1e-2, 3 epochs", () => {
    expect(glueDefaultTrialConfig('sst2')).toEqual({ kind: 'loreft', layers: 'all', positions: 'f3', rank: 1, lr: 0.01, epochs: 3 })
    expect(glueDefaultTrialConfig('qnli').positions).toBe('f11')
    expect(glueDefaultTrialConfig('STS-B').positions).toBe('f3')
  })
})

describe('bootstrap intervals', () => {
  const refs = Array.from({ length: 200 }, (_, i) => (i % 5 < 2 ? 1 : 0))
  const good = refs.map((r, i) => (i % 10 === 0 ? 1 - r : r)) // 90% correct
  const poor = refs.map((r, i) => (i % 2 === 0 ? 1 - r : r)) // 50% correct

  it('a percentile interval around the metric, the same for the same seed', () => {
    const ci = bootstrapInterval('sst2', good, refs)!
    expect(ci[0]).toBeLessThan(0.9)
    expect(ci[1]).toBeGreaterThan(0.9)
    expect(ci[1] - ci[0]).toBeGreaterThan(0.04)
    expect(ci[1] - ci[0]).toBeLessThan(0.12)
    expect(bootstrapInterval('sst2', good, refs)).toEqual(ci)
    // One resample: both ends are that resample's accuracy, a multiple of 1/200 near 0.9.
    const [lo, hi] = bootstrapInterval('sst2', good, refs, { resamples: 1, seed: 3 })!
    expect(lo).toBe(hi)
    expect(Math.abs(lo - 0.9)).toBeLessThan(0.1)
    expect(Number.isInteger(Math.round(lo * 200 * 1e6) / 1e6)).toBe(true)
    // Constant STS-B predictions: Pearson is undefined on every resample.
    expect(bootstrapInterval('stsb', refs.map(() => 2), refs.map((r, i) => r + i / 100))).toBeNull()
  })

  it('paired: zero for identical predictions, clearly positive when one model dominates', () => {
    expect(pairedBootstrap('sst2', good, good, refs)).toMatchObject({ difference: 0, ci95: [0, 0], aBetter: 0, resamples: 2000 })
    const p = pairedBootstrap('sst2', good, poor, refs, { resamples: 500 })
    expect(p.difference).toBeCloseTo(0.4, 12)
    expect(p.ci95![0]).toBeGreaterThan(0.3)
    expect(p.aBetter).toBe(1)
    const q = pairedBootstrap('sst2', poor, good, refs, { resamples: 500 })
    expect(q.ci95![1]).toBeLessThan(-0.3)
    expect(() => pairedBootstrap('sst2', good, poor.slice(1), refs)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
  })
})

describe('GLUE rows of the report', () => {
  const config = { kind: 'loreft' as const, layers: 'all' as const, positions: 'f3', rank: 1, lr: 0.01, epochs: 3 }
  const rec = (which: 'selected' | 'default', primary: number, correct: number): GlueTestRecord => ({
    type: 'glue-test', which, config, task: 'sst2', limit: null, n: 436, metrics: { accuracy: primary }, primaryMetric: 'accuracy', primary, correct,
    ci95: [primary - 0.04, primary + 0.04], predictions: [], seconds: 1,
  })

  it('test table, comparison line and non-accuracy dev scores', () => {
    const table = formatTestTable([rec('selected', 0.75, 327), rec('default', 0.711, 310)])
    expect(table).toContain('| configuration | task (test half) | n | accuracy ×100 | 95% CI | other metrics |')
    expect(table).toContain('| default: loreft layers=all pos=f3 rank=1 lr=0.01 epochs=3 | sst2 | 436 | 71.1 (310/436) | 67.1–75.1 | — |')
    const line = formatComparison({ task: 'sst2', metric: 'accuracy', selected: 0.75, default: 0.711, difference: 0.039, ci95: [0.01, 0.07], selectedBetter: 0.995, resamples: 2000 })
    expect(line).toBe('sst2 accuracy: selected 75.0 − default 71.1 = +3.9 (paired bootstrap 95% CI +1.0 to +7.0; selected higher in 99.5% of 2000 resamples)')
    const trial = { type: 'trial', id: 0, rung: 0, config, budget: 1, steps: 3, score: 0.413, devLoss: 0.6, trainLoss: null, params: 1, seconds: 1 } as TrialRecord
    expect(describeScore(trial, 'matthews_correlation')).toBe('dev MCC 41.3, loss 0.6000')
    expect(describeScore({ ...trial, score: null }, 'pearson')).toBe('dev Pearson undefined, loss 0.6000')
  })
})

describe('reft search --glue flags', () => {
  const opts = (...args: string[]) => searchOptionsFromFlags(parseFlags(args, searchFlags, false))

  it('maps --glue, --limit, --eval-test, --dropout and the space', async () => {
    const o = await opts('--glue', 'SST-2', '--limit', '600', '--dev-size', '100', '--layers', 'all,middle', '--positions', 'f1,f3,f5', '--rank', '1,2,4',
      '--lr', '0.003,0.01,0.03', '--epochs', '3,5', '--dropout', '0', '--eval-test', '--compare-default', '--dev-metric', 'loss')
    expect(o.data).toEqual({ glue: 'sst2', limit: 600 })
    expect(o).toMatchObject({ evalTest: true, compareDefault: true, devSize: 100, devMetric: 'loss', train: { dropout: 0 } })
    expect(o.testTasks).toBeUndefined()
    expect(o.space).toEqual({ layers: ['all', 'middle'], positions: ['f1', 'f3', 'f5'], rank: [1, 2, 4], lr: [0.003, 0.01, 0.03], epochs: [3, 5] })
    expect((await opts('--glue', 'cola', '--dev-metric', 'matthews_correlation')).devMetric).toBe('matthews_correlation')
    expect((await opts('--glue', 'rte')).evalTest).toBe(false)
    // Generation searches are unchanged: no evalTest key.
    expect('evalTest' in (await opts('--train', 'boolq', '--eval-test'))).toBe(false)
    // --dev-source: absent unless given.
    expect('devSource' in o).toBe(false)
    const e = await opts('--glue', 'sst2', '--limit', '500', '--dev-source', 'eval-half', '--no-halving', '--eval-test')
    expect(e).toMatchObject({ data: { glue: 'sst2', limit: 500 }, devSource: 'eval-half', halving: false, evalTest: true })
    expect(e.devSize).toBeUndefined()
    expect((await opts('--glue', 'sst2', '--dev-source', 'train', '--dev-size', '50')).devSource).toBe('train')
  })

  it('refuses --dev-source without --glue, unknown sources, and dev-slice flags with eval-half', async () => {
    await expect(opts('--train', 'boolq', '--dev-source', 'eval-half')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--dev-source', message: expect.stringContaining('--glue') })
    await expect(opts('--glue', 'sst2', '--dev-source', 'test-half')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--dev-source', message: expect.stringContaining("'eval-half'") })
    await expect(opts('--glue', 'sst2', '--dev-source', 'eval-half', '--dev-size', '100')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--dev-size' })
    await expect(opts('--glue', 'sst2', '--dev-source', 'eval-half', '--dev-shuffle')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--dev-shuffle' })
  })

  it('refuses combinations that do not apply, naming the flag', async () => {
    await expect(opts('--glue', 'sst2', '--train', 'boolq')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--glue' })
    await expect(opts('--glue', 'sst2', '--data', 'x.jsonl')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--glue' })
    await expect(opts('--glue', 'mnli')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--glue', message: expect.stringMatching(/unknown GLUE task "mnli"; choose from .*sst2/) })
    for (const flag of [['--max-new-tokens', '8'], ['--scoring', 'pyreft'], ['--test-tasks', 'boolq']]) {
      await expect(opts('--glue', 'sst2', ...flag)).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: flag[0] })
    }
    await expect(opts('--train', 'boolq', '--dropout', '0.1')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--dropout' })
    await expect(opts('--glue', 'sst2', '--dev-metric', 'f1')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--dev-metric' })
    await expect(opts()).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', message: expect.stringContaining('--glue TASK') })
  })

  it('the help names --glue and its defaults', () => {
    expect(searchHelp).toMatch(/^usage: reft search \(--train SET \| --data FILE \| --glue TASK\)/)
    expect(searchHelp).toContain('--glue TASK            or a GLUE task on an encoder (sst2, mrpc, cola, qnli, rte, stsb; see below)')
    expect(searchHelp).toContain('{f1,f3,f5}')
    expect(searchHelp).toMatch(/--dev-source S +--glue only: train \(default; the dev slice above\) \| eval-half/)
  })
})

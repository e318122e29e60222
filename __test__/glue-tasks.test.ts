/**
 * GLUE task specs and loading: names and aliases, label mapping to HF class ids, missing-file and
 * bad-label errors on temporary files, then the real shared files (label distributions from the
 * data README, which match HF `glue`; skipped only where ../shared/data is absent).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { glueFile, glueTaskNames, glueTasks, loadGlueTask, parseGlueLabel, resolveGlueTask, type GlueExample } from '../src/glue/index.js'
import * as root from '../src/index.js'
import { code } from './helpers/error-code.js'

const dataDir = resolve(import.meta.dirname, '../../shared/data')
const noData = !existsSync(join(dataDir, 'glue'))
if (noData) console.warn(`skipping the real GLUE loading checks: ${join(dataDir, 'glue')} does not exist`)
const tmp = mkdtempSync(join(tmpdir(), 'reft-glue-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const write = (rel: string, text: string): void => {
  mkdirSync(join(tmp, rel, '..'), { recursive: true })
  writeFileSync(join(tmp, rel), text)
}

describe('task specs', () => {
  it('covers the six tasks with HF names, GLUE folder names and aliases', () => {
    expect(glueTaskNames).toEqual(['sst2', 'mrpc', 'cola', 'qnli', 'rte', 'stsb'])
    expect(resolveGlueTask('SST-2').name).toBe('sst2')
    expect(resolveGlueTask(' STS-B ').name).toBe('stsb')
    expect(resolveGlueTask('CoLA').name).toBe('cola')
    expect(code(() => resolveGlueTask('mnli'))).toBe('ERR_INVALID_CONFIG')
    expect(glueFile('rte', 'validation')).toBe('glue/RTE/dev.tsv')
    expect(glueFile('sst2', 'train')).toBe('glue/SST-2/train.tsv')
  })
  it('uses pyreft glue_task_to_keys and HF label orders, metrics and head sizes', () => {
    const t = Object.fromEntries(glueTasks.map((s) => [s.name, s]))
    expect(t.cola!.textKeys).toEqual(['sentence'])
    expect(t.qnli!.textKeys).toEqual(['question', 'sentence'])
    expect(t.mrpc!.labelNames).toEqual(['not_equivalent', 'equivalent'])
    expect(t.rte!.labelNames).toEqual(['entailment', 'not_entailment'])
    expect(t.stsb!.numLabels).toBe(1)
    expect(t.stsb!.isRegression).toBe(true)
    expect(t.stsb!.primaryMetric).toBe('pearson')
    expect(t.mrpc!.metrics).toEqual(['accuracy', 'f1'])
    expect(t.cola!.primaryMetric).toBe('matthews_correlation')
    for (const s of glueTasks) if (!s.isRegression) expect(s.labelNames.length).toBe(s.numLabels)
  })
  it('maps file labels to HF ids: entailment 0, not_entailment 1; 0/1 kept; STS-B a float', () => {
    expect(parseGlueLabel('rte', 'entailment')).toBe(0)
    expect(parseGlueLabel('qnli', 'not_entailment')).toBe(1)
    expect(parseGlueLabel('cola', '1')).toBe(1)
    expect(parseGlueLabel('mrpc', '0')).toBe(0)
    expect(parseGlueLabel('stsb', '3.800')).toBe(3.8)
    expect(code(() => parseGlueLabel('rte', 'neutral'))).toBe('ERR_FORMAT')
    expect(code(() => parseGlueLabel('sst2', '2'))).toBe('ERR_FORMAT')
    expect(code(() => parseGlueLabel('sst2', 'toString'))).toBe('ERR_FORMAT')
    expect(code(() => parseGlueLabel('stsb', ''))).toBe('ERR_FORMAT')
    expect(code(() => parseGlueLabel('stsb', '5.5'))).toBe('ERR_FORMAT')
  })
  it('is re-exported from the package root', () => {
    expect(root.loadGlueTask).toBe(loadGlueTask)
    expect(typeof root.splitGlueValidation).toBe('function')
  })
})

describe('loadGlueTask on small files', () => {
  write('glue/RTE/dev.tsv', 'index\tsentence1\tsentence2\tlabel\n0\tA "quoted" premise.\tA hypothesis.\tnot_entailment\n1\tP.\tH.\tentailment\n')
  write('glue/CoLA/train.tsv', 'gj04\t1\t\tGood one.\ngj04\t0\t*\tBad one.')
  write('glue/SST-2/dev.tsv', 'sentence\tlabel\nfine \tpositive\n')
  it('reads pairs with HF ids and row indices', () => {
    expect(loadGlueTask('rte', { split: 'validation', dataDir: tmp })).toEqual<GlueExample[]>([
      { idx: 0, text: 'A "quoted" premise.', textPair: 'A hypothesis.', label: 1 },
      { idx: 1, text: 'P.', textPair: 'H.', label: 0 },
    ])
  })
  it('reads headerless CoLA single sentences (no textPair), default split train, limit', () => {
    const ex = loadGlueTask('cola', { dataDir: tmp })
    expect(ex).toEqual([{ idx: 0, text: 'Good one.', label: 1 }, { idx: 1, text: 'Bad one.', label: 0 }])
    expect('textPair' in ex[0]!).toBe(false)
    expect(loadGlueTask('cola', { dataDir: tmp, limit: 1 })).toHaveLength(1)
    expect(code(() => loadGlueTask('cola', { dataDir: tmp, limit: -1 }))).toBe('ERR_OUT_OF_RANGE')
  })
  it('an unknown label is ERR_FORMAT naming file:line', () => {
    expect(code(() => loadGlueTask('sst2', { split: 'validation', dataDir: tmp }))).toBe('ERR_FORMAT')
    expect(() => loadGlueTask('sst2', { split: 'validation', dataDir: tmp })).toThrow(/SST-2[/\\]dev\.tsv:2/)
  })
  it('a missing file is ERR_IO naming the path and what to put there', () => {
    expect(code(() => loadGlueTask('mrpc', { dataDir: tmp }))).toBe('ERR_IO')
    expect(() => loadGlueTask('qnli', { dataDir: tmp })).toThrow(/QNLI[/\\]train\.tsv.*download_glue_data\.py.*does not ship/)
    expect(code(() => loadGlueTask('rte', { dataDir: join(tmp, 'nope') }))).toBe('ERR_IO')
    expect(code(() => loadGlueTask('rte', { dataDir: tmp, split: 'test' as never }))).toBe('ERR_INVALID_CONFIG')
  })
})

describe.skipIf(noData)('loadGlueTask on the shared GLUE files (needs ../shared/data/glue)', () => {
  const counts = (ex: GlueExample[]): Record<number, number> => {
    const c: Record<number, number> = {}
    for (const e of ex) c[e.label] = (c[e.label] ?? 0) + 1
    return c
  }
  it('every shared split loads with HF row counts', () => {
    for (const spec of glueTasks) {
      for (const split of spec.sharedSplits) expect(loadGlueTask(spec, { split, dataDir }).length, `${spec.name} ${split}`).toBe(spec.rows[split])
    }
  })
  it('label distributions match HF glue (data README)', () => {
    expect(counts(loadGlueTask('rte', { dataDir }))).toEqual({ 0: 1249, 1: 1241 })
    expect(counts(loadGlueTask('rte', { split: 'validation', dataDir }))).toEqual({ 0: 146, 1: 131 })
    expect(counts(loadGlueTask('mrpc', { split: 'validation', dataDir }))).toEqual({ 0: 129, 1: 279 })
    expect(counts(loadGlueTask('cola', { split: 'validation', dataDir }))).toEqual({ 0: 322, 1: 721 })
    expect(counts(loadGlueTask('sst2', { split: 'validation', dataDir }))).toEqual({ 0: 428, 1: 444 })
    expect(counts(loadGlueTask('qnli', { split: 'validation', dataDir }))).toEqual({ 0: 2702, 1: 2761 })
  })
  it('first rows match the README examples', () => {
    const [rte] = loadGlueTask('rte', { dataDir, limit: 1 })
    expect(rte).toEqual({ idx: 0, text: 'No Weapons of Mass Destruction Found in Iraq Yet.', textPair: 'Weapons of Mass Destruction Found in Iraq.', label: 1 })
    const [sts] = loadGlueTask('stsb', { dataDir, limit: 1 })
    expect(sts).toEqual({ idx: 0, text: 'A plane is taking off.', textPair: 'An air plane is taking off.', label: 5 })
    expect(loadGlueTask('sst2', { dataDir, limit: 1 })[0]).toEqual({ idx: 0, text: 'hide new secretions from the parental units ', label: 0 })
    expect(loadGlueTask('mrpc', { dataDir, limit: 1 })[0]!.text).toMatch(/^Amrozi accused his brother, whom he called "the witness"/)
  })
  it('MRPC tokenized dev via file: same labels, SentEval text', () => {
    const plain = loadGlueTask('mrpc', { split: 'validation', dataDir })
    const tok = loadGlueTask('mrpc', { split: 'validation', dataDir, file: 'glue/MRPC/dev_senteval_tokenized.tsv' })
    expect(tok.map((e) => e.label)).toEqual(plain.map((e) => e.label))
    expect(tok.some((e, i) => e.text !== plain[i]!.text)).toBe(true)
  })
  it('STS-B scores lie in [0, 5]', () => {
    const ex = loadGlueTask('stsb', { split: 'validation', dataDir })
    expect(Math.min(...ex.map((e) => e.label))).toBeGreaterThanOrEqual(0)
    expect(Math.max(...ex.map((e) => e.label))).toBeLessThanOrEqual(5)
  })
})

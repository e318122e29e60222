/**
 * Rendering of a search without a model: `search.md` tables (every trial by rung, failed runs,
 * the selection, test rows), `search.json`, and the stderr progress lines in log mode.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  createSearchProgressReporter,
  formatSearchMarkdown,
  halvingRungs,
  resolveSearchSpace,
  writeSearchReport,
  type SearchReport,
  type TrialConfig,
  type TrialRecord,
} from '../src/search/index.js'

const cfg = (rank: number, lr: number): TrialConfig => ({ kind: 'loreft', layers: [0, 2], positions: 'f1+l1', rank, lr, epochs: 2 })
const rec = (id: number, rung: number, budget: number, score: number | null, extra: Partial<TrialRecord> = {}): TrialRecord => ({
  type: 'trial', id, rung, budget, steps: Math.round(9 * budget), config: cfg(id + 1, 1e-3), score, devLoss: score === null ? null : 1 - score,
  devCorrect: score === null ? undefined : Math.round(score * 10), devN: score === null ? undefined : 10,
  trainLoss: null, params: 100 * (id + 1), seconds: 1.25, ...extra,
})

function report(): SearchReport {
  const rungs = halvingRungs(3)
  const r0 = [rec(1, 0, 1 / 3, 0.6), rec(0, 0, 1 / 3, 0.3), rec(2, 0, 1 / 3, null, { failed: 'ERR_NON_FINITE: step 2: loss NaN' })]
  const r1 = [rec(1, 1, 1, 0.7, { adapter: 'trials/trial-1' })]
  return {
    model: 'tiny', data: { name: 'boolq', train: 90, dev: 10, devShuffle: true, seed: 5 }, devMetric: 'accuracy',
    space: resolveSearchSpace({ rank: [1, 2, 3] }), sampling: 'random', gridSize: 54, rungs,
    outcomes: [{ rung: rungs[0]!, ranked: r0, promoted: [1] }, { rung: rungs[1]!, ranked: r1, promoted: [] }],
    selected: r1[0]!, adapter: 'adapter', default: { ...rec(9, -1, 1, 0.5), type: 'default' } as never,
    test: [{ type: 'test', which: 'selected', config: cfg(2, 1e-3), task: 'boolq', limit: 20, maxNewTokens: 32, scoring: 'pyreft', n: 20, correct: 9, accuracy: 0.45, ci95: [0.258, 0.658], seconds: 3 }],
    date: new Date('2026-01-02T03:04:05Z'),
  }
}

describe('search.md', () => {
  it('lists every trial by rung with budget, steps, config, dev scores and outcome', () => {
    const md = formatSearchMarkdown(report())
    expect(md).toContain('dev slice = the last 10 of the train split (shuffled with seed 5)')
    expect(md).toContain('- sampling: random, 3 of 54 grid points')
    expect(md).toContain('3 @ 1/3, 1 @ 1')
    expect(md).toContain('| 0 | 1/3 | 3 | 1 | loreft | 0;2 | f1+l1 | 2 | 0.001 | 2 | 60.0 (6/10) | 0.4000 | 200 | 1.3 | promoted |')
    expect(md).toContain('| 0 | 1/3 | 3 | 0 | loreft | 0;2 | f1+l1 | 1 | 0.001 | 2 | 30.0 (3/10) | 0.7000 | 100 | 1.3 |  |')
    expect(md).toMatch(/\| 0 \| 1\/3 \| 3 \| 2 \| .* \| — \| — \| 300 \| 1\.3 \| failed: ERR_NON_FINITE: step 2: loss NaN \|/)
    expect(md).toContain('| 1 | 1 | 9 | 1 | loreft | 0;2 | f1+l1 | 2 | 0.001 | 2 | 70.0 (7/10) | 0.3000 | 200 | 1.3 | **selected** |')
    expect(md).toContain('loreft layers=0;2 pos=f1+l1 rank=2 lr=0.001 epochs=2: dev acc 70.0% (7/10), loss 0.3000 (trial 1)')
    expect(md).toContain("Default configuration (`reft train`'s defaults)")
    expect(md).toContain('| selected: loreft layers=0;2 pos=f1+l1 rank=2 lr=0.001 epochs=2 | boolq | 20 | 45.0 | 25.8–65.8 |')
  })

  it('loss metric has one dev column', () => {
    const md = formatSearchMarkdown({ ...report(), devMetric: 'loss' })
    expect(md).toMatch(/^\| rung \| budget \| steps \| trial \| kind \| layers \| positions \| rank \| lr \| epochs \| dev loss \| params \|/m)
    expect(md).toContain('| 0 | 1/3 | 3 | 1 | loreft | 0;2 | f1+l1 | 2 | 0.001 | 2 | 0.4000 | 200 |')
  })

  it('search.json holds every trial with its promotion and the selection', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reft-search-report-'))
    try {
      const files = writeSearchReport(dir, report())
      const json = JSON.parse(readFileSync(files.json, 'utf8')) as { trials: { id: number; rung: number; promoted: boolean }[]; selected: unknown; date: string }
      expect(json.trials.map((t) => [t.rung, t.id, t.promoted])).toEqual([[0, 1, true], [0, 0, false], [0, 2, false], [1, 1, false]])
      expect(json.selected).toEqual({ id: 1, config: cfg(2, 1e-3), score: 0.7, devLoss: expect.closeTo(0.3, 12), adapter: 'adapter' })
      expect(json.date).toBe('2026-01-02T03:04:05.000Z')
      expect(readFileSync(files.markdown, 'utf8')).toBe(formatSearchMarkdown(report()))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('progress reporter (log mode)', () => {
  it('prints one line per plan, rung, trial and test, and the training / eval logs in between', () => {
    let text = ''
    const p = createSearchProgressReporter({ stream: { write: (t: string) => (text += t) }, tty: false, every: 2 })
    const r = report()
    const train = (step: number) => ({ step, totalSteps: 3, epoch: 0, loss: 1, gradNorm: 1, lr: 1e-3, tokensPerSecond: 10, elapsedMs: 100 * step, etaMs: 0 })
    p.update({ type: 'plan', trials: 3, rungs: r.rungs, trainSize: 90, devSize: 10, devMetric: 'accuracy', resumed: 2 })
    p.update({ type: 'rung-start', rung: r.rungs[0]!, ids: [0, 1, 2] })
    p.update({ type: 'trial-skip', record: rec(0, 0, 1 / 3, 0.3) })
    p.update({ type: 'trial-start', id: 1, rung: 0, budget: 1 / 3, config: cfg(2, 1e-3), index: 2, count: 3 })
    for (const s of [1, 2, 3]) p.update({ type: 'train', event: train(s) })
    p.update({ type: 'eval', event: { task: 'boolq', done: 10, total: 10, correct: 6, resumed: 0, elapsedMs: 10, etaMs: 0 } })
    p.update({ type: 'eval-end' })
    p.update({ type: 'trial-end', record: rec(1, 0, 1 / 3, 0.6) })
    p.update({ type: 'rung-end', rung: r.rungs[0]!, ranked: r.outcomes[0]!.ranked, promoted: [1] })
    p.update({ type: 'test-end', record: r.test[0]!, resumed: true })
    p.finish()
    const lines = text.trimEnd().split('\n')
    expect(lines[0]).toBe('search: 3 trials, rungs 3 @ 1/3 → 1 @ 1; 90 train / 10 dev examples; dev metric accuracy; 2 finished runs found in the trials file')
    expect(lines[1]).toBe('rung 0: 3 trials at budget 1/3')
    expect(lines[2]).toBe('trial 0: resumed, dev acc 30.0% (3/10), loss 0.7000')
    expect(lines[3]).toBe('[rung 0 2/3] trial 1: loreft layers=0;2 pos=f1+l1 rank=2 lr=0.001 epochs=2')
    expect(lines.filter((l) => l.startsWith('step '))).toHaveLength(3)
    expect(lines.some((l) => l.startsWith('eval boolq 10/10 | acc 60.0%'))).toBe(true)
    expect(lines).toContain('trial 1: dev acc 60.0% (6/10), loss 0.4000, 3 steps, 1.3 s')
    expect(lines).toContain('rung 0 done: best trial 1, dev acc 60.0% (6/10), loss 0.4000; promoted 1')
    expect(lines.at(-1)).toBe('test boolq (selected): 45.0% (9/20), resumed')
  })
})

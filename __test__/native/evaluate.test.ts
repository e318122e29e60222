/**
 * The evaluation harness on the tiny model and the real shared data (skipped only where
 * ../shared/data is absent): the library's `evaluateTask` (zero-shot and through an adapter,
 * batching with left padding, reports, resume) and `reft eval` end to end with `--limit 2`.
 * The tiny model answers garbage, so these check the plumbing, not accuracy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { evaluateTask, loadModel, writeReport, type Model, type ReftModel } from '../../src/index.js'
import { tinyWorkspace } from './helpers.js'

const repo = resolve(import.meta.dirname, '../..')
const dataDir = resolve(repo, '../shared/data')
const noData = !existsSync(dataDir)
const ws = tinyWorkspace()
let model: Model
let reft: ReftModel
beforeAll(async () => {
  model = await loadModel(ws.modelDir)
  reft = model.withInterventions({ kind: 'loreft', layers: [0, 1], positions: 'f2+l2', rank: 2 }, { seed: 3 })
})
afterAll(() => {
  reft.dispose()
  model.dispose()
  ws.cleanup()
})

describe.skipIf(noData)('evaluateTask on the tiny model', () => {
  it('zero-shot on boolq: counts, interval, examples in order, batch size does not change greedy output', async () => {
    const a = await evaluateTask(model, 'boolq', { dataDir, limit: 4, batchSize: 4, maxNewTokens: 6 })
    expect(a).toMatchObject({ task: 'boolq', kind: 'commonsense', n: 4, maxNewTokens: 6 })
    expect(a.correct).toBe(a.examples.filter((e) => e.correct).length)
    expect(a.ci95[0]).toBeGreaterThanOrEqual(0)
    expect(a.ci95[1]).toBeLessThanOrEqual(1)
    expect(a.ci95[0]).toBeLessThanOrEqual(a.accuracy)
    expect(a.ci95[1]).toBeGreaterThanOrEqual(a.accuracy)
    expect(a.examples.map((e) => e.id)).toEqual([0, 1, 2, 3])
    expect(a.examples.every((e) => e.prompt.endsWith('\n') && (e.gold === 'true' || e.gold === 'false'))).toBe(true)
    const b = await evaluateTask(model, 'boolq', { dataDir, limit: 4, batchSize: 1, maxNewTokens: 6 })
    expect(b.examples.map((e) => e.generation)).toEqual(a.examples.map((e) => e.generation))
  })

  it('through an adapter on a math task, with reports and resume', async () => {
    const resumeFile = join(ws.root, 'run', 'generations.jsonl')
    const first = await evaluateTask(reft, 'gsm8k', { dataDir, limit: 2, batchSize: 2, maxNewTokens: 4, resumeFile })
    expect(first).toMatchObject({ task: 'gsm8k', kind: 'math', n: 2 })
    expect(first.examples.every((e) => e.prompt.startsWith('Below is an instruction'))).toBe(true)
    let calls = 0
    const counting = { generate: (p: readonly string[], o?: object) => (calls++, reft.generate(p, o)) }
    const second = await evaluateTask(counting, 'gsm8k', { dataDir, limit: 4, batchSize: 2, maxNewTokens: 4, resumeFile })
    expect(calls).toBe(1)
    expect(second.n).toBe(4)
    expect(second.examples.slice(0, 2)).toEqual(first.examples)
    expect(readFileSync(resumeFile, 'utf8').trim().split('\n')).toHaveLength(4)
    const files = writeReport([first, second], join(ws.root, 'report'), { model: ws.modelDir, adapter: 'tiny' })
    expect(readFileSync(files.markdown, 'utf8')).toMatch(/\| gsm8k \| 4 \| \d+\.\d \| \d+\.\d–\d+\.\d \|/)
    expect(JSON.parse(readFileSync(files.json, 'utf8')).tasks).toHaveLength(2)
  })
})

describe.skipIf(noData)('reft eval', () => {
  const reftCli = (...args: string[]) => spawnSync('npx', ['tsx', 'src/cli.ts', 'eval', ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000 })

  it('--limit 2 on two tasks prints the table and writes the reports; --resume reuses the generations', () => {
    const out = join(ws.root, 'cli-eval')
    const args = ['--model', ws.modelDir, '--tasks', 'arc_e,AQuA', '--limit', '2', '--max-new-tokens', '4', '--data-dir', dataDir, '--output', out]
    const r = reftCli(...args)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^\| task \| n \| accuracy % \| 95% CI \| model \| adapter \| date \|$/m)
    expect(r.stdout).toMatch(/^\| ARC-Easy \| 2 \| /m)
    expect(r.stdout).toMatch(/^\| AQuA \| 2 \| /m)
    expect(r.stderr).toMatch(/ARC-Easy 2\/2/)
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { tasks: { task: string; n: number; ci95: number[] }[] }
    expect(report.tasks.map((t) => [t.task, t.n])).toEqual([['ARC-Easy', 2], ['AQuA', 2]])
    expect(report.tasks.every((t) => t.ci95[0]! >= 0 && t.ci95[1]! <= 1)).toBe(true)
    expect(existsSync(join(out, 'report.md'))).toBe(true)
    const generations = readFileSync(join(out, 'generations.jsonl'), 'utf8')
    expect(generations.trim().split('\n')).toHaveLength(4)

    const again = reftCli(...args, '--resume')
    expect(again.status, again.stderr).toBe(0)
    expect(again.stderr).toMatch(/resumed 2/)
    expect(readFileSync(join(out, 'generations.jsonl'), 'utf8')).toBe(generations)
  })
})

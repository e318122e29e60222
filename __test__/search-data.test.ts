/**
 * The dev slice held out from the train split (last N, optionally after a seeded shuffle; never in
 * the training portion), and `reft search` flag parsing into `search` options.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseFlags } from '../src/cli/common.js'
import { parseFraction, searchFlags, searchOptionsFromFlags } from '../src/cli/search.js'
import { splitSearchData } from '../src/search/index.js'

let dataDir: string
const boolq = Array.from({ length: 10 }, (_, i) => ({ instruction: `q${i}`, input: '', output: `the correct answer is ${i % 2 === 0}`, answer: String(i % 2 === 0) }))
const math = Array.from({ length: 6 }, (_, i) => ({ instruction: `what is ${i}+1?`, output: `It is ${i + 1}.`, answer: `${i + 1}` }))
beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'reft-search-data-'))
  mkdirSync(join(dataDir, 'commonsense/boolq'), { recursive: true })
  writeFileSync(join(dataDir, 'commonsense/boolq/train.json'), JSON.stringify(boolq))
  mkdirSync(join(dataDir, 'math/train'), { recursive: true })
  writeFileSync(join(dataDir, 'math/train/math_1k.jsonl'), math.map((r) => JSON.stringify(r)).join('\n'))
})
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

describe('splitSearchData', () => {
  it('holds out the last N examples of the train split, in file order by default', () => {
    const s = splitSearchData({ trainingSet: 'boolq', dataDir }, { devSize: 3 })
    expect(s.name).toBe('boolq')
    expect(s.task).toMatchObject({ name: 'boolq', kind: 'commonsense' })
    expect(s.train.map((e) => e.prompt)).toEqual(['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6'].map((q) => `${q}\n`))
    expect(s.dev.map((e) => e.prompt)).toEqual(['q7\n', 'q8\n', 'q9\n'])
    expect(s.dev[0]!.output).toBe('the correct answer is false')
    // Evaluation examples of the same slice, with gold answers and ids 0..N-1.
    expect(s.devEval.map((e) => [e.id, e.prompt, e.answer])).toEqual([[0, 'q7\n', 'false'], [1, 'q8\n', 'true'], [2, 'q9\n', 'false']])
  })

  it('limit applies first; the shuffle is seeded and the two parts always partition the data', () => {
    expect(splitSearchData({ trainingSet: 'boolq', dataDir, limit: 6 }, { devSize: 2 }).dev.map((e) => e.prompt)).toEqual(['q4\n', 'q5\n'])
    const a = splitSearchData({ trainingSet: 'boolq', dataDir }, { devSize: 4, devShuffle: true, seed: 1 })
    expect(splitSearchData({ trainingSet: 'boolq', dataDir }, { devSize: 4, devShuffle: true, seed: 1 })).toEqual(a)
    expect(splitSearchData({ trainingSet: 'boolq', dataDir }, { devSize: 4, devShuffle: true, seed: 2 }).dev).not.toEqual(a.dev)
    expect(a.dev.map((e) => e.prompt)).not.toEqual(['q6\n', 'q7\n', 'q8\n', 'q9\n'])
    const all = [...a.train, ...a.dev].map((e) => e.prompt).sort()
    expect(all).toEqual(boolq.map((r) => `${r.instruction}\n`).sort())
    expect(a.devEval.map((e) => `${e.instruction}\n`)).toEqual(a.dev.map((e) => e.prompt))
  })

  it('math sets train on the rationale and score the answer', () => {
    const s = splitSearchData({ trainingSet: 'math_1k', dataDir }, { devSize: 2 })
    expect(s.task?.kind).toBe('math')
    expect(s.train[0]).toMatchObject({ output: 'It is 1.' })
    expect(s.train[0]!.prompt).toMatch(/^Below is an instruction[\s\S]*what is 0\+1\?[\s\S]*### Response:\n$/)
    expect(s.devEval.map((e) => e.answer)).toEqual(['5', '6'])
  })

  it('custom examples have no gold answers; too small a set is ERR_OUT_OF_RANGE', () => {
    const examples = [{ prompt: 'a', output: 'b' }, { prompt: 'c', output: 'd' }, { prompt: 'e', output: 'f' }]
    const s = splitSearchData({ examples }, { devSize: 1 })
    expect(s).toMatchObject({ name: 'custom', task: undefined, devEval: [], dev: [{ prompt: 'e', output: 'f' }] })
    expect(() => splitSearchData({ examples }, { devSize: 3 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', field: 'devSize' }))
    expect(() => splitSearchData({ trainingSet: 'nope', dataDir })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }))
  })
})

describe('reft search flags', () => {
  const opts = (...args: string[]) => searchOptionsFromFlags(parseFlags(args, searchFlags, false))

  it('comma lists and layer sets become the space; halving and test options map through', async () => {
    const o = await opts('--train', 'boolq', '--layers', 'middle,all,0;2;4', '--positions', 'l1,f3+l3', '--rank', '2,8', '--lr', '1e-3,9e-3',
      '--epochs', '1,3', '--kind', 'loreft,direft', '--trials', '5', '--eta', '2', '--min-budget', '1/4', '--eval-test', '--test-limit', '50', '--compare-default')
    expect(o.space).toEqual({ kind: ['loreft', 'direft'], layers: ['middle', 'all', '0;2;4'], positions: ['l1', 'f3+l3'], rank: [2, 8], lr: [1e-3, 9e-3], epochs: [1, 3] })
    expect(o).toMatchObject({ data: { trainingSet: 'boolq' }, trials: 5, halving: { eta: 2, minBudget: 0.25 }, testTasks: ['boolq'], testLimit: 50, compareDefault: true, outputDir: 'reft-search' })
    expect((await opts('--train', 'ARC-Easy', '--no-halving')).halving).toBe(false)
    expect((await opts('--train', 'arc_e', '--eval-test')).testTasks).toEqual(['ARC-Easy'])
    expect((await opts('--train', 'boolq', '--test-tasks', 'piqa,arc_c')).testTasks).toEqual(['piqa', 'arc_c'])
  })

  it('a space file is read and flags override its keys', async () => {
    const file = join(dataDir, 'space.json')
    writeFileSync(file, JSON.stringify({ rank: [1], lr: [0.5], layers: ['all', [0, 1]] }))
    const o = await opts('--train', 'boolq', '--space', file, '--rank', '4')
    expect(o.space).toEqual({ rank: [4], lr: [0.5], layers: ['all', [0, 1]] })
  })

  it('refuses contradictory or malformed flags', async () => {
    await expect(opts()).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
    await expect(opts('--train', 'boolq', '--data', 'x.jsonl')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
    await expect(opts('--train', 'math_1k', '--eval-test')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--eval-test' })
    await expect(opts('--train', 'boolq', '--no-halving', '--eta', '2')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
    await expect(opts('--train', 'boolq', '--rank', '2,,4')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--rank' })
    await expect(opts('--train', 'boolq', '--lr', 'fast')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: '--lr' })
    await expect(opts('--train', 'boolq', '--sampling', 'sobol')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
    expect(parseFraction('1/9', 'x')).toBeCloseTo(1 / 9, 15)
    expect(parseFraction('0.25', 'x')).toBe(0.25)
    expect(() => parseFraction('a/b', 'x')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }))
  })
})

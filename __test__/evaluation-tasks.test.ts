/**
 * The evaluation harness's pure parts: pyreft's templates and targets, task names and aliases,
 * the Wilson interval, JSON/JSONL parsing, data-directory errors, the resume file and the
 * reports; then the loaders against the real shared data (skipped only where it is absent).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  alpacaPromptNoInput,
  appendResults,
  commonsensePrompt,
  commonsenseTarget,
  formatReportTable,
  loadTask,
  loadTrainingSet,
  mathPrompt,
  parseRecords,
  parseTaskList,
  readResumeFile,
  resolveDataDir,
  resolveTask,
  trainingExample,
  wilsonInterval,
  writeReport,
  type TaskResult,
} from '../src/index.js'
import { code } from './helpers/error-code.js'

const dataDir = resolve(import.meta.dirname, '../../shared/data')
const noData = !existsSync(dataDir)
const tmp = mkdtempSync(join(tmpdir(), 'reft-eval-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('pyreft templates and targets', () => {
  it('commonsense: instruction + "\\n", target "the correct answer is " + answer', () => {
    expect(commonsensePrompt('Q? Answer format: true/false')).toBe('Q? Answer format: true/false\n')
    expect(commonsenseTarget('false')).toBe('the correct answer is false')
    expect(trainingExample('commonsense', { instruction: 'Q', answer: 'answer2', output: 'ignored' })).toEqual({ prompt: 'Q\n', output: 'the correct answer is answer2' })
  })
  it('math: Alpaca no-input template, target = output rationale', () => {
    const p = mathPrompt('How many?')
    expect(p).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nHow many?\n\n### Response:\n',
    )
    expect(p).toBe(alpacaPromptNoInput.replace('%s', 'How many?'))
    expect(trainingExample('math', { instruction: 'How many?', answer: '3.0', output: 'It is 3.' })).toEqual({ prompt: p, output: 'It is 3.' })
  })
})

describe('task names', () => {
  it('resolves names and aliases case-insensitively', () => {
    expect(resolveTask('arc_e').name).toBe('ARC-Easy')
    expect(resolveTask('ARC_C').name).toBe('ARC-Challenge')
    expect(resolveTask('obqa').name).toBe('openbookqa')
    expect(resolveTask('siqa').name).toBe('social_i_qa')
    expect(resolveTask('svamp')).toMatchObject({ name: 'SVAMP', kind: 'math' })
    expect(resolveTask('hellaswag_dev').file).toBe('commonsense/hellaswag/train_4k.jsonl')
  })
  it('expands groups, drops duplicates, rejects unknown names', () => {
    expect(parseTaskList('boolq, arc_e,boolq').map((t) => t.name)).toEqual(['boolq', 'ARC-Easy'])
    expect(parseTaskList('math_paper').map((t) => t.name)).toEqual(['AQuA', 'gsm8k', 'mawps', 'SVAMP'])
    expect(parseTaskList('commonsense')).toHaveLength(7)
    expect(code(() => parseTaskList('boolq,nope'))).toBe('ERR_INVALID_CONFIG')
    expect(code(() => parseTaskList(' , '))).toBe('ERR_INVALID_CONFIG')
  })
})

describe('wilsonInterval', () => {
  it('matches the closed form and stays inside [0, 1]', () => {
    const [lo, hi] = wilsonInterval(50, 100)
    expect(lo).toBeCloseTo(0.4038, 4)
    expect(hi).toBeCloseTo(0.5962, 4)
    expect(wilsonInterval(0, 10)[0]).toBe(0)
    expect(wilsonInterval(0, 10)[1]).toBeCloseTo(0.2775, 4)
    expect(wilsonInterval(10, 10)[1]).toBe(1)
    expect(wilsonInterval(0, 0)).toEqual([0, 1])
  })
  it('rejects impossible counts', () => {
    expect(code(() => wilsonInterval(3, 2))).toBe('ERR_OUT_OF_RANGE')
    expect(code(() => wilsonInterval(1.5, 2))).toBe('ERR_INVALID_CONFIG')
  })
})

describe('records and the data directory', () => {
  it('parses JSON arrays and JSON Lines (blank lines, BOM)', () => {
    expect(parseRecords('\uFEFF[{"a":1},{"a":2}]', 'x')).toEqual([{ a: 1 }, { a: 2 }])
    expect(parseRecords('{"a":1}\n\n{"a":2}\n', 'x')).toEqual([{ a: 1 }, { a: 2 }])
    expect(code(() => parseRecords('{"a":1}\n{oops', 'x'))).toBe('ERR_FORMAT')
    expect(code(() => parseRecords('[1]', 'x'))).toBe('ERR_FORMAT')
  })
  it('a missing directory or file is ERR_IO naming the path and what belongs there', () => {
    const missing = join(tmp, 'nowhere')
    expect(() => resolveDataDir({ dataDir: missing })).toThrow(new RegExp(`${missing}[\\s\\S]*commonsense/<task>/test.json`))
    mkdirSync(join(tmp, 'empty'))
    let message = ''
    try {
      loadTask('boolq', { dataDir: join(tmp, 'empty') })
    } catch (e) {
      expect((e as { code: string }).code).toBe('ERR_IO')
      message = (e as Error).message
    }
    expect(message).toContain(join(tmp, 'empty', 'commonsense/boolq/test.json'))
    expect(message).toContain('LLM-Adapters dataset/boolq/test.json')
  })
  it('REFT_DATA_DIR is used when no dataDir is given', () => {
    const dir = join(tmp, 'env')
    mkdirSync(join(dir, 'math/gsm8k'), { recursive: true })
    writeFileSync(join(dir, 'math/gsm8k/test.json'), JSON.stringify([{ instruction: 'I', input: '', output: 'o', answer: '1.0' }]))
    const saved = process.env.REFT_DATA_DIR
    process.env.REFT_DATA_DIR = dir
    try {
      expect(loadTask('gsm8k')).toEqual([{ id: 0, instruction: 'I', output: 'o', answer: '1.0', prompt: mathPrompt('I') }])
    } finally {
      if (saved === undefined) delete process.env.REFT_DATA_DIR
      else process.env.REFT_DATA_DIR = saved
    }
  })
})

describe('resume file and reports', () => {
  const r = (id: number, correct: boolean) => ({ id, prompt: 'p', generation: 'g', prediction: 'x', gold: 'y', correct })
  it('reads back the rows of one task and survives a torn last line', () => {
    const file = join(tmp, 'resume', 'gen.jsonl')
    appendResults(file, 'boolq', [r(0, true), r(1, false)])
    appendResults(file, 'piqa', [r(0, false)])
    writeFileSync(file, readFileSync(file, 'utf8') + '{"task":"boolq","id":2,"cor')
    appendResults(file, 'boolq', [r(3, true)])
    const done = readResumeFile(file, 'boolq')
    expect([...done.keys()].sort()).toEqual([0, 1, 3])
    expect(done.get(0)).toEqual(r(0, true))
    expect(readResumeFile(join(tmp, 'absent.jsonl'), 'boolq').size).toBe(0)
  })
  it('writes report.json and a Markdown table', () => {
    const result: TaskResult = { task: 'boolq', kind: 'commonsense', n: 2, correct: 1, accuracy: 0.5, ci95: wilsonInterval(1, 2), maxNewTokens: 32, examples: [r(0, true), r(1, false)] }
    const date = new Date('2025-01-02T03:04:05Z')
    const table = formatReportTable([result], { model: 'm', adapter: 'a|b', date })
    expect(table.split('\n')[0]).toBe('| task | n | accuracy % | 95% CI | model | adapter | date |')
    expect(table).toContain('| boolq | 2 | 50.0 | 9.5–90.5 | m | a\\|b | 2025-01-02 |')
    const files = writeReport([result], join(tmp, 'report'), { model: 'm', date })
    const json = JSON.parse(readFileSync(files.json, 'utf8')) as { tasks: Record<string, unknown>[]; examples: Record<string, unknown[]> }
    expect(json.tasks[0]).toMatchObject({ task: 'boolq', n: 2, correct: 1, accuracy: 0.5 })
    expect(json.examples.boolq).toHaveLength(2)
    expect(readFileSync(files.markdown, 'utf8')).toContain('none (zero-shot)')
  })
})

describe.skipIf(noData)('loaders on the shared data', () => {
  const counts: [string, number, RegExp][] = [
    ['boolq', 3270, /^(true|false)$/],
    ['piqa', 1838, /^solution[12]$/],
    ['siqa', 1954, /^answer[1-3]$/],
    ['hellaswag_dev', 4000, /^ending[1-4]$/],
    ['winogrande', 1267, /^option[12]$/],
    ['arc_e', 2376, /^answer[1-5]$/],
    ['arc_c', 1172, /^answer[1-5]$/],
    ['obqa', 500, /^answer[1-4]$/],
    ['gsm8k', 1319, /^-?\d+(\.\d+)?$/],
    ['SVAMP', 1000, /^-?\d+(\.\d+)?$/],
    ['AQuA', 254, /^[A-E]$/],
    ['mawps', 238, /^-?\d+(\.\d+)?$/],
    ['AddSub', 395, /^-?\d+(\.\d+)?$/],
    ['MultiArith', 600, /^-?\d+(\.\d+)?$/],
    ['SingleEq', 508, /^-?\d+(\.\d+)?$/],
  ]
  it.each(counts)('%s has %i examples with well-formed answers', (name, n, answer) => {
    const ex = loadTask(name, { dataDir })
    expect(ex).toHaveLength(n)
    expect(ex.every((e) => answer.test(e.answer))).toBe(true)
    expect(ex.map((e) => e.id)).toEqual([...Array(n).keys()])
    const kind = resolveTask(name).kind
    expect(ex[0]!.prompt).toBe(kind === 'commonsense' ? `${ex[0]!.instruction}\n` : mathPrompt(ex[0]!.instruction))
  })
  it('limit keeps the first examples; hellaswag (test) is missing and says so', () => {
    expect(loadTask('boolq', { dataDir, limit: 3 }).map((e) => e.id)).toEqual([0, 1, 2])
    expect(() => loadTask('hellaswag', { dataDir })).toThrow(/hellaswag\/test\.json[\s\S]*hellaswag_dev/)
  })
  it('training sets: commonsense union, math, instruction data with pyreft targets', () => {
    const cs = loadTrainingSet('commonsense', { dataDir })
    expect(cs.examples).toHaveLength(9427 + 2251 + 1119 + 4957)
    expect(cs.examples.every((e) => e.prompt.endsWith('\n') && /^the correct answer is \S+$/.test(e.output))).toBe(true)
    const arc = loadTrainingSet('arc_e', { dataDir, holdOut: 300 })
    expect([arc.examples.length, arc.heldOut.length]).toEqual([2251 - 300, 300])
    const m = loadTrainingSet('math_1k', { dataDir })
    expect(m.examples).toHaveLength(919)
    expect(m.examples[0]!.prompt).toMatch(/^Below is an instruction[\s\S]*### Response:\n$/)
    expect(loadTrainingSet('math_data', { dataDir }).examples).toHaveLength(3260)
    expect(loadTrainingSet('ultrafeedback_1k', { dataDir }).examples).toHaveLength(1000)
    const alpaca = loadTrainingSet('alpaca_data_1k', { dataDir }).examples
    expect(alpaca).toHaveLength(1000)
    expect(alpaca.some((e) => e.prompt.includes('### Input:\n'))).toBe(true)
    expect(alpaca.some((e) => !e.prompt.includes('### Input:'))).toBe(true)
  })
  it('shuffleSeed mixes a union before limit, reproducibly', () => {
    const plain = loadTrainingSet('commonsense', { dataDir, limit: 400 }).examples
    const a = loadTrainingSet('commonsense', { dataDir, limit: 400, shuffleSeed: 1 }).examples
    const b = loadTrainingSet('commonsense', { dataDir, limit: 400, shuffleSeed: 1 }).examples
    expect(a).toEqual(b)
    // File order puts BoolQ (true/false answers) first; a shuffled cut has the other sets' answers too.
    const isBool = (e: { output: string }) => /answer is (true|false)$/.test(e.output)
    expect(plain.every(isBool)).toBe(true)
    expect(a.filter((e) => !isBool(e)).length).toBeGreaterThan(100)
    expect(loadTrainingSet('commonsense', { dataDir, limit: 400, shuffleSeed: 2 }).examples).not.toEqual(a)
  })
})

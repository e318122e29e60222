/**
 * `evaluateTask` with a scripted generator (no model): batching, scoring, counts, the interval,
 * progress events, limit, abort, and resuming from the JSONL file.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commonsensePrompt, createEvalProgressReporter, evaluateTask, mathPrompt, wilsonInterval, type EvalExample, type EvalProgressEvent, type TextGenerator } from '../src/index.js'

const tmp = mkdtempSync(join(tmpdir(), 'reft-eval-run-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const cs: EvalExample[] = ['true', 'false', 'true', 'false', 'true'].map((answer, id) => ({
  id, instruction: `q${id}`, answer, output: `the correct answer is ${answer}`, prompt: commonsensePrompt(`q${id}`),
}))

/** Answers right on even ids (with EOS, i.e. nothing after the label), wrong on odd ones; records batches. */
function scripted(): TextGenerator & { batches: string[][]; options: unknown[] } {
  const g = {
    batches: [] as string[][],
    options: [] as unknown[],
    async generate(prompts: readonly string[], options?: unknown) {
      g.batches.push([...prompts])
      g.options.push(options)
      const texts = prompts.map((p) => {
        const ex = cs.find((e) => e.prompt === p)!
        return ex.id % 2 === 0 ? `the correct answer is ${ex.answer}` : 'the correct answer is maybe'
      })
      return { tokens: texts.map(() => new Uint32Array()), texts }
    },
  }
  return g
}

describe('evaluateTask with a scripted generator', () => {
  it('batches, scores with pyreft rules and reports the Wilson interval', async () => {
    const g = scripted()
    const events: EvalProgressEvent[] = []
    const r = await evaluateTask(g, 'boolq', { examples: cs, batchSize: 2, onProgress: (e) => events.push(e) })
    expect(g.batches.map((b) => b.length)).toEqual([2, 2, 1])
    expect(g.options[0]).toMatchObject({ greedy: true, maxNewTokens: 32 })
    expect(r).toMatchObject({ task: 'boolq', kind: 'commonsense', n: 5, correct: 3, accuracy: 0.6, maxNewTokens: 32 })
    expect(r.ci95).toEqual(wilsonInterval(3, 5))
    expect(r.examples.map((e) => e.correct)).toEqual([true, false, true, false, true])
    expect(r.examples[1]).toMatchObject({ id: 1, prediction: 'maybe', gold: 'false', generation: 'the correct answer is maybe' })
    expect(events.map((e) => e.done)).toEqual([0, 2, 4, 5])
    expect(events.at(-1)).toMatchObject({ total: 5, correct: 3, etaMs: 0 })
  })

  it('uses the math rule and budget for math tasks', async () => {
    const ex: EvalExample[] = [{ id: 7, instruction: 'i', answer: '12.0', output: '', prompt: mathPrompt('i') }]
    const g: TextGenerator = { generate: async (p) => ({ tokens: [new Uint32Array()], texts: p.map(() => '3 * 4 = 12') }) }
    const r = await evaluateTask(g, 'gsm8k', { examples: ex })
    expect(r).toMatchObject({ n: 1, correct: 1, maxNewTokens: 256 })
    expect(r.examples[0]).toMatchObject({ id: 7, prediction: '12', correct: true })
  })

  it('resumes: finished ids are skipped and their results reused', async () => {
    const resumeFile = join(tmp, 'gen.jsonl')
    const first = scripted()
    await evaluateTask(first, 'boolq', { examples: cs, limit: 3, batchSize: 2, resumeFile })
    expect(readFileSync(resumeFile, 'utf8').trim().split('\n')).toHaveLength(3)
    const second = scripted()
    const events: EvalProgressEvent[] = []
    const r = await evaluateTask(second, 'boolq', { examples: cs, batchSize: 2, resumeFile, onProgress: (e) => events.push(e) })
    expect(second.batches.flat()).toEqual([cs[3]!.prompt, cs[4]!.prompt])
    expect(events[0]).toMatchObject({ done: 3, resumed: 3 })
    expect(r).toMatchObject({ n: 5, correct: 3 })
    expect(r.examples.map((e) => e.id)).toEqual([0, 1, 2, 3, 4])
    // another task's rows in the same file are not mistaken for this task's
    const third = scripted()
    await evaluateTask(third, 'piqa', { examples: cs, limit: 1, resumeFile })
    expect(third.batches).toHaveLength(1)
  })

  it('aborts between batches with ERR_ABORTED', async () => {
    const controller = new AbortController()
    const g = scripted()
    const run = evaluateTask(g, 'boolq', { examples: cs, batchSize: 1, signal: controller.signal, onProgress: (e) => e.done === 2 && controller.abort() })
    await expect(run).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(g.batches).toHaveLength(2)
  })

  it('validates its options', async () => {
    await expect(evaluateTask(scripted(), 'boolq', { examples: cs, batchSize: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(evaluateTask(scripted(), 'nope', { examples: cs })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' })
  })
})

describe('createEvalProgressReporter', () => {
  const ev = (done: number, total = 100): EvalProgressEvent => ({ task: 'boolq', done, total, correct: Math.floor(done / 2), resumed: 0, elapsedMs: 1000 * done, etaMs: 1000 * (total - done) })
  it('log mode: the first line, then every N examples, and the last', () => {
    let text = ''
    const p = createEvalProgressReporter({ stream: { write: (t) => (text += t) }, tty: false, every: 40 })
    for (const d of [0, 10, 30, 40, 50, 90, 100]) p.update(ev(d))
    p.finish()
    const lines = text.trim().split('\n')
    expect(lines.map((l) => /boolq (\d+)\/100/.exec(l)![1])).toEqual(['0', '40', '90', '100'])
    expect(lines[3]).toContain('acc 50.0%')
  })
  it('tty mode: one rewritten bar line, closed by finish', () => {
    let text = ''
    const p = createEvalProgressReporter({ stream: { write: (t) => (text += t), isTTY: true }, width: 10 })
    p.update(ev(50))
    p.finish()
    expect(text).toMatch(/^\r\[#####-----\] boolq 50\/100 \| acc 50\.0% \| 0:50<0:50\n$/)
  })
})

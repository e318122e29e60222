/**
 * The instruction-following evaluation on the tiny random model: the response loss equals the
 * loss of a direct forward and the NLL recomputed from logits (prompt masked, EOS included) for
 * the adapter and the base model; the logit judge reads exactly the label log-probabilities of
 * the last position; the pairwise path end to end; and `reft instruct-eval` with the shared data
 * (skipped where ../shared/data is absent). The tiny model's text is garbage: these check the
 * plumbing and the arithmetic, not quality.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  comparePairwise,
  createLogitJudge,
  evaluateInstructionFollowing,
  evaluateResponseLoss,
  judgeLabelIds,
  labelLogProbs,
  loadModel,
  openBaseForward,
  type InstructionExample,
  type Model,
  type NativeForwardOutput,
  type ReftModel,
} from '../../src/index.js'
import { errorCode, tinyWorkspace } from './helpers.js'

const repo = resolve(import.meta.dirname, '../..')
const dataDir = resolve(repo, '../shared/data')
const noData = !existsSync(dataDir)
const ws = tinyWorkspace(1)
let model: Model
let reft: ReftModel
beforeAll(async () => {
  model = await loadModel(ws.modelDir)
  reft = model.withInterventions({ kind: 'loreft', layers: [0, 1], positions: 'f1+l1', rank: 2 }, { seed: 5 })
})
afterAll(() => {
  reft?.dispose()
  model?.dispose()
  ws.cleanup()
})

const examples: InstructionExample[] = [
  { prompt: 'Say hi', output: 'hello there' },
  { prompt: 'Count to three', output: 'one two three' },
  { prompt: 'Colour of the sky?', output: 'blue' },
]

/** Mean NLL over labelled tokens, recomputed from logits [1, t, V] with HF's shift. */
function nllFromLogits(out: NativeForwardOutput, labels: Int32Array): { nll: number; tokens: number } {
  const [, t, v] = out.dims as [number, number, number]
  let sum = 0
  let tokens = 0
  for (let i = 0; i + 1 < t; i++) {
    const target = labels[i + 1]!
    if (target === -100) continue
    const row = out.logits.subarray(i * v, (i + 1) * v)
    const m = Math.max(...row)
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0))
    sum += lse - row[target]!
    tokens++
  }
  return { nll: sum / tokens, tokens }
}

describe('response loss', () => {
  it('equals a direct forward with labels and the NLL recomputed from logits, for the adapter and the base model', async () => {
    const r = await evaluateResponseLoss(reft, examples, { format: { kind: 'raw' } })
    const items = reft.dataset(examples, { format: { kind: 'raw' } })
    const base = openBaseForward(model)
    try {
      for (const [i, item] of items.entries()) {
        const direct = await reft.forward({ inputIds: [Array.from(item.inputIds)], positions: item.locations.map((l) => [l]), labels: [Array.from(item.labels)] })
        const e = r.perExample[i]!
        expect(e.adapterNll).toBeCloseTo(direct.loss!, 6)
        const fromLogits = nllFromLogits(direct, item.labels)
        expect(e.adapterNll).toBeCloseTo(fromLogits.nll, 4)
        // Response tokens = output + EOS; the prompt is masked.
        const expected = model.encode(examples[i]!.prompt + examples[i]!.output).length - model.encode(examples[i]!.prompt).length + 1
        expect(e.tokens).toBe(expected)
        expect(fromLogits.tokens).toBe(expected)
        const b = await base.forward({ inputIds: item.inputIds, batchSize: 1, seqLen: item.inputIds.length, labels: item.labels }, true)
        expect(e.baseNll).toBeCloseTo(b.loss!, 6)
        expect(e.baseNll).toBeCloseTo(nllFromLogits(b, item.labels).nll, 4)
        expect(Math.abs(e.adapterNll - e.baseNll)).toBeGreaterThan(1e-4)
      }
    } finally {
      base.dispose()
    }
    const tokens = r.perExample.reduce((s, e) => s + e.tokens, 0)
    expect(r.adapter.tokens).toBe(tokens)
    expect(r.adapter.meanNll).toBeCloseTo(r.perExample.reduce((s, e) => s + e.adapterNll * e.tokens, 0) / tokens, 9)
    expect(r.base.meanNll).toBeCloseTo(r.perExample.reduce((s, e) => s + e.baseNll * e.tokens, 0) / tokens, 9)
    expect(r.adapter.perplexity).toBeCloseTo(Math.exp(r.adapter.meanNll), 9)
    expect(r.deltaNll).toBeCloseTo(r.adapter.meanNll - r.base.meanNll, 12)
    expect(r.adapterLower).toBe(r.perExample.filter((e) => e.adapterNll < e.baseNll).length)
    expect(r.truncated).toBe(0)
  })

  it('cuts long responses at maxLength and counts them; the Alpaca format changes the prompt', async () => {
    // Byte-level tokens: 6 + 11 + EOS = 18 fits in 20; 14 + 13 + 1 = 28 and 18 + 4 + 1 = 23 do not.
    const cut = await evaluateResponseLoss(reft, examples, { format: { kind: 'raw' }, maxLength: 20 })
    expect(cut.perExample.map((e) => e.truncated)).toEqual([false, true, true])
    expect(cut.truncated).toBe(2)
    expect(cut.perExample[1]!.tokens).toBe(20 - model.encode('Count to three').length) // EOS cut off too
    expect(cut.skipped).toEqual([])
    // 15 leaves "Count to three" (14) one response token and no room at all for the 18-token prompt.
    const skip = await evaluateResponseLoss(reft, examples, { format: { kind: 'raw' }, maxLength: 15 })
    expect(skip.skipped).toEqual([2])
    expect(skip.perExample.map((e) => [e.index, e.tokens])).toEqual([[0, 9], [1, 1]])
    expect(skip.adapter.examples).toBe(2)
    const alpaca = await evaluateResponseLoss(reft, examples.slice(0, 1))
    const raw = await evaluateResponseLoss(reft, examples.slice(0, 1), { format: { kind: 'raw' } })
    expect(alpaca.base.tokens).toBe(raw.base.tokens)
    expect(alpaca.base.meanNll).not.toBeCloseTo(raw.base.meanNll, 6)
  })
})

describe('logit judge and pairwise comparison', () => {
  const template = 'Q: {instruction}\nA: {response_a}\nB: {response_b}'

  it('reads log p("A") / log p("B") at the last position of the exact prompt; order matters', async () => {
    const judge = createLogitJudge(model, { template })
    try {
      expect(judge.chat).toBe(false) // the tiny model has no chat template
      const prompt = judge.promptFor('2+2?', 'four', 'five')
      expect(prompt.endsWith('Q: 2+2?\nA: four\nB: five\n\nBetter response:')).toBe(true)
      const v = await judge.judge('2+2?', 'four', 'five')
      const ids = model.encode(prompt)
      const base = openBaseForward(model)
      const out = await base.forward({ inputIds: ids, batchSize: 1, seqLen: ids.length }, true)
      base.dispose()
      const V = out.dims[2]!
      const lp = labelLogProbs(out.logits.subarray((ids.length - 1) * V, ids.length * V), judgeLabelIds(model))
      expect(v.logProbA).toBeCloseTo(lp.a, 9)
      expect(v.logProbB).toBeCloseTo(lp.b, 9)
      expect(v.logProbA).toBeLessThan(0)
      const swapped = await judge.judge('2+2?', 'five', 'four')
      expect(swapped.logProbA).not.toBeCloseTo(v.logProbA, 9)
    } finally {
      judge.dispose()
    }
    expect(await errorCode(() => createLogitJudge(model, { chat: true }))).toBe('ERR_UNSUPPORTED_MODEL')
  })

  it('end to end: greedy answers from both models, both orders judged, counts add up', async () => {
    const judge = createLogitJudge(model, { template })
    try {
      const prompts = ['hi', 'abc', 'one'].map((p, id) => ({ id, instruction: p, prompt: p }))
      const out = await comparePairwise(reft, model, judge, prompts, { maxNewTokens: 4, batchSize: 2 })
      const { summary: s, comparisons } = out
      expect(s.n).toBe(3)
      expect(s.wins + s.losses + s.ties).toBe(3)
      const direct = await reft.generate(['hi', 'abc', 'one'], { maxNewTokens: 4 })
      expect(comparisons.map((c) => c.adapter)).toEqual(direct.texts.map((t) => t.trim()))
      const bare = await model.generate(['hi', 'abc', 'one'], { maxNewTokens: 4 })
      expect(comparisons.map((c) => c.base)).toEqual(bare.texts.map((t) => t.trim()))
      for (const c of comparisons) {
        expect(c.identical).toBe(c.adapter === c.base)
        if (c.identical) continue
        const again = await judge.judge(c.instruction, c.adapter, c.base)
        expect(c.adapterFirst!.logProbA).toBeCloseTo(again.logProbA, 9)
        expect(c.adapterPreference).toBeGreaterThan(0)
        expect(c.adapterPreference).toBeLessThan(1)
      }
    } finally {
      judge.dispose()
    }
  })
})

describe.skipIf(noData)('on the shared data', () => {
  it('evaluateInstructionFollowing: held-out rows 900-901 and two AlpacaEval prompts', async () => {
    const judge = createLogitJudge(model, { template: '{instruction}|{response_a}|{response_b}' })
    try {
      const r = await evaluateInstructionFollowing(reft, { dataDir, limit: 2, format: 'raw', maxLength: 200, maxNewTokens: 3, judge })
      expect(r.responseLoss!.ids).toEqual([900, 901])
      expect(r.responseLoss!.result.truncated).toBe(2) // the tiny byte-level tokenizer makes 1.7k-character answers long
      expect(r.responseLoss!.source).toBe('UltraFeedback-1k held-out rows 900–901; the last 100 of 1,000 rows are held out, training uses rows 0–899')
      expect(r.pairwise!.comparisons.map((c) => c.id)).toEqual([0, 1])
      expect(r.pairwise!.comparisons[0]!.instruction).toMatch(/Broadway/)
    } finally {
      judge.dispose()
    }
  })

  it('reft instruct-eval: loss and judged comparison, reports; --no-judge; a missing adapter is ERR_INVALID_CONFIG', async () => {
    const adapter = join(ws.root, 'adapter')
    await reft.save(adapter)
    const out = join(ws.root, 'instruct-run')
    const cli = (...args: string[]) => spawnSync('npx', ['tsx', 'src/cli.ts', 'instruct-eval', ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000 })
    const common = ['--model', ws.modelDir, '--adapter', adapter, '--limit', '2', '--format', 'raw', '--max-length', '200', '--data-dir', dataDir]
    const r = cli(...common, '--max-new-tokens', '3', '--output', out)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/response loss \(base\) 2\/2/)
    expect(r.stderr).toMatch(/pairwise 2\/2 \| adapter wins \d, base wins \d, ties \d/)
    expect(r.stdout).toMatch(/\*\*This is not Alpaca-Eval\.\*\*/)
    expect(r.stdout).toMatch(/^\| adapter \| 2 \| \d+ \| \d+\.\d{3} \|/m)
    expect(r.stdout).toMatch(/^\| 2 \| \d \| \d \| \d \(\d\) \| \d+\.\d \| /m)
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Record<string, any>
    expect(report.responseLoss.perExample.map((e: { id: number }) => e.id)).toEqual([900, 901])
    expect(report.pairwise.summary.n).toBe(2)
    expect(report.pairwise.comparisons.map((c: { id: number }) => c.id)).toEqual([0, 1])
    expect(report.judgeIsBase).toBe(true)
    expect(report.settings).toMatchObject({ format: 'raw', maxNewTokens: 3, limit: 2, judgeChatTemplate: false })
    expect(report.notMeasured.join('\n')).toMatch(/GPT-4/)
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/## What was not measured/)

    const noJudge = cli(...common, '--no-judge', '--output', join(ws.root, 'no-judge'))
    expect(noJudge.status, noJudge.stderr).toBe(0)
    const r2 = JSON.parse(readFileSync(join(ws.root, 'no-judge', 'report.json'), 'utf8')) as Record<string, any>
    expect(r2.pairwise).toBeNull()
    expect(r2.judge).toBeNull()
    expect(r2.notMeasured.join('\n')).toMatch(/Pairwise comparison: skipped/)
    expect(r2.responseLoss.adapter.meanNll).toBeCloseTo(report.responseLoss.adapter.meanNll, 9)

    const bad = cli('--model', ws.modelDir, '--data-dir', dataDir)
    expect(bad.status).toBe(1)
    expect(bad.stderr).toMatch(/error \[ERR_INVALID_CONFIG\]: .*--adapter/)
  })
})

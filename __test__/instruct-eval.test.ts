/**
 * The instruction-following evaluation without a model: the held-out split (and that it matches
 * loadTrainingSet's), judge prompt formatting and label log-probabilities, the both-orders
 * outcome rule, win-rate / tie aggregation with Wilson intervals, the comparison loop with
 * scripted generators and judges, loss summaries and the report's measured / not-measured text.
 */
import { describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import {
  alpacaPrompt,
  comparePair,
  comparePairwise,
  formatInstructReport,
  formatJudgePrompt,
  generationPrompt,
  instructionExample,
  instructReportObject,
  judgeLabelIds,
  labelLogProbs,
  loadAlpacaEvalPrompts,
  loadTrainingSet,
  loadUltraFeedbackSplit,
  pairOutcome,
  parsePromptSource,
  splitHeldOut,
  summarizeLosses,
  summarizePairwise,
  signTestP,
  wilsonInterval,
  type InstructEvalResult,
  type JudgeVerdict,
  type PairJudge,
  type PairwiseComparison,
  type PairwiseProgress,
  type TextGenerator,
} from '../src/index.js'
import { charTokenizer } from './helpers/fake-tokenizer.js'

const dataDir = resolve(import.meta.dirname, '../../shared/data')
const noData = !existsSync(dataDir)

describe('held-out split', () => {
  it('holds out the last n rows in order and trains on the rest', () => {
    const rows = [0, 1, 2, 3, 4, 5, 6]
    expect(splitHeldOut(rows, 3)).toEqual({ train: [0, 1, 2, 3], heldOut: [4, 5, 6] })
    expect(splitHeldOut(rows, 0)).toEqual({ train: rows, heldOut: [] })
    expect(() => splitHeldOut(rows, 8)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
  })

  it.skipIf(noData)('UltraFeedback-1k: rows 900-999 held out by default, the same cut as loadTrainingSet(holdOut)', () => {
    const split = loadUltraFeedbackSplit({ dataDir })
    expect(split.train).toHaveLength(900)
    expect(split.heldOut.map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => 900 + i))
    const ts = loadTrainingSet('ultrafeedback_1k', { dataDir, holdOut: 100 })
    expect(ts.heldOut.map((e) => e.prompt)).toEqual(split.heldOut.map((r) => alpacaPrompt(r.instruction, r.input)))
    expect(ts.heldOut.map((e) => e.output)).toEqual(split.heldOut.map((r) => r.output))
    expect(ts.examples.at(-1)!.output).toBe(split.train.at(-1)!.output)
    expect(loadUltraFeedbackSplit({ dataDir, heldOut: 10 }).heldOut[0]!.id).toBe(990)
  })

  it.skipIf(noData)('AlpacaEval prompts: 805 in file order, with source sets; limit keeps the first', () => {
    const all = loadAlpacaEvalPrompts({ dataDir })
    expect(all).toHaveLength(805)
    expect(all[0]).toMatchObject({ id: 0, dataset: 'helpful_base', input: '' })
    expect(loadAlpacaEvalPrompts({ dataDir, limit: 3 }).map((r) => r.instruction)).toEqual(all.slice(0, 3).map((r) => r.instruction))
  })

  it('prompt sources and generation prompts', () => {
    expect(parsePromptSource('alpaca-eval')).toBe('alpaca_eval')
    expect(parsePromptSource('Held_Out')).toBe('held_out')
    expect(() => parsePromptSource('gpt4')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }))
    expect(generationPrompt({ instruction: 'Say hi', input: '' }, 'alpaca')).toBe(alpacaPrompt('Say hi'))
    expect(generationPrompt({ instruction: 'Say hi', input: '' }, 'raw')).toBe('Say hi')
    expect(generationPrompt({ instruction: 'Sum', input: '1 2' }, 'chat')).toBe('Sum\n\n1 2')
    expect(generationPrompt({ instruction: 'Sum', input: '1 2' }, 'alpaca')).toBe(alpacaPrompt('Sum', '1 2'))
    expect(generationPrompt({ instruction: 'Sum', input: '1 2' }, 'no_header')).toBe('### Instruction:\nSum\n\n1 2\n\n### Response:\n')
    expect(instructionExample({ instruction: 'Sum', input: '1 2', output: '3' }, 'raw')).toEqual({ prompt: 'Sum\n\n1 2', output: '3' })
  })
})

describe('judge prompt and label log-probabilities', () => {
  it('fills the placeholders once, in order, and keeps placeholder text inside responses', () => {
    const text = formatJudgePrompt('Name a colour.', 'Red {response_b}', 'Blue')
    expect(text).toContain('## Instruction\nName a colour.\n\n## Response A\nRed {response_b}\n\n## Response B\nBlue\n\n')
    expect(text.indexOf('Red')).toBeLessThan(text.indexOf('Blue'))
    expect(text).toMatch(/A or B/)
    expect(formatJudgePrompt('i', 'x', 'y', '{response_b}|{response_a}|{instruction}')).toBe('y|x|i')
    expect(() => formatJudgePrompt('i', 'x', 'y', 'only {instruction} and {response_a}')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }))
  })

  it('label ids: single-token spellings only; none is ERR_UNSUPPORTED_MODEL', () => {
    // The char tokenizer spells " A" with two tokens, so only the bare letter counts.
    expect(judgeLabelIds(charTokenizer)).toEqual({ a: [65 + 3], b: [66 + 3] })
    const spaced = { encode: (t: string) => Uint32Array.from(t === 'A' ? [5] : t === ' A' ? [6] : t === 'B' ? [7] : [8, 9]) }
    expect(judgeLabelIds(spaced)).toEqual({ a: [5, 6], b: [7] })
    expect(() => judgeLabelIds(charTokenizer, ['AB', 'B'])).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_MODEL' }))
  })

  it('log-softmax at the label ids, summing probabilities over spellings', () => {
    const row = Float32Array.from([0, Math.log(2), Math.log(3), Math.log(4)]) // probabilities 1/10, 2/10, 3/10, 4/10
    const lp = labelLogProbs(row, { a: [1, 3], b: [2] })
    expect(lp.a).toBeCloseTo(Math.log(0.6), 6)
    expect(lp.b).toBeCloseTo(Math.log(0.3), 6)
    expect(labelLogProbs([1000, 0], { a: [0], b: [1] }).a).toBeCloseTo(0, 6)
    expect(() => labelLogProbs(row, { a: [4], b: [0] })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
  })
})

const v = (logProbA: number, logProbB: number): JudgeVerdict => ({ logProbA, logProbB })

describe('both-orders outcome and aggregation', () => {
  it('a win or loss needs both orders to agree; disagreement or a zero margin is a tie', () => {
    expect(pairOutcome(1, -1)).toBe('win')
    expect(pairOutcome(-1, 1)).toBe('loss')
    expect(pairOutcome(1, 1)).toBe('tie') // always "A": position bias
    expect(pairOutcome(-1, -1)).toBe('tie') // always "B"
    expect(pairOutcome(0, -1)).toBe('tie')
  })

  it('comparePair: preference renormalised over A/B and averaged over the orders', () => {
    const c = comparePair({ id: 3, instruction: 'q' }, 'x', 'y', { adapterFirst: v(Math.log(0.3), Math.log(0.1)), baseFirst: v(Math.log(0.2), Math.log(0.2)) })
    expect(c.outcome).toBe('tie')
    expect(c.adapterPreference).toBeCloseTo((0.75 + 0.5) / 2, 9)
    expect(comparePair({ id: 0, instruction: 'q' }, 'same', 'same')).toMatchObject({ identical: true, outcome: 'tie' })
  })

  it('counts, rates, Wilson intervals and judge diagnostics', () => {
    const p = { id: 0, instruction: 'q' }
    const cs: PairwiseComparison[] = [
      comparePair(p, 'a', 'b', { adapterFirst: v(-0.1, -3), baseFirst: v(-3, -0.1) }), // win
      comparePair(p, 'a', 'b', { adapterFirst: v(-0.1, -3), baseFirst: v(-3, -0.1) }), // win
      comparePair(p, 'a', 'b', { adapterFirst: v(-0.1, -3), baseFirst: v(-3, -0.1) }), // win
      comparePair(p, 'a', 'b', { adapterFirst: v(-3, -0.1), baseFirst: v(-0.1, -3) }), // loss
      comparePair(p, 'a', 'b', { adapterFirst: v(-0.1, -3), baseFirst: v(-0.1, -3) }), // tie (always A)
      comparePair(p, 'same', 'same'), // identical
    ]
    const s = summarizePairwise(cs)
    expect(s).toMatchObject({ n: 6, wins: 3, losses: 1, ties: 2, identical: 1 })
    expect(s.winRate).toBeCloseTo(0.5, 12)
    expect(s.ci95).toEqual(wilsonInterval(3, 6))
    expect(s.lossRate).toBeCloseTo(1 / 6, 12)
    expect(s.tieRate).toBeCloseTo(2 / 6, 12)
    expect(s.winRateTiesHalf).toBeCloseTo(4 / 6, 12)
    expect(s.decisiveWinRate).toBeCloseTo(0.75, 12)
    expect(s.decisiveCi95).toEqual(wilsonInterval(3, 4))
    // 10 verdicts from 5 judged pairs; "A" chosen in: 3 (wins, first) + 1 (loss, second) + 2 (tie) = 6.
    expect(s.firstPositionRate).toBeCloseTo(0.6, 12)
    expect(s.meanLabelMass).toBeCloseTo(Math.exp(-0.1) + Math.exp(-3), 9)
    expect(s.meanAdapterPreference).toBeGreaterThan(0.5)
    const none = summarizePairwise([comparePair(p, 'x', 'x')])
    expect(none).toMatchObject({ n: 1, ties: 1, winRate: 0, decisiveWinRate: 0, decisiveCi95: [0, 1], meanAdapterPreference: null, firstPositionRate: null })
    expect(none).toMatchObject({ debiasedAdapter: 0, debiasedBase: 0, debiasedSignTestP: 1, meanDebiasedMargin: null })
  })

  it('the debiased margin cancels a constant position bias and keeps the lean', () => {
    const p = { id: 0, instruction: 'q' }
    // Always "A" (a bias of +2 log-odds toward the first position), but a little more so when the
    // adapter is first: the lean is to the adapter, by (2.5 − 1.5) / 2 = 0.5.
    const lean = comparePair(p, 'a', 'b', { adapterFirst: v(-0.1, -2.6), baseFirst: v(-0.1, -1.6) })
    expect(lean.outcome).toBe('tie')
    expect(lean.debiasedMargin).toBeCloseTo(0.5, 12)
    const against = comparePair(p, 'a', 'b', { adapterFirst: v(-0.1, -1.1), baseFirst: v(-0.1, -3.1) })
    expect(against.debiasedMargin).toBeCloseTo(-1, 12)
    const s = summarizePairwise([lean, lean, lean, against, comparePair(p, 'x', 'x')])
    expect(s).toMatchObject({ ties: 5, debiasedAdapter: 3, debiasedBase: 1 })
    expect(s.debiasedSignTestP).toBeCloseTo(signTestP(3, 4), 12)
    expect(s.meanDebiasedMargin).toBeCloseTo((0.5 * 3 - 1) / 4, 12)
  })
})

describe('signTestP', () => {
  it('is the two-sided exact binomial tail', () => {
    // 18 of 20: 2 × (C(20,0) + C(20,1) + C(20,2)) / 2^20 = 2 × 211 / 1048576.
    expect(signTestP(18, 20)).toBeCloseTo((2 * 211) / 1048576, 12)
    expect(signTestP(2, 20)).toBeCloseTo(signTestP(18, 20), 12)
    expect(signTestP(5, 10)).toBe(1) // the centre: capped at 1
    expect(signTestP(0, 0)).toBe(1)
    expect(signTestP(0, 5)).toBeCloseTo(2 / 32, 12)
    expect(signTestP(600, 1000)).toBeGreaterThan(0) // no overflow at large n
    expect(signTestP(600, 1000)).toBeLessThan(1e-9)
    expect(() => signTestP(3, 2)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
  })
})

/** A generator answering `prefix + prompt`, recording its batches. */
function generator(answer: (prompt: string) => string): TextGenerator & { batches: string[][]; options: unknown[] } {
  const g = {
    batches: [] as string[][],
    options: [] as unknown[],
    async generate(prompts: readonly string[], options?: unknown) {
      g.batches.push([...prompts])
      g.options.push(options)
      const texts = prompts.map(answer)
      return { tokens: texts.map(() => new Uint32Array()), texts }
    },
  }
  return g
}

/** A judge preferring the response containing "good"; with `biased`, always "A". */
function judge(biased = false): PairJudge & { calls: [string, string, string][] } {
  const j = {
    calls: [] as [string, string, string][],
    async judge(instruction: string, a: string, b: string) {
      j.calls.push([instruction, a, b])
      if (biased) return v(-0.2, -2)
      return a.includes('good') ? v(-0.1, -3) : b.includes('good') ? v(-3, -0.1) : v(-1, -1)
    },
  }
  return j
}

describe('comparePairwise with scripted models', () => {
  const prompts = [0, 1, 2, 3, 4].map((id) => ({ id, instruction: `q${id}`, prompt: `P:q${id}` }))
  const adapter = () => generator((p) => (p === 'P:q4' ? 'same' : p === 'P:q3' ? 'bad' : ' good answer\n'))
  const base = () => generator((p) => (p === 'P:q4' ? 'same' : p === 'P:q3' ? 'good' : 'meh'))

  it('judges both orders with trimmed answers, skips identical pairs, batches generation greedily', async () => {
    const a = adapter()
    const b = base()
    const j = judge()
    const events: PairwiseProgress[] = []
    const out = await comparePairwise(a, b, j, prompts, { batchSize: 2, maxNewTokens: 7, onProgress: (e) => events.push(e) })
    expect(out.comparisons.map((c) => c.outcome)).toEqual(['win', 'win', 'win', 'loss', 'tie'])
    expect(out.comparisons[0]).toMatchObject({ id: 0, instruction: 'q0', adapter: 'good answer', base: 'meh', identical: false })
    expect(out.comparisons[4]!.identical).toBe(true)
    expect(j.calls).toHaveLength(8)
    expect(j.calls.slice(0, 2)).toEqual([['q0', 'good answer', 'meh'], ['q0', 'meh', 'good answer']])
    expect(a.batches).toEqual([['P:q0', 'P:q1'], ['P:q2', 'P:q3'], ['P:q4']])
    expect(b.batches).toEqual(a.batches)
    expect(a.options[0]).toMatchObject({ greedy: true, maxNewTokens: 7 })
    expect(out.summary).toMatchObject({ n: 5, wins: 3, losses: 1, ties: 1, identical: 1 })
    expect(events.at(-1)).toEqual({ done: 5, total: 5, wins: 3, losses: 1, ties: 1 })
    expect(events).toHaveLength(5)
  })

  it('a judge that always answers "A" produces only ties, and a 100% first-position rate', async () => {
    const out = await comparePairwise(adapter(), base(), judge(true), prompts.slice(0, 4))
    expect(out.summary).toMatchObject({ wins: 0, losses: 0, ties: 4, firstPositionRate: 1 })
    expect(out.maxNewTokens).toBe(128)
  })

  it('chat generation options pass through; an aborted signal stops with ERR_ABORTED', async () => {
    const a = adapter()
    await comparePairwise(a, base(), judge(), prompts.slice(0, 1), { generate: { chat: true } })
    expect(a.options[0]).toMatchObject({ chat: true, greedy: true })
    const ac = new AbortController()
    ac.abort()
    await expect(comparePairwise(adapter(), base(), judge(), prompts, { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })
})

describe('loss summaries and the report', () => {
  it('token-weighted mean NLL and perplexity', () => {
    const s = summarizeLosses([{ nll: 1, tokens: 1 }, { nll: 2, tokens: 3 }])
    expect(s).toMatchObject({ examples: 2, tokens: 4 })
    expect(s.meanNll).toBeCloseTo(1.75, 12)
    expect(s.perplexity).toBeCloseTo(Math.exp(1.75), 9)
    expect(() => summarizeLosses([])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }))
  })

  const result: InstructEvalResult = {
    responseLoss: {
      source: 'UltraFeedback-1k held-out rows 900–902',
      ids: [900, 901, 902],
      result: {
        adapter: { examples: 2, tokens: 30, meanNll: 1.5, perplexity: Math.exp(1.5) },
        base: { examples: 2, tokens: 30, meanNll: 2, perplexity: Math.exp(2) },
        deltaNll: -0.5, perplexityRatio: Math.exp(-0.5), adapterLower: 1, truncated: 0, skipped: [2], maxLength: 768,
        perExample: [
          { index: 0, tokens: 10, adapterNll: 1, baseNll: 2, truncated: false },
          { index: 1, tokens: 20, adapterNll: 2.5, baseNll: 2, truncated: false },
        ],
      },
    },
    pairwise: {
      source: 'AlpacaEval 1.0 prompts 0–1', maxNewTokens: 16,
      comparisons: [], summary: summarizePairwise([comparePair({ id: 0, instruction: 'q' }, 'a', 'b', { adapterFirst: v(-0.1, -3), baseFirst: v(-3, -0.1) }), comparePair({ id: 1, instruction: 'q' }, 'x', 'x')]),
    },
  }
  const meta = { model: 'smol.gguf', adapter: '/a', judge: 'smol.gguf (the base model)', judgeIsBase: true, judgeParameters: 134_515_008, date: new Date('2026-01-02T00:00:00Z') }

  it('Markdown: not Alpaca-Eval, the loss table with the difference, the win-rate row, measured and not measured', () => {
    const md = formatInstructReport(result, meta)
    expect(md).toMatch(/\*\*This is not Alpaca-Eval\.\*\*/)
    expect(md).toMatch(/^\| base \(no interventions\) \| 2 \| 30 \| 2\.000 \| 7\.39 \|$/m)
    expect(md).toMatch(/^\| adapter \| 2 \| 30 \| 1\.500 \| 4\.48 \|$/m)
    expect(md).toMatch(/^\| adapter − base \| \| \| -0\.500 \| ×0\.607 \|$/m)
    expect(md).toMatch(/lower on 1 of 2 examples \(two-sided sign test p = 1.000\); 0 responses were cut at 768 tokens; 1 example was skipped .*\(rows 902\)\./)
    expect(md).toMatch(/^\| 2 \| 1 \| 0 \| 1 \(1\) \| 50\.0 \| \d+\.\d–\d+\.\d \| 75\.0 \| 100\.0 \|/m)
    const notMeasured = md.slice(md.indexOf('## What was not measured'))
    expect(notMeasured).toMatch(/GPT-4 judge, which this run cannot call/)
    expect(notMeasured).toMatch(/135M parameters\) is weak/)
    expect(notMeasured).toMatch(/also the base model under comparison/)
    expect(md.slice(md.indexOf('## What was measured'), md.indexOf('## What was not measured'))).toMatch(/Held-out response loss.*Pairwise preference/s)
  })

  it('skipped parts move to "not measured"; JSON carries row ids per example', () => {
    const md = formatInstructReport({ responseLoss: result.responseLoss }, { ...meta, judge: null, judgeIsBase: false })
    expect(md).not.toMatch(/## Pairwise comparison/)
    expect(md.slice(md.indexOf('## What was not measured'))).toMatch(/Pairwise comparison: skipped/)
    const obj = instructReportObject(result, meta) as { responseLoss: { perExample: { id: number }[] }; notMeasured: string[]; kind: string }
    expect(obj.kind).toBe('instruct-eval')
    expect(obj.responseLoss.perExample.map((e) => e.id)).toEqual([900, 901])
    expect((obj.responseLoss as unknown as { skippedIds: number[] }).skippedIds).toEqual([902])
    expect(obj.notMeasured[0]).toMatch(/^Alpaca-Eval/)
    const big = formatInstructReport(result, { ...meta, judge: 'big', judgeIsBase: false, judgeParameters: 7e9 })
    expect(big).toMatch(/The judge \(7,000M parameters\) is still no GPT-4/)
    expect(big).not.toMatch(/is weak|also the base model/)
  })
})

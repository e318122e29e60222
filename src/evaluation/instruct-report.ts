/**
 * Reports of the instruction-following evaluation, in the shape of `reft eval`'s: `report.json`
 * (settings, summaries, every scored example and comparison) and `report.md` (tables), both
 * saying plainly what was measured and what was not (Alpaca-Eval's GPT-4 judge above all).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { PairwiseComparison, PairwiseSummary } from './pairwise.js'
import type { ReportFiles } from './report.js'
import type { ResponseLossResult } from './response-loss.js'
import { signTestP } from './stats.js'

/** What an instruction-following run produced (either part may be skipped). */
export interface InstructEvalResult {
  responseLoss?: {
    /** Where the references came from, e.g. "UltraFeedback-1k held-out rows 900–999". */
    source: string
    /** Row ids of the scored examples, in `result.perExample` order. */
    ids: readonly number[]
    result: ResponseLossResult
  }
  pairwise?: {
    /** Where the prompts came from. */
    source: string
    maxNewTokens: number
    summary: PairwiseSummary
    comparisons: PairwiseComparison[]
  }
}

/** Who was compared, and how. */
export interface InstructReportMeta {
  model: string
  adapter: string
  /** The judge's path or name (null when no comparison ran). */
  judge: string | null
  /** The judge is the base model itself. */
  judgeIsBase?: boolean
  /** The judge's parameter count, when known. */
  judgeParameters?: number
  date?: Date
  settings?: Record<string, unknown>
}

/** The "measured" and "not measured" lists of a report. */
export function measurementStatements(r: InstructEvalResult, meta: InstructReportMeta): { measured: string[]; notMeasured: string[] } {
  const measured: string[] = []
  const notMeasured = [
    "Alpaca-Eval (the paper's Table 3 metric): the win rate against text-davinci-003's outputs judged by GPT-4. " +
      'It needs a GPT-4 judge, which this run cannot call, so no number here is comparable with the paper.',
  ]
  if (r.responseLoss !== undefined) {
    const l = r.responseLoss.result
    measured.push(
      `Held-out response loss: mean NLL per token and perplexity of the reference responses of ${l.adapter.examples} examples ` +
        `(${r.responseLoss.source}), under the adapter and under the base model without interventions, on identical tokens ` +
        '(teacher forcing, prompt masked, EOS included). It shows how well each model predicts the references, not how good its own answers are.',
    )
  } else notMeasured.push('Held-out response loss: skipped in this run.')
  if (r.pairwise !== undefined) {
    const p = r.pairwise
    measured.push(
      `Pairwise preference: ${p.summary.n} prompts (${p.source}); both models answered greedily with at most ${p.maxNewTokens} new tokens; ` +
        `the judge, ${meta.judge ?? 'unknown'}, compared each pair in both orders from its next-token log-probabilities of "A" vs "B". ` +
        'A win needs both orders to agree; disagreements and identical answers are ties.',
    )
    const params = meta.judgeParameters
    const small = params === undefined || params < 3e9
    const size = params === undefined ? '' : ` (${(params / 1e6).toLocaleString('en-US', { maximumFractionDigits: 0 })}M parameters)`
    notMeasured.push(
      "The judge's reliability: its agreement with humans or with GPT-4 was not checked. " +
        (small
          ? `A judge this small${size} is weak, close to chance and prone to position bias; treat the win rate as a smoke signal, not as answer quality.`
          : `The judge${size} is still no GPT-4; read the win rate as its opinion, not as Alpaca-Eval's.`) +
        (meta.judgeIsBase === true ? ' The judge is also the base model under comparison, so it may prefer its own style.' : ''),
      `Long answers: the paper generated up to 2,048 tokens (repetition penalty 1.1, no repeated 5-grams); here answers stop at ${p.maxNewTokens} new tokens, which can cut them short.`,
    )
  } else notMeasured.push('Pairwise comparison: skipped in this run.')
  notMeasured.push('Run-to-run variation: one adapter, one greedy pass; no seeds or sampling were varied.')
  return { measured, notMeasured }
}

const f = (x: number, d = 3): string => x.toFixed(d)
const pct = (x: number): string => (100 * x).toFixed(1)
const cell = (s: string): string => s.replace(/\|/g, '\\|')

/** The Markdown report. */
export function formatInstructReport(r: InstructEvalResult, meta: InstructReportMeta): string {
  const date = (meta.date ?? new Date()).toISOString().slice(0, 10)
  const out = [
    '# reft instruct-eval',
    '',
    '**This is not Alpaca-Eval.** The paper scores instruction following by win rate against text-davinci-003 with a GPT-4 judge; ' +
      'this run measures held-out response loss and a pairwise comparison against the base model judged by a local model.',
    '',
    `model: ${meta.model} · adapter: ${meta.adapter} · judge: ${meta.judge ?? 'none'} · date: ${date}`,
    '',
  ]
  if (r.responseLoss !== undefined) {
    const { result: l, source } = r.responseLoss
    out.push(
      '## Held-out response loss',
      '',
      `${source}. Mean negative log-likelihood per response token in nats (EOS included); perplexity = exp(mean NLL).`,
      '',
      '| model | examples | tokens | mean NLL | perplexity |',
      '|---|---:|---:|---:|---:|',
      `| base (no interventions) | ${l.base.examples} | ${l.base.tokens} | ${f(l.base.meanNll)} | ${f(l.base.perplexity, 2)} |`,
      `| adapter | ${l.adapter.examples} | ${l.adapter.tokens} | ${f(l.adapter.meanNll)} | ${f(l.adapter.perplexity, 2)} |`,
      `| adapter − base | | | ${l.deltaNll >= 0 ? '+' : ''}${f(l.deltaNll)} | ×${f(l.perplexityRatio)} |`,
      '',
      `The adapter's NLL is lower on ${l.adapterLower} of ${l.perExample.length} examples (two-sided sign test p = ${f(signTestP(l.adapterLower, l.adapterLower + l.perExample.filter((e) => e.adapterNll > e.baseNll).length), 3)}); ${l.truncated} responses were cut at ${l.maxLength} tokens` +
        (l.skipped.length === 0 ? '.' : `; ${l.skipped.length} example${l.skipped.length === 1 ? ' was' : 's were'} skipped because the prompt alone fills ${l.maxLength} tokens (rows ${l.skipped.map((i) => r.responseLoss!.ids[i]).join(', ')}).`),
      '',
    )
  }
  if (r.pairwise !== undefined) {
    const s = r.pairwise.summary
    const opt = (x: number | null, fmt: (v: number) => string): string => (x === null ? 'n/a' : fmt(x))
    out.push(
      '## Pairwise comparison against the base model (local judge)',
      '',
      `${r.pairwise.source}; greedy, at most ${r.pairwise.maxNewTokens} new tokens each; both orders judged.`,
      '',
      '| prompts | adapter wins | base wins | ties (identical) | win rate % | 95% CI | win rate, ties ½ % | wins / decisive % | 95% CI |',
      '|---:|---:|---:|---:|---:|---|---:|---:|---|',
      `| ${s.n} | ${s.wins} | ${s.losses} | ${s.ties} (${s.identical}) | ${pct(s.winRate)} | ${pct(s.ci95[0])}–${pct(s.ci95[1])} | ${pct(s.winRateTiesHalf)} | ${pct(s.decisiveWinRate)} | ${pct(s.decisiveCi95[0])}–${pct(s.decisiveCi95[1])} |`,
      '',
      `Judge diagnostics: it chose the response shown first in ${opt(s.firstPositionRate, pct)}% of verdicts (50% = no position bias), ` +
        `put ${opt(s.meanLabelMass, pct)}% of its next-token probability on "A" or "B", and gave the adapter's answer a mean probability ` +
        `of ${opt(s.meanAdapterPreference, (v) => f(v))} of being better.`,
      '',
      `With position bias removed (each pair's log-odds for the adapter averaged over the two orders, so a constant lean to one position cancels), ` +
        `the judge leaned to the adapter's answer on ${s.debiasedAdapter} and to the base model's on ${s.debiasedBase} of ${s.n - s.identical} judged pairs ` +
        `(two-sided sign test p = ${f(s.debiasedSignTestP, 3)}; mean log-odds ${opt(s.meanDebiasedMargin, (v) => (v >= 0 ? '+' : '') + f(v))}). ` +
        'A lean is not a verdict: it says which answer the judge found slightly more likely to be better, however unsure it was.',
      '',
    )
  }
  const { measured, notMeasured } = measurementStatements(r, meta)
  out.push('## What was measured', '', ...measured.map((m) => `- ${cell(m)}`), '', '## What was not measured', '', ...notMeasured.map((m) => `- ${cell(m)}`), '')
  return out.join('\n')
}

/** The report as a JSON-ready object (every example and comparison included). */
export function instructReportObject(r: InstructEvalResult, meta: InstructReportMeta): Record<string, unknown> {
  const { measured, notMeasured } = measurementStatements(r, meta)
  const loss = r.responseLoss
  return {
    kind: 'instruct-eval',
    model: meta.model,
    adapter: meta.adapter,
    judge: meta.judge,
    judgeIsBase: meta.judgeIsBase ?? false,
    date: (meta.date ?? new Date()).toISOString(),
    settings: meta.settings ?? {},
    measured,
    notMeasured,
    responseLoss:
      loss === undefined
        ? null
        : {
            source: loss.source,
            ...loss.result,
            skippedIds: loss.result.skipped.map((i) => loss.ids[i]),
            perExample: loss.result.perExample.map((e) => ({ id: loss.ids[e.index], ...e })),
          },
    pairwise: r.pairwise ?? null,
  }
}

/** Writes `report.json` and `report.md` into `dir` (created when missing). */
export function writeInstructReport(r: InstructEvalResult, dir: string, meta: InstructReportMeta): ReportFiles {
  const m = { ...meta, date: meta.date ?? new Date() }
  mkdirSync(dir, { recursive: true })
  const json = join(dir, 'report.json')
  const markdown = join(dir, 'report.md')
  writeFileSync(json, `${JSON.stringify(instructReportObject(r, m), null, 2)}\n`)
  writeFileSync(markdown, formatInstructReport(r, m))
  return { json, markdown }
}

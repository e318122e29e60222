/**
 * Reports of a search: `search.json` (settings, rungs, every trial record, the selection, the
 * default configuration's run and test results) and `search.md` (the same as Markdown tables:
 * every trial by rung, best first; the selected configuration; test scores of the selected and
 * default configurations and, for GLUE, their paired comparison).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DevMetric } from './events.js'
import type { GlueDevSource } from './glue-data.js'
import { formatBudget, type Rung } from './halving.js'
import type { RungOutcome } from './rungs.js'
import { describeConfig, formatLayerSet, type ResolvedSearchSpace, type TrialConfig } from './space.js'
import type { TestComparison } from './glue-test.js'
import type { DefaultRecord, GlueTestRecord, SearchTestRecord, TestRecord, TrialRecord } from './trials-file.js'

/** Everything a report shows. */
export interface SearchReport {
  model: string
  data: { name: string; train: number; dev: number; devShuffle: boolean; seed: number }
  /**
   * GLUE searches: the task, the train subset size (`null`: the whole split, file order), its
   * metric, the test half's size, and where the dev rows come from.
   */
  glue?: { task: string; limit: number | null; primaryMetric: string; testSize: number; devSource: GlueDevSource }
  devMetric: DevMetric
  space: ResolvedSearchSpace
  sampling: string
  gridSize: number
  rungs: readonly Rung[]
  outcomes: readonly RungOutcome[]
  selected: TrialRecord
  /** Selected adapter directory, relative to the output directory. */
  adapter: string
  default: DefaultRecord | undefined
  test: readonly SearchTestRecord[]
  /** Selected minus default on the test rows (GLUE). */
  comparison?: readonly TestComparison[]
  date?: Date
}

/** Paths written by {@link writeSearchReport}. */
export interface SearchReportFiles {
  json: string
  markdown: string
}

const pct = (x: number): string => (100 * x).toFixed(1)
const cell = (s: string): string => s.replace(/\|/g, '\\|')

/** Short names of the dev metrics (scores are shown ×100). */
const metricLabel: Record<DevMetric, string> = { accuracy: 'acc', loss: 'loss', matthews_correlation: 'MCC', pearson: 'Pearson' }

/** `dev acc 32.0% (32/100), loss 1.2345`, `dev MCC 41.3, loss 0.6012` or `dev loss 1.2345`, or why the run failed. */
export function describeScore(r: TrialRecord | DefaultRecord, metric: DevMetric): string {
  if (r.failed !== undefined) return `failed (${r.failed})`
  const loss = `loss ${r.devLoss?.toFixed(4)}`
  if (metric === 'loss') return `dev ${loss}`
  const of = r.devN === undefined ? '' : ` (${r.devCorrect}/${r.devN})`
  const value = r.score === null ? 'undefined' : `${pct(r.score)}${metric === 'accuracy' ? '%' : ''}`
  return `dev ${metricLabel[metric]} ${value}${of}, ${loss}`
}

function devCells(r: { score: number | null; devLoss: number | null; devCorrect?: number; devN?: number }, metric: DevMetric): string {
  const loss = r.devLoss === null ? '—' : r.devLoss.toFixed(4)
  if (metric === 'loss') return loss
  const acc = r.score === null ? '—' : `${pct(r.score)}${r.devN === undefined ? '' : ` (${r.devCorrect}/${r.devN})`}`
  return `${acc} | ${loss}`
}

function configCells(c: TrialConfig): string {
  return `${c.kind} | ${cell(formatLayerSet(c.layers))} | ${c.positions} | ${c.rank} | ${c.lr} | ${c.epochs}`
}

/** The Markdown table of every trial, by rung, best first. */
export function formatTrialsTable(report: Pick<SearchReport, 'outcomes' | 'devMetric' | 'selected'>): string {
  const m = report.devMetric
  const dev = m === 'loss' ? 'dev loss' : `dev ${metricLabel[m]} ${m === 'accuracy' ? '%' : '×100'} | dev loss`
  const lines = [
    `| rung | budget | steps | trial | kind | layers | positions | rank | lr | epochs | ${dev} | params | time s | outcome |`,
    `|---:|---|---:|---:|---|---|---|---:|---:|---:|${m === 'loss' ? '---:|' : '---:|---:|'}---:|---:|---|`,
  ]
  for (const o of report.outcomes) {
    for (const r of o.ranked) {
      const outcome =
        r.failed !== undefined ? `failed: ${cell(r.failed)}` : o.promoted.includes(r.id) ? 'promoted' : r === report.selected ? '**selected**' : ''
      lines.push(
        `| ${o.rung.index} | ${formatBudget(r.budget)} | ${r.steps} | ${r.id} | ${configCells(r.config)} | ${devCells(r, report.devMetric)} | ${r.params} | ${r.seconds.toFixed(1)} | ${outcome} |`,
      )
    }
  }
  return lines.join('\n') + '\n'
}

const interval = (ci: readonly [number, number] | null): string => (ci === null ? '—' : `${pct(ci[0])}–${pct(ci[1])}`)

/** GLUE test rows: the primary metric (×100, with correct/n for accuracy), its interval, and the other metrics. */
function formatGlueTestTable(test: readonly GlueTestRecord[]): string {
  const metric = test[0]!.primaryMetric
  const lines = [`| configuration | task (test half) | n | ${metric} ×100 | 95% CI | other metrics |`, '|---|---|---:|---:|---|---|']
  for (const t of test) {
    const value = t.primary === null ? '—' : `${pct(t.primary)}${t.correct === undefined ? '' : ` (${t.correct}/${t.n})`}`
    const others = Object.entries(t.metrics).filter(([k]) => k !== t.primaryMetric).map(([k, v]) => `${k} ${pct(v)}`).join(', ')
    lines.push(`| ${t.which}: ${cell(describeConfig(t.config))} | ${t.task} | ${t.n} | ${value} | ${interval(t.ci95)} | ${others || '—'} |`)
  }
  return lines.join('\n') + '\n'
}

/** The Markdown table of test results (a search's records are all of one kind). */
export function formatTestTable(test: readonly SearchTestRecord[]): string {
  const glue = test.filter((t): t is GlueTestRecord => t.type === 'glue-test')
  if (glue.length > 0) return formatGlueTestTable(glue)
  const lines = ['| configuration | task | n | accuracy % | 95% CI |', '|---|---|---:|---:|---|']
  for (const t of test as readonly TestRecord[]) {
    lines.push(`| ${t.which}: ${cell(describeConfig(t.config))} | ${cell(t.task)} | ${t.n} | ${pct(t.accuracy)} | ${interval(t.ci95)} |`)
  }
  return lines.join('\n') + '\n'
}

/** Selected minus default, ×100, with the paired bootstrap interval. */
export function formatComparison(c: TestComparison): string {
  const sign = (x: number): string => `${x >= 0 ? '+' : ''}${pct(x)}`
  const ci = c.ci95 === null ? 'interval undefined' : `paired bootstrap 95% CI ${sign(c.ci95[0])} to ${sign(c.ci95[1])}`
  const share = `selected higher in ${pct(c.selectedBetter)}% of ${c.resamples} resamples`
  return `${c.task} ${c.metric}: selected ${pct(c.selected)} − default ${pct(c.default)} = ${sign(c.difference)} (${ci}; ${share})`
}

/** The whole `search.md`. */
export function formatSearchMarkdown(r: SearchReport): string {
  const glue = r.glue
  const order = r.data.devShuffle ? `shuffled with seed ${r.data.seed}` : glue !== undefined && glue.limit !== null ? `subset order, seed ${r.data.seed}` : 'file order'
  const metric =
    r.devMetric === 'loss'
      ? glue === undefined ? 'mean loss over labelled tokens' : 'mean loss of the classification head'
      : glue === undefined
        ? "accuracy (greedy generation, pyreft's scoring; ties broken by dev loss)"
        : `${r.devMetric} (the task's metric, HF evaluate's definition; ties broken by dev loss)`
  const budgets = r.rungs.map((x) => `${x.trials} @ ${formatBudget(x.budget)}`).join(', ')
  const trials = r.outcomes[0]?.ranked.length ?? 0
  const glueDev =
    glue?.devSource === 'eval-half'
      ? `dev = the validation split's eval half (${r.data.dev} rows, pyreft's model-selection half)`
      : `dev slice = the last ${r.data.dev} (${order}), never trained on`
  const source =
    glue === undefined
      ? `${r.data.name}, ${r.data.train} training examples; dev slice = the last ${r.data.dev} of the train split (${order}), never trained on`
      : `GLUE ${glue.task}, ${glue.limit === null ? 'the whole train split' : `a seeded subset of ${glue.limit} train rows (seed ${r.data.seed}, as reft glue train --train-limit)`}: ` +
        `${r.data.train} to train on; ${glueDev}; test = the validation split's test half (${glue.testSize} rows)`
  const defaultName = glue === undefined ? "`reft train`'s defaults" : "`reft glue train`'s LoReFT recipe at docs/EXPERIMENTS.md's CPU scale"
  const parts = [
    '# reft search\n',
    `- model: ${r.model}`,
    `- data: ${source}`,
    `- dev metric: ${metric}`,
    `- sampling: ${r.sampling}, ${trials} of ${r.gridSize} grid points`,
    `- rungs (trials @ budget, a fraction of each trial's full run; survivors restart from scratch): ${budgets}`,
    '',
    '## Selected configuration\n',
    `${describeConfig(r.selected.config)}: ${describeScore(r.selected, r.devMetric)} (trial ${r.selected.id}); adapter \`${r.adapter}/\``,
    '',
  ]
  if (r.default !== undefined) {
    parts.push(`Default configuration (${defaultName}): ${describeConfig(r.default.config)}: ${describeScore(r.default, r.devMetric)}`, '')
  }
  if (r.test.length > 0) parts.push('## Test split\n', formatTestTable(r.test))
  for (const c of r.comparison ?? []) parts.push(`Selected vs default: ${formatComparison(c)}`, '')
  parts.push('## Trials\n', formatTrialsTable(r))
  return parts.join('\n')
}

/** `search.json` as an object. */
export function searchReportObject(r: SearchReport): Record<string, unknown> {
  return {
    date: (r.date ?? new Date()).toISOString(),
    model: r.model,
    data: r.data,
    devMetric: r.devMetric,
    space: r.space,
    sampling: r.sampling,
    gridSize: r.gridSize,
    rungs: r.rungs,
    trials: r.outcomes.flatMap((o) => o.ranked.map((t) => ({ ...t, promoted: o.promoted.includes(t.id) }))),
    selected: { id: r.selected.id, config: r.selected.config, score: r.selected.score, devLoss: r.selected.devLoss, adapter: r.adapter },
    default: r.default ?? null,
    test: r.test,
    ...(r.glue === undefined ? {} : { glue: r.glue, comparison: r.comparison ?? [] }),
  }
}

/** Writes `search.json` and `search.md` into `dir`. */
export function writeSearchReport(dir: string, r: SearchReport): SearchReportFiles {
  mkdirSync(dir, { recursive: true })
  const json = join(dir, 'search.json')
  const markdown = join(dir, 'search.md')
  writeFileSync(json, `${JSON.stringify(searchReportObject(r), null, 2)}\n`)
  writeFileSync(markdown, formatSearchMarkdown(r))
  return { json, markdown }
}

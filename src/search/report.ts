/**
 * Reports of a search: `search.json` (settings, rungs, every trial record, the selection, the
 * default configuration's run and test results) and `search.md` (the same as Markdown tables:
 * every trial by rung, best first; the selected configuration; test accuracy of the selected and
 * default configurations).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DevMetric } from './events.js'
import { formatBudget, type Rung } from './halving.js'
import type { RungOutcome } from './rungs.js'
import { describeConfig, formatLayerSet, type ResolvedSearchSpace, type TrialConfig } from './space.js'
import type { DefaultRecord, TestRecord, TrialRecord } from './trials-file.js'

/** Everything a report shows. */
export interface SearchReport {
  model: string
  data: { name: string; train: number; dev: number; devShuffle: boolean; seed: number }
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
  test: readonly TestRecord[]
  date?: Date
}

/** Paths written by {@link writeSearchReport}. */
export interface SearchReportFiles {
  json: string
  markdown: string
}

const pct = (x: number): string => (100 * x).toFixed(1)
const cell = (s: string): string => s.replace(/\|/g, '\\|')

/** `dev acc 32.0% (32/100), loss 1.2345` or `dev loss 1.2345`, or why the run failed. */
export function describeScore(r: TrialRecord | DefaultRecord, metric: DevMetric): string {
  if (r.failed !== undefined) return `failed (${r.failed})`
  const loss = `loss ${r.devLoss?.toFixed(4)}`
  if (metric === 'loss') return `dev ${loss}`
  const of = r.devN === undefined ? '' : ` (${r.devCorrect}/${r.devN})`
  return `dev acc ${(100 * (r.score ?? 0)).toFixed(1)}%${of}, ${loss}`
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
  const dev = report.devMetric === 'accuracy' ? 'dev acc % | dev loss' : 'dev loss'
  const lines = [
    `| rung | budget | steps | trial | kind | layers | positions | rank | lr | epochs | ${dev} | params | time s | outcome |`,
    `|---:|---|---:|---:|---|---|---|---:|---:|---:|${report.devMetric === 'accuracy' ? '---:|---:|' : '---:|'}---:|---:|---|`,
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

/** The Markdown table of test results. */
export function formatTestTable(test: readonly TestRecord[]): string {
  const lines = ['| configuration | task | n | accuracy % | 95% CI |', '|---|---|---:|---:|---|']
  for (const t of test) {
    lines.push(`| ${t.which}: ${cell(describeConfig(t.config))} | ${cell(t.task)} | ${t.n} | ${pct(t.accuracy)} | ${pct(t.ci95[0])}–${pct(t.ci95[1])} |`)
  }
  return lines.join('\n') + '\n'
}

/** The whole `search.md`. */
export function formatSearchMarkdown(r: SearchReport): string {
  const order = r.data.devShuffle ? `shuffled with seed ${r.data.seed}` : 'file order'
  const metric = r.devMetric === 'accuracy' ? "accuracy (greedy generation, pyreft's scoring; ties broken by dev loss)" : 'mean loss over labelled tokens'
  const budgets = r.rungs.map((x) => `${x.trials} @ ${formatBudget(x.budget)}`).join(', ')
  const trials = r.outcomes[0]?.ranked.length ?? 0
  const parts = [
    '# reft search\n',
    `- model: ${r.model}`,
    `- data: ${r.data.name}, ${r.data.train} training examples; dev slice = the last ${r.data.dev} of the train split (${order}), never trained on`,
    `- dev metric: ${metric}`,
    `- sampling: ${r.sampling}, ${trials} of ${r.gridSize} grid points`,
    `- rungs (trials @ budget, a fraction of each trial's full run; survivors restart from scratch): ${budgets}`,
    '',
    '## Selected configuration\n',
    `${describeConfig(r.selected.config)}: ${describeScore(r.selected, r.devMetric)} (trial ${r.selected.id}); adapter \`${r.adapter}/\``,
    '',
  ]
  if (r.default !== undefined) {
    parts.push(`Default configuration (\`reft train\`'s defaults): ${describeConfig(r.default.config)}: ${describeScore(r.default, r.devMetric)}`, '')
  }
  if (r.test.length > 0) parts.push('## Test split\n', formatTestTable(r.test))
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

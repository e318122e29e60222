/**
 * Reports of an evaluation run: `report.json` (settings, per-task accuracy and interval, every
 * scored example) and `report.md` (one Markdown table row per task).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TaskResult } from './results.js'

/** What was evaluated, for the report header and table. */
export interface ReportMeta {
  /** Base model path or name. @defaultValue `''` */
  model?: string
  /** Adapter directory (none = zero-shot). */
  adapter?: string
  /** When the run finished. @defaultValue now */
  date?: Date
  /** Free-form settings recorded in report.json (batch size, scoring, …). */
  settings?: Record<string, unknown>
}

/** Paths written by {@link writeReport}. */
export interface ReportFiles {
  json: string
  markdown: string
}

const pct = (x: number): string => (100 * x).toFixed(1)

/** The Markdown table of `results` (task, n, accuracy %, 95% CI, model, adapter, date). */
export function formatReportTable(results: readonly TaskResult[], meta: ReportMeta = {}): string {
  const date = (meta.date ?? new Date()).toISOString().slice(0, 10)
  const cell = (s: string): string => s.replace(/\|/g, '\\|')
  const lines = [
    '| task | n | accuracy % | 95% CI | model | adapter | date |',
    '|---|---:|---:|---|---|---|---|',
    ...results.map(
      (r) => `| ${cell(r.task)} | ${r.n} | ${pct(r.accuracy)} | ${pct(r.ci95[0])}–${pct(r.ci95[1])} | ${cell(meta.model ?? '')} | ${cell(meta.adapter ?? 'none (zero-shot)')} | ${date} |`,
    ),
  ]
  return lines.join('\n') + '\n'
}

/** The report as a JSON-ready object (examples included). */
export function reportObject(results: readonly TaskResult[], meta: ReportMeta = {}): Record<string, unknown> {
  return {
    model: meta.model ?? '',
    adapter: meta.adapter ?? null,
    date: (meta.date ?? new Date()).toISOString(),
    settings: meta.settings ?? {},
    tasks: results.map(({ examples: _e, ...summary }) => summary),
    examples: Object.fromEntries(results.map((r) => [r.task, r.examples])),
  }
}

/** Writes `report.json` and `report.md` into `dir` (created when missing). */
export function writeReport(results: readonly TaskResult[], dir: string, meta: ReportMeta = {}): ReportFiles {
  const m = { ...meta, date: meta.date ?? new Date() }
  mkdirSync(dir, { recursive: true })
  const json = join(dir, 'report.json')
  const markdown = join(dir, 'report.md')
  writeFileSync(json, `${JSON.stringify(reportObject(results, m), null, 2)}\n`)
  const title = `# reft eval\n\nGenerations scored with pyreft's rules (examples/loreft/compute_metrics.py); 95% CI = Wilson interval.\n\n`
  writeFileSync(markdown, title + formatReportTable(results, m))
  return { json, markdown }
}

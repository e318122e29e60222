/**
 * The trials file `trials.jsonl` that makes a search resumable. Line 1 is a header holding the
 * search's settings (everything that changes which trials run and what they score); then one
 * line per finished unit of work, appended as it finishes:
 *
 * - `{"type":"trial", id, rung, budget, steps, config, score, devLoss, …}` for trial `id` at `rung`;
 * - `{"type":"default", …}` for the default configuration's full-budget run (`compareDefault`);
 * - `{"type":"test", which, task, …}` for a test-split evaluation of the selected or default config;
 * - `{"type":"glue-test", which, task, …}` for a GLUE search's evaluation on the task's test half.
 *
 * A rerun with equal settings reads the file and skips what it holds; different settings are
 * refused with ERR_INVALID_CONFIG naming the first differing setting. A torn last line (a crash
 * mid-write) is ignored and then overwritten.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { ReftError } from '../errors.js'
import type { CommonsenseScoring } from '../evaluation/extract.js'
import type { GlueMetrics } from '../glue/metrics.js'
import type { GlueMetricName, GlueTaskName } from '../glue/tasks.js'
import type { TrialConfig } from './space.js'

/** Format version of the trials file. */
export const trialsFileVersion = 1

/** What one training run at one budget measured. */
export interface TrialMeasurement {
  config: TrialConfig
  /** Fraction of the full run. */
  budget: number
  /** Optimizer steps trained. */
  steps: number
  /** The dev metric (`null` when the run failed, or when a correlation is undefined: constant predictions). */
  score: number | null
  /** Mean dev loss over labelled tokens (`null` when the run failed). */
  devLoss: number | null
  /** Dev accuracy details when the metric is accuracy. */
  devCorrect?: number
  devN?: number
  /** Training loss of the first and last step. */
  trainLoss: { first: number; last: number } | null
  /** Trainable intervention parameters. */
  params: number
  /** Wall time of training plus dev scoring. */
  seconds: number
  /** Adapter directory relative to the output directory (full-budget runs only). */
  adapter?: string
  /** Why the run failed (e.g. `ERR_NON_FINITE: step 3: loss NaN`); it then ranks last. */
  failed?: string
}

/** A trial at one rung. */
export interface TrialRecord extends TrialMeasurement {
  type: 'trial'
  id: number
  rung: number
}

/** The default configuration's run. */
export interface DefaultRecord extends TrialMeasurement {
  type: 'default'
}

/** A test-split evaluation. */
export interface TestRecord {
  type: 'test'
  which: 'selected' | 'default'
  config: TrialConfig
  task: string
  limit: number | null
  maxNewTokens: number
  scoring: CommonsenseScoring
  n: number
  correct: number
  accuracy: number
  ci95: [number, number]
  seconds: number
}

/**
 * A GLUE search's evaluation on the task's test half (the validation split's held-out half, as
 * `reft glue train` reports on).
 */
export interface GlueTestRecord {
  type: 'glue-test'
  which: 'selected' | 'default'
  config: TrialConfig
  task: GlueTaskName
  /** First N rows of the test half, or `null` for all of it. */
  limit: number | null
  n: number
  /** Every metric HF `evaluate` reports for the task. */
  metrics: GlueMetrics
  primaryMetric: GlueMetricName
  /** The primary metric (`null` when undefined, e.g. Pearson of constant predictions). */
  primary: number | null
  /** Correct predictions, for accuracy tasks. */
  correct?: number
  /** 95% interval of the primary metric: Wilson for accuracy, else a percentile bootstrap; `null` when undefined. */
  ci95: [number, number] | null
  /** Per test row, in test-half order: the predicted class (or STS-B score), for paired comparisons. */
  predictions: number[]
  seconds: number
}

/** A test record of either kind of search. */
export type SearchTestRecord = TestRecord | GlueTestRecord

/** Any record after the header. */
export type TrialsFileRecord = TrialRecord | DefaultRecord | TestRecord | GlueTestRecord

interface Header {
  type: 'search'
  version: number
  settings: Record<string, unknown>
}

/** JSON with object keys sorted, so equal settings compare equal as text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  )
}

function firstDifference(a: Record<string, unknown>, b: Record<string, unknown>): string | undefined {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
  return keys.find((k) => canonicalJson(a[k]) !== canonicalJson(b[k]))
}

function parseLines(file: string): { lines: unknown[]; torn: boolean } {
  const text = readFileSync(file, 'utf8')
  const parts = text.split('\n')
  const lines: unknown[] = []
  let torn = false
  parts.forEach((line, i) => {
    if (line.trim() === '') return
    try {
      lines.push(JSON.parse(line))
    } catch (e) {
      if (i === parts.length - 1) torn = true
      else throw new ReftError('ERR_FORMAT', `${file}:${i + 1}: not valid JSON: ${(e as Error).message}`, { cause: e })
    }
  })
  return { lines, torn }
}

/** An open trials file: the records it held, and `append` for new ones. */
export interface TrialsFile {
  readonly path: string
  /** Records found when the file was opened (empty for a new file). */
  readonly records: readonly TrialsFileRecord[]
  append(record: TrialsFileRecord): void
}

/**
 * Opens `path` for a search with `settings`: creates it with a header when missing, otherwise
 * checks the header (ERR_INVALID_CONFIG when the settings differ, ERR_FORMAT when it is not a
 * trials file) and returns its records.
 */
export function openTrialsFile(path: string, settings: Record<string, unknown>): TrialsFile {
  const header: Header = { type: 'search', version: trialsFileVersion, settings }
  let records: TrialsFileRecord[] = []
  if (existsSync(path)) {
    const { lines, torn } = parseLines(path)
    const first = lines[0] as Partial<Header> | undefined
    if (first?.type !== 'search' || typeof first.settings !== 'object' || first.settings === null) {
      throw new ReftError('ERR_FORMAT', `${path} is not a reft search trials file (no header line)`)
    }
    if (first.version !== trialsFileVersion) throw new ReftError('ERR_FORMAT', `${path} has trials-file version ${first.version}; this reft writes ${trialsFileVersion}`)
    const key = firstDifference(first.settings as Record<string, unknown>, settings)
    if (key !== undefined) {
      const was = canonicalJson((first.settings as Record<string, unknown>)[key]) ?? 'unset'
      const now = canonicalJson(settings[key]) ?? 'unset'
      throw new ReftError(
        'ERR_INVALID_CONFIG',
        `${path} belongs to a different search (${key}: ${was} there, ${now} now); rerun with the same settings, or use another output directory`,
        { field: key },
      )
    }
    records = lines.slice(1) as TrialsFileRecord[]
    // Rewrite without a torn tail, so the next append starts on a fresh line.
    if (torn) writeFileSync(path, [header, ...records].map((r) => JSON.stringify(r)).join('\n') + '\n')
  } else {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, `${JSON.stringify(header)}\n`)
  }
  return {
    path,
    records,
    append: (record) => appendFileSync(path, `${JSON.stringify(record)}\n`),
  }
}

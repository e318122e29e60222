/**
 * The GLUE tasks of the ReFT paper's RoBERTa experiments that the shared data holds (CoLA, SST-2,
 * MRPC, STS-B, RTE, QNLI), described as data, and the loader that turns GLUE's TSV files into
 * typed examples with HF `datasets`' class ids.
 *
 * pyreft loads HF `glue/<task>`; this module reads the original GLUE files (`glue/<Dir>/train.tsv`
 * and `dev.tsv`, GLUE's `dev` being HF's `validation`) and maps their labels to the HF ids, so the
 * examples match HF's row for row. One exception is MRPC's text: HF uses SentEval's tokenized copy
 * ("Dominick 's", "$ 2.5 billion") while GLUE's `train.tsv`/`dev.tsv` keep the original MSR text.
 * The shared data ships the tokenized dev split as `glue/MRPC/dev_senteval_tokenized.tsv`; pass it
 * as `file` to get HF's exact dev text. MNLI, QQP and WNLI are left out: their files are not here.
 */
import { existsSync, readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { invalidConfig, ReftError } from '../errors.js'
import { checkInteger, checkOneOf } from '../validate.js'
import { resolveDataDir, type DataDirOptions } from '../evaluation/data-dir.js'
import { columnIndex, parseTsv } from './tsv.js'

/** The GLUE tasks supported here (HF `glue` config names). */
export type GlueTaskName = 'cola' | 'sst2' | 'mrpc' | 'stsb' | 'rte' | 'qnli'

/** HF split names with labels (GLUE's test labels are hidden, so there is no `test`). */
export type GlueSplit = 'train' | 'validation'

/** Metric names as HF `evaluate.load("glue", task)` returns them. */
export type GlueMetricName = 'accuracy' | 'f1' | 'matthews_correlation' | 'pearson' | 'spearmanr'

/** One GLUE task. */
export interface GlueTaskSpec {
  /** HF `glue` config name. */
  name: GlueTaskName
  /** Folder under `glue/` in GLUE's own spelling (`CoLA`, `SST-2`, `STS-B`). */
  dir: string
  /** Other accepted names (matched case-insensitively, as is `name`). */
  aliases: readonly string[]
  /** HF feature names of the one or two text fields (pyreft's `glue_task_to_keys`). */
  textKeys: readonly [string] | readonly [string, string]
  /** The TSV columns holding those texts, in the same order. */
  textColumns: readonly [string] | readonly [string, string]
  /** The TSV column holding the label. */
  labelColumn: string
  /** Column names for a headerless file (CoLA only); `undefined` when the file has a header row. */
  columns?: readonly string[]
  /** Outputs of the classifier head: 1 for STS-B regression (pyreft `num_labels=1`). */
  numLabels: number
  /** HF `ClassLabel` names in class-id order; empty for STS-B. */
  labelNames: readonly string[]
  /** The file's label strings mapped to HF class ids; `undefined` for STS-B (a float score 0–5). */
  fileLabels?: Readonly<Record<string, number>>
  /** True for STS-B: the label is a similarity score and the loss is MSE. */
  isRegression: boolean
  /** The metrics HF `evaluate` reports for the task. */
  metrics: readonly GlueMetricName[]
  /** The metric the paper reports and pyreft selects the best epoch on. */
  primaryMetric: GlueMetricName
  /** Row counts of HF's splits (the same as the GLUE files'). */
  rows: Readonly<Record<GlueSplit, number>>
  /** Splits present in the shared data (`../shared/data/glue`); QNLI train is too large to ship. */
  sharedSplits: readonly GlueSplit[]
  /** What the task is, for messages and reports. */
  description: string
}

const binary = { '0': 0, '1': 1 } as const
const entailment = { entailment: 0, not_entailment: 1 } as const
const both: readonly GlueSplit[] = ['train', 'validation']

/** Every supported task, in the paper's column order (MNLI and QQP omitted). */
export const glueTasks: readonly GlueTaskSpec[] = [
  {
    name: 'sst2', dir: 'SST-2', aliases: ['sst-2', 'sst'], textKeys: ['sentence'], textColumns: ['sentence'], labelColumn: 'label',
    numLabels: 2, labelNames: ['negative', 'positive'], fileLabels: binary, isRegression: false,
    metrics: ['accuracy'], primaryMetric: 'accuracy', rows: { train: 67349, validation: 872 }, sharedSplits: both,
    description: 'SST-2 movie-review sentiment (lower-cased, tokenized sentences)',
  },
  {
    name: 'mrpc', dir: 'MRPC', aliases: [], textKeys: ['sentence1', 'sentence2'], textColumns: ['#1 String', '#2 String'], labelColumn: 'Quality',
    numLabels: 2, labelNames: ['not_equivalent', 'equivalent'], fileLabels: binary, isRegression: false,
    metrics: ['accuracy', 'f1'], primaryMetric: 'accuracy', rows: { train: 3668, validation: 408 }, sharedSplits: both,
    description: 'MRPC paraphrase pairs (GLUE original text; HF uses the SentEval-tokenized text)',
  },
  {
    name: 'cola', dir: 'CoLA', aliases: [], textKeys: ['sentence'], textColumns: ['sentence'], labelColumn: 'label',
    columns: ['source', 'label', 'mark', 'sentence'],
    numLabels: 2, labelNames: ['unacceptable', 'acceptable'], fileLabels: binary, isRegression: false,
    metrics: ['matthews_correlation'], primaryMetric: 'matthews_correlation', rows: { train: 8551, validation: 1043 }, sharedSplits: both,
    description: 'CoLA grammatical acceptability',
  },
  {
    name: 'qnli', dir: 'QNLI', aliases: [], textKeys: ['question', 'sentence'], textColumns: ['question', 'sentence'], labelColumn: 'label',
    numLabels: 2, labelNames: ['entailment', 'not_entailment'], fileLabels: entailment, isRegression: false,
    metrics: ['accuracy'], primaryMetric: 'accuracy', rows: { train: 104743, validation: 5463 }, sharedSplits: ['validation'],
    description: 'QNLI question/sentence entailment (train split not in the shared data)',
  },
  {
    name: 'rte', dir: 'RTE', aliases: [], textKeys: ['sentence1', 'sentence2'], textColumns: ['sentence1', 'sentence2'], labelColumn: 'label',
    numLabels: 2, labelNames: ['entailment', 'not_entailment'], fileLabels: entailment, isRegression: false,
    metrics: ['accuracy'], primaryMetric: 'accuracy', rows: { train: 2490, validation: 277 }, sharedSplits: both,
    description: 'RTE textual entailment',
  },
  {
    name: 'stsb', dir: 'STS-B', aliases: ['sts-b', 'sts'], textKeys: ['sentence1', 'sentence2'], textColumns: ['sentence1', 'sentence2'], labelColumn: 'score',
    numLabels: 1, labelNames: [], isRegression: true,
    metrics: ['pearson', 'spearmanr'], primaryMetric: 'pearson', rows: { train: 5749, validation: 1500 }, sharedSplits: both,
    description: 'STS-B sentence similarity, a score from 0 to 5 (regression)',
  },
]

/** Every supported task name. */
export const glueTaskNames: readonly GlueTaskName[] = glueTasks.map((t) => t.name)

const byName = new Map<string, GlueTaskSpec>()
for (const t of glueTasks) for (const n of [t.name, t.dir, ...t.aliases]) byName.set(n.toLowerCase(), t)

/** The task called `name` (HF name, GLUE folder name or alias, any case); unknown is ERR_INVALID_CONFIG. */
export function resolveGlueTask(name: string | GlueTaskSpec): GlueTaskSpec {
  if (typeof name !== 'string') return name
  const t = byName.get(name.trim().toLowerCase())
  if (t === undefined) throw invalidConfig('task', `unknown GLUE task ${JSON.stringify(name)}; choose from ${glueTaskNames.join(', ')}`)
  return t
}

/** The data-directory-relative path of a split's file: `glue/<Dir>/train.tsv` or `dev.tsv`. */
export function glueFile(task: string | GlueTaskSpec, split: GlueSplit): string {
  const spec = resolveGlueTask(task)
  return `glue/${spec.dir}/${split === 'train' ? 'train' : 'dev'}.tsv`
}

/** One labelled GLUE example. */
export interface GlueExample {
  /** Row index in its split (HF's `idx`), kept through `limit` and the validation split. */
  idx: number
  /** The first (or only) text: `sentence`, `sentence1` or `question`. */
  text: string
  /** The second text of a pair task; absent for CoLA and SST-2. */
  textPair?: string
  /** HF class id (0 … numLabels−1), or STS-B's float score. */
  label: number
}

/** Options of {@link loadGlueTask}. */
export interface LoadGlueTaskOptions extends DataDirOptions {
  /** Which split. @defaultValue `'train'` */
  split?: GlueSplit
  /** Keep only the first `limit` rows. @defaultValue all */
  limit?: number
  /**
   * A file to read instead of the split's usual one, relative to the data directory (or absolute),
   * e.g. `glue/MRPC/dev_senteval_tokenized.tsv` for HF's tokenized MRPC text.
   * @defaultValue {@link glueFile}`(task, split)`
   */
  file?: string
}

/**
 * Loads a GLUE split as typed examples with HF class ids. A missing file is ERR_IO naming the path
 * it looked for; a malformed row or an unknown label is ERR_FORMAT naming `file:line`.
 */
export function loadGlueTask(task: string | GlueTaskSpec, options: LoadGlueTaskOptions = {}): GlueExample[] {
  const spec = resolveGlueTask(task)
  const split = checkOneOf('split', options.split ?? 'train', ['train', 'validation'] as const)
  const limit = options.limit === undefined ? Infinity : checkInteger('limit', options.limit, { min: 0 })
  const rel = options.file ?? glueFile(spec, split)
  const path = isAbsolute(rel) ? rel : join(resolveDataDir(options), rel)
  if (!existsSync(path)) throw new ReftError('ERR_IO', `missing data file ${path}: ${missingHint(spec, split)}`)
  const table = parseTsv(readFileSync(path, 'utf8'), { name: path, ...(spec.columns === undefined ? {} : { columns: spec.columns }) })
  const textAt = spec.textColumns.map((c) => columnIndex(table, c, path))
  const labelAt = columnIndex(table, spec.labelColumn, path)
  const n = Math.min(limit, table.rows.length)
  const out: GlueExample[] = []
  for (let idx = 0; idx < n; idx++) {
    const row = table.rows[idx]!
    const label = parseGlueLabel(spec, row[labelAt]!, `${path}:${table.lines[idx]}`)
    const example: GlueExample = { idx, text: row[textAt[0]!]!, label }
    if (textAt[1] !== undefined) example.textPair = row[textAt[1]]!
    out.push(example)
  }
  return out
}

/** A label string from the file as an HF class id (or STS-B score); anything unexpected is ERR_FORMAT. */
export function parseGlueLabel(task: string | GlueTaskSpec, raw: string, where = 'label'): number {
  const spec = resolveGlueTask(task)
  if (spec.fileLabels === undefined) {
    // STS-B: HF's glue script does float(score); reject what Python would reject or what is out of 0–5.
    const score = raw.trim() === '' ? NaN : Number(raw)
    if (!Number.isFinite(score) || score < 0 || score > 5) {
      throw new ReftError('ERR_FORMAT', `${where}: ${spec.name} score ${JSON.stringify(raw)} is not a number in [0, 5]`)
    }
    return score
  }
  const id = Object.hasOwn(spec.fileLabels, raw) ? spec.fileLabels[raw] : undefined
  if (id === undefined) {
    throw new ReftError('ERR_FORMAT', `${where}: ${spec.name} label ${JSON.stringify(raw)} is not one of ${Object.keys(spec.fileLabels).join(', ')}`)
  }
  return id
}

function missingHint(spec: GlueTaskSpec, split: GlueSplit): string {
  const file = `${spec.dir}/${split === 'train' ? 'train' : 'dev'}.tsv`
  const absent = spec.sharedSplits.includes(split) ? '' : ` (the shared data does not ship ${file}; it is too large)`
  return `put GLUE's glue/${file} there, as GLUE's download_glue_data.py writes it${absent}`
}

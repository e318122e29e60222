/**
 * The evaluation tasks of pyreft's paper scripts (`task_config.py` `eval_datasets`), their files
 * in the shared data tree (LLM-Adapters `dataset/<name>/test.json` layout), short aliases, and the
 * loader that turns a file into prompts + gold answers.
 *
 * HellaSwag's test set (about 11 MB) is not in the shared data; `hellaswag` still points at
 * `commonsense/hellaswag/test.json` for users who have it, and `hellaswag_dev` is the ReFT
 * authors' 4k HellaSwag dev set (drawn from the training side, so it is not the paper's test set).
 */
import { invalidConfig } from '../errors.js'
import { checkInteger } from '../validate.js'
import { readDataFile, stringField, type DataDirOptions } from './data-dir.js'
import { promptFor, type TaskKind, type TaskRecord } from './templates.js'

/** One evaluation task. */
export interface TaskSpec {
  /** Canonical name (pyreft's dataset name, or `hellaswag_dev`). */
  name: string
  kind: TaskKind
  /** Path under the data directory. */
  file: string
  /** Other accepted names (matched case-insensitively, as is `name`). */
  aliases: readonly string[]
  /** What the file is, for messages and reports. */
  description: string
}

const cs = (name: string, aliases: string[], description: string, file = `commonsense/${name}/test.json`): TaskSpec => ({
  name, kind: 'commonsense', file, aliases, description,
})
const math = (name: string, aliases: string[], description: string): TaskSpec => ({
  name, kind: 'math', file: `math/${name}/test.json`, aliases, description,
})

/** Every task, commonsense first, in pyreft's `eval_datasets` order. */
export const tasks: readonly TaskSpec[] = [
  cs('boolq', [], 'BoolQ dev (3,270)'),
  cs('piqa', [], 'PIQA validation (1,838)'),
  cs('social_i_qa', ['siqa'], 'Social IQa dev (1,954)'),
  cs('hellaswag', [], 'HellaSwag test (10,042; not in the shared data)'),
  cs('hellaswag_dev', [], "ReFT authors' HellaSwag dev set, 4,000 rows from the training side (not the test set)", 'commonsense/hellaswag/train_4k.jsonl'),
  cs('winogrande', [], 'WinoGrande dev (1,267)'),
  cs('ARC-Easy', ['arc_e', 'arc-e', 'arc_easy'], 'ARC-Easy test (2,376)'),
  cs('ARC-Challenge', ['arc_c', 'arc-c', 'arc_challenge'], 'ARC-Challenge test (1,172)'),
  cs('openbookqa', ['obqa'], 'OpenBookQA test (500)'),
  math('MultiArith', [], 'MultiArith (600; overlaps math_10k)'),
  math('gsm8k', [], 'GSM8K test (1,319)'),
  math('SVAMP', [], 'SVAMP (1,000)'),
  math('mawps', [], 'MAWPS test (238)'),
  math('AddSub', [], 'AddSub (395; overlaps math_10k)'),
  math('AQuA', [], 'AQuA-RAT test (254; letter answers)'),
  math('SingleEq', [], 'SingleEq (508; overlaps math_10k)'),
]

/** Names that expand to several tasks. */
export const taskGroups: Readonly<Record<string, readonly string[]>> = {
  /** The seven commonsense test sets present in the shared data (HellaSwag's test set is missing). */
  commonsense: ['boolq', 'piqa', 'social_i_qa', 'winogrande', 'ARC-Easy', 'ARC-Challenge', 'openbookqa'],
  /** pyreft's `math` eval list. */
  math: ['MultiArith', 'gsm8k', 'SVAMP', 'mawps', 'AddSub', 'AQuA', 'SingleEq'],
  /** The four arithmetic sets of the paper's Table 2. */
  math_paper: ['AQuA', 'gsm8k', 'mawps', 'SVAMP'],
}

/** Default `maxNewTokens` per task family (pyreft uses 512 for math; 256 keeps CPU runs affordable). */
export const defaultMaxNewTokens: Readonly<Record<TaskKind, number>> = { commonsense: 32, math: 256 }

const byName = new Map<string, TaskSpec>()
for (const t of tasks) for (const n of [t.name, ...t.aliases]) byName.set(n.toLowerCase(), t)

/** The task called `name` (or an alias, any case). Unknown names are ERR_INVALID_CONFIG listing the choices. */
export function resolveTask(name: string): TaskSpec {
  const t = byName.get(name.trim().toLowerCase())
  if (t === undefined) {
    const choices = tasks.map((x) => (x.aliases.length > 0 ? `${x.name} (${x.aliases.join(', ')})` : x.name))
    throw invalidConfig('task', `unknown task ${JSON.stringify(name)}; choose from ${choices.join(', ')} or a group (${Object.keys(taskGroups).join(', ')})`)
  }
  return t
}

/** Parses `"boolq,arc_e,math"` into task specs (groups expanded, duplicates dropped, order kept). */
export function parseTaskList(list: string | readonly string[]): TaskSpec[] {
  const names = (typeof list === 'string' ? list.split(',') : list).map((s) => s.trim()).filter((s) => s !== '')
  if (names.length === 0) throw invalidConfig('tasks', 'name at least one task')
  const out: TaskSpec[] = []
  for (const n of names) {
    const group = taskGroups[n.toLowerCase()]
    for (const t of group === undefined ? [resolveTask(n)] : group.map(resolveTask)) if (!out.includes(t)) out.push(t)
  }
  return out
}

/** One evaluation example, ready to generate from. */
export interface EvalExample extends TaskRecord {
  /** Index of the record in its file (stable across `limit`, used to resume). */
  id: number
  /** The rendered prompt (`instruction + "\n"`, or the Alpaca no-input template for math). */
  prompt: string
}

/** Options of {@link loadTask}. */
export interface LoadTaskOptions extends DataDirOptions {
  /** Keep only the first `limit` examples. @defaultValue all */
  limit?: number
}

/** Turns LLM-Adapters records into `TaskRecord`s (checks the fields are strings). */
export function toTaskRecords(rows: readonly Record<string, unknown>[], where: string): TaskRecord[] {
  return rows.map((r, i) => ({
    instruction: stringField(r, 'instruction', `${where} record ${i}`),
    answer: stringField(r, 'answer', `${where} record ${i}`),
    output: typeof r.output === 'string' ? r.output : '',
  }))
}

/** Loads a task's examples with pyreft's prompts. Missing files are ERR_IO naming the path. */
export function loadTask(task: string | TaskSpec, options: LoadTaskOptions = {}): EvalExample[] {
  const spec = typeof task === 'string' ? resolveTask(task) : task
  const hint =
    spec.name === 'hellaswag'
      ? 'put LLM-Adapters dataset/hellaswag/test.json there, or evaluate hellaswag_dev (the 4k dev set that is present)'
      : `put LLM-Adapters dataset/${spec.name}/test.json there (AGI-Edgerunners/LLM-Adapters, as pyreft's load_datasets.sh does)`
  const rows = readDataFile(spec.file, hint, options)
  const limited = options.limit === undefined ? rows : rows.slice(0, checkInteger('limit', options.limit, { min: 0 }))
  return toTaskRecords(limited, spec.file).map((r, id) => ({ ...r, id, prompt: promptFor(spec.kind, r.instruction) }))
}

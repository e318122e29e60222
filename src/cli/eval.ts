/**
 * `reft eval`: the paper's commonsense / arithmetic evaluation of a base model or an adapter.
 * Greedy generation, pyreft's scoring, accuracy with a Wilson 95% interval per task, a progress
 * bar, and the Markdown table at the end. With `--output`, per-example results are appended to
 * `generations.jsonl` as they finish (`--resume` continues from them) and `report.json` /
 * `report.md` are written. Ctrl-C stops between batches (ERR_ABORTED, exit status 130).
 */
import { rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { invalidConfig } from '../errors.js'
import { evaluateTask } from '../evaluation/evaluate.js'
import { createEvalProgressReporter } from '../evaluation/progress.js'
import { formatReportTable, writeReport } from '../evaluation/report.js'
import type { TaskResult } from '../evaluation/results.js'
import { loadTask, parseTaskList, taskGroups, tasks } from '../evaluation/tasks.js'
import type { CommonsenseScoring } from '../evaluation/extract.js'
import { loadReft } from '../load-reft.js'
import { checkOneOf } from '../validate.js'
import { type CliIo, int, openModel, parseFlags, placement, placementFlags, placementHelp, str } from './common.js'

const s = { type: 'string' } as const
const b = { type: 'boolean' } as const

/** Flags of `reft eval`. */
export const evalFlags = {
  model: s, adapter: s, tasks: s, limit: s, 'batch-size': s, 'max-new-tokens': s, 'data-dir': s, output: s, resume: b, scoring: s,
  positions: s, untied: b,
  ...placementFlags,
}

const taskList = tasks.map((t) => (t.aliases.length > 0 ? `${t.name} (${t.aliases.join(', ')})` : t.name)).join(', ')

export const evalHelp = `usage: reft eval [--model PATH] [--adapter DIR] --tasks LIST [flags]

Evaluates a base model (zero-shot) or an adapter on the ReFT paper's tasks with pyreft's prompts
and scoring (examples/loreft/compute_metrics.py): greedy decoding; commonsense is correct when the
text after "the correct answer is " equals the label; math takes the last number (within 0.001),
AQuA the first letter A-E. Prints a table of accuracy with a Wilson 95% interval per task.

  --model PATH           HF directory, .gguf file or hf:org/name (default: SmolLM2-135M-Instruct)
${placementHelp}  --adapter DIR          evaluate through a saved adapter (default: the base model, zero-shot)
  --tasks LIST           comma-separated tasks or groups (${Object.keys(taskGroups).join(', ')})
  --limit N              first N examples of each task (default: all)
  --batch-size B         prompts per generate call (default 4)
  --max-new-tokens N     (default 32 for commonsense, 256 for math; pyreft used 512 for math)
  --data-dir DIR         data root (default: $REFT_DATA_DIR, else ../shared/data)
  --output DIR           write report.json, report.md and generations.jsonl there
  --resume               continue from DIR/generations.jsonl (needs --output)
  --scoring S            commonsense scoring: pyreft (exact match, default) | llm-adapters
  --positions P          for a pyreft-saved adapter, which records none: the positions it was
                         trained with, e.g. f3+l3 (default l1); reft's own adapters record theirs
  --untied               such an adapter has separate prefix and suffix interventions

tasks: ${taskList}
(hellaswag_dev is the authors' 4k HellaSwag dev set; HellaSwag's test set is not in the shared data)
`

/** Runs `reft eval`. */
export async function evalCommand(args: string[], io: CliIo): Promise<void> {
  const p = parseFlags(args, evalFlags, false)
  const taskArg = str(p, 'tasks')
  if (taskArg === undefined) throw invalidConfig('--tasks', 'name the tasks to evaluate, e.g. --tasks boolq,arc_e (see reft eval --help)')
  const specs = parseTaskList(taskArg)
  const output = str(p, 'output')
  const resume = p.values.resume === true
  if (resume && output === undefined) throw invalidConfig('--resume', 'needs --output DIR (the run to continue)')
  const scoring = checkOneOf('--scoring', str(p, 'scoring') ?? 'pyreft', ['pyreft', 'llm-adapters'] as const) as CommonsenseScoring
  const common = {
    limit: int(p, 'limit'),
    batchSize: int(p, 'batch-size'),
    maxNewTokens: int(p, 'max-new-tokens'),
    dataDir: str(p, 'data-dir'),
    scoring,
  }
  // Read every task first, so missing data fails before a model is loaded.
  const loaded = specs.map((spec) => loadTask(spec, { dataDir: common.dataDir, limit: common.limit }))
  const resumeFile = output === undefined ? undefined : join(output, 'generations.jsonl')
  if (resumeFile !== undefined && !resume) rmSync(resumeFile, { force: true })

  const modelArg = str(p, 'model')
  const model = await openModel(modelArg, io, placement(p))
  const adapterDir = str(p, 'adapter')
  const controller = new AbortController()
  const onSigint = (): void => controller.abort()
  process.once('SIGINT', onSigint)
  const results: TaskResult[] = []
  try {
    const target = adapterDir === undefined ? model : await loadReft(adapterDir, model, { positions: str(p, 'positions'), tied: p.values.untied !== true })
    try {
      const progress = createEvalProgressReporter({ stream: { write: (t) => io.err(t), isTTY: process.stderr.isTTY } })
      for (const [i, spec] of specs.entries()) {
        try {
          const options = { ...common, examples: loaded[i], resumeFile, onProgress: progress.update, signal: controller.signal }
          results.push(await evaluateTask(target, spec, options))
        } finally {
          progress.finish()
        }
      }
    } finally {
      if (target !== model) target.dispose()
    }
  } finally {
    process.off('SIGINT', onSigint)
    model.dispose()
  }
  const meta = {
    model: modelArg ?? model.path,
    adapter: adapterDir === undefined ? undefined : resolve(adapterDir),
    date: new Date(),
    settings: { ...common, dataDir: common.dataDir ?? null, greedy: true, tasks: specs.map((t) => t.name) },
  }
  io.out(formatReportTable(results, meta))
  if (output !== undefined) {
    const files = writeReport(results, output, meta)
    io.out(`wrote ${files.json} and ${files.markdown}\n`)
  }
}

/**
 * `evaluateTask`: pyreft's generative evaluation (`compute_metrics.py`) for one task. Prompts go
 * in batches through `generate` (left padding, interventions on the prompt positions, greedy by
 * default), each generation is scored with pyreft's extraction rule, and the accuracy comes with a
 * Wilson 95% interval. With `resumeFile`, finished examples are appended as they complete and a
 * restarted run skips them.
 */
import { ReftError } from '../errors.js'
import type { GenerateOptions, GenerateResult } from '../reft-model.js'
import { checkInteger } from '../validate.js'
import type { DataDirOptions } from './data-dir.js'
import { scoreGeneration, type CommonsenseScoring } from './extract.js'
import { appendResults, readResumeFile } from './resume.js'
import type { EvalExampleResult, TaskResult } from './results.js'
import { wilsonInterval } from './stats.js'
import { defaultMaxNewTokens, loadTask, resolveTask, type EvalExample, type TaskSpec } from './tasks.js'

/** Anything that generates from string prompts: a `Model` (zero-shot) or a `ReftModel`. */
export interface TextGenerator {
  generate(prompts: readonly string[], options?: GenerateOptions): Promise<GenerateResult>
}

/** Progress of {@link evaluateTask}, reported after each batch (and once at the start). */
export interface EvalProgressEvent {
  task: string
  /** Examples scored so far, resumed ones included. */
  done: number
  total: number
  correct: number
  /** Examples resumed from `resumeFile`. */
  resumed: number
  elapsedMs: number
  /** Estimated time left, from this run's pace (`NaN` before the first batch). */
  etaMs: number
}

/** Options of {@link evaluateTask}. */
export interface EvaluateTaskOptions extends DataDirOptions {
  /** Evaluate the first `limit` examples only. @defaultValue all */
  limit?: number
  /** Prompts per `generate` call (pyreft evaluates with 4). @defaultValue `4` */
  batchSize?: number
  /** New-token budget. @defaultValue `32` for commonsense, `256` for math (pyreft used 512) */
  maxNewTokens?: number
  /**
   * Commonsense scoring: `'pyreft'` (exact match of the text after the trigger) or
   * `'llm-adapters'` (first label of the dataset's vocabulary in it). @defaultValue `'pyreft'`
   */
  scoring?: CommonsenseScoring
  /** Extra generation options (sampling etc.); `maxNewTokens`, `signal` here take precedence. @defaultValue greedy */
  generate?: Omit<GenerateOptions, 'maxNewTokens' | 'signal' | 'positions'>
  /** JSONL file that finished examples are appended to; a rerun skips the ids it holds for this task. */
  resumeFile?: string
  /** Called after each batch. */
  onProgress?: (event: EvalProgressEvent) => void
  /** Stops between batches (and inside `generate`); rejects with ERR_ABORTED. Finished batches stay in `resumeFile`. */
  signal?: AbortSignal
  /** Evaluate these examples instead of loading the task's file. */
  examples?: readonly EvalExample[]
}

/**
 * Evaluates `target` (a `Model` or `ReftModel`) on `task` (name, alias or spec) and returns the
 * accuracy with its Wilson 95% interval and every scored example, in file order.
 */
export async function evaluateTask(target: TextGenerator, task: string | TaskSpec, options: EvaluateTaskOptions = {}): Promise<TaskResult> {
  const spec = typeof task === 'string' ? resolveTask(task) : task
  const batchSize = checkInteger('batchSize', options.batchSize ?? 4, { min: 1 })
  const maxNewTokens = checkInteger('maxNewTokens', options.maxNewTokens ?? defaultMaxNewTokens[spec.kind], { min: 1 })
  let examples = options.examples ?? loadTask(spec, { dataDir: options.dataDir, limit: options.limit })
  if (options.examples !== undefined && options.limit !== undefined) examples = examples.slice(0, checkInteger('limit', options.limit, { min: 0 }))

  const done = options.resumeFile === undefined ? new Map<number, EvalExampleResult>() : readResumeFile(options.resumeFile, spec.name)
  const wanted = new Set(examples.map((e) => e.id))
  for (const id of [...done.keys()]) if (!wanted.has(id)) done.delete(id)
  const todo = examples.filter((e) => !done.has(e.id))
  const resumed = done.size
  let correct = [...done.values()].filter((r) => r.correct).length
  const start = Date.now()
  let fresh = 0
  const report = (): void => {
    const elapsedMs = Date.now() - start
    const etaMs = fresh === 0 ? (todo.length === 0 ? 0 : NaN) : (elapsedMs / fresh) * (todo.length - fresh)
    options.onProgress?.({ task: spec.name, done: resumed + fresh, total: examples.length, correct, resumed, elapsedMs, etaMs })
  }
  report()

  for (let i = 0; i < todo.length; i += batchSize) {
    if (options.signal?.aborted === true) throw new ReftError('ERR_ABORTED', `evaluation of ${spec.name} aborted`)
    const batch = todo.slice(i, i + batchSize)
    const out = await target.generate(
      batch.map((e) => e.prompt),
      { greedy: true, ...options.generate, maxNewTokens, signal: options.signal },
    )
    const scored = batch.map((e, b): EvalExampleResult => {
      const generation = out.texts[b] ?? ''
      const s = scoreGeneration(spec.kind, e.prompt + generation, e.answer, { scoring: options.scoring, dataset: spec.name })
      return { id: e.id, prompt: e.prompt, generation, prediction: String(s.prediction), gold: e.answer, correct: s.correct }
    })
    for (const r of scored) {
      done.set(r.id, r)
      if (r.correct) correct++
    }
    if (options.resumeFile !== undefined) appendResults(options.resumeFile, spec.name, scored)
    fresh += batch.length
    report()
  }

  const results = examples.map((e) => done.get(e.id)!)
  const n = results.length
  return {
    task: spec.name,
    kind: spec.kind,
    n,
    correct,
    accuracy: n === 0 ? 0 : correct / n,
    ci95: wilsonInterval(correct, n),
    maxNewTokens,
    examples: results,
  }
}

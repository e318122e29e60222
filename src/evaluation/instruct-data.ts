/**
 * Data of the instruction-following evaluation: the held-out split of UltraFeedback-1k and the
 * AlpacaEval 1.0 prompts.
 *
 * Split rule: the **last** `heldOut` rows of `instruct/ultrafeedback_1k.jsonl`, in file order, are
 * held out (100 by default); training uses the rest, the first `1000 − heldOut` rows. This is the
 * same cut as `loadTrainingSet('ultrafeedback_1k', { holdOut })` and as
 * `reft train --data ultrafeedback_1k.jsonl --limit 900` (pyreft holds out GSM8K's last 300 the
 * same way).
 */
import { invalidConfig } from '../errors.js'
import { checkInteger } from '../validate.js'
import { readDataFile, stringField, type DataDirOptions } from './data-dir.js'

/** UltraFeedback-1k under the data directory. */
export const ultrafeedbackFile = 'instruct/ultrafeedback_1k.jsonl'
/** AlpacaEval 1.0's 805 prompts with text-davinci-003's outputs, under the data directory. */
export const alpacaEvalFile = 'instruct/alpaca_eval_text_davinci_003.json'
/** Rows of UltraFeedback-1k held out by default. */
export const defaultHeldOut = 100

/** One instruction with its reference response. */
export interface InstructRecord {
  /** Row index in its file. */
  id: number
  instruction: string
  /** Extra context (`''` when none; UltraFeedback and AlpacaEval never have one). */
  input: string
  /** The reference response (UltraFeedback's chosen answer, or text-davinci-003's output). */
  output: string
  /** AlpacaEval's source set (`helpful_base`, `koala`, …), when known. */
  dataset?: string
}

/** `rows` cut into `train` (all but the last `heldOut`) and `heldOut` (the last `heldOut`). */
export function splitHeldOut<T>(rows: readonly T[], heldOut: number): { train: T[]; heldOut: T[] } {
  const n = checkInteger('heldOut', heldOut, { min: 0, max: rows.length })
  return { train: rows.slice(0, rows.length - n), heldOut: rows.slice(rows.length - n) }
}

function toRecords(rows: readonly Record<string, unknown>[], file: string): InstructRecord[] {
  return rows.map((r, id) => {
    const at = `${file} record ${id}`
    const input = typeof r.input === 'string' ? r.input : ''
    const rec: InstructRecord = { id, instruction: stringField(r, 'instruction', at), input, output: stringField(r, 'output', at) }
    if (typeof r.dataset === 'string') rec.dataset = r.dataset
    return rec
  })
}

/** Options of {@link loadUltraFeedbackSplit}. */
export interface UltraFeedbackSplitOptions extends DataDirOptions {
  /** Rows held out at the end of the file. @defaultValue `100` */
  heldOut?: number
}

/** UltraFeedback-1k cut by the module's split rule; ids are row indices in the file. */
export function loadUltraFeedbackSplit(options: UltraFeedbackSplitOptions = {}): { train: InstructRecord[]; heldOut: InstructRecord[] } {
  const rows = readDataFile(ultrafeedbackFile, 'put pyreft examples/composition/ultrafeedback_1k.json there (see shared/data/README.md)', options)
  return splitHeldOut(toRecords(rows, ultrafeedbackFile), options.heldOut ?? defaultHeldOut)
}

/** Options of {@link loadAlpacaEvalPrompts}. */
export interface AlpacaEvalOptions extends DataDirOptions {
  /** The first `limit` prompts only. @defaultValue all 805 */
  limit?: number
}

/** AlpacaEval 1.0's prompts in file order, with text-davinci-003's outputs as `output`. */
export function loadAlpacaEvalPrompts(options: AlpacaEvalOptions = {}): InstructRecord[] {
  const rows = readDataFile(alpacaEvalFile, 'put alpaca_eval datasets/text_davinci_003/model_outputs.json there (see shared/data/README.md)', options)
  const all = toRecords(rows, alpacaEvalFile)
  return options.limit === undefined ? all : all.slice(0, checkInteger('limit', options.limit, { min: 0 }))
}

/** Where the pairwise comparison's prompts come from. */
export type PromptSource = 'alpaca_eval' | 'held_out'

/** Parses a {@link PromptSource} (`alpaca_eval`/`alpaca-eval`, `held_out`/`held-out`). */
export function parsePromptSource(value: string): PromptSource {
  const v = value.trim().toLowerCase().replace(/-/g, '_')
  if (v === 'alpaca_eval' || v === 'held_out') return v
  throw invalidConfig('prompts', `expected alpaca_eval or held_out, got ${JSON.stringify(value)}`)
}

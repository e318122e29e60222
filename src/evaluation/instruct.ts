/**
 * `evaluateInstructionFollowing`: what can be measured locally of the paper's instruction-following
 * result for an adapter trained on UltraFeedback. (1) Held-out response loss on the last rows of
 * UltraFeedback-1k, adapter vs base. (2) A pairwise comparison against the base model on
 * AlpacaEval's prompts (or the held-out instructions), judged by a local model in both orders.
 * Alpaca-Eval itself (GPT-4 judge) is out of reach; the report says so.
 */
import { formatPrompt, type InstructionExample, type PromptFormat } from '../datasets/instruction.js'
import { invalidConfig } from '../errors.js'
import type { ReftModel } from '../reft-model.js'
import { checkInteger } from '../validate.js'
import type { DataDirOptions } from './data-dir.js'
import { defaultHeldOut, loadAlpacaEvalPrompts, loadUltraFeedbackSplit, type InstructRecord, type PromptSource } from './instruct-data.js'
import type { InstructEvalResult } from './instruct-report.js'
import type { PairJudge } from './judge.js'
import { comparePairwise, type PairwiseProgress, type PairwisePrompt } from './pairwise.js'
import { evaluateResponseLoss, type ResponseLossProgress } from './response-loss.js'

/**
 * How instructions are put to the models, as `reft train --format / --chat`: pyreft's Alpaca
 * template, its header-less variant, the model's chat template, or as-is.
 */
export type InstructFormat = 'alpaca' | 'no_header' | 'chat' | 'raw'

/** Every {@link InstructFormat}. */
export const instructFormats: readonly InstructFormat[] = ['alpaca', 'no_header', 'chat', 'raw']

/** Progress of {@link evaluateInstructionFollowing}. */
export type InstructProgress = ({ phase: 'loss' } & ResponseLossProgress) | ({ phase: 'pairwise' } & PairwiseProgress)

/** Options of {@link evaluateInstructionFollowing}. */
export interface InstructEvalOptions extends DataDirOptions {
  /** Rows held out at the end of UltraFeedback-1k (train on the rest). @defaultValue `100` */
  heldOut?: number
  /** Score only the first `limit` held-out examples, and compare on `limit` prompts. @defaultValue all held-out; 100 prompts */
  limit?: number
  /** The adapter's training format. @defaultValue `'alpaca'` (as `loadTrainingSet('ultrafeedback_1k')`) */
  format?: InstructFormat
  /** Token limit of prompt + reference response for the loss. @defaultValue `768` */
  maxLength?: number
  /** Where the comparison's prompts come from. @defaultValue `'alpaca_eval'` */
  prompts?: PromptSource
  /** New tokens per answer in the comparison. @defaultValue `128` */
  maxNewTokens?: number
  /** Prompts per `generate` call. @defaultValue `4` */
  batchSize?: number
  /** The judge; without one the comparison is skipped. */
  judge?: PairJudge
  /** Compute the response loss. @defaultValue `true` */
  loss?: boolean
  onProgress?: (event: InstructProgress) => void
  signal?: AbortSignal
}

/** The prompt format `ReftModel.dataset` needs for `format`. */
export function promptFormatFor(format: InstructFormat, reft: Pick<ReftModel, 'model'>): PromptFormat {
  if (format === 'chat') return reft.model.chatFormat()
  return { kind: format }
}

const joined = (r: Pick<InstructRecord, 'instruction' | 'input'>): string => (r.input === '' ? r.instruction : `${r.instruction}\n\n${r.input}`)

/** A record as a training-style example: Alpaca keeps `input` apart (its `prompt_input` template); the others append it. */
export function instructionExample(r: Pick<InstructRecord, 'instruction' | 'input' | 'output'>, format: InstructFormat): InstructionExample {
  return format === 'alpaca' ? { prompt: r.instruction, input: r.input, output: r.output } : { prompt: joined(r), output: r.output }
}

/** The generation prompt of a record (the chat template is applied later, by `generate({ chat: true })`). */
export function generationPrompt(r: Pick<InstructRecord, 'instruction' | 'input'>, format: InstructFormat): string {
  if (format === 'chat') return joined(r)
  return formatPrompt(instructionExample({ ...r, output: '' }, format), { kind: format })
}

const rows = (recs: readonly InstructRecord[]): string => (recs.length === 0 ? 'none' : `${recs[0]!.id}–${recs.at(-1)!.id}`)

/** Runs the response loss and (with a judge) the pairwise comparison; see the module docs. */
export async function evaluateInstructionFollowing(reft: ReftModel, options: InstructEvalOptions = {}): Promise<InstructEvalResult> {
  const format = options.format ?? 'alpaca'
  if (!instructFormats.includes(format)) throw invalidConfig('format', `expected one of ${instructFormats.join(', ')}, got ${JSON.stringify(format)}`)
  const heldOutN = options.heldOut ?? defaultHeldOut
  const limit = options.limit === undefined ? undefined : checkInteger('limit', options.limit, { min: 1 })
  const source = options.prompts ?? 'alpaca_eval'
  const wantLoss = options.loss ?? true
  const split = wantLoss || source === 'held_out' ? loadUltraFeedbackSplit({ dataDir: options.dataDir, heldOut: heldOutN }) : undefined
  const total = split === undefined ? 0 : split.train.length + split.heldOut.length
  const heldOut = split === undefined ? [] : split.heldOut.slice(0, limit ?? split.heldOut.length)
  const heldOutSource = `UltraFeedback-1k held-out rows ${rows(heldOut)}; the last ${heldOutN} of ${total.toLocaleString('en-US')} rows are held out, training uses rows 0–${total - heldOutN - 1}`
  const result: InstructEvalResult = {}

  if (wantLoss) {
    if (heldOut.length === 0) throw invalidConfig('heldOut', 'no held-out examples to score (heldOut is 0)')
    const examples = heldOut.map((r) => instructionExample(r, format))
    const loss = await evaluateResponseLoss(reft, examples, {
      format: promptFormatFor(format, reft),
      maxLength: options.maxLength,
      signal: options.signal,
      onProgress: (e) => options.onProgress?.({ phase: 'loss', ...e }),
    })
    result.responseLoss = { source: heldOutSource, ids: heldOut.map((r) => r.id), result: loss }
  }

  if (options.judge !== undefined) {
    const records = source === 'held_out' ? heldOut : loadAlpacaEvalPrompts({ dataDir: options.dataDir, limit: limit ?? 100 })
    const prompts: PairwisePrompt[] = records.map((r) => ({ id: r.id, instruction: joined(r), prompt: generationPrompt(r, format) }))
    const out = await comparePairwise(reft, reft.model, options.judge, prompts, {
      maxNewTokens: options.maxNewTokens,
      batchSize: options.batchSize,
      generate: format === 'chat' ? { chat: true } : {},
      signal: options.signal,
      onProgress: (e) => options.onProgress?.({ phase: 'pairwise', ...e }),
    })
    const what = source === 'held_out' ? heldOutSource : `AlpacaEval 1.0 prompts ${rows(records)} of 805, in file order`
    result.pairwise = { source: `${what}, ${format} prompt format`, ...out }
  }
  return result
}

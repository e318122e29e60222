/**
 * Held-out response loss: the mean negative log-likelihood per token of a reference response
 * given its prompt (prompt tokens masked, EOS included as in training), and its perplexity
 * `exp(mean NLL)`, for an adapter and for its base model without interventions on the very same
 * tokens. Each example is one forward (no padding), so per-example numbers come for free; the
 * summary is token-weighted, the same as `trainer.evaluate`'s held-out loss.
 */
import { collateTraining, type CollatableItem } from '../datasets/collate.js'
import type { InstructionExample, PromptFormat } from '../datasets/instruction.js'
import { ReftError } from '../errors.js'
import type { ReftModel } from '../reft-model.js'
import { checkInteger } from '../validate.js'
import { openBaseForward, withoutPositions, type BatchForward } from './base-forward.js'

/** Token-weighted loss over a set of responses. */
export interface ResponseLossStats {
  /** Responses scored. */
  examples: number
  /** Response tokens that entered the loss (EOS included). */
  tokens: number
  /** Mean NLL per response token, in nats. */
  meanNll: number
  /** `exp(meanNll)`. */
  perplexity: number
}

/** One response's loss under both models. */
export interface ExampleLoss {
  /** Index into the given examples. */
  index: number
  tokens: number
  adapterNll: number
  baseNll: number
  /** The prompt + response reached `maxLength` and the response's tail was cut. */
  truncated: boolean
}

/** Result of {@link evaluateResponseLoss}. */
export interface ResponseLossResult {
  adapter: ResponseLossStats
  base: ResponseLossStats
  /** `adapter.meanNll − base.meanNll` (negative: the adapter fits the references better). */
  deltaNll: number
  /** `adapter.perplexity / base.perplexity` (= `exp(deltaNll)`). */
  perplexityRatio: number
  /** Examples whose response NLL is lower under the adapter. */
  adapterLower: number
  /** Examples cut at `maxLength`. */
  truncated: number
  /** Indices of examples not scored: their prompt alone leaves no room for a response token within `maxLength`. */
  skipped: number[]
  maxLength: number
  perExample: ExampleLoss[]
}

/** Loss of one item: mean NLL over its labelled tokens and their count. */
export interface ItemLoss {
  nll: number
  tokens: number
}

/** Progress of {@link evaluateResponseLoss}: after each forward. */
export interface ResponseLossProgress {
  model: 'adapter' | 'base'
  done: number
  total: number
}

/** Options of {@link evaluateResponseLoss}. */
export interface ResponseLossOptions {
  /** Prompt format, as for `ReftModel.dataset` (use the adapter's training format). @defaultValue `{ kind: 'alpaca' }` */
  format?: PromptFormat
  /** Tokens per prompt + response; longer responses are cut at the tail (pyreft used 768 for UltraFeedback). @defaultValue `768` */
  maxLength?: number
  /** The base model's forward. @defaultValue a fresh no-intervention handle on `reft.model` */
  base?: BatchForward
  onProgress?: (event: ResponseLossProgress) => void
  /** Checked between forwards; rejects with ERR_ABORTED. */
  signal?: AbortSignal
}

/** Summary of item losses, weighted by their token counts. */
export function summarizeLosses(losses: readonly ItemLoss[]): ResponseLossStats {
  let sum = 0
  let tokens = 0
  for (const l of losses) {
    sum += l.nll * l.tokens
    tokens += l.tokens
  }
  if (tokens === 0) throw new ReftError('ERR_SHAPE', 'no labelled response tokens to score')
  const meanNll = sum / tokens
  return { examples: losses.length, tokens, meanNll, perplexity: Math.exp(meanNll) }
}

/**
 * Loss of each item, one forward per item. `dropPositions` strips intervention positions (for a
 * forward without interventions).
 */
export async function itemLosses(
  target: BatchForward,
  items: readonly CollatableItem[],
  options: { dropPositions?: boolean; signal?: AbortSignal; onItem?: (done: number) => void } = {},
): Promise<ItemLoss[]> {
  const out: ItemLoss[] = []
  for (const [i, item] of items.entries()) {
    if (options.signal?.aborted === true) throw new ReftError('ERR_ABORTED', 'response-loss evaluation aborted')
    const batch = collateTraining([item])
    const r = await target.forward(options.dropPositions === true ? withoutPositions(batch) : batch, false)
    if (r.loss === undefined || r.numTokens === 0) throw new ReftError('ERR_SHAPE', `item ${i} has no labelled tokens`)
    out.push({ nll: r.loss, tokens: r.numTokens })
    options.onItem?.(i + 1)
  }
  return out
}

/**
 * Scores the reference `output` of each example given its `prompt` under `reft` and under its
 * base model. Both see identical token sequences (built once with `reft.dataset`). Responses that
 * do not fit in `maxLength` are cut at the tail; an example whose prompt alone fills `maxLength`
 * is skipped and listed in `skipped` (pyreft's truncation leaves such an example without labels).
 */
export async function evaluateResponseLoss(
  reft: ReftModel,
  examples: readonly InstructionExample[],
  options: ResponseLossOptions = {},
): Promise<ResponseLossResult> {
  const maxLength = checkInteger('maxLength', options.maxLength ?? 768, { min: 2 })
  if (examples.length === 0) throw new ReftError('ERR_SHAPE', 'no examples to score')
  const format = options.format ?? { kind: 'alpaca' }
  const full = reft.dataset(examples, { format })
  const fits = (i: number): boolean => full[i]!.promptLength + 1 <= maxLength
  const kept = full.flatMap((_, i) => (fits(i) ? [i] : []))
  const skipped = full.flatMap((_, i) => (fits(i) ? [] : [i]))
  if (kept.length === 0) throw new ReftError('ERR_OUT_OF_RANGE', `every prompt fills maxLength ${maxLength} on its own`)
  const items = reft.dataset(kept.map((i) => examples[i]!), { format, maxLength })
  const total = items.length
  const adapter = await itemLosses(reft, items, {
    signal: options.signal,
    onItem: (done) => options.onProgress?.({ model: 'adapter', done, total }),
  })
  const ownBase = options.base === undefined ? openBaseForward(reft.model) : undefined
  let base: ItemLoss[]
  try {
    base = await itemLosses(options.base ?? ownBase!, items, {
      dropPositions: true,
      signal: options.signal,
      onItem: (done) => options.onProgress?.({ model: 'base', done, total }),
    })
  } finally {
    ownBase?.dispose()
  }
  const perExample = items.map((item, k): ExampleLoss => ({
    index: kept[k]!,
    tokens: adapter[k]!.tokens,
    adapterNll: adapter[k]!.nll,
    baseNll: base[k]!.nll,
    truncated: full[kept[k]!]!.inputIds.length > item.inputIds.length,
  }))
  const a = summarizeLosses(adapter)
  const b = summarizeLosses(base)
  return {
    adapter: a,
    base: b,
    deltaNll: a.meanNll - b.meanNll,
    perplexityRatio: Math.exp(a.meanNll - b.meanNll),
    adapterLower: perExample.filter((e) => e.adapterNll < e.baseNll).length,
    truncated: perExample.filter((e) => e.truncated).length,
    skipped,
    maxLength,
    perExample,
  }
}

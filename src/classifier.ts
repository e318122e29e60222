/**
 * Sequence classification with encoders (BERT, RoBERTa, XLM-R): the head options of
 * `model.withInterventions`, the longest input a model takes, and batched prediction
 * (`ReftModel.classify`). The head reads the first token (`[CLS]` / `<s>`): `out(tanh(dense(h₀)))`,
 * trained together with the interventions (pyreft's `--allow_cls_grad`); one output is
 * regression (MSE loss), two or more are classes (cross-entropy).
 */
import { buildClassificationItems, type ClassificationExample, type ClassificationItem } from './datasets/classification.js'
import { collateTraining } from './datasets/collate.js'
import { ReftError, invalidConfig, outOfRange } from './errors.js'
import type { ResolvedInterventionConfig } from './config.js'
import type { NativeBatch, NativeForwardOutput, NativeModelInfo } from './native-api.js'
import { checkBoolean, checkInteger } from './validate.js'

/** A classification or regression head for an encoder. */
export interface HeadConfig {
  /** Outputs: the number of classes, or 1 for regression (e.g. STS-B). */
  numLabels: number
  /**
   * Train the dense layer as well as the output layer.
   * @defaultValue `true`, except for a BERT whose dense layer is its pretrained pooler (kept frozen, as in pyreft)
   */
  trainDense?: boolean
}

/** A created head, as `ReftModel.head()` reports it. */
export interface HeadInfo {
  numLabels: number
  trainDense: boolean
}

/** One input of `classify`: a text, or a text pair. */
export type ClassifyInput = string | readonly [string, string]

/** Options of `ReftModel.classify` and `ReftModel.classificationDataset`. */
export interface ClassifyOptions {
  /** Examples per forward pass. @defaultValue `32` (pyreft's GLUE eval batch size) */
  batchSize?: number
  /** Longest tokenised input, special tokens included (longest-first truncation). @defaultValue the model's limit, {@link encoderMaxLength} */
  maxLength?: number
  /** Checked between batches; aborting rejects with ERR_ABORTED. */
  signal?: AbortSignal
}

/** What `classify` returns, one row per input. */
export interface ClassifyResult {
  /** Head outputs `[example][numLabels]`. */
  logits: number[][]
  /** Argmax class per example (first maximum wins), or the raw value for regression. */
  labels: number[]
}

/** The adapter surface classification needs (`ReftModel` provides it). */
export interface Classifiable {
  readonly config: ResolvedInterventionConfig
  head(): HeadInfo | null
  forward(batch: NativeBatch, wantLogits: boolean): Promise<NativeForwardOutput>
}

/** Validates head options. */
export function resolveHead(head: HeadConfig): HeadConfig {
  if (typeof head !== 'object' || head === null) throw invalidConfig('head', 'expected an object { numLabels, trainDense? }')
  const numLabels = checkInteger('head.numLabels', head.numLabels, { min: 1 })
  return head.trainDense === undefined ? { numLabels } : { numLabels, trainDense: checkBoolean('head.trainDense', head.trainDense) }
}

/**
 * The longest tokenised input (special tokens included) an encoder takes with the appended sink
 * token: BERT numbers positions 0 … L, so L ≤ maxPositionEmbeddings − 1; RoBERTa and XLM-R number
 * real tokens from pad + 1 (the sink, a pad token, gets position pad), so L ≤ maxPositionEmbeddings − 1 − pad.
 */
export function encoderMaxLength(info: Pick<NativeModelInfo, 'architecture' | 'maxPositionEmbeddings' | 'padTokenId'>): number {
  const offset = info.architecture === 'bert' ? 0 : (info.padTokenId ?? 1)
  return info.maxPositionEmbeddings - 1 - offset
}

/** `requested` checked against the model's limit, or the limit itself. */
export function resolveMaxLength(info: NativeModelInfo, requested: number | undefined): number {
  const limit = encoderMaxLength(info)
  if (requested === undefined) return limit
  const n = checkInteger('maxLength', requested, { min: 2 })
  if (n > limit) throw outOfRange('maxLength', `${info.architecture} with ${info.maxPositionEmbeddings} position embeddings takes at most ${limit} tokens, got ${n}`)
  return n
}

/** Throws unless `info` is an encoder (ERR_UNSUPPORTED_MODEL naming `what`). */
export function requireEncoder(info: Pick<NativeModelInfo, 'kind' | 'architecture'>, what: string): void {
  if (info.kind !== 'encoder') throw new ReftError('ERR_UNSUPPORTED_MODEL', `${what} needs an encoder (BERT, RoBERTa, XLM-R); ${info.architecture} is a decoder`)
}

/** Throws unless `info` is a decoder (ERR_UNSUPPORTED_MODEL naming `what`). */
export function requireDecoder(info: Pick<NativeModelInfo, 'kind' | 'architecture'>, what: string): void {
  if (info.kind === 'encoder') {
    throw new ReftError('ERR_UNSUPPORTED_MODEL', `${what}: ${info.architecture} is an encoder, it has no language-model head (use a classification head and classify())`)
  }
}

/** Classification items for `reft`'s positions and head. */
export function classificationItems(
  reft: Classifiable,
  tok: Parameters<typeof buildClassificationItems>[0],
  info: NativeModelInfo,
  examples: readonly ClassificationExample[],
  maxLength: number | undefined,
): ClassificationItem[] {
  requireEncoder(info, 'a classification dataset')
  const head = reft.head()
  const c = reft.config
  return buildClassificationItems(tok, examples, {
    positions: c.positions,
    numInterventions: c.numInterventions,
    shareWeights: c.shareWeights,
    padId: info.padTokenId ?? 0,
    maxLength: resolveMaxLength(info, maxLength),
    ...(head === null ? {} : { numLabels: head.numLabels }),
  })
}

/** Argmax with the first maximum winning (`np.argmax`), or the value itself for one output. */
export function labelFromLogits(row: readonly number[]): number {
  if (row.length === 1) return row[0]!
  let best = 0
  for (let k = 1; k < row.length; k++) if (row[k]! > row[best]!) best = k
  return best
}

/** Batched forward passes over `items`; one logits row per item. */
export async function predictItems(reft: Classifiable, items: readonly ClassificationItem[], padId: number, options: ClassifyOptions = {}): Promise<ClassifyResult> {
  const head = reft.head()
  if (head === null) throw invalidConfig('head', 'this adapter has no classification head (create it with withInterventions(config, { head: { numLabels } }))')
  const batchSize = checkInteger('batchSize', options.batchSize ?? 32, { min: 1 })
  const logits: number[][] = []
  for (let i = 0; i < items.length; i += batchSize) {
    if (options.signal?.aborted === true) throw new ReftError('ERR_ABORTED', `classification aborted after ${i} examples`)
    const rows = items.slice(i, i + batchSize).map(({ classLabel: _unused, ...rest }) => rest)
    const out = await reft.forward(collateTraining(rows, { padId }), true)
    const k = head.numLabels
    if (out.dims.length !== 2 || out.dims[0] !== rows.length || out.dims[1] !== k) {
      throw new ReftError('ERR_SHAPE', `expected head logits [${rows.length}, ${k}], got [${out.dims.join(', ')}]`)
    }
    for (let b = 0; b < rows.length; b++) logits.push(Array.from(out.logits.subarray(b * k, (b + 1) * k)))
  }
  return { logits, labels: logits.map(labelFromLogits) }
}

/** `ClassifyInput`s as examples without labels. */
export function inputsToExamples(inputs: readonly ClassifyInput[]): ClassificationExample[] {
  return inputs.map((x, i) => {
    if (typeof x === 'string') return { text: x }
    if (Array.isArray(x) && x.length === 2) return { text: x[0], textPair: x[1] }
    throw invalidConfig(`inputs[${i}]`, 'expected a string or a [text, textPair] pair')
  })
}

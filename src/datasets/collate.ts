/**
 * Batch collation into `NativeBatch` typed arrays.
 *
 * Training batches are right-padded (pyreft `DataCollatorForSeq2Seq`, `padding="longest"`), so
 * absolute positions stay valid; padding gets `padId`, label −100 and attention 0. Generation
 * batches are left-padded and every row's positions move by its left-pad count.
 *
 * Classification rows (encoders with a head) carry `tokenTypeIds` and a per-example `classLabel`
 * instead of token labels; their batches get `tokenTypeIds` (0 on padding) and `classLabels`, and
 * no token `labels`. Rows without interventions (a head-only adapter) give a batch without
 * positions.
 */
import { ReftError } from '../errors.js'
import type { NativeBatch } from '../native-api.js'
import { flattenPositions, shiftForLeftPadding, toBatchLayout } from '../positions.js'
import { checkInteger } from '../validate.js'
import type { PromptItem } from './prompt-items.js'
import { ignoreIndex } from './supervised.js'

/** A row as collation sees it: ids, optional mask and labels, and per-intervention positions. */
export interface CollatableItem {
  inputIds: Uint32Array
  attentionMask?: Uint8Array
  labels?: Int32Array
  /** `[intervention][position]`; `[]` for an adapter without interventions. */
  locations: number[][]
  /** Encoders: segment ids (`token_type_ids`), one per token. */
  tokenTypeIds?: Uint32Array
  /** Adapters with a head: the example's class id, or its score for regression. */
  classLabel?: number
}

/** Options of {@link collateTraining} and {@link collatePrompts}. */
export interface CollateOptions {
  /**
   * Token id written into padding (masked out and unlabelled, so any valid id works).
   * @defaultValue `0`
   */
  padId?: number
  /**
   * Round the padded length up to a multiple of this.
   * @defaultValue `1`
   */
  padToMultipleOf?: number
}

/** A left-padded prompt batch plus how many pad tokens each row received. */
export interface PromptBatch extends NativeBatch {
  padCounts: number[]
}

function paddedLength(items: readonly CollatableItem[], options: CollateOptions): number {
  if (items.length === 0) throw new ReftError('ERR_SHAPE', 'cannot collate an empty batch')
  const multiple = checkInteger('padToMultipleOf', options.padToMultipleOf ?? 1, { min: 1 })
  let max = 0
  items.forEach((it, b) => {
    if (it.inputIds.length === 0) throw new ReftError('ERR_SHAPE', `batch row ${b} is empty`)
    if (it.attentionMask !== undefined && it.attentionMask.length !== it.inputIds.length) {
      throw new ReftError('ERR_SHAPE', `batch row ${b}: attentionMask length ${it.attentionMask.length} != ${it.inputIds.length}`)
    }
    if (it.labels !== undefined && it.labels.length !== it.inputIds.length) {
      throw new ReftError('ERR_SHAPE', `batch row ${b}: labels length ${it.labels.length} != ${it.inputIds.length}`)
    }
    if (it.tokenTypeIds !== undefined && it.tokenTypeIds.length !== it.inputIds.length) {
      throw new ReftError('ERR_SHAPE', `batch row ${b}: tokenTypeIds length ${it.tokenTypeIds.length} != ${it.inputIds.length}`)
    }
    for (const list of it.locations) {
      for (const p of list) {
        if (!Number.isInteger(p) || p < 0 || p >= it.inputIds.length) {
          throw new ReftError('ERR_OUT_OF_RANGE', `batch row ${b}: position ${p} outside 0..${it.inputIds.length - 1}`)
        }
      }
    }
    max = Math.max(max, it.inputIds.length)
  })
  return Math.ceil(max / multiple) * multiple
}

/** The same answer from every row, or ERR_SHAPE naming the first row that differs. */
function uniform(items: readonly CollatableItem[], what: string, has: (it: CollatableItem) => boolean): boolean {
  const first = has(items[0]!)
  const bad = items.findIndex((it) => has(it) !== first)
  if (bad !== -1) throw new ReftError('ERR_SHAPE', `batch row ${bad} ${first ? 'lacks' : 'has'} ${what} and row 0 ${first ? 'has' : 'does not'}`)
  return first
}

/**
 * Right-padded training batch: token labels (−100 on padding), or for classification rows
 * `classLabels` (one per row) and no token labels. Token types are 0 on padding.
 */
export function collateTraining(items: readonly CollatableItem[], options: CollateOptions = {}): NativeBatch {
  const padId = checkInteger('padId', options.padId ?? 0, { min: 0 })
  const seqLen = paddedLength(items, options)
  const batchSize = items.length
  const classification = uniform(items, 'a classLabel', (it) => it.classLabel !== undefined)
  const withTypes = uniform(items, 'tokenTypeIds', (it) => it.tokenTypeIds !== undefined)
  const intervened = uniform(items, 'intervention locations', (it) => it.locations.length > 0)
  const inputIds = new Uint32Array(batchSize * seqLen).fill(padId)
  const attentionMask = new Uint8Array(batchSize * seqLen)
  const labels = classification ? undefined : new Int32Array(batchSize * seqLen).fill(ignoreIndex)
  const tokenTypeIds = withTypes ? new Uint32Array(batchSize * seqLen) : undefined
  const classLabels = classification ? new Float32Array(batchSize) : undefined
  items.forEach((it, b) => {
    const o = b * seqLen
    inputIds.set(it.inputIds, o)
    if (it.attentionMask !== undefined) attentionMask.set(it.attentionMask, o)
    else attentionMask.fill(1, o, o + it.inputIds.length)
    if (it.labels !== undefined) {
      if (labels === undefined) throw new ReftError('ERR_SHAPE', `batch row ${b} has both token labels and a classLabel`)
      labels.set(it.labels, o)
    }
    if (tokenTypeIds !== undefined) tokenTypeIds.set(it.tokenTypeIds!, o)
    if (classLabels !== undefined) classLabels[b] = it.classLabel!
  })
  const batch: NativeBatch = { inputIds, batchSize, seqLen, attentionMask }
  if (labels !== undefined) batch.labels = labels
  if (tokenTypeIds !== undefined) batch.tokenTypeIds = tokenTypeIds
  if (classLabels !== undefined) batch.classLabels = classLabels
  if (intervened) {
    const { data, numPositions } = flattenPositions(toBatchLayout(items.map((it) => it.locations)))
    batch.positions = data
    batch.numPositions = numPositions
  }
  return batch
}

/** Left-padded prompt batch for generation; positions shifted by each row's pad count. */
export function collatePrompts(items: readonly (PromptItem | CollatableItem)[], options: CollateOptions = {}): PromptBatch {
  const padId = checkInteger('padId', options.padId ?? 0, { min: 0 })
  const seqLen = paddedLength(items, options)
  const batchSize = items.length
  const inputIds = new Uint32Array(batchSize * seqLen).fill(padId)
  const attentionMask = new Uint8Array(batchSize * seqLen)
  const padCounts = items.map((it) => seqLen - it.inputIds.length)
  items.forEach((it, b) => {
    const o = b * seqLen + padCounts[b]!
    inputIds.set(it.inputIds, o)
    if (it.attentionMask !== undefined) attentionMask.set(it.attentionMask, o)
    else attentionMask.fill(1, o, o + it.inputIds.length)
  })
  const shifted = shiftForLeftPadding(toBatchLayout(items.map((it) => it.locations)), padCounts)
  const { data, numPositions } = flattenPositions(shifted)
  return { inputIds, batchSize, seqLen, attentionMask, positions: data, numPositions, padCounts }
}

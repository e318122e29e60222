/**
 * Batch collation into `NativeBatch` typed arrays.
 *
 * Training batches are right-padded (pyreft `DataCollatorForSeq2Seq`, `padding="longest"`), so
 * absolute positions stay valid; padding gets `padId`, label −100 and attention 0. Generation
 * batches are left-padded and every row's positions move by its left-pad count.
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
  /** `[intervention][position]`. */
  locations: number[][]
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

/** Right-padded training batch with labels (−100 on padding). */
export function collateTraining(items: readonly CollatableItem[], options: CollateOptions = {}): NativeBatch {
  const padId = checkInteger('padId', options.padId ?? 0, { min: 0 })
  const seqLen = paddedLength(items, options)
  const batchSize = items.length
  const inputIds = new Uint32Array(batchSize * seqLen).fill(padId)
  const attentionMask = new Uint8Array(batchSize * seqLen)
  const labels = new Int32Array(batchSize * seqLen).fill(ignoreIndex)
  items.forEach((it, b) => {
    const o = b * seqLen
    inputIds.set(it.inputIds, o)
    if (it.attentionMask !== undefined) attentionMask.set(it.attentionMask, o)
    else attentionMask.fill(1, o, o + it.inputIds.length)
    if (it.labels !== undefined) labels.set(it.labels, o)
  })
  const { data, numPositions } = flattenPositions(toBatchLayout(items.map((it) => it.locations)))
  return { inputIds, batchSize, seqLen, attentionMask, labels, positions: data, numPositions }
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

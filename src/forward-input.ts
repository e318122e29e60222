/**
 * Converts the friendly forward input (`number[][]` or typed rows, pyreft `unit_locations`
 * positions, `number[][]` labels) into the flat {@link NativeBatch} the binding takes.
 * Ragged rows are right-padded (masked out, labels −100).
 */
import { ReftError } from './errors.js'
import type { NativeBatch } from './native-api.js'
import { flattenPositions } from './positions.js'

/** Input of `ReftModel.forward`. */
export interface ForwardInput {
  /** Token ids per example. */
  inputIds: readonly (readonly number[] | Uint32Array)[]
  /** 1 = real token; defaults to 1 on every given token. */
  attentionMask?: readonly (readonly number[] | Uint8Array)[]
  /** `[intervention][example][position]` (pyreft `unit_locations`). */
  positions?: number[][][]
  /** Unshifted labels per example, −100 for no loss. */
  labels?: readonly (readonly number[] | Int32Array)[]
}

/** Flattens a {@link ForwardInput}; `numInterventions` checks the positions' first dimension. */
export function toNativeBatch(input: ForwardInput, numInterventions: number): NativeBatch {
  const rows = input.inputIds
  const batchSize = rows.length
  if (batchSize === 0) throw new ReftError('ERR_SHAPE', 'inputIds has no rows')
  const seqLen = Math.max(...rows.map((r) => r.length))
  if (seqLen === 0) throw new ReftError('ERR_SHAPE', 'inputIds rows are empty')
  const inputIds = new Uint32Array(batchSize * seqLen)
  const attentionMask = new Uint8Array(batchSize * seqLen)
  const labels = input.labels === undefined ? undefined : new Int32Array(batchSize * seqLen).fill(-100)
  rows.forEach((r, b) => {
    const mask = input.attentionMask?.[b]
    if (mask !== undefined && mask.length !== r.length) throw new ReftError('ERR_SHAPE', `attentionMask row ${b} has ${mask.length} entries, inputIds ${r.length}`)
    const lab = input.labels?.[b]
    if (input.labels !== undefined && (lab === undefined || lab.length !== r.length)) throw new ReftError('ERR_SHAPE', `labels row ${b} must have ${r.length} entries`)
    for (let t = 0; t < r.length; t++) {
      const id = r[t]!
      if (!Number.isInteger(id) || id < 0) throw new ReftError('ERR_OUT_OF_RANGE', `inputIds[${b}][${t}] = ${id} is not a token id`)
      inputIds[b * seqLen + t] = id
      attentionMask[b * seqLen + t] = mask === undefined ? 1 : mask[t]!
      if (labels !== undefined) labels[b * seqLen + t] = lab![t]!
    }
  })
  const batch: NativeBatch = { inputIds, batchSize, seqLen, attentionMask, ...(labels === undefined ? {} : { labels }) }
  if (input.positions !== undefined) {
    if (input.positions.length !== numInterventions) {
      throw new ReftError('ERR_SHAPE', `positions has ${input.positions.length} intervention lists, the model has ${numInterventions} interventions`)
    }
    if (input.positions.some((l) => l.length !== batchSize)) throw new ReftError('ERR_SHAPE', `every positions list needs ${batchSize} rows (one per example)`)
    const { data, numPositions } = flattenPositions(input.positions)
    batch.positions = data
    batch.numPositions = numPositions
  }
  return batch
}

/**
 * Intervention locations: which token indices each intervention edits, per example.
 *
 * `getInterventionLocations` is an exact port of pyreft `get_intervention_locations`
 * (pyreft/dataset.py): prefix positions `0 … f−1` and suffix positions `L−s … L−1` with
 * `f = min(⌊L/2⌋, first)`, `s = min(⌊L/2⌋, last)`; the positions lost to that cap are replaced by a
 * pad value (−1 for pad mode 'first', which becomes the prepended sink after the +1 shift, or
 * `L` for pad mode 'last', the appended sink). Layout of one example: `[intervention][position]`.
 */
import { ReftError, invalidConfig } from './errors.js'
import { checkBoolean, checkInteger, checkOneOf } from './validate.js'

/** Where the sink (pad) token lives: prepended ('first') or appended ('last'). */
export type PadMode = 'first' | 'last'

/** Inputs of {@link getInterventionLocations} (pyreft keyword arguments, camelCased). */
export interface InterventionLocationOptions {
  /** End (exclusive) of the prompt in the unpadded sequence, pyreft `last_position`. */
  lastPosition: number
  /** Requested prefix positions (pyreft `first_n`). */
  first: number
  /** Requested suffix positions (pyreft `last_n`). */
  last: number
  /** Number of interventions (first dimension of the result). */
  numInterventions: number
  /**
   * pyreft `share_weights`: every intervention gets prefix + suffix.
   * @defaultValue `false`
   */
  shareWeights?: boolean
  /**
   * Pad value choice: −1 for 'first', `lastPosition` for 'last'.
   * @defaultValue `'first'`
   */
  padMode?: PadMode
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i)
const repeat = (value: number, n: number): number[] => new Array<number>(Math.max(0, n)).fill(value)

/**
 * pyreft `get_intervention_locations`. Returns `numInterventions` position lists.
 *
 * One deliberate difference: pyreft returns only `2·⌊n/2⌋` lists in the untied split branch, so an
 * odd `numInterventions` there silently yields one list too few; this port throws
 * ERR_INVALID_CONFIG instead.
 */
export function getInterventionLocations(options: InterventionLocationOptions): number[][] {
  const lastPosition = checkInteger('lastPosition', options.lastPosition, { min: 0 })
  const firstN = checkInteger('first', options.first, { min: 0 })
  const lastN = checkInteger('last', options.last, { min: 0 })
  const numInterventions = checkInteger('numInterventions', options.numInterventions, { min: 1 })
  const shareWeights = checkBoolean('shareWeights', options.shareWeights ?? false)
  const padMode = checkOneOf('padMode', options.padMode ?? 'first', ['first', 'last'] as const)

  const half = Math.floor(lastPosition / 2)
  const f = Math.min(half, firstN)
  const s = Math.min(half, lastN)
  const padValue = padMode === 'first' ? -1 : lastPosition
  const prefix = range(0, f)
  const suffix = range(lastPosition - s, lastPosition)

  // pyreft tests the *capped* counts here, so a short prompt can fall into the shared branch.
  if (shareWeights || f === 0 || s === 0) {
    const list = [...prefix, ...suffix, ...repeat(padValue, firstN - f + (lastN - s))]
    return Array.from({ length: numInterventions }, () => [...list])
  }
  if (numInterventions % 2 !== 0) {
    throw invalidConfig('numInterventions', `untied prefix/suffix interventions come in pairs, got ${numInterventions}`)
  }
  const left = [...prefix, ...repeat(padValue, firstN - f)]
  const right = [...suffix, ...repeat(padValue, lastN - s)]
  const width = Math.max(left.length, right.length)
  left.push(...repeat(padValue, width - left.length))
  right.push(...repeat(padValue, width - right.length))
  const halfCount = numInterventions / 2
  return [
    ...Array.from({ length: halfCount }, () => [...left]),
    ...Array.from({ length: halfCount }, () => [...right]),
  ]
}

/** Flat positions for `NativeBatch.positions`, plus the per-list width. */
export interface FlatPositions {
  /** `[numInterventions][batchSize][numPositions]`, row-major. */
  data: Int32Array
  numPositions: number
}

/**
 * Flatten `locs[intervention][example][position]` to an `Int32Array`. Ragged lists are padded to
 * the longest by repeating their last element (duplicates are harmless: the native side
 * de-duplicates). Every intervention must cover the same number of examples (ERR_SHAPE) and every
 * list must be non-empty (ERR_SHAPE).
 */
export function flattenPositions(locs: number[][][]): FlatPositions {
  if (locs.length === 0) throw new ReftError('ERR_SHAPE', 'locations: no interventions')
  const batchSize = locs[0]!.length
  let numPositions = 0
  locs.forEach((perExample, i) => {
    if (perExample.length !== batchSize) {
      throw new ReftError('ERR_SHAPE', `locations[${i}] has ${perExample.length} examples, expected ${batchSize}`)
    }
    perExample.forEach((list, b) => {
      if (list.length === 0) throw new ReftError('ERR_SHAPE', `locations[${i}][${b}] is empty`)
      numPositions = Math.max(numPositions, list.length)
    })
  })
  const data = new Int32Array(locs.length * batchSize * numPositions)
  let o = 0
  for (const perExample of locs) {
    for (const list of perExample) {
      for (let p = 0; p < numPositions; p++) data[o++] = list[Math.min(p, list.length - 1)]!
    }
  }
  return { data, numPositions }
}

/** Add `offset` to every position of one example's `[intervention][position]` lists (new arrays). */
export function shiftLocations(locs: readonly (readonly number[])[], offset: number): number[][] {
  return locs.map((list) => list.map((p) => p + offset))
}

/** Shift for the prepended sink token: every position +1 (pad −1 lands on the sink at index 0). */
export function shiftForSink(locs: readonly (readonly number[])[]): number[][] {
  return shiftLocations(locs, 1)
}

/**
 * Shift batch locations `[intervention][example][position]` for left padding: row `b` moves by
 * `padCounts[b]`.
 */
export function shiftForLeftPadding(locs: readonly (readonly (readonly number[])[])[], padCounts: readonly number[]): number[][][] {
  return locs.map((perExample, i) => {
    if (perExample.length !== padCounts.length) {
      throw new ReftError('ERR_SHAPE', `locations[${i}] has ${perExample.length} examples, padCounts has ${padCounts.length}`)
    }
    return perExample.map((list, b) => list.map((p) => p + padCounts[b]!))
  })
}

/** Transpose per-example locations `[example][intervention][position]` to `[intervention][example][position]`. */
export function toBatchLayout(perExample: readonly (readonly (readonly number[])[])[]): number[][][] {
  if (perExample.length === 0) throw new ReftError('ERR_SHAPE', 'locations: empty batch')
  const n = perExample[0]!.length
  perExample.forEach((locs, b) => {
    if (locs.length !== n) throw new ReftError('ERR_SHAPE', `example ${b} has ${locs.length} interventions, expected ${n}`)
  })
  return Array.from({ length: n }, (_, i) => perExample.map((locs) => [...locs[i]!]))
}

/**
 * Length-grouped batching (`groupByLength`): fewer pad tokens per micro-batch. As HF Trainer's
 * `LengthGroupedSampler`: after the epoch's seeded shuffle, every window of `batchSize × 50`
 * items is sorted longest first and cut into micro-batches, so a micro-batch holds items of
 * similar length; then the order of the micro-batches is shuffled (seeded) so training does not
 * see lengths in sequence. Each micro-batch is still full except the epoch's last one, so the
 * number of steps per epoch does not change, and the plan depends only on the seed, the sizes
 * and the lengths (exact resume).
 */
import { shuffledIndices } from './random.js'

/** Micro-batches per sorting window, as HF's `mega_batch_mult` default. */
export const windowBatches = 50

/** Micro-batches of `order` (already shuffled) grouped by `lengths`, in a seeded random order. */
export function lengthGroupedBatches(order: readonly number[], lengths: readonly number[], batchSize: number, seed: number): number[][] {
  const window = batchSize * windowBatches
  const micro: number[][] = []
  for (let w = 0; w < order.length; w += window) {
    // A stable sort: equal lengths keep their shuffled order.
    const sorted = order.slice(w, w + window).sort((a, b) => lengths[b]! - lengths[a]!)
    for (let i = 0; i < sorted.length; i += batchSize) micro.push(sorted.slice(i, i + batchSize))
  }
  // The epoch's one partial micro-batch (if any) stays last, like the ungrouped plan's.
  const last = order.length % batchSize === 0 ? undefined : micro.pop()
  const shuffled = shuffledIndices(micro.length, seed ^ 0x5bd1e995).map((i) => micro[i]!)
  if (last !== undefined) shuffled.push(last)
  return shuffled
}

/** Pad tokens a plan costs: Σ over micro-batches of (rows × longest − Σ lengths). */
export function paddingTokens(batches: readonly (readonly number[])[], lengths: readonly number[]): number {
  let pad = 0
  for (const b of batches) {
    const ls = b.map((i) => lengths[i]!)
    pad += ls.length * Math.max(...ls) - ls.reduce((s, l) => s + l, 0)
  }
  return pad
}

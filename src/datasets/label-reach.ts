/**
 * Which labelled tokens an intervention can reach. A causal LM attends backwards only, so the
 * loss at position `p` (predicting `labels[p + 1]`, HF's shift) can depend on an intervention
 * only when `p` is at or after the example's first intervened position. A training set with no
 * such token trains nothing: every gradient is exactly zero (pyreft trains on silently, e.g.
 * with positions on the completion's last token and the loss on the completion before it).
 * `train` refuses such a set on a causal LM; the core, for its part, skips the backward of any
 * batch whose loss no intervention can reach.
 */
import { ReftError } from '../errors.js'
import type { CollatableItem } from './collate.js'
import { ignoreIndex } from './supervised.js'

/** Labelled tokens of `item` whose loss can depend on an intervention (0 without labels or positions). */
export function labelsAfterInterventions(item: CollatableItem): number {
  const labels = item.labels
  if (labels === undefined) return 0
  let first = labels.length
  for (const list of item.locations) for (const p of list) first = Math.min(first, p)
  let n = 0
  for (let p = first; p + 1 < labels.length; p++) if (labels[p + 1] !== ignoreIndex) n++
  return n
}

/** Labelled tokens of `item` after HF's shift (every position but the first can carry one). */
function labelledTokens(item: CollatableItem): number {
  let n = 0
  for (let p = 1; p < (item.labels?.length ?? 0); p++) if (item.labels![p] !== ignoreIndex) n++
  return n
}

/**
 * ERR_INVALID_CONFIG when `dataset` has labelled tokens but none an intervention can reach
 * (see the module's note); items without token labels (classification) are not checked.
 */
export function requireReachableLabels(dataset: readonly CollatableItem[]): void {
  let labelled = 0
  for (const item of dataset) {
    if (labelsAfterInterventions(item) > 0) return
    labelled += labelledTokens(item)
  }
  if (labelled === 0) return
  throw new ReftError(
    'ERR_INVALID_CONFIG',
    `no labelled token of the ${dataset.length} training items comes at or after its item's intervened positions: ` +
      'a causal LM attends backwards only, so the interventions cannot change the loss and training would not move them ' +
      '(intervene on earlier positions, e.g. the last prompt token, or label the tokens after them)',
    { field: 'dataset' },
  )
}

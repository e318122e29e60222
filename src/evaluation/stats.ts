/** Confidence intervals for accuracies. */
import { checkInteger } from '../validate.js'

/** The two-sided 95% normal quantile. */
export const z95 = 1.959963984540054

/**
 * Wilson score interval for `correct` successes out of `n` trials (default 95%). Stays inside
 * [0, 1] and is sensible at 0 and n successes; `n = 0` gives `[0, 1]`.
 */
export function wilsonInterval(correct: number, n: number, z = z95): [number, number] {
  checkInteger('n', n, { min: 0 })
  checkInteger('correct', correct, { min: 0, max: n })
  if (n === 0) return [0, 1]
  const p = correct / n
  const z2 = z * z
  const denom = 1 + z2 / n
  const center = (p + z2 / (2 * n)) / denom
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom
  // At 0 or n successes the bound is exactly 0 or 1; compute it so, not up to rounding.
  return [correct === 0 ? 0 : Math.max(0, center - half), correct === n ? 1 : Math.min(1, center + half)]
}

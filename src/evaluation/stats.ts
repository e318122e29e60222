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

/**
 * Two-sided exact sign test: the probability, with `n` fair coin flips, of a count at least as far
 * from n/2 as `k` (min(1, 2 × the smaller tail)). Ties are the caller's to drop before counting.
 * `n = 0` gives 1.
 */
export function signTestP(k: number, n: number): number {
  checkInteger('n', n, { min: 0 })
  checkInteger('k', k, { min: 0, max: n })
  const lo = Math.min(k, n - k)
  // Σ_{i ≤ lo} C(n, i) / 2^n, in log space so large n does not overflow.
  let logC = 0
  let tail = 0
  for (let i = 0; i <= lo; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i)
    tail += Math.exp(logC - n * Math.LN2)
  }
  return Math.min(1, 2 * tail)
}

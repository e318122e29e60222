/**
 * Successive halving (Jamieson & Talwalkar 2016; the inner loop of Hyperband): start `n` trials at
 * a small budget, keep the best `⌊n / eta⌋`, give them `eta`× the budget, and repeat until one
 * trial is left or the budget is full.
 *
 * A budget is a fraction of a trial's full run, which is `epochs · stepsPerEpoch` optimizer steps
 * for that trial's `epochs`; a rung trains `max(1, round(budget · fullSteps))` steps. Survivors
 * restart from scratch with the larger budget (same seed, a linear schedule over the new step
 * count); nothing carries over from the lower rung but the decision to promote.
 *
 * Default minimum budget: `eta^-s` with `s = ⌊log_eta n⌋`, so the last rung is exactly the full
 * budget (9 trials, eta 3 → 9 @ 1/9, 3 @ 1/3, 1 @ 1). The last rung always trains at the full budget:
 * when only one trial is left before the budget reaches 1, that trial runs at 1.
 */
import { checkInteger, checkNumber } from '../validate.js'

/** Options of successive halving. */
export interface HalvingOptions {
  /** Keep the top `1/eta` at each rung and multiply the budget by `eta` (integer >= 2). @defaultValue `3` */
  eta?: number
  /** Budget of the first rung, in (0, 1]. @defaultValue `eta^-⌊log_eta n⌋` */
  minBudget?: number
}

/** One rung: how many trials run, at which budget. */
export interface Rung {
  /** 0-based rung index. */
  index: number
  trials: number
  /** Fraction of the full run, in (0, 1]. */
  budget: number
}

/** Default `eta`. */
export const defaultEta = 3

const isFull = (b: number): boolean => b >= 1 - 1e-9

/** `⌊log_eta n⌋`, computed with integers. */
export function floorLog(n: number, eta: number): number {
  let s = 0
  for (let p = eta; p <= n; p *= eta) s++
  return s
}

/**
 * The rungs for `n` trials. `false` turns halving off: one rung, every trial at the full budget
 * (plain grid or random search).
 */
export function halvingRungs(n: number, options: HalvingOptions | false = {}): Rung[] {
  checkInteger('trials', n, { min: 1 })
  if (options === false || n === 1) return [{ index: 0, trials: n, budget: 1 }]
  const eta = checkInteger('eta', options.eta ?? defaultEta, { min: 2 })
  const s = floorLog(n, eta)
  const minBudget = checkNumber('minBudget', options.minBudget ?? eta ** -s, { above: 0, max: 1 })
  const rungs: Rung[] = []
  let trials = n
  for (let i = 0; ; i++) {
    // eta ** (i - s) for the default keeps the budgets exact powers (1/9, 1/3, 1).
    const raw = options.minBudget === undefined ? eta ** (i - s) : minBudget * eta ** i
    const budget = trials === 1 || isFull(raw) ? 1 : raw
    rungs.push({ index: i, trials, budget })
    if (budget === 1) return rungs
    trials = Math.max(1, Math.floor(trials / eta))
  }
}

/** A budget as text: `1/9`, `1/3`, `1`, or a percentage when it is not `1/k`. */
export function formatBudget(budget: number): string {
  if (isFull(budget)) return '1'
  const k = Math.round(1 / budget)
  return Math.abs(1 / k - budget) < 1e-9 ? `1/${k}` : `${(100 * budget).toPrecision(3)}%`
}

/** Optimizer steps of a rung: `max(1, round(budget · fullSteps))`. */
export function budgetSteps(budget: number, fullSteps: number): number {
  return Math.max(1, Math.round(budget * fullSteps))
}

/** Optimizer steps per epoch of the trainer's batch plan (see trainer.ts `planEpoch`). */
export function stepsPerEpoch(datasetSize: number, batchSize: number, gradientAccumulation = 1): number {
  return Math.ceil(Math.ceil(datasetSize / batchSize) / gradientAccumulation)
}

/** What ranking needs of a finished trial. */
export interface Ranked {
  id: number
  /** The dev metric: accuracy (higher is better) or loss (lower is better). */
  score: number
  /** Dev loss, the tie-breaker (lower is better). */
  devLoss: number
}

/**
 * Sorts best first: by `score` (descending when `higherIsBetter`), then by `devLoss` ascending,
 * then by `id` ascending, so ties (frequent with accuracy on a small dev slice) resolve the same
 * way on every run.
 */
export function rankTrials<T extends Ranked>(results: readonly T[], higherIsBetter: boolean): T[] {
  const sign = higherIsBetter ? -1 : 1
  return [...results].sort((a, b) => sign * (a.score - b.score) || a.devLoss - b.devLoss || a.id - b.id)
}

/**
 * Shared pieces of the learning-rate schedules: the `Schedule` type and warmup resolution.
 */
import { invalidConfig } from '../errors.js'
import { checkInteger, checkNumber } from '../validate.js'

/**
 * A learning-rate schedule: `step` is the number of optimizer steps already taken (0 for the first
 * step, as with HF's `LambdaLR`), the result is the learning rate for the next step.
 */
export type Schedule = (step: number) => number

/** Warmup given either as a step count or as a fraction of the total steps (not both). */
export interface WarmupOptions {
  /**
   * Linear warmup length in steps.
   * @defaultValue `0`
   */
  warmupSteps?: number
  /**
   * Warmup as a fraction of `totalSteps` in [0, 1]; resolved as HF does, `ceil(ratio · totalSteps)`.
   * @defaultValue `0`
   */
  warmupRatio?: number
}

/** Validate `lr` (finite, >= 0). */
export function checkLr(lr: unknown): number {
  return checkNumber('lr', lr, { min: 0 })
}

/** Validate `totalSteps` (integer >= 1). */
export function checkTotalSteps(totalSteps: unknown): number {
  return checkInteger('totalSteps', totalSteps, { min: 1 })
}

/** Resolve warmup to a step count in [0, totalSteps] (HF `TrainingArguments.get_warmup_steps`). */
export function resolveWarmup(options: WarmupOptions, totalSteps: number): number {
  const { warmupSteps, warmupRatio } = options
  if (warmupSteps !== undefined && warmupRatio !== undefined) {
    throw invalidConfig('warmupRatio', 'give either warmupSteps or warmupRatio, not both')
  }
  if (warmupRatio !== undefined) {
    const ratio = checkNumber('warmupRatio', warmupRatio, { min: 0, max: 1 })
    return Math.ceil(ratio * totalSteps)
  }
  return checkInteger('warmupSteps', warmupSteps ?? 0, { min: 0, max: totalSteps })
}

/** Validate the step passed to a schedule (a number >= 0). */
export function checkStep(step: number): void {
  if (!(step >= 0) || !Number.isFinite(step)) checkNumber('step', step, { min: 0 })
}

/** HF warmup factor `step / max(1, warmup)`. */
export function warmupFactor(step: number, warmup: number): number {
  return step / Math.max(1, warmup)
}

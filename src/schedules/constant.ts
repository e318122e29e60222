/**
 * Constant learning rate with optional linear warmup (HF `get_constant_schedule_with_warmup`):
 * `lr · step / warmup` while `step < warmup`, then `lr`.
 */
import { checkInteger } from '../validate.js'
import { type Schedule, checkLr, checkStep, warmupFactor } from './warmup.js'

/** Options of {@link constantSchedule}. */
export interface ConstantScheduleOptions {
  /** Peak (and constant) learning rate, >= 0. */
  lr: number
  /**
   * Linear warmup length in steps.
   * @defaultValue `0`
   */
  warmupSteps?: number
}

/** A constant schedule, validated up front (ERR_INVALID_CONFIG / ERR_OUT_OF_RANGE naming the field). */
export function constantSchedule(options: ConstantScheduleOptions): Schedule {
  const lr = checkLr(options.lr)
  const warmup = checkInteger('warmupSteps', options.warmupSteps ?? 0, { min: 0 })
  return (step) => {
    checkStep(step)
    return step < warmup ? lr * warmupFactor(step, warmup) : lr
  }
}

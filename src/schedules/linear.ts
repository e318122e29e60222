/**
 * Linear decay with linear warmup, exactly HF `get_linear_schedule_with_warmup`:
 * `lr · step / max(1, warmup)` while `step < warmup`, then
 * `lr · max(0, (total − step) / max(1, total − warmup))`.
 */
import { type Schedule, type WarmupOptions, checkLr, checkStep, checkTotalSteps, resolveWarmup, warmupFactor } from './warmup.js'

/** Options of {@link linearSchedule}. */
export interface LinearScheduleOptions extends WarmupOptions {
  /** Peak learning rate, >= 0. */
  lr: number
  /** Total number of optimizer steps; the rate reaches 0 at `step = totalSteps`. */
  totalSteps: number
}

/** HF linear schedule with warmup, validated up front. */
export function linearSchedule(options: LinearScheduleOptions): Schedule {
  const lr = checkLr(options.lr)
  const total = checkTotalSteps(options.totalSteps)
  const warmup = resolveWarmup(options, total)
  return (step) => {
    checkStep(step)
    if (step < warmup) return lr * warmupFactor(step, warmup)
    return lr * Math.max(0, (total - step) / Math.max(1, total - warmup))
  }
}

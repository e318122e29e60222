/**
 * Cosine decay with linear warmup, exactly HF `get_cosine_schedule_with_warmup` (and, with `minLr`,
 * `get_cosine_with_min_lr_schedule_with_warmup`): after warmup,
 * `progress = (step − warmup) / max(1, total − warmup)`,
 * `f = 0.5 · (1 + cos(π · numCycles · 2 · progress))`, with `minLr`: `f = f · (1 − minLr/lr) + minLr/lr`,
 * and the rate is `lr · max(0, f)`.
 */
import { invalidConfig } from '../errors.js'
import { checkNumber } from '../validate.js'
import { type Schedule, type WarmupOptions, checkLr, checkStep, checkTotalSteps, resolveWarmup, warmupFactor } from './warmup.js'

/** Options of {@link cosineSchedule}. */
export interface CosineScheduleOptions extends WarmupOptions {
  /** Peak learning rate, >= 0. */
  lr: number
  /** Total number of optimizer steps. */
  totalSteps: number
  /**
   * Floor of the decay, in [0, lr].
   * @defaultValue `0`
   */
  minLr?: number
  /**
   * Number of cosine waves over the decay phase (HF `num_cycles`; 0.5 = decay to the floor once).
   * @defaultValue `0.5`
   */
  numCycles?: number
}

/** HF cosine schedule with warmup, validated up front. */
export function cosineSchedule(options: CosineScheduleOptions): Schedule {
  const lr = checkLr(options.lr)
  const total = checkTotalSteps(options.totalSteps)
  const warmup = resolveWarmup(options, total)
  const minLr = checkNumber('minLr', options.minLr ?? 0, { min: 0 })
  if (minLr > lr) throw invalidConfig('minLr', `must not exceed lr (${lr}), got ${minLr}`)
  const numCycles = checkNumber('numCycles', options.numCycles ?? 0.5, { above: 0 })
  const minRate = lr > 0 ? minLr / lr : 0
  return (step) => {
    checkStep(step)
    if (step < warmup) return lr * warmupFactor(step, warmup)
    const progress = (step - warmup) / Math.max(1, total - warmup)
    let f = 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress))
    if (minRate > 0) f = f * (1 - minRate) + minRate
    return lr * Math.max(0, f)
  }
}

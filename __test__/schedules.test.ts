import { describe, expect, it } from 'vitest'
import { constantSchedule, cosineSchedule, linearSchedule, resolveWarmup } from '../src/schedules/index.js'

const seq = (f: (s: number) => number, n: number): number[] => Array.from({ length: n }, (_, s) => f(s))
const close = (got: number[], want: number[]): void => {
  expect(got).toHaveLength(want.length)
  got.forEach((g, i) => expect(g, `step ${i}`).toBeCloseTo(want[i]!, 12))
}
const code = (c: string, field?: string) => expect.objectContaining(field ? { code: c, field } : { code: c })

describe('linearSchedule (HF get_linear_schedule_with_warmup)', () => {
  it('warms up then decays to 0 at totalSteps', () => {
    // lr·s/2 for s<2, then lr·(10−s)/8
    close(seq(linearSchedule({ lr: 0.1, totalSteps: 10, warmupSteps: 2 }), 12), [
      0, 0.05, 0.1, 0.0875, 0.075, 0.0625, 0.05, 0.0375, 0.025, 0.0125, 0, 0,
    ])
  })

  it('no warmup starts at the peak', () => {
    close(seq(linearSchedule({ lr: 2, totalSteps: 4 }), 5), [2, 1.5, 1, 0.5, 0])
  })

  it('warmup = totalSteps never decays before the end', () => {
    close(seq(linearSchedule({ lr: 1, totalSteps: 4, warmupSteps: 4 }), 6), [0, 0.25, 0.5, 0.75, 0, 0])
  })

  it('warmupRatio uses ceil(ratio · total)', () => {
    expect(resolveWarmup({ warmupRatio: 0.1 }, 25)).toBe(3)
    expect(resolveWarmup({ warmupRatio: 0.03 }, 100)).toBe(3)
    expect(resolveWarmup({ warmupRatio: 0 }, 100)).toBe(0)
    close(seq(linearSchedule({ lr: 3, totalSteps: 25, warmupRatio: 0.1 }), 5), [0, 1, 2, 3, 3 * (21 / 22)])
  })

  it('validates its options, naming the field', () => {
    expect(() => linearSchedule({ lr: -1, totalSteps: 10 })).toThrow(code('ERR_OUT_OF_RANGE', 'lr'))
    expect(() => linearSchedule({ lr: Number.NaN, totalSteps: 10 })).toThrow(code('ERR_INVALID_CONFIG', 'lr'))
    expect(() => linearSchedule({ lr: 1, totalSteps: 0 })).toThrow(code('ERR_OUT_OF_RANGE', 'totalSteps'))
    expect(() => linearSchedule({ lr: 1, totalSteps: 2.5 })).toThrow(code('ERR_INVALID_CONFIG', 'totalSteps'))
    expect(() => linearSchedule({ lr: 1, totalSteps: 10, warmupSteps: 11 })).toThrow(code('ERR_OUT_OF_RANGE', 'warmupSteps'))
    expect(() => linearSchedule({ lr: 1, totalSteps: 10, warmupRatio: 1.5 })).toThrow(code('ERR_OUT_OF_RANGE', 'warmupRatio'))
    expect(() => linearSchedule({ lr: 1, totalSteps: 10, warmupSteps: 1, warmupRatio: 0.1 })).toThrow(code('ERR_INVALID_CONFIG', 'warmupRatio'))
    expect(() => linearSchedule({ lr: 1, totalSteps: 10 })(-1)).toThrow(code('ERR_OUT_OF_RANGE', 'step'))
  })
})

describe('cosineSchedule (HF get_cosine_schedule_with_warmup)', () => {
  it('matches hand-computed values', () => {
    const f = cosineSchedule({ lr: 1, totalSteps: 10, warmupSteps: 2 })
    close([f(0), f(1), f(2), f(4), f(6), f(8), f(10)], [0, 0.5, 1, 0.5 * (1 + Math.SQRT1_2), 0.5, 0.5 * (1 - Math.SQRT1_2), 0])
  })

  it('follows HF past totalSteps (the cosine keeps going, clamped at 0)', () => {
    const f = cosineSchedule({ lr: 1, totalSteps: 10 })
    expect(f(12)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI * 1.2)), 12)
  })

  it('minLr floors the decay (HF cosine_with_min_lr)', () => {
    const f = cosineSchedule({ lr: 1, totalSteps: 10, warmupSteps: 2, minLr: 0.1 })
    close([f(1), f(2), f(6), f(10)], [0.5, 1, 0.55, 0.1])
  })

  it('numCycles changes the wave count', () => {
    const f = cosineSchedule({ lr: 1, totalSteps: 10, numCycles: 1 })
    close([f(0), f(5), f(10)], [1, 0, 1])
  })

  it('validates', () => {
    expect(() => cosineSchedule({ lr: 1, totalSteps: 10, minLr: 2 })).toThrow(code('ERR_INVALID_CONFIG', 'minLr'))
    expect(() => cosineSchedule({ lr: 1, totalSteps: 10, numCycles: 0 })).toThrow(code('ERR_OUT_OF_RANGE', 'numCycles'))
    expect(() => cosineSchedule({ lr: 1, totalSteps: -3 })).toThrow(code('ERR_OUT_OF_RANGE', 'totalSteps'))
  })
})

describe('constantSchedule', () => {
  it('warms up linearly then stays constant', () => {
    close(seq(constantSchedule({ lr: 1, warmupSteps: 4 }), 7), [0, 0.25, 0.5, 0.75, 1, 1, 1])
    close(seq(constantSchedule({ lr: 0.3 }), 3), [0.3, 0.3, 0.3])
  })

  it('validates', () => {
    expect(() => constantSchedule({ lr: 1, warmupSteps: -1 })).toThrow(code('ERR_OUT_OF_RANGE', 'warmupSteps'))
    expect(() => constantSchedule({ lr: 'x' as unknown as number })).toThrow(code('ERR_INVALID_CONFIG', 'lr'))
  })
})

describe('schedules are pure', () => {
  it('the same step gives the same value in any order (resume-safe)', () => {
    const f = cosineSchedule({ lr: 0.01, totalSteps: 50, warmupRatio: 0.1 })
    const forward = seq(f, 50)
    const backward = seq((s) => f(49 - s), 50).reverse()
    expect(backward).toEqual(forward)
  })
})

import { describe, expect, it } from 'vitest'
import { createProgressReporter, formatDuration } from '../src/progress.js'
import type { TrainProgressEvent } from '../src/trainer-options.js'

const ev = (step: number, extra: Partial<TrainProgressEvent> = {}): TrainProgressEvent => ({
  step,
  totalSteps: 25,
  epoch: 0,
  loss: 1 / step,
  gradNorm: 0.5,
  lr: 1e-3,
  tokensPerSecond: 1234.4,
  elapsedMs: step * 1000,
  etaMs: (25 - step) * 1000,
  ...extra,
})

const sink = (isTTY: boolean) => {
  const out: string[] = []
  return { out, stream: { isTTY, write: (s: string) => out.push(s) } }
}

describe('formatDuration', () => {
  it('formats m:ss and h:mm:ss', () => {
    expect(formatDuration(0)).toBe('0:00')
    expect(formatDuration(61_000)).toBe('1:01')
    expect(formatDuration(3_723_000)).toBe('1:02:03')
    expect(formatDuration(Number.NaN)).toBe('--:--')
  })
})

describe('createProgressReporter', () => {
  it('TTY: rewrites one line with \\r and ends it on finish', () => {
    const { out, stream } = sink(true)
    const r = createProgressReporter({ stream, width: 10 })
    r.update(ev(5))
    r.update(ev(10))
    r.finish()
    expect(out).toHaveLength(3)
    expect(out[0]!.startsWith('\r[##--------] 5/25 ')).toBe(true)
    expect(out[1]!.startsWith('\r[####------] 10/25 loss 0.1000')).toBe(true)
    expect(out[1]).toContain('0:10<0:15')
    expect(out.slice(0, 2).every((l) => !l.includes('\n'))).toBe(true)
    expect(out[2]).toBe('\n')
  })

  it('not a TTY: plain lines on the first, every Nth, eval and last steps', () => {
    const { out, stream } = sink(false)
    const r = createProgressReporter({ stream, every: 10 })
    for (let s = 1; s <= 25; s++) r.update(ev(s, s === 7 ? { evalLoss: 0.25 } : {}))
    r.finish()
    const steps = out.map((l) => Number(/^step (\d+)\//.exec(l)![1]))
    expect(steps).toEqual([1, 7, 10, 20, 25])
    expect(out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true)
    expect(out[1]).toContain('eval 0.2500')
  })

  it('validates its options', () => {
    expect(() => createProgressReporter({ every: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', field: 'every' }))
  })
})

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { lossCurveSvg, writeLossCurve } from '../src/plot.js'
import type { TrainHistory } from '../src/trainer-options.js'

const history: TrainHistory = {
  steps: Array.from({ length: 20 }, (_, i) => ({ step: i + 1, loss: 2 / (i + 1), gradNorm: 1, lr: 1e-3 })),
  evals: [
    { step: 10, loss: 0.4 },
    { step: 20, loss: 0.3 },
  ],
  stoppedEarly: false,
}

const points = (svg: string, cls: string): number[][] =>
  new RegExp(`class="${cls}"[^>]*points="([^"]*)"`)
    .exec(svg)![1]!
    .split(' ')
    .map((p) => p.split(',').map(Number))

describe('lossCurveSvg', () => {
  it('draws one train point per step and one eval point per eval, inside the plot area', () => {
    const svg = lossCurveSvg(history, { width: 400, height: 200, title: 'a<b' })
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200"')).toBe(true)
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
    expect(svg).toContain('a&lt;b')
    const train = points(svg, 'train')
    expect(train).toHaveLength(20)
    expect(points(svg, 'eval')).toHaveLength(2)
    for (const [x, y] of train) {
      expect(x).toBeGreaterThanOrEqual(56)
      expect(x).toBeLessThanOrEqual(400 - 16)
      expect(y).toBeGreaterThanOrEqual(28)
      expect(y).toBeLessThanOrEqual(200 - 40)
    }
    // loss falls, so y (downwards in SVG) grows along the curve
    expect(train[0]![1]).toBeLessThan(train[19]![1]!)
  })

  it('handles an empty history and a single point', () => {
    expect(lossCurveSvg({ steps: [], evals: [], stoppedEarly: false })).toContain('no data')
    const one = lossCurveSvg({ steps: [{ step: 1, loss: 1, gradNorm: 0, lr: 0 }], evals: [], stoppedEarly: false })
    expect(points(one, 'train')).toHaveLength(1)
    expect(one).not.toContain('NaN')
  })
})

describe('writeLossCurve', () => {
  it('writes the SVG file, and reports a bad path as ERR_IO', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'reft-plot-'))
    try {
      const file = join(dir, 'loss.svg')
      await writeLossCurve(file, history)
      expect(await readFile(file, 'utf8')).toBe(lossCurveSvg(history))
      await expect(writeLossCurve(join(dir, 'missing', 'x.svg'), history)).rejects.toThrow(expect.objectContaining({ code: 'ERR_IO' }))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

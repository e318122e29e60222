/**
 * A loss-curve SVG from a `TrainHistory`: training loss as a line, eval loss as a line with dots,
 * axes with a few ticks. Pure string building, no dependencies.
 */
import { writeFile } from 'node:fs/promises'
import { toReftError } from './errors.js'
import type { TrainHistory } from './trainer-options.js'
import { checkInteger } from './validate.js'

/** Options of {@link lossCurveSvg}. */
export interface LossCurveOptions {
  /** @defaultValue `640` */
  width?: number
  /** @defaultValue `360` */
  height?: number
  /** @defaultValue `'Loss'` */
  title?: string
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

const fmt = (v: number): string => (Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3))

/** Evenly spaced tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count: number): number[] {
  if (hi === lo) return [lo]
  return Array.from({ length: count + 1 }, (_, i) => lo + ((hi - lo) * i) / count)
}

/** Render the SVG text. An empty history gives a frame with a "no data" note. */
export function lossCurveSvg(history: TrainHistory, options: LossCurveOptions = {}): string {
  const W = checkInteger('width', options.width ?? 640, { min: 100 })
  const H = checkInteger('height', options.height ?? 360, { min: 80 })
  const title = options.title ?? 'Loss'
  const m = { l: 56, r: 16, t: 28, b: 40 }
  const pw = W - m.l - m.r
  const ph = H - m.t - m.b
  const train = history.steps.filter((s) => Number.isFinite(s.loss)).map((s) => [s.step, s.loss] as const)
  const evals = history.evals.filter((s) => Number.isFinite(s.loss)).map((s) => [s.step, s.loss] as const)
  const all = [...train, ...evals]
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(title)}</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`,
  ]
  if (all.length === 0) {
    out.push(`<text x="${W / 2}" y="${m.t + ph / 2}" text-anchor="middle" fill="#888">no data</text>`, '</svg>')
    return out.join('\n') + '\n'
  }
  const xs = all.map((p) => p[0])
  const ys = all.map((p) => p[1])
  const x0 = Math.min(...xs)
  const x1 = Math.max(...xs)
  let y0 = Math.min(...ys)
  let y1 = Math.max(...ys)
  if (y0 === y1) {
    y0 -= 0.5
    y1 += 0.5
  }
  const sx = (x: number): number => m.l + (x1 === x0 ? pw / 2 : ((x - x0) / (x1 - x0)) * pw)
  const sy = (y: number): number => m.t + ph - ((y - y0) / (y1 - y0)) * ph
  const pt = (p: readonly [number, number]): string => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`
  for (const y of ticks(y0, y1, 4)) {
    const py = sy(y).toFixed(1)
    out.push(`<line x1="${m.l - 4}" y1="${py}" x2="${m.l + pw}" y2="${py}" stroke="#eee"/>`)
    out.push(`<text x="${m.l - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${fmt(y)}</text>`)
  }
  for (const x of ticks(x0, x1, Math.min(5, Math.max(1, x1 - x0)))) {
    const px = sx(x).toFixed(1)
    out.push(`<text x="${px}" y="${m.t + ph + 16}" text-anchor="middle">${Math.round(x)}</text>`)
  }
  out.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">step</text>`)
  if (train.length > 0) {
    out.push(`<polyline class="train" fill="none" stroke="#1f77b4" stroke-width="1.5" points="${train.map(pt).join(' ')}"/>`)
  }
  if (evals.length > 0) {
    out.push(`<polyline class="eval" fill="none" stroke="#d62728" stroke-width="1.5" points="${evals.map(pt).join(' ')}"/>`)
    for (const p of evals) out.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="2.5" fill="#d62728"/>`)
  }
  const lx = m.l + pw - 90
  out.push(`<line x1="${lx}" y1="${m.t + 12}" x2="${lx + 16}" y2="${m.t + 12}" stroke="#1f77b4" stroke-width="2"/>`)
  out.push(`<text x="${lx + 20}" y="${m.t + 12}" dominant-baseline="middle">train</text>`)
  if (evals.length > 0) {
    out.push(`<line x1="${lx}" y1="${m.t + 26}" x2="${lx + 16}" y2="${m.t + 26}" stroke="#d62728" stroke-width="2"/>`)
    out.push(`<text x="${lx + 20}" y="${m.t + 26}" dominant-baseline="middle">eval</text>`)
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** Write {@link lossCurveSvg} to `path` (ERR_IO on failure). */
export async function writeLossCurve(path: string, history: TrainHistory, options: LossCurveOptions = {}): Promise<void> {
  const svg = lossCurveSvg(history, options)
  await writeFile(path, svg).catch((e: unknown) => Promise.reject(toReftError(e)))
}

/**
 * A progress reporter for `train`'s `onProgress`: on a TTY one bar line rewritten with `\r`
 * (step, loss, lr, tokens/s, ETA); elsewhere plain log lines every `every` steps.
 */
import { checkInteger } from './validate.js'
import type { TrainProgressEvent } from './trainer-options.js'

/** The part of a stream the reporter writes to (`process.stderr` fits). */
export interface ProgressStream {
  write(text: string): unknown
  isTTY?: boolean
}

/** Options of {@link createProgressReporter}. */
export interface ProgressReporterOptions {
  /** @defaultValue `process.stderr` */
  stream?: ProgressStream
  /** Force bar (true) or log (false) mode. @defaultValue `stream.isTTY === true` */
  tty?: boolean
  /** Log mode: print every this many steps (the first and last step always print). @defaultValue `10` */
  every?: number
  /** Bar width in characters. @defaultValue `24` */
  width?: number
}

/** Feed `update` to `train({ onProgress })`; call `finish` once training ends. */
export interface ProgressReporter {
  update: (event: TrainProgressEvent) => void
  finish: () => void
}

/** `ms` as `m:ss` or `h:mm:ss`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--'
  const total = Math.round(ms / 1000)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = String(total % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}

function describeEvent(e: TrainProgressEvent): string {
  const parts = [
    `loss ${e.loss.toFixed(4)}`,
    ...(e.evalLoss === undefined ? [] : [`eval ${e.evalLoss.toFixed(4)}`]),
    `lr ${e.lr.toExponential(2)}`,
    `${Math.round(e.tokensPerSecond)} tok/s`,
  ]
  return parts.join(' | ')
}

/** `[####----]` for a fraction in [0, 1]. */
export function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width)
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`
}

/** One terminal line rewritten in place with `\r`; `close` ends it with a newline. */
export interface StatusLine {
  write: (line: string) => void
  close: () => void
}

/** A {@link StatusLine} on `stream` (shared by the training and evaluation reporters). */
export function createStatusLine(stream: ProgressStream): StatusLine {
  let lastLength = 0
  let open = false
  return {
    write: (line) => {
      stream.write(`\r${line}${' '.repeat(Math.max(0, lastLength - line.length))}`)
      lastLength = line.length
      open = true
    },
    close: () => {
      if (open) stream.write('\n')
      open = false
      lastLength = 0
    },
  }
}

/** Create a reporter; see the module docs for the two modes. */
export function createProgressReporter(options: ProgressReporterOptions = {}): ProgressReporter {
  const stream = options.stream ?? process.stderr
  const tty = options.tty ?? stream.isTTY === true
  const every = checkInteger('every', options.every ?? 10, { min: 1 })
  const width = checkInteger('width', options.width ?? 24, { min: 1 })
  const status = createStatusLine(stream)

  const bar = (e: TrainProgressEvent): void => {
    const frac = e.totalSteps > 0 ? e.step / e.totalSteps : 0
    status.write(
      `${progressBar(frac, width)} ${e.step}/${e.totalSteps} ` +
        `${describeEvent(e)} | ${formatDuration(e.elapsedMs)}<${formatDuration(e.etaMs)}`,
    )
  }

  const log = (e: TrainProgressEvent): void => {
    if (e.step !== 1 && e.step !== e.totalSteps && e.step % every !== 0 && e.evalLoss === undefined) return
    stream.write(
      `step ${e.step}/${e.totalSteps} epoch ${e.epoch} | ${describeEvent(e)} | ` +
        `elapsed ${formatDuration(e.elapsedMs)} eta ${formatDuration(e.etaMs)}\n`,
    )
  }

  return { update: tty ? bar : log, finish: () => status.close() }
}

/**
 * A progress reporter for `evaluateTask`'s `onProgress`, in the style of the training reporter:
 * on a TTY one bar line rewritten with `\r` (task, done/total, running accuracy, ETA); elsewhere
 * a plain line every `every` examples and at the end of each task.
 */
import { createStatusLine, formatDuration, progressBar, type ProgressStream } from '../progress.js'
import { checkInteger } from '../validate.js'
import type { EvalProgressEvent } from './evaluate.js'

/** Options of {@link createEvalProgressReporter}. */
export interface EvalProgressOptions {
  /** @defaultValue `process.stderr` */
  stream?: ProgressStream
  /** Force bar (true) or log (false) mode. @defaultValue `stream.isTTY === true` */
  tty?: boolean
  /** Log mode: print when at least this many examples were scored since the last line. @defaultValue `50` */
  every?: number
  /** Bar width in characters. @defaultValue `24` */
  width?: number
}

/** Feed `update` to `evaluateTask({ onProgress })`; call `finish` after each task. */
export interface EvalProgressReporter {
  update: (event: EvalProgressEvent) => void
  finish: () => void
}

function describe(e: EvalProgressEvent): string {
  const acc = e.done > 0 ? `acc ${((100 * e.correct) / e.done).toFixed(1)}%` : 'acc --'
  return `${e.task} ${e.done}/${e.total} | ${acc}${e.resumed > 0 ? ` | resumed ${e.resumed}` : ''}`
}

/** Creates a reporter; see the module docs for the two modes. */
export function createEvalProgressReporter(options: EvalProgressOptions = {}): EvalProgressReporter {
  const stream = options.stream ?? process.stderr
  const tty = options.tty ?? stream.isTTY === true
  const every = checkInteger('every', options.every ?? 50, { min: 1 })
  const width = checkInteger('width', options.width ?? 24, { min: 1 })
  const status = createStatusLine(stream)
  let lastLogged = -1

  const bar = (e: EvalProgressEvent): void => {
    const frac = e.total > 0 ? e.done / e.total : 1
    status.write(`${progressBar(frac, width)} ${describe(e)} | ${formatDuration(e.elapsedMs)}<${formatDuration(e.etaMs)}`)
  }

  const log = (e: EvalProgressEvent): void => {
    if (e.done !== e.total && lastLogged >= 0 && e.done - lastLogged < every) return
    if (e.done === lastLogged) return
    lastLogged = e.done
    stream.write(`eval ${describe(e)} | elapsed ${formatDuration(e.elapsedMs)} eta ${formatDuration(e.etaMs)}\n`)
  }

  return {
    update: tty ? bar : log,
    finish: () => {
      status.close()
      lastLogged = -1
    },
  }
}

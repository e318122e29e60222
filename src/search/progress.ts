/**
 * A progress reporter for `search`'s `onProgress`: one line per plan, rung, trial start/end and
 * test result; inside a trial, the training and evaluation reporters of `reft train` / `reft eval`
 * (a bar on a TTY, plain log lines elsewhere).
 */
import { createEvalProgressReporter } from '../evaluation/progress.js'
import { createProgressReporter, type ProgressStream } from '../progress.js'
import type { DevMetric, SearchProgressEvent } from './events.js'
import { formatBudget } from './halving.js'
import { describeScore } from './report.js'
import { describeConfig } from './space.js'
import type { DefaultRecord, TrialRecord } from './trials-file.js'

/** Options of {@link createSearchProgressReporter}. */
export interface SearchProgressOptions {
  /** @defaultValue `process.stderr` */
  stream?: ProgressStream
  /** Force bar (true) or log (false) mode. @defaultValue `stream.isTTY === true` */
  tty?: boolean
  /** Log mode: a training line every this many steps. @defaultValue `10` */
  every?: number
}

/** Feed `update` to `search({ onProgress })`; call `finish` when it settles. */
export interface SearchProgressReporter {
  update: (event: SearchProgressEvent) => void
  finish: () => void
}

const label = (r: TrialRecord | DefaultRecord): string => (r.type === 'default' ? 'default config' : `trial ${r.id}`)

/** Creates a reporter; see the module docs. */
export function createSearchProgressReporter(options: SearchProgressOptions = {}): SearchProgressReporter {
  const stream = options.stream ?? process.stderr
  const tty = options.tty ?? stream.isTTY === true
  const train = createProgressReporter({ stream, tty, every: options.every })
  const evals = createEvalProgressReporter({ stream, tty })
  let metric: DevMetric = 'accuracy'
  let phase: 'idle' | 'train' | 'eval' = 'idle'
  const settle = (): void => {
    if (phase === 'train') train.finish()
    if (phase === 'eval') evals.finish()
    phase = 'idle'
  }
  const line = (text: string): void => {
    settle()
    stream.write(`${text}\n`)
  }

  const update = (e: SearchProgressEvent): void => {
    switch (e.type) {
      case 'plan': {
        metric = e.devMetric
        const rungs = e.rungs.map((r) => `${r.trials} @ ${formatBudget(r.budget)}`).join(' → ')
        const resumed = e.resumed > 0 ? `; ${e.resumed} finished runs found in the trials file` : ''
        line(`search: ${e.trials} trials, rungs ${rungs}; ${e.trainSize} train / ${e.devSize} dev examples; dev metric ${e.devMetric}${resumed}`)
        return
      }
      case 'rung-start':
        return line(`rung ${e.rung.index}: ${e.rung.trials} trial${e.rung.trials === 1 ? '' : 's'} at budget ${formatBudget(e.rung.budget)}`)
      case 'trial-start': {
        const where = e.id === 'default' ? '[default]' : `[rung ${e.rung} ${e.index}/${e.count}] trial ${e.id}:`
        return line(`${where} ${describeConfig(e.config)}`)
      }
      case 'trial-skip':
        return line(`${label(e.record)}: resumed, ${describeScore(e.record, metric)}`)
      case 'trial-end':
        return line(`${label(e.record)}: ${describeScore(e.record, metric)}, ${e.record.steps} step${e.record.steps === 1 ? '' : 's'}, ${e.record.seconds.toFixed(1)} s`)
      case 'train':
        if (phase === 'eval') settle()
        phase = 'train'
        return train.update(e.event)
      case 'eval':
        if (phase === 'train') settle()
        phase = 'eval'
        return evals.update(e.event)
      case 'eval-end':
        return settle()
      case 'rung-end': {
        const best = e.ranked[0]
        const kept = e.promoted.length > 0 ? `; promoted ${e.promoted.join(', ')}` : ''
        return line(`rung ${e.rung.index} done: best ${best === undefined ? 'none' : `trial ${best.id}, ${describeScore(best, metric)}`}${kept}`)
      }
      case 'test-start':
        return line(`test: ${e.which} configuration on ${e.task}`)
      case 'test-end': {
        const r = e.record
        const resumed = e.resumed ? ', resumed' : ''
        if (r.type === 'test') return line(`test ${r.task} (${r.which}): ${(100 * r.accuracy).toFixed(1)}% (${r.correct}/${r.n})${resumed}`)
        const value = r.primary === null ? 'undefined' : (100 * r.primary).toFixed(1)
        const of = r.correct === undefined ? '' : ` (${r.correct}/${r.n})`
        return line(`test ${r.task} test half (${r.which}): ${r.primaryMetric} ${value}${of}${resumed}`)
      }
    }
  }
  return { update, finish: settle }
}

/**
 * The successive-halving loop over rungs, independent of how a trial is trained: for each rung,
 * run (or take from the trials file) every trial at the rung's budget, rank them on the dev
 * metric, and promote the best to the next rung. The trial runner is injected, so this loop is
 * tested without a model.
 */
import { ReftError } from '../errors.js'
import { higherIsBetter, type DevMetric, type SearchProgressEvent } from './events.js'
import { rankTrials, type Rung } from './halving.js'
import { canonicalJson, type TrialMeasurement, type TrialRecord, type TrialsFile } from './trials-file.js'
import type { TrialConfig } from './space.js'

/** One unit of work for the runner. */
export interface TrialRun {
  id: number
  rung: number
  budget: number
  config: TrialConfig
}

/** Trains and scores one trial at one budget. */
export type TrialRunner = (trial: TrialRun) => Promise<TrialMeasurement>

/** Options of {@link runRungs}. */
export interface RunRungsOptions {
  /** Trial configs by id. */
  configs: readonly TrialConfig[]
  rungs: readonly Rung[]
  devMetric: DevMetric
  file: TrialsFile
  run: TrialRunner
  signal?: AbortSignal
  onProgress?: (event: SearchProgressEvent) => void
}

/** The outcome of one rung. */
export interface RungOutcome {
  rung: Rung
  /** This rung's records, best first. */
  ranked: TrialRecord[]
  /** Ids promoted to the next rung (empty after the last rung). */
  promoted: number[]
}

/** Ranking key of a record; failed runs rank last. */
export function rankable(r: TrialRecord, higher: boolean): TrialRecord & { score: number; devLoss: number } {
  const worst = higher ? -Infinity : Infinity
  return { ...r, score: r.score ?? worst, devLoss: r.devLoss ?? Infinity }
}

/** Sorts records best first (see `rankTrials`), keeping the stored `null`s of failed runs. */
export function rankRecords(records: readonly TrialRecord[], devMetric: DevMetric): TrialRecord[] {
  const higher = higherIsBetter(devMetric)
  const byKey = new Map(records.map((r) => [r, rankable(r, higher)] as const))
  const order = rankTrials([...byKey.values()], higher)
  const back = new Map([...byKey].map(([r, k]) => [k, r] as const))
  return order.map((k) => back.get(k)!)
}

/**
 * Runs the rungs in order. Finished (id, rung) pairs in `file` are reused, not rerun; a stored
 * trial whose config or budget differs from this search's is ERR_INVALID_CONFIG.
 */
export async function runRungs(o: RunRungsOptions): Promise<RungOutcome[]> {
  const done = new Map<string, TrialRecord>()
  for (const r of o.file.records) if (r.type === 'trial') done.set(`${r.id}:${r.rung}`, r)
  const outcomes: RungOutcome[] = []
  let ids = o.configs.map((_, i) => i)
  for (const rung of o.rungs) {
    if (ids.length !== rung.trials) throw new ReftError('ERR_BACKEND', `rung ${rung.index} expected ${rung.trials} trials, got ${ids.length}`)
    o.onProgress?.({ type: 'rung-start', rung, ids })
    const records: TrialRecord[] = []
    for (const [k, id] of ids.entries()) {
      const config = o.configs[id]!
      const stored = done.get(`${id}:${rung.index}`)
      if (stored !== undefined) {
        if (canonicalJson(stored.config) !== canonicalJson(config) || Math.abs(stored.budget - rung.budget) > 1e-12) {
          throw new ReftError('ERR_INVALID_CONFIG', `${o.file.path}: trial ${id} at rung ${rung.index} was recorded with another config or budget`, { field: 'trials' })
        }
        records.push(stored)
        o.onProgress?.({ type: 'trial-skip', record: stored })
        continue
      }
      if (o.signal?.aborted === true) throw new ReftError('ERR_ABORTED', `search aborted before trial ${id} at rung ${rung.index}`)
      o.onProgress?.({ type: 'trial-start', id, rung: rung.index, budget: rung.budget, config, index: k + 1, count: ids.length })
      const m = await o.run({ id, rung: rung.index, budget: rung.budget, config })
      const record: TrialRecord = { type: 'trial', id, rung: rung.index, ...m }
      o.file.append(record)
      records.push(record)
      o.onProgress?.({ type: 'trial-end', record })
    }
    const ranked = rankRecords(records, o.devMetric)
    const next = o.rungs[rung.index + 1]
    const promoted = next === undefined ? [] : ranked.slice(0, next.trials).map((r) => r.id)
    outcomes.push({ rung, ranked, promoted })
    o.onProgress?.({ type: 'rung-end', rung, ranked, promoted })
    ids = promoted
  }
  return outcomes
}

/**
 * `search`: hyperparameter search for ReFT on a dev slice held out from the training split, for
 * generation on a decoder (generation-plan.ts) or GLUE classification on an encoder
 * (glue-plan.ts); this file is the loop both share.
 *
 * 1. Load the data and hold out the last `devSize` training examples (data.ts, glue-data.ts; a
 *    GLUE search can rank on the validation split's eval half instead).
 * 2. Draw trial configs from the space (grid, or seeded random without replacement).
 * 3. Successive halving over rungs (halving.ts, rungs.ts): each trial trains from scratch at the
 *    rung's budget and is scored on the dev slice; the best `1/eta` go on with `eta`× the budget.
 *    Full-budget runs save their adapter under `trials/trial-<id>/`.
 * 4. The best trial of the last rung is selected; its adapter is copied to `adapter/`.
 * 5. Optionally the default configuration is trained at the full budget (`compareDefault`), and
 *    the selected (and default) adapters are evaluated on test tasks (`testTasks`; GLUE:
 *    `evalTest`, the task's test half, with a paired comparison of the two).
 * 6. `search.json` and `search.md` are written.
 *
 * Every finished run is appended to `trials.jsonl` first, so an interrupted search resumes where
 * it stopped when rerun with the same settings (see trials-file.ts).
 */
import { cpSync, existsSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ReftError } from '../errors.js'
import type { DevMetric } from './events.js'
import { planGenerationSearch } from './generation-plan.js'
import { planGlueSearch } from './glue-plan.js'
import type { TestComparison } from './glue-test.js'
import type { SearchOptions } from './options.js'
import type { AdapterPath, SearchPlan } from './plan.js'
import { runRungs, type RungOutcome } from './rungs.js'
import { gridSize } from './space.js'
import { canonicalJson, openTrialsFile, type DefaultRecord, type SearchTestRecord, type TrialRecord, type TrialsFile } from './trials-file.js'
import { writeSearchReport, type SearchReportFiles } from './report.js'

/** What `search` returns. */
export interface SearchResult {
  /** Absolute output directory. */
  outputDir: string
  trialsFile: string
  report: SearchReportFiles
  devMetric: DevMetric
  /** Each rung's records, best first, and the ids it promoted. */
  rungs: RungOutcome[]
  /** The best trial of the last rung. */
  selected: TrialRecord
  /** The selected adapter (a copy of its full-budget run), `<outputDir>/adapter`. */
  adapterDir: string
  /** The default configuration's run (with `compareDefault`). */
  default: DefaultRecord | undefined
  /** Test-split results, selected first then default (generation: in `testTasks` order; GLUE: the task's test half). */
  test: SearchTestRecord[]
  /** GLUE: selected minus default on the test half, with a paired bootstrap interval (needs `evalTest` and `compareDefault`). */
  comparison: TestComparison[]
}

/** Absolute and output-relative directory of a full-budget run's adapter. */
const adapterPath = (out: string, rel: string): AdapterPath => ({ abs: join(out, rel), rel })

/** Trains (or resumes) the default configuration at the full budget. */
async function runDefault(plan: SearchPlan, options: SearchOptions, file: TrialsFile, out: string): Promise<DefaultRecord> {
  const config = plan.defaultConfig
  const stored = file.records.filter((r): r is DefaultRecord => r.type === 'default' && canonicalJson(r.config) === canonicalJson(config)).at(-1)
  if (stored !== undefined && (stored.adapter === undefined || existsSync(join(out, stored.adapter)))) {
    options.onProgress?.({ type: 'trial-skip', record: stored })
    return stored
  }
  if (options.signal?.aborted === true) throw new ReftError('ERR_ABORTED', 'search aborted before the default configuration')
  options.onProgress?.({ type: 'trial-start', id: 'default', rung: -1, budget: 1, config, index: 1, count: 1 })
  const record: DefaultRecord = { type: 'default', ...(await plan.measure(config, 1, adapterPath(out, 'default-adapter'))) }
  file.append(record)
  options.onProgress?.({ type: 'trial-end', record })
  return record
}

function selectBest(outcomes: readonly RungOutcome[]): TrialRecord {
  const best = outcomes.at(-1)?.ranked[0]
  if (best === undefined || best.failed !== undefined) {
    throw new ReftError('ERR_NON_FINITE', `every trial of the last rung failed (${best?.failed ?? 'no trials'}); lower the learning rates`)
  }
  return best
}

/** Runs a search; see the module docs and {@link SearchOptions}. */
export async function search(options: SearchOptions): Promise<SearchResult> {
  if (typeof options.outputDir !== 'string' || options.outputDir === '') throw new ReftError('ERR_INVALID_CONFIG', 'outputDir: required', { field: 'outputDir' })
  const out = resolve(options.outputDir)
  const data = options.data
  const plan = typeof data === 'object' && data !== null && 'glue' in data ? planGlueSearch({ ...options, data }) : planGenerationSearch({ ...options, data })
  const { configs, rungs, devMetric, space } = plan

  const file = openTrialsFile(join(out, 'trials.jsonl'), plan.settings)
  options.onProgress?.({
    type: 'plan', trials: configs.length, rungs, trainSize: plan.data.train, devSize: plan.data.dev, devMetric,
    resumed: file.records.filter((r) => r.type === 'trial').length,
  })

  const outcomes = await runRungs({
    configs,
    rungs,
    devMetric,
    file,
    signal: options.signal,
    onProgress: options.onProgress,
    run: (t) => plan.measure(t.config, t.budget, t.budget === 1 ? adapterPath(out, join('trials', `trial-${t.id}`)) : undefined),
  })
  const selected = selectBest(outcomes)
  if (selected.adapter === undefined || !existsSync(join(out, selected.adapter))) {
    throw new ReftError('ERR_IO', `the adapter of trial ${selected.id} is missing from ${out}; delete trials.jsonl there to rerun the search`)
  }
  const adapterDir = join(out, 'adapter')
  rmSync(adapterDir, { recursive: true, force: true })
  cpSync(join(out, selected.adapter), adapterDir, { recursive: true })

  const def = options.compareDefault === true ? await runDefault(plan, options, file, out) : undefined
  const test = await plan.test(file, 'selected', selected.config, adapterDir)
  if (def !== undefined && def.adapter !== undefined) test.push(...(await plan.test(file, 'default', def.config, join(out, def.adapter))))
  const comparison = plan.compare(test)

  const report = writeSearchReport(out, {
    model: options.model.path,
    data: plan.data,
    ...(plan.glue === undefined ? {} : { glue: plan.glue }),
    devMetric,
    space,
    sampling: options.sampling ?? 'random',
    gridSize: gridSize(space),
    rungs,
    outcomes,
    selected,
    adapter: 'adapter',
    default: def,
    test,
    comparison,
  })
  return { outputDir: out, trialsFile: file.path, report, devMetric, rungs: outcomes, selected, adapterDir, default: def, test, comparison }
}

/**
 * `search`: hyperparameter search for ReFT on a dev slice held out from the training split.
 *
 * 1. Load the data and hold out the last `devSize` training examples (see data.ts).
 * 2. Draw trial configs from the space (grid, or seeded random without replacement).
 * 3. Successive halving over rungs (halving.ts, rungs.ts): each trial trains from scratch at the
 *    rung's budget and is scored on the dev slice; the best `1/eta` go on with `eta`× the budget.
 *    Full-budget runs save their adapter under `trials/trial-<id>/`.
 * 4. The best trial of the last rung is selected; its adapter is copied to `adapter/`.
 * 5. Optionally the default configuration is trained at the full budget (`compareDefault`), and
 *    the selected (and default) adapters are evaluated on test tasks (`testTasks`).
 * 6. `search.json` and `search.md` are written.
 *
 * Every finished run is appended to `trials.jsonl` first, so an interrupted search resumes where
 * it stopped when rerun with the same settings (see trials-file.ts).
 */
import { cpSync, existsSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ReftError } from '../errors.js'
import { evaluateTask } from '../evaluation/evaluate.js'
import { defaultMaxNewTokens, loadTask, resolveTask, type EvalExample, type TaskSpec } from '../evaluation/tasks.js'
import { loadReft } from '../load-reft.js'
import { splitSearchData, type SearchSplit } from './data.js'
import type { DevMetric } from './events.js'
import {
  checkTrialConfig,
  defaultTrialConfig,
  resolveDevMetric,
  resolveRungs,
  resolveTrialSettings,
  searchSettings,
  type SearchOptions,
} from './options.js'
import { runRungs, type RungOutcome } from './rungs.js'
import { sampleTrials } from './sampling.js'
import { gridSize, resolveSearchSpace, type TrialConfig } from './space.js'
import { measureTrial, type TrialContext, type TrialSettings } from './trial.js'
import { canonicalJson, openTrialsFile, type DefaultRecord, type TestRecord, type TrialRecord, type TrialsFile } from './trials-file.js'
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
  /** Test-split results, selected first then default, in `testTasks` order. */
  test: TestRecord[]
}

/** A test task and its examples (read before the search starts). */
interface TestSet {
  spec: TaskSpec
  examples: EvalExample[]
}

/** Absolute and output-relative directory of a full-budget run's adapter. */
const adapterPath = (out: string, rel: string) => ({ abs: join(out, rel), rel })

/** Trains (or resumes) the default configuration at the full budget. */
async function runDefault(ctx: TrialContext, file: TrialsFile, config: TrialConfig, out: string): Promise<DefaultRecord> {
  const stored = file.records.filter((r): r is DefaultRecord => r.type === 'default' && canonicalJson(r.config) === canonicalJson(config)).at(-1)
  if (stored !== undefined && (stored.adapter === undefined || existsSync(join(out, stored.adapter)))) {
    ctx.onProgress?.({ type: 'trial-skip', record: stored })
    return stored
  }
  if (ctx.signal?.aborted === true) throw new ReftError('ERR_ABORTED', 'search aborted before the default configuration')
  ctx.onProgress?.({ type: 'trial-start', id: 'default', rung: -1, budget: 1, config, index: 1, count: 1 })
  const record: DefaultRecord = { type: 'default', ...(await measureTrial(ctx, config, 1, adapterPath(out, 'default-adapter'))) }
  file.append(record)
  ctx.onProgress?.({ type: 'trial-end', record })
  return record
}

/** Evaluates one adapter on the test tasks, reusing matching records of the trials file. */
async function runTests(
  ctx: TrialContext,
  file: TrialsFile,
  which: 'selected' | 'default',
  config: TrialConfig,
  adapterDir: string,
  o: { sets: readonly TestSet[]; limit: number | undefined },
): Promise<TestRecord[]> {
  const s: TrialSettings = ctx.settings
  const out: TestRecord[] = []
  for (const { spec, examples } of o.sets) {
    const maxNewTokens = s.maxNewTokens ?? defaultMaxNewTokens[spec.kind]
    const limit = o.limit ?? null
    const same = (r: TestRecord): boolean =>
      r.which === which && r.task === spec.name && r.limit === limit && r.maxNewTokens === maxNewTokens && r.scoring === s.scoring &&
      canonicalJson(r.config) === canonicalJson(config)
    const stored = file.records.find((r): r is TestRecord => r.type === 'test' && same(r))
    if (stored !== undefined) {
      ctx.onProgress?.({ type: 'test-end', record: stored, resumed: true })
      out.push(stored)
      continue
    }
    ctx.onProgress?.({ type: 'test-start', which, task: spec.name })
    const started = performance.now()
    using reft = await loadReft(adapterDir, ctx.model)
    const r = await evaluateTask(reft, spec, {
      examples,
      batchSize: s.evalBatchSize,
      maxNewTokens,
      scoring: s.scoring,
      signal: ctx.signal,
      onProgress: (event) => ctx.onProgress?.({ type: 'eval', event }),
    })
    ctx.onProgress?.({ type: 'eval-end' })
    const record: TestRecord = {
      type: 'test', which, config, task: r.task, limit, maxNewTokens, scoring: s.scoring, n: r.n, correct: r.correct, accuracy: r.accuracy, ci95: r.ci95,
      seconds: Math.round(performance.now() - started) / 1000,
    }
    file.append(record)
    ctx.onProgress?.({ type: 'test-end', record, resumed: false })
    out.push(record)
  }
  return out
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
  const space = resolveSearchSpace(options.space)
  const settings = resolveTrialSettings(options)
  const dataDir = options.dataDir ?? ('trainingSet' in options.data ? options.data.dataDir : undefined)
  const data = 'trainingSet' in options.data ? { ...options.data, dataDir } : options.data
  const split: SearchSplit = splitSearchData(data, { devSize: options.devSize, devShuffle: options.devShuffle, seed: settings.seed })
  const devMetric = resolveDevMetric(options, split)
  const configs = sampleTrials(space, { sampling: options.sampling, trials: options.trials, seed: settings.seed })
  configs.forEach((c, i) => checkTrialConfig(c, options.model, settings, `trial ${i}`))
  const defaultConfig = options.defaultConfig ?? defaultTrialConfig
  if (options.compareDefault === true) checkTrialConfig(defaultConfig, options.model, settings, 'defaultConfig')
  // Read the test data now, so a missing file fails before any training.
  const testSets = (options.testTasks ?? []).map((t): TestSet => {
    const spec = resolveTask(t)
    return { spec, examples: loadTask(spec, { dataDir, limit: options.testLimit }) }
  })
  const rungs = resolveRungs(options, configs.length)

  const file = openTrialsFile(join(out, 'trials.jsonl'), searchSettings(options, { space, configs, rungs, split, devMetric, settings }))
  const ctx: TrialContext = { model: options.model, split, devMetric, settings, signal: options.signal, onProgress: options.onProgress }
  options.onProgress?.({
    type: 'plan', trials: configs.length, rungs, trainSize: split.train.length, devSize: split.dev.length, devMetric,
    resumed: file.records.filter((r) => r.type === 'trial').length,
  })

  const outcomes = await runRungs({
    configs,
    rungs,
    devMetric,
    file,
    signal: options.signal,
    onProgress: options.onProgress,
    run: (t) => measureTrial(ctx, t.config, t.budget, t.budget === 1 ? adapterPath(out, join('trials', `trial-${t.id}`)) : undefined),
  })
  const selected = selectBest(outcomes)
  if (selected.adapter === undefined || !existsSync(join(out, selected.adapter))) {
    throw new ReftError('ERR_IO', `the adapter of trial ${selected.id} is missing from ${out}; delete trials.jsonl there to rerun the search`)
  }
  const adapterDir = join(out, 'adapter')
  rmSync(adapterDir, { recursive: true, force: true })
  cpSync(join(out, selected.adapter), adapterDir, { recursive: true })

  const def = options.compareDefault === true ? await runDefault(ctx, file, defaultConfig, out) : undefined
  const testOptions = { sets: testSets, limit: options.testLimit }
  const test = await runTests(ctx, file, 'selected', selected.config, adapterDir, testOptions)
  if (def !== undefined && def.adapter !== undefined) test.push(...(await runTests(ctx, file, 'default', def.config, join(out, def.adapter), testOptions)))

  const report = writeSearchReport(out, {
    model: options.model.path,
    data: { name: split.name, train: split.train.length, dev: split.dev.length, devShuffle: options.devShuffle ?? false, seed: settings.seed },
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
  })
  return { outputDir: out, trialsFile: file.path, report, devMetric, rungs: outcomes, selected, adapterDir, default: def, test }
}

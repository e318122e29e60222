/**
 * The plan of a generation search on a decoder: a training set of the evaluation harness or your
 * own prompt/output pairs, trials scored by dev accuracy (greedy generation, pyreft's scoring) or
 * dev loss, and test tasks of the harness (`testTasks`).
 */
import { requireDecoder } from '../classifier.js'
import { ReftError, invalidConfig } from '../errors.js'
import { evaluateTask } from '../evaluation/evaluate.js'
import { defaultMaxNewTokens, loadTask, resolveTask, type EvalExample, type TaskSpec } from '../evaluation/tasks.js'
import { loadReft } from '../load-reft.js'
import { splitSearchData, type SearchData, type SearchSplit } from './data.js'
import {
  checkTrialConfig,
  defaultTrialConfig,
  resolveDevMetric,
  resolveRungs,
  resolveTrialSettings,
  searchSettings,
  type SearchOptions,
} from './options.js'
import type { SearchPlan } from './plan.js'
import { sampleTrials } from './sampling.js'
import { resolveSearchSpace, type TrialConfig } from './space.js'
import { measureTrial, type TrialContext } from './trial.js'
import { canonicalJson, type TestRecord, type TrialsFile } from './trials-file.js'

/** A test task and its examples (read before the search starts). */
interface TestSet {
  spec: TaskSpec
  examples: EvalExample[]
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
  const s = ctx.settings
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

/** Resolves a generation search (`options.data` is a training set or examples). */
export function planGenerationSearch(options: SearchOptions & { data: SearchData }): SearchPlan {
  requireDecoder(options.model.info(), 'a search on --train / --data (use --glue TASK for an encoder)')
  if (options.train?.dropout !== undefined) throw invalidConfig('train.dropout', 'applies to GLUE searches only')
  if (options.devSource !== undefined) throw invalidConfig('devSource', 'applies to GLUE searches only')
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
  if (options.evalTest === true && options.testTasks === undefined) {
    throw new ReftError('ERR_INVALID_CONFIG', 'evalTest: name the test tasks of a generation search with testTasks', { field: 'evalTest' })
  }
  // Read the test data now, so a missing file fails before any training.
  const sets = (options.testTasks ?? []).map((t): TestSet => {
    const spec = resolveTask(t)
    return { spec, examples: loadTask(spec, { dataDir, limit: options.testLimit }) }
  })
  const rungs = resolveRungs(options, configs.length)
  const ctx: TrialContext = { model: options.model, split, devMetric, settings, signal: options.signal, onProgress: options.onProgress }
  return {
    space,
    configs,
    rungs,
    devMetric,
    defaultConfig,
    settings: searchSettings(options, { space, configs, rungs, split, devMetric, settings }),
    data: { name: split.name, train: split.train.length, dev: split.dev.length, devShuffle: options.devShuffle ?? false, seed: settings.seed },
    measure: (config, budget, saveDir) => measureTrial(ctx, config, budget, saveDir),
    test: (file, which, config, adapterDir) => runTests(ctx, file, which, config, adapterDir, { sets, limit: options.testLimit }),
    compare: () => [],
  }
}
